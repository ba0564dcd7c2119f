"""Pencil-beam influence: beamlet dose from radiological depth and lateral offset (CPU, Numba).

The beamlet kernel ``table[depth, v, u]`` is the dose per unit fluence of one square beamlet
in water, computed once with the collapsed-cone engine (so both engines agree in water),
with the inverse-square factor divided out and lateral positions projected to the
isocentre plane (:func:`beamlet_table`). For a voxel at radiological depth d whose ray from
the source crosses the isocentre plane at (a, b), beamlet j at (a_j, b_j) gives

    value = fluence_for_unit_weight * (SAD / t)^2 * table(d, b - b_j, a - a_j)

with t the voxel's distance from the source along the beam axis. Entries below
``cutoff`` (absolute, Gy per unit weight) are dropped. The matrix is built in CSR form in
two passes: count the entries of every voxel (so memory is known before anything is
allocated), then fill them.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._numba import CPU, CPU_PARALLEL, prange

__all__ = ["count_entries", "fill_entries", "table_lookup"]


@njit(**CPU)
def table_lookup(table, depth_step_mm, lateral_step_mm, depth_mm, dv_mm, du_mm):
    """Linear in depth, bilinear laterally; 0 outside the table's lateral extent."""
    n_depth, n_v, n_u = table.shape
    cv = (n_v - 1) / 2.0
    cu = (n_u - 1) / 2.0
    fv = dv_mm / lateral_step_mm + cv
    fu = du_mm / lateral_step_mm + cu
    if fv < 0.0 or fu < 0.0 or fv > n_v - 1 or fu > n_u - 1:
        return 0.0
    # Depth samples sit at voxel centres (k + 0.5) * step; clamp at both ends.
    fd = depth_mm / depth_step_mm - 0.5
    if fd < 0.0:
        fd = 0.0
    if fd > n_depth - 1:
        fd = n_depth - 1.0
    d0 = min(int(fd), n_depth - 2)
    v0 = min(int(fv), n_v - 2)
    u0 = min(int(fu), n_u - 2)
    wd, wv, wu = fd - d0, fv - v0, fu - u0
    total = 0.0
    for dd in range(2):
        w_d = wd if dd else 1.0 - wd
        for vv in range(2):
            w_v = wv if vv else 1.0 - wv
            for uu in range(2):
                w_u = wu if uu else 1.0 - wu
                total += w_d * w_v * w_u * table[d0 + dd, v0 + vv, u0 + uu]
    return total


@njit(**CPU)
def _voxel_entries(a, b, depth, scale, grid_index, grid_origin, pitch, table, depth_step, lateral_step, reach,
                   cutoff, cols, vals, write):
    n_rows, n_cols = grid_index.shape
    c0 = int(np.floor((a - reach - grid_origin[1]) / pitch))
    c1 = int(np.ceil((a + reach - grid_origin[1]) / pitch))
    r0 = int(np.floor((b - reach - grid_origin[0]) / pitch))
    r1 = int(np.ceil((b + reach - grid_origin[0]) / pitch))
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
                    cols[count] = column
                    vals[count] = value
                count += 1
    return count


@njit(**CPU_PARALLEL)
def count_entries(a, b, depth, scale, grid_index, grid_origin, pitch, table, depth_step, lateral_step, reach, cutoff,
                  counts):
    """Number of matrix entries of each voxel (row)."""
    dummy_cols = np.empty(0, np.int32)
    dummy_vals = np.empty(0, np.float32)
    for row in prange(a.shape[0]):
        counts[row] = _voxel_entries(a[row], b[row], depth[row], scale[row], grid_index, grid_origin, pitch, table,
                                     depth_step, lateral_step, reach, cutoff, dummy_cols, dummy_vals, False)


@njit(**CPU_PARALLEL)
def fill_entries(a, b, depth, scale, grid_index, grid_origin, pitch, table, depth_step, lateral_step, reach, cutoff,
                 indptr, indices, data):
    """Fill CSR ``indices``/``data`` rows (``indptr`` from the counts)."""
    for row in prange(a.shape[0]):
        start = indptr[row]
        stop = indptr[row + 1]
        _voxel_entries(a[row], b[row], depth[row], scale[row], grid_index, grid_origin, pitch, table, depth_step,
                       lateral_step, reach, cutoff, indices[start:stop], data[start:stop], True)
