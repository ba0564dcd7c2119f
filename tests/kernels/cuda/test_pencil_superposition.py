"""Pencil-beam influence and collapsed-cone twins against the CPU twins and the NumPy references."""

import numpy as np
import pytest

from kernels import pencil_beam_cpu, superposition_cpu
from tests import naive
from tests.kernels.cuda.conftest import SMALL
from tests.kernels.test_superposition import lattice

pytestmark = pytest.mark.cuda


def _dense(indptr, indices, data, n_rows, n_columns):
    out = np.zeros((n_rows, n_columns))
    for row in range(n_rows):
        out[row, indices[indptr[row]:indptr[row + 1]]] = data[indptr[row]:indptr[row + 1]]
    return out


@pytest.mark.parametrize("lateral_step", [1.5, 1.25])
def test_influence_matches_the_cpu_twin_and_the_dense_reference(rng, lateral_step):
    from kernels import pencil_beam_cuda
    from tests.kernels.test_pencil_beam import random_problem

    n = 30
    args, slow = random_problem(rng, n=n, lateral_step=lateral_step)
    cutoff = args[-1]
    built = {}
    for name, module, options in (("cpu", pencil_beam_cpu, {}), ("cuda", pencil_beam_cuda, SMALL)):
        # Two beams side by side in one matrix, as build_influence fills it.
        counts = np.zeros((2, n), np.int64)
        for number in range(2):
            module.count_entries(*args, counts[number], **options)
        indptr = np.concatenate([[0], np.cumsum(counts.sum(axis=0))])
        indices, data = np.empty(indptr[-1], np.int32), np.empty(indptr[-1], np.float32)
        starts = indptr[:-1].copy()
        for number in range(2):
            module.fill_entries(*args, starts, 8 * number, indices, data, **options)
            starts += counts[number]
        built[name] = _dense(indptr, indices, data, n, 16)
    assert np.count_nonzero(built["cpu"]) > 40
    # float32 storage; an entry within rounding of the cut-off may be kept by one twin only.
    assert np.allclose(built["cuda"], built["cpu"], rtol=1e-6, atol=cutoff * (1 + 1e-6))
    assert np.mean(built["cuda"] == built["cpu"]) > 0.99
    assert np.allclose(built["cuda"], np.hstack([slow, slow]), rtol=1e-5, atol=1e-6)


def test_collapsed_cone_matches_the_cpu_twin_and_direct_summation(rng):
    from kernels import superposition_cuda

    shape, spacing = (5, 4, 6), np.array([2.5, 2.0, 1.5])
    released = rng.uniform(0, 1, shape)
    released[rng.uniform(size=shape) < 0.3] = 0.0  # lines that start carrying late
    eta = rng.uniform(0.2, 2.0, shape)
    directions = rng.normal(size=(3, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    amplitudes, rates = rng.uniform(0.05, 0.3, (3, 2)), rng.uniform(0.5, 8.0, (3, 2))
    rates[0, 0] = 1e-9  # the small-tau branch
    cpu = superposition_cpu.collapsed_cone(released, eta, spacing, directions, amplitudes, rates)
    start = rng.uniform(0, 1, shape)  # ``out`` is added to, as on the CPU
    gpu = superposition_cuda.collapsed_cone(released, eta, spacing, directions, amplitudes, rates, out=start.copy(),
                                            **SMALL)
    assert np.allclose(gpu - start, cpu, rtol=1e-9, atol=1e-12)
    slow = naive.collapsed_cone(released, eta, spacing, directions, amplitudes, rates, lattice(shape, spacing))
    assert np.allclose(gpu - start, slow, rtol=2e-3, atol=1e-9)


def test_collapsed_cone_refuses_too_many_components():
    from kernels import superposition_cuda

    with pytest.raises(ValueError, match="at most 8 kernel components"):
        superposition_cuda.collapsed_cone(np.zeros((2, 2, 2)), np.ones((2, 2, 2)), [1.0, 1.0, 1.0], [[1.0, 0, 0]],
                                          np.ones((1, 9)), np.ones((1, 9)))


def test_superposition_dose_backends_agree(rng):
    """The engine end to end (TERMA kept on the device, then cone transport) on a tiny phantom."""
    from kernels.beam_model import load_beam_model
    from kernels.engine import square_field, superposition_dose

    shape, spacing = (6, 8, 6), np.array([5.0, 5.0, 5.0])
    density = rng.uniform(0.8, 1.8, shape)
    origin = -0.5 * spacing * (np.array(shape) - 1)
    fluence, fluence_origin, fluence_spacing = square_field(20.0, 2.5)
    source, axis = np.array([0.0, -1000.0, 0.0]), np.array([0.0, 1.0, 0.0])
    u, v = np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0])
    args = (density, density, origin, spacing, source, axis, u, v, fluence, fluence_origin, fluence_spacing,
            load_beam_model())
    cpu = superposition_dose(*args, subsamples=1, n_azimuth=3, backend="cpu")
    gpu = superposition_dose(*args, subsamples=1, n_azimuth=3, backend="cuda")
    for mine, theirs in zip(gpu, cpu):
        assert np.allclose(mine, theirs, rtol=1e-9, atol=1e-12 * np.abs(theirs).max())
    assert cpu[0].max() > 0
