"""A CT series and an RT Structure Set (DICOM) as a Scene that plans like any phantom.

:func:`from_dicom` reads a folder of CT slices (any order, any rescale slope and intercept,
slice gaps that differ are resampled to equal steps no larger than the smallest gap) and, optionally, an RT Structure
Set of closed planar contours on the same frame of reference. HU become mass density
through the teaching calibration of ``scenes/data/materials.toml`` [ct_calibration]
(:func:`scenes.scene.scene_from_arrays`); contours become fractional-occupancy masks
(each voxel sampled on a sub-grid in-plane, contours of one structure on one slice combined
even-odd, so a contour inside another is a hole, as DICOM RT viewers read them). Structure
names go through a name map (``scenes/data/dicom_names.toml``, plus ``name_map=``); names
it does not know are kept as they are and listed in ``scene.clinical["unmapped_structures"]``.

Only what spinesim can plan is accepted: axial slices of a patient lying head-first supine
(ImageOrientationPatient 1,0,0,0,1,0), no gantry tilt, one series, one frame of reference,
uncompressed pixels. Anything else - a file that is not DICOM, a missing tag, two series,
a structure set on another frame of reference, a contour with no points - raises
:class:`DicomImportError` naming the file and the problem, and nothing is returned.

pydicom (the ``dicom`` extra) is imported inside the functions, so ``import scenes`` never
needs it. Positions are DICOM LPS mm; arrays (z, y, x) as everywhere in spinesim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from ._data import load_data
from .grid import Grid, resample_volume
from .scene import Scene, scene_from_arrays

__all__ = ["DicomImportError", "from_dicom", "read_ct_series", "read_structure_set", "default_name_map",
           "map_structure_name", "CtSeries", "contour_numbers"]

#: Positions within this many mm are the same (DICOM DS values carry ~16 digits; scanners
#: write positions rounded to 0.001 mm or so). A numerical tolerance, not a clinical figure.
POSITION_TOLERANCE_MM = 0.01
#: Rescaled values beyond this are no CT numbers (scanners write -1024..~30000 HU): a sanity
#: bound that keeps corrupt slopes from overflowing, not a clinical figure.
HU_LIMIT = 1e6
#: In-plane sub-samples per voxel edge when a contour is turned into occupancy (9 per voxel;
#: odd, so that one sample is the voxel's centre).
SUBSAMPLES = 3
_AXIAL = np.array([1, 0, 0, 0, 1, 0], float)
_CT_TAGS = ("SOPInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "ImagePositionPatient",
            "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns", "RescaleSlope", "RescaleIntercept",
            "PixelData")


class DicomImportError(ValueError):
    """A DICOM file spinesim cannot import; the message names the file and the problem."""


def _fail(path, problem: str):
    raise DicomImportError(f"{path}: {problem}")


def _key(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def default_name_map() -> dict[str, str]:
    """The packaged structure-name map: normalised DICOM name -> spinesim name.

    Returns
    -------
    dict
        Keys are names lower-cased with everything but letters and digits removed (see
        :func:`map_structure_name`); every spinesim name of the table maps to itself.

    Examples
    --------
    >>> default_name_map()["spinalcord"]
    'spinal_cord'
    """
    found = {}
    for name, aliases in load_data("dicom_names")["names"].items():
        for alias in (name, *aliases):
            found[_key(alias)] = name
    return found


def map_structure_name(dicom_name: str, name_map: Mapping[str, str] | None = None) -> str | None:
    """The spinesim name of a DICOM ROI name, or None when the map does not know it.

    Parameters
    ----------
    dicom_name : str
        An ROIName as written in the structure set.
    name_map : mapping of str to str, optional
        Extra or overriding entries {DICOM name: spinesim name}, matched like the defaults
        (case, spaces, underscores and hyphens ignored).

    Returns
    -------
    str or None
        The spinesim structure name.

    Examples
    --------
    >>> map_structure_name("SPINAL CORD"), map_structure_name("Cord"), map_structure_name("Brain")
    ('spinal_cord', 'spinal_cord', None)
    >>> map_structure_name("Brain", {"brain": "brain_stem"})
    'brain_stem'
    """
    table = default_name_map()
    table.update({_key(k): v for k, v in (name_map or {}).items()})
    return table.get(_key(dicom_name))


def _dcmread(path: Path):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path)
    except InvalidDicomError:
        _fail(path, "not a DICOM file (no DICM preamble)")
    except Exception as error:  # a truncated or corrupt file: pydicom raises many kinds
        _fail(path, f"cannot be read as DICOM ({type(error).__name__}: {error})")


def _get(ds, path, tag: str):
    try:
        value = ds.get(tag)
    except Exception as error:  # a value that cannot be decoded (corrupt element)
        _fail(path, f"tag {tag} cannot be decoded ({type(error).__name__}: {error})")
    if value is None or (isinstance(value, (str, bytes)) and not value) or (hasattr(value, "__len__") and len(value) == 0):
        _fail(path, f"missing required tag {tag}")
    return value


def _numbers(ds, path, tag: str, count: int) -> np.ndarray:
    value = _get(ds, path, tag)
    try:
        values = np.array([float(v) for v in (value if hasattr(value, "__iter__") and not isinstance(value, str) else [value])])
    except (TypeError, ValueError):
        _fail(path, f"tag {tag} must hold {count} number(s), got {value!r}")
    if values.size != count or not np.all(np.isfinite(values)):
        _fail(path, f"tag {tag} must hold {count} finite number(s), got {list(values)}")
    return values


@dataclass(frozen=True, eq=False)
class CtSeries:
    """A CT series as read: HU volume (z, y, x), its grid, UIDs and the files it came from.

    Attributes
    ----------
    hu : numpy.ndarray
        CT numbers (float32) on ``grid``; slices sorted from inferior to superior.
    grid : Grid
        The native grid (slice gaps made equal if they were not).
    native_z_mm : numpy.ndarray
        The slice positions as found, sorted (before any resampling).
    frame_of_reference_uid, series_uid, study_uid : str
    files : tuple of pathlib.Path
        The slice files, sorted like the slices.
    notes : tuple of str
        What was done to the series (e.g. resampling), in words.
    patient : tuple of str
        (PatientName, PatientID) as written.
    """

    hu: np.ndarray = field(repr=False)
    grid: Grid
    native_z_mm: np.ndarray = field(repr=False)
    frame_of_reference_uid: str
    series_uid: str
    study_uid: str
    files: tuple
    notes: tuple = ()
    patient: tuple = ("", "")


def _slice(path: Path, ds):
    for tag in _CT_TAGS:
        _get(ds, path, tag)
    tilt = ds.get("GantryDetectorTilt")
    try:
        tilt = float(tilt) if tilt not in (None, "") else 0.0
    except (TypeError, ValueError):
        _fail(path, f"GantryDetectorTilt is not a number: {tilt!r}")
    if abs(tilt) > POSITION_TOLERANCE_MM:
        _fail(path, f"gantry tilt {tilt:g} deg: tilted CT is not supported (reconstruct without tilt)")
    orientation = _numbers(ds, path, "ImageOrientationPatient", 6)
    if not np.allclose(orientation, _AXIAL, atol=1e-4):
        _fail(path, f"ImageOrientationPatient {list(orientation)}: only axial head-first supine slices "
                    "(1,0,0,0,1,0) are supported (oblique or tilted planes, other patient positions are not)")
    position = _numbers(ds, path, "ImagePositionPatient", 3)
    spacing = _numbers(ds, path, "PixelSpacing", 2)
    if np.any(spacing <= 0):
        _fail(path, f"PixelSpacing must be > 0, got {list(spacing)}")
    slope, intercept = _numbers(ds, path, "RescaleSlope", 1)[0], _numbers(ds, path, "RescaleIntercept", 1)[0]
    rows, columns = int(_get(ds, path, "Rows")), int(_get(ds, path, "Columns"))
    try:
        pixels = np.asarray(ds.pixel_array)
    except Exception as error:  # compressed without a decoder, wrong length, bad bits allocated ...
        _fail(path, f"pixel data cannot be decoded ({type(error).__name__}: {error})")
    if pixels.shape != (rows, columns):
        _fail(path, f"pixel data has shape {pixels.shape}, Rows x Columns say {(rows, columns)}")
    hu = pixels.astype(np.float64) * slope + intercept
    if not np.all(np.abs(hu) <= HU_LIMIT):
        _fail(path, f"RescaleSlope {slope:g} and RescaleIntercept {intercept:g} give CT numbers beyond "
                    f"+-{HU_LIMIT:g} HU: not a CT")
    return {"path": path, "z": position[2], "xy": position[:2], "spacing": tuple(spacing), "shape": (rows, columns),
            "hu": hu.astype(np.float32), "series": str(ds.SeriesInstanceUID), "frame": str(ds.FrameOfReferenceUID),
            "study": str(ds.get("StudyInstanceUID", "")), "patient": (str(ds.get("PatientName", "")), str(ds.get("PatientID", "")))}


def _resample_z(volume: np.ndarray, native_z: np.ndarray, new_z: np.ndarray) -> np.ndarray:
    """Linear interpolation along z from slices at ``native_z`` to ``new_z`` (both sorted)."""
    upper = np.clip(np.searchsorted(native_z, new_z, side="right"), 1, len(native_z) - 1)
    lower = upper - 1
    t = np.clip((new_z - native_z[lower]) / (native_z[upper] - native_z[lower]), 0.0, 1.0)[:, None, None]
    return (volume[lower] * (1 - t) + volume[upper] * t).astype(volume.dtype)


def read_ct_series(ct_dir) -> CtSeries:
    """Read every CT slice of a folder (other DICOM RT objects there are passed over).

    Parameters
    ----------
    ct_dir : str or os.PathLike
        A folder holding one CT series (and possibly its RT Structure Set, Dose, Plan).
        Every file in it must be DICOM; hidden files (a leading dot) are skipped.

    Returns
    -------
    CtSeries
        HU volume, grid and UIDs; unequal slice gaps are resampled linearly to the
        smallest gap (said in ``notes``).

    Raises
    ------
    DicomImportError
        Naming the file and the problem: not DICOM, a missing tag, a second series or frame
        of reference, slices of different size, spacing or in-plane position, two slices at
        one position, gantry tilt, non-axial orientation, undecodable pixels, no CT at all.
    """
    folder = Path(ct_dir)
    if not folder.is_dir():
        raise DicomImportError(f"{folder}: not a folder")
    slices = []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        ds = _dcmread(path)
        try:
            modality = str(ds.get("Modality", ""))
        except Exception:  # noqa: BLE001 - a corrupt Modality element is the file's problem
            modality = ""
        if not modality:
            _fail(path, "missing required tag Modality")
        if modality == "CT":
            try:
                slices.append(_slice(path, ds))
            except DicomImportError:
                raise
            except Exception as error:  # a corrupt element anywhere: the file's problem, said as such
                _fail(path, f"cannot be read as a CT slice ({type(error).__name__}: {error})")
    if not slices:
        raise DicomImportError(f"{folder}: no CT slices (Modality CT) in the folder")
    first = slices[0]
    for key, what in (("series", "SeriesInstanceUID"), ("frame", "FrameOfReferenceUID")):
        for item in slices[1:]:
            if item[key] != first[key]:
                _fail(item["path"], f"{what} {item[key]} differs from {first['path'].name}'s {first[key]}: "
                                    "mixed series or frames of reference in one folder")
    for item in slices[1:]:
        if item["shape"] != first["shape"] or not np.allclose(item["spacing"], first["spacing"], atol=1e-4):
            _fail(item["path"], f"slice size {item['shape']} / PixelSpacing {item['spacing']} differs from "
                                f"{first['path'].name}'s {first['shape']} / {first['spacing']}")
        if not np.allclose(item["xy"], first["xy"], atol=POSITION_TOLERANCE_MM):
            _fail(item["path"], f"ImagePositionPatient x, y {list(item['xy'])} differ from {first['path'].name}'s "
                                f"{list(first['xy'])}: a sheared (gantry-tilted) series is not supported")
    slices.sort(key=lambda item: item["z"])
    z = np.array([item["z"] for item in slices])
    if len(z) < 2:
        _fail(first["path"], "a series needs at least two slices to give a slice spacing")
    gaps = np.diff(z)
    if np.any(gaps < POSITION_TOLERANCE_MM):
        at = int(np.argmin(gaps))
        _fail(slices[at + 1]["path"], f"lies at the same position z = {z[at + 1]:g} mm as {slices[at]['path'].name}")
    hu = np.stack([item["hu"] for item in slices]).astype(np.float32)
    notes = []
    if np.ptp(gaps) > POSITION_TOLERANCE_MM:
        # Never coarser than the finest gap: the span in as many equal steps as that needs.
        count = int(np.ceil((z[-1] - z[0]) / gaps.min() - 1e-6)) + 1
        new_z = np.linspace(z[0], z[-1], count)
        hu = _resample_z(hu, z, new_z)
        notes.append(f"slice gaps {gaps.min():g}..{gaps.max():g} mm resampled linearly to {new_z[1] - new_z[0]:g} mm")
    dz = (z[-1] - z[0]) / (hu.shape[0] - 1)
    row_mm, column_mm = first["spacing"]
    grid = Grid(hu.shape, (dz, row_mm, column_mm), (z[0], first["xy"][1], first["xy"][0]))
    return CtSeries(hu, grid, z, first["frame"], first["series"], first["study"], tuple(s["path"] for s in slices),
                    tuple(notes), first["patient"])


def _even_odd(polygons, sx: np.ndarray, sy: np.ndarray) -> np.ndarray:
    """Which sample points (rows ``sy`` x columns ``sx``, both increasing) lie inside an odd
    number of the polygons: a scanline fill. Each edge crossing a sample row toggles every
    sample to its right; an edge counts on a row when one end is on or below it and the
    other above (half-open, so a vertex on the row is counted once)."""
    toggles = np.zeros((len(sy), len(sx) + 1), np.int32)
    for polygon in polygons:
        x1, y1 = polygon[:, 0], polygon[:, 1]
        x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
        rows = np.flatnonzero((sy >= min(y1.min(), y2.min())) & (sy <= max(y1.max(), y2.max())))
        if rows.size == 0:
            continue
        y = sy[rows, None]
        crossing = (y1[None, :] <= y) != (y2[None, :] <= y)
        r, e = np.nonzero(crossing)
        x = x1[e] + (sy[rows[r]] - y1[e]) * (x2[e] - x1[e]) / (y2[e] - y1[e])
        np.add.at(toggles, (rows[r], np.searchsorted(sx, x)), 1)
    return (np.cumsum(toggles, axis=1)[:, :-1] % 2).astype(bool)


def _polygon_occupancy(polygons, grid: Grid, k_native: int) -> tuple:
    """Fractional occupancy of the even-odd union of polygons (x, y mm) on one axial slice."""
    _, ys, xs = grid.axes_mm()
    dy, dx = grid.spacing_mm[1:]
    low = np.min([p.min(axis=0) for p in polygons], axis=0)
    high = np.max([p.max(axis=0) for p in polygons], axis=0)
    i0, i1 = np.clip([np.floor((low[0] - xs[0]) / dx), np.ceil((high[0] - xs[0]) / dx) + 1], 0, len(xs)).astype(int)
    j0, j1 = np.clip([np.floor((low[1] - ys[0]) / dy), np.ceil((high[1] - ys[0]) / dy) + 1], 0, len(ys)).astype(int)
    if i1 <= i0 or j1 <= j0:
        return None
    offsets = (np.arange(SUBSAMPLES) + 0.5) / SUBSAMPLES - 0.5
    sx = (xs[i0:i1, None] + offsets[None, :] * dx).ravel()
    sy = (ys[j0:j1, None] + offsets[None, :] * dy).ravel()
    inside = _even_odd(polygons, sx, sy)
    inside = inside.reshape(j1 - j0, SUBSAMPLES, i1 - i0, SUBSAMPLES)
    fraction = inside.mean(axis=(1, 3))
    # A voxel is in the structure when its centre is inside the contour, the rule DICOM RT
    # tools voxelise by; the fraction keeps the partial volume for dose-volume figures, held
    # on the right side of the mask's threshold (Mask.binary: at least half) by the centre.
    centre = inside[:, SUBSAMPLES // 2, :, SUBSAMPLES // 2]
    half = 0.5
    fraction = np.where(centre, np.maximum(fraction, half), np.minimum(fraction, half - half / SUBSAMPLES**2))
    return (slice(j0, j1), slice(i0, i1)), fraction


def contour_numbers(contour) -> np.ndarray | None:
    """A contour item's ContourData as a flat float array (x1, y1, z1, x2, ...).

    Parsed from the raw decimal strings while the element is still raw (pydicom's per-value
    DS objects cost seconds on a structure set of a few thousand contours).

    Parameters
    ----------
    contour : pydicom.dataset.Dataset
        An item of a ContourSequence.

    Returns
    -------
    numpy.ndarray or None
        The numbers (empty when there are none); None when a value is not a number.
    """
    tag = 0x30060050
    if tag not in contour:
        return np.zeros(0)
    element = contour.get_item(tag)
    value = element.value
    try:
        if isinstance(value, (bytes, bytearray)):
            text = bytes(value).decode("ascii").strip(" \x00")
            return np.array([float(v) for v in text.split("\\")] if text else [], float)
        if value is None or value == "":
            return np.zeros(0)
        values = value if hasattr(value, "__iter__") and not isinstance(value, str) else [value]
        return np.array([float(v) for v in values], float)
    except (TypeError, ValueError, UnicodeDecodeError):
        return None


def read_structure_set(path, series: CtSeries, *, name_map: Mapping[str, str] | None = None) -> tuple[dict, list]:
    """Read an RT Structure Set on a CT series' frame of reference into occupancy volumes.

    Parameters
    ----------
    path : str or os.PathLike
        The RTSTRUCT file.
    series : CtSeries
        The CT series (from :func:`read_ct_series`) whose frame of reference it must share.
    name_map : mapping of str to str, optional
        Extra {DICOM ROI name: spinesim name} entries (see :func:`map_structure_name`).

    Returns
    -------
    structures : dict
        {spinesim or kept name: occupancy (float32, 0..1) on the native slices of the series}.
    unmapped : list of str
        The ROI names the map does not know, kept under their own names.

    Raises
    ------
    DicomImportError
        Not DICOM, not an RTSTRUCT, a missing tag, another frame of reference, a contour
        with no points or points not in one axial plane, two ROIs mapped to one name.
    """
    path = Path(path)
    try:
        return _read_structure_set(path, series, name_map)
    except DicomImportError:
        raise
    except Exception as error:  # a corrupt element anywhere: the file's problem, said as such
        _fail(path, f"cannot be read as an RT Structure Set ({type(error).__name__}: {error})")


def _read_structure_set(path: Path, series: CtSeries, name_map) -> tuple[dict, list]:
    ds = _dcmread(path)
    if str(ds.get("Modality", "")) != "RTSTRUCT":
        _fail(path, f"Modality {ds.get('Modality', '(missing)')!r} is not RTSTRUCT")
    references = _get(ds, path, "ReferencedFrameOfReferenceSequence")
    frames = {str(item.get("FrameOfReferenceUID", "")) for item in references}
    if series.frame_of_reference_uid not in frames:
        _fail(path, f"frame of reference {', '.join(sorted(frames))} does not match the CT series' "
                    f"{series.frame_of_reference_uid}")
    rois = {}
    for item in _get(ds, path, "StructureSetROISequence"):
        number, name = item.get("ROINumber"), item.get("ROIName")
        if number is None or not name:
            _fail(path, "a StructureSetROISequence item lacks ROINumber or ROIName")
        frame = str(item.get("ReferencedFrameOfReferenceUID", series.frame_of_reference_uid))
        if frame != series.frame_of_reference_uid:
            _fail(path, f"ROI {name!r} is on frame of reference {frame}, not the CT series' {series.frame_of_reference_uid}")
        rois[int(number)] = str(name).strip()
    grid = Grid((len(series.native_z_mm),) + series.grid.shape[1:], (1.0,) + series.grid.spacing_mm[1:],
                (0.0,) + series.grid.origin_mm[1:])
    z = series.native_z_mm
    half_gap = np.min(np.diff(z)) / 2 + POSITION_TOLERANCE_MM
    structures, unmapped, source_of = {}, [], {}
    for item in _get(ds, path, "ROIContourSequence"):
        number = item.get("ReferencedROINumber")
        if number is None or int(number) not in rois:
            _fail(path, f"ROIContourSequence refers to ROI number {number}, which StructureSetROISequence lacks")
        dicom_name = rois[int(number)]
        contours = item.get("ContourSequence")
        if not contours:
            _fail(path, f"ROI {dicom_name!r} has no contours (empty structure)")
        per_slice = {}
        for contour in contours:
            kind = str(contour.get("ContourGeometricType", ""))
            points = contour_numbers(contour)
            if points is None:
                _fail(path, f"ROI {dicom_name!r}: ContourData holds values that are not numbers")
            if points.size == 0:
                _fail(path, f"ROI {dicom_name!r}: a contour has no points (empty ContourData)")
            declared = contour.get("NumberOfContourPoints")
            if points.size % 3 or (declared is not None and int(declared) * 3 != points.size) or not np.all(np.isfinite(points)):
                _fail(path, f"ROI {dicom_name!r}: ContourData has {points.size} values, not 3 x NumberOfContourPoints "
                            f"({declared}) finite numbers")
            points = points.reshape(-1, 3)
            if kind != "CLOSED_PLANAR":
                _fail(path, f"ROI {dicom_name!r}: ContourGeometricType {kind!r}; only CLOSED_PLANAR contours are read")
            if len(points) < 3:
                _fail(path, f"ROI {dicom_name!r}: a closed contour needs at least 3 points, got {len(points)}")
            if np.ptp(points[:, 2]) > POSITION_TOLERANCE_MM:
                _fail(path, f"ROI {dicom_name!r}: a contour's points span z {points[:, 2].min():g}..{points[:, 2].max():g} mm, "
                            "not one axial plane")
            k = int(np.argmin(np.abs(z - points[0, 2])))
            if abs(z[k] - points[0, 2]) > half_gap:
                _fail(path, f"ROI {dicom_name!r}: a contour at z = {points[0, 2]:g} mm lies on no CT slice "
                            f"({z[0]:g}..{z[-1]:g} mm)")
            per_slice.setdefault(k, []).append(points[:, :2])
        occupancy = np.zeros(grid.shape, np.float32)
        for k, polygons in per_slice.items():
            found = _polygon_occupancy(polygons, grid, k)
            if found is not None:
                (rows, columns), values = found
                occupancy[k, rows, columns] = values
        name = map_structure_name(dicom_name, name_map)
        if name is None:
            name = dicom_name
            unmapped.append(dicom_name)
        if name in structures:
            _fail(path, f"ROIs {source_of[name]!r} and {dicom_name!r} both map to structure {name!r}; "
                        "rename one or pass a name_map")
        structures[name], source_of[name] = occupancy, dicom_name
    return structures, unmapped


def _find_structure_set(folder: Path):
    found = []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        if str(_dcmread(path).get("Modality", "")) == "RTSTRUCT":
            found.append(path)
    if len(found) > 1:
        raise DicomImportError(f"{folder}: {len(found)} RT Structure Sets ({', '.join(p.name for p in found)}); "
                               "name the one to use")
    return found[0] if found else None


def from_dicom(ct_dir, rtstruct=None, *, name_map: Mapping[str, str] | None = None, spacing_mm=None,
               level: str | None = None) -> Scene:
    """A Scene from a CT series and its RT Structure Set.

    Parameters
    ----------
    ct_dir : str or os.PathLike
        Folder of the CT slices (every file DICOM; RT objects there are passed over).
    rtstruct : str or os.PathLike, optional
        The RT Structure Set; by default the one RTSTRUCT in ``ct_dir`` if there is one
        (none: a scene without structures).
    name_map : mapping of str to str, optional
        Extra {DICOM ROI name: spinesim name} entries over ``scenes/data/dicom_names.toml``.
    spacing_mm : tuple of float, optional
        Resample the scene onto this (z, y, x) spacing over the same box (e.g. a planning
        grid); by default the series' own spacing.
    level : str, optional
        The index vertebral level (e.g. ``"T10"``), which DICOM does not carry.

    Returns
    -------
    Scene
        Density from HU through the materials table, structures as fractional occupancy;
        ``clinical`` holds ``dicom`` (UIDs, patient, files) and ``unmapped_structures``;
        ``history`` says what was imported and resampled.

    Raises
    ------
    DicomImportError
        See :func:`read_ct_series` and :func:`read_structure_set`; nothing is returned
        half-imported.
    """
    folder = Path(ct_dir)
    series = read_ct_series(folder)
    if rtstruct is None:
        rtstruct = _find_structure_set(folder)
    structures, unmapped = ({}, []) if rtstruct is None else read_structure_set(rtstruct, series, name_map=name_map)
    z_new = series.grid.axes_mm()[0]
    if len(z_new) != len(series.native_z_mm) or not np.allclose(z_new, series.native_z_mm, atol=POSITION_TOLERANCE_MM):
        structures = {name: _resample_z(o, series.native_z_mm, z_new) for name, o in structures.items()}
    hu, grid = series.hu, series.grid
    history = [f"imported from DICOM: CT series {series.series_uid} ({len(series.files)} slices)"
               + (f", structure set {Path(rtstruct).name}" if rtstruct is not None else ""), *series.notes]
    if spacing_mm is not None:
        target = grid.with_spacing(spacing_mm)
        hu = resample_volume(hu, grid, target)
        structures = {name: resample_volume(o, grid, target) for name, o in structures.items()}
        history.append(f"resampled to {target.spacing_mm} mm")
        grid = target
    if unmapped:
        history.append(f"structures kept under their DICOM names (not in the name map): {', '.join(unmapped)}")
    empty = [name for name, o in structures.items() if not np.any(o > 0)]
    if empty:
        raise DicomImportError(f"{rtstruct}: structures {', '.join(empty)} cover no voxel of the CT grid")
    scene = scene_from_arrays(spacing_mm=grid.spacing_mm, origin_mm=grid.origin_mm, hu=hu, structures=structures,
                              level=level, clinical={"dicom": {"series_uid": series.series_uid,
                                                               "study_uid": series.study_uid,
                                                               "frame_of_reference_uid": series.frame_of_reference_uid,
                                                               "patient": series.patient,
                                                               "files": [str(p) for p in series.files]},
                                                     "unmapped_structures": tuple(unmapped)})
    return scene.evolve(history=tuple(history))

