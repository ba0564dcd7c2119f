"""CUDA twin of :mod:`kernels.terma_cpu`: energy released per voxel, one thread per voxel.

Same sub-point sampling, nearest-pixel fluence lookup, exact radiological depth per medium
(the device ray tracer of :mod:`kernels.raytrace_cuda`) and spectral sum, in float64: each
voxel's work is the CPU twin's own per-voxel functions compiled as device functions; the media stack and its checks are the CPU twin's (``media_stack``).
GPU exp and FMA contraction differ from the CPU's in the last bits; the tests allow a
relative 1e-9 plus an absolute 1e-12 of the maximum. A sub-point that lands exactly on a
fluence-pixel edge could round to the other pixel on either twin; the random test inputs
avoid exact ties with probability one.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float64

from . import terma_cpu as cpu_twin
from ._cuda import CUDA, as_device, blocks_for, device_functions, is_device, to_host
from .raytrace_cuda import path_integral
from .terma_cpu import MAX_MEDIA, absorbed_arguments, media_stack

__all__ = ["terma", "terma_kernel"]


#: The CPU twin's per-voxel functions compiled again as device functions: one source for both
#: twins (:func:`kernels._cuda.device_functions`), the ray tracer's device twin inside.
_voxel = device_functions(cpu_twin._fluence_at, cpu_twin._fluence_weight, cpu_twin._released_at, cpu_twin._medium_at,
                          uses={"path_integral_between": path_integral})
_medium_at = _voxel._medium_at
_fluence_weight = _voxel._fluence_weight
_released_at = _voxel._released_at


@cuda.jit(**CUDA)
def terma_kernel(attenuation_scale, origin_mm, spacing_mm, source, axis, u, v, sad_mm, fluence, fluence_origin,
                 fluence_spacing, energies_mev, photon_fractions, mu_cm2_g, absorbed_fraction, subsamples, out, absorbed,
                 want_absorbed):
    """Energy released (MeV per voxel, unit fluence) into ``out``, its locally absorbed part into
    ``absorbed`` when ``want_absorbed``; grid-stride loop over voxels, each voxel's work the
    CPU twin's per-voxel functions (:func:`kernels.terma_cpu._terma`'s loop body)."""
    nz, ny, nx = attenuation_scale.shape[1:]
    voxel_cc = spacing_mm[0] * spacing_mm[1] * spacing_mm[2] / 1000.0
    depth_g_cm2 = cuda.local.array(MAX_MEDIA, float64)
    for flat in range(cuda.grid(1), nz * ny * nx, cuda.gridsize(1)):
        k = flat // (ny * nx)
        j = (flat // nx) % ny
        i = flat % nx
        out[k, j, i] = 0.0
        if want_absorbed:
            absorbed[k, j, i] = 0.0
        here = _medium_at(attenuation_scale, k, j, i)
        if here < 0:
            continue
        c0 = origin_mm[0] + k * spacing_mm[0]
        c1 = origin_mm[1] + j * spacing_mm[1]
        c2 = origin_mm[2] + i * spacing_mm[2]
        weight = _fluence_weight(c0, c1, c2, spacing_mm, subsamples, source, axis, u, v, sad_mm, fluence,
                                 fluence_origin, fluence_spacing)
        if weight == 0.0:
            continue
        released, local = _released_at(attenuation_scale, here, c0, c1, c2, origin_mm, spacing_mm, source,
                                       energies_mev, photon_fractions, mu_cm2_g, absorbed_fraction, depth_g_cm2)
        scale = attenuation_scale[here, k, j, i]
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
