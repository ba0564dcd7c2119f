import numpy as np
import pytest

from kernels.raytrace_cpu import path_integral, path_integrals, path_integrals_to_voxels
from tests import naive


def random_setup(rng):
    shape = tuple(int(v) for v in rng.integers(3, 9, 3))
    density = rng.uniform(0.1, 2.0, shape)
    origin = rng.uniform(-10, 10, 3)
    spacing = rng.uniform(0.5, 3.0, 3)
    return density, origin, spacing


def test_matches_dense_sampling(rng):
    density, origin, spacing = random_setup(rng)
    extent = np.array(density.shape) * spacing
    for _ in range(20):
        start = origin + rng.uniform(-0.5, 1.5, 3) * extent
        end = origin + rng.uniform(-0.5, 1.5, 3) * extent
        exact = path_integral(density, origin, spacing, start, end)
        assert exact == pytest.approx(naive.path_integral(density, origin, spacing, start, end), rel=2e-3, abs=1e-3)


def test_axis_aligned_and_uniform(rng):
    density = np.full((4, 5, 6), 1.7)
    origin, spacing = np.zeros(3), np.array([1.0, 2.0, 3.0])
    start, end = np.array([-10.0, 1.0, 1.0]), np.array([10.0, 1.0, 1.0])
    # Crosses the whole z extent (4 voxels of 1 mm) at density 1.7.
    assert path_integral(density, origin, spacing, start, end) == pytest.approx(4 * 1.7)
    # Reversed direction gives the same integral.
    assert path_integral(density, origin, spacing, end, start) == pytest.approx(4 * 1.7)
    # A segment entirely outside gives zero.
    assert path_integral(density, origin, spacing, np.array([20.0, 0, 0]), np.array([30.0, 0, 0])) == 0.0


def test_batched_versions_agree(rng):
    density, origin, spacing = random_setup(rng)
    starts = rng.uniform(-20, 20, (30, 3))
    ends = rng.uniform(-20, 20, (30, 3))
    out = np.empty(30)
    path_integrals(density, origin, spacing, starts, ends, out)
    for n in range(30):
        assert out[n] == pytest.approx(path_integral(density, origin, spacing, starts[n], ends[n]))
    flat = rng.choice(density.size, 10, replace=False).astype(np.int64)
    source = origin - 50.0
    to_voxels = np.empty(10)
    path_integrals_to_voxels(density, origin, spacing, source, flat, to_voxels)
    for n, f in enumerate(flat):
        centre = origin + spacing * np.array(np.unravel_index(f, density.shape))
        assert to_voxels[n] == pytest.approx(path_integral(density, origin, spacing, source, centre))
