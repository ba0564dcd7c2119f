"""Pencil-beam influence: beamlet dose from radiological depth and lateral offset (CPU, Numba).

The beamlet kernel ``table[depth, v, u]`` is the dose per unit fluence of one square beamlet
in water, computed once with the collapsed-cone engine (so both engines agree in water),
with the inverse-square factor divided out and lateral positions projected to the
isocentre plane (:func:`beamlet_table`). For a voxel at radiological depth d whose ray from
the source crosses the isocentre plane at (a, b), beamlet j at (a_j, b_j) gives

    value = fluence_for_unit_weight * (SAD / t)^2 * table(d, b - b_j, a - a_j)

with t the voxel's distance from the source along the beam axis.

Lateral heterogeneity (lung). ``eta`` is each voxel's effective relative electron density
(:func:`planner.radiotherapy.influence.lateral_scaling`). Where eta < 1 the dose spread
around the beamlet is stretched by 1/eta (O'Connor's density-scaling theorem, applied
laterally: in a medium of eta times water's electron density every length of the dose
spread is 1/eta times water's), but the beamlet's own square is not, so the table cannot
simply be stretched. With N the dose of a narrow beamlet (one lateral sample wide) and G its
cumulative sum over both lateral axes (:func:`cumulative_table`), a beamlet of width w in
that medium gives

    table_eta(dv, du) = sum of N over the offsets eta (dv +- w/2) x eta (du +- w/2)
                      = G(eta (dv + w/2), .) - G(eta (dv - w/2), .) - ... (four corners)

which keeps the beamlet's energy and at eta = 1 is the table's own beamlet (the same sum; the
interpolation differs within a sample of the beamlet's edge). So a small field in lung loses
its lateral electron equilibrium, as it does in reality. Above water density (bone) the
kernel keeps its water shape: there the radiological depth carries the heterogeneity (and
every voxel of eta >= 1 takes the one-lookup path).

An entry is kept when ``scale * value >= cutoff * eta^2`` (``cutoff`` absolute, Gy per unit
weight; eta^2 = 1 in water): a beamlet spread over 1/eta^2 the area has values eta^2 lower,
so this keeps about the same fraction of its energy as in water
(:func:`planner.radiotherapy.influence.kept_energy_of`); in lung a beamlet has more, smaller
entries. Which beamlets can reach the cut-off is bounded first from the table's outer radial
envelope (:func:`kernel_envelopes`), so lookups outside a voxel's footprint are skipped.

The matrix is built in CSR form in two passes: count the entries of every voxel (so memory
is known before anything is allocated), then fill them. Both passes call the same function
and keep exactly the same entries: the count pass counts without a lookup the beamlets
inside the radius where the inner envelope passes the cut-off by a margin, which the fill
pass's lookups then keep. In water a voxel's interpolation weights are shared by all its
beamlets when the pitch is a whole number of table samples (the table lookup's products, so
the same values). ``fill_entries`` writes one beam's entries of row
``r`` from ``starts[r]`` on, its columns shifted by ``column_offset``: the beams of a set
fill one shared CSR matrix directly.

The per-voxel functions (:func:`table_lookup` through ``_voxel_entries``) take scalars and
arrays made by their callers and call ``math``, never NumPy: the CUDA twin
(:mod:`kernels.pencil_beam_cuda`) compiles these same functions as its device functions,
so both twins run one body per voxel.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._numba import CPU, CPU_PARALLEL, prange

__all__ = ["count_entries", "fill_entries", "table_lookup", "radial_envelope", "kernel_envelopes", "cumulative_table",
           "footprint_mm", "stretched_lookup"]


def radial_envelope(table: np.ndarray) -> np.ndarray:
    """Largest table value at or beyond each lateral radius, per depth sample.

    ``envelope[k, m]`` is the maximum of ``table[k]`` over the lateral samples at least ``m``
    lateral steps from the axis (0 beyond the table), so a bilinear lookup at radius ``r``
    steps, whose four samples lie at least ``r - sqrt(2)`` steps out, never exceeds
    ``envelope[k, floor(r - sqrt(2))]``.

    Parameters
    ----------
    table : numpy.ndarray
        Beamlet table (n_depth, n_v, n_u), >= 0, centred laterally.

    Returns
    -------
    numpy.ndarray
        float64 (n_depth, n_bins), non-increasing along axis 1, last column 0.

    Examples
    --------
    >>> table = np.zeros((1, 3, 3)); table[0, 1, 1] = 2.0; table[0, 0, 1] = 1.0
    >>> radial_envelope(table)
    array([[2., 1., 0.]])
    """
    table = np.asarray(table, dtype=np.float64)
    n_depth, n_v, n_u = table.shape
    v = np.arange(n_v) - (n_v - 1) / 2
    u = np.arange(n_u) - (n_u - 1) / 2
    bins = np.floor(np.hypot(v[:, None], u[None, :])).astype(np.int64).ravel()
    n_bins = int(bins.max()) + 2
    envelope = np.zeros((n_depth, n_bins))
    np.maximum.at(envelope, (slice(None), bins), table.reshape(n_depth, -1))
    # Maximum over every bin at or beyond m: a running maximum from the outside in.
    return np.ascontiguousarray(np.maximum.accumulate(envelope[:, ::-1], axis=1)[:, ::-1])


def kernel_envelopes(table: np.ndarray) -> np.ndarray:
    """The table's outer and inner radial envelopes, stacked: the ``envelope`` of the kernels.

    ``[0]`` is :func:`radial_envelope`; ``[1, k, m]`` is the minimum of ``table[k]`` over the
    samples less than ``m + 1`` lateral steps from the axis (non-increasing in m), so a
    bilinear lookup at radius ``r`` steps, whose four samples lie within ``r + sqrt(2)``, is at
    least ``[1, k, floor(r + 1.5)]``: the count pass counts the beamlets that surely pass the
    cut-off without a lookup.

    Parameters
    ----------
    table : numpy.ndarray
        Beamlet table (n_depth, n_v, n_u), >= 0, centred laterally.

    Returns
    -------
    numpy.ndarray
        float64 (2, n_depth, n_bins).

    Examples
    --------
    >>> table = np.zeros((1, 3, 3)); table[0, 1, 1] = 2.0; table[0, 0, 1] = 1.0
    >>> kernel_envelopes(table)[1]
    array([[2., 0., 0.]])
    """
    outer = radial_envelope(table)
    table = np.asarray(table, dtype=np.float64)
    n_depth, n_v, n_u = table.shape
    v = np.arange(n_v) - (n_v - 1) / 2
    u = np.arange(n_u) - (n_u - 1) / 2
    bins = np.floor(np.hypot(v[:, None], u[None, :])).astype(np.int64).ravel()
    inner = np.full(outer.shape, np.inf)
    np.minimum.at(inner, (slice(None), bins), table.reshape(n_depth, -1))
    inner = np.minimum.accumulate(inner, axis=1)
    return np.ascontiguousarray(np.stack([outer, inner]))


def cumulative_table(narrow: np.ndarray) -> np.ndarray:
    """Cumulative sum of a narrow-beamlet table over both lateral axes, on the cell edges.

    ``cumulative[k, i, j]`` is the sum of ``narrow[k, :i, :j]``: sample i of the table covers
    the cell between edges i and i + 1, edge i lying ``(i - (n - 1) / 2 - 1/2)`` lateral steps
    from the axis. Interpolated linearly, it spreads each sample evenly over its cell.

    Parameters
    ----------
    narrow : numpy.ndarray
        Table of a beamlet one lateral step wide (n_depth, n_v, n_u), >= 0.

    Returns
    -------
    numpy.ndarray
        float64 (n_depth, n_v + 1, n_u + 1).

    Examples
    --------
    >>> cumulative_table(np.ones((1, 2, 2)))[0]
    array([[0., 0., 0.],
           [0., 1., 2.],
           [0., 2., 4.]])
    """
    narrow = np.asarray(narrow, dtype=np.float64)
    n_depth, n_v, n_u = narrow.shape
    out = np.zeros((n_depth, n_v + 1, n_u + 1))
    out[:, 1:, 1:] = np.cumsum(np.cumsum(narrow, axis=1), axis=2)
    return out


@njit(**CPU)
def _trilinear(array, d0, v0, u0, wd, wv, wu):
    """Trilinear interpolation in the cell whose low corner is (d0, v0, u0)."""
    total = 0.0
    for dd in range(2):
        w_d = wd if dd else 1.0 - wd
        for vv in range(2):
            w_v = wv if vv else 1.0 - wv
            for uu in range(2):
                w_u = wu if uu else 1.0 - wu
                total += w_d * w_v * w_u * array[d0 + dd, v0 + vv, u0 + uu]
    return total


@njit(**CPU)
def table_lookup(table, depth_step_mm, lateral_step_mm, depth_mm, dv_mm, du_mm):
    """Linear in depth, bilinear laterally; 0 outside the table's lateral extent."""
    n_depth, n_v, n_u = table.shape
    cv = (n_v - 1) / 2.0
    cu = (n_u - 1) / 2.0
    fv = dv_mm / lateral_step_mm + cv
    fu = du_mm / lateral_step_mm + cu
    if fv < 0.0 or fu < 0.0 or fv > n_v - 1 or fu > n_u - 1:
        return 0.0
    # Depth samples sit at voxel centres (k + 0.5) * step; clamp at both ends.
    fd = depth_mm / depth_step_mm - 0.5
    if fd < 0.0:
        fd = 0.0
    if fd > n_depth - 1:
        fd = n_depth - 1.0
    d0 = min(int(fd), n_depth - 2)
    v0 = min(int(fv), n_v - 2)
    u0 = min(int(fu), n_u - 2)
    wd, wv, wu = fd - d0, fv - v0, fu - u0
    return _trilinear(table, d0, v0, u0, wd, wv, wu)


@njit(**CPU)
def _depth_sample(n_depth, depth_step_mm, depth_mm):
    # Depth samples sit at voxel centres (k + 0.5) * step; clamp at both ends.
    fd = depth_mm / depth_step_mm - 0.5
    if fd < 0.0:
        fd = 0.0
    if fd > n_depth - 1:
        fd = n_depth - 1.0
    d0 = min(int(fd), n_depth - 2)
    return d0, fd - d0


@njit(**CPU)
def _cumulative_at(cumulative, d0, wd, lateral_step_mm, v_mm, u_mm):
    """The cumulative table at lateral position (v, u) (mm), linear in depth and laterally,
    held at its edge values beyond the table (0 below, the totals above)."""
    n_v = cumulative.shape[1] - 1
    n_u = cumulative.shape[2] - 1
    fv = v_mm / lateral_step_mm + (n_v - 1) / 2.0 + 0.5
    fu = u_mm / lateral_step_mm + (n_u - 1) / 2.0 + 0.5
    fv = min(max(fv, 0.0), float(n_v))
    fu = min(max(fu, 0.0), float(n_u))
    v0 = min(int(fv), n_v - 1)
    u0 = min(int(fu), n_u - 1)
    wv, wu = fv - v0, fu - u0
    return _trilinear(cumulative, d0, v0, u0, wd, wv, wu)


@njit(**CPU)
def stretched_lookup(cumulative, depth_step_mm, lateral_step_mm, depth_mm, dv_mm, du_mm, beamlet_mm, eta):
    """Dose per unit fluence of a ``beamlet_mm`` square beamlet at offset (dv, du) in a medium
    of relative electron density ``eta`` < 1: the narrow beamlet summed over the stretched square."""
    d0, wd = _depth_sample(cumulative.shape[0], depth_step_mm, depth_mm)
    half = 0.5 * beamlet_mm
    v_low, v_high = eta * (dv_mm - half), eta * (dv_mm + half)
    u_low, u_high = eta * (du_mm - half), eta * (du_mm + half)
    return (_cumulative_at(cumulative, d0, wd, lateral_step_mm, v_high, u_high)
            - _cumulative_at(cumulative, d0, wd, lateral_step_mm, v_low, u_high)
            - _cumulative_at(cumulative, d0, wd, lateral_step_mm, v_high, u_low)
            + _cumulative_at(cumulative, d0, wd, lateral_step_mm, v_low, u_low))


@njit(**CPU)
def _first_bin_below(envelope, d0, threshold):
    n_bins = envelope.shape[1]
    for k in range(n_bins):
        if max(envelope[d0, k], envelope[d0 + 1, k]) < threshold:
            return k
    return n_bins - 1


@njit(**CPU)
def _sure_radius_mm(inner, d0, lateral_step_mm, scale, threshold, n_lateral):
    """Radius (mm) within which every lookup of this voxel passes ``threshold`` (-1: none): the
    inner envelope bin M of the last passing one holds the four samples of any radius below
    M - 0.5 steps; M - 1.5 leaves a step for rounding, the margin of 1e-12 the product's."""
    last = -1
    for m in range(min(inner.shape[1], (n_lateral - 1) // 2)):
        if min(inner[d0, m], inner[d0 + 1, m]) * scale >= threshold * (1.0 + 1e-12):
            last = m
        else:
            break
    return (last - 1.5) * lateral_step_mm


@njit(**CPU)
def footprint_mm(envelope, narrow_envelope, depth_step_mm, lateral_step_mm, depth_mm, scale, eta, cutoff, beamlet_mm):
    """Radius (mm, isocentre plane) beyond which no beamlet reaches the cut-off at this voxel.

    Water (eta >= 1): the first envelope bin whose value (on both depth samples the lookup
    blends) times ``scale`` is below ``cutoff``, plus the bilinear stencil's reach
    (sqrt(2) < 1.5 steps) and a step for rounding. Below water density: a stretched value sums
    at most (eta w / step + 2)^2 narrow samples lying at least eta w + 1.5 steps inside the
    stretched offset, each below the narrow envelope there; the radius found so in stretched
    coordinates is divided by eta."""
    d0, _ = _depth_sample(envelope.shape[1], depth_step_mm, depth_mm)
    if eta >= 1.0:
        return (_first_bin_below(envelope[0], d0, cutoff / scale) + 2.5) * lateral_step_mm
    width = eta * beamlet_mm
    cells = (width / lateral_step_mm + 2.0) ** 2
    m = _first_bin_below(narrow_envelope, d0, cutoff * eta * eta / (scale * cells))
    return ((m + 2.5) * lateral_step_mm + width) / eta


@njit(**CPU)
def _lateral_start(offset_mm, lateral_step_mm, n):
    """Integer sample and weight of a lateral offset (the table's bilinear split)."""
    f = offset_mm / lateral_step_mm + (n - 1) / 2.0
    i = int(math.floor(f))
    return i, f - i


@njit(**CPU)
def _regular_stride(pitch, lateral_step):
    """Table samples per beamlet pitch when the pitch is a whole number of them, else 0."""
    ratio = pitch / lateral_step
    stride = int(ratio + 0.5)
    if stride >= 1 and abs(ratio - stride) <= 1e-9 * ratio:
        return stride
    return 0


@njit(**CPU)
def _edge(position_mm, lateral_step_mm, n):
    """Sample and weight of a position on the cumulative table's edges (held at both ends)."""
    f = position_mm / lateral_step_mm + (n - 1) / 2.0 + 0.5
    f = min(max(f, 0.0), float(n))
    i = min(int(f), n - 1)
    return i, f - i


@njit(**CPU)
def _bilinear(cumulative, plane, iv, wv, iu, wu):
    return ((1.0 - wv) * ((1.0 - wu) * cumulative[plane, iv, iu] + wu * cumulative[plane, iv, iu + 1])
            + wv * ((1.0 - wu) * cumulative[plane, iv + 1, iu] + wu * cumulative[plane, iv + 1, iu + 1]))


@njit(**CPU)
def _stretched_entries(a, b, scale, eta, grid_index, grid_origin, pitch, cumulative, d0, wd, lateral_step, threshold,
                       r0, r1, c0, c1, reach2, column_offset, cols, vals, start, write):
    """A voxel below water density: :func:`stretched_lookup` for every beamlet, the depth and each
    beamlet row's edges computed once."""
    n_v = cumulative.shape[1] - 1
    n_u = cumulative.shape[2] - 1
    half = 0.5 * pitch
    count = 0
    for r in range(r0, r1 + 1):
        dv = b - (grid_origin[0] + r * pitch)
        vl, wvl = _edge(eta * (dv - half), lateral_step, n_v)
        vh, wvh = _edge(eta * (dv + half), lateral_step, n_v)
        for c in range(c0, c1 + 1):
            column = grid_index[r, c]
            if column < 0:
                continue
            du = a - (grid_origin[1] + c * pitch)
            if dv * dv + du * du > reach2:
                continue
            ul, wul = _edge(eta * (du - half), lateral_step, n_u)
            uh, wuh = _edge(eta * (du + half), lateral_step, n_u)
            total = 0.0
            for dd in range(2):
                f_d = wd if dd else 1.0 - wd
                plane = d0 + dd
                total += f_d * (_bilinear(cumulative, plane, vh, wvh, uh, wuh) - _bilinear(cumulative, plane, vl, wvl, uh, wuh)
                                - _bilinear(cumulative, plane, vh, wvh, ul, wul) + _bilinear(cumulative, plane, vl, wvl, ul, wul))
            value = scale * total
            if value >= threshold:
                if write:
                    cols[start + count] = column + column_offset
                    vals[start + count] = value
                count += 1
    return count


@njit(**CPU)
def _voxel_entries(a, b, depth, scale, eta, grid_index, grid_origin, pitch, table, envelope, cumulative,
                   narrow_envelope, depth_step, lateral_step, cutoff, column_offset, cols, vals, start, write):
    n_rows, n_cols = grid_index.shape
    n_depth, n_v, n_u = table.shape
    reach = footprint_mm(envelope, narrow_envelope, depth_step, lateral_step, depth, scale, eta, cutoff, pitch)
    c0 = max(int(math.floor((a - reach - grid_origin[1]) / pitch)), 0)
    c1 = min(int(math.ceil((a + reach - grid_origin[1]) / pitch)), n_cols - 1)
    r0 = max(int(math.floor((b - reach - grid_origin[0]) / pitch)), 0)
    r1 = min(int(math.ceil((b + reach - grid_origin[0]) / pitch)), n_rows - 1)
    reach2 = reach * reach
    water = eta >= 1.0
    threshold = cutoff if water else cutoff * eta * eta
    if not water:
        d0, wd = _depth_sample(n_depth, depth_step, depth)
        return _stretched_entries(a, b, scale, eta, grid_index, grid_origin, pitch, cumulative, d0, wd, lateral_step,
                                  threshold, r0, r1, c0, c1, reach2, column_offset, cols, vals, start, write)
    stride = _regular_stride(pitch, lateral_step)
    count = 0
    if stride > 0:
        # Water, beamlets a whole number of table samples apart: every beamlet of this voxel
        # shares the depth and lateral interpolation weights, so they are computed once and
        # each beamlet costs eight reads (the table lookup's arithmetic otherwise).
        d0, wd = _depth_sample(n_depth, depth_step, depth)
        # Counting only: beamlets inside the sure radius pass without a lookup (the fill pass
        # looks them all up and keeps the same ones: they pass by a margin).
        sure = -1.0 if write else _sure_radius_mm(envelope[1], d0, lateral_step, scale, threshold, min(n_v, n_u))
        sure2 = sure * sure if sure > 0.0 else -1.0
        v_first, wv = _lateral_start(b - (grid_origin[0] + r0 * pitch), lateral_step, n_v)
        u_first, wu = _lateral_start(a - (grid_origin[1] + c0 * pitch), lateral_step, n_u)
        k000 = (1.0 - wd) * (1.0 - wv) * (1.0 - wu)
        k001 = (1.0 - wd) * (1.0 - wv) * wu
        k010 = (1.0 - wd) * wv * (1.0 - wu)
        k011 = (1.0 - wd) * wv * wu
        k100 = wd * (1.0 - wv) * (1.0 - wu)
        k101 = wd * (1.0 - wv) * wu
        k110 = wd * wv * (1.0 - wu)
        k111 = wd * wv * wu
        for r in range(r0, r1 + 1):
            dv = b - (grid_origin[0] + r * pitch)
            iv = v_first - (r - r0) * stride
            w_v = wv
            if iv < 0 or iv > n_v - 1 or (iv == n_v - 1 and w_v > 0.0):
                continue
            if iv == n_v - 1:
                iv, w_v = n_v - 2, 1.0
            for c in range(c0, c1 + 1):
                column = grid_index[r, c]
                if column < 0:
                    continue
                du = a - (grid_origin[1] + c * pitch)
                distance2 = dv * dv + du * du
                if distance2 > reach2:
                    continue
                if distance2 < sure2:
                    count += 1
                    continue
                iu = u_first - (c - c0) * stride
                if iu < 0 or iu > n_u - 1 or (iu == n_u - 1 and wu > 0.0):
                    continue
                if iu == n_u - 1 or w_v != wv:
                    # A table edge: the lookup's clamped sample, weights as it computes them.
                    w_u = wu
                    if iu == n_u - 1:
                        iu, w_u = n_u - 2, 1.0
                    total = 0.0
                    for dd in range(2):
                        f_d = wd if dd else 1.0 - wd
                        for vv in range(2):
                            f_v = w_v if vv else 1.0 - w_v
                            for uu in range(2):
                                f_u = w_u if uu else 1.0 - w_u
                                total += f_d * f_v * f_u * table[d0 + dd, iv + vv, iu + uu]
                else:
                    # The lookup's products, in its order ((w_d w_v) w_u) t: the same bits.
                    total = 0.0
                    total += k000 * table[d0, iv, iu]
                    total += k001 * table[d0, iv, iu + 1]
                    total += k010 * table[d0, iv + 1, iu]
                    total += k011 * table[d0, iv + 1, iu + 1]
                    total += k100 * table[d0 + 1, iv, iu]
                    total += k101 * table[d0 + 1, iv, iu + 1]
                    total += k110 * table[d0 + 1, iv + 1, iu]
                    total += k111 * table[d0 + 1, iv + 1, iu + 1]
                value = scale * total
                if value >= threshold:
                    if write:
                        cols[start + count] = column + column_offset
                        vals[start + count] = value
                    count += 1
        return count
    for r in range(r0, r1 + 1):
        dv = b - (grid_origin[0] + r * pitch)
        for c in range(c0, c1 + 1):
            column = grid_index[r, c]
            if column < 0:
                continue
            du = a - (grid_origin[1] + c * pitch)
            if dv * dv + du * du > reach2:
                continue
            value = scale * table_lookup(table, depth_step, lateral_step, depth, dv, du)
            if value >= threshold:
                if write:
                    cols[start + count] = column + column_offset
                    vals[start + count] = value
                count += 1
    return count


@njit(**CPU_PARALLEL)
def count_entries(a, b, depth, scale, eta, grid_index, grid_origin, pitch, table, envelope, cumulative,
                  narrow_envelope, depth_step, lateral_step, cutoff, counts):
    """Number of matrix entries of each voxel (row) for one beam."""
    dummy_cols = np.empty(0, np.int32)
    dummy_vals = np.empty(0, np.float32)
    for row in prange(a.shape[0]):
        counts[row] = _voxel_entries(a[row], b[row], depth[row], scale[row], eta[row], grid_index, grid_origin, pitch,
                                     table, envelope, cumulative, narrow_envelope, depth_step, lateral_step, cutoff, 0,
                                     dummy_cols, dummy_vals, 0, False)


@njit(**CPU_PARALLEL)
def fill_entries(a, b, depth, scale, eta, grid_index, grid_origin, pitch, table, envelope, cumulative, narrow_envelope,
                 depth_step, lateral_step, cutoff, starts, column_offset, indices, data):
    """Write one beam's entries of each row at ``indices/data[starts[row]:]`` (columns + ``column_offset``)."""
    for row in prange(a.shape[0]):
        _voxel_entries(a[row], b[row], depth[row], scale[row], eta[row], grid_index, grid_origin, pitch, table,
                       envelope, cumulative, narrow_envelope, depth_step, lateral_step, cutoff, column_offset, indices,
                       data, starts[row], True)
