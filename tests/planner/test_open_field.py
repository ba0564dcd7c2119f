"""Commissioning geometry: an open field at an SSD, the same in both dose engines, any SAD."""

import numpy as np
import pytest

from planner.radiotherapy.beams import open_field
from planner.radiotherapy.influence import build_influence, final_dose
from scenes.scene import scene_from_arrays

SPACING = (5.0, 5.0, 5.0)


def water_tank():
    # 20 x 25 x 20 cm of water, surface at y = 0 (patient LPS: the beam at gantry 0 runs +y).
    return scene_from_arrays(spacing_mm=SPACING, origin_mm=(-97.5, 2.5, -97.5), density_g_cc=np.ones((40, 50, 40)))


def test_the_field_is_tiled_exactly_and_placed_by_the_ssd():
    beam = open_field(50.0, entry_mm=(0.0, 0.0, 0.0), ssd_mm=950.0).beams[0]
    assert beam.beamlet_mm == 5.0 and beam.n_beamlets == 100  # 10 x 10 beamlets of 5 mm
    assert beam.isocentre_mm == pytest.approx((0.0, 50.0, 0.0))  # SAD 1000 - SSD 950 below the surface
    assert np.linalg.norm(beam.source_mm - np.array([0.0, 0.0, 0.0])) == pytest.approx(950.0)
    u = beam.beamlet_uv_mm[:, 0]
    assert u.min() - 2.5 == pytest.approx(-25.0) and u.max() + 2.5 == pytest.approx(25.0)  # edges not snapped


@pytest.mark.parametrize("field, message", [(12.5, "multiple of 5 mm"), (5.0, "10..400"), (np.nan, "10..400")])
def test_bad_fields_are_refused(field, message):
    with pytest.raises(ValueError, match=message):
        open_field(field, entry_mm=(0.0, 0.0, 0.0))


def test_an_ssd_beyond_the_sad_is_refused():
    with pytest.raises(ValueError, match="ssd_mm must be in"):
        open_field(100.0, entry_mm=(0.0, 0.0, 0.0), ssd_mm=1200.0)


@pytest.mark.slow
@pytest.mark.parametrize("sad_mm, tolerance", [(1000.0, 0.02), (800.0, 0.035)])
def test_both_engines_agree_on_the_axis_at_any_sad(sad_mm, tolerance):
    scene = water_tank()
    beams = open_field(100.0, entry_mm=(0.0, 0.0, 0.0), ssd_mm=sad_mm - 50.0, source_axis_distance_mm=sad_mm)
    weights = np.ones(beams.n_beamlets)
    superposition = final_dose(scene, beams, weights)
    influence = build_influence(scene, beams, roi=np.arange(scene.grid.size), kept_energy=0.995)
    assert influence.kept_energy >= 0.995
    pencil = influence.dose_volume(weights)
    depth_mm = scene.grid.origin_mm[1] + SPACING[1] * np.arange(scene.grid.shape[1])
    beyond_build_up = (depth_mm >= 20.0) & (depth_mm <= 200.0)
    ratio = pencil[20, beyond_build_up, 20] / superposition[20, beyond_build_up, 20]
    # The pencil kernel was computed by the superposition engine in water at the model's SAD:
    # on the axis of an open field beyond the build-up they agree within 2% at every depth
    # there. At another SAD both engines place the field the same way (the beam's own SAD),
    # and the kernel's built-in divergence (the model's) costs up to another 1.5% at depth.
    assert np.all(np.abs(ratio - 1) < tolerance), ratio
