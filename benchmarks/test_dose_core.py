"""Dose-core timings on the reference spine case (T10 teaching case, 9 posterior-oblique
beams, 5 mm beamlets). JIT compilation and the beamlet table are warmed up before timing.

Run: python -m pytest benchmarks/test_dose_core.py --benchmark-enable --benchmark-columns=min,median,max
"""

import numpy as np
import pytest
from numba import njit, prange

from kernels.sparse_dose_cpu import dose_from_weights, gradient_to_weights
from planner.beams import make_beams, posterior_fan_angles
from planner.influence import build_influence, final_dose
from scenes.cases import build_scene

SPACINGS = {"2.5mm": (2.5, 2.5, 2.5), "1.25mm": (2.5, 1.25, 1.25)}


@pytest.fixture(scope="module", params=list(SPACINGS))
def case(request):
    scene = build_scene("t10_rcc_escc2", spacing_mm=SPACINGS[request.param])
    points = scene.grid.index_to_mm(np.argwhere(scene.structure("gtv").full() > 0.5))
    beams = make_beams(points, gantry_deg=posterior_fan_angles(9), beamlet_mm=5.0)
    influence = build_influence(scene, beams, report=lambda s: None)  # warms JIT and the beamlet table
    return request.param, scene, beams, influence


def test_influence_matrix(benchmark, case):
    name, scene, beams, _ = case
    influence = benchmark.pedantic(build_influence, args=(scene, beams), kwargs=dict(report=lambda s: None),
                                   rounds=3, iterations=1)
    benchmark.extra_info.update(voxels=influence.matrix.shape[0], beamlets=influence.matrix.shape[1],
                                nnz=influence.matrix.nnz, matrix_mib=influence.memory_bytes / 2**20)


def test_superposition_final_dose(benchmark, case):
    name, scene, beams, _ = case
    final_dose(scene, beams, np.ones(beams.n_beamlets))  # warm
    dose = benchmark.pedantic(final_dose, args=(scene, beams, np.ones(beams.n_beamlets)), rounds=1, iterations=1)
    benchmark.extra_info["voxels"] = int(np.prod(scene.grid.shape))
    assert np.isfinite(dose).all()


@njit(parallel=True, cache=True)
def _triad(a, b, c, scalar):
    for i in prange(a.shape[0]):
        a[i] = b[i] + scalar * c[i]


def stream_bandwidth_gb_s():
    """STREAM-like triad a = b + s c on 3 x 400 MB arrays: bytes moved / best time."""
    import time

    n = 50_000_000
    a, b, c = np.empty(n), np.ones(n), np.ones(n)
    _triad(a, b, c, 2.0)
    best = np.inf
    for _ in range(5):
        start = time.perf_counter()
        _triad(a, b, c, 2.0)
        best = min(best, time.perf_counter() - start)
    return 3 * 8 * n / best / 1e9


@pytest.fixture(scope="module")
def stream():
    return stream_bandwidth_gb_s()


def _bytes(matrix):
    return matrix.nnz * 8 + matrix.shape[0] * 16


@pytest.mark.parametrize("engine", ["numba", "scipy"])
def test_matvec(benchmark, case, stream, engine):
    name, scene, beams, influence = case
    matrix = influence.matrix
    w = np.random.default_rng(1).uniform(0, 1, matrix.shape[1])
    run = (lambda: dose_from_weights(matrix, w)) if engine == "numba" else (lambda: matrix @ w)
    run()
    benchmark(run)
    seconds = benchmark.stats.stats.min
    benchmark.extra_info.update(gb_s=_bytes(matrix) / seconds / 1e9, stream_gb_s=stream,
                                fraction_of_stream=_bytes(matrix) / seconds / 1e9 / stream)


@pytest.mark.parametrize("engine", ["numba", "scipy"])
def test_rmatvec(benchmark, case, stream, engine):
    name, scene, beams, influence = case
    matrix = influence.matrix
    g = np.random.default_rng(2).normal(size=matrix.shape[0])
    run = (lambda: gradient_to_weights(matrix, g)) if engine == "numba" else (lambda: matrix.T @ g)
    run()
    benchmark(run)
    seconds = benchmark.stats.stats.min
    benchmark.extra_info.update(gb_s=_bytes(matrix) / seconds / 1e9, stream_gb_s=stream,
                                fraction_of_stream=_bytes(matrix) / seconds / 1e9 / stream)
