"""Collapsed-cone convolution/superposition of released energy (CPU, Numba).

The point kernel of each cone direction m is a sum of exponentials in (density-scaled)
distance, cumulative fraction C_m(r) = sum_k A_mk (1 - exp(-a_mk r)) (fitted to the Monte
Carlo kernel by ``kernels.commission``). Energy released in a voxel into cone m travels
along one straight line of voxels in direction m (the collapsed cone) and is deposited with
the analytic recursion of Ahnesjö (1989) for a source uniformly spread over the voxel's
segment: in each voxel of radiological thickness tau = a * eta * ds (eta the relative
electron density) the energy in transit R deposits R (1 - e^-tau), the voxel's own release
E deposits E (1 - (1 - e^-tau)/tau), and R becomes R e^-tau + E (1 - e^-tau)/tau.

Several sources ride the same lines on the same rates (the recursion is linear in its source):
a stack of per-voxel fields ``S_s`` with an amplitude table ``A_s`` each, a voxel's source of
component c in cone m being ``sum_s S_s A_s[m, c]``. The engine sends this way the locally
absorbed part of the released energy through the kernel's primary part
(:meth:`kernels.beam_model.BeamModel.hardening_directions`) and the first-order tilt of each
voxel's kernel along its own ray (released energy times the ray's lateral components,
:meth:`kernels.beam_model.BeamModel.transport_directions`): one pass over the cones, a few
multiply-adds more per voxel and component instead of one pass per source. The stack's
last axis is the source (a voxel's sources side by side in memory: the lines walk the grid
in every direction, and one cache line then holds them all); a one-byte mask of the voxels
that release anything is read first, so energy in transit alone (most of the grid, outside
the field) never touches the stack: with six sources the pass costs about 1.1 times that of
one (``benchmarks/superposition_switches.py``), where reading the stack at every voxel cost 2.

Along a line the attenuation and escape of each component are computed again only where the
electron density changes (the same numbers, not recomputed in uniform media).

Lines: for a direction, the grid is walked one voxel per step along its dominant index axis
while the other two indices follow the rounded slope, so every voxel lies on exactly one
line per direction (lines are independent: parallel over lines, no write conflicts).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._numba import CPU_PARALLEL, prange

__all__ = ["collapsed_cone", "line_offsets", "source_stack", "active_components", "releasing_voxels"]


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
def _one_direction(sources, releasing, eta, dominant, sign, others, offsets, step_cm, amplitudes, rates, out):
    """Transport along every line of one direction: ``sources`` (nz, ny, nx, n_sources),
    ``releasing`` (nz, ny, nx) uint8, 1 where some source is not zero (:func:`releasing_voxels`:
    a voxel with energy in transit only never touches the larger stack), ``amplitudes``
    (n_sources, K) and ``rates`` (K,) of this direction's active components."""
    shape = eta.shape
    n_dom = shape[dominant]
    n_p = shape[others[0]]
    n_q = shape[others[1]]
    p_low = -offsets[:, 0].max()
    p_high = n_p - 1 - offsets[:, 0].min()
    q_low = -offsets[:, 1].max()
    q_high = n_q - 1 - offsets[:, 1].min()
    lines_q = q_high - q_low + 1
    n_lines = (p_high - p_low + 1) * lines_q
    n_sources = amplitudes.shape[0]
    n_comp = amplitudes.shape[1]
    for line in prange(n_lines):
        p0 = p_low + line // lines_q
        q0 = q_low + line % lines_q
        transit = np.zeros(n_comp)
        source = np.zeros(n_comp)
        attenuation = np.zeros(n_comp)
        escape = np.zeros(n_comp)
        absorbed = np.zeros(n_comp)  # 1 - attenuation: the share of the energy in transit deposited
        kept = np.zeros(n_comp)  # 1 - escape: the share of the voxel's own release deposited
        last_density = -1.0  # no density yet: the first voxel computes its attenuation
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
            here = releasing[k, j, i]
            if here == 0 and carrying == 0:
                continue  # nothing released yet on this line and nothing in transit
            density = eta[k, j, i]
            if density != last_density:
                last_density = density
                for c in range(n_comp):
                    tau = rates[c] * density * step_cm
                    if tau > 1e-6:
                        attenuation[c] = np.exp(-tau)
                        escape[c] = (1.0 - attenuation[c]) / tau
                    else:
                        attenuation[c] = 1.0 - tau
                        escape[c] = 1.0 - 0.5 * tau
                    absorbed[c] = 1.0 - attenuation[c]
                    kept[c] = 1.0 - escape[c]
            if here == 0:  # energy in transit only (most of the grid, outside the field)
                deposit = 0.0
                for c in range(n_comp):
                    deposit += transit[c] * absorbed[c]
                out[k, j, i] += deposit
                for c in range(n_comp):
                    transit[c] = transit[c] * attenuation[c]
                continue
            # Each component's source, summed over the sources in their order (loops over the
            # components innermost: contiguous, vectorisable).
            for c in range(n_comp):
                source[c] = 0.0
            for s in range(n_sources):
                value = sources[k, j, i, s]
                for c in range(n_comp):
                    source[c] += value * amplitudes[s, c]
            deposit = 0.0
            for c in range(n_comp):
                deposit += transit[c] * absorbed[c] + source[c] * kept[c]
            carrying = 0
            for c in range(n_comp):
                transit[c] = transit[c] * attenuation[c] + source[c] * escape[c]
                if transit[c] != 0.0:
                    carrying = 1
            out[k, j, i] += deposit


def collapsed_cone(released_mev, electron_density, spacing_mm, directions_zyx, amplitudes, rates_per_cm, out=None, *,
                   local_mev=None, local_amplitudes=None):
    """Energy deposited per voxel (MeV) from energy released per voxel (MeV).

    Parameters
    ----------
    released_mev : (nz, ny, nx) float64, or a stack of sources (nz, ny, nx, n_sources)
    electron_density : (nz, ny, nx) float64, relative to water (scales distances)
    spacing_mm : (3,) voxel size (z, y, x)
    directions_zyx : (n_dir, 3) unit vectors of the cone axes (patient frame)
    amplitudes : (n_dir, K) energy fraction per exponential component and cone; with a stack
        (n_dir, n_sources, K), one table per source on the same rates
    rates_per_cm : (n_dir, K) attenuation rate of each component in water (1/cm)
    out : (nz, ny, nx) float64 added to, or None (a new array)
    local_mev, local_amplitudes : optional further source (nz, ny, nx) and its (n_dir, K)
        amplitudes on the same rates, appended to the stack (module docstring)
    """
    eta = np.ascontiguousarray(electron_density, dtype=np.float64)
    stack, amplitudes, rates_per_cm = source_stack(released_mev, amplitudes, rates_per_cm, eta.shape, directions_zyx,
                                                   local_mev=local_mev, local_amplitudes=local_amplitudes)
    stack = np.ascontiguousarray(stack, dtype=np.float64)
    releasing = releasing_voxels(stack)
    directions_zyx = np.asarray(directions_zyx, dtype=np.float64)
    if out is None:
        out = np.zeros(eta.shape)
    for m in range(directions_zyx.shape[0]):
        active = active_components(amplitudes[m])
        dominant, sign, others, offsets, step_mm = line_offsets(directions_zyx[m], spacing_mm, eta.shape)
        _one_direction(stack, releasing, eta, dominant, sign, others, offsets, step_mm / 10.0,
                       np.ascontiguousarray(amplitudes[m][:, active]), np.ascontiguousarray(rates_per_cm[m][active]),
                       out)
    return out


def releasing_voxels(stack):
    """1 (uint8) where some source of the stack (nz, ny, nx, n_sources) is not zero."""
    return np.ascontiguousarray(np.any(stack != 0.0, axis=3), dtype=np.uint8)


def active_components(amplitudes):
    """The components (columns of one direction's (n_sources, K) table) some source uses: the
    others are padding (the kernel's zenith bins use different rates) and are skipped."""
    return np.flatnonzero(np.any(np.asarray(amplitudes) != 0.0, axis=0))


def source_stack(released_mev, amplitudes, rates_per_cm, shape, directions_zyx, *, local_mev=None,
                 local_amplitudes=None):
    """The sources as a stack (nz, ny, nx, n_sources) with amplitudes (n_dir, n_sources, K) and
    rates (n_dir, K), checked; a single field becomes a stack of one (a view, no copy) and
    ``local_mev`` is appended. ``released_mev`` may be a device array (CUDA twin) when it is
    the only source."""
    amplitudes = np.asarray(amplitudes, dtype=np.float64)
    rates_per_cm = np.asarray(rates_per_cm, dtype=np.float64)
    n_dir = len(directions_zyx)
    stacked = len(released_mev.shape) == 4
    if tuple(released_mev.shape[:3]) != tuple(shape) or len(released_mev.shape) not in (3, 4):
        raise ValueError(f"released_mev {tuple(released_mev.shape)} and electron_density {tuple(shape)} differ in shape")
    expected = (n_dir, released_mev.shape[3], rates_per_cm.shape[-1]) if stacked else rates_per_cm.shape
    if rates_per_cm.ndim != 2 or rates_per_cm.shape[0] != n_dir or amplitudes.shape != expected:
        raise ValueError("amplitudes must be (n_directions, n_components), or (n_directions, n_sources, n_components) "
                         "with a stack of sources, and rates_per_cm (n_directions, n_components)")
    if (local_mev is None) != (local_amplitudes is None):
        raise ValueError("local_mev and local_amplitudes go together")
    if not stacked:
        amplitudes = amplitudes[:, None, :]
    if local_mev is None:
        return (released_mev.reshape(tuple(shape) + (1,)) if not stacked else released_mev), amplitudes, rates_per_cm
    local_amplitudes = np.asarray(local_amplitudes, dtype=np.float64)
    if local_amplitudes.shape != rates_per_cm.shape:
        raise ValueError(f"local_amplitudes {local_amplitudes.shape} must match rates_per_cm {rates_per_cm.shape}")
    if tuple(local_mev.shape) != tuple(shape):
        raise ValueError(f"local_mev {tuple(local_mev.shape)} and released_mev {tuple(shape)} differ in shape")
    released = released_mev.copy_to_host() if hasattr(released_mev, "copy_to_host") else np.asarray(released_mev)
    local = local_mev.copy_to_host() if hasattr(local_mev, "copy_to_host") else np.asarray(local_mev)
    stack = np.concatenate([released.reshape(tuple(shape) + (-1,)), local.reshape(tuple(shape) + (1,))], axis=3)
    return stack, np.concatenate([amplitudes, local_amplitudes[:, None, :]], axis=1), rates_per_cm
