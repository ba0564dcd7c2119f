"""The dose-correction loop on every teaching case: passes and the engines' remaining difference.

Each case is planned by ``plan_scene`` (superposition engine, so the correction loop runs) at a
given grid, 24 Gy in 2 fractions to the PTV with the cord (or cauda equina) limited to 14 Gy,
and one line per case says how many passes the loop took, the difference before each pass, the
difference it ended with, the PTV D95%, the organ's maximum and the coverage reached. The
loop's settings come from objectives.toml [correction]; ``--settings`` overrides some of them
for a comparison (JSON), e.g. ``'{"trust_radius": Infinity}'`` for the loop without a trust region.

Run::

    python benchmarks/correction_cases.py [--spacing 5] [--cases c5_myeloma_escc2,...] [--settings JSON]
"""

from __future__ import annotations

import argparse
import json
import time


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spacing", type=float, default=5.0, help="grid spacing (mm), >= 2.5")
    parser.add_argument("--cases", default=None, help="comma-separated case names (default: every shipped case)")
    parser.add_argument("--settings", default=None, help="JSON object overriding objectives.toml [correction]")
    args = parser.parse_args(argv)
    if not args.spacing >= 2.5:
        parser.error(f"--spacing must be >= 2.5 mm, got {args.spacing}")

    import planner.radiotherapy.correction as correction
    from planner.radiotherapy.plan import Regimen, add_targets
    from planner.radiotherapy.scene_plan import plan_scene
    from scenes.cases import build_scene, list_cases

    if args.settings:
        settings = dict(correction.correction_settings())
        settings.update(json.loads(args.settings))
        correction.correction_settings = lambda: settings
    cases = args.cases.split(",") if args.cases else list_cases()
    for case in cases:
        scene = add_targets(build_scene(case, spacing_mm=(args.spacing,) * 3))
        organ = "spinal_cord" if scene.has("spinal_cord") else "cauda_equina"
        before = []
        start = time.perf_counter()
        plan = plan_scene(scene, target="ptv", prescription=Regimen(24.0, 2), organs_at_risk={organ: 14.0},
                          progress=lambda message: before.append(message.rsplit(" ", 1)[-1]) if "pass" in message else None)
        worst = max(abs(item["difference"]) for item in plan.agreement.values())
        print(f"{case:36s} passes {plan.corrections} before each {before} ends {100 * worst:.1f}% "
              f"PTV D95 {plan.metrics['ptv']['D95%']:.2f} Gy {organ} {plan.limits[organ]['dmax_gy']:.2f} Gy "
              f"coverage {plan.coverage_achieved:.3f} ({time.perf_counter() - start:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
