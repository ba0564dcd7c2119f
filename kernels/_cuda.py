"""Shared helpers of the CUDA twins: device transfers and launch shapes.

Imported only by ``<algo>_cuda.py`` modules, which are imported only when the CUDA backend
runs (``kernels._dispatch.resolve_backend``), so a CPU host never loads numba-cuda.

Launch shapes are arguments (threads per block, blocks), never globals: numba freezes
globals at compile time, and tests run the simulator with few threads per block so that
several blocks run.
"""

from __future__ import annotations

import types

import numpy as np
from numba import cuda

__all__ = ["as_device", "to_host", "blocks_for", "is_device", "CUDA", "device_functions"]

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


def device_functions(*cpu_functions, uses: dict | None = None) -> types.SimpleNamespace:
    """The CPU twin's per-element functions compiled again as CUDA device functions.

    Each is the ``@njit`` function's own Python source (``py_func``), written once for both
    twins: scalars and ``math`` only, no NumPy calls, no arrays made (a device function cannot
    allocate). Where one calls another of them by its global name, the device version calls
    the other's device version: each is compiled with a copy of their module's globals in
    which those names are the device functions. All must come from one module.

    Parameters
    ----------
    cpu_functions : numba dispatchers
        ``@njit`` functions of one ``<algo>_cpu.py`` module, with every function of that
        module they call.
    uses : dict, optional
        Device functions of other modules the CPU functions call, by the global name they call
        them by (e.g. ``{"path_integral_between": raytrace_cuda.path_integral}``).

    Returns
    -------
    types.SimpleNamespace
        The device functions, by their CPU names.
    """
    plain = [function.py_func for function in cpu_functions]
    modules = sorted({function.__module__ for function in plain})
    if len(modules) != 1:
        raise ValueError(f"cpu_functions must all come from one module, got {modules}")
    module_globals = plain[0].__globals__
    namespace = dict(module_globals)
    namespace.update(uses or {})
    compiled = {}
    for function in plain:
        copy = types.FunctionType(function.__code__, namespace, function.__name__, function.__defaults__,
                                  function.__closure__)
        copy.__qualname__, copy.__doc__ = function.__qualname__, function.__doc__
        compiled[function.__name__] = cuda.jit(device=True, **CUDA)(copy)
    # Compilation is lazy (at the first kernel that calls them): by then the names are bound.
    namespace.update(compiled)
    return types.SimpleNamespace(**compiled)
