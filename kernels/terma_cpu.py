"""TERMA: energy released per voxel by the primary photons of one beam (CPU, Numba).

For each voxel the primary fluence is the fluence map on the isocentre plane (piecewise
constant pixels, e.g. beamlets), seen from the source through the voxel, scaled by the
inverse square law and attenuated, per spectral bin, along the exact radiological path from
the source (:mod:`kernels.raytrace_cpu`). Media come as a stack: ``attenuation_scale[m]`` is
zero outside medium m, and mu(E, voxel) = attenuation_scale[m] * mu_cm2_g[m, E]. Medium 0 is
water scaled by the relative electron density (the Compton-dominated approximation, exact for
water-like media); a tabulated medium (bone) carries its mass density and its own mass
attenuation coefficients, whose pair-production and photoelectric parts per electron differ
from water's. The radiological path is traced once per medium of the stack, so a grid of
water-like media costs what it always did. The voxel's cross-section is sampled
``subsamples**3`` times so that field edges cut voxels in the right proportion.

Returns energy released in MeV per voxel for unit fluence (1 photon/cm^2 at the isocentre
plane where the map is 1).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._numba import CPU, CPU_PARALLEL, prange
from .raytrace_cpu import path_integral_between

__all__ = ["terma", "media_stack", "absorbed_arguments", "MAX_MEDIA"]

#: Media one TERMA call can attenuate with their own coefficients (a GPU thread keeps one
#: radiological depth per medium in registers); a numerical limit, not a physical one.
MAX_MEDIA = 8


@njit(**CPU)
def _fluence_at(p_z, p_y, p_x, source, axis, u, v, sad_mm, fluence, fluence_origin, fluence_spacing):
    """Fluence-map value (nearest pixel) where the ray source -> point crosses the iso plane,
    and the depth of the point along the axis (mm from the source)."""
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


@njit(**CPU)
def _fluence_weight(c0, c1, c2, spacing_mm, subsamples, source, axis, u, v, sad_mm, fluence, fluence_origin,
                    fluence_spacing):
    """Mean of fluence x inverse square over the ``subsamples**3`` sub-points of the voxel
    centred at (c0, c1, c2) mm."""
    inv = 1.0 / subsamples
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
    return weight / subsamples ** 3


@njit(**CPU)
def _released_at(attenuation_scale, here, c0, c1, c2, origin_mm, spacing_mm, source, energies_mev, photon_fractions,
                 mu_cm2_g, absorbed_fraction, depth_g_cm2):
    """Energy released per unit energy fluence at a voxel centre of medium ``here`` and its
    locally absorbed part, (MeV cm^2/g-weighted sum over the spectrum): the radiological depth
    in each medium (into the scratch ``depth_g_cm2``, g/cm^2) and the spectral sum."""
    n_media = attenuation_scale.shape[0]
    for m in range(n_media):
        depth_g_cm2[m] = 0.1 * path_integral_between(attenuation_scale[m], origin_mm, spacing_mm, source[0], source[1],
                                                     source[2], c0, c1, c2)
    released = 0.0
    local = 0.0
    for e in range(energies_mev.shape[0]):
        exponent = 0.0
        for m in range(n_media):
            exponent += mu_cm2_g[m, e] * depth_g_cm2[m]
        bin_released = photon_fractions[e] * energies_mev[e] * mu_cm2_g[here, e] * math.exp(-exponent)
        released += bin_released
        local += bin_released * absorbed_fraction[here, e]
    return released, local


@njit(**CPU)
def _medium_at(attenuation_scale, k, j, i):
    """The medium of voxel (k, j, i) in the stack (the last non-zero layer), -1 for none."""
    here = -1
    for m in range(attenuation_scale.shape[0]):
        if attenuation_scale[m, k, j, i] > 0.0:
            here = m
    return here


@njit(**CPU_PARALLEL)
def _terma(attenuation_scale, origin_mm, spacing_mm, source, axis, u, v, sad_mm, fluence, fluence_origin,
           fluence_spacing, energies_mev, photon_fractions, mu_cm2_g, absorbed_fraction, subsamples, out, absorbed,
           want_absorbed):
    """The voxels' loop; each voxel's work is the per-voxel functions above, which the CUDA
    twin compiles as device functions (:func:`kernels._cuda.device_functions`)."""
    n_media, nz, ny, nx = attenuation_scale.shape
    voxel_cc = spacing_mm[0] * spacing_mm[1] * spacing_mm[2] / 1000.0
    for flat in prange(nz * ny * nx):
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
        depth_g_cm2 = np.empty(n_media)
        released, local = _released_at(attenuation_scale, here, c0, c1, c2, origin_mm, spacing_mm, source,
                                       energies_mev, photon_fractions, mu_cm2_g, absorbed_fraction, depth_g_cm2)
        # The voxel's own half-path attenuates too, but the path integral stops at its centre:
        # released energy per cm^3 is scale * mu * energy fluence at the centre.
        scale = attenuation_scale[here, k, j, i]
        out[k, j, i] = weight * released * scale * voxel_cc
        if want_absorbed:
            absorbed[k, j, i] = weight * local * scale * voxel_cc


def terma(attenuation_scale, origin_mm, spacing_mm, source, axis, u, v, sad_mm, fluence, fluence_origin,
          fluence_spacing, energies_mev, photon_fractions, mu_cm2_g, subsamples, out, *, absorbed_fraction=None,
          out_absorbed=None):
    """Energy released (MeV per voxel, unit fluence) into ``out`` (same shape as the grid).

    ``attenuation_scale`` is (n_media, nz, ny, nx), each voxel non-zero in one medium at most
    (ValueError otherwise, :func:`media_stack`),
    with ``mu_cm2_g`` (n_media, n_energy); a single (nz, ny, nx) array with a (n_energy,)
    ``mu_cm2_g`` is one medium (the relative electron density with water's coefficients).
    ``fluence`` is (nv, nu) on the isocentre plane, pixel (r, c) centred at
    ``fluence_origin + (r, c) * fluence_spacing`` in (v, u) mm. ``u``, ``v``, ``axis`` are the
    beam's orthonormal frame (z, y, x); ``axis`` points from the source to the isocentre.
    With ``absorbed_fraction`` (n_media, n_energy: mu_en/mu) and ``out_absorbed`` (grid-shaped),
    the part of the released energy absorbed locally is written there too.
    """
    scale, mu = media_stack(attenuation_scale, mu_cm2_g)
    fraction, absorbed, want = absorbed_arguments(absorbed_fraction, out_absorbed, mu)
    _terma(scale, origin_mm, spacing_mm, source, axis, u, v, sad_mm, fluence, fluence_origin, fluence_spacing,
           energies_mev, photon_fractions, mu, fraction, subsamples, out, absorbed, want)
    return out


def absorbed_arguments(absorbed_fraction, out_absorbed, mu):
    """(fraction table, output array, flag) for the kernels: a placeholder when not asked for."""
    if (absorbed_fraction is None) != (out_absorbed is None):
        raise ValueError("absorbed_fraction and out_absorbed go together")
    if absorbed_fraction is None:
        return np.ones_like(mu), np.zeros((1, 1, 1)), False
    fraction = np.asarray(absorbed_fraction, dtype=np.float64)
    if fraction.ndim == 1:
        fraction = fraction[None]
    if fraction.shape != mu.shape:
        raise ValueError(f"absorbed_fraction {fraction.shape} must match mu_cm2_g {mu.shape}")
    return np.ascontiguousarray(fraction), out_absorbed, True


def media_stack(attenuation_scale, mu_cm2_g):
    """The TERMA kernels' media stack as contiguous float64, shapes and overlaps checked.

    Parameters
    ----------
    attenuation_scale : array_like of float, shape (n_media, nz, ny, nx) or (nz, ny, nx)
        Per medium, the factor its mass attenuation coefficients are scaled by in each voxel
        (relative electron density for medium 0, mass density in g/cm^3 for a tabulated
        medium), zero outside the medium. A voxel may be non-zero in one medium at most
        (ValueError otherwise: the kernels would silently take the last). A single
        (nz, ny, nx) array is a stack of one.
    mu_cm2_g : array_like of float, shape (n_media, n_energy) or (n_energy,)
        Each medium's mass attenuation coefficient (cm^2/g) per spectral bin; (n_energy,)
        goes with a single medium.

    Returns
    -------
    scale : numpy.ndarray of float64, shape (n_media, nz, ny, nx)
        ``attenuation_scale``, C-contiguous.
    mu : numpy.ndarray of float64, shape (n_media, n_energy)
        ``mu_cm2_g``, C-contiguous.

    Raises
    ------
    ValueError
        If the shapes do not match, the number of media is outside 1..:data:`MAX_MEDIA`, or
        a voxel lies in more than one medium (the message names the media and counts the
        voxels).
    """
    scale = np.asarray(attenuation_scale, dtype=np.float64)
    mu = np.asarray(mu_cm2_g, dtype=np.float64)
    if scale.ndim == 3:
        scale = scale[None]
    if mu.ndim == 1:
        mu = mu[None]
    if scale.ndim != 4 or mu.ndim != 2 or scale.shape[0] != mu.shape[0]:
        raise ValueError(f"attenuation_scale {scale.shape} and mu_cm2_g {mu.shape} must be (n_media, nz, ny, nx) "
                         "and (n_media, n_energy)")
    if not 1 <= scale.shape[0] <= MAX_MEDIA:
        raise ValueError(f"the number of media must be 1..{MAX_MEDIA}, got {scale.shape[0]}")
    if scale.shape[0] > 1:
        _refuse_overlapping_media(scale > 0.0)
    return np.ascontiguousarray(scale), np.ascontiguousarray(mu)


def _refuse_overlapping_media(inside):
    """ValueError naming each pair of media that share voxels and how many, if any do:
    ``inside`` is (n_media, nz, ny, nx), True where a medium's scale is non-zero."""
    shared = np.count_nonzero(inside.sum(axis=0, dtype=np.int32) > 1)
    if not shared:
        return
    pairs = []
    for a in range(inside.shape[0]):
        for b in range(a + 1, inside.shape[0]):
            both = np.count_nonzero(inside[a] & inside[b])
            if both:
                pairs.append(f"media {a} and {b}: {both} voxels")
    raise ValueError(f"attenuation_scale: {shared} voxels are non-zero in more than one medium ({'; '.join(pairs)}); "
                     "each voxel must lie in one medium at most")
