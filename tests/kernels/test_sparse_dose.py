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
