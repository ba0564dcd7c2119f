import numpy as np
import pytest

from kernels.gamma_cpu import gamma_index, gamma_pass_rate
from tests import naive


def test_matches_brute_force(rng):
    reference = rng.uniform(0, 1, (5, 6, 4))
    evaluated = reference + rng.normal(0, 0.03, reference.shape)
    spacing = (2.0, 1.5, 2.5)
    fast = gamma_index(reference, evaluated, spacing, dose_percent=3, distance_mm=3, cutoff_percent=20, max_gamma=5)
    slow = naive.gamma_index(reference, evaluated, spacing, 3, 3, 20)
    both = ~np.isnan(slow)
    assert np.array_equal(np.isnan(fast), np.isnan(slow))
    assert np.allclose(fast[both], np.minimum(slow[both], 5.0))


def test_identical_distributions_pass_and_shifts_are_caught(rng):
    reference = rng.uniform(0.2, 1, (6, 6, 6))
    assert gamma_pass_rate(gamma_index(reference, reference, (2, 2, 2))) == 1.0
    assert gamma_pass_rate(gamma_index(reference, reference * 1.1, (2, 2, 2), distance_mm=0.5)) < 0.5


def test_upsampling_finds_sub_voxel_agreement():
    """A smooth ramp shifted by 1 mm fails at 2.5 mm voxels without sub-voxel search, passes with it."""
    x = np.arange(30) * 2.5
    reference = np.tile(np.clip(x - 20, 0, 50)[None, None, :], (3, 3, 1))
    shifted = np.tile(np.clip(x - 21, 0, 50)[None, None, :], (3, 3, 1))
    coarse = gamma_pass_rate(gamma_index(reference, shifted, (2.5, 2.5, 2.5), dose_percent=0.5, distance_mm=2.0))
    fine = gamma_pass_rate(gamma_index(reference, shifted, (2.5, 2.5, 2.5), dose_percent=0.5, distance_mm=2.0, upsample=5))
    # Only the top of the ramp, where the shifted ramp's plateau begins 1 mm later, may fail.
    assert fine >= 0.9 and coarse <= 0.1


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="distance_mm"):
        gamma_index(np.ones((2, 2, 2)), np.ones((2, 2, 2)), (1, 1, 1), distance_mm=0)
    with pytest.raises(ValueError, match="shape"):
        gamma_index(np.ones((2, 2, 2)), np.ones((2, 2, 3)), (1, 1, 1))
