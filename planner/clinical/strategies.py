"""Strategies: a sequence of surgical procedures and a radiotherapy regimen, evaluated on a case.

A :class:`Strategy` is data (procedures from :mod:`scenes.surgery`, a :class:`Regimen` and
its technique, an optional systemic-therapy component). :func:`evaluate_strategy` operates on
the case's scene, plans the radiotherapy on the operated scene, checks the cord constraints
and turns the dose and the case's facts into the outcome estimates of
:mod:`planner.outcomes`; :func:`planner.scorecard.compare_strategies` ranks a menu of them.
Teaching and research only, not for clinical use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from scenes import surgery
from scenes.cases import AMBULATORY_FRANKEL, Case, load_case
from scenes.scene import Scene

from planner.radiotherapy.constraints import protocols
from planner.radiotherapy.plan import PlanResult, Regimen, plan_case
from planner.radiotherapy.radiobiology import lq_extrapolation_warning

from .data import read_table
from .prognosis import score_tables
from .outcomes import Estimate, ambulation, course_days, hospital_days, outcome_tables, surgical_risk, untreated_status
from .radiation_effects import fracture_risk, local_control, myelopathy_risk, pain_response, retreatment

__all__ = ["Procedure", "Strategy", "StrategyResult", "evaluate_strategy", "case_after_delay", "radiosensitivity_of",
           "MenuFindings", "PROCEDURES", "TECHNIQUES"]

#: Procedure name -> (function of scenes.surgery, its option, open surgery?, decompresses the cord?)
PROCEDURES = {
    "separation_surgery": (surgery.separation_surgery, "gap_mm", True, True),
    "laminectomy": (surgery.laminectomy, None, True, True),
    "posterior_instrumentation": (surgery.posterior_instrumentation, "material", True, False),
    "vertebral_augmentation": (surgery.vertebral_augmentation, None, False, False),
    "corpectomy_with_cage": (surgery.corpectomy_with_cage, "material", True, True),
}
#: Radiotherapy technique -> (beam arrangement, constraint protocol) (strategies.toml [techniques]).
TECHNIQUES = {name: (entry["arrangement"], entry["protocol"]["value"])
              for name, entry in read_table("strategies")["techniques"].items()}


def _below_conus(case: Case) -> bool:
    from scenes.cases import FIRST_CAUDA_LEVEL
    from scenes.morphometry import level_index

    return level_index(case.level) >= level_index(FIRST_CAUDA_LEVEL)


@dataclass(frozen=True)
class Procedure:
    """One surgical procedure with its option (gap for separation surgery, implant material).

    ``name`` is a key of :data:`PROCEDURES` and ``option`` the value its scenes.surgery
    function takes (``gap_mm`` for separation surgery, ``material`` for instrumentation and
    corpectomy), or None for the function's default; a procedure without an option must not
    be given one. Anything else raises ValueError.
    """

    name: str
    option: float | str | None = None

    def __post_init__(self):
        if self.name not in PROCEDURES:
            raise ValueError(f"procedure name must be one of {', '.join(PROCEDURES)}, got {self.name!r}")
        wanted = PROCEDURES[self.name][1]
        if wanted is None and self.option is not None:
            raise ValueError(f"procedure {self.name} takes no option, got {self.option!r}")

    def apply(self, scene: Scene) -> Scene:
        """Operate on a scene (the procedure's :mod:`scenes.surgery` function).

        Parameters
        ----------
        scene : Scene
            The scene before the procedure.

        Returns
        -------
        Scene
            A new, operated scene (its history names the procedure).
        """
        function, option, _, _ = PROCEDURES[self.name]
        if option is None or self.option is None:
            return function(scene)
        return function(scene, self.option)

    @property
    def open_surgery(self) -> bool:
        return PROCEDURES[self.name][2]

    @property
    def decompresses(self) -> bool:
        return PROCEDURES[self.name][3]

    @property
    def label(self) -> str:
        words = self.name.replace("_", " ")
        if self.name == "separation_surgery" and self.option is not None:
            return f"separation surgery ({self.option:g} mm gap)"
        if isinstance(self.option, str):
            return f"{words} ({self.option.replace('_', '-')})"
        return words


@dataclass(frozen=True)
class Strategy:
    """Procedures, then radiotherapy (or not), plus an optional systemic-therapy component.

    ``systemic_therapy`` is a description only: no cited source in the project gives figures
    for its effect, so it changes no estimate, and it never replaces the decompression of a
    compressed cord.

    ``key`` is letters, digits and underscores; ``procedures`` are :class:`Procedure`
    objects; ``regimen`` and ``technique`` (a key of :data:`TECHNIQUES`) are given both or
    neither, and SBRT takes 1-5 fractions. Anything else raises ValueError.
    """

    key: str
    label: str
    procedures: tuple = ()
    regimen: Regimen | None = None
    technique: str | None = None
    systemic_therapy: str | None = None

    def __post_init__(self):
        if not self.key or not self.key.replace("_", "").isalnum():
            raise ValueError(f"strategy key must be letters, digits and underscores, got {self.key!r}")
        if any(not isinstance(p, Procedure) for p in self.procedures):
            raise ValueError("strategy procedures must be Procedure objects")
        if (self.regimen is None) != (self.technique is None):
            raise ValueError(f"strategy {self.key}: give both regimen and technique, or neither")
        if self.technique is not None and self.technique not in TECHNIQUES:
            raise ValueError(f"strategy {self.key}: technique must be one of {', '.join(TECHNIQUES)}, got {self.technique!r}")
        if self.technique == "sbrt" and self.regimen.fractions > 5:
            raise ValueError(f"strategy {self.key}: SBRT takes 1-5 fractions, got {self.regimen.fractions}")

    @property
    def open_surgery(self) -> bool:
        return any(p.open_surgery for p in self.procedures)

    @property
    def decompressed(self) -> bool:
        return any(p.decompresses for p in self.procedures)

    @property
    def kind(self) -> str:
        if self.regimen is None:
            return "surgery alone" if self.procedures else "best supportive care"
        return ("surgery + " if self.procedures else "") + ("SBRT" if self.technique == "sbrt" else "cEBRT")


@dataclass(frozen=True)
class MenuFindings:
    """What the indications of the menu (``indications.toml``) are judged on: the measured
    scene and the patient, as NOMS read them.

    Build it from a NOMS assessment with :func:`planner.clinical.menu.menu_findings`.
    """

    escc_grade: str
    cord_compression: bool
    radiosensitive: bool
    fit_for_surgery: bool
    established_paraplegia: bool
    sins_total: int
    mechanical_pain: bool
    body_disease: bool
    prior_radiotherapy: bool


def radiosensitivity_of(case: Case) -> str:
    """The histology's response class to conventional RT (scenes/data/histology.toml).

    Parameters
    ----------
    case : Case
        The case (its ``histology``).

    Returns
    -------
    str
        'radiosensitive', 'moderately_sensitive' or 'radioresistant'.
    """
    from scenes._data import load_data

    return str(load_data("histology")["histology"][case.histology]["radiosensitivity"]["value"])


def case_after_delay(case: Case, escc_grade: str, *, status: str | None = None) -> Case:
    """The case with the neurological status of its untreated lesion at a later time.

    ``status`` defaults to what the ESCC grade implies (:func:`planner.clinical.outcomes.untreated_status`,
    a teaching assumption), never better than the case's own.

    Parameters
    ----------
    case : Case
        The case at diagnosis.
    escc_grade : str
        The ESCC grade at the later time: '0', '1a', '1b', '1c', '2' or '3'.
    status : str, optional
        The neurological status at that time ('intact', 'radiculopathy', 'myelopathy' or
        'non_ambulatory'), e.g. carried along a timeline.

    Returns
    -------
    Case
        The same case when nothing changes, else a copy whose patient table has the new
        neurology (cauda equina syndrome below the conus), Frankel grade (never better than
        the case's), ambulatory flag and a deficit duration of at least 1 h.
    """
    status = status or untreated_status(escc_grade, case.patient.get("neurology", "intact"))
    patient = dict(case.patient)
    if status == patient.get("neurology") or (status == "non_ambulatory" and not patient.get("ambulatory", True)):
        return case
    cauda = _below_conus(case)
    frankel = outcome_tables()["untreated_course"]["status_to_frankel"][status]
    if status == "intact":
        return case
    neurology = {"radiculopathy": "radiculopathy",
                 "myelopathy": "cauda_equina_syndrome" if cauda else "myelopathy",
                 "non_ambulatory": "cauda_equina_syndrome" if cauda else "myelopathy"}[status]
    if patient.get("frankel", "E") < frankel:  # never better than the case's own grade (A worst)
        frankel = patient["frankel"]
    patient.update(neurology=neurology, frankel=frankel, ambulatory=frankel in AMBULATORY_FRANKEL,
                   deficit_duration_hours=max(float(patient.get("deficit_duration_hours", 0.0)), 1.0))
    return replace(case, patient=patient)


@dataclass(frozen=True, eq=False)
class StrategyResult:
    """One evaluated strategy: dosimetry, outcome estimates, time, flags."""

    strategy: Strategy
    dosimetry: dict
    constraints: list
    estimates: dict  # name -> Estimate
    days_to_end_of_treatment: int | None
    flags: tuple
    plan: PlanResult | None = field(default=None, repr=False)

    @property
    def failing_constraints(self) -> list[str]:
        """'structure metric' of every constraint the plan fails."""
        return _failing(self.constraints)

    def value(self, name: str) -> float | None:
        """The value of one outcome estimate.

        Parameters
        ----------
        name : str
            An estimate name ('local_control', 'myelopathy', 'fracture', 'pain', 'walking',
            'complications', 'wound', 'hospital').

        Returns
        -------
        float or None
            The estimate's value (in its unit), None when there is no figure or no such estimate.
        """
        return self.estimates[name].value if name in self.estimates else None

    def as_dict(self) -> dict:
        """The result as plain data (for JSON).

        Returns
        -------
        dict
            Key, label, kind, procedures, regimen (dose_gy, fractions, technique, or None),
            systemic therapy, dosimetry, constraints, every estimate as a dict, days to the end
            of treatment and flags.
        """
        return {"key": self.strategy.key, "label": self.strategy.label, "kind": self.strategy.kind,
                "procedures": [p.label for p in self.strategy.procedures],
                "regimen": None if self.strategy.regimen is None else
                {"dose_gy": self.strategy.regimen.dose_gy, "fractions": self.strategy.regimen.fractions,
                 "technique": self.strategy.technique},
                "systemic_therapy": self.strategy.systemic_therapy,
                "dosimetry": self.dosimetry, "constraints": self.constraints,
                "estimates": {k: e.as_dict() for k, e in self.estimates.items()},
                "days_to_end_of_treatment": self.days_to_end_of_treatment, "flags": list(self.flags)}


def _failing(constraints) -> list[str]:
    return [f"{c['structure']} {c['metric']}" for c in constraints if c["status"] == "fail"]


def _finite(value):
    return None if value is None or not math.isfinite(value) else float(value)


def _dosimetry(plan: PlanResult) -> tuple[dict, list]:
    metrics = plan.metrics
    neural = "thecal_sac" if "thecal_sac" in metrics else ("spinal_cord" if "spinal_cord" in metrics else "cauda_equina")
    dosimetry = {
        "gtv_d90_gy": _finite(metrics.get("gtv", {}).get("D90%")),
        "gtv_d95_gy": _finite(metrics.get("gtv", {}).get("D95%")),
        "ptv_d90_gy": _finite(metrics.get("ptv", {}).get("D90%")),
        "ptv_coverage": _finite(plan.coverage_achieved),
        "epidural_d90_gy": _finite(metrics.get("epidural_disease", {}).get("D90%")),
        "cord_pmax_gy": _finite(metrics.get(neural, {}).get("Dmax")),
        "cord_pmax_structure": neural,
        "spinal_cord_dmax_gy": _finite(metrics.get("spinal_cord", {}).get("Dmax")),
        "achievable_prescription_gy": _finite(plan.achievable_prescription_gy),
        # The limit that binds the achievable prescription (planner.radiotherapy.achievable).
        "achievable_binding": {k: plan.achievable_binding[k] for k in ("kind", "structure", "metric", "limit_gy",
                                                                       "protocol", "source", "note")
                               if k in plan.achievable_binding} or None,
    }
    constraints = [{"structure": c.structure, "metric": c.metric, "value_gy": _finite(c.value_gy),
                    "limit_gy": _finite(c.limit_gy), "margin_gy": _finite(c.margin_gy), "status": c.status,
                    "protocol": c.protocol, "source": c.source} for c in plan.constraints]
    return dosimetry, constraints


def _outside_stereotactic(patient: dict, survival: dict | None, sins_total: int | None, *, stabilised: bool) -> list[str]:
    """Why the patient is outside the SBRT trials' population ([] when inside)."""
    rules = outcome_tables()["populations"]["stereotactic"]
    why = []
    if patient.get("ecog", 0) > rules["max_ecog"]["value"]:
        why.append(f"ECOG {patient['ecog']} > {rules['max_ecog']['value']} ({rules['max_ecog']['source']})")
    months = (survival or {}).get("months")
    if months is not None and months < rules["min_expected_survival_months"]["value"]:
        why.append(f"expected survival {months:g} months < {rules['min_expected_survival_months']['value']} "
                   f"({rules['min_expected_survival_months']['source']})")
    if sins_total is not None and sins_total > rules["max_sins"]["value"] and not stabilised:
        why.append(f"unstable spine, SINS {sins_total} ({rules['max_sins']['source']} excluded frank instability)")
    return why


def _sbrt_gain_not_credited(patient: dict, sensitivity: str) -> str | None:
    """Why SBRT's gain over cEBRT is not credited for this histology (None when it is)."""
    rule = outcome_tables()["populations"]["stereotactic_sensitive_histology"]
    if sensitivity not in rule["classes"]["list"] or patient.get("oligometastatic", False):
        return None
    if patient.get("prior_radiotherapy"):
        return None  # it recurred after conventional RT: NOMS re-irradiates such a tumour as radioresistant
    return f"{sensitivity.replace('_', ' ')} histology, not oligometastatic"


def _outside_patchell(survival: dict | None, findings: MenuFindings | None) -> str | None:
    rules = outcome_tables()["populations"]["patchell"]
    why = []
    months = (survival or {}).get("months")
    if months is not None and months < rules["min_expected_survival_months"]["value"]:
        why.append(f"expected survival {months:g} months < {rules['min_expected_survival_months']['value']}")
    if findings is not None and not findings.fit_for_surgery:
        why.append("not fit for surgery")
    return "; ".join(why) or None


def _outside(estimate: Estimate, why: list[str], *, rule: str = "stereotactic") -> Estimate:
    rules = outcome_tables()["populations"][rule]
    lead = "outside the SBRT trials' population" if rule == "stereotactic" else "SBRT's gain not credited"
    return replace(estimate, basis=f"{lead} ({'; '.join(why)}): {rules['outside']}. " + estimate.basis, verified=False)


def evaluate_strategy(case: Case | str, strategy: Strategy, *, scene: Scene, escc_grade: str,
                      survival: dict | None = None, findings: MenuFindings | None = None, engine: str = "pencil",
                      progress=None, techniques: dict | None = None) -> StrategyResult:
    """Operate, plan and score one strategy on ``scene`` (the case's pre-treatment scene).

    ``escc_grade`` is the grade measured on the pre-treatment scene; ``survival`` the
    prognosis (``{"band": "< 6 months", "short": True, "months": 4, "source": ...}``, short
    meaning an expected survival under 6 months) used to flag strategies whose recovery is out
    of keeping with it and to keep each figure within its trial's population
    (outcomes.toml [populations]): SBRT figures need ECOG <= 2, an expected survival of 6
    months and a stable spine, Patchell's decompression figures 3 months and fitness for
    surgery; outside them the figure that replaces it says so.

    Parameters
    ----------
    case : Case or str
        The case, or a teaching-case id or case-file path.
    strategy : Strategy
        The strategy to carry out.
    scene : Scene
        The case's pre-treatment scene (operated on, then planned).
    escc_grade : str
        ESCC grade measured on the pre-treatment scene: '0', '1a', '1b', '1c', '2' or '3'.
    survival : dict, optional
        The prognosis: ``band`` (text), ``short`` (expected survival under 6 months),
        ``months`` (the band's median survival) and ``source``; without it no survival flag
        is raised and no population rule applies.
    findings : MenuFindings, optional
        The case's measured findings (SINS, fitness for surgery); without them the SINS and
        fitness population rules do not apply.
    engine : str, default "pencil"
        Dose engine of the plan, 'pencil' or 'superposition'.
    progress : callable, optional
        ``progress(message)`` for the planning steps.
    techniques : dict, optional
        ``{technique: (arrangement, protocol)}`` replacing :data:`TECHNIQUES` entries (a
        sweep's beam arrangement or protocol); either part may be None to keep the default.

    Returns
    -------
    StrategyResult
        Dosimetry (Gy), constraint results, outcome estimates, days to the end of treatment
        (None without treatment) and flags; the plan itself when there is radiotherapy.
    """
    case = load_case(case) if isinstance(case, str) else case
    patient = case.patient
    sensitivity = radiosensitivity_of(case)
    operated = scene
    for procedure in strategy.procedures:
        operated = procedure.apply(operated)
    flags = []
    estimates: dict[str, Estimate] = {}
    plan = None
    dosimetry, constraints = {}, []
    surgery_table = outcome_tables()["surgery"]
    rt_start = (surgery_table["rt_wait_days"] + 1) if strategy.open_surgery else 1
    days = None
    names = {p.name for p in strategy.procedures}
    instrumented = bool(names & {"posterior_instrumentation", "corpectomy_with_cage"})
    augmented = "vertebral_augmentation" in names
    sins_total = findings.sins_total if findings is not None else None
    unstable_from = outcome_tables()["pain"]["mechanical"]["unstable_from_sins"]["value"]
    mechanical = patient.get("pain") == "mechanical" or (sins_total is not None and sins_total >= unstable_from)
    outside_sbrt = _outside_stereotactic(patient, survival, sins_total, stabilised=instrumented or augmented)
    if strategy.regimen is not None:
        arrangement, protocol = TECHNIQUES[strategy.technique]
        override = (techniques or {}).get(strategy.technique)
        if override is not None:
            arrangement, protocol = override[0] or arrangement, override[1] or protocol
        cauda = _below_conus(case)
        below_conus = read_table("strategies")["techniques"][strategy.technique].get("protocol_below_conus")
        if cauda and below_conus:
            # Below the conus the cauda equina is the organ at risk, for the fractions its table lists.
            if strategy.regimen.fractions in protocols()[below_conus["value"]]["fractions"]:
                protocol = below_conus["value"]
            else:
                flags.append(f"below the conus: no cauda-equina limits for {strategy.regimen.fractions} fractions in the "
                             "reference; the HyTEC thecal-sac Pmax stands in for them")
        plan = plan_case(case, regimen=strategy.regimen, protocol=protocol, arrangement=arrangement, engine=engine,
                         scene=operated, progress=progress)
        dosimetry, constraints = _dosimetry(plan)
        fractions = strategy.regimen.fractions
        stereotactic = strategy.technique == "sbrt"
        setting = "conventional" if not stereotactic else ("postoperative" if strategy.decompressed else "de_novo")
        def control(in_setting):
            return local_control(setting=in_setting, fractions=fractions, gtv_d95_gy=dosimetry["gtv_d95_gy"],
                                 escc_grade=escc_grade, radiosensitivity=sensitivity, histology=case.histology)

        outside = list(outside_sbrt) if stereotactic else []
        not_credited = _sbrt_gain_not_credited(patient, sensitivity) if stereotactic and not outside else None
        estimates["local_control"] = control(setting)
        high = score_tables()["noms"]["neurologic"]["high_grade"]
        if (stereotactic and setting == "de_novo" and escc_grade in high
                and estimates["local_control"].value is None):
            outside.append(f"ESCC {escc_grade} without decompression: the SBRT trials excluded cord compression "
                           f"(sc24, prest2019) and the reference has no SBRT-alone cohort of it in {sensitivity} tumours")
        if outside:
            estimates["local_control"] = _outside(control("conventional"), outside)
        elif not_credited:
            estimates["local_control"] = _outside(control("conventional"), [not_credited],
                                                  rule="stereotactic_sensitive_histology")
        prior = patient.get("prior_radiotherapy")
        # Sahgal's stereotactic model is on the thecal-sac Pmax, Schultheiss' on the cord itself.
        pmax = dosimetry["cord_pmax_gy"] if stereotactic else dosimetry["spinal_cord_dmax_gy"]
        estimates["myelopathy"] = myelopathy_risk(pmax_gy=pmax if pmax is not None else float("nan"),
                                                  fractions=fractions, stereotactic=stereotactic,
                                                  prior_course=prior, cauda=cauda)
        estimates["fracture"] = fracture_risk(
            dose_per_fraction_gy=strategy.regimen.dose_gy / fractions, stereotactic=stereotactic,
            lytic=case.lesion.kind == "lytic", baseline_collapse_pct=float(case.lesion.collapse_pct),
            body_involved_over_50="body" in case.lesion.sites and case.lesion.body_fraction > 0.5,
            deformity=patient.get("alignment", "normal") != "normal", instrumented=instrumented, augmented=augmented)
        estimates["pain"] = pain_response(stereotactic=stereotactic and not outside and not not_credited,
                                          mechanical=mechanical, stabilised=instrumented or augmented)
        if outside and estimates["pain"].value is not None:
            estimates["pain"] = _outside(estimates["pain"], outside)
        elif not_credited and estimates["pain"].value is not None:
            estimates["pain"] = _outside(estimates["pain"], [not_credited], rule="stereotactic_sensitive_histology")
        estimates["retreatment"] = retreatment(conventional_fractions=None if stereotactic else fractions)
        if not_credited:
            # Scored as the conventional course it is credited as: its retreatment figure too.
            estimates["retreatment"] = _outside(retreatment(conventional_fractions=fractions), [not_credited],
                                                rule="stereotactic_sensitive_histology")
        days = rt_start + course_days(fractions) - 1
        failing = _failing(constraints)
        if failing:
            flags.append("a cord or organ constraint fails: " + ", ".join(failing))
        if dosimetry["ptv_coverage"] is not None and dosimetry["ptv_coverage"] < 1.0:
            flags.append(f"cord-limited: PTV coverage {100 * dosimetry['ptv_coverage']:.0f}% of the prescription")
        warning = lq_extrapolation_warning(strategy.regimen.dose_gy, fractions) if stereotactic else None
        if warning:
            flags.append(warning)
    else:
        none = Estimate(None, "%", "no radiotherapy")
        estimates["local_control"] = Estimate(0.0, "%", "no local treatment of the tumour: no control assumed") \
            if not strategy.procedures else Estimate(None, "%", "surgery without radiotherapy: no cohort in the reference")
        estimates["myelopathy"] = Estimate(0.0, "%", "no radiotherapy", None, True)
        estimates["fracture"] = none
        estimates["pain"] = pain_response(stereotactic=None)
        estimates["retreatment"] = retreatment(conventional_fractions=None)
    ambulatory = bool(patient.get("ambulatory", True))
    neurologic = score_tables()["noms"]["neurologic"]
    complete = neurologic["established_deficit_frankel"]["value"]
    paraplegic = patient.get("deficit_duration_hours", 0.0) if patient.get("frankel") in complete else 0.0
    conventional_fractions = strategy.regimen.fractions if strategy.technique == "cebrt" else None
    estimates["walking"] = ambulation(escc_grade=escc_grade, ambulatory=ambulatory, decompressed=strategy.decompressed,
                                      treated=bool(strategy.procedures) or strategy.regimen is not None,
                                      irradiated=strategy.regimen is not None,
                                      radiosensitivity=sensitivity, conventional_fractions=conventional_fractions,
                                      paraplegic_hours=paraplegic,
                                      outside_patchell=_outside_patchell(survival, findings) if strategy.decompressed else None)
    risks = surgical_risk(open_surgery=strategy.open_surgery, rt_start_day=rt_start if strategy.regimen else None)
    estimates["complications"] = risks["complications"]
    estimates["wound"] = risks["wound"]
    estimates["hospital"] = hospital_days(open_surgery=strategy.open_surgery)
    if days is None and strategy.procedures:
        days = 1 + int(estimates["hospital"].value)  # surgery alone: treatment ends at discharge
    if strategy.open_surgery and survival is not None and survival.get("short"):
        flags.append(f"open surgery with an expected survival of {survival['band']} ({survival['source']}): "
                     f"{surgery_table['min_survival_note']} Recovery and the {surgery_table['rt_wait_days']}-day "
                     "wound wait take a large share of the time left")
    if strategy.open_surgery and paraplegic > outcome_tables()["ambulation"]["paraplegia_window"]["hours"]:
        flags.append(f"paraplegic for {paraplegic:g} h: outside Patchell's population, decompression has no proven benefit")
    if strategy.systemic_therapy and escc_grade in neurologic["high_grade"] and not strategy.decompressed and strategy.regimen is None:
        flags.append("systemic therapy does not decompress a compressed cord")
    return StrategyResult(strategy, dosimetry, constraints, estimates, days, tuple(flags), plan)
