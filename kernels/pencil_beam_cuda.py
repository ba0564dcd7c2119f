"""CUDA twin of :mod:`kernels.pencil_beam_cpu`: the influence matrix's two passes, one thread per voxel.

Same table interpolation, lateral density scaling (the stretched narrow-beamlet sum below
water density), footprint bound (the radial envelopes of
:func:`kernels.pencil_beam_cpu.kernel_envelopes`, computed on the host) and beamlet loop order
(so each row's entries come in the same column order as on the CPU), values computed in
float64 and stored as float32. The CPU twin computes a voxel's interpolation weights once for
all its beamlets where it can (the same arithmetic, grouped differently), and its count pass
counts the beamlets that pass the cut-off by a margin (the inner envelope) without a lookup;
here each thread evaluates every lookup whole. That and GPU FMA contraction move a value by a few ulps, so an
entry within rounding of the cut-off may be kept by one twin and dropped by the other: the
tests compare dense matrices with a relative 1e-6 (float32 storage) and an absolute tolerance
of the cut-off itself.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from ._cuda import CUDA, as_device, blocks_for, is_device, to_host
from .pencil_beam_cpu import cumulative_table, kernel_envelopes, radial_envelope  # host-side NumPy, shared by the twins

__all__ = ["count_entries", "fill_entries", "table_lookup", "footprint_mm", "stretched_lookup", "radial_envelope",
           "cumulative_table", "kernel_envelopes", "count_entries_kernel", "fill_entries_kernel"]


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
def _depth_start(n_depth, depth_step_mm, depth_mm):
    fd = depth_mm / depth_step_mm - 0.5
    if fd < 0.0:
        fd = 0.0
    if fd > n_depth - 1:
        fd = n_depth - 1.0
    return min(int(fd), n_depth - 2), fd


@cuda.jit(device=True, **CUDA)
def _cumulative_at(cumulative, d0, wd, lateral_step_mm, v_mm, u_mm):
    n_v = cumulative.shape[1] - 1
    n_u = cumulative.shape[2] - 1
    fv = v_mm / lateral_step_mm + (n_v - 1) / 2.0 + 0.5
    fu = u_mm / lateral_step_mm + (n_u - 1) / 2.0 + 0.5
    fv = min(max(fv, 0.0), float(n_v))
    fu = min(max(fu, 0.0), float(n_u))
    v0 = min(int(fv), n_v - 1)
    u0 = min(int(fu), n_u - 1)
    wv = fv - v0
    wu = fu - u0
    total = 0.0
    for dd in range(2):
        w_d = wd if dd else 1.0 - wd
        for vv in range(2):
            w_v = wv if vv else 1.0 - wv
            for uu in range(2):
                w_u = wu if uu else 1.0 - wu
                total += w_d * w_v * w_u * cumulative[d0 + dd, v0 + vv, u0 + uu]
    return total


@cuda.jit(device=True, **CUDA)
def stretched_lookup(cumulative, depth_step_mm, lateral_step_mm, depth_mm, dv_mm, du_mm, beamlet_mm, eta):
    """The CPU twin's stretched narrow-beamlet sum (a medium of ``eta`` < 1)."""
    d0, fd = _depth_start(cumulative.shape[0], depth_step_mm, depth_mm)
    wd = fd - d0
    half = 0.5 * beamlet_mm
    v_low = eta * (dv_mm - half)
    v_high = eta * (dv_mm + half)
    u_low = eta * (du_mm - half)
    u_high = eta * (du_mm + half)
    return (_cumulative_at(cumulative, d0, wd, lateral_step_mm, v_high, u_high)
            - _cumulative_at(cumulative, d0, wd, lateral_step_mm, v_low, u_high)
            - _cumulative_at(cumulative, d0, wd, lateral_step_mm, v_high, u_low)
            + _cumulative_at(cumulative, d0, wd, lateral_step_mm, v_low, u_low))


@cuda.jit(device=True, **CUDA)
def _first_bin_below(envelope, d0, threshold):
    n_bins = envelope.shape[1]
    for k in range(n_bins):
        if max(envelope[d0, k], envelope[d0 + 1, k]) < threshold:
            return k
    return n_bins - 1


@cuda.jit(device=True, **CUDA)
def _first_outer_bin_below(envelopes, d0, threshold):
    n_bins = envelopes.shape[2]
    for k in range(n_bins):
        if max(envelopes[0, d0, k], envelopes[0, d0 + 1, k]) < threshold:
            return k
    return n_bins - 1


@cuda.jit(device=True, **CUDA)
def footprint_mm(envelope, narrow_envelope, depth_step_mm, lateral_step_mm, depth_mm, scale, eta, cutoff, beamlet_mm):
    """Radius (mm) beyond which no beamlet reaches the cut-off (the CPU twin's bound)."""
    d0, _ = _depth_start(envelope.shape[1], depth_step_mm, depth_mm)
    if eta >= 1.0:
        return (_first_outer_bin_below(envelope, d0, cutoff / scale) + 2.5) * lateral_step_mm
    width = eta * beamlet_mm
    cells = (width / lateral_step_mm + 2.0) ** 2
    m = _first_bin_below(narrow_envelope, d0, cutoff * eta * eta / (scale * cells))
    return ((m + 2.5) * lateral_step_mm + width) / eta


@cuda.jit(device=True, **CUDA)
def _voxel_entries(a, b, depth, scale, eta, grid_index, grid_origin, pitch, table, envelope, cumulative, narrow_envelope,
                   depth_step, lateral_step, cutoff, column_offset, cols, vals, start, write):
    n_rows = grid_index.shape[0]
    n_cols = grid_index.shape[1]
    reach = footprint_mm(envelope, narrow_envelope, depth_step, lateral_step, depth, scale, eta, cutoff, pitch)
    c0 = int(math.floor((a - reach - grid_origin[1]) / pitch))
    c1 = int(math.ceil((a + reach - grid_origin[1]) / pitch))
    r0 = int(math.floor((b - reach - grid_origin[0]) / pitch))
    r1 = int(math.ceil((b + reach - grid_origin[0]) / pitch))
    reach2 = reach * reach
    water = eta >= 1.0
    threshold = cutoff if water else cutoff * eta * eta
    count = 0
    for r in range(max(r0, 0), min(r1, n_rows - 1) + 1):
        dv = b - (grid_origin[0] + r * pitch)
        for c in range(max(c0, 0), min(c1, n_cols - 1) + 1):
            column = grid_index[r, c]
            if column < 0:
                continue
            du = a - (grid_origin[1] + c * pitch)
            if dv * dv + du * du > reach2:
                continue
            if water:
                value = scale * table_lookup(table, depth_step, lateral_step, depth, dv, du)
            else:
                value = scale * stretched_lookup(cumulative, depth_step, lateral_step, depth, dv, du, pitch, eta)
            if value >= threshold:
                if write:
                    cols[start + count] = column + column_offset
                    vals[start + count] = value
                count += 1
    return count


@cuda.jit(**CUDA)
def count_entries_kernel(a, b, depth, scale, eta, grid_index, grid_origin, pitch, table, envelope, cumulative,
                         narrow_envelope, depth_step, lateral_step, cutoff, counts):
    """counts[row] = entries of voxel ``row``; grid-stride loop over rows."""
    for row in range(cuda.grid(1), a.shape[0], cuda.gridsize(1)):
        counts[row] = _voxel_entries(a[row], b[row], depth[row], scale[row], eta[row], grid_index, grid_origin, pitch,
                                     table, envelope, cumulative, narrow_envelope, depth_step, lateral_step, cutoff, 0,
                                     counts, counts, 0, False)


@cuda.jit(**CUDA)
def fill_entries_kernel(a, b, depth, scale, eta, grid_index, grid_origin, pitch, table, envelope, cumulative,
                        narrow_envelope, depth_step, lateral_step, cutoff, starts, column_offset, indices, data):
    """One beam's CSR ``indices``/``data`` of every row from ``starts``; grid-stride loop over rows."""
    for row in range(cuda.grid(1), a.shape[0], cuda.gridsize(1)):
        _voxel_entries(a[row], b[row], depth[row], scale[row], eta[row], grid_index, grid_origin, pitch, table,
                       envelope, cumulative, narrow_envelope, depth_step, lateral_step, cutoff, column_offset, indices,
                       data, starts[row], True)


def _inputs(a, b, depth, scale, eta, grid_index, grid_origin, table, envelope, cumulative, narrow_envelope):
    f64 = np.float64
    return (as_device(a, f64), as_device(b, f64), as_device(depth, f64), as_device(scale, f64), as_device(eta, f64),
            as_device(grid_index, np.int32), as_device(grid_origin, f64), as_device(table, f64),
            as_device(envelope, f64), as_device(cumulative, f64), as_device(narrow_envelope, f64))


def count_entries(a, b, depth, scale, eta, grid_index, grid_origin, pitch, table, envelope, cumulative, narrow_envelope,
                  depth_step, lateral_step, cutoff, counts, *, threads_per_block: int = 128, max_blocks: int | None = None):
    """The CPU twin's :func:`kernels.pencil_beam_cpu.count_entries` on the GPU (``counts`` host or device)."""
    inputs = _inputs(a, b, depth, scale, eta, grid_index, grid_origin, table, envelope, cumulative, narrow_envelope)
    da, db, dd, ds, de, dg, do, dt, dv, dc, dn = inputs
    device_counts = counts if is_device(counts) else cuda.device_array(len(counts), np.int64)
    count_entries_kernel[blocks_for(len(counts), threads_per_block, max_blocks), threads_per_block](
        da, db, dd, ds, de, dg, do, float(pitch), dt, dv, dc, dn, float(depth_step), float(lateral_step), float(cutoff),
        device_counts)
    return counts if device_counts is counts else to_host(device_counts, counts)


def fill_entries(a, b, depth, scale, eta, grid_index, grid_origin, pitch, table, envelope, cumulative, narrow_envelope,
                 depth_step, lateral_step, cutoff, starts, column_offset, indices, data, *, threads_per_block: int = 128,
                 max_blocks: int | None = None):
    """The CPU twin's :func:`kernels.pencil_beam_cpu.fill_entries` on the GPU.

    ``indices``/``data`` on the host are copied up and back whole (the other beams' entries
    in them are kept); device arrays stay on the device."""
    inputs = _inputs(a, b, depth, scale, eta, grid_index, grid_origin, table, envelope, cumulative, narrow_envelope)
    da, db, dd, ds, de, dg, do, dt, dv, dc, dn = inputs
    device_indices = indices if is_device(indices) else as_device(indices, np.int32)
    device_data = data if is_device(data) else as_device(data, np.float32)
    fill_entries_kernel[blocks_for(len(a), threads_per_block, max_blocks), threads_per_block](
        da, db, dd, ds, de, dg, do, float(pitch), dt, dv, dc, dn, float(depth_step), float(lateral_step), float(cutoff),
        as_device(starts, np.int64), int(column_offset), device_indices, device_data)
    if device_indices is not indices:
        to_host(device_indices, indices)
    if device_data is not data:
        to_host(device_data, data)
    return indices, data
