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

import mmap

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

    Parameters
    ----------
    shape : tuple of int
        The grid's (nz, ny, nx).
    origin_mm, spacing_mm : array_like of float, shape (3,)
        Centre of voxel (0, 0, 0) and the voxel size, (z, y, x) mm.
    source_mm : array_like of float, shape (3,)
        The beam's source, (z, y, x) mm.
    axis, u, v : array_like of float, shape (3,)
        The beam's orthonormal frame (z, y, x): ``axis`` from the source to the isocentre,
        ``u`` and ``v`` the fluence map's column and row directions.
    sad_mm : float
        Distance from the source to the plane the fluence map lies on (mm).
    fluence : numpy.ndarray, shape (nv, nu)
        The map after :func:`kernels.engine.blurred_fluence` (only where it is non-zero
        counts).
    fluence_origin_mm, fluence_spacing_mm : array_like of float, shape (2,)
        Centre of pixel (0, 0) and the pixel size on that plane, (v, u) mm.

    Returns
    -------
    tuple of slice or None
        Three index slices (z, y, x) of the box, or ``None`` when the map is zero everywhere
        or no voxel is reached (the beam releases nothing).
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
    """Index slices of the bounding box of the non-zero entries of a 3-D array.

    Parameters
    ----------
    values : numpy.ndarray, shape (nz, ny, nx)
        Any 3-D array (e.g. released energy in MeV, or a boolean mask).

    Returns
    -------
    tuple of slice or None
        Three slices (z, y, x), each from the first to one past the last index holding a
        non-zero entry; ``None`` when every entry is zero.

    Examples
    --------
    >>> import numpy as np
    >>> values = np.zeros((3, 4, 5))
    >>> values[1, 2, 1:4] = 1.0
    >>> support_box(values)
    (slice(1, 2, None), slice(2, 3, None), slice(1, 4, None))
    """
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

    Parameters
    ----------
    offsets : numpy.ndarray of int, shape (n, 2)
        The whole grid's per-step offsets of the two axes across the swept one (voxels).
    first_step : int
        The whole grid's step at the sub-box's first swept layer, 0..n-1.
    n_steps : int
        The sub-box's number of swept layers, at most ``n - first_step``.

    Returns
    -------
    numpy.ndarray of int, shape (n_steps, 2)
        The sub-box's offsets, 0 at its first layer (C-contiguous).

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
    back).

    Parameters
    ----------
    support : tuple of slice
        Three slices (z, y, x) holding every voxel that releases energy (:func:`support_box`).
    shape : tuple of int
        The grid's (nz, ny, nx).
    dominant : int
        The swept axis, 0..2 (:func:`kernels.superposition_cpu.line_offsets`).
    sign : int
        +1 when the direction sweeps the dominant axis upwards, -1 downwards.
    others : sequence of int
        The two other axes, in the order of the columns of ``offsets``.
    offsets : numpy.ndarray of int, shape (shape[dominant], 2)
        The whole grid's line pattern of this direction (voxels across, per step).

    Returns
    -------
    slices : tuple of slice
        The sub-box (z, y, x) in grid indices.
    offsets : numpy.ndarray of int, shape (n_steps, 2)
        Its line pattern, anchored on the whole grid's (:func:`anchored_offsets`), one row per
        swept layer of the sub-box.
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

    The deposit equals the whole grid's to the last bit: the voxels, their order along each
    line and the arithmetic are the same, and the lines and steps skipped carry nothing.

    Parameters
    ----------
    released_mev : numpy.ndarray of float, shape (nz, ny, nx) or (nz, ny, nx, n_sources)
        Energy released per voxel (MeV), or a stack of sources
        (:func:`kernels.engine.cone_sources`).
    electron_density : numpy.ndarray of float, shape (nz, ny, nx)
        Relative to water (scales the transport's distances).
    spacing_mm : array_like of float, shape (3,)
        Voxel size (z, y, x) mm.
    directions_zyx : numpy.ndarray of float, shape (n_dir, 3)
        Unit vectors of the cone axes.
    amplitudes : numpy.ndarray of float, shape (n_dir, K) or (n_dir, n_sources, K)
        Energy fraction per cone and exponential component (per source with a stack).
    rates_per_cm : numpy.ndarray of float, shape (n_dir, K)
        Attenuation rate of each component in water (1/cm).
    out : numpy.ndarray of float64, shape (nz, ny, nx), optional
        Added to (ValueError if its shape differs); default a new zeroed array.
    local_mev : numpy.ndarray of float, shape (nz, ny, nx), optional
        A further source appended to the stack, with ``local_amplitudes`` (n_dir, K).
    local_amplitudes : numpy.ndarray of float, shape (n_dir, K), optional
        The amplitudes of ``local_mev`` on the same rates; the two go together.
    support : tuple of slice, optional
        Three slices (z, y, x) holding every non-zero voxel of the sources (the sources are
        read there only: the transport reads a voxel's sources only where one is not zero);
        default found from them (:func:`support_box`).

    Returns
    -------
    numpy.ndarray of float64, shape (nz, ny, nx)
        ``out``, with the energy deposited per voxel (MeV) added.
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
    if support is None:
        releasing = releasing_voxels(stack)
        support = support_box(releasing)
    else:  # read the sources on the support only: outside it they are zero and may be untouched memory
        releasing = np.zeros(eta.shape, np.uint8)
        releasing[support] = releasing_voxels(stack[support])
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

    Each step mirrors the engine's: TERMA on :func:`field_box`, the transport by
    :func:`collapsed_cone_downstream`; the tests compare the two to the last bit, so a change
    to the engine that this mirror misses fails there.

    Parameters
    ----------
    density : numpy.ndarray of float, shape (nz, ny, nx)
        Mass density (g/cm^3): the dose's mass and the tabulated media's attenuation.
    electron_density : numpy.ndarray of float, shape (nz, ny, nx)
        Relative to water.
    origin_mm, spacing_mm : array_like of float, shape (3,)
        Centre of voxel (0, 0, 0) and the voxel size, (z, y, x) mm.
    source_mm, axis, u, v : array_like of float, shape (3,)
        The beam's source (mm) and orthonormal frame, as for the engine.
    fluence : numpy.ndarray of float, shape (nv, nu)
        The fluence map on the plane ``source_axis_distance_mm`` from the source (before the
        model's blur and transmission, which are applied here as in the engine).
    fluence_origin_mm, fluence_spacing_mm : array_like of float, shape (2,)
        Centre of pixel (0, 0) and the pixel size, (v, u) mm.
    model : BeamModel
        The beam model (kernel hardening and tilting as it says).
    subsamples : int, default 3
        TERMA sub-points per voxel edge, 1..8.
    n_azimuth : int, optional
        Azimuths per zenith bin, >= 3 (ValueError otherwise, before any work); default the
        model's.
    source_axis_distance_mm : float, optional
        Distance of the fluence map's plane from the source (mm); default the model's SAD.
    medium : numpy.ndarray of int, shape (nz, ny, nx), optional
        0 for electron-density-scaled water, k for ``media[k - 1]``
        (:func:`kernels.engine.attenuation_media`).
    media : tuple of str, default ()
        Names of tabulated media.
    deposited : numpy.ndarray of float64, shape (nz, ny, nx), optional
        When given, the deposited energy is added to it and no dose is formed: several beams
        then share one array and one conversion (:func:`dose_from_deposited`).

    Returns
    -------
    dose_gy : numpy.ndarray of float64, shape (nz, ny, nx) or None
        Dose per unit fluence (Gy), ``None`` when ``deposited`` is given.
    deposited_mev : numpy.ndarray of float64, shape (nz, ny, nx)
        Energy deposited per voxel (MeV): ``deposited`` itself when given.
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
            parts = [part[inner] for part in sources]  # every non-zero source voxel lies in the support
            del found, sources
            directions, amplitudes, rates, _ = model.transport_directions(axis, u, v, n_azimuth=n_azimuth)
            # The sources on the whole grid (the transport's lines are the whole grid's), written on
            # the support only; collapsed_cone_downstream reads them there only, so the rest of the
            # map is never touched (6 sources on the 2.5 mm T10 grid: 24 MiB, the support a tenth
            # to a third of it).
            if amplitudes.shape[1] == 1:
                stack = _untouched_zeros(eta.shape)
                stack[support] = parts[0]
                collapsed_cone_downstream(stack, eta, spacing, directions, amplitudes[:, 0], rates, out,
                                          support=support)
            else:  # the engine's stack, its tilt from the whole grid's voxel centres
                tilt = ray_tilt(eta.shape, origin_mm, spacing, source_mm, u, v, box=support) \
                    if model.kernel_tilting else ()
                stack = _untouched_zeros(eta.shape + (amplitudes.shape[1],))
                cone_sources(parts[0], parts[1] if hardening else None, tilt, out=stack[support])
                del parts, tilt
                collapsed_cone_downstream(stack, eta, spacing, directions, amplitudes, rates, out, support=support)
    if deposited is not None:
        return None, out
    return dose_from_deposited(out, density, spacing), out


def _untouched_zeros(shape) -> np.ndarray:
    """A zeroed float64 array in its own anonymous memory map: its pages take memory only once
    touched, and go back to the system when it is freed (a large ``np.zeros`` may instead reuse
    a heap block, cleared, so touched, in full)."""
    size = int(np.prod(shape)) * 8
    if size == 0:
        return np.zeros(shape)
    return np.frombuffer(mmap.mmap(-1, size), dtype=np.float64).reshape(shape)


