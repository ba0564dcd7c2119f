"""Parametric anatomy of a vertebral level, its neighbours and the organs around it.

All sizes come from :mod:`scenes.morphometry` (per level) and ``scenes/data/anatomy.toml``
(regional organs, collapse); this module places the vertebrae, the neural axis and the body
outline, and :mod:`scenes.organs` the organs. The frame, in patient LPS mm:

* the spinal canal's centre line is x = 0, y = 0 (a straight column: no lordosis or
  kyphosis is modelled, except the kyphosis of a collapsed level, below);
* z = 0 is the mid-height of the index level's vertebral body (before any collapse); levels
  above have z > 0;
* each body's posterior wall touches the canal's anterior edge; the thecal sac lies on the
  posterior longitudinal ligament (front of the canal) with the epidural fat behind it; the
  cord is centred in the sac; below the conus the cauda equina roots lie dorsally in the
  sac (supine, cohen1991).

**Collapse.** A collapsed index body is a wedge: its anterior wall loses ``collapse_pct`` of
the body's height (the greatest loss, as fractures are graded), its posterior wall a share of
that (``posterior_to_anterior_loss``, [collapse] in anatomy.toml), the lower endplate stays. The column above rests on the
tilted upper endplate: it turns forwards about the body's anterior-superior corner by the
wedge angle, plus ``kyphosis_deg`` (an optional kyphosis beyond the wedge, taken up by the
disc above, which opens behind), and moves down with the endplate, so the endplates stay in
contact (no gap). The neural tubes above follow the column; the index's posterior elements
sink with its posterior wall.

Simplifications (stated, not hidden): cross-sections are ellipses; pedicles, processes and
screws are elliptic rods; organs are ellipsoids or tubes; the tilted column above a kyphosis
keeps horizontal tube sections (widened front to back by 1/cos of the tilt).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ._data import load_data, value_of
from .morphometry import LEVELS, PHANTOM_LEVELS, LevelDimensions, level_dimensions, level_index, region_of
from .organs import Frame, build_organs
from .shapes import Box, EllipticCylinder, Empty, Rod, Shape, Tube, Union, midline_tube

__all__ = ["Vertebra", "Anatomy", "build_anatomy", "column_z_centres", "HalfSpace", "Moved", "collapse_limits"]


@dataclass(frozen=True)
class Vertebra:
    """Solids of one vertebra (patient mm) and the numbers they were made from.

    ``z_centre_mm`` and ``body_centre_y_mm`` give where the body's centre is; ``tilt_deg`` how
    far the vertebra is turned forwards (above a kyphotic collapse), else 0.
    """

    level: str
    dims: LevelDimensions
    z_centre_mm: float
    body_centre_y_mm: float
    body: Shape
    body_core: Shape
    pedicle_left: Shape
    pedicle_right: Shape
    lamina: Shape
    spinous: Shape
    transverse_left: Shape
    transverse_right: Shape
    shell_mm: float
    tilt_deg: float = 0.0

    @property
    def posterior(self) -> Shape:
        return Union((self.pedicle_left, self.pedicle_right, self.lamina, self.spinous,
                      self.transverse_left, self.transverse_right))

    @property
    def whole(self) -> Shape:
        return Union((self.body, self.pedicle_left, self.pedicle_right, self.lamina, self.spinous,
                      self.transverse_left, self.transverse_right))

    @property
    def z_range_mm(self) -> tuple[float, float]:
        half = self.dims.body_height_mm / 2
        return self.z_centre_mm - half, self.z_centre_mm + half

    @property
    def body_front_y_mm(self) -> float:
        return self.body_centre_y_mm - self.dims.body_depth_mm / 2


@dataclass(frozen=True)
class Anatomy:
    """The geometry of one phantom: index level, neighbours, neural axis and organs.

    ``collapse_pct`` and ``kyphosis_deg`` are what the phantom was built with;
    ``height_loss_mm`` the (anterior, posterior) loss of the index body's height, and
    ``wedge_deg`` the angle between its endplates.
    """

    level: str
    vertebrae: tuple  # superior to inferior
    discs: tuple  # (name, Shape), superior to inferior
    canal: Shape
    sac: Shape
    cord: Shape
    cauda: Shape
    outline: Shape
    organs: dict = field(default_factory=dict)
    conus_z_mm: float = 0.0
    z_limits_mm: tuple = (0.0, 0.0)
    neighbours: int = 1
    collapse_pct: float = 0.0
    kyphosis_deg: float = 0.0
    wedge_deg: float = 0.0
    height_loss_mm: tuple = (0.0, 0.0)

    def vertebra(self, level: str | None = None) -> Vertebra:
        level = level or self.level
        for vertebra in self.vertebrae:
            if vertebra.level == level:
                return vertebra
        raise KeyError(f"anatomy of {self.level} has no vertebra {level}")

    @property
    def index(self) -> Vertebra:
        return self.vertebra(self.level)

    @property
    def segmental_kyphosis_deg(self) -> float:
        """Angle between the endplates bounding the collapsed segment: wedge plus added kyphosis."""
        return self.wedge_deg + self.kyphosis_deg

    def neural_profile(self, z_mm: float) -> dict:
        """Canal, sac and cord cross-section (centre y, radii y/x) at height z."""
        out = {}
        for name in ("canal", "sac", "neural"):
            tube = {"canal": self.canal, "sac": self.sac}.get(name)
            if name == "neural":
                tube = self.cord if z_mm >= self.conus_z_mm else self.cauda
            if isinstance(tube, Empty):
                out[name] = None
                continue
            out[name] = {
                "centre_y_mm": float(np.interp(z_mm, tube.z_mm, tube.centre_y_mm)),
                "radius_y_mm": float(np.interp(z_mm, tube.z_mm, tube.radii_y_mm)),
                "radius_x_mm": float(np.interp(z_mm, tube.z_mm, tube.radii_x_mm)),
            }
        return out


# -- solids of the collapse ------------------------------------------------------------------
@dataclass(frozen=True)
class HalfSpace(Shape):
    """Points on the inner side of a plane that contains the x direction.

    Inside: ``(z - z0) * nz + (y - y0) * ny <= 0`` with ``point_zy = (z0, y0)`` and the unit
    outward normal ``normal_zy = (nz, ny)``. Unbounded: use it only cut with a bounded solid.
    """

    point_zy: tuple
    normal_zy: tuple

    def contains(self, z, y, x):
        (z0, y0), (nz, ny) = self.point_zy, self.normal_zy
        inside = (np.asarray(z, float) - z0) * nz + (np.asarray(y, float) - y0) * ny <= 0.0
        return inside & np.ones(np.shape(x), dtype=bool)

    @property
    def bounds_mm(self):
        return np.array([[-1e4] * 3, [1e4] * 3])

    def offset(self, delta_mm):
        (z0, y0), (nz, ny) = self.point_zy, self.normal_zy
        return HalfSpace((z0 + delta_mm * nz, y0 + delta_mm * ny), self.normal_zy)


def _turn(z, y, pivot, target, angle_deg):
    """Points turned forwards by ``angle_deg`` about the x axis through ``pivot``, carried to ``target``."""
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    dz, dy = z - pivot[0], y - pivot[1]
    return dz * c + dy * s + target[0], -dz * s + dy * c + target[1]


@dataclass(frozen=True)
class Moved(Shape):
    """A solid turned about the x axis through ``pivot_zy`` and carried to ``target_zy``.

    A positive ``angle_deg`` turns the part above the pivot forwards (towards -y, flexion):
    a point (z, y) goes to ``target + R (p - pivot)`` with ``z' = dz cos a + dy sin a``,
    ``y' = -dz sin a + dy cos a``.
    """

    shape: Shape
    pivot_zy: tuple
    target_zy: tuple
    angle_deg: float = 0.0

    def contains(self, z, y, x):
        a = math.radians(self.angle_deg)
        c, s = math.cos(a), math.sin(a)
        dz = np.asarray(z, float) - self.target_zy[0]
        dy = np.asarray(y, float) - self.target_zy[1]
        z0 = dz * c - dy * s + self.pivot_zy[0]
        y0 = dz * s + dy * c + self.pivot_zy[1]
        return self.shape.contains(z0, y0, x)

    @property
    def bounds_mm(self):
        inner = self.shape.bounds_mm
        corners = [_turn(z, y, self.pivot_zy, self.target_zy, self.angle_deg)
                   for z in inner[:, 0] for y in inner[:, 1]]
        zs, ys = zip(*corners)
        return np.array([[min(zs), min(ys), inner[0, 2]], [max(zs), max(ys), inner[1, 2]]], dtype=float)

    def offset(self, delta_mm):
        return Moved(self.shape.offset(delta_mm), self.pivot_zy, self.target_zy, self.angle_deg)


def collapse_limits() -> dict:
    """The collapse settings of anatomy.toml [collapse].

    Returns
    -------
    dict
        ``posterior_to_anterior_loss`` (the wedge's posterior share of the anterior loss) and
        ``max_kyphosis_deg`` (the bound of the added kyphosis).

    Examples
    --------
    >>> limits = collapse_limits()
    >>> 0 < limits["posterior_to_anterior_loss"] < 1 and limits["max_kyphosis_deg"] > 0
    True
    """
    table = load_data("anatomy")["collapse"]
    return {"posterior_to_anterior_loss": value_of(table["posterior_to_anterior_loss"]),
            "max_kyphosis_deg": value_of(table["max_kyphosis_deg"])}


@dataclass(frozen=True)
class _Collapse:
    """The wedge of a collapsed index body and the rigid motion of the column above it."""

    z_top: float  # the index body's upper endplate before the collapse
    pivot: tuple  # its anterior-superior corner (z, y) before ...
    target: tuple  # ... and after
    angle_deg: float  # the column above turns forwards by this much
    plane: HalfSpace  # the index body below its collapsed upper endplate
    posterior_loss: float
    wedge_deg: float
    z_next: float  # the lower endplate of the vertebra above, before it moves

    def point(self, z: float, y: float) -> tuple[float, float]:
        if z <= self.z_top:
            return z, y
        return _turn(z, y, self.pivot, self.target, self.angle_deg)

    def move(self, shape: Shape) -> Shape:
        return Moved(shape, self.pivot, self.target, self.angle_deg)

    def tube(self, tube: Shape) -> Shape:
        """A neural tube whose anchors above the index follow the column (sections widened
        front to back by 1/cos of the tilt, as a horizontal cut of a tilted tube is)."""
        if not isinstance(tube, Tube):
            return tube
        # Anchors at the index's upper endplate and the next body's lower one: the tube bends
        # across the disc between them, as the canal follows the bodies' posterior walls.
        z = np.asarray(tube.z_mm, float)
        extra = [h for h in (self.z_top, self.z_next) if z[0] < h < z[-1] and not np.any(np.isclose(z, h))]
        z_all = np.sort(np.concatenate([z, extra]))
        at = {name: np.interp(z_all, z, getattr(tube, name))
              for name in ("radii_y_mm", "radii_x_mm", "centre_y_mm", "centre_x_mm")}
        widen = 1 / math.cos(math.radians(self.angle_deg))
        moved = [self.point(h, cy) + ((ry * widen) if h > self.z_top else ry,)
                 for h, cy, ry in zip(z_all, at["centre_y_mm"], at["radii_y_mm"])]
        z0, z1 = (self.point(h, float(np.interp(h, z, tube.centre_y_mm)))[0] for h in tube.z_range_mm)
        return Tube(tuple(float(m[0]) for m in moved), tuple(float(m[2]) for m in moved),
                    tuple(map(float, at["radii_x_mm"])), tuple(float(m[1]) for m in moved),
                    tuple(map(float, at["centre_x_mm"])), (z0, max(z1, z0)))


def _collapse(index: Vertebra, above: Vertebra, collapse_pct: float, kyphosis_deg: float) -> _Collapse | None:
    if collapse_pct <= 0 and kyphosis_deg <= 0:
        return None
    d = index.dims
    ratio = collapse_limits()["posterior_to_anterior_loss"]
    front_loss = d.body_height_mm * collapse_pct / 100
    back_loss = ratio * front_loss
    z_top = index.z_centre_mm + d.body_height_mm / 2
    y_front = index.body_front_y_mm
    rise = front_loss - back_loss  # the upper endplate drops this much more in front
    length = math.hypot(d.body_depth_mm, rise)
    plane = HalfSpace((z_top - front_loss, y_front), (d.body_depth_mm / length, -rise / length))
    wedge = math.degrees(math.atan2(rise, d.body_depth_mm))
    return _Collapse(z_top, (z_top, y_front), (z_top - front_loss, y_front), wedge + kyphosis_deg, plane,
                     back_loss, wedge, above.z_range_mm[0])


def _collapsed_index(index: Vertebra, collapse: _Collapse) -> Vertebra:
    body = index.body & collapse.plane
    sink = (-collapse.posterior_loss, 0.0)

    def down(shape):
        return Moved(shape, (0.0, 0.0), sink) if collapse.posterior_loss > 0 else shape

    return Vertebra(index.level, index.dims, index.z_centre_mm, index.body_centre_y_mm, body,
                    body.offset(-index.shell_mm), down(index.pedicle_left), down(index.pedicle_right),
                    down(index.lamina), down(index.spinous), down(index.transverse_left), down(index.transverse_right),
                    index.shell_mm)


def _moved_vertebra(vertebra: Vertebra, collapse: _Collapse) -> Vertebra:
    z, y = collapse.point(vertebra.z_centre_mm, vertebra.body_centre_y_mm)
    m = collapse.move
    return Vertebra(vertebra.level, vertebra.dims, z, y, m(vertebra.body), m(vertebra.body_core),
                    m(vertebra.pedicle_left), m(vertebra.pedicle_right), m(vertebra.lamina), m(vertebra.spinous),
                    m(vertebra.transverse_left), m(vertebra.transverse_right), vertebra.shell_mm, collapse.angle_deg)


def column_z_centres(index_level: str) -> dict[str, float]:
    """Mid-body height of every level of the column, with the index level at z = 0."""
    position = level_index(index_level)
    centres = {index_level: 0.0}
    for step in (-1, 1):  # -1 goes superior (towards C2), +1 inferior
        z = 0.0
        current = position
        while 0 <= current + step < len(LEVELS):
            here = level_dimensions(LEVELS[current])
            there = level_dimensions(LEVELS[current + step])
            disc = there.disc_below_mm if step == -1 else here.disc_below_mm
            gap = here.body_height_mm / 2 + disc + there.body_height_mm / 2
            z += -step * gap
            current += step
            centres[LEVELS[current]] = z
    return centres


def _anatomy_table() -> dict:
    return load_data("anatomy")


def _vertebra(level: str, z_centre: float) -> Vertebra:
    d = level_dimensions(level)
    shell = float(_anatomy_table()["bone"]["cortical_shell_mm"][region_of(level)])
    half_h = d.body_height_mm / 2
    body_y = -(d.canal_depth_mm / 2 + d.body_depth_mm / 2)
    body = EllipticCylinder((body_y, 0.0), (d.body_depth_mm / 2, d.body_width_mm / 2), (z_centre - half_h, z_centre + half_h))
    core = body.offset(-shell)
    pedicle_height = min(d.pedicle_height_mm, d.body_height_mm)
    z_pedicle = z_centre + half_h - pedicle_height / 2  # pedicles leave the upper half of the body
    x_pedicle = d.canal_width_mm / 2 + d.pedicle_width_mm / 2
    y_junction = d.canal_depth_mm / 4  # where pedicle, lamina and transverse process meet
    y_start = -d.canal_depth_mm / 2 - d.body_depth_mm / 4
    pedicles = [Rod((z_pedicle, y_start, side * x_pedicle), (z_pedicle, y_junction, side * x_pedicle),
                    (pedicle_height / 2, d.pedicle_width_mm / 2)) for side in (1, -1)]
    arch_outer = EllipticCylinder((0.0, 0.0), (d.canal_depth_mm / 2 + d.lamina_thickness_mm, x_pedicle + d.pedicle_width_mm / 2),
                                  (z_centre - half_h, z_centre + half_h))
    canal = EllipticCylinder((0.0, 0.0), (d.canal_depth_mm / 2, d.canal_width_mm / 2), (z_centre - half_h - 1, z_centre + half_h + 1))
    posterior_half = Box((z_centre - half_h - 1, 0.0, -1e3), (z_centre + half_h + 1, 1e3, 1e3))
    lamina = (arch_outer & posterior_half) - canal
    y_spine = d.canal_depth_mm / 2 + d.lamina_thickness_mm / 2
    # The tip stays one lamina thickness under the skin. A thoracic spinous process longer
    # than that keeps its length and slopes caudally (as thoracic ones do); elsewhere the
    # process runs straight back and is shortened to fit.
    reach = min(d.spinous_length_mm, d.skin_to_canal_mm - d.lamina_thickness_mm)
    drop = math.sqrt(max(d.spinous_length_mm ** 2 - reach ** 2, 0.0)) if region_of(level) == "thoracic" else 0.0
    spinous = Rod((z_centre, y_spine, 0.0), (z_centre - drop, y_spine + reach, 0.0),
                  (pedicle_height / 2, d.lamina_thickness_mm / 2))
    transverse = []
    for side in (1, -1):
        start = (z_pedicle, y_junction, side * x_pedicle)
        end = (z_pedicle, y_junction, side * max(d.transverse_span_mm / 2, x_pedicle + d.pedicle_width_mm))
        transverse.append(Rod(start, end, (pedicle_height / 2, d.lamina_thickness_mm / 2)))
    return Vertebra(level, d, z_centre, body_y, body, core, pedicles[0], pedicles[1], lamina, spinous,
                    transverse[0], transverse[1], shell)


def _conus_z(centres: dict[str, float]) -> float:
    # Mean conus level: lower third of L1 (saifuddin1998_conus) -> centre of that third.
    l1 = level_dimensions("L1")
    return centres["L1"] - l1.body_height_mm / 3


def _outline(index: Vertebra, centres: dict[str, float], z_limits) -> Shape:
    """The body outline: neck, chest or abdomen by each level's region (index level's skin line).

    A phantom whose levels all lie in one region gets one elliptic cylinder; one that spans
    two (C7, T1, T12, L1) gets a tube whose section changes between the levels' centres
    (the base of the neck widening into the chest).
    """
    table = _anatomy_table()["body_outline"]
    d = index.dims
    y_skin = d.canal_depth_mm / 2 + d.skin_to_canal_mm

    def radii(level):
        region = region_of(level)
        if region == "cervical":
            radius = value_of(table["neck_circumference_mm"]) / (2 * math.pi)
            return radius, radius
        if region == "thoracic":
            return value_of(table["chest_depth_mm"]) / 2, value_of(table["chest_breadth_mm"]) / 2
        return value_of(table["abdomen_depth_mm"]) / 2, value_of(table["chest_breadth_mm"]) / 2

    bottom, top = z_limits
    inside = [name for name in LEVELS if bottom <= centres[name] <= top]
    if len({radii(name) for name in inside}) == 1:
        ry, rx = radii(index.level)
        return EllipticCylinder((y_skin - ry, 0.0), (ry, rx), (bottom, top))
    anchors = [name for name in LEVELS if bottom - 40 <= centres[name] <= top + 40]
    z = [centres[name] for name in anchors]
    ry, rx = zip(*(radii(name) for name in anchors))
    return midline_tube(z, ry, rx, [y_skin - r for r in ry], (bottom, top))


def build_anatomy(level: str, *, neighbours: int = 1, collapse_pct: float = 0.0, kyphosis_deg: float = 0.0) -> Anatomy:
    """Geometry of a phantom centred on ``level`` with ``neighbours`` levels above and below.

    Parameters
    ----------
    level : str
        Index level, one of :data:`scenes.morphometry.PHANTOM_LEVELS`.
    neighbours : int
        Vertebrae modelled above and below (1..3).
    collapse_pct : float
        Loss of the index body's height at its anterior wall, in percent (0..<100): the body
        becomes a wedge and the column above comes down onto it (module docstring).
    kyphosis_deg : float
        Kyphosis added at the index level beyond the wedge's own angle, degrees
        (0..``max_kyphosis_deg`` of anatomy.toml [collapse]).

    Returns
    -------
    Anatomy
        Vertebrae, discs, neural axis, outline and organs.

    Examples
    --------
    >>> anatomy = build_anatomy("T10")
    >>> [v.level for v in anatomy.vertebrae]
    ['T9', 'T10', 'T11']
    >>> wedge = build_anatomy("T10", collapse_pct=30)
    >>> wedge.height_loss_mm[0] > wedge.height_loss_mm[1] > 0
    True
    """
    if level not in PHANTOM_LEVELS:
        raise ValueError(f"level must be one of {', '.join(PHANTOM_LEVELS)}, got {level!r}")
    if not 1 <= int(neighbours) <= 3:
        raise ValueError(f"neighbours must be 1..3, got {neighbours}")
    if not (isinstance(collapse_pct, (int, float)) and 0 <= collapse_pct < 100):
        raise ValueError(f"collapse_pct must be in 0..<100 %, got {collapse_pct!r}")
    limit = collapse_limits()["max_kyphosis_deg"]
    if not (isinstance(kyphosis_deg, (int, float)) and 0 <= kyphosis_deg <= limit):
        raise ValueError(f"kyphosis_deg must be in 0..{limit:g} degrees, got {kyphosis_deg!r}")
    centres = column_z_centres(level)
    position = level_index(level)
    names = [LEVELS[i] for i in range(max(0, position - neighbours), min(len(LEVELS), position + neighbours + 1))]
    straight = tuple(_vertebra(name, centres[name]) for name in names)
    index = next(v for v in straight if v.level == level)
    collapse = _collapse(index, straight[names.index(level) - 1], float(collapse_pct), float(kyphosis_deg))
    above = set(names[:names.index(level)])
    if collapse is None:
        vertebrae = straight
    else:
        vertebrae = tuple(_collapsed_index(v, collapse) if v.level == level else
                          _moved_vertebra(v, collapse) if v.level in above else v for v in straight)
    discs = []
    for upper, lower in zip(straight[:-1], straight[1:]):
        height = upper.dims.disc_below_mm
        if height <= 0:
            continue
        z0, z1 = lower.z_range_mm[1], upper.z_range_mm[0]
        depth = (upper.dims.body_depth_mm + lower.dims.body_depth_mm) / 4
        width = (upper.dims.body_width_mm + lower.dims.body_width_mm) / 4
        y = (upper.body_centre_y_mm + lower.body_centre_y_mm) / 2
        disc: Shape = EllipticCylinder((y, 0.0), (depth, width), (z0, z1))
        if collapse is not None and lower.level == level:
            # The disc above the wedge fills the space between the tilted endplates (it opens
            # behind by the added kyphosis): extended downwards, cut by the index's endplate.
            reach = 2 * depth * math.tan(math.radians(collapse.angle_deg)) + 1.0
            extended = EllipticCylinder((y, 0.0), (depth, width), (z0 - reach, z1))
            flipped = HalfSpace(collapse.plane.point_zy, tuple(-n for n in collapse.plane.normal_zy))
            disc = collapse.move(extended) & flipped
        elif collapse is not None and lower.level in above:
            disc = collapse.move(disc)
        discs.append((f"disc_{upper.level}_{lower.level}", disc))
    top = straight[0].z_range_mm[1] + straight[0].dims.body_height_mm / 2
    bottom = straight[-1].z_range_mm[0] - straight[-1].dims.body_height_mm / 2
    # Neural axis: anchors at every level centre of the column (so tubes taper smoothly).
    anchor_levels = [name for name in LEVELS if bottom - 40 <= centres[name] <= top + 40]
    dims = [level_dimensions(name) for name in anchor_levels]
    z_anchor = [centres[name] for name in anchor_levels]
    canal = midline_tube(z_anchor, [d.canal_depth_mm / 2 for d in dims], [d.canal_width_mm / 2 for d in dims],
                  [0.0] * len(dims), (bottom, top))
    sac_centre = [-d.canal_depth_mm / 2 + d.sac_ap_mm / 2 for d in dims]
    sac_ry = [d.sac_ap_mm / 2 for d in dims]
    sac_rx = [d.sac_rl_mm / 2 for d in dims]
    sac_bottom = bottom if "S2" not in anchor_levels else max(bottom, centres["S2"])
    sac = midline_tube(z_anchor, sac_ry, sac_rx, sac_centre, (sac_bottom, top))
    conus = _conus_z(centres)
    conus_table = load_data("anatomy").get("conus", {})
    cord_ry = [d.cord_ap_mm / 2 for d in dims]
    cord_rx = [d.cord_rl_mm / 2 for d in dims]
    cord_z = list(z_anchor)
    if "L1" in anchor_levels:  # the conus tapers from the T12 cord to the tip
        i = anchor_levels.index("L1")
        cord_ry[i], cord_rx[i] = value_of(conus_table["ap_mm"]) / 2, value_of(conus_table["rl_mm"]) / 2
    cord = midline_tube(cord_z, cord_ry, cord_rx, sac_centre, (max(bottom, conus), top))
    cauda_centre = [c + (s - r) for c, s, r in zip(sac_centre, sac_ry, [d.cord_ap_mm / 2 for d in dims])]
    cauda = midline_tube(z_anchor, [d.cord_ap_mm / 2 for d in dims], [d.cord_rl_mm / 2 for d in dims], cauda_centre,
                  (sac_bottom, min(top, conus)))
    if collapse is not None:
        canal, sac, cord, cauda = (collapse.tube(t) for t in (canal, sac, cord, cauda))
        top = collapse.point(top, 0.0)[0]
        conus = collapse.point(conus, 0.0)[0]
    outline = _outline(index, centres, (bottom, top))

    def frame(name: str) -> Frame:
        d = level_dimensions(name)
        body_y = -(d.canal_depth_mm / 2 + d.body_depth_mm / 2)
        z, y = (centres[name], body_y) if collapse is None else collapse.point(centres[name], body_y)
        canal_y = y + d.body_depth_mm / 2 + d.canal_depth_mm / 2
        return Frame(z, y, y - d.body_depth_mm / 2, canal_y + d.canal_depth_mm / 2)

    index = next(v for v in vertebrae if v.level == level)
    organs = build_organs(vertebrae, frame, outline, (bottom, top), index)
    loss = (0.0, 0.0) if collapse is None else (collapse.target[0] - collapse.pivot[0], collapse.posterior_loss)
    return Anatomy(level, vertebrae, tuple(discs), canal, sac, cord, cauda, outline, organs, conus, (bottom, top),
                   int(neighbours), float(collapse_pct), float(kyphosis_deg),
                   0.0 if collapse is None else collapse.wedge_deg, (abs(loss[0]), loss[1]))
