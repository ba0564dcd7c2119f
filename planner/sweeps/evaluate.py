"""Scenarios to rows: the task function local workers and Dask workers run.

:func:`evaluate_batch` takes plain dicts (a scenario's key, index and resolved parameters,
:class:`planner.sweeps.spec.Scenario`) and returns one row per scenario with every scalar
metric: the measured scores (ESCC, SINS, revised Tokuhashi, Tomita, NOMS), the strategy's
scorecard estimates and score under the scenario's weights, its dosimetry, the maximum
achievable prescription and the limit that binds it, every constraint (value, limit,
margin, status) and the plan's DVH metrics. It uses the public API:
:func:`scenes.cases.parse_case` for the case with the scenario's overrides and
:func:`planner.clinical.scorecard.compare_strategies` with the one strategy (which plans
with :func:`planner.radiotherapy.plan.plan_case`, pencil-beam engine).

Reuse: scenes are memoised per process by :mod:`scenes.cases` (the measuring and planning
scenes of a case, grown or not), and scenarios that differ only in their scorecard
weights share one plan (:data:`PLAN_MEMO_SIZE` plans are kept per process): a plan depends
on (scene, beams, regimen, protocol), not on the weights. ``plan_case`` takes no influence
matrix, so scenarios with the same scene and beams but another regimen or protocol build
theirs again.

A scenario whose case cannot be built (an ESCC grade the level's anatomy cannot reach, a
level that contradicts the neurology) or planned (nothing left to plan) gives an
'infeasible' row with the reason; it is a finished row, not retried.
"""

from __future__ import annotations

import copy
import math
import os
import threading
import time
import tomllib
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

__all__ = ["evaluate_batch", "scenario_case", "scenario_strategy", "limit_threads", "PLAN_MEMO_SIZE"]

#: Plans kept per process for scenarios that differ only in their weights.
PLAN_MEMO_SIZE = 16
_PLANS: OrderedDict = OrderedDict()
_LOCK = threading.RLock()


def limit_threads(threads: int | None) -> None:
    """Cap numba's threads in this process (and thread), so that workers do not oversubscribe.

    Parameters
    ----------
    threads : int or None
        Threads for the dose kernels; None leaves the setting alone.
    """
    if threads is None:
        return
    import numba

    numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))


def scenario_case(params: dict):
    """The scenario's case: its base case file with the level, histology, ESCC grade, lesion
    sites and size of the scenario (where given), validated by :func:`scenes.cases.parse_case`.

    Parameters
    ----------
    params : dict
        Resolved parameters (:attr:`planner.sweeps.spec.Scenario.params`).

    Returns
    -------
    scenes.cases.Case
        The case (CaseError, a ValueError, naming the field when the overrides contradict it).
    """
    from scenes.cases import case_path, parse_case

    label = params["case"]
    path = Path(label) if Path(label).suffix else case_path(label)
    data = copy.deepcopy(tomllib.loads(path.read_text(encoding="utf-8")))
    changed = []
    for name, table, field in (("level", "case", "level"), ("histology", "patient", "histology"),
                               ("escc_grade", "lesion", "escc_grade"), ("lesion_sites", "lesion", "sites"),
                               ("body_fraction", "lesion", "body_fraction")):
        if params.get(name) is not None:
            data[table][field] = params[name]
            changed.append(f"{table}.{field} = {params[name]!r}")
    if params.get("lesion_sites") is not None:
        data["lesion"].pop("posterolateral", None)  # follows from the sites
    where = f"{label}" + (f" with {', '.join(changed)}" if changed else "")
    return parse_case(data, where=where)


def scenario_strategy(case, params: dict):
    """The scenario's strategy: the menu entry with the scenario's gap and regimen.

    Parameters
    ----------
    case : scenes.cases.Case
        The scenario's case (the menu depends on it).
    params : dict
        Resolved parameters: ``strategy`` (a menu key), ``gap_mm`` (0: the strategy without
        its separation surgery) and ``regimen`` ('DOSE/FRACTIONS') or None.

    Returns
    -------
    planner.clinical.strategies.Strategy
        The strategy to evaluate.
    """
    from planner.clinical.menu import standard_strategies
    from planner.radiotherapy.plan import Regimen

    strategy = {s.key: s for s in standard_strategies(case)}[params["strategy"]]
    gap = params.get("gap_mm")
    if gap is not None:
        # 0 mm: the strategy without its separation surgery (the command line's convention),
        # the baseline a gap study compares with.
        procedures = tuple(replace(p, option=float(gap)) if p.name == "separation_surgery" else p
                           for p in strategy.procedures if gap > 0 or p.name != "separation_surgery")
        strategy = replace(strategy, procedures=procedures)
    if params.get("regimen") is not None:
        dose, fractions = params["regimen"].split("/")
        strategy = replace(strategy, regimen=Regimen(float(dose), int(fractions)))
    return strategy


def _name(text: str) -> str:
    """'D0.35cc' -> 'd0_35cc', 'D90%' -> 'd90pct': metric names as column names."""
    return text.replace("%", "pct").replace(".", "_").replace(" ", "_").lower()


def _number(value):
    if value is None or isinstance(value, bool):
        return value
    value = float(value)
    return value if math.isfinite(value) else None


def _plan_key(params: dict) -> str:
    from .spec import scenario_key

    return scenario_key({k: v for k, v in params.items() if k != "weights"})


def _evaluate_plan(params: dict):
    """(card, strategy, seconds) of the scenario's plan, shared by scenarios that differ only in weights."""
    key = _plan_key(params)
    with _LOCK:
        found = _PLANS.get(key)
        if found is not None:
            _PLANS.move_to_end(key)
            return found + (0.0,)
    from planner.clinical.scorecard import compare_strategies

    start = time.perf_counter()
    case = scenario_case(params)
    strategy = scenario_strategy(case, params)
    override = None
    if strategy.technique is not None and (params.get("beams") or params.get("protocol")):
        override = {strategy.technique: (params.get("beams"), params.get("protocol"))}
    card = compare_strategies(case, strategies=[strategy], weeks_delay=float(params["weeks_delay"]),
                              grid_mm=tuple(params["grid_mm"]), engine="pencil", techniques=override)
    seconds = time.perf_counter() - start
    with _LOCK:
        _PLANS[key] = (card, strategy)
        while len(_PLANS) > PLAN_MEMO_SIZE:
            _PLANS.popitem(last=False)
    return card, strategy, seconds


def _score(card, weights: dict | None) -> float:
    # The scorecard's own weighted score of its one strategy, under the scenario's weights.
    from planner.clinical.scorecard import strategy_scores

    return float(strategy_scores(card.results, weights)[0])


def _metrics(card, strategy, params: dict) -> dict:
    result = card.results[0]
    metrics = {"escc_grade_measured": card.escc_grade, "sins": card.sins_total, "tokuhashi": card.tokuhashi.total,
               "tokuhashi_survival": card.tokuhashi.survival, "tomita": card.tomita.total, "noms": card.noms.summary,
               "noms_strategy": card.noms_key, "is_noms_choice": card.noms_key == strategy.key,
               "strategy_label": strategy.label, "strategy_kind": strategy.kind,
               "score": _score(card, params.get("weights"))}
    if card.scene is not None:  # what the scenario's case was built with (its own values where it set none)
        metrics.update(level_built=card.scene.level, histology_built=card.scene.clinical.get("histology"),
                       escc_grade_built=card.scene.clinical.get("requested_escc_grade"))
    for name, estimate in result.estimates.items():
        unit = "pct" if estimate.unit == "%" else _name(estimate.unit)
        metrics[f"{name}_{unit}"] = _number(estimate.value)
        metrics[f"{name}_source"] = estimate.source
    metrics["days_to_end_of_treatment"] = result.days_to_end_of_treatment
    for key, value in result.dosimetry.items():
        if key == "achievable_binding":
            binding = value or {}
            metrics["achievable_binding"] = ("escalation bound" if binding.get("kind") == "escalation bound" else
                                             f"{binding['structure']} {binding['metric']}" if binding else None)
            metrics["achievable_binding_limit_gy"] = _number(binding.get("limit_gy"))
        elif key == "cord_pmax_structure":
            metrics[key] = value
        else:
            metrics[key] = _number(value)
    for c in result.constraints:
        stem = f"limit_{c['protocol']}_{c['structure']}_{_name(c['metric'])}"
        metrics[f"{stem}_value_gy"] = _number(c["value_gy"])
        metrics[f"{stem}_limit_gy"] = _number(c["limit_gy"])
        metrics[f"{stem}_margin_gy"] = _number(c["margin_gy"])
        metrics[f"{stem}_status"] = c["status"]
    metrics["constraints_pass"] = (None if not result.constraints else not result.failing_constraints)
    metrics["failing_constraints"] = ", ".join(result.failing_constraints)
    plan = result.plan
    if plan is not None:
        for structure, values in plan.metrics.items():
            for metric, value in values.items():
                metrics[f"plan_{structure}_{_name(metric)}_gy"] = _number(value)
        metrics["gtv_d95_bed10_gy"] = _number(plan.radiobiology.get("gtv_d95_bed10_gy"))
        band = plan.radiobiology.get("myelopathy")
        metrics["myelopathy_band"] = band if isinstance(band, str) else (str(band) if band is not None else None)
        metrics["plan_protocol"] = plan.protocol
        surrogate = params.get("cord_surrogate")
        if surrogate:
            metrics["cord_surrogate_dmax_gy"] = _number(plan.metrics.get(surrogate, {}).get("Dmax"))
    metrics["flags"] = "; ".join(result.flags)
    return metrics


def _dose(card) -> dict | None:
    import numpy as np

    plan = card.results[0].plan
    if plan is None:
        return None
    grid = plan.scene.grid
    return {"dose_gy": np.asarray(plan.dose_gy, np.float32), "spacing_mm": np.asarray(grid.spacing_mm),
            "origin_mm": np.asarray(grid.origin_mm)}


def evaluate_batch(scenarios: list, *, dose_arrays: bool = False, threads: int | None = None) -> list:
    """Evaluate scenarios; one row each (the task function of every executor).

    Parameters
    ----------
    scenarios : list of dict
        Each with ``key``, ``index`` and ``params`` (resolved parameters).
    dose_arrays : bool, default False
        Return each plan's dose (float32, with its grid) for the side store.
    threads : int, optional
        Cap numba's threads for this call (:func:`limit_threads`).

    Returns
    -------
    list of dict
        Per scenario: ``key``, ``index``, ``params``, ``status`` ('ok' or 'infeasible'),
        ``message``, ``metrics`` (flat, JSON-serialisable), ``wall_s`` (this scenario's
        time; 0-ish when it shared a plan), ``compute_s`` (time spent building scenes,
        planning and scoring), ``worker`` (process id) and ``dose`` (dict of arrays or None).
    """
    limit_threads(threads)
    rows = []
    for scenario in scenarios:
        start = time.perf_counter()
        params = scenario["params"]
        status, message, metrics, dose, compute = "ok", "", {}, None, 0.0
        try:
            card, strategy, compute = _evaluate_plan(params)
            metrics = _metrics(card, strategy, params)
            if dose_arrays:
                dose = _dose(card)
        except ValueError as error:  # CaseError included: the scenario cannot be built or planned
            status, message = "infeasible", str(error).splitlines()[0]
            compute = time.perf_counter() - start
        rows.append({"key": scenario["key"], "index": scenario["index"], "params": params, "status": status,
                     "message": message, "metrics": metrics, "wall_s": time.perf_counter() - start,
                     "compute_s": compute, "worker": os.getpid(), "dose": dose})
    return rows
