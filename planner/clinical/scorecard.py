"""Compare strategies on a case: the teaching scorecard, its ranking and the NOMS view beside it.

:func:`compare_strategies` measures the case's scene once (ESCC grade, SINS, NOMS, revised
Tokuhashi and Tomita), evaluates every strategy of the menu (:mod:`planner.strategies`) and
ranks them by explicit, user-adjustable weights; the Pareto-optimal strategies are marked
and the NOMS recommendation is shown beside the ranking, with a sentence when they disagree
(a teaching moment, not an error). Teaching and research only, not for clinical use.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field

import numpy as np

from scenes.cases import Case, build_scene, doubling_time_days, grow, load_case
from scenes.escc import measure_escc_grade
from scenes.scene import Scene

from planner.common.safety import DISCLAIMER
from planner.radiotherapy.plan import GAP_RESOLVING_GRID_MM

from .data import read_table
from .prognosis import tokuhashi, tomita
from .scores import noms, sins
from .menu import menu_findings, strategy_key, strategy_menu_for
from .strategies import Strategy, StrategyResult, case_after_delay, evaluate_strategy

__all__ = ["Scorecard", "compare_strategies", "strategy_scores", "expected_survival", "DEFAULT_WEIGHTS", "COLUMNS", "noms_strategy_key", "MEASURING_GRID_MM"]

#: Ranking weights (scorecard.toml: teaching defaults, not clinical values): benefits count up,
#: harms down; percentages enter as fractions, days as months.
DEFAULT_WEIGHTS = {key: float(value) for key, value in read_table("scorecard")["weights"].items() if key != "source"}
BENEFITS = ("local_control", "walking", "pain")
HARMS = ("myelopathy", "fracture", "complications", "wound", "retreatment")
#: The grid the ESCC grade is measured on (the one the ESCC round trip is guaranteed on).
MEASURING_GRID_MM = (2.5, 1.25, 1.25)
#: Scorecard columns: (key, header, getter kind)
COLUMNS = (("local_control", "LC 1y"), ("walking", "walk"), ("pain", "pain CR"), ("myelopathy", "myelo"),
           ("fracture", "VCF"), ("complications", "compl"), ("retreatment", "retreat"), ("time", "days"),
           ("hospital", "hosp d"))
#: Pareto objectives: (column, +1 maximise / -1 minimise)
PARETO = (("local_control", 1), ("walking", 1), ("myelopathy", -1), ("complications", -1), ("time", -1))


def noms_strategy_key(assessment) -> str:
    """The menu strategy that carries out a NOMS recommendation (its role in strategies.toml).

    Parameters
    ----------
    assessment : NomsAssessment
        The recommendation (:func:`planner.clinical.scores.noms`).

    Returns
    -------
    str
        The menu key of the role that matches: re-irradiation, separation or decompression
        then RT, short-course or multi-fraction cEBRT, stabilisation or augmentation then
        SBRT, else SBRT alone.
    """
    if assessment.reirradiation:
        return strategy_key("reirradiation")
    if assessment.surgery in ("separation", "decompression"):
        return strategy_key("separation_then_sbrt" if assessment.radiotherapy == "sbrt" else "decompression_then_conventional")
    if assessment.radiotherapy == "cebrt":
        if assessment.mechanical == "augmentation":
            return strategy_key("augmentation_then_conventional")
        # A single 8 Gy fraction relieves the pain of an uncomplicated metastasis as well as a
        # longer course (RTOG 9714, more retreatment); cord compression in a patient fit for
        # more takes the multi-fraction course (better local control, Rades).
        single = assessment.short_course or assessment.escc_group == "low"
        return strategy_key("conventional_single" if single else "conventional_multi")
    return strategy_key({"stabilisation": "stabilisation_then_sbrt", "augmentation": "augmentation_then_sbrt"}.get(
        assessment.mechanical, "sbrt_alone"))


def _column_value(result: StrategyResult, key: str) -> float | None:
    if key == "time":
        return float(result.days_to_end_of_treatment) if result.days_to_end_of_treatment is not None else 0.0
    return result.value(key)


def _filled(results, key, direction):
    """Column values for scoring, unknowns filled conservatively: an unknown benefit earns
    nothing (0), an unknown harm counts as the worst known harm, except where scorecard.toml
    [unknown] says a column's figures exist for some strategies only (charged nothing)."""
    values = [_column_value(r, key) for r in results]
    known = [v for v in values if v is not None]
    fill = 0.0 if direction > 0 else (max(known) if known else 0.0)
    if read_table("scorecard").get("unknown", {}).get(key) == "none_charged":
        fill = 0.0
    return [fill if v is None else v for v in values]


def _contributions(results, weights) -> dict:
    """{column: [its weighted share of each result's score]} (percentages as fractions, days
    as months); the score is their sum."""
    shares = {}
    for key in BENEFITS + HARMS + ("time", "hospital"):
        weight = weights.get(key, 0.0)
        direction = 1 if key in BENEFITS else -1
        scale = 100.0 if key in BENEFITS + HARMS else read_table("scorecard")["units"]["days_per_month"]
        shares[key] = [direction * weight * v / scale for v in _filled(results, key, direction)]
    return shares


def _scores(results, weights) -> list[float]:
    return [float(sum(column)) for column in zip(*_contributions(results, weights).values())]


def strategy_scores(results, weights: dict | None = None) -> list[float]:
    """The scorecard's weighted score of each strategy result, under ``weights``.

    Parameters
    ----------
    results : sequence of StrategyResult
        Evaluated strategies (e.g. ``card.results``).
    weights : dict, optional
        Weights overriding :data:`DEFAULT_WEIGHTS` (keys from it, values 0..100).

    Returns
    -------
    list of float
        One score per result, in order (higher is better).
    """
    merged = dict(DEFAULT_WEIGHTS, **(weights or {}))
    unknown = sorted(set(merged) - set(DEFAULT_WEIGHTS))
    if unknown:
        raise ValueError(f"weights: unknown keys {unknown}; known: {sorted(DEFAULT_WEIGHTS)}")
    return _scores(list(results), merged)


def _pareto(results) -> set:
    # An unknown value is the worst possible here: it can never make a strategy optimal.
    columns = {key: [(-d * np.inf) if (v := _column_value(r, key)) is None else v for r in results]
               for key, d in PARETO}
    front = set()
    for i, r in enumerate(results):
        dominated = False
        for j in range(len(results)):
            if i == j:
                continue
            better_or_equal = all(d * columns[k][j] >= d * columns[k][i] for k, d in PARETO)
            strictly = any(d * columns[k][j] > d * columns[k][i] for k, d in PARETO)
            if better_or_equal and strictly:
                dominated = True
                break
        if not dominated:
            front.add(r.strategy.key)
    return front


@dataclass(frozen=True, eq=False)
class Scorecard:
    """One row per strategy, ranked; the measured scores and the NOMS view beside them."""

    case_id: str
    title: str
    weeks_delay: float
    escc_grade: str
    sins_total: int
    noms: object
    tokuhashi: object
    tomita: object
    results: tuple
    scores: dict
    ranking: tuple
    pareto: frozenset
    weights: dict
    noms_key: str
    comment: str
    scene: Scene | None = field(default=None, repr=False)
    not_indicated: dict = field(default_factory=dict)  # key -> {"label", "reasons", "sources"}
    disclaimer: str = DISCLAIMER

    def result(self, key: str) -> StrategyResult:
        """The evaluated strategy with this key.

        Parameters
        ----------
        key : str
            A strategy key of this scorecard (KeyError naming the keys otherwise).

        Returns
        -------
        StrategyResult
            Its dosimetry, estimates, time and flags.
        """
        for r in self.results:
            if r.strategy.key == key:
                return r
        raise KeyError(f"no strategy {key!r} in this scorecard; have {', '.join(r.strategy.key for r in self.results)}")

    def ranked(self) -> list[StrategyResult]:
        """The evaluated strategies in rank order (highest score first).

        Returns
        -------
        list of StrategyResult
            One per strategy, ranked.
        """
        return [self.result(key) for key in self.ranking]

    def rows(self) -> list[dict]:
        """Flat rows (one per strategy, in rank order) for tables, CSV and plots.

        Returns
        -------
        list of dict
            Per strategy: rank, key, strategy label, kind, score, pareto, noms, the value of each
            :data:`COLUMNS` key (None when unknown), the dosimetry figures (Gy, or the PTV
            coverage fraction), constraints ('pass', 'fail' or '-') and flags.
        """
        rows = []
        for rank, r in enumerate(self.ranked(), 1):
            row = {"rank": rank, "key": r.strategy.key, "strategy": r.strategy.label, "kind": r.strategy.kind,
                   "score": round(self.scores[r.strategy.key], 4), "pareto": r.strategy.key in self.pareto,
                   "noms": r.strategy.key == self.noms_key}
            for key, _ in COLUMNS:
                row[key] = _column_value(r, key) if key != "time" else r.days_to_end_of_treatment
            row.update({k: r.dosimetry.get(k) for k in ("gtv_d90_gy", "gtv_d95_gy", "ptv_coverage", "epidural_d90_gy",
                                                         "cord_pmax_gy", "achievable_prescription_gy")})
            row["constraints"] = ("fail" if r.failing_constraints else
                                  "pass" if r.constraints else "-")
            row["flags"] = "; ".join(r.flags)
            rows.append(row)
        return rows

    def best_per_column(self) -> dict:
        """{column: the best known value} (highest benefit, lowest harm or time).

        Returns
        -------
        dict
            For each :data:`COLUMNS` key with at least one known value, the best value.
        """
        best = {}
        for key, _ in COLUMNS:
            values = [row[key] for row in self.rows() if row[key] is not None]
            if values:
                best[key] = max(values) if key in BENEFITS else min(values)
        return best

    def table(self, *, colour: bool = False) -> str:
        """A readable table (ANSI colours: pass green, fail red, best per column bold).

        Parameters
        ----------
        colour : bool, default False
            Add ANSI colour and bold codes (for a terminal).

        Returns
        -------
        str
            A heading with the measured scores, one line per strategy in rank order (``*``
            Pareto-optimal, ``N`` the NOMS recommendation), the legend and weights, the NOMS
            comment and the disclaimer.
        """
        def paint(text, code):
            return f"\033[{code}m{text}\033[0m" if colour else text

        rows = self.rows()
        heads = ["#", "strategy", *[h for _, h in COLUMNS], "GTV D95", "cord", "score"]
        best = self.best_per_column()
        lines = [f"{self.title}  (ESCC {self.escc_grade} measured, SINS {self.sins_total}, "
                 f"revised Tokuhashi {self.tokuhashi.total}: {self.tokuhashi.survival})"
                 + (f"  after {self.weeks_delay:g} weeks of delay" if self.weeks_delay else "")]
        widths = [2, 58, 6, 5, 7, 6, 5, 6, 7, 5, 6, 7, 5, 6]
        lines.append(" ".join(h.ljust(w) for h, w in zip(heads, widths)))
        for r in rows:
            mark = ("*" if r["pareto"] else " ") + ("N" if r["noms"] else " ")
            cells = [str(r["rank"]).ljust(2), (r["strategy"][:54] + " " + mark).ljust(58)]
            for (key, _), w in zip(COLUMNS, widths[2:]):
                v = r[key]
                text = ("n/a" if v is None else f"{v:.0f}" + ("%" if key not in ("time", "hospital") else "")).ljust(w)
                cells.append(paint(text, "1") if v is not None and best.get(key) == v else text)
            d95 = r["gtv_d95_gy"]
            cells.append(("-" if d95 is None else f"{d95:.1f}").ljust(7))
            status = r["constraints"]
            cells.append(paint(status.ljust(5), "32" if status == "pass" else "31") if status != "-" else "-    ")
            cells.append(f"{r['score']:+.2f}")
            lines.append(" ".join(cells))
        lines.append("* Pareto-optimal   N the NOMS recommendation   bold: best in its column   "
                     "weights: " + ", ".join(f"{k} {v:g}" for k, v in self.weights.items()))
        for entry in self.not_indicated.values():
            lines.append(f"not indicated: {entry['label']} ({'; '.join(entry['reasons'])})")
        lines.append(f"NOMS: {self.noms.summary}. {self.comment}")
        lines.append(self.disclaimer)
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """The scorecard as plain data (for JSON).

        Returns
        -------
        dict
            Case, measured ESCC grade, SINS, NOMS (summary, strategy and parts), Tokuhashi,
            Tomita, weights, ranking, Pareto set, comment, every strategy (ranked, with its
            score) and the disclaimer.
        """
        return {"case": self.case_id, "title": self.title, "weeks_delay": self.weeks_delay,
                "escc_grade_measured": self.escc_grade, "sins": self.sins_total,
                "noms": {"summary": self.noms.summary, "strategy": self.noms_key,
                         "parts": [{"name": p.name, "finding": p.finding, "decision": p.decision, "reason": p.reason,
                                    "sources": list(p.sources)} for p in self.noms.parts]},
                "tokuhashi": {"total": self.tokuhashi.total, "band": self.tokuhashi.band,
                              "survival": self.tokuhashi.survival, "source": self.tokuhashi.source},
                "tomita": {"total": self.tomita.total, "band": self.tomita.band, "treatment": self.tomita.treatment,
                           "source": self.tomita.source},
                "weights": self.weights, "ranking": list(self.ranking), "pareto": sorted(self.pareto),
                "comment": self.comment, "strategies": [r.as_dict() | {"score": self.scores[r.strategy.key]}
                                                        for r in self.ranked()],
                "not_indicated": self.not_indicated,
                "disclaimer": self.disclaimer}

    def to_json(self) -> str:
        """The scorecard as JSON (:meth:`as_dict`).

        Returns
        -------
        str
            Indented JSON; non-serialisable values written as text. A NaN raises ValueError
            (``allow_nan=False``).
        """
        return json.dumps(self.as_dict(), indent=2, allow_nan=False, default=str)

    def to_csv(self) -> str:
        """The ranked rows (:meth:`rows`) as CSV, with the disclaimer as a last comment line.

        Returns
        -------
        str
            A header line, one line per strategy and ``# <disclaimer>``.
        """
        buffer = io.StringIO()
        rows = self.rows()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        buffer.write(f"# {self.disclaimer}\n")
        return buffer.getvalue()


def expected_survival(case, prognosis) -> dict:
    """The prognosis over which benefits accrue: the revised Tokuhashi band, its median
    survival (Zeng 2007, unverified) or the case's own ``expected_survival_months``.

    Parameters
    ----------
    case : scenes.cases.Case
        The case (an optional ``patient.expected_survival_months`` overrides the band).
    prognosis : PrognosisScore
        The revised Tokuhashi score of the case.

    Returns
    -------
    dict
        ``band`` (text), ``short`` (under 6 months), ``months`` and ``source``.
    """
    own = case.patient.get("expected_survival_months")
    if own is not None:
        months = float(own)
        return {"band": f"{months:g} months (case file)", "short": months < 6, "months": months, "source": "case file"}
    return {"band": prognosis.survival, "short": prognosis.survival.startswith("<"),
            "months": prognosis.median_survival_months, "source": prognosis.source}


def _check_weights(weights: dict | None) -> dict:
    merged = dict(DEFAULT_WEIGHTS)
    for key, value in (weights or {}).items():
        if key not in DEFAULT_WEIGHTS:
            raise ValueError(f"weights: unknown key {key!r}; allowed: {', '.join(DEFAULT_WEIGHTS)}")
        if not isinstance(value, (int, float)) or not 0 <= value <= 100:
            raise ValueError(f"weights[{key!r}] must be a number in 0..100, got {value!r}")
        merged[key] = float(value)
    if not any(merged.values()):
        raise ValueError("weights: at least one weight must be above 0, or nothing can be ranked")
    return merged


def _comment(results, scores, ranking, noms_key, weights) -> str:
    top = ranking[0]
    if top == noms_key:
        return "The ranking's first choice is the NOMS recommendation."
    by_key = {r.strategy.key: r for r in results}
    if noms_key not in by_key:
        return f"The NOMS recommendation ({noms_key}) is not in this menu."
    first, second = (next(i for i, r in enumerate(results) if r.strategy.key == k) for k in (top, noms_key))
    reasons = sorted(((share[first] - share[second], key) for key, share in _contributions(results, weights).items()
                      if share[first] - share[second] > 1e-6), reverse=True)
    why = ", ".join(key.replace("_", " ") for _, key in reasons[:2]) or "the weights"
    return (f"Disagreement (a teaching moment): with these weights '{by_key[top].strategy.label}' ranks first, "
            f"ahead of the NOMS choice '{by_key[noms_key].strategy.label}', mostly on {why}. NOMS weighs the "
            "neurologic, oncologic, mechanical and systemic findings as rules; the scorecard trades the "
            "estimated outcomes against each other.")


def compare_strategies(case: Case | str, *, strategies: list[Strategy] | None = None, weights: dict | None = None,
                       weeks_delay: float = 0.0, grid_mm=GAP_RESOLVING_GRID_MM, engine: str = "pencil",
                       progress=None, techniques: dict | None = None) -> Scorecard:
    """Evaluate and rank a menu of strategies on a case.

    The scene is measured once on :data:`MEASURING_GRID_MM` (ESCC grade, SINS, NOMS, revised
    Tokuhashi and Tomita) and planned on ``grid_mm``; after a delay both are grown first and
    the neurology follows the grown lesion.

    Parameters
    ----------
    case : str or Case
        Teaching case id, path or Case.
    strategies : list of Strategy, optional
        The menu, keys unique (ValueError otherwise); default
        :func:`planner.clinical.strategies.standard_strategies`.
    weights : dict, optional
        Ranking weights overriding :data:`DEFAULT_WEIGHTS` (keys from it, values 0..100, at
        least one above 0; ValueError otherwise).
    weeks_delay : float, default 0.0
        Weeks of untreated growth before treatment, 0..520 (ValueError otherwise); a
        histology without a doubling time cannot be delayed.
    grid_mm : tuple of float, default GAP_RESOLVING_GRID_MM (2.5, 1.25, 1.25)
        Voxel spacing (z, y, x) in mm of the planning scene.
    engine : str, default "pencil"
        Dose engine, 'pencil' or 'superposition' ('pencil' by default: a scorecard plans
        many strategies).
    techniques : dict, optional
        ``{technique: (arrangement, protocol)}`` overriding the menu's (see
        :func:`~planner.clinical.strategies.evaluate_strategy`).
    progress : callable, optional
        ``progress(message, done, total)`` after each step.

    Returns
    -------
    Scorecard
        The strategies ranked by weighted score, the Pareto set, the NOMS recommendation
        and a comment when the two disagree.

    Examples
    --------
    >>> from planner.clinical.strategies import Strategy
    >>> card = compare_strategies("l2_rcc_escc1a", strategies=[Strategy("bsc", "Best supportive care")],
    ...                           grid_mm=(5.0, 5.0, 5.0))  # doctest: +SKIP
    """
    say = progress or (lambda message, done, total: None)
    case = load_case(case) if isinstance(case, str) else case
    weights = _check_weights(weights)
    if not (isinstance(weeks_delay, (int, float)) and 0 <= weeks_delay <= 520):
        raise ValueError(f"weeks_delay must be in 0..520 weeks, got {weeks_delay!r}")
    if weeks_delay:
        doubling_time_days(case.histology)  # a histology that cannot grow says so before any work
    say("measuring the scene (ESCC, SINS, NOMS, prognosis)", 0, 1)
    measuring = build_scene(case, spacing_mm=MEASURING_GRID_MM)
    planning = build_scene(case, spacing_mm=grid_mm)
    if weeks_delay:
        measuring, planning = grow(measuring, weeks_delay), grow(planning, weeks_delay)
    escc = measure_escc_grade(measuring)
    if weeks_delay:
        # The neurology of the delayed patient follows the grown lesion (as in the timeline).
        case = case_after_delay(case, escc.grade)
    sins_score = sins(measuring)
    prognosis = tokuhashi(case, measuring)
    assessment = noms(measuring, case, escc=escc, sins_score=sins_score, prognosis=prognosis)
    findings = menu_findings(case, assessment)
    if strategies is not None:
        menu, not_indicated = list(strategies), {}
    else:
        menu, not_indicated = strategy_menu_for(case, findings)
    keys = [s.key for s in menu]
    if len(set(keys)) != len(keys):
        raise ValueError(f"strategy keys must be unique, got {keys}")
    survival = expected_survival(case, prognosis)
    results = []
    for i, strategy in enumerate(menu):
        say(f"strategy {i + 1}/{len(menu)}: {strategy.label}", i, len(menu))
        results.append(evaluate_strategy(case, strategy, scene=planning, escc_grade=escc.grade, survival=survival,
                                         findings=findings, engine=engine, techniques=techniques))
    say("ranking", len(menu), len(menu))
    totals = _scores(results, weights)
    scores = {r.strategy.key: s for r, s in zip(results, totals)}
    ranking = tuple(sorted(scores, key=lambda k: (-scores[k], keys.index(k))))
    noms_key = noms_strategy_key(assessment)
    return Scorecard(case.id, case.title, float(weeks_delay), escc.grade, sins_score.total, assessment, prognosis,
                     tomita(case, measuring), tuple(results), scores, ranking, frozenset(_pareto(results)), weights,
                     noms_key, _comment(results, scores, ranking, noms_key, weights), planning, not_indicated)
