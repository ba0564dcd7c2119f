"""A small CT series and RT Structure Set written with pydicom by hand, not by the exporter.

It is what another system might send: slices written in shuffled order under shuffled file
names, pixels stored unsigned with a rescale slope of 0.5 and intercept -1024, slice gaps
that differ (2, 2, 3, 3, 3 mm), TG-263-style structure names, a ring structure drawn as an
outer and an inner contour, and one structure no name map knows.

The phantom: a water cylinder (0 HU, radius 30 mm) with a bone disc (700 HU, radius 8 mm,
centre (x, y) = (0, 10) mm), centred on the origin, 64 x 64 pixels of 1.5 mm.
"""

from __future__ import annotations

import numpy as np

PIXELS, PIXEL_MM = 64, 1.5
Z_MM = (0.0, 2.0, 4.0, 7.0, 10.0, 13.0)
SLOPE, INTERCEPT = 0.5, -1024.0
CYLINDER_MM, BONE_MM, BONE_CENTRE = 30.0, 8.0, (0.0, 10.0)
CORD_MM, CORD_CENTRE = 5.0, (0.0, -8.0)
RING_MM = (12.0, 6.0)  # outer, inner radius around (0, -8)
FRAME = "1.2.826.0.1.3680043.8.498.1001"
SERIES = "1.2.826.0.1.3680043.8.498.1002"
STUDY = "1.2.826.0.1.3680043.8.498.1003"


def axis_mm() -> np.ndarray:
    """Pixel-centre coordinates (same along x and y), centred on 0."""
    return (np.arange(PIXELS) - (PIXELS - 1) / 2) * PIXEL_MM


def hu_slice() -> np.ndarray:
    x = axis_mm()[None, :]
    y = axis_mm()[:, None]
    hu = np.full((PIXELS, PIXELS), -1000.0)
    hu[x**2 + y**2 <= CYLINDER_MM**2] = 0.0
    hu[(x - BONE_CENTRE[0]) ** 2 + (y - BONE_CENTRE[1]) ** 2 <= BONE_MM**2] = 700.0
    return hu


def circle(radius: float, centre, z: float, points: int = 48) -> list[float]:
    angle = np.linspace(0, 2 * np.pi, points, endpoint=False)
    xyz = np.column_stack([centre[0] + radius * np.cos(angle), centre[1] + radius * np.sin(angle), np.full(points, z)])
    return [f"{v:.4f}" for v in xyz.ravel()]


def _base(modality: str, sop_class: str, uid: str):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = sop_class, uid, modality
    ds.PatientName, ds.PatientID = "TEST^HANDMADE", "HANDMADE01"
    ds.StudyInstanceUID, ds.FrameOfReferenceUID = STUDY, FRAME
    return ds


def write_ct(folder, *, rng=None) -> list:
    """The CT slices (shuffled order and names); returns the paths in z order."""
    rng = np.random.default_rng(rng)
    order = rng.permutation(len(Z_MM))
    stored = np.rint((hu_slice() - INTERCEPT) / SLOPE).astype(np.uint16)
    paths = [None] * len(Z_MM)
    for position, k in enumerate(order):
        uid = f"1.2.826.0.1.3680043.8.498.2{k:03d}"
        ds = _base("CT", "1.2.840.10008.5.1.4.1.1.2", uid)
        ds.SeriesInstanceUID = SERIES
        start = axis_mm()[0]
        ds.ImagePositionPatient = [f"{start:.3f}", f"{start:.3f}", f"{Z_MM[k]:.3f}"]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [PIXEL_MM, PIXEL_MM]
        ds.Rows = ds.Columns = PIXELS
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = str(SLOPE), str(INTERCEPT)
        ds.GantryDetectorTilt = "0"
        ds.PixelData = stored.tobytes()
        path = folder / f"img_{position:02d}_{rng.integers(1000, 9999)}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths[k] = path
    return paths


def write_structures(folder, *, frame: str = FRAME, name: str = "structures.dcm"):
    """The RT Structure Set: SpinalCord, GTV, BODY, a ring (outer + inner contour), Brain_Stem."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = _base("RTSTRUCT", "1.2.840.10008.5.1.4.1.1.481.3", "1.2.826.0.1.3680043.8.498.3001")
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.3002"
    reference = Dataset()
    reference.FrameOfReferenceUID = frame
    ds.ReferencedFrameOfReferenceSequence = Sequence([reference])
    rois = {"SpinalCord": [[circle(CORD_MM, CORD_CENTRE, z)] for z in Z_MM],
            "GTV": [[circle(BONE_MM, BONE_CENTRE, z)] for z in Z_MM[1:4]],
            "BODY": [[circle(CYLINDER_MM, (0.0, 0.0), z)] for z in Z_MM],
            "Ring": [[circle(RING_MM[0], CORD_CENTRE, z), circle(RING_MM[1], CORD_CENTRE, z)] for z in Z_MM[2:]],
            "Brain_Stem": [[circle(4.0, (15.0, -15.0), z)] for z in Z_MM[:2]]}
    structure_rois, contour_rois = [], []
    for number, (roi_name, planes) in enumerate(rois.items(), start=1):
        item = Dataset()
        item.ROINumber, item.ROIName, item.ReferencedFrameOfReferenceUID = number, roi_name, frame
        structure_rois.append(item)
        contours = []
        for plane in planes:
            for data in plane:
                contour = Dataset()
                contour.ContourGeometricType = "CLOSED_PLANAR"
                contour.NumberOfContourPoints = len(data) // 3
                contour.ContourData = data
                contours.append(contour)
        roi = Dataset()
        roi.ReferencedROINumber, roi.ContourSequence = number, Sequence(contours)
        contour_rois.append(roi)
    ds.StructureSetROISequence = Sequence(structure_rois)
    ds.ROIContourSequence = Sequence(contour_rois)
    path = folder / name
    ds.save_as(path, enforce_file_format=True)
    return path


def write_set(folder, *, rng=None):
    """CT and structure set into ``folder``; returns (CT paths in z order, RTSTRUCT path)."""
    return write_ct(folder, rng=rng), write_structures(folder)
