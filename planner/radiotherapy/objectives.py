"""Objective terms on the dose of the influence matrix's rows, each with value and gradient.

A term sees the dose ``d`` (Gy) of all rows and uses its own rows with volume weights
(occupancy x voxel volume, normalised to sum 1). Values are in Gy^2 times the priority;
gradients are with respect to ``d`` (the optimiser chains them through ``A.T``).

Dose-volume terms follow Wu and Mohan (2000): a maximum-DVH term penalises the voxels
between the limit dose and the current dose at the allowed volume; a minimum-DVH term those
between the current dose at the required volume and the limit. Their gradients treat the
penalised set as fixed (exact away from its boundaries).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Term", "Underdose", "Overdose", "SquaredDeviation", "MeanDose", "DoseVolumeMax", "DoseVolumeMin", "total"]


@dataclass(frozen=True, eq=False, kw_only=True)
class Term:
    """One objective term on the rows of the dose vector, built by keyword:
    ``Underdose(rows=..., weights=..., dose_gy=..., priority=..., label=...)``.

    ``rows`` are indices into the dose vector (a non-empty 1-D array); ``weights`` the rows'
    volume weights (same length, >= 0 with a positive sum; normalised to sum 1);
    ``dose_gy`` the term's dose level (Gy, finite, >= 0); ``priority`` its weight (>= 0);
    ``label`` a name for reports. Anything else raises ValueError.
    """

    rows: np.ndarray = field(repr=False)  # indices into the dose vector
    weights: np.ndarray = field(repr=False)  # volume weights, same length, sum 1
    dose_gy: float
    priority: float = 1.0
    label: str = ""

    def __post_init__(self):
        rows = np.asarray(self.rows, dtype=np.int64)
        weights = np.asarray(self.weights, dtype=float)
        if rows.shape != weights.shape or rows.ndim != 1 or rows.size == 0:
            raise ValueError(f"{type(self).__name__} {self.label!r}: rows and weights must be equal non-empty 1-D arrays")
        if np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError(f"{type(self).__name__} {self.label!r}: weights must be >= 0 with a positive sum")
        if not (np.isfinite(self.dose_gy) and self.dose_gy >= 0) or not self.priority >= 0:
            raise ValueError(f"{type(self).__name__} {self.label!r}: dose_gy and priority must be finite and >= 0")
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "weights", weights / weights.sum())

    def value_and_gradient(self, dose: np.ndarray):  # pragma: no cover - interface
        """The term's value and its gradient with respect to the dose (each subclass defines it).

        Parameters
        ----------
        dose : numpy.ndarray
            Dose (Gy) of every row of the influence matrix (1-D); the term reads its own
            :attr:`rows`.

        Returns
        -------
        value : float
            priority x a weighted squared dose difference (Gy^2), >= 0.
        gradient : numpy.ndarray
            d(value)/d(dose), same shape as ``dose`` (zero outside the term's rows).
        """
        raise NotImplementedError

    def _scatter(self, dose, local_gradient):
        # bincount adds repeated rows correctly and is far faster than np.add.at.
        return np.bincount(self.rows, weights=local_gradient, minlength=dose.shape[0])


class Underdose(Term):
    """priority * sum w (D - d)_+^2: coverage of a target."""

    def value_and_gradient(self, dose):
        """priority * sum w (D - d)_+^2 and its gradient: the rows' shortfall below ``dose_gy``.

        Parameters
        ----------
        dose : numpy.ndarray
            Dose (Gy) of every row of the influence matrix (1-D); the term reads its own
            :attr:`rows`.

        Returns
        -------
        value : float
            The weighted squared underdose (Gy^2) times the priority, >= 0.
        gradient : numpy.ndarray
            d(value)/d(dose), same shape as ``dose`` (zero outside the term's rows).
        """
        short = np.maximum(self.dose_gy - dose[self.rows], 0.0)
        value = self.priority * np.sum(self.weights * short**2)
        return value, self._scatter(dose, -2 * self.priority * self.weights * short)


class Overdose(Term):
    """priority * sum w (d - D)_+^2: a maximum dose (hard limits get a high priority)."""

    def value_and_gradient(self, dose):
        """priority * sum w (d - D)_+^2 and its gradient: the rows' excess above ``dose_gy``.

        Parameters
        ----------
        dose : numpy.ndarray
            Dose (Gy) of every row of the influence matrix (1-D); the term reads its own
            :attr:`rows`.

        Returns
        -------
        value : float
            The weighted squared overdose (Gy^2) times the priority, >= 0.
        gradient : numpy.ndarray
            d(value)/d(dose), same shape as ``dose`` (zero outside the term's rows).
        """
        excess = np.maximum(dose[self.rows] - self.dose_gy, 0.0)
        value = self.priority * np.sum(self.weights * excess**2)
        return value, self._scatter(dose, 2 * self.priority * self.weights * excess)


class SquaredDeviation(Term):
    """priority * sum w (d - D)^2: a uniform dose (both sides penalised), matRad's and PortPy's
    usual target term."""

    def value_and_gradient(self, dose):
        """priority * sum w (d - D)^2 and its gradient.

        Parameters
        ----------
        dose : numpy.ndarray
            Dose (Gy) of every row of the influence matrix (1-D); the term reads its own
            :attr:`rows`.

        Returns
        -------
        value : float
            The weighted squared deviation from ``dose_gy`` (Gy^2) times the priority, >= 0.
        gradient : numpy.ndarray
            d(value)/d(dose), same shape as ``dose`` (zero outside the term's rows).

        Examples
        --------
        >>> import numpy as np
        >>> term = SquaredDeviation(rows=np.array([0, 1]), weights=np.ones(2), dose_gy=2.0)
        >>> value, gradient = term.value_and_gradient(np.array([1.0, 3.0, 7.0]))
        >>> float(value), gradient.tolist()
        (1.0, [-1.0, 1.0, 0.0])
        """
        deviation = dose[self.rows] - self.dose_gy
        return (self.priority * np.sum(self.weights * deviation**2),
                self._scatter(dose, 2 * self.priority * self.weights * deviation))


class MeanDose(Term):
    """priority * (mean - D)_+^2: a maximum mean dose."""

    def value_and_gradient(self, dose):
        """priority * (mean - D)_+^2 and its gradient: the weighted mean's excess above ``dose_gy``.

        Parameters
        ----------
        dose : numpy.ndarray
            Dose (Gy) of every row of the influence matrix (1-D); the term reads its own
            :attr:`rows`.

        Returns
        -------
        value : float
            The squared excess of the mean dose (Gy^2) times the priority, >= 0.
        gradient : numpy.ndarray
            d(value)/d(dose), same shape as ``dose`` (zero outside the term's rows).
        """
        mean = np.sum(self.weights * dose[self.rows])
        excess = max(mean - self.dose_gy, 0.0)
        return self.priority * excess**2, self._scatter(dose, 2 * self.priority * excess * self.weights)


@dataclass(frozen=True, eq=False, kw_only=True)
class _DoseVolume(Term):
    volume_fraction: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        if not 0 < self.volume_fraction < 1:
            raise ValueError(f"{type(self).__name__} {self.label!r}: volume_fraction must be in (0, 1)")

    def _dose_at_volume(self, local):
        order = np.argsort(-local, kind="stable")
        cumulative = np.cumsum(self.weights[order])
        return local[order][min(int(np.searchsorted(cumulative, self.volume_fraction)), local.size - 1)]


class DoseVolumeMax(_DoseVolume):
    """At most ``volume_fraction`` of the structure above ``dose_gy``.

    ``volume_fraction`` is a fraction of the rows' weight in (0, 1) (ValueError otherwise).
    """

    def value_and_gradient(self, dose):
        """Wu-Mohan maximum-DVH penalty and its gradient: rows between ``dose_gy`` and the current
        dose at ``volume_fraction`` are pushed down (the penalised set held fixed).

        Parameters
        ----------
        dose : numpy.ndarray
            Dose (Gy) of every row of the influence matrix (1-D); the term reads its own
            :attr:`rows`.

        Returns
        -------
        value : float
            The weighted squared excess (Gy^2) of the penalised rows times the priority, >= 0.
        gradient : numpy.ndarray
            d(value)/d(dose), same shape as ``dose`` (zero outside the term's rows).
        """
        local = dose[self.rows]
        upper = self._dose_at_volume(local)
        active = (local > self.dose_gy) & (local <= upper)
        excess = np.where(active, local - self.dose_gy, 0.0)
        return self.priority * np.sum(self.weights * excess**2), self._scatter(dose, 2 * self.priority * self.weights * excess)


class DoseVolumeMin(_DoseVolume):
    """At least ``volume_fraction`` of the structure at ``dose_gy`` or more.

    ``volume_fraction`` is a fraction of the rows' weight in (0, 1) (ValueError otherwise).
    """

    def value_and_gradient(self, dose):
        """Wu-Mohan minimum-DVH penalty and its gradient: rows between the current dose at
        ``volume_fraction`` and ``dose_gy`` are pushed up (the penalised set held fixed).

        Parameters
        ----------
        dose : numpy.ndarray
            Dose (Gy) of every row of the influence matrix (1-D); the term reads its own
            :attr:`rows`.

        Returns
        -------
        value : float
            The weighted squared shortfall (Gy^2) of the penalised rows times the priority, >= 0.
        gradient : numpy.ndarray
            d(value)/d(dose), same shape as ``dose`` (zero outside the term's rows).
        """
        local = dose[self.rows]
        lower = self._dose_at_volume(local)
        active = (local < self.dose_gy) & (local >= lower)
        short = np.where(active, self.dose_gy - local, 0.0)
        return self.priority * np.sum(self.weights * short**2), self._scatter(dose, -2 * self.priority * self.weights * short)


def total(terms, dose: np.ndarray):
    """Sum of the terms' values and gradients.

    Parameters
    ----------
    terms : iterable of Term
        The objective terms.
    dose : numpy.ndarray
        Dose (Gy) of every row of the influence matrix (1-D, float).

    Returns
    -------
    value : float
        Sum of the terms' values (Gy^2 x priority).
    gradient : numpy.ndarray
        Sum of their gradients with respect to ``dose``, same shape.
    """
    value, gradient = 0.0, np.zeros_like(dose)
    for term in terms:
        v, g = term.value_and_gradient(dose)
        value += v
        gradient += g
    return value, gradient
