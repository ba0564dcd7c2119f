"""The irradiated region's memory savings change no number: sources read on their support only,
tilt and stack built on the support, the dose formed in place."""

import numpy as np
import pytest

from kernels.beam_model import MEV_PER_G_TO_GY, load_beam_model
from kernels.engine import cone_sources, dose_from_deposited, ray_tilt
from kernels.irradiated_region import _untouched_zeros, collapsed_cone_downstream
from kernels.superposition_cpu import collapsed_cone
from tests.kernels.test_irradiated_region import _frame  # a random orthonormal beam frame

SHAPE = (9, 12, 11)
SUPPORT = (slice(2, 6), slice(3, 9), slice(1, 7))


def test_sources_outside_the_support_are_never_read():
    rng = np.random.default_rng(3)
    axis, u, v = _frame(rng)
    directions, amplitudes, rates, _ = load_beam_model().transport_directions(axis, u, v, n_azimuth=3)
    eta = rng.uniform(0.3, 1.8, SHAPE)
    spacing = np.array([2.5, 2.0, 3.0])
    stack = np.zeros(SHAPE + (amplitudes.shape[1],))
    stack[SUPPORT] = rng.uniform(0.0, 1.0, stack[SUPPORT].shape)
    reference = collapsed_cone(stack, eta, spacing, directions, amplitudes, rates)
    poisoned = np.full_like(stack, np.nan)  # NaN would spread through every sum that read it
    poisoned[SUPPORT] = stack[SUPPORT]
    deposit = collapsed_cone_downstream(poisoned, eta, spacing, directions, amplitudes, rates, support=SUPPORT)
    assert np.array_equal(deposit, reference)


def test_tilt_on_a_box_is_the_whole_grids_cut():
    rng = np.random.default_rng(4)
    _, u, v = _frame(rng)
    origin, spacing, source = np.array([-10.1, 3.3, -7.7]), np.array([2.5, 1.9, 3.1]), np.array([-900.3, 40.1, 7.9])
    whole = ray_tilt(SHAPE, origin, spacing, source, u, v)
    cut = ray_tilt(SHAPE, origin, spacing, source, u, v, box=SUPPORT)
    for w, c in zip(whole, cut):
        assert c.shape == w[SUPPORT].shape and np.array_equal(c, w[SUPPORT])


def test_stack_written_into_a_view_of_a_larger_grid():
    rng = np.random.default_rng(5)
    released, absorbed = rng.uniform(size=SHAPE), rng.uniform(size=SHAPE)
    tilt = tuple(rng.uniform(-0.1, 0.1, SHAPE) for _ in range(2))
    whole = cone_sources(released, absorbed, tilt)
    assert whole.shape == SHAPE + (6,)
    assert np.array_equal(whole[..., 4], released * tilt[1]) and np.array_equal(whole[..., 3], absorbed * tilt[0])
    grid = _untouched_zeros(SHAPE + (6,))
    out = cone_sources(released[SUPPORT], absorbed[SUPPORT], tuple(t[SUPPORT] for t in tilt), out=grid[SUPPORT])
    assert np.shares_memory(out, grid)
    assert np.array_equal(grid[SUPPORT], whole[SUPPORT])
    outside = np.ones(SHAPE, bool)
    outside[SUPPORT] = False
    assert not np.any(grid[outside])
    with pytest.raises(ValueError, match="out has shape"):
        cone_sources(released, absorbed, tilt, out=np.zeros(SHAPE + (4,)))


def test_dose_in_place_equals_the_formula():
    rng = np.random.default_rng(6)
    deposited = rng.uniform(size=SHAPE)
    density = rng.uniform(0.0, 2.0, SHAPE)
    density[rng.uniform(size=SHAPE) < 0.2] = 0.0  # massless voxels get no dose
    mass = density * (2.5 * 2.0 * 3.0 / 1000.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.where(mass > 0, deposited / mass, 0.0) * MEV_PER_G_TO_GY
    assert np.array_equal(dose_from_deposited(deposited, density, (2.5, 2.0, 3.0)), expected)
