"""The command line, run in-process."""

import numpy as np
import pytest

from planner.cli.commands import main


def test_cases_lists_every_case(capsys):
    assert main(["cases"]) == 0
    out = capsys.readouterr().out
    assert "t10_rcc_escc2" in out and "(default)" in out and "not for clinical use" in out


def test_scene_writes_a_picture_of_the_phantom(tmp_path, capsys):
    import matplotlib.image

    target = tmp_path / "t10.png"
    assert main(["scene", "t10_rcc_escc2", "--out", str(target), "--spacing-mm", "2.5,2.5,2.5"]) == 0
    out = capsys.readouterr().out
    assert "ESCC 2" in out and str(target) in out
    image = matplotlib.image.imread(target)
    assert image.shape[0] > 400 and image.shape[1] > 800
    # Not blank: many distinct colours (materials) and real contrast.
    colours = np.unique((image[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50 and image[..., :3].std() > 0.1
    # The lesion colour (red) and the cord colour (yellow) appear.
    red = (image[..., 0] > 0.8) & (image[..., 1] < 0.2) & (image[..., 2] < 0.2)
    yellow = (image[..., 0] > 0.9) & (image[..., 1] > 0.8) & (image[..., 2] < 0.3)
    assert red.sum() > 100 and yellow.sum() > 20


def test_scene_after_growth(tmp_path, capsys):
    target = tmp_path / "grown.png"
    assert main(["scene", "l4_colorectal_escc1b", "--out", str(target), "--weeks", "26", "--spacing-mm", "2.5,2.5,2.5"]) == 0
    out = capsys.readouterr().out
    assert "l4_colorectal_escc1b" in out and "ESCC" in out
    assert target.stat().st_size > 10_000


@pytest.mark.parametrize("argv, message", [
    (["scene", "nope", "--out", "{tmp}/x.png"], "known cases"),
    (["scene", "t10_rcc_escc2", "--out", "{tmp}/x.txt"], "--out must end in"),
    (["scene", "t10_rcc_escc2", "--out", "{tmp}/missing/x.png"], "does not exist"),
    (["scene", "t10_rcc_escc2", "--out", "{tmp}/x.png", "--spacing-mm", "0.1"], "--spacing-mm"),
    (["scene", "t10_rcc_escc2", "--out", "{tmp}/x.png", "--weeks", "-3"], "--weeks"),
])
def test_bad_input_is_named_and_writes_nothing(argv, message, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not list(tmp_path.rglob("x.*"))
