"""Delay of diagnosis: the case re-evaluated after weeks of untreated growth.

At each time point the lesion has grown by its histology's doubling time
(:func:`scenes.cases.grow`); the ESCC grade and SINS are measured again, the neurological
status follows the grade (a teaching assumption, ``planner/clinical/data/outcomes.toml``
[untreated_course]: it never improves without treatment), NOMS is asked again, and SBRT
alone, separation surgery + SBRT and cEBRT are planned and scored. The timeline says when
the window for SBRT alone closes (NOMS stops recommending it, or its plan breaks a hard limit)
and when walking is lost. Teaching and research only, not
for clinical use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from scenes.cases import Case, build_scene, doubling_time_days, grow, load_case
from scenes.escc import measure_escc_grade

from planner.common.safety import DISCLAIMER
from planner.radiotherapy.plan import GAP_RESOLVING_GRID_MM
from .outcomes import outcome_tables, untreated_status
from .prognosis import tokuhashi
from .scorecard import MEASURING_GRID_MM, expected_survival, noms_strategy_key
from .scores import noms, sins
from .menu import menu_findings, standard_strategies, strategy_key
from .strategies import case_after_delay, evaluate_strategy

__all__ = ["TimelinePoint", "Timeline", "timeline", "TIMELINE_ROLES"]

#: The roles of the strategies re-planned at every time point (the full menu at each would
#: take minutes); strategies.toml names the menu entry of each.
TIMELINE_ROLES = ("sbrt_alone", "separation_then_sbrt", "conventional_multi")


@dataclass(frozen=True)
class TimelinePoint:
    """The case re-evaluated after ``weeks`` of untreated growth.

    ``volume_factor`` is the lesion's growth since week 0; ``escc_grade`` the worst grade
    measured so far and ``neurological_status`` the status it implies; ``recommendation``
    and ``recommended_key`` NOMS's answer; ``sbrt_alone_ok`` whether the SBRT-alone window
    is open (with the reason); ``best_key``/``best_label`` the planned strategy with the best
    walking (then local control) estimate and ``ambulatory_probability`` its walking figure
    (%); ``local_control_pct`` and ``walking_pct`` map each planned strategy to its figure.
    """
    weeks: float
    volume_factor: float
    escc_grade: str
    neurological_status: str
    ambulatory: bool
    sins: int
    recommendation: str
    recommended_key: str
    sbrt_alone_ok: bool
    sbrt_alone_reason: str
    best_key: str
    best_label: str
    ambulatory_probability: float | None
    local_control_pct: dict  # strategy key -> value
    walking_pct: dict
    achievable_prescription_gy: float | None

    def as_dict(self) -> dict:
        """The point as plain data (for JSON).

        Returns
        -------
        dict
            A copy of the point's fields.
        """
        return dict(self.__dict__)


@dataclass(frozen=True)
class Timeline:
    """The points of a delay timeline and what they show.

    ``sbrt_window_closes_week`` is the first week at which SBRT alone is no longer right
    (None: still open at the last point); ``walking_lost_week`` the first week the patient
    no longer walks (None: never within the timeline); ``assumption`` the teaching
    assumption on the untreated course.
    """
    case_id: str
    points: tuple
    sbrt_window_closes_week: float | None
    walking_lost_week: float | None
    assumption: str
    disclaimer: str = DISCLAIMER

    def rows(self) -> list[dict]:
        """Rows for the timeline chart (``planner.pictures.charts.plot_timeline``) and tables.

        Returns
        -------
        list of dict
            Per point: weeks, escc_grade, sins, recommendation, sbrt_alone_ok,
            ambulatory_probability (a fraction 0..1, or None), status and best (label).
        """
        return [{"weeks": p.weeks, "escc_grade": p.escc_grade, "sins": p.sins, "recommendation": p.recommendation,
                 "sbrt_alone_ok": p.sbrt_alone_ok,
                 "ambulatory_probability": None if p.ambulatory_probability is None else p.ambulatory_probability / 100.0,
                 "status": p.neurological_status, "best": p.best_label} for p in self.points]

    def table(self) -> str:
        """A readable table of the timeline.

        Returns
        -------
        str
            A heading, one line per point (weeks, volume factor, ESCC grade, status, SINS, SBRT
            alone yes/no, best walking figure, recommendation), the :meth:`summary`, the
            assumption and the disclaimer.
        """
        lines = [f"Delay timeline for {self.case_id}",
                 f"{'weeks':>5} {'vol x':>5} {'ESCC':4} {'status':15} {'SINS':>4} {'SBRT alone':10} "
                 f"{'walk (best)':>11} recommendation"]
        for p in self.points:
            walk = "n/a" if p.ambulatory_probability is None else f"{p.ambulatory_probability:.0f}%"
            lines.append(f"{p.weeks:5g} {p.volume_factor:5.2f} {p.escc_grade:4} {p.neurological_status:15} {p.sins:4d} "
                         f"{'yes' if p.sbrt_alone_ok else 'no':10} {walk:>11} {p.recommendation}")
        lines.append(self.summary())
        lines.append(f"Assumption: {self.assumption}")
        lines.append(self.disclaimer)
        return "\n".join(lines)

    def summary(self) -> str:
        """When the SBRT-alone window closes and when walking is lost, in one line.

        Returns
        -------
        str
            E.g. ``'SBRT-alone window: closes by week 8. Walking without treatment: not lost within
            the timeline.'``.
        """
        closes = ("still open at the last point" if self.sbrt_window_closes_week is None
                  else f"closes by week {self.sbrt_window_closes_week:g}")
        lost = ("not lost within the timeline" if self.walking_lost_week is None
                else f"lost by week {self.walking_lost_week:g}")
        # "untreated": the week walking is lost follows the untreated course; the walking figures
        # beside it are after treatment (a resident read the two as contradicting each other).
        return f"SBRT-alone window: {closes}. Walking without treatment: {lost}."

    def to_json(self) -> str:
        """The timeline as JSON (:meth:`as_dict`).

        Returns
        -------
        str
            Indented JSON.
        """
        return json.dumps(self.as_dict(), indent=2)

    def as_dict(self) -> dict:
        """The timeline as plain data (for JSON).

        Returns
        -------
        dict
            Case, every point (:meth:`TimelinePoint.as_dict`), the week the SBRT-alone window
            closes, the week walking is lost, the assumption and the disclaimer.
        """
        return {"case": self.case_id, "points": [p.as_dict() for p in self.points],
                "sbrt_window_closes_week": self.sbrt_window_closes_week, "walking_lost_week": self.walking_lost_week,
                "assumption": self.assumption, "disclaimer": self.disclaimer}


def timeline(case: Case | str, *, weeks=(0, 2, 4, 8, 12), grid_mm=GAP_RESOLVING_GRID_MM, engine: str = "pencil",
             strategy_keys=None, progress=None) -> Timeline:
    """Re-evaluate ``case`` after each delay in ``weeks`` (0..520, increasing).

    ``strategy_keys``: the menu strategies planned at each point (default: those of
    :data:`TIMELINE_ROLES`; SBRT alone is always among them: it decides whether the
    SBRT-alone window is open).

    Parameters
    ----------
    case : Case or str
        The case, or a teaching-case id or case-file path; a delay needs a histology with a
        doubling time.
    weeks : sequence of float, default (0, 2, 4, 8, 12)
        Delays (weeks), distinct, increasing, in 0..520 (ValueError otherwise).
    grid_mm : tuple of float, default GAP_RESOLVING_GRID_MM (2.5, 1.25, 1.25)
        Voxel spacing (z, y, x) in mm of the planning scene (the ESCC grade and SINS are
        measured on :data:`~planner.clinical.scorecard.MEASURING_GRID_MM`).
    engine : str, default "pencil"
        Dose engine of the plans, 'pencil' or 'superposition'.
    strategy_keys : sequence of str, optional
        Keys of the case's standard menu to plan at each point (ValueError naming the
        allowed keys otherwise).
    progress : callable, optional
        ``progress(message, done, total)`` after each step.

    Returns
    -------
    Timeline
        One :class:`TimelinePoint` per delay, the week the SBRT-alone window closes and the
        week walking is lost.
    """
    if strategy_keys is None:
        strategy_keys = tuple(strategy_key(role) for role in TIMELINE_ROLES)
    say = progress or (lambda message, done, total: None)
    case = load_case(case) if isinstance(case, str) else case
    weeks = [float(w) for w in weeks]
    if not weeks or any(not 0 <= w <= 520 for w in weeks) or weeks != sorted(set(weeks)):
        raise ValueError(f"weeks must be distinct increasing values in 0..520, got {weeks}")
    # A histology that cannot grow says so before any planning (grow() uses the same figure).
    doubling = doubling_time_days(case.histology) if any(weeks) else None
    measuring0 = build_scene(case, spacing_mm=MEASURING_GRID_MM)
    planning0 = build_scene(case, spacing_mm=grid_mm)
    menu = {s.key: s for s in standard_strategies(case)}
    sbrt_alone = strategy_key("sbrt_alone")
    keys = tuple(dict.fromkeys((sbrt_alone,) + tuple(strategy_keys)))
    unknown = [k for k in keys if k not in menu]
    if unknown:
        raise ValueError(f"strategy_keys: unknown {', '.join(unknown)}; allowed: {', '.join(menu)}")
    worst_grade_index, status = -1, case.patient.get("neurology", "intact")
    order = ("0", "1a", "1b", "1c", "2", "3")
    points = []
    for n, week in enumerate(weeks):
        say(f"week {week:g}: growing and measuring", n, len(weeks))
        measuring = grow(measuring0, week) if week else measuring0
        planning = grow(planning0, week) if week else planning0
        escc = measure_escc_grade(measuring)
        # An untreated lesion does not shrink: the grade read at a later time is at least the
        # worst read before (the 2.5 mm planning grid can misread a sub-grade).
        worst_grade_index = max(worst_grade_index, order.index(escc.grade))
        grade = order[worst_grade_index]
        status = untreated_status(grade, status)
        at = case_after_delay(case, grade, status=status)
        sins_score = sins(measuring)
        prognosis = tokuhashi(at, measuring)
        worst = escc if escc.grade == grade else replace(escc, grade=grade)
        assessment = noms(measuring, at, escc=worst, sins_score=sins_score, prognosis=prognosis)
        survival = expected_survival(at, prognosis)
        findings = menu_findings(at, assessment)
        results = {}
        for key in keys:
            say(f"week {week:g}: {menu[key].label}", n, len(weeks))
            results[key] = evaluate_strategy(at, menu[key], scene=planning, escc_grade=grade, survival=survival,
                                             findings=findings, engine=engine)
        sbrt = results[sbrt_alone]
        coverage = sbrt.dosimetry.get("ptv_coverage") or 0.0
        failing = sbrt.failing_constraints
        if assessment.surgery != "none" or assessment.radiotherapy != "sbrt" or assessment.mechanical == "stabilisation":
            ok, why = False, f"ESCC {grade}: NOMS now recommends {assessment.summary}"
        elif failing:
            ok, why = False, "SBRT alone breaks " + ", ".join(failing)
        else:
            ok, why = True, (f"ESCC {grade}: NOMS recommends {assessment.summary}; the plan meets every hard limit "
                             f"(PTV coverage {100 * coverage:.0f}%)")
        best = max(results.values(), key=lambda r: (r.value("walking") or 0.0, r.value("local_control") or 0.0))
        points.append(TimelinePoint(
            weeks=week, volume_factor=2.0 ** (7.0 * week / doubling) if week else 1.0, escc_grade=grade,
            neurological_status=status,
            ambulatory=at.patient.get("ambulatory", True), sins=sins_score.total, recommendation=assessment.summary,
            recommended_key=noms_strategy_key(assessment), sbrt_alone_ok=ok, sbrt_alone_reason=why,
            best_key=best.strategy.key, best_label=best.strategy.label, ambulatory_probability=best.value("walking"),
            local_control_pct={k: r.value("local_control") for k, r in results.items()},
            walking_pct={k: r.value("walking") for k, r in results.items()},
            achievable_prescription_gy=sbrt.dosimetry.get("achievable_prescription_gy")))
    say("done", len(weeks), len(weeks))
    closes = next((p.weeks for p in points if not p.sbrt_alone_ok), None)
    lost = next((p.weeks for p in points if not p.ambulatory), None)
    return Timeline(case.id, tuple(points), closes, lost, outcome_tables()["untreated_course"]["note"])

