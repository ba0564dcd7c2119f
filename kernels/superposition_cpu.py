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
line per direction (lines are independent: parallel over lines, no write conflicts). Each
line walks only its steps inside the grid, chunks of lines share their scratch arrays, and
the beam model's eight components ride in scalars (:func:`_line_eight`): the same operations
in the same order as a per-step walk (deposits identical to the last bit), about 1.4 times
faster than per-line arrays and a bounds test at every step.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._numba import CPU, CPU_PARALLEL, prange

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


@njit(**CPU)
def _attenuation_escape(tau):
    """A voxel's attenuation e^-tau of the energy in transit and escape (1 - e^-tau)/tau of its
    own release (the series below 1e-6, where the quotient loses its digits)."""
    if tau > 1e-6:
        attenuation = math.exp(-tau)  # math, not NumPy: the CUDA twin compiles this function too
        return attenuation, (1.0 - attenuation) / tau
    return 1.0 - tau, 1.0 - 0.5 * tau


@njit(**CPU)
def _voxel(dominant, swap, d, p, q):
    """Index (z, y, x) of step ``d`` along the dominant axis and ``p``, ``q`` across (``p`` on
    the smaller other axis unless ``swap``): three integers, no index array per line."""
    a, b = (q, p) if swap else (p, q)
    if dominant == 0:
        return d, a, b
    if dominant == 1:
        return a, d, b
    return a, b, d


@njit(**CPU)
def _inside(offsets, column, start, n):
    """First step and one past the last where ``start + offsets[step, column]`` lies in 0..n-1
    (with monotone offsets the steps between lie inside too); (n_dom, n_dom) when none."""
    n_dom = offsets.shape[0]
    first = n_dom
    stop = n_dom
    for step in range(n_dom):
        value = start + offsets[step, column]
        if 0 <= value < n:
            if first == n_dom:
                first = step
            stop = step + 1
    return first, stop


@njit(**CPU)
def _monotone(offsets):
    """True when each column of ``offsets`` never turns (always so from :func:`line_offsets`):
    a line then enters the grid once and leaves it once."""
    for column in range(offsets.shape[1]):
        rising = falling = True
        for step in range(1, offsets.shape[0]):
            change = offsets[step, column] - offsets[step - 1, column]
            rising = rising and change >= 0
            falling = falling and change <= 0
        if not (rising or falling):
            return False
    return True


@njit(**CPU)
def _line(sources, releasing, eta, dominant, sign, swap, checked, offsets, n_p, n_q, p0, q0, first, stop, step_cm,
          amplitudes, rates, out, transit, source, attenuation, escape, absorbed, kept):
    """Transport along one line (steps ``first`` to ``stop``); the last six arguments are
    scratch arrays of n_comp (one set per chunk of lines, not per line)."""
    n_dom = offsets.shape[0]
    n_sources = amplitudes.shape[0]
    n_comp = amplitudes.shape[1]
    for c in range(n_comp):
        transit[c] = 0.0
    last_density = -1.0  # no density yet: the first voxel computes its attenuation
    carrying = False
    for step in range(first, stop):
        p = p0 + offsets[step, 0]
        q = q0 + offsets[step, 1]
        if checked and (p < 0 or p >= n_p or q < 0 or q >= n_q):
            # Outside the grid (offsets that turn only): nothing in transit.
            for c in range(n_comp):
                transit[c] = 0.0
            carrying = False
            continue
        k, j, i = _voxel(dominant, swap, step if sign > 0 else n_dom - 1 - step, p, q)
        here = releasing[k, j, i]
        if here == 0 and not carrying:
            continue  # nothing released yet on this line and nothing in transit
        density = eta[k, j, i]
        if density != last_density:
            last_density = density
            for c in range(n_comp):
                attenuation[c], escape[c] = _attenuation_escape(rates[c] * density * step_cm)
                absorbed[c] = 1.0 - attenuation[c]  # the share of the energy in transit deposited
                kept[c] = 1.0 - escape[c]  # the share of the voxel's own release deposited
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
        carrying = False
        for c in range(n_comp):
            transit[c] = transit[c] * attenuation[c] + source[c] * escape[c]
            if transit[c] != 0.0:
                carrying = True
        out[k, j, i] += deposit


@njit(**CPU)
def _line_eight(sources, releasing, eta, dominant, sign, swap, checked, offsets, n_p, n_q, p0, q0, first, stop,
                step_cm, amplitudes, rates, out):
    """:func:`_line` for exactly eight components, held in scalars (registers) instead of
    arrays: the same operations in the same order, the same numbers, about 1.15 times faster."""
    n_dom = offsets.shape[0]
    n_sources = amplitudes.shape[0]
    rate0 = rates[0]
    rate1 = rates[1]
    rate2 = rates[2]
    rate3 = rates[3]
    rate4 = rates[4]
    rate5 = rates[5]
    rate6 = rates[6]
    rate7 = rates[7]
    transit0 = transit1 = transit2 = transit3 = transit4 = transit5 = transit6 = transit7 = 0.0
    attenuation0 = attenuation1 = attenuation2 = attenuation3 = 0.0
    attenuation4 = attenuation5 = attenuation6 = attenuation7 = 0.0
    escape0 = escape1 = escape2 = escape3 = escape4 = escape5 = escape6 = escape7 = 0.0
    absorbed0 = absorbed1 = absorbed2 = absorbed3 = absorbed4 = absorbed5 = absorbed6 = absorbed7 = 0.0
    kept0 = kept1 = kept2 = kept3 = kept4 = kept5 = kept6 = kept7 = 0.0
    last_density = -1.0
    carrying = False
    for step in range(first, stop):
        p = p0 + offsets[step, 0]
        q = q0 + offsets[step, 1]
        if checked and (p < 0 or p >= n_p or q < 0 or q >= n_q):
            transit0 = transit1 = transit2 = transit3 = transit4 = transit5 = transit6 = transit7 = 0.0
            carrying = False
            continue
        k, j, i = _voxel(dominant, swap, step if sign > 0 else n_dom - 1 - step, p, q)
        here = releasing[k, j, i]
        if here == 0 and not carrying:
            continue
        density = eta[k, j, i]
        if density != last_density:
            last_density = density
            attenuation0, escape0 = _attenuation_escape(rate0 * density * step_cm)
            absorbed0, kept0 = 1.0 - attenuation0, 1.0 - escape0
            attenuation1, escape1 = _attenuation_escape(rate1 * density * step_cm)
            absorbed1, kept1 = 1.0 - attenuation1, 1.0 - escape1
            attenuation2, escape2 = _attenuation_escape(rate2 * density * step_cm)
            absorbed2, kept2 = 1.0 - attenuation2, 1.0 - escape2
            attenuation3, escape3 = _attenuation_escape(rate3 * density * step_cm)
            absorbed3, kept3 = 1.0 - attenuation3, 1.0 - escape3
            attenuation4, escape4 = _attenuation_escape(rate4 * density * step_cm)
            absorbed4, kept4 = 1.0 - attenuation4, 1.0 - escape4
            attenuation5, escape5 = _attenuation_escape(rate5 * density * step_cm)
            absorbed5, kept5 = 1.0 - attenuation5, 1.0 - escape5
            attenuation6, escape6 = _attenuation_escape(rate6 * density * step_cm)
            absorbed6, kept6 = 1.0 - attenuation6, 1.0 - escape6
            attenuation7, escape7 = _attenuation_escape(rate7 * density * step_cm)
            absorbed7, kept7 = 1.0 - attenuation7, 1.0 - escape7
        if here == 0:
            deposit = 0.0
            deposit += transit0 * absorbed0
            deposit += transit1 * absorbed1
            deposit += transit2 * absorbed2
            deposit += transit3 * absorbed3
            deposit += transit4 * absorbed4
            deposit += transit5 * absorbed5
            deposit += transit6 * absorbed6
            deposit += transit7 * absorbed7
            out[k, j, i] += deposit
            transit0 = transit0 * attenuation0
            transit1 = transit1 * attenuation1
            transit2 = transit2 * attenuation2
            transit3 = transit3 * attenuation3
            transit4 = transit4 * attenuation4
            transit5 = transit5 * attenuation5
            transit6 = transit6 * attenuation6
            transit7 = transit7 * attenuation7
            continue
        source0 = source1 = source2 = source3 = source4 = source5 = source6 = source7 = 0.0
        for s in range(n_sources):
            value = sources[k, j, i, s]
            source0 += value * amplitudes[s, 0]
            source1 += value * amplitudes[s, 1]
            source2 += value * amplitudes[s, 2]
            source3 += value * amplitudes[s, 3]
            source4 += value * amplitudes[s, 4]
            source5 += value * amplitudes[s, 5]
            source6 += value * amplitudes[s, 6]
            source7 += value * amplitudes[s, 7]
        deposit = 0.0
        deposit += transit0 * absorbed0 + source0 * kept0
        deposit += transit1 * absorbed1 + source1 * kept1
        deposit += transit2 * absorbed2 + source2 * kept2
        deposit += transit3 * absorbed3 + source3 * kept3
        deposit += transit4 * absorbed4 + source4 * kept4
        deposit += transit5 * absorbed5 + source5 * kept5
        deposit += transit6 * absorbed6 + source6 * kept6
        deposit += transit7 * absorbed7 + source7 * kept7
        transit0 = transit0 * attenuation0 + source0 * escape0
        transit1 = transit1 * attenuation1 + source1 * escape1
        transit2 = transit2 * attenuation2 + source2 * escape2
        transit3 = transit3 * attenuation3 + source3 * escape3
        transit4 = transit4 * attenuation4 + source4 * escape4
        transit5 = transit5 * attenuation5 + source5 * escape5
        transit6 = transit6 * attenuation6 + source6 * escape6
        transit7 = transit7 * attenuation7 + source7 * escape7
        carrying = (transit0 != 0.0 or transit1 != 0.0 or transit2 != 0.0 or transit3 != 0.0
                    or transit4 != 0.0 or transit5 != 0.0 or transit6 != 0.0 or transit7 != 0.0)
        out[k, j, i] += deposit


@njit(**CPU_PARALLEL)
def _one_direction(sources, releasing, eta, dominant, sign, others, offsets, step_cm, amplitudes, rates, out):
    """Transport along every line of one direction: ``sources`` (nz, ny, nx, n_sources),
    ``releasing`` (nz, ny, nx) uint8, 1 where some source is not zero (:func:`releasing_voxels`:
    a voxel with energy in transit only never touches the larger stack), ``amplitudes``
    (n_sources, K) and ``rates`` (K,) of this direction's active components.

    Each line walks only its steps inside the grid (found once per direction: lines drifting
    across the grid spend most of their steps outside it), chunks of lines share their scratch
    arrays, and eight components (the beam model's) ride in scalars (:func:`_line_eight`);
    every voxel sees the same operations in the same order as a per-step walk."""
    shape = eta.shape
    n_p = shape[others[0]]
    n_q = shape[others[1]]
    p_low = -offsets[:, 0].max()
    p_high = n_p - 1 - offsets[:, 0].min()
    q_low = -offsets[:, 1].max()
    q_high = n_q - 1 - offsets[:, 1].min()
    lines_p = p_high - p_low + 1
    lines_q = q_high - q_low + 1
    n_lines = lines_p * lines_q
    n_comp = amplitudes.shape[1]
    swap = others[0] > others[1]
    checked = not _monotone(offsets)  # turning offsets: every step checks the grid's bounds
    p_inside = np.empty((lines_p, 2), np.int64)
    q_inside = np.empty((lines_q, 2), np.int64)
    for line_p in range(lines_p):
        first, stop = (0, offsets.shape[0]) if checked else _inside(offsets, 0, p_low + line_p, n_p)
        p_inside[line_p, 0], p_inside[line_p, 1] = first, stop
    for line_q in range(lines_q):
        first, stop = (0, offsets.shape[0]) if checked else _inside(offsets, 1, q_low + line_q, n_q)
        q_inside[line_q, 0], q_inside[line_q, 1] = first, stop
    n_chunks = min(n_lines, 256)
    for chunk in prange(n_chunks):
        transit = np.zeros(n_comp)
        source = np.zeros(n_comp)
        attenuation = np.zeros(n_comp)
        escape = np.zeros(n_comp)
        absorbed = np.zeros(n_comp)
        kept = np.zeros(n_comp)
        for line in range(chunk * n_lines // n_chunks, (chunk + 1) * n_lines // n_chunks):
            line_p = line // lines_q
            line_q = line % lines_q
            first = max(p_inside[line_p, 0], q_inside[line_q, 0])
            stop = min(p_inside[line_p, 1], q_inside[line_q, 1])
            if n_comp == 8:
                _line_eight(sources, releasing, eta, dominant, sign, swap, checked, offsets, n_p, n_q, p_low + line_p,
                            q_low + line_q, first, stop, step_cm, amplitudes, rates, out)
            else:
                _line(sources, releasing, eta, dominant, sign, swap, checked, offsets, n_p, n_q, p_low + line_p,
                      q_low + line_q, first, stop, step_cm, amplitudes, rates, out, transit, source, attenuation,
                      escape, absorbed, kept)


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
