"""TERMA: energy released per voxel by the primary photons of one beam (CPU, Numba).

For each voxel the primary fluence is the fluence map on the isocentre plane (piecewise
constant pixels, e.g. beamlets), seen from the source through the voxel, scaled by the
inverse square law and attenuated, per spectral bin, along the exact radiological path from
the source (:mod:`kernels.raytrace_cpu`). Attenuation and energy release scale with the
relative electron density: mu(E, voxel) = rho_e * mu_water(E), the Compton-dominated
approximation (its validity for bone is checked in the tests against the tabulated bone
coefficients). The voxel's cross-section is sampled ``subsamples**3`` times so that field
edges cut voxels in the right proportion.

Returns energy released in MeV per voxel for unit fluence (1 photon/cm^2 at the isocentre
plane where the map is 1).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._numba import CPU, CPU_PARALLEL, prange
from .raytrace_cpu import path_integral

__all__ = ["terma"]


@njit(**CPU)
def _fluence_at(point, source, axis, u, v, sad_mm, fluence, fluence_origin, fluence_spacing):
    """Fluence-map value (nearest pixel) where the ray source -> point crosses the iso plane,
    and the depth of the point along the axis (mm from the source)."""
    p0 = point[0] - source[0]
    p1 = point[1] - source[1]
    p2 = point[2] - source[2]
    depth = p0 * axis[0] + p1 * axis[1] + p2 * axis[2]
    if depth <= 0.0:
        return 0.0, depth
    scale = sad_mm / depth
    a = (p0 * u[0] + p1 * u[1] + p2 * u[2]) * scale
    b = (p0 * v[0] + p1 * v[1] + p2 * v[2]) * scale
    col = int(np.floor((a - fluence_origin[1]) / fluence_spacing[1] + 0.5))
    row = int(np.floor((b - fluence_origin[0]) / fluence_spacing[0] + 0.5))
    if row < 0 or col < 0 or row >= fluence.shape[0] or col >= fluence.shape[1]:
        return 0.0, depth
    return fluence[row, col], depth


@njit(**CPU_PARALLEL)
def terma(electron_density, origin_mm, spacing_mm, source, axis, u, v, sad_mm, fluence, fluence_origin,
          fluence_spacing, energies_mev, photon_fractions, mu_water_cm2_g, subsamples, out):
    """Energy released (MeV per voxel, unit fluence) into ``out`` (same shape as the grid).

    ``fluence`` is (nv, nu) on the isocentre plane, pixel (r, c) centred at
    ``fluence_origin + (r, c) * fluence_spacing`` in (v, u) mm. ``u``, ``v``, ``axis`` are the
    beam's orthonormal frame (z, y, x); ``axis`` points from the source to the isocentre.
    """
    nz, ny, nx = electron_density.shape
    voxel_cc = spacing_mm[0] * spacing_mm[1] * spacing_mm[2] / 1000.0
    n_energy = energies_mev.shape[0]
    inv = 1.0 / subsamples
    for flat in prange(nz * ny * nx):
        k = flat // (ny * nx)
        j = (flat // nx) % ny
        i = flat % nx
        rho_e = electron_density[k, j, i]
        out[k, j, i] = 0.0
        if rho_e <= 0.0:
            continue
        centre = np.empty(3)
        centre[0] = origin_mm[0] + k * spacing_mm[0]
        centre[1] = origin_mm[1] + j * spacing_mm[1]
        centre[2] = origin_mm[2] + i * spacing_mm[2]
        # Mean of fluence x inverse square over sub-points of the voxel.
        point = np.empty(3)
        weight = 0.0
        for a in range(subsamples):
            point[0] = centre[0] + ((a + 0.5) * inv - 0.5) * spacing_mm[0]
            for b in range(subsamples):
                point[1] = centre[1] + ((b + 0.5) * inv - 0.5) * spacing_mm[1]
                for c in range(subsamples):
                    point[2] = centre[2] + ((c + 0.5) * inv - 0.5) * spacing_mm[2]
                    value, depth = _fluence_at(point, source, axis, u, v, sad_mm, fluence, fluence_origin, fluence_spacing)
                    if value != 0.0:
                        weight += value * (sad_mm / depth) ** 2
        if weight == 0.0:
            continue
        weight /= subsamples ** 3
        # Radiological depth to the voxel centre, g/cm^2 (density x mm / 10).
        depth_g_cm2 = 0.1 * path_integral(electron_density, origin_mm, spacing_mm, source, centre)
        released = 0.0
        for e in range(n_energy):
            mu = mu_water_cm2_g[e]
            released += photon_fractions[e] * energies_mev[e] * mu * np.exp(-mu * depth_g_cm2)
        # The voxel's own half-path attenuates too, but the path integral stops at its centre:
        # released energy per cm^3 is rho_e * mu * energy fluence at the centre.
        out[k, j, i] = weight * released * rho_e * voxel_cc
