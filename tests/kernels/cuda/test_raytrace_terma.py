"""Ray tracing and TERMA twins against the CPU twins and the NumPy references."""

import numpy as np
import pytest

from kernels import raytrace_cpu, terma_cpu
from tests import naive
from tests.kernels.cuda.conftest import SMALL

pytestmark = pytest.mark.cuda


def _grid(rng, shape):
    return (rng.uniform(0.0, 2.0, shape), rng.uniform(-5, 5, 3), rng.uniform(1.0, 3.0, 3))


def test_path_integrals_match_the_cpu_twin_and_the_reference(rng):
    from kernels import raytrace_cuda

    density, origin, spacing = _grid(rng, (5, 6, 7))
    starts, ends = rng.uniform(-15, 25, (24, 3)), rng.uniform(-15, 25, (24, 3))
    ends[:3] = starts[:3]  # zero-length segments
    ends[3, 1:] = starts[3, 1:]  # axis-parallel: the two other components equal
    cpu, gpu = np.empty(24), np.empty(24)
    raytrace_cpu.path_integrals(density, origin, spacing, starts, ends, cpu)
    raytrace_cuda.path_integrals(density, origin, spacing, starts, ends, gpu, **SMALL)
    # Same traversal in float64: FMA contraction moves boundary crossings by ulps only.
    assert np.allclose(gpu, cpu, rtol=1e-9, atol=1e-12)
    reference = [naive.path_integral(density, origin, spacing, s, e) for s, e in zip(starts[:6], ends[:6])]
    assert np.allclose(gpu[:6], reference, rtol=2e-3, atol=1e-3)


def test_path_integrals_to_voxels_match_the_cpu_twin(rng):
    from kernels import raytrace_cuda

    density, origin, spacing = _grid(rng, (4, 5, 6))
    source = rng.uniform(-40, 40, 3)
    voxels = rng.choice(density.size, 20, replace=False).astype(np.int64)
    cpu, gpu = np.empty(20), np.empty(20)
    raytrace_cpu.path_integrals_to_voxels(density, origin, spacing, source, voxels, cpu)
    raytrace_cuda.path_integrals_to_voxels(density, origin, spacing, source, voxels, gpu, **SMALL)
    assert np.allclose(gpu, cpu, rtol=1e-9, atol=1e-12)


def test_terma_matches_the_cpu_twin_and_the_reference(rng):
    from kernels import terma_cuda

    shape = (4, 5, 5)
    eta, origin, spacing = _grid(rng, shape)
    eta[0, 0, :2] = 0.0  # voxels with nothing to release
    source = np.array([rng.uniform(-3, 3), -1000.0, rng.uniform(-3, 3)])
    axis, u, v = np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0])
    fluence = rng.uniform(0.0, 1.0, (6, 7))
    fluence_origin, fluence_spacing = np.array([-7.0, -8.0]), np.array([2.5, 2.5])
    energies, fractions, mu = rng.uniform(0.5, 6, 3), rng.dirichlet(np.ones(3)), rng.uniform(0.02, 0.08, 3)
    args = (eta, origin, spacing, source, axis, u, v, 1000.0, fluence, fluence_origin, fluence_spacing, energies,
            fractions, mu, 2)
    cpu, gpu = np.empty(shape), np.empty(shape)
    terma_cpu.terma(*args, cpu)
    terma_cuda.terma(*args, gpu, **SMALL)
    assert np.count_nonzero(cpu) > 10
    assert np.allclose(gpu, cpu, rtol=1e-9, atol=1e-12 * cpu.max())
    assert np.allclose(gpu, naive.terma(*args), rtol=2e-3, atol=1e-6 * cpu.max())


def test_terma_media_stack_matches_the_cpu_twin(rng):
    """Two media, each attenuating with its own coefficients along its own path integral."""
    from kernels import terma_cuda

    shape = (3, 4, 5)
    eta, origin, spacing = _grid(rng, shape)
    second = rng.random(shape) < 0.4
    scale = np.stack([np.where(second, 0.0, eta), np.where(second, rng.uniform(1.0, 2.0, shape), 0.0)])
    source = np.array([-1000.0, rng.uniform(-3, 3), rng.uniform(-3, 3)])
    axis, u, v = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0])
    fluence = rng.uniform(0.1, 1.0, (17, 18))  # covers the whole grid (-5..20 mm): every voxel is tested
    energies, fractions, mu = rng.uniform(0.5, 6, 3), rng.dirichlet(np.ones(3)), rng.uniform(0.02, 0.08, (2, 3))
    args = (scale, origin, spacing, source, axis, u, v, 1000.0, fluence, np.array([-21.0, -22.0]), np.array([2.5, 2.5]),
            energies, fractions, mu, 1)
    cpu, gpu = np.empty(shape), np.empty(shape)
    terma_cpu.terma(*args, cpu)
    terma_cuda.terma(*args, gpu, **SMALL)
    assert np.count_nonzero(cpu) > 10
    assert np.allclose(gpu, cpu, rtol=1e-9, atol=1e-12 * cpu.max())


def test_terma_refuses_bad_subsamples():
    from kernels import terma_cuda

    with pytest.raises(ValueError, match="subsamples must be 1..8"):
        terma_cuda.terma(*([np.zeros(3)] * 14), 9, np.zeros(3))


def test_depths_and_upstream_densities_match_the_cpu_twin(rng):
    from kernels import raytrace_cuda

    density, origin, spacing = _grid(rng, (4, 5, 6))
    density[0] = 0.0  # a layer of vacuum on some paths
    source = rng.uniform(-40, 40, 3)
    voxels = rng.choice(density.size, 20, replace=False).astype(np.int64)
    cpu = np.empty(20), np.empty(20)
    gpu = np.empty(20), np.empty(20)
    raytrace_cpu.depths_and_upstream_densities_to_voxels(density, origin, spacing, source, voxels, 4.0, *cpu)
    raytrace_cuda.depths_and_upstream_densities_to_voxels(density, origin, spacing, source, voxels, 4.0, *gpu, **SMALL)
    assert np.allclose(gpu[0], cpu[0], rtol=1e-9, atol=1e-12)
    assert np.allclose(gpu[1], cpu[1], rtol=1e-9, atol=1e-12)
    path = np.empty(20)
    raytrace_cpu.path_integrals_to_voxels(density, origin, spacing, source, voxels, path)
    assert np.allclose(gpu[0], path, rtol=1e-9, atol=1e-12)
