import pytest

from planner.app.resident import ResidentModel
from planner.app.store import ProgressStore


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    store = ProgressStore(tmp_path_factory.mktemp("resident") / "p.sqlite")
    model = ResidentModel("ana", store=store, grid_mm=(5.0, 5.0, 5.0), score_grid_mm=(5.0, 5.0, 5.0))
    model.open_case("t10_rcc_escc2")
    return model


def test_the_scorecard_and_timeline_plan_on_the_reports_grid_by_default(monkeypatch):
    """The app's scorecard is the report's: same function, same gap-resolving grid (on the live
    plan's 2.5 mm grid T10's SBRT 24 Gy/2 fell below the SBRT cohort's dose floor)."""
    import planner.clinical.scorecard as scorecard
    import planner.clinical.timeline as timeline_module
    from planner.radiotherapy.plan import GAP_RESOLVING_GRID_MM

    seen = {}
    monkeypatch.setattr(scorecard, "compare_strategies", lambda case, **options: seen.setdefault("card", options))
    monkeypatch.setattr(timeline_module, "timeline", lambda case, **options: seen.setdefault("timeline", options) and None)
    model = ResidentModel("ben")
    model.case = object()
    model.compute_card()
    with pytest.raises(AttributeError):  # the stub returns no timeline; only its grid is checked
        model.compute_timeline()
    assert seen["card"]["grid_mm"] == tuple(GAP_RESOLVING_GRID_MM) == seen["timeline"]["grid_mm"]
    assert ResidentModel("cy", score_grid_mm=(5.0, 5.0, 5.0)).score_grid_mm == (5.0, 5.0, 5.0)


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


@pytest.mark.slow
def test_a_slider_update_is_provisional_until_the_plan_settles(model):
    """The fast path marks its figures provisional; settling (the app does once the slider
    rests) converges, is cancellable, and a second path to the same gap settles the same."""
    if model.decision is None:
        model.decide("separation_sbrt_27gy_3fx")
    if model.session is None:
        model.install(model.build_session())
    quick = model.apply({"gap_mm": 1.0})
    assert quick["provisional"] is True
    assert model.settle(cancelled=lambda: True) is None  # a newer move waits: nothing changes
    settled = model.settle()
    assert settled["provisional"] is False and settled["achievable_gy"] > 0 and settled["constraint_rows"]
    assert settled["dvh_svg"].startswith("<svg") and settled["update_count"] > quick["update_count"]
    assert model.settle() == {"provisional": False}  # already settled: nothing to redo
    for gap in (3.0, 0.5, 1.0):
        again = model.apply({"gap_mm": gap})
    assert again["provisional"] is True
    assert model.settle()["achievable_gy"] == pytest.approx(settled["achievable_gy"], abs=0.1)


@pytest.mark.slow
def test_a_saved_plan_records_the_settled_figure(model):
    """Saving while the figure is provisional settles first: the stored figure is the settled one."""
    if model.decision is None:
        model.decide("separation_sbrt_27gy_3fx")
    if model.session is None:
        model.install(model.build_session())
    model.apply({"gap_mm": 2.5})
    assert model.apply({"gap_mm": 1.5})["provisional"] is True
    saved = model.save_plan()
    assert saved["provisional"] is False and saved["progress_rows"] is not None
    plan = model.store.progress("ana").plans[-1]
    assert plan["gap_mm"] == 1.5 and plan["achievable_gy"] == pytest.approx(saved["achievable_gy"], abs=0.05)
    assert model.settle() == {"provisional": False}
