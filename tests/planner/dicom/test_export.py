"""DICOM RT export: the four objects, their links, the round trip, the independent DVH check
(dicompyler-core), the picture, atomic writing, and the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

import scenes  # noqa: E402
from planner.cli.commands import main  # noqa: E402
from planner.common.safety import DISCLAIMER  # noqa: E402
from planner.dicom import FLUENCE_STATEMENT, export_dicom, find_objects, read_dose, read_plan  # noqa: E402
from planner.radiotherapy.beams import arrangement_angles, make_beams  # noqa: E402
from planner.radiotherapy.plan import PlanResult, Regimen, add_targets  # noqa: E402
from tests.conftest import case_scene  # noqa: E402

GRID_MM = (5.0, 2.5, 2.5)
PRESCRIPTION_GY = 24.0


def synthetic_plan(seed: int = 7) -> PlanResult:
    """A plan-shaped result on a coarse phantom: real beams, random weights, a smooth dose
    peaked on the PTV (export does not care how the dose was made; speed does)."""
    scene = add_targets(case_scene("t10_rcc_escc2", GRID_MM))
    points = scene.grid.index_to_mm(np.argwhere(scene.structure("ptv").full() > 0.5))
    beams = make_beams(points, gantry_deg=arrangement_angles("sbrt_fan"), beamlet_mm=5.0)
    weights = np.random.default_rng(seed).uniform(0, 2, beams.n_beamlets)
    z, y, x = scene.grid.centres_mm()
    c = points.mean(axis=0)
    dose = PRESCRIPTION_GY * np.exp(-(((z - c[0]) / 25) ** 2 + ((y - c[1]) / 15) ** 2 + ((x - c[2]) / 15) ** 2))
    return PlanResult("t10_rcc_escc2", Regimen(PRESCRIPTION_GY, 2), "hytec", None, weights, dose, scene=scene,
                      beams=beams)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    plan = synthetic_plan()
    folder = tmp_path_factory.mktemp("dicom") / "set"
    return plan, export_dicom(None, folder, plan=plan)


@pytest.fixture(scope="module")
def imported(exported):
    return scenes.from_dicom(exported[1].folder)


def test_the_set_has_four_linked_objects_on_one_frame(exported):
    plan, written = exported
    objects = find_objects(written.folder)
    assert sorted(objects) == ["CT", "RTDOSE", "RTPLAN", "RTSTRUCT"]
    assert len(objects["CT"]) == plan.scene.grid.shape[0]
    datasets = [pydicom.dcmread(p) for paths in objects.values() for p in paths]
    assert {ds.FrameOfReferenceUID for ds in datasets} == {written.uids["frame"]}
    assert {ds.StudyInstanceUID for ds in datasets} == {written.uids["study"]}
    assert len({ds.SOPInstanceUID for ds in datasets}) == len(datasets)
    for ds in datasets:
        assert ds.SeriesInstanceUID == written.uids[ds.Modality]
        assert ds.PatientName == "SPINESIM^PHANTOM" and ds.PatientID == "PHANTOM-t10_rcc_escc2"
        assert ds.PatientIdentityRemoved == "YES" and ds.PatientComments == DISCLAIMER
    plan_ds = pydicom.dcmread(objects["RTPLAN"][0])
    dose_ds = pydicom.dcmread(objects["RTDOSE"][0])
    struct_ds = pydicom.dcmread(objects["RTSTRUCT"][0])
    assert dose_ds.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == plan_ds.SOPInstanceUID
    assert plan_ds.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID == struct_ds.SOPInstanceUID
    referenced = struct_ds.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0] \
        .RTReferencedSeriesSequence[0].ContourImageSequence
    assert {item.ReferencedSOPInstanceUID for item in referenced} == \
        {pydicom.dcmread(p).SOPInstanceUID for p in objects["CT"]}
    assert plan_ds.RTPlanDescription == FLUENCE_STATEMENT and DISCLAIMER in FLUENCE_STATEMENT
    assert dose_ds.DoseComment == DISCLAIMER


def test_a_second_export_gets_new_uids(exported, tmp_path):
    plan, first = exported
    from scenes.scene import scene_from_arrays

    box = np.zeros((4, 10, 12), bool)
    box[1:3, 3:7, 4:8] = True
    tiny = scene_from_arrays(spacing_mm=GRID_MM, density_g_cc=np.ones(box.shape), structures={"gtv": box})
    second = export_dicom(tiny, tmp_path / "again")  # CT and structures only
    assert sorted(second.files) == ["CT", "RTSTRUCT"]
    assert not set(first.uids.values()) & set(second.uids.values())


def test_round_trip_geometry_density_and_structures(exported, imported):
    plan, written = exported
    scene = plan.scene
    assert imported.grid == scene.grid
    # HU stored as integers: density back to within half a HU of the calibration's slope.
    assert np.max(np.abs(imported.density_g_cc - scene.density_g_cc)) < 1e-3
    assert set(imported.structures) == set(written.structures)
    for name in written.structures:
        ours = scene.structure(name)
        if ours.volume_cc <= 1.0:
            continue
        a, b = ours.binary(), imported.structure(name).binary()
        dice = 2 * np.sum(a & b) / (np.sum(a) + np.sum(b))
        assert dice >= 0.98, f"{name}: Dice {dice:.4f}"


def test_round_trip_dose_and_beams(exported):
    plan, written = exported
    dose, grid = read_dose(written.files["RTDOSE"][0])
    assert grid == plan.scene.grid
    assert np.max(np.abs(dose - plan.dose_gy)) <= 1e-3 * plan.dose_gy.max()  # well within 0.1 %
    back = read_plan(written.files["RTPLAN"][0])
    assert back.prescription_gy == PRESCRIPTION_GY and back.fractions == 2
    assert [b.gantry_deg for b in back.beams] == [b.gantry_deg for b in plan.beams.beams]  # exact
    for ours, theirs, weights in zip(plan.beams.beams, back.beams, plan.beams.split(plan.weights)):
        assert theirs.isocentre_mm == pytest.approx(ours.isocentre_mm, abs=1e-6)
        assert theirs.couch_deg == 0 and theirs.collimator_deg == 0
        assert theirs.source_axis_distance_mm == ours.source_axis_distance_mm
        fluence, _, spacing = ours.fluence_map(weights)
        # Rows run from +Y down in the file (IEC first row at the top); the weights come back.
        assert theirs.pixel_mm == spacing
        assert np.allclose(theirs.fluence[::-1] * theirs.largest_weight, fluence, rtol=1e-6, atol=1e-9)


def test_independent_dvh_check_with_dicompyler_core(exported):
    pytest.importorskip("dicompylercore")
    pytest.importorskip("skimage")
    from planner.dicom.independent import compare_metrics, dicompyler_metrics

    plan, written = exported
    names = ["gtv", "ptv", "spinal_cord", "thecal_sac", "esophagus", "epidural_disease", "body_outline"]
    theirs = dicompyler_metrics(written.files["RTSTRUCT"][0], written.files["RTDOSE"][0], names=names)
    assert set(theirs) == set(names)
    table = compare_metrics(plan.scene, plan.dose_gy, theirs)
    for name, entry in table.items():
        for key, row in entry.items():
            assert abs(row["dicompyler"] - row["contour_voxels"]) <= row["tolerance_contour"], (name, key, row)
            if "occupancy" in row:
                allowed = row["tolerance_contour"] + row["tolerance_occupancy"]
                assert abs(row["dicompyler"] - row["occupancy"]) <= allowed, (name, key, row)
    # The tight ones, stated: same voxels, so volume and mean agree to a bin, the maximum too.
    assert table["spinal_cord"]["volume_cc"]["dicompyler"] == pytest.approx(
        table["spinal_cord"]["volume_cc"]["contour_voxels"], rel=1e-6)
    assert abs(table["gtv"]["Dmean"]["dicompyler"] - table["gtv"]["Dmean"]["contour_voxels"]) <= 0.01


def test_nothing_is_left_when_writing_fails(tmp_path, monkeypatch):
    from planner.dicom import export as export_module

    def broken(*args, **kwargs):
        raise OSError("disk full")

    # The CT slices are written, then the structure set fails: no slice may remain.
    monkeypatch.setattr(export_module, "_write_structures", broken)
    with pytest.raises(OSError, match="disk full"):
        export_dicom(case_scene("t10_rcc_escc2", GRID_MM), tmp_path / "set")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_with_files_is_refused(tmp_path):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "old.dcm").write_bytes(b"x")
    with pytest.raises(ValueError, match="exists and is not empty"):
        export_dicom(case_scene("t10_rcc_escc2", GRID_MM), tmp_path / "set")
    assert [p.name for p in (tmp_path / "set").iterdir()] == ["old.dcm"]


# --- command line -------------------------------------------------------------------------

@pytest.mark.parametrize("argv, words", [
    (["export", "no_such_case", "--dicom", "{tmp}/x"], "no teaching case named 'no_such_case'"),
    (["export", "t10_rcc_escc2", "--dicom", "{tmp}/x", "--dose", "24"], "--dose and --fractions go together"),
    (["export", "t10_rcc_escc2", "--dicom", "{tmp}/full"], "exists and is not empty"),
    (["export", "t10_rcc_escc2", "--dicom", "{tmp}/none/x"], "does not exist"),
    (["export", "{tmp}/plan.json", "--dicom", "{tmp}/x"], "not a plan written by `spinesim plan --json`"),
    (["export", "t10_rcc_escc2", "--dicom", "{tmp}/x", "--picture", "{tmp}/p.gif"], "--picture must end in"),
    (["plan", "--dose", "24", "--fractions", "2"], "give a teaching case id"),
    (["plan", "--dicom", "{tmp}/none", "--dose", "24", "--fractions", "2"], "does not exist or holds no files"),
    (["plan", "--dicom", "{tmp}/full", "--dose", "24", "--fractions", "2", "--gap-mm", "2"], "separation surgery"),
])
def test_cli_refuses_bad_input_before_work(tmp_path, capsys, argv, words):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "a.dcm").write_bytes(b"x")
    (tmp_path / "plan.json").write_text(json.dumps({"case": "t10_rcc_escc2"}))
    status = main([a.format(tmp=tmp_path) for a in argv])
    assert status == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_exports_a_case_scene(tmp_path, capsys):
    status = main(["export", "t10_rcc_escc2", "--dicom", str(tmp_path / "set"), "--spacing-mm", "5"])
    assert status == 0
    out = capsys.readouterr().out
    assert "1 RTSTRUCT" in out and DISCLAIMER in out
    assert sorted(find_objects(tmp_path / "set")) == ["CT", "RTSTRUCT"]


@pytest.mark.slow
def test_an_exported_set_plans_again_through_the_cli(exported, tmp_path, capsys):
    """The imported Scene plans through the public planning API (plan_case with scene=)."""
    plan, written = exported
    status = main(["plan", "--dicom", str(written.folder), "--dose", "24", "--fractions", "2", "--engine", "pencil",
                   "--spacing-mm", "5", "--beams", "ap_pa", "--json", str(tmp_path / "plan.json")])
    assert status == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "plan.json").read_text())
    assert result["case"] == "dicom_phantom_t10_rcc_escc2"
    assert result["metrics"]["gtv"]["D95%"] > 0 and result["metrics"]["spinal_cord"]["Dmax"] > 0
    assert {c["structure"] for c in result["constraints"]} >= {"spinal_cord"}


@pytest.mark.slow
def test_cli_exports_a_plan_file_with_its_picture(tmp_path, capsys):
    """A plan JSON (as `spinesim plan --json` writes it, plus the settings it may record) is
    planned again and written whole; the picture is drawn from the written files."""
    import matplotlib.image

    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps({"case": "t10_rcc_escc2", "regimen": {"dose_gy": 24.0, "fractions": 2},
                                     "protocol": "hytec", "gap_mm": None, "grid_mm": [5.0, 5.0, 5.0],
                                     "engine": "pencil", "arrangement": "ap_pa"}))
    status = main(["export", str(plan_file), "--dicom", str(tmp_path / "set"), "--picture", str(tmp_path / "set.png")])
    assert status == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "from the file: grid_mm, engine, arrangement" in out
    assert sorted(find_objects(tmp_path / "set")) == ["CT", "RTDOSE", "RTPLAN", "RTSTRUCT"]
    back = read_plan(find_objects(tmp_path / "set")["RTPLAN"][0])
    assert (back.prescription_gy, back.fractions, [b.gantry_deg for b in back.beams]) == (24.0, 2, [0.0, 180.0])
    pixels = matplotlib.image.imread(tmp_path / "set.png")
    assert pixels.shape[0] > 400 and pixels.shape[1] > 800
    colours = np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 200  # CT greys, the dose wash and the contours, not a blank canvas


def test_refused_exports_do_not_import_the_heavy_rooms(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    script = ("import sys\n"
              "from planner.cli.commands import main\n"
              "status = main(['export', 'nope', '--dicom', sys.argv[1]])\n"
              "heavy = [m for m in ('pydicom', 'numpy', 'scipy', 'numba', 'matplotlib') if m in sys.modules]\n"
              "print(status, heavy)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "x")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.split("\n")[-2] == "2 []", done.stdout + done.stderr


def test_an_imported_set_without_a_gtv_is_refused_before_planning(tmp_path):
    from planner.dicom.imported import imported_case, plan_dicom
    from tests.scenes import handmade_dicom as handmade

    _, rtstruct = handmade.write_set(tmp_path, rng=0)
    assert imported_case(scenes.from_dicom(tmp_path)).id == "dicom_handmade01"
    ds = pydicom.dcmread(rtstruct)
    ds.StructureSetROISequence[1].ROIName = "Tumour"
    ds.save_as(rtstruct, enforce_file_format=True)
    with pytest.raises(ValueError, match="no GTV.*Tumour"):
        plan_dicom(tmp_path, regimen=Regimen(PRESCRIPTION_GY, 2))
