"""Outcome estimates for the strategy scorecard, each with its number, basis and source:
the :class:`Estimate` itself, the outcome tables, walking after treatment, the surgical
risks and the time a strategy takes (what the radiation does is in
:mod:`planner.clinical.radiation_effects`).

Every function takes plain facts (the measured ESCC grade, the histology's radiosensitivity,
the delivered dose metrics, the regimen, what surgery was done) and returns an
:class:`Estimate`: the value (or ``None`` where the literature gives none, with the reason),
its unit and horizon, the source key, whether the figure is verified, and one sentence saying
why this figure applies. The figures live in ``planner/clinical/data/outcomes.toml``; nothing here
is a clinical number. Teaching and research only, not for clinical use.
"""

from __future__ import annotations

from dataclasses import dataclass

from .data import read_table

__all__ = ["Estimate", "outcome_tables", "ambulation", "surgical_risk", "hospital_days", "course_days", "untreated_status",
           "COMPRESSION_GRADES"]


def outcome_tables() -> dict:
    """The outcome figures (``planner/clinical/data/outcomes.toml``; cached, treat as read-only).

    Returns
    -------
    dict
        The parsed table: ``local_control`` cohorts, ``myelopathy``, ``fracture``,
        ``ambulation``, ``pain``, ``surgery``, ``schedule``, ``untreated_course``, ...
    """
    return read_table("outcomes")


COMPRESSION_GRADES = tuple(outcome_tables()["ambulation"]["compression_grades"])


@dataclass(frozen=True)
class Estimate:
    """One outcome figure: ``value`` in ``unit`` (``None`` when no source gives one).

    ``basis`` says in one sentence why this figure applies (or why there is none);
    ``source`` is its source key, ``verified`` whether the figure was checked against the
    source, ``horizon`` when it applies (e.g. '1 year', 'after treatment').
    """

    value: float | None
    unit: str
    basis: str
    source: str | None = None
    verified: bool = False
    horizon: str = ""

    def text(self, digits: int = 0) -> str:
        """Short display form, e.g. ``'95.9%'`` or ``'n/a'``.

        Parameters
        ----------
        digits : int, default 0
            Decimals shown, >= 0.

        Returns
        -------
        str
            The value with its unit ('%' attached, other units after a space), or 'n/a' when
            the value is None.
        """
        if self.value is None:
            return "n/a"
        suffix = "%" if self.unit == "%" else f" {self.unit}"
        return f"{self.value:.{digits}f}{suffix}"

    def as_dict(self) -> dict:
        """The estimate as a plain dict (for JSON).

        Returns
        -------
        dict
            ``value``, ``unit``, ``basis``, ``source``, ``verified`` and ``horizon``.
        """
        return {"value": self.value, "unit": self.unit, "basis": self.basis, "source": self.source,
                "verified": self.verified, "horizon": self.horizon}


def _none(unit: str, basis: str) -> Estimate:
    return Estimate(None, unit, basis)


# --------------------------------------------------------------------------------------------
# Ambulation
# --------------------------------------------------------------------------------------------
def ambulation(*, escc_grade: str, ambulatory: bool, decompressed: bool, treated: bool, radiosensitivity: str,
               conventional_fractions: int | None, paraplegic_hours: float = 0.0, irradiated: bool = True,
               outside_patchell: str | None = None) -> Estimate:
    """Probability of walking after treatment (Patchell 2005; SCORAD for radiosensitive tumours).

    ``decompressed``: the cord was surgically decompressed (separation surgery or
    decompression); ``treated``: any local treatment; ``irradiated``: radiotherapy follows
    (every trial arm had it); ``conventional_fractions``: the cEBRT fractions when the course
    is conventional, else None.

    Parameters
    ----------
    escc_grade : str
        ESCC grade measured on the pre-treatment scene: '0', '1a', '1b', '1c', '2' or '3'. Below
        :data:`COMPRESSION_GRADES` the cord is free and walking status is unchanged.
    ambulatory : bool
        The patient walks at treatment.
    decompressed : bool
        The cord was surgically decompressed.
    treated : bool
        Any local treatment (surgery or radiotherapy).
    radiosensitivity : str
        The histology's class: 'radiosensitive', 'moderately_sensitive' or 'radioresistant'
        (:func:`planner.clinical.strategies.radiosensitivity_of`).
    conventional_fractions : int or None
        Fractions of a conventional (cEBRT) course, None for SBRT or no radiotherapy.
    paraplegic_hours : float, default 0.0
        Hours of complete paraplegia before treatment (beyond the table's window no
        treatment is expected to restore walking).
    irradiated : bool, default True
        Radiotherapy is part of the treatment.
    outside_patchell : str, optional
        Why the patient is outside Patchell's population (expected survival, fitness); the
        decompression arm's figure is then not applied and the RT-alone arm's is, saying so.

    Returns
    -------
    Estimate
        Probability of walking (%) after treatment, or None with the reason.

    Examples
    --------
    >>> ambulation(escc_grade="2", ambulatory=True, decompressed=True, treated=True,
    ...            radiosensitivity="radioresistant", conventional_fractions=None).value
    94.1
    """
    table = outcome_tables()["ambulation"]
    if escc_grade not in COMPRESSION_GRADES:
        value = 100.0 if ambulatory else None
        return Estimate(value, "%", f"ESCC {escc_grade}: the cord is not compressed; walking status unchanged "
                        f"({table['compression_note']})", None, False, "after treatment")
    if not treated:
        return _none("%", f"ESCC {escc_grade} cord compression left untreated: no published figure")
    if not irradiated:
        return _none("%", f"ESCC {escc_grade}: surgery without radiotherapy has no cohort (Patchell's surgical arm "
                          "all received RT)")
    window = table["paraplegia_window"]
    if not ambulatory and paraplegic_hours > window["hours"]:
        row = table["patchell_rt_regained"]
        return Estimate(row["value_pct"], "%", f"paraplegic for {paraplegic_hours:g} h (> {window['hours']} h): "
                        f"{window['note']} The RT-alone rate of regaining walking ({row['derived']}) is the best "
                        "available figure, for every strategy.", row["source"], False, "after treatment")
    if decompressed and radiosensitivity == "radiosensitive":
        # Patchell excluded radiosensitive tumours: no trial shows surgery adding to RT for them.
        key = "scorad_multi"
        why = ("decompression of a radiosensitive tumour: Patchell excluded these histologies, so the "
               "conventional-RT figure (SCORAD) is used and surgery adds nothing")
    elif decompressed and outside_patchell:
        key = "patchell_rt_ambulatory" if ambulatory else "patchell_rt_regained"
        why = f"decompression outside Patchell's population ({outside_patchell}): {outcome_tables()['populations']['patchell']['outside']}"
    elif decompressed:
        key = "patchell_surgery_ambulatory" if ambulatory else "patchell_surgery_regained"
        why = "direct decompression + RT"
    elif radiosensitivity in ("radiosensitive", "moderately_sensitive") and conventional_fractions is not None:
        key = "scorad_single" if conventional_fractions == 1 else "scorad_multi"
        why = "radiosensitive tumour, conventional RT (SCORAD, all histologies)"
    else:
        key = "patchell_rt_ambulatory" if ambulatory else "patchell_rt_regained"
        why = "RT without decompression (Patchell RT-alone arm)"
    row = table[key]
    detail = row.get("derived") or row.get("note", "")
    status = "ambulatory" if ambulatory else "non-ambulatory"
    return Estimate(row["value_pct"], "%", f"ESCC {escc_grade}, {status} at treatment, {why}: {detail}",
                    row["source"], bool(row["verified"]), "after treatment")


# --------------------------------------------------------------------------------------------
# Surgery and time
# --------------------------------------------------------------------------------------------
def surgical_risk(*, open_surgery: bool, rt_start_day: int | None) -> dict:
    """Complication and wound-complication estimates of the surgical part of a strategy.

    Parameters
    ----------
    open_surgery : bool
        The strategy includes open surgery (else both risks are 0%).
    rt_start_day : int or None
        Day radiotherapy starts after surgery (None: no radiotherapy); before the table's
        ``rt_wait_days`` the basis warns of a higher, unquantified wound risk.

    Returns
    -------
    dict
        ``{"complications": Estimate, "wound": Estimate}``, both in %.
    """
    table = outcome_tables()["surgery"]
    if not open_surgery:
        none = Estimate(0.0, "%", "no open surgery", None, True, "")
        return {"complications": none, "wound": none}
    complications = Estimate(table["complication_pct"], "%", "surgery for metastatic cord compression",
                             table["complication_source"], False, "peri-operative")
    early = rt_start_day is not None and rt_start_day < table["rt_wait_days"]
    wound_basis = f"stabilised patients followed by RT (revision {table['wound_revision_pct']}%)"
    if early:
        wound_basis += f"; RT starts on day {rt_start_day} (< {table['rt_wait_days']}): higher wound risk, not quantified"
    wound = Estimate(table["wound_complication_pct"], "%", wound_basis, table["wound_source"], False, "post-operative")
    return {"complications": complications, "wound": wound}


def hospital_days(*, open_surgery: bool) -> Estimate:
    """Days in hospital: the median stay after metastatic spine surgery, else outpatient.

    Parameters
    ----------
    open_surgery : bool
        The strategy includes open surgery.

    Returns
    -------
    Estimate
        Days in hospital (median after surgery; 0 for radiotherapy, a convention).
    """
    table = outcome_tables()["surgery"]
    if not open_surgery:
        return Estimate(0.0, "days", "radiotherapy counted as outpatient treatment (a convention)", None, False, "")
    return Estimate(float(table["hospital_days"]), "days", table["hospital_days_note"], table["hospital_days_source"],
                    True, "median")


def course_days(fractions: int) -> int:
    """Calendar days from the first to the last fraction, one fraction per weekday (a convention).

    Parameters
    ----------
    fractions : int
        Number of fractions, >= 1 (ValueError otherwise).

    Returns
    -------
    int
        Days, counting both ends and the weekends in between.
    """
    per_week = outcome_tables()["schedule"]["fractions_per_week"]
    if fractions < 1:
        raise ValueError(f"fractions must be >= 1, got {fractions}")
    return fractions + 2 * ((fractions - 1) // per_week)


def untreated_status(escc_grade: str, baseline: str) -> str:
    """Neurological status implied by an untreated lesion's ESCC grade (a teaching assumption);
    never better than ``baseline``.

    Parameters
    ----------
    escc_grade : str
        ESCC grade: '0', '1a', '1b', '1c', '2' or '3' (KeyError otherwise).
    baseline : str
        The current neurological status (a case's ``neurology``, or a status this function
        returned); 'cauda_equina_syndrome' counts as 'myelopathy', 'paraplegia' as
        'non_ambulatory', an unknown status as 'intact'.

    Returns
    -------
    str
        'intact', 'radiculopathy', 'myelopathy' or 'non_ambulatory': the worse of the
        grade's status (outcomes.toml [untreated_course]) and the baseline.
    """
    order = ("intact", "radiculopathy", "myelopathy", "non_ambulatory")
    mapped = outcome_tables()["untreated_course"]["grade_to_status"][escc_grade]
    base = {"cauda_equina_syndrome": "myelopathy", "paraplegia": "non_ambulatory"}.get(baseline, baseline)
    base = base if base in order else "intact"
    return max(mapped, base, key=order.index)
