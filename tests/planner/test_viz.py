"""3-D views: meshes in patient mm, off-screen images with content, a golden image, the view command.

Rendering tests fail (never skip) with the probe's reason where OpenGL is missing; .ci/run
installs the Mesa packages. Golden images live in tests/planner/golden/; after a deliberate
change of the pictures regenerate them with

    SPINESIM_UPDATE_GOLDEN=1 python -m pytest tests/planner/test_viz.py tests/planner/test_dose_figures.py -k golden

then open the PNGs and look at them before committing.
"""

import argparse
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from planner.pictures import three_d as viz
from planner.pictures.three_d import headless, render
from planner.common.safety import DISCLAIMER  # noqa: F401  (the images carry it as text)
from scenes.cases import build_scene

GOLDEN = Path(__file__).parent / "golden"
PRESCRIPTION_GY = 24.0


@lru_cache(maxsize=None)
def coarse_scene():
    return build_scene("t10_rcc_escc2", spacing_mm=(2.5, 2.5, 2.5), supersample=2)


@lru_cache(maxsize=None)
def synthetic_dose():
    """Prescription-level dose hugging the GTV, falling off outside it, spared near the cord."""
    return synthetic_dose_for(coarse_scene(), PRESCRIPTION_GY)


def synthetic_dose_for(scene, prescription_gy):
    spacing = scene.grid.spacing_mm
    outside_gtv = ndimage.distance_transform_edt(scene.structure("gtv").full() < 0.5, sampling=spacing)
    from_cord = ndimage.distance_transform_edt(scene.structure("thecal_sac").full() < 0.5, sampling=spacing)
    spared = 0.35 + 0.65 * (1 - np.exp(-((from_cord / 3.0) ** 2)))
    return 1.08 * prescription_gy * np.exp(-((outside_gtv / 9.0) ** 2)) * spared


def require_rendering():
    status = viz.rendering_available()
    if not status:
        pytest.fail(f"off-screen rendering is required for these tests: {status.reason}")


def non_background_fraction(image):
    background = np.round(np.array(render._BACKGROUND) * 255)
    return float(np.mean(np.abs(image.astype(float) - background).sum(axis=-1) > 30))


def compare_golden(image, name, *, mean_tolerance=3.0, pixel_tolerance=0.02):
    path = GOLDEN / name
    if os.environ.get("SPINESIM_UPDATE_GOLDEN"):
        viz.save_png(image, path)
    assert path.exists(), f"golden image {path} is missing; see this file's docstring to regenerate it"
    from PIL import Image

    golden = np.asarray(Image.open(path).convert("RGB")).astype(float)
    assert golden.shape == image.shape, f"golden {path.name} is {golden.shape}, the image {image.shape}"
    difference = np.abs(golden - image.astype(float)).max(axis=-1)
    assert difference.mean() < mean_tolerance, (f"{path.name}: mean difference {difference.mean():.2f} "
                                                f"(regenerate with SPINESIM_UPDATE_GOLDEN=1 if the change is wanted)")
    assert np.mean(difference > 60) < pixel_tolerance, f"{path.name}: {100 * np.mean(difference > 60):.1f}% of pixels differ"


# -- meshes (no OpenGL needed) ------------------------------------------------------------------
def test_structure_meshes_lie_where_the_masks_are():
    scene = coarse_scene()
    names = ["spinal_canal", "thecal_sac", "spinal_cord", "vertebra_T10", "epidural_disease"]
    meshes = viz.scene_meshes(scene, structures=names)
    assert set(names) <= set(meshes)
    spacing = np.array(scene.grid.spacing_mm)[::-1]
    for name in names:
        mask = scene.structure(name).full() >= 0.5
        index = np.argwhere(mask)
        low = scene.grid.index_to_mm(index.min(axis=0))[::-1] - spacing  # (x, y, z)
        high = scene.grid.index_to_mm(index.max(axis=0))[::-1] + spacing
        bounds = np.array(meshes[name].bounds).reshape(3, 2)
        assert np.all(bounds[:, 0] >= low - 1e-6) and np.all(bounds[:, 1] <= high + 1e-6), name
        assert meshes[name].n_cells > 50
    cord = np.array(meshes["spinal_cord"].bounds).reshape(3, 2)
    canal = np.array(meshes["spinal_canal"].bounds).reshape(3, 2)
    sac = np.array(meshes["thecal_sac"].bounds).reshape(3, 2)
    # In the axial plane (x, y) the cord lies inside the sac, which lies inside the canal (a
    # compressed cord is pressed against the dura: its smoothed surface may touch the sac's).
    assert np.all(cord[:2, 0] > sac[:2, 0] - 0.5) and np.all(cord[:2, 1] < sac[:2, 1] + 0.5)
    assert np.all(sac[:2, 0] >= canal[:2, 0] - 0.5) and np.all(sac[:2, 1] <= canal[:2, 1] + 0.5)
    # The cord is about 10 x 8 mm across at T10, not a voxel-wide line or the whole grid (front
    # to back its box over all slices also spans how far the tumour pushed it back).
    assert 5 < cord[0, 1] - cord[0, 0] < 14 and 4 < cord[1, 1] - cord[1, 0] < 16


def test_default_structures_and_isodose_surfaces():
    scene = coarse_scene()
    dose = synthetic_dose()
    meshes = viz.scene_meshes(scene, dose_gy=dose, isodose_gy=(PRESCRIPTION_GY, 12.0))
    assert {"vertebra_T10", "vertebra_T9", "vertebra_T11", "lesion_bone", "epidural_disease", "spinal_cord",
            "thecal_sac", "isodose_24_gy", "isodose_12_gy"} <= set(meshes)
    high = np.argwhere(dose >= PRESCRIPTION_GY)
    low = scene.grid.index_to_mm(high.min(axis=0) - 1)[::-1]
    top = scene.grid.index_to_mm(high.max(axis=0) + 1)[::-1]
    bounds = np.array(meshes["isodose_24_gy"].bounds).reshape(3, 2)
    # Within a voxel of the voxels at or above the level (smoothing moves vertices by < 1 mm).
    assert np.all(bounds[:, 0] >= low - 1.0) and np.all(bounds[:, 1] <= top + 1.0)
    # The 50% surface encloses the prescription surface.
    half = np.array(meshes["isodose_12_gy"].bounds).reshape(3, 2)
    assert np.all(half[:, 0] <= bounds[:, 0]) and np.all(half[:, 1] >= bounds[:, 1])
    with pytest.raises(ValueError, match="does not match"):
        viz.scene_meshes(scene, dose_gy=np.zeros((2, 2, 2)), isodose_gy=(1.0,))


def test_beam_arrows_point_at_the_isocentre_from_their_gantry_side():
    scene = coarse_scene()
    meshes = viz.beam_meshes([90.0, 180.0], scene, length_mm=100.0)
    assert set(meshes) == {"beam_90", "beam_180", "fan_90", "fan_180"}
    iso = scene.grid.index_to_mm(np.argwhere(scene.structure("gtv").full() > 0.5)).mean(axis=0)[::-1]
    posterior = np.array(meshes["beam_180"].bounds).reshape(3, 2)
    left = np.array(meshes["beam_90"].bounds).reshape(3, 2)
    assert posterior[1, 0] > iso[1] + 30  # IEC 180 deg: the source is posterior (+y)
    assert left[0, 0] > iso[0] + 30  # IEC 90 deg: the source is on the patient's left (+x)


# -- rendering ------------------------------------------------------------------------------------
def test_probe_reports_a_missing_window_without_crashing():
    works, reason = headless._try_window("vtkNoSuchRenderWindow", 60.0)
    assert not works and "vtkNoSuchRenderWindow" in reason


def test_unavailable_rendering_raises_with_the_reason(monkeypatch):
    monkeypatch.setattr(headless, "rendering_available",
                        lambda: viz.RenderingStatus(False, None, "no OpenGL here: install libegl1"))
    with pytest.raises(viz.RenderingUnavailable, match="install libegl1"):
        viz.render_3d(coarse_scene())


@pytest.mark.parametrize("camera", viz.CAMERAS)
def test_images_have_content(camera):
    require_rendering()
    image = viz.render_3d(coarse_scene(), dose_gy=synthetic_dose(), prescription_gy=PRESCRIPTION_GY,
                          beams=[140.0, 180.0, 220.0], camera=camera, window_size=(320, 240))
    assert image.shape == (240, 320, 3) and image.dtype == np.uint8
    assert image.std() > 15
    assert 0.08 < non_background_fraction(image) < 0.95


def test_dose_changes_the_picture_and_the_cord_shows():
    require_rendering()
    scene = coarse_scene()
    plain = viz.render_3d(scene, camera="lateral", window_size=(320, 240), legend=False)
    dosed = viz.render_3d(scene, dose_gy=synthetic_dose(), prescription_gy=PRESCRIPTION_GY, camera="lateral",
                          window_size=(320, 240), legend=False)
    changed = np.abs(plain.astype(int) - dosed.astype(int)).max(axis=-1) > 20
    assert changed.mean() > 0.03  # the isodose surfaces cover the vertebral body and lesion
    # The cord is yellow (seen through the translucent sac): yellow pixels, none without the cord.
    def yellow(image):
        red, green, blue = (image[..., c].astype(int) for c in range(3))
        return int(np.sum((red - blue > 80) & (green - blue > 60)))

    no_cord = viz.render_3d(scene, camera="lateral", window_size=(320, 240), legend=False,
                            structures=[n for n in viz.default_structures(scene) if n != "spinal_cord"])
    assert yellow(plain) > 400 and yellow(no_cord) < 20


def test_golden_lateral_view():
    require_rendering()
    image = viz.render_3d(coarse_scene(), dose_gy=synthetic_dose(), prescription_gy=PRESCRIPTION_GY, camera="lateral",
                          window_size=(320, 240), legend=False)
    compare_golden(image, "t10_lateral_3d.png")


def test_interactive_plotter_has_a_toggle_per_structure_and_isodose():
    require_rendering()
    plotter, actors = viz.interactive_plotter(coarse_scene(), dose_gy=synthetic_dose(), prescription_gy=PRESCRIPTION_GY,
                                              off_screen=True, window_size=(320, 240))
    try:
        assert {"isodose_24_gy", "isodose_19.2_gy", "isodose_12_gy", "spinal_cord"} <= set(actors)
        groups = {"bone" if n.startswith("vertebra_") else n for n in actors}
        assert len(plotter.widgets.button_widgets) == len(groups)
        # A toggle hides its actors.
        widget = plotter.widgets.button_widgets[0]
        widget.GetRepresentation().SetState(0)
        widget.InvokeEvent("StateChangedEvent")
    finally:
        plotter.close()


def test_view_without_display_writes_the_pngs(tmp_path, monkeypatch):
    require_rendering()
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    messages = []
    paths = viz.view(coarse_scene(), out_dir=tmp_path, say=messages.append)
    assert [p.name for p in paths] == ["T10_posterior.png", "T10_lateral.png", "T10_axial.png"]
    assert "no display" in messages[0]
    from PIL import Image

    for path in paths:
        assert np.asarray(Image.open(path)).std() > 10


def test_view_command_writes_pngs(tmp_path):
    require_rendering()
    from planner.cli.view import add_view_parser, run_view

    parser = argparse.ArgumentParser()
    add_view_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["view", "t10_rcc_escc2", "--out", str(tmp_path), "--png"])
    import io

    out = io.StringIO()
    assert run_view(args, out) == 0
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["t10_rcc_escc2_axial.png", "t10_rcc_escc2_lateral.png",
                                                              "t10_rcc_escc2_posterior.png"]
    assert "not for clinical use" in out.getvalue()
    with pytest.raises(ValueError, match="go together"):
        run_view(parser.parse_args(["view", "t10_rcc_escc2", "--out", str(tmp_path), "--dose", "24"]), out)


def test_save_png_round_trip_and_checks(tmp_path):
    image = (np.arange(12 * 10 * 3) % 256).astype(np.uint8).reshape(12, 10, 3)
    path = viz.save_png(image, tmp_path / "a.png")
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(path)), image)
    with pytest.raises(ValueError, match=".png"):
        viz.save_png(image, tmp_path / "a.jpg")
    with pytest.raises(ValueError, match="uint8"):
        viz.save_png(image.astype(float), tmp_path / "b.png")
    with pytest.raises(FileNotFoundError):
        viz.save_png(image, tmp_path / "missing" / "c.png")
