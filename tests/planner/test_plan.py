"""Planning a teaching case end to end (pencil-beam engine to stay quick)."""

import json

import numpy as np
import pytest

from planner.cli import main
from planner.plan import Regimen, achievable_prescription, plan_case


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
    """Scaling the dose so that GTV D90 equals the achievable prescription puts the tightest
    hard limit exactly at its value."""
    from planner.constraints import constraints_for
    from planner.metrics import metric, structure_dose

    assert plan.achievable_prescription_gy > 10
    scene_dose = plan.dose_gy
    # Rebuild the targets to measure on them.
    from planner.plan import add_targets
    from scenes.cases import build_scene

    scene = add_targets(build_scene("t10_rcc_escc2", spacing_mm=(2.5, 2.5, 2.5)), prv_of=("spinal_cord", "thecal_sac"))
    constraints = constraints_for("hytec", 2)
    gtv_d90 = metric(structure_dose(scene_dose, scene.structure("gtv").full(), scene.grid.voxel_volume_cc), "D90%")
    scaled = scene_dose * plan.achievable_prescription_gy / gtv_d90
    assert achievable_prescription(scaled, scene, constraints) == pytest.approx(plan.achievable_prescription_gy, rel=1e-6)
    worst = max(metric(structure_dose(scaled, scene.structure(c.structure).full(), scene.grid.voxel_volume_cc), c.metric)
                / c.limit_gy for c in constraints)
    assert worst == pytest.approx(1.0, rel=1e-6)


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


def test_separation_gap_raises_the_achievable_prescription():
    """The teaching point: separating the tumour from the cord lets more dose in. At 1.25 mm
    in-plane (the gaps are below a 2.5 mm voxel): a 1 or 2 mm gap raises the maximum
    achievable prescription clearly above no surgery. (Between 1 and 3 mm it plateaus
    within the optimiser's +-1%: see the issue note; the strict rise is not claimed here.)"""
    values = [plan_case("t10_rcc_escc2", regimen=Regimen(24.0, 2), gap_mm=gap, engine="pencil",
                        grid_mm=(2.5, 1.25, 1.25), max_iterations=2000).achievable_prescription_gy
              for gap in (None, 1.0, 2.0)]
    assert values[1] > 1.05 * values[0] and values[2] > 1.05 * values[0], values


def test_ctv_takes_whole_involved_sectors():
    from planner.plan import add_targets
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
