"""The ``spinesim`` command line.

``main(argv=None) -> int`` parses arguments and returns the exit status, so tests call it
in-process. Bad input gives a one-line error naming the flag and what is allowed, and exit
status 2; nothing is written in that case.

Every argument is checked (:data:`_CHECKS`: ranges, the case, weights, strategy keys, output
paths) before a handler imports numba, scipy, matplotlib, PyVista or the planner rooms: those
imports take about a second (more with a cold JIT cache), a typo should not.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tomllib
from importlib import resources
from pathlib import Path

from planner.cli import checks
from planner.common.files import write_text_atomically, write_together
from planner.common.progress import ProgressBar, is_terminal
from planner.common.safety import DISCLAIMER

__all__ = ["main"]

# Limits the planner enforces inside modules too heavy to import for a check, repeated so
# that bad input is refused in milliseconds; tests/planner/test_cli.py holds each equal to
# its source (named beside it).
DOSE_MAX_GY = 80.0  # planner.radiotherapy.plan.Regimen: prescription in (0, 80] Gy
FRACTIONS_MAX = 40  # Regimen: 1..40 fractions
GAP_MAX_MM = 10.0  # scenes.surgery.separation_surgery: gap in (0, 10] mm; 0 here = no surgery
WEEKS_MAX = 520.0  # scenes.cases.grow, compare_strategies, timeline: 0..520 weeks
WEIGHT_MAX = 100.0  # planner.clinical.scorecard: each weight 0..100
WEIGHT_KEYS = ("local_control", "walking", "pain", "myelopathy", "fracture", "complications", "wound", "time",
               "hospital", "retreatment")  # planner.clinical.scorecard.DEFAULT_WEIGHTS (every default above 0)
ARRANGEMENTS = ("sbrt_fan", "arc", "pa", "ap_pa")  # planner.radiotherapy.beams.ARRANGEMENTS
BEAMLET_MM = (2.5, 5.0, 10.0)  # planner.radiotherapy.beams.make_beams
VIEW_PROTOCOL = "hytec"  # plan_case's default protocol, which `spinesim view --dose` plans with
# planner.radiotherapy.plan.GAP_RESOLVING_GRID_MM (objectives.toml [gap_resolution]): the plan
# command's grid, 1.25 mm in-plane so that 1 mm steps of --gap-mm change the plan.
PLAN_GRID_MM = (2.5, 1.25, 1.25)
PICTURE_SUFFIXES = (".png", ".svg", ".pdf")
#: Beams per arrangement (planner.radiotherapy.beams.arrangement_angles with its defaults), for
#: the memory estimate before any import; tests/planner/cli/test_reliability.py holds them equal.
ARRANGEMENT_BEAMS = {"sbrt_fan": 9, "arc": 17, "pa": 1, "ap_pa": 2}
#: The settings of each command that shrink a job, named when one is refused for memory.
MEMORY_KNOBS = {"scene": "coarsen --spacing-mm (e.g. 2.5,1.25,1.25)",
                "plan": "coarsen --spacing-mm (e.g. 2.5,1.25,1.25), use larger --beamlet-mm (5 or 10) or fewer "
                        "--beams (pa, ap_pa)",
                "compare": "coarsen --spacing-mm (e.g. 2.5,1.25,1.25)", "timeline": "coarsen --spacing-mm (e.g. 2.5,1.25,1.25)",
                "demo": "the demo's grid is fixed; free some memory", "view": "the view's grid is fixed; free some memory"}


def _spacing(text: str) -> tuple[float, float, float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be numbers like 2.5 or 2.5,1.25,1.25, got {text!r}") from None
    if len(values) == 1:
        values = values * 3
    if len(values) != 3 or any(not 0.5 <= v <= 5.0 for v in values):
        raise argparse.ArgumentTypeError(f"must be one or three values (z,y,x) in 0.5..5 mm, got {text!r}")
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
    scene.add_argument("--weeks", type=float, default=0.0,
                       help=f"simulate this many weeks of untreated growth first (0..{WEEKS_MAX:g})")
    checks.add_memory_budget_argument(scene)
    plan = commands.add_parser("plan", help="plan a case and check the cord constraints")
    plan.add_argument("case", nargs="?", default=None,
                      help="teaching case id or a case .toml file (with --dicom optional: the clinical context)")
    plan.add_argument("--dose", type=float, required=True,
                      help=f"prescription dose in Gy (whole course, up to {DOSE_MAX_GY:g})")
    plan.add_argument("--fractions", type=int, required=True, help=f"number of fractions (1..{FRACTIONS_MAX})")
    plan.add_argument("--gap-mm", type=float, default=None,
                      help=f"separation surgery first, leaving this gap (0..{GAP_MAX_MM:g} mm; 0: no surgery)")
    plan.add_argument("--protocol", default="hytec", help="constraint protocol (hytec, tg101, rtog0631, quantec)")
    plan.add_argument("--engine", choices=("superposition", "pencil"), default="superposition",
                      help="final dose engine (pencil is faster, less accurate in bone and lung)")
    plan.add_argument("--spacing-mm", type=_spacing, default=PLAN_GRID_MM,
                      help="planning grid z,y,x in mm (default 2.5,1.25,1.25: resolves 1 mm steps of --gap-mm; "
                           "2.5 is about 5x faster but cannot tell a 1 mm from a 2 mm gap)")
    plan.add_argument("--beams", choices=ARRANGEMENTS, default="sbrt_fan", help="sbrt_fan (9 beams), arc, pa or ap_pa")
    plan.add_argument("--beamlet-mm", type=float, choices=BEAMLET_MM, default=5.0,
                      help="beamlet size at the isocentre: 5 (default), 2.5 or 10")
    plan.add_argument("--dose-to", choices=("medium", "water"), default="medium",
                      help="dose to each voxel's medium (default) or dose to water (stopping-power ratios, 6 MV)")
    plan.add_argument("--json", default=None, help="also write the result as JSON to this file")
    plan.add_argument("--dicom", default=None, help="plan the CT + RT Structure Set in this DICOM folder (needs a GTV)")
    checks.add_memory_budget_argument(plan)
    compare = commands.add_parser("compare", help="compare the standard strategies on a case: the teaching scorecard")
    compare.add_argument("case", help="teaching case id or a case .toml file")
    compare.add_argument("--weeks-delay", type=float, default=0.0,
                         help=f"weeks of untreated growth before treatment (0..{WEEKS_MAX:g})")
    compare.add_argument("--weights", default=None,
                         help=f"ranking weights 0..{WEIGHT_MAX:g}, e.g. walking=3,local_control=1 "
                              f"(keys: {', '.join(WEIGHT_KEYS)})")
    compare.add_argument("--strategies", default=None,
                         help="comma-separated strategy keys from the standard menu (default: the whole menu)")
    compare.add_argument("--spacing-mm", type=_spacing, default=PLAN_GRID_MM,
                         help="planning grid z,y,x in mm (default 2.5,1.25,1.25: resolves 1 mm steps of a gap)")
    compare.add_argument("--json", default=None, help="also write the scorecard as JSON to this file")
    compare.add_argument("--csv", default=None, help="also write the scorecard as CSV to this file")
    compare.add_argument("--no-colour", action="store_true", help="plain text (colours are on for terminals)")
    checks.add_memory_budget_argument(compare)
    demo = commands.add_parser("demo", help="the default case end to end: strategies compared, report written")
    demo.add_argument("--out", default="spinesim-demo", help="report folder (default ./spinesim-demo)")
    demo.add_argument("--case", default=None, help="another teaching case id or .toml instead of the default")
    demo.add_argument("--no-3d", action="store_true", help="skip the 3-D views (no OpenGL needed)")
    checks.add_memory_budget_argument(demo)
    from planner.cli.view import add_view_parser

    add_view_parser(commands)
    line = commands.add_parser("timeline", help="delay of diagnosis: re-evaluate a case after weeks of growth")
    line.add_argument("case", help="teaching case id or a case .toml file")
    line.add_argument("--weeks", default="0,2,4,8,12",
                      help=f"comma-separated increasing delays in weeks, 0..{WEEKS_MAX:g} (default 0,2,4,8,12)")
    line.add_argument("--spacing-mm", type=_spacing, default=PLAN_GRID_MM,
                      help="planning grid z,y,x in mm (default 2.5,1.25,1.25: resolves 1 mm steps of a gap)")
    line.add_argument("--json", default=None, help="also write the timeline as JSON to this file")
    checks.add_memory_budget_argument(line)
    for module in _command_modules():
        module.add_parser(commands)
    return parser


#: Commands that live in their own module under planner/cli/. Each module defines
#: ``NAME``, ``add_parser(commands)``, ``check(args)`` (standard library only: runs before any
#: heavy import, raises ValueError with a one-line message) and ``run(args, out) -> int``.
#: A module must import nothing heavy at module level: the parser imports all of them.
COMMAND_MODULES: tuple[str, ...] = ("planner.cli.sweep", "planner.cli.teach", "planner.cli.export", "planner.cli.bench")


def _command_modules():
    import importlib

    return [importlib.import_module(name) for name in COMMAND_MODULES]


# --- the checks: standard library and TOML reads only --------------------------------------

def _in_range(flag: str, value, high, unit: str = "", *, low=0, above_low: bool = False, note: str = "") -> None:
    inside = math.isfinite(value) and (value > low if above_low else value >= low) and value <= high
    if not inside:
        span = f"({low:g}, {high:g}]" if above_low else f"{low:g}..{high:g}"
        raise ValueError(f"{flag} must be in {span}{unit}{note}, got {value:g}")


def _packaged_cases() -> list[str]:
    # What scenes.cases.list_cases reads, without importing scenes.cases (it pulls in scipy).
    folder = resources.files("scenes.data").joinpath("cases")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def _check_case(text: str, flag: str = "") -> None:
    """The case exists (id) or is a readable TOML file; its fields are checked by load_case."""
    label = f"{flag}: " if flag else ""
    path = Path(text)
    if not path.suffix:  # scenes.cases.load_case's rule: no suffix means a packaged id
        known = _packaged_cases()
        if text not in known:
            raise ValueError(f"{label}no teaching case named {text!r}; known cases: {', '.join(known)}")
        return
    if path.is_dir():
        raise ValueError(f"{label}{text}: is a folder, not a case file")
    if not path.is_file():
        raise ValueError(f"{label}{text}: no such case file")
    try:
        tomllib.loads(path.read_text(encoding="utf-8-sig"))  # -sig: a byte-order mark is not an error
    except RecursionError:
        raise ValueError(f"{label}{text}: not valid TOML (nested too deeply)") from None
    except OSError as error:
        raise ValueError(f"{label}{text}: cannot read the case file ({error.strerror})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{label}{text}: not a UTF-8 text file") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{label}{text}: not valid TOML ({error})") from None


def _check_writable_folder(flag: str, folder: Path) -> None:
    checks.check_writable_folder(flag, folder)


def _check_output_file(flag: str, text: str | None, suffixes: tuple = ()) -> None:
    # Files are written atomically (a temporary file beside the target, then a rename): the
    # folder's permission counts, and /proc, /sys, /dev, folders and read-only files are refused.
    checks.check_output_file(flag, text, suffixes)


def _check_regimen(dose, fractions, protocol: str, *, dose_flag="--dose", fractions_flag="--fractions") -> None:
    from planner.radiotherapy.protocols import protocol_tables  # TOML only

    _in_range(f"{dose_flag} (prescription dose)", dose, DOSE_MAX_GY, " Gy", above_low=True)
    _in_range(f"{fractions_flag} (number of fractions)", fractions, FRACTIONS_MAX, low=1)
    tables = protocol_tables()
    if protocol not in tables:
        raise ValueError(f"--protocol: unknown protocol {protocol!r}; known: {', '.join(sorted(tables))}")
    allowed = tables[protocol]["fractions"]
    if fractions not in allowed:
        raise ValueError(f"{fractions_flag} {fractions}: protocol {protocol!r} has limits for "
                         f"{', '.join(map(str, allowed))} fractions only")


def _check_gap(args) -> None:
    if args.gap_mm is not None:
        _in_range("--gap-mm", args.gap_mm, GAP_MAX_MM, " mm", note=" (0: no separation surgery)")
        if args.gap_mm == 0:
            args.gap_mm = None  # the planner's "no surgery", so the plan is the one without the flag


def _parse_weights(text: str | None) -> dict | None:
    if text is None:
        return None
    if not text.strip():
        raise ValueError(f"--weights is empty; give key=number items like walking=3 (keys: {', '.join(WEIGHT_KEYS)})")
    weights = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        try:
            number = float(value)
        except ValueError:
            number = None
        if not sep or number is None:
            raise ValueError(f"--weights items must be key=number, got {item!r}")
        if key not in WEIGHT_KEYS:
            raise ValueError(f"--weights: unknown key {key!r}; allowed: {', '.join(WEIGHT_KEYS)}")
        _in_range(f"--weights {key}", number, WEIGHT_MAX)
        weights[key] = number
    if len(weights) == len(WEIGHT_KEYS) and not any(weights.values()):
        raise ValueError("--weights: at least one weight must be above 0, or nothing can be ranked")
    return weights


def _parse_strategies(text: str | None) -> list[str] | None:
    if text is None:
        return None
    if not text.strip():
        raise ValueError("--strategies is empty; give comma-separated keys from the standard menu, or leave it out")
    from planner.clinical.data import read_table  # TOML only

    menu = [entry["key"] for entry in read_table("strategies")["menu"]]
    wanted = [key.strip() for key in text.split(",")]
    unknown = [key for key in wanted if key not in menu]
    if unknown:
        raise ValueError(f"--strategies: unknown {', '.join(unknown)}; allowed: {', '.join(menu)}")
    return wanted


def _parse_weeks(text: str) -> list[float]:
    try:
        weeks = [float(w) for w in text.split(",")]
    except ValueError:
        raise ValueError(f"--weeks must be comma-separated numbers like 0,2,4,8,12, got {text!r}") from None
    for week in weeks:
        _in_range("--weeks", week, WEEKS_MAX, " weeks")
    if weeks != sorted(set(weeks)):
        raise ValueError(f"--weeks must be distinct and increasing, got {text!r}")
    return weeks


def _check_memory(args, case, *, engine=None, beamlet_mm=5.0, n_beams=9, retained_plans=0, sessions=0) -> None:
    # Last: it imports the anatomy (numpy, scipy; about a second), every cheaper check passed.
    if getattr(args, "memory_budget", None) is not None:
        checks.memory_budget_of(args)  # a malformed size is an argument error, refused first
    if case is not None:
        checks.check_plan_memory(args, case, engine=engine, beamlet_mm=beamlet_mm, n_beams=n_beams,
                                 knobs=MEMORY_KNOBS[args.command], out=sys.stdout, retained_plans=retained_plans,
                                 sessions=sessions)


def _menu_size(strategies) -> int:
    """Plans a comparison keeps: the strategies asked for, or the whole standard menu (TOML)."""
    if strategies:
        return len(strategies)
    from planner.clinical.data import read_table  # TOML only

    return len(read_table("strategies")["menu"])


def _check_scene(args) -> None:
    _check_case(args.case)
    _check_output_file("--out", args.out, PICTURE_SUFFIXES)
    _in_range("--weeks", args.weeks, WEEKS_MAX, " weeks")
    _check_memory(args, args.case)


def _check_plan(args) -> None:
    if args.case is None and args.dicom is None:  # with --dicom the case is optional (clinical context)
        raise ValueError("case: give a teaching case id or a case .toml file (or --dicom DIR)")
    if args.case is not None:
        _check_case(args.case)
    _check_regimen(args.dose, args.fractions, args.protocol)
    _check_gap(args)
    if args.dicom is not None:  # planner.dicom.imported.plan_dicom: a CT folder, planned as it is
        folder = Path(args.dicom)
        if not folder.is_dir() or not any(p.is_file() for p in folder.iterdir()):
            raise ValueError(f"--dicom folder {args.dicom!r} does not exist or holds no files")
        if args.gap_mm is not None:
            raise ValueError("--gap-mm: separation surgery needs a phantom's anatomy; an imported CT is planned as it is")
    _check_output_file("--json", args.json)
    _check_memory(args, args.case if args.dicom is None else None, engine=args.engine, beamlet_mm=args.beamlet_mm,
                  n_beams=ARRANGEMENT_BEAMS[args.beams])


def _check_compare(args) -> None:
    _check_case(args.case)
    _in_range("--weeks-delay", args.weeks_delay, WEEKS_MAX, " weeks")
    args.weights = _parse_weights(args.weights)
    args.strategies = _parse_strategies(args.strategies)
    checks.check_outputs({"--json": args.json, "--csv": args.csv})
    _check_memory(args, args.case, engine="superposition", retained_plans=_menu_size(args.strategies))


def _check_timeline(args) -> None:
    _check_case(args.case)
    args.weeks = _parse_weeks(args.weeks)
    _check_output_file("--json", args.json)
    _check_memory(args, args.case, engine="superposition")


def _check_demo(args) -> None:
    if args.case is not None:
        _check_case(args.case, "--case")
    checks.check_output_folder("--out", args.out)
    args.spacing_mm = PLAN_GRID_MM  # the demo's grid (planner.cli.demo.GAP_STUDY_GRID_MM)
    # The comparison's plans stay for the report while the gap study's session plans beside them.
    _check_memory(args, args.case or _DEFAULT_CASE, engine="superposition", retained_plans=_menu_size(None), sessions=1)


def _check_view(args) -> None:
    _check_case(args.case)
    if (args.dose is None) != (args.fractions is None):
        raise ValueError("--dose and --fractions go together")
    if args.dose is not None:
        _check_regimen(args.dose, args.fractions, VIEW_PROTOCOL)
    _check_gap(args)
    folder = Path(args.out)
    if not folder.is_dir():
        raise ValueError(f"--out folder {str(folder)!r} does not exist")
    if args.png:
        checks.check_output_folder("--out", folder)
    args.spacing_mm = VIEW_GRID_MM  # view builds and plans on this grid
    _check_memory(args, args.case, engine="pencil" if args.dose is not None else None)


#: The demo's default case (scenes.cases.DEFAULT_CASE) and the grid `spinesim view` builds and
#: plans a case on (planner.pictures.three_d.view's and plan_case's grid_mm default), for the
#: memory estimate.
_DEFAULT_CASE = "t10_rcc_escc2"
VIEW_GRID_MM = (2.5, 2.5, 2.5)

_CHECKS = {"scene": _check_scene, "plan": _check_plan, "compare": _check_compare, "timeline": _check_timeline,
           "demo": _check_demo, "view": _check_view}


# --- the commands: arguments already checked --------------------------------------------

def _cases(args, out) -> int:
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
    from planner.radiotherapy.plan import Regimen, describe_binding, plan_case

    regimen = Regimen(args.dose, args.fractions)
    start = time.perf_counter()

    def progress(message):
        print(f"[{time.perf_counter() - start:6.1f} s] {message}", file=out, flush=True)

    if args.dicom is not None:
        from planner.dicom.imported import plan_dicom

        result = plan_dicom(args.dicom, case=args.case, regimen=regimen, protocol=args.protocol, engine=args.engine,
                            spacing_mm=args.spacing_mm, arrangement=args.beams, beamlet_mm=args.beamlet_mm,
                            dose_to=args.dose_to,
                            progress=progress)
    else:
        result = plan_case(args.case, regimen=regimen, protocol=args.protocol, gap_mm=args.gap_mm, engine=args.engine,
                           grid_mm=args.spacing_mm, arrangement=args.beams, beamlet_mm=args.beamlet_mm,
                           dose_to=args.dose_to,
                           progress=progress)
    print(format_table(result.constraints), file=out)
    gtv = result.metrics.get("gtv", {})
    print(f"prescription {regimen.dose_gy:g} Gy / {regimen.fractions} fx; maximum achievable (GTV Dmin with every "
          f"organ limit and the escalation bound kept, escalated) {result.achievable_prescription_gy:.1f} Gy; "
          f"PTV coverage {100 * result.coverage_achieved:.0f}%; GTV D95 {gtv.get('D95%', float('nan')):.1f} Gy", file=out)
    print(f"binding limit: {describe_binding(result.achievable_binding)}", file=out)
    organs = [entry for entry in result.achievable_limits if entry["kind"] == "organ limit"]
    if result.achievable_binding.get("kind") == "escalation bound" and organs:
        print(f"organ headroom: {describe_binding(organs[0])} alone would allow {organs[0]['figure_gy']:.1f} Gy", file=out)
    for note in result.notes:
        print(f"note: {note}", file=out)
    if args.json:
        write_text_atomically(args.json, result.to_json())
        print(f"wrote {args.json}", file=out)
    print(DISCLAIMER, file=out)
    return 0


def _compare(args, out) -> int:
    from scenes.cases import load_case

    from planner.clinical.scorecard import compare_strategies
    from planner.clinical.menu import standard_strategies

    case = load_case(args.case)
    menu = None
    if args.strategies:
        everything = {s.key: s for s in standard_strategies(case)}  # the whole menu, ungated
        # Every key is on the menu (checked); some are offered only to some cases.
        unavailable = [key for key in args.strategies if key not in everything]
        if unavailable:
            raise ValueError(f"--strategies: {', '.join(unavailable)} not offered for {case.id}; "
                             f"allowed: {', '.join(everything)}")
        menu = [everything[key] for key in args.strategies]
    card = compare_strategies(case, strategies=menu, weights=args.weights, weeks_delay=args.weeks_delay,
                              grid_mm=args.spacing_mm, progress=ProgressBar(sys.stderr))
    colour = not args.no_colour and is_terminal(out)
    print(card.table(colour=colour), file=out)
    # Both or neither: a failure writing one leaves no new file behind.
    written = write_together([(path, text()) for path, text in ((args.json, card.to_json), (args.csv, card.to_csv)) if path])
    for path in written:
        print(f"wrote {path}", file=out)
    return 0


def _timeline(args, out) -> int:
    from planner.clinical.timeline import timeline

    result = timeline(args.case, weeks=args.weeks, grid_mm=args.spacing_mm, progress=ProgressBar(sys.stderr))
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
    gaps, achievable, rx, *rest = result.gap_study
    bindings = rest[0] if rest else [None] * len(gaps)
    print("maximum achievable prescription (Gy, 2 fractions) by separation gap: "
          + ", ".join(f"{g:g} mm {a:.1f}" + (f" ({_binding_short(b)})" if b else "")
                      for g, a, b in zip(gaps, achievable, bindings)), file=out)
    print(result.timeline.summary(), file=out)
    print(f"report: {result.report}  ({result.seconds['total']:.0f} s)", file=out)
    return 0


def _binding_short(binding: dict) -> str:
    """'thecal_sac Dmax' or 'escalation bound': which limit binds, for one-line summaries."""
    return "escalation bound" if binding["kind"] == "escalation bound" else f"{binding['structure']} {binding['metric']}"


def _view(args, out) -> int:
    from planner.cli.view import run_view

    return run_view(args, out)


_HANDLERS = {"cases": _cases, "scene": _scene, "plan": _plan, "compare": _compare, "timeline": _timeline,
             "demo": _demo, "view": _view}


def main(argv: list[str] | None = None, *, report_unexpected: bool | None = None) -> int:
    """Run the command line; returns the exit status.

    Bad input, refused memory and running out of memory are one line on stderr (status 2).
    An unexpected error (a bug) is one line too, naming the file its full trace was saved to
    (status 1), when ``report_unexpected`` is true, which it is by default when run as a
    program (``argv`` None: the ``spinesim`` script, ``python -m planner``); a caller passing
    ``argv`` (tests, other programs) gets the exception itself unless it asks otherwise.
    """
    if report_unexpected is None:
        report_unexpected = argv is None
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    modules = {module.NAME: module for module in _command_modules()}
    try:
        if args.command in modules:
            modules[args.command].check(args)
            return modules[args.command].run(args, sys.stdout)
        if args.command in _CHECKS:
            _CHECKS[args.command](args)
        return _HANDLERS[args.command](args, sys.stdout)
    except (ValueError, KeyError, FileNotFoundError) as error:  # scenes.cases.CaseError is a ValueError
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        print(f"spinesim {args.command}: error: {message}", file=sys.stderr)
        return 2
    except MemoryError as error:  # planner.radiotherapy.influence.InfluenceTooLarge too
        knobs = MEMORY_KNOBS.get(args.command, "use a coarser grid")
        what = str(error).split(": ")[0] or "an allocation failed"  # not the library's own advice: its knobs
        print(f"spinesim {args.command}: error: out of memory ({what}); {knobs}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"spinesim {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `spinesim ... | head`: the reader left; say nothing more
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    except Exception as error:  # noqa: BLE001 -- a user sees one line, the trace goes to a file
        if not report_unexpected:
            raise
        saved = checks.save_trace(args.command, error)
        where = f"full trace saved to {saved}" if saved else "the trace could not be saved"
        first = (str(error).strip().splitlines() or [""])[0]
        print(f"spinesim {args.command}: unexpected error: {type(error).__name__}: {first} ({where}; "
              f"please report it)", file=sys.stderr)
        return 1
