import numpy as np
import pytest
import scipy.sparse as sparse

from kernels.sparse_dose_cpu import balanced_row_blocks, dose_from_weights, gradient_to_weights, transposed_copy
from tests import naive


def random_csr(rng, rows=300, cols=40, density=0.2):
    matrix = sparse.random(rows, cols, density=density, random_state=np.random.RandomState(rng.integers(2**31)),
                           format="csr", dtype=np.float32)
    matrix.indices = matrix.indices.astype(np.int32)
    return matrix


def test_matvec_matches_reference(rng):
    matrix = random_csr(rng)
    weights = rng.uniform(0, 2, matrix.shape[1])
    assert np.allclose(dose_from_weights(matrix, weights), naive.csr_matvec(matrix, weights), rtol=1e-6)


@pytest.mark.parametrize("chunks", [1, 2, 7])
def test_transpose_matches_reference(rng, chunks):
    matrix = random_csr(rng)
    gradient = rng.normal(size=matrix.shape[0])
    assert np.allclose(gradient_to_weights(matrix, gradient, n_chunks=chunks), naive.csr_rmatvec(matrix, gradient), rtol=1e-6)


def skewed_csr(rng, rows=400, cols=50):
    """Rows of very different lengths (0 .. cols entries, many empty), as in the influence matrix."""
    lengths = np.where(rng.uniform(size=rows) < 0.3, 0, rng.integers(1, cols + 1, rows))
    columns = [np.sort(rng.choice(cols, n, replace=False)) for n in lengths]
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    indices = np.concatenate(columns).astype(np.int32)
    data = rng.uniform(0, 1, indptr[-1]).astype(np.float32)
    return sparse.csr_matrix((data, indices, indptr), shape=(rows, cols))


@pytest.mark.parametrize("chunks", [1, 2, 3, 16, 1000])
def test_balanced_blocks_on_skewed_rows(rng, chunks):
    matrix = skewed_csr(rng)
    w, g = rng.uniform(0, 2, matrix.shape[1]), rng.normal(size=matrix.shape[0])
    g[rng.uniform(size=g.shape) < 0.2] = 0.0  # the gradient kernel skips zero rows
    dose = dose_from_weights(matrix, w, n_chunks=chunks)
    assert np.allclose(dose, naive.csr_matvec(matrix, w), rtol=1e-12, atol=0)
    # each row is summed the same way whatever the blocking: bitwise equal to one block
    assert np.array_equal(dose, dose_from_weights(matrix, w, n_chunks=1))
    reference = naive.csr_rmatvec(matrix, g)
    assert np.allclose(gradient_to_weights(matrix, g, n_chunks=chunks), reference, rtol=1e-12,
                       atol=1e-12 * np.abs(reference).max())
    transposed = transposed_copy(matrix)
    assert transposed.indices.dtype == np.int32 and transposed.data.dtype == np.float32
    assert np.allclose(gradient_to_weights(matrix, g, n_chunks=chunks, transposed=transposed), reference,
                       rtol=1e-12, atol=1e-12 * np.abs(reference).max())
    bounds = balanced_row_blocks(matrix.indptr, chunks)
    assert bounds[0] == 0 and bounds[-1] == matrix.shape[0] and np.all(np.diff(bounds) >= 0)
    per_block = np.diff(matrix.indptr[bounds])
    assert per_block.sum() == matrix.nnz
    assert per_block.max() <= matrix.nnz / chunks + np.diff(matrix.indptr).max()  # balanced up to one row


def test_adjoint_identity(rng):
    """<A w, g> == <w, A.T g>: the two kernels are each other's adjoint."""
    matrix = random_csr(rng, 500, 60)
    w, g = rng.uniform(0, 1, 60), rng.normal(size=500)
    assert dose_from_weights(matrix, w) @ g == pytest.approx(w @ gradient_to_weights(matrix, g), rel=1e-9)


def test_empty_rows_and_bad_shapes(rng):
    matrix = sparse.csr_matrix((5, 3), dtype=np.float32)
    assert np.all(dose_from_weights(matrix, np.ones(3)) == 0)
    with pytest.raises(ValueError, match="weights"):
        dose_from_weights(matrix, np.ones(4))
    with pytest.raises(ValueError, match="gradient"):
        gradient_to_weights(matrix, np.ones(4))
    with pytest.raises(ValueError, match="n_chunks"):
        dose_from_weights(matrix, np.ones(3), n_chunks=-1)
    with pytest.raises(ValueError, match="transpose"):
        gradient_to_weights(matrix, np.ones(5), transposed=matrix)


def test_backend_selection_is_explicit():
    from kernels._dispatch import cuda_available, resolve_backend

    assert resolve_backend("cpu") == "cpu"
    if cuda_available():  # a GPU host: 'auto' takes the GPU
        assert resolve_backend("auto") == resolve_backend("cuda") == "cuda"
    else:
        assert resolve_backend("auto") == "cpu"
        with pytest.raises(RuntimeError, match="CUDA twins"):
            resolve_backend("cuda")
    with pytest.raises(ValueError, match="backend must be one of"):
        resolve_backend("tpu")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_copies_and_their_products_match_the_reference(rng, dtype):
    from kernels.sparse_dose_cpu import column_curvature, dense_matvec, dense_rmatvec, dense_rows

    matrix = skewed_csr(rng)
    matrix.data = matrix.data.astype(dtype)
    rows = np.sort(rng.choice(matrix.shape[0], 90, replace=False))
    by_row = np.zeros((rows.size, matrix.shape[1]), dtype)
    by_column = np.zeros((matrix.shape[1], rows.size), dtype)
    dense_rows(matrix.indptr, matrix.indices, matrix.data, rows, by_row, by_column)
    reference = matrix.toarray()[rows]
    assert np.array_equal(by_row, reference) and np.array_equal(by_column, reference.T)

    w, g = rng.uniform(0, 2, matrix.shape[1]), rng.normal(size=rows.size)
    w[:7], g[:11] = 0.0, 0.0  # both products skip zeros
    dose, back = np.full(rows.size, np.nan), np.full(matrix.shape[1], np.nan)
    dense_matvec(by_column, w, dose)
    dense_rmatvec(by_row, g, back)
    assert np.allclose(dose, reference.astype(np.float64) @ w, rtol=1e-12, atol=1e-12)
    assert np.allclose(back, reference.astype(np.float64).T @ g, rtol=1e-12, atol=1e-12)

    c = rng.uniform(0, 3, rows.size)
    curvature = np.zeros(matrix.shape[1])
    column_curvature(matrix.indptr, matrix.indices, matrix.data, rows, c, curvature)
    assert np.allclose(curvature, (reference.astype(np.float64) ** 2 * c[:, None]).sum(axis=0), rtol=1e-12)


def test_separable_penalties_match_the_objective_terms(rng):
    from kernels.sparse_dose_cpu import DEVIATION, OVERDOSE, UNDERDOSE, separable_penalties
    from planner.radiotherapy.objectives import Overdose, SquaredDeviation, Underdose, total

    dose = rng.uniform(0, 8, 50)
    kinds = {Underdose: UNDERDOSE, Overdose: OVERDOSE, SquaredDeviation: DEVIATION}
    terms = [kind(rows=rng.choice(50, 20, replace=False), weights=rng.uniform(0.1, 1, 20), dose_gy=level, priority=p)
             for kind, level, p in ((Underdose, 5.0, 2.0), (Overdose, 3.0, 7.0), (SquaredDeviation, 4.0, 0.5),
                                    (Underdose, 6.0, 1.0))]
    gradient = np.full(50, np.nan)
    value = separable_penalties(dose, np.concatenate([t.rows for t in terms]),
                                np.concatenate([t.priority * t.weights for t in terms]),
                                np.concatenate([np.full(20, t.dose_gy) for t in terms]),
                                np.concatenate([np.full(20, kinds[type(t)], np.int8) for t in terms]), gradient)
    expected_value, expected_gradient = total(terms, dose)
    assert value == pytest.approx(expected_value, rel=1e-12)
    assert np.allclose(gradient, expected_gradient, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("chunks", [None, 1, 3])
def test_row_subset_products_are_the_copys_bit_for_bit(rng, chunks):
    from kernels.sparse_dose_cpu import row_subset

    matrix = skewed_csr(rng, rows=600, cols=60)
    rows = rng.permutation(600)[: int(rng.integers(1, 600))]  # any order, some empty rows among them
    subset = row_subset(matrix, rows)
    if chunks is not None:
        subset = type(subset)(subset.matrix, subset.starts, subset.row_indptr, chunks)
    copy = matrix[rows]
    w, g = rng.uniform(0, 2, 60), rng.normal(size=rows.size)
    g[rng.uniform(size=g.shape) < 0.3] = 0.0
    assert subset.shape == copy.shape and subset.nnz == copy.nnz
    assert np.array_equal(subset.dose(w), dose_from_weights(copy, w))
    assert np.array_equal(subset.gradient(g), gradient_to_weights(copy, g, n_chunks=subset.n_chunks))
    assert np.allclose(subset.dose(w), naive.csr_matvec(copy, w), rtol=1e-12, atol=0)
    reference = naive.csr_rmatvec(copy, g)
    assert np.allclose(subset.gradient(g), reference, rtol=1e-12, atol=1e-12 * max(np.abs(reference).max(), 1.0))


@pytest.mark.parametrize("rows", [[-1, 2], [0, 300], np.zeros((2, 2), int)])
def test_row_subset_refuses_rows_outside_the_matrix(rng, rows):
    from kernels.sparse_dose_cpu import row_subset

    with pytest.raises(ValueError, match="rows must be a 1-D array of row indices in 0..299"):
        row_subset(random_csr(rng), rows)
