"""Exact radiological path length through a voxel grid (Siddon / Amanatides-Woo traversal).

Arrays in, arrays out: ``density`` (nz, ny, nx) in any per-length unit (g/cc, or relative
electron density), grid ``origin_mm`` (centre of voxel 0, (z, y, x)) and ``spacing_mm``.
The path from ``start`` to ``end`` (mm, (z, y, x)) is split exactly at every voxel boundary
it crosses; the result is sum(density * length_mm). Outside the grid contributes nothing.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._numba import CPU, CPU_PARALLEL, prange

__all__ = ["path_integral", "path_integrals", "path_integrals_to_voxels"]


@njit(**CPU)
def path_integral(density, origin_mm, spacing_mm, start, end):
    """Integral of ``density`` along the straight segment start -> end (density x mm)."""
    nz, ny, nx = density.shape
    shape = (nz, ny, nx)
    direction = np.empty(3)
    low = np.empty(3)
    high = np.empty(3)
    for a in range(3):
        direction[a] = end[a] - start[a]
        low[a] = origin_mm[a] - 0.5 * spacing_mm[a]
        high[a] = low[a] + shape[a] * spacing_mm[a]
    length = np.sqrt(direction[0] ** 2 + direction[1] ** 2 + direction[2] ** 2)
    if length == 0.0:
        return 0.0
    # Clip the segment (parameter t in [0, 1]) to the grid's box.
    t_in = 0.0
    t_out = 1.0
    for a in range(3):
        if direction[a] == 0.0:
            if start[a] < low[a] or start[a] >= high[a]:
                return 0.0
        else:
            t0 = (low[a] - start[a]) / direction[a]
            t1 = (high[a] - start[a]) / direction[a]
            if t0 > t1:
                t0, t1 = t1, t0
            t_in = max(t_in, t0)
            t_out = min(t_out, t1)
    if t_in >= t_out:
        return 0.0
    index = np.empty(3, np.int64)
    step = np.empty(3, np.int64)
    t_next = np.empty(3)
    t_delta = np.empty(3)
    t_mid = 0.5 * (t_in + t_out) if t_out - t_in < 1e-9 else t_in + 1e-9 * (t_out - t_in)
    for a in range(3):
        position = start[a] + t_mid * direction[a]
        i = int(np.floor((position - low[a]) / spacing_mm[a]))
        index[a] = min(max(i, 0), shape[a] - 1)
        if direction[a] > 0.0:
            step[a] = 1
            t_next[a] = (low[a] + (index[a] + 1) * spacing_mm[a] - start[a]) / direction[a]
            t_delta[a] = spacing_mm[a] / direction[a]
        elif direction[a] < 0.0:
            step[a] = -1
            t_next[a] = (low[a] + index[a] * spacing_mm[a] - start[a]) / direction[a]
            t_delta[a] = -spacing_mm[a] / direction[a]
        else:
            step[a] = 0
            t_next[a] = np.inf
            t_delta[a] = np.inf
    total = 0.0
    t = t_in
    while t < t_out:
        axis = 0
        if t_next[1] < t_next[axis]:
            axis = 1
        if t_next[2] < t_next[axis]:
            axis = 2
        t_end = min(t_next[axis], t_out)
        total += (t_end - t) * density[index[0], index[1], index[2]]
        t = t_end
        index[axis] += step[axis]
        if index[axis] < 0 or index[axis] >= shape[axis]:
            break
        t_next[axis] += t_delta[axis]
    return total * length


@njit(**CPU_PARALLEL)
def path_integrals(density, origin_mm, spacing_mm, starts, ends, out):
    """Path integrals of many segments: ``out[n]`` for starts[n] -> ends[n] (all (n, 3))."""
    for n in prange(starts.shape[0]):
        out[n] = path_integral(density, origin_mm, spacing_mm, starts[n], ends[n])


@njit(**CPU_PARALLEL)
def path_integrals_to_voxels(density, origin_mm, spacing_mm, source, flat_indices, out):
    """Path integral from ``source`` to the centre of each listed voxel (flat C-order indices)."""
    nz, ny, nx = density.shape
    for n in prange(flat_indices.shape[0]):
        flat = flat_indices[n]
        k = flat // (ny * nx)
        j = (flat // nx) % ny
        i = flat % nx
        end = np.empty(3)
        end[0] = origin_mm[0] + k * spacing_mm[0]
        end[1] = origin_mm[1] + j * spacing_mm[1]
        end[2] = origin_mm[2] + i * spacing_mm[2]
        out[n] = path_integral(density, origin_mm, spacing_mm, source, end)
