"""Final dose on the whole grid against the same dose computed only where each beam's energy goes.

``final_dose`` (CPU) runs each beam's TERMA on the box its rays cross and its cone transport
only on the lines that carry energy (:mod:`kernels.irradiated_region`). This script times both
beam by beam on the T10 teaching case (the peer benchmark's phantom, ``plan_scene``'s nine
posterior-fan beams, random beamlet weights) and checks that the doses are identical.

Run (CPU time of one thread is the figure that survives a shared machine; wall time is
printed beside it)::

    NUMBA_NUM_THREADS=1 python benchmarks/final_dose_region.py [--spacing 2.5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spacing", type=float, default=2.5, help="grid spacing (mm), 2.5 or more")
    parser.add_argument("--case", default="t10_rcc_escc2")
    args = parser.parse_args(argv)
    if not args.spacing >= 2.5:
        parser.error(f"--spacing must be >= 2.5 mm, got {args.spacing}")

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
    model = load_beam_model()
    density, eta = np.asarray(scene.density_g_cc, float), np.asarray(scene.electron_density, float)
    origin, spacing = np.asarray(grid.origin_mm), np.asarray(grid.spacing_mm)
    weights = np.random.default_rng(2).uniform(0, 1, beams.n_beamlets)
    engines = {"whole grid": superposition_dose, "region": superposition_dose_in_region}
    totals = {name: [0.0, 0.0] for name in engines}
    print(f"{args.case}, {grid.shape} voxels of {args.spacing} mm, {len(beams.beams)} beams")
    for index, (beam, w) in enumerate(zip(beams.beams, beams.split(weights))):
        fluence, fluence_origin, fluence_spacing = beam.fluence_map(w)
        axis, u, v = beam.frame
        doses, line = {}, []
        for name, engine in engines.items():
            for _ in range(2 if index == 0 else 1):  # the first beam twice: no compilation timed
                cpu, wall = time.process_time(), time.perf_counter()
                doses[name] = engine(density, eta, origin, spacing, beam.source_mm, axis, u, v, fluence,
                                     fluence_origin, fluence_spacing, model)[0]
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            totals[name][0] += cpu
            totals[name][1] += wall
            line.append(f"{name} {cpu:.2f} s cpu ({wall:.2f} s wall)")
        same = np.array_equal(doses["whole grid"], doses["region"])
        print(f"gantry {beam.gantry_deg:5.0f}: " + "; ".join(line) + f"; identical: {same}")
    (cpu_whole, wall_whole), (cpu_region, wall_region) = totals["whole grid"], totals["region"]
    print(f"all beams: whole grid {cpu_whole:.2f} s cpu ({wall_whole:.2f} s wall), region {cpu_region:.2f} s cpu "
          f"({wall_region:.2f} s wall): {cpu_region / cpu_whole:.2f} of the cpu time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
