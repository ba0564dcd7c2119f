"""Cost of the superposition engine's physics switches: one beam, each combination timed.

``kernel_hardening`` and ``kernel_tilting`` (``kernels/data/beam_6mv.toml``) change what each
voxel sends down the cones, not how many cones there are: the tilt rides the same single
cone pass as extra sources (:mod:`kernels.superposition_cpu`). This script times one beam of
the T10 teaching case (whole grid and irradiated region) with both off, hardening only, and
both on, and prints each as a ratio to both off.

Run (one thread: CPU time is the figure that survives a shared machine)::

    NUMBA_NUM_THREADS=1 python benchmarks/superposition_switches.py [--spacing 2.5] [--repeat 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

SETTINGS = {"both off": (False, False), "hardening only": (True, False), "both on": (True, True)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spacing", type=float, default=2.5, help="grid spacing (mm), 2.5 or more")
    parser.add_argument("--case", default="t10_rcc_escc2")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs per setting (the minimum is kept), 1..5")
    args = parser.parse_args(argv)
    if not args.spacing >= 2.5:
        parser.error(f"--spacing must be >= 2.5 mm, got {args.spacing}")
    if not 1 <= args.repeat <= 5:
        parser.error(f"--repeat must be 1..5, got {args.repeat}")

    from kernels.beam_model import load_beam_model
    from kernels.engine import superposition_dose
    from kernels.irradiated_region import superposition_dose_in_region
    from planner.radiotherapy.beams import arrangement_angles, make_beams
    from planner.radiotherapy.plan import add_targets
    from planner.radiotherapy.scene_plan import _settings
    from scenes.cases import build_scene

    scene = add_targets(build_scene(args.case, spacing_mm=(args.spacing,) * 3))
    grid = scene.grid
    points = grid.index_to_mm(np.argwhere(scene.structure("ptv").full() > 0.5))
    beams = make_beams(points, gantry_deg=arrangement_angles(_settings()["arrangement"]), beamlet_mm=5.0)
    density, eta = np.asarray(scene.density_g_cc, float), np.asarray(scene.electron_density, float)
    origin, spacing = np.asarray(grid.origin_mm), np.asarray(grid.spacing_mm)
    beam = beams.beams[0]
    fluence, fluence_origin, fluence_spacing = beam.fluence_map(np.ones(beam.n_beamlets))
    axis, u, v = beam.frame
    print(f"{args.case}, {grid.shape} voxels of {args.spacing} mm, one beam (gantry {beam.gantry_deg} deg), "
          f"{load_beam_model().n_azimuth * 12} cone directions; CPU seconds (wall)")
    engines = {"whole grid": superposition_dose, "region": superposition_dose_in_region}
    base = {}
    for label, (hardening, tilting) in SETTINGS.items():
        model = dataclasses.replace(load_beam_model(), kernel_hardening=hardening, kernel_tilting=tilting)
        line = []
        for name, engine in engines.items():
            best = None
            for run in range(args.repeat + 1):  # the first run compiles (or loads the cache): not kept
                cpu, wall = time.process_time(), time.perf_counter()
                engine(density, eta, origin, spacing, beam.source_mm, axis, u, v, fluence, fluence_origin,
                       fluence_spacing, model)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                if run and (best is None or cpu < best[0]):
                    best = (cpu, wall)
            base.setdefault(name, best[0])
            line.append(f"{name} {best[0]:.2f} s ({best[1]:.2f}) = {best[0] / base[name]:.2f}x")
        print(f"{label:15s} " + "; ".join(line))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
