"""Superposition restricted to where a beam's energy goes: the same dose (to rounding), less grid.

The collapsed-cone transport of :mod:`kernels.superposition_cpu` sweeps every line of the
whole grid for every cone direction, although energy is released only inside the beam's
divergent field and, along each line, travels only downstream of it. Here:

* TERMA is computed on the sub-box the field's rays cross (:func:`field_box`): every voxel a
  ray from the source through the fluence map can reach, so each voxel's radiological path
  from the source lies inside the box and its released energy is the whole grid's;
* for each cone direction the transport runs only on the lines that pass through the
  released energy, from the first released voxel to the far edge of the grid, with the
  lines anchored where the whole grid's lines lie (:func:`anchored_offsets`): the voxels,
  their order and the arithmetic are the whole grid's, and upstream of the released energy
  nothing is in transit, so nothing is lost anywhere (no scatter reach, no tolerance: the
  dose equals :func:`kernels.engine.superposition_dose`'s, tested to the last bit).

Why not a crop to the field plus the kernel's scatter reach: the point kernel (EDKnrc,
``edk_water_mohan6.npz``) deposits 10 % of its energy beyond 35 cm and 5 % beyond 45 cm
(scattered photons), more than a spine phantom's size; truncating the lines 20-100 mm past
the field saved at most 20 % of the time for 0.05-0.6 % of the maximum dose lost (T10 case,
5 mm grid), and a crop whose lines are not the whole grid's (the engine run on a sub-grid)
moves the collapsed-cone ray pattern and changes the dose by 0.8-4 % of the maximum.

Nothing here changes the physics: the kernels called are the engine's own (``released_energy``
and the cone transport of one direction), and :func:`superposition_dose_in_region` mirrors the
engine's steps (kernel hardening and tilting, media), so a change there must be mirrored here: the tests
compare both for each of the engine's paths (bit for bit on grids whose origin and spacing are
binary fractions; otherwise the sub-box's voxel positions, rebuilt from its corner, differ in
the last bits: 4e-16 of the maximum). Only the voxels visited change.
"""

from __future__ import annotations

import numpy as np

from .beam_model import BeamModel
from .engine import blurred_fluence, cone_sources, dose_from_deposited, ray_tilt, released_energy
from .superposition_cpu import _one_direction, active_components, line_offsets, releasing_voxels, source_stack

__all__ = ["field_box", "support_box", "anchored_offsets", "downstream_box", "collapsed_cone_downstream",
           "superposition_dose_in_region", "dose_from_deposited"]


def field_box(shape, origin_mm, spacing_mm, source_mm, axis, u, v, sad_mm, fluence, fluence_origin_mm,
              fluence_spacing_mm):
    """Index slices of the smallest sub-box holding every voxel the beam's rays can reach.

    A voxel is kept when its centre projects onto the isocentre plane within the fluence
    map's non-zero pixels widened by three times the farthest a point within a half-diagonal
    of the centre can project from it: once for the sub-points TERMA samples in a voxel, the
    rest for the voxels the ray from the source to a kept voxel's centre crosses, so that ray
    lies in the box and each kept voxel's radiological path is the whole grid's.

    ``fluence`` is the map after :func:`kernels.engine.blurred_fluence`; returns ``None`` when
    it is zero everywhere (the beam releases nothing).
    """
    rows, cols = np.nonzero(np.asarray(fluence))
    if rows.size == 0:
        return None
    spacing = np.asarray(spacing_mm, float)
    v_low = fluence_origin_mm[0] + (rows.min() - 0.5) * fluence_spacing_mm[0]
    v_high = fluence_origin_mm[0] + (rows.max() + 0.5) * fluence_spacing_mm[0]
    u_low = fluence_origin_mm[1] + (cols.min() - 0.5) * fluence_spacing_mm[1]
    u_high = fluence_origin_mm[1] + (cols.max() + 0.5) * fluence_spacing_mm[1]
    half_diagonal = 0.5 * float(np.linalg.norm(spacing))
    axes = [np.asarray(origin_mm[a], float) + spacing[a] * np.arange(shape[a]) for a in range(3)]
    y = axes[1][:, None] - source_mm[1]
    x = axes[2][None, :] - source_mm[2]
    low = np.array(shape, np.int64)
    high = np.full(3, -1, np.int64)
    for k, z in enumerate(axes[0] - source_mm[0]):  # one slice at a time: no grid-sized temporaries
        depth = z * axis[0] + y * axis[1] + x * axis[2]
        ahead = depth > half_diagonal
        safe = np.where(ahead, depth, 1.0)
        a = (z * u[0] + y * u[1] + x * u[2]) * sad_mm / safe
        b = (z * v[0] + y * v[1] + x * v[2]) * sad_mm / safe
        # A point within a half-diagonal of the centre projects within this of the centre's
        # projection (the lateral shift, and the depth change scaling the projection itself).
        near = half_diagonal / np.where(ahead, safe - half_diagonal, 1.0)
        widen = 3.0 * near * (sad_mm + np.maximum(np.abs(a), np.abs(b)))
        inside = ahead & (a >= u_low - widen) & (a <= u_high + widen) & (b >= v_low - widen) & (b <= v_high + widen)
        inside |= np.abs(depth) <= half_diagonal  # beside the source (inside the grid): kept whole
        if inside.any():
            j = np.flatnonzero(inside.any(axis=1))
            i = np.flatnonzero(inside.any(axis=0))
            low = np.minimum(low, [k, j[0], i[0]])
            high = np.maximum(high, [k, j[-1], i[-1]])
    if np.any(high < 0):
        return None
    return tuple(slice(int(a), int(b) + 1) for a, b in zip(low, high))


def support_box(values: np.ndarray):
    """Index slices of the bounding box of the non-zero entries of a 3-D array (None if none)."""
    nonzero = values != 0
    found = []
    for axis in range(3):
        hits = np.flatnonzero(nonzero.any(axis=tuple(a for a in range(3) if a != axis)))
        if hits.size == 0:
            return None
        found.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(found)


def anchored_offsets(offsets: np.ndarray, first_step: int, n_steps: int) -> np.ndarray:
    """A sub-box's line pattern that follows the whole grid's lines.

    ``offsets`` is the whole grid's pattern (:func:`kernels.superposition_cpu.line_offsets`);
    a sub-box whose first swept layer is the whole grid's step ``first_step`` walks
    ``offsets[first_step + s] - offsets[first_step]`` at its step ``s``: each of its lines is
    a piece of one of the whole grid's lines.

    Examples
    --------
    >>> import numpy as np
    >>> anchored_offsets(np.array([[0, 0], [0, 1], [1, 1], [1, 2]]), 1, 3).tolist()
    [[0, 0], [1, 0], [1, 1]]
    """
    return np.ascontiguousarray(offsets[first_step:first_step + n_steps] - offsets[first_step])


def downstream_box(support, shape, dominant, sign, others, offsets):
    """The sub-box one cone direction's energy can reach, and its anchored line pattern.

    Along the swept (dominant) axis it runs from the support's first layer (upstream of it
    nothing is in transit) to the grid's far edge; across, it holds the support widened by the
    lines' whole drift from there to the edge (lines are monotone, so none leaves and comes
    back). Returns ``(slices, offsets)``.
    """
    n = shape[dominant]
    low = [s.start for s in support]
    high = [s.stop for s in support]
    first = low[dominant] if sign > 0 else n - high[dominant]  # the whole grid's step of the support's first layer
    box = [None, None, None]
    box[dominant] = slice(low[dominant], n) if sign > 0 else slice(0, high[dominant])
    drift = offsets[n - 1] - offsets[first]
    for column, axis in enumerate(others):
        box[axis] = slice(max(0, low[axis] + min(0, int(drift[column]))),
                          min(shape[axis], high[axis] + max(0, int(drift[column]))))
    return tuple(box), anchored_offsets(offsets, first, n - first)


def collapsed_cone_downstream(released_mev, electron_density, spacing_mm, directions_zyx, amplitudes, rates_per_cm,
                              out=None, *, local_mev=None, local_amplitudes=None, support=None):
    """:func:`kernels.superposition_cpu.collapsed_cone` visiting only the lines that carry energy.

    Same arguments and result; ``support``: slices holding every non-zero voxel of the
    sources (default found from them). The deposit equals the whole grid's to the last bit:
    the voxels, their order along each line and the arithmetic are the same, and the lines
    and steps skipped carry nothing.
    """
    eta = np.ascontiguousarray(electron_density, dtype=np.float64)
    stack, amplitudes, rates_per_cm = source_stack(np.asarray(released_mev, dtype=np.float64), amplitudes, rates_per_cm,
                                                   eta.shape, directions_zyx, local_mev=local_mev,
                                                   local_amplitudes=local_amplitudes)
    stack = np.ascontiguousarray(stack)
    if out is None:
        out = np.zeros(eta.shape)
    elif out.shape != eta.shape:
        raise ValueError(f"out {out.shape} and released_mev {eta.shape} differ in shape")
    releasing = releasing_voxels(stack)
    if support is None:
        support = support_box(releasing)
    if support is None:
        return out
    shape = eta.shape
    for m in range(len(directions_zyx)):
        active = active_components(amplitudes[m])
        dominant, sign, others, offsets, step_mm = line_offsets(directions_zyx[m], spacing_mm, shape)
        box, pattern = downstream_box(support, shape, dominant, sign, others, offsets)
        _one_direction(stack[box], releasing[box], eta[box], dominant, sign, others, pattern, step_mm / 10.0,
                       np.ascontiguousarray(amplitudes[m][:, active]), np.ascontiguousarray(rates_per_cm[m][active]),
                       out[box])
    return out


def superposition_dose_in_region(density, electron_density, origin_mm, spacing_mm, source_mm, axis, u, v, fluence,
                                 fluence_origin_mm, fluence_spacing_mm, model: BeamModel, *, subsamples: int = 3,
                                 n_azimuth: int | None = None, source_axis_distance_mm: float | None = None,
                                 medium=None, media=(), deposited=None):
    """:func:`kernels.engine.superposition_dose` (CPU) computed only where the beam's energy goes.

    Same arguments (the CPU backend); ``deposited``, when given, receives the deposited
    energy (added to) and no dose is formed: several beams then share one array and one
    conversion (:func:`dose_from_deposited`). Returns ``(dose_gy, deposited_mev)``, the dose
    ``None`` when ``deposited`` is given. Each step mirrors the engine's: TERMA on
    :func:`field_box`, the transport by :func:`collapsed_cone_downstream`; the tests compare
    the two to the last bit, so a change to the engine that this mirror misses fails there.
    """
    if n_azimuth is not None and n_azimuth < 3:  # refused before any work, also for a beam that releases nothing
        raise ValueError(f"n_azimuth must be >= 3, got {n_azimuth}")
    eta = np.ascontiguousarray(electron_density, dtype=np.float64)
    out = np.zeros(eta.shape) if deposited is None else deposited
    sad_mm = float(model.source_axis_distance_mm if source_axis_distance_mm is None else source_axis_distance_mm)
    source_mm, axis, u, v = (np.asarray(a, float) for a in (source_mm, axis, u, v))
    spacing = np.asarray(spacing_mm, float)
    box = field_box(eta.shape, origin_mm, spacing, source_mm, axis, u, v, sad_mm,
                    blurred_fluence(fluence, fluence_spacing_mm, model), fluence_origin_mm, fluence_spacing_mm)
    if box is not None:
        hardening = model.kernel_hardening  # as the engine decides
        corner = np.asarray(origin_mm, float) + spacing * np.array([s.start for s in box])
        crop = (lambda a: None if a is None else np.asarray(a)[box])
        found = released_energy(eta[box], corner, spacing, source_mm, axis, u, v, fluence, fluence_origin_mm,
                                fluence_spacing_mm, model, subsamples=subsamples, source_axis_distance_mm=sad_mm,
                                density=crop(density), medium=crop(medium), media=media, with_absorbed=hardening)
        sources = found if hardening else (found,)
        inner = support_box(np.logical_or.reduce([s != 0 for s in sources]))
        if inner is not None:
            support = tuple(slice(b.start + s.start, b.start + s.stop) for b, s in zip(box, inner))
            whole = []
            for part in sources:  # on the whole grid: the transport's lines are the whole grid's
                grid_part = np.zeros(eta.shape)
                grid_part[box] = part
                whole.append(grid_part)
            del found, sources
            directions, amplitudes, rates, _ = model.transport_directions(axis, u, v, n_azimuth=n_azimuth)
            if amplitudes.shape[1] == 1:
                collapsed_cone_downstream(whole[0], eta, spacing, directions, amplitudes[:, 0], rates, out,
                                          support=support)
            else:  # the engine's stack, its tilt from the whole grid's voxel centres
                tilt = ray_tilt(eta.shape, origin_mm, spacing, source_mm, u, v) if model.kernel_tilting else ()
                stack = cone_sources(whole[0], whole[1] if hardening else None, tilt)
                del whole
                collapsed_cone_downstream(stack, eta, spacing, directions, amplitudes, rates, out, support=support)
    if deposited is not None:
        return None, out
    return dose_from_deposited(out, density, spacing), out


