"""Dose-volume metrics that respect fractional occupancy.

Every voxel of a structure counts with its occupied volume (occupancy x voxel volume), so
small-volume metrics such as the cord's D0.035cc are right at 1.25-2.5 mm voxels. A dose
``D_V`` is the minimum dose received by the hottest ``V`` (the dose at which the cumulative
DVH crosses ``V``), interpolated within the voxel that straddles it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

__all__ = ["StructureDose", "structure_dose", "dose_at_volume", "volume_at_dose", "dvh", "metric", "paddick_conformity",
           "gradient_index", "homogeneity_index", "POINT_MAX_CC"]

#: TG-101 'point' maximum volume (project reference, conventions.volume_metrics.point_max_volume).
POINT_MAX_CC = 0.035


@dataclass(frozen=True, eq=False)
class StructureDose:
    """Doses and volumes (cc) of the voxels of one structure, sorted by decreasing dose."""

    dose_gy: np.ndarray
    volume_cc: np.ndarray

    @property
    def total_cc(self) -> float:
        return float(self.volume_cc.sum())


def structure_dose(dose_gy: np.ndarray, occupancy: np.ndarray, voxel_cc: float) -> StructureDose:
    """Collect a structure's voxel doses (full-grid arrays of dose and occupancy)."""
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
    """Minimum dose to the hottest ``volume_cc`` (D_Vcc). Volumes beyond the structure give its minimum."""
    if sd.dose_gy.size == 0:
        return float("nan")
    if volume_cc <= 0:
        return float(sd.dose_gy[0])
    cumulative = np.cumsum(sd.volume_cc)
    index = int(np.searchsorted(cumulative, volume_cc))
    return float(sd.dose_gy[min(index, sd.dose_gy.size - 1)])


def volume_at_dose(sd: StructureDose, dose_gy: float) -> float:
    """Volume (cc) receiving at least ``dose_gy`` (V_xGy)."""
    return float(sd.volume_cc[sd.dose_gy >= dose_gy].sum())


def dvh(sd: StructureDose, bins_gy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative (fraction of volume >= each bin) and differential (cc per bin) DVH."""
    bins_gy = np.asarray(bins_gy, float)
    total = sd.total_cc
    cumulative = np.array([sd.volume_cc[sd.dose_gy >= b].sum() for b in bins_gy]) / total if total else np.zeros(len(bins_gy))
    differential, _ = np.histogram(sd.dose_gy, bins=bins_gy, weights=sd.volume_cc)
    return cumulative, differential


_PATTERN = re.compile(r"^(Dmax|Dmin|Dmean|D(?P<cc>[0-9.]+)cc|D(?P<pct>[0-9.]+)%|V(?P<gy>[0-9.]+)Gy)$")


def metric(sd: StructureDose, name: str) -> float:
    """A named metric: Dmax (= D0.035cc), Dmin, Dmean, D<v>cc, D<x>%, V<x>Gy (cc).

    Examples
    --------
    >>> sd = StructureDose(np.array([3.0, 2.0, 1.0]), np.array([0.01, 0.02, 0.03]))
    >>> metric(sd, "Dmean"), metric(sd, "D0.02cc"), metric(sd, "V2Gy")
    (1.6666666666666667, 2.0, 0.03)
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
    return volume_at_dose(sd, float(match.group("gy")))


def paddick_conformity(target: StructureDose, body: StructureDose, prescription_gy: float) -> float:
    """Paddick CI = (TV_PIV)^2 / (TV x PIV): 1 is perfect."""
    tv_piv = volume_at_dose(target, prescription_gy)
    piv = volume_at_dose(body, prescription_gy)
    return tv_piv**2 / (target.total_cc * piv) if piv > 0 else 0.0


def gradient_index(body: StructureDose, prescription_gy: float) -> float:
    """Paddick gradient index V(50% Rx) / V(100% Rx)."""
    v100 = volume_at_dose(body, prescription_gy)
    return volume_at_dose(body, 0.5 * prescription_gy) / v100 if v100 > 0 else float("inf")


def homogeneity_index(target: StructureDose) -> float:
    """ICRU 83 homogeneity index (D2% - D98%) / D50%."""
    return (metric(target, "D2%") - metric(target, "D98%")) / metric(target, "D50%")
