"""``spinesim export CASE-or-PLAN.json --dicom DIR``: a case or a plan as a DICOM RT set.

A case (teaching id or .toml) writes its phantom as CT + RT Structure Set; with ``--dose``
and ``--fractions`` it is planned first and the RT Dose and RT Plan come too. A plan file
written by ``spinesim plan --json`` is planned again from what it records (case, regimen,
protocol, gap; grid, engine, beams and beamlet size when the file has them, else this
command's flags, whose defaults are the plan command's) and written whole. ``--picture``
also renders the written set (RT Dose over the CT with the contours) from the files.
"""

from __future__ import annotations

import json
from pathlib import Path

NAME = "export"


def add_parser(commands) -> None:
    from planner.cli.commands import ARRANGEMENTS, BEAMLET_MM, DOSE_MAX_GY, FRACTIONS_MAX, PLAN_GRID_MM, _spacing

    parser = commands.add_parser(NAME, help="write a case or a plan (JSON from `spinesim plan --json`) as DICOM RT "
                                            "(CT, structures, dose, plan) for a treatment-planning viewer")
    parser.add_argument("source", help="teaching case id, a case .toml file, or a plan .json file")
    parser.add_argument("--dicom", required=True, help="output folder for the DICOM RT set (new or empty)")
    parser.add_argument("--dose", type=float, default=None,
                        help=f"with a case: plan this prescription first (Gy, whole course, up to {DOSE_MAX_GY:g})")
    parser.add_argument("--fractions", type=int, default=None, help=f"with --dose: number of fractions (1..{FRACTIONS_MAX})")
    parser.add_argument("--protocol", default="hytec", help="constraint protocol of the plan (default hytec)")
    parser.add_argument("--gap-mm", type=float, default=None, help="separation surgery first (0..10 mm; 0: none)")
    parser.add_argument("--engine", choices=("superposition", "pencil"), default="superposition",
                        help="final dose engine (default superposition)")
    parser.add_argument("--spacing-mm", type=_spacing, default=PLAN_GRID_MM,
                        help="grid z,y,x in mm (default 2.5,1.25,1.25, the plan command's)")
    parser.add_argument("--beams", choices=ARRANGEMENTS, default="sbrt_fan", help="beam arrangement (default sbrt_fan)")
    parser.add_argument("--beamlet-mm", type=float, choices=BEAMLET_MM, default=5.0, help="beamlet size (default 5)")
    parser.add_argument("--picture", default=None, help="also render the written set to this image (.png, .svg, .pdf)")


def _plan_file(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"{path}: cannot read the plan file ({error.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a JSON plan file ({error})") from None
    regimen = data.get("regimen") if isinstance(data, dict) else None
    if not isinstance(regimen, dict) or not isinstance(data.get("case"), str) or "dose_gy" not in regimen \
            or "fractions" not in regimen:
        raise ValueError(f"{path}: not a plan written by `spinesim plan --json` (needs case and regimen.dose_gy, "
                         "regimen.fractions)")
    return data


def check(args) -> None:
    from planner.cli.commands import (PICTURE_SUFFIXES, _check_case, _check_gap, _check_output_file, _check_regimen,
                                      _check_writable_folder)

    source = Path(args.source)
    if source.suffix.lower() == ".json":
        if not source.is_file():
            raise ValueError(f"{args.source}: no such plan file")
        data = _plan_file(source)
        if args.dose is not None or args.fractions is not None or args.gap_mm is not None:
            raise ValueError("--dose/--fractions/--gap-mm: a plan file carries its own regimen and gap; "
                             "give them with a case only")
        _check_case(data["case"], "plan file case")
        args.protocol = data.get("protocol") or args.protocol
        _check_regimen(data["regimen"]["dose_gy"], data["regimen"]["fractions"], args.protocol,
                       dose_flag="plan file regimen.dose_gy", fractions_flag="plan file regimen.fractions")
        args.plan_data = data
    else:
        _check_case(args.source)
        args.plan_data = None
        if (args.dose is None) != (args.fractions is None):
            raise ValueError("--dose and --fractions go together")
        if args.dose is not None:
            _check_regimen(args.dose, args.fractions, args.protocol)
    _check_gap(args)
    folder = Path(args.dicom)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ValueError(f"--dicom folder {args.dicom!r} exists and is not empty: give a new or empty folder")
    _check_writable_folder("--dicom", folder.resolve().parent)
    _check_output_file("--picture", args.picture, PICTURE_SUFFIXES)


def run(args, out) -> int:
    import time

    from planner.common.safety import DISCLAIMER
    from planner.dicom import export_dicom

    start = time.perf_counter()

    def progress(message):
        print(f"[{time.perf_counter() - start:6.1f} s] {message}", file=out, flush=True)

    data = args.plan_data
    plan = scene = None
    if data is not None or args.dose is not None:
        from planner.radiotherapy.plan import Regimen, plan_case

        if data is not None:
            regimen = Regimen(float(data["regimen"]["dose_gy"]), int(data["regimen"]["fractions"]))
            case, gap = data["case"], data.get("gap_mm")
            data = {**data, **(data.get("settings") or {})}  # plan JSON keeps how it was made under "settings"
            grid = tuple(data.get("grid_mm") or args.spacing_mm)
            settings = {"engine": data.get("engine", args.engine), "arrangement": data.get("arrangement", args.beams),
                        "beamlet_mm": float(data.get("beamlet_mm", args.beamlet_mm)),
                        "dose_to": data.get("dose_to", "medium")}  # the quantity the plan was made in
            recorded = [key for key in ("grid_mm", "engine", "arrangement", "beamlet_mm", "dose_to") if key in data]
            print(f"re-planning {case} from {args.source} ({regimen.dose_gy:g} Gy / {regimen.fractions} fx, "
                  f"{args.protocol}); from the file: {', '.join(recorded) or 'nothing beyond case and regimen'}; "
                  f"grid {grid} mm, {settings['engine']}, {settings['arrangement']}, {settings['beamlet_mm']:g} mm beamlets",
                  file=out)
        else:
            regimen, case, gap, grid = Regimen(args.dose, args.fractions), args.source, args.gap_mm, args.spacing_mm
            settings = {"engine": args.engine, "arrangement": args.beams, "beamlet_mm": args.beamlet_mm}
        plan = plan_case(case, regimen=regimen, protocol=args.protocol, gap_mm=gap, grid_mm=grid, progress=progress,
                         **settings)
    else:
        from scenes.cases import build_scene, load_case
        from scenes.surgery import separation_surgery

        case = load_case(args.source)
        progress("building the scene")
        scene = build_scene(case, spacing_mm=args.spacing_mm)
        if args.gap_mm:
            scene = separation_surgery(scene, args.gap_mm)
    progress("writing DICOM")
    written = export_dicom(scene, args.dicom, plan=plan, case_id=None if plan is not None else case.id)
    counts = ", ".join(f"{len(paths)} {modality}" for modality, paths in written.files.items())
    print(f"wrote {written.folder}: {counts}; {len(written.structures)} structures", file=out)
    if written.skipped:
        print(f"not written (no voxel at least half inside): {', '.join(written.skipped)}", file=out)
    if args.picture:
        from planner.dicom.picture import render_dicom_set

        render_dicom_set(written.folder, args.picture)
        print(f"wrote {args.picture}", file=out)
    print(DISCLAIMER, file=out)
    return 0

