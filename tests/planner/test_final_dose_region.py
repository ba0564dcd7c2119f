"""final_dose computes each beam only where its energy goes: the whole grid's dose all the same."""

import numpy as np

from kernels.beam_model import load_beam_model
from kernels.engine import superposition_dose
from planner.radiotherapy.beams import make_beams
from planner.radiotherapy.influence import final_dose, fluence_per_unit_weight
from scenes.scene import scene_from_arrays

N_AZIMUTH = 3  # few cone directions: the same code path, a fraction of the time


def _whole_grid(scene, beams, weights):
    """The engine on the whole grid, beam by beam (final_dose before the region)."""
    grid, model = scene.grid, load_beam_model()
    total = np.zeros(grid.shape)
    for beam, w in zip(beams.beams, beams.split(weights)):
        fluence, origin, spacing = beam.fluence_map(w)
        axis, u, v = beam.frame
        dose, _, _ = superposition_dose(scene.density_g_cc, scene.electron_density, np.asarray(grid.origin_mm),
                                        np.asarray(grid.spacing_mm), beam.source_mm, axis, u, v, fluence, origin,
                                        spacing, model, n_azimuth=N_AZIMUTH,
                                        source_axis_distance_mm=beam.source_axis_distance_mm)
        total += dose * fluence_per_unit_weight()
    return total


def test_random_scene_beams_through_its_edge_and_an_idle_beam(rng):
    shape = (12, 16, 14)
    density = rng.choice([0.3, 1.0, 1.1, 1.9], size=shape)  # lung, water, soft tissue, bone
    target = np.zeros(shape, bool)
    target[4:8, 6:10, 5:9] = True
    scene = scene_from_arrays(spacing_mm=(2.5, 2.5, 2.5), origin_mm=(-15.0, -20.0, -17.5), density_g_cc=density,
                              structures={"target": target})
    points = scene.grid.index_to_mm(np.argwhere(target))
    # An isocentre near the grid's corner: part of every field passes outside the grid.
    isocentre = np.asarray(scene.grid.origin_mm) + rng.uniform(0, 5, 3)
    beams = make_beams(points, gantry_deg=rng.uniform(0, 360, 3), beamlet_mm=5.0, isocentre_mm=isocentre)
    weights = rng.uniform(0.1, 1.0, beams.n_beamlets)
    weights[beams.offsets()[1]:beams.offsets()[2]] = 0.0  # an idle beam is skipped
    whole = _whole_grid(scene, beams, weights)
    region = final_dose(scene, beams, weights, n_azimuth=N_AZIMUTH)
    assert whole.max() > 0
    # The beams' deposits are summed before one conversion to dose: equal to rounding.
    np.testing.assert_allclose(region, whole, rtol=1e-12, atol=1e-12 * whole.max())


def test_named_bone_attenuates_with_its_own_coefficients(rng):
    """A medium named with its own table (ICRP cortical bone) reaches the engine as that medium."""
    from planner.radiotherapy.influence import scene_media

    shape = (16, 12, 12)
    bone = np.zeros(shape, bool)
    bone[6:10] = True
    target = np.zeros(shape, bool)
    target[10:13, 4:8, 4:8] = True
    kwargs = dict(spacing_mm=(2.5, 2.5, 2.5), origin_mm=(-20.0, -15.0, -15.0), structures={"target": target})
    named = scene_from_arrays(density_g_cc=np.ones(shape), media={"icrp_cortical_bone": bone}, **kwargs)
    medium, media = scene_media(named)
    assert media == ("bone",) and np.array_equal(medium > 0, bone)
    assert scene_media(scene_from_arrays(density_g_cc=named.density_g_cc, **kwargs)) == (None, ())
    points = named.grid.index_to_mm(np.argwhere(target))
    beams = make_beams(points, gantry_deg=[rng.uniform(-10, 10)], beamlet_mm=5.0)
    weights = rng.uniform(0.5, 1.0, beams.n_beamlets)
    own = final_dose(named, beams, weights, n_azimuth=N_AZIMUTH)
    scaled = _whole_grid(named, beams, weights)  # every voxel water scaled by electron density
    inside = bone & (own > 0.5 * own.max())
    # Per electron, bone releases about 1% more energy than water for this spectrum
    # (pair production, photoelectric absorption) and attenuates a little more.
    ratio = own[inside] / scaled[inside]
    assert 1.0 < np.median(ratio) < 1.03
