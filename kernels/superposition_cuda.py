"""CUDA twin of :mod:`kernels.superposition_cpu`: collapsed-cone transport, one thread per line.

The lines of one direction never share a voxel (the CPU twin's lattice: one voxel per step
along the dominant axis), so each thread walks its line and adds to ``out`` without atomics;
directions run one launch after another on the same stream, so their additions never race.
Each line is walked by the CPU twin's own per-line function compiled as a device function
(:func:`kernels._cuda.device_functions`): the recursion and its float64 arithmetic in the same
order along each line (a stack of sources summed per component, attenuation recomputed only
where the density changes, the stack read only where the mask of releasing voxels says so);
only exp and FMA contraction differ in the last bits (tests: relative 1e-9).

Energy in transit is a per-thread local array of ``MAX_COMPONENTS`` exponential components
(the commissioned kernel has fewer; more are refused before launch).
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float64

from . import superposition_cpu as cpu_twin
from ._cuda import CUDA, as_device, blocks_for, device_functions, is_device, to_host
from .superposition_cpu import active_components, line_offsets, source_stack

__all__ = ["collapsed_cone", "one_direction_kernel", "releasing_kernel", "MAX_COMPONENTS"]

#: Largest number of exponential components per cone (size of each thread's local arrays).
MAX_COMPONENTS = 8


#: The CPU twin's per-line walk and its helpers, compiled again as device functions: one
#: source for both twins (:func:`kernels._cuda.device_functions`).
_cone = device_functions(cpu_twin._line, cpu_twin._voxel, cpu_twin._attenuation_escape)
_line = _cone._line


@cuda.jit(**CUDA)
def one_direction_kernel(sources, releasing, eta, dominant, sign, other0, other1, offsets, p_low, q_low, lines_q,
                         n_lines, step_cm, amplitudes, rates, out):
    """Transport along every line of one direction; grid-stride loop over lines, each walked
    by the CPU twin's :func:`kernels.superposition_cpu._line` (every step, bounds checked).
    ``sources`` (nz, ny, nx, n_sources), ``releasing`` (nz, ny, nx) uint8 (1 where a source is
    not zero), ``amplitudes`` (n_sources, K), ``rates`` (K,)."""
    n_dom = eta.shape[dominant]
    n_p = eta.shape[other0]
    n_q = eta.shape[other1]
    swap = other0 > other1
    transit = cuda.local.array(MAX_COMPONENTS, float64)
    source = cuda.local.array(MAX_COMPONENTS, float64)
    attenuation = cuda.local.array(MAX_COMPONENTS, float64)
    escape = cuda.local.array(MAX_COMPONENTS, float64)
    absorbed = cuda.local.array(MAX_COMPONENTS, float64)
    kept = cuda.local.array(MAX_COMPONENTS, float64)
    for line in range(cuda.grid(1), n_lines, cuda.gridsize(1)):
        _line(sources, releasing, eta, dominant, sign, swap, True, offsets, n_p, n_q, p_low + line // lines_q,
              q_low + line % lines_q, 0, n_dom, step_cm, amplitudes, rates, out, transit, source, attenuation, escape,
              absorbed, kept)


@cuda.jit(**CUDA)
def releasing_kernel(sources, releasing):
    """1 where some source of the stack (nz, ny, nx, n_sources) is not zero, else 0 (the CPU
    twin's :func:`kernels.superposition_cpu.releasing_voxels`); grid-stride over voxels."""
    nz, ny, nx, n_sources = sources.shape
    for flat in range(cuda.grid(1), nz * ny * nx, cuda.gridsize(1)):
        k = flat // (ny * nx)
        j = (flat // nx) % ny
        i = flat % nx
        here = 0
        for s in range(n_sources):
            if sources[k, j, i, s] != 0.0:
                here = 1
        releasing[k, j, i] = here


def collapsed_cone(released_mev, electron_density, spacing_mm, directions_zyx, amplitudes, rates_per_cm, out=None, *,
                   local_mev=None, local_amplitudes=None, threads_per_block: int = 128, max_blocks: int | None = None):
    """The CPU twin's :func:`kernels.superposition_cpu.collapsed_cone` on the GPU.

    ``released_mev`` (a field or a stack of sources) and ``electron_density`` may be device
    arrays (e.g. the TERMA twin's output kept on the GPU); ``out`` a host array, a device
    array (left on the GPU), or None (a new host array is returned).
    """
    shape = tuple(electron_density.shape)
    stack, amplitudes, rates_per_cm = source_stack(released_mev, amplitudes, rates_per_cm, shape, directions_zyx,
                                                   local_mev=local_mev, local_amplitudes=local_amplitudes)
    directions_zyx = np.asarray(directions_zyx, dtype=np.float64)
    actives = [active_components(amplitudes[m]) for m in range(directions_zyx.shape[0])]
    widest = max([len(active) for active in actives] + [0])
    if widest > MAX_COMPONENTS:
        raise ValueError(f"at most {MAX_COMPONENTS} kernel components per cone on the GPU, got {widest}")
    sources = as_device(stack, np.float64)
    releasing = cuda.device_array(shape, np.uint8)  # made where the sources are: on the GPU
    n_voxels = int(np.prod(shape))
    releasing_kernel[blocks_for(n_voxels, threads_per_block, max_blocks), threads_per_block](sources, releasing)
    eta = as_device(electron_density, np.float64)
    if out is None or not is_device(out):
        device_out = cuda.to_device(np.zeros(shape) if out is None else np.ascontiguousarray(out, np.float64))
    else:
        device_out = out
    for m, active in enumerate(actives):
        dominant, sign, others, offsets, step_mm = line_offsets(directions_zyx[m], spacing_mm, shape)
        n_p, n_q = shape[others[0]], shape[others[1]]
        p_low = -int(offsets[:, 0].max())
        p_high = n_p - 1 - int(offsets[:, 0].min())
        q_low = -int(offsets[:, 1].max())
        q_high = n_q - 1 - int(offsets[:, 1].min())
        lines_q = q_high - q_low + 1
        n_lines = (p_high - p_low + 1) * lines_q
        one_direction_kernel[blocks_for(n_lines, threads_per_block, max_blocks), threads_per_block](
            sources, releasing, eta, int(dominant), int(sign), int(others[0]), int(others[1]), cuda.to_device(offsets),
            p_low, q_low, lines_q, n_lines, step_mm / 10.0,
            cuda.to_device(np.ascontiguousarray(amplitudes[m][:, active])),
            cuda.to_device(np.ascontiguousarray(rates_per_cm[m][active])), device_out)
    if out is None:
        return device_out.copy_to_host()
    if device_out is out:
        return out
    return to_host(device_out, out)
