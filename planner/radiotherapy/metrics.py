"""Dose-volume metrics that respect fractional occupancy.

Every voxel of a structure counts with its occupied volume (occupancy x voxel volume), so
small-volume metrics such as the cord's D0.035cc are right at 1.25-2.5 mm voxels. A dose
``D_V`` is the minimum dose received by the hottest ``V`` (the dose at which the cumulative
DVH crosses ``V``), interpolated within the voxel that straddles it. ``CV_V`` is TG-101's
'critical volume' measure: the highest dose the coldest ``V`` receive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .protocols import read_table

__all__ = ["StructureDose", "structure_dose", "dose_at_volume", "volume_at_dose", "dvh", "metric", "paddick_conformity",
           "gradient_index", "homogeneity_index", "POINT_MAX_CC"]

#: TG-101 'point' maximum volume (sbrt_cord.toml [metrics], with its source).
POINT_MAX_CC = float(read_table("sbrt_cord")["metrics"]["point_max_volume_cc"]["value"])


@dataclass(frozen=True, eq=False)
class StructureDose:
    """Doses and volumes (cc) of the voxels of one structure, sorted by decreasing dose."""

    dose_gy: np.ndarray
    volume_cc: np.ndarray

    @property
    def total_cc(self) -> float:
        return float(self.volume_cc.sum())


def structure_dose(dose_gy: np.ndarray, occupancy: np.ndarray, voxel_cc: float) -> StructureDose:
    """Collect a structure's voxel doses, hottest first.

    Parameters
    ----------
    dose_gy : numpy.ndarray
        Dose (Gy) on the grid.
    occupancy : numpy.ndarray
        The structure's fractional occupancy (0..1) on the same grid; another shape raises
        ValueError. Voxels with occupancy 0 are left out.
    voxel_cc : float
        Volume of one voxel (cc).

    Returns
    -------
    StructureDose
        Doses (Gy) and occupied volumes (cc, occupancy x ``voxel_cc``) of the occupied voxels,
        sorted by decreasing dose (stable).
    """
    dose_gy = np.asarray(dose_gy, float)
    occupancy = np.asarray(occupancy, float)
    if dose_gy.shape != occupancy.shape:
        raise ValueError(f"dose {dose_gy.shape} and occupancy {occupancy.shape} differ in shape")
    keep = occupancy > 0
    doses = dose_gy[keep]
    volumes = occupancy[keep] * voxel_cc
    order = np.argsort(-doses, kind="stable")
    return StructureDose(doses[order], volumes[order])


def dose_at_volume(sd: StructureDose, volume_cc: float) -> float:
    """Minimum dose to the hottest ``volume_cc`` (D_Vcc).

    Parameters
    ----------
    sd : StructureDose
        The structure's doses and volumes.
    volume_cc : float
        Volume (cc); <= 0 gives the hottest voxel's dose, a volume beyond the structure its
        minimum.

    Returns
    -------
    float
        Dose (Gy) of the voxel in which the cumulative volume reaches ``volume_cc``; NaN for
        an empty structure.
    """
    if sd.dose_gy.size == 0:
        return float("nan")
    if volume_cc <= 0:
        return float(sd.dose_gy[0])
    cumulative = np.cumsum(sd.volume_cc)
    index = int(np.searchsorted(cumulative, volume_cc))
    return float(sd.dose_gy[min(index, sd.dose_gy.size - 1)])


def volume_at_dose(sd: StructureDose, dose_gy: float) -> float:
    """Volume receiving at least ``dose_gy`` (V_xGy).

    Parameters
    ----------
    sd : StructureDose
        The structure's doses and volumes.
    dose_gy : float
        Dose threshold (Gy).

    Returns
    -------
    float
        Volume (cc) of the voxels at or above the threshold.
    """
    return float(sd.volume_cc[sd.dose_gy >= dose_gy].sum())


def dvh(sd: StructureDose, bins_gy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative and differential dose-volume histograms.

    Parameters
    ----------
    sd : StructureDose
        The structure's doses and volumes.
    bins_gy : array_like of float
        Dose bin edges (Gy), increasing.

    Returns
    -------
    cumulative : numpy.ndarray
        Fraction (0..1) of the structure's volume at or above each edge (zeros for an empty
        structure); same length as ``bins_gy``.
    differential : numpy.ndarray
        Volume (cc) per bin, one fewer than ``bins_gy``.
    """
    bins_gy = np.asarray(bins_gy, float)
    total = sd.total_cc
    cumulative = np.array([sd.volume_cc[sd.dose_gy >= b].sum() for b in bins_gy]) / total if total else np.zeros(len(bins_gy))
    differential, _ = np.histogram(sd.dose_gy, bins=bins_gy, weights=sd.volume_cc)
    return cumulative, differential


_PATTERN = re.compile(r"^(Dmax|Dmin|Dmean|D(?P<cc>[0-9.]+)cc|D(?P<pct>[0-9.]+)%|V(?P<gy>[0-9.]+)Gy|CV(?P<spared>[0-9.]+)cc)$")


def _coldest_max(sd: StructureDose, volume_cc: float) -> float:
    """The highest dose the coldest ``volume_cc`` receive; the structure's maximum when it holds
    no more than that volume (all of it must then stay below the limit)."""
    beyond = sd.total_cc - volume_cc
    if beyond <= 0:
        return float(sd.dose_gy[0])
    cumulative = np.cumsum(sd.volume_cc)
    # A hottest part that ends exactly on a voxel boundary (up to rounding) leaves that voxel out.
    index = int(np.searchsorted(cumulative, beyond + 1e-9 * sd.total_cc, side="right"))
    return float(sd.dose_gy[min(index, sd.dose_gy.size - 1)])


def metric(sd: StructureDose, name: str) -> float:
    """A named metric: Dmax (= D0.035cc), Dmin, Dmean, D<v>cc, D<x>%, V<x>Gy (cc), CV<v>cc.

    Parameters
    ----------
    sd : StructureDose
        The structure's doses and volumes.
    name : str
        'Dmax' (the dose to the :data:`POINT_MAX_CC` 'point' volume), 'Dmin', 'Dmean',
        'D<v>cc' (e.g. 'D0.35cc'), 'D<x>%' (of the structure's volume, e.g. 'D90%') or
        'V<x>Gy' (e.g. 'V20Gy') or 'CV<v>cc' (TG-101 critical volume: the highest dose the
        coldest <v> cc receive, e.g. 'CV200cc'; the maximum when the structure is no larger);
        any other name raises ValueError.

    Returns
    -------
    float
        Dose in Gy (volume in cc for 'V<x>Gy'); NaN for an empty structure.

    Examples
    --------
    >>> sd = StructureDose(np.array([3.0, 2.0, 1.0]), np.array([0.01, 0.02, 0.03]))
    >>> metric(sd, "Dmean"), metric(sd, "D0.02cc"), metric(sd, "V2Gy"), metric(sd, "CV0.03cc")
    (1.6666666666666667, 2.0, 0.03, 1.0)
    """
    match = _PATTERN.match(name)
    if not match:
        raise ValueError(f"unknown metric {name!r}; use Dmax, Dmin, Dmean, D<v>cc, D<x>%, V<x>Gy")
    if sd.dose_gy.size == 0:
        return float("nan")
    if name == "Dmax":
        return dose_at_volume(sd, POINT_MAX_CC)
    if name == "Dmin":
        return float(sd.dose_gy[-1])
    if name == "Dmean":
        return float(np.sum(sd.dose_gy * sd.volume_cc) / sd.total_cc)
    if match.group("cc"):
        return dose_at_volume(sd, float(match.group("cc")))
    if match.group("pct"):
        return dose_at_volume(sd, float(match.group("pct")) / 100 * sd.total_cc)
    if match.group("spared"):
        return _coldest_max(sd, float(match.group("spared")))
    return volume_at_dose(sd, float(match.group("gy")))


def paddick_conformity(target: StructureDose, body: StructureDose, prescription_gy: float) -> float:
    """Paddick CI = (TV_PIV)^2 / (TV x PIV): 1 is perfect.

    Parameters
    ----------
    target : StructureDose
        The target (TV: its volume; TV_PIV: its volume inside the prescription isodose).
    body : StructureDose
        The body, whose volume at or above the prescription is PIV.
    prescription_gy : float
        Prescription dose (Gy).

    Returns
    -------
    float
        The conformity index in [0, 1]; 0 when no voxel reaches the prescription.
    """
    tv_piv = volume_at_dose(target, prescription_gy)
    piv = volume_at_dose(body, prescription_gy)
    return tv_piv**2 / (target.total_cc * piv) if piv > 0 else 0.0


def gradient_index(body: StructureDose, prescription_gy: float) -> float:
    """Paddick gradient index V(50% Rx) / V(100% Rx).

    Parameters
    ----------
    body : StructureDose
        The body's doses and volumes.
    prescription_gy : float
        Prescription dose (Gy).

    Returns
    -------
    float
        Ratio of the volumes at or above half and all of the prescription (>= 1, lower is a
        steeper fall-off); inf when no voxel reaches the prescription.
    """
    v100 = volume_at_dose(body, prescription_gy)
    return volume_at_dose(body, 0.5 * prescription_gy) / v100 if v100 > 0 else float("inf")


def homogeneity_index(target: StructureDose) -> float:
    """ICRU 83 homogeneity index (D2% - D98%) / D50%.

    Parameters
    ----------
    target : StructureDose
        The target's doses and volumes.

    Returns
    -------
    float
        The index (0 for a perfectly uniform dose; NaN for an empty target).
    """
    return (metric(target, "D2%") - metric(target, "D98%")) / metric(target, "D50%")
