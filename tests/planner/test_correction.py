"""The dose-correction loop (planner.radiotherapy.correction).

On synthetic engines (the final engine differs from the optimiser's matrix beamlet by beamlet,
not row by row) the loop's bookkeeping and its tolerance; on the L3 ESCC 3 case, where the
loop without a trust region stagnated 3-6% apart, the agreement the issue asks for.
"""

from types import SimpleNamespace

import numpy as np
import pytest
from scipy import sparse

from planner.radiotherapy.correction import _trust_region, correct, correction_settings
from planner.radiotherapy.objectives import Overdose, SquaredDeviation, Underdose
from planner.radiotherapy.optimise import optimise

N_TARGET, N_ORGAN, N_BEAMLETS = 60, 20, 40


def _problem(seed):
    rng = np.random.default_rng(seed)
    target = rng.uniform(0.2, 1.0, (N_TARGET, N_BEAMLETS)) * (rng.random((N_TARGET, N_BEAMLETS)) < 0.7)
    organ = rng.uniform(0.0, 0.8, (N_ORGAN, N_BEAMLETS)) * (rng.random((N_ORGAN, N_BEAMLETS)) < 0.5)
    dense = np.vstack([target, organ])
    matrix = sparse.csr_matrix(dense)
    # The final engine: each beamlet's dose off by up to 30% in each voxel, independently.
    final_matrix = dense * (1.0 + 0.3 * rng.uniform(-1.0, 1.0, dense.shape))
    rows_target, rows_organ = np.arange(N_TARGET), np.arange(N_TARGET, N_TARGET + N_ORGAN)
    terms = [SquaredDeviation(rows=rows_target, weights=np.full(N_TARGET, 1 / N_TARGET), dose_gy=24.0, priority=1.0),
             Underdose(rows=rows_target, weights=np.full(N_TARGET, 1 / N_TARGET), dose_gy=24.0, priority=10.0),
             Overdose(rows=rows_organ, weights=np.full(N_ORGAN, 1 / N_ORGAN), dose_gy=13.3, priority=100.0)]
    influence = SimpleNamespace(matrix=matrix, voxel_indices=np.arange(dense.shape[0]), grid_shape=(1, 1, dense.shape[0]))

    def final_of(weights):
        return (final_matrix @ weights).reshape(influence.grid_shape)

    def agreement_of(seen, final):
        seen, final = seen.ravel(), final.ravel()
        pairs = {"target D95%": (np.percentile(seen[rows_target], 5), np.percentile(final[rows_target], 5)),
                 "organ Dmax": (seen[rows_organ].max(), final[rows_organ].max())}
        return {k: {"optimiser_gy": a, "final_gy": b, "difference": (a - b) / b} for k, (a, b) in pairs.items()}

    return influence, terms, final_of, agreement_of


@pytest.mark.parametrize("run", range(2))
def test_the_loop_brings_both_doses_within_the_tolerance(run):
    seed = int(np.random.SeedSequence().entropy % 2**32)
    influence, terms, final_of, agreement_of = _problem(seed)
    weights = optimise(influence.matrix, terms, max_iterations=300).weights
    first = agreement_of((influence.matrix @ weights).reshape(influence.grid_shape), final_of(weights))
    corrected = correct(influence, terms, weights, final_of=final_of, agreement_of=agreement_of, tolerance=0.02,
                        max_passes=int(correction_settings()["max_passes"]) + 2)
    assert corrected.worst <= 0.02, (seed, corrected.passes, corrected.agreement, first)
    assert corrected.passes >= 1 or max(abs(v["difference"]) for v in first.values()) <= 0.02, seed
    # What the loop reports is what it measured: the final dose at its weights, the prediction beside it.
    np.testing.assert_allclose(corrected.final_dose_gy, final_of(corrected.weights))
    assert corrected.agreement == agreement_of(corrected.optimiser_dose_gy, corrected.final_dose_gy)


def test_the_trust_region_bounds_each_weight():
    weights = np.array([0.0, 1.0, 2.0, 4.0])
    lower, upper = _trust_region(weights, 0.5)
    np.testing.assert_allclose(lower, [0.0, 0.5, 1.0, 2.0])
    # A beamlet at zero may come back up to radius x the mean of the others.
    np.testing.assert_allclose(upper, [0.5 * 7 / 3, 1.5, 3.0, 6.0])
    assert _trust_region(weights, np.inf) is None


def test_optimise_keeps_its_bounds():
    seed = int(np.random.SeedSequence().entropy % 2**32)
    influence, terms, _, _ = _problem(seed)
    start = optimise(influence.matrix, terms, max_iterations=50).weights
    lower, upper = 0.9 * start, 1.1 * start + 0.01
    bounded = optimise(influence.matrix, terms, initial_weights=start, bounds=(lower, upper), max_iterations=50).weights
    assert np.all(bounded >= lower - 1e-12) and np.all(bounded <= upper + 1e-12), seed


@pytest.mark.parametrize("bounds", [(-1.0, 1.0), (1.0, 0.5), (np.nan, 1.0), (0.0, np.nan), (np.inf, np.inf)])
def test_optimise_refuses_bad_bounds(bounds):
    influence, terms, _, _ = _problem(0)
    with pytest.raises(ValueError, match="bounds"):
        optimise(influence.matrix, terms, bounds=bounds)


@pytest.mark.slow
def test_the_trust_region_brings_l3_escc3_within_two_percent():
    """The cauda wrapped by tumour (ESCC 3): the re-optimisation's weights moved 20-48% a pass
    and the engines stayed 3-6% apart over 6 passes without a trust region (2026-12-07); with
    it they agree within the tolerance in at most max_passes."""
    from planner.radiotherapy.plan import Regimen, add_targets
    from planner.radiotherapy.scene_plan import plan_scene
    from scenes.cases import build_scene

    scene = add_targets(build_scene("l3_melanoma_escc3", spacing_mm=(5.0, 5.0, 5.0)))
    plan = plan_scene(scene, target="ptv", prescription=Regimen(24.0, 2), organs_at_risk={"cauda_equina": 14.0})
    settings = correction_settings()
    assert 1 <= plan.corrections <= settings["max_passes"]
    for name, item in plan.agreement.items():
        assert abs(item["difference"]) <= settings["tolerance"], (name, item)
    assert not any("still differ" in note for note in plan.notes)
    assert plan.limits["cauda_equina"]["status"] == "pass"


def _tiny_scene():
    from scenes.scene import scene_from_arrays

    shape = (4, 6, 8)
    target, cord = np.zeros(shape, bool), np.zeros(shape, bool)
    target[1:3, 1:4, 1:4], cord[1:3, 4:6, 5:7] = True, True
    return scene_from_arrays(density_g_cc=np.ones(shape), spacing_mm=(5.0, 5.0, 5.0),
                             structures={"ptv": target, "spinal_cord": cord})


def test_deliver_with_the_pencil_engine_reports_the_matrix_dose_for_both():
    from planner.radiotherapy.correction import deliver

    scene = _tiny_scene()
    seed = np.random.SeedSequence().entropy
    rng = np.random.default_rng(seed)
    matrix = sparse.random(scene.grid.size, 5, density=1.0, random_state=rng, format="csr")  # no row without dose
    influence = SimpleNamespace(matrix=matrix, dose_volume=lambda w: (matrix @ w).reshape(scene.grid.shape))
    weights = rng.uniform(0.5, 2.0, 5)
    delivered = deliver(scene, None, influence, [], weights, target="ptv", organs=["spinal_cord"], engine="pencil")
    np.testing.assert_array_equal(delivered.final_dose_gy, influence.dose_volume(weights))
    assert delivered.optimiser_dose_gy is delivered.final_dose_gy and delivered.passes == 0 and delivered.worst == 0
    assert set(delivered.agreement) == {"ptv D95%", "spinal_cord Dmax"}
    assert all(item["difference"] == 0 for item in delivered.agreement.values()), (seed, delivered.agreement)


def test_deliver_refuses_an_unknown_engine_before_any_work():
    from planner.radiotherapy.correction import deliver

    def never(*args, **kwargs):
        raise AssertionError("no work before the check")

    influence = SimpleNamespace(matrix=None, dose_volume=never)
    with pytest.raises(ValueError, match="engine must be 'superposition' or 'pencil', got 'monte carlo'"):
        deliver(_tiny_scene(), None, influence, [], np.ones(3), target="ptv", organs=[], engine="monte carlo")
    for engine in ("pencil", "superposition"):  # the loop's settings are refused with either engine
        with pytest.raises(ValueError, match=r"tolerance must be in \(0, 1\), got 1.5"):
            deliver(_tiny_scene(), None, influence, [], np.ones(3), target="ptv", organs=[], engine=engine, tolerance=1.5)
        with pytest.raises(ValueError, match="max_passes must be >= 0, got -1"):
            deliver(_tiny_scene(), None, influence, [], np.ones(3), target="ptv", organs=[], engine=engine, max_passes=-1)
    with pytest.raises(ValueError, match="backend"):
        deliver(_tiny_scene(), None, influence, [], np.ones(3), target="ptv", organs=[], backend="tpu")
