"""CUDA twin of :mod:`kernels.terma_cpu`: energy released per voxel, one thread per voxel.

Same sub-point sampling, nearest-pixel fluence lookup, exact radiological depth per medium
(the device ray tracer of :mod:`kernels.raytrace_cuda`) and spectral sum, in float64 like
the CPU twin; the media stack and its checks are the CPU twin's (``media_stack``).
GPU exp and FMA contraction differ from the CPU's in the last bits; the tests allow a
relative 1e-9 plus an absolute 1e-12 of the maximum. A sub-point that lands exactly on a
fluence-pixel edge could round to the other pixel on either twin; the random test inputs
avoid exact ties with probability one.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64

from ._cuda import CUDA, as_device, blocks_for, is_device, to_host
from .raytrace_cuda import path_integral
from .terma_cpu import MAX_MEDIA, absorbed_arguments, media_stack

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
def terma_kernel(attenuation_scale, origin_mm, spacing_mm, source, axis, u, v, sad_mm, fluence, fluence_origin,
                 fluence_spacing, energies_mev, photon_fractions, mu_cm2_g, absorbed_fraction, subsamples, out, absorbed,
                 want_absorbed):
    """Energy released (MeV per voxel, unit fluence) into ``out``, its locally absorbed part into
    ``absorbed`` when ``want_absorbed``; grid-stride loop over voxels."""
    n_media, nz, ny, nx = attenuation_scale.shape
    voxel_cc = spacing_mm[0] * spacing_mm[1] * spacing_mm[2] / 1000.0
    n_energy = energies_mev.shape[0]
    inv = 1.0 / subsamples
    for flat in range(cuda.grid(1), nz * ny * nx, cuda.gridsize(1)):
        k = flat // (ny * nx)
        j = (flat // nx) % ny
        i = flat % nx
        out[k, j, i] = 0.0
        if want_absorbed:
            absorbed[k, j, i] = 0.0
        here = -1
        for m in range(n_media):
            if attenuation_scale[m, k, j, i] > 0.0:
                here = m
        if here < 0:
            continue
        scale = attenuation_scale[here, k, j, i]
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
        depth_g_cm2 = cuda.local.array(MAX_MEDIA, float64)
        for m in range(n_media):
            depth_g_cm2[m] = 0.1 * path_integral(attenuation_scale[m], origin_mm, spacing_mm, source[0], source[1],
                                                 source[2], c0, c1, c2)
        released = 0.0
        local = 0.0
        for e in range(n_energy):
            exponent = 0.0
            for m in range(n_media):
                exponent += mu_cm2_g[m, e] * depth_g_cm2[m]
            bin_released = photon_fractions[e] * energies_mev[e] * mu_cm2_g[here, e] * math.exp(-exponent)
            released += bin_released
            local += bin_released * absorbed_fraction[here, e]
        out[k, j, i] = weight * released * scale * voxel_cc
        if want_absorbed:
            absorbed[k, j, i] = weight * local * scale * voxel_cc


def terma(attenuation_scale, origin_mm, spacing_mm, source, axis, u, v, sad_mm, fluence, fluence_origin,
          fluence_spacing, energies_mev, photon_fractions, mu_cm2_g, subsamples, out, *, absorbed_fraction=None,
          out_absorbed=None, threads_per_block: int = 128, max_blocks: int | None = None):
    """The CPU twin's :func:`kernels.terma_cpu.terma` on the GPU; ``out`` and ``out_absorbed``
    may be host or device arrays."""
    if not 1 <= int(subsamples) <= 8:
        raise ValueError(f"subsamples must be 1..8, got {subsamples}")
    scale, mu = media_stack(attenuation_scale, mu_cm2_g)
    fraction, absorbed, want = absorbed_arguments(absorbed_fraction, out_absorbed, mu)
    shape = tuple(scale.shape[1:])
    device_out = out if is_device(out) else cuda.device_array(shape, np.float64)
    device_absorbed = absorbed if is_device(absorbed) else cuda.device_array(absorbed.shape, np.float64)
    f64 = np.float64
    terma_kernel[blocks_for(int(np.prod(shape)), threads_per_block, max_blocks), threads_per_block](
        as_device(scale, f64), as_device(origin_mm, f64), as_device(spacing_mm, f64), as_device(source, f64),
        as_device(axis, f64), as_device(u, f64), as_device(v, f64), float(sad_mm), as_device(fluence, f64),
        as_device(fluence_origin, f64), as_device(fluence_spacing, f64), as_device(energies_mev, f64),
        as_device(photon_fractions, f64), as_device(mu, f64), as_device(fraction, f64), int(subsamples), device_out,
        device_absorbed, bool(want))
    if want and device_absorbed is not absorbed:
        to_host(device_absorbed, absorbed)
    return out if device_out is out else to_host(device_out, out)
