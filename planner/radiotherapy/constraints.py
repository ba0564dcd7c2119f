"""Constraint protocols (data in planner/radiotherapy/protocols/*.toml) and the constraint checker.

``constraints_for(protocol, fractions)`` turns a protocol table into concrete limits for a
fractionation; ``check_constraints(dose, scene, constraints)`` measures each metric on the
plan and reports value, limit, margin, status ('pass', 'within 5%', 'fail') and source.
Below the conus the cord rows apply to the cauda equina's own rows; a structure the scene
does not have is reported as 'not applicable', never silently skipped.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from scenes.scene import Scene

from .metrics import metric, structure_dose
from .protocols import protocol_tables
from .radiobiology import dose_per_fraction_for_eqd2, reirradiation_budget

__all__ = ["Constraint", "ConstraintResult", "protocols", "constraints_for", "check_constraints", "constraint_status",
           "format_table", "results_json", "partial_cord"]

WITHIN = 0.05  # 'within 5%' band below a limit


@dataclass(frozen=True)
class Constraint:
    structure: str
    metric: str
    limit_gy: float
    protocol: str
    source: str
    note: str = ""


@dataclass(frozen=True)
class ConstraintResult:
    structure: str
    metric: str
    value_gy: float
    limit_gy: float
    margin_gy: float
    status: str
    protocol: str
    source: str


def protocols() -> dict:
    """All protocols by name (every ``[protocols]`` table in planner/radiotherapy/protocols)."""
    return protocol_tables()


def constraints_for(name: str, fractions: int, *, prior_course: dict | None = None) -> list[Constraint]:
    """Limits of protocol ``name`` for ``fractions``; with ``prior_course`` (dose_gy,
    fractions, months_ago) the cord and thecal-sac point maxima are replaced by the
    re-irradiation budget (Sahgal 2012) when it is lower."""
    table = protocols()
    if name not in table:
        raise ValueError(f"unknown protocol {name!r}; known: {', '.join(sorted(table))}")
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
    if prior_course:
        budget = reirradiation_budget(prior_course["dose_gy"], prior_course["fractions"], prior_course["months_ago"], fractions)
        for structure in ("spinal_cord", "thecal_sac"):
            out.append(Constraint(structure, "Dmax", budget["pmax_gy"], "reirradiation", budget["source"],
                                  f"re-irradiation budget {budget['sbrt_eqd2_gy']:.1f} Gy2/2 after a prior "
                                  f"{prior_course['dose_gy']:g} Gy/{prior_course['fractions']}"))
    return out


def partial_cord(scene: Scene, target: str = "gtv", margin_mm: float = 6.0) -> np.ndarray:
    """Occupancy of the 'partial cord': the cord from ``margin_mm`` above to below the target
    (TG-101 / RTOG 0631: 5-6 mm)."""
    cord = scene.structure("spinal_cord").full()
    occupied = np.nonzero(scene.structure(target).full().sum(axis=(1, 2)) > 0)[0]
    if occupied.size == 0:
        return cord
    z = scene.grid.axes_mm()[0]
    low, high = z[occupied.min()] - margin_mm, z[occupied.max()] + margin_mm
    keep = ((z >= low) & (z <= high))[:, None, None]
    return cord * keep


def constraint_status(value_gy: float, limit_gy: float) -> str:
    """'pass' (below the limit by more than :data:`WITHIN`), 'within 5%' or 'fail'."""
    return "pass" if value_gy <= (1 - WITHIN) * limit_gy else ("within 5%" if value_gy <= limit_gy else "fail")


def check_constraints(dose_gy: np.ndarray, scene: Scene, constraints: list[Constraint], *, target: str = "gtv") -> list[ConstraintResult]:
    """Measure every constraint on the dose (Gy, the scene's grid)."""
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
    """A readable table for the terminal."""
    lines = [f"{'structure':14s} {'metric':13s} {'value Gy':>9s} {'limit Gy':>9s} {'margin':>8s}  {'status':15s} source"]
    for r in results:
        lines.append(f"{r.structure:14s} {r.metric:13s} {r.value_gy:9.2f} {r.limit_gy:9.2f} {r.margin_gy:8.2f}  "
                     f"{r.status:15s} {r.protocol}/{r.source}")
    return "\n".join(lines)


def results_json(results: list[ConstraintResult]) -> str:
    """JSON for machines (NaN written as null)."""
    rows = [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(r).items()} for r in results]
    return json.dumps(rows, indent=2)
