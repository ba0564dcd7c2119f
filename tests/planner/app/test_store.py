import sqlite3

import pytest

from planner.app.store import ProgressStore, StoreError


def test_progress_survives_reopening(tmp_path):
    path = tmp_path / "progress.sqlite"
    store = ProgressStore(path)
    store.record_decision("ana", "t10_rcc_escc2", "sbrt_24gy_2fx", noms_strategy="separation_sbrt_27gy_3fx")
    store.record_plan("ana", "t10_rcc_escc2", gap_mm=2.0, dose_gy=24.0, fractions=2, achievable_gy=25.0)
    store.close()
    again = ProgressStore(path).progress("ana")
    assert again.cases_done == ("t10_rcc_escc2",) and again.agreement == 0.0
    assert again.plans[0]["gap_mm"] == 2.0
    assert ProgressStore(path).progress("ben").decisions == ()


def test_noms_is_added_to_the_decision_later(tmp_path):
    store = ProgressStore(tmp_path / "p.sqlite")
    store.record_decision("ana", "t10_rcc_escc2", "sbrt_24gy_2fx")
    assert store.progress("ana").agreement is None
    store.complete_decision("ana", "t10_rcc_escc2", "sbrt_24gy_2fx")
    assert store.progress("ana").agreement == 1.0


@pytest.mark.parametrize("content, why", [(b"hello, not a database", "not an SQLite database"),
                                          (b"SQLite format 3\x00" + b"\x00" * 200, "damaged")])
def test_a_foreign_or_damaged_file_is_refused_and_left_alone(tmp_path, content, why):
    path = tmp_path / "progress.sqlite"
    path.write_bytes(content)
    with pytest.raises(StoreError, match=why):
        ProgressStore(path)
    assert path.read_bytes() == content


def test_another_programs_sqlite_is_refused(tmp_path):
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x)")
    before = path.read_bytes()
    with pytest.raises(StoreError, match="another program"):
        ProgressStore(path)
    assert path.read_bytes() == before


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    store = ProgressStore(tmp_path / "p.sqlite")
    with pytest.raises(ValueError, match="unknown fields"):
        store.record_plan("ana", "t10_rcc_escc2", colour="red")
    assert store.progress("ana").plans == ()
