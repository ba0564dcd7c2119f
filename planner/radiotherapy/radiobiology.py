"""Linear-quadratic radiobiology: BED, EQD2, re-irradiation budgets, LKB NTCP.

Formulas (project reference, radiobiology.formulas): BED = n d (1 + d / (alpha/beta)),
EQD2 = BED / (1 + 2 / (alpha/beta)). Parameters come from ``planner/radiotherapy/protocols/radiobiology.toml``.
The LQ model is an extrapolation above ~8-10 Gy per fraction; results for single fractions
of 16 Gy or more carry that warning.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

from .protocols import protocol_tables, read_table

__all__ = ["bed", "eqd2", "dose_per_fraction_for_eqd2", "alpha_beta", "reirradiation_budget", "lkb_ntcp",
           "myelopathy_band", "parameters", "lq_extrapolation_warning"]


def parameters() -> dict:
    """The radiobiology table (``planner/radiotherapy/protocols/radiobiology.toml``).

    Returns
    -------
    dict
        The parsed table (``alpha_beta_gy``, ``reirradiation``, ``lkb_spinal_cord``,
        ``myelopathy_sbrt``, ``lq_validity``, ...), each figure with its source. Cached: treat
        as read-only.
    """
    return read_table("radiobiology")


def alpha_beta(tissue: str) -> float:
    """The alpha/beta ratio of a tissue (radiobiology.toml [alpha_beta_gy]).

    Parameters
    ----------
    tissue : str
        A tissue of the table, e.g. 'tumour', 'spinal_cord', 'thecal_sac'; an unknown
        tissue raises KeyError naming the known ones.

    Returns
    -------
    float
        alpha/beta in Gy.
    """
    table = parameters()["alpha_beta_gy"]
    if tissue not in table:
        raise KeyError(f"no alpha/beta for {tissue!r}; known: {', '.join(table)}")
    return float(table[tissue]["value"])


def _check(total_gy, fractions, alpha_beta_gy):
    if not (isinstance(fractions, (int, np.integer)) and fractions >= 1):
        raise ValueError(f"fractions must be a positive integer, got {fractions!r}")
    if not alpha_beta_gy > 0:
        raise ValueError(f"alpha_beta_gy must be > 0, got {alpha_beta_gy}")
    if np.any(np.asarray(total_gy) < 0):
        raise ValueError("dose must be >= 0 Gy")


def bed(total_gy, fractions: int, alpha_beta_gy: float):
    """Biologically effective dose of ``total_gy`` in ``fractions`` equal fractions (array-safe).

    BED = n d (1 + d / (alpha/beta)) with d = total / n.

    Parameters
    ----------
    total_gy : float or array_like of float
        Total physical dose (Gy), >= 0 everywhere (ValueError otherwise).
    fractions : int
        Number of equal fractions, a positive integer (ValueError otherwise).
    alpha_beta_gy : float
        The tissue's alpha/beta (Gy), > 0 (ValueError otherwise), e.g. from
        :func:`alpha_beta`.

    Returns
    -------
    float or numpy.ndarray
        BED (Gy); a float for a scalar dose, else an array of the dose's shape.

    Examples
    --------
    >>> round(bed(24.0, 2, 10.0), 1)
    52.8
    """
    _check(total_gy, fractions, alpha_beta_gy)
    total = np.asarray(total_gy, float)
    result = total * (1 + total / fractions / alpha_beta_gy)
    return float(result) if result.ndim == 0 else result


def eqd2(total_gy, fractions: int, alpha_beta_gy: float):
    """Equivalent dose in 2 Gy fractions (nBED).

    EQD2 = BED / (1 + 2 / (alpha/beta)).

    Parameters
    ----------
    total_gy : float or array_like of float
        Total physical dose (Gy), >= 0 everywhere (ValueError otherwise).
    fractions : int
        Number of equal fractions, a positive integer (ValueError otherwise).
    alpha_beta_gy : float
        The tissue's alpha/beta (Gy), > 0 (ValueError otherwise), e.g. from
        :func:`alpha_beta`.

    Returns
    -------
    float or numpy.ndarray
        EQD2 (Gy); a float for a scalar dose, else an array of the dose's shape.

    Examples
    --------
    >>> round(eqd2(30.0, 10, 2.0), 1)
    37.5
    """
    result = np.asarray(bed(total_gy, fractions, alpha_beta_gy)) / (1 + 2 / alpha_beta_gy)
    return float(result) if result.ndim == 0 else result


def dose_per_fraction_for_eqd2(eqd2_gy: float, fractions: int, alpha_beta_gy: float) -> float:
    """Dose per fraction whose ``fractions`` give ``eqd2_gy`` (inverse of :func:`eqd2`).

    Parameters
    ----------
    eqd2_gy : float
        Wanted EQD2 (Gy), >= 0 (ValueError otherwise).
    fractions : int
        Number of equal fractions, a positive integer (ValueError otherwise).
    alpha_beta_gy : float
        The tissue's alpha/beta (Gy), > 0 (ValueError otherwise), e.g. from
        :func:`alpha_beta`.

    Returns
    -------
    float
        Dose per fraction (Gy); multiply by ``fractions`` for the total.
    """
    _check(eqd2_gy, fractions, alpha_beta_gy)
    target_bed = eqd2_gy * (1 + 2 / alpha_beta_gy)
    # n d (1 + d / ab) = BED  ->  d = ab/2 (sqrt(1 + 4 BED / (n ab)) - 1)
    return alpha_beta_gy / 2 * (math.sqrt(1 + 4 * target_bed / (fractions * alpha_beta_gy)) - 1)


def reirradiation_budget(prior_total_gy: float, prior_fractions: int, months_since: float, fractions: int) -> dict:
    """Allowed thecal-sac point maximum for re-irradiation SBRT (Sahgal 2012 rules).

    Returns the SBRT EQD2 budget min(SBRT cap, cumulative cap - prior, share rule) and the
    physical point maximum for ``fractions``, with a warning if the interval is too short.

    Parameters
    ----------
    prior_total_gy : float
        Total dose (Gy) of the prior course, >= 0.
    prior_fractions : int
        Fractions of the prior course, a positive integer.
    months_since : float
        Months since the prior course; below the table's ``min_interval_months`` the result
        carries a warning.
    fractions : int
        Fractions of the planned SBRT course, a positive integer.

    Returns
    -------
    dict
        ``prior_eqd2_gy`` (the prior course's EQD2 at the thecal sac's alpha/beta),
        ``sbrt_eqd2_gy`` (the budget, >= 0), ``pmax_gy`` (the physical point maximum in
        ``fractions``, Gy), ``fractions``, ``source`` and ``warning`` (str or None).

    Examples
    --------
    >>> budget = reirradiation_budget(30.0, 10, 9.0, 2)
    >>> round(budget["prior_eqd2_gy"], 1), round(budget["sbrt_eqd2_gy"], 1), round(budget["pmax_gy"], 1)
    (37.5, 25.0, 12.3)
    """
    rules = parameters()["reirradiation"]
    ab = alpha_beta("thecal_sac")
    prior = eqd2(prior_total_gy, prior_fractions, ab)
    share = rules["sbrt_share_of_cumulative_max"]
    # SBRT <= share x (prior + SBRT)  ->  SBRT <= share / (1 - share) x prior
    by_share = share / (1 - share) * prior if share < 1 else math.inf
    allowed = max(0.0, min(rules["sbrt_thecal_sac_pmax_eqd2_gy"], rules["cumulative_thecal_sac_pmax_eqd2_gy"] - prior, by_share))
    d = dose_per_fraction_for_eqd2(allowed, fractions, ab) if allowed > 0 else 0.0
    warning = None
    if months_since < rules["min_interval_months"]:
        warning = f"interval {months_since:g} months is under the {rules['min_interval_months']:g} months of Sahgal 2012"
    return {"prior_eqd2_gy": prior, "sbrt_eqd2_gy": allowed, "pmax_gy": d * fractions, "fractions": fractions,
            "source": rules["source"], "warning": warning}


def lkb_ntcp(dose_gy: np.ndarray, volume_cc: np.ndarray, fractions: int) -> dict:
    """Lyman-Kutcher-Burman NTCP of the spinal cord from its dose distribution.

    Doses are converted to EQD2 (alpha/beta 2), reduced to gEUD with a = 1/n, and
    NTCP = Phi((gEUD - TD50) / (m TD50)). Burman 1991 parameters; known to over-predict
    after radiosurgery (Daly 2012): the result says so.

    Parameters
    ----------
    dose_gy : numpy.ndarray
        Physical dose (Gy) of the cord's voxels, >= 0.
    volume_cc : numpy.ndarray
        Their volumes (cc), same length (e.g. :class:`~planner.radiotherapy.metrics.StructureDose`).
    fractions : int
        Number of fractions, a positive integer.

    Returns
    -------
    dict
        ``ntcp`` (probability 0..1), ``geud_gy`` (gEUD of the EQD2 doses, Gy), ``source`` and
        ``note``; NaN figures and the note 'empty structure' when there is no volume.
    """
    p = parameters()["lkb_spinal_cord"]
    dose = eqd2(np.asarray(dose_gy, float), fractions, alpha_beta("spinal_cord"))
    weights = np.asarray(volume_cc, float)
    if dose.size == 0 or weights.sum() <= 0:
        return {"ntcp": float("nan"), "geud_gy": float("nan"), "source": p["source"], "note": "empty structure"}
    a = 1.0 / p["n"]
    geud = float((np.sum(weights * dose**a) / weights.sum()) ** (1 / a))
    t = (geud - p["td50_gy"]) / (p["m"] * p["td50_gy"])
    return {"ntcp": float(ndtr(t)), "geud_gy": geud, "source": p["source"], "note": p["note"]}


def myelopathy_band(pmax_gy: float, fractions: int) -> dict:
    """Risk band of radiation myelopathy from the thecal-sac/cord point maximum (de novo SBRT).

    The point maximum's EQD2 (thecal-sac alpha/beta) is compared with the HyTEC 5% point:
    for 1-5 fractions the tabulated point maximum of that many fractions, beyond 5 the
    iso-EQD2 line through them (``eqd2_at_5pct_gy``).

    Parameters
    ----------
    pmax_gy : float
        Point maximum (Gy) of the thecal sac (or cord), >= 0.
    fractions : int
        Number of fractions, a positive integer.

    Returns
    -------
    dict
        ``pmax_eqd2_gy``, ``band`` ('<= 5%' or '> 5%'), ``source``, ``note`` and ``warning``
        (the LQ-extrapolation warning of :func:`lq_extrapolation_warning`, or None).
    """
    p = parameters()["myelopathy_sbrt"]
    value = eqd2(pmax_gy, fractions, alpha_beta("thecal_sac"))
    # The tabulated 5% points (1-5 fractions) are used as they are; beyond 5 fractions the
    # iso-EQD2 line through them.
    limit = eqd2(_tabulated_5pct_pmax(fractions), fractions, alpha_beta("thecal_sac")) if fractions <= 5 else p["eqd2_at_5pct_gy"]
    band = "<= 5%" if value <= limit + 1e-9 else "> 5%"
    warning = lq_extrapolation_warning(pmax_gy, fractions)
    return {"pmax_eqd2_gy": value, "band": band, "source": p["source"], "note": p["note"], "warning": warning}


def lq_extrapolation_warning(total_gy: float, fractions: int) -> str | None:
    """The warning for a single fraction at or above the LQ model's validity, or None.

    The threshold is radiobiology.toml [lq_validity] single_fraction_extrapolated_from_gy.

    Parameters
    ----------
    total_gy : float
        Total dose (Gy) of the course.
    fractions : int
        Number of fractions; only single fractions (1) can be warned about.

    Returns
    -------
    str or None
        The warning with its source key, or None when the LQ model applies.

    Examples
    --------
    >>> lq_extrapolation_warning(18.0, 1)
    'single fraction >= 16 Gy: the LQ model is extrapolated (reference_radiobiology_formulas)'
    >>> lq_extrapolation_warning(24.0, 2) is None
    True
    """
    entry = parameters()["lq_validity"]["single_fraction_extrapolated_from_gy"]
    if fractions == 1 and total_gy >= entry["value"]:
        return f"single fraction >= {entry['value']:g} Gy: the LQ model is extrapolated ({entry['source']})"
    return None


def _tabulated_5pct_pmax(fractions: int) -> float:
    # Read from the HyTEC table itself (not through the constraint checker, which builds on
    # this module).
    rows = [row for row in protocol_tables()["hytec"]["rows"] if row["structure"] == "thecal_sac" and row["metric"] == "Dmax"]
    return float(rows[0]["limits"][str(fractions)])
