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

__all__ = ["Beam", "BeamSet", "beam_frame", "make_beams", "posterior_fan_angles", "arrangement_angles", "ARRANGEMENTS"]

#: Named beam arrangements (see :func:`arrangement_angles`).
ARRANGEMENTS = ("sbrt_fan", "arc", "pa", "ap_pa")


def beam_frame(gantry_deg: float):
    """(axis, u, v) unit vectors (z, y, x) of a coplanar beam at this gantry angle."""
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
        """(index grid (rows=v, cols=u) of beamlet numbers, -1 where none; origin (v, u) of pixel 0)."""
        pitch = self.beamlet_mm
        u_index = np.rint(self.beamlet_uv_mm[:, 0] / pitch - 0.5).astype(int)
        v_index = np.rint(self.beamlet_uv_mm[:, 1] / pitch - 0.5).astype(int)
        u0, v0 = u_index.min(), v_index.min()
        grid = -np.ones((v_index.max() - v0 + 1, u_index.max() - u0 + 1), dtype=np.int32)
        grid[v_index - v0, u_index - u0] = np.arange(self.n_beamlets, dtype=np.int32)
        origin = ((v0 + 0.5) * pitch, (u0 + 0.5) * pitch)
        return grid, origin

    def fluence_map(self, weights):
        """Beamlet weights as a fluence map on the isocentre plane (pixels = beamlets)."""
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
        """First column of each beam in the stacked influence matrix (length n_beams + 1)."""
        return np.concatenate([[0], np.cumsum([b.n_beamlets for b in self.beams])])

    def split(self, weights):
        weights = np.asarray(weights, float)
        if weights.shape != (self.n_beamlets,):
            raise ValueError(f"weights must have shape ({self.n_beamlets},), got {weights.shape}")
        o = self.offsets()
        return [weights[o[i]:o[i + 1]] for i in range(len(self.beams))]


def posterior_fan_angles(n_beams: int = 9, *, spread_deg: float = 160.0) -> list[float]:
    """Equally spaced coplanar gantry angles centred on 180 deg (posterior) over ``spread_deg``."""
    if not 1 <= n_beams <= 36:
        raise ValueError(f"n_beams must be 1..36, got {n_beams}")
    if n_beams == 1:
        return [180.0]
    return list(np.round(180.0 - spread_deg / 2 + spread_deg * np.arange(n_beams) / (n_beams - 1), 6) % 360.0)


def make_beams(target_points_mm: np.ndarray, *, gantry_deg, isocentre_mm=None, beamlet_mm: float = 5.0,
               margin_mm: float = 5.0, source_axis_distance_mm: float = 1000.0) -> BeamSet:
    """Beams at the given gantry angles with beamlets covering the target's projection.

    ``target_points_mm`` (n, 3) are points of the target (e.g. voxel centres); the
    isocentre defaults to their centroid.
    """
    points = np.asarray(target_points_mm, float)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise ValueError("target_points_mm must be a non-empty (n, 3) array of (z, y, x) mm")
    if beamlet_mm not in (2.5, 5.0, 10.0):
        raise ValueError(f"beamlet_mm must be 2.5, 5 or 10 mm, got {beamlet_mm}")
    if not 0 <= margin_mm <= 30:
        raise ValueError(f"margin_mm must be in 0..30 mm, got {margin_mm}")
    iso = points.mean(axis=0) if isocentre_mm is None else np.asarray(isocentre_mm, float)
    beams = []
    for gantry in np.atleast_1d(gantry_deg):
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
