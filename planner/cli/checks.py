"""Checks every command runs before its work: output paths, the memory budget, and the one-line
answer to an unexpected error. Standard library only at module level (the memory estimate
imports the anatomy, numpy and scipy, not numba), so a command module may call these from its
``check(args)``::

    from planner.cli.checks import check_outputs
    check_outputs({"--json": args.json, "--csv": args.csv})      # raises ValueError

Outputs are then written all or nothing with :func:`planner.common.files.write_together`.
"""

from __future__ import annotations

import datetime
import os
import tempfile
import traceback
from pathlib import Path

__all__ = ["check_output_file", "check_outputs", "check_output_folder", "check_writable_folder",
           "add_memory_budget_argument", "memory_budget_of", "scene_grid_shape", "estimate_plan_memory",
           "check_plan_memory", "influence_matrix_bytes", "save_trace", "INFLUENCE_LIMIT_GIB",
           "SCENE_PEAK_BYTES_PER_VOXEL"]

#: Folders whose files are the kernel's, not the user's: never an output.
SYSTEM_FOLDERS = ("/proc", "/sys", "/dev")

#: Peak memory of building a scene, per voxel of its grid (tracemalloc peak of build_scene on
#: t10_rcc_escc2: 51 B at 1.25 mm, 71 B at 2.5 x 1.25 x 1.25 mm, where fixed costs weigh more;
#: 3.5 GB for a 0.5 mm grid of 64 M voxels), plus the fixed cost seen at small grids.
SCENE_PEAK_BYTES_PER_VOXEL = 56
SCENE_FIXED_BYTES = 100 * 2**20
#: A plan's memory beyond its scene, per voxel of the grid: the PTV/PRV masks, the
#: optimisation region, and the final dose engine's float64 volumes (superposition keeps
#: terma, released energy, deposited energy and the densities per beam; pencil beam fewer).
PLAN_BYTES_PER_VOXEL = {"superposition": 120, "pencil": 60}
#: Influence matrix rows (optimisation region, planner.radiotherapy.plan) as a volume in mm^3,
#: measured on t10_rcc_escc2: 14 810 rows of 2.5 mm voxels (231 000 mm^3), 61 861 at
#: 2.5 x 1.25 x 1.25 mm (242 000), 130 433 at 1.25 mm (255 000); rows scale with 1 / voxel volume. The budget counts twice that (lesions larger than the default case's);
#: the per-matrix limit is checked on the measured figure, so no plan that fits is refused.
INFLUENCE_REGION_MM3 = 255_000
LARGER_LESION_FACTOR = 2
#: Matrix entries per row and beam by beamlet size (mm), measured on t10_rcc_escc2 with 9 beams
#: (build_influence's count): at 5 mm 15.3 on 2.5 mm voxels, 16.5 at 2.5 x 1.25 x 1.25, 18.0 at
#: 1.25 mm; at 2.5 mm 24 and at 10 mm 13.4 on 2.5 mm voxels (scaled by 18 / 15.3 here).
INFLUENCE_ENTRIES_PER_ROW_BEAM = {2.5: 28.0, 5.0: 18.0, 10.0: 16.0}
#: What a command comparing plans keeps of each until its report (a scorecard row): the final
#: and the scaled best dose (float64) and the operated scene's densities and masks, per voxel of
#: the grid. Measured with tracemalloc at the end of compare_strategies on the demo's grid
#: (t10_rcc_escc2, 2.5 x 1.25 x 1.25 mm, 2.0 M voxels, 2026-12-07): 590 MiB held for 8
#: strategies, 249 MiB of it the influence memo's two matrices: 21 B per voxel and plan.
RETAINED_PLAN_BYTES_PER_VOXEL = 24
#: Matrices the planner's influence memo keeps (planner.radiotherapy.plan._INFLUENCE_MEMO_SIZE):
#: a command planning several strategies holds that many at once.
MEMO_MATRICES = 2
#: build_influence's own limit on one matrix (its ``memory_budget_gb`` default; the plan uses it).
INFLUENCE_LIMIT_GIB = 1.0
#: Jobs estimated above this print their estimate before they start.
ANNOUNCE_BYTES = 512 * 2**20


# --- output paths ------------------------------------------------------------------------

def check_writable_folder(flag: str, folder: Path) -> None:
    """ValueError unless ``folder`` is an existing folder this user may create files in."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{flag} folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} folder {str(folder)!r} is not writable")


def _system_folder(path: Path) -> str | None:
    resolved = str(Path(os.path.abspath(path)).resolve())
    for folder in SYSTEM_FOLDERS:
        if resolved == folder or resolved.startswith(folder + "/"):
            return folder
    return None


def check_output_file(flag: str, text, suffixes: tuple = ()) -> None:
    """ValueError (naming ``flag``) unless ``text`` can be written as a whole new file.

    The file must end in one of ``suffixes`` (when given), not be a folder, not lie under
    /proc, /sys or /dev, not be an existing read-only file, and its folder must exist and be
    writable (files are written to a temporary name beside the target and renamed into place).
    ``None`` (an output not asked for) passes.
    """
    if text is None:
        return
    if not str(text).strip():
        raise ValueError(f"{flag} is empty; give a file name")
    path = Path(text)
    if suffixes and path.suffix.lower() not in suffixes:
        raise ValueError(f"{flag} must end in {', '.join(suffixes[:-1])} or {suffixes[-1]}, got {path.name!r}")
    system = _system_folder(path)
    if system is not None:
        raise ValueError(f"{flag} {str(text)!r} is under {system}, which holds the system's files, not outputs")
    if path.is_dir():
        raise ValueError(f"{flag} {str(text)!r} is a folder, not a file")
    if path.exists() and not path.is_file():
        raise ValueError(f"{flag} {str(text)!r} exists and is not a regular file")
    if path.is_file() and not os.access(path, os.W_OK):
        raise ValueError(f"{flag} {str(text)!r} exists and is read-only")
    check_writable_folder(flag, path.parent)


def check_outputs(outputs: dict, suffixes: dict | None = None) -> None:
    """:func:`check_output_file` for every ``{flag: path}`` given, and no two the same file."""
    seen = {}
    for flag, text in outputs.items():
        check_output_file(flag, text, (suffixes or {}).get(flag, ()))
        if text is None:
            continue
        key = os.path.normcase(os.path.abspath(text))
        if key in seen:
            raise ValueError(f"{flag} and {seen[key]} name the same file {str(text)!r}; give each its own")
        seen[key] = flag


def check_output_folder(flag: str, text) -> None:
    """ValueError unless ``text`` is a folder to write into: an existing writable folder, or a
    new one whose parent exists and is writable; never a file or a system folder."""
    folder = Path(text)
    if not str(text).strip():
        raise ValueError(f"{flag} is empty; give a folder name")
    system = _system_folder(folder)
    if system is not None:
        raise ValueError(f"{flag} {str(text)!r} is under {system}, which holds the system's files, not outputs")
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{flag} {str(text)!r} is a file, not a folder")
    check_writable_folder(flag, folder if folder.exists() else Path(os.path.abspath(folder)).parent)


# --- memory ------------------------------------------------------------------------------

def add_memory_budget_argument(parser) -> None:
    """Add ``--memory-budget`` (a size like 8G; default half the available memory) to a parser."""
    parser.add_argument("--memory-budget", default=None,
                        help="refuse jobs estimated above this memory, e.g. 8G or 512M "
                             "(default: half the memory available when the command starts)")


def memory_budget_of(args) -> int | None:
    """Bytes of ``args.memory_budget`` (checked; ValueError naming the flag), else the default."""
    from planner.common.memory import default_budget_bytes, parse_memory_size

    text = getattr(args, "memory_budget", None)
    return default_budget_bytes() if text is None else parse_memory_size(text)


def _case_level(case_text: str) -> str | None:
    """The ``[case] level`` of a packaged case id or a case file (None when unreadable: the
    case loader then gives its own clear error)."""
    import tomllib
    from importlib import resources

    path = Path(case_text)
    try:
        if not path.suffix:
            path = Path(str(resources.files("scenes.data").joinpath("cases").joinpath(f"{case_text}.toml")))
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
        level = data.get("case", {}).get("level")
        return level if isinstance(level, str) else None
    except (OSError, ValueError, RecursionError, AttributeError):
        return None


def scene_grid_shape(level: str, spacing_mm) -> tuple | None:
    """Grid shape (z, y, x) a case at ``level`` gets at ``spacing_mm`` (its phantom's default
    grid), without rendering anything; None for an unknown level."""
    from scenes.anatomy import build_anatomy
    from scenes.phantom import default_grid

    try:
        return default_grid(build_anatomy(level, neighbours=1), spacing_mm).shape
    except (ValueError, KeyError):
        return None


def estimate_plan_memory(case_text: str, spacing_mm, *, engine: str | None = None, beamlet_mm: float = 5.0,
                         n_beams: int = 9, retained_plans: int = 0, sessions: int = 0) -> dict:
    """Estimated peak bytes by part: the scene, and with ``engine`` a plan (its volumes and
    influence matrix). Analytic from the grid shape and the beam count: milliseconds.

    ``retained_plans``: plans a command keeps for its report (a comparison's strategies; the
    memo's matrices then count too); ``sessions``: planning sessions it opens beside them (the
    demo's gap study: a scene and a matrix of its own)."""
    level = _case_level(case_text)
    shape = scene_grid_shape(level, spacing_mm) if level else None
    if shape is None:
        return {}
    voxels = shape[0] * shape[1] * shape[2]
    parts = {"scene": SCENE_FIXED_BYTES + SCENE_PEAK_BYTES_PER_VOXEL * voxels}
    if engine is not None:
        parts["plan volumes"] = PLAN_BYTES_PER_VOXEL.get(engine, max(PLAN_BYTES_PER_VOXEL.values())) * voxels
        # The CPU optimiser reads the matrix's rows in place (no transposed copy, no copy of the
        # rows read, since 2026-12-07; its dense copy of few full rows is bounded by
        # objectives.toml [optimiser] dense_max_bytes, within the lesion factor's margin).
        matrix = int(LARGER_LESION_FACTOR * influence_matrix_bytes(spacing_mm, beamlet_mm=beamlet_mm, n_beams=n_beams))
        parts["influence matrix"] = matrix * (MEMO_MATRICES if retained_plans > 0 else 1)
        if retained_plans > 0:
            parts["plans kept for the report"] = RETAINED_PLAN_BYTES_PER_VOXEL * voxels * int(retained_plans)
        if sessions > 0:
            parts["planning session"] = int(sessions) * (parts["scene"] + matrix)
    return parts


def influence_matrix_bytes(spacing_mm, *, beamlet_mm: float = 5.0, n_beams: int = 9) -> float:
    """One influence matrix of the default case's region, CSR at 8 bytes an entry (the measured
    figure, without the margin for larger lesions)."""
    rows = INFLUENCE_REGION_MM3 / (spacing_mm[0] * spacing_mm[1] * spacing_mm[2])
    per_row_beam = INFLUENCE_ENTRIES_PER_ROW_BEAM.get(float(beamlet_mm), max(INFLUENCE_ENTRIES_PER_ROW_BEAM.values()))
    return 8 * rows * n_beams * per_row_beam


def check_plan_memory(args, case_text: str, *, engine: str | None, beamlet_mm: float = 5.0, n_beams: int = 9,
                      knobs: str = "coarsen --spacing-mm", out=None, jobs: int = 1, retained_plans: int = 0,
                      sessions: int = 0) -> None:
    """Refuse (MemoryBudgetExceeded, a ValueError) a job estimated above the budget; print the
    estimate of a large one to ``out``. ``jobs``: how many such plans run at once;
    ``retained_plans``, ``sessions``: as :func:`estimate_plan_memory`."""
    from planner.common.memory import MemoryBudgetExceeded, check_budget, format_bytes

    budget = memory_budget_of(args)
    parts = estimate_plan_memory(case_text, args.spacing_mm, engine=engine, beamlet_mm=beamlet_mm, n_beams=n_beams,
                                 retained_plans=retained_plans, sessions=sessions)
    if not parts:
        return
    if jobs > 1:
        parts = {name: size * jobs for name, size in parts.items()}
    matrix = influence_matrix_bytes(args.spacing_mm, beamlet_mm=beamlet_mm, n_beams=n_beams) if engine else 0
    if matrix > INFLUENCE_LIMIT_GIB * 2**30:
        raise MemoryBudgetExceeded(f"the influence matrix would need about {format_bytes(matrix)}, over the planner's "
                                   f"limit of {INFLUENCE_LIMIT_GIB:g} GiB per matrix: {knobs}")
    total = check_budget(parts, budget, knobs=knobs)
    if out is not None and total > ANNOUNCE_BYTES:
        detail = ", ".join(f"{name} {format_bytes(size)}" for name, size in parts.items())
        limit = f" of a budget of {format_bytes(budget)}" if budget is not None else ""
        print(f"memory estimate: about {format_bytes(total)}{limit} ({detail})", file=out, flush=True)


# --- unexpected errors -------------------------------------------------------------------

def _trace_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "spinesim" / "errors"


def save_trace(command: str, error: BaseException) -> Path | None:
    """Write the full traceback of ``error`` to a file in the user's cache folder
    (``~/.cache/spinesim/errors``, else the temporary folder); its path, or None."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for folder in (_trace_folder(), Path(tempfile.gettempdir()) / "spinesim-errors"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(prefix=f"{stamp}-{command}-", suffix=".txt", dir=folder)
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
            return Path(name)
        except OSError:
            continue
    return None
