"""Shared helpers of the CUDA twins: device transfers and launch shapes.

Imported only by ``<algo>_cuda.py`` modules, which are imported only when the CUDA backend
runs (``kernels._dispatch.resolve_backend``), so a CPU host never loads numba-cuda.

Launch shapes are arguments (threads per block, blocks), never globals: numba freezes
globals at compile time, and tests run the simulator with few threads per block so that
several blocks run.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

__all__ = ["as_device", "to_host", "blocks_for", "is_device", "CUDA"]

#: Options of every CUDA kernel: no fastmath (results are compared to the CPU twins and the
#: NumPy references; fast exp/division would widen the tolerance for no measured need).
CUDA = dict(fastmath=False)


def is_device(array) -> bool:
    """True for a numba device array (real or simulated: the simulator has no ``is_cuda_array``)."""
    return hasattr(array, "copy_to_host")


def as_device(array, dtype=None, stream=0):
    """A device copy of ``array`` (C-contiguous, ``dtype``); device arrays pass through as they are."""
    if is_device(array):
        if dtype is not None and np.dtype(array.dtype) != np.dtype(dtype):
            raise TypeError(f"device array has dtype {array.dtype}, {np.dtype(dtype)} is needed")
        return array
    return cuda.to_device(np.ascontiguousarray(array, dtype=dtype), stream=stream)


def to_host(array, out=None):
    """Copy a device array into ``out`` (a host array) or a new host array."""
    if out is None:
        return array.copy_to_host()
    if is_device(out):
        out.copy_to_device(array)  # device to device
        return out
    array.copy_to_host(out)
    return out


def blocks_for(n_items: int, threads_per_block: int, max_blocks: int | None) -> int:
    """Blocks for a grid-stride loop over ``n_items``: enough to cover them, at most ``max_blocks``."""
    if threads_per_block < 1:
        raise ValueError(f"threads_per_block must be >= 1, got {threads_per_block}")
    blocks = max(1, -(-int(n_items) // int(threads_per_block)))
    if max_blocks is not None:
        if max_blocks < 1:
            raise ValueError(f"max_blocks must be >= 1, got {max_blocks}")
        blocks = min(blocks, int(max_blocks))
    return blocks
