"""Estimates of what the radiation does: local control (by delivered dose and histology),
radiation myelopathy, vertebral compression fracture, pain response and retreatment.

Each returns an :class:`planner.clinical.outcomes.Estimate` from the figures of
``planner/clinical/data/outcomes.toml``, kept within the population of the trial or cohort
behind it; nothing here is a clinical number. Teaching and research only, not for clinical use.
"""

from __future__ import annotations

import math

import numpy as np

from planner.radiotherapy.radiobiology import alpha_beta, bed, eqd2

from .outcomes import Estimate, outcome_tables

__all__ = ["local_control", "myelopathy_risk", "fracture_risk", "isotonic_fit", "pain_response", "retreatment"]


# --------------------------------------------------------------------------------------------
# Local control
# --------------------------------------------------------------------------------------------
def local_control(*, setting: str, fractions: int, gtv_d95_gy: float | None, escc_grade: str,
                  radiosensitivity: str, histology: str | None = None) -> Estimate:
    """1-year local control of a radiotherapy course.

    ``setting`` is 'postoperative' (SBRT after separation surgery), 'de_novo' (SBRT alone) or
    'conventional' (cEBRT). The first cohort of ``outcomes.toml`` whose setting, fraction
    range, ESCC grades and histology class fit, and whose dose floor (BED10 of its lowest
    regimen) the delivered GTV D95 reaches, gives the figure.

    Parameters
    ----------
    setting : str
        'postoperative', 'de_novo' or 'conventional' (ValueError otherwise).
    fractions : int
        Fractions of the course, a positive integer.
    gtv_d95_gy : float or None
        Delivered GTV D95 (Gy), converted to BED with the tumour's alpha/beta; None or
        non-finite gives no estimate.
    escc_grade : str
        ESCC grade measured on the pre-treatment scene: '0', '1a', '1b', '1c', '2' or '3'.
    radiosensitivity : str
        The histology's class: 'radiosensitive', 'moderately_sensitive' or 'radioresistant'
        (:func:`planner.clinical.strategies.radiosensitivity_of`).
    histology : str, optional
        The histology; cohorts of one histology (e.g. myeloma) apply only to it.

    Returns
    -------
    Estimate
        Local control (%) at 1 year with its cohort, or a None value saying why none applies.

    Examples
    --------
    >>> local_control(setting="postoperative", fractions=3, gtv_d95_gy=27.0, escc_grade="2",
    ...               radiosensitivity="radioresistant").value
    95.9
    >>> local_control(setting="postoperative", fractions=3, gtv_d95_gy=18.0, escc_grade="2",
    ...               radiosensitivity="radioresistant").value
    77.4
    """
    if setting not in ("postoperative", "de_novo", "conventional"):
        raise ValueError(f"setting must be 'postoperative', 'de_novo' or 'conventional', got {setting!r}")
    if gtv_d95_gy is None or not math.isfinite(gtv_d95_gy):
        return Estimate(None, "%", "no GTV dose: local control not estimated")
    delivered = float(bed(max(gtv_d95_gy, 0.0), fractions, alpha_beta("tumour")))
    for row in outcome_tables()["local_control"]:
        low, high = row["fractions"]
        if row["setting"] != setting or not low <= fractions <= high:
            continue
        if "escc" in row and escc_grade not in row["escc"]:
            continue
        if "radiosensitivity" in row and radiosensitivity not in row["radiosensitivity"]:
            continue
        if "histology" in row and histology not in row["histology"]:
            continue
        if delivered + 1e-9 < row["min_bed10_gy"]:
            continue
        basis = (f"delivered GTV D95 {gtv_d95_gy:.1f} Gy in {fractions} fx (BED10 {delivered:.1f} Gy) -> "
                 f"cohort '{row['id']}': {row['note']}")
        return Estimate(float(row["local_control_pct"]), "%", basis, row["source"], bool(row["verified"]),
                        row["horizon"])
    return Estimate(None, "%", f"no cohort in the reference for {setting} treatment in {fractions} fractions")


# --------------------------------------------------------------------------------------------
# Myelopathy
# --------------------------------------------------------------------------------------------
def _logistic(dose: float, d50: float, slope: float) -> float:
    return 1.0 / (1.0 + math.exp(-slope * (dose - d50)))


def myelopathy_risk(*, pmax_gy: float, fractions: int, stereotactic: bool, prior_course: dict | None = None,
                    cauda: bool = False) -> Estimate:
    """Radiation myelopathy risk from the cord (or thecal-sac) point maximum.

    Conventional courses: a logistic in the cord maximum EQD2 (alpha/beta 0.87) fixed by
    Schultheiss' D50 and 5% dose (``pmax_gy`` is the spinal cord's). Stereotactic courses: an
    *illustrative* logistic in the thecal-sac Pmax EQD2 (alpha/beta 2) through Sahgal 2013's
    5% point, with the same slope. With a ``prior_course`` (``{"dose_gy", "fractions"}``) the
    course is judged by Sahgal 2012's re-irradiation rule instead (cumulative Pmax nBED, and
    for SBRT its own cap and share): the reference gives the rule, not a risk curve, so the
    value is None and the basis says within or beyond. Below the conus (``cauda``) no model
    applies.

    Parameters
    ----------
    pmax_gy : float
        Point maximum (Gy): the thecal sac's for stereotactic courses, the spinal cord's for
        conventional ones; NaN or negative gives no estimate.
    fractions : int
        Fractions of the course, a positive integer.
    stereotactic : bool
        SBRT (True) or conventional RT (False).
    prior_course : dict, optional
        A previous course to the same cord: ``{"dose_gy": total Gy, "fractions": int}``.
    cauda : bool, default False
        The lesion is below the conus (the cauda equina is at risk, not the cord).

    Returns
    -------
    Estimate
        Risk (%) at any time, or None with the reason (re-irradiation rule, cauda, no dose).

    Examples
    --------
    >>> round(myelopathy_risk(pmax_gy=17.0, fractions=2, stereotactic=True).value, 1)
    5.0
    """
    table = outcome_tables()["myelopathy"]
    conventional = table["conventional"]
    slope = math.log(19.0) / (conventional["d50_eqd2_gy"] - conventional["d5_eqd2_gy"])
    if cauda:
        return Estimate(None, "%", "below the conus: the cauda equina has no myelopathy (NTCP) model in the reference")
    if not math.isfinite(pmax_gy) or pmax_gy < 0:
        return Estimate(None, "%", "no cord dose: myelopathy risk not estimated")
    if stereotactic:
        model = table["stereotactic"]
        dose = float(eqd2(pmax_gy, fractions, model["alpha_beta_gy"]))
        if prior_course:
            return _reirradiation(dose, prior_course, model["alpha_beta_gy"])
        d50 = model["eqd2_at_5pct_gy"] + math.log(19.0) / slope
        basis = (f"Pmax {pmax_gy:.1f} Gy in {fractions} fx = EQD2 {dose:.1f} Gy (alpha/beta {model['alpha_beta_gy']:g}); "
                 f"{model['label']}")
        return Estimate(100.0 * _logistic(dose, d50, slope), "%", basis, model["source"], False, "any time")
    ab = conventional["alpha_beta_gy"]
    if prior_course:
        # A second conventional course is judged by the cumulative rule too (Sahgal's thecal-sac alpha/beta).
        rule_ab = alpha_beta("thecal_sac")
        return _reirradiation(float(eqd2(pmax_gy, fractions, rule_ab)), prior_course, rule_ab, stereotactic=False)
    dose = float(eqd2(pmax_gy, fractions, ab))
    basis = f"cord maximum {pmax_gy:.1f} Gy in {fractions} fx = EQD2 {dose:.1f} Gy (alpha/beta {ab:g}); {conventional['model']}"
    return Estimate(100.0 * _logistic(dose, conventional["d50_eqd2_gy"], slope), "%", basis,
                    conventional["source"], bool(conventional["verified"]), "any time")


def _reirradiation(course_eqd2_gy: float, prior_course: dict, alpha_beta_gy: float, *, stereotactic: bool = True) -> Estimate:
    """Sahgal 2012's re-irradiation rule (cumulative Pmax nBED; for SBRT also its own cap and
    share); the reference gives the rule, not a risk curve, so the value is None."""
    from planner.radiotherapy.radiobiology import parameters

    rules = parameters()["reirradiation"]
    prior = float(eqd2(prior_course["dose_gy"], prior_course["fractions"], alpha_beta_gy))
    total = course_eqd2_gy + prior
    within = total <= rules["cumulative_thecal_sac_pmax_eqd2_gy"] + 1e-6
    rule = f"cumulative {total:.1f} Gy2/2 with the prior course (rule <= {rules['cumulative_thecal_sac_pmax_eqd2_gy']:g})"
    if stereotactic:
        within = within and (course_eqd2_gy <= rules["sbrt_thecal_sac_pmax_eqd2_gy"] + 1e-6
                             and course_eqd2_gy <= rules["sbrt_share_of_cumulative_max"] * total + 1e-6)
        rule = (f"SBRT thecal-sac Pmax {course_eqd2_gy:.1f} Gy2/2 (rule <= {rules['sbrt_thecal_sac_pmax_eqd2_gy']:g}, "
                f"share of the cumulative <= {rules['sbrt_share_of_cumulative_max']:g}), " + rule)
    else:
        rule = f"cord maximum {course_eqd2_gy:.1f} Gy2/2 this course, " + rule
    basis = ("re-irradiation: " + rule + ": "
             + ("within Sahgal 2012's safe limits" if within else "BEYOND Sahgal 2012's safe limits")
             + "; the reference gives no risk curve for re-irradiation")
    return Estimate(None, "%", basis, rules["source"], bool(rules["verified"]), "any time")


# --------------------------------------------------------------------------------------------
# Vertebral compression fracture
# --------------------------------------------------------------------------------------------
def isotonic_fit(x, y) -> tuple[np.ndarray, np.ndarray]:
    """Non-decreasing least-squares fit of ``y`` on ``x`` (pool adjacent violators).

    Parameters
    ----------
    x : array_like of float
        Abscissae (any order; equal values are pooled).
    y : array_like of float
        Observations, same length as ``x``.

    Returns
    -------
    x : numpy.ndarray
        The sorted distinct ``x``.
    fitted : numpy.ndarray
        The fitted, non-decreasing values there.

    Examples
    --------
    >>> isotonic_fit([1, 2, 3], [1.0, 3.0, 2.0])[1].tolist()
    [1.0, 2.5, 2.5]
    """
    order = np.argsort(np.asarray(x, float), kind="stable")
    xs, ys = np.asarray(x, float)[order], np.asarray(y, float)[order]
    blocks = []  # [sum, count, x-values]
    for xv, yv in zip(xs, ys):
        blocks.append([yv, 1, [xv]])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count, xv_list = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
            blocks[-1][2] += xv_list
    fitted = {}
    for total, count, xv_list in blocks:
        for xv in xv_list:
            fitted[xv] = total / count
    distinct = np.array(sorted(fitted))
    return distinct, np.array([fitted[v] for v in distinct])


def fracture_risk(*, dose_per_fraction_gy: float, stereotactic: bool, lytic: bool, baseline_collapse_pct: float = 0.0,
                  body_involved_over_50: bool = False, deformity: bool = False, instrumented: bool = False,
                  augmented: bool = False) -> Estimate:
    """Vertebral compression fracture (new or progressive) after radiotherapy.

    The population figure at the prescription's dose per fraction (a non-decreasing fit
    through the single-regimen SBRT series, or the conventional arm) is raised by the
    patient's risk factors with Sahgal 2013's hazard ratios (lytic tumour, baseline fracture
    under or over 50%, more than half the body involved, deformity), as a subdistribution
    hazard: ``1 - (1 - risk)^(product of HRs)``. Posterior instrumentation and cement take
    some factors away (outcomes.toml [fracture.procedures], teaching assumptions).

    Parameters
    ----------
    dose_per_fraction_gy : float
        Prescription dose per fraction (Gy); for SBRT it must lie within the series' range
        (else the value is None).
    stereotactic : bool
        SBRT (the fit) or conventional RT (the conventional arm's figure).
    lytic : bool
        The tumour is lytic.
    baseline_collapse_pct : float, default 0.0
        Loss of the body's height before treatment (%); 0 is no baseline fracture.
    body_involved_over_50 : bool, default False
        More than half of the vertebral body is involved (without a fracture).
    deformity : bool, default False
        The spine is deformed (alignment not normal).
    instrumented : bool, default False
        Screws and rods span the segment.
    augmented : bool, default False
        The body was filled with cement.

    Returns
    -------
    Estimate
        Fracture incidence (%) with the series and factors it rests on, or None with the reason.

    Examples
    --------
    >>> fracture_risk(dose_per_fraction_gy=24.0, stereotactic=True, lytic=False).value
    39.0
    >>> round(fracture_risk(dose_per_fraction_gy=12.0, stereotactic=True, lytic=True).value, 1)
    33.5
    >>> round(fracture_risk(dose_per_fraction_gy=12.0, stereotactic=True, lytic=True, augmented=True).value, 1)
    10.9
    """
    table = outcome_tables()["fracture"]
    ratios, procedures = table["hazard_ratios"], table["procedures"]
    present = {"lytic": lytic, "baseline_fracture_under_50": 0 < baseline_collapse_pct < 50,
               "baseline_fracture_over_50": baseline_collapse_pct >= 50,
               "body_involved_over_50": body_involved_over_50 and baseline_collapse_pct <= 0, "deformity": deformity}
    removed = set()
    if instrumented:
        removed |= set(procedures["instrumentation_neutralises"])
    if augmented:
        removed |= set(procedures["augmentation_neutralises"])
    factors = [name for name, here in present.items() if here and name not in removed]
    hazard = float(np.prod([ratios[name] for name in factors])) if factors else 1.0
    words = ", ".join(f"{name.replace('_', ' ')} HR {ratios[name]:g}" for name in factors)
    treated = [name.replace("_", " ") for name, here in present.items() if here and name in removed]
    also = (f"; risk factors (Sahgal 2013, {ratios['source']}, unverified): {words}" if factors else "; no risk factor of Sahgal 2013")
    if treated:
        also += (f"; taken away by {'instrumentation' if instrumented else ''}{' and ' if instrumented and augmented else ''}"
                 f"{'cement' if augmented else ''}: {', '.join(treated)} (teaching assumption)")

    def raised(risk_pct: float) -> float:
        return 100.0 * (1.0 - (1.0 - risk_pct / 100.0) ** hazard)

    if not stereotactic:
        row = table["conventional"]
        return Estimate(raised(float(row["vcf_pct"])), "%", f"conventional course ({dose_per_fraction_gy:.1f} Gy per "
                        f"fraction): {row['regimen']} arm, {row['note']}{also}", row["source"],
                        bool(row["verified"]) and not factors, row["horizon"])
    series = table["series"]
    x, fitted = isotonic_fit([s["dose_per_fraction_gy"] for s in series], [s["vcf_pct"] for s in series])
    if not x[0] - 1e-9 <= dose_per_fraction_gy <= x[-1] + 1e-9:
        return Estimate(None, "%", f"{dose_per_fraction_gy:.1f} Gy per fraction is outside the SBRT series "
                          f"({x[0]:g}-{x[-1]:g} Gy per fraction){also}")
    value = float(np.interp(dose_per_fraction_gy, x, fitted))
    studies = ", ".join(f"{s['study']} {s['regimen']} {s['vcf_pct']:g}%" for s in series)
    basis = (f"{dose_per_fraction_gy:.1f} Gy per fraction on a non-decreasing fit through {studies} "
             f"(risk rises with dose per fraction, Sahgal 2013: 1-year incidence {table['cumulative_incidence_1yr_pct']}% "
             f"overall){also}")
    return Estimate(raised(value), "%", basis, table["source"], False, "1 year")



def pain_response(*, stereotactic: bool | None, mechanical: bool = False, stabilised: bool = False) -> Estimate:
    """Complete pain response at 3 months (SC.24).

    Parameters
    ----------
    stereotactic : bool or None
        SBRT (True), conventional RT (False), or None for no radiotherapy.
    mechanical : bool, default False
        Mechanical pain or an unstable spine (SINS 13-18): radiation does not relieve it and
        the pain trials excluded it (outcomes.toml [pain.mechanical]).
    stabilised : bool, default False
        Screws or cement treat the mechanical part; the radiotherapy figure then applies.

    Returns
    -------
    Estimate
        Complete response (%) at 3 months; None without radiotherapy, or for mechanical pain
        left unstabilised.
    """
    table = outcome_tables()["pain"]
    if stereotactic is None:
        return Estimate(None, "%", "no radiotherapy: no trial figure for pain response")
    if mechanical and not stabilised:
        rule = table["mechanical"]
        return Estimate(None, "%", rule["note"], rule["source"], bool(rule["verified"]), "3 months")
    value = table["stereotactic_pct"] if stereotactic else table["conventional_pct"]
    after = ("after stabilisation of the mechanical part (teaching assumption: the figure applies to the tumour pain "
             "that remains); " if mechanical else "")
    return Estimate(value, "%", f"{after}{table['metric']}: {table['note']}", table["source"], bool(table["verified"]),
                    "3 months")


def retreatment(*, conventional_fractions: int | None) -> Estimate:
    """Retreatment of the same site after conventional radiotherapy (RTOG 9714).

    Parameters
    ----------
    conventional_fractions : int or None
        Fractions of a conventional course; None for SBRT or no radiotherapy (no figure).

    Returns
    -------
    Estimate
        Retreatment (%) after a single fraction or a multi-fraction course; None otherwise.

    Examples
    --------
    >>> retreatment(conventional_fractions=1).value, retreatment(conventional_fractions=5).value
    (18.0, 9.0)
    """
    table = outcome_tables()["retreatment"]
    if conventional_fractions is None:
        return Estimate(None, "%", "retreatment figures exist only for conventional courses (RTOG 9714)")
    single = conventional_fractions == 1
    value = table["single_fraction_pct"] if single else table["multi_fraction_pct"]
    return Estimate(value, "%", f"{'single' if single else 'multi'}-fraction conventional course: {table['note']}",
                    table["source"], bool(table["verified"]), table["horizon"])
