"""Clinical scores measured from the scene: SINS and the NOMS recommendation.

The Spinal Instability Neoplastic Score (Fisher 2010) is computed from the scene itself:
location from the level, lesion quality from the lesion's kind, collapse and body
involvement measured on the vertebral-body and tumour masks, posterolateral involvement
measured on the pedicles; pain and alignment are the case's clinical inputs. Points come
from ``planner/clinical/data/scores.toml``.

:func:`noms` applies the NOMS framework (Laufer 2013) to a scene and its case: the ESCC grade
measured from the geometry, the histology's radiosensitivity, the measured SINS and the
patient's fitness (ECOG, revised Tokuhashi band, see :mod:`planner.prognosis`). The rules
and cut-offs are data in scores.toml with their source keys; those the reference does not
give are marked there as spinesim teaching assumptions, and each reason says so.
Teaching and research only, not for clinical use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scenes._data import load_data
from scenes.escc import EsccMeasurement, measure_escc_grade
from scenes.morphometry import level_dimensions
from scenes.scene import Scene

from planner.common.safety import DISCLAIMER

from .prognosis import PrognosisScore, patient_record, score_tables, tokuhashi, tomita

__all__ = ["SinsScore", "sins", "score_tables", "NomsPart", "NomsAssessment", "noms", "PrognosisScore", "tokuhashi",
           "tomita"]



@dataclass(frozen=True)
class SinsScore:
    """The Spinal Instability Neoplastic Score of a scene's index level, with its parts.

    ``components`` maps each item (location, pain, bone_lesion, alignment, collapse,
    posterolateral) to ``(category, points)``; ``category`` is 'stable',
    'potentially_unstable' or 'unstable'; ``measured`` holds the geometric measurements
    behind the components (body height and its loss, body involvement, pedicles and
    posterior elements involved); ``source`` the table's source key.
    """
    total: int
    components: dict  # name -> (category, points)
    category: str
    measured: dict  # the geometric measurements behind the components
    source: str

    def explain(self) -> str:
        """The score in one line: total, category and each item's category and points.

        Returns
        -------
        str
            ``'SINS <total> (<category>): <item> <category> <points> + ...'``.
        """
        parts = " + ".join(f"{name.replace('_', ' ')} {category} {points}" for name, (category, points) in self.components.items())
        return f"SINS {self.total} ({self.category}): {parts}"


def _fraction(scene: Scene, part: str, whole: str) -> float:
    if part not in scene.structures or whole not in scene.structures:
        return 0.0
    w = scene.structure(whole).full()
    return float(np.minimum(scene.structure(part).full(), w).sum() / max(w.sum(), 1e-9))


def _body_height_mm(scene: Scene) -> float:
    """Height of the index vertebral body where it is lowest (occupancy sum along z).

    Only columns wholly inside the body's outline count (some voxel fully occupied); a
    collapse is read by its greatest loss of height, at the front of a wedge (genant1993, as
    scenes/data/anatomy.toml [collapse] defines ``collapse_pct``).
    """
    body = scene.structure(f"vertebral_body_{scene.level}").full()
    columns = body.sum(axis=0)
    full = body.max(axis=0) >= 1.0 - 1e-6
    return float(columns[full].min() if full.any() else columns.max()) * scene.grid.spacing_mm[0]


def sins(scene: Scene) -> SinsScore:
    """SINS of the scene's index level.

    Location comes from the level, lesion quality from the lesion's kind, collapse and body
    involvement are measured on the vertebral-body and tumour masks, posterolateral
    involvement on the pedicles and lamina; pain and alignment are the scene's clinical
    inputs (default 'none' and 'normal').

    Parameters
    ----------
    scene : Scene
        A phantom scene with a level and a lesion (ValueError otherwise).

    Returns
    -------
    SinsScore
        Total 0-18 with its category, components and measurements.

    Examples
    --------
    >>> from scenes.cases import build_scene
    >>> sins(build_scene("l2_rcc_escc1a", spacing_mm=(2.5, 2.5, 2.5), supersample=2)).total
    5
    """
    table = score_tables()["sins"]
    tolerance = score_tables()["measurement"]
    level = scene.level
    if level is None or scene.lesion is None:
        raise ValueError("SINS needs a phantom scene with a level and a lesion")
    location = next(name for name, levels in table["location_levels"].items() if level in levels)
    pain = scene.clinical.get("pain", "none")
    alignment = scene.clinical.get("alignment", "normal")
    alignment_key = {"normal": "normal", "de_novo_deformity": "de_novo_deformity", "subluxation": "subluxation"}[alignment]
    expected = level_dimensions(level).body_height_mm
    height = _body_height_mm(scene)
    loss = max(0.0, 1 - height / expected)
    involved = _fraction(scene, "lesion_bone", f"vertebral_body_{level}")
    cut_off = table["collapse_cut_off"]
    if loss > cut_off:
        collapse = "over_50"
    elif loss > tolerance["collapse_tolerance"]:
        collapse = "under_50"
    elif involved > cut_off:
        collapse = "none_over_50_involved"
    else:
        collapse = "none"
    left = _fraction(scene, "lesion_bone", f"pedicle_left_{level}") > tolerance["element_tolerance"]
    right = _fraction(scene, "lesion_bone", f"pedicle_right_{level}") > tolerance["element_tolerance"]
    posterior = _fraction(scene, "lesion_bone", f"lamina_{level}") > tolerance["element_tolerance"]
    sides = int(left) + int(right)
    posterolateral = "bilateral" if sides == 2 or (posterior and sides == 1) else ("unilateral" if sides == 1 else "none")
    components = {
        "location": (location, table["location"][location]),
        "pain": (pain, table["pain"][pain]),
        "bone_lesion": (scene.lesion.kind, table["bone_lesion"][scene.lesion.kind]),
        "alignment": (alignment_key, table["alignment"][alignment_key]),
        "collapse": (collapse, table["collapse"][collapse]),
        "posterolateral": (posterolateral, table["posterolateral"][posterolateral]),
    }
    total = int(sum(points for _, points in components.values()))
    category = next(name for name in ("stable", "potentially_unstable", "unstable")
                    if table[name][0] <= total <= table[name][1])
    measured = {"body_height_mm": height, "table_height_mm": expected, "height_loss": loss, "body_involved": involved,
                "pedicle_left": left, "pedicle_right": right, "posterior_elements": posterior}
    return SinsScore(total, components, category, measured, table["source"])


# -- NOMS ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class NomsPart:
    """One NOMS consideration: what was found, what it decides, and why (with source keys).

    ``reason`` starts with ``finding`` and cites its sources in square brackets.
    """

    name: str
    finding: str
    decision: str
    reason: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class NomsAssessment:
    """The NOMS recommendation for a scene and its case, part by part.

    Machine-readable decision: ``radiotherapy`` "cebrt" or "sbrt"; ``surgery`` "none",
    "separation" (separation surgery, then SBRT) or "decompression" (in the vocabulary of the
    strategy menu; these rules never give it); ``mechanical`` "none", "stabilisation" or
    "augmentation"; ``systemic_therapy`` the text of a histology-specific systemic therapy
    the reference supports, else None; ``reirradiation`` (SBRT after in-field RT failure);
    ``short_course`` (short-course cEBRT for a patient unfit for more).
    ``mechanical_indicated`` is what the SINS alone calls for, before the surgery and systemic
    parts are weighed; ``surgical_consult`` SINS >= 7 (surgical opinion before RT);
    ``summary`` one line; :meth:`explain` the four reasons.
    """

    case_id: str
    neurologic_part: NomsPart
    oncologic_part: NomsPart
    mechanical_part: NomsPart
    systemic_part: NomsPart
    radiotherapy: str
    surgery: str
    mechanical: str
    systemic_therapy: str | None
    reirradiation: bool
    short_course: bool
    mechanical_indicated: str
    surgical_consult: bool
    escc: EsccMeasurement
    escc_group: str
    radiosensitivity: str
    treated_as_radiosensitive: bool
    established_deficit: bool
    fit_for_surgery: bool
    sins_score: SinsScore
    prognosis: PrognosisScore
    summary: str
    source: str = "laufer2013_noms"

    @property
    def parts(self) -> tuple[NomsPart, ...]:
        return (self.neurologic_part, self.oncologic_part, self.mechanical_part, self.systemic_part)

    def explain(self) -> str:
        """The recommendation and the four NOMS reasons, one per line, with the disclaimer.

        Returns
        -------
        str
            A heading line (case, summary, source), one line per part (decision and reason) and
            :data:`planner.common.safety.DISCLAIMER`.
        """
        lines = [f"NOMS for {self.case_id}: {self.summary} [{self.source}]"]
        lines += [f"  {part.name[0].upper()} ({part.name}): {part.decision}. {part.reason}" for part in self.parts]
        lines.append(DISCLAIMER)
        return "\n".join(lines)


def _cite(*keys: str) -> str:
    return "[" + "; ".join(keys) + "]"


def _neurologic(escc: EsccMeasurement, patient: dict, rules: dict):
    grade = escc.grade
    group = "low" if grade in rules["low_grade"] else ("intermediate" if grade in rules["intermediate"] else "high")
    deficit = patient["neurology"] in rules["cord_deficits"]
    window = rules["established_deficit_hours"]
    established = (patient["frankel"] in rules["established_deficit_frankel"]["value"]
                   and patient["deficit_duration_hours"] > window["value"])
    hours = patient["deficit_duration_hours"]
    finding = (f"ESCC {grade} ({group} grade, measured on the scene), {patient['neurology'].replace('_', ' ')}, "
               f"Frankel {patient['frankel']}" + (f" for {hours:g} h" if hours else ""))
    compression = group == "high" or (group == "intermediate" and deficit
                                      and rules["intermediate_with_deficit_as_high_grade"]["value"])
    if established:
        decision = "established deficit: no decompression benefit"
        why = (f"Frankel {patient['frankel']} (paraplegia) for more than {window['value']:g} h excluded patients from the "
               f"randomised trial of decompression, so no benefit of decompression is expected {_cite(window['source'])}; "
               "radiotherapy is for pain and local control.")
        sources = (window["source"], rules["source"])
    elif group == "high":
        decision = "high-grade compression: decompression before radiotherapy unless radiosensitive"
        why = ("high-grade ESCC (2-3) calls for decompression before radiotherapy unless the tumour is highly "
               f"radiosensitive {_cite(rules['source'], 'laufer2013_noms')}.")
        sources = (rules["source"], "laufer2013_noms")
    elif compression:
        decision = "ESCC 1c with a deficit: treated as high grade"
        why = (f"ESCC 1c is debated {_cite(rules['source'])}; with a {patient['neurology'].replace('_', ' ')} spinesim "
               "treats it as high grade (a teaching assumption, the reference gives no rule) "
               f"{_cite('spinesim_teaching_assumption')}.")
        sources = (rules["source"], "spinesim_teaching_assumption")
    elif group == "intermediate":
        decision = "ESCC 1c without a cord deficit: radiation first (high-dose SBRT possible)"
        why = ("ESCC 1c is debated, high-dose hypofractionated SBRT is possible without decompression "
               f"{_cite(rules['source'])}; spinesim treats 1c without a cord or cauda deficit as low grade.")
        sources = (rules["source"],)
    else:
        decision = "low grade: radiation first"
        why = f"low-grade ESCC (0-1b) is treated with radiation first, without decompression {_cite(rules['source'])}."
        sources = (rules["source"],)
    part = NomsPart("neurologic", finding, decision, f"{finding}: {why}", sources)
    return part, group, compression, established


def _oncologic(patient: dict, rules: dict):
    entry = load_data("histology")["histology"][patient["histology"]]
    sensitivity = entry["radiosensitivity"]["value"]
    grouped = rules["moderately_sensitive_as"]
    sensitive = (sensitivity == "radiosensitive"
                 or (sensitivity == "moderately_sensitive" and grouped["value"] == "radiosensitive"))
    prior = patient.get("prior_radiotherapy")
    finding = f"{entry['name']}, {sensitivity.replace('_', ' ')}"
    if prior:
        finding += (f", in-field progression {prior['months_ago']:g} months after {prior['dose_gy']:g} Gy/"
                    f"{prior['fractions']}")
    source = entry["radiosensitivity"]["source"]
    if sensitive and sensitivity == "moderately_sensitive":
        why = (f"moderately radiosensitive histologies are grouped with the radiosensitive ones for NOMS (cEBRT effective; "
               f"the grouping is unverified) {_cite(grouped['source'])}.")
    elif sensitive:
        why = f"a radiosensitive histology responds to cEBRT regardless of ESCC grade or myelopathy {_cite(source)}."
    else:
        why = f"a radioresistant histology is poorly controlled by cEBRT and needs SBRT's dose {_cite(source)}."
    decision = "radiosensitive: cEBRT" if sensitive else "radioresistant: SBRT"
    sources = [source]
    if prior:
        rule = rules["reirradiation"]
        why += (f" Conventional RT has failed in-field: re-irradiation SBRT within the cumulative cord limits "
                f"{_cite(rule['source'], 'sahgal2012_reirr')}.")
        decision = "in-field failure after RT: re-irradiation SBRT"
        sources.append(rule["source"])
    therapy = entry.get("systemic_therapy")
    if therapy:
        why += f" The histology calls for {therapy['value']} alongside radiotherapy {_cite(therapy['source'])}."
        sources.append(therapy["source"])
    part = NomsPart("oncologic", finding, decision, f"{finding}: {why}", tuple(sources))
    return part, sensitivity, sensitive, therapy["value"] if therapy else None


def _mechanical_indication(score: SinsScore, rules: dict, body_diseased: bool, escc_grade: str):
    """What the SINS alone calls for, and why (before surgery and fitness are weighed)."""
    total = score.total
    bands = score_tables()["sins"]  # Fisher 2010's bands, the one copy of those numbers
    unstable, consult, source = int(bands["unstable"][0]), int(bands["surgical_consult_threshold"]), bands["source"]
    gross = rules["gross_instability"]
    words = {"subluxation": "subluxation", "de_novo_deformity": "de novo deformity", "over_50": "collapse over 50%",
             "bilateral": "bilateral posterolateral involvement"}
    categories = [score.components[name][0] for name in ("alignment", "collapse", "posterolateral")
                  if score.components[name][0] in gross.get(name, ())]
    found = [words.get(category, category.replace("_", " ")) for category in categories]
    if total >= unstable:
        return "stabilisation", (f"SINS >= {unstable} is unstable: stabilisation before or with RT "
                                 f"{_cite(source, 'laufer2013_noms')}.")
    if total < consult:
        return "none", f"SINS < {consult} is stable: no procedure on mechanical grounds {_cite(source)}."
    text = f"SINS {consult}-{unstable - 1} is potentially unstable (surgical opinion before RT) {_cite(source)}; "
    if found:
        return "stabilisation", text + (f"{' and '.join(found)}: gross instability (a teaching assumption: the "
                                        f"reference defines none) {_cite(gross['source'])}, so stabilisation "
                                        f"{_cite('laufer2013_noms')}.")
    pain, barred = rules["augmentation_pain"], rules["augmentation_not_with_escc"]
    axial_pain = score.components["pain"][0] == pain["value"] and body_diseased
    if axial_pain and escc_grade in barred["value"]:
        return "none", text + ("mechanical pain without gross instability, but cement augmentation is not offered with "
                               f"the cord compressed (ESCC {escc_grade}; a teaching assumption {_cite(barred['source'])}).")
    if axial_pain:
        return "augmentation", text + ("mechanical pain without gross instability (no subluxation, de novo deformity or "
                                       "collapse over 50%; a teaching reading "
                                       f"{_cite(gross['source'])}) is treated with percutaneous cement augmentation "
                                       f"{_cite(pain['source'])}.")
    return "none", text + "without mechanical pain or gross instability no procedure is indicated on mechanical grounds."


def _systemic(patient: dict, prognosis: PrognosisScore, rules: dict):
    min_score, max_ecog = rules["fit_min_tokuhashi"], rules["fit_max_ecog"]
    good_prognosis = prognosis.total >= min_score["value"]
    able = patient["ecog"] <= max_ecog["value"]
    fit = good_prognosis and able
    visceral = patient["visceral_metastases_status"]
    finding = (f"ECOG {patient['ecog']} (KPS {patient['kps']}), {patient['systemic_disease']} systemic disease, "
               f"visceral metastases {visceral}, revised Tokuhashi {prognosis.total} ({prognosis.survival})")
    why = (f"fit for surgery needs an expected survival of at least 6 months (revised Tokuhashi >= {min_score['value']}, "
           f"'palliative surgery') {_cite(min_score['source'])} and ECOG <= {max_ecog['value']} (a teaching assumption: "
           f"the reference gives no performance-status cut-off) {_cite(max_ecog['source'])}")
    failed = [text for ok, text in ((good_prognosis, f"Tokuhashi {prognosis.total} < {min_score['value']}"),
                                    (able, f"ECOG {patient['ecog']} > {max_ecog['value']}")) if not ok]
    if fit:
        decision, why = "fit for surgery", why + "; both hold."
    else:
        decision = "not fit for surgery: least invasive effective option"
        why += (f"; {' and '.join(failed)}, so the least invasive effective option, short-course cEBRT "
                f"{_cite('laufer2013_noms')}.")
    sources = (min_score["source"], max_ecog["source"], "laufer2013_noms")
    return NomsPart("systemic", finding, decision, f"{finding}: {why}", sources), fit, good_prognosis


def _summary(surgery: str, mechanical: str, radiotherapy: str, reirradiation: bool, short_course: bool,
             systemic_therapy: str | None) -> str:
    steps = []
    if surgery != "none":
        steps.append({"separation": "Separation surgery", "decompression": "Decompression"}[surgery]
                     + (" + stabilisation" if mechanical == "stabilisation" else ""))
    elif mechanical != "none":
        steps.append({"stabilisation": "Stabilisation", "augmentation": "Cement augmentation"}[mechanical])
    rt = {"cebrt": "cEBRT", "sbrt": "SBRT"}[radiotherapy]
    rt = ("short-course " + rt) if short_course else (rt + " re-irradiation") if reirradiation else rt
    line = f"{steps[0]}, then {rt}" if steps else (rt[0].upper() + rt[1:] if rt.startswith("short") else rt)
    if systemic_therapy:
        return f"{line} + systemic therapy"
    return line if steps else f"{line} alone"


def noms(scene: Scene, case, *, escc: EsccMeasurement | None = None, sins_score: SinsScore | None = None,
         prognosis: PrognosisScore | None = None) -> NomsAssessment:
    """The NOMS recommendation (Laufer 2013) for a scene and its case, from the rules.

    The rules, in order (cut-offs and rule texts in ``planner/clinical/data/scores.toml``):

    * Neurologic: the ESCC grade measured on the scene (never the case file's), low 0-1b,
      intermediate 1c, high 2-3 (bilsky2010_escc); 1c with a cord/cauda deficit counts as
      high (teaching assumption). Frankel A-B for more than 48 h is an established deficit:
      no decompression (patchell2005).
    * Oncologic: radiosensitivity from ``scenes/data/histology.toml``; moderately sensitive
      (breast, prostate) grouped with radiosensitive (laufer2013_noms, unverified); prior
      radiotherapy (in-field failure) -> re-irradiation SBRT (teaching scenario 9).
    * Mechanical: SINS >= 13 -> stabilisation; 7-12 -> stabilisation with gross instability
      (subluxation, de novo deformity or > 50% collapse: a teaching assumption), else cement
      augmentation for mechanical pain in a diseased body unless the cord is compressed
      (ESCC 2-3, teaching assumption), else none; < 7 -> none (fisher2010_sins,
      laufer2013_noms). Separation surgery includes stabilisation (laufer2013_jns); an unfit
      patient gets neither.
    * Systemic: fit for surgery when revised Tokuhashi >= 9 (tokuhashi2005) and ECOG <= 2
      (teaching assumption); unfit -> no surgery, short-course cEBRT (laufer2013_noms).

    Decision: high-grade compression in a radioresistant tumour of a fit patient without an
    established deficit -> separation surgery, then SBRT; the same without surgery -> cEBRT;
    radiosensitive -> cEBRT; otherwise (low grade, radioresistant) -> SBRT; prior RT -> SBRT
    re-irradiation; unfit -> short-course cEBRT unless SBRT is the non-invasive answer anyway
    (low grade, radioresistant, survival >= 6 months).

    Parameters
    ----------
    scene : Scene
        The phantom (or imported) scene: ESCC grade and SINS are measured on it.
    case : scenes.cases.Case
        The patient (histology, neurology, Frankel grade and deficit duration, ECOG/KPS,
        metastases, prior radiotherapy); the scene's clinical record takes precedence.
    escc : scenes.escc.EsccMeasurement, optional
        The ESCC grade already measured on this scene (default: measured now).
    sins_score : SinsScore, optional
        The SINS already measured on this scene (default: :func:`sins`).
    prognosis : PrognosisScore, optional
        The revised Tokuhashi score of the case on this scene (default: :func:`tokuhashi`).

    Returns
    -------
    NomsAssessment
        The four parts with their findings, decisions and reasons, the machine-readable
        decision (radiotherapy, surgery, mechanical, systemic therapy, re-irradiation, short
        course), the measurements used and a one-line summary.

    Examples
    --------
    >>> from scenes.cases import build_scene, load_case
    >>> case = load_case("l2_rcc_escc1a")
    >>> result = noms(build_scene(case, spacing_mm=(2.5, 2.5, 2.5), supersample=2), case)
    >>> result.summary, result.radiotherapy, result.surgery, result.mechanical
    ('SBRT alone', 'sbrt', 'none', 'none')
    >>> result.neurologic_part.finding
    'ESCC 1a (low grade, measured on the scene), intact, Frankel E'
    """
    tables = score_tables()["noms"]
    patient = patient_record(case, scene)
    escc = escc if escc is not None else measure_escc_grade(scene)
    sins_score = sins_score if sins_score is not None else sins(scene)
    prognosis = prognosis if prognosis is not None else tokuhashi(case, scene)

    neurologic_part, group, compression, established = _neurologic(escc, patient, tables["neurologic"])
    oncologic_part, sensitivity, sensitive, systemic_therapy = _oncologic(patient, tables["oncologic"])
    systemic_part, fit, good_prognosis = _systemic(patient, prognosis, tables["systemic"])
    body_diseased = scene.lesion is None or "body" in scene.lesion.sites
    indicated, mechanical_why = _mechanical_indication(sins_score, tables["mechanical"], body_diseased, escc.grade)

    decompress = compression and not sensitive
    surgery = "separation" if decompress and fit and not established else "none"
    reirradiation = bool(patient.get("prior_radiotherapy"))
    if reirradiation:
        radiotherapy = "sbrt"
    elif not good_prognosis or sensitive or (decompress and surgery == "none"):
        radiotherapy = "cebrt"
    else:
        radiotherapy = "sbrt"
    short_course = radiotherapy == "cebrt" and not fit

    rules = tables["mechanical"]
    if surgery == "separation":
        mechanical = "stabilisation"
        mechanical_why += (" Separation surgery includes posterior pedicle-screw stabilisation "
                           f"{_cite(rules['separation_includes_stabilisation']['source'])}.")
    elif not fit:
        mechanical = "none"
        if indicated != "none":
            mechanical_why += (f" {indicated.capitalize()} is not offered: the systemic status calls for the least "
                               f"invasive effective option {_cite('laufer2013_noms')}.")
    else:
        mechanical = indicated
    score = sins_score
    finding = f"SINS {score.total} ({score.category.replace('_', ' ')}), {score.components['pain'][0]} pain"
    decision = {"none": "no mechanical procedure", "stabilisation": "stabilisation",
                "augmentation": "cement augmentation"}[mechanical]
    mechanical_part = NomsPart("mechanical", finding, decision, f"{finding}: {mechanical_why}",
                               (score.source, "laufer2013_noms"))
    summary = _summary(surgery, mechanical, radiotherapy, reirradiation, short_course, systemic_therapy)
    return NomsAssessment(
        case_id=getattr(case, "id", ""), neurologic_part=neurologic_part, oncologic_part=oncologic_part,
        mechanical_part=mechanical_part, systemic_part=systemic_part, radiotherapy=radiotherapy, surgery=surgery,
        mechanical=mechanical, systemic_therapy=systemic_therapy, reirradiation=reirradiation, short_course=short_course,
        mechanical_indicated=indicated,
        surgical_consult=sins_score.total >= int(score_tables()["sins"]["surgical_consult_threshold"]),
        escc=escc, escc_group=group, radiosensitivity=sensitivity,
        treated_as_radiosensitive=sensitive, established_deficit=established, fit_for_surgery=fit,
        sins_score=sins_score, prognosis=prognosis, summary=summary, source=tables["source"])
