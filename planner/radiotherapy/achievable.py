"""The maximum achievable prescription of a plan: its figure, the limit that binds it, its bounds.

A plan's dose scales with its weights, so the plan scaled by ``s`` puts every limited metric at
``s x value`` and the gross tumour's coverage (GTV Dmin, targets.toml [achievable]) at
``s x cover``. The achievable prescription of the plan is the largest coverage for which

- every organ limit of the protocol holds (cord, sac, cauda, oesophagus, airway, great
  vessels, heart, bowel, kidneys, skin, plexuses: whichever the scene has), so
  ``cover x limit / value`` for each of them; and
- the prescription stays within the escalation bound of the dose-escalation literature in
  that many fractions (targets.toml [escalation_bounds], :func:`escalation_bound`),

and the one that gives the smallest figure *binds*: :func:`achievable_limits` names it
(structure, metric, limit, source). The target's own hot spot (GTV point maximum at most
``1 / lowest prescription isodose`` times the prescription, targets.toml [hot_spot]) is a
ratio that scaling does not change: it decides which plans count, not how far one scales
(the escalation in :mod:`.plan` keeps only plans within it).
"""

from __future__ import annotations

import numpy as np

from .metrics import metric, structure_dose
from .protocols import read_table
from .radiobiology import alpha_beta, bed, dose_per_fraction_for_eqd2, eqd2, lq_extrapolation_warning

__all__ = ["ACHIEVABLE_STRUCTURE", "ACHIEVABLE_METRIC", "ROUNDING", "escalation_bound", "hot_spot_limit",
           "achievable_limits", "achievable_from", "achievable_prescription", "row_measure", "full_measure"]


def _rules() -> dict:
    return read_table("targets")


#: The achievable prescription asks the gross tumour, not the cropped PTV, to be covered:
#: epidural disease against the cord is what limits it (and what separation surgery removes).
#: Its coldest voxel (Dmin) must reach the prescription (targets.toml [achievable], with why).
ACHIEVABLE_STRUCTURE = str(_rules()["achievable"]["structure"])
ACHIEVABLE_METRIC = str(_rules()["achievable"]["metric"]["value"])
#: Relative floating-point tolerance when a ratio is compared with its limit.
ROUNDING = 1e-9


def escalation_bound(fractions: int) -> dict:
    """The highest prescription in ``fractions`` that the dose-escalation literature supports.

    targets.toml [escalation_bounds]: the higher of the largest total given in exactly that
    many fractions among the regimens listed there, and the total in that many fractions with
    the BED10 (tumour alpha/beta, radiobiology.toml) of the most intense listed regimen for
    which the LQ model holds (no single fraction at or above its validity limit).

    Parameters
    ----------
    fractions : int
        Number of fractions (>= 1).

    Returns
    -------
    dict
        ``total_gy`` (the bound), ``bed10_gy`` (its BED10), ``regimen`` (the regimen it comes
        from), ``source`` (that regimen's source key) and ``rule`` (how, in words).

    Examples
    --------
    >>> round(escalation_bound(2)["total_gy"], 1), escalation_bound(1)["total_gy"]
    (29.2, 24.0)
    """
    if not (isinstance(fractions, int) and fractions >= 1):
        raise ValueError(f"fractions must be an integer >= 1, got {fractions!r}")
    ab = alpha_beta("tumour")
    regimens = _rules()["escalation_bounds"]["regimens"]
    candidates = [(float(r["total_gy"]), r, f"the highest total given in {fractions} fraction(s)")
                  for r in regimens if int(r["fractions"]) == fractions]
    # The most intense regimen for which the LQ model holds, carried to this many fractions.
    valid = [r for r in regimens if lq_extrapolation_warning(float(r["total_gy"]), int(r["fractions"])) is None]
    if valid:
        top = max(valid, key=lambda r: bed(float(r["total_gy"]), int(r["fractions"]), ab))
        top_bed = bed(float(top["total_gy"]), int(top["fractions"]), ab)
        total = fractions * dose_per_fraction_for_eqd2(eqd2(float(top["total_gy"]), int(top["fractions"]), ab), fractions, ab)
        candidates.append((total, top, f"iso-BED10 ({top_bed:.1f} Gy) in {fractions} fraction(s)"))
    total, regimen, rule = max(candidates, key=lambda c: c[0])
    return {"total_gy": float(total), "bed10_gy": bed(total, fractions, ab), "regimen": regimen["name"],
            "source": regimen["source"], "rule": rule}


def hot_spot_limit() -> dict:
    """The target's hot-spot limit: GTV point maximum / prescription (targets.toml [hot_spot]).

    Returns
    -------
    dict
        ``ratio`` (1 / the lowest prescription isodose), ``source`` and ``note``.
    """
    entry = _rules()["hot_spot"]["lowest_prescription_isodose"]
    return {"ratio": 1.0 / float(entry["value"]), "source": entry["source"], "note": entry["note"]}


def achievable_limits(measure, constraints, present, *, fractions: int | None = None,
                      structure: str = ACHIEVABLE_STRUCTURE, coverage_metric: str = ACHIEVABLE_METRIC) -> dict:
    """The achievable prescription of the current dose, the limit that binds it and the others.

    Parameters
    ----------
    measure : callable
        ``measure(name, metric_name) -> float`` (Gy) on the current dose.
    constraints : iterable of Constraint
        The limits; those whose structure is in ``present`` count ('D10%_partial' rows
        excepted: the partial cord is a full-grid measure, and its point maximum binds first).
    present : collection of str
        The structures that exist.
    fractions : int, optional
        With it, the escalation bound in that many fractions (:func:`escalation_bound`) is a
        limit too; without it (normalising a requested prescription) only the organs count.
    structure : str, default ACHIEVABLE_STRUCTURE
        The structure whose coverage is scaled (targets.toml [achievable]).
    coverage_metric : str, default ACHIEVABLE_METRIC
        Its coverage metric (a :func:`~planner.radiotherapy.metrics.metric` name).

    Returns
    -------
    dict
        ``figure_gy`` (the achievable coverage dose: inf when nothing limits it, NaN when the
        coverage is 0 too), ``binding`` (the limit that sets it, or None), ``limits`` (every
        limit as a dict, tightest first) and ``hot_spot`` (the plan's hot-spot ratio against
        :func:`hot_spot_limit`; ``ok`` False when broken, None when it was not measured). Each
        limit dict has ``kind`` ('organ limit' or 'escalation bound'), ``structure``,
        ``metric``, ``limit_gy``, ``value_gy`` (the metric at the achievable figure),
        ``figure_gy`` (where this limit alone would put the figure), ``protocol``, ``source``
        and ``note``.
    """
    cover = measure(structure, coverage_metric)
    limits = []
    for c in constraints:
        if c.structure not in present or c.metric == "D10%_partial":
            continue
        value = measure(c.structure, c.metric)
        if np.isfinite(value) and value > 0:
            limits.append({"kind": "organ limit", "structure": c.structure, "metric": c.metric, "limit_gy": float(c.limit_gy),
                           "value_gy": float(value), "figure_gy": float(cover * c.limit_gy / value),
                           "protocol": c.protocol, "source": c.source, "note": c.note})
    if fractions is not None:
        bound = escalation_bound(fractions)
        limits.append({"kind": "escalation bound", "structure": structure, "metric": coverage_metric,
                       "limit_gy": bound["total_gy"], "value_gy": float(cover), "figure_gy": bound["total_gy"],
                       "protocol": "escalation bound", "source": bound["source"],
                       "note": f"{bound['regimen']}: {bound['rule']}"})
    limits.sort(key=lambda entry: entry["figure_gy"])
    figure = limits[0]["figure_gy"] if limits and cover > 0 else float(cover * np.inf)
    if np.isfinite(figure) and cover > 0:
        for entry in limits:  # each metric where the achievable figure puts it
            entry["value_gy"] = float(entry["value_gy"] * figure / cover)
    hot = hot_spot_limit()
    peak = measure(structure, "Dmax")
    ratio = float(peak / cover) if cover > 0 and np.isfinite(peak) else float("nan")
    hot_spot = {"structure": structure, "metric": "Dmax", "ratio": ratio, "limit_ratio": hot["ratio"],
                "ok": None if not np.isfinite(ratio) else bool(ratio <= hot["ratio"] * (1 + ROUNDING)), "source": hot["source"]}
    return {"figure_gy": float(figure), "binding": limits[0] if limits and np.isfinite(figure) else None, "limits": limits,
            "hot_spot": hot_spot}


def achievable_from(measure, constraints, present, *, fractions: int | None = None, structure=ACHIEVABLE_STRUCTURE,
                    coverage_metric=ACHIEVABLE_METRIC) -> float:
    """Coverage dose of ``structure`` at which the first limit is met exactly.

    ``measure(name, metric)`` returns a metric of the current dose; ``present`` names the
    structures that exist. Shared by full-grid plans and the row-only interactive session.

    Parameters
    ----------
    measure : callable
        ``measure(name, metric_name) -> float`` (Gy) on the current dose.
    constraints : iterable of Constraint
        The limits; those whose structure is in ``present`` count ('D10%_partial' rows
        excepted).
    present : collection of str
        The structures that exist.
    fractions : int, optional
        Adds the escalation bound in that many fractions (:func:`escalation_bound`).
    structure : str, default ACHIEVABLE_STRUCTURE
        The structure whose coverage is scaled (targets.toml [achievable]).
    coverage_metric : str, default ACHIEVABLE_METRIC
        Its coverage metric (a :func:`~planner.radiotherapy.metrics.metric` name).

    Returns
    -------
    float
        ``coverage x min over limits of (limit / value)`` in Gy, at most the escalation bound;
        inf when nothing limits it (NaN if the coverage is 0 too).
    """
    return achievable_limits(measure, constraints, present, fractions=fractions, structure=structure,
                             coverage_metric=coverage_metric)["figure_gy"]


def full_measure(dose_gy, scene):
    """``measure(name, metric)`` on a full-grid dose of ``scene`` (cached per structure).

    Parameters
    ----------
    dose_gy : numpy.ndarray
        Dose (Gy) on the scene's grid.
    scene : Scene
        The planned scene.

    Returns
    -------
    callable
        ``measure(name, metric_name) -> float``: the named metric of the structure's dose.
    """
    voxel, collected = scene.grid.voxel_volume_cc, {}

    def measure(name, metric_name):
        if name not in collected:
            collected[name] = structure_dose(dose_gy, scene.structure(name).full(), voxel)
        return metric(collected[name], metric_name)

    return measure


def achievable_prescription(dose_gy, scene, constraints, *, fractions: int | None = None, structure=ACHIEVABLE_STRUCTURE,
                            coverage_metric=ACHIEVABLE_METRIC) -> float:
    """Coverage dose of ``structure`` at which the first limit is met exactly (full grid).

    Dose is linear in the weights, so the dose scaled by ``min(limit / value)`` over the
    limits meets the tightest one exactly; the figure is the coverage of that scaled dose,
    at most the escalation bound when ``fractions`` is given.

    Parameters
    ----------
    dose_gy : numpy.ndarray
        Dose (Gy) on the scene's grid.
    scene : Scene
        The planned scene (with its targets, :func:`planner.radiotherapy.plan.add_targets`).
    constraints : iterable of Constraint
        The plan's limits; those whose structure the scene has count ('D10%_partial' rows
        excepted).
    fractions : int, optional
        Adds the escalation bound in that many fractions (:func:`escalation_bound`).
    structure : str, default ACHIEVABLE_STRUCTURE
        The structure whose coverage is scaled (the GTV, targets.toml [achievable]).
    coverage_metric : str, default ACHIEVABLE_METRIC
        Its coverage metric (Dmin by targets.toml).

    Returns
    -------
    float
        The achievable coverage dose (Gy); inf when nothing limits it (NaN if the coverage is
        0 too).
    """
    present = {c.structure for c in constraints if scene.has(c.structure)} | {structure}
    return achievable_from(full_measure(dose_gy, scene), constraints, present, fractions=fractions, structure=structure,
                           coverage_metric=coverage_metric)


def row_measure(matrix, weights, rows_of: dict, voxel_cc: float):
    """``measure(name, metric)`` on the influence matrix's rows only.

    Every target and organ voxel near the PTV is a row, so no full-grid dose is needed.

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix
        Influence matrix (rows x beamlets, Gy per unit beamlet weight).
    weights : array_like of float
        Beamlet weights, one per column.
    rows_of : dict
        ``{name: (rows, occupancy)}``: each structure's row indices and their occupancy.
    voxel_cc : float
        Volume of one voxel (cc).

    Returns
    -------
    callable
        ``measure(name, metric_name) -> float``: the named metric
        (:func:`~planner.radiotherapy.metrics.metric`) of the structure's rows for the dose
        of ``weights``.
    """
    from kernels.sparse_dose_cpu import dose_from_weights

    dose = dose_from_weights(matrix, weights)
    collected = {}

    def measure(name, metric_name):
        if name not in collected:
            rows, occupancy = rows_of[name][:2]
            collected[name] = structure_dose(dose[rows], occupancy, voxel_cc)
        return metric(collected[name], metric_name)

    return measure
