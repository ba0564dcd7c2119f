"""Organs a beam crosses: lungs wherever they exist, the air column, the heart (scenes/organs.py).

Every range below comes from the sources in scenes/data/anatomy.toml, read from the data file;
areas are measured per axial slice on coarse phantoms (2.5 mm voxels: a few percent).
"""

import math
from functools import lru_cache

import numpy as np
import pytest

from scenes._data import load_data, value_of
from scenes.materials import material
from scenes.morphometry import LEVELS, level_dimensions, level_index
from scenes.phantom import build_phantom

SPACING = (2.5, 2.5, 2.5)
THORACIC = [f"T{i}" for i in range(1, 13)]
TABLE = load_data("anatomy")


@lru_cache(maxsize=None)
def phantom(level):
    return build_phantom(level, spacing_mm=SPACING, supersample=2)


def slice_areas_cm2(scene, name):
    """Area of a structure in each axial slice (z index order), cm2."""
    if not scene.has(name):
        return np.zeros(scene.grid.shape[0])
    dy, dx = scene.grid.spacing_mm[1:]
    return scene.structure(name).full().sum(axis=(1, 2)) * dy * dx / 100


def body_slices(scene, level):
    """Indices of the axial slices through the vertebral body of ``level`` (its voxel centres)."""
    vertebra = scene.anatomy.vertebra(level)
    z0, z1 = vertebra.z_range_mm
    z = scene.grid.axes_mm()[0]
    return np.flatnonzero((z > z0) & (z < z1))


def level_z(scene, level, where):
    """z of a level's 'top' or 'bottom' endplate or 'centre' in this phantom's frame."""
    vertebra = scene.anatomy.vertebra(level)
    return {"top": vertebra.z_range_mm[1], "bottom": vertebra.z_range_mm[0], "centre": vertebra.z_centre_mm}[where]


def mean_lung_area_cm2(side):
    """Mean cross-section of one lung: its share of the total lung capacity over the lung's height."""
    lungs = TABLE["lungs"]
    share = value_of(lungs["right_share"]) if side == "right" else 1 - value_of(lungs["right_share"])
    return value_of(lungs["total_capacity_ml"]) * share / (value_of(lungs["height_at_tlc_mm"]) / 10)


@pytest.mark.parametrize("level", THORACIC)
def test_both_lungs_at_every_thoracic_level(level):
    """Lung on each side through the body of every thoracic level; the apex (T1) and the
    costodiaphragmatic recess (T12) hold lung in part of the body's height only."""
    scene = phantom(level)
    slices = body_slices(scene, level)
    for side in ("lung_left", "lung_right"):
        areas = slice_areas_cm2(scene, side)[slices]
        assert areas.max() > 0, (level, side)
        if level not in ("T1", "T12"):
            assert np.all(areas > 0), (level, side, areas)


@pytest.mark.parametrize("level", THORACIC)
def test_lung_areas_are_plausible(level):
    """A lung's section never exceeds twice its mean section (total capacity x its share /
    its height: a section growing steadily from apex to base peaks at twice the mean), and
    through the mid-thorax it is at least half the mean."""
    scene = phantom(level)
    slices = body_slices(scene, level)
    for side in ("left", "right"):
        areas = slice_areas_cm2(scene, f"lung_{side}")[slices]
        mean = mean_lung_area_cm2(side)
        assert areas.max() <= 2 * mean, (level, side, areas.max(), mean)
        if level_index("T4") <= level_index(level) <= level_index("T9"):
            assert areas.max() >= mean / 2, (level, side, areas.max(), mean)


def test_lung_apex_in_the_upper_t1_body():
    """The apex lies between the C7/T1 and T1/T2 discs (bergman_topography); a section
    through the C7 body cuts no lung, the C7 phantom shows the apices below it."""
    t1 = phantom("T1")
    z = t1.grid.axes_mm()[0]
    for side in ("lung_left", "lung_right"):
        present = np.flatnonzero(slice_areas_cm2(t1, side) > 0)
        apex = z[present.max()]
        c7_disc = level_z(t1, "C7", "bottom")
        t1_disc = level_z(t1, "T1", "bottom") - level_dimensions("T1").disc_below_mm
        assert t1_disc < apex <= c7_disc + SPACING[0], (side, apex)
    c7 = phantom("C7")
    for side in ("lung_left", "lung_right"):
        areas = slice_areas_cm2(c7, side)
        assert areas[body_slices(c7, "C7")].max() == 0 and areas[body_slices(c7, "T1")].max() > 0


def test_lung_base_in_the_posterior_recess():
    """The lowest lung lies in the T12 body (inspiration; the pleura reaches its lower border)
    and behind: no lung through L1."""
    scene = phantom("L1")
    z = scene.grid.axes_mm()[0]
    for side in ("lung_left", "lung_right"):
        present = np.flatnonzero(slice_areas_cm2(scene, side) > 0)
        assert level_z(scene, "T12", "bottom") <= z[present.min()] < level_z(scene, "T12", "top"), side
        assert slice_areas_cm2(scene, side)[body_slices(scene, "L1")].max() == 0
        occupancy = scene.structure(side).full()
        y = scene.grid.axes_mm()[1]
        low = occupancy[present.min()]
        centroid_y = (low.sum(axis=1) * y).sum() / low.sum()
        assert centroid_y > scene.anatomy.vertebra("T12").body_centre_y_mm  # behind the body's centre


@pytest.mark.parametrize("level", ["C5", "L2", "L4"])
def test_no_lungs_where_there_are_none(level):
    scene = phantom(level)
    assert not scene.has("lung_left") and not scene.has("lung_right")


@pytest.mark.parametrize("level", ["T3", "T6", "T10"])
def test_lungs_are_lung_inside_the_body_and_clear_of_bone(level):
    scene = phantom(level)
    lung_density = material("lung").density_g_cc
    outline = scene.structure("body_outline").full()
    bone = sum(scene.structure(f"vertebra_{v.level}").full() for v in scene.anatomy.vertebrae)
    for side in ("lung_left", "lung_right"):
        occupancy = scene.structure(side).full()
        assert np.allclose(scene.density_g_cc[occupancy == 1.0], lung_density, atol=1e-5)
        assert np.all(occupancy <= outline + 1e-6)
        assert (occupancy * bone).sum() == 0  # the pleura keeps its distance from the spine
        if scene.has("heart"):  # the heart is cut out of the lung: no sub-point is in both
            assert np.all(occupancy + scene.structure("heart").full() <= 1 + 1e-6)


AIR_LEVELS = {level: ("larynx" if level_index(level) < level_index(TABLE["airway"]["trachea_first_level"]) else "trachea")
              for level in LEVELS[level_index("C4"):level_index("T4") + 1]}


@pytest.mark.parametrize("level, part", sorted(AIR_LEVELS.items()))
def test_air_column_from_c4_to_t4(level, part):
    """Larynx (C4-C6) and trachea (C7 down to the carina): present through the body of each
    level, with a section inside the normal range (randestad2000; breatnach1984), air inside."""
    scene = phantom(level)
    slices = body_slices(scene, level)
    column = sum(slice_areas_cm2(scene, name) for name in ("larynx", "trachea"))[slices]
    assert column.min() > 0, (level, column)  # no break in the air column
    areas = slice_areas_cm2(scene, part)[slices] * 100  # mm2
    areas = areas[areas > 0]
    air = TABLE["airway"]
    if part == "trachea":
        normal = air["trachea_normal_range_mm"]
        low, high = math.pi / 4 * normal["low"] ** 2, math.pi / 4 * normal["coronal_high"] * normal["sagittal_high"]
    else:
        diameter = air["larynx_diameter_mm"]
        low, high = math.pi / 4 * diameter["low"] ** 2, math.pi / 4 * diameter["high"] ** 2
    # Away from the ends of each part (the carina, the cricoid) a whole section.
    assert low <= np.median(areas) <= high, (level, part, areas)
    occupancy = scene.structure(part).full()
    assert np.allclose(scene.density_g_cc[occupancy == 1.0], material("air").density_g_cc, atol=1e-6)
    assert np.all(occupancy <= scene.structure("body_outline").full() + 1e-6)


def test_trachea_lies_in_front_of_the_oesophagus():
    scene = phantom("T2")
    k = scene.grid.nearest_index((0.0, 0.0, 0.0))[0]
    y = scene.grid.axes_mm()[1]

    def centre_y(name):
        section = scene.structure(name).full()[k]
        return (section.sum(axis=1) * y).sum() / section.sum()

    assert centre_y("trachea") < centre_y("esophagus") < scene.anatomy.index.body_front_y_mm


def test_main_bronchi_leave_below_the_carina():
    scene = phantom("T5")
    z = scene.grid.axes_mm()[0]
    x = scene.grid.axes_mm()[2]
    a, b = TABLE["airway"]["carina_disc"]["value"].split("-")
    carina = (level_z(scene, a, "bottom") + level_z(scene, b, "top")) / 2
    assert np.all(z[slice_areas_cm2(scene, "trachea") > 0] >= carina - SPACING[0])
    reach = {}
    for side, sign in (("left", 1), ("right", -1)):
        areas = slice_areas_cm2(scene, f"bronchus_{side}")
        assert areas.max() > 0 and np.all(z[areas > 0] <= carina + SPACING[0]), side
        occupancy = scene.structure(f"bronchus_{side}").full()
        reach[side] = float((occupancy.sum(axis=(0, 1)) * x).sum() / occupancy.sum()) * sign
        assert reach[side] > 0, side  # each bronchus goes to its own side
    assert reach["left"] > reach["right"]  # the left bronchus is longer and more oblique


@pytest.mark.parametrize("level", ["T5", "T6", "T7", "T8"])
def test_heart_opposite_t5_to_t8(level):
    scene = phantom(level)
    areas = slice_areas_cm2(scene, "heart")[body_slices(scene, level)]
    assert areas.max() > 0
    heart = scene.structure("heart").full()
    x = scene.grid.axes_mm()[2]
    assert (heart.sum(axis=(0, 1)) * x).sum() / heart.sum() > 0  # two thirds lie left of the midline
    assert np.allclose(scene.density_g_cc[heart == 1.0], material("soft_tissue").density_g_cc, atol=1e-6)


def test_no_heart_above_or_below_it():
    for level in ("T2", "T11"):
        assert not phantom(level).has("heart")
