"""Optimisation of the reference spine case (T10 teaching case, 24 Gy/2, HyTEC limits,
9 posterior-oblique beams, 5 mm beamlets, 2.5 mm grid) and re-optimisation after a change of
prescription with the influence matrix cached (warm start from the scaled previous weights).

Run: python -m pytest benchmarks/test_planning.py --benchmark-enable --benchmark-columns=min,median,max
"""

import numpy as np
import pytest

from planner.radiotherapy.beams import make_beams, posterior_fan_angles
from planner.radiotherapy.constraints import constraints_for
from planner.radiotherapy.influence import build_influence
from planner.radiotherapy.optimise import optimise, reoptimise
from planner.radiotherapy.case_objectives import _optimisation_region, _point_limits, _terms
from planner.radiotherapy.plan import Regimen, add_targets
from scenes.cases import build_scene


@pytest.fixture(scope="module")
def problem():
    constraints = constraints_for("hytec", 2)
    scene = add_targets(build_scene("t10_rcc_escc2", spacing_mm=(2.5, 2.5, 2.5)), prv_of=("spinal_cord", "thecal_sac"))
    points = scene.grid.index_to_mm(np.argwhere(scene.structure("ptv").full() > 0.5))
    beams = make_beams(points, gantry_deg=posterior_fan_angles(9), beamlet_mm=5.0)
    influence = build_influence(scene, beams, target="ptv", roi=_optimisation_region(scene), report=lambda s: None)
    limits = _point_limits(constraints)
    terms = _terms(influence, scene, Regimen(24.0, 2), limits)
    optimise(influence.matrix, terms, max_iterations=3)  # JIT warm-up
    return scene, influence, limits, terms


def test_optimisation_to_convergence(benchmark, problem):
    scene, influence, limits, terms = problem
    result = benchmark.pedantic(optimise, args=(influence.matrix, terms), rounds=3, iterations=1)
    benchmark.extra_info.update(iterations=result.iterations, converged=result.converged, beamlets=influence.matrix.shape[1])


def test_reoptimisation_after_prescription_change(benchmark, problem):
    """Interactive update: warm start from the scaled previous weights, 6 iterations."""
    scene, influence, limits, terms = problem
    base = optimise(influence.matrix, terms)
    prescriptions = [22.0, 23.0, 25.0, 26.0, 27.0, 28.0]
    problems = [(rx, _terms(influence, scene, Regimen(rx, 2), limits)) for rx in prescriptions]
    cycle = iter(problems * 10)

    def update():
        rx, new_terms = next(cycle)
        return reoptimise(influence.matrix, new_terms, base.weights, scale=rx / 24.0)

    benchmark.pedantic(update, rounds=24, iterations=1)
    times = np.array(benchmark.stats.stats.data)
    excess = []
    for rx, new_terms in problems:
        quick = reoptimise(influence.matrix, new_terms, base.weights, scale=rx / 24.0)
        full = optimise(influence.matrix, new_terms, initial_weights=base.weights * rx / 24.0)
        excess.append(quick.objective / full.objective - 1)
    benchmark.extra_info.update(p95_s=float(np.percentile(times, 95)), objective_excess_median=float(np.median(excess)),
                                objective_excess_max=float(np.max(excess)))
