"""CUDA twin of :mod:`kernels.sparse_dose_cpu`: ``A @ w`` and ``A.T @ g`` for a CSR matrix.

``A @ w``: a group of ``threads_per_row`` threads per row (a power of two dividing the block)
reads the row's entries with consecutive threads on consecutive entries (coalesced), sums in
float64 and reduces the group's partial sums in shared memory (a tree with ``syncthreads``:
no warp shuffles, so the CUDA simulator runs the same code). The sum order differs from the
CPU twin's four partial sums: results agree to float64 rounding (tests: relative 1e-12).

``A.T @ g``: each block accumulates its rows' contributions in a shared-memory column vector
(atomic adds; beamlets are few: up to ``MAX_SHARED_COLUMNS``), then adds it to the output
with one atomic add per column; wider matrices add straight to global memory. The order of
float64 atomic additions is not fixed, so the last bits vary run to run (tests: relative
1e-12). With the row product of a transposed copy (``transposed=``, as the optimiser uses)
the result is deterministic.

A matrix is uploaded once with :func:`device_csr`; the products take it, or a scipy CSR
matrix (uploaded per call), and host or device vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import cuda, float64

from ._cuda import CUDA, as_device, blocks_for, is_device, to_host

__all__ = ["DeviceCSR", "device_csr", "csr_matvec_kernel", "csr_rmatvec_kernel", "csr_rmatvec_global_kernel",
           "stream_triad_kernel",
           "dose_from_weights", "gradient_to_weights", "MAX_THREADS_PER_BLOCK", "MAX_SHARED_COLUMNS"]

#: Shared-memory sizes are compile-time constants: the largest block, the widest shared column vector.
MAX_THREADS_PER_BLOCK = 1024
MAX_SHARED_COLUMNS = 2048


@dataclass(frozen=True, eq=False)
class DeviceCSR:
    """A CSR matrix on the GPU: int64 row pointers, int32 column indices, float32 values."""
    indptr: object
    indices: object
    data: object
    shape: tuple
    nnz: int

    @property
    def nbytes(self) -> int:
        """Bytes on the device (8 per entry + 8 per row pointer)."""
        return 8 * self.nnz + 8 * (self.shape[0] + 1)


def device_csr(matrix) -> DeviceCSR:
    """Upload a scipy CSR matrix (float32 values, int32 indices, as the influence matrix is)."""
    if isinstance(matrix, DeviceCSR):
        return matrix
    return DeviceCSR(cuda.to_device(np.ascontiguousarray(matrix.indptr, np.int64)),
                     cuda.to_device(np.ascontiguousarray(matrix.indices, np.int32)),
                     cuda.to_device(np.ascontiguousarray(matrix.data, np.float32)), tuple(matrix.shape), int(matrix.nnz))


@cuda.jit(**CUDA)
def csr_matvec_kernel(indptr, indices, data, weights, out, threads_per_row):
    """out[row] = sum_k data[k] * weights[indices[k]]; ``threads_per_row`` threads per row."""
    partial = cuda.shared.array(MAX_THREADS_PER_BLOCK, float64)
    tid = cuda.threadIdx.x
    lane = tid % threads_per_row
    rows_per_block = cuda.blockDim.x // threads_per_row
    n_rows = indptr.shape[0] - 1
    # Every thread of a block runs the same number of passes (syncthreads needs all of them).
    for base in range(cuda.blockIdx.x * rows_per_block, n_rows, cuda.gridDim.x * rows_per_block):
        row = base + tid // threads_per_row
        total = 0.0
        if row < n_rows:
            for k in range(indptr[row] + lane, indptr[row + 1], threads_per_row):
                total += data[k] * weights[indices[k]]
        partial[tid] = total
        cuda.syncthreads()
        offset = threads_per_row // 2
        while offset > 0:
            if lane < offset:
                partial[tid] += partial[tid + offset]
            cuda.syncthreads()
            offset //= 2
        if lane == 0 and row < n_rows:
            out[row] = partial[tid]
        cuda.syncthreads()


@cuda.jit(**CUDA)
def csr_rmatvec_kernel(indptr, indices, data, gradient, out, threads_per_row):
    """out[col] += sum over rows of data * gradient[row] (``out`` zeroed first; n_columns <= MAX_SHARED_COLUMNS)."""
    acc = cuda.shared.array(MAX_SHARED_COLUMNS, float64)
    tid = cuda.threadIdx.x
    n_columns = out.shape[0]
    for col in range(tid, n_columns, cuda.blockDim.x):
        acc[col] = 0.0
    cuda.syncthreads()
    lane = tid % threads_per_row
    rows_per_block = cuda.blockDim.x // threads_per_row
    n_rows = indptr.shape[0] - 1
    for row in range(cuda.blockIdx.x * rows_per_block + tid // threads_per_row, n_rows, cuda.gridDim.x * rows_per_block):
        g = gradient[row]
        if g != 0.0:
            for k in range(indptr[row] + lane, indptr[row + 1], threads_per_row):
                cuda.atomic.add(acc, indices[k], data[k] * g)
    cuda.syncthreads()
    for col in range(tid, n_columns, cuda.blockDim.x):
        if acc[col] != 0.0:
            cuda.atomic.add(out, col, acc[col])


@cuda.jit(**CUDA)
def csr_rmatvec_global_kernel(indptr, indices, data, gradient, out, threads_per_row):
    """As :func:`csr_rmatvec_kernel` for any number of columns, adding to global memory."""
    tid = cuda.threadIdx.x
    lane = tid % threads_per_row
    rows_per_block = cuda.blockDim.x // threads_per_row
    n_rows = indptr.shape[0] - 1
    for row in range(cuda.blockIdx.x * rows_per_block + tid // threads_per_row, n_rows, cuda.gridDim.x * rows_per_block):
        g = gradient[row]
        if g != 0.0:
            for k in range(indptr[row] + lane, indptr[row + 1], threads_per_row):
                cuda.atomic.add(out, indices[k], data[k] * g)


@cuda.jit(**CUDA)
def stream_triad_kernel(a, b, c, scalar):
    """a = b + scalar * c (STREAM's triad): the device's attainable bandwidth, the products' roofline."""
    for i in range(cuda.grid(1), a.shape[0], cuda.gridsize(1)):
        a[i] = b[i] + scalar * c[i]


def _launch(n_rows, threads_per_block, threads_per_row, max_blocks):
    if not 1 <= threads_per_block <= MAX_THREADS_PER_BLOCK:
        raise ValueError(f"threads_per_block must be 1..{MAX_THREADS_PER_BLOCK}, got {threads_per_block}")
    if threads_per_row < 1 or threads_per_row & (threads_per_row - 1) or threads_per_block % threads_per_row:
        raise ValueError(f"threads_per_row must be a power of two dividing threads_per_block ({threads_per_block}), "
                         f"got {threads_per_row}")
    rows_per_block = threads_per_block // threads_per_row
    return blocks_for(n_rows, rows_per_block, max_blocks)


def _vector(values, length, name):
    if is_device(values):
        if values.shape != (length,):
            raise ValueError(f"{name} must have shape ({length},), got {values.shape}")
        return as_device(values, np.float64)
    values = np.ascontiguousarray(values, dtype=np.float64)
    if values.shape != (length,):
        raise ValueError(f"{name} must have shape ({length},), got {values.shape}")
    return cuda.to_device(values)


def dose_from_weights(matrix, weights, *, out=None, threads_per_block: int = 256, threads_per_row: int = 8,
                      max_blocks: int | None = None):
    """``matrix @ weights`` (float64) on the GPU; ``matrix`` scipy CSR or :class:`DeviceCSR`.

    Returns a host array, or fills ``out`` (host or device: a device ``out`` stays on the GPU).
    """
    device = device_csr(matrix)
    w = _vector(weights, device.shape[1], "weights")
    target = out if out is not None and is_device(out) else cuda.device_array(device.shape[0], np.float64)
    blocks = _launch(device.shape[0], threads_per_block, threads_per_row, max_blocks)
    csr_matvec_kernel[blocks, threads_per_block](device.indptr, device.indices, device.data, w, target, threads_per_row)
    if out is None:
        return target.copy_to_host()
    return out if target is out else to_host(target, out)


def gradient_to_weights(matrix, gradient, *, transposed=None, out=None, threads_per_block: int = 256,
                        threads_per_row: int = 8, max_blocks: int | None = None):
    """``matrix.T @ gradient`` (float64) on the GPU; with ``transposed`` (the CSR of ``matrix.T``,
    scipy or :class:`DeviceCSR`) it is that matrix's row product (deterministic)."""
    device = device_csr(matrix) if transposed is None else None
    n_rows, n_columns = matrix.shape
    if transposed is not None:
        if tuple(transposed.shape) != (n_columns, n_rows) or transposed.nnz != matrix.nnz:
            raise ValueError(f"transposed must be the {n_columns} x {n_rows} transpose of matrix "
                             f"({matrix.nnz} entries), got {tuple(transposed.shape)} with {transposed.nnz}")
        return dose_from_weights(transposed, gradient, out=out, threads_per_block=threads_per_block,
                                 threads_per_row=threads_per_row, max_blocks=max_blocks)
    g = _vector(gradient, n_rows, "gradient")
    target = out if out is not None and is_device(out) else cuda.device_array(n_columns, np.float64)
    target.copy_to_device(np.zeros(n_columns))
    blocks = _launch(n_rows, threads_per_block, threads_per_row, max_blocks)
    kernel = csr_rmatvec_kernel if n_columns <= MAX_SHARED_COLUMNS else csr_rmatvec_global_kernel
    kernel[blocks, threads_per_block](device.indptr, device.indices, device.data, g, target, threads_per_row)
    if out is None:
        return target.copy_to_host()
    return out if target is out else to_host(target, out)
