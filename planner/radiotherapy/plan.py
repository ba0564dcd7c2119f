"""Plan a case: targets, beams, influence, optimisation, normalisation, evaluation.

Spine SBRT priorities as practised: the cord (or cauda) limit is hard, target coverage
yields near the cord. The optimiser shapes the fluence (pencil-beam influence); the final
dose is computed by superposition and then *scaled* - dose is linear in the weights - so
that the target's coverage dose reaches the prescription unless that would break a cord
limit, in which case the cord limit wins and the coverage achieved is reported.

The maximum achievable prescription is judged on the residual gross tumour (GTV Dmin,
``planner/radiotherapy/protocols/targets.toml`` [achievable]): the highest prescription P for which a plan
optimised *at P* - the GTV covered right up to the cord PRV, the cord and thecal-sac limits
hard - still has GTV Dmin >= P once scaled so that the tightest hard limit is met exactly.
A plan's own figure is ``GTV Dmin x min over hard limits of (limit / value)``;
:func:`escalate` raises P until the plan can no longer follow. (Scaling only the plan made for
the requested prescription is not enough: after separation surgery that plan sits below the
cord limit with its near-cord dose set by the PTV edge - the CTV's whole sectors abut the
canal whatever the gap - so the figure would not see how far the tumour is from the sac.)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage

from scenes.cases import build_scene, load_case
from scenes.scene import Scene
from scenes.shapes import mask_from_full
from scenes.surgery import separation_surgery

from .beams import arrangement_angles, make_beams
from .constraints import check_constraints, constraints_for
from .influence import build_influence, final_dose
from .metrics import metric, structure_dose
from .objectives import DoseVolumeMin, Overdose, Underdose
from .optimise import optimise
from .protocols import read_table
from .radiobiology import alpha_beta, bed, myelopathy_band

__all__ = ["Regimen", "PlanResult", "add_targets", "plan_case", "achievable_prescription", "escalate", "row_measure",
           "COVERAGE_METRIC", "ACHIEVABLE_METRIC", "HARD_STRUCTURES"]

#: Coverage normalisation: the dose covering 90% of the PTV (D90) reaches the prescription.
COVERAGE_METRIC = "D90%"
#: Structures whose limits are hard (cord, its surrogate, the cauda below the conus).
HARD_STRUCTURES = ("spinal_cord", "thecal_sac", "cauda_equina")


def _target_rules() -> dict:
    return read_table("targets")


#: The achievable prescription asks the gross tumour, not the cropped PTV, to be covered:
#: epidural disease against the cord is what limits it (and what separation surgery removes).
#: Its coldest voxel (Dmin) must reach the prescription (targets.toml [achievable], with why).
ACHIEVABLE_STRUCTURE = str(_target_rules()["achievable"]["structure"])
ACHIEVABLE_METRIC = str(_target_rules()["achievable"]["metric"]["value"])

#: Cord planning-risk-volume and PTV margins (planner/radiotherapy/protocols/targets.toml, with sources).
CORD_PRV_MM = float(_target_rules()["ptv"]["cord_prv_mm"]["value"])
PTV_MARGIN_MM = float(_target_rules()["ptv"]["margin_mm"]["value"])
#: Lesion site -> vertebral sector structure (ISRC sectors as the phantom has them).
SECTORS = {"body": "vertebral_body_{level}", "pedicle_left": "pedicle_left_{level}",
           "pedicle_right": "pedicle_right_{level}", "posterior": "lamina_{level}"}


#: The simulator's prescription range (an input bound, not a clinical figure).
MAX_PRESCRIPTION_GY, MAX_FRACTIONS = 80.0, 40


@dataclass(frozen=True)
class Regimen:
    """A prescription: total dose (Gy, in (0, 80]) in a number of fractions (1..40)."""

    dose_gy: float
    fractions: int

    def __post_init__(self):
        if not (0 < self.dose_gy <= MAX_PRESCRIPTION_GY):
            raise ValueError(f"prescription dose must be in (0, {MAX_PRESCRIPTION_GY:g}] Gy, got {self.dose_gy}")
        if not (isinstance(self.fractions, int) and 1 <= self.fractions <= MAX_FRACTIONS):
            raise ValueError(f"fractions must be an integer 1..{MAX_FRACTIONS}, got {self.fractions}")


@dataclass(frozen=True, eq=False)
class PlanResult:
    """A planned case: the regimen, the normalised weights and dose, metrics and checks.

    ``dose_gy`` is on the planned scene's grid, normalised so that the PTV's
    :data:`COVERAGE_METRIC` reaches the prescription unless a hard limit stops it
    (``coverage_achieved`` is then below 1); ``metrics`` maps structure -> {metric: Gy};
    ``constraints`` holds the :class:`~planner.radiotherapy.constraints.ConstraintResult`
    of every limit; ``radiobiology`` the GTV D95 BED10 and the myelopathy band;
    ``achievable_prescription_gy`` the maximum achievable prescription (GTV Dmin, see the
    module docstring); ``notes`` what was done and found, in words.
    """
    case_id: str
    regimen: Regimen
    protocol: str
    gap_mm: float | None
    weights: np.ndarray = field(repr=False)
    dose_gy: np.ndarray = field(repr=False)
    metrics: dict = field(default_factory=dict)
    constraints: list = field(default_factory=list)
    radiobiology: dict = field(default_factory=dict)
    achievable_prescription_gy: float = float("nan")
    coverage_achieved: float = float("nan")
    notes: tuple = ()
    #: The planned scene (with its targets) and the beams, for pictures and reports.
    scene: Scene | None = field(default=None, repr=False, compare=False)
    beams: object = field(default=None, repr=False, compare=False)
    #: The plan that reaches the achievable prescription, scaled so that the tightest hard
    #: limit is met exactly (its GTV Dmin is ``achievable_prescription_gy``).
    achievable_dose_gy: np.ndarray | None = field(default=None, repr=False)
    #: The escalation's probes: (prescription asked, achievable figure of that plan), Gy.
    achievable_probes: tuple = ()

    def to_json(self) -> str:
        """The plan's numbers as JSON (without the dose arrays, scene and beams).

        Returns
        -------
        str
            An indented JSON object: case, regimen, protocol, gap, metrics, constraints,
            radiobiology, achievable prescription with its metric and probes, coverage, notes
            and the teaching-and-research disclaimer; NaN and infinities are written as null.
        """
        def clean(value):
            if isinstance(value, float) and not np.isfinite(value):
                return None
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [clean(v) for v in value]
            return value

        data = {"case": self.case_id, "regimen": asdict(self.regimen), "protocol": self.protocol, "gap_mm": self.gap_mm,
                "metrics": self.metrics, "constraints": [asdict(c) for c in self.constraints],
                "radiobiology": self.radiobiology, "achievable_prescription_gy": self.achievable_prescription_gy,
                "coverage_achieved": self.coverage_achieved, "notes": list(self.notes),
                "achievable_metric": f"{ACHIEVABLE_STRUCTURE} {ACHIEVABLE_METRIC}",
                "achievable_probes": [list(p) for p in self.achievable_probes],
                "disclaimer": "spinesim: teaching and research only, not for clinical use"}
        return json.dumps(clean(data), indent=2)


def _dilate(occupancy: np.ndarray, margin_mm: float, spacing_mm) -> np.ndarray:
    if margin_mm <= 0:
        return occupancy > 0.5
    distance = ndimage.distance_transform_edt(occupancy <= 0.5, sampling=spacing_mm)
    return distance <= margin_mm


def add_targets(scene: Scene, *, ptv_margin_mm: float = PTV_MARGIN_MM, prv_margin_mm: float = CORD_PRV_MM,
                prv_of=("spinal_cord", "cauda_equina")) -> Scene:
    """GTV -> CTV (GTV plus every involved vertebral sector, whole) -> PTV (CTV + margin minus PRV).

    The CTV follows the consortium's sector method (Cox 2012, planner/radiotherapy/protocols/targets.toml):
    a sector the tumour touches enters the CTV whole. The PTV is cut back from the
    planning-risk volume of the
    structures ``prv_of`` (those whose limits are hard: the cord or cauda, or the thecal sac
    when the protocol limits it), as clinics do, so coverage yields near the cord.

    Parameters
    ----------
    scene : Scene
        A scene with a ``gtv`` structure (its lesion's sites name the involved sectors).
    ptv_margin_mm : float, default PTV_MARGIN_MM
        CTV-to-PTV margin (mm; default targets.toml [ptv] margin_mm); <= 0 means none.
    prv_margin_mm : float, default CORD_PRV_MM
        Margin (mm) around the ``prv_of`` structures (default targets.toml [ptv]
        cord_prv_mm); <= 0 means the structures themselves.
    prv_of : iterable of str, default ("spinal_cord", "cauda_equina")
        Structures whose planning-risk volume is cut out of the PTV; names the scene lacks
        are skipped.

    Returns
    -------
    Scene
        A new scene with the structures ``ctv``, ``cord_prv`` and ``ptv`` added (the PTV also
        kept inside ``body_outline`` when the scene has one).
    """
    grid = scene.grid
    gtv = scene.structure("gtv").full()
    ctv = gtv.copy()
    for site in (scene.lesion.sites if scene.lesion is not None else ()):
        sector = SECTORS[site].format(level=scene.level)
        if sector in scene.structures:
            ctv = np.maximum(ctv, scene.structure(sector).full())
    neural = np.zeros(grid.shape, np.float32)
    for name in prv_of:
        if name in scene.structures:
            neural = np.maximum(neural, scene.structure(name).full())
    prv = _dilate(neural, prv_margin_mm, grid.spacing_mm)
    ptv = _dilate(ctv, ptv_margin_mm, grid.spacing_mm) & ~prv
    if "body_outline" in scene.structures:
        ptv &= scene.structure("body_outline").full() > 0.5
    structures = dict(scene.structures)
    structures["ctv"] = mask_from_full(grid, ctv)
    structures["cord_prv"] = mask_from_full(grid, prv.astype(np.float32))
    structures["ptv"] = mask_from_full(grid, ptv.astype(np.float32))
    return scene.evolve(structures=structures)


def _optimisation_region(scene: Scene, *, near_mm: float = 10.0, margin_mm: float = 30.0) -> np.ndarray:
    """Voxel rows the optimiser sees: every voxel of the targets and organs and every voxel
    within ``near_mm`` of the PTV, and one voxel in eight (every other along z, y, x)
    further out, where only the dose fall-off is steered. Sampling the far region is the
    usual way to keep the matrix small; it changes nothing the constraints measure."""
    from .influence import dose_region

    region = np.zeros(scene.grid.size, bool)
    region[dose_region(scene, "ptv", margin_mm=margin_mm)] = True
    region = region.reshape(scene.grid.shape)
    near = _dilate(scene.structure("ptv").full(), near_mm, scene.grid.spacing_mm)
    for name in ("gtv", "ctv", "spinal_cord", "cauda_equina", "thecal_sac", "cord_prv", "esophagus"):
        if name in scene.structures:
            near |= scene.structure(name).full() > 0
    sampled = np.zeros(scene.grid.shape, bool)
    sampled[::2, ::2, ::2] = True
    return np.flatnonzero(region & (near | sampled)).astype(np.int64)


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
    per-target terms, the hard-limit and fall-off terms and the escalation search."""
    return read_table("objectives")


def _make_terms(rows: dict, regimen: Regimen, *, escalation: bool = False) -> list:
    """Objective terms at ``regimen``'s dose, as objectives.toml asks (design choices, not
    clinical numbers: the hard limits dominate, PTV and GTV coverage come next, hot spots
    and the fall-off ring shape the rest).

    ``escalation``: the plan that probes the achievable prescription, where a term's
    ``escalation_priority`` (if it has one) replaces its priority."""
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
    hard = settings["hard_limits"]
    for name, entry in rows.items():
        if name in HARD_STRUCTURES:
            r, w, limit = entry
            terms.append(Overdose(rows=r, weights=w, dose_gy=hard["dose_fraction_of_limit"] * limit,
                                  priority=hard["priority"], label=f"{name} max"))
    if "fall-off" in rows:
        r, w = rows["fall-off"]
        fall_off = settings["fall_off"]
        terms.append(Overdose(rows=r, weights=w, dose_gy=fall_off["dose_fraction"] * rx, priority=fall_off["priority"],
                              label="fall-off"))
    return terms


def _terms(influence, scene, regimen, limits):
    return _make_terms(_term_rows(influence, scene, limits), regimen)


def _hard_limits(constraints):
    limits = {}
    for c in constraints:
        if c.structure in HARD_STRUCTURES and c.metric == "Dmax":
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


def achievable_from(measure, constraints, present, *, structure=ACHIEVABLE_STRUCTURE,
                    coverage_metric=ACHIEVABLE_METRIC) -> float:
    """Coverage dose of ``structure`` at which the first hard limit is met exactly.

    ``measure(name, metric)`` returns a metric of the current dose; ``present`` names the
    structures that exist. Shared by full-grid plans and the row-only interactive session.

    Parameters
    ----------
    measure : callable
        ``measure(name, metric_name) -> float`` (Gy) on the current dose.
    constraints : iterable of Constraint
        The limits; only those of :data:`HARD_STRUCTURES` in ``present`` count
        ('D10%_partial' rows excepted).
    present : collection of str
        The structures that exist.
    structure : str, default ACHIEVABLE_STRUCTURE
        The structure whose coverage is scaled (targets.toml [achievable]).
    coverage_metric : str, default ACHIEVABLE_METRIC
        Its coverage metric (a :func:`~planner.radiotherapy.metrics.metric` name).

    Returns
    -------
    float
        ``coverage x min over hard limits of (limit / value)`` in Gy; inf when no hard
        limit applies or receives dose (NaN if the coverage is 0 too).
    """
    cover = measure(structure, coverage_metric)
    ratio = np.inf
    for c in constraints:
        if c.structure in HARD_STRUCTURES and c.structure in present and c.metric != "D10%_partial":
            value = measure(c.structure, c.metric)
            if value > 0:
                ratio = min(ratio, c.limit_gy / value)
    return float(cover * ratio)


def achievable_prescription(dose_gy, scene, constraints, *, structure=ACHIEVABLE_STRUCTURE,
                            coverage_metric=ACHIEVABLE_METRIC) -> float:
    """Coverage dose of ``structure`` at which the first hard (cord/cauda/sac) limit is met exactly.

    Dose is linear in the weights, so the dose scaled by ``min(limit / value)`` over the hard
    limits meets the tightest one exactly; the figure is the coverage of that scaled dose.

    Parameters
    ----------
    dose_gy : numpy.ndarray
        Dose (Gy) on the scene's grid.
    scene : Scene
        The planned scene (with its targets, :func:`add_targets`).
    constraints : iterable of Constraint
        The plan's limits; those of :data:`HARD_STRUCTURES` the scene has count
        ('D10%_partial' rows excepted).
    structure : str, default ACHIEVABLE_STRUCTURE
        The structure whose coverage is scaled (the GTV, targets.toml [achievable]).
    coverage_metric : str, default ACHIEVABLE_METRIC
        Its coverage metric (Dmin by targets.toml).

    Returns
    -------
    float
        The achievable coverage dose (Gy); inf when no hard limit applies or receives dose
        (NaN if the coverage is 0 too).
    """
    voxel = scene.grid.voxel_volume_cc

    def measure(name, metric_name):
        return metric(structure_dose(dose_gy, scene.structure(name).full(), voxel), metric_name)

    present = {name for name in HARD_STRUCTURES if scene.has(name)}
    return achievable_from(measure, constraints, present, structure=structure, coverage_metric=coverage_metric)


#: Escalation search (objectives.toml [escalation]; design choices, not clinical numbers): each
#: probe asks for ESCALATION_STEP x what the previous plan showed achievable, warm-started, with
#: ESCALATION_ITERATIONS L-BFGS-B iterations, at most ESCALATION_PROBES probes; nothing above
#: the simulator's prescription range (:class:`Regimen`).
ESCALATION_STEP = float(read_table("objectives")["escalation"]["step"])
ESCALATION_ITERATIONS = int(read_table("objectives")["escalation"]["iterations"])
ESCALATION_PROBES = int(read_table("objectives")["escalation"]["probes"])


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

    def measure(name, metric_name):
        rows, occupancy = rows_of[name]
        return metric(structure_dose(dose[rows], occupancy, voxel_cc), metric_name)

    return measure


def escalate(matrix, term_rows: dict, regimen: Regimen, rows_of: dict, constraints, weights, *, voxel_cc: float):
    """Search for the maximum achievable prescription on an influence matrix.

    Starting from ``weights`` (the plan for ``regimen``), each probe re-optimises at the
    prescription P the last plan showed achievable (times :data:`ESCALATION_STEP`) with the
    escalation terms (GTV covered up to the PRV, cord and sac hard, the rest of the PTV
    yielding), and measures that plan's figure ``GTV Dmin x min(limit / value)``. The search
    stops when a plan no longer reaches what it was asked for. Every figure is achievable
    (its plan, scaled, meets the hard limits exactly with GTV Dmin at the figure); the best
    is returned as ``(figure_gy, weights, probes)`` with ``probes`` the (asked, figure) pairs.

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix
        Influence matrix (rows x beamlets, Gy per unit beamlet weight).
    term_rows : dict
        Rows and volume weights of every objective structure (as the planner builds them).
    regimen : Regimen
        The prescription ``weights`` were optimised for (its fractions are kept).
    rows_of : dict
        ``{name: (rows, occupancy)}`` of the achievable structure and the hard-limited
        structures present.
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
        :data:`ESCALATION_PROBES`, none above the simulator's 80 Gy range.
    """
    present = set(rows_of)

    def figure(w):
        return achievable_from(row_measure(matrix, w, rows_of, voxel_cc), constraints, present)

    best_gy, best_weights = figure(weights), weights
    made_for, asked, probes = regimen.dose_gy, best_gy, []
    while len(probes) < ESCALATION_PROBES and np.isfinite(asked) and 0 < asked <= MAX_PRESCRIPTION_GY:
        terms = _make_terms(term_rows, Regimen(float(asked), regimen.fractions), escalation=True)
        result = optimise(matrix, terms, initial_weights=weights * (asked / made_for), max_iterations=ESCALATION_ITERATIONS)
        weights, made_for = result.weights, asked
        reached = figure(weights)
        probes.append((float(asked), float(reached)))
        if reached > best_gy:
            best_gy, best_weights = reached, weights
        if reached < asked:
            break
        asked = reached * ESCALATION_STEP
    return best_gy, best_weights, tuple(probes)


def plan_case(case, *, regimen: Regimen, protocol: str = "hytec", gap_mm: float | None = None, n_beams: int = 9,
              arrangement: str = "sbrt_fan",
              beamlet_mm: float = 5.0, grid_mm=(2.5, 2.5, 2.5), engine: str = "superposition", backend: str = "cpu",
              max_iterations: int = 500, progress=None, scene: Scene | None = None) -> PlanResult:
    """Plan ``case`` (id, path or Case) with ``regimen``; optional separation surgery first.

    ``scene``: plan this scene of the case (e.g. one already operated on, or grown) instead
    of building it from the case on ``grid_mm``.

    ``engine`` 'superposition' evaluates the final dose by collapsed cone (seconds);
    'pencil' keeps the optimiser's pencil-beam dose (fast, for sweeps and tests).

    The maximum achievable prescription comes from :func:`escalate` on the plan's matrix;
    its plan is kept as ``achievable_dose_gy`` (scaled to meet the tightest hard limit).

    Parameters
    ----------
    case : str or Case
        Teaching-case id, case-file path or :class:`scenes.cases.Case`; a prior course in its
        patient table (``prior_radiotherapy``) adds the re-irradiation limits.
    regimen : Regimen
        Prescription: total dose (Gy, in (0, 80]) in 1..40 fractions.
    protocol : str, default "hytec"
        Constraint protocol (:func:`~planner.radiotherapy.constraints.protocols`); it must
        have limits for the regimen's fractions (ValueError otherwise).
    gap_mm : float, optional
        Separation surgery first, leaving this gap (mm) between tumour and thecal sac; None
        or <= 0 plans without surgery.
    n_beams : int, default 9
        Beams of an 'sbrt_fan' arrangement, 7..13 (ValueError otherwise).
    arrangement : str, default "sbrt_fan"
        Beam arrangement, one of :data:`~planner.radiotherapy.beams.ARRANGEMENTS`.
    beamlet_mm : float, default 5.0
        Beamlet size (mm): 2.5, 5 or 10.
    grid_mm : tuple of float, default (2.5, 2.5, 2.5)
        Voxel spacing (z, y, x) in mm of the scene built from the case (unused with
        ``scene``).
    engine : str, default "superposition"
        Final dose engine: 'superposition' or 'pencil' (ValueError otherwise).
    backend : str, default "cpu"
        Kernel backend: 'cpu' or 'auto'; 'cuda' raises RuntimeError (not written yet).
    max_iterations : int, default 500
        L-BFGS-B iteration limit of the plan's optimisation, 1..100000.
    progress : callable, optional
        ``progress(message)`` receives a line at each step (silent by default).
    scene : Scene, optional
        The scene to plan instead of building one from the case.

    Returns
    -------
    PlanResult
        The normalised plan with its metrics, constraint results, radiobiology, coverage
        achieved, maximum achievable prescription (and its plan and probes), notes, scene
        and beams.
    """
    say = progress or (lambda message: None)
    if engine not in ("superposition", "pencil"):
        raise ValueError(f"engine must be 'superposition' or 'pencil', got {engine!r}")
    case = load_case(case) if isinstance(case, str) else case
    if scene is None:
        say("building the scene")
        scene = build_scene(case, spacing_mm=grid_mm)
    notes = []
    if gap_mm is not None and gap_mm > 0:
        scene = separation_surgery(scene, gap_mm)
        notes.append(scene.history[-1])
    prior = case.patient.get("prior_radiotherapy")
    constraints = constraints_for(protocol, regimen.fractions, prior_course=prior)
    scene = add_targets(scene, prv_of=hard_structures(constraints))
    points = scene.grid.index_to_mm(np.argwhere(scene.structure("ptv").full() > 0.5))
    beams = make_beams(points, gantry_deg=arrangement_angles(arrangement, n_beams=n_beams), beamlet_mm=beamlet_mm)
    say("influence matrix")
    influence = build_influence(scene, beams, target="ptv", roi=_optimisation_region(scene), backend=backend, report=say)
    say("optimising")
    term_rows = _term_rows(influence, scene, _hard_limits(constraints))
    result = optimise(influence.matrix, _make_terms(term_rows, regimen), max_iterations=max_iterations)
    weights = result.weights
    say("escalating to the maximum achievable prescription")
    rows_of = {name: _rows(influence, scene, name) for name in (ACHIEVABLE_STRUCTURE,) + HARD_STRUCTURES if scene.has(name)}
    _, best_weights, probes = escalate(influence.matrix, term_rows, regimen, rows_of, constraints, weights,
                                       voxel_cc=scene.grid.voxel_volume_cc)

    def engine_dose(w):
        if engine == "superposition":
            say("final dose (collapsed-cone superposition)")
            return final_dose(scene, beams, w, backend=backend)
        return influence.dose_volume(w)

    dose = engine_dose(weights)
    best_dose = dose if best_weights is weights else engine_dose(best_weights)
    achievable = achievable_prescription(best_dose, scene, constraints)
    best_cover = metric(structure_dose(best_dose, scene.structure(ACHIEVABLE_STRUCTURE).full(), scene.grid.voxel_volume_cc),
                        ACHIEVABLE_METRIC)
    achievable_dose = best_dose * (achievable / best_cover) if best_cover > 0 else None
    # Normalise: PTV coverage to the prescription unless a hard limit forbids it.
    ptv_limit = achievable_prescription(dose, scene, constraints, structure="ptv", coverage_metric=COVERAGE_METRIC)
    cover = metric(structure_dose(dose, scene.structure("ptv").full(), scene.grid.voxel_volume_cc), COVERAGE_METRIC)
    scale = min(regimen.dose_gy, ptv_limit) / cover
    dose, weights = dose * scale, weights * scale
    coverage = min(1.0, ptv_limit / regimen.dose_gy)
    if coverage < 1.0:
        notes.append(f"cord limit reached before coverage: PTV {COVERAGE_METRIC} = {ptv_limit:.1f} Gy "
                     f"({100 * coverage:.0f}% of the prescription)")
    results = check_constraints(dose, scene, constraints, target="gtv")
    voxel = scene.grid.voxel_volume_cc
    metrics = {}
    for name, names in (("gtv", ("D90%", "D95%", "Dmean", "Dmax")), ("ptv", ("D90%", "D95%", "Dmean", "Dmax", "D2%", "D98%")),
                        ("epidural_disease", ("D90%", "Dmax")), ("spinal_cord", ("Dmax", "D0.35cc", "D1.2cc")),
                        ("cauda_equina", ("Dmax", "D5cc")), ("thecal_sac", ("Dmax",)), ("esophagus", ("Dmax", "D5cc"))):
        if scene.has(name):
            sd = structure_dose(dose, scene.structure(name).full(), voxel)
            metrics[name] = {m: metric(sd, m) for m in names}
    neural = "spinal_cord" if scene.has("spinal_cord") else "cauda_equina"
    pmax = metrics.get("thecal_sac", {}).get("Dmax", metrics.get(neural, {}).get("Dmax", float("nan")))
    radio = {"gtv_d95_bed10_gy": bed(metrics["gtv"]["D95%"], regimen.fractions, alpha_beta("tumour")) if "gtv" in metrics else None,
             "myelopathy": myelopathy_band(pmax, regimen.fractions),
             "local_control": "no validated TCP parameters for spine metastases (project reference); GTV D95 and BED10 reported"}
    notes.append(f"maximum achievable prescription: {ACHIEVABLE_STRUCTURE.upper()} {ACHIEVABLE_METRIC} reaches it with the "
                 f"tightest cord/sac limit met exactly; escalation probes (asked -> reached, Gy): "
                 + ", ".join(f"{a:.1f} -> {r:.1f}" for a, r in probes))
    return PlanResult(case.id, regimen, protocol, gap_mm, weights, dose, metrics, results, radio, achievable, coverage,
                      tuple(notes + [f"optimiser: {result.iterations} iterations, {result.message}"]), scene, beams,
                      achievable_dose_gy=achievable_dose, achievable_probes=probes)
