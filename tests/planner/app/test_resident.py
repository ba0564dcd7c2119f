import pytest

from planner.app.resident import ResidentModel
from planner.app.store import ProgressStore


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    store = ProgressStore(tmp_path_factory.mktemp("resident") / "p.sqlite")
    model = ResidentModel("ana", store=store, grid_mm=(5.0, 5.0, 5.0))
    model.open_case("t10_rcc_escc2")
    return model


@pytest.mark.slow
def test_decide_first_then_the_strategy_sets_the_plan(model):
    assert model.apply({"gap_mm": 2.0}) == {}  # no plan, no numbers before the decision
    with pytest.raises(ValueError, match="strategy must be one of"):
        model.decide("my_own_idea")
    model.decide("separation_sbrt_27gy_3fx")
    c = model.controls
    assert (c.gap_mm, c.dose_gy, c.fractions, c.protocol) == (2.0, 27.0, 3, "hytec")
    views = model.install(model.build_session())
    assert views["achievable_gy"] > 0 and views["img_axial"].startswith("data:image/png;base64,")
    assert views["dvh_svg"].startswith("<svg") and {r["status"] for r in views["constraint_rows"]} <= {
        "pass", "within 5%", "fail", "n/a"}
    none = model.apply({"gap_mm": 0.0})
    assert none["achievable_gy"] < views["achievable_gy"]  # separation is what lifted it
    assert none["img_axial"] != views["img_axial"]
    protocol = model.apply({"protocol": "quantec"})
    assert {r["protocol"] for r in protocol["constraint_rows"]} == {"quantec"}
    model.record_decision()
    model.record_noms("separation_sbrt_27gy_3fx")
    assert model.progress_state()["progress_rows"][0]["agreed"] == "yes"


@pytest.mark.slow
def test_weights_rerank_without_replanning(model):
    if model.decision is None:
        model.decide("separation_sbrt_27gy_3fx")
    card = model.compute_card()
    shown = model.install_card(card)
    assert shown["noms_key"] == card.noms_key and [s["role"] for s in shown["side_by_side"]][-1] == "NOMS"
    plans = [r.plan for r in model.card.results]
    heavy = model.apply({"weights": {"time": 100.0, "local_control": 0.0, "walking": 0.0}})
    assert [r.plan for r in model.card.results] == plans  # the same evaluated strategies, re-weighted
    assert heavy["ranked"] != shown["ranked"]
