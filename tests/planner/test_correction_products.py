"""The correction loop's products without whole-matrix copies: SciPy's sums, bit for bit."""

import tracemalloc

import numpy as np
from scipy import sparse

from planner.radiotherapy.correction import _product, _row_blocks, _scaled_rows
from planner.radiotherapy.optimise import _rows_read
from planner.radiotherapy.objectives import Overdose, SquaredDeviation
from planner.radiotherapy.optimise import optimise


def _matrix(rng, n_rows, n_columns, fill):
    """float32 values, int32 column indices, int64 row pointers: the influence matrix's layout."""
    dense = rng.uniform(0.0, 1.0, (n_rows, n_columns)) * (rng.uniform(size=(n_rows, n_columns)) < fill)
    matrix = sparse.csr_matrix(dense.astype(np.float32))
    matrix.indices, matrix.indptr = matrix.indices.astype(np.int32), matrix.indptr.astype(np.int64)
    return matrix


def _scaled_whole(matrix, row_scale):
    scaled = matrix.copy()
    scaled.data *= np.repeat(row_scale, np.diff(matrix.indptr))
    return scaled


def test_row_blocks_cover_every_row_once():
    indptr = np.cumsum(np.r_[0, np.random.default_rng(1).integers(0, 50, 300)])
    blocks = list(_row_blocks(indptr, 200))
    assert blocks[0][0] == 0 and blocks[-1][1] == 300
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
    assert all(indptr[last] - indptr[first] <= 200 or last == first + 1 for first, last in blocks)


def test_product_is_scipys_with_and_without_row_scales():
    rng = np.random.default_rng(2)
    matrix = _matrix(rng, 2_500, 500, 0.9)  # more than one block
    weights = rng.uniform(0.0, 2.0, 500)
    assert np.array_equal(_product(matrix, weights), matrix @ weights)
    row_scale = rng.uniform(0.5, 2.0, 2_500).astype(np.float32)
    assert np.array_equal(_product(matrix, weights, row_scale), _scaled_whole(matrix, row_scale) @ weights)


def test_product_holds_a_block_not_a_float64_copy_of_the_matrix():
    rng = np.random.default_rng(3)
    matrix = _matrix(rng, 6_000, 600, 0.9)  # about 3.2 million entries
    weights = rng.uniform(size=600)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        matrix @ weights
        scipy_peak = tracemalloc.get_traced_memory()[1] - start
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        _product(matrix, weights)
        blocked_peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert scipy_peak > 2 * matrix.data.nbytes  # SciPy: float64 values and int64 indices of every entry
    assert blocked_peak < scipy_peak / 2


def test_the_optimiser_reads_the_same_rows_of_the_restricted_matrix():
    rng = np.random.default_rng(4)
    matrix = _matrix(rng, 400, 30, 0.6)
    row_scale = rng.uniform(0.7, 1.4, 400).astype(np.float32)
    target, organ = np.arange(10, 60), np.arange(200, 230)
    terms = [SquaredDeviation(rows=target, weights=np.full(50, 0.02), dose_gy=2.0, priority=1.0),
             Overdose(rows=organ, weights=np.full(30, 1 / 30), dose_gy=0.5, priority=50.0)]
    read = _rows_read(terms, 400)[0]  # the optimiser's rule, which the correction uses
    assert np.array_equal(read, np.r_[target, organ])
    whole, restricted = _scaled_whole(matrix, row_scale), _scaled_rows(matrix, row_scale, read)
    assert restricted.shape == whole.shape and restricted.nnz == whole[read].nnz
    assert (restricted[read] != whole[read]).nnz == 0
    others = np.setdiff1d(np.arange(400), read)
    assert restricted[others].nnz == 0
    offset = rng.uniform(-0.1, 0.1, 400)
    a = optimise(whole, terms, dose_offset=offset, max_iterations=60)
    b = optimise(restricted, terms, dose_offset=offset, max_iterations=60)
    assert np.array_equal(a.weights, b.weights) and a.objective == b.objective


def test_rows_read_is_every_row_for_terms_that_do_not_say():
    class Anything:
        def value_and_gradient(self, dose):
            return 0.0, np.zeros_like(dose)

    assert np.array_equal(_rows_read([Anything()], 7)[0], np.arange(7))
