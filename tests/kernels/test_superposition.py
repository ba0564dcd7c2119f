import numpy as np
import pytest

from kernels.superposition_cpu import collapsed_cone, line_offsets
from tests import naive


def lattice(shape, spacing):
    """The kernel's own line lattice, rebuilt for the naive reference."""
    def lines_for(direction):
        dominant, sign, others, offsets, step_mm = line_offsets(direction, spacing, shape)
        n = shape[dominant]
        lines = {}
        for p0 in range(-offsets[:, 0].max(), shape[others[0]] - offsets[:, 0].min()):
            for q0 in range(-offsets[:, 1].max(), shape[others[1]] - offsets[:, 1].min()):
                voxels = []
                for step in range(n):
                    p, q = p0 + offsets[step, 0], q0 + offsets[step, 1]
                    if 0 <= p < shape[others[0]] and 0 <= q < shape[others[1]]:
                        index = [0, 0, 0]
                        index[dominant] = step if sign > 0 else n - 1 - step
                        index[others[0]], index[others[1]] = p, q
                        voxels.append(tuple(index))
                    elif voxels:
                        lines.setdefault((p0, q0), []).append(voxels)
                        voxels = []
                if voxels:
                    lines.setdefault((p0, q0), []).append(voxels)
        return [segment for group in lines.values() for segment in group], step_mm
    return lines_for


def test_matches_direct_summation(rng):
    shape, spacing = (5, 4, 6), np.array([2.5, 2.0, 1.5])
    released = rng.uniform(0, 1, shape)
    eta = rng.uniform(0.2, 2.0, shape)
    directions = rng.normal(size=(3, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    amplitudes = rng.uniform(0.05, 0.3, (3, 2))
    rates = rng.uniform(0.5, 8.0, (3, 2))
    fast = collapsed_cone(released, eta, spacing, directions, amplitudes, rates)
    slow = naive.collapsed_cone(released, eta, spacing, directions, amplitudes, rates, lattice(shape, spacing))
    assert np.allclose(fast, slow, rtol=2e-3, atol=1e-9)


def test_every_voxel_is_on_one_line_per_direction(rng):
    shape, spacing = (7, 5, 6), np.array([2.5, 1.25, 1.25])
    for _ in range(5):
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        lines, _ = lattice(shape, spacing)(direction)
        visited = [v for line in lines for v in line]
        assert len(visited) == len(set(visited)) == int(np.prod(shape))


def test_energy_is_conserved_when_nothing_escapes():
    """Short-range kernel, energy released in the middle of a big block: all of it is deposited."""
    shape = (21, 21, 21)
    released = np.zeros(shape)
    released[10, 10, 10] = 5.0
    directions = np.array([[1.0, 0, 0], [-1.0, 0, 0], [0, 0.6, 0.8]])
    amplitudes = np.array([[0.3, 0.1], [0.2, 0.1], [0.25, 0.05]])
    rates = np.full((3, 2), 40.0)  # 1/cm: range well inside 10 voxels of 2 mm
    deposited = collapsed_cone(released, np.ones(shape), np.array([2.0, 2.0, 2.0]), directions, amplitudes, rates)
    assert deposited.sum() == pytest.approx(5.0 * amplitudes.sum(), rel=1e-9)
    assert np.all(deposited >= 0) and np.all(np.isfinite(deposited))


def test_density_scales_the_range():
    """Doubling the density halves the distance energy travels (O'Connor scaling)."""
    shape = (300, 1, 1)
    released = np.zeros(shape)
    released[0, 0, 0] = 1.0
    direction = np.array([[1.0, 0.0, 0.0]])
    amplitude, rate = np.array([[1.0]]), np.array([[0.5]])  # mean range 20 mm in water
    low = collapsed_cone(released, np.full(shape, 1.0), np.array([1.0, 1.0, 1.0]), direction, amplitude, rate)[:, 0, 0]
    high = collapsed_cone(released, np.full(shape, 2.0), np.array([1.0, 1.0, 1.0]), direction, amplitude, rate)[:, 0, 0]
    depth = np.arange(300) + 0.5
    mean_low = (low * depth).sum() / low.sum()
    mean_high = (high * depth).sum() / high.sum()
    assert mean_high == pytest.approx(mean_low / 2, rel=0.05)
