"""The command line, run in-process (and once in a fresh interpreter, to see its imports)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from planner.cli import commands
from planner.cli.commands import main

ROOT = Path(__file__).resolve().parents[2]
#: What a refused command must not have imported: the seconds a typo should not cost.
HEAVY = ("numba", "scipy", "matplotlib", "pyvista", "vtk", "scenes.cases", "planner.radiotherapy.plan",
         "planner.clinical.scorecard", "planner.pictures")
PLAN = ["plan", "t10_rcc_escc2", "--dose", "24", "--fractions", "2"]


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


# Each bad argument: exit status 2, one line naming the flag and what is allowed (argparse's
# own errors, which start "argument --flag:", come after its usage lines), nothing written.
BAD = [
    (PLAN + ["--gap-mm", "-1"], "--gap-mm must be in 0..10 mm (0: no separation surgery), got -1"),
    (PLAN + ["--gap-mm", "20"], "--gap-mm must be in 0..10 mm"),
    (PLAN + ["--gap-mm", "nan"], "--gap-mm must be in 0..10 mm"),
    (PLAN[:2] + ["--dose", "0", "--fractions", "2"], "--dose (prescription dose) must be in (0, 80] Gy, got 0"),
    (PLAN[:2] + ["--dose", "81", "--fractions", "2"], "--dose (prescription dose) must be in (0, 80] Gy"),
    (PLAN[:2] + ["--dose", "abc", "--fractions", "2"], "argument --dose: invalid float value"),
    (PLAN[:2] + ["--dose", "24", "--fractions", "41"], "--fractions (number of fractions) must be in 1..40"),
    (PLAN[:2] + ["--dose", "24", "--fractions", "4", "--protocol", "tg101"],
     "--fractions 4: protocol 'tg101' has limits for 1, 3, 5 fractions only"),
    (PLAN + ["--protocol", "nope"], "--protocol: unknown protocol 'nope'; known: hytec"),
    (PLAN + ["--beams", "fan"], "argument --beams: invalid choice"),
    (PLAN + ["--beamlet-mm", "7"], "argument --beamlet-mm: invalid choice"),
    (["plan", "nope", "--dose", "24", "--fractions", "2"], "no teaching case named 'nope'; known cases: "),
    (["plan", "{tmp}/bad.toml", "--dose", "24", "--fractions", "2"], "bad.toml: not valid TOML"),
    (["plan", "{tmp}/none.toml", "--dose", "24", "--fractions", "2"], "none.toml: no such case file"),
    (PLAN + ["--json", "{tmp}"], "--json '{tmp}' is a folder, not a file"),
    (PLAN + ["--json", "{tmp}/missing/x.json"], "--json folder '{tmp}/missing' does not exist"),
    (["scene", "t10_rcc_escc2", "--out", "{tmp}/x.png", "--weeks", "600"], "--weeks must be in 0..520 weeks"),
    (["scene", "t10_rcc_escc2", "--out", "{tmp}/x.png", "--spacing-mm", "9"],
     "argument --spacing-mm: must be one or three values (z,y,x) in 0.5..5 mm"),
    (["compare", "t10_rcc_escc2", "--weights", "walking=lots"], "--weights items must be key=number"),
    (["compare", "t10_rcc_escc2", "--weights", "speed=1"], "--weights: unknown key 'speed'; allowed: local_control"),
    (["compare", "t10_rcc_escc2", "--weights", "walking=-1"], "--weights walking must be in 0..100"),
    (["compare", "t10_rcc_escc2", "--weights", ",".join(f"{k}=0" for k in commands.WEIGHT_KEYS)],
     "--weights: at least one weight must be above 0"),
    (["compare", "t10_rcc_escc2", "--weeks-delay", "-1"], "--weeks-delay must be in 0..520 weeks"),
    (["compare", "t10_rcc_escc2", "--strategies", "sbrt_24gy_2fx,magic"], "--strategies: unknown magic; allowed: "),
    (["compare", "t10_rcc_escc2", "--csv", "{tmp}"], "--csv '{tmp}' is a folder"),
    (["timeline", "t10_rcc_escc2", "--weeks", "4,2"], "--weeks must be distinct and increasing"),
    (["timeline", "t10_rcc_escc2", "--weeks", "0,600"], "--weeks must be in 0..520 weeks"),
    (["demo", "--out", "{tmp}/afile"], "--out '{tmp}/afile' is a file, not a folder"),
    (["demo", "--out", "{tmp}/missing/report"], "--out folder '{tmp}/missing' does not exist"),
    (["demo", "--case", "nope"], "--case: no teaching case named 'nope'"),
    (["view", "t10_rcc_escc2", "--dose", "24"], "--dose and --fractions go together"),
    (["view", "t10_rcc_escc2", "--dose", "24", "--fractions", "10"], "protocol 'hytec' has limits for 1, 2, 3, 4, 5"),
    (["view", "t10_rcc_escc2", "--gap-mm", "11", "--out", "{tmp}"], "--gap-mm must be in 0..10 mm"),
    (["view", "t10_rcc_escc2", "--out", "{tmp}/missing"], "--out folder '{tmp}/missing' does not exist"),
]


def _fill(argv, tmp_path):
    return [a.replace("{tmp}", str(tmp_path)) for a in argv]


def _bad_inputs(tmp_path) -> set:
    (tmp_path / "bad.toml").write_text("[case\n")
    (tmp_path / "afile").write_text("x")
    return set(tmp_path.rglob("*"))


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a[:1] + a[2:]) for a, _ in BAD])
def test_each_bad_argument_is_refused_naming_the_flag(argv, message, tmp_path, capsys):
    before = _bad_inputs(tmp_path)
    assert main(_fill(argv, tmp_path)) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"spinesim {argv[0]}: error: ") and message.replace("{tmp}", str(tmp_path)) in last
    assert "Traceback" not in err
    if "argument --" not in message:
        assert err.count("\n") == 1  # one line
    assert set(tmp_path.rglob("*")) == before


def test_refused_commands_do_not_import_the_heavy_rooms(tmp_path):
    """In a fresh interpreter: every bad input is refused before numba, scipy, matplotlib,
    PyVista or the planner rooms load (about a second, more with a cold JIT cache)."""
    _bad_inputs(tmp_path)
    script = ("import json, sys\n"
              "from planner.cli.commands import main\n"
              "found = []\n"
              "for argv in json.loads(sys.argv[1]):\n"
              "    status = main(argv)\n"
              "    found.append([argv, status, [m for m in json.loads(sys.argv[2]) if m in sys.modules]])\n"
              "print(json.dumps(found))\n")
    argvs = [_fill(argv, tmp_path) for argv, _ in BAD]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", script, json.dumps(argvs), json.dumps(HEAVY)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for argv, status, heavy in json.loads(done.stdout.splitlines()[-1]):
        assert status == 2 and heavy == [], (argv, status, heavy)


def test_the_early_checks_hold_the_planners_own_limits():
    """The checks repeat limits from modules too heavy to import for them; here they meet."""
    import inspect

    from planner.clinical.scorecard import DEFAULT_WEIGHTS, _check_weights
    from planner.radiotherapy.beams import ARRANGEMENTS, make_beams
    from planner.radiotherapy.plan import Regimen, plan_case
    from scenes.cases import grow, list_cases
    from scenes.surgery import separation_surgery

    def above(value):
        return math.nextafter(value, math.inf)

    assert commands.WEIGHT_KEYS == tuple(DEFAULT_WEIGHTS) and all(v > 0 for v in DEFAULT_WEIGHTS.values())
    _check_weights({"walking": commands.WEIGHT_MAX})
    with pytest.raises(ValueError, match="0..100"):
        _check_weights({"walking": above(commands.WEIGHT_MAX)})
    Regimen(commands.DOSE_MAX_GY, commands.FRACTIONS_MAX)
    with pytest.raises(ValueError, match="prescription"):
        Regimen(above(commands.DOSE_MAX_GY), 2)
    with pytest.raises(ValueError, match="fractions"):
        Regimen(24.0, commands.FRACTIONS_MAX + 1)
    with pytest.raises(ValueError, match="gap_mm must be in"):
        separation_surgery(None, above(commands.GAP_MAX_MM))
    with pytest.raises(ValueError, match="weeks must be in 0..520"):
        grow(None, above(commands.WEEKS_MAX))
    assert commands.ARRANGEMENTS == tuple(ARRANGEMENTS)
    for size in commands.BEAMLET_MM:
        make_beams(np.zeros((1, 3)), gantry_deg=[180.0], beamlet_mm=size)
    assert inspect.signature(plan_case).parameters["protocol"].default == commands.VIEW_PROTOCOL
    assert commands._packaged_cases() == list_cases()


def test_gap_zero_is_passed_on_as_no_surgery(monkeypatch):
    import planner.radiotherapy.plan as plan

    asked = []

    class Stop(Exception):
        pass

    def record(case, **kwargs):
        asked.append(kwargs["gap_mm"])
        raise Stop

    monkeypatch.setattr(plan, "plan_case", record)
    for gap in (["--gap-mm", "0"], [], ["--gap-mm", "2.5"]):
        with pytest.raises(Stop):
            main(PLAN + gap)
    assert asked == [None, None, 2.5]


def _rounded(value):
    # The same inputs give the same plan; rounding only spares the comparison the last bits
    # of parallel sums.
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


@pytest.mark.slow
def test_plan_with_gap_zero_is_the_plan_without_surgery(tmp_path, capsys):
    """`--gap-mm 0` means no separation surgery: the plan equals the one without the flag
    (and differs from a real gap's). The command shows progress, the influence line with it."""
    quick = PLAN + ["--engine", "pencil", "--spacing-mm", "5"]
    plans = {}
    for name, extra in (("zero", ["--gap-mm", "0"]), ("none", []), ("three", ["--gap-mm", "3"])):
        assert main(quick + extra + ["--json", str(tmp_path / f"{name}.json")]) == 0
        plans[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert "influence matrix: " in capsys.readouterr().out
    assert _rounded(plans["zero"]) == _rounded(plans["none"])
    assert plans["zero"]["gap_mm"] is None and plans["three"]["gap_mm"] == 3.0
    assert any("separation" in note for note in plans["three"]["notes"])
    assert not any("separation" in note for note in plans["zero"]["notes"])


@pytest.mark.slow
def test_influence_is_quiet_unless_asked(capsys):
    from planner.radiotherapy.beams import make_beams
    from planner.radiotherapy.influence import build_influence
    from scenes.scene import scene_from_arrays

    shape = (16, 16, 16)
    target = np.zeros(shape, bool)
    target[6:10, 6:10, 6:10] = True
    scene = scene_from_arrays(spacing_mm=(5.0, 5.0, 5.0), origin_mm=(-37.5, -37.5, -37.5), density_g_cc=np.ones(shape),
                              structures={"target": target, "body_outline": np.ones(shape, bool)})
    beams = make_beams(scene.grid.index_to_mm(np.argwhere(target)), gantry_deg=[0.0], beamlet_mm=5.0, margin_mm=0.0,
                       isocentre_mm=(0, 0, 0))
    build_influence(scene, beams, target="target")
    assert capsys.readouterr() == ("", "")
    lines = []
    build_influence(scene, beams, target="target", report=lines.append)
    assert len(lines) == 1 and "MiB" in lines[0]
