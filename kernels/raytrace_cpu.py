"""Exact radiological path length through a voxel grid (Siddon / Amanatides-Woo traversal).

Arrays in, arrays out: ``density`` (nz, ny, nx) in any per-length unit (g/cc, or relative
electron density), grid ``origin_mm`` (centre of voxel 0, (z, y, x)) and ``spacing_mm``.
The path from ``start`` to ``end`` (mm, (z, y, x)) is split exactly at every voxel boundary
it crosses; the result is sum(density * length_mm). Outside the grid contributes nothing.

``depths_and_upstream_densities_to_voxels`` walks from each voxel back towards the source:
it returns the path integral from the source to the voxel and, over the first ``range_mm`` of
radiological path (density x mm) of the way back, the effective density of the medium the secondary electrons reaching the voxel crossed (the
pencil beam's lateral scaling): an electron released l upstream (density x mm) has crossed
a geometric length s(l), so its lateral spread is s(l) / l times water's; averaged per unit
mass over l up to the range, the mean stretch is integral(s(l) / l dl) / range, and the
effective density its inverse. It is the density itself in a uniform medium (exactly 1 in
water), and the air a ray crosses before the patient, holding little mass, weighs little.

The per-ray walks (:func:`path_integral_between`, :func:`depth_and_upstream_density` and the
helpers they call) take and keep scalars only and call ``math``, never NumPy: the CUDA twin
(:mod:`kernels.raytrace_cuda`) compiles these same functions as its device functions, so
the walk is written once.
"""

from __future__ import annotations

import math

from numba import njit

from ._numba import CPU, CPU_PARALLEL, prange

__all__ = ["path_integral", "path_integral_between", "path_integrals", "path_integrals_to_voxels",
           "depth_and_upstream_density", "depths_and_upstream_densities_to_voxels"]


@njit(**CPU)
def _low_corner(origin_mm, spacing_mm):
    """The grid's low corner (mm, (z, y, x)): half a voxel below the centre of voxel 0."""
    return origin_mm[0] - 0.5 * spacing_mm[0], origin_mm[1] - 0.5 * spacing_mm[1], origin_mm[2] - 0.5 * spacing_mm[2]


@njit(**CPU)
def _voxel_centre(origin_mm, spacing_mm, ny, nx, flat):
    """Centre (mm, (z, y, x)) of the voxel of flat C-order index ``flat`` in a grid of (., ny, nx)."""
    k = flat // (ny * nx)
    j = (flat // nx) % ny
    i = flat % nx
    return origin_mm[0] + k * spacing_mm[0], origin_mm[1] + j * spacing_mm[1], origin_mm[2] + i * spacing_mm[2]


@njit(**CPU)
def _clip(start, direction, low, high, t_in, t_out):
    """One axis's clip of the parameter range (t_in, t_out) to the grid's box; (inf, -inf),
    an empty range, where the segment runs parallel to the axis outside the box."""
    if direction == 0.0:
        if start < low or start >= high:
            return math.inf, -math.inf
        return t_in, t_out
    t0 = (low - start) / direction
    t1 = (high - start) / direction
    if t0 > t1:
        t0, t1 = t1, t0
    return max(t_in, t0), min(t_out, t1)


@njit(**CPU)
def _first_voxel(start, direction, low, spacing, n, t_mid):
    """One axis of the walk's start: the voxel index at t_mid, the step (+-1, 0), the t of the
    next boundary and the t between boundaries."""
    position = start + t_mid * direction
    index = min(max(int(math.floor((position - low) / spacing)), 0), n - 1)
    if direction > 0.0:
        return index, 1, (low + (index + 1) * spacing - start) / direction, spacing / direction
    if direction < 0.0:
        return index, -1, (low + index * spacing - start) / direction, -spacing / direction
    return index, 0, math.inf, math.inf


@njit(**CPU)
def path_integral_between(density, origin_mm, spacing_mm, start0, start1, start2, end0, end1, end2):
    """Integral of ``density`` along (start0, start1, start2) -> (end0, end1, end2), mm (z, y, x):
    density x mm. Scalars only, no arrays per ray: the one walk of both twins (the CUDA twin
    compiles this function as its device function ``path_integral``)."""
    nz, ny, nx = density.shape
    d0 = end0 - start0
    d1 = end1 - start1
    d2 = end2 - start2
    low0, low1, low2 = _low_corner(origin_mm, spacing_mm)
    length = math.sqrt(d0 ** 2 + d1 ** 2 + d2 ** 2)
    if length == 0.0:
        return 0.0
    # Clip the segment (parameter t in [0, 1]) to the grid's box.
    t_in, t_out = _clip(start0, d0, low0, low0 + nz * spacing_mm[0], 0.0, 1.0)
    t_in, t_out = _clip(start1, d1, low1, low1 + ny * spacing_mm[1], t_in, t_out)
    t_in, t_out = _clip(start2, d2, low2, low2 + nx * spacing_mm[2], t_in, t_out)
    if t_in >= t_out:
        return 0.0
    t_mid = 0.5 * (t_in + t_out) if t_out - t_in < 1e-9 else t_in + 1e-9 * (t_out - t_in)
    i0, s0, n0, e0 = _first_voxel(start0, d0, low0, spacing_mm[0], nz, t_mid)
    i1, s1, n1, e1 = _first_voxel(start1, d1, low1, spacing_mm[1], ny, t_mid)
    i2, s2, n2, e2 = _first_voxel(start2, d2, low2, spacing_mm[2], nx, t_mid)
    total = 0.0
    t = t_in
    while t < t_out:
        # The nearest boundary; on a tie the lowest axis.
        axis = 0
        nearest = n0
        if n1 < nearest:
            axis = 1
            nearest = n1
        if n2 < nearest:
            axis = 2
            nearest = n2
        t_end = min(nearest, t_out)
        total += (t_end - t) * density[i0, i1, i2]
        t = t_end
        if axis == 0:
            i0 += s0
            if i0 < 0 or i0 >= nz:
                break
            n0 += e0
        elif axis == 1:
            i1 += s1
            if i1 < 0 or i1 >= ny:
                break
            n1 += e1
        else:
            i2 += s2
            if i2 < 0 or i2 >= nx:
                break
            n2 += e2
    return total * length


@njit(**CPU)
def path_integral(density, origin_mm, spacing_mm, start, end):
    """Integral of ``density`` along the straight segment start -> end (density x mm)."""
    return path_integral_between(density, origin_mm, spacing_mm, start[0], start[1], start[2], end[0], end[1], end[2])


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
        centre0, centre1, centre2 = _voxel_centre(origin_mm, spacing_mm, ny, nx, flat_indices[n])
        out[n] = path_integral_between(density, origin_mm, spacing_mm, source[0], source[1], source[2],
                                       centre0, centre1, centre2)


@njit(**CPU)
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
    low0, low1, low2 = _low_corner(origin_mm, spacing_mm)
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


@njit(**CPU_PARALLEL)
def depths_and_upstream_densities_to_voxels(density, origin_mm, spacing_mm, source, flat_indices, range_mm, depth_out,
                                            eta_out):
    """For each listed voxel: the path integral from ``source`` to its centre (``depth_out``) and
    the effective density of the way back (``eta_out``): :func:`depth_and_upstream_density`."""
    nz, ny, nx = density.shape
    for n in prange(flat_indices.shape[0]):
        centre0, centre1, centre2 = _voxel_centre(origin_mm, spacing_mm, ny, nx, flat_indices[n])
        depth_out[n], eta_out[n] = depth_and_upstream_density(density, origin_mm, spacing_mm, centre0, centre1, centre2,
                                                              source[0], source[1], source[2], range_mm)
