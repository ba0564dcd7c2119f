"""Dose-core timings on the reference spine case (T10 teaching case, 9 posterior-oblique
beams, 5 mm beamlets). JIT compilation and the beamlet table are warmed up before timing.

Run: python -m pytest benchmarks/test_dose_core.py --benchmark-enable --benchmark-columns=min,median,max
Sparse products and bandwidth only: add -k "matvec or stream" (their GB/s and ratios are printed).
"""

import numpy as np
import pytest
from numba import njit, prange

from kernels.sparse_dose_cpu import dose_from_weights, gradient_to_weights, transposed_copy
from planner.radiotherapy.beams import make_beams, posterior_fan_angles
from planner.radiotherapy.influence import build_influence, final_dose
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


def test_influence_matrix_peer_problem(benchmark):
    """The peer benchmark's influence stage without the peer: its phantom and rows
    (``benchmarks/peer_pyradplan.py``), nine beams of ``plan_scene``'s arrangement on the PTV
    centroid, 5 mm beamlets, ``kept_energy=0.995``."""
    from benchmarks.peer_pyradplan import _plan_rows, _scene
    from planner.radiotherapy.beams import arrangement_angles
    from planner.radiotherapy.scene_plan import _settings

    def problem(spacing_mm):
        scene = _scene(spacing_mm)
        points = scene.grid.index_to_mm(np.argwhere(scene.structure("ptv").full() > 0.5))
        beams = make_beams(points, gantry_deg=arrangement_angles(_settings()["arrangement"]), beamlet_mm=5.0,
                           isocentre_mm=tuple(points.mean(axis=0)))
        return scene, beams, _plan_rows(scene)

    scene, beams, rows = problem(10.0)
    build_influence(scene, beams, roi=rows, kept_energy=0.995)  # numba and the tables, as the peer script warms up
    scene, beams, rows = problem(2.5)
    influence = benchmark.pedantic(build_influence, args=(scene, beams), kwargs=dict(roi=rows, kept_energy=0.995),
                                   rounds=7, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(voxels=influence.matrix.shape[0], beamlets=influence.matrix.shape[1],
                                nnz=influence.matrix.nnz)


def test_superposition_final_dose(benchmark, case):
    name, scene, beams, _ = case
    final_dose(scene, beams, np.ones(beams.n_beamlets))  # warm
    dose = benchmark.pedantic(final_dose, args=(scene, beams, np.ones(beams.n_beamlets)), rounds=1, iterations=1)
    benchmark.extra_info["voxels"] = int(np.prod(scene.grid.shape))
    assert np.isfinite(dose).all()


# Memory bandwidth of this machine, measured in the same run as the sparse products.
# triad (STREAM convention): a[i] = b[i] + s c[i] on three 80 MB float64 arrays (each ~5x the
#   16 MiB L3, STREAM's rule is >= 4x), counted as 24 bytes per element (the write-allocate read
#   of ``a`` is not counted, as in STREAM).
# read: sum of one 80 MB array, 8 bytes per element: the fairer reference for the products,
#   which read 8 bytes per entry and write almost nothing. fastmath here only lets LLVM
#   vectorise the reference sum (it is not a kernel; kernels take options from kernels/_numba.py).
# The acceptance target (>= 50% of stream) is judged against the triad figure. Arrays this size
# take 1-6 ms per pass, like the products, so on shared cores the best of many passes of each
# is taken under comparable conditions (a 400 MB pass rarely sees a quiet 80 ms).
STREAM_N = 10_000_000


@njit(parallel=True, cache=True)
def _triad(a, b, c, scalar):
    for i in prange(a.shape[0]):
        a[i] = b[i] + scalar * c[i]


@njit(parallel=True, cache=True, fastmath=True)
def _read(a):
    total = 0.0
    for i in prange(a.shape[0]):
        total += a[i]
    return total


def _best_seconds(run, repeats):
    import time

    run()
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def stream_bandwidth_gb_s(repeats=300):
    """{'triad': GB/s, 'read': GB/s}: bytes counted / best time of ``repeats`` (~2 s in all)."""
    n = STREAM_N
    a, b, c = np.empty(n), np.ones(n), np.ones(n)
    triad = 24 * n / _best_seconds(lambda: _triad(a, b, c, 2.0), repeats) / 1e9
    read = 8 * n / _best_seconds(lambda: _read(b), repeats) / 1e9
    return dict(triad=triad, read=read)


_REPORT = []


@pytest.fixture(scope="module")
def stream(request):
    """Bandwidth measured before the products (and by test_stream_bandwidth, which raises it
    to its best); at the end of the module it is measured again and every product's GB/s and
    ratios are printed against the best of all measurements: the cores and the memory bus are
    shared, so a low bandwidth figure would flatter the products."""
    before = stream_bandwidth_gb_s()
    best = dict(before)
    yield best
    after = stream_bandwidth_gb_s()
    for key in best:
        best[key] = max(best[key], after[key])
    lines = [f"stream bandwidth (GB/s): triad {before['triad']:.1f} / {after['triad']:.1f}, "
             f"read {before['read']:.1f} / {after['read']:.1f} (before / after the products); ratios below use "
             f"the best of all measurements (triad {best['triad']:.1f}, read {best['read']:.1f})"]
    scipy_ms = {(n, kind): ms for n, kind, engine, ms, _ in _REPORT if engine == "scipy"}
    for name, kind, engine, ms, gb_s in _REPORT:
        line = (f"{kind:8s} {name:7s} {engine:6s} {ms:7.2f} ms {gb_s:5.1f} GB/s  "
                f"{gb_s / best['triad']:.2f} of triad  {gb_s / best['read']:.2f} of read")
        if engine != "scipy" and (name, kind) in scipy_ms:
            line += f"  {scipy_ms[name, kind] / ms:.1f}x scipy"
        lines.append(line)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and _REPORT:
        with capture.global_and_fixture_disabled():  # print past pytest's output capture
            reporter.write_line("")
            for line in lines:
                reporter.write_line(line)
    _REPORT.clear()


@pytest.mark.parametrize("kind", ["triad", "read"])
def test_stream_bandwidth(benchmark, stream, kind):
    n = STREAM_N
    if kind == "triad":
        a, b, c = np.empty(n), np.ones(n), np.ones(n)
        run, nbytes = (lambda: _triad(a, b, c, 2.0)), 24 * n
    else:
        b = np.ones(n)
        run, nbytes = (lambda: _read(b)), 8 * n
    run()
    benchmark.pedantic(run, rounds=300, iterations=1, warmup_rounds=3)
    benchmark.extra_info["gb_s"] = nbytes / benchmark.stats.stats.min / 1e9
    stream[kind] = max(stream[kind], benchmark.extra_info["gb_s"])


def _bytes(matrix):
    """Bytes a product must move: 4 (float32 value) + 4 (int32 index) per entry, and per row
    8 (int64 indptr) + 8 (float64 output or gradient); the beamlet vector (a few KiB) is cached."""
    return matrix.nnz * 8 + matrix.shape[0] * (matrix.indptr.itemsize + 8)


def _record(benchmark, name, kind, engine, matrix, stream):
    seconds = benchmark.stats.stats.min
    gb_s = _bytes(matrix) / seconds / 1e9
    benchmark.extra_info.update(gb_s=gb_s, stream_triad_gb_s=stream["triad"], stream_read_gb_s=stream["read"],
                                fraction_of_triad=gb_s / stream["triad"], fraction_of_read=gb_s / stream["read"])
    _REPORT.append((name, kind, engine, seconds * 1e3, gb_s))


def _rounds(run, seconds=2.0):
    """Enough rounds for ~``seconds`` of timing (at least 300): on shared cores the minimum
    needs many tries to find a quiet slice."""
    import time

    start = time.perf_counter()
    run()
    return max(300, int(seconds / max(time.perf_counter() - start, 1e-6)))


@pytest.mark.parametrize("engine", ["numba", "scipy"])
def test_matvec(benchmark, case, stream, engine):
    name, scene, beams, influence = case
    matrix = influence.matrix
    w = np.random.default_rng(1).uniform(0, 1, matrix.shape[1])
    run = (lambda: dose_from_weights(matrix, w)) if engine == "numba" else (lambda: matrix @ w)
    run()
    benchmark.pedantic(run, rounds=_rounds(run), iterations=1, warmup_rounds=5)
    _record(benchmark, name, "A @ w", engine, matrix, stream)


@pytest.mark.parametrize("engine", ["numba", "numba-T", "scipy"])
def test_rmatvec(benchmark, case, stream, engine):
    """numba-T: the row product of a CSR copy of A.T (``transposed_copy``, as much memory again)."""
    name, scene, beams, influence = case
    matrix = influence.matrix
    g = np.random.default_rng(2).normal(size=matrix.shape[0])
    if engine == "numba":
        run = lambda: gradient_to_weights(matrix, g)  # noqa: E731
    elif engine == "numba-T":
        transposed = transposed_copy(matrix)
        run = lambda: gradient_to_weights(matrix, g, transposed=transposed)  # noqa: E731
        benchmark.extra_info["extra_mib"] = (transposed.data.nbytes + transposed.indices.nbytes
                                             + transposed.indptr.nbytes) / 2**20
    else:
        run = lambda: matrix.T @ g  # noqa: E731
    run()
    benchmark.pedantic(run, rounds=_rounds(run), iterations=1, warmup_rounds=5)
    _record(benchmark, name, "A.T @ g", engine, matrix, stream)
