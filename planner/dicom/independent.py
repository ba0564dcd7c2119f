"""The independent check: DVH metrics of an exported set computed by dicompyler-core.

dicompyler-core (a DICOM RT library not written here) reads the RT Structure Set and RT
Dose files and computes each structure's cumulative DVH its own way: a dose-grid voxel
counts when its centre lies inside the structure's contour on that plane (contours of one
plane combined even-odd), in 0.01 Gy bins, the volume from the contours' areas times the
plane spacing. spinesim weights each voxel by its fractional occupancy instead. The two
agree exactly on which voxels are in (:mod:`.contours` draws the 0.5 occupancy line) and
differ by the partial volume of the edge voxels; :func:`compare_metrics` reports both and
the tolerance that difference allows (see its docstring).

dicompyler-core 0.5.6 imports ``pydicom.dicomio.read_file``, which pydicom 3 removed;
:func:`_shim_pydicom` points it at ``pydicom.dcmread`` (same arguments) before importing.
Its DVH interpolation needs scikit-image, which it imports on its own.
"""

from __future__ import annotations

import sys
import types
import warnings

import numpy as np

__all__ = ["dicompyler_metrics", "compare_metrics", "DICOMPYLER_BIN_GY"]

#: dicompyler-core's DVH bin width (Gy): its D-metrics are multiples of it, so agreement
#: cannot be better than one bin.
DICOMPYLER_BIN_GY = 0.01


def _shim_pydicom() -> None:
    import pydicom

    if "pydicom.dicomio" not in sys.modules and not hasattr(pydicom, "dicomio"):
        module = types.ModuleType("pydicom.dicomio")
        module.read_file = pydicom.dcmread
        sys.modules["pydicom.dicomio"] = module
        pydicom.dicomio = module
    elif not hasattr(pydicom.dicomio, "read_file"):
        pydicom.dicomio.read_file = pydicom.dcmread


def dicompyler_metrics(rtstruct, rtdose, *, names=None) -> dict:
    """Volume, mean, maximum, D0.035cc and D95% of each structure, as dicompyler-core computes them.

    Parameters
    ----------
    rtstruct, rtdose : str or os.PathLike
        The RT Structure Set and RT Dose files.
    names : iterable of str, optional
        ROI names to compute (default: all).

    Returns
    -------
    dict
        {ROI name: {"volume_cc", "Dmean", "Dpoint", "D0.035cc", "D95%"}} (Gy, cc);
        "Dpoint" is the point maximum (spinesim's "Dmax" is D0.035cc).
    """
    _shim_pydicom()
    with warnings.catch_warnings():
        # dicompyler-core 0.5.6 imports and calls pydicom APIs that pydicom 3 deprecates
        # (pixel_data_handlers); the warning is theirs to fix, not a fault in the files.
        warnings.simplefilter("ignore", DeprecationWarning)
        from dicompylercore import dicomparser, dvhcalc

        structure_set = dicomparser.DicomParser(str(rtstruct))
        wanted = None if names is None else set(names)
        found = {}
        for number, structure in structure_set.GetStructures().items():
            if wanted is not None and structure["name"] not in wanted:
                continue
            curve = dvhcalc.get_dvh(str(rtstruct), str(rtdose), number)
            if curve.volume <= 0:
                continue
            found[structure["name"]] = {"volume_cc": float(curve.volume), "Dmean": float(curve.mean),
                                        "Dpoint": float(curve.max),
                                        "D0.035cc": float(curve.statistic("D0.035cc").value),
                                        "D95%": float(curve.statistic("D95").value)}
    return found


def _dose_at(doses: np.ndarray, volumes: np.ndarray, volume_cc: float) -> float:
    """Dose at a cumulative volume of a hottest-first voxel list (spinesim's rule)."""
    cumulative = np.cumsum(volumes)
    index = int(np.searchsorted(cumulative, volume_cc - 1e-9 * cumulative[-1], side="left"))
    return float(doses[min(max(index, 0), doses.size - 1)])


def compare_metrics(scene, dose_gy: np.ndarray, independent: dict) -> dict:
    """spinesim's metrics beside dicompyler-core's, each with the tolerance it is held to.

    spinesim's figures are computed twice. On the voxels a contour holds by the centre rule
    (occupancy >= 0.5: the voxels dicompyler-core counts) volume and point maximum must
    agree to within rounding and one 0.01 Gy bin; the mean to within one bin; a dose at a
    volume (D0.035cc, D95%) to within one bin plus the dose step between the voxels on either
    side of that volume in the hottest-first list (dicompyler-core interpolates its binned
    DVH there, spinesim takes the voxel's dose). With spinesim's fractional occupancy (what
    its own DVHs use) each figure may move further by what the partial volume allows,
    bounded exactly: the mean by sum |o - b| |d - mean_b| / sum o over the voxels (o the
    occupancy, b the centre-rule mask), a dose at volume V by the binary DVH's change
    between V - dV and V + dV with dV = sum |o - b| x voxel volume (times 1 + the fraction
    for D<x>%, whose volume moves with the total); where V - dV falls below zero (a 'point'
    volume smaller than the edge's partial volume) the bound is the hottest touched voxel.

    Parameters
    ----------
    scene : Scene
        The exported scene (its structures' occupancy).
    dose_gy : numpy.ndarray
        The plan's dose on the scene's grid.
    independent : dict
        :func:`dicompyler_metrics`'s result.

    Returns
    -------
    dict
        {name: {metric: {"dicompyler", "contour_voxels", "occupancy", "tolerance_contour",
        "tolerance_occupancy"}}} for volume_cc, Dmean, Dpoint, D0.035cc and D95%
        ("occupancy" and its tolerance absent for Dpoint, which fractional occupancy does
        not define).
    """
    voxel_cc = scene.grid.voxel_volume_cc
    found = {}
    for name, theirs in independent.items():
        if name not in scene.structures:
            continue
        occupancy = scene.structure(name).full().astype(float)
        binary = (occupancy >= 0.5).astype(float)
        touched = occupancy > 0
        o, b, d = occupancy[touched], binary[touched], np.asarray(dose_gy, float)[touched]
        order = np.argsort(-d, kind="stable")
        o, b, d = o[order], b[order], d[order]
        inside = b > 0
        d_in = d[inside]
        v_in = np.full(d_in.size, voxel_cc)
        total_b, total_o = float(inside.sum() * voxel_cc), float(o.sum() * voxel_cc)
        mean_b = float(d_in.mean())
        mean_o = float(np.sum(o * d) / o.sum())
        moved_cc = float(np.abs(o - b).sum() * voxel_cc)

        def at(volume):
            return _dose_at(d_in, v_in, volume)

        def step(volume):
            return abs(at(volume - voxel_cc) - at(volume + voxel_cc))

        def shift(volume, dv):
            # Beyond the binary DVH's ends the fractional one may reach any touched voxel's dose.
            upper = at(volume - dv) if volume - dv > 0 else float(d.max())
            lower = at(volume + dv) if volume + dv <= total_b else float(d.min())
            return max(upper - at(volume), at(volume) - lower)

        entry = {"volume_cc": {"dicompyler": theirs["volume_cc"], "contour_voxels": total_b, "occupancy": total_o,
                               "tolerance_contour": 1e-6 * max(total_b, 1.0), "tolerance_occupancy": moved_cc},
                 "Dmean": {"dicompyler": theirs["Dmean"], "contour_voxels": mean_b, "occupancy": mean_o,
                           "tolerance_contour": DICOMPYLER_BIN_GY,
                           "tolerance_occupancy": float(np.sum(np.abs(o - b) * np.abs(d - mean_b)) / o.sum())},
                 "Dpoint": {"dicompyler": theirs["Dpoint"], "contour_voxels": float(d_in[0]),
                            "tolerance_contour": DICOMPYLER_BIN_GY}}
        for key, volume, scale in (("D0.035cc", 0.035, 1.0), ("D95%", 0.95 * total_b, 1.95)):
            spinesim = _dose_at(d, o * voxel_cc, volume if key.endswith("cc") else 0.95 * total_o)
            entry[key] = {"dicompyler": theirs[key], "contour_voxels": at(volume), "occupancy": spinesim,
                          "tolerance_contour": DICOMPYLER_BIN_GY + step(volume),
                          "tolerance_occupancy": shift(volume, moved_cc * scale)}
        found[name] = entry
    return found
