"""CUDA twin of :mod:`kernels.terma_cpu`: energy released per voxel, one thread per voxel.

Same sub-point sampling, nearest-pixel fluence lookup, exact radiological depth (the device
ray tracer of :mod:`kernels.raytrace_cuda`) and spectral sum, in float64 like the CPU twin.
GPU exp and FMA contraction differ from the CPU's in the last bits; the tests allow a
relative 1e-9 plus an absolute 1e-12 of the maximum. A sub-point that lands exactly on a
fluence-pixel edge could round to the other pixel on either twin; the random test inputs
avoid exact ties with probability one.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from ._cuda import CUDA, as_device, blocks_for, is_device, to_host
from .raytrace_cuda import path_integral

__all__ = ["terma", "terma_kernel"]


@cuda.jit(device=True, **CUDA)
def _fluence_at(p_z, p_y, p_x, source, axis, u, v, sad_mm, fluence, fluence_origin, fluence_spacing):
    """(fluence-map value at the ray's iso-plane crossing, depth along the axis in mm)."""
    p0 = p_z - source[0]
    p1 = p_y - source[1]
    p2 = p_x - source[2]
    depth = p0 * axis[0] + p1 * axis[1] + p2 * axis[2]
    if depth <= 0.0:
        return 0.0, depth
    scale = sad_mm / depth
    a = (p0 * u[0] + p1 * u[1] + p2 * u[2]) * scale
    b = (p0 * v[0] + p1 * v[1] + p2 * v[2]) * scale
    col = int(math.floor((a - fluence_origin[1]) / fluence_spacing[1] + 0.5))
    row = int(math.floor((b - fluence_origin[0]) / fluence_spacing[0] + 0.5))
    if row < 0 or col < 0 or row >= fluence.shape[0] or col >= fluence.shape[1]:
        return 0.0, depth
    return fluence[row, col], depth


@cuda.jit(**CUDA)
def terma_kernel(electron_density, origin_mm, spacing_mm, source, axis, u, v, sad_mm, fluence, fluence_origin,
                 fluence_spacing, energies_mev, photon_fractions, mu_water_cm2_g, subsamples, out):
    """Energy released (MeV per voxel, unit fluence) into ``out``; grid-stride loop over voxels."""
    nz, ny, nx = electron_density.shape
    voxel_cc = spacing_mm[0] * spacing_mm[1] * spacing_mm[2] / 1000.0
    n_energy = energies_mev.shape[0]
    inv = 1.0 / subsamples
    for flat in range(cuda.grid(1), nz * ny * nx, cuda.gridsize(1)):
        k = flat // (ny * nx)
        j = (flat // nx) % ny
        i = flat % nx
        rho_e = electron_density[k, j, i]
        out[k, j, i] = 0.0
        if rho_e <= 0.0:
            continue
        c0 = origin_mm[0] + k * spacing_mm[0]
        c1 = origin_mm[1] + j * spacing_mm[1]
        c2 = origin_mm[2] + i * spacing_mm[2]
        weight = 0.0
        for a in range(subsamples):
            p0 = c0 + ((a + 0.5) * inv - 0.5) * spacing_mm[0]
            for b in range(subsamples):
                p1 = c1 + ((b + 0.5) * inv - 0.5) * spacing_mm[1]
                for c in range(subsamples):
                    p2 = c2 + ((c + 0.5) * inv - 0.5) * spacing_mm[2]
                    value, depth = _fluence_at(p0, p1, p2, source, axis, u, v, sad_mm, fluence, fluence_origin,
                                               fluence_spacing)
                    if value != 0.0:
                        weight += value * (sad_mm / depth) ** 2
        if weight == 0.0:
            continue
        weight /= subsamples ** 3
        depth_g_cm2 = 0.1 * path_integral(electron_density, origin_mm, spacing_mm, source[0], source[1], source[2],
                                          c0, c1, c2)
        released = 0.0
        for e in range(n_energy):
            mu = mu_water_cm2_g[e]
            released += photon_fractions[e] * energies_mev[e] * mu * math.exp(-mu * depth_g_cm2)
        out[k, j, i] = weight * released * rho_e * voxel_cc


def terma(electron_density, origin_mm, spacing_mm, source, axis, u, v, sad_mm, fluence, fluence_origin,
          fluence_spacing, energies_mev, photon_fractions, mu_water_cm2_g, subsamples, out, *,
          threads_per_block: int = 128, max_blocks: int | None = None):
    """The CPU twin's :func:`kernels.terma_cpu.terma` on the GPU; ``out`` may be a host or a device array."""
    if not 1 <= int(subsamples) <= 8:
        raise ValueError(f"subsamples must be 1..8, got {subsamples}")
    shape = tuple(electron_density.shape)
    device_out = out if is_device(out) else cuda.device_array(shape, np.float64)
    f64 = np.float64
    terma_kernel[blocks_for(int(np.prod(shape)), threads_per_block, max_blocks), threads_per_block](
        as_device(electron_density, f64), as_device(origin_mm, f64), as_device(spacing_mm, f64), as_device(source, f64),
        as_device(axis, f64), as_device(u, f64), as_device(v, f64), float(sad_mm), as_device(fluence, f64),
        as_device(fluence_origin, f64), as_device(fluence_spacing, f64), as_device(energies_mev, f64),
        as_device(photon_fractions, f64), as_device(mu_water_cm2_g, f64), int(subsamples), device_out)
    return out if device_out is out else to_host(device_out, out)
