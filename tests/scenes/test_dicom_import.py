"""scenes.from_dicom on a set written by hand with pydicom (not by spinesim's exporter), and
every rejection: each names the file and the problem, nothing half-imported comes back."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import scenes  # noqa: E402
from scenes.dicom_import import DicomImportError, default_name_map, map_structure_name, read_ct_series  # noqa: E402
from scenes.materials import hu_to_density  # noqa: E402
from tests.scenes import handmade_dicom as handmade  # noqa: E402


@pytest.fixture
def handmade_set(tmp_path, rng):
    ct, rtstruct = handmade.write_set(tmp_path, rng=rng)
    return tmp_path, ct, rtstruct


def test_handmade_set_imports_whatever_the_slice_order(handmade_set):
    folder, ct, rtstruct = handmade_set
    scene = scenes.from_dicom(folder)
    # Unequal gaps (2 and 3 mm) resampled to the smallest over the same span: 13 mm / 7.
    assert scene.grid.shape == (8, handmade.PIXELS, handmade.PIXELS)
    assert scene.grid.spacing_mm == pytest.approx((13.0 / 7, handmade.PIXEL_MM, handmade.PIXEL_MM))
    assert scene.grid.origin_mm == pytest.approx((0.0, handmade.axis_mm()[0], handmade.axis_mm()[0]))
    assert any("resampled" in line for line in scene.history)
    # Rescale slope and intercept applied: water 0 HU -> 1.0 g/cc, bone 700 HU, air -1000 HU.
    j_water = int(np.argmin(np.abs(handmade.axis_mm() - 20.0)))
    j_bone = int(np.argmin(np.abs(handmade.axis_mm() - handmade.BONE_CENTRE[1])))
    i_mid = int(np.argmin(np.abs(handmade.axis_mm())))
    assert scene.density_g_cc[3, j_water, i_mid] == pytest.approx(1.0, abs=1e-6)
    assert scene.density_g_cc[3, j_bone, i_mid] == pytest.approx(float(hu_to_density(700.0)), abs=1e-5)
    assert scene.density_g_cc[3, 0, 0] == pytest.approx(float(hu_to_density(-1000.0)), abs=1e-6)


def test_structures_are_mapped_kept_and_listed(handmade_set):
    folder, _, rtstruct = handmade_set
    scene = scenes.from_dicom(folder, rtstruct)
    assert {"spinal_cord", "gtv", "body_outline", "Ring", "Brain_Stem"} == set(scene.structures)
    assert scene.clinical["unmapped_structures"] == ("Ring", "Brain_Stem")
    assert any("Ring, Brain_Stem" in line for line in scene.history)
    # A configurable map: extra entries send unknown names where the user wants.
    mapped = scenes.from_dicom(folder, rtstruct, name_map={"Brain_Stem": "brainstem", "ring": "cord_prv"})
    assert {"brainstem", "cord_prv"} <= set(mapped.structures)
    assert mapped.clinical["unmapped_structures"] == ()


def test_contours_fill_the_right_area_with_holes(handmade_set):
    folder, _, rtstruct = handmade_set
    scene = scenes.from_dicom(folder, rtstruct)
    pixel_cm2 = (handmade.PIXEL_MM / 10) ** 2
    # On a native slice (z = 0), the cord's area is a 5 mm circle's (48-gon: 0.3% smaller).
    k = 0
    cord = scene.structure("spinal_cord").full()[k].sum() * pixel_cm2
    assert cord == pytest.approx(np.pi * (handmade.CORD_MM / 10) ** 2, rel=0.03)
    # The ring (outer and inner contour on one plane) is read even-odd: a hole, not a disc.
    # A resampled slice between two native ones that both hold the ring (z = 7 and 10 mm).
    k = int(np.argmin(np.abs(scene.grid.axes_mm()[0] - 8.5)))
    assert 7.0 < scene.grid.axes_mm()[0][k] < 10.0
    ring = scene.structure("Ring").full()[k]
    outer, inner = (r / 10 for r in handmade.RING_MM)
    assert ring.sum() * pixel_cm2 == pytest.approx(np.pi * (outer**2 - inner**2), rel=0.03)
    centre = (int(np.argmin(np.abs(handmade.axis_mm() - handmade.CORD_CENTRE[1]))),
              int(np.argmin(np.abs(handmade.axis_mm() - handmade.CORD_CENTRE[0]))))
    assert ring[centre] == 0.0
    # Between native slices (resampled z) the occupancy is interpolated, never above 1.
    assert 0 <= scene.structure("body_outline").occupancy.max() <= 1


def test_name_map_ignores_case_spaces_and_underscores():
    assert map_structure_name("Spinal Cord") == map_structure_name("SPINAL_CORD") == "spinal_cord"
    assert map_structure_name("CORD") == map_structure_name("cord") == "spinal_cord"
    assert default_name_map()["spinalcord"] == "spinal_cord"
    assert map_structure_name("Femur_L") is None


def test_spacing_option_resamples_onto_a_planning_grid(handmade_set):
    folder, _, _ = handmade_set
    scene = scenes.from_dicom(folder, spacing_mm=(3.0, 3.0, 3.0), level="T10")
    assert scene.grid.spacing_mm == pytest.approx((3.0, 3.0, 3.0), rel=0.1)
    assert scene.level == "T10"
    assert scene.has("spinal_cord")


# --- rejections ---------------------------------------------------------------------------

def _rewrite(path, change):
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path, enforce_file_format=True)


def _rejected(folder, *words, rtstruct=None):
    with pytest.raises(DicomImportError) as caught:
        scenes.from_dicom(folder, rtstruct)
    message = str(caught.value)
    for word in words:
        assert word in message, message
    return message


def test_non_dicom_file_is_named(handmade_set):
    folder, _, _ = handmade_set
    (folder / "notes.txt").write_text("not an image")
    _rejected(folder, "notes.txt", "not a DICOM file")


def test_missing_tag_is_named(handmade_set):
    folder, ct, _ = handmade_set
    _rewrite(ct[2], lambda ds: delattr(ds, "ImagePositionPatient"))
    _rejected(folder, ct[2].name, "missing required tag ImagePositionPatient")


def test_mixed_series_are_refused(handmade_set):
    folder, ct, _ = handmade_set
    _rewrite(ct[3], lambda ds: setattr(ds, "SeriesInstanceUID", "1.2.3.4"))
    _rejected(folder, "SeriesInstanceUID", "mixed series")


def test_mismatched_frame_of_reference_is_refused(handmade_set):
    folder, _, rtstruct = handmade_set
    rtstruct.unlink()
    other = handmade.write_structures(folder, frame="1.2.826.0.1.3680043.8.498.9999")
    _rejected(folder, other.name, "frame of reference", "does not match")


def test_empty_contours_are_refused(handmade_set):
    folder, _, rtstruct = handmade_set

    def empty(ds):
        ds.ROIContourSequence[1].ContourSequence[0].ContourData = []

    _rewrite(rtstruct, empty)
    _rejected(folder, rtstruct.name, "GTV", "no points")

    def no_contours(ds):
        del ds.ROIContourSequence[1].ContourSequence

    _rewrite(rtstruct, no_contours)
    _rejected(folder, rtstruct.name, "GTV", "no contours")


@pytest.mark.parametrize("how", ["tag", "sheared"])
def test_gantry_tilt_is_refused(handmade_set, how):
    folder, ct, _ = handmade_set
    if how == "tag":
        _rewrite(ct[1], lambda ds: setattr(ds, "GantryDetectorTilt", "12"))
        _rejected(folder, ct[1].name, "gantry tilt 12 deg")
    else:  # positions that move in y from slice to slice: a tilted acquisition
        _rewrite(ct[4], lambda ds: setattr(ds, "ImagePositionPatient", [ds.ImagePositionPatient[0],
                                                                         float(ds.ImagePositionPatient[1]) + 2,
                                                                         ds.ImagePositionPatient[2]]))
        _rejected(folder, ct[4].name, "gantry-tilted")


def test_other_orientations_and_duplicates_are_refused(handmade_set):
    folder, ct, _ = handmade_set
    _rewrite(ct[0], lambda ds: setattr(ds, "ImageOrientationPatient", [-1, 0, 0, 0, -1, 0]))
    _rejected(folder, ct[0].name, "axial head-first supine")
    _rewrite(ct[0], lambda ds: setattr(ds, "ImageOrientationPatient", [1, 0, 0, 0, 1, 0]))
    _rewrite(ct[1], lambda ds: setattr(ds, "ImagePositionPatient", list(pydicom.dcmread(ct[0]).ImagePositionPatient)))
    _rejected(folder, "same position")


def test_a_folder_without_ct_is_refused(tmp_path):
    handmade.write_structures(tmp_path)
    _rejected(tmp_path, "no CT slices")


def test_structures_outside_the_series_are_refused(handmade_set):
    folder, _, rtstruct = handmade_set

    def far(ds):
        contour = ds.ROIContourSequence[0].ContourSequence[0]
        contour.ContourData = handmade.circle(handmade.CORD_MM, handmade.CORD_CENTRE, 90.0)

    _rewrite(rtstruct, far)
    _rejected(folder, rtstruct.name, "SpinalCord", "lies on no CT slice")


def test_two_rois_mapping_to_one_name_are_refused(handmade_set):
    folder, _, rtstruct = handmade_set
    _rewrite(rtstruct, lambda ds: setattr(ds.StructureSetROISequence[4], "ROIName", "Cord"))
    _rejected(folder, "'SpinalCord' and 'Cord' both map to structure 'spinal_cord'")


def test_reader_ignores_other_rt_objects_but_not_garbage(handmade_set):
    folder, _, _ = handmade_set
    series = read_ct_series(folder)  # the RTSTRUCT in the folder is passed over
    assert len(series.files) == len(handmade.Z_MM)


# --- fuzzing: corrupted files give DicomImportError (a ValueError) or a Scene, nothing else ---

_TEMPLATE = {}


def _template() -> dict:
    if not _TEMPLATE:
        with tempfile.TemporaryDirectory() as folder:
            ct, rtstruct = handmade.write_set(Path(folder), rng=0)
            _TEMPLATE.update({p.name: p.read_bytes() for p in [*ct, rtstruct]})
            _TEMPLATE["_names"] = [p.name for p in ct] + [rtstruct.name]
    return _TEMPLATE


_ELEMENTS = ["ImagePositionPatient", "PixelSpacing", "Rows", "RescaleSlope", "PixelData", "SeriesInstanceUID",
             "FrameOfReferenceUID", "Modality", "ImageOrientationPatient", "BitsAllocated",
             "StructureSetROISequence", "ROIContourSequence", "ReferencedFrameOfReferenceSequence"]
_VALUES = st.one_of(st.none(), st.text(max_size=12), st.integers(-2**31, 2**31), st.floats(allow_nan=True),
                    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=7))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(file_index=st.integers(0, len(handmade.Z_MM)), mode=st.sampled_from(["bytes", "truncate", "element"]),
       position=st.floats(0, 1), noise=st.binary(min_size=1, max_size=64), element=st.sampled_from(_ELEMENTS),
       value=_VALUES)
def test_fuzzed_files_are_refused_cleanly(file_index, mode, position, noise, element, value):
    template = _template()
    name = template["_names"][file_index]
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for other in template["_names"]:
            (folder / other).write_bytes(template[other])
        data = bytearray(template[name])
        at = int(position * (len(data) - 1))
        if mode == "bytes":
            data[at:at + len(noise)] = noise
            (folder / name).write_bytes(bytes(data))
        elif mode == "truncate":
            (folder / name).write_bytes(bytes(data[:at]))
        else:
            ds = pydicom.dcmread(folder / name)
            try:
                if value is None:
                    if element in ds:
                        delattr(ds, element)
                else:
                    setattr(ds, element, value)
                ds.save_as(folder / name, enforce_file_format=False)
            except Exception:  # noqa: BLE001 - pydicom refused to write it: nothing to read
                return
        try:
            scene = scenes.from_dicom(folder)
        except DicomImportError as error:
            assert str(folder) in str(error) or "/" in str(error)  # names a file or the folder
        else:
            assert isinstance(scene, scenes.scene.Scene)
            assert np.all(np.isfinite(scene.density_g_cc))


def test_the_fuzz_template_imports():
    template = _template()
    with tempfile.TemporaryDirectory() as folder:
        for name in template["_names"]:
            (Path(folder) / name).write_bytes(template[name])
        assert scenes.from_dicom(folder).has("spinal_cord")
    shutil.rmtree(folder, ignore_errors=True)
