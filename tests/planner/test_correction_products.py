"""The correction loop's products without whole-matrix copies, and the row-scaled objective
without a scaled copy of the matrix."""

import tracemalloc

import numpy as np
import pytest
from scipy import sparse
from scipy.optimize import check_grad

from kernels.sparse_dose_cpu import dose_from_weights
from planner.radiotherapy.optimise import _CpuObjective, _rows_read
from planner.radiotherapy.objectives import Overdose, SquaredDeviation
from planner.radiotherapy.optimise import optimise


def _matrix(rng, n_rows, n_columns, fill):
    """float32 values, int32 column indices, int64 row pointers: the influence matrix's layout."""
    dense = rng.uniform(0.0, 1.0, (n_rows, n_columns)) * (rng.uniform(size=(n_rows, n_columns)) < fill)
    matrix = sparse.csr_matrix(dense.astype(np.float32))
    matrix.indices, matrix.indptr = matrix.indices.astype(np.int32), matrix.indptr.astype(np.int64)
    return matrix


def _scaled_whole(matrix, row_scale):
    """diag(row_scale) @ matrix in float64, the influence matrix's index layout kept."""
    scaled = matrix.astype(np.float64)
    scaled.indices, scaled.indptr = matrix.indices.copy(), matrix.indptr.copy()
    scaled.data *= np.repeat(row_scale, np.diff(matrix.indptr))
    return scaled


def test_the_loops_product_holds_no_copy_of_the_matrix():
    """The correction loop's ``A w`` (the project's CSR kernel) against SciPy's, which copies a
    float32 matrix to float64 values and int64 indices first."""
    rng = np.random.default_rng(np.random.SeedSequence().entropy)
    matrix = _matrix(rng, 6_000, 600, 0.9)  # about 3.2 million entries
    weights = rng.uniform(size=600)
    dose_from_weights(matrix, weights)  # numba compiled outside the measurement
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        expected = matrix @ weights
        scipy_peak = tracemalloc.get_traced_memory()[1] - start
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        found = dose_from_weights(matrix, weights)
        kernel_peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert scipy_peak > 2 * matrix.data.nbytes  # SciPy: float64 values and int64 indices of every entry
    assert kernel_peak < 2 * found.nbytes  # the result alone
    np.testing.assert_allclose(found, expected, rtol=1e-12)


def _row_scaled_problem(rng, dense_rows: bool):
    matrix = _matrix(rng, 400, 30, 0.95 if dense_rows else 0.1)
    row_scale = rng.uniform(0.7, 1.4, 400)
    target, organ = np.arange(10, 60), np.arange(200, 230)
    terms = [SquaredDeviation(rows=target, weights=np.full(50, 0.02), dose_gy=2.0, priority=1.0),
             Overdose(rows=organ, weights=np.full(30, 1 / 30), dose_gy=0.5, priority=50.0)]
    return matrix, row_scale, terms, rng.uniform(-0.1, 0.1, 400)


@pytest.mark.parametrize("dense_rows", [True, False])  # the optimiser's dense copy and its CSR path
def test_row_scale_is_the_row_scaled_matrix(dense_rows):
    seed = np.random.SeedSequence().entropy
    rng = np.random.default_rng(seed)
    matrix, row_scale, terms, offset = _row_scaled_problem(rng, dense_rows)
    scaled = _scaled_whole(matrix, row_scale)
    by_scale = _CpuObjective(matrix, terms, dose_offset=offset, row_scale=row_scale)
    by_copy = _CpuObjective(scaled, terms, dose_offset=offset)
    assert by_scale.dense == dense_rows, seed
    np.testing.assert_allclose(by_scale.scale, by_copy.scale, rtol=1e-6, err_msg=str(seed))  # the same variable scaling
    for _ in range(3):
        w = rng.uniform(0.0, 2.0, 30)
        value, gradient = by_scale(w / by_scale.scale)
        expected, expected_gradient = by_copy(w / by_copy.scale)
        assert value == pytest.approx(expected, rel=1e-6), seed
        np.testing.assert_allclose(gradient / by_scale.scale, expected_gradient / by_copy.scale, rtol=1e-5, atol=1e-9,
                                   err_msg=str(seed))
    x = rng.uniform(0.5, 1.5, 30)
    assert check_grad(lambda v: by_scale(v)[0], lambda v: by_scale(v)[1], x) < 1e-5 * np.linalg.norm(by_scale(x)[1]), seed


@pytest.mark.parametrize("row_scale, message", [(np.ones(5), "row_scale must be 400 finite values >= 0"),
                                                (np.full(400, -1.0), "row_scale must be 400 finite values >= 0"),
                                                (np.full(400, np.nan), "row_scale must be 400 finite values >= 0")])
def test_optimise_refuses_a_bad_row_scale(row_scale, message):
    matrix, _, terms, _ = _row_scaled_problem(np.random.default_rng(5), True)
    with pytest.raises(ValueError, match=message):
        optimise(matrix, terms, row_scale=row_scale)


def test_rows_read_is_every_row_for_terms_that_do_not_say():
    class Anything:
        def value_and_gradient(self, dose):
            return 0.0, np.zeros_like(dose)

    assert np.array_equal(_rows_read([Anything()], 7)[0], np.arange(7))


@pytest.mark.parametrize("given", ["dose_offset", "row_scale"])
def test_the_gpu_objective_refuses_a_row_correction_before_any_work(monkeypatch, given):
    import planner.radiotherapy.optimise as optimise_module

    monkeypatch.setattr(optimise_module, "resolve_backend", lambda backend: "cuda")
    matrix, row_scale, terms, offset = _row_scaled_problem(np.random.default_rng(6), True)
    with pytest.raises(ValueError, match=f"^{given}: the GPU objective has no per-row dose offset or scale"):
        optimise(matrix, terms, backend="cuda", **{given: {"dose_offset": offset, "row_scale": row_scale}[given]})
