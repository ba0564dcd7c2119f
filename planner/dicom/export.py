"""Write a scene and its plan as a DICOM RT set: CT, RT Structure Set, RT Dose, RT Plan.

One export is one study on one frame of reference: the Study, Frame of Reference and four
Series UIDs are generated once (pydicom's UID root, random suffix) and every object refers
to the others by them. The patient is marked as a phantom (name ``SPINESIM^PHANTOM``, id
``PHANTOM-<case>``, Patient Identity Removed YES) and every file carries
:data:`~planner.common.safety.DISCLAIMER` in Patient Comments (and in its own description
tag where the object has one).

- CT: one slice per axial plane of the scene's grid; HU from the mass density through the
  inverse of the teaching calibration (``scenes/data/materials.toml`` [ct_calibration]),
  signed 16-bit, slope 1, intercept 0.
- RT Structure Set: every non-empty structure as closed planar contours on the CT slices
  (:mod:`.contours`: the 0.5 occupancy iso-line).
- RT Dose: the plan's total dose on the scene's grid, unsigned 32-bit with DoseGridScaling
  (relative error below 1e-9 of the maximum), frames at GridFrameOffsetVector from the
  first slice.
- RT Plan: prescription (target dose on the PTV, fractions), IEC 61217 gantry angles,
  isocentre, jaws, and each beam's beamlet fluence as a compensator transmission map
  (:data:`FLUENCE_STATEMENT` says what a viewer can and cannot do with it).

The set is written into a temporary folder beside the target and renamed into place: a
failure leaves nothing. pydicom (the ``dicom`` extra) is imported inside the functions.
"""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scenes.grid import Grid
from scenes.materials import density_to_hu
from scenes.scene import Scene

from planner.common.safety import DISCLAIMER

from .contours import mask_contours

__all__ = ["export_dicom", "DicomExport", "FLUENCE_STATEMENT", "SOP_CLASSES"]

#: DICOM storage SOP classes (PS3.4 Annex B.5).
SOP_CLASSES = {"CT": "1.2.840.10008.5.1.4.1.1.2", "RTSTRUCT": "1.2.840.10008.5.1.4.1.1.481.3",
               "RTDOSE": "1.2.840.10008.5.1.4.1.1.481.2", "RTPLAN": "1.2.840.10008.5.1.4.1.1.481.5"}
_STUDY_COMPONENT = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management SOP class, as RTSTRUCTs reference studies
#: What the RT Plan's fluence maps are and are not (written into RTPlanDescription).
FLUENCE_STATEMENT = (
    "spinesim beamlet plan. Each beam's optimised fluence is stored as a compensator transmission map "
    "(CompensatorTransmissionData): one pixel per square beamlet on the isocentre plane, in the IEC 61217 "
    "beam-limiting-device frame (columns along X, rows along Y, first row at +Y), relative to the beam's "
    "largest beamlet weight, which BeamDescription gives in spinesim's unit (Gy per unit weight is in the "
    "influence matrix, not here). A viewer can show the beams, gantry angles, isocentre, jaws, prescription "
    "and the fluence maps as images, and the RT Dose as computed by spinesim. It cannot recompute the dose "
    "from this plan: there is no MLC leaf sequence, no monitor units (BeamMeterset) and no machine model "
    "behind the treatment machine name; the fluence is idealised, not deliverable. " + DISCLAIMER + "."
)
_INTERPRETED = {"gtv": "GTV", "ctv": "CTV", "ptv": "PTV", "body_outline": "EXTERNAL", "cord_prv": "AVOIDANCE"}
_PALETTE = ((255, 0, 0), (0, 160, 255), (255, 200, 0), (0, 200, 0), (200, 0, 200), (255, 128, 0), (0, 200, 200),
            (128, 128, 255), (255, 105, 180), (160, 82, 45))
_COLOURS = {"gtv": (255, 0, 0), "ctv": (255, 128, 0), "ptv": (255, 0, 255), "spinal_cord": (255, 255, 0),
            "thecal_sac": (0, 255, 255), "cord_prv": (200, 200, 0), "body_outline": (0, 255, 0), "esophagus": (160, 82, 45)}


@dataclass(frozen=True)
class DicomExport:
    """What :func:`export_dicom` wrote.

    Attributes
    ----------
    folder : pathlib.Path
        The set's folder.
    files : dict
        {modality: list of file paths} for CT, RTSTRUCT and, with a plan, RTDOSE and RTPLAN.
    uids : dict
        The study, frame of reference and per-modality series UIDs.
    structures : tuple of str
        The structures written, in ROI-number order (ROI number = position + 1).
    skipped : tuple of str
        Structures with no voxel more than half inside (nothing to contour), not written.
    """

    folder: Path
    files: dict
    uids: dict
    structures: tuple
    skipped: tuple = ()


def _ds_number(value: float) -> str:
    """A decimal string (DS, at most 16 characters) that reads back as ``value`` when it can."""
    value = float(value)
    if value == 0:
        return "0"
    text = repr(value)
    if len(text) <= 16:
        return text
    for digits in range(15, 5, -1):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return text
    raise ValueError(f"{value} does not fit a DICOM decimal string")


def _dataset(modality: str, sop_instance: str, uids: dict, when: datetime.datetime, patient: dict):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SOP_CLASSES[modality]
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID, ds.SOPInstanceUID = SOP_CLASSES[modality], sop_instance
    ds.Modality = modality
    date, time = when.strftime("%Y%m%d"), when.strftime("%H%M%S")
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    ds.StudyDate, ds.StudyTime, ds.SeriesDate, ds.SeriesTime = date, time, date, time
    ds.PatientName, ds.PatientID = patient["name"], patient["id"]
    ds.PatientBirthDate, ds.PatientSex = "", "O"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "synthetic phantom (spinesim): no patient data"
    ds.PatientComments = DISCLAIMER
    ds.StudyInstanceUID, ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = uids["study"], "SPINESIM", "", ""
    ds.StudyDescription = "spinesim phantom - not for clinical use"
    ds.SeriesInstanceUID = uids[modality]
    ds.SeriesNumber = {"CT": 1, "RTSTRUCT": 2, "RTPLAN": 3, "RTDOSE": 4}[modality]
    ds.SeriesDescription = f"spinesim {modality} - teaching, not clinical"
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = uids["frame"], ""
    ds.Manufacturer, ds.ManufacturerModelName, ds.SoftwareVersions = "spinesim", "spinesim", _version()
    ds.OperatorsName = ""
    return ds


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("spinesim")
    except Exception:  # noqa: BLE001 - running from a source tree without metadata
        return "unknown"


def _sequence(items):
    from pydicom.sequence import Sequence

    return Sequence(list(items))


def _item(**attributes):
    from pydicom.dataset import Dataset

    ds = Dataset()
    for key, value in attributes.items():
        setattr(ds, key, value)
    return ds


def _write_ct(scene: Scene, folder: Path, uids: dict, when, patient) -> list:
    grid = scene.grid
    hu = np.clip(np.rint(density_to_hu(scene.density_g_cc)), -32768, 32767).astype(np.int16)
    z_mm, y_mm, x_mm = grid.axes_mm()
    files = []
    for k in range(grid.shape[0]):
        from pydicom.uid import generate_uid

        uid = generate_uid()
        ds = _dataset("CT", uid, uids, when, patient)
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        ds.PatientPosition = "HFS"
        ds.InstanceNumber, ds.AcquisitionNumber, ds.BodyPartExamined = k + 1, "", "SPINE"
        ds.ImagePositionPatient = [_ds_number(x_mm[0]), _ds_number(y_mm[0]), _ds_number(z_mm[k])]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.SliceLocation = _ds_number(z_mm[k])
        ds.SliceThickness = _ds_number(grid.spacing_mm[0])
        ds.PixelSpacing = [_ds_number(grid.spacing_mm[1]), _ds_number(grid.spacing_mm[2])]
        ds.Rows, ds.Columns = grid.shape[1], grid.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "HU"
        ds.KVP = ""
        ds.ImageComments = "synthesised from phantom densities (materials.toml [ct_calibration]); " + DISCLAIMER
        ds.PixelData = np.ascontiguousarray(hu[k]).tobytes()
        path = folder / f"CT.{k + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append((path, uid, z_mm[k]))
    return files


def _contour_image(ct_uid: str):
    return _item(ReferencedSOPClassUID=SOP_CLASSES["CT"], ReferencedSOPInstanceUID=ct_uid)


def _write_structures(folder: Path, uids: dict, when, patient, ct_files, contours_of: dict) -> tuple:
    from pydicom.config import disable_value_validation
    from pydicom.uid import generate_uid

    uid = generate_uid()
    ds = _dataset("RTSTRUCT", uid, uids, when, patient)
    ds.StructureSetLabel = "spinesim"
    ds.StructureSetName = "spinesim phantom"
    ds.StructureSetDescription = DISCLAIMER
    ds.StructureSetDate, ds.StructureSetTime = when.strftime("%Y%m%d"), when.strftime("%H%M%S")
    ds.ApprovalStatus = "UNAPPROVED"
    series = _item(SeriesInstanceUID=uids["CT"], ContourImageSequence=_sequence(_contour_image(u) for _, u, _ in ct_files))
    study = _item(ReferencedSOPClassUID=_STUDY_COMPONENT, ReferencedSOPInstanceUID=uids["study"],
                  RTReferencedSeriesSequence=_sequence([series]))
    ds.ReferencedFrameOfReferenceSequence = _sequence([_item(FrameOfReferenceUID=uids["frame"],
                                                             RTReferencedStudySequence=_sequence([study]))])
    rois, contours, observations = [], [], []
    with disable_value_validation():  # every number comes from _ds_number: valid DS by construction
        for number, name in enumerate(contours_of, start=1):
            rois.append(_item(ROINumber=number, ReferencedFrameOfReferenceUID=uids["frame"], ROIName=name,
                              ROIGenerationAlgorithm="AUTOMATIC"))
            items = []
            for k, points in contours_of[name]:
                items.append(_item(ContourImageSequence=_sequence([_contour_image(ct_files[k][1])]),
                                   ContourGeometricType="CLOSED_PLANAR", NumberOfContourPoints=len(points),
                                   ContourData=[_ds_number(v) for v in np.round(points, 4).ravel()]))
            colour = _COLOURS.get(name, _PALETTE[number % len(_PALETTE)])
            contours.append(_item(ROIDisplayColor=list(colour), ReferencedROINumber=number, ContourSequence=_sequence(items)))
            observations.append(_item(ObservationNumber=number, ReferencedROINumber=number,
                                      RTROIInterpretedType=_INTERPRETED.get(name, "ORGAN"), ROIInterpreter=""))
    ds.StructureSetROISequence = _sequence(rois)
    ds.ROIContourSequence = _sequence(contours)
    ds.RTROIObservationsSequence = _sequence(observations)
    path = folder / "RS.spinesim.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path, uid


def _write_dose(dose_gy: np.ndarray, grid: Grid, folder: Path, uids: dict, when, patient, plan_uid: str) -> Path:
    from pydicom.tag import Tag
    from pydicom.uid import generate_uid

    dose = np.asarray(dose_gy, float)
    if dose.shape != grid.shape or not np.all(np.isfinite(dose)) or dose.min() < 0:
        raise ValueError(f"dose must be finite, >= 0 Gy and of shape {grid.shape}, got {dose.shape}")
    top = float(dose.max())
    scaling = top / np.iinfo(np.uint32).max if top > 0 else 1.0
    scaling = float(_ds_number(scaling))  # the scaling a reader will see
    stored = np.clip(np.rint(dose / scaling), 0, np.iinfo(np.uint32).max).astype(np.uint32)
    ds = _dataset("RTDOSE", generate_uid(), uids, when, patient)
    z_mm, y_mm, x_mm = grid.axes_mm()
    ds.ImagePositionPatient = [_ds_number(x_mm[0]), _ds_number(y_mm[0]), _ds_number(z_mm[0])]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.PixelSpacing = [_ds_number(grid.spacing_mm[1]), _ds_number(grid.spacing_mm[2])]
    ds.SliceThickness = _ds_number(grid.spacing_mm[0])
    ds.GridFrameOffsetVector = [_ds_number(z - z_mm[0]) for z in z_mm]
    ds.NumberOfFrames = grid.shape[0]
    ds.FrameIncrementPointer = Tag(0x3004, 0x000C)
    ds.Rows, ds.Columns = grid.shape[1], grid.shape[2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 32, 32, 31, 0
    ds.DoseUnits, ds.DoseType, ds.DoseSummationType = "GY", "PHYSICAL", "PLAN"
    ds.DoseGridScaling = _ds_number(scaling)
    ds.TissueHeterogeneityCorrection = "IMAGE"
    ds.DoseComment = DISCLAIMER
    ds.ReferencedRTPlanSequence = _sequence([_item(ReferencedSOPClassUID=SOP_CLASSES["RTPLAN"],
                                                   ReferencedSOPInstanceUID=plan_uid)])
    ds.PixelData = np.ascontiguousarray(stored).tobytes()
    path = folder / "RD.spinesim.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def _beam_item(number: int, beam, weights, machine: str, dose_reference_uid: str):
    fluence, (v0, u0), (pitch_v, pitch_u) = beam.fluence_map(weights)
    top = float(fluence.max())
    relative = fluence / top if top > 0 else fluence
    rows, columns = fluence.shape
    # IEC 61217 beam-limiting-device frame = spinesim's beam (u, v) (planner/radiotherapy/beams.py):
    # X along u, Y along v. The map's first row is the one at the largest v (+Y, "upper").
    transmission = relative[::-1]
    u_low, u_high = u0 - pitch_u / 2, u0 + pitch_u * (columns - 0.5)
    v_low, v_high = v0 - pitch_v / 2, v0 + pitch_v * (rows - 0.5)
    isocentre = [_ds_number(beam.isocentre_mm[2]), _ds_number(beam.isocentre_mm[1]), _ds_number(beam.isocentre_mm[0])]
    jaws = _sequence([_item(RTBeamLimitingDeviceType="ASYMX", LeafJawPositions=[_ds_number(u_low), _ds_number(u_high)]),
                      _item(RTBeamLimitingDeviceType="ASYMY", LeafJawPositions=[_ds_number(v_low), _ds_number(v_high)])])
    first = _item(ControlPointIndex=0, NominalBeamEnergy="6", CumulativeMetersetWeight="0",
                  GantryAngle=_ds_number(beam.gantry_deg), GantryRotationDirection="NONE", BeamLimitingDeviceAngle="0",
                  BeamLimitingDeviceRotationDirection="NONE", PatientSupportAngle="0",
                  PatientSupportRotationDirection="NONE", TableTopEccentricAngle="0",
                  TableTopEccentricRotationDirection="NONE", IsocenterPosition=isocentre,
                  BeamLimitingDevicePositionSequence=jaws,
                  ReferencedDoseReferenceSequence=_sequence([_item(ReferencedDoseReferenceNumber=1,
                                                                   CumulativeDoseReferenceCoefficient="0")]))
    last = _item(ControlPointIndex=1, CumulativeMetersetWeight="1",
                 ReferencedDoseReferenceSequence=_sequence([_item(ReferencedDoseReferenceNumber=1,
                                                                  CumulativeDoseReferenceCoefficient="1")]))
    compensator = _item(CompensatorNumber=1, CompensatorID=f"FLUENCE{number}", MaterialID="",
                        CompensatorType="STANDARD", CompensatorDivergence="ABSENT",
                        CompensatorMountingPosition="SOURCE_SIDE", CompensatorRows=rows, CompensatorColumns=columns,
                        CompensatorPixelSpacing=[_ds_number(pitch_v), _ds_number(pitch_u)],
                        CompensatorPosition=[_ds_number(u_low), _ds_number(v_high)],
                        CompensatorTransmissionData=[_ds_number(v) for v in np.round(transmission, 9).ravel()],
                        SourceToCompensatorTrayDistance="", AccessoryCode="")
    return _item(BeamNumber=number, BeamName=f"G{beam.gantry_deg:g}"[:16], BeamType="STATIC", RadiationType="PHOTON",
                 BeamDescription=f"spinesim beamlet fluence; largest beamlet weight {_ds_number(top)}; "
                                 f"{beam.n_beamlets} beamlets of {beam.beamlet_mm:g} mm",
                 TreatmentMachineName=machine, PrimaryDosimeterUnit="MU",
                 SourceAxisDistance=_ds_number(beam.source_axis_distance_mm),
                 BeamLimitingDeviceSequence=_sequence([_item(RTBeamLimitingDeviceType="ASYMX", NumberOfLeafJawPairs=1),
                                                       _item(RTBeamLimitingDeviceType="ASYMY", NumberOfLeafJawPairs=1)]),
                 TreatmentDeliveryType="TREATMENT", NumberOfWedges=0, NumberOfCompensators=1,
                 CompensatorSequence=_sequence([compensator]), NumberOfBoli=0, NumberOfBlocks=0,
                 FinalCumulativeMetersetWeight="1", NumberOfControlPoints=2,
                 ControlPointSequence=_sequence([first, last]), ReferencedPatientSetupNumber=1)


def _write_plan(plan, names: tuple, folder: Path, uids: dict, when, patient, plan_uid: str, rtstruct_uid: str) -> Path:
    from pydicom.uid import generate_uid

    ds = _dataset("RTPLAN", plan_uid, uids, when, patient)
    ds.RTPlanLabel = "SPINESIM"
    ds.RTPlanName = f"{plan.case_id} {plan.regimen.dose_gy:g}Gy/{plan.regimen.fractions}fx"[:64]
    ds.RTPlanDescription = FLUENCE_STATEMENT
    ds.RTPlanDate, ds.RTPlanTime = when.strftime("%Y%m%d"), when.strftime("%H%M%S")
    ds.RTPlanGeometry = "PATIENT"
    ds.ApprovalStatus = "UNAPPROVED"
    ds.ReferencedStructureSetSequence = _sequence([_item(ReferencedSOPClassUID=SOP_CLASSES["RTSTRUCT"],
                                                         ReferencedSOPInstanceUID=rtstruct_uid)])
    ds.PatientSetupSequence = _sequence([_item(PatientSetupNumber=1, PatientPosition="HFS")])
    reference_uid = generate_uid()
    target = _item(DoseReferenceNumber=1, DoseReferenceUID=reference_uid, DoseReferenceStructureType="VOLUME",
                   DoseReferenceDescription="PTV (coverage: D90% = prescription unless an organ limit binds)",
                   DoseReferenceType="TARGET", TargetPrescriptionDose=_ds_number(plan.regimen.dose_gy))
    if "ptv" in names:
        target.ReferencedROINumber = names.index("ptv") + 1
    ds.DoseReferenceSequence = _sequence([target])
    beams = plan.beams.beams
    per_beam = plan.beams.split(plan.weights)
    machine = "SPINESIM_6MV"
    ds.BeamSequence = _sequence(_beam_item(n, beam, w, machine, reference_uid)
                                for n, (beam, w) in enumerate(zip(beams, per_beam), start=1))
    ds.FractionGroupSequence = _sequence([_item(
        FractionGroupNumber=1, NumberOfFractionsPlanned=int(plan.regimen.fractions), NumberOfBeams=len(beams),
        NumberOfBrachyApplicationSetups=0,
        ReferencedBeamSequence=_sequence(_item(ReferencedBeamNumber=n) for n in range(1, len(beams) + 1)))])
    path = folder / "RP.spinesim.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def _prepare_folder(folder: Path) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ValueError(f"--dicom folder {str(folder)!r} exists and is not empty: give a new or empty folder")
    if not folder.parent.is_dir():
        raise FileNotFoundError(f"--dicom: the folder above {str(folder)!r} does not exist")


def export_dicom(scene: Scene | None, folder, *, plan=None, case_id: str | None = None) -> DicomExport:
    """Write a scene (CT + RT Structure Set) and, with a plan, its RT Dose and RT Plan.

    Parameters
    ----------
    scene : Scene or None
        The scene to write; None takes the plan's (planned) scene, with its targets.
    folder : str or os.PathLike
        A folder that does not exist yet or is empty; its parent must exist. The set appears
        there whole or not at all (written beside it, then renamed).
    plan : PlanResult, optional
        A plan (:func:`planner.radiotherapy.plan.plan_case` or anything with its ``case_id``,
        ``regimen``, ``weights``, ``dose_gy``, ``beams`` and ``scene``) on ``scene``'s grid.
    case_id : str, optional
        The case named in the patient id (default: the plan's case, else 'scene').

    Returns
    -------
    DicomExport
        The folder, the files by modality, the UIDs and the structures written.
    """
    folder = Path(folder)
    _prepare_folder(folder)
    if scene is None:
        if plan is None or plan.scene is None:
            raise ValueError("export_dicom needs a scene or a plan that carries its scene")
        scene = plan.scene
    if plan is not None and np.shape(plan.dose_gy) != scene.grid.shape:
        raise ValueError(f"the plan's dose grid {np.shape(plan.dose_gy)} is not the scene's {scene.grid.shape}")
    from pydicom.uid import generate_uid

    case = case_id or (plan.case_id if plan is not None else "scene")
    patient = {"name": "SPINESIM^PHANTOM", "id": f"PHANTOM-{case}"[:64]}
    uids = {"study": generate_uid(), "frame": generate_uid(), **{m: generate_uid() for m in SOP_CLASSES}}
    when = datetime.datetime.now()
    contours_of = {name: mask_contours(scene.structure(name).full(), scene.grid) for name in scene.structures}
    skipped = tuple(name for name, found in contours_of.items() if not found)
    contours_of = {name: found for name, found in contours_of.items() if found}
    names = tuple(contours_of)
    temporary = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
    try:
        ct = _write_ct(scene, temporary, uids, when, patient)
        files = {"CT": [p for p, _, _ in ct]}
        rtstruct, rtstruct_uid = _write_structures(temporary, uids, when, patient, ct, contours_of)
        files["RTSTRUCT"] = [rtstruct]
        if plan is not None:
            plan_uid = generate_uid()
            files["RTPLAN"] = [_write_plan(plan, names, temporary, uids, when, patient, plan_uid, rtstruct_uid)]
            files["RTDOSE"] = [_write_dose(plan.dose_gy, scene.grid, temporary, uids, when, patient, plan_uid)]
        os.chmod(temporary, 0o777 & ~_umask())
        if folder.exists():
            folder.rmdir()  # empty (checked): the rename below needs the name free
        os.replace(temporary, folder)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    files = {m: [folder / p.name for p in paths] for m, paths in files.items()}
    return DicomExport(folder, files, uids, names, skipped)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask
