import pytest

from planner.cli.commands import main


@pytest.mark.parametrize("argv, message", [(["--grid-mm", "1"], "--grid-mm must be in 2.5..5 mm"),
                                           (["--max-sessions", "0"], "--max-sessions must be in 1..64"),
                                           (["--idle-minutes", "nan"], "--idle-minutes must be in 1..1440"),
                                           (["--port", "70000"], "--port must be in 0..65535")])
def test_bad_flags_are_refused_before_anything_starts(capsys, argv, message):
    assert main(["teach", *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_foreign_progress_file_is_refused_and_untouched(capsys, tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_text("my notes, not a database")
    assert main(["teach", "--db", str(path)]) == 2
    assert "not an SQLite database" in capsys.readouterr().err
    assert path.read_text() == "my notes, not a database"
