"""The optimiser's side of a teaching-case plan (:func:`~planner.radiotherapy.plan.plan_case`).

The voxel rows the optimiser sees (:func:`_optimisation_region`), the objective terms
``planner/radiotherapy/protocols/objectives.toml`` asks for at a prescription
(:func:`_make_terms`: the hard limits dominate, PTV and GTV coverage come next, hot spots and
the fall-off ring shape the rest), and the escalation search of the maximum achievable
prescription (:func:`escalate`; the figure itself is :mod:`.achievable`'s).
"""

from __future__ import annotations

import numpy as np

from scenes.scene import Scene

from .achievable import ROUNDING, achievable_limits, escalation_bound, hot_spot_limit, row_measure
from .objectives import DoseVolumeMin, Overdose, Underdose
from .optimise import optimise
from .protocols import read_table
from .regimen import MAX_PRESCRIPTION_GY, Regimen
from .targets import _dilate

__all__ = ["HARD_STRUCTURES", "hard_structures", "optimisation_stride", "objective_settings", "escalate",
           "TERM_KINDS", "ESCALATION_STEP", "ESCALATION_ITERATIONS", "ESCALATION_PROBES"]

#: Structures whose limits are hard (cord, its surrogate, the cauda below the conus).
HARD_STRUCTURES = ("spinal_cord", "thecal_sac", "cauda_equina")


def _optimisation_region(scene: Scene, *, near_mm: float = 10.0, margin_mm: float = 30.0, far_step_mm: float = 5.0,
                         organs=()) -> np.ndarray:
    """Voxel rows the optimiser sees: every voxel of the targets and organs (``organs``: the
    limited structures) and every voxel within ``near_mm`` of the PTV, and further out one
    voxel every ``far_step_mm`` along z, y and x (at least every voxel), where only the dose
    fall-off is steered, all within ``margin_mm`` of the PTV's box. Sampling the far region is
    the usual way to keep the matrix small; it changes nothing the constraints measure, and in
    millimetres it samples a fine grid as sparsely as a coarse one."""
    from .influence import dose_region

    region = np.zeros(scene.grid.size, bool)
    region[dose_region(scene, "ptv", margin_mm=margin_mm)] = True
    region = region.reshape(scene.grid.shape)
    near = _dilate(scene.structure("ptv").full(), near_mm, scene.grid.spacing_mm)
    for name in ("gtv", "ctv", "spinal_cord", "cauda_equina", "thecal_sac", "cord_prv", "esophagus", *organs):
        if name in scene.structures:
            near |= scene.structure(name).full() > 0
    sampled = np.zeros(scene.grid.shape, bool)
    stride = optimisation_stride(scene, far_step_mm=far_step_mm)
    sampled[::stride[0], ::stride[1], ::stride[2]] = True
    return np.flatnonzero(region & (near | sampled)).astype(np.int64)


def optimisation_stride(scene: Scene, *, far_step_mm: float = 5.0) -> tuple:
    """Voxel stride (z, y, x) of the lattice :func:`_optimisation_region` samples the far region on
    (one voxel every ``far_step_mm``, at least every voxel); the influence matrix keeps it
    (:attr:`Influence.sampling_stride <planner.radiotherapy.influence.Influence.sampling_stride>`)
    to interpolate its dose between the lattice's points.

    Parameters
    ----------
    scene : Scene
        The planned scene (its voxel size).
    far_step_mm : float, default 5.0
        Distance between the far region's samples (mm).

    Returns
    -------
    tuple of int
        The stride along z, y and x, each >= 1.
    """
    return tuple(max(1, int(round(far_step_mm / spacing))) for spacing in scene.grid.spacing_mm)


def _rows(influence, scene, name):
    occupancy = scene.structure(name).full().ravel()[influence.voxel_indices]
    keep = occupancy > 0
    return np.nonzero(keep)[0], occupancy[keep]


def _term_rows(influence, scene, limits) -> dict:
    """Rows and volume weights of every objective structure (independent of the prescription)."""
    rows = {"ptv": _rows(influence, scene, "ptv"), "gtv": _rows(influence, scene, "gtv")}
    if rows["ptv"][0].size == 0:
        raise ValueError("the PTV is empty after removing the cord PRV: nothing to plan")
    # The gross tumour up to the PRV boundary, and what of it lies inside the PRV (epidural
    # disease against the sac before separation surgery).
    g_rows, g_weights = rows["gtv"]
    inside = np.zeros(g_rows.size, bool)
    if "cord_prv" in scene.structures:
        inside = scene.structure("cord_prv").full().ravel()[influence.voxel_indices][g_rows] > 0.5
    rows["gtv outside prv"] = (g_rows[~inside], g_weights[~inside])
    rows["gtv inside prv"] = (g_rows[inside], g_weights[inside])
    for name, limit in limits.items():
        if scene.has(name):
            r, w = _rows(influence, scene, name)
            if r.size:
                rows[name] = (r, w, limit)
    # Fall-off: body tissue far from the PTV (objectives.toml [fall_off]).
    far = ~_dilate(scene.structure("ptv").full(), objective_settings()["fall_off"]["distance_mm"], scene.grid.spacing_mm)
    body = scene.structure("body_outline").full() if "body_outline" in scene.structures else np.ones(scene.grid.shape)
    ring = (far & (body > 0.5)).ravel()[influence.voxel_indices]
    if ring.any():
        rows["fall-off"] = (np.nonzero(ring)[0], np.ones(int(ring.sum())))
    return rows


#: The objective term kinds of objectives.toml.
TERM_KINDS = {"underdose": Underdose, "overdose": Overdose, "dose_volume_min": DoseVolumeMin}


def objective_settings() -> dict:
    """The plan's objectives as data (``planner/radiotherapy/protocols/objectives.toml``):
    per-target terms, the hard-limit and fall-off terms and the escalation search.

    Returns
    -------
    dict
        The whole table (``terms``, ``hard_limits``, ``organ_limits``, ``hot_spot``,
        ``fall_off``, ``escalation`` and the other planners' sections).
    """
    return read_table("objectives")


def _make_terms(rows: dict, regimen: Regimen, *, escalation: bool = False) -> list:
    """Objective terms at ``regimen``'s dose, as objectives.toml asks (design choices, not
    clinical numbers: the hard limits dominate, PTV and GTV coverage come next, hot spots
    and the fall-off ring shape the rest).

    ``escalation``: the plan that probes the achievable prescription, where a term's
    ``escalation_priority`` (if it has one) replaces its priority and the gross tumour's
    maximum is kept within the hot-spot limit (targets.toml [hot_spot])."""
    settings = objective_settings()
    rx = regimen.dose_gy
    terms = []
    for spec in settings["terms"]:
        term_rows, term_weights = rows[spec["rows"]][:2]
        if not term_rows.size:
            continue
        priority = spec.get("escalation_priority", spec["priority"]) if escalation else spec["priority"]
        options = {"volume_fraction": spec["volume_fraction"]} if "volume_fraction" in spec else {}
        terms.append(TERM_KINDS[spec["kind"]](rows=term_rows, weights=term_weights, dose_gy=spec["dose_fraction"] * rx,
                                              priority=priority, label=spec["name"], **options))
    for name, entry in rows.items():
        if len(entry) == 3:  # a limited organ: (rows, weights, point-maximum limit)
            r, w, limit = entry
            kind = settings["hard_limits"] if name in HARD_STRUCTURES else settings["organ_limits"]
            terms.append(Overdose(rows=r, weights=w, dose_gy=kind["dose_fraction_of_limit"] * limit,
                                  priority=kind["priority"], label=f"{name} max"))
    if escalation and rows["gtv"][0].size:
        r, w = rows["gtv"]
        terms.append(Overdose(rows=r, weights=w, dose_gy=hot_spot_limit()["ratio"] * rx,
                              priority=settings["hot_spot"]["priority"], label="gtv hot spot"))
    if "fall-off" in rows:
        r, w = rows["fall-off"]
        fall_off = settings["fall_off"]
        terms.append(Overdose(rows=r, weights=w, dose_gy=fall_off["dose_fraction"] * rx, priority=fall_off["priority"],
                              label="fall-off"))
    return terms


def _terms(influence, scene, regimen, limits):
    return _make_terms(_term_rows(influence, scene, limits), regimen)


def _point_limits(constraints):
    """{structure: its tightest point-maximum limit (Gy)} of every limited structure."""
    limits = {}
    for c in constraints:
        if c.metric == "Dmax":
            limits[c.structure] = min(limits.get(c.structure, np.inf), c.limit_gy)
    return limits


def hard_structures(constraints) -> tuple:
    """The hard-limited structures (cord, sac, cauda) the constraints name, sorted.

    Parameters
    ----------
    constraints : iterable of Constraint
        Constraints, e.g. from :func:`~planner.radiotherapy.constraints.constraints_for`.

    Returns
    -------
    tuple of str
        The names among :data:`HARD_STRUCTURES` that some constraint limits, sorted.
    """
    return tuple(sorted({c.structure for c in constraints if c.structure in HARD_STRUCTURES}))


#: Escalation search (objectives.toml [escalation]; design choices, not clinical numbers): each
#: probe asks for ESCALATION_STEP x what the previous plan showed achievable, warm-started, with
#: ESCALATION_ITERATIONS L-BFGS-B iterations, at most ESCALATION_PROBES probes; nothing above
#: the simulator's prescription range (:class:`Regimen`).
ESCALATION_STEP = float(read_table("objectives")["escalation"]["step"])
ESCALATION_ITERATIONS = int(read_table("objectives")["escalation"]["iterations"])
ESCALATION_PROBES = int(read_table("objectives")["escalation"]["probes"])


def escalate(matrix, term_rows: dict, regimen: Regimen, rows_of: dict, constraints, weights, *, voxel_cc: float):
    """Search for the maximum achievable prescription on an influence matrix.

    Starting from ``weights`` (the plan for ``regimen``), each probe re-optimises at the
    prescription P the last plan showed achievable (times :data:`ESCALATION_STEP`, never
    above the escalation bound) with the escalation terms (GTV covered up to the PRV within
    its hot-spot limit, cord and sac hard, the other organs kept below their limits, the rest
    of the PTV yielding), and measures that plan's figure ``GTV Dmin x min(limit / value)``
    over every limit, at most the bound (:func:`~planner.radiotherapy.achievable.achievable_limits`).
    The search stops when a plan no longer reaches what it was asked for, breaks the hot-spot
    limit, or reaches the bound. Every figure is achievable (its plan, scaled, meets the
    binding limit exactly with GTV Dmin at the figure); the best plan within the hot-spot
    limit wins (the best of all when none is), returned as ``(figure_gy, weights, probes)``
    with ``probes`` the (asked, figure) pairs.

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix
        Influence matrix (rows x beamlets, Gy per unit beamlet weight).
    term_rows : dict
        Rows and volume weights of every objective structure (as the planner builds them).
    regimen : Regimen
        The prescription ``weights`` were optimised for (its fractions are kept, and set the
        escalation bound).
    rows_of : dict
        ``{name: (rows, occupancy)}`` of the achievable structure and the limited structures
        present.
    constraints : iterable of Constraint
        The plan's limits.
    weights : numpy.ndarray
        The plan's beamlet weights (the warm start).
    voxel_cc : float
        Volume of one voxel (cc).

    Returns
    -------
    figure_gy : float
        The best achievable prescription found (Gy).
    weights : numpy.ndarray
        The weights of the plan that reached it (unscaled).
    probes : tuple of (float, float)
        (prescription asked, figure reached) of every probe, Gy; at most
        :data:`ESCALATION_PROBES`, none above the escalation bound.
    """
    present = set(rows_of)
    bound = escalation_bound(regimen.fractions)["total_gy"]

    def judge(w):
        found = achievable_limits(row_measure(matrix, w, rows_of, voxel_cc), constraints, present,
                                  fractions=regimen.fractions)
        return found["hot_spot"]["ok"] is not False, found["figure_gy"]

    best, best_weights = judge(weights), weights
    made_for, asked, probes = regimen.dose_gy, best[1], []
    while len(probes) < ESCALATION_PROBES and np.isfinite(asked) and 0 < asked <= MAX_PRESCRIPTION_GY:
        terms = _make_terms(term_rows, Regimen(float(asked), regimen.fractions), escalation=True)
        result = optimise(matrix, terms, initial_weights=weights * (asked / made_for), max_iterations=ESCALATION_ITERATIONS)
        weights, made_for = result.weights, asked
        within, reached = judge(weights)
        probes.append((float(asked), float(reached)))
        if (within, reached) > best:
            best, best_weights = (within, reached), weights
        if reached < asked or not within or reached >= bound * (1 - ROUNDING):
            break
        asked = min(reached * ESCALATION_STEP, bound)
    return best[1], best_weights, tuple(probes)
