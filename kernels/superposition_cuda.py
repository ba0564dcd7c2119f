"""CUDA twin of :mod:`kernels.superposition_cpu`: collapsed-cone transport, one thread per line.

The lines of one direction never share a voxel (the CPU twin's lattice: one voxel per step
along the dominant axis), so each thread walks its line and adds to ``out`` without atomics;
directions run one launch after another on the same stream, so their additions never race.
The recursion and its float64 arithmetic are the CPU twin's, in the same order along each
line (a stack of sources summed per component, attenuation recomputed only where the density
changes, the stack read only where the mask of releasing voxels says so); only exp and FMA
contraction differ in the last bits (tests: relative 1e-9).

Energy in transit is a per-thread local array of ``MAX_COMPONENTS`` exponential components
(the commissioned kernel has fewer; more are refused before launch).
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64

from ._cuda import CUDA, as_device, blocks_for, is_device, to_host
from .superposition_cpu import active_components, line_offsets, source_stack

__all__ = ["collapsed_cone", "one_direction_kernel", "releasing_kernel", "MAX_COMPONENTS"]

#: Largest number of exponential components per cone (size of each thread's local arrays).
MAX_COMPONENTS = 8


@cuda.jit(**CUDA)
def one_direction_kernel(sources, releasing, eta, dominant, sign, other0, other1, offsets, p_low, q_low, lines_q,
                         n_lines, step_cm, amplitudes, rates, out):
    """Transport along every line of one direction; grid-stride loop over lines.
    ``sources`` (nz, ny, nx, n_sources), ``releasing`` (nz, ny, nx) uint8 (1 where a source is
    not zero), ``amplitudes`` (n_sources, K), ``rates`` (K,)."""
    n_dom = eta.shape[dominant]
    n_p = eta.shape[other0]
    n_q = eta.shape[other1]
    n_sources = amplitudes.shape[0]
    n_comp = amplitudes.shape[1]
    transit = cuda.local.array(MAX_COMPONENTS, float64)
    attenuation = cuda.local.array(MAX_COMPONENTS, float64)
    escape = cuda.local.array(MAX_COMPONENTS, float64)
    source = cuda.local.array(MAX_COMPONENTS, float64)
    for line in range(cuda.grid(1), n_lines, cuda.gridsize(1)):
        p0 = p_low + line // lines_q
        q0 = q_low + line % lines_q
        for c in range(n_comp):
            transit[c] = 0.0
        last_density = -1.0
        carrying = 0
        for step in range(n_dom):
            p = p0 + offsets[step, 0]
            q = q0 + offsets[step, 1]
            if p < 0 or p >= n_p or q < 0 or q >= n_q:
                for c in range(n_comp):
                    transit[c] = 0.0
                carrying = 0
                continue
            d = step if sign > 0 else n_dom - 1 - step
            # index[dominant] = d, index[other0] = p, index[other1] = q, without a local array.
            k = d if dominant == 0 else (p if other0 == 0 else q)
            j = d if dominant == 1 else (p if other0 == 1 else q)
            i = d if dominant == 2 else (p if other0 == 2 else q)
            here = releasing[k, j, i]
            if here == 0 and carrying == 0:
                continue
            density = eta[k, j, i]
            if density != last_density:
                last_density = density
                for c in range(n_comp):
                    tau = rates[c] * density * step_cm
                    if tau > 1e-6:
                        attenuation[c] = math.exp(-tau)
                        escape[c] = (1.0 - attenuation[c]) / tau
                    else:
                        attenuation[c] = 1.0 - tau
                        escape[c] = 1.0 - 0.5 * tau
            if here == 0:  # energy in transit only
                deposit = 0.0
                for c in range(n_comp):
                    deposit += transit[c] * (1.0 - attenuation[c])
                out[k, j, i] += deposit
                for c in range(n_comp):
                    transit[c] = transit[c] * attenuation[c]
                continue
            for c in range(n_comp):
                source[c] = 0.0
            for s in range(n_sources):
                value = sources[k, j, i, s]
                for c in range(n_comp):
                    source[c] += value * amplitudes[s, c]
            deposit = 0.0
            for c in range(n_comp):
                deposit += transit[c] * (1.0 - attenuation[c]) + source[c] * (1.0 - escape[c])
            carrying = 0
            for c in range(n_comp):
                transit[c] = transit[c] * attenuation[c] + source[c] * escape[c]
                if transit[c] != 0.0:
                    carrying = 1
            out[k, j, i] += deposit


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
