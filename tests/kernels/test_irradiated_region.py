"""The superposition restricted to the irradiated region gives the whole grid's dose, bit for bit."""

import dataclasses

import numpy as np
import pytest

from kernels.beam_model import load_beam_model
from kernels.engine import blurred_fluence, superposition_dose
from kernels.irradiated_region import (collapsed_cone_downstream, dose_from_deposited, field_box, support_box,
                                       superposition_dose_in_region)
from kernels.superposition_cpu import collapsed_cone

N_AZIMUTH = 3  # few cone directions: the same code path, a fraction of the time


def _frame(rng):
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    u = np.cross(axis, rng.normal(size=3))
    u /= np.linalg.norm(u)
    return axis, u, np.cross(axis, u)


def _scene(rng, shape=(9, 12, 11), spacing=(2.5, 2.0, 3.0)):
    density = rng.uniform(0.2, 2.0, shape)
    density[rng.uniform(size=shape) < 0.1] = 0.0  # some massless (air) voxels
    return density, density * rng.uniform(0.9, 1.1, shape), np.array([-10.0, 3.0, -7.0]), np.asarray(spacing)


def _model(variant):
    model = load_beam_model()
    if variant in ("fixed kernel", "hardening"):  # both of the engine's transports, whatever the model's default
        return dataclasses.replace(model, kernel_hardening=variant == "hardening", kernel_tilting=False)
    if variant in ("tilting", "hardening and tilting"):  # the tilt's sources ride the same pass
        return dataclasses.replace(model, kernel_hardening=variant != "tilting", kernel_tilting=True)
    return model


def _both(rng, aim_mm, sad_mm=1000.0, variant="model"):
    density, eta, origin, spacing = _scene(rng)
    axis, u, v = _frame(rng)
    source = np.asarray(aim_mm) - sad_mm * axis
    fluence = rng.uniform(0.2, 1.0, (4, 5)) * (rng.uniform(size=(4, 5)) < 0.8)  # holes, as unused beamlets
    fluence[1:3, 1:4] += 0.5  # the pixels around the axis always open
    fluence_origin, fluence_spacing = (-7.5, -10.0), (5.0, 5.0)
    model = _model(variant)
    media = {}
    if variant == "media":  # some voxels of a tabulated medium
        media = dict(medium=(rng.uniform(size=density.shape) < 0.3).astype(np.int64), media=("bone",))
    whole, released, _ = superposition_dose(density, eta, origin, spacing, source, axis, u, v, fluence, fluence_origin,
                                            fluence_spacing, model, n_azimuth=N_AZIMUTH, source_axis_distance_mm=sad_mm,
                                            **media)
    region, _ = superposition_dose_in_region(density, eta, origin, spacing, source, axis, u, v, fluence, fluence_origin,
                                             fluence_spacing, model, n_azimuth=N_AZIMUTH,
                                             source_axis_distance_mm=sad_mm, **media)
    shared = np.zeros(density.shape)  # the deposit-only form final_dose sums its beams with
    superposition_dose_in_region(density, eta, origin, spacing, source, axis, u, v, fluence, fluence_origin,
                                 fluence_spacing, model, n_azimuth=N_AZIMUTH, source_axis_distance_mm=sad_mm,
                                 deposited=shared, **media)
    np.testing.assert_array_equal(dose_from_deposited(shared, density, spacing), region)
    box = field_box(density.shape, origin, spacing, source, axis, u, v, sad_mm,
                    blurred_fluence(fluence, fluence_spacing, model), fluence_origin, fluence_spacing)
    return whole, region, released, box


@pytest.mark.parametrize("variant", ["model", "fixed kernel", "hardening", "tilting", "hardening and tilting", "media"])
def test_random_scene_and_beam_give_the_whole_grids_dose_bit_for_bit(rng, variant):
    whole, region, released, box = _both(rng, aim_mm=rng.uniform([-5, 8, 0], [5, 20, 15]),
                                         sad_mm=rng.uniform(800, 1200), variant=variant)
    assert whole.max() > 0
    np.testing.assert_array_equal(region, whole)
    outside = np.ones(released.shape, bool)
    outside[box] = False
    assert not np.any(released[outside])  # the box holds every voxel the beam releases energy in


def test_a_beam_through_the_grids_edge_one_from_inside_and_one_that_misses_it(rng):
    # Aimed at a corner of the grid: most of the field passes outside it.
    whole, region, _, box = _both(rng, aim_mm=[-11.0, 1.0, -8.0])
    assert whole.max() > 0 and box is not None
    np.testing.assert_array_equal(region, whole)
    # A source inside the grid (a few mm from the aim): the box keeps the voxels beside it.
    whole, region, _, _ = _both(rng, aim_mm=rng.uniform([-5, 8, 0], [5, 20, 15]), sad_mm=rng.uniform(8, 25))
    np.testing.assert_array_equal(region, whole)
    # Aimed far beside the grid: nothing released, nothing deposited, no box.
    whole, region, _, box = _both(rng, aim_mm=[-10.0, 400.0, 400.0])
    assert box is None and not whole.any() and not region.any()


def test_transport_downstream_only_equals_the_whole_sweep(rng):
    shape, spacing = (8, 10, 7), np.array([2.5, 1.5, 2.0])
    released = np.zeros(shape)
    released[2:5, 6:9, 1:4] = rng.uniform(0.1, 1.0, (3, 3, 3))  # a released block off the centre
    eta = rng.uniform(0.1, 2.0, shape)
    directions = rng.normal(size=(6, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    amplitudes = rng.uniform(0.05, 0.3, (6, 3))
    amplitudes[:, 1] = 0.0  # a zero component is dropped
    rates = rng.uniform(0.03, 8.0, (6, 3))
    whole = collapsed_cone(released, eta, spacing, directions, amplitudes, rates)
    region = collapsed_cone_downstream(released, eta, spacing, directions, amplitudes, rates, np.zeros(shape))
    np.testing.assert_array_equal(region, whole)
    # With a second, signed source riding along (the engine's kernel hardening).
    local = released * rng.uniform(0.3, 0.7, shape)
    local_amplitudes = rng.uniform(-0.1, 0.3, (6, 3))
    whole = collapsed_cone(released, eta, spacing, directions, amplitudes, rates, local_mev=local,
                           local_amplitudes=local_amplitudes)
    region = collapsed_cone_downstream(released, eta, spacing, directions, amplitudes, rates, local_mev=local,
                                       local_amplitudes=local_amplitudes)
    np.testing.assert_array_equal(region, whole)


def test_support_box():
    values = np.zeros((4, 5, 6))
    assert support_box(values) is None
    values[1, 2, 3] = values[2, 4, 3] = 1.0
    assert support_box(values) == (slice(1, 3), slice(2, 5), slice(3, 4))


@pytest.mark.parametrize("shape", [(5, 4), (3, 3, 3, 3)])
def test_collapsed_cone_downstream_refuses_mismatched_shapes(shape):
    with pytest.raises(ValueError, match="differ in shape"):
        collapsed_cone_downstream(np.zeros((3, 3, 3)), np.zeros((3, 3, 3)), np.ones(3), np.eye(3), np.ones((3, 1)),
                                  np.ones((3, 1)), np.zeros(shape))
    with pytest.raises(ValueError, match="differ in shape"):
        collapsed_cone_downstream(np.zeros((3, 3, 3)), np.zeros(shape), np.ones(3), np.eye(3), np.ones((3, 1)),
                                  np.ones((3, 1)))
