import copy

import pytest

from planner.radiotherapy.plan import Regimen, achievable_prescription
from planner.radiotherapy.session import Session


@pytest.fixture(scope="module")
def prepared():
    return Session("t10_rcc_escc2", regimen=Regimen(24.0, 2))


@pytest.fixture
def session(prepared):
    """A fresh session per test, in the state the constructor leaves it (no gap, 24 Gy/2):
    the influence matrix and the pure per-gap caches are shared, the slider state
    (weights, regimen, gap) is each test's own, so no test depends on another's order."""
    fresh = copy.copy(prepared)
    assert fresh.gap_mm == 0.0 and fresh.regimen == Regimen(24.0, 2)
    return fresh


def test_slider_changes_keep_the_matrix(session):
    matrix = session.influence.matrix
    state = session.set_prescription(27.0)
    assert session.influence.matrix is matrix and state.iterations <= 6
    assert state.regimen.dose_gy == 27.0 and "matrix kept" in state.note
    state = session.set_gap(2.0)
    assert session.influence.matrix is matrix and "density" in state.note


def test_row_metrics_equal_full_grid_metrics(session):
    """The session measures on matrix rows only; the full-grid measurement agrees."""
    state = session.set_gap(1.0)
    scene = session._scene(1.0)
    full = achievable_prescription(session.influence.dose_volume(session.weights), scene, session.constraints)
    assert state.achievable_prescription_gy == pytest.approx(full, rel=1e-6)


def test_separation_raises_what_the_session_reports(session):
    none = session.set_gap(0.0).achievable_prescription_gy
    operated = session.set_gap(2.0).achievable_prescription_gy
    assert operated > none
    with pytest.raises(ValueError, match="gap_mm"):
        session.set_gap(20.0)


def test_slider_matrix_gives_the_full_matrix_update(session):
    """Sliders re-optimise on the rows some term or metric uses: the same update as on the
    whole matrix (the other rows carry no term)."""
    import numpy as np

    from planner.radiotherapy.optimise import reoptimise

    session.set_gap(1.0)
    matrix, _, _ = session._slider()
    assert matrix.shape[0] < session.influence.matrix.shape[0]
    full = reoptimise(session.influence.matrix, session._terms(), session.weights, scale=1.1)
    quick = session._reoptimise(scale=1.1)
    assert quick.objective == pytest.approx(full.objective, rel=1e-9)
    assert np.allclose(quick.weights, full.weights, rtol=1e-7, atol=1e-9)


def test_maximum_prescription_rises_with_separation(session):
    """Surgery lifts the figure off the sac's limit; the search names what binds it and never
    passes the escalation bound."""
    from planner.radiotherapy.achievable import escalation_bound

    session.set_gap(0.0)
    none, _, binding = session.maximum_prescription()
    assert binding["structure"] in ("spinal_cord", "thecal_sac") and binding["kind"] == "organ limit"
    session.set_gap(2.0)
    operated, probes, binding = session.maximum_prescription()
    assert operated > 1.5 * none and probes
    assert operated <= escalation_bound(2)["total_gy"] * (1 + 1e-9)
    assert binding["source"] and binding["limit_gy"] > 0


@pytest.fixture(scope="module")
def coarse():
    """The separation case of the teaching app's finding (T10, 27 Gy/3) on the 5 mm grid."""
    return Session("t10_rcc_escc2", regimen=Regimen(27.0, 3), grid_mm=(5.0, 5.0, 5.0))


def _walk(prepared, gaps):
    walked = copy.copy(prepared)
    walked._settled = {}  # its own settled plans: each path converges by itself, none reuses another's
    for gap in gaps:
        state = walked.set_gap(gap)
    return walked, state


@pytest.mark.slow
def test_the_settled_headline_does_not_depend_on_the_slider_path(coarse):
    """The same settings reached by two slider paths: the quick updates are marked provisional
    (their figures depend on the path); once converged the headline agrees within 0.1 Gy."""
    direct, quick_direct = _walk(coarse, [2.0])
    wiggled, quick_wiggled = _walk(coarse, [1.0, 3.0, 0.5, 2.5, 2.0, 2.0])
    assert not quick_direct.converged and not quick_wiggled.converged
    assert not direct.converged and quick_direct.iterations <= 6
    settled_direct, settled_wiggled = direct.converge(), wiggled.converge()
    assert settled_direct.converged and settled_wiggled.converged and direct.converged
    assert (settled_direct.gap_mm, settled_direct.regimen) == (settled_wiggled.gap_mm, settled_wiggled.regimen)
    assert settled_direct.achievable_prescription_gy == pytest.approx(settled_wiggled.achievable_prescription_gy,
                                                                      abs=0.1)
    assert settled_direct.ptv_d90_gy == pytest.approx(settled_wiggled.ptv_d90_gy, abs=0.1)
    # Converging again at the same settings changes nothing.
    assert direct.converge().achievable_prescription_gy == settled_direct.achievable_prescription_gy


@pytest.mark.slow
def test_a_setting_visited_again_settles_at_once_and_a_newer_move_cancels(coarse):
    walked, _ = _walk(coarse, [1.5])
    settled = walked.converge()
    walked.set_gap(3.0)
    assert walked.set_gap(1.5).achievable_prescription_gy is not None and not walked.converged
    again = walked.converge(cancelled=lambda: True)  # kept from the first visit: nothing to cancel
    assert again.achievable_prescription_gy == settled.achievable_prescription_gy
    moved = walked.set_gap(2.5)
    before = walked.weights
    assert walked.converge(cancelled=lambda: True) is None  # a newer move came: the quick plan stays
    assert walked.weights is before and not walked.converged
    assert walked._state(0, "").achievable_prescription_gy == moved.achievable_prescription_gy


def test_forget_gap_drops_one_gaps_caches_and_a_revisit_rebuilds_them(session):
    caches = ("_scenes", "_term_rows", "_measure_rows", "_sliders")
    for name in caches:  # this test's own caches (copies share them)
        setattr(session, name, dict(getattr(session, name)))
    session.set_gap(1.5)
    fingerprint = session._scene(1.5).fingerprint()
    session.set_gap(2.5)
    session.forget_gap(1.5)
    assert all(1.5 not in getattr(session, name) for name in caches)
    assert 0.0 in session._scenes and 2.5 in session._scenes
    with pytest.raises(ValueError, match="gap_mm 2.5 is the session's current gap"):
        session.forget_gap(2.5)
    session.forget_gap(0.0)  # the unoperated scene stays
    assert 0.0 in session._scenes
    state = session.set_gap(1.5)
    assert session._scene(1.5).fingerprint() == fingerprint and state.achievable_prescription_gy is not None
