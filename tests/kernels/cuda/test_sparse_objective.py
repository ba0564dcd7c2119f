"""Sparse products, the device objective and the optimiser on the device, against the CPU."""

import numpy as np
import pytest
import scipy.sparse as sparse

from kernels import sparse_dose_cpu
from tests import naive
from tests.kernels.cuda.conftest import SMALL

pytestmark = pytest.mark.cuda


def _matrix(rng, n_rows, n_columns, density=0.3):
    matrix = sparse.random(n_rows, n_columns, density=density, format="csr", dtype=np.float32, random_state=rng)
    matrix.data = rng.uniform(0.0, 2.0, matrix.nnz).astype(np.float32)
    matrix.indices = matrix.indices.astype(np.int32)
    return matrix


@pytest.mark.parametrize("threads_per_row", [1, 2, 4])
def test_products_match_the_cpu_twin_and_the_reference(rng, threads_per_row):
    from kernels import sparse_dose_cuda

    matrix = _matrix(rng, 37, 11)
    matrix.data[matrix.indptr[5]:matrix.indptr[6]] = 0.0  # an empty row
    matrix.eliminate_zeros()
    weights, gradient = rng.uniform(0, 3, 11), rng.normal(size=37)
    gradient[:4] = 0.0
    launch = dict(threads_per_block=8, threads_per_row=threads_per_row, max_blocks=3)
    dose = sparse_dose_cuda.dose_from_weights(matrix, weights, **launch)
    back = sparse_dose_cuda.gradient_to_weights(matrix, gradient, **launch)
    # float64 sums of the same float32 x float64 products in another order: rounding only.
    assert np.allclose(dose, sparse_dose_cpu.dose_from_weights(matrix, weights), rtol=1e-12, atol=1e-12)
    assert np.allclose(back, sparse_dose_cpu.gradient_to_weights(matrix, gradient), rtol=1e-12, atol=1e-12)
    assert np.allclose(dose, naive.csr_matvec(matrix, weights), rtol=1e-12, atol=1e-12)
    assert np.allclose(back, naive.csr_rmatvec(matrix, gradient), rtol=1e-12, atol=1e-12)
    transposed = sparse_dose_cpu.transposed_copy(matrix)
    back_t = sparse_dose_cuda.gradient_to_weights(matrix, gradient, transposed=transposed, **launch)
    assert np.allclose(back_t, back, rtol=1e-12, atol=1e-12)


def test_wide_matrices_add_to_global_memory(rng):
    from kernels import sparse_dose_cuda

    matrix = _matrix(rng, 6, sparse_dose_cuda.MAX_SHARED_COLUMNS + 5, density=0.004)
    gradient = rng.normal(size=6)
    back = sparse_dose_cuda.gradient_to_weights(matrix, gradient, **dict(SMALL, threads_per_row=2))
    assert np.allclose(back, naive.csr_rmatvec(matrix, gradient), rtol=1e-12, atol=1e-12)


def test_device_vectors_stay_on_the_device(rng):
    from numba import cuda

    from kernels import sparse_dose_cuda

    matrix = _matrix(rng, 20, 7)
    on_device = sparse_dose_cuda.device_csr(matrix)
    assert on_device.nbytes == 8 * matrix.nnz + 8 * 21
    out = cuda.device_array(20)
    returned = sparse_dose_cuda.dose_from_weights(on_device, cuda.to_device(np.ones(7)), out=out, **SMALL)
    assert returned is out
    assert np.allclose(out.copy_to_host(), naive.csr_matvec(matrix, np.ones(7)), rtol=1e-12)


def test_bad_launch_shapes_are_refused(rng):
    from kernels import sparse_dose_cuda

    matrix = _matrix(rng, 4, 3)
    with pytest.raises(ValueError, match="threads_per_row must be a power of two"):
        sparse_dose_cuda.dose_from_weights(matrix, np.ones(3), threads_per_block=8, threads_per_row=3)
    with pytest.raises(ValueError, match="weights must have shape"):
        sparse_dose_cuda.dose_from_weights(matrix, np.ones(4))


def _terms(rng, n_rows):
    from planner.radiotherapy.objectives import (DoseVolumeMax, DoseVolumeMin, MeanDose, Overdose, SquaredDeviation,
                                                 Underdose)

    def rows(k):
        return rng.choice(n_rows, k, replace=False)

    return [Underdose(rows=rows(12), weights=rng.uniform(0.1, 1, 12), dose_gy=6.0, priority=2.0),
            Overdose(rows=rows(10), weights=rng.uniform(0.1, 1, 10), dose_gy=3.0, priority=5.0),
            MeanDose(rows=rows(9), weights=rng.uniform(0.1, 1, 9), dose_gy=1.0, priority=1.5),
            DoseVolumeMin(rows=rows(15), weights=rng.uniform(0.1, 1, 15), dose_gy=5.0, priority=3.0,
                          volume_fraction=0.8),
            DoseVolumeMax(rows=rows(15), weights=rng.uniform(0.1, 1, 15), dose_gy=2.0, priority=4.0,
                          volume_fraction=0.3),
            SquaredDeviation(rows=rows(11), weights=rng.uniform(0.1, 1, 11), dose_gy=2.5, priority=1.5)]


def test_device_objective_matches_the_host_objective(rng):
    from planner.radiotherapy.device_objective import DeviceObjective
    from planner.radiotherapy.objectives import total

    matrix = _matrix(rng, 40, 9)
    terms = _terms(rng, 40)
    objective = DeviceObjective(matrix, terms, threads_per_block=8, threads_per_row=2, max_blocks=3)
    for _ in range(3):
        weights = rng.uniform(0, 2, 9)
        dose = sparse_dose_cpu.dose_from_weights(matrix, weights)
        value, gradient = total(terms, dose)
        expected = sparse_dose_cpu.gradient_to_weights(matrix, gradient)
        got_value, got_gradient = objective(weights)
        assert value > 0
        assert got_value == pytest.approx(value, rel=1e-12)
        assert np.allclose(got_gradient, expected, rtol=1e-10, atol=1e-12 * np.abs(expected).max())


def test_device_objective_refuses_unknown_terms(rng):
    from planner.radiotherapy.device_objective import DeviceObjective
    from planner.radiotherapy.objectives import Term

    class Odd(Term):
        pass

    with pytest.raises(ValueError, match="has no GPU form"):
        DeviceObjective(_matrix(rng, 5, 3), [Odd(rows=[0], weights=[1.0], dose_gy=1.0)])


def test_optimise_on_the_device_matches_the_cpu(rng, monkeypatch):
    from planner.radiotherapy import device_objective
    from planner.radiotherapy.objectives import Overdose, Underdose
    from planner.radiotherapy.optimise import optimise

    # optimise() builds its DeviceObjective with the hardware launch shape; keep it small here.
    monkeypatch.setattr(device_objective.DeviceObjective.__init__, "__kwdefaults__",
                        dict(threads_per_block=8, threads_per_row=2, max_blocks=2))

    matrix = _matrix(rng, 30, 6, density=0.6)
    target, organ = np.arange(0, 15), np.arange(15, 30)
    terms = [Underdose(rows=target, weights=np.ones(15), dose_gy=10.0, priority=10.0),
             Overdose(rows=organ, weights=np.ones(15), dose_gy=4.0, priority=1.0)]
    cpu = optimise(matrix, terms, max_iterations=60, backend="cpu")
    gpu = optimise(matrix, terms, max_iterations=60, backend="cuda")
    # Same L-BFGS-B path up to rounding of the objective: same optimum to its tolerances.
    assert gpu.objective == pytest.approx(cpu.objective, rel=1e-4, abs=1e-9)
    assert np.allclose(gpu.weights, cpu.weights, rtol=1e-3, atol=1e-3 * cpu.weights.max())
