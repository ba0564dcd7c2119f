"""CUDA twin of :mod:`kernels.pencil_beam_cpu`: the influence matrix's two passes, one thread per voxel.

Same table interpolation, same beamlet loop order (so each row's entries come in the same
column order as on the CPU), values computed in float64 and stored as float32. GPU FMA
contraction can move a value by a few ulps, so an entry within rounding of the cut-off may
be kept by one twin and dropped by the other: the tests compare dense matrices with a
relative 1e-6 (float32 storage) and an absolute tolerance of the cut-off itself.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from ._cuda import CUDA, as_device, blocks_for, is_device, to_host

__all__ = ["count_entries", "fill_entries", "table_lookup", "count_entries_kernel", "fill_entries_kernel"]


@cuda.jit(device=True, **CUDA)
def table_lookup(table, depth_step_mm, lateral_step_mm, depth_mm, dv_mm, du_mm):
    """Linear in depth, bilinear laterally; 0 outside the table's lateral extent."""
    n_depth = table.shape[0]
    n_v = table.shape[1]
    n_u = table.shape[2]
    cv = (n_v - 1) / 2.0
    cu = (n_u - 1) / 2.0
    fv = dv_mm / lateral_step_mm + cv
    fu = du_mm / lateral_step_mm + cu
    if fv < 0.0 or fu < 0.0 or fv > n_v - 1 or fu > n_u - 1:
        return 0.0
    fd = depth_mm / depth_step_mm - 0.5
    if fd < 0.0:
        fd = 0.0
    if fd > n_depth - 1:
        fd = n_depth - 1.0
    d0 = min(int(fd), n_depth - 2)
    v0 = min(int(fv), n_v - 2)
    u0 = min(int(fu), n_u - 2)
    wd = fd - d0
    wv = fv - v0
    wu = fu - u0
    total = 0.0
    for dd in range(2):
        w_d = wd if dd else 1.0 - wd
        for vv in range(2):
            w_v = wv if vv else 1.0 - wv
            for uu in range(2):
                w_u = wu if uu else 1.0 - wu
                total += w_d * w_v * w_u * table[d0 + dd, v0 + vv, u0 + uu]
    return total


@cuda.jit(device=True, **CUDA)
def _voxel_entries(a, b, depth, scale, grid_index, grid_origin, pitch, table, depth_step, lateral_step, reach,
                   cutoff, cols, vals, start, write):
    n_rows = grid_index.shape[0]
    n_cols = grid_index.shape[1]
    c0 = int(math.floor((a - reach - grid_origin[1]) / pitch))
    c1 = int(math.ceil((a + reach - grid_origin[1]) / pitch))
    r0 = int(math.floor((b - reach - grid_origin[0]) / pitch))
    r1 = int(math.ceil((b + reach - grid_origin[0]) / pitch))
    count = 0
    for r in range(max(r0, 0), min(r1, n_rows - 1) + 1):
        bj = grid_origin[0] + r * pitch
        for c in range(max(c0, 0), min(c1, n_cols - 1) + 1):
            column = grid_index[r, c]
            if column < 0:
                continue
            aj = grid_origin[1] + c * pitch
            value = scale * table_lookup(table, depth_step, lateral_step, depth, b - bj, a - aj)
            if value >= cutoff:
                if write:
                    cols[start + count] = column
                    vals[start + count] = value
                count += 1
    return count


@cuda.jit(**CUDA)
def count_entries_kernel(a, b, depth, scale, grid_index, grid_origin, pitch, table, depth_step, lateral_step, reach,
                         cutoff, counts):
    """counts[row] = entries of voxel ``row``; grid-stride loop over rows."""
    for row in range(cuda.grid(1), a.shape[0], cuda.gridsize(1)):
        counts[row] = _voxel_entries(a[row], b[row], depth[row], scale[row], grid_index, grid_origin, pitch, table,
                                     depth_step, lateral_step, reach, cutoff, counts, counts, 0, False)


@cuda.jit(**CUDA)
def fill_entries_kernel(a, b, depth, scale, grid_index, grid_origin, pitch, table, depth_step, lateral_step, reach,
                        cutoff, indptr, indices, data):
    """CSR ``indices``/``data`` of every row from ``indptr``; grid-stride loop over rows."""
    for row in range(cuda.grid(1), a.shape[0], cuda.gridsize(1)):
        _voxel_entries(a[row], b[row], depth[row], scale[row], grid_index, grid_origin, pitch, table, depth_step,
                       lateral_step, reach, cutoff, indices, data, indptr[row], True)


def _inputs(a, b, depth, scale, grid_index, grid_origin, table):
    f64 = np.float64
    return (as_device(a, f64), as_device(b, f64), as_device(depth, f64), as_device(scale, f64),
            as_device(grid_index, np.int32),
            as_device(grid_origin, f64), as_device(table, f64))


def count_entries(a, b, depth, scale, grid_index, grid_origin, pitch, table, depth_step, lateral_step, reach, cutoff,
                  counts, *, threads_per_block: int = 128, max_blocks: int | None = None):
    """The CPU twin's :func:`kernels.pencil_beam_cpu.count_entries` on the GPU (``counts`` host or device)."""
    da, db, dd, ds, dg, do, dt = _inputs(a, b, depth, scale, grid_index, grid_origin, table)
    device_counts = counts if is_device(counts) else cuda.device_array(len(counts), np.int64)
    count_entries_kernel[blocks_for(len(counts), threads_per_block, max_blocks), threads_per_block](
        da, db, dd, ds, dg, do, float(pitch), dt, float(depth_step), float(lateral_step), float(reach), float(cutoff),
        device_counts)
    return counts if device_counts is counts else to_host(device_counts, counts)


def fill_entries(a, b, depth, scale, grid_index, grid_origin, pitch, table, depth_step, lateral_step, reach, cutoff,
                 indptr, indices, data, *, threads_per_block: int = 128, max_blocks: int | None = None):
    """The CPU twin's :func:`kernels.pencil_beam_cpu.fill_entries` on the GPU (``indices``/``data`` host or device)."""
    da, db, dd, ds, dg, do, dt = _inputs(a, b, depth, scale, grid_index, grid_origin, table)
    device_indices = indices if is_device(indices) else cuda.device_array(len(indices), np.int32)
    device_data = data if is_device(data) else cuda.device_array(len(data), np.float32)
    fill_entries_kernel[blocks_for(len(a), threads_per_block, max_blocks), threads_per_block](
        da, db, dd, ds, dg, do, float(pitch), dt, float(depth_step), float(lateral_step), float(reach), float(cutoff),
        as_device(indptr, np.int64), device_indices, device_data)
    if device_indices is not indices:
        to_host(device_indices, indices)
    if device_data is not data:
        to_host(device_data, data)
    return indices, data
