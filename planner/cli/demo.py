"""`spinesim demo`: the default teaching case, its strategies compared, the report written.

Runs the built-in default case (T10 renal cell carcinoma, ESCC 2: radioresistant, high-grade
compression, fit), compares the standard strategies, studies the maximum achievable
prescription against the separation gap, follows the case through a delay of diagnosis, and
writes the HTML report with its JSON and CSV into ``./spinesim-demo/`` (or ``out_dir``).
Teaching and research only, not for clinical use.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from scenes.cases import DEFAULT_CASE

__all__ = ["run_demo", "DemoResult", "DEMO_GAPS_MM", "DEMO_WEEKS"]

#: Separation gaps of the demo's gap study (mm) and the delays of its timeline (weeks).
DEMO_GAPS_MM = (0.0, 1.0, 2.0, 3.0)
DEMO_WEEKS = (0, 4, 8, 12)
#: The gap study's grid: 1.25 mm in-plane resolves 1 mm steps of the gap (the plan command's
#: grid, planner.radiotherapy.plan.GAP_RESOLVING_GRID_MM; a test holds them equal).
GAP_STUDY_GRID_MM = (2.5, 1.25, 1.25)


@dataclass(frozen=True)
class DemoResult:
    card: object
    timeline: object
    gap_study: tuple
    report: Path
    seconds: dict


def gap_study(case, *, regimen, gaps_mm=DEMO_GAPS_MM, grid_mm=GAP_STUDY_GRID_MM) -> tuple:
    """(gaps_mm, achievable_gy, prescription_gy, bindings): the maximum achievable prescription
    per gap, by the escalation search of :mod:`planner.radiotherapy.plan` on one influence
    matrix (planner.radiotherapy.session), and the limit that binds it at each gap (a dict:
    kind, structure, metric, limit_gy, source; see planner.radiotherapy.achievable).

    The grid is finer in-plane than the planning grid: on 2.5 mm voxels a 1 mm and a 2 mm
    gap remove the same voxels."""
    from planner.radiotherapy.session import Session

    session = Session(case, regimen=regimen, grid_mm=grid_mm)
    achievable, bindings = [], []
    previous = None
    for gap in gaps_mm:
        session.set_gap(gap)
        if previous is not None and round(previous, 3) != round(gap, 3):
            session.forget_gap(previous)  # one operated scene at a time (each gap is visited once)
        gy, _, binding = session.maximum_prescription()
        achievable.append(gy)
        bindings.append(binding)
        previous = gap
    return tuple(gaps_mm), tuple(achievable), regimen.dose_gy, tuple(bindings)


def run_demo(out_dir="spinesim-demo", *, case: str = DEFAULT_CASE, grid_mm=GAP_STUDY_GRID_MM, progress=None,
             three_d: bool = True) -> DemoResult:
    """Compare the strategies on ``case``, study the gap, follow the delay, write the report."""
    from planner.pictures.report import write_report
    from planner.clinical.scorecard import compare_strategies
    from planner.clinical.menu import standard_strategies, strategy_key
    from planner.clinical.timeline import timeline
    from planner.radiotherapy.plan import forget_shared_influences

    say = progress or (lambda message, done, total: None)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a file, not a folder")
    if not out.resolve().parent.exists():
        raise ValueError(f"--out folder's parent {str(out.resolve().parent)!r} does not exist")
    seconds = {}
    start = time.perf_counter()
    card = compare_strategies(case, grid_mm=grid_mm, progress=lambda m, d, t: say(f"compare: {m}", d, t))
    seconds["compare"] = time.perf_counter() - start
    forget_shared_influences()  # the gap study and the timeline plan other scenes: 249 MiB freed
    mark = time.perf_counter()
    say("gap study (achievable prescription vs separation gap)", 0, 1)
    sbrt_alone = {s.key: s for s in standard_strategies(case)}[strategy_key("sbrt_alone")]
    gaps = gap_study(case, regimen=sbrt_alone.regimen)
    seconds["gap_study"] = time.perf_counter() - mark
    mark = time.perf_counter()
    delay = timeline(case, weeks=DEMO_WEEKS, grid_mm=grid_mm, strategy_keys=(strategy_key("sbrt_alone"),),
                     progress=lambda m, d, t: say(f"timeline: {m}", d, t))
    seconds["timeline"] = time.perf_counter() - mark
    mark = time.perf_counter()
    # All or nothing: the report is written into a hidden folder beside ``out`` and moved in
    # only when every file is there, so a failed run leaves no new (or half-written) file.
    staging = Path(tempfile.mkdtemp(prefix=f".{out.resolve().name}.partial-", dir=out.resolve().parent))
    try:
        written = write_report(card, staging, timeline=delay, gap_study=gaps, three_d=three_d,
                               progress=lambda m, d, t: say(f"report: {m}", d, t))
        report = out / Path(written).relative_to(staging)
        _move_into(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    seconds["report"] = time.perf_counter() - mark
    seconds["total"] = time.perf_counter() - start
    say("done", 1, 1)
    return DemoResult(card, delay, gaps, report, seconds)


def _move_into(staging: Path, out: Path) -> None:
    """Move every file of ``staging`` to the same place under ``out`` (renames on one file
    system; a new ``out`` is one rename)."""
    if not out.exists():
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp's folder is private; a report folder is not
        os.rename(staging, out)
        staging.mkdir()  # for the caller's cleanup
        return
    for path in sorted(staging.rglob("*")):
        target = out / path.relative_to(staging)
        if path.is_dir():
            target.mkdir(exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
