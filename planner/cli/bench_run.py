"""The measurements behind ``spinesim bench``: the reference spine case on each backend.

Reference case (as in benchmarks/README.md): the T10 teaching case (24 Gy / 2 fractions,
HyTEC limits). Figures, each the best (and median) of ``repeats`` rounds after a warm-up, so
JIT compilation (numba's CPU cache load, the CUDA twins' first compile) and the beamlet table
never enter a timing:

- ``influence_build``: the dose-core matrix (body within 30 mm of the GTV's box, 9 posterior-
  oblique beams, 5 mm beamlets), as benchmarks/test_dose_core.py;
- ``optimisation``: L-BFGS-B to convergence on the planning problem (the plan's region, its
  terms), as benchmarks/test_planning.py;
- ``final_dose``: collapsed-cone superposition of the optimised weights (every beam);
- ``slider``: one prescription-slider move of the interactive session (warm start, a few
  iterations on the cached matrix), as benchmarks/test_session.py;
- ``matvec`` / ``rmatvec`` / ``rmatvec_transposed``: the sparse products on the dose-core
  matrix, with bytes moved (8 per entry + 16 per row) over the time and over this machine's
  measured stream bandwidth (triad, STREAM's 24 bytes per element; read-only sum, 8).

GPU timings synchronise the device before the clock stops. Nothing here asserts a speed.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from datetime import datetime, timezone
from importlib import metadata

import numpy as np

__all__ = ["host_facts", "run_bench", "agreement", "GRIDS_MM", "CASE", "REGIMEN"]

#: --grid value -> voxel spacing (z, y, x) mm: the two grids of benchmarks/README.md.
GRIDS_MM = {2.5: (2.5, 2.5, 2.5), 1.25: (2.5, 1.25, 1.25)}
CASE = "t10_rcc_escc2"
REGIMEN = (24.0, 2)
STREAM_ELEMENTS = 10_000_000  # 80 MB per float64 array: ~5x a 16 MiB L3 (STREAM asks >= 4x)
GPU_STREAM_ELEMENTS = 64_000_000  # 512 MB per array: far beyond any GPU's L2


def _versions() -> dict:
    out = {}
    for name in ("spinesim", "numpy", "scipy", "numba", "numba-cuda", "cuda-bindings", "threadpoolctl"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    out["python"] = platform.python_version()
    return out


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes():
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def host_facts() -> dict:
    """CPU model, cores, memory, load, GPU (name, driver, memory) and library versions."""
    import numba

    from kernels._dispatch import cuda_host_facts

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return dict(cpu_model=_cpu_model(), cpu_cores=cores, numba_threads=int(numba.get_num_threads()),
                memory_bytes=_memory_bytes(), platform=platform.platform(),
                load_average=list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
                gpu=cuda_host_facts() or None, versions=_versions(),
                date_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def _timed(run, repeats: int, synchronise) -> dict:
    seconds = []
    for _ in range(repeats):
        synchronise()
        start = time.perf_counter()
        run()
        synchronise()
        seconds.append(time.perf_counter() - start)
    return dict(best_s=min(seconds), median_s=statistics.median(seconds), p95_s=float(np.percentile(seconds, 95)),
                rounds=len(seconds))


def _cpu_stream(repeats: int) -> dict:
    from numba import njit, prange

    @njit(parallel=True)
    def triad(a, b, c, scalar):
        for i in prange(a.shape[0]):
            a[i] = b[i] + scalar * c[i]

    @njit(parallel=True, fastmath=True)  # fastmath only lets LLVM vectorise this reference sum
    def read(a):
        total = 0.0
        for i in prange(a.shape[0]):
            total += a[i]
        return total

    n = STREAM_ELEMENTS
    a, b, c = np.empty(n), np.ones(n), np.ones(n)
    triad(a, b, c, 2.0)
    read(b)
    best_triad = _timed(lambda: triad(a, b, c, 2.0), repeats, lambda: None)["best_s"]
    best_read = _timed(lambda: read(b), repeats, lambda: None)["best_s"]
    return dict(triad_gb_s=24 * n / best_triad / 1e9, read_gb_s=8 * n / best_read / 1e9)


def _gpu_stream(repeats: int) -> dict:
    from numba import cuda

    from kernels.sparse_dose_cuda import stream_triad_kernel as triad

    n = GPU_STREAM_ELEMENTS
    a, b, c = cuda.device_array(n), cuda.to_device(np.ones(n)), cuda.to_device(np.ones(n))
    blocks = getattr(cuda.get_current_device(), "MULTIPROCESSOR_COUNT", 1) * 8  # the simulator has no count
    triad[blocks, 256](a, b, c, 2.0)
    cuda.synchronize()
    best = _timed(lambda: triad[blocks, 256](a, b, c, 2.0), repeats, cuda.synchronize)["best_s"]
    out = dict(triad_gb_s=24 * n / best / 1e9)
    device = cuda.get_current_device()
    try:  # theoretical peak: DDR/HBM transfers twice per memory clock over the bus width
        out["peak_gb_s"] = 2 * device.MEMORY_CLOCK_RATE * 1e3 * device.GLOBAL_MEMORY_BUS_WIDTH / 8 / 1e9
    except Exception:  # attribute not exposed by this numba-cuda: the measured triad stands alone
        out["peak_gb_s"] = None
    return out


def _reference_problem(grid_mm, n_beams: int):
    from planner.radiotherapy.beams import arrangement_angles, make_beams
    from planner.radiotherapy.constraints import constraints_for
    from planner.radiotherapy.case_objectives import _optimisation_region, hard_structures
    from planner.radiotherapy.plan import Regimen, add_targets
    from scenes.cases import build_scene

    constraints = constraints_for("hytec", REGIMEN[1])
    scene = add_targets(build_scene(CASE, spacing_mm=grid_mm), prv_of=hard_structures(constraints))
    gtv = scene.grid.index_to_mm(np.argwhere(scene.structure("gtv").full() > 0.5))
    ptv = scene.grid.index_to_mm(np.argwhere(scene.structure("ptv").full() > 0.5))
    angles = arrangement_angles("sbrt_fan", n_beams=n_beams)
    dose_core_beams = make_beams(gtv, gantry_deg=angles, beamlet_mm=5.0)
    plan_beams = make_beams(ptv, gantry_deg=angles, beamlet_mm=5.0)
    organs = tuple(sorted({c.structure for c in constraints if scene.has(c.structure)}))
    return dict(scene=scene, constraints=constraints, regimen=Regimen(*REGIMEN), dose_core_beams=dose_core_beams,
                plan_beams=plan_beams, plan_region=_optimisation_region(scene, organs=organs))


def _products(matrix, backend: str, repeats: int, synchronise, stream_gb_s: float) -> dict:
    from kernels.sparse_dose_cpu import transposed_copy

    rng = np.random.default_rng(0)
    weights, gradient = rng.uniform(0, 1, matrix.shape[1]), rng.normal(size=matrix.shape[0])
    transposed = transposed_copy(matrix)
    moved = 8 * matrix.nnz + 16 * matrix.shape[0]
    if backend == "cuda":
        from numba import cuda

        from kernels import sparse_dose_cuda as kernel

        a, t = kernel.device_csr(matrix), kernel.device_csr(transposed)
        w, g = cuda.to_device(weights), cuda.to_device(gradient)
        dose, back = cuda.device_array(matrix.shape[0]), cuda.device_array(matrix.shape[1])
        runs = dict(matvec=lambda: kernel.dose_from_weights(a, w, out=dose),
                    rmatvec=lambda: kernel.gradient_to_weights(a, g, out=back),
                    rmatvec_transposed=lambda: kernel.gradient_to_weights(a, g, transposed=t, out=back))
    else:
        from kernels import sparse_dose_cpu as kernel

        runs = dict(matvec=lambda: kernel.dose_from_weights(matrix, weights),
                    rmatvec=lambda: kernel.gradient_to_weights(matrix, gradient),
                    rmatvec_transposed=lambda: kernel.gradient_to_weights(matrix, gradient, transposed=transposed))
    out = {}
    for name, run in runs.items():
        run()  # warm (compile)
        figure = _timed(run, max(repeats, 50), synchronise)
        figure["gb_s"] = moved / figure["best_s"] / 1e9
        figure["fraction_of_stream"] = figure["gb_s"] / stream_gb_s
        figure["bytes_moved"] = moved
        out[name] = figure
    return out


def _warm_final_dose(backend: str, n_azimuth):
    """Compile the TERMA and cone kernels on a tiny grid of the real dtypes (kept out of timings)."""
    from kernels.beam_model import load_beam_model
    from kernels.engine import square_field, superposition_dose

    density = np.ones((4, 5, 4))
    fluence, origin, spacing = square_field(20.0, 5.0)
    geometry = (np.zeros(3), np.full(3, 5.0), np.array([0.0, -1000.0, 0.0]), np.array([0.0, 1.0, 0.0]),
                np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0]), fluence, origin, spacing, load_beam_model())
    superposition_dose(density, density, *geometry, n_azimuth=n_azimuth, backend=backend)
    if backend == "cpu":  # final_dose's CPU path: each beam on its irradiated region (array slices compile apart)
        from kernels.irradiated_region import superposition_dose_in_region

        superposition_dose_in_region(density, density, *geometry, n_azimuth=n_azimuth)


def agreement(cpu, gpu) -> dict:
    """How far the GPU's results are from the CPU's: influence matrix (entries, largest
    difference over the largest entry), optimisation (objective's relative difference) and
    final dose of the same weights (largest difference over the largest dose), each with the tolerance the twin
    tests hold and whether it is met."""
    matrix_cpu, result_cpu, dose_cpu = cpu
    matrix_gpu, result_gpu, dose_gpu = gpu
    scale = float(abs(matrix_cpu).max())
    matrix_diff = float(abs(matrix_cpu - matrix_gpu).max()) / scale if matrix_cpu.shape == matrix_gpu.shape else float("inf")
    dose_diff = float(np.max(np.abs(dose_cpu - dose_gpu)) / np.max(np.abs(dose_cpu)))
    objective_diff = abs(result_cpu.objective - result_gpu.objective) / max(abs(result_cpu.objective), 1e-300)
    # Tolerances: the cut-off (1e-3 of the kernel maximum) bounds an entry one twin keeps and the
    # other drops; the dose is float64 on both; L-BFGS-B paths may part after many iterations.
    checks = dict(influence_nnz=[int(matrix_cpu.nnz), int(matrix_gpu.nnz)], influence_max_difference=matrix_diff,
                  influence_ok=matrix_diff <= 1.001e-3, final_dose_max_difference=dose_diff,
                  final_dose_ok=dose_diff <= 1e-9, optimisation_objective_difference=objective_diff,
                  optimisation_ok=objective_diff <= 1e-3)
    checks["all_ok"] = bool(checks["influence_ok"] and checks["final_dose_ok"] and checks["optimisation_ok"])
    return checks


def run_bench(*, backends=("cpu",), grid_mm: float = 2.5, n_beams: int = 9, n_azimuth=None, repeats: int = 3,
              slider_moves: int = 12, final_dose_rounds: int = 1, progress=None) -> dict:
    """Run the reference case on each backend; returns the JSON-ready result (host facts included)."""
    from planner.common.safety import DISCLAIMER
    from planner.radiotherapy.influence import build_influence, final_dose, planning_kept_energy
    from planner.radiotherapy.optimise import optimise
    from planner.radiotherapy.case_objectives import _make_terms, _point_limits, _term_rows
    from planner.radiotherapy.session import Session

    say = progress or (lambda message: None)
    say("host facts")
    result = dict(spinesim_bench=1, disclaimer=DISCLAIMER, host=host_facts(),
                  settings=dict(case=CASE, regimen_gy=REGIMEN[0], fractions=REGIMEN[1], grid_mm=list(GRIDS_MM[grid_mm]),
                                grid=grid_mm, beams=n_beams, n_azimuth=n_azimuth, repeats=repeats,
                                slider_moves=slider_moves, backends=list(backends)),
                  results={})
    say("scene and beams of the reference case")
    problem = _reference_problem(GRIDS_MM[grid_mm], n_beams)
    scene = problem["scene"]
    kept = {}  # backend -> (dose-core matrix, optimisation result, final dose): the twins' agreement
    for backend in backends:
        figures = {}
        if backend == "cuda":
            from numba import cuda

            synchronise = cuda.synchronize
            say("stream bandwidth (GPU triad)")
            figures["stream"] = _gpu_stream(max(repeats, 20))
        else:
            def synchronise():
                return None

            say("stream bandwidth (CPU triad and read)")
            figures["stream"] = _cpu_stream(max(repeats, 20))
        stream = figures["stream"]["triad_gb_s"]
        say(f"{backend}: influence build")
        influence = build_influence(scene, problem["dose_core_beams"], backend=backend)  # warm: JIT, beamlet table
        figures["influence_build"] = _timed(lambda: build_influence(scene, problem["dose_core_beams"], backend=backend),
                                            repeats, synchronise)
        figures["influence_build"].update(rows=int(influence.matrix.shape[0]), beamlets=int(influence.matrix.shape[1]),
                                          nnz=int(influence.matrix.nnz))
        say(f"{backend}: sparse products")
        figures.update(_products(influence.matrix, backend, repeats, synchronise, stream))
        say(f"{backend}: optimisation to convergence")
        plan = build_influence(scene, problem["plan_beams"], target="ptv", roi=problem["plan_region"], backend=backend,
                               kept_energy=planning_kept_energy())  # the planners' matrix
        terms = _make_terms(_term_rows(plan, scene, _point_limits(problem["constraints"])), problem["regimen"])
        optimise(plan.matrix, terms, max_iterations=3, backend=backend)  # warm
        outcome = {}

        def converge():
            outcome["result"] = optimise(plan.matrix, terms, backend=backend)

        figures["optimisation"] = _timed(converge, repeats, synchronise)
        figures["optimisation"].update(iterations=outcome["result"].iterations, objective=outcome["result"].objective,
                                       rows=int(plan.matrix.shape[0]), nnz=int(plan.matrix.nnz))
        say(f"{backend}: final superposition dose")
        _warm_final_dose(backend, n_azimuth)
        weights = outcome["result"].weights
        dose = {}

        def superpose():
            dose["gy"] = final_dose(scene, problem["plan_beams"], weights, backend=backend, n_azimuth=n_azimuth)

        figures["final_dose"] = _timed(superpose, final_dose_rounds, synchronise)
        figures["final_dose"].update(voxels=int(np.prod(scene.grid.shape)), max_gy=float(dose["gy"].max()))
        say(f"{backend}: slider session")
        session = Session(CASE, regimen=problem["regimen"], grid_mm=GRIDS_MM[grid_mm], backend=backend)
        values = np.resize([22.0, 26.0, 28.0, 25.0, 27.0, 24.0], slider_moves + 1)
        session.set_prescription(float(values[-1]))  # warm
        moves = iter(values[:-1])
        slider = _timed(lambda: session.set_prescription(float(next(moves))), slider_moves, synchronise)
        figures["slider"] = slider
        result["results"][backend] = figures
        kept[backend] = (influence.matrix, outcome["result"], dose["gy"])
    if {"cpu", "cuda"} <= set(kept):
        say("GPU against CPU twins")
        matrix, outcome, _ = kept["cuda"]
        # The final doses are compared on the same (the CPU's) weights: the optimisers' paths may part.
        same_weights = final_dose(scene, problem["plan_beams"], kept["cpu"][1].weights, backend="cuda",
                                  n_azimuth=n_azimuth)
        result["checks"] = agreement(kept["cpu"], (matrix, outcome, same_weights))
    result["host"]["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return result
