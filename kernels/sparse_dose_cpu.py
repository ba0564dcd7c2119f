"""Dose from beamlet weights and its adjoint: ``A @ w`` and ``A.T @ g`` for a CSR matrix.

``A`` is the influence matrix (voxels x beamlets, float32 values, int32 indices). The
product runs one row per task (no write conflicts); the transpose accumulates per-thread
partial sums that are added at the end (no atomics, deterministic for a given thread count).
Sums are in float64.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit

from ._numba import CPU_PARALLEL, prange

__all__ = ["csr_matvec", "csr_rmatvec", "dose_from_weights", "gradient_to_weights"]


@njit(**CPU_PARALLEL)
def csr_matvec(indptr, indices, data, weights, out):
    """out[row] = sum_k data[k] * weights[indices[k]] over the row's entries."""
    for row in prange(indptr.shape[0] - 1):
        # Four independent partial sums break the add's latency chain (the loop is otherwise
        # latency-bound, not memory-bound).
        start = indptr[row]
        stop = indptr[row + 1]
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        k = start
        while k + 3 < stop:
            s0 += data[k] * weights[indices[k]]
            s1 += data[k + 1] * weights[indices[k + 1]]
            s2 += data[k + 2] * weights[indices[k + 2]]
            s3 += data[k + 3] * weights[indices[k + 3]]
            k += 4
        while k < stop:
            s0 += data[k] * weights[indices[k]]
            k += 1
        out[row] = (s0 + s1) + (s2 + s3)


@njit(**CPU_PARALLEL)
def csr_rmatvec(indptr, indices, data, gradient, n_columns, n_chunks, out):
    """out[col] = sum over rows of data * gradient[row]: A.T @ g, in ``n_chunks`` row blocks."""
    n_rows = indptr.shape[0] - 1
    partial = np.zeros((n_chunks, n_columns))
    block = (n_rows + n_chunks - 1) // n_chunks
    for chunk in prange(n_chunks):
        start = chunk * block
        stop = min(n_rows, start + block)
        for row in range(start, stop):
            g = gradient[row]
            if g == 0.0:
                continue
            for k in range(indptr[row], indptr[row + 1]):
                partial[chunk, indices[k]] += data[k] * g
    for col in range(n_columns):
        total = 0.0
        for chunk in range(n_chunks):
            total += partial[chunk, col]
        out[col] = total


def dose_from_weights(matrix, weights):
    """``matrix @ weights`` (float64) with the Numba kernel; ``matrix`` is scipy.sparse CSR."""
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    if weights.shape != (matrix.shape[1],):
        raise ValueError(f"weights must have shape ({matrix.shape[1]},), got {weights.shape}")
    out = np.empty(matrix.shape[0])
    csr_matvec(matrix.indptr, matrix.indices, matrix.data, weights, out)
    return out


def gradient_to_weights(matrix, gradient, *, n_chunks: int | None = None):
    """``matrix.T @ gradient`` (float64) with the Numba kernel."""
    gradient = np.ascontiguousarray(gradient, dtype=np.float64)
    if gradient.shape != (matrix.shape[0],):
        raise ValueError(f"gradient must have shape ({matrix.shape[0]},), got {gradient.shape}")
    chunks = int(n_chunks or max(1, numba.get_num_threads()))
    out = np.empty(matrix.shape[1])
    csr_rmatvec(matrix.indptr, matrix.indices, matrix.data, gradient, matrix.shape[1], chunks, out)
    return out
