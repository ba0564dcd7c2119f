"""``spinesim view CASE``: the 3-D view of a case (and optionally a quick plan) from the command line.

Kept apart from :mod:`planner.cli` so that the command line only wires it in::

    from planner.cli.view import add_view_parser, run_view   # in planner/cli/commands.py
    add_view_parser(commands)                        # in _parser(); then in main():
    if args.command == "view": return run_view(args, out)

The command line checks every ``view`` argument first (``_check_view`` in
:mod:`planner.cli.commands`, before the heavy imports); :func:`run_view` repeats only what
callers that build their own parser need.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from planner.common.safety import DISCLAIMER

__all__ = ["add_view_parser", "run_view"]


def add_view_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``view`` subcommand to an argparse subparsers object; returns its parser."""
    view = subparsers.add_parser("view", help="3-D view of a case (a window on a desktop; PNGs with no display)")
    view.add_argument("case", help="teaching case id (see `spinesim cases`) or a case .toml file")
    view.add_argument("--dose", type=float, default=None,
                      help="also plan this prescription (Gy, pencil-beam engine) and show its isodoses and beams")
    view.add_argument("--fractions", type=int, default=None, help="fractions of that prescription (with --dose)")
    view.add_argument("--gap-mm", type=float, default=None,
                      help="separation surgery first, leaving this gap (0..10 mm; 0: no surgery)")
    view.add_argument("--out", default=".", help="folder for the PNGs when there is no display (default: here)")
    view.add_argument("--png", action="store_true", help="write the PNGs even where a display exists")
    view.add_argument("--memory-budget", default=None,
                      help="refuse jobs estimated above this memory, e.g. 8G (default: half the available memory)")
    view.set_defaults(handler=run_view)
    return view


def run_view(args, out) -> int:
    """Run ``spinesim view``; returns the exit status (errors raise ValueError for the CLI to report)."""
    folder = Path(args.out)
    if not folder.is_dir():
        raise ValueError(f"--out folder {str(folder)!r} does not exist")
    if (args.dose is None) != (args.fractions is None):
        raise ValueError("--dose and --fractions go together")
    if args.gap_mm is not None and not 0 <= args.gap_mm <= 10:
        raise ValueError(f"--gap-mm must be in 0..10 mm (0: no separation surgery), got {args.gap_mm:g}")
    from planner.pictures import three_d as viz

    gap = args.gap_mm or None  # 0 is the planner's None: no separation surgery

    def say(message):
        print(message, file=out, flush=True)

    subject = args.case
    beams = None
    if args.dose is not None:
        from planner.radiotherapy.beams import arrangement_angles
        from planner.radiotherapy.plan import Regimen, plan_case

        say(f"planning {args.case}: {args.dose:g} Gy / {args.fractions} (pencil-beam engine)")
        subject = plan_case(args.case, regimen=Regimen(args.dose, args.fractions), gap_mm=gap, engine="pencil",
                            progress=lambda message: say(f"  {message}"))
        beams = arrangement_angles("sbrt_fan")
    elif gap is not None:
        from scenes.cases import build_scene
        from scenes.surgery import separation_surgery

        subject = separation_surgery(build_scene(args.case, spacing_mm=(2.5, 2.5, 2.5)), gap)
    if not args.png and viz.display_available():
        say("opening the 3-D window (click the boxes to show or hide structures and isodoses)")
    # All or nothing: the PNGs are written into a hidden folder and moved in together.
    staging = Path(tempfile.mkdtemp(prefix=".spinesim-view-", dir=folder))
    try:
        written = viz.view(subject, out_dir=staging, beams=beams, write_png=args.png,
                           say=lambda line: say(line.replace(str(staging), str(folder))))  # the user's folder
        for path in written or ():
            os.replace(path, folder / Path(path).name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    say(DISCLAIMER)
    return 0
