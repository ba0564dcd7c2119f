"""Strategies, the scorecard's ranking and Pareto front, the delay timeline and `spinesim compare`."""

import csv
import io
import json

import pytest

from planner.cli.commands import main
from planner.clinical.outcomes import Estimate
from planner.radiotherapy.plan import Regimen
from planner.clinical.scorecard import DEFAULT_WEIGHTS, _comment, _pareto, _scores, compare_strategies
from planner.clinical.menu import standard_strategies, strategy_menu_for
from planner.clinical.strategies import MenuFindings, Procedure, Strategy, StrategyResult
from planner.clinical.timeline import timeline

GRID = (2.5, 2.5, 2.5)


def _result(key, **values):
    estimates = {name: Estimate(values.get(name), "%", "synthetic") for name in
                 ("local_control", "walking", "pain", "myelopathy", "fracture", "complications", "wound")}
    estimates["hospital"] = Estimate(values.get("hospital", 0.0), "days", "synthetic")
    return StrategyResult(Strategy(key, key), {}, [], estimates, values.get("days"), ())


def test_pareto_front_and_weights_on_synthetic_rows():
    a = _result("a", local_control=90, walking=90, myelopathy=1, complications=0, days=5)
    b = _result("b", local_control=80, walking=80, myelopathy=2, complications=0, days=5)  # dominated by a
    c = _result("c", local_control=95, walking=85, myelopathy=1, complications=20, days=30)
    front = _pareto([a, b, c])
    assert front == {"a", "c"}
    scores = _scores([a, b, c], DEFAULT_WEIGHTS)
    assert scores[0] > scores[1]
    # Weighting local control heavily and ignoring complications and time puts c first.
    heavy = dict(DEFAULT_WEIGHTS, local_control=50.0, complications=0.0, time=0.0, wound=0.0, hospital=0.0)
    scores = _scores([a, b, c], heavy)
    assert max(range(3), key=scores.__getitem__) == 2


def test_unknown_benefits_earn_nothing_and_unknown_harms_count_as_the_worst():
    a = _result("a", local_control=90, walking=None, myelopathy=1, complications=0, days=5)
    b = _result("b", local_control=90, walking=60, myelopathy=1, complications=0, days=5)
    scores = _scores([a, b], DEFAULT_WEIGHTS)
    assert scores[0] == pytest.approx(scores[1] - DEFAULT_WEIGHTS["walking"] * 0.60)
    c = _result("c", local_control=90, walking=60, myelopathy=None, complications=0, days=5)
    d = _result("d", local_control=90, walking=60, myelopathy=8, complications=0, days=5)
    scores = _scores([c, d], DEFAULT_WEIGHTS)
    assert scores[0] == pytest.approx(scores[1])
    # On the Pareto front an unknown never helps: c cannot be optimal through its unknown risk.
    assert _pareto([c, d]) == {"d"}
    e = _result("e", local_control=90, walking=60, myelopathy=None, complications=0, days=5)
    f = _result("f", local_control=90, walking=60, myelopathy=1, complications=0, days=5)
    assert _pareto([e, f]) == {"f"}


def test_disagreement_with_noms_is_explained():
    a = _result("a", local_control=90, walking=70, myelopathy=1, complications=0, days=2)
    b = _result("b", local_control=95, walking=94, myelopathy=0, complications=19, days=24)
    text = _comment([a, b], {"a": 2.0, "b": 1.0}, ("a", "b"), "b", DEFAULT_WEIGHTS)
    assert "teaching moment" in text and "complications" in text
    assert "first choice is the NOMS" in _comment([a, b], {"a": 1, "b": 2}, ("b", "a"), "b", DEFAULT_WEIGHTS)


def test_strategy_validation_names_the_field():
    with pytest.raises(ValueError, match="procedure name must be one of"):
        Procedure("kyphoplasty")
    with pytest.raises(ValueError, match="regimen and technique"):
        Strategy("x", "x", regimen=Regimen(8.0, 1))
    with pytest.raises(ValueError, match="SBRT takes 1-5 fractions"):
        Strategy("x", "x", regimen=Regimen(30.0, 10), technique="sbrt")
    with pytest.raises(ValueError, match="weights: unknown key"):
        compare_strategies("t10_rcc_escc2", weights={"beauty": 1.0})
    with pytest.raises(ValueError, match=r"weights\['walking'\] must be a number in 0..100"):
        compare_strategies("t10_rcc_escc2", weights={"walking": -1})


def _findings(**changes):
    base = dict(escc_grade="2", cord_compression=True, radiosensitive=False, fit_for_surgery=True,
                established_paraplegia=False, sins_total=8, mechanical_pain=True, body_disease=True,
                prior_radiotherapy=False)
    return MenuFindings(**(base | changes))


def test_standard_menu_follows_the_case():
    keys = [s.key for s in standard_strategies("t10_rcc_escc2", findings=_findings())]
    assert {"cebrt_8gy_1fx", "sbrt_24gy_2fx", "separation_sbrt_27gy_3fx", "decompression_cebrt_30gy_10fx",
            "stabilisation_sbrt_24gy_2fx", "best_supportive_care"} <= set(keys)
    # cement does not decompress an ESCC 2 cord
    assert "augmentation_sbrt_24gy_2fx" not in keys
    stable = [s.key for s in standard_strategies("l2_rcc_escc1a", findings=_findings(
        escc_grade="1a", cord_compression=False, sins_total=5, mechanical_pain=False))]
    assert "stabilisation_sbrt_24gy_2fx" not in stable and "augmentation_sbrt_24gy_2fx" not in stable
    assert "separation_sbrt_27gy_3fx" not in stable  # nothing to separate without compression
    assert "reirradiation_sbrt_30gy_4fx" in [s.key for s in standard_strategies("t6_breast_reirradiation")]
    myeloma = standard_strategies("c5_myeloma_escc2")
    assert all(s.systemic_therapy for s in myeloma if s.key.startswith("cebrt"))


@pytest.mark.parametrize("changes, excluded, reason", [
    ({"fit_for_surgery": False}, "separation_sbrt_27gy_3fx", "not fit for surgery"),
    ({"established_paraplegia": True}, "separation_sbrt_27gy_3fx", "paraplegic for more than 48 h"),
    ({"radiosensitive": True}, "decompression_cebrt_30gy_10fx", "radiosensitive"),
    ({"escc_grade": "0", "cord_compression": False}, "separation_surgery_alone", "no cord compression"),
    ({"fit_for_surgery": False}, "stabilisation_sbrt_24gy_2fx", "not fit for surgery"),
    ({"escc_grade": "1a", "cord_compression": False, "body_disease": False}, "augmentation_cebrt_8gy_1fx", "vertebral body"),
])
def test_indications_gate_the_menu_with_reasons(changes, excluded, reason):
    offered, not_indicated = strategy_menu_for("t10_rcc_escc2", _findings(**changes))
    assert excluded not in [s.key for s in offered]
    assert any(reason in why for why in not_indicated[excluded]["reasons"])
    assert not_indicated[excluded]["sources"]


@pytest.fixture(scope="module")
def card():
    menu = {s.key: s for s in standard_strategies("t10_rcc_escc2")}
    chosen = [menu[k] for k in ("sbrt_24gy_2fx", "separation_sbrt_27gy_3fx", "cebrt_8gy_1fx", "best_supportive_care")]
    return compare_strategies("t10_rcc_escc2", strategies=chosen, grid_mm=GRID)


def test_scorecard_of_the_default_case(card):
    assert card.escc_grade == "2" and card.sins_total == 8  # measured, as the reference's scenario 2
    assert card.noms_key == "separation_sbrt_27gy_3fx"
    separation = card.result("separation_sbrt_27gy_3fx")
    alone = card.result("sbrt_24gy_2fx")
    # Separation buys dose to the gross tumour and walking (Patchell), at a surgical price and time.
    assert separation.dosimetry["gtv_d95_gy"] > alone.dosimetry["gtv_d95_gy"]
    assert separation.value("walking") > alone.value("walking")
    assert separation.value("complications") > 0 == alone.value("complications")
    assert separation.days_to_end_of_treatment > alone.days_to_end_of_treatment >= 2
    assert all(c["status"] != "fail" for c in separation.constraints if c["structure"] in ("spinal_cord", "thecal_sac"))
    assert card.ranking[0] in card.pareto
    text = card.table()
    assert "teaching and research only" in text and "NOMS:" in text
    data = json.loads(card.to_json())
    assert data["disclaimer"] and len(data["strategies"]) == 4
    assert data["noms"]["parts"][0]["reason"]
    rows = list(csv.DictReader(io.StringIO(card.to_csv().split("\n#")[0])))
    assert [r["key"] for r in rows] == list(card.ranking)


def test_scorecards_are_deterministic(card):
    again = compare_strategies("t10_rcc_escc2", strategies=[r.strategy for r in card.results], grid_mm=GRID)
    assert again.to_json() == card.to_json()


def test_timeline_status_never_improves_and_the_window_closes():
    result = timeline("t10_rcc_escc2", weeks=(0, 8), grid_mm=GRID, strategy_keys=("sbrt_24gy_2fx",))
    order = ("intact", "radiculopathy", "myelopathy", "non_ambulatory")
    statuses = [order.index(p.neurological_status) for p in result.points]
    assert statuses == sorted(statuses)
    grades = [p.escc_grade for p in result.points]
    assert grades == sorted(grades, key=("0", "1a", "1b", "1c", "2", "3").index)
    # ESCC 2 at presentation: SBRT alone is already outside the NOMS window.
    assert result.sbrt_window_closes_week == 0.0
    assert "teaching assumption" in result.table().lower()
    with pytest.raises(ValueError, match="distinct increasing"):
        timeline("t10_rcc_escc2", weeks=(4, 2))


def test_cli_compare_writes_json_and_csv(tmp_path, capsys):
    out_json, out_csv = tmp_path / "card.json", tmp_path / "card.csv"
    status = main(["compare", "l2_rcc_escc1a", "--strategies", "sbrt_24gy_2fx,best_supportive_care",
                   "--json", str(out_json), "--csv", str(out_csv), "--no-colour"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "SBRT 24 Gy/2" in captured.out and "not for clinical use" in captured.out
    assert json.loads(out_json.read_text())["noms"]["summary"] == "SBRT alone"
    assert "best_supportive_care" in out_csv.read_text()
    assert "[" in captured.err  # the progress bar


@pytest.mark.parametrize("argv,message", [
    (["compare", "t10_rcc_escc2", "--strategies", "magic"], "--strategies: unknown magic"),
    (["compare", "t10_rcc_escc2", "--weights", "walking"], "--weights items must be key=number"),
    (["compare", "t10_rcc_escc2", "--json", "/no/such/folder/x.json"], "--json folder"),
    (["timeline", "t10_rcc_escc2", "--weeks", "a,b"], "--weeks must be comma-separated numbers"),
])
def test_cli_compare_bad_input(argv, message, capsys, tmp_path):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_more_gap_never_lowers_the_achievable_dose():
    from planner.radiotherapy.plan import plan_case
    from scenes.cases import build_scene

    scene = build_scene("t10_rcc_escc2", spacing_mm=GRID)
    values = [plan_case("t10_rcc_escc2", regimen=Regimen(24.0, 2), gap_mm=gap, engine="pencil", scene=scene,
                        max_iterations=100).achievable_prescription_gy for gap in (1.0, 2.0, 3.0)]
    assert values == sorted(values), values


def test_delay_of_a_histology_without_doubling_time_is_refused_at_once():
    from dataclasses import replace

    from scenes.cases import load_case

    case = load_case("t6_breast_reirradiation")
    thyroid = replace(case, patient=dict(case.patient, histology="thyroid"))
    with pytest.raises(ValueError, match="no published doubling time"):
        timeline(thyroid, weeks=(0, 4))
    with pytest.raises(ValueError, match="no published doubling time"):
        compare_strategies(thyroid, weeks_delay=4)


def test_zero_weights_are_refused():
    with pytest.raises(ValueError, match="at least one weight"):
        compare_strategies("t10_rcc_escc2", weights={k: 0.0 for k in DEFAULT_WEIGHTS})


def test_below_the_conus_the_cauda_limits_apply():
    from planner.clinical.strategies import evaluate_strategy
    from scenes.cases import build_scene, load_case

    case = load_case("l2_rcc_escc1a")
    scene = build_scene(case, spacing_mm=GRID)
    strategy = Strategy("srs", "SRS 16 Gy x1", (), Regimen(16.0, 1), "sbrt")
    result = evaluate_strategy(case, strategy, scene=scene, escc_grade="1a")
    structures = {c["structure"] for c in result.constraints}
    assert "cauda_equina" in structures and all(c["protocol"] == "tg101" for c in result.constraints)
    assert result.value("myelopathy") is None and "cauda" in result.estimates["myelopathy"].basis
