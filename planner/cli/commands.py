"""The ``spinesim`` command line.

``main(argv=None) -> int`` parses arguments and returns the exit status, so tests call it
in-process. Bad input gives a one-line error naming the field and what is allowed, and
exit status 2; nothing is written in that case.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from planner.common.files import write_text_atomically
from planner.common.progress import ProgressBar, is_terminal
from planner.common.safety import DISCLAIMER

__all__ = ["main"]


def _spacing(text: str) -> tuple[float, float, float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--spacing-mm must be numbers like 2.5 or 2.5,1.25,1.25, got {text!r}") from None
    if len(values) == 1:
        values = values * 3
    if len(values) != 3 or any(not 0.5 <= v <= 5.0 for v in values):
        raise argparse.ArgumentTypeError(f"--spacing-mm must be one or three values (z,y,x) in 0.5..5 mm, got {text!r}")
    return tuple(values)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spinesim", description=f"Spine metastasis radiotherapy + surgery simulator. {DISCLAIMER}.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("cases", help="list the teaching cases")
    scene = commands.add_parser("scene", help="build a case's phantom and render axial + sagittal slices to a PNG")
    scene.add_argument("case", help="teaching case id (see `spinesim cases`) or a case .toml file")
    scene.add_argument("--out", required=True, help="output image (.png, .svg or .pdf)")
    scene.add_argument("--spacing-mm", type=_spacing, default=(2.5, 1.25, 1.25),
                       help="voxel size z,y,x in mm (default 2.5,1.25,1.25)")
    scene.add_argument("--weeks", type=float, default=0.0, help="simulate this many weeks of untreated growth first")
    plan = commands.add_parser("plan", help="plan a case and check the cord constraints")
    plan.add_argument("case", help="teaching case id or a case .toml file")
    plan.add_argument("--dose", type=float, required=True, help="prescription dose in Gy (whole course)")
    plan.add_argument("--fractions", type=int, required=True, help="number of fractions")
    plan.add_argument("--gap-mm", type=float, default=None, help="separation surgery first, leaving this gap (mm)")
    plan.add_argument("--protocol", default="hytec", help="constraint protocol (hytec, tg101, rtog0631, quantec)")
    plan.add_argument("--engine", choices=("superposition", "pencil"), default="superposition",
                      help="final dose engine (pencil is faster, less accurate in bone and lung)")
    plan.add_argument("--spacing-mm", type=_spacing, default=(2.5, 2.5, 2.5), help="planning grid z,y,x in mm")
    plan.add_argument("--beams", default="sbrt_fan", help="sbrt_fan (9 beams), arc, pa or ap_pa")
    plan.add_argument("--beamlet-mm", type=float, default=5.0, help="beamlet size at the isocentre: 5 (default) or 2.5")
    plan.add_argument("--json", default=None, help="also write the result as JSON to this file")
    compare = commands.add_parser("compare", help="compare the standard strategies on a case: the teaching scorecard")
    compare.add_argument("case", help="teaching case id or a case .toml file")
    compare.add_argument("--weeks-delay", type=float, default=0.0, help="weeks of untreated growth before treatment")
    compare.add_argument("--weights", default=None,
                         help="ranking weights, e.g. walking=3,local_control=1 (keys: local_control, walking, pain, "
                              "myelopathy, fracture, complications, wound, time, hospital)")
    compare.add_argument("--strategies", default=None,
                         help="comma-separated strategy keys from the standard menu (default: the whole menu)")
    compare.add_argument("--spacing-mm", type=_spacing, default=(2.5, 2.5, 2.5), help="planning grid z,y,x in mm")
    compare.add_argument("--json", default=None, help="also write the scorecard as JSON to this file")
    compare.add_argument("--csv", default=None, help="also write the scorecard as CSV to this file")
    compare.add_argument("--no-colour", action="store_true", help="plain text (colours are on for terminals)")
    demo = commands.add_parser("demo", help="the default case end to end: strategies compared, report written")
    demo.add_argument("--out", default="spinesim-demo", help="report folder (default ./spinesim-demo)")
    demo.add_argument("--case", default=None, help="another teaching case id or .toml instead of the default")
    demo.add_argument("--no-3d", action="store_true", help="skip the 3-D views (no OpenGL needed)")
    from planner.cli.view import add_view_parser

    add_view_parser(commands)
    line = commands.add_parser("timeline", help="delay of diagnosis: re-evaluate a case after weeks of growth")
    line.add_argument("case", help="teaching case id or a case .toml file")
    line.add_argument("--weeks", default="0,2,4,8,12", help="comma-separated delays in weeks (default 0,2,4,8,12)")
    line.add_argument("--spacing-mm", type=_spacing, default=(2.5, 2.5, 2.5), help="planning grid z,y,x in mm")
    line.add_argument("--json", default=None, help="also write the timeline as JSON to this file")
    return parser


def _cases(out) -> int:
    from scenes.cases import DEFAULT_CASE, list_cases, load_case

    print(f"{'case':28s} {'level':5s} {'ESCC':4s} {'histology':14s} title", file=out)
    for name in list_cases():
        case = load_case(name)
        mark = " (default)" if name == DEFAULT_CASE else ""
        print(f"{name:28s} {case.level:5s} {case.lesion.requested_grade:4s} {case.histology:14s} {case.title}{mark}", file=out)
    print(DISCLAIMER, file=out)
    return 0


def _scene(args, out) -> int:
    from scenes.cases import build_scene, grow, load_case
    from scenes.escc import measure_escc_grade

    from planner.pictures.figures import render_scene_slices, write_figure

    target = Path(args.out)
    if target.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise ValueError(f"--out must end in .png, .svg or .pdf, got {target.name!r}")
    if not target.parent.exists():
        raise ValueError(f"--out folder {str(target.parent)!r} does not exist")
    if not 0 <= args.weeks <= 520:
        raise ValueError(f"--weeks must be in 0..520, got {args.weeks}")
    case = load_case(args.case)
    scene = build_scene(case, spacing_mm=args.spacing_mm)
    if args.weeks:
        scene = grow(scene, args.weeks)
    measured = measure_escc_grade(scene)
    title = f"{case.title}  |  measured ESCC {measured.grade}" + (f" after {args.weeks:g} weeks" if args.weeks else "")
    write_figure(render_scene_slices(scene, title=title), target)
    print(f"{case.id}: {scene.level}, grid {scene.grid.shape} at {scene.grid.spacing_mm} mm", file=out)
    print(measured.explain(), file=out)
    print(f"wrote {target}", file=out)
    print(DISCLAIMER, file=out)
    return 0


def _plan(args, out) -> int:
    import time

    from planner.radiotherapy.constraints import format_table
    from planner.radiotherapy.plan import Regimen, plan_case

    _outputs(args, "json")
    if args.gap_mm is not None and not 0 < args.gap_mm <= 10:
        raise ValueError(f"--gap-mm must be in (0, 10] mm, got {args.gap_mm}")
    regimen = Regimen(args.dose, args.fractions)
    start = time.perf_counter()

    def progress(message):
        print(f"[{time.perf_counter() - start:6.1f} s] {message}", file=out, flush=True)

    result = plan_case(args.case, regimen=regimen, protocol=args.protocol, gap_mm=args.gap_mm, engine=args.engine,
                       grid_mm=args.spacing_mm, arrangement=args.beams, beamlet_mm=args.beamlet_mm, progress=progress)
    print(format_table(result.constraints), file=out)
    gtv = result.metrics.get("gtv", {})
    print(f"prescription {regimen.dose_gy:g} Gy / {regimen.fractions} fx; maximum achievable (GTV Dmin at the "
          f"hard cord limits, escalated) {result.achievable_prescription_gy:.1f} Gy; PTV coverage {100 * result.coverage_achieved:.0f}%; "
          f"GTV D95 {gtv.get('D95%', float('nan')):.1f} Gy", file=out)
    for note in result.notes:
        print(f"note: {note}", file=out)
    if args.json:
        write_text_atomically(args.json, result.to_json())
        print(f"wrote {args.json}", file=out)
    print(DISCLAIMER, file=out)
    return 0


def _weights(text: str | None) -> dict | None:
    if not text:
        return None
    weights = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        try:
            weights[key.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--weights items must be key=number, got {item!r}") from None
        if not sep:
            raise ValueError(f"--weights items must be key=number, got {item!r}")
    return weights


def _outputs(args, *names) -> None:
    for name in names:
        path = getattr(args, name, None)
        if path and not Path(path).parent.exists():
            raise ValueError(f"--{name} folder {str(Path(path).parent)!r} does not exist")


def _compare(args, out) -> int:
    from scenes.cases import load_case

    from planner.clinical.scorecard import compare_strategies
    from planner.clinical.strategies import standard_strategies

    _outputs(args, "json", "csv")
    weights = _weights(args.weights)
    case = load_case(args.case)
    menu = None
    if args.strategies:
        everything = {s.key: s for s in standard_strategies(case, sins_total=18, mechanical_pain=True)}
        wanted = [key.strip() for key in args.strategies.split(",")]
        unknown = [key for key in wanted if key not in everything]
        if unknown:
            raise ValueError(f"--strategies: unknown {', '.join(unknown)}; allowed: {', '.join(everything)}")
        menu = [everything[key] for key in wanted]
    card = compare_strategies(case, strategies=menu, weights=weights, weeks_delay=args.weeks_delay, grid_mm=args.spacing_mm,
                              progress=ProgressBar(sys.stderr))
    colour = not args.no_colour and is_terminal(out)
    print(card.table(colour=colour), file=out)
    if args.json:
        write_text_atomically(args.json, card.to_json())
        print(f"wrote {args.json}", file=out)
    if args.csv:
        write_text_atomically(args.csv, card.to_csv())
        print(f"wrote {args.csv}", file=out)
    return 0


def _timeline(args, out) -> int:
    from planner.clinical.timeline import timeline

    _outputs(args, "json")
    try:
        weeks = [float(w) for w in args.weeks.split(",")]
    except ValueError:
        raise ValueError(f"--weeks must be comma-separated numbers like 0,2,4,8,12, got {args.weeks!r}") from None
    result = timeline(args.case, weeks=weeks, grid_mm=args.spacing_mm, progress=ProgressBar(sys.stderr))
    print(result.table(), file=out)
    if args.json:
        write_text_atomically(args.json, result.to_json())
        print(f"wrote {args.json}", file=out)
    return 0


def _demo(args, out) -> int:
    from scenes.cases import DEFAULT_CASE

    from .demo import run_demo

    result = run_demo(args.out, case=args.case or DEFAULT_CASE, progress=ProgressBar(sys.stderr),
                      three_d=not args.no_3d)
    colour = is_terminal(out)
    print(result.card.table(colour=colour), file=out)
    gaps, achievable, rx = result.gap_study
    print("maximum achievable prescription (Gy, 2 fractions) by separation gap: "
          + ", ".join(f"{g:g} mm {a:.1f}" for g, a in zip(gaps, achievable)), file=out)
    print(result.timeline.summary(), file=out)
    print(f"report: {result.report}  ({result.seconds['total']:.0f} s)", file=out)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    from scenes.cases import CaseError

    out = sys.stdout
    try:
        from planner.cli.view import run_view

        handlers = {"scene": _scene, "plan": _plan, "compare": _compare, "timeline": _timeline, "demo": _demo,
                    "view": run_view}
        if args.command == "cases":
            return _cases(out)
        if args.command in handlers:
            return handlers[args.command](args, out)
    except (CaseError, ValueError, KeyError, FileNotFoundError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        print(f"spinesim {args.command}: error: {message}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command}")
    return 2
