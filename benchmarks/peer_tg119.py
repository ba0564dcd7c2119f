"""Peer benchmark on the peer's own phantom: AAPM TG-119's C-shape, as pyRadPlan ships it.

:mod:`benchmarks.peer_pyradplan` plans spinesim's spine phantom in both tools; this script
plans the phantom pyRadPlan bundles (``pyRadPlan.io.load_tg119``: the TG-119 C-shaped target
wrapped around a cylindrical core, Ezzell et al. 2009, Med Phys 36:5359) with the objectives
its structure set carries, so spinesim meets geometry, HU and objectives it was never tuned on:

- the CT and its structures are resampled by pyRadPlan itself (``resample_ct``,
  ``StructureSet.resample_on_new_ct``) to ``--spacing`` mm; spinesim gets those HU and masks
  through ``scene_from_arrays`` (its own HU calibration, as an imported CT), each tool reading
  the HU its own way;
- the beams: nine equally spaced gantry angles (0-320 deg, pyRadPlan's TG-119 arrangement),
  isocentre at the target's centre of mass, 5 mm beamlets placed by pyRadPlan's
  ``generate_stf`` and handed to spinesim (as in the spine benchmark);
- the objectives: the structure set's own (target squared deviation, core and body squared
  overdose, with their priorities and its overlap priorities), the same mean-squared forms in
  spinesim's ``plan_scene(objectives=...)``; no organ carries a point limit (TG-119 has none),
  so ``plan_scene`` normalises the target's D95% to the prescription;
- the dose voxels: every voxel of the structures in both tools (the body has an objective).

Reported: stage times (influence, optimisation, final dose, whole plan: pyRadPlan's three
stages against one ``plan_scene`` call with the superposition and the correction loop), peak
memory, and plan quality by one set of metric functions on the same masks: target D95% and
D10%, core D10% and Dmax, for each tool's own dose, spinesim's optimiser dose, and pyRadPlan's
weights through spinesim's superposition; also each normalised to target D95% = 50 Gy. The
correction loop checks the target's D95%; the core's figures of the optimiser's and the
delivered dose are printed beside it (agreement on a structure the loop does not check).

Run in the environment that has pyRadPlan (see benchmarks/README.md, "Peer benchmark")::

    /work/peer-venv/bin/python benchmarks/peer_tg119.py [--spacing 5] [--json OUT]

Without pyRadPlan it prints why and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.peer_pyradplan import (BEAMLET_MM, MAX_ITERATIONS, _beams_from_rays, _child,  # noqa: E402
                                       _rss_mib, peer_missing_reason, pyradplan_dose_and_rays, pyradplan_stages)

#: TG-119's prescription for the C-shape test: 50 Gy in 25 fractions (Ezzell et al. 2009, AAPM TG-119);
#: the fractions do not enter the physical-dose plans compared here.
PRESCRIPTION_GY = 50.0
FRACTIONS = 25
GANTRY_DEG = tuple(float(a) for a in range(0, 360, 40))
WARM_SPACING_MM = 10.0
STRUCTURES = ("OuterTarget", "Core", "BODY")
TARGET, CORE = "OuterTarget", "Core"
#: pyRadPlan objective class -> plan_scene objective kind (both priority x mean squared excess).
KINDS = {"SquaredDeviation": "squared_deviation", "SquaredOverdosing": "overdose", "SquaredUnderdosing": "underdose"}


# ---------------------------------------------------------------- pyRadPlan worker

def _pyradplan_tg119(spacing_mm: float, export: Path | None) -> dict:
    import SimpleITK as sitk
    from pyRadPlan import PhotonPlan
    from pyRadPlan.ct import resample_ct
    from pyRadPlan.io import load_tg119

    ct, cst = load_tg119()
    ct = resample_ct(ct, target_grid_spacing=(spacing_mm,) * 3)
    cst = cst.resample_on_new_ct(ct)
    vois = {voi.name: voi for voi in cst.vois}
    iso_xyz = np.asarray(cst.target_center_of_mass(), float)
    if export is not None:  # the shared problem, as plain arrays in (z, y, x)
        res = ct.resolution
        objectives = [{"structure": name, "kind": KINDS[type(o).__name__], "dose_gy": float(o.parameters[0]),
                       "priority": float(o.priority)} for name, voi in vois.items() for o in voi.objectives]
        np.savez(export, hu=sitk.GetArrayFromImage(ct.cube_hu).astype(np.float64),
                 spacing_mm=np.array([res["z"], res["y"], res["x"]], float),
                 origin_mm=np.asarray(ct.origin, float)[::-1],
                 isocentre_mm=iso_xyz[::-1], gantry_deg=np.array(GANTRY_DEG),
                 overlap=np.array(sorted(vois, key=lambda n: vois[n].overlap_priority)),
                 objectives=json.dumps(objectives),
                 **{name: sitk.GetArrayFromImage(vois[name].mask).astype(np.uint8) for name in STRUCTURES})
    times = {}
    pln = PhotonPlan(machine="Generic", num_of_fractions=FRACTIONS, prescribed_dose=PRESCRIPTION_GY)
    pln.prop_stf = {"gantry_angles": list(GANTRY_DEG), "couch_angles": [0.0] * len(GANTRY_DEG),
                    "bixel_width": BEAMLET_MM, "iso_center": [float(c) for c in iso_xyz]}
    pln.prop_opt = {"solver": "scipy", "max_iter": MAX_ITERATIONS}
    stages = pyradplan_stages(ct, cst, pln)
    times.update(stages["times"])
    dose, ray_uv_mm, rays_per_beam = pyradplan_dose_and_rays(stages["stf"], stages["result"])
    matrix = stages["dij"].physical_dose.flat[0]
    weights, info = stages["weights"], stages["info"]
    return {"times": times, "weights": np.asarray(weights, float), "dose_gy": dose,
            "ray_uv_mm": ray_uv_mm, "rays_per_beam": rays_per_beam,
            "nnz": int(matrix.nnz), "n_rows": int(np.count_nonzero(np.asarray(matrix.sum(axis=1)).ravel())),
            "iterations": int(info.get("num_iter", -1)),
            "peak_rss_plan_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_pyradplan(workdir: Path, spacing_mm: float) -> None:
    """Warm up at 10 mm, then plan TG-119 at ``spacing_mm``; exports the problem for spinesim."""
    import logging

    logging.disable(logging.WARNING)
    import pyRadPlan  # noqa: F401

    baseline = _rss_mib()
    warm = _pyradplan_tg119(WARM_SPACING_MM, workdir / "warm.npz")
    np.savez(workdir / "warm_rays.npz", ray_uv_mm=warm["ray_uv_mm"], rays_per_beam=warm["rays_per_beam"])
    out = _pyradplan_tg119(spacing_mm, workdir / "phantom.npz")
    np.savez(workdir / "pyradplan.npz", **{k: out[k] for k in ("weights", "dose_gy", "ray_uv_mm", "rays_per_beam")})
    meta = {k: v for k, v in out.items() if k not in ("weights", "dose_gy", "ray_uv_mm", "rays_per_beam")}
    meta["rss_after_imports_mib"] = baseline
    (workdir / "pyradplan.json").write_text(json.dumps(meta))


# ---------------------------------------------------------------- spinesim worker

def _scene(phantom: dict):
    from scenes.scene import scene_from_arrays

    return scene_from_arrays(spacing_mm=tuple(phantom["spacing_mm"]), origin_mm=tuple(phantom["origin_mm"]),
                             hu=phantom["hu"], structures={name: phantom[name] > 0 for name in STRUCTURES})


def _quality(scene, dose_gy: np.ndarray) -> dict:
    from planner.radiotherapy.metrics import metric, structure_dose

    voxel = scene.grid.voxel_volume_cc
    target = structure_dose(dose_gy, scene.structure(TARGET).full(), voxel)
    core = structure_dose(dose_gy, scene.structure(CORE).full(), voxel)
    figures = {"target_d95_gy": metric(target, "D95%"), "target_d10_gy": metric(target, "D10%"),
               "core_d10_gy": metric(core, "D10%"), "core_dmax_gy": metric(core, "Dmax")}
    scale = PRESCRIPTION_GY / figures["target_d95_gy"] if figures["target_d95_gy"] > 0 else float("nan")
    figures.update({f"{k[:-3]}_at_rx_gy": v * scale for k, v in list(figures.items()) if k != "target_d95_gy"})
    return {k: float(v) for k, v in figures.items()}


def _spinesim_tg119(phantom: dict, rays: dict) -> dict:
    from planner.radiotherapy.influence import build_influence, final_dose
    from planner.radiotherapy.optimise import optimise
    from planner.radiotherapy.plan import Regimen
    from planner.radiotherapy.scene_plan import OBJECTIVE_KINDS, Objective, plan_scene, resolve_overlaps, structure_rows

    scene = _scene(phantom)
    beams = _beams_from_rays(phantom, rays["ray_uv_mm"], rays["rays_per_beam"])
    objectives = [Objective(**o) for o in json.loads(str(phantom["objectives"]))]
    order = [str(name) for name in phantom["overlap"]]
    times = {}
    # The stages on their own (the rows plan_scene builds when every planned structure is a row).
    rows = np.flatnonzero(np.logical_or.reduce([scene.structure(n).full().ravel() > 0 for n in STRUCTURES]))
    start = time.perf_counter()
    influence = build_influence(scene, beams, roi=rows, kept_energy=0.995)
    times["influence"] = time.perf_counter() - start
    occupancy = resolve_overlaps({n: scene.structure(n).full() for n in STRUCTURES}, order)
    terms = []
    for o in objectives:
        term_rows, weights = structure_rows(influence, occupancy[o.structure])
        terms.append(OBJECTIVE_KINDS[o.kind](rows=term_rows, weights=weights, dose_gy=o.dose_gy, priority=o.priority,
                                             label=o.structure))
    start = time.perf_counter()
    result = optimise(influence.matrix, terms, max_iterations=MAX_ITERATIONS)
    times["optimisation"] = time.perf_counter() - start
    start = time.perf_counter()
    dose = final_dose(scene, beams, result.weights)
    times["final_dose"] = time.perf_counter() - start
    # Rows with an entry (pyRadPlan's count); the matrix has a row for every body voxel.
    stages = {"nnz": int(influence.matrix.nnz), "n_rows": int(np.count_nonzero(np.diff(influence.matrix.indptr))),
              "iterations": int(result.iterations), "quality": _quality(scene, dose)}
    del influence, result, dose, terms, occupancy
    steps = []
    start = time.perf_counter()
    plan = plan_scene(scene, target=TARGET, prescription=Regimen(PRESCRIPTION_GY, FRACTIONS), organs_at_risk={},
                      objectives=objectives, overlap_priority=order, beams=beams, body="BODY",
                      max_iterations=MAX_ITERATIONS,
                      progress=lambda message: steps.append((time.perf_counter() - start, message)))
    times["whole_plan"] = time.perf_counter() - start
    ends = [t for t, _ in steps[1:]] + [times["whole_plan"]]
    return {"scene": scene, "beams": beams, "times": times, "stages": stages, "plan": plan,
            "steps": [(m, end - t) for (t, m), end in zip(steps, ends)]}


def prime_spinesim(workdir: Path) -> None:
    """The warm-up alone, in its own process first: numba's and the beamlet table's disk caches
    are written here, so the measured worker's peak is the plan's, not the compiler's."""
    _spinesim_tg119(dict(np.load(workdir / "warm.npz")), dict(np.load(workdir / "warm_rays.npz")))


def run_spinesim(workdir: Path) -> None:
    from planner.radiotherapy.influence import final_dose

    import planner.radiotherapy.scene_plan  # noqa: F401  (imported before the baseline resident set)

    baseline = _rss_mib()
    _spinesim_tg119(dict(np.load(workdir / "warm.npz")), dict(np.load(workdir / "warm_rays.npz")))
    peer = dict(np.load(workdir / "pyradplan.npz"))
    out = _spinesim_tg119(dict(np.load(workdir / "phantom.npz")), peer)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    scene, plan = out["scene"], out["plan"]
    recomputed = final_dose(scene, out["beams"], peer["weights"])
    optimiser, delivered = _quality(scene, plan.optimiser_dose_gy), _quality(scene, plan.dose_gy)
    meta = {"times": out["times"], "peak_rss_plan_mib": peak_mib, "rss_after_imports_mib": baseline,
            "plan_steps": out["steps"], "nnz": out["stages"]["nnz"], "n_rows": out["stages"]["n_rows"],
            "iterations": out["stages"]["iterations"], "n_beamlets": int(out["beams"].n_beamlets),
            "corrections": int(plan.corrections), "coverage_achieved": float(plan.coverage_achieved),
            "agreement": {k: {kk: float(vv) for kk, vv in v.items()} for k, v in plan.agreement.items()},
            "core_agreement": {k: (optimiser[k] - delivered[k]) / delivered[k] for k in ("core_d10_gy", "core_dmax_gy")},
            "materials": [line for line in scene.history if "voxels" in line][:1],
            "quality": {"spinesim_plan": delivered, "spinesim_optimiser_dose": optimiser,
                        "spinesim_stage_superposition": out["stages"]["quality"],
                        "pyradplan_own": _quality(scene, peer["dose_gy"]),
                        "pyradplan_weights_spinesim_superposition": _quality(scene, recomputed)}}
    (workdir / "spinesim.json").write_text(json.dumps(meta))


# ---------------------------------------------------------------- orchestration

def run_benchmark(*, spacing_mm: float = 5.0, workdir: Path | None = None) -> dict:
    """Both tools on pyRadPlan's TG-119 phantom; timings, ratios, peak memory, plan quality."""
    reason = peer_missing_reason()
    if reason:
        return {"skipped": reason}
    workdir = Path(workdir or tempfile.mkdtemp(prefix="peer-tg119-"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("NUMBA_CACHE_DIR", str(Path(tempfile.gettempdir()) / "spinesim-peer-numba-cache"))
    loads = {"start": os.getloadavg()[0]}
    rss = {"pyradplan": _child_here(["--worker", "pyradplan", "--workdir", str(workdir), "--spacing", str(spacing_mm)],
                                    env)}
    _child_here(["--worker", "spinesim-prime", "--workdir", str(workdir)], env)
    rss["spinesim"] = _child_here(["--worker", "spinesim", "--workdir", str(workdir)], env)
    loads["end"] = os.getloadavg()[0]
    peer = json.loads((workdir / "pyradplan.json").read_text())
    ours = json.loads((workdir / "spinesim.json").read_text())
    ratios = {s: ours["times"][s] / peer["times"][s] for s in ("influence", "optimisation", "final_dose", "whole_plan")}
    ratios["peak_memory"] = ours["peak_rss_plan_mib"] / peer["peak_rss_plan_mib"]
    return {"spacing_mm": spacing_mm, "pyradplan": peer, "spinesim": ours, "peak_rss_mib": rss, "ratios": ratios,
            "load_average": loads, "workdir": str(workdir)}


def _child_here(args: list, env: dict) -> float:
    """:func:`benchmarks.peer_pyradplan._child` running this script's workers."""
    return _child(args, env, script=__file__)


def format_report(result: dict) -> str:
    if "skipped" in result:
        return f"peer benchmark skipped: {result['skipped']}"
    peer, ours, ratios = result["pyradplan"], result["spinesim"], result["ratios"]
    lines = [f"spinesim vs pyRadPlan on pyRadPlan's TG-119 phantom at {result['spacing_mm']} mm, {ours['n_beamlets']} "
             f"beamlets, dose voxels with an entry pyRadPlan {peer['n_rows']} / spinesim {ours['n_rows']} "
             f"(load average {result['load_average']})",
             f"{'stage':<14}{'pyRadPlan s':>13}{'spinesim s':>12}{'ratio':>9}"]
    for stage in ("influence", "optimisation", "final_dose", "whole_plan"):
        lines.append(f"{stage:<14}{peer['times'][stage]:>13.2f}{ours['times'][stage]:>12.2f}{ratios[stage]:>9.3f}")
    lines.append(f"{'peak MiB':<14}{peer['peak_rss_plan_mib']:>13.0f}{ours['peak_rss_plan_mib']:>12.0f}"
                 f"{ratios['peak_memory']:>9.3f}")
    lines.append(f"matrix entries: pyRadPlan {peer['nnz']}, spinesim {ours['nnz']}; iterations: pyRadPlan "
                 f"{peer['iterations']}, spinesim {ours['iterations']}")
    lines.append("spinesim plan_scene steps: " + "; ".join(f"{m} {s:.2f} s" for m, s in ours["plan_steps"]))
    lines.append(f"spinesim plan_scene: {ours['corrections']} correction passes, coverage {ours['coverage_achieved']:.3f}; "
                 "agreement (optimiser vs delivered): " + ", ".join(f"{k} {100 * v['difference']:+.2f}%"
                                                                   for k, v in ours["agreement"].items())
                 + "; not checked by the loop: " + ", ".join(f"{k[:-3]} {100 * v:+.2f}%"
                                                             for k, v in ours["core_agreement"].items()))
    columns = ("target_d95_gy", "target_d10_gy", "core_d10_gy", "core_dmax_gy", "target_d10_at_rx_gy",
               "core_d10_at_rx_gy", "core_dmax_at_rx_gy")
    lines.append(f"{'plan quality (Gy)':<42}" + "".join(f"{c[:-3]:>20}" for c in columns))
    for name, q in ours["quality"].items():
        lines.append(f"{name:<42}" + "".join(f"{q[c]:>20.2f}" for c in columns))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spacing", type=float, default=5.0, help="grid spacing (mm), 3 to 10")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--worker", choices=("pyradplan", "spinesim", "spinesim-prime"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 3.0 <= args.spacing <= 10.0:
        parser.error(f"--spacing must be in 3..10 mm, got {args.spacing}")
    if args.worker == "pyradplan":
        run_pyradplan(args.workdir, args.spacing)
        return 0
    if args.worker == "spinesim-prime":
        prime_spinesim(args.workdir)
        return 0
    if args.worker == "spinesim":
        run_spinesim(args.workdir)
        return 0
    result = run_benchmark(spacing_mm=args.spacing, workdir=args.workdir)
    print(format_report(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
