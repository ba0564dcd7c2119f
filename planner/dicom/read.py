"""Read back what :mod:`.export` writes: the RT Dose as a volume, the RT Plan's beams.

The CT and structure set are read by :func:`scenes.from_dicom` (a Scene); this module reads
the two objects a scene does not hold. Errors name the file and the problem
(:class:`scenes.dicom_import.DicomImportError`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scenes.dicom_import import DicomImportError
from scenes.grid import Grid

__all__ = ["read_dose", "read_plan", "PlanBeam", "DicomPlan", "find_objects"]


def _read(path, modality: str):
    import pydicom
    from pydicom.errors import InvalidDicomError

    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError:
        raise DicomImportError(f"{path}: not a DICOM file (no DICM preamble)") from None
    except Exception as error:  # truncated or corrupt
        raise DicomImportError(f"{path}: cannot be read as DICOM ({type(error).__name__}: {error})") from None
    if str(ds.get("Modality", "")) != modality:
        raise DicomImportError(f"{path}: Modality {ds.get('Modality', '(missing)')!r} is not {modality}")
    return path, ds


def find_objects(folder) -> dict:
    """The DICOM files of a folder by modality.

    Parameters
    ----------
    folder : str or os.PathLike
        A folder of DICOM files (hidden files skipped).

    Returns
    -------
    dict
        {modality: sorted list of pathlib.Path}.
    """
    import pydicom

    found = {}
    for path in sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            modality = str(pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality"]).get("Modality", ""))
        except Exception as error:  # noqa: BLE001 - report, don't guess
            raise DicomImportError(f"{path}: cannot be read as DICOM ({type(error).__name__}: {error})") from None
        found.setdefault(modality, []).append(path)
    return found


def read_dose(path) -> tuple[np.ndarray, Grid]:
    """An RT Dose file as a (z, y, x) volume in Gy and its grid.

    Parameters
    ----------
    path : str or os.PathLike
        The RTDOSE file (axial frames, GridFrameOffsetVector relative to the first frame or
        absolute, as PS3.3 C.8.8.3.2 allows).

    Returns
    -------
    dose_gy : numpy.ndarray
        Stored values times DoseGridScaling, float64.
    grid : Grid
        Its grid in patient LPS mm.
    """
    path, ds = _read(path, "RTDOSE")
    try:
        if str(ds.get("DoseUnits", "")).upper() != "GY":
            raise DicomImportError(f"{path}: DoseUnits {ds.get('DoseUnits')!r}; only GY is read")
        if not np.allclose([float(v) for v in ds.ImageOrientationPatient], [1, 0, 0, 0, 1, 0], atol=1e-4):
            raise DicomImportError(f"{path}: only axial dose grids (ImageOrientationPatient 1,0,0,0,1,0) are read")
        scaling = float(ds.DoseGridScaling)
        pixels = np.asarray(ds.pixel_array, float)
        if pixels.ndim == 2:
            pixels = pixels[None]
        offsets = np.array([float(v) for v in ds.GridFrameOffsetVector])
        x0, y0, z0 = (float(v) for v in ds.ImagePositionPatient)
        if offsets.size != pixels.shape[0]:
            raise DicomImportError(f"{path}: GridFrameOffsetVector has {offsets.size} entries for {pixels.shape[0]} frames")
        z = offsets + (z0 if offsets[0] == 0 else 0.0)
        gaps = np.diff(z)
        if gaps.size and (np.any(gaps <= 0) or np.ptp(gaps) > 1e-3):
            raise DicomImportError(f"{path}: dose frames are not equally spaced and increasing")
        row_mm, column_mm = (float(v) for v in ds.PixelSpacing)
        dz = float(gaps[0]) if gaps.size else float(ds.get("SliceThickness", 1.0) or 1.0)
    except DicomImportError:
        raise
    except Exception as error:  # a missing or corrupt tag
        raise DicomImportError(f"{path}: cannot be read as RT Dose ({type(error).__name__}: {error})") from None
    return pixels * scaling, Grid(pixels.shape, (dz, row_mm, column_mm), (z[0], y0, x0))


@dataclass(frozen=True, eq=False)
class PlanBeam:
    """One beam of an RT Plan as spinesim wrote it.

    Attributes
    ----------
    name : str
    gantry_deg, couch_deg, collimator_deg : float
        IEC 61217 angles of the first control point.
    isocentre_mm : tuple of float
        (z, y, x) patient LPS mm.
    source_axis_distance_mm : float
    fluence : numpy.ndarray
        Relative fluence map (rows along IEC Y from +Y down, columns along X), or None.
    pixel_mm : tuple of float
        (row, column) pitch of the map on the isocentre plane.
    largest_weight : float
        The beam's largest beamlet weight (BeamDescription), NaN if absent.
    """

    name: str
    gantry_deg: float
    couch_deg: float
    collimator_deg: float
    isocentre_mm: tuple
    source_axis_distance_mm: float
    fluence: np.ndarray | None = field(repr=False)
    pixel_mm: tuple
    largest_weight: float


@dataclass(frozen=True, eq=False)
class DicomPlan:
    """An RT Plan's prescription and beams.

    Attributes
    ----------
    label : str
    prescription_gy : float
        TargetPrescriptionDose of the target dose reference (NaN if absent).
    fractions : int
    beams : tuple of PlanBeam
    description : str
        RTPlanDescription (what the fluence maps are).
    """

    label: str
    prescription_gy: float
    fractions: int
    beams: tuple
    description: str


def read_plan(path) -> DicomPlan:
    """An RT Plan's prescription, fractions and beams (angles, isocentre, fluence maps).

    Parameters
    ----------
    path : str or os.PathLike
        The RTPLAN file.

    Returns
    -------
    DicomPlan
        Angles as written (DS decimal strings read as float).
    """
    path, ds = _read(path, "RTPLAN")
    try:
        prescription = float("nan")
        for reference in ds.get("DoseReferenceSequence", []):
            if "TargetPrescriptionDose" in reference:
                prescription = float(reference.TargetPrescriptionDose)
        fractions = int(ds.FractionGroupSequence[0].NumberOfFractionsPlanned)
        beams = []
        for item in ds.BeamSequence:
            point = item.ControlPointSequence[0]
            x, y, z = (float(v) for v in point.IsocenterPosition)
            fluence, pixel = None, (float("nan"), float("nan"))
            if "CompensatorSequence" in item and len(item.CompensatorSequence):
                compensator = item.CompensatorSequence[0]
                shape = (int(compensator.CompensatorRows), int(compensator.CompensatorColumns))
                fluence = np.array([float(v) for v in compensator.CompensatorTransmissionData]).reshape(shape)
                pixel = tuple(float(v) for v in compensator.CompensatorPixelSpacing)
            weight = re.search(r"largest beamlet weight ([-+0-9.eE]+)", str(item.get("BeamDescription", "")))
            beams.append(PlanBeam(str(item.get("BeamName", "")), float(point.GantryAngle),
                                  float(point.get("PatientSupportAngle", 0) or 0),
                                  float(point.get("BeamLimitingDeviceAngle", 0) or 0), (z, y, x),
                                  float(item.SourceAxisDistance), fluence, pixel,
                                  float(weight.group(1)) if weight else float("nan")))
    except Exception as error:  # a missing or corrupt tag
        raise DicomImportError(f"{path}: cannot be read as RT Plan ({type(error).__name__}: {error})") from None
    return DicomPlan(str(ds.get("RTPlanLabel", "")), prescription, fractions, tuple(beams),
                     str(ds.get("RTPlanDescription", "")))
