"""CUDA twin of :mod:`kernels.superposition_cpu`: collapsed-cone transport, one thread per line.

The lines of one direction never share a voxel (the CPU twin's lattice: one voxel per step
along the dominant axis), so each thread walks its line and adds to ``out`` without atomics;
directions run one launch after another on the same stream, so their additions never race.
The recursion and its float64 arithmetic are the CPU twin's, in the same order along each
line; only exp and FMA contraction differ in the last bits (tests: relative 1e-9).

Energy in transit is a per-thread local array of ``MAX_COMPONENTS`` exponential components
(the commissioned kernel has fewer); more are refused before launch.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64

from ._cuda import CUDA, as_device, blocks_for, is_device, to_host
from .superposition_cpu import line_offsets

__all__ = ["collapsed_cone", "one_direction_kernel", "MAX_COMPONENTS"]

#: Largest number of exponential components per cone (size of each thread's local array).
MAX_COMPONENTS = 8


@cuda.jit(**CUDA)
def one_direction_kernel(released, eta, dominant, sign, other0, other1, offsets, p_low, q_low, lines_q, n_lines,
                         step_cm, amplitudes, rates, out):
    """Transport along every line of one direction; grid-stride loop over lines."""
    n_dom = released.shape[dominant]
    n_p = released.shape[other0]
    n_q = released.shape[other1]
    n_comp = amplitudes.shape[0]
    transit = cuda.local.array(MAX_COMPONENTS, float64)
    for line in range(cuda.grid(1), n_lines, cuda.gridsize(1)):
        p0 = p_low + line // lines_q
        q0 = q_low + line % lines_q
        for c in range(n_comp):
            transit[c] = 0.0
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
            e = released[k, j, i]
            if e == 0.0 and carrying == 0:
                continue
            density = eta[k, j, i]
            deposit = 0.0
            carrying = 0
            for c in range(n_comp):
                tau = rates[c] * density * step_cm
                if tau > 1e-6:
                    attenuation = math.exp(-tau)
                    escape = (1.0 - attenuation) / tau
                else:
                    attenuation = 1.0 - tau
                    escape = 1.0 - 0.5 * tau
                source = e * amplitudes[c]
                deposit += transit[c] * (1.0 - attenuation) + source * (1.0 - escape)
                transit[c] = transit[c] * attenuation + source * escape
                if transit[c] > 0.0:
                    carrying = 1
            out[k, j, i] += deposit


def collapsed_cone(released_mev, electron_density, spacing_mm, directions_zyx, amplitudes, rates_per_cm, out=None, *,
                   threads_per_block: int = 128, max_blocks: int | None = None):
    """The CPU twin's :func:`kernels.superposition_cpu.collapsed_cone` on the GPU.

    ``released_mev`` and ``electron_density`` may be device arrays (e.g. the TERMA twin's
    output kept on the GPU); ``out`` a host array, a device array (left on the GPU), or None
    (a new host array is returned).
    """
    shape = tuple(released_mev.shape)
    if tuple(electron_density.shape) != shape:
        raise ValueError(f"released_mev {shape} and electron_density {tuple(electron_density.shape)} differ in shape")
    directions_zyx = np.asarray(directions_zyx, dtype=np.float64)
    amplitudes = np.asarray(amplitudes, dtype=np.float64)
    rates_per_cm = np.asarray(rates_per_cm, dtype=np.float64)
    if amplitudes.shape != rates_per_cm.shape or amplitudes.shape[0] != directions_zyx.shape[0]:
        raise ValueError("amplitudes and rates_per_cm must be (n_directions, n_components)")
    if amplitudes.shape[1] > MAX_COMPONENTS:
        raise ValueError(f"at most {MAX_COMPONENTS} kernel components per cone on the GPU, got {amplitudes.shape[1]}")
    released = as_device(released_mev, np.float64)
    eta = as_device(electron_density, np.float64)
    if out is None or not is_device(out):
        device_out = cuda.to_device(np.zeros(shape) if out is None else np.ascontiguousarray(out, np.float64))
    else:
        device_out = out
    for m in range(directions_zyx.shape[0]):
        dominant, sign, others, offsets, step_mm = line_offsets(directions_zyx[m], spacing_mm, shape)
        n_p, n_q = shape[others[0]], shape[others[1]]
        p_low = -int(offsets[:, 0].max())
        p_high = n_p - 1 - int(offsets[:, 0].min())
        q_low = -int(offsets[:, 1].max())
        q_high = n_q - 1 - int(offsets[:, 1].min())
        lines_q = q_high - q_low + 1
        n_lines = (p_high - p_low + 1) * lines_q
        one_direction_kernel[blocks_for(n_lines, threads_per_block, max_blocks), threads_per_block](
            released, eta, int(dominant), int(sign), int(others[0]), int(others[1]), cuda.to_device(offsets),
            p_low, q_low, lines_q, n_lines, step_mm / 10.0, cuda.to_device(amplitudes[m]),
            cuda.to_device(rates_per_cm[m]), device_out)
    if out is None:
        return device_out.copy_to_host()
    if device_out is out:
        return out
    return to_host(device_out, out)
