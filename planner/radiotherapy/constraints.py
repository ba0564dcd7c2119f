"""Constraint protocols (data in planner/radiotherapy/protocols/*.toml) and the constraint checker.

``constraints_for(protocol, fractions)`` turns a protocol table into concrete limits for a
fractionation; ``check_constraints(dose, scene, constraints)`` measures each metric on the
plan and reports value, limit, margin, status ('pass', 'within 5%', 'fail') and source.
Below the conus the cord rows apply to the cauda equina's own rows; a structure the scene
does not have is reported as 'not applicable', never silently skipped.

A protocol that limits the cord only (HyTEC) names an organ table (``organs = "tg101"``): the
TG-101 limits of every other organ a beam may cross (oesophagus, airway, great vessels, heart,
bowel, kidneys, skin, cauda, plexuses) are added to its own rows. A fraction number the organ
table does not hold gets a limit isoeffective with its neighbours' (sbrt_cord.toml
[organ_limits]). :func:`organ_structures` builds the organs the rows name from the phantom's
own (the skin shell, the kidneys together, the airway, the great vessels).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from scenes.scene import Scene

from .metrics import metric, structure_dose
from .protocols import protocol_tables, read_table
from .radiobiology import dose_per_fraction_for_eqd2, eqd2, reirradiation_budget

__all__ = ["Constraint", "ConstraintResult", "protocols", "constraints_for", "check_constraints", "constraint_status",
           "format_table", "results_json", "partial_cord", "organ_structures", "organ_limit_tables"]

#: The 'within 5%' band below a limit (sbrt_cord.toml [metrics]).
WITHIN = float(read_table("sbrt_cord")["metrics"]["near_limit_fraction"]["value"])
#: Relative floating-point tolerance when a value is compared with its limit.
ROUNDING = 1e-9


@dataclass(frozen=True)
class Constraint:
    """One dose limit of a protocol: ``metric`` of ``structure`` at most ``limit_gy`` (Gy).

    ``metric`` is a name :func:`planner.radiotherapy.metrics.metric` reads, or
    ``'D10%_partial'`` (D10% of the partial cord, :func:`partial_cord`); ``protocol`` and
    ``source`` name where the limit comes from, ``note`` any qualification.
    """
    structure: str
    metric: str
    limit_gy: float
    protocol: str
    source: str
    note: str = ""


@dataclass(frozen=True)
class ConstraintResult:
    """One constraint measured on a plan: value, limit and margin (``limit - value``) in Gy.

    ``status`` is 'pass', 'within 5%', 'fail' (see :func:`constraint_status`) or
    'not applicable' (the scene has no such structure; value and margin are NaN).
    """
    structure: str
    metric: str
    value_gy: float
    limit_gy: float
    margin_gy: float
    status: str
    protocol: str
    source: str


def protocols() -> dict:
    """All protocols by name (every ``[protocols]`` table in planner/radiotherapy/protocols).

    Returns
    -------
    dict
        {protocol name: its table} with the keys ``title``, ``source``, ``fractions`` (the
        fraction numbers it has limits for), ``rows`` (one dict per limit) and, where rows
        are EQD2 limits, ``eqd2_alpha_beta_gy``. Cached: treat as read-only.
    """
    return protocol_tables()


def organ_limit_tables() -> dict:
    """The organ tables protocols name with ``organs = ...`` (sbrt_cord.toml [organ_limits]).

    Returns
    -------
    dict
        {table name: its table} with the keys ``title``, ``source``, ``fractions``, ``rows``
        and ``other_fractions`` (the isoeffect rule for the fraction numbers it lacks).
        Cached: treat as read-only.
    """
    return read_table("sbrt_cord")["organ_limits"]


def _organ_limit(row: dict, table: dict, fractions: int) -> tuple[float, str]:
    """(limit Gy, note) of an organ row in ``fractions``: tabulated, or the lower of the totals
    isoeffective with the nearest tabulated fraction numbers below and above."""
    limits = {int(n): float(v) for n, v in row["limits"].items()}
    if fractions in limits:
        return limits[fractions], row.get("note", "")
    rule = table["other_fractions"]
    ab = float(rule["alpha_beta_gy"])
    neighbours = [n for n in (max((n for n in limits if n < fractions), default=None),
                              min((n for n in limits if n > fractions), default=None)) if n is not None]
    derived = {n: fractions * dose_per_fraction_for_eqd2(eqd2(limits[n], n, ab), fractions, ab) for n in neighbours}
    source = min(derived, key=derived.get)
    note = (f"derived for {fractions} fractions: isoeffective (LQ, alpha/beta {ab:g} Gy) with the {limits[source]:g} Gy "
            f"{source}-fraction limit, the lower of its tabulated neighbours' ({rule['source']} method)")
    return derived[source], "; ".join(filter(None, (row.get("note", ""), note)))


def constraints_for(name: str, fractions: int, *, prior_course: dict | None = None) -> list[Constraint]:
    """Limits of protocol ``name`` for a number of fractions, optionally for re-irradiation.

    A protocol with an organ table (``organs``, :func:`organ_limit_tables`) gets that table's
    rows after its own, except where it limits the same structure and metric itself.

    With ``prior_course`` the cord and thecal-sac point maxima of the re-irradiation budget
    (Sahgal 2012, :func:`~planner.radiotherapy.radiobiology.reirradiation_budget`) are added
    as 'reirradiation' constraints; the checker then reports both, so the lower one binds.

    Parameters
    ----------
    name : str
        A protocol of :func:`protocols` (e.g. 'hytec'); an unknown name raises ValueError.
    fractions : int
        Number of fractions; must be one the protocol has limits for (ValueError otherwise).
        Rows given as an EQD2 limit are converted to a total dose in this many fractions.
    prior_course : dict, optional
        A previous course to the same site: ``{"dose_gy": total Gy, "fractions": int,
        "months_ago": months}``.

    Returns
    -------
    list of Constraint
        The protocol's rows in table order, then its organ table's rows, then the
        re-irradiation limits if any.
    """
    table = protocols()
    if not isinstance(name, str) or name not in table:
        raise ValueError(f"unknown protocol {name!r}; known: {', '.join(sorted(table))}")
    if isinstance(fractions, bool) or not isinstance(fractions, (int, np.integer)):
        raise ValueError(f"fractions must be a whole number, got {fractions!r}")
    if prior_course:
        _check_prior_course(prior_course)
    protocol = table[name]
    if fractions not in protocol["fractions"]:
        raise ValueError(f"protocol {name!r} has limits for {protocol['fractions']} fractions, not {fractions}")
    out = []
    for row in protocol["rows"]:
        source = row.get("source", protocol["source"])
        if "limits" in row:
            limit = float(row["limits"][str(fractions)])
        else:
            ab = protocol["eqd2_alpha_beta_gy"]
            limit = fractions * dose_per_fraction_for_eqd2(row["eqd2_limit_gy"], fractions, ab)
        out.append(Constraint(row["structure"], row["metric"], limit, name, source, row.get("note", "")))
    if "organs" in protocol:
        table = organ_limit_tables()[protocol["organs"]]
        own = {(c.structure, c.metric) for c in out}
        for row in table["rows"]:
            if (row["structure"], row["metric"]) not in own:
                limit, note = _organ_limit(row, table, fractions)
                out.append(Constraint(row["structure"], row["metric"], limit, protocol["organs"],
                                      row.get("source", table["source"]), note))
    if prior_course:
        budget = reirradiation_budget(prior_course["dose_gy"], prior_course["fractions"], prior_course["months_ago"], fractions)
        for structure in ("spinal_cord", "thecal_sac"):
            out.append(Constraint(structure, "Dmax", budget["pmax_gy"], "reirradiation", budget["source"],
                                  f"re-irradiation budget {budget['sbrt_eqd2_gy']:.1f} Gy2/2 after a prior "
                                  f"{prior_course['dose_gy']:g} Gy/{prior_course['fractions']}"))
    return out


def _check_prior_course(prior: dict) -> None:
    """ValueError naming the entry unless ``prior`` is a prior course the budget can use."""
    if not isinstance(prior, dict):
        raise ValueError(f"prior_course must be a table with dose_gy, fractions and months_ago, got {prior!r}")
    for key, whole in (("dose_gy", False), ("fractions", True), ("months_ago", False)):
        value = prior.get(key)
        number = not isinstance(value, bool) and isinstance(value, (int, np.integer) if whole else (int, float, np.number))
        if not number or not np.isfinite(value) or value < (1 if whole else 0):
            kind = "a whole number >= 1" if whole else "a finite number >= 0"
            raise ValueError(f"prior_course['{key}'] must be {kind}, got {value!r}")


def organ_structures(scene: Scene) -> dict:
    """The organs the limit rows name that the phantom builds from its own structures.

    sbrt_cord.toml [structures]: each group (``kidneys``, ``airway``, ``great_vessels``) is
    the union of the members the scene has, unless the scene has the group itself; ``skin``
    is the body outline's outer shell ``skin_depth_mm`` deep.

    Parameters
    ----------
    scene : Scene
        Any scene; groups none of whose members it has, and the skin of a scene without a
        ``body_outline``, are left out.

    Returns
    -------
    dict
        {name: occupancy (0..1, the scene's grid)} of the organs built, none the scene already
        has.
    """
    settings = read_table("sbrt_cord")["structures"]
    built = {}
    for group, members in settings["groups"].items():
        present = [scene.structure(m).full() for m in members if m in scene.structures]
        if group not in scene.structures and present:
            built[group] = np.maximum.reduce(present) if len(present) > 1 else present[0]
    if "skin" not in scene.structures and "body_outline" in scene.structures:
        from scipy import ndimage

        body = scene.structure("body_outline").full()
        depth = ndimage.distance_transform_edt(body > 0.5, sampling=scene.grid.spacing_mm)
        built["skin"] = np.where(depth <= float(settings["skin_depth_mm"]["value"]), body, 0.0).astype(np.float32)
    return built


def partial_cord(scene: Scene, target: str = "gtv", margin_mm: float | None = None) -> np.ndarray:
    """Occupancy of the 'partial cord': the cord from ``margin_mm`` above to below the target.

    Parameters
    ----------
    scene : Scene
        A scene with a ``spinal_cord`` structure and the ``target``.
    target : str, default "gtv"
        Structure whose axial extent (z) defines the partial cord.
    margin_mm : float, optional
        Extension (mm) above and below the target; default sbrt_cord.toml [metrics]
        partial_cord_margin_mm (TG-101 / RTOG 0631: 5-6 mm).

    Returns
    -------
    numpy.ndarray
        The cord's occupancy (0..1, the scene's grid) within that z-range, zero elsewhere;
        the whole cord when the target is empty.
    """
    if margin_mm is None:
        margin_mm = float(read_table("sbrt_cord")["metrics"]["partial_cord_margin_mm"]["value"])
    cord = scene.structure("spinal_cord").full()
    occupied = np.nonzero(scene.structure(target).full().sum(axis=(1, 2)) > 0)[0]
    if occupied.size == 0:
        return cord
    z = scene.grid.axes_mm()[0]
    low, high = z[occupied.min()] - margin_mm, z[occupied.max()] + margin_mm
    keep = ((z >= low) & (z <= high))[:, None, None]
    return cord * keep


def constraint_status(value_gy: float, limit_gy: float) -> str:
    """The status of a measured value against its limit.

    Parameters
    ----------
    value_gy : float
        Measured value (Gy).
    limit_gy : float
        The constraint's limit (Gy).

    Returns
    -------
    str
        'pass' (below the limit by more than :data:`WITHIN`, a fraction of the limit),
        'within 5%' (at most the limit) or 'fail' (above it, or a NaN value).
    """
    # A value equal to its limit up to floating-point rounding (17.000000000000004 for 17.0)
    # meets it: the plan was scaled to reach the limit exactly.
    at_limit = limit_gy * (1 + ROUNDING)
    return "pass" if value_gy <= (1 - WITHIN) * limit_gy else ("within 5%" if value_gy <= at_limit else "fail")


def check_constraints(dose_gy: np.ndarray, scene: Scene, constraints: list[Constraint], *, target: str = "gtv") -> list[ConstraintResult]:
    """Measure every constraint on the dose.

    A structure the scene does not have is reported as 'not applicable', never silently
    skipped.

    Parameters
    ----------
    dose_gy : numpy.ndarray
        Dose (Gy) on the scene's grid; another shape raises ValueError.
    scene : Scene
        The planned scene (its structures are the occupancies measured).
    constraints : list of Constraint
        The limits, e.g. from :func:`constraints_for`.
    target : str, default "gtv"
        Target that defines the partial cord of 'D10%_partial' rows (:func:`partial_cord`).

    Returns
    -------
    list of ConstraintResult
        One per constraint, in the same order.
    """
    dose_gy = np.asarray(dose_gy, float)
    if dose_gy.shape != scene.grid.shape:
        raise ValueError(f"dose shape {dose_gy.shape} does not match the scene grid {scene.grid.shape}")
    results = []
    for c in constraints:
        name, metric_name = c.structure, c.metric
        if not scene.has(name):
            results.append(ConstraintResult(name, metric_name, float("nan"), c.limit_gy, float("nan"), "not applicable",
                                            c.protocol, c.source))
            continue
        if metric_name == "D10%_partial":
            occupancy = partial_cord(scene, target)
            metric_name = "D10%"
        else:
            occupancy = scene.structure(name).full()
        value = metric(structure_dose(dose_gy, occupancy, scene.grid.voxel_volume_cc), metric_name)
        margin = c.limit_gy - value
        status = constraint_status(value, c.limit_gy)
        results.append(ConstraintResult(name, c.metric, value, c.limit_gy, margin, status, c.protocol, c.source))
    return results


def format_table(results: list[ConstraintResult]) -> str:
    """A readable table of constraint results for the terminal.

    Parameters
    ----------
    results : list of ConstraintResult
        Results of :func:`check_constraints`.

    Returns
    -------
    str
        A header line, then one line per measured result (structure, metric, value, limit and
        margin in Gy, status, protocol/source), then one line naming the structures the scene
        does not have ('not applicable'), joined by newlines.
    """
    lines = [f"{'structure':14s} {'metric':13s} {'value Gy':>9s} {'limit Gy':>9s} {'margin':>8s}  {'status':15s} source"]
    absent = {}
    for r in results:
        if r.status == "not applicable":
            absent.setdefault(r.structure, []).append(r.metric)
            continue
        lines.append(f"{r.structure:14s} {r.metric:13s} {r.value_gy:9.2f} {r.limit_gy:9.2f} {r.margin_gy:8.2f}  "
                     f"{r.status:15s} {r.protocol}/{r.source}")
    if absent:
        lines.append("not applicable (not in this scene): " + "; ".join(f"{name} {', '.join(metrics)}"
                                                                        for name, metrics in absent.items()))
    return "\n".join(lines)


def results_json(results: list[ConstraintResult]) -> str:
    """Constraint results as JSON for machines (NaN written as null).

    Parameters
    ----------
    results : list of ConstraintResult
        Results of :func:`check_constraints`.

    Returns
    -------
    str
        An indented JSON array with one object per result (the fields of
        :class:`ConstraintResult`).
    """
    rows = [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(r).items()} for r in results]
    return json.dumps(rows, indent=2)
