"""Parametric anatomy of a vertebral level, its neighbours and the organs around it.

All sizes come from :mod:`scenes.morphometry` (per level) and ``scenes/data/anatomy.toml``
(regional organs); this module only places them. The frame, in patient LPS mm:

* the spinal canal's centre line is x = 0, y = 0 (a straight column: no lordosis or
  kyphosis is modelled);
* z = 0 is the mid-height of the index level's vertebral body; levels above have z > 0;
* each body's posterior wall touches the canal's anterior edge; the thecal sac lies on the
  posterior longitudinal ligament (front of the canal) with the epidural fat behind it; the
  cord is centred in the sac; below the conus the cauda equina roots lie dorsally in the
  sac (supine, cohen1991).

Simplifications (stated, not hidden): cross-sections are ellipses; pedicles, processes and
screws are elliptic rods; organs are ellipsoids or tubes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ._data import load_data, value_of
from .morphometry import LEVELS, PHANTOM_LEVELS, LevelDimensions, level_dimensions, level_index, region_of
from .shapes import Box, Ellipsoid, EllipticCylinder, Empty, Rod, Shape, Tube, Union

__all__ = ["Vertebra", "Anatomy", "build_anatomy", "column_z_centres"]


@dataclass(frozen=True)
class Vertebra:
    """Solids of one vertebra (patient mm) and the numbers they were made from."""

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
    """The geometry of one phantom: index level, neighbours, neural axis and organs."""

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

    def vertebra(self, level: str | None = None) -> Vertebra:
        level = level or self.level
        for vertebra in self.vertebrae:
            if vertebra.level == level:
                return vertebra
        raise KeyError(f"anatomy of {self.level} has no vertebra {level}")

    @property
    def index(self) -> Vertebra:
        return self.vertebra(self.level)

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


def _levels_between(first: str, last: str) -> list[str]:
    return list(LEVELS[level_index(first):level_index(last) + 1])


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


def _tube(z_list, ry, rx, cy, z_range) -> Shape:
    if z_range[1] <= z_range[0]:
        return Empty()
    order = np.argsort(z_list)
    pick = lambda values: tuple(float(np.asarray(values)[i]) for i in order)  # noqa: E731
    return Tube(pick(z_list), pick(ry), pick(rx), pick(cy), tuple(0.0 for _ in order), tuple(z_range))


def _conus_z(centres: dict[str, float]) -> float:
    # Mean conus level: lower third of L1 (saifuddin1998_conus) -> centre of that third.
    l1 = level_dimensions("L1")
    return centres["L1"] - l1.body_height_mm / 3


def _outline(index: Vertebra) -> Shape:
    table = _anatomy_table()["body_outline"]
    d = index.dims
    y_skin = d.canal_depth_mm / 2 + d.skin_to_canal_mm
    region = region_of(index.level)
    if region == "cervical":
        radius = value_of(table["neck_circumference_mm"]) / (2 * math.pi)
        radii = (radius, radius)
    elif region == "thoracic":
        radii = (value_of(table["chest_depth_mm"]) / 2, value_of(table["chest_breadth_mm"]) / 2)
    else:
        radii = (value_of(table["abdomen_depth_mm"]) / 2, value_of(table["chest_breadth_mm"]) / 2)
    return radii, y_skin


def build_anatomy(level: str, *, neighbours: int = 1) -> Anatomy:
    """Geometry of a phantom centred on ``level`` with ``neighbours`` levels above and below.

    Examples
    --------
    >>> anatomy = build_anatomy("T10")
    >>> [v.level for v in anatomy.vertebrae]
    ['T9', 'T10', 'T11']
    """
    if level not in PHANTOM_LEVELS:
        raise ValueError(f"level must be one of {', '.join(PHANTOM_LEVELS)}, got {level!r}")
    if not 1 <= int(neighbours) <= 3:
        raise ValueError(f"neighbours must be 1..3, got {neighbours}")
    centres = column_z_centres(level)
    position = level_index(level)
    names = [LEVELS[i] for i in range(max(0, position - neighbours), min(len(LEVELS), position + neighbours + 1))]
    vertebrae = tuple(_vertebra(name, centres[name]) for name in names)
    discs = []
    for upper, lower in zip(vertebrae[:-1], vertebrae[1:]):
        height = upper.dims.disc_below_mm
        if height <= 0:
            continue
        z0, z1 = lower.z_range_mm[1], upper.z_range_mm[0]
        depth = (upper.dims.body_depth_mm + lower.dims.body_depth_mm) / 4
        width = (upper.dims.body_width_mm + lower.dims.body_width_mm) / 4
        y = (upper.body_centre_y_mm + lower.body_centre_y_mm) / 2
        discs.append((f"disc_{upper.level}_{lower.level}", EllipticCylinder((y, 0.0), (depth, width), (z0, z1))))
    top = vertebrae[0].z_range_mm[1] + vertebrae[0].dims.body_height_mm / 2
    bottom = vertebrae[-1].z_range_mm[0] - vertebrae[-1].dims.body_height_mm / 2
    # Neural axis: anchors at every level centre of the column (so tubes taper smoothly).
    anchor_levels = [name for name in LEVELS if bottom - 40 <= centres[name] <= top + 40]
    dims = [level_dimensions(name) for name in anchor_levels]
    z_anchor = [centres[name] for name in anchor_levels]
    canal = _tube(z_anchor, [d.canal_depth_mm / 2 for d in dims], [d.canal_width_mm / 2 for d in dims],
                  [0.0] * len(dims), (bottom, top))
    sac_centre = [-d.canal_depth_mm / 2 + d.sac_ap_mm / 2 for d in dims]
    sac_ry = [d.sac_ap_mm / 2 for d in dims]
    sac_rx = [d.sac_rl_mm / 2 for d in dims]
    sac_bottom = bottom if "S2" not in anchor_levels else max(bottom, centres["S2"])
    sac = _tube(z_anchor, sac_ry, sac_rx, sac_centre, (sac_bottom, top))
    conus = _conus_z(centres)
    conus_table = load_data("anatomy").get("conus", {})
    cord_ry = [d.cord_ap_mm / 2 for d in dims]
    cord_rx = [d.cord_rl_mm / 2 for d in dims]
    cord_z = list(z_anchor)
    if "L1" in anchor_levels:  # the conus tapers from the T12 cord to the tip
        i = anchor_levels.index("L1")
        cord_ry[i], cord_rx[i] = value_of(conus_table["ap_mm"]) / 2, value_of(conus_table["rl_mm"]) / 2
    cord = _tube(cord_z, cord_ry, cord_rx, sac_centre, (max(bottom, conus), top))
    cauda_centre = [c + (s - r) for c, s, r in zip(sac_centre, sac_ry, [d.cord_ap_mm / 2 for d in dims])]
    cauda = _tube(z_anchor, [d.cord_ap_mm / 2 for d in dims], [d.cord_rl_mm / 2 for d in dims], cauda_centre,
                  (sac_bottom, min(top, conus)))
    index = next(v for v in vertebrae if v.level == level)
    (outline_ry, outline_rx), y_skin = _outline(index)
    outline = EllipticCylinder((y_skin - outline_ry, 0.0), (outline_ry, outline_rx), (bottom, top))
    organs = _organs(level, vertebrae, centres, outline, (bottom, top), index)
    return Anatomy(level, vertebrae, tuple(discs), canal, sac, cord, cauda, outline, organs, conus, (bottom, top))


def _present(first: str, last: str, vertebrae) -> list:
    wanted = set(_levels_between(first, last))
    return [v for v in vertebrae if v.level in wanted]


def _organs(level, vertebrae, centres, outline, z_limits, index) -> dict[str, Shape]:
    table = _anatomy_table()
    organs: dict[str, Shape] = {}
    bottom, top = z_limits
    # Oesophagus: in front of the bodies, midline.
    oes = table["oesophagus"]
    here = _present(oes["first_level"], oes["last_level"], vertebrae)
    if here:
        gap = value_of(oes["gap_to_vertebral_body_mm"])
        ry, rx = value_of(oes["ap_mm"]) / 2, value_of(oes["lateral_mm"]) / 2
        z = [v.z_centre_mm for v in here]
        cy = [v.body_front_y_mm - gap - ry for v in here]
        z0 = bottom if here[-1] is vertebrae[-1] else here[-1].z_range_mm[0]
        z1 = top if here[0] is vertebrae[0] else here[0].z_range_mm[1]
        organs["esophagus"] = _tube(z, [ry] * len(z), [rx] * len(z), cy, (z0, z1))
    # Aorta: touching the body at the level's angle from the patient's left.
    aorta = table["aorta"]
    here = _present(aorta["first_level"], aorta["last_level"], vertebrae)
    if here:
        def by_level(rows, name):
            for row in rows:
                if name in row["levels"]:
                    return float(row["value"])
            positions = {lv: float(r["value"]) for r in rows for lv in r["levels"]}
            known = sorted(positions, key=level_index)
            xs = [level_index(k) for k in known]
            return float(np.interp(level_index(name), xs, [positions[k] for k in known]))
        zs, cys, cxs, radii = [], [], [], []
        for v in here:
            radius = by_level(aorta["diameters"], v.level) / 2
            angle = math.radians(by_level(aorta["angles"], v.level))
            a, b = v.dims.body_width_mm / 2, v.dims.body_depth_mm / 2
            rho = 1 / math.sqrt((math.cos(angle) / a) ** 2 + (math.sin(angle) / b) ** 2)
            zs.append(v.z_centre_mm)
            cxs.append((rho + radius) * math.cos(angle))
            cys.append(v.body_centre_y_mm - (rho + radius) * math.sin(angle))
            radii.append(radius)
        z0 = bottom if here[-1] is vertebrae[-1] else here[-1].z_range_mm[0]
        z1 = top if here[0] is vertebrae[0] else here[0].z_range_mm[1]
        organs["aorta"] = Tube(tuple(zs), tuple(radii), tuple(radii), tuple(cys), tuple(cxs), (z0, z1)) \
            if len(zs) > 1 else EllipticCylinder((cys[0], cxs[0]), (radii[0], radii[0]), (z0, z1))
    # Lungs: the thorax inside the chest wall, lateral to the posterior pleural margin,
    # kept clear of the spine by the transverse-process-to-pleura distance.
    lungs = table["lungs"]
    here = _present(lungs["first_level"], lungs["last_level"], vertebrae)
    if here:
        wall = index.dims.skin_to_canal_mm
        inner = outline.offset(-wall)
        medial = value_of(lungs["medial_margin_from_midline_mm"])
        clearance = value_of(lungs["transverse_process_to_pleura_mm"])
        z0 = bottom if here[-1] is vertebrae[-1] else here[-1].z_range_mm[0]
        z1 = top if here[0] is vertebrae[0] else here[0].z_range_mm[1]
        spine = Union(tuple(v.whole.offset(clearance) for v in here))
        keep_out = spine | organs.get("aorta", Empty()) | organs.get("esophagus", Empty())
        for side, name in ((1, "lung_left"), (-1, "lung_right")):
            half = Box((z0, -1e3, medial if side > 0 else -1e3), (z1, 1e3, 1e3 if side > 0 else -medial))
            organs[name] = (inner & half) - keep_out
    # Kidneys: ellipsoids beside the column, hilum 5 cm from the midline at L1.
    kidneys = table["kidneys"]
    span = _levels_between(kidneys["first_level"], kidneys["last_level"])
    if any(v.level in span for v in vertebrae):
        first, last = level_dimensions(span[0]), level_dimensions(span[-1])
        z_top = centres[span[0]] + first.body_height_mm / 2
        z_bottom = centres[span[-1]] - last.body_height_mm / 2
        z_mid = (z_top + z_bottom) / 2
        length, width, thickness = (value_of(kidneys[k]) for k in ("length_mm", "width_mm", "thickness_mm"))
        x_centre = value_of(kidneys["hilum_from_midline_mm"]) + width / 2
        lift = value_of(kidneys["left_higher_by_mm"])
        y_centre = index.body_centre_y_mm
        for side, name, dz in ((1, "kidney_left", lift / 2), (-1, "kidney_right", -lift / 2)):
            organs[name] = Ellipsoid((z_mid + dz, y_centre, side * x_centre), (length / 2, thickness / 2, width / 2)) & \
                Box((bottom, -1e3, -1e3), (top, 1e3, 1e3))
    # Bowel: abdominal contents anterior to the great vessels.
    bowel = table["bowel"]
    here = _present(bowel["first_level"], bowel["last_level"], vertebrae)
    if here:
        front = min(v.body_front_y_mm for v in here)
        vessel = 2 * max(r["value"] for r in aorta["diameters"] if set(r["levels"]) & {"L2", "L3"}) / 2
        z0 = bottom if here[-1] is vertebrae[-1] else here[-1].z_range_mm[0]
        z1 = top if here[0] is vertebrae[0] else here[0].z_range_mm[1]
        organs["bowel"] = outline & Box((z0, -1e3, -1e3), (z1, front - vessel, 1e3))
    return organs
