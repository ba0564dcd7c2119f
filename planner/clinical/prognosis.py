"""Prognostic scores of a case: the revised Tokuhashi score and the Tomita score.

Both are computed from the case's patient table (``scenes/cases.py`` documents the optional
inputs ``kps``, ``extraspinal_bone_metastases``, ``vertebral_metastases`` and
``visceral_metastases_status`` and their defaults); the item tables, the bands and the
mapping of spinesim's histologies to each score's primary-tumour groups come from
``planner/clinical/data/scores.toml`` with their source keys. Where a mapping is a spinesim
teaching assumption (a histology the published table does not name), the score's
``assumptions`` say so. Teaching and research only, not for clinical use.
"""

from __future__ import annotations

from dataclasses import dataclass

from scenes.cases import prognostic_defaults

from .data import read_table

__all__ = ["PrognosisScore", "tokuhashi", "tomita", "score_tables", "patient_record"]


def score_tables() -> dict:
    """Parsed ``planner/clinical/data/scores.toml`` (cached; treat as read-only).

    Returns
    -------
    dict
        The score tables: ``sins``, ``measurement``, ``noms``, ``tokuhashi_revised``,
        ``tomita``, ..., each item with its points and source key.
    """
    return read_table("scores")


@dataclass(frozen=True)
class PrognosisScore:
    """A prognostic score with its parts, its band and what the band means.

    ``components`` maps each item to ``(label, points)``; ``band`` is the band's range as
    text ("9-11"); ``survival`` the band's expected survival as the source words it ("" where
    the source gives none); ``median_survival_months`` a validation figure for the band (None
    where there is none) from ``validation_source``; ``assumptions`` the inputs that are
    defaults or spinesim mappings rather than case data.
    """

    name: str
    total: int
    components: dict
    band: str
    survival: str
    treatment: str
    source: str
    median_survival_months: float | None = None
    validation_source: str = ""
    assumptions: tuple[str, ...] = ()

    def explain(self) -> str:
        """The score in one sentence: total, band, expected survival, treatment and its parts.

        Returns
        -------
        str
            E.g. ``'Revised Tokuhashi 12 (band 12-15, expected survival >= 1 year ...) [source]:
            general condition ... + ...'``, followed by the assumptions when there are any.
        """
        parts = " + ".join(f"{item.replace('_', ' ')} {label} {points}" for item, (label, points) in self.components.items())
        survival = f", expected survival {self.survival}" if self.survival else ""
        median = (f" (median {self.median_survival_months:g} months in {self.validation_source}, unverified)"
                  if self.median_survival_months is not None else "")
        text = f"{self.name} {self.total} (band {self.band}{survival}{median}; {self.treatment}) [{self.source}]: {parts}."
        if self.assumptions:
            text += " Assumptions: " + "; ".join(self.assumptions) + "."
        return text


def patient_record(case, scene=None) -> dict:
    """The case's patient table, with a scene's clinical record taking precedence (a scene
    re-evaluated on a timeline may carry a newer neurological status).

    Prognostic inputs the case does not give (KPS, metastasis counts, visceral status) are
    filled with :func:`scenes.cases.prognostic_defaults`, and their names added to
    ``prognosis_defaults``.

    Parameters
    ----------
    case : scenes.cases.Case
        The patient (its ``patient`` table).
    scene : scenes.scene.Scene, optional
        A scene whose ``clinical`` entries replace the case's entries of the same name (keys
        the case does not have are ignored).

    Returns
    -------
    dict
        A new dict: the patient table with defaults filled in and ``prognosis_defaults`` (a
        tuple of the keys that are defaults rather than case data).
    """
    record = dict(case.patient)
    if scene is not None:
        record.update({key: value for key, value in scene.clinical.items() if key in record})
    defaults = prognostic_defaults(record["ecog"], bool(record.get("visceral_metastases")))
    missing = tuple(key for key in defaults if key not in record)  # a Case built without parse_case
    record = {**defaults, **record}
    record["prognosis_defaults"] = tuple(record.get("prognosis_defaults", ())) + missing
    return record


def _default_notes(patient: dict, items: tuple[str, ...]) -> list[str]:
    notes = {"kps": f"KPS {patient['kps']} derived from ECOG {patient['ecog']} (upper KPS of the approximate mapping)",
             "extraspinal_bone_metastases": f"{patient['extraspinal_bone_metastases']} extraspinal bone metastases",
             "vertebral_metastases": f"{patient['vertebral_metastases']} vertebral metastasis",
             "visceral_metastases_status": f"visceral metastases {patient['visceral_metastases_status']}"}
    used = [notes[key] for key in items if key in patient["prognosis_defaults"]]
    return [f"case defaults: {', '.join(used)}"] if used else []


def _row(rows: list, key: str, value, *, ranged: bool = False) -> dict:
    """The table row whose ``key`` holds ``value``: a [low, high] range when ``ranged``, else a
    list of values or a single value."""
    for row in rows:
        bound = row[key]
        if ranged:
            found = bound[0] <= value <= bound[1]
        else:
            found = value in bound if isinstance(bound, list) else value == bound
        if found:
            return row
    raise ValueError(f"no row of the score table holds {key} = {value!r}")


def _band(rows: list, total: int) -> dict:
    return next(row for row in rows if row["range"][0] <= total <= row["range"][1])


def _histology_group(table: dict, mapping_key: str, what: str, histology: str):
    """The score's group for a histology (scores.toml), or a clear error naming it."""
    mapping = table[mapping_key]
    if histology not in mapping:
        raise ValueError(f"no {what} group for histology {histology!r} in scores.toml")
    return mapping[histology]


def tokuhashi(case, scene=None) -> PrognosisScore:
    """Revised Tokuhashi score (Tokuhashi 2005): six items, 0-15, three survival bands.

    Parameters
    ----------
    case : scenes.cases.Case
        The patient: KPS (default from ECOG), extraspinal bone and vertebral metastasis counts,
        visceral metastases status, histology (primary-site group from scores.toml) and
        Frankel grade.
    scene : scenes.scene.Scene, optional
        Its clinical record takes precedence over the case's (e.g. a later Frankel grade).

    Returns
    -------
    PrognosisScore
        Bands 0-8 (< 6 months), 9-11 (>= 6 months), 12-15 (>= 1 year) with the source's
        treatment text; Zeng 2007's median survival per band as the validation figure.

    Examples
    --------
    >>> from scenes.cases import load_case
    >>> score = tokuhashi(load_case("t10_rcc_escc2"))
    >>> score.total, score.band, score.survival
    (12, '12-15', '>= 1 year')
    """
    table = score_tables()["tokuhashi_revised"]
    patient = patient_record(case, scene)
    histology = patient["histology"]
    group = _histology_group(table, "primary_site_of_histology", "Tokuhashi primary-site", histology)
    rows = {
        "general_condition": _row(table["general_condition_kps"], "kps", patient["kps"], ranged=True),
        "extraspinal_bone_metastases": _row(table["extraspinal_bone_metastases"], "count",
                                            patient["extraspinal_bone_metastases"], ranged=True),
        "vertebral_body_metastases": _row(table["vertebral_body_metastases"], "count", patient["vertebral_metastases"],
                                          ranged=True),
        "internal_organ_metastases": _row(table["major_internal_organ_metastases"], "status",
                                          patient["visceral_metastases_status"]),
        "primary_site": _row(table["primary_site"], "group", group["group"]),
        "palsy": _row(table["palsy_frankel"], "frankel", patient["frankel"]),
    }
    components = {item: (row["label"], int(row["points"])) for item, row in rows.items()}
    total = sum(points for _, points in components.values())
    band = _band(table["bands"], total)
    assumptions = _default_notes(patient, ("kps", "extraspinal_bone_metastases", "vertebral_metastases",
                                           "visceral_metastases_status"))
    if group.get("teaching_assumption"):
        assumptions.append(f"primary site group for {histology.replace('_', ' ')} (a spinesim mapping): "
                           f"{group['note'].rstrip('.')}")
    return PrognosisScore("Revised Tokuhashi", total, components, f"{band['range'][0]}-{band['range'][1]}",
                          band["prognosis"], band["treatment"], table["source"],
                          median_survival_months=float(band["median_survival_months"]),
                          validation_source=table["validation_source"], assumptions=tuple(assumptions))


def tomita(case, scene=None) -> PrognosisScore:
    """Tomita score (Tomita 2001): primary-tumour growth, visceral and bone metastases, 2-10.

    The reference transcribes the table from memory (``verified = false``) and gives no
    survival figures for its bands, only the treatment goal; ``survival`` is empty.

    Parameters
    ----------
    case : scenes.cases.Case
        The patient: histology (growth group from scores.toml; a histology it lacks raises
        ValueError), visceral metastases status, vertebral and extraspinal bone metastasis
        counts (summed).
    scene : scenes.scene.Scene, optional
        Its clinical record takes precedence over the case's.

    Returns
    -------
    PrognosisScore
        Total 2-10 with its band and treatment goal; ``assumptions`` name the defaults and
        mappings used.

    Examples
    --------
    >>> from scenes.cases import load_case
    >>> score = tomita(load_case("t4_nsclc_escc3_paraplegia"))
    >>> score.total, score.treatment
    (9, 'Non-operative supportive care')
    """
    table = score_tables()["tomita"]
    patient = patient_record(case, scene)
    histology = patient["histology"]
    group = _histology_group(table, "growth_of_histology", "Tomita growth", histology)
    bone_count = patient["vertebral_metastases"] + patient["extraspinal_bone_metastases"]
    rows = {
        "primary_tumour_growth": _row(table["primary_tumour_growth"], "group", group["group"]),
        "visceral_metastases": _row(table["visceral_mets"], "status", patient["visceral_metastases_status"]),
        "bone_metastases": _row(table["bone_mets"], "count", bone_count, ranged=True),
    }
    components = {item: (row["label"], int(row["points"])) for item, row in rows.items()}
    total = sum(points for _, points in components.values())
    band = _band(table["bands"], total)
    assumptions = _default_notes(patient, ("extraspinal_bone_metastases", "vertebral_metastases",
                                           "visceral_metastases_status"))
    assumptions.append(f"{bone_count} bone metastases in all: {table['bone_mets_note'].rstrip('.')}")
    if patient["visceral_metastases_status"] != "none":
        assumptions.append(table["visceral_mapping_note"].rstrip("."))
    if group.get("teaching_assumption"):
        assumptions.append(f"growth group for {histology.replace('_', ' ')}: {group['note'].rstrip('.')}")
    return PrognosisScore("Tomita", total, components, f"{band['range'][0]}-{band['range'][1]}", "", band["treatment"],
                          table["source"], assumptions=tuple(assumptions))
