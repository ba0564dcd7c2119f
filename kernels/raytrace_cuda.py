"""CUDA twin of :mod:`kernels.raytrace_cpu`: exact radiological path lengths, one thread per ray.

The walks are the CPU twin's own functions (:func:`kernels.raytrace_cpu.path_integral_between`,
:func:`kernels.raytrace_cpu.depth_and_upstream_density` and their helpers), compiled again as
device functions (:func:`kernels._cuda.device_functions`): same traversal, same arithmetic
order, float64 like the CPU twin, so results agree to rounding (FMA contraction on the GPU
changes the last bits of a boundary crossing; the tests allow a relative 1e-9).
``path_integral`` is a device function here (used by the TERMA twin), on scalars: (density,
origin_mm, spacing_mm, s0, s1, s2, e0, e1, e2). The host functions take the CPU twin's
arguments, plus launch shape options, and fill ``out`` (a host array, or a device array that
stays on the GPU).
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from . import raytrace_cpu as cpu_twin
from ._cuda import CUDA, as_device, blocks_for, device_functions, is_device, to_host

__all__ = ["path_integral", "path_integrals", "path_integrals_to_voxels", "path_integrals_kernel",
           "path_integrals_to_voxels_kernel", "depth_and_upstream_density", "depths_and_upstream_densities_to_voxels",
           "depths_and_upstream_densities_to_voxels_kernel"]

_walks = device_functions(cpu_twin._low_corner, cpu_twin._voxel_centre, cpu_twin._clip, cpu_twin._first_voxel,
                          cpu_twin.path_integral_between, cpu_twin.depth_and_upstream_density)
_voxel_centre = _walks._voxel_centre

#: Device function: integral of ``density`` along (s0, s1, s2) -> (e0, e1, e2), mm (z, y, x).
path_integral = _walks.path_integral_between
#: Device function: the CPU twin's :func:`kernels.raytrace_cpu.depth_and_upstream_density`.
depth_and_upstream_density = _walks.depth_and_upstream_density


@cuda.jit(**CUDA)
def path_integrals_kernel(density, origin_mm, spacing_mm, starts, ends, out):
    """out[n] = path integral starts[n] -> ends[n]; grid-stride loop over the segments."""
    for n in range(cuda.grid(1), starts.shape[0], cuda.gridsize(1)):
        out[n] = path_integral(density, origin_mm, spacing_mm, starts[n, 0], starts[n, 1], starts[n, 2],
                               ends[n, 0], ends[n, 1], ends[n, 2])


@cuda.jit(**CUDA)
def path_integrals_to_voxels_kernel(density, origin_mm, spacing_mm, source, flat_indices, out):
    """out[n] = path integral from ``source`` to the centre of voxel flat_indices[n]."""
    ny = density.shape[1]
    nx = density.shape[2]
    for n in range(cuda.grid(1), flat_indices.shape[0], cuda.gridsize(1)):
        centre0, centre1, centre2 = _voxel_centre(origin_mm, spacing_mm, ny, nx, flat_indices[n])
        out[n] = path_integral(density, origin_mm, spacing_mm, source[0], source[1], source[2],
                               centre0, centre1, centre2)


def path_integrals(density, origin_mm, spacing_mm, starts, ends, out, *, threads_per_block: int = 128,
                   max_blocks: int | None = None):
    """Path integrals of many segments into ``out`` (the CPU twin's arguments; arrays may be on the device)."""
    device_out = as_device(np.empty(len(out))) if not is_device(out) else out
    path_integrals_kernel[blocks_for(len(out), threads_per_block, max_blocks), threads_per_block](
        as_device(density, np.float64), as_device(origin_mm, np.float64), as_device(spacing_mm, np.float64),
        as_device(starts, np.float64), as_device(ends, np.float64), device_out)
    return to_host(device_out, out) if device_out is not out else out


def path_integrals_to_voxels(density, origin_mm, spacing_mm, source, flat_indices, out, *, threads_per_block: int = 128,
                             max_blocks: int | None = None):
    """Path integral from ``source`` to each listed voxel's centre into ``out`` (the CPU twin's arguments)."""
    device_out = as_device(np.empty(len(out))) if not is_device(out) else out
    path_integrals_to_voxels_kernel[blocks_for(len(out), threads_per_block, max_blocks), threads_per_block](
        as_device(density, np.float64), as_device(origin_mm, np.float64), as_device(spacing_mm, np.float64),
        as_device(source, np.float64), as_device(flat_indices, np.int64), device_out)
    return to_host(device_out, out) if device_out is not out else out


@cuda.jit(**CUDA)
def depths_and_upstream_densities_to_voxels_kernel(density, origin_mm, spacing_mm, source, flat_indices, range_mm,
                                                   depth_out, eta_out):
    """depth_out[n], eta_out[n] of voxel flat_indices[n] (the CPU twin's one walk)."""
    ny = density.shape[1]
    nx = density.shape[2]
    for n in range(cuda.grid(1), flat_indices.shape[0], cuda.gridsize(1)):
        centre0, centre1, centre2 = _voxel_centre(origin_mm, spacing_mm, ny, nx, flat_indices[n])
        depth, eta = depth_and_upstream_density(density, origin_mm, spacing_mm, centre0, centre1, centre2, source[0],
                                                source[1], source[2], range_mm)
        depth_out[n] = depth
        eta_out[n] = eta


def depths_and_upstream_densities_to_voxels(density, origin_mm, spacing_mm, source, flat_indices, range_mm, depth_out,
                                            eta_out, *, threads_per_block: int = 128, max_blocks: int | None = None):
    """The CPU twin's :func:`kernels.raytrace_cpu.depths_and_upstream_densities_to_voxels` (outputs host or device)."""
    device_depth = as_device(np.empty(len(depth_out))) if not is_device(depth_out) else depth_out
    device_eta = as_device(np.empty(len(eta_out))) if not is_device(eta_out) else eta_out
    depths_and_upstream_densities_to_voxels_kernel[blocks_for(len(depth_out), threads_per_block, max_blocks),
                                                   threads_per_block](
        as_device(density, np.float64), as_device(origin_mm, np.float64), as_device(spacing_mm, np.float64),
        as_device(source, np.float64), as_device(flat_indices, np.int64), float(range_mm), device_depth, device_eta)
    if device_depth is not depth_out:
        to_host(device_depth, depth_out)
    if device_eta is not eta_out:
        to_host(device_eta, eta_out)
    return depth_out, eta_out
