"""Collapsed-cone convolution/superposition of released energy (CPU, Numba).

The point kernel of each cone direction m is a sum of exponentials in (density-scaled)
distance, cumulative fraction C_m(r) = sum_k A_mk (1 - exp(-a_mk r)) (fitted to the Monte
Carlo kernel by ``kernels.commission``). Energy released in a voxel into cone m travels
along one straight line of voxels in direction m (the collapsed cone) and is deposited with
the analytic recursion of Ahnesjö (1989) for a source uniformly spread over the voxel's
segment: in each voxel of radiological thickness tau = a * eta * ds (eta the relative
electron density) the energy in transit R deposits R (1 - e^-tau), the voxel's own release
E deposits E (1 - (1 - e^-tau)/tau), and R becomes R e^-tau + E (1 - e^-tau)/tau.

Lines: for a direction, the grid is walked one voxel per step along its dominant index axis
while the other two indices follow the rounded slope, so every voxel lies on exactly one
line per direction (lines are independent: parallel over lines, no write conflicts).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._numba import CPU_PARALLEL, prange

__all__ = ["collapsed_cone", "line_offsets"]


def line_offsets(direction_zyx, spacing_mm, shape):
    """Stepping pattern of one direction: dominant axis, its sign, per-step offsets of the
    two other axes, and the step length in mm."""
    step_index = np.asarray(direction_zyx, float) / np.asarray(spacing_mm, float)
    dominant = int(np.argmax(np.abs(step_index)))
    others = [a for a in range(3) if a != dominant]
    n = shape[dominant]
    slope = step_index[others] / abs(step_index[dominant])
    k = np.arange(n)
    offsets = np.rint(np.outer(k, slope)).astype(np.int64)  # (n, 2)
    step_mm = 1.0 / abs(step_index[dominant])
    return dominant, int(np.sign(step_index[dominant])), np.asarray(others, np.int64), offsets, float(step_mm)


@njit(**CPU_PARALLEL)
def _one_direction(released, eta, dominant, sign, others, offsets, step_cm, amplitudes, rates, out):
    shape = released.shape
    n_dom = shape[dominant]
    n_p = shape[others[0]]
    n_q = shape[others[1]]
    p_low = -offsets[:, 0].max()
    p_high = n_p - 1 - offsets[:, 0].min()
    q_low = -offsets[:, 1].max()
    q_high = n_q - 1 - offsets[:, 1].min()
    lines_q = q_high - q_low + 1
    n_lines = (p_high - p_low + 1) * lines_q
    n_comp = amplitudes.shape[0]
    for line in prange(n_lines):
        p0 = p_low + line // lines_q
        q0 = q_low + line % lines_q
        transit = np.zeros(n_comp)
        carrying = 0
        index = np.empty(3, np.int64)
        for step in range(n_dom):
            p = p0 + offsets[step, 0]
            q = q0 + offsets[step, 1]
            if p < 0 or p >= n_p or q < 0 or q >= n_q:
                # Outside the grid (before entering or after leaving): nothing in transit.
                for c in range(n_comp):
                    transit[c] = 0.0
                carrying = 0
                continue
            index[dominant] = step if sign > 0 else n_dom - 1 - step
            index[others[0]] = p
            index[others[1]] = q
            k, j, i = index[0], index[1], index[2]
            e = released[k, j, i]
            if e == 0.0 and carrying == 0:
                continue  # nothing released yet on this line and nothing in transit
            density = eta[k, j, i]
            deposit = 0.0
            carrying = 0
            for c in range(n_comp):
                tau = rates[c] * density * step_cm
                if tau > 1e-6:
                    attenuation = np.exp(-tau)
                    escape = (1.0 - attenuation) / tau
                else:
                    attenuation = 1.0 - tau
                    escape = 1.0 - 0.5 * tau
                source = e * amplitudes[c]
                deposit += transit[c] * (1.0 - attenuation) + source * (1.0 - escape)
                transit[c] = transit[c] * attenuation + source * escape
                if transit[c] > 0.0:
                    carrying = 1
            out[k, j, i] += deposit


def collapsed_cone(released_mev, electron_density, spacing_mm, directions_zyx, amplitudes, rates_per_cm, out=None):
    """Energy deposited per voxel (MeV) from energy released per voxel (MeV).

    Parameters
    ----------
    released_mev : (nz, ny, nx) float64
    electron_density : (nz, ny, nx) float64, relative to water (scales distances)
    spacing_mm : (3,) voxel size (z, y, x)
    directions_zyx : (n_dir, 3) unit vectors of the cone axes (patient frame)
    amplitudes : (n_dir, K) energy fraction per exponential component and cone
    rates_per_cm : (n_dir, K) attenuation rate of each component in water (1/cm)
    """
    released_mev = np.ascontiguousarray(released_mev, dtype=np.float64)
    eta = np.ascontiguousarray(electron_density, dtype=np.float64)
    if released_mev.shape != eta.shape:
        raise ValueError(f"released_mev {released_mev.shape} and electron_density {eta.shape} differ in shape")
    directions_zyx = np.asarray(directions_zyx, dtype=np.float64)
    amplitudes = np.asarray(amplitudes, dtype=np.float64)
    rates_per_cm = np.asarray(rates_per_cm, dtype=np.float64)
    if amplitudes.shape != rates_per_cm.shape or amplitudes.shape[0] != directions_zyx.shape[0]:
        raise ValueError("amplitudes and rates_per_cm must be (n_directions, n_components)")
    if out is None:
        out = np.zeros(released_mev.shape)
    for m in range(directions_zyx.shape[0]):
        dominant, sign, others, offsets, step_mm = line_offsets(directions_zyx[m], spacing_mm, released_mev.shape)
        _one_direction(released_mev, eta, dominant, sign, others, offsets, step_mm / 10.0,
                       amplitudes[m], rates_per_cm[m], out)
    return out
