"""Beams and beamlets: IEC 61217 geometry and the beamlet grid over a target's projection.

Gantry angles follow IEC 61217 for a patient lying head-first supine: at 0 deg the source
is anterior (the beam travels posteriorly, +y), at 90 deg the source is on the patient's
left (+x, the beam travels towards -x), at 180 deg it is posterior. With the couch at 0 deg
the beam's frame is::

    axis = (0, cos g, -sin g)   from the source towards the isocentre, (z, y, x)
    u    = (0, sin g,  cos g)   across the beam in the axial plane (beam's-eye-view 'x')
    v    = (1, 0, 0)            towards the patient's head (beam's-eye-view 'y')

Beamlets are squares of ``beamlet_mm`` on the isocentre plane, centred at multiples of the
size offset by half a size, kept where they cover the target's projection plus a margin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Beam", "BeamSet", "beam_frame", "make_beams", "open_field", "posterior_fan_angles", "arrangement_angles", "ARRANGEMENTS"]

#: Named beam arrangements (see :func:`arrangement_angles`).
ARRANGEMENTS = ("sbrt_fan", "arc", "pa", "ap_pa")


def beam_frame(gantry_deg: float):
    """The (axis, u, v) unit vectors (z, y, x) of a coplanar beam at this gantry angle.

    Parameters
    ----------
    gantry_deg : float
        IEC 61217 gantry angle (deg): 0 anterior, 90 the patient's left, 180 posterior; any
        real value (the angle is used through its sine and cosine).

    Returns
    -------
    tuple of numpy.ndarray
        ``(axis, u, v)``, each of shape (3,) in (z, y, x) order: ``axis`` from the source
        towards the isocentre, ``u`` across the beam in the axial plane (beam's-eye-view
        'x'), ``v`` towards the patient's head (beam's-eye-view 'y').
    """
    g = np.radians(gantry_deg)
    axis = np.array([0.0, np.cos(g), -np.sin(g)])
    u = np.array([0.0, np.sin(g), np.cos(g)])
    v = np.array([1.0, 0.0, 0.0])
    return axis, u, v


@dataclass(frozen=True, eq=False)
class Beam:
    """One static beam: gantry angle, isocentre, and its beamlets on the isocentre plane."""

    gantry_deg: float
    isocentre_mm: tuple
    source_axis_distance_mm: float
    beamlet_mm: float
    beamlet_uv_mm: np.ndarray = field(repr=False)  # (n, 2): (u, v) centres on the isocentre plane

    @property
    def frame(self):
        return beam_frame(self.gantry_deg)

    @property
    def source_mm(self) -> np.ndarray:
        axis, _, _ = self.frame
        return np.asarray(self.isocentre_mm, float) - self.source_axis_distance_mm * axis

    @property
    def n_beamlets(self) -> int:
        return int(self.beamlet_uv_mm.shape[0])

    def beamlet_grid(self):
        """The beam's beamlets as an index grid on the isocentre plane.

        Returns
        -------
        grid : numpy.ndarray
            int32 array (rows = v, columns = u) holding each pixel's beamlet number, -1 where
            the beam has no beamlet.
        origin : tuple of float
            Centre (v, u) in mm on the isocentre plane of pixel (0, 0); the pitch is
            ``beamlet_mm``.
        """
        pitch = self.beamlet_mm
        u_index = np.rint(self.beamlet_uv_mm[:, 0] / pitch - 0.5).astype(int)
        v_index = np.rint(self.beamlet_uv_mm[:, 1] / pitch - 0.5).astype(int)
        u0, v0 = u_index.min(), v_index.min()
        grid = -np.ones((v_index.max() - v0 + 1, u_index.max() - u0 + 1), dtype=np.int32)
        grid[v_index - v0, u_index - u0] = np.arange(self.n_beamlets, dtype=np.int32)
        origin = ((v0 + 0.5) * pitch, (u0 + 0.5) * pitch)
        return grid, origin

    def fluence_map(self, weights):
        """Beamlet weights as a fluence map on the isocentre plane (pixels = beamlets).

        Parameters
        ----------
        weights : array_like of float
            One weight per beamlet of this beam, shape ``(n_beamlets,)`` (unit beamlet weight,
            see :mod:`planner.radiotherapy.influence`); another shape raises ValueError.

        Returns
        -------
        fluence : numpy.ndarray
            2-D map (rows = v, columns = u) of the weights, 0 where the beam has no beamlet.
        origin : tuple of float
            Centre (v, u) in mm of pixel (0, 0) on the isocentre plane.
        spacing : tuple of float
            Pixel size (v, u) in mm, both ``beamlet_mm``.
        """
        weights = np.asarray(weights, float)
        if weights.shape != (self.n_beamlets,):
            raise ValueError(f"weights must have shape ({self.n_beamlets},), got {weights.shape}")
        grid, origin = self.beamlet_grid()
        fluence = np.where(grid >= 0, weights[np.maximum(grid, 0)], 0.0)
        return fluence, origin, (self.beamlet_mm, self.beamlet_mm)


@dataclass(frozen=True, eq=False)
class BeamSet:
    beams: tuple

    @property
    def n_beamlets(self) -> int:
        return sum(b.n_beamlets for b in self.beams)

    def offsets(self) -> np.ndarray:
        """First column of each beam in the stacked influence matrix.

        Returns
        -------
        numpy.ndarray
            Integer array of length ``n_beams + 1``: beam ``i`` owns columns
            ``offsets[i]:offsets[i + 1]``; the last entry is :attr:`n_beamlets`.
        """
        return np.concatenate([[0], np.cumsum([b.n_beamlets for b in self.beams])])

    def split(self, weights):
        """Split the stacked beamlet weights of the whole set into one array per beam.

        Parameters
        ----------
        weights : array_like of float
            Weights of every beamlet of the set, shape ``(n_beamlets,)``, in the column order of
            the influence matrix; another shape raises ValueError.

        Returns
        -------
        list of numpy.ndarray
            One view per beam, in the order of :attr:`beams` (see :meth:`offsets`).
        """
        weights = np.asarray(weights, float)
        if weights.shape != (self.n_beamlets,):
            raise ValueError(f"weights must have shape ({self.n_beamlets},), got {weights.shape}")
        o = self.offsets()
        return [weights[o[i]:o[i + 1]] for i in range(len(self.beams))]


def posterior_fan_angles(n_beams: int = 9, *, spread_deg: float = 160.0) -> list[float]:
    """Equally spaced coplanar gantry angles centred on 180 deg (posterior) over ``spread_deg``.

    Parameters
    ----------
    n_beams : int, default 9
        Number of beams, 1..36 (ValueError otherwise); one beam is the posterior field.
    spread_deg : float, default 160.0
        Angle (deg) from the first to the last beam.

    Returns
    -------
    list of float
        Gantry angles (deg) in [0, 360), from ``180 - spread_deg / 2`` upwards, rounded to
        6 decimals.
    """
    if not 1 <= n_beams <= 36:
        raise ValueError(f"n_beams must be 1..36, got {n_beams}")
    if n_beams == 1:
        return [180.0]
    return list(np.round(180.0 - spread_deg / 2 + spread_deg * np.arange(n_beams) / (n_beams - 1), 6) % 360.0)


def make_beams(target_points_mm: np.ndarray, *, gantry_deg, isocentre_mm=None, beamlet_mm: float = 5.0,
               margin_mm: float = 5.0, source_axis_distance_mm: float | None = None) -> BeamSet:
    """Beams at the given gantry angles with beamlets covering the target's projection.

    Each beam keeps the beamlets within ``margin_mm`` plus half a beamlet (Chebyshev distance
    on the isocentre plane) of some projected target point.

    Parameters
    ----------
    target_points_mm : numpy.ndarray
        Points of the target (e.g. voxel centres), a non-empty (n, 3) array of (z, y, x) mm;
        anything else raises ValueError.
    gantry_deg : float or array_like of float
        One or more IEC 61217 gantry angles (deg), e.g. from :func:`arrangement_angles`.
    isocentre_mm : array_like of float, optional
        Isocentre (z, y, x) in mm; defaults to the centroid of ``target_points_mm``.
    beamlet_mm : float, default 5.0
        Beamlet size on the isocentre plane (mm): 2.5, 5 or 10 (the sizes with a beamlet
        kernel); another value raises ValueError.
    margin_mm : float, default 5.0
        Margin (mm) around the target's projection, 0..30 (ValueError otherwise).
    source_axis_distance_mm : float, optional
        Source-axis distance (mm); defaults to the commissioned beam model's
        (``kernels/data/beam_6mv.toml``).

    Returns
    -------
    BeamSet
        One :class:`Beam` per gantry angle, in the given order.
    """
    if source_axis_distance_mm is None:
        from kernels.beam_model import load_beam_model

        source_axis_distance_mm = load_beam_model().source_axis_distance_mm
    points = np.asarray(target_points_mm, float)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise ValueError("target_points_mm must be a non-empty (n, 3) array of (z, y, x) mm")
    if beamlet_mm not in (2.5, 5.0, 10.0):
        raise ValueError(f"beamlet_mm must be 2.5, 5 or 10 mm, got {beamlet_mm}")
    if not 0 <= margin_mm <= 30:
        raise ValueError(f"margin_mm must be in 0..30 mm, got {margin_mm}")
    try:
        angles = np.atleast_1d(np.asarray(gantry_deg, dtype=float))
    except (TypeError, ValueError):
        angles = np.array([np.nan])
    if angles.ndim != 1 or angles.size == 0 or not np.all(np.isfinite(angles)):
        raise ValueError(f"gantry_deg must be one or more finite angles in degrees, got {gantry_deg!r}")
    if not np.all(np.isfinite(points)):
        raise ValueError("target_points_mm must be finite (no NaN or infinity)")
    iso = points.mean(axis=0) if isocentre_mm is None else np.asarray(isocentre_mm, float)
    beams = []
    for gantry in angles:
        axis, u, v = beam_frame(float(gantry))
        source = iso - source_axis_distance_mm * axis
        rel = points - source
        depth = rel @ axis
        a = rel @ u * source_axis_distance_mm / depth
        b = rel @ v * source_axis_distance_mm / depth
        reach = margin_mm + beamlet_mm / 2
        u_centres = np.arange(np.floor((a.min() - reach) / beamlet_mm), np.ceil((a.max() + reach) / beamlet_mm)) * beamlet_mm + beamlet_mm / 2
        v_centres = np.arange(np.floor((b.min() - reach) / beamlet_mm), np.ceil((b.max() + reach) / beamlet_mm)) * beamlet_mm + beamlet_mm / 2
        uu, vv = np.meshgrid(u_centres, v_centres, indexing="xy")
        # Keep beamlets within reach of some projected target point (Chebyshev distance).
        keep = np.zeros(uu.shape, bool)
        for start in range(0, len(a), 4096):
            da = np.abs(uu[..., None] - a[None, None, start:start + 4096])
            db = np.abs(vv[..., None] - b[None, None, start:start + 4096])
            keep |= np.any((da <= reach) & (db <= reach), axis=-1)
        centres = np.stack([uu[keep], vv[keep]], axis=1)
        beams.append(Beam(float(gantry), tuple(iso), source_axis_distance_mm, float(beamlet_mm), centres))
    return BeamSet(tuple(beams))


def arrangement_angles(name: str, *, n_beams: int = 9, arc_step_deg: float = 10.0, arc_start_deg: float = 100.0,
                       arc_stop_deg: float = 260.0) -> list[float]:
    """Gantry angles of a named arrangement.

    * ``sbrt_fan``: 7-13 coplanar posterior-oblique beams over 160 deg centred on 180 deg;
    * ``arc``: a VMAT-like arc approximated by static control points every ``arc_step_deg``
      (5-10 deg) from ``arc_start_deg`` to ``arc_stop_deg`` through 180 deg;
    * ``pa``: one posterior field; ``ap_pa``: opposed anterior and posterior fields.

    Parameters
    ----------
    name : str
        One of :data:`ARRANGEMENTS` ('sbrt_fan', 'arc', 'pa', 'ap_pa'); another name raises
        ValueError.
    n_beams : int, default 9
        Beams of an 'sbrt_fan', 7..13 (ValueError otherwise); ignored by the others.
    arc_step_deg : float, default 10.0
        Control-point spacing (deg) of an 'arc', 5..10 (ValueError otherwise).
    arc_start_deg : float, default 100.0
        First control point (deg) of an 'arc'.
    arc_stop_deg : float, default 260.0
        Last control point (deg) of an 'arc', reached going up from ``arc_start_deg``
        (through 360 if it is smaller); a zero span is a full circle.

    Returns
    -------
    list of float
        Gantry angles (deg) in [0, 360).

    Examples
    --------
    >>> arrangement_angles("ap_pa")
    [0.0, 180.0]
    >>> len(arrangement_angles("arc", arc_step_deg=10.0))
    17
    """
    if name == "sbrt_fan":
        if not 7 <= n_beams <= 13:
            raise ValueError(f"an SBRT fan has 7-13 beams, got n_beams={n_beams}")
        return posterior_fan_angles(n_beams)
    if name == "arc":
        if not 5.0 <= arc_step_deg <= 10.0:
            raise ValueError(f"arc_step_deg must be 5-10 deg, got {arc_step_deg}")
        span = (arc_stop_deg - arc_start_deg) % 360.0 or 360.0
        count = int(np.floor(span / arc_step_deg + 1e-9)) + 1
        return [float((arc_start_deg + k * arc_step_deg) % 360.0) for k in range(count)]
    if name == "pa":
        return [180.0]
    if name == "ap_pa":
        return [0.0, 180.0]
    raise ValueError(f"unknown arrangement {name!r}; known: {', '.join(ARRANGEMENTS)}")


def open_field(field_mm: float, *, entry_mm, ssd_mm: float | None = None, gantry_deg: float = 0.0,
               source_axis_distance_mm: float | None = None) -> BeamSet:
    """An open square field for a measurement setup: a water tank or slab at a given SSD.

    The central axis enters the phantom at ``entry_mm``; the source lies ``ssd_mm`` before it
    along the axis, and the isocentre ``source_axis_distance_mm - ssd_mm`` beyond it (an SSD
    setup with SSD = SAD puts the isocentre on the surface). The field, ``field_mm`` square on
    the isocentre plane, is tiled exactly by the largest beamlet (10, 5 or 2.5 mm) that
    divides it into an even number across, all at weight 1: ``final_dose(scene, beams, np.ones(beams.n_beamlets))`` is
    the open field's dose. Both dose engines honour the beam's own SAD.

    Parameters
    ----------
    field_mm : float
        Side of the square field on the isocentre plane (mm), a multiple of 5 in 10..400
        (ValueError otherwise).
    entry_mm : array_like of float
        Where the central axis enters the phantom (z, y, x mm).
    ssd_mm : float, optional
        Source-to-surface distance (mm), in (0, SAD]; default the SAD.
    gantry_deg : float, default 0.0
        IEC 61217 gantry angle (deg).
    source_axis_distance_mm : float, optional
        Source-axis distance (mm); default the commissioned beam model's.

    Returns
    -------
    BeamSet
        One beam.

    Examples
    --------
    >>> beams = open_field(100.0, entry_mm=(0.0, -150.0, 0.0), ssd_mm=900.0)
    >>> beam = beams.beams[0]
    >>> beam.beamlet_mm, beam.n_beamlets, [round(c, 1) for c in beam.isocentre_mm]
    (10.0, 100, [0.0, -50.0, 0.0])
    """
    if source_axis_distance_mm is None:
        from kernels.beam_model import load_beam_model

        source_axis_distance_mm = load_beam_model().source_axis_distance_mm
    sad = float(source_axis_distance_mm)
    ssd = sad if ssd_mm is None else float(ssd_mm)
    if not (np.isfinite(field_mm) and 10.0 <= field_mm <= 400.0):
        raise ValueError(f"field_mm must be in 10..400 mm, got {field_mm}")
    # Beamlet centres sit at (k + 1/2) pitches from the axis (Beam.beamlet_grid), so a centred
    # field needs an even number of beamlets across.
    pitch = next((p for p in (10.0, 5.0, 2.5) if abs(field_mm / (2 * p) - round(field_mm / (2 * p))) < 1e-9), None)
    if pitch is None:
        raise ValueError(f"field_mm must be a multiple of 5 mm (an even number of the smallest beamlets), got {field_mm}")
    if not (np.isfinite(ssd) and 0 < ssd <= sad):
        raise ValueError(f"ssd_mm must be in (0, {sad:g}] mm (the source-axis distance), got {ssd_mm}")
    entry = np.asarray(entry_mm, dtype=float)
    if entry.shape != (3,) or not np.all(np.isfinite(entry)):
        raise ValueError(f"entry_mm must be three finite coordinates (z, y, x) in mm, got {entry_mm!r}")
    axis, _, _ = beam_frame(float(gantry_deg))
    isocentre = entry + (sad - ssd) * axis
    n = int(round(field_mm / pitch))
    centres = (np.arange(n) - (n - 1) / 2) * pitch
    u, v = np.meshgrid(centres, centres)
    uv = np.stack([u.ravel(), v.ravel()], axis=1)
    return BeamSet((Beam(float(gantry_deg), tuple(float(c) for c in isocentre), sad, pitch, uv),))
