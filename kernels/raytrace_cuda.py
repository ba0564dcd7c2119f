"""CUDA twin of :mod:`kernels.raytrace_cpu`: exact radiological path lengths, one thread per ray.

Same traversal, same arithmetic order, float64 like the CPU twin: results agree to rounding
(FMA contraction on the GPU changes the last bits of a boundary crossing; the tests allow a
relative 1e-9). ``path_integral`` is a device function here (used by the TERMA twin); the
host functions take the CPU twin's arguments, plus launch shape options, and fill ``out``
(a host array, or a device array that stays on the GPU).
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64, int64

from ._cuda import CUDA, as_device, blocks_for, is_device, to_host

__all__ = ["path_integral", "path_integrals", "path_integrals_to_voxels", "path_integrals_kernel",
           "path_integrals_to_voxels_kernel", "depth_and_upstream_density", "depths_and_upstream_densities_to_voxels",
           "depths_and_upstream_densities_to_voxels_kernel"]


@cuda.jit(device=True, **CUDA)
def path_integral(density, origin_mm, spacing_mm, s0, s1, s2, e0, e1, e2):
    """Integral of ``density`` along (s0, s1, s2) -> (e0, e1, e2), mm (z, y, x): density x mm."""
    shape = cuda.local.array(3, int64)
    start = cuda.local.array(3, float64)
    direction = cuda.local.array(3, float64)
    low = cuda.local.array(3, float64)
    high = cuda.local.array(3, float64)
    shape[0] = density.shape[0]
    shape[1] = density.shape[1]
    shape[2] = density.shape[2]
    start[0] = s0
    start[1] = s1
    start[2] = s2
    direction[0] = e0 - s0
    direction[1] = e1 - s1
    direction[2] = e2 - s2
    for a in range(3):
        low[a] = origin_mm[a] - 0.5 * spacing_mm[a]
        high[a] = low[a] + shape[a] * spacing_mm[a]
    length = math.sqrt(direction[0] ** 2 + direction[1] ** 2 + direction[2] ** 2)
    if length == 0.0:
        return 0.0
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
    index = cuda.local.array(3, int64)
    step = cuda.local.array(3, int64)
    t_next = cuda.local.array(3, float64)
    t_delta = cuda.local.array(3, float64)
    t_mid = 0.5 * (t_in + t_out) if t_out - t_in < 1e-9 else t_in + 1e-9 * (t_out - t_in)
    for a in range(3):
        position = start[a] + t_mid * direction[a]
        i = int(math.floor((position - low[a]) / spacing_mm[a]))
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
            t_next[a] = math.inf
            t_delta[a] = math.inf
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
        flat = flat_indices[n]
        k = flat // (ny * nx)
        j = (flat // nx) % ny
        i = flat % nx
        out[n] = path_integral(density, origin_mm, spacing_mm, source[0], source[1], source[2],
                               origin_mm[0] + k * spacing_mm[0], origin_mm[1] + j * spacing_mm[1],
                               origin_mm[2] + i * spacing_mm[2])


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


@cuda.jit(device=True, **CUDA)
def depth_and_upstream_density(density, origin_mm, spacing_mm, start0, start1, start2, end0, end1, end2, range_mm):
    """Radiological depth from ``end`` (the source) to the voxel centre ``start`` (density x
    mm, as :func:`path_integral`, to rounding: the sum runs the other way) and the effective
    density over the first ``range_mm`` (density x mm) of the way back from the voxel (module
    docstring), in one walk from the voxel towards the source. Scalars only: no arrays per ray.

    An electron released l upstream (density x mm) has crossed the geometric length s(l); its
    lateral spread is s(l) / l times water's. Averaged per unit mass (electrons are released
    per unit mass) over l in [0, range], the mean stretch is integral(s(l) / l dl) / range; in
    a voxel of density rho, s(l) = s0 + (l - l0) / rho, whose integral of s / l over the voxel
    is (s0 - l0 / rho) ln(l1 / l0) + (l1 - l0) / rho. The effective density is the inverse of
    the mean stretch; 1.0 where the walk gathers nothing (no medium: no scaling)."""
    nz = density.shape[0]
    ny = density.shape[1]
    nx = density.shape[2]
    d0 = end0 - start0
    d1 = end1 - start1
    d2 = end2 - start2
    low0 = origin_mm[0] - 0.5 * spacing_mm[0]
    low1 = origin_mm[1] - 0.5 * spacing_mm[1]
    low2 = origin_mm[2] - 0.5 * spacing_mm[2]
    length = math.sqrt(d0 * d0 + d1 * d1 + d2 * d2)
    # The voxel centre lies inside the grid; the walk leaves it at t_out (the first face crossed).
    t_out = 1.0
    if d0 != 0.0:
        t_out = min(t_out, max((low0 - start0) / d0, (low0 + nz * spacing_mm[0] - start0) / d0))
    if d1 != 0.0:
        t_out = min(t_out, max((low1 - start1) / d1, (low1 + ny * spacing_mm[1] - start1) / d1))
    if d2 != 0.0:
        t_out = min(t_out, max((low2 - start2) / d2, (low2 + nx * spacing_mm[2] - start2) / d2))
    i0 = min(max(int(math.floor((start0 - low0) / spacing_mm[0])), 0), nz - 1)
    i1 = min(max(int(math.floor((start1 - low1) / spacing_mm[1])), 0), ny - 1)
    i2 = min(max(int(math.floor((start2 - low2) / spacing_mm[2])), 0), nx - 1)
    s0 = 1 if d0 > 0.0 else (-1 if d0 < 0.0 else 0)
    s1 = 1 if d1 > 0.0 else (-1 if d1 < 0.0 else 0)
    s2 = 1 if d2 > 0.0 else (-1 if d2 < 0.0 else 0)
    n0 = (low0 + (i0 + 1 if s0 > 0 else i0) * spacing_mm[0] - start0) / d0 if s0 != 0 else math.inf
    n1 = (low1 + (i1 + 1 if s1 > 0 else i1) * spacing_mm[1] - start1) / d1 if s1 != 0 else math.inf
    n2 = (low2 + (i2 + 1 if s2 > 0 else i2) * spacing_mm[2] - start2) / d2 if s2 != 0 else math.inf
    e0 = abs(spacing_mm[0] / d0) if s0 != 0 else math.inf
    e1 = abs(spacing_mm[1] / d1) if s1 != 0 else math.inf
    e2 = abs(spacing_mm[2] / d2) if s2 != 0 else math.inf
    total = 0.0  # radiological depth
    gathered = 0.0  # l: density x mm, up to the range
    geometric = 0.0  # s(l): mm
    stretch = 0.0  # integral of s(l) / l dl
    t = 0.0
    while t < t_out:
        if n0 <= n1 and n0 <= n2:
            axis = 0
            t_end = n0
        elif n1 <= n2:
            axis = 1
            t_end = n1
        else:
            axis = 2
            t_end = n2
        t_end = min(t_end, t_out)
        rho = density[i0, i1, i2]
        crossed = (t_end - t) * length
        total += crossed * rho
        if gathered < range_mm:
            if rho > 0.0:
                piece = crossed * rho
                if gathered + piece >= range_mm:
                    piece = range_mm - gathered
                coefficient = geometric - gathered / rho
                if gathered > 0.0 and coefficient != 0.0:
                    stretch += coefficient * math.log((gathered + piece) / gathered)
                stretch += piece / rho
                gathered += piece
            geometric += crossed
        t = t_end
        if axis == 0:
            i0 += s0
            n0 += e0
            if i0 < 0 or i0 >= nz:
                break
        elif axis == 1:
            i1 += s1
            n1 += e1
            if i1 < 0 or i1 >= ny:
                break
        else:
            i2 += s2
            n2 += e2
            if i2 < 0 or i2 >= nx:
                break
    eta = gathered / stretch if stretch > 0.0 else 1.0
    return total, eta


@cuda.jit(**CUDA)
def depths_and_upstream_densities_to_voxels_kernel(density, origin_mm, spacing_mm, source, flat_indices, range_mm,
                                                   depth_out, eta_out):
    """depth_out[n], eta_out[n] of voxel flat_indices[n] (the CPU twin's one walk)."""
    ny = density.shape[1]
    nx = density.shape[2]
    for n in range(cuda.grid(1), flat_indices.shape[0], cuda.gridsize(1)):
        flat = flat_indices[n]
        k = flat // (ny * nx)
        j = (flat // nx) % ny
        i = flat % nx
        depth, eta = depth_and_upstream_density(density, origin_mm, spacing_mm, origin_mm[0] + k * spacing_mm[0],
                                                origin_mm[1] + j * spacing_mm[1], origin_mm[2] + i * spacing_mm[2],
                                                source[0], source[1], source[2], range_mm)
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
