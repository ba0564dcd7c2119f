"""Delay of diagnosis: a growing tumour compresses the cord more, never less, and never erases it.

Growth is measured two ways that agree bit for bit (test_lesions): on the full grown scene
(``grow``), and on the canal's neighbourhood of the same grid (``measure_built_grade`` on the
grown lesion), which is cheap enough to run for every shipped case and every week.
"""

import numpy as np
import pytest

from scenes.anatomy import build_anatomy
from scenes.cases import grow, growth_factor, list_cases, load_case
from scenes.escc import measure_built_grade, measure_escc_grade
from scenes.lesions import ESCC_GRADES, Lesion, grown, lesion_geometry
from scenes.mass_effect import compression_bands
from scenes.morphometry import PHANTOM_LEVELS
from scenes.phantom import default_grid
from scenes.shapes import Empty, rasterize
from tests.conftest import case_scene

WEEKS = (0, 4, 8, 12, 26, 52)


def _grows(name: str) -> bool:
    try:
        growth_factor(load_case(name).histology, 1)
    except ValueError:  # no published doubling time: grow refuses it
        return False
    return True


GROWING = [name for name in list_cases() if _grows(name)]


def _neural_area_per_slice(anatomy, lesion) -> np.ndarray:
    """Area (mm2) of the cord and cauda in each axial slice of the default grid's canal block."""
    grid = default_grid(anatomy, (2.5, 1.25, 1.25))
    low, high = anatomy.canal.bounds_mm
    grid, _ = grid.crop(low - 5, high + 5)
    geometry = lesion_geometry(anatomy, lesion)
    occupancy = sum(rasterize(s, grid, supersample=4).full() for s in (geometry.cord, geometry.cauda)
                    if not isinstance(s, Empty))
    return occupancy.sum(axis=(1, 2)) * grid.spacing_mm[1] * grid.spacing_mm[2]


def _course(name: str, weeks=WEEKS):
    scene = case_scene(name)
    grades, areas = [], []
    for week in weeks:
        lesion = grown(scene.lesion, volume_factor=growth_factor(scene.clinical["histology"], week), anatomy=scene.anatomy)
        grades.append(measure_built_grade(scene.anatomy, lesion).grade)
        areas.append(_neural_area_per_slice(scene.anatomy, lesion))
    return scene, grades, areas


def test_every_shipped_case_but_those_without_a_doubling_time_grows():
    assert len(GROWING) >= 8 and "t10_rcc_escc2" in GROWING


@pytest.mark.parametrize("name", GROWING)
def test_the_grade_never_falls_and_the_cord_never_vanishes_as_weeks_pass(name):
    scene, grades, areas = _course(name)
    assert grades[0] == scene.clinical["requested_escc_grade"]
    ranks = [ESCC_GRADES.index(g) for g in grades]
    assert ranks == sorted(ranks), dict(zip(WEEKS, grades))
    present = areas[0] > 0
    for week, area in zip(WEEKS, areas):
        assert np.all(area[present] > 0), f"{name}: no cord/cauda in some slice at week {week}"


def test_the_default_case_grown_on_its_full_scene():
    """The issue's example: ``spinesim scene t10_rcc_escc2 --weeks W`` for W = 12, 26, 52."""
    scene = case_scene("t10_rcc_escc2")
    cord = scene.structure("spinal_cord").full().sum(axis=(1, 2))
    grades = [measure_escc_grade(scene).grade]
    for weeks in (12, 26, 52):
        later = grow(scene, weeks)
        grades.append(measure_escc_grade(later).grade)
        area = later.structure("spinal_cord").full().sum(axis=(1, 2))
        assert np.all(area[cord > 0] > 0)
        assert "epidural_disease" in later.structures
        tumour = later.structure("epidural_disease").full()
        assert np.max(tumour + later.structure("spinal_cord").full()) <= 1 + 1e-6  # never on top of the cord
    assert grades[0] == "2" and [ESCC_GRADES.index(g) for g in grades] == sorted(ESCC_GRADES.index(g) for g in grades)
    assert grades[-1] == "3"


@pytest.mark.parametrize("level, approach, side", [("T8", "ventral", "midline"), ("T3", "ventral", "left"),
                                                   ("L3", "dorsal", "midline"), ("C5", "ventral", "right")])
def test_the_grade_never_falls_as_the_front_advances(level, approach, side):
    _sweep(level, approach, side, 14)


def _sweep(level, approach, side, steps):
    anatomy = build_anatomy(level)
    sites = ("body",) if approach == "ventral" else ("posterior",)
    top = compression_bands(anatomy, approach, side)["depth"]
    grades = [measure_built_grade(anatomy, Lesion(sites=sites, epidural_side=side, epidural_reach_mm=float(r))).grade
              for r in np.linspace(0.0, top, steps)]
    ranks = [ESCC_GRADES.index(g) for g in grades]
    assert ranks == sorted(ranks) and grades[0] == "0" and grades[-1] == "3", (level, approach, side, grades)


@pytest.mark.slow
@pytest.mark.parametrize("level", PHANTOM_LEVELS)
def test_the_grade_never_falls_as_the_front_advances_at_every_level(level):
    for approach, side in (("ventral", "midline"), ("dorsal", "left")):
        _sweep(level, approach, side, 8)


@pytest.mark.slow
@pytest.mark.parametrize("name", GROWING)
def test_grown_full_scenes_agree_with_the_check(name):
    scene = case_scene(name)
    cord = sum(scene.structure(n).full() for n in ("spinal_cord", "cauda_equina") if n in scene.structures)
    later = grow(scene, 52)
    _, grades, _ = _course(name, (0, 52))
    assert [measure_escc_grade(scene).grade, measure_escc_grade(later).grade] == grades
    neural = sum(later.structure(n).full() for n in ("spinal_cord", "cauda_equina") if n in later.structures)
    present = cord.sum(axis=(1, 2)) > 0
    assert np.all(neural.sum(axis=(1, 2))[present] > 0)
