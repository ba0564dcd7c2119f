"""CUDA twin of :mod:`kernels.pencil_beam_cpu`: the influence matrix's two passes, one thread per voxel.

Each thread runs the CPU twin's own per-voxel functions (``_voxel_entries`` and the lookups,
lateral density scaling and footprint bound it calls), compiled again as device functions
(:func:`kernels._cuda.device_functions`): the same beamlet loop order (so each row's entries
come in the same column order as on the CPU), the same shared interpolation weights and the
same count pass (the beamlets inside the inner envelope's sure radius counted without a
lookup), values computed in float64 and stored as float32. The radial envelopes of
:func:`kernels.pencil_beam_cpu.kernel_envelopes` are computed on the host. GPU FMA
contraction moves a value by a few ulps, so an entry within rounding of the cut-off may be
kept by one twin and dropped by the other: the tests compare dense matrices with a relative
1e-6 (float32 storage) and an absolute tolerance of the cut-off itself.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from . import pencil_beam_cpu as cpu_twin
from ._cuda import CUDA, as_device, blocks_for, device_functions, is_device, to_host
from .pencil_beam_cpu import cumulative_table, kernel_envelopes, radial_envelope  # host-side NumPy, shared by the twins

__all__ = ["count_entries", "fill_entries", "table_lookup", "footprint_mm", "stretched_lookup", "radial_envelope",
           "cumulative_table", "kernel_envelopes", "count_entries_kernel", "fill_entries_kernel"]

_voxel = device_functions(cpu_twin._trilinear, cpu_twin.table_lookup, cpu_twin._depth_sample, cpu_twin._cumulative_at,
                          cpu_twin.stretched_lookup, cpu_twin._first_bin_below, cpu_twin._sure_radius_mm,
                          cpu_twin.footprint_mm, cpu_twin._lateral_start, cpu_twin._regular_stride, cpu_twin._edge,
                          cpu_twin._bilinear, cpu_twin._stretched_entries, cpu_twin._voxel_entries)

#: Device functions: the CPU twin's :func:`kernels.pencil_beam_cpu.table_lookup`,
#: :func:`~kernels.pencil_beam_cpu.stretched_lookup` and :func:`~kernels.pencil_beam_cpu.footprint_mm`.
table_lookup = _voxel.table_lookup
stretched_lookup = _voxel.stretched_lookup
footprint_mm = _voxel.footprint_mm
_voxel_entries = _voxel._voxel_entries


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
