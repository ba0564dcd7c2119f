"""Media and kernel hardening on the CUDA twins: the second cone source, the absorbed part of
TERMA, and the engine end to end with a tabulated medium and the hardening kernel."""

from dataclasses import replace

import numpy as np
import pytest

from kernels import superposition_cpu, terma_cpu
from tests.kernels.cuda.conftest import SMALL

pytestmark = pytest.mark.cuda


def test_collapsed_cone_second_source_matches_the_cpu_twin(rng):
    from kernels import superposition_cuda

    shape, spacing = (5, 4, 6), np.array([2.5, 2.0, 1.5])
    released, local = rng.uniform(0, 1, shape), rng.uniform(0, 0.5, shape)
    released[rng.uniform(size=shape) < 0.3] = 0.0
    eta = rng.uniform(0.2, 2.0, shape)
    directions = rng.normal(size=(3, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    amplitudes, local_amplitudes = rng.uniform(0.05, 0.3, (3, 3)), rng.uniform(-0.1, 0.3, (3, 3))
    amplitudes[1, 2] = local_amplitudes[1, 2] = 0.0  # a padding component
    rates = rng.uniform(0.5, 8.0, (3, 3))
    options = dict(local_mev=local, local_amplitudes=local_amplitudes)
    cpu = superposition_cpu.collapsed_cone(released, eta, spacing, directions, amplitudes, rates, **options)
    gpu = superposition_cuda.collapsed_cone(released, eta, spacing, directions, amplitudes, rates, **options, **SMALL)
    assert np.allclose(gpu, cpu, rtol=1e-9, atol=1e-12 * np.abs(cpu).max())


def test_collapsed_cone_stack_of_sources_matches_the_cpu_twin(rng):
    """Several sources in one pass (the engine's hardening and tilt), a uniform block (the
    attenuation reused along the line) and voxels releasing nothing (the mask)."""
    from kernels import superposition_cuda

    shape, spacing = (4, 5, 4), np.array([2.0, 2.5, 1.5])
    stack = rng.uniform(-0.3, 1.0, shape + (3,))
    stack[rng.uniform(size=shape) < 0.4] = 0.0
    eta = rng.uniform(0.2, 2.0, shape)
    eta[:, :2] = 1.3
    directions = rng.normal(size=(3, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    amplitudes, rates = rng.uniform(-0.1, 0.3, (3, 3, 4)), rng.uniform(0.03, 8.0, (3, 4))
    amplitudes[1, :, 2] = 0.0  # a padding component
    cpu = superposition_cpu.collapsed_cone(stack, eta, spacing, directions, amplitudes, rates)
    gpu = superposition_cuda.collapsed_cone(stack, eta, spacing, directions, amplitudes, rates, **SMALL)
    assert np.allclose(gpu, cpu, rtol=1e-9, atol=1e-12 * np.abs(cpu).max())


def test_terma_absorbed_part_matches_the_cpu_twin(rng):
    from kernels import terma_cuda

    shape = (3, 4, 4)
    eta = rng.uniform(0.5, 2.0, shape)
    origin, spacing = np.array([0.0, -4.0, -4.0]), np.array([2.5, 2.5, 2.5])
    axis, u, v = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0])
    energies, fractions, mu = rng.uniform(0.5, 6, 3), rng.dirichlet(np.ones(3)), rng.uniform(0.02, 0.08, 3)
    absorbed_fraction = rng.uniform(0.3, 0.7, 3)
    args = (eta, origin, spacing, np.array([-1000.0, 0.2, -0.3]), axis, u, v, 1000.0, rng.uniform(0, 1, (6, 7)),
            np.array([-7.0, -8.0]), np.array([2.5, 2.5]), energies, fractions, mu, 1)
    results = {}
    for name, module, options in (("cpu", terma_cpu, {}), ("cuda", terma_cuda, SMALL)):
        released, absorbed = np.empty(shape), np.empty(shape)
        module.terma(*args, released, absorbed_fraction=absorbed_fraction, out_absorbed=absorbed, **options)
        results[name] = (released, absorbed)
    for gpu, cpu in zip(results["cuda"], results["cpu"]):
        assert np.count_nonzero(cpu) > 10
        assert np.allclose(gpu, cpu, rtol=1e-9, atol=1e-12 * cpu.max())


@pytest.mark.parametrize("hardening, tilting", [(False, False), (True, False), (True, True)])
def test_superposition_dose_with_bone_and_hardening_backends_agree(rng, hardening, tilting):
    # Both off: the released energy stays on the device (a stack of one); otherwise the stack
    # of sources is built on the host.
    from kernels.beam_model import load_beam_model
    from kernels.engine import square_field, superposition_dose

    shape, spacing = (6, 8, 6), np.array([5.0, 5.0, 5.0])
    electron = rng.uniform(0.8, 1.2, shape)
    density = electron.copy()
    medium = np.zeros(shape, np.int64)
    medium[:, 3:5] = 1
    density[medium == 1], electron[medium == 1] = 1.85, 1.737
    origin = -0.5 * spacing * (np.array(shape) - 1)
    fluence, fluence_origin, fluence_spacing = square_field(20.0, 2.5)
    source, axis = np.array([0.0, -1000.0, 0.0]), np.array([0.0, 1.0, 0.0])
    u, v = np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0])
    model = replace(load_beam_model(), kernel_hardening=hardening, kernel_tilting=tilting)
    args = (density, electron, origin, spacing, source, axis, u, v, fluence, fluence_origin, fluence_spacing, model)
    options = dict(subsamples=1, n_azimuth=3, medium=medium, media=("bone",))
    cpu = superposition_dose(*args, **options, backend="cpu")
    gpu = superposition_dose(*args, **options, backend="cuda")
    for mine, theirs in zip(gpu, cpu):
        assert np.allclose(mine, theirs, rtol=1e-9, atol=1e-12 * np.abs(theirs).max())
    assert cpu[0].max() > 0
