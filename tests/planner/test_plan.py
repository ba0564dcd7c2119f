"""Planning a teaching case end to end (pencil-beam engine to stay quick)."""

import json

import numpy as np
import pytest

from planner.cli.commands import main
from planner.radiotherapy.plan import Regimen, achievable_prescription, plan_case


@pytest.fixture(scope="module")
def plan():
    return plan_case("t10_rcc_escc2", regimen=Regimen(24.0, 2), engine="pencil")


def test_cord_limits_are_never_broken(plan):
    hard = [r for r in plan.constraints if r.structure in ("spinal_cord", "thecal_sac")]
    assert hard and all(r.value_gy <= r.limit_gy + 1e-6 for r in hard)
    assert 0 < plan.coverage_achieved <= 1.0
    ptv_d90 = plan.metrics["ptv"]["D90%"]
    assert ptv_d90 == pytest.approx(24.0 * plan.coverage_achieved, rel=1e-6)


def test_achievable_prescription_is_where_a_limit_is_met(plan):
    """The achievable plan, scaled, puts the tightest hard limit exactly at its value with GTV
    Dmin at the achievable prescription; the escalation never does worse than scaling the plan
    made for the requested prescription."""
    from planner.radiotherapy.constraints import constraints_for
    from planner.radiotherapy.metrics import metric, structure_dose
    from planner.radiotherapy.plan import ACHIEVABLE_METRIC, HARD_STRUCTURES

    assert ACHIEVABLE_METRIC == "Dmin"
    assert plan.achievable_prescription_gy > 10 and plan.achievable_probes
    scene, voxel = plan.scene, plan.scene.grid.voxel_volume_cc
    constraints = constraints_for("hytec", 2)
    best = plan.achievable_dose_gy
    gtv_min = metric(structure_dose(best, scene.structure("gtv").full(), voxel), ACHIEVABLE_METRIC)
    assert gtv_min == pytest.approx(plan.achievable_prescription_gy, rel=1e-6)
    hard = [c for c in constraints if c.structure in HARD_STRUCTURES and c.metric == "Dmax"]
    worst = max(metric(structure_dose(best, scene.structure(c.structure).full(), voxel), c.metric) / c.limit_gy for c in hard)
    assert worst == pytest.approx(1.0, rel=1e-6)
    assert plan.achievable_prescription_gy >= achievable_prescription(plan.dose_gy, scene, constraints) - 1e-9
    data = json.loads(plan.to_json())
    assert data["achievable_metric"] == "gtv Dmin" and len(data["achievable_probes"]) == len(plan.achievable_probes)


def test_result_is_json_serialisable(plan):
    data = json.loads(plan.to_json())
    assert data["case"] == "t10_rcc_escc2" and data["regimen"]["fractions"] == 2
    assert "not for clinical use" in data["disclaimer"]
    assert data["radiobiology"]["myelopathy"]["band"] in ("<= 5%", "> 5%")
    assert "no validated TCP" in data["radiobiology"]["local_control"]


def test_cli_plan_writes_json(tmp_path, capsys):
    target = tmp_path / "plan.json"
    assert main(["plan", "t10_rcc_escc2", "--dose", "24", "--fractions", "2", "--engine", "pencil",
                 "--json", str(target)]) == 0
    out = capsys.readouterr().out
    assert "spinal_cord" in out and "maximum achievable" in out and "not for clinical use" in out
    assert json.loads(target.read_text())["protocol"] == "hytec"


@pytest.mark.parametrize("argv, message", [
    (["--dose", "-3", "--fractions", "2"], "prescription dose"),
    (["--dose", "24", "--fractions", "0"], "fractions"),
    (["--dose", "24", "--fractions", "2", "--gap-mm", "50"], "--gap-mm"),
    (["--dose", "24", "--fractions", "2", "--protocol", "nope"], "unknown protocol"),
    (["--dose", "24", "--fractions", "4", "--protocol", "tg101"], "fractions"),
])
def test_cli_plan_bad_input(argv, message, capsys, tmp_path):
    assert main(["plan", "t10_rcc_escc2", "--engine", "pencil", "--json", str(tmp_path / "x.json")] + argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


@pytest.mark.slow
def test_separation_gap_raises_the_achievable_prescription():
    """The teaching point: separating the tumour from the sac lets more dose into it.

    Grid 2.5 x 1.25 x 1.25 mm: separation surgery leaves the residual GTV's voxel boxes at
    least 1.25, 2.5 and 3.06 mm from the sac's for requested gaps of 1, 2 and 3 mm (exact
    box-to-box bound, scenes/surgery.py). The figure is the coldest GTV voxel's dose at the
    hard cord/sac limits (targets.toml [achievable]); measured 15.8, 27.2, 34.8, 45.1 Gy in
    2 fractions for no surgery, 1, 2, 3 mm. Each step moves the tumour's nearest surface by
    0.6-1.25 mm; with the 10-15%/mm fall-off between tumour and cord that is worth 6% or more,
    4% is asserted (the escalation probes step by 10% and re-optimise for 30 iterations).
    Removing the tumour against the sac (0 -> 1 mm) raises it far more."""
    from scenes.cases import build_scene

    grid = (2.5, 1.25, 1.25)
    scene = build_scene("t10_rcc_escc2", spacing_mm=grid)
    values = [plan_case("t10_rcc_escc2", regimen=Regimen(24.0, 2), gap_mm=gap, engine="pencil", grid_mm=grid,
                        scene=scene, max_iterations=100).achievable_prescription_gy
              for gap in (None, 1.0, 2.0, 3.0)]
    assert values[1] > 1.5 * values[0], values
    for lower, higher in zip(values[1:], values[2:]):
        assert higher > 1.04 * lower, values


def test_ctv_takes_whole_involved_sectors():
    from planner.radiotherapy.plan import add_targets
    from scenes.cases import build_scene

    scene = add_targets(build_scene("t10_rcc_escc2", spacing_mm=(2.5, 2.5, 2.5)))
    ctv = scene.structure("ctv").full()
    # Body and left pedicle are involved: both enter whole; the right pedicle does not.
    for name in ("vertebral_body_T10", "pedicle_left_T10"):
        sector = scene.structure(name).full()
        assert np.all(ctv[sector > 0.5] >= sector[sector > 0.5] - 1e-6)
    right = scene.structure("pedicle_right_T10").full() > 0.5
    assert ctv[right].max() < 0.5
    assert (scene.structure("ptv").full() * scene.structure("cord_prv").full()).sum() == 0
