"""Bilsky/ESCC grades measured back from geometry (the builder and growth: test_lesions, test_growth)."""

import numpy as np
import pytest

from scenes.anatomy import build_anatomy, collapse_limits
from scenes.escc import measure_escc_grade
from scenes.lesions import ESCC_GRADES, Lesion, lesion_geometry, posterolateral_of, reach_for_grade
from scenes.phantom import anatomy_with_collapse, build_phantom, default_grid, render_phantom
from scenes.scene import scene_from_arrays


def test_reach_increases_with_grade():
    for level in ("C4", "T7", "L4"):
        anatomy = build_anatomy(level)
        reaches = [reach_for_grade(anatomy, g) for g in ESCC_GRADES]
        assert reaches == sorted(reaches) and reaches[0] == 0 and len(set(reaches)) == len(reaches)


def test_measure_works_on_a_scene_built_from_arrays():
    """The measurement reads only structures: an 'imported' copy gives the same grade."""
    phantom = build_phantom("T10", spacing_mm=(2.5, 1.25, 1.25), supersample=3,
                            lesion=Lesion(epidural_reach_mm=reach_for_grade(build_anatomy("T10"), "1c")))
    names = ("spinal_canal", "thecal_sac", "spinal_cord", "gtv")
    imported = scene_from_arrays(spacing_mm=phantom.grid.spacing_mm, origin_mm=phantom.grid.origin_mm,
                                 density_g_cc=phantom.density_g_cc,
                                 structures={n: phantom.structure(n).full() for n in names})
    assert "epidural_disease" not in imported.structures
    assert measure_escc_grade(imported).grade == "1c"


def test_explanation_names_the_evidence():
    scene = build_phantom("L3", spacing_mm=(2.5, 1.25, 1.25), supersample=3,
                          lesion=Lesion(epidural_reach_mm=reach_for_grade(build_anatomy("L3"), "3")))
    measured = measure_escc_grade(scene)
    assert measured.grade == "3" and measured.csf_area_mm2 < 1.0
    assert "ESCC 3" in measured.explain() and "CSF" in measured.explain()


def test_missing_structures_are_named():
    scene = scene_from_arrays(spacing_mm=(2, 2, 2), density_g_cc=np.ones((3, 3, 3)))
    with pytest.raises(KeyError, match="spinal_canal"):
        measure_escc_grade(scene)


def test_posterolateral_from_sites():
    assert posterolateral_of(("body",)) == "none"
    assert posterolateral_of(("body", "pedicle_left")) == "unilateral"
    assert posterolateral_of(("pedicle_left", "pedicle_right")) == "bilateral"
    assert posterolateral_of(("posterior", "pedicle_right")) == "bilateral"


def test_collapse_lowers_the_body():
    anatomy = build_anatomy("L1")
    with pytest.raises(ValueError, match="anatomy_with_collapse"):
        lesion_geometry(anatomy, Lesion(collapse_pct=40))  # collapse is the anatomy's, never applied twice
    lesion_geometry(anatomy_with_collapse(anatomy, Lesion(collapse_pct=40)), Lesion(collapse_pct=40))
    grid = default_grid(anatomy, (1.25, 2.5, 2.5))
    a = render_phantom(anatomy, grid, Lesion(collapse_pct=0), supersample=2).structure("vertebral_body_L1")
    b = render_phantom(anatomy, grid, Lesion(collapse_pct=40), supersample=2).structure("vertebral_body_L1")
    # The rendered collapse is a wedge (scenes/anatomy.py): the front loses 40%, the back
    # loses the data file's share of that, the body keeps the mean of the two.
    back = collapse_limits()["posterior_to_anterior_loss"]
    assert b.volume_cc / a.volume_cc == pytest.approx(1 - 0.4 * (1 + back) / 2, abs=0.03)


@pytest.mark.parametrize("field, value, message", [
    ("sites", ("spine",), "sites"), ("kind", "osteoid", "kind"), ("body_fraction", 0.0, "body_fraction"),
    ("epidural_reach_mm", -1.0, "epidural_reach_mm"), ("collapse_pct", 100.0, "collapse_pct"),
    ("epidural_side", "up", "epidural_side"), ("requested_grade", "4", "requested_grade"),
])
def test_bad_lesions_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        Lesion(**{field: value})
