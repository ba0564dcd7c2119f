"""Peer benchmark: spinesim against pyRadPlan on the same synthetic spine phantom.

Both tools plan one problem, side by side in one run:

- the phantom: spinesim's T10 renal-cell ESCC 2 teaching case at 2.5 mm (``build_scene`` +
  ``add_targets``); pyRadPlan gets the same voxels as a CT whose HU give back spinesim's
  relative electron density through pyRadPlan's own default HU look-up table, and the PTV
  and the cord as masks of every voxel they occupy at all (the voxels of spinesim's objective
  terms, which weight them by occupancy), the body outline of voxels more than half inside;
- the beams: the nine posterior-fan gantry angles of ``plan_scene``, one isocentre (the PTV's
  centroid), 5 mm beamlets. pyRadPlan places its beamlets (``generate_stf``) and spinesim
  plans on exactly those (each beam's beamlet grid is handed over; spinesim's grid is offset
  by half a beamlet, so each spinesim beam's isocentre moves by half a beamlet across the
  field, which tilts its rays by < 0.2 deg);
- the dose voxels: the rows ``plan_scene`` builds (planned structures, and around the PTV
  inside the body every voxel within 10 mm and one in eight further out), handed to
  pyRadPlan's engine as ``voxel_sub_ix`` (with ``ignore_outside_densities=False``: its default
  would zero the density outside those voxels);
- the objectives: ``plan_scene``'s defaults (PTV squared deviation from 24 Gy priority 1,
  PTV underdose below 24 Gy priority 10, cord overdose above 13.3 Gy priority 100), the same
  mean-squared form in both tools, optimised by L-BFGS-B in both (pyRadPlan's ``scipy``
  solver, 300 iterations at most, as ``plan_scene``).

Each tool runs in its own process. Peak memory is the process's maximum resident set
(``ru_maxrss``; tracemalloc misses numba's and numpy's C allocations): the plan's, read by the
worker itself when its plan is done (``RUSAGE_SELF``), and the whole process's, read by its
parent (``RUSAGE_CHILDREN``), which adds each worker's extra (pyRadPlan's forward dose,
spinesim's recomputation of the peer's weights). Each warms up first on the same case at 10 mm
(numba compilation, spinesim's beamlet table) so no stage timing includes a compilation;
spinesim's warm-up also runs once in a process of its own before the measured one, so that
its disk caches are written and the measured peak is the plan's, not the compiler's (a user's
second run; LLVM adds about 175 MiB while it compiles). spinesim's stage results are released
before its whole plan.

Stages timed: influence (pyRadPlan: ``generate_stf`` + ``calc_dose_influence``; spinesim:
``build_influence(kept_energy=0.995)``), optimisation, final dose (pyRadPlan: its matrix
times the weights, ``compute_result_ct_grid``; spinesim: the collapsed-cone superposition,
a second engine), and the whole plan (pyRadPlan: the three stages; spinesim: one
``plan_scene`` call, which adds the dose-correction loop and normalisation).

Plan quality: PTV D95% and cord Dmax of each tool's final dose, and of spinesim's
superposition dose recomputed for pyRadPlan's weights, all measured by the same function
(``planner.radiotherapy.metrics``) on spinesim's structure occupancies; also normalised to
PTV D95% = 24 Gy so the tools' different dose calibrations drop out.

Run (pyRadPlan must be importable; it pins numpy 2.3, so it lives in its own environment)::

    /work/peer-venv/bin/python benchmarks/peer_pyradplan.py [--spacing 2.5] [--json OUT]

Without pyRadPlan the script prints why it skipped and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CASE = "t10_rcc_escc2"
PRESCRIPTION_GY = 24.0
FRACTIONS = 2
CORD_LIMIT_GY = 14.0
BEAMLET_MM = 5.0
MAX_ITERATIONS = 300
WARM_SPACING_MM = 10.0


def peer_missing_reason() -> str | None:
    """Why the peer benchmark cannot run here, or None when pyRadPlan is importable."""
    import warnings

    try:
        with warnings.catch_warnings():  # its dependencies warn at import (numpydantic deprecations)
            warnings.simplefilter("ignore")
            import pyRadPlan  # noqa: F401
    except Exception as error:  # ImportError, or a broken install (pydantic >= 2.14 fails at import)
        return (f"pyRadPlan is not importable ({type(error).__name__}: {error}); install it in its own environment: "
                "python -m venv /work/peer-venv && /work/peer-venv/bin/pip install 'pyRadPlan' 'pydantic<2.14' "
                "&& /work/peer-venv/bin/pip install -e . (pyRadPlan pins numpy 2.3)")
    return None


# ---------------------------------------------------------------- phantom (spinesim only)

def _scene(spacing_mm: float):
    from planner.radiotherapy.plan import add_targets
    from scenes.cases import build_scene

    return add_targets(build_scene(CASE, spacing_mm=(spacing_mm,) * 3))


def _plan_rows(scene, target: str = "ptv", organs=("spinal_cord",), body: str = "body_outline") -> np.ndarray:
    """The rows plan_scene builds (kept in step with planner/radiotherapy/scene_plan.py)."""
    from scipy import ndimage

    from planner.radiotherapy.influence import dose_region
    from planner.radiotherapy.scene_plan import _settings

    settings = _settings()
    region = np.zeros(scene.grid.shape, bool)
    for name in (target, *organs):
        region |= scene.structure(name).full() > 0
    around = np.zeros(scene.grid.size, bool)
    around[dose_region(scene, target, margin_mm=float(settings["margin_mm"]))] = True
    inside_body = scene.structure(body).full().ravel() > 0.5
    occupancy = scene.structure(target).full()
    near = ndimage.distance_transform_edt(occupancy <= 0.5, sampling=scene.grid.spacing_mm) <= settings["near_mm"]
    sampled = np.zeros(scene.grid.shape, bool)
    sampled[::2, ::2, ::2] = True
    return np.flatnonzero(region.ravel() | (around & inside_body & (near | sampled).ravel()))


def write_phantom(path: Path, spacing_mm: float) -> None:
    """The shared problem as plain arrays: electron density, masks, rows, isocentre, angles."""
    from planner.radiotherapy.beams import arrangement_angles
    from planner.radiotherapy.scene_plan import _settings

    scene = _scene(spacing_mm)
    ptv = scene.structure("ptv").full()
    np.savez(path, electron_density=np.asarray(scene.electron_density, np.float64),
             origin_mm=np.asarray(scene.grid.origin_mm), spacing_mm=np.asarray(scene.grid.spacing_mm),
             # Every voxel a structure occupies at all: the voxels of spinesim's objective terms.
             ptv=(ptv > 0).astype(np.uint8), spinal_cord=(scene.structure("spinal_cord").full() > 0).astype(np.uint8),
             body_outline=(scene.structure("body_outline").full() > 0.5).astype(np.uint8),
             rows=_plan_rows(scene), isocentre_mm=scene.grid.index_to_mm(np.argwhere(ptv > 0.5)).mean(axis=0),
             gantry_deg=np.asarray(arrangement_angles(_settings()["arrangement"]), float))


def _rss_mib() -> float:
    """This process's resident set now (MiB), from /proc (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# ---------------------------------------------------------------- pyRadPlan worker

def _pyradplan_plan(phantom: dict) -> dict:
    import SimpleITK as sitk
    from pyRadPlan import CT, PhotonPlan, StructureSet
    from pyRadPlan.ct import default_hlut
    from pyRadPlan.cst import create_voi
    from pyRadPlan.dose.engines import PhotonPencilBeamSVDEngine
    from pyRadPlan.optimization.objectives import SquaredDeviation, SquaredOverdosing, SquaredUnderdosing

    from planner.radiotherapy.scene_plan import default_objectives

    times = {}
    start = time.perf_counter()
    # HU that pyRadPlan's own look-up table maps back to spinesim's relative electron density.
    hlut = default_hlut()
    hlut = hlut[np.argsort(hlut[:, 1], kind="stable")]
    keep = np.concatenate([[True], np.diff(hlut[:, 1]) > 0])
    hu = np.interp(phantom["electron_density"], hlut[keep, 1], hlut[keep, 0])
    image = sitk.GetImageFromArray(hu.astype(np.float32), False)
    image.SetSpacing(tuple(float(s) for s in phantom["spacing_mm"][::-1]))
    image.SetOrigin(tuple(float(o) for o in phantom["origin_mm"][::-1]))
    ct = CT(cube_hu=image)
    objectives = {"ptv": [], "spinal_cord": []}
    kinds = {"squared_deviation": lambda o: SquaredDeviation(priority=o.priority, d_ref=o.dose_gy),
             "underdose": lambda o: SquaredUnderdosing(priority=o.priority, d_min=o.dose_gy),
             "overdose": lambda o: SquaredOverdosing(priority=o.priority, d_max=o.dose_gy)}
    for o in default_objectives("ptv", PRESCRIPTION_GY, {"spinal_cord": CORD_LIMIT_GY}):
        objectives[o.structure].append(kinds[o.kind](o))
    # plan_scene's overlap rule: the organ wins over the target (lower number = higher priority).
    vois = [create_voi(name="spinal_cord", voi_type="OAR", mask=phantom["spinal_cord"], ct_image=ct,
                       objectives=objectives["spinal_cord"], overlap_priority=0),
            create_voi(name="ptv", voi_type="TARGET", mask=phantom["ptv"], ct_image=ct, objectives=objectives["ptv"],
                       overlap_priority=1),
            create_voi(name="body_outline", voi_type="EXTERNAL", mask=phantom["body_outline"], ct_image=ct)]
    cst = StructureSet(vois=vois, ct_image=ct)
    x, y, z = phantom["isocentre_mm"][::-1]
    gantry = phantom["gantry_deg"]
    pln = PhotonPlan(machine="Generic", num_of_fractions=FRACTIONS, prescribed_dose=PRESCRIPTION_GY)
    pln.prop_stf = {"gantry_angles": list(gantry), "couch_angles": [0.0] * len(gantry), "bixel_width": BEAMLET_MM,
                    "iso_center": [float(x), float(y), float(z)]}
    pln.prop_opt = {"solver": "scipy", "max_iter": MAX_ITERATIONS}
    times["setup"] = time.perf_counter() - start

    # Outside the body the phantom is air already; pyRadPlan's default would zero the density of
    # every voxel outside the dose voxels (here a sample of the body), shortening the depths.
    stages = pyradplan_stages(ct, cst, pln, voxel_sub_ix=phantom["rows"])
    times.update(stages["times"])
    stf, dij, weights, info, result = (stages[k] for k in ("stf", "dij", "weights", "info", "result"))
    peak_plan_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # Not a stage of its plan (its final dose is the matrix's): its engine recomputing the dose
    # of the weights on every body voxel, the nearest thing it has to spinesim's final engine.
    start = time.perf_counter()
    forward = PhotonPencilBeamSVDEngine(pln)
    forward.console_progress = False
    forward.dose_grid = ct.grid
    forward.ignore_outside_densities = False
    forward.calc_dose_forward(ct, cst, stf, np.asarray(weights))
    times["forward_dose"] = time.perf_counter() - start

    dose, ray_uv_mm, rays_per_beam = pyradplan_dose_and_rays(stf, result)
    matrix = dij.physical_dose.flat[0]
    beamlets_per_ray = {len(r.beamlets) for b in stf.beams for r in b.rays}
    return {"times": times, "weights": np.asarray(weights, float), "dose_gy": dose,
            "ray_uv_mm": ray_uv_mm, "rays_per_beam": rays_per_beam,
            "beamlets_per_ray": sorted(beamlets_per_ray), "nnz": int(matrix.nnz), "n_beamlets": int(matrix.shape[1]),
            "sad_mm": float(stf.beams[0].sad), "iterations": int(info.get("num_iter", -1)),
            "peak_rss_plan_mib": peak_plan_mib}


def pyradplan_stages(ct, cst, pln, *, voxel_sub_ix=None) -> dict:
    """pyRadPlan's plan in timed stages: influence (``generate_stf`` + ``calc_dose_influence``
    of its SVD photon pencil beam on the CT grid), optimisation (``fluence_optimization``), final
    dose (its matrix times the weights). With ``voxel_sub_ix`` the matrix holds those voxels only
    and the densities outside them are kept. Returns ``times``, ``stf``, ``dij``, ``weights``,
    ``info`` (the solver's) and ``result``."""
    from pyRadPlan import fluence_optimization, generate_stf
    from pyRadPlan.dose.engines import PhotonPencilBeamSVDEngine

    times = {}
    start = time.perf_counter()
    stf = generate_stf(ct, cst, pln)
    engine = PhotonPencilBeamSVDEngine(pln)
    engine.console_progress = False  # no tqdm bars in the timing
    engine.dose_grid = ct.grid
    if voxel_sub_ix is not None:
        engine.ignore_outside_densities = False
        engine.voxel_sub_ix = np.asarray(voxel_sub_ix, np.int64)
    dij = engine.calc_dose_influence(ct, cst, stf)
    times["influence"] = time.perf_counter() - start
    start = time.perf_counter()
    info = {}
    weights = fluence_optimization(ct, cst, stf, dij, pln, opt_info=info)
    times["optimisation"] = time.perf_counter() - start
    start = time.perf_counter()
    result = dij.compute_result_ct_grid(weights)
    times["final_dose"] = time.perf_counter() - start
    times["whole_plan"] = times["influence"] + times["optimisation"] + times["final_dose"]
    return {"times": times, "stf": stf, "dij": dij, "weights": weights, "info": info, "result": result}


def pyradplan_dose_and_rays(stf, result):
    """pyRadPlan's dose (Gy, float64, (z, y, x)) and its beamlets' positions on the isocentre
    plane (u, v mm, all beams) with the number per beam, for spinesim's beams."""
    import SimpleITK as sitk

    dose = result["physical_dose"]
    dose = sitk.GetArrayFromImage(dose) if isinstance(dose, sitk.Image) else np.asarray(dose)
    uv = [np.array([[r.ray_pos_bev[0], r.ray_pos_bev[2]] for r in b.rays]) for b in stf.beams]
    return dose.astype(np.float64), np.concatenate(uv), np.array([len(u) for u in uv])


def run_pyradplan(workdir: Path) -> None:
    """Warm up at 10 mm, then plan the benchmark phantom; writes pyradplan.npz + .json."""
    import logging

    logging.disable(logging.WARNING)  # pyRadPlan logs its solver fallback and progress
    import pyRadPlan  # noqa: F401  (imports before the baseline resident set is read)

    baseline = _rss_mib()
    warm = _pyradplan_plan(dict(np.load(workdir / "warm.npz")))
    # spinesim warms up on the same beamlets.
    (workdir / "warm_rays.json").write_text(json.dumps({"uv": warm["ray_uv_mm"].tolist(),
                                                        "n": warm["rays_per_beam"].tolist()}))
    out = _pyradplan_plan(dict(np.load(workdir / "phantom.npz")))
    np.savez(workdir / "pyradplan.npz", weights=out["weights"], dose_gy=out["dose_gy"], ray_uv_mm=out["ray_uv_mm"],
             rays_per_beam=out["rays_per_beam"])
    meta = {k: v for k, v in out.items() if k not in ("weights", "dose_gy", "ray_uv_mm", "rays_per_beam")}
    meta["peak_rss_self_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    meta["rss_after_imports_mib"] = baseline
    (workdir / "pyradplan.json").write_text(json.dumps(meta))


# ---------------------------------------------------------------- spinesim worker

def _beams_from_rays(phantom: dict, ray_uv_mm: np.ndarray, rays_per_beam: np.ndarray):
    """spinesim beams on pyRadPlan's beamlets (centres at multiples of the width on the
    isocentre plane; spinesim's grid is offset by half a width, so each beam's isocentre moves
    by half a width along u and v and the beamlets keep their place)."""
    from kernels.beam_model import load_beam_model
    from planner.radiotherapy.beams import Beam, BeamSet, beam_frame

    sad = load_beam_model().source_axis_distance_mm
    iso = np.asarray(phantom["isocentre_mm"], float)
    half = BEAMLET_MM / 2
    beams, start = [], 0
    for gantry, n in zip(phantom["gantry_deg"], rays_per_beam):
        _, u, v = beam_frame(float(gantry))
        uv = ray_uv_mm[start:start + n] - half
        start += n
        beams.append(Beam(float(gantry), tuple(iso + half * u + half * v), sad, BEAMLET_MM, uv))
    return BeamSet(tuple(beams))


def _quality(scene, dose_gy: np.ndarray) -> dict:
    from planner.radiotherapy.metrics import metric, structure_dose

    voxel = scene.grid.voxel_volume_cc
    d95 = metric(structure_dose(dose_gy, scene.structure("ptv").full(), voxel), "D95%")
    cord = metric(structure_dose(dose_gy, scene.structure("spinal_cord").full(), voxel), "Dmax")
    scale = PRESCRIPTION_GY / d95 if d95 > 0 else float("nan")
    return {"ptv_d95_gy": float(d95), "cord_dmax_gy": float(cord), "cord_dmax_at_d95_rx_gy": float(cord * scale)}


def _spinesim_plan(scene, phantom: dict, beams) -> dict:
    from planner.radiotherapy.influence import build_influence, final_dose
    from planner.radiotherapy.objectives import Overdose, SquaredDeviation, Underdose
    from planner.radiotherapy.optimise import optimise
    from planner.radiotherapy.plan import Regimen
    from planner.radiotherapy.scene_plan import default_objectives, plan_scene, resolve_overlaps, structure_rows

    organs = {"spinal_cord": CORD_LIMIT_GY}
    times = {}
    start = time.perf_counter()
    influence = build_influence(scene, beams, roi=phantom["rows"], kept_energy=0.995)
    times["influence"] = time.perf_counter() - start

    kinds = {"squared_deviation": SquaredDeviation, "underdose": Underdose, "overdose": Overdose}
    occupancy = resolve_overlaps({n: scene.structure(n).full() for n in ("ptv", "spinal_cord")}, ["spinal_cord", "ptv"])
    terms = []
    for o in default_objectives("ptv", PRESCRIPTION_GY, organs):
        rows, weights = structure_rows(influence, occupancy[o.structure])
        terms.append(kinds[o.kind](rows=rows, weights=weights, dose_gy=o.dose_gy, priority=o.priority, label=o.structure))
    start = time.perf_counter()
    result = optimise(influence.matrix, terms, max_iterations=MAX_ITERATIONS)
    times["optimisation"] = time.perf_counter() - start

    start = time.perf_counter()
    dose = final_dose(scene, beams, result.weights)
    times["final_dose"] = time.perf_counter() - start
    # What the report needs of the stages, kept; the stages' matrix and dose released before the
    # whole plan, so that the plan's peak is its own (they held 52 MiB beside it).
    stages = {"nnz": int(influence.matrix.nnz), "n_rows": int(influence.matrix.shape[0]),
              "kept_energy": float(influence.kept_energy), "iterations": int(result.iterations),
              "quality": _quality(scene, dose)}
    del influence, result, dose, terms, occupancy

    steps = []
    start = time.perf_counter()
    plan = plan_scene(scene, target="ptv", prescription=Regimen(PRESCRIPTION_GY, FRACTIONS), organs_at_risk=organs,
                      beams=beams, max_iterations=MAX_ITERATIONS,
                      progress=lambda message: steps.append((time.perf_counter() - start, message)))
    times["whole_plan"] = time.perf_counter() - start
    # Where the whole plan's time goes: each step lasts until the next one's message.
    ends = [t for t, _ in steps[1:]] + [times["whole_plan"]]
    steps = [(message, end - t) for (t, message), end in zip(steps, ends)]
    return {"times": times, "stages": stages, "plan": plan, "steps": steps}


def prime_spinesim(workdir: Path) -> None:
    """The warm-up alone, in a process of its own before the measured one: numba's disk cache and
    the beamlet table's are written here, so the measured worker loads them (a user's second run)
    and its peak is the plan's, not the compiler's (LLVM adds about 175 MiB when it compiles)."""
    warm = dict(np.load(workdir / "warm.npz"))
    warm_rays = json.loads((workdir / "warm_rays.json").read_text())
    _spinesim_plan(_scene(WARM_SPACING_MM), warm, _beams_from_rays(warm, np.array(warm_rays["uv"]),
                                                                  np.array(warm_rays["n"])))


def run_spinesim(workdir: Path, spacing_mm: float) -> None:
    """Warm up at 10 mm, then plan the benchmark phantom on pyRadPlan's beamlets; compare."""
    from planner.radiotherapy.influence import final_dose

    import planner.radiotherapy.scene_plan  # noqa: F401  (imports before the baseline resident set is read)

    baseline = _rss_mib()
    peer = dict(np.load(workdir / "pyradplan.npz"))
    warm = dict(np.load(workdir / "warm.npz"))
    warm_rays = json.loads((workdir / "warm_rays.json").read_text())
    _spinesim_plan(_scene(WARM_SPACING_MM), warm, _beams_from_rays(warm, np.array(warm_rays["uv"]),
                                                                  np.array(warm_rays["n"])))
    phantom = dict(np.load(workdir / "phantom.npz"))
    scene = _scene(spacing_mm)
    if not np.array_equal(np.asarray(scene.electron_density, np.float64), phantom["electron_density"]):
        raise RuntimeError("the rebuilt phantom differs from the one handed to pyRadPlan")
    beams = _beams_from_rays(phantom, peer["ray_uv_mm"], peer["rays_per_beam"])
    out = _spinesim_plan(scene, phantom, beams)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the plan's peak (the warm-up's included)
    plan = out["plan"]
    # The peer's weights through spinesim's superposition (after the peak is read: a cross-check,
    # not a stage of the plan). The calibrations differ, so only normalised figures compare.
    start = time.perf_counter()
    recomputed = final_dose(scene, beams, peer["weights"])
    recompute_s = time.perf_counter() - start
    stages = out["stages"]
    meta = {"times": out["times"], "iterations": stages["iterations"], "peak_rss_plan_mib": peak_mib,
            "rss_after_imports_mib": baseline, "plan_steps": out["steps"],
            "nnz": stages["nnz"], "n_rows": stages["n_rows"],
            "n_beamlets": int(beams.n_beamlets), "kept_energy": stages["kept_energy"],
            "plan_rows": int(len(plan.influence.voxel_indices)),
            "plan_rows_match": bool(np.array_equal(plan.influence.voxel_indices, phantom["rows"])),
            "corrections": int(plan.corrections), "coverage_achieved": float(plan.coverage_achieved),
            "agreement": {k: {kk: float(vv) for kk, vv in v.items() if isinstance(vv, (int, float))}
                          for k, v in plan.agreement.items()},
            "recompute_peer_s": recompute_s,
            "quality": {"spinesim_plan": _quality(scene, plan.dose_gy),
                        "spinesim_optimiser_dose": _quality(scene, plan.optimiser_dose_gy),
                        "spinesim_stage_superposition": stages["quality"],
                        "pyradplan_own": _quality(scene, peer["dose_gy"]),
                        "pyradplan_weights_spinesim_superposition": _quality(scene, recomputed)}}
    (workdir / "spinesim.json").write_text(json.dumps(meta))


# ---------------------------------------------------------------- orchestration

def _child(args: list, env: dict, *, script: str = __file__) -> float:
    """Run one worker of ``script`` in a child process; its peak resident set (MiB) via RUSAGE_CHILDREN."""
    code = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
            "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)")
    done = subprocess.run([sys.executable, "-c", code, sys.executable, script, *args], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"worker {args[:2]} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    line = [s for s in done.stdout.splitlines() if s.startswith("PEAK_KIB")][-1]
    return int(line.split()[1]) / 1024


def run_benchmark(*, spacing_mm: float = 2.5, workdir: Path | None = None) -> dict:
    """Both tools on the same phantom; returns timings, ratios, peak memory and plan quality."""
    reason = peer_missing_reason()
    if reason:
        return {"skipped": reason}
    workdir = Path(workdir or tempfile.mkdtemp(prefix="peer-pyradplan-"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # A private numba cache: this environment's numpy differs from the project's.
    env.setdefault("NUMBA_CACHE_DIR", str(Path(tempfile.gettempdir()) / "spinesim-peer-numba-cache"))
    write_phantom(workdir / "phantom.npz", spacing_mm)
    write_phantom(workdir / "warm.npz", WARM_SPACING_MM)
    loads = {"start": os.getloadavg()[0]}
    rss = {"pyradplan": _child(["--worker", "pyradplan", "--workdir", str(workdir)], env)}
    loads["after_pyradplan"] = os.getloadavg()[0]
    _child(["--worker", "spinesim-prime", "--workdir", str(workdir)], env)
    rss["spinesim"] = _child(["--worker", "spinesim", "--workdir", str(workdir), "--spacing", str(spacing_mm)], env)
    loads["after_spinesim"] = os.getloadavg()[0]
    peer = json.loads((workdir / "pyradplan.json").read_text())
    ours = json.loads((workdir / "spinesim.json").read_text())
    ratios = {stage: ours["times"][stage] / peer["times"][stage] for stage in ("influence", "optimisation", "final_dose",
                                                                             "whole_plan")}
    # The plans' peaks, read by each worker before its extra (pyRadPlan's forward dose, spinesim's
    # recomputation of the peer's weights); the whole processes' peaks (RUSAGE_CHILDREN) are
    # reported beside them.
    ratios["peak_memory"] = ours["peak_rss_plan_mib"] / peer["peak_rss_plan_mib"]
    return {"spacing_mm": spacing_mm, "pyradplan": peer, "spinesim": ours, "peak_rss_mib": rss, "ratios": ratios,
            "load_average": loads, "workdir": str(workdir)}


#: The issue's reach targets: spinesim's figure over pyRadPlan's must be at most this.
REACH = {"influence": 1 / 30, "optimisation": 1 / 50, "whole_plan": 1 / 10, "peak_memory": 1 / 4}


def format_report(result: dict) -> str:
    """The table the script prints."""
    if "skipped" in result:
        return f"peer benchmark skipped: {result['skipped']}"
    peer, ours, ratios = result["pyradplan"], result["spinesim"], result["ratios"]
    lines = [f"spinesim vs pyRadPlan, {CASE} at {result['spacing_mm']} mm, {len(peer['times']) and ours['n_beamlets']} "
             f"beamlets, {ours['n_rows']} dose voxels (load average {result['load_average']})",
             f"{'stage':<14}{'pyRadPlan s':>13}{'spinesim s':>12}{'ratio':>9}{'reach':>9}"]
    for stage in ("influence", "optimisation", "final_dose", "whole_plan"):
        reach = f"{REACH[stage]:.3f}" if stage in REACH else "-"
        lines.append(f"{stage:<14}{peer['times'][stage]:>13.2f}{ours['times'][stage]:>12.2f}{ratios[stage]:>9.3f}"
                     f"{reach:>9}")
    rss = result["peak_rss_mib"]
    lines.append(f"{'peak MiB':<14}{peer['peak_rss_plan_mib']:>13.0f}{ours['peak_rss_plan_mib']:>12.0f}"
                 f"{ratios['peak_memory']:>9.3f}{REACH['peak_memory']:>9.3f}")
    lines.append(f"whole processes' peaks (RUSAGE_CHILDREN, with the extras): pyRadPlan {rss['pyradplan']:.0f} MiB, "
                 f"spinesim {rss['spinesim']:.0f} MiB")
    lines.append(f"pyRadPlan forward dose of its weights on the body (its engine, not in its plan): "
                 f"{peer['times']['forward_dose']:.2f} s; spinesim's superposition over it: "
                 f"{ours['times']['final_dose'] / peer['times']['forward_dose']:.2f}")
    lines.append(f"resident set after imports: pyRadPlan {peer['rss_after_imports_mib']:.0f} MiB, "
                 f"spinesim {ours['rss_after_imports_mib']:.0f} MiB")
    lines.append("spinesim plan_scene steps: " + "; ".join(f"{m} {s:.2f} s" for m, s in ours["plan_steps"]))
    lines.append(f"matrix entries: pyRadPlan {peer['nnz']}, spinesim {ours['nnz']} (kept energy "
                 f"{ours['kept_energy']:.4f}); iterations: pyRadPlan {peer['iterations']}, spinesim {ours['iterations']}")
    lines.append(f"{'plan quality':<44}{'PTV D95 Gy':>11}{'cord max Gy':>12}{'cord @D95=Rx':>13}")
    for name, q in ours["quality"].items():
        lines.append(f"{name:<44}{q['ptv_d95_gy']:>11.2f}{q['cord_dmax_gy']:>12.2f}{q['cord_dmax_at_d95_rx_gy']:>13.2f}")
    lines.append(f"spinesim plan_scene: {ours['corrections']} correction passes, coverage {ours['coverage_achieved']:.3f}, "
                 f"rows as handed to pyRadPlan: {ours['plan_rows_match']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spacing", type=float, default=2.5, help="grid spacing (mm), 2.5 or more")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--worker", choices=("pyradplan", "spinesim", "spinesim-prime"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker == "pyradplan":
        run_pyradplan(args.workdir)
        return 0
    if args.worker == "spinesim":
        run_spinesim(args.workdir, args.spacing)
        return 0
    if args.worker == "spinesim-prime":
        prime_spinesim(args.workdir)
        return 0
    if not args.spacing >= 2.5:
        parser.error(f"--spacing must be >= 2.5 mm, got {args.spacing}")
    result = run_benchmark(spacing_mm=args.spacing, workdir=args.workdir)
    print(format_report(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
