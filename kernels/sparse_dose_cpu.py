"""Dose from beamlet weights and its adjoint: ``A @ w`` and ``A.T @ g`` for a CSR matrix.

``A`` is the influence matrix (voxels x beamlets, float32 values, int32 indices). Both products
split the rows into ``n_chunks`` contiguous blocks holding about the same number of entries
(row lengths differ a lot, so equal row counts would leave one thread waiting), one block per
parallel task. ``A @ w`` writes each row once (no write conflicts); ``A.T @ g`` accumulates one
private column vector per block (beamlets are few: a few KiB each), added at the end in block
order (no atomics, deterministic for a given ``n_chunks``). Sums are in float64.

Thread count: the default ``n_chunks`` comes from the matrix alone (:func:`default_chunks`:
one block per ``ENTRIES_PER_CHUNK`` entries, at most ``MAX_CHUNKS``), never from numba's
thread count, so both products give bit-identical results on 1 thread or 64 (issue 18; before,
``A.T @ g`` used one block per thread and its rounding changed with the thread count).

Loop structure (measured, not cosmetic): each row is walked through slices indexed from 0 and
the column index is read as unsigned, so numba emits no negative-index wraparound code in the
inner loop; with Python's wraparound semantics on ``data[k]`` and ``w[indices[k]]`` the loop
ran at less than half the speed (benchmarks/README.md, Dose core).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from ._numba import CPU, CPU_PARALLEL, prange

__all__ = ["csr_matvec", "csr_rmatvec", "csr_matvec_rows", "csr_rmatvec_rows", "RowSubset", "row_subset", "balanced_row_blocks", "dose_from_weights", "gradient_to_weights",
           "transposed_copy", "default_chunks", "ENTRIES_PER_CHUNK", "MAX_CHUNKS",
           "dense_rows", "column_curvature", "dense_matvec", "dense_rmatvec", "separable_penalties",
           "UNDERDOSE", "OVERDOSE", "DEVIATION"]

#: Default row blocks: one per this many entries (enough work per parallel task to hide the
#: task's start-up), at most MAX_CHUNKS (each block of A.T @ g costs a private column vector
#: and its share of the final sum; 64 blocks of 530 columns: 271 KiB and 34 k additions
#: against millions of entries). A function of the matrix only: see the module docstring.
ENTRIES_PER_CHUNK = 1 << 16
MAX_CHUNKS = 64


@njit(**CPU)
def balanced_row_blocks(indptr, n_chunks):
    """Row boundaries (``n_chunks + 1`` values, first 0, last n_rows) of contiguous row blocks
    holding about ``nnz / n_chunks`` entries each (a block may be empty)."""
    n_rows = indptr.shape[0] - 1
    nnz = indptr[n_rows]
    bounds = np.empty(n_chunks + 1, np.int64)
    for chunk in range(n_chunks + 1):
        bounds[chunk] = np.searchsorted(indptr[: n_rows + 1], (nnz * chunk) // n_chunks)
    bounds[0] = 0
    bounds[n_chunks] = n_rows
    return bounds


@njit(**CPU)
def _row_dot(values, columns, weights):
    """sum_k values[k] * weights[columns[k]], four independent partial sums (breaks the add's
    latency chain without fastmath reassociation)."""
    n = values.shape[0]
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    for j in range(n // 4):
        k = 4 * j
        s0 += values[k] * weights[np.uint32(columns[k])]
        s1 += values[k + 1] * weights[np.uint32(columns[k + 1])]
        s2 += values[k + 2] * weights[np.uint32(columns[k + 2])]
        s3 += values[k + 3] * weights[np.uint32(columns[k + 3])]
    for k in range(4 * (n // 4), n):
        s0 += values[k] * weights[np.uint32(columns[k])]
    return (s0 + s1) + (s2 + s3)


@njit(**CPU)
def _dot_rows(row_indptr, starts, indices, data, weights, out, first, last):
    """out[i] for the rows first..last-1 of a row subset (row ``i`` starts at ``starts[i]`` and
    holds ``row_indptr[i + 1] - row_indptr[i]`` entries; the whole matrix: both its indptr)."""
    for i in range(first, last):
        start = starts[i]
        stop = start + (row_indptr[i + 1] - row_indptr[i])
        out[i] = _row_dot(data[start:stop], indices[start:stop], weights)


@njit(**CPU_PARALLEL)
def csr_matvec(indptr, indices, data, weights, out, n_chunks=2):
    """out[row] = sum_k data[k] * weights[indices[k]] over the row's entries. The result does not
    depend on ``n_chunks`` (each row is summed the same way)."""
    bounds = balanced_row_blocks(indptr, n_chunks)
    for chunk in prange(n_chunks):
        _dot_rows(indptr, indptr, indices, data, weights, out, bounds[chunk], bounds[chunk + 1])


@njit(**CPU)
def _row_scatter(values, columns, g, acc):
    """acc[columns[k]] += values[k] * g. The columns of one CSR row are distinct, so the four
    updates of an unrolled step never alias; the products and column reads are grouped before
    the updates (measured ~8% faster than interleaving them)."""
    n = values.shape[0]
    for j in range(n // 4):
        k = 4 * j
        p0 = values[k] * g
        p1 = values[k + 1] * g
        p2 = values[k + 2] * g
        p3 = values[k + 3] * g
        c0 = np.uint32(columns[k])
        c1 = np.uint32(columns[k + 1])
        c2 = np.uint32(columns[k + 2])
        c3 = np.uint32(columns[k + 3])
        acc[c0] += p0
        acc[c1] += p1
        acc[c2] += p2
        acc[c3] += p3
    for k in range(4 * (n // 4), n):
        acc[np.uint32(columns[k])] += values[k] * g


@njit(**CPU)
def _scatter_rows(row_indptr, starts, indices, data, gradient, first, last, acc):
    """acc += the rows first..last-1 (as :func:`_dot_rows` finds them) times their gradient,
    rows whose gradient is zero skipped."""
    for i in range(first, last):
        g = gradient[i]
        if g == 0.0:
            continue
        start = starts[i]
        stop = start + (row_indptr[i + 1] - row_indptr[i])
        _row_scatter(data[start:stop], indices[start:stop], g, acc)


@njit(**CPU)
def _sum_blocks(partial, out):
    """out[col] = the blocks' partial sums, added in block order (deterministic)."""
    for col in range(partial.shape[1]):
        total = 0.0
        for chunk in range(partial.shape[0]):
            total += partial[chunk, col]
        out[col] = total


@njit(**CPU_PARALLEL)
def csr_rmatvec(indptr, indices, data, gradient, n_columns, n_chunks, out):
    """out[col] = sum over rows of data * gradient[row]: A.T @ g, in ``n_chunks`` row blocks of
    about equal entry counts, each with a private column vector (n_chunks x n_columns float64)."""
    bounds = balanced_row_blocks(indptr, n_chunks)
    partial = np.zeros((n_chunks, n_columns))
    for chunk in prange(n_chunks):
        _scatter_rows(indptr, indptr, indices, data, gradient, bounds[chunk], bounds[chunk + 1], partial[chunk])
    _sum_blocks(partial, out)


@njit(**CPU_PARALLEL)
def csr_matvec_rows(row_indptr, starts, indices, data, weights, out, n_chunks):
    """:func:`csr_matvec` on a subset of the rows, read in place: row ``i`` of the subset starts
    at ``starts[i]`` in ``indices``/``data`` and holds ``row_indptr[i + 1] - row_indptr[i]``
    entries (``row_indptr``: the subset's own cumulative entry counts, which also balance the
    blocks, as the subset's CSR copy would)."""
    bounds = balanced_row_blocks(row_indptr, n_chunks)
    for chunk in prange(n_chunks):
        _dot_rows(row_indptr, starts, indices, data, weights, out, bounds[chunk], bounds[chunk + 1])


@njit(**CPU_PARALLEL)
def csr_rmatvec_rows(row_indptr, starts, indices, data, gradient, n_columns, n_chunks, out):
    """:func:`csr_rmatvec` on a subset of the rows, read in place (see :func:`csr_matvec_rows`):
    the same blocks, the same order of additions as on the subset's CSR copy."""
    bounds = balanced_row_blocks(row_indptr, n_chunks)
    partial = np.zeros((n_chunks, n_columns))
    for chunk in prange(n_chunks):
        _scatter_rows(row_indptr, starts, indices, data, gradient, bounds[chunk], bounds[chunk + 1], partial[chunk])
    _sum_blocks(partial, out)


@dataclass(frozen=True, eq=False)
class RowSubset:
    """Some rows of a CSR matrix, read in place by the products (no copy of the rows: SciPy's
    row indexing copies them, through int64 temporaries); made by :func:`row_subset`.

    ``starts[i]`` is where row ``i`` of the subset begins in the matrix's ``indices``/``data``,
    ``row_indptr`` the subset's own cumulative entry counts (its blocks balance on them, as the
    rows' CSR copy would), ``n_chunks`` its :func:`default_chunks`.
    """
    matrix: object
    starts: np.ndarray
    row_indptr: np.ndarray
    n_chunks: int

    @property
    def shape(self) -> tuple:
        return (self.starts.size, self.matrix.shape[1])

    @property
    def nnz(self) -> int:
        return int(self.row_indptr[-1])

    def dose(self, weights) -> np.ndarray:
        """The rows of ``matrix @ weights`` (float64), bit for bit those of the rows' CSR copy."""
        weights = np.ascontiguousarray(weights, dtype=np.float64)
        out = np.empty(self.starts.size)
        csr_matvec_rows(self.row_indptr, self.starts, self.matrix.indices, self.matrix.data, weights, out,
                        self.n_chunks)
        return out

    def gradient(self, gradient) -> np.ndarray:
        """The rows' ``A.T @ gradient`` (float64; one gradient value per row of the subset), bit
        for bit :func:`gradient_to_weights` of the rows' CSR copy."""
        gradient = np.ascontiguousarray(gradient, dtype=np.float64)
        out = np.empty(self.matrix.shape[1])
        csr_rmatvec_rows(self.row_indptr, self.starts, self.matrix.indices, self.matrix.data, gradient,
                         self.matrix.shape[1], self.n_chunks, out)
        return out


def row_subset(matrix, rows) -> RowSubset:
    """The rows ``rows`` of a CSR ``matrix`` for in-place products.

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix
        The matrix (kept by reference, never modified).
    rows : array_like of int
        Row indices in 0..n_rows-1 (ValueError otherwise), in the order the products use.

    Returns
    -------
    RowSubset

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sparse
    >>> matrix = sparse.csr_matrix(np.arange(12.0).reshape(4, 3))
    >>> row_subset(matrix, [3, 1]).dose(np.ones(3)).tolist()
    [30.0, 12.0]
    """
    rows = np.asarray(rows, np.int64)
    if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= matrix.shape[0])):
        raise ValueError(f"rows must be a 1-D array of row indices in 0..{matrix.shape[0] - 1}")
    starts = np.ascontiguousarray(matrix.indptr[rows], np.int64)
    row_indptr = np.zeros(rows.size + 1, np.int64)
    np.cumsum(matrix.indptr[rows + 1] - starts, out=row_indptr[1:])
    return RowSubset(matrix, starts, row_indptr, default_chunks(int(row_indptr[-1])))


def default_chunks(nnz: int) -> int:
    """Row blocks of a matrix with ``nnz`` entries: ``nnz // ENTRIES_PER_CHUNK`` in 1..MAX_CHUNKS,
    whatever the thread count (so the products' rounding never depends on it)."""
    return int(min(MAX_CHUNKS, max(1, int(nnz) // ENTRIES_PER_CHUNK)))


def _chunks(n_chunks, nnz):
    chunks = default_chunks(nnz) if n_chunks is None else int(n_chunks)
    if chunks < 1:
        raise ValueError(f"n_chunks must be >= 1, got {n_chunks}")
    return chunks


def dose_from_weights(matrix, weights, *, n_chunks: int | None = None):
    """``matrix @ weights`` (float64) with the Numba kernel; ``matrix`` is scipy.sparse CSR.
    ``n_chunks`` (default :func:`default_chunks`, set by the matrix, not the thread count) row
    blocks of equal entry counts; the result does not depend on it."""
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    if weights.shape != (matrix.shape[1],):
        raise ValueError(f"weights must have shape ({matrix.shape[1]},), got {weights.shape}")
    out = np.empty(matrix.shape[0])
    csr_matvec(matrix.indptr, matrix.indices, matrix.data, weights, out, _chunks(n_chunks, matrix.nnz))
    return out


def transposed_copy(matrix):
    """CSR of ``matrix.T`` (float32 values, int32 indices) for ``gradient_to_weights(...,
    transposed=...)``: as much memory again as ``matrix``; ``A.T @ g`` then runs as a row product
    (gathers from ``g``, no scattered updates), about 1.4x faster on the reference case."""
    out = matrix.T.tocsr()
    out.sort_indices()
    if out.indices.dtype != np.int32:
        out.indices = out.indices.astype(np.int32)
    return out


def gradient_to_weights(matrix, gradient, *, n_chunks: int | None = None, transposed=None):
    """``matrix.T @ gradient`` (float64) with the Numba kernel; the rounding of the sum depends
    on ``n_chunks`` (default :func:`default_chunks`: set by the matrix, never by the thread
    count, so the result is the same on any number of threads), nothing else. With ``transposed`` (from
    ``transposed_copy(matrix)``, built once with the matrix) it is the row product of that copy."""
    gradient = np.ascontiguousarray(gradient, dtype=np.float64)
    if gradient.shape != (matrix.shape[0],):
        raise ValueError(f"gradient must have shape ({matrix.shape[0]},), got {gradient.shape}")
    if transposed is not None:
        if transposed.shape != (matrix.shape[1], matrix.shape[0]) or transposed.nnz != matrix.nnz:
            raise ValueError(f"transposed must be the {matrix.shape[1]} x {matrix.shape[0]} transpose of matrix "
                             f"({matrix.nnz} entries), got {transposed.shape} with {transposed.nnz}")
        return dose_from_weights(transposed, gradient, n_chunks=n_chunks)
    out = np.empty(matrix.shape[1])
    csr_rmatvec(matrix.indptr, matrix.indices, matrix.data, gradient, matrix.shape[1], _chunks(n_chunks, matrix.nnz),
                out)
    return out


# ---------------------------------------------------------------- the optimiser's dense copy
#
# The rows an objective reads (target and organ voxels) are few and nearly full: on the peer
# benchmark's spine case 1,438 of 11,373 rows, 98 % of their entries non-zero. The optimiser
# copies them once into two dense arrays (row-major and column-major, the matrix's own dtype)
# and runs both products as column/row AXPYs: no index reads, no gathers, unit-stride loops
# that LLVM vectorises without fastmath (no reduction is reordered). Single-threaded: the
# products are ~50 us, less than a parallel launch gains on 2 shared cores, and the sum order
# is fixed (bit-identical on any thread count). Sums are in float64.
# CPU only: the GPU optimiser keeps the CSR products of kernels/sparse_dose_cuda.py on the
# device (planner/radiotherapy/device_objective.py), so these have no CUDA twin.

#: Kinds of :func:`separable_penalties` entries (the objectives' Underdose, Overdose and
#: SquaredDeviation; the numbers are codes, not physics).
UNDERDOSE = 0
OVERDOSE = 1
DEVIATION = 2


@njit(**CPU)
def dense_rows(indptr, indices, data, rows, by_row, by_column):
    """Copy chosen CSR rows of A into a row-major and a column-major dense array.

    Parameters
    ----------
    indptr, indices : numpy.ndarray of int
        The CSR structure of A (n_rows + 1,) and (nnz,).
    data : numpy.ndarray of float32 or float64, shape (nnz,)
        A's entries (e.g. Gy per unit beamlet weight).
    rows : numpy.ndarray of int, shape (n_chosen,)
        The rows to copy, each in 0..n_rows-1; copy i holds row ``rows[i]``.
    by_row : numpy.ndarray, shape (n_chosen, n_columns)
        Zeroed by the caller; receives ``by_row[i, column] = A[rows[i], column]``.
    by_column : numpy.ndarray, shape (n_columns, n_chosen)
        Zeroed by the caller; receives the transpose, ``by_column[column, i]``.

    Returns
    -------
    None
        Both arrays are filled in place; repeated entries of a non-canonical CSR row are
        added.
    """
    for i in range(rows.shape[0]):
        row = rows[i]
        for k in range(indptr[row], indptr[row + 1]):
            column = indices[k]
            by_row[i, column] += data[k]
            by_column[column, i] += data[k]


@njit(**CPU)
def column_curvature(indptr, indices, data, rows, row_weights, out):
    """out[column] = sum_i row_weights[i] * A[rows[i], column]^2 (``out`` zeroed by the caller):
    the diagonal of ``A.T diag(c) A`` on the chosen rows, the optimiser's column scaling."""
    for i in range(rows.shape[0]):
        row = rows[i]
        c = row_weights[i]
        for k in range(indptr[row], indptr[row + 1]):
            value = np.float64(data[k])
            out[indices[k]] += c * value * value


@njit(**CPU)
def dense_matvec(by_column, weights, out):
    """``out = A @ weights`` from A's column-major copy: one AXPY per non-zero weight (weights
    at their bound 0 cost nothing).

    Parameters
    ----------
    by_column : numpy.ndarray of float32 or float64, shape (n_columns, n_rows)
        A's column-major copy (``by_column[j]`` is column j, e.g. from :func:`dense_rows`),
        Gy per unit beamlet weight.
    weights : numpy.ndarray of float64, shape (n_columns,)
        Beamlet weights.
    out : numpy.ndarray of float64, shape (n_rows,)
        Overwritten with the dose (Gy).

    Returns
    -------
    None
        The result is written to ``out``.
    """
    out[:] = 0.0
    n_rows = out.shape[0]
    for j in range(by_column.shape[0]):
        w = weights[j]
        if w == 0.0:
            continue
        column = by_column[j]
        for i in range(n_rows):
            out[i] += column[i] * w


@njit(**CPU)
def dense_rmatvec(by_row, gradient, out):
    """``out = A.T @ gradient`` from A's row-major copy: one AXPY per row with a non-zero
    gradient (rows whose penalty is inactive cost nothing).

    Parameters
    ----------
    by_row : numpy.ndarray of float32 or float64, shape (n_rows, n_columns)
        A's row-major copy (``by_row[i]`` is row i, e.g. from :func:`dense_rows`), Gy per unit
        beamlet weight.
    gradient : numpy.ndarray of float64, shape (n_rows,)
        The objective's gradient with respect to each row's dose (per Gy).
    out : numpy.ndarray of float64, shape (n_columns,)
        Overwritten with the gradient with respect to each beamlet weight.

    Returns
    -------
    None
        The result is written to ``out``.
    """
    out[:] = 0.0
    n_columns = out.shape[0]
    for i in range(by_row.shape[0]):
        g = gradient[i]
        if g == 0.0:
            continue
        row = by_row[i]
        for j in range(n_columns):
            out[j] += row[j] * g


@njit(**CPU)
def separable_penalties(dose, rows, coefficients, levels, kinds, gradient):
    """Value of the per-row penalties ``c (d - D)^2`` (DEVIATION), ``c (D - d)_+^2``
    (UNDERDOSE), ``c (d - D)_+^2`` (OVERDOSE) over the entries (``rows``, ``coefficients`` =
    priority x volume weight, ``levels`` D in Gy, ``kinds``), and their gradient with respect
    to the dose written into ``gradient`` (overwritten; rows repeat across terms)."""
    gradient[:] = 0.0
    value = 0.0
    for e in range(rows.shape[0]):
        row = rows[e]
        difference = dose[row] - levels[e]
        kind = kinds[e]
        if (kind == UNDERDOSE and difference >= 0.0) or (kind == OVERDOSE and difference <= 0.0):
            continue
        value += coefficients[e] * difference * difference
        gradient[row] += 2.0 * coefficients[e] * difference
    return value
