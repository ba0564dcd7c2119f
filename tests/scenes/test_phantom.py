"""Anatomy of every level: nesting of the neural axis, and dimensions against the table."""

from functools import lru_cache

import numpy as np
import pytest

from scenes.morphometry import PHANTOM_LEVELS, level_dimensions
from scenes.phantom import build_phantom

SPACING = (2.5, 1.25, 1.25)


@lru_cache(maxsize=None)
def phantom(level):
    return build_phantom(level, spacing_mm=SPACING, supersample=3)


def chord_mm(scene, name, axis, point_mm):
    """Length of a structure along a line through point_mm parallel to axis (0=z, 1=y, 2=x)."""
    occupancy = scene.structure(name).full()
    k, j, i = scene.grid.nearest_index(point_mm)
    line = {0: occupancy[:, j, i], 1: occupancy[k, :, i], 2: occupancy[k, j, :]}[axis]
    return float(line.sum()) * scene.grid.spacing_mm[axis]


def contained(inner, outer, tolerance=0.02):
    """Fraction of inner's occupancy lying outside outer is below tolerance."""
    a, b = inner.full(), outer.full()
    outside = np.clip(a - b, 0, None).sum()
    return outside <= tolerance * a.sum()


@pytest.mark.parametrize("level", PHANTOM_LEVELS)
def test_neural_axis_nesting(level):
    scene = phantom(level)
    sac, canal = scene.structure("thecal_sac"), scene.structure("spinal_canal")
    assert contained(sac, canal)
    for neural in ("spinal_cord", "cauda_equina"):
        if scene.has(neural):
            assert contained(scene.structure(neural), sac), neural
    assert scene.has("spinal_cord") or scene.has("cauda_equina")
    # Conus: cord above, cauda below; never both at one height.
    if scene.has("spinal_cord") and scene.has("cauda_equina"):
        cord_z = np.nonzero(scene.structure("spinal_cord").full().sum(axis=(1, 2)) > 0.5)[0]
        cauda_z = np.nonzero(scene.structure("cauda_equina").full().sum(axis=(1, 2)) > 0.5)[0]
        assert cauda_z.max() <= cord_z.min() + 1  # z index grows superiorly


@pytest.mark.parametrize("level", PHANTOM_LEVELS)
def test_every_slice_lies_within_the_body(level):
    """No slice of air at either end of the grid (the first and last slices used to round
    past the outline's length: a black strip in sagittal views, bone floating in air)."""
    scene = phantom(level)
    body = scene.structure("body_outline").full() > 0.5
    per_slice = body.sum(axis=(1, 2))  # changes with the region (neck into chest), never to nothing
    assert per_slice.min() > 0 and per_slice[0] >= 0.9 * per_slice[1] and per_slice[-1] >= 0.9 * per_slice[-2], per_slice
    low, high = scene.anatomy.outline.bounds_mm
    z = scene.grid.axes_mm()[0]
    half = scene.grid.spacing_mm[0] / 2
    assert z[0] - half >= low[0] - 1e-6 and z[-1] + half <= high[0] + 1e-6
    assert (scene.structure("spinal_canal").full() > 0.5).sum(axis=(1, 2)).min() > 0  # the sac ends at S2


@pytest.mark.parametrize("level", PHANTOM_LEVELS)
def test_canal_lies_between_body_and_laminae(level):
    scene = phantom(level)
    grid = scene.grid
    k = grid.nearest_index((0.0, 0.0, 0.0))[0]
    y = grid.axes_mm()[1]
    i = grid.nearest_index((0.0, 0.0, 0.0))[2]

    def centroid(name):
        column = scene.structure(name).full()[k, :, i]
        return float((column * y).sum() / column.sum())

    body, canal, lamina = centroid(f"vertebral_body_{level}"), centroid("spinal_canal"), centroid(f"lamina_{level}")
    assert body < canal < lamina
    overlap = (scene.structure("spinal_canal").full() * scene.structure(f"vertebra_{level}").full()).sum()
    assert overlap < 0.02 * scene.structure("spinal_canal").full().sum()


@pytest.mark.parametrize("level", PHANTOM_LEVELS)
def test_dimensions_match_the_table(level):
    """Chord lengths through the rasterised phantom are within 10% of the resolved table."""
    scene = phantom(level)
    d = level_dimensions(level)
    vertebra = scene.anatomy.index
    body_centre = (0.0, vertebra.body_centre_y_mm, 0.0)
    measured = {
        "body_width_mm": chord_mm(scene, f"vertebral_body_{level}", 2, body_centre),
        "body_depth_mm": chord_mm(scene, f"vertebral_body_{level}", 1, body_centre),
        "body_height_mm": chord_mm(scene, f"vertebral_body_{level}", 0, body_centre),
        "canal_width_mm": chord_mm(scene, "spinal_canal", 2, (0.0, 0.0, 0.0)),
        "canal_depth_mm": chord_mm(scene, "spinal_canal", 1, (0.0, 0.0, 0.0)),
    }
    profile = scene.anatomy.neural_profile(0.0)
    sac_centre = (0.0, profile["sac"]["centre_y_mm"], 0.0)
    measured["sac_ap_mm"] = chord_mm(scene, "thecal_sac", 1, sac_centre)
    measured["sac_rl_mm"] = chord_mm(scene, "thecal_sac", 2, sac_centre)
    neural = "spinal_cord" if scene.has("spinal_cord") and scene.structure("spinal_cord").full()[scene.grid.nearest_index((0, 0, 0))[0]].sum() > 0 else "cauda_equina"
    neural_centre = (0.0, profile["neural"]["centre_y_mm"], 0.0)
    expected_ap = 2 * profile["neural"]["radius_y_mm"]
    expected_rl = 2 * profile["neural"]["radius_x_mm"]
    assert chord_mm(scene, neural, 1, neural_centre) == pytest.approx(expected_ap, rel=0.1)
    assert chord_mm(scene, neural, 2, neural_centre) == pytest.approx(expected_rl, rel=0.1)
    for measure, value in measured.items():
        assert value == pytest.approx(getattr(d, measure), rel=0.10), measure


def test_organs_by_region():
    assert {"esophagus"} <= set(phantom("C6").structures)
    thoracic = set(phantom("T6").structures)
    assert {"esophagus", "aorta", "lung_left", "lung_right"} <= thoracic
    lumbar = set(phantom("L2").structures)
    assert {"aorta", "kidney_left", "kidney_right", "bowel", "cauda_equina"} <= lumbar
    assert "lung_left" not in lumbar


def test_materials_and_partial_volume():
    scene = phantom("T10")
    assert scene.density_g_cc.min() >= 0.001 and scene.density_g_cc.max() <= 1.93
    lung = scene.structure("lung_left").full() > 0.99
    assert np.allclose(scene.density_g_cc[lung], 0.26, atol=1e-5)
    # Bone boundary voxels hold intermediate densities (fractional occupancy at work).
    body = scene.structure("vertebral_body_T10").full()
    edge = (body > 0.2) & (body < 0.8)
    assert edge.any() and np.all(scene.density_g_cc[edge] < 1.92)


def test_determinism():
    a = build_phantom("L1", spacing_mm=(5.0, 2.5, 2.5), supersample=2)
    b = build_phantom("L1", spacing_mm=(5.0, 2.5, 2.5), supersample=2)
    assert a.fingerprint() == b.fingerprint()


def test_scene_is_immutable():
    scene = phantom("C5")
    with pytest.raises(ValueError):
        scene.density_g_cc[0, 0, 0] = 5.0
    with pytest.raises(TypeError):
        scene.structures["new"] = scene.structure("thecal_sac")
    with pytest.raises(AttributeError):
        scene.level = "C6"


def test_both_resolutions_work():
    coarse = build_phantom("T10", spacing_mm=(2.5, 2.5, 2.5), supersample=3)
    fine = phantom("T10")
    for name in ("spinal_cord", "thecal_sac", "vertebral_body_T10"):
        assert coarse.structure(name).volume_cc == pytest.approx(fine.structure(name).volume_cc, rel=0.03)
