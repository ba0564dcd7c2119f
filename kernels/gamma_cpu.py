"""Global 3-D gamma index (Low et al. 1998) on a regular grid (CPU, Numba).

For every reference voxel above the cut-off, gamma = min over evaluated points r of
sqrt(|r - r_ref|^2 / DTA^2 + (D_eval(r) - D_ref)^2 / (dose_percent% of the reference
maximum)^2). The evaluated distribution is searched on a sub-grid ``upsample`` times finer
than the voxels (trilinear interpolation), within ``max_gamma * DTA``; a voxel with no
point inside gets ``max_gamma``. ``refine`` extra passes search around the best point at a
quarter of the previous step each (resolving steep edges). Voxels below the cut-off are NaN.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._numba import CPU, CPU_PARALLEL, prange

__all__ = ["gamma_index", "gamma_pass_rate"]


@njit(**CPU)
def _trilinear(volume, z, y, x):
    nz, ny, nx = volume.shape
    if z < 0 or y < 0 or x < 0 or z > nz - 1 or y > ny - 1 or x > nx - 1:
        return np.nan
    k0 = min(int(z), nz - 2) if nz > 1 else 0
    j0 = min(int(y), ny - 2) if ny > 1 else 0
    i0 = min(int(x), nx - 2) if nx > 1 else 0
    fz, fy, fx = z - k0, y - j0, x - i0
    k1 = min(k0 + 1, nz - 1)
    j1 = min(j0 + 1, ny - 1)
    i1 = min(i0 + 1, nx - 1)
    c00 = volume[k0, j0, i0] * (1 - fx) + volume[k0, j0, i1] * fx
    c01 = volume[k0, j1, i0] * (1 - fx) + volume[k0, j1, i1] * fx
    c10 = volume[k1, j0, i0] * (1 - fx) + volume[k1, j0, i1] * fx
    c11 = volume[k1, j1, i0] * (1 - fx) + volume[k1, j1, i1] * fx
    return (c00 * (1 - fy) + c01 * fy) * (1 - fz) + (c10 * (1 - fy) + c11 * fy) * fz


@njit(**CPU)
def _candidate(evaluated, k, j, i, oz, oy, ox, spacing_mm, value, dose_norm, distance_mm, best, on_grid):
    """Squared gamma of the evaluated point at index offset (oz, oy, ox) from voxel (k, j, i),
    or ``inf`` if it cannot beat ``best`` (too far) or lies outside the grid."""
    dz, dy, dx = oz * spacing_mm[0], oy * spacing_mm[1], ox * spacing_mm[2]
    distance2 = (dz * dz + dy * dy + dx * dx) / (distance_mm * distance_mm)
    if distance2 >= best:
        return np.inf
    if on_grid:
        nz, ny, nx = evaluated.shape
        kk, jj, ii = k + int(round(oz)), j + int(round(oy)), i + int(round(ox))
        if kk < 0 or jj < 0 or ii < 0 or kk >= nz or jj >= ny or ii >= nx:
            return np.inf
        dose = evaluated[kk, jj, ii]
    else:
        dose = _trilinear(evaluated, k + oz, j + oy, i + ox)
        if np.isnan(dose):
            return np.inf
    return distance2 + (dose - value) * (dose - value) / (dose_norm * dose_norm)


@njit(**CPU_PARALLEL)
def _gamma(reference, evaluated, spacing_mm, dose_norm, distance_mm, cutoff, upsample, max_gamma, refine, out):
    nz, ny, nx = reference.shape
    reach = max_gamma * distance_mm
    steps = np.empty(3, np.int64)
    for a in range(3):
        steps[a] = int(np.ceil(reach / spacing_mm[a] * upsample))
    for flat in prange(nz * ny * nx):
        k = flat // (ny * nx)
        j = (flat // nx) % ny
        i = flat % nx
        value = reference[k, j, i]
        if value < cutoff:
            out[k, j, i] = np.nan
            continue
        best = max_gamma * max_gamma
        bz = 0.0
        by = 0.0
        bx = 0.0
        for dk in range(-steps[0], steps[0] + 1):
            for dj in range(-steps[1], steps[1] + 1):
                for di in range(-steps[2], steps[2] + 1):
                    on_grid = dk % upsample == 0 and dj % upsample == 0 and di % upsample == 0
                    oz, oy, ox = dk / upsample, dj / upsample, di / upsample
                    g2 = _candidate(evaluated, k, j, i, oz, oy, ox, spacing_mm, value, dose_norm, distance_mm, best, on_grid)
                    if g2 < best:
                        best = g2
                        bz, by, bx = oz, oy, ox
        # Refine around the best point: a 9 x 9 x 9 search at a quarter of the step, twice,
        # so steep gradients (field edges) are resolved to 1/16 of the search step.
        step = 1.0 / upsample
        for _ in range(refine):
            step /= 4.0
            cz, cy, cx = bz, by, bx
            for a in range(-4, 5):
                for b in range(-4, 5):
                    for c in range(-4, 5):
                        oz, oy, ox = cz + a * step, cy + b * step, cx + c * step
                        g2 = _candidate(evaluated, k, j, i, oz, oy, ox, spacing_mm, value, dose_norm, distance_mm, best, False)
                        if g2 < best:
                            best = g2
                            bz, by, bx = oz, oy, ox
        out[k, j, i] = np.sqrt(best)


def gamma_index(reference, evaluated, spacing_mm, *, dose_percent=2.0, distance_mm=2.0, cutoff_percent=10.0,
                upsample=1, max_gamma=2.0, refine=0):
    """Gamma of ``evaluated`` against ``reference`` (same grid). Returns an array (NaN = below cut-off)."""
    reference = np.ascontiguousarray(reference, dtype=np.float64)
    evaluated = np.ascontiguousarray(evaluated, dtype=np.float64)
    if reference.shape != evaluated.shape or reference.ndim != 3:
        raise ValueError(f"reference {reference.shape} and evaluated {evaluated.shape} must be 3-D and equal in shape")
    for name, value, low, high in (("dose_percent", dose_percent, 0.1, 20), ("distance_mm", distance_mm, 0.1, 20),
                                   ("cutoff_percent", cutoff_percent, 0, 100), ("upsample", upsample, 1, 8),
                                   ("max_gamma", max_gamma, 1, 5), ("refine", refine, 0, 3)):
        if not low <= value <= high:
            raise ValueError(f"{name} must be in {low}..{high}, got {value}")
    peak = reference.max()
    out = np.empty(reference.shape)
    _gamma(reference, evaluated, np.asarray(spacing_mm, float), peak * dose_percent / 100, float(distance_mm),
           peak * cutoff_percent / 100, int(upsample), float(max_gamma), int(refine), out)
    return out


def gamma_pass_rate(gamma) -> float:
    """Fraction of evaluated (non-NaN) voxels with gamma <= 1."""
    valid = ~np.isnan(gamma)
    return float(np.mean(gamma[valid] <= 1.0)) if valid.any() else float("nan")
