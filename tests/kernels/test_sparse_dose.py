import numpy as np
import pytest
import scipy.sparse as sparse

from kernels.sparse_dose_cpu import dose_from_weights, gradient_to_weights
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


def test_backend_selection_is_explicit():
    from kernels._dispatch import resolve_backend

    assert resolve_backend("auto") == "cpu" and resolve_backend("cpu") == "cpu"
    with pytest.raises(RuntimeError, match="CUDA twins"):
        resolve_backend("cuda")
    with pytest.raises(ValueError, match="backend must be one of"):
        resolve_backend("tpu")
