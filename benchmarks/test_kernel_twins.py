"""CPU and CUDA twins of every dose kernel, one pytest-benchmark group per kernel, on the
reference spine case (T10, 2.5 mm grid, 9 posterior-oblique beams, 5 mm beamlets, dose region
= body within 30 mm of the GTV's box). CUDA rows are skipped, with the reason, on a host
without an NVIDIA GPU. Inputs of the CUDA rows are uploaded once (transfers are not timed);
every CUDA timing ends with a device synchronisation. JIT compilation is warmed up first.

Run: python -m pytest benchmarks/test_kernel_twins.py --benchmark-enable --benchmark-group-by=group \
         --benchmark-columns=min,median,max
"""

import numpy as np
import pytest

from kernels._dispatch import cuda_available, twin
from kernels.beam_model import load_beam_model
from kernels.engine import blurred_fluence
from planner.radiotherapy.beams import make_beams, posterior_fan_angles
from planner.radiotherapy.influence import (_beam_geometry, _kernel_facts, _narrow_facts, build_influence,
                                          dose_region, fluence_per_unit_weight, lateral_scaling)
from scenes.cases import build_scene

# numba-cuda warns when a launch has few blocks (some cone directions have few lines); its
# warning class is not numba.core's, which the project's filterwarnings ignores.
pytestmark = pytest.mark.filterwarnings("ignore:Grid size")

BACKENDS = [pytest.param("cpu"),
            pytest.param("cuda", marks=pytest.mark.skipif(not cuda_available(),
                                                          reason="no NVIDIA GPU (numba-cuda sees none) on this host"))]


@pytest.fixture(scope="module")
def case():
    scene = build_scene("t10_rcc_escc2", spacing_mm=(2.5, 2.5, 2.5))
    points = scene.grid.index_to_mm(np.argwhere(scene.structure("gtv").full() > 0.5))
    beams = make_beams(points, gantry_deg=posterior_fan_angles(9), beamlet_mm=5.0)
    influence = build_influence(scene, beams, report=lambda s: None)  # warms the beamlet table
    return scene, beams, influence, dose_region(scene, "gtv")


def _device(backend):
    """(upload, synchronise) for the backend: identity and no-op on the CPU."""
    if backend == "cuda":
        from numba import cuda

        return cuda.to_device, cuda.synchronize
    return (lambda array: array), (lambda: None)


def _run(benchmark, run, synchronise, rounds=5):
    def timed():
        run()
        synchronise()

    timed()  # warm-up: compilation out of the timing
    benchmark.pedantic(timed, rounds=rounds, iterations=1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_raytrace(benchmark, case, backend):
    benchmark.group = "raytrace: source to every dose-region voxel, one beam"
    scene, beams, _, voxels = case
    up, sync = _device(backend)
    grid = scene.grid
    args = [up(np.ascontiguousarray(scene.electron_density, np.float64)), up(np.asarray(grid.origin_mm, float)),
            up(np.asarray(grid.spacing_mm, float)), up(np.asarray(beams.beams[0].source_mm, float)), up(voxels),
            up(np.empty(len(voxels)))]
    _run(benchmark, lambda: twin("raytrace", backend).path_integrals_to_voxels(*args), sync)


@pytest.mark.parametrize("backend", BACKENDS)
def test_terma(benchmark, case, backend):
    benchmark.group = "terma: one beam on the whole grid, 27 sub-points per voxel"
    scene, beams, _, _ = case
    up, sync = _device(backend)
    model, beam, grid = load_beam_model(), beams.beams[0], scene.grid
    fluence, origin, spacing = beam.fluence_map(np.ones(beam.n_beamlets))
    axis, u, v = beam.frame
    host = [np.ascontiguousarray(scene.electron_density, np.float64), np.asarray(grid.origin_mm, float),
            np.asarray(grid.spacing_mm, float), np.asarray(beam.source_mm, float), np.asarray(axis, float),
            np.asarray(u, float), np.asarray(v, float)]
    rest = [np.ascontiguousarray(blurred_fluence(fluence, spacing, model)), np.asarray(origin, float),
            np.asarray(spacing, float), model.energies_mev, model.photon_fractions, model.mu_water_cm2_g]
    args = [up(a) for a in host] + [float(model.source_axis_distance_mm)] + [up(np.ascontiguousarray(a)) for a in rest]
    out = up(np.zeros(scene.grid.shape))
    _run(benchmark, lambda: twin("terma", backend).terma(*args, 3, out), sync)


@pytest.mark.parametrize("backend", BACKENDS)
def test_pencil_beam_count(benchmark, case, backend):
    benchmark.group = "pencil_beam: entry count of every dose-region voxel, one beam"
    scene, beams, influence, voxels = case
    from kernels.pencil_kernel import beamlet_table

    up, sync = _device(backend)
    beam = beams.beams[0]
    a, b, depth, inverse_square = _beam_geometry(scene, beam, voxels)
    eta = lateral_scaling(scene, beam, voxels)
    grid_index, origin = beam.beamlet_grid()
    table = beamlet_table(beam.beamlet_mm)
    _, _, kernel, envelope = _kernel_facts(table, None, influence.cutoff)
    cumulative, narrow_envelope = _narrow_facts(table)
    fluence = fluence_per_unit_weight()
    cutoff = influence.cutoff * table.table.max() * fluence
    args = (up(a), up(b), up(depth * 1.0), up(inverse_square * fluence), up(eta), up(grid_index),
            up(np.asarray(origin, float)), float(beam.beamlet_mm), up(kernel), up(envelope), up(cumulative),
            up(narrow_envelope), table.depth_step_mm, table.lateral_step_mm, cutoff, up(np.zeros(len(voxels), np.int64)))
    _run(benchmark, lambda: twin("pencil_beam", backend).count_entries(*args), sync)


@pytest.mark.parametrize("backend", BACKENDS)
def test_superposition(benchmark, case, backend):
    benchmark.group = "superposition: collapsed-cone transport of one beam, every cone direction"
    scene, beams, _, _ = case
    up, sync = _device(backend)
    model = load_beam_model()
    directions, amplitudes, rates = model.directions(beams.beams[0].frame[0])
    rng = np.random.default_rng(0)
    released = up(rng.uniform(0, 1, scene.grid.shape))
    eta = up(np.ascontiguousarray(scene.electron_density, np.float64))
    out = up(np.zeros(scene.grid.shape))
    kernel = twin("superposition", backend).collapsed_cone
    _run(benchmark, lambda: kernel(released, eta, np.asarray(scene.grid.spacing_mm, float), directions, amplitudes,
                                   rates, out), sync, rounds=3)


@pytest.mark.parametrize("product", ["matvec", "rmatvec", "rmatvec_transposed"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_sparse_dose(benchmark, case, backend, product):
    benchmark.group = f"sparse_dose: {product} on the dose-core matrix"
    _, _, influence, _ = case
    from kernels.sparse_dose_cpu import transposed_copy

    matrix, transposed = influence.matrix, transposed_copy(influence.matrix)
    rng = np.random.default_rng(0)
    weights, gradient = rng.uniform(0, 1, matrix.shape[1]), rng.normal(size=matrix.shape[0])
    up, sync = _device(backend)
    kernel = twin("sparse_dose", backend)
    if backend == "cuda":
        matrix, transposed = kernel.device_csr(matrix), kernel.device_csr(transposed)
        dose, back = up(np.empty(matrix.shape[0])), up(np.empty(matrix.shape[1]))
        runs = dict(matvec=lambda: kernel.dose_from_weights(matrix, up(weights), out=dose),
                    rmatvec=lambda: kernel.gradient_to_weights(matrix, up(gradient), out=back),
                    rmatvec_transposed=lambda: kernel.gradient_to_weights(matrix, up(gradient), transposed=transposed,
                                                                          out=back))
    else:
        runs = dict(matvec=lambda: kernel.dose_from_weights(matrix, weights),
                    rmatvec=lambda: kernel.gradient_to_weights(matrix, gradient),
                    rmatvec_transposed=lambda: kernel.gradient_to_weights(matrix, gradient, transposed=transposed))
    _run(benchmark, runs[product], sync, rounds=50)
    moved = 8 * influence.matrix.nnz + 16 * influence.matrix.shape[0]
    benchmark.extra_info["bytes_moved"] = moved
    if benchmark.stats:  # None when pytest-benchmark is disabled (a plain test run)
        benchmark.extra_info["gb_s_best"] = moved / benchmark.stats.stats.min / 1e9
