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
    """The achievable plan, scaled, puts the binding limit exactly at its value with GTV Dmin at
    the achievable prescription, keeps every other organ limit and the escalation bound; the
    escalation never does worse than scaling the plan made for the requested prescription."""
    from planner.radiotherapy.achievable import escalation_bound
    from planner.radiotherapy.constraints import constraints_for
    from planner.radiotherapy.metrics import metric, structure_dose
    from planner.radiotherapy.plan import ACHIEVABLE_METRIC

    assert ACHIEVABLE_METRIC == "Dmin"
    assert plan.achievable_prescription_gy > 10 and plan.achievable_probes
    scene, voxel = plan.scene, plan.scene.grid.voxel_volume_cc
    constraints = constraints_for("hytec", 2)
    best = plan.achievable_dose_gy
    gtv_min = metric(structure_dose(best, scene.structure("gtv").full(), voxel), ACHIEVABLE_METRIC)
    assert gtv_min == pytest.approx(plan.achievable_prescription_gy, rel=1e-6)
    assert plan.achievable_prescription_gy <= escalation_bound(2)["total_gy"] * (1 + 1e-9)
    ratios = {(c.structure, c.metric): metric(structure_dose(best, scene.structure(c.structure).full(), voxel), c.metric)
              / c.limit_gy for c in constraints if scene.has(c.structure)}
    assert max(ratios.values()) <= 1 + 1e-6
    binding = plan.achievable_binding
    if binding["kind"] == "organ limit":
        assert ratios[(binding["structure"], binding["metric"])] == pytest.approx(1.0, rel=1e-6)
    assert plan.achievable_prescription_gy >= achievable_prescription(plan.dose_gy, scene, constraints, fractions=2) - 1e-9
    data = json.loads(plan.to_json())
    assert data["achievable_metric"] == "gtv Dmin" and len(data["achievable_probes"]) == len(plan.achievable_probes)
    assert {"kind", "structure", "metric", "limit_gy", "source", "protocol"} <= set(data["achievable_binding"])
    assert data["achievable_bound"]["source"] and data["achievable_hot_spot"]["limit_ratio"] > 1
    assert data["achievable_limits"][0] == data["achievable_binding"]  # tightest first
    figures = [entry["figure_gy"] for entry in data["achievable_limits"]]
    assert figures == sorted(figures) and figures[0] == pytest.approx(plan.achievable_prescription_gy)


def test_escalation_bound_follows_the_most_intense_regimens_given():
    """24 Gy x1 bounds single fractions (Laufer 2013); otherwise the BED10 of the dose-intensified
    regimens (Guckenberger 2024: 40 Gy/5, 48.5 Gy/10, both 72 Gy BED10) in that many fractions."""
    from planner.radiotherapy.achievable import escalation_bound
    from planner.radiotherapy.radiobiology import bed

    assert escalation_bound(1)["total_gy"] == 24.0 and escalation_bound(1)["source"] == "laufer2013_jns"
    two = escalation_bound(2)
    assert two["total_gy"] == pytest.approx(29.25, abs=0.01) and two["source"] == "guckenberger2024_dose_intensified"
    assert escalation_bound(5)["total_gy"] == pytest.approx(40.0, abs=0.01)
    assert escalation_bound(10)["total_gy"] == pytest.approx(48.5, abs=1e-9)
    for n in range(2, 11):
        assert bed(escalation_bound(n)["total_gy"], n, 10.0) == pytest.approx(bed(48.5, 10, 10.0), rel=1e-9)
    with pytest.raises(ValueError, match="fractions"):
        escalation_bound(0)


def test_achievable_limits_name_what_binds():
    """The figure is the smallest of cover x limit / value over the organs and the bound; the
    hot spot is a ratio that scaling leaves alone, reported and not a cap."""
    from planner.radiotherapy.achievable import achievable_limits, escalation_bound
    from planner.radiotherapy.constraints import Constraint

    values = {("gtv", "Dmin"): 10.0, ("gtv", "Dmax"): 12.0, ("thecal_sac", "Dmax"): 8.0, ("esophagus", "Dmax"): 10.0}
    limits = [Constraint("thecal_sac", "Dmax", 17.0, "hytec", "sahgal2013_rm"),
              Constraint("esophagus", "Dmax", 21.0, "tg101", "tg101"),
              Constraint("airway", "Dmax", 25.0, "tg101", "tg101")]  # absent: does not count

    def measure(name, metric_name):
        return values[(name, metric_name)]

    found = achievable_limits(measure, limits, {"gtv", "thecal_sac", "esophagus"}, fractions=2)
    assert found["figure_gy"] == pytest.approx(21.0) and found["binding"]["structure"] == "esophagus"
    assert found["binding"]["value_gy"] == pytest.approx(21.0)  # the binding metric sits at its limit
    assert [entry["structure"] for entry in found["limits"]] == ["esophagus", "thecal_sac", "gtv"]
    assert found["hot_spot"]["ratio"] == pytest.approx(1.2) and found["hot_spot"]["ok"]
    values[("esophagus", "Dmax")] = values[("thecal_sac", "Dmax")] = 1.0  # room: the escalation bound binds
    found = achievable_limits(measure, limits, {"gtv", "thecal_sac", "esophagus"}, fractions=2)
    assert found["binding"]["kind"] == "escalation bound"
    assert found["figure_gy"] == pytest.approx(escalation_bound(2)["total_gy"])
    values[("gtv", "Dmax")] = 20.0  # twice the coldest voxel: above the hot-spot limit, same figure
    again = achievable_limits(measure, limits, {"gtv", "thecal_sac", "esophagus"}, fractions=2)
    assert again["hot_spot"]["ok"] is False and again["figure_gy"] == found["figure_gy"]
    assert achievable_limits(measure, limits, {"gtv"})["figure_gy"] == float("inf")


def test_the_plan_grid_resolves_the_gap_everywhere():
    from planner.cli import commands
    from planner.cli.demo import GAP_STUDY_GRID_MM
    from planner.radiotherapy.plan import GAP_RESOLVING_GRID_MM

    assert commands.PLAN_GRID_MM == GAP_RESOLVING_GRID_MM == GAP_STUDY_GRID_MM
    assert max(GAP_RESOLVING_GRID_MM[1:]) <= 1.25  # in-plane, where the gap lies


def test_result_is_json_serialisable(plan):
    data = json.loads(plan.to_json())
    assert data["case"] == "t10_rcc_escc2" and data["regimen"]["fractions"] == 2
    assert "not for clinical use" in data["disclaimer"]
    assert data["radiobiology"]["myelopathy"]["band"] in ("<= 5%", "> 5%")
    assert "no validated TCP" in data["radiobiology"]["local_control"]


def test_cli_plan_writes_json(tmp_path, capsys):
    target = tmp_path / "plan.json"
    assert main(["plan", "t10_rcc_escc2", "--dose", "24", "--fractions", "2", "--engine", "pencil",
                 "--spacing-mm", "2.5", "--json", str(target)]) == 0
    out = capsys.readouterr().out
    assert "spinal_cord" in out and "maximum achievable" in out and "not for clinical use" in out
    assert "binding limit: thecal_sac Dmax <= 17.0 Gy (hytec, sahgal2013_rm)" in out
    data = json.loads(target.read_text())
    assert data["protocol"] == "hytec" and data["achievable_binding"]["structure"] == "thecal_sac"


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
    """The teaching point: separating the tumour from the sac lets more dose into it, until a
    bound binds.

    Grid 2.5 x 1.25 x 1.25 mm (the plan command's): separation surgery leaves the residual
    GTV's voxel boxes at least 1.25, 2.5 and 3.06 mm from the sac's for requested gaps of 1, 2
    and 3 mm (exact box-to-box bound, scenes/surgery.py). The figure is the coldest GTV voxel's
    dose with every organ limit and the escalation bound kept (targets.toml [achievable],
    [escalation_bounds]). Measured (pencil engine) 16.0, 25.7, 29.2, 29.2 Gy in 2 fractions for
    no surgery, 1, 2, 3 mm: the sac's 17 Gy binds without surgery, the oesophagus's point
    maximum at 1 mm, the escalation bound (29.2 Gy/2, iso-BED10 with Guckenberger 2024's
    dose-intensified regimens) from 2 mm on. Each step must raise the figure by 4% (the probes
    step by 10% and re-optimise for 30 iterations) unless the bound binds, where it must equal
    the bound; nothing may pass the bound."""
    from planner.radiotherapy.achievable import escalation_bound
    from scenes.cases import build_scene

    grid = (2.5, 1.25, 1.25)
    bound = escalation_bound(2)["total_gy"]
    scene = build_scene("t10_rcc_escc2", spacing_mm=grid)
    plans = [plan_case("t10_rcc_escc2", regimen=Regimen(24.0, 2), gap_mm=gap, engine="pencil", grid_mm=grid,
                       scene=scene, max_iterations=100) for gap in (None, 1.0, 2.0, 3.0)]
    values = [p.achievable_prescription_gy for p in plans]
    kinds = [p.achievable_binding["kind"] for p in plans]
    assert plans[0].achievable_binding["structure"] in ("spinal_cord", "thecal_sac"), plans[0].achievable_binding
    assert values[1] > 1.5 * values[0], values
    assert all(v <= bound * (1 + 1e-9) for v in values), values
    for lower, higher, kind in zip(values, values[1:], kinds[1:]):
        if kind == "escalation bound":
            assert higher == pytest.approx(bound, rel=1e-9), (values, kinds)
        else:
            assert higher > 1.04 * lower, (values, kinds)


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


def test_binding_limit_reaches_the_scorecard_and_the_report(plan):
    """The strategies' dosimetry carries the binding limit; the report prints it per strategy
    and under the gap chart."""
    from types import SimpleNamespace

    from planner.clinical.strategies import _dosimetry
    from planner.pictures.report import _achievable_line, _gap_table

    dosimetry, _ = _dosimetry(plan)
    binding = dosimetry["achievable_binding"]
    assert binding["structure"] == plan.achievable_binding["structure"] and binding["source"]
    json.dumps(dosimetry)
    result = SimpleNamespace(dosimetry=dosimetry, strategy=SimpleNamespace(regimen=Regimen(24.0, 2)))
    line = _achievable_line(result)
    assert f"{plan.achievable_prescription_gy:.1f} Gy" in line and "binding limit" in line and binding["source"] in line
    bound = {"kind": "escalation bound", "structure": "gtv", "metric": "Dmin", "limit_gy": 29.25,
             "source": "guckenberger2024_dose_intensified", "note": "SBRT 48.5 Gy/10 & 40 Gy/5"}
    table = _gap_table(((0.0, 3.0), (15.9, 29.25), 24.0, (binding, bound)))
    assert "escalation bound 29.2 Gy" in table and "&amp;" in table and binding["structure"] in table
    assert _gap_table(((0.0,), (15.9,), 24.0)) == ""  # a study without bindings: no table


@pytest.mark.slow
def test_the_optimised_dose_is_the_delivered_dose():
    """With the superposition engine the correction loop re-optimises against the engines'
    difference until they agree within 2% on the PTV D95% and the hard-limited maxima, and
    the plan reports both."""
    planned = plan_case("l2_rcc_escc1a", regimen=Regimen(24.0, 2), grid_mm=(5.0, 5.0, 5.0), engine="superposition",
                        max_iterations=200)
    assert planned.engine_agreement, "no engine agreement reported"
    for name, item in planned.engine_agreement.items():
        assert abs(item["difference"]) <= 0.02, (name, item)
        assert item["final_gy"] > 0
    assert "engine_agreement" in json.loads(planned.to_json())
    assert any(note.startswith("engines: optimiser vs final dose within") for note in planned.notes)


def test_plans_on_one_scene_share_a_matrix_until_it_is_forgotten():
    from planner.radiotherapy.plan import forget_shared_influences

    def messages(regimen):
        said = []
        plan_case("l2_rcc_escc1a", regimen=regimen, grid_mm=(5.0, 5.0, 5.0), engine="pencil", progress=said.append)
        return said

    messages(Regimen(24.0, 2))
    assert "influence matrix: reused (same scene, beams and rows)" in messages(Regimen(27.0, 3))
    forget_shared_influences()
    assert not any("reused" in line for line in messages(Regimen(27.0, 3)))
