"""Plan any scene: the physicist's chain of verbs on their own geometry.

``plan_scene(scene, target=..., prescription=..., organs_at_risk=...)`` runs the chain
that :func:`~planner.radiotherapy.plan.plan_case` runs on the teaching cases - beams around
the target (``make_beams``), the pencil-beam influence matrix (``build_influence``), the
objective terms, ``optimise``, ``deliver`` (:mod:`~planner.radiotherapy.correction`: the
final engine and the correction loop, the same call in both) - on any
:class:`~scenes.scene.Scene` (a phantom, ``scene_from_arrays``, an imported CT), and closes
the loop between the two dose engines: the optimiser plans on the pencil-beam matrix, the
delivered dose is the collapsed-cone superposition's, and the plan is re-optimised against
their difference (a dose-correction loop: Siebers et al. 2001, "Incorporating Monte Carlo
dose calculation into IMRT optimisation" - the same idea with a faster final engine) until
both agree on the organs' maxima and the target's D95. Both doses and their difference are
reported with every plan.

Objectives are data (:class:`Objective`); where structures overlap, a voxel belongs to the
first structure of ``overlap_priority`` that claims it (matRad's overlap priorities), for the
optimiser's terms only: metrics always use whole structures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from scipy import ndimage

from scenes.scene import Scene

from .beams import BeamSet, arrangement_angles, make_beams
from .influence import Influence, build_influence, planning_kept_energy
from .metrics import metric, structure_dose
from .correction import correction_settings, deliver, engine_agreement
from .dose_to_water import check_dose_to, describe_dose_quantity, to_dose_quantity, water_to_medium_ratio
from .objectives import DoseVolumeMax, DoseVolumeMin, MeanDose, Overdose, SquaredDeviation, Underdose
from .optimise import optimise
from .plan import Regimen
from .protocols import read_table

__all__ = ["Objective", "ScenePlan", "plan_scene", "structure_rows", "resolve_overlaps", "default_objectives",
           "OBJECTIVE_KINDS", "engine_agreement"]

#: Objective kinds by name (:mod:`planner.radiotherapy.objectives`).
OBJECTIVE_KINDS = {"underdose": Underdose, "overdose": Overdose, "squared_deviation": SquaredDeviation,
                   "mean": MeanDose, "dose_volume_max": DoseVolumeMax, "dose_volume_min": DoseVolumeMin}


def _settings() -> dict:
    return read_table("objectives")["scene_plan"]


@dataclass(frozen=True)
class Objective:
    """One objective on a structure, as data: ``Objective("ptv", "squared_deviation", 24.0)``.

    ``kind`` is a key of :data:`OBJECTIVE_KINDS`; ``dose_gy`` the term's dose level (Gy,
    finite, >= 0); ``priority`` its weight (>= 0); ``volume_fraction`` the volume of a
    dose-volume term, in (0, 1).
    """
    structure: str
    kind: str
    dose_gy: float
    priority: float = 1.0
    volume_fraction: float | None = None

    def __post_init__(self):
        if self.kind not in OBJECTIVE_KINDS:
            raise ValueError(f"Objective.kind must be one of {sorted(OBJECTIVE_KINDS)}, got {self.kind!r}")
        if not (np.isfinite(self.dose_gy) and self.dose_gy >= 0):
            raise ValueError(f"Objective.dose_gy of {self.structure!r} must be finite and >= 0 Gy, got {self.dose_gy}")
        if not (np.isfinite(self.priority) and self.priority >= 0):
            raise ValueError(f"Objective.priority of {self.structure!r} must be finite and >= 0, got {self.priority}")
        dose_volume = self.kind.startswith("dose_volume")
        if dose_volume and not (self.volume_fraction is not None and 0 < self.volume_fraction < 1):
            raise ValueError(f"Objective.volume_fraction of {self.structure!r} ({self.kind}) must be in (0, 1), "
                             f"got {self.volume_fraction}")
        if not dose_volume and self.volume_fraction is not None:
            raise ValueError(f"Objective.volume_fraction applies to dose-volume kinds only, not {self.kind!r}")


def default_objectives(target: str, prescription_gy: float, organs_at_risk: Mapping[str, float]) -> list[Objective]:
    """The usual terms: the target uniform at the prescription and never under it, each organ
    below its point-maximum limit (priorities from objectives.toml [scene_plan]).

    Parameters
    ----------
    target : str
        The target structure.
    prescription_gy : float
        Prescription (Gy, whole course).
    organs_at_risk : mapping of str to float
        ``{structure: point-maximum limit (Gy)}``.

    Returns
    -------
    list of Objective

    Examples
    --------
    >>> [o.kind for o in default_objectives("ptv", 24.0, {"spinal_cord": 14.0})]
    ['squared_deviation', 'underdose', 'overdose']
    """
    settings = _settings()["default_priorities"]
    out = [Objective(target, "squared_deviation", prescription_gy, settings["target_uniform"]),
           Objective(target, "underdose", prescription_gy, settings["target_underdose"])]
    out += [Objective(name, "overdose", float(limit) * settings["organ_dose_fraction_of_limit"], settings["organ"])
            for name, limit in organs_at_risk.items()]
    return out


def structure_rows(influence: Influence, occupancy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The influence matrix's rows inside a structure, with their occupancy.

    Parameters
    ----------
    influence : Influence
        The matrix (its rows are the flat grid indices ``voxel_indices``).
    occupancy : numpy.ndarray
        The structure on the full grid (shape ``influence.grid_shape``), boolean or fractional
        occupancy 0..1 (ValueError otherwise).

    Returns
    -------
    rows : numpy.ndarray
        Indices of the matrix rows whose voxel the structure occupies (> 0).
    weights : numpy.ndarray
        Their occupancy (the volume weight of an objective term).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sparse
    >>> influence = Influence(sparse.csr_matrix(np.ones((3, 1), np.float32)), np.array([0, 4, 5]), None, (2, 3))
    >>> mask = np.zeros((2, 3)); mask[1, 1] = 1.0; mask[1, 2] = 0.5
    >>> [a.tolist() for a in structure_rows(influence, mask)]
    [[1, 2], [1.0, 0.5]]
    """
    occupancy = np.asarray(occupancy, dtype=float)
    if occupancy.shape != tuple(influence.grid_shape):
        raise ValueError(f"occupancy has shape {occupancy.shape}, the matrix's grid is {tuple(influence.grid_shape)}")
    if not np.all(np.isfinite(occupancy)) or occupancy.min(initial=0) < 0 or occupancy.max(initial=0) > 1:
        raise ValueError("occupancy must be finite and within 0..1")
    values = occupancy.ravel()[influence.voxel_indices]
    keep = values > 0
    return np.nonzero(keep)[0], values[keep]


def resolve_overlaps(occupancies: Mapping[str, np.ndarray], order: Sequence[str]) -> dict:
    """Give each voxel to the first structure of ``order`` that occupies it.

    Parameters
    ----------
    occupancies : mapping of str to numpy.ndarray
        Structures on one grid (occupancy 0..1).
    order : sequence of str
        Overlap priority, highest first; structures not named keep what no named one claims.

    Returns
    -------
    dict
        The same names, each with the voxels a higher-priority structure claimed removed.

    Examples
    --------
    >>> import numpy as np
    >>> out = resolve_overlaps({"cord": np.array([0, 1, 1.0]), "ptv": np.array([1, 1, 0.0])}, ["cord", "ptv"])
    >>> out["ptv"].tolist()
    [1.0, 0.0, 0.0]
    """
    unknown = [name for name in order if name not in occupancies]
    if unknown:
        raise ValueError(f"overlap_priority names structures that are not planned: {unknown}")
    ranked = list(order) + [name for name in occupancies if name not in order]
    claimed = None
    out = {}
    for name in ranked:
        occupancy = np.asarray(occupancies[name], dtype=float)
        out[name] = occupancy if claimed is None else np.where(claimed, 0.0, occupancy)
        claimed = (occupancy > 0) if claimed is None else (claimed | (occupancy > 0))
    return {name: out[name] for name in occupancies}


@dataclass(frozen=True, eq=False)
class ScenePlan:
    """A plan on a scene: weights, the delivered dose and the optimiser's, and what they say.

    ``dose_gy`` is the final engine's dose (superposition unless ``engine='pencil'``),
    ``optimiser_dose_gy`` the dose the optimiser saw (pencil-beam matrix plus the correction,
    zero outside the matrix's rows); both normalised by ``scale``. ``agreement`` holds, per
    checked metric, both engines' values and their relative difference; ``metrics`` maps
    structure -> {metric: Gy} of the final dose; ``limits`` the organs' point maxima against
    their limits; ``corrections`` how many correction passes ran; ``dose_to`` whether the doses
    are dose to medium or dose to water.
    """
    weights: np.ndarray = field(repr=False)
    dose_gy: np.ndarray = field(repr=False)
    optimiser_dose_gy: np.ndarray = field(repr=False)
    prescription: Regimen
    target: str
    engine: str
    agreement: dict
    metrics: dict
    limits: dict
    coverage_achieved: float
    corrections: int
    kept_energy: float
    notes: tuple = ()
    scene: Scene | None = field(default=None, repr=False)
    beams: BeamSet | None = field(default=None, repr=False)
    influence: Influence | None = field(default=None, repr=False)
    #: Which quantity ``dose_gy`` and ``optimiser_dose_gy`` are: 'medium' or 'water'
    #: (:mod:`planner.radiotherapy.dose_to_water`).
    dose_to: str = "medium"


def _check_structures(scene: Scene, target: str, organs: Mapping[str, float], objectives, body: str | None):
    names = sorted(scene.structures)
    wanted = [("target", target)] + [("organs_at_risk", name) for name in organs]
    wanted += [("objectives", o.structure) for o in objectives]
    if body is not None:
        wanted.append(("body", body))
    for argument, name in wanted:
        if name not in scene.structures:
            hint = " (or body=None to let every voxel count as body)" if argument == "body" else ""
            raise ValueError(f"{argument}: the scene has no structure {name!r}{hint}; it has {names}")
        if not np.any(scene.structure(name).full() > 0):
            raise ValueError(f"{argument}: structure {name!r} is empty")


def _rows_with_entries(matrix, rows) -> np.ndarray:
    """Whether each of ``rows`` of a CSR matrix holds a non-zero entry, read in place: SciPy's
    row indexing of a matrix with int32 indices and int64 row pointers first copies the whole
    matrix's indices to int64 (47 MiB for the peer benchmark's 6.2 million entries)."""
    indptr, data = matrix.indptr, matrix.data
    return np.array([bool(np.any(data[indptr[row]:indptr[row + 1]] != 0)) for row in rows], dtype=bool)


def plan_scene(scene: Scene, *, target: str, prescription: Regimen, organs_at_risk: Mapping[str, float] | None = None,
               objectives: Sequence[Objective] | None = None, overlap_priority: Sequence[str] | None = None,
               beams: BeamSet | None = None, gantry_deg=None, beamlet_mm: float = 5.0, body: str | None = "body_outline",
               engine: str = "superposition", correction_tolerance: float | None = None, max_corrections: int | None = None,
               kept_energy: float | None = None, max_iterations: int = 300, backend: str = "cpu",
               progress=None, dose_to: str = "medium") -> ScenePlan:
    """Plan ``scene``: beams, influence, optimisation, the correction loop, normalisation.

    Parameters
    ----------
    scene : Scene
        Any scene (phantom, ``scenes.scene.scene_from_arrays``, an imported CT).
    target : str
        The structure to cover (e.g. 'ptv'); it must exist and be non-empty.
    prescription : Regimen
        Dose (Gy, whole course) and fractions; the target's D95% is normalised to the dose
        unless an organ limit stops it (``coverage_achieved`` then says how far it got).
    organs_at_risk : mapping of str to float, optional
        ``{structure: point-maximum limit (Gy)}``; each structure must exist and be non-empty.
    objectives : sequence of Objective, optional
        The terms (default :func:`default_objectives`).
    overlap_priority : sequence of str, optional
        Structures in overlap priority, highest first; default the organs at risk, then the
        target (a voxel of both is the organ's: the limit wins).
    beams : BeamSet, optional
        The beams; default one per ``gantry_deg`` around the target (see ``make_beams``).
    gantry_deg : array_like of float, optional
        IEC 61217 gantry angles when ``beams`` is not given (default objectives.toml
        [scene_plan] arrangement: the posterior fan of nine beams).
    beamlet_mm : float, default 5.0
        Beamlet size when ``beams`` is not given: 2.5, 5 or 10 mm.
    body : str or None, default "body_outline"
        The body structure (the dose region is kept inside it); None uses every voxel. A
        missing structure raises ValueError naming what the scene has.
    engine : str, default "superposition"
        Final dose: 'superposition' (with the correction loop) or 'pencil' (the optimiser's).
    correction_tolerance : float, optional
        Relative agreement of the two doses on the target D95 and each organ's maximum that
        ends the correction loop (default objectives.toml [correction], 0.02).
    max_corrections : int, optional
        Correction passes at most (default objectives.toml [correction]); 0 turns the loop off
        (both doses are still reported).
    kept_energy : float, optional
        Fraction of each beamlet's energy the pencil-beam matrix keeps, in [0.9, 1)
        (default objectives.toml [scene_plan], 0.995).
    max_iterations : int, default 300
        L-BFGS-B iterations of each optimisation.
    backend : str, default "cpu"
        Kernel twins: 'cpu', 'cuda' or 'auto'.
    progress : callable, optional
        ``progress(message)`` receives a line at each step.
    dose_to : str, default "medium"
        'medium': dose to each voxel's own medium (the engines' quantity); 'water': dose to
        water, each medium's dose times its water-to-medium stopping-power ratio
        (:mod:`~planner.radiotherapy.dose_to_water`), before normalisation, so that the
        prescription, the limits and the metrics are read in it. A scene with a medium that
        has no ratio (metal, cement) is refused before any work.

    Returns
    -------
    ScenePlan

    Examples
    --------
    >>> from scenes.cases import build_scene
    >>> from planner.radiotherapy.plan import add_targets
    >>> scene = add_targets(build_scene("l2_rcc_escc1a", spacing_mm=(5.0, 5.0, 5.0)))
    >>> plan = plan_scene(scene, target="ptv", prescription=Regimen(24.0, 2),
    ...                   organs_at_risk={"spinal_cord": 14.0})  # doctest: +SKIP
    >>> abs(plan.agreement["spinal_cord Dmax"]["difference"]) <= 0.02  # doctest: +SKIP
    True
    """
    settings = _settings()
    say = progress or (lambda message: None)
    organs = dict(organs_at_risk or {})
    if not isinstance(prescription, Regimen):
        raise ValueError(f"prescription must be a Regimen(dose_gy, fractions), got {type(prescription).__name__}")
    for name, limit in organs.items():
        if not (isinstance(limit, (int, float)) and np.isfinite(limit) and limit > 0):
            raise ValueError(f"organs_at_risk[{name!r}] must be a point-maximum limit > 0 Gy, got {limit!r}")
    objectives = list(objectives) if objectives is not None else default_objectives(target, prescription.dose_gy, organs)
    if engine not in ("superposition", "pencil"):
        raise ValueError(f"engine must be 'superposition' or 'pencil', got {engine!r}")
    if not objectives:
        raise ValueError("objectives: give at least one objective")
    tolerance = float(correction_settings()["tolerance"] if correction_tolerance is None else correction_tolerance)
    passes = int(correction_settings()["max_passes"] if max_corrections is None else max_corrections)
    kept = float(planning_kept_energy() if kept_energy is None else kept_energy)
    if not 0 < tolerance < 1:
        raise ValueError(f"correction_tolerance must be in (0, 1), got {tolerance}")
    if not 0 <= passes <= 20:
        raise ValueError(f"max_corrections must be 0..20, got {passes}")
    if not 0.9 <= kept < 1:
        raise ValueError(f"kept_energy must be in [0.9, 1), got {kept}")
    _check_structures(scene, target, organs, objectives, body)
    if check_dose_to(dose_to) == "water":
        water_to_medium_ratio(scene)  # a medium without a ratio is refused before any work
    target_occupancy = scene.structure(target).full()
    if beams is None:
        points = scene.grid.index_to_mm(np.argwhere(target_occupancy > 0.5))
        if not len(points):
            raise ValueError(f"target {target!r} has no voxel more than half occupied")
        angles = arrangement_angles(settings["arrangement"]) if gantry_deg is None else gantry_deg
        beams = make_beams(points, gantry_deg=angles, beamlet_mm=beamlet_mm)
    elif not isinstance(beams, BeamSet) or not beams.beams:
        raise ValueError("beams must be a non-empty BeamSet (planner.radiotherapy.beams.make_beams)")

    say("influence matrix")
    planned = sorted({target, *organs, *(o.structure for o in objectives)})
    region = np.zeros(scene.grid.shape, bool)
    for name in planned:
        region |= scene.structure(name).full() > 0
    from .influence import dose_region

    # Rows: every voxel of the planned structures; around the target, inside the body, every
    # voxel within near_mm and one in eight further out (only the fall-off is steered there).
    around = np.zeros(scene.grid.size, bool)
    around[dose_region(scene, target, margin_mm=float(settings["margin_mm"]))] = True
    inside_body = scene.structure(body).full().ravel() > 0.5 if body is not None else np.ones(scene.grid.size, bool)
    near = ndimage.distance_transform_edt(target_occupancy <= 0.5, sampling=scene.grid.spacing_mm) <= settings["near_mm"]
    sampled = np.zeros(scene.grid.shape, bool)
    sampled[::2, ::2, ::2] = True
    roi = np.flatnonzero(region.ravel() | (around & inside_body & (near | sampled).ravel()))
    influence = build_influence(scene, beams, roi=roi, kept_energy=kept, backend=backend, report=say,
                                sampling_stride=(2, 2, 2))
    rows_target, _ = structure_rows(influence, target_occupancy)
    reached = _rows_with_entries(influence.matrix, rows_target)
    if not reached.all():
        raise ValueError(f"target {target!r}: {int((~reached).sum())} of its voxels receive no dose from any beam "
                         "(outside every field): widen the beams or check the target")

    order = list(overlap_priority) if overlap_priority is not None else list(organs) + [target]
    occupancy = resolve_overlaps({name: scene.structure(name).full() for name in planned}, order)
    terms = []
    for objective in objectives:
        rows, weights = structure_rows(influence, occupancy[objective.structure])
        if rows.size == 0:
            raise ValueError(f"objectives: {objective.structure!r} has no voxel left after the overlap priority {order}")
        options = {"volume_fraction": objective.volume_fraction} if objective.volume_fraction is not None else {}
        terms.append(OBJECTIVE_KINDS[objective.kind](rows=rows, weights=weights, dose_gy=objective.dose_gy,
                                                     priority=objective.priority, label=objective.structure, **options))
    del occupancy  # a grid of float64 per structure: not held through the correction loop
    say("optimising")
    weights = optimise(influence.matrix, terms, max_iterations=max_iterations, backend=backend).weights

    notes = []
    delivered = deliver(scene, beams, influence, terms, weights, target=target, organs=organs, engine=engine,
                        backend=backend, tolerance=tolerance, max_passes=passes, max_iterations=max_iterations,
                        progress=say)
    weights, final, seen = delivered.weights, delivered.final_dose_gy, delivered.optimiser_dose_gy
    agreement, done = delivered.agreement, delivered.passes
    if delivered.worst > tolerance:
        notes.append(f"the engines still differ by {100 * delivered.worst:.1f}% after {done} correction "
                     f"pass{'es' if done != 1 else ''}")

    final, seen = to_dose_quantity(final, scene, dose_to=dose_to), to_dose_quantity(seen, scene, dose_to=dose_to)
    voxel = scene.grid.voxel_volume_cc
    cover = metric(structure_dose(final, target_occupancy, voxel), "D95%")
    scale = prescription.dose_gy / cover if cover > 0 else 1.0
    organ_max = {name: metric(structure_dose(final, scene.structure(name).full(), voxel), "Dmax") for name in organs}
    limited = False
    for name, limit in organs.items():
        if organ_max[name] * scale > limit:
            scale, limited = limit / organ_max[name], True
    # Without a limit stopping it the target is at the prescription (not 1 - 1e-16 by rounding).
    coverage = (min(1.0, scale * cover / prescription.dose_gy) if limited else 1.0) if cover > 0 else 0.0
    if coverage < 1.0:
        notes.append(f"an organ limit stops the target's D95% at {100 * coverage:.0f}% of the prescription")
    final, seen, weights = final * scale, seen * scale, weights * scale
    for item in agreement.values():
        item["optimiser_gy"] *= scale
        item["final_gy"] *= scale
    metrics = {}
    for name in planned:
        sd = structure_dose(final, scene.structure(name).full(), voxel)
        metrics[name] = {m: float(metric(sd, m)) for m in ("Dmax", "D95%", "Dmean")}
    limits = {name: {"limit_gy": float(limit), "dmax_gy": float(organ_max[name] * scale),
                     "status": "pass" if organ_max[name] * scale <= limit * (1 + 1e-9) else "fail"}
              for name, limit in organs.items()}
    notes.append(f"pencil-beam matrix keeps {100 * influence.kept_energy:.2f}% of each beamlet's energy")
    notes.append(describe_dose_quantity(dose_to, scene))
    return ScenePlan(weights, final, seen, prescription, target, engine, agreement, metrics, limits, coverage, done,
                     influence.kept_energy, tuple(notes), scene, beams, influence, dose_to)
