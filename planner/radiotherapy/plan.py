"""Plan a case: targets, beams, influence, optimisation, normalisation, evaluation.

Spine SBRT priorities as practised: the cord (or cauda) limit is hard, target coverage
yields near the cord. The optimiser shapes the fluence (pencil-beam influence); the final
dose is computed by superposition and then *scaled* - dose is linear in the weights - so
that the target's coverage dose reaches the prescription unless that would break an organ
limit, in which case the limit wins and the coverage achieved is reported.

The maximum achievable prescription is judged on the residual gross tumour (GTV Dmin,
``planner/radiotherapy/protocols/targets.toml`` [achievable]): the highest prescription P for which a plan
optimised *at P* - the GTV covered right up to the cord PRV, the cord and thecal-sac limits
hard, every other organ's limit kept - still has GTV Dmin >= P once scaled so that the
tightest limit is met exactly, P within the escalation bound of the dose-escalation literature
and the plan within the target's hot-spot limit (:mod:`.achievable`, which also names the limit
that binds). :func:`~planner.radiotherapy.case_objectives.escalate` raises P until the plan can no
longer follow (the optimiser's rows, terms and that search: :mod:`.case_objectives`). (Scaling only the
plan made for the requested prescription is not enough: after separation surgery that plan
sits below the cord limit with its near-cord dose set by the PTV edge - the CTV's whole
sectors abut the canal whatever the gap - so the figure would not see how far the tumour is
from the sac.) A 1 mm step of the gap is resolved on a grid of 1.25 mm in-plane
(:data:`GAP_RESOLVING_GRID_MM`); on 2.5 mm voxels 1 and 2 mm remove the same voxels.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from scenes.cases import build_scene, load_case
from scenes.scene import Scene
from scenes.surgery import separation_surgery

from .achievable import (ACHIEVABLE_METRIC, ACHIEVABLE_STRUCTURE, achievable_from, achievable_limits,
                         achievable_prescription, escalation_bound, full_measure, row_measure)
from .beams import arrangement_angles, make_beams
from .case_objectives import (HARD_STRUCTURES, _make_terms, _optimisation_region, _point_limits, _rows, _term_rows,
                              escalate, hard_structures, optimisation_stride)
from .constraints import check_constraints, constraints_for
from .correction import deliver
from .dose_to_water import check_dose_to, describe_dose_quantity, to_dose_quantity, water_to_medium_ratio
from .delivered_dose import final_dose
from .influence import build_influence, planning_kept_energy
from .metrics import metric, structure_dose
from .optimise import optimise
from .protocols import read_table
from .radiobiology import alpha_beta, bed, myelopathy_band
from .regimen import MAX_FRACTIONS, MAX_PRESCRIPTION_GY, Regimen
from .targets import add_targets

__all__ = ["Regimen", "PlanResult", "add_targets", "plan_case", "achievable_prescription", "achievable_from", "escalate",
           "forget_shared_influences",
           "row_measure", "hard_structures", "COVERAGE_METRIC", "ACHIEVABLE_METRIC", "HARD_STRUCTURES",
           "GAP_RESOLVING_GRID_MM", "describe_binding", "optimisation_stride", "MAX_PRESCRIPTION_GY", "MAX_FRACTIONS"]

#: Coverage normalisation: the dose covering 90% of the PTV (D90) reaches the prescription.
COVERAGE_METRIC = "D90%"

#: The planning grid (z, y, x mm) on which 1 mm steps of the separation gap are resolved
#: (objectives.toml [gap_resolution], with the measurement behind it).
GAP_RESOLVING_GRID_MM = tuple(float(v) for v in read_table("objectives")["gap_resolution"]["grid_mm"])


@dataclass(frozen=True, eq=False)
class PlanResult:
    """A planned case: the regimen, the normalised weights and dose, metrics and checks.

    ``dose_gy`` is on the planned scene's grid, normalised so that the PTV's
    :data:`COVERAGE_METRIC` reaches the prescription unless an organ limit stops it
    (``coverage_achieved`` is then below 1); ``metrics`` maps structure -> {metric: Gy};
    ``constraints`` holds the :class:`~planner.radiotherapy.constraints.ConstraintResult`
    of every limit; ``radiobiology`` the GTV D95 BED10 and the myelopathy band;
    ``achievable_prescription_gy`` the maximum achievable prescription (GTV Dmin, see the
    module docstring) and ``achievable_binding`` the limit that binds it (kind, structure,
    metric, limit, source: :func:`~planner.radiotherapy.achievable.achievable_limits`);
    ``notes`` what was done and found, in words.
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
    #: The plan that reaches the achievable prescription, scaled so that the binding limit is
    #: met exactly (its GTV Dmin is ``achievable_prescription_gy``).
    achievable_dose_gy: np.ndarray | None = field(default=None, repr=False)
    #: The escalation's probes: (prescription asked, achievable figure of that plan), Gy.
    achievable_probes: tuple = ()
    #: The limit that binds the achievable prescription (a dict, see the class docstring; empty
    #: when nothing does), and the achievable plan's hot spot against the target's limit.
    achievable_binding: dict = field(default_factory=dict)
    achievable_hot_spot: dict = field(default_factory=dict)
    #: Every limit of the achievable plan, tightest first: where each alone would put the
    #: figure (so a plan capped by the escalation bound still shows the organs' headroom).
    achievable_limits: tuple = ()
    #: Optimiser's (pencil-beam + correction) vs final (superposition) dose on the PTV D95% and
    #: the hard-limited maxima: {metric: {optimiser_gy, final_gy, difference}} (empty: pencil).
    engine_agreement: dict = field(default_factory=dict)
    #: How the plan was made (grid_mm, engine, arrangement, n_beams, beamlet_mm), so that it can
    #: be made again (e.g. by ``spinesim export plan.json``).
    settings: dict = field(default_factory=dict)

    def to_json(self) -> str:
        """The plan's numbers as JSON (without the dose arrays, scene and beams).

        Returns
        -------
        str
            An indented JSON object: case, regimen, protocol, gap, metrics, constraints,
            radiobiology, achievable prescription with its metric, binding limit, hot spot,
            escalation bound and probes, coverage, notes and the teaching-and-research
            disclaimer; NaN and infinities are written as null.
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
                "achievable_binding": self.achievable_binding, "achievable_hot_spot": self.achievable_hot_spot,
                "achievable_limits": list(self.achievable_limits),
                "achievable_bound": escalation_bound(self.regimen.fractions),
                "achievable_probes": [list(p) for p in self.achievable_probes],
                "engine_agreement": self.engine_agreement, "settings": self.settings,
                "disclaimer": "spinesim: teaching and research only, not for clinical use"}
        return json.dumps(clean(data), indent=2)


#: The last few influence matrices, by (scene, beams, rows, backend): plans that differ only in
#: the prescription, protocol limits elsewhere or weights (a sweep, a scorecard's conventional
#: courses) share one matrix instead of building it again. Matrices are never modified.
_INFLUENCE_MEMO: dict = {}
_INFLUENCE_MEMO_SIZE = 2


def forget_shared_influences() -> None:
    """Drop the influence matrices :func:`plan_case` keeps for the next plans on the same scene
    and beams: a script that moves on to other work frees them (the demo after its comparison:
    249 MiB on its grid). Later plans build their matrices again."""
    _INFLUENCE_MEMO.clear()


def _shared_influence(scene, beams, roi, *, backend: str, report):
    import hashlib

    geometry = hashlib.sha256(np.ascontiguousarray(roi).tobytes())
    for beam in beams.beams:
        geometry.update(repr((beam.gantry_deg, beam.isocentre_mm, beam.source_axis_distance_mm, beam.beamlet_mm)).encode())
        geometry.update(np.ascontiguousarray(beam.beamlet_uv_mm).tobytes())
    key = (scene.fingerprint(), geometry.hexdigest(), backend)
    if key in _INFLUENCE_MEMO:
        report("influence matrix: reused (same scene, beams and rows)")
        _INFLUENCE_MEMO[key] = _INFLUENCE_MEMO.pop(key)  # most recently used last
        return _INFLUENCE_MEMO[key]
    influence = build_influence(scene, beams, target="ptv", roi=roi, backend=backend, report=report,
                                kept_energy=planning_kept_energy(), sampling_stride=optimisation_stride(scene))
    _INFLUENCE_MEMO[key] = influence
    while len(_INFLUENCE_MEMO) > _INFLUENCE_MEMO_SIZE:
        _INFLUENCE_MEMO.pop(next(iter(_INFLUENCE_MEMO)))
    return influence


def plan_case(case, *, regimen: Regimen, protocol: str = "hytec", gap_mm: float | None = None, n_beams: int = 9,
              arrangement: str = "sbrt_fan",
              beamlet_mm: float = 5.0, grid_mm=(2.5, 2.5, 2.5), engine: str = "superposition", backend: str = "cpu",
              max_iterations: int = 500, progress=None, scene: Scene | None = None,
              dose_to: str = "medium") -> PlanResult:
    """Plan ``case`` (id, path or Case) with ``regimen``; optional separation surgery first.

    ``scene``: plan this scene of the case (e.g. one already operated on, or grown) instead
    of building it from the case on ``grid_mm``.

    ``engine`` 'superposition' evaluates the final dose by collapsed cone (seconds);
    'pencil' keeps the optimiser's pencil-beam dose (fast, for sweeps and tests).

    The maximum achievable prescription comes from :func:`~planner.radiotherapy.case_objectives.escalate` on the plan's matrix;
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
        Kernel backend of the influence build, the optimisation and the final dose: 'cpu',
        'cuda' (RuntimeError without an NVIDIA GPU) or 'auto' (the GPU when one is present).
    max_iterations : int, default 500
        L-BFGS-B iteration limit of the plan's optimisation, 1..100000.
    progress : callable, optional
        ``progress(message)`` receives a line at each step (silent by default).
    scene : Scene, optional
        The scene to plan instead of building one from the case.
    dose_to : str, default "medium"
        'medium' (the engines' dose to each voxel's own medium) or 'water' (times each
        medium's water-to-medium stopping-power ratio, :mod:`.dose_to_water`), applied before
        normalisation: the prescription, the limits and the metrics are read in it. A scene
        with a medium that has no ratio (metal, cement) is refused before the influence matrix.

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
    check_dose_to(dose_to)
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
    if dose_to == "water":
        water_to_medium_ratio(scene)  # a medium without a ratio is refused before any dose work
    limited = tuple(sorted({c.structure for c in constraints if scene.has(c.structure)}))
    points = scene.grid.index_to_mm(np.argwhere(scene.structure("ptv").full() > 0.5))
    beams = make_beams(points, gantry_deg=arrangement_angles(arrangement, n_beams=n_beams), beamlet_mm=beamlet_mm)
    say("influence matrix")
    influence = _shared_influence(scene, beams, _optimisation_region(scene, organs=limited), backend=backend, report=say)
    say("optimising")
    term_rows = _term_rows(influence, scene, _point_limits(constraints))
    result = optimise(influence.matrix, _make_terms(term_rows, regimen), max_iterations=max_iterations, backend=backend)
    weights = result.weights
    say("escalating to the maximum achievable prescription")
    rows_of = {name: _rows(influence, scene, name) for name in (ACHIEVABLE_STRUCTURE,) + limited}
    _, best_weights, probes = escalate(influence.matrix, term_rows, regimen, rows_of, constraints, weights,
                                       voxel_cc=scene.grid.voxel_volume_cc)

    def engine_dose(w):
        if engine == "superposition":
            say("final dose (collapsed-cone superposition)")
            return final_dose(scene, beams, w, backend=backend)
        return influence.dose_volume(w)

    notes.append(f"pencil-beam matrix: cut-off {influence.cutoff:g} of the kernel peak keeps "
                 f"{100 * influence.kept_energy:.1f}% of each beamlet's energy in water")
    # The planning chain's last verb, as plan_scene's: the dose-correction loop (the optimised
    # dose is the delivered dose) with the superposition engine; the matrix's dose with 'pencil'.
    hard = [name for name in hard_structures(constraints) if scene.has(name)]
    delivered = deliver(scene, beams, influence, _make_terms(term_rows, regimen), weights, target="ptv", organs=hard,
                        engine=engine, backend=backend, max_iterations=max_iterations, progress=say)
    weights, dose = delivered.weights, delivered.final_dose_gy
    agreement = delivered.agreement if engine == "superposition" else {}
    if engine == "superposition":
        passes = f"{delivered.passes} correction pass{'es' if delivered.passes != 1 else ''}"
        notes.append(f"engines: optimiser vs final dose within {100 * delivered.worst:.1f}% after {passes} "
                     "(PTV D95%, " + ", ".join(f"{n} Dmax" for n in hard) + ")")
    if best_weights is result.weights:
        best_weights = weights
    best_dose = dose if best_weights is weights else engine_dose(best_weights)
    dose, best_dose = (to_dose_quantity(d, scene, dose_to=dose_to) for d in (dose, best_dose))
    notes.append(describe_dose_quantity(dose_to, scene))
    present = set(limited) | {ACHIEVABLE_STRUCTURE}
    found = achievable_limits(full_measure(best_dose, scene), constraints, present, fractions=regimen.fractions)
    achievable, binding = found["figure_gy"], found["binding"] or {}
    best_cover = full_measure(best_dose, scene)(ACHIEVABLE_STRUCTURE, ACHIEVABLE_METRIC)
    # Nothing limits it (no organ limit receives dose): no plan to scale.
    achievable_dose = best_dose * (achievable / best_cover) if best_cover > 0 and np.isfinite(achievable) else None
    # Normalise: PTV coverage to the prescription unless an organ limit forbids it.
    normalised = achievable_limits(full_measure(dose, scene), constraints, present | {"ptv"}, structure="ptv",
                                   coverage_metric=COVERAGE_METRIC)
    ptv_limit = normalised["figure_gy"]
    cover = full_measure(dose, scene)("ptv", COVERAGE_METRIC)
    scale = min(regimen.dose_gy, ptv_limit) / cover
    dose, weights = dose * scale, weights * scale
    agreement = {key: {**item, "optimiser_gy": item["optimiser_gy"] * scale, "final_gy": item["final_gy"] * scale}
                 for key, item in agreement.items()}
    coverage = min(1.0, ptv_limit / regimen.dose_gy)
    if coverage < 1.0:
        limit = normalised["binding"]
        notes.append(f"{limit['structure']} {limit['metric']} limit ({limit['limit_gy']:.1f} Gy, {limit['source']}) reached "
                     f"before coverage: PTV {COVERAGE_METRIC} = {ptv_limit:.1f} Gy ({100 * coverage:.0f}% of the prescription)")
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
                 f"binding limit met exactly ({describe_binding(binding)}); escalation probes (asked -> reached, Gy): "
                 + ", ".join(f"{a:.1f} -> {r:.1f}" for a, r in probes))
    if found["hot_spot"]["ok"] is False:
        notes.append(f"the achievable plan's GTV maximum is {found['hot_spot']['ratio']:.2f} x its prescription, above the "
                     f"hot-spot limit {found['hot_spot']['limit_ratio']:.2f} ({found['hot_spot']['source']}): no probe "
                     "kept within it")
    return PlanResult(case.id, regimen, protocol, gap_mm, weights, dose, metrics, results, radio, achievable, coverage,
                      tuple(notes + [f"optimiser: {result.iterations} iterations, {result.message}"]), scene, beams,
                      achievable_dose_gy=achievable_dose, achievable_probes=probes, achievable_binding=binding,
                      achievable_hot_spot=found["hot_spot"], achievable_limits=tuple(found["limits"]),
                      engine_agreement=agreement,
                      settings={"grid_mm": [float(v) for v in scene.grid.spacing_mm], "engine": engine,
                                "arrangement": arrangement, "n_beams": len(beams.beams), "beamlet_mm": float(beamlet_mm),
                                "dose_to": dose_to})


def describe_binding(binding: dict) -> str:
    """The limit that binds the achievable prescription, in words.

    Parameters
    ----------
    binding : dict
        A limit of :func:`~planner.radiotherapy.achievable.achievable_limits` (its
        ``binding``), or an empty dict / None.

    Returns
    -------
    str
        E.g. 'thecal_sac Dmax <= 17.0 Gy (hytec, sahgal2013_rm)' or 'escalation bound 29.2 Gy
        (SBRT 48.5 Gy/10 ...; guckenberger2024_dose_intensified)'; 'nothing binds' without one.
    """
    if not binding:
        return "nothing binds"
    if binding["kind"] == "escalation bound":
        return f"escalation bound {binding['limit_gy']:.1f} Gy ({binding['note']}; {binding['source']})"
    return f"{binding['structure']} {binding['metric']} <= {binding['limit_gy']:.1f} Gy ({binding['protocol']}, {binding['source']})"
