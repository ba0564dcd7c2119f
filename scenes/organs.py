"""Organs around the spine: oesophagus, aorta, airway, lungs, heart, kidneys, bowel.

Every size and position comes from ``scenes/data/anatomy.toml`` (each number with its source
key); this module only places them, relative to the vertebrae of the phantom. The frame is
the one of :mod:`scenes.anatomy` (patient LPS mm, canal centre line at x = y = 0 before any
collapse, z = 0 at the index level's mid-height).

Modelling rules, stated rather than hidden:

* The **pleural cavity** is the body outline less the chest wall at the sides and front;
  behind, it reaches back to the level of the canal's posterior edge (the paravertebral
  gutters). Above the full chest it narrows to the thoracic inlet at T1, its width and depth
  growing with the square root of the distance below the inlet ([thorax], [lungs]).
* Each **lung** fills its half of the cavity from a cupola at its apex (T1) down to its base:
  a dome (an ellipsoid of abdominal contents) rises to T8/T9 on the right and a little lower
  on the left, shifted forwards so that a sliver of lung reaches down behind it into the
  costodiaphragmatic recess (mid-T12, inspiration). The spine (plus the pleura's clearance),
  the mediastinal band in front of the vertebral bodies (the mean mediastinal width, from
  the inlet to the diaphragm), the heart, the great vessels, the oesophagus and the airway
  are kept out.
* The **heart** is an ellipsoid opposite T5-T8, one third right and two thirds left of the
  midline (apex 9 cm left), from behind the sternum back to the oesophagus.
* The **airway** is an elliptic tube from the pharynx (C2-C3) through the larynx (C4-C6) and
  the trachea (from C7) to the carina at the T4/T5 disc, its back wall on the prevertebral
  soft tissue in the upper neck and on the oesophagus below; the main bronchi are rods from
  the carina. It is air inside the body.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

from ._data import load_data, value_of
from .morphometry import LEVELS, level_dimensions, level_index
from .shapes import Box, Ellipsoid, EllipticCylinder, Rod, Shape, Tube, Union, midline_tube

__all__ = ["Frame", "build_organs", "outline_section"]


class Frame(NamedTuple):
    """Where one level's vertebral body sits in a (possibly collapsed) phantom, mm."""

    z_mm: float  # mid-height of the body
    body_centre_y_mm: float
    body_front_y_mm: float
    canal_back_y_mm: float


def _table() -> dict:
    return load_data("anatomy")


def _levels_between(first: str, last: str) -> list[str]:
    return list(LEVELS[level_index(first):level_index(last) + 1])


def _present(first: str, last: str, vertebrae) -> list:
    wanted = set(_levels_between(first, last))
    return [v for v in vertebrae if v.level in wanted]


def outline_section(outline: Shape, z_mm: float) -> tuple[float, float, float]:
    """The body outline's cross-section at a height.

    Parameters
    ----------
    outline : EllipticCylinder or Tube
        The body outline of an anatomy.
    z_mm : float
        Height, mm.

    Returns
    -------
    tuple of float
        Centre y, radius y and radius x of the section, mm.

    Examples
    --------
    >>> from scenes.shapes import EllipticCylinder
    >>> outline_section(EllipticCylinder((-60.0, 0.0), (120.0, 160.0), (-50.0, 50.0)), 0.0)
    (-60.0, 120.0, 160.0)
    """
    if isinstance(outline, Tube):
        return (float(np.interp(z_mm, outline.z_mm, outline.centre_y_mm)),
                float(np.interp(z_mm, outline.z_mm, outline.radii_y_mm)),
                float(np.interp(z_mm, outline.z_mm, outline.radii_x_mm)))
    (cy, _), (ry, rx) = outline.centre_yx_mm, outline.radii_yx_mm
    return float(cy), float(ry), float(rx)


def _disc_mid_z(frame: Callable[[str], Frame], upper: str) -> float:
    """Height of the middle of the disc below ``upper``."""
    d = level_dimensions(upper)
    return frame(upper).z_mm - d.body_height_mm / 2 - d.disc_below_mm / 2


def _span_overlaps(z_range, z_limits) -> bool:
    return z_range[1] > z_limits[0] and z_range[0] < z_limits[1]


# -- oesophagus, aorta ---------------------------------------------------------------------
def _oesophagus(vertebrae, z_limits) -> Shape | None:
    oes = _table()["oesophagus"]
    here = _present(oes["first_level"], oes["last_level"], vertebrae)
    if not here:
        return None
    bottom, top = z_limits
    gap = value_of(oes["gap_to_vertebral_body_mm"])
    ry, rx = value_of(oes["ap_mm"]) / 2, value_of(oes["lateral_mm"]) / 2
    z = [v.z_centre_mm for v in here]
    cy = [v.body_front_y_mm - gap - ry for v in here]
    z0 = bottom if here[-1] is vertebrae[-1] else here[-1].z_range_mm[0]
    z1 = top if here[0] is vertebrae[0] else here[0].z_range_mm[1]
    return midline_tube(z, [ry] * len(z), [rx] * len(z), cy, (z0, z1))


def _by_level(rows, name):
    for row in rows:
        if name in row["levels"]:
            return float(row["value"])
    positions = {lv: float(r["value"]) for r in rows for lv in r["levels"]}
    known = sorted(positions, key=level_index)
    xs = [level_index(k) for k in known]
    return float(np.interp(level_index(name), xs, [positions[k] for k in known]))


def _aorta(vertebrae, z_limits) -> Shape | None:
    aorta = _table()["aorta"]
    here = _present(aorta["first_level"], aorta["last_level"], vertebrae)
    if not here:
        return None
    bottom, top = z_limits
    zs, cys, cxs, radii = [], [], [], []
    for v in here:
        radius = _by_level(aorta["diameters"], v.level) / 2
        angle = math.radians(_by_level(aorta["angles"], v.level))
        a, b = v.dims.body_width_mm / 2, v.dims.body_depth_mm / 2
        rho = 1 / math.sqrt((math.cos(angle) / a) ** 2 + (math.sin(angle) / b) ** 2)
        zs.append(v.z_centre_mm)
        cxs.append((rho + radius) * math.cos(angle))
        cys.append(v.body_centre_y_mm - (rho + radius) * math.sin(angle))
        radii.append(radius)
    z0 = bottom if here[-1] is vertebrae[-1] else here[-1].z_range_mm[0]
    z1 = top if here[0] is vertebrae[0] else here[0].z_range_mm[1]
    if len(zs) > 1:
        return Tube(tuple(zs), tuple(radii), tuple(radii), tuple(cys), tuple(cxs), (z0, z1))
    return EllipticCylinder((cys[0], cxs[0]), (radii[0], radii[0]), (z0, z1))


# -- airway ---------------------------------------------------------------------------------
def _airway(frame, outline, z_limits) -> dict[str, Shape]:
    """Larynx (with the pharynx above it), trachea and main bronchi, as far as the phantom reaches."""
    table = _table()
    air, oes = table["airway"], table["oesophagus"]
    bottom, top = z_limits
    first_oes = level_index(oes["first_level"])
    oes_front = value_of(oes["gap_to_vertebral_body_mm"]) + value_of(oes["ap_mm"])
    prevertebral = {k: float(v) for k, v in air["prevertebral_mm"].items() if k in LEVELS}
    a, b = air["carina_disc"]["value"].split("-")
    carina_z = _disc_mid_z(frame, a)
    # Anchors from C2 down to the last level above the carina.
    levels = [name for name in LEVELS[:level_index(b)]]
    wall = {}
    for name in levels:
        f = frame(name)
        if name in prevertebral:
            wall[name] = f.body_front_y_mm - prevertebral[name]
        elif level_index(name) >= first_oes:
            wall[name] = f.body_front_y_mm - oes_front
    known = [n for n in levels if n in wall]
    for name in levels:  # between the pharynx and the oesophagus: interpolated by level
        if name not in wall:
            offsets = [frame(n).body_front_y_mm - wall[n] for n in known]
            offset = float(np.interp(level_index(name), [level_index(n) for n in known], offsets))
            wall[name] = frame(name).body_front_y_mm - offset
    pharynx = (value_of(air["pharynx_ap_mm"]), value_of(air["pharynx_lateral_mm"]))
    larynx = (value_of(air["larynx_diameter_mm"]),) * 2
    trachea = (value_of(air["trachea_ap_mm"]), value_of(air["trachea_lateral_mm"]))
    z, ry, rx, cy = [], [], [], []
    for name in levels:
        if name in air["pharynx_levels"]:
            ap, lateral = pharynx
        elif name in air["larynx_levels"]:
            ap, lateral = larynx
        else:
            ap, lateral = trachea
        z.append(frame(name).z_mm)
        ry.append(ap / 2)
        rx.append(lateral / 2)
        cy.append(wall[name] - ap / 2)
    out: dict[str, Shape] = {}
    # Kept inside the body: at C7 the neck circle (a mid-neck circumference placed by the
    # C7 skin depth) is up to a few mm shallower than the sourced neck contents in front of
    # the body, and the air column is cut there rather than left outside the skin.
    tube = midline_tube(z, ry, rx, cy, (carina_z, max(top, carina_z) + 1.0)) & outline
    trachea_top = frame(air["trachea_first_level"]).z_mm
    if _span_overlaps((trachea_top, top + 1.0), z_limits):
        out["larynx"] = tube & Box((trachea_top, -1e3, -1e3), (top + 1.0, 1e3, 1e3))
    if _span_overlaps((carina_z, trachea_top), z_limits):
        out["trachea"] = tube & Box((carina_z, -1e3, -1e3), (trachea_top, 1e3, 1e3))
    # Main bronchi: rods from the carina, down and out at their angles to the tracheal axis.
    order = np.argsort(z)
    start = (carina_z, float(np.interp(carina_z, np.asarray(z)[order], np.asarray(cy)[order])), 0.0)
    left_width = value_of(air["bronchus_left_to_trachea_width"]) * trachea[1]
    widths = {"left": left_width, "right": left_width / math.sqrt(value_of(air["bronchus_left_to_right_area"]))}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        entry = air[f"bronchus_{side}"]
        length, angle = float(entry["length_mm"]), math.radians(float(entry["angle_from_vertical_deg"]))
        end = (start[0] - length * math.cos(angle), start[1], sign * length * math.sin(angle))
        if _span_overlaps((end[0] - widths[side], start[0]), z_limits):
            out[f"bronchus_{side}"] = Rod(start, end, (widths[side] / 2, widths[side] / 2))
    return out


# -- thorax: pleural cavity, heart, lungs ----------------------------------------------------
def _cavity(frame, outline) -> tuple[Tube, Callable[[float], tuple]]:
    """The pleural cavity as a tube, and its (centre y, radius y, radius x) at any height."""
    table = _table()
    thorax, lungs = table["thorax"], table["lungs"]
    wall = value_of(thorax["chest_wall_mm"])
    inlet_level = thorax["inlet_level"]["value"]
    inlet = frame(inlet_level)
    z_inlet = inlet.z_mm + level_dimensions(inlet_level).body_height_mm / 2
    z_full = frame(thorax["full_chest_level"]["value"]).z_mm
    inlet_front = inlet.body_front_y_mm - value_of(thorax["inlet_ap_mm"])
    inlet_half_width = value_of(thorax["inlet_transverse_mm"]) / 2
    last = lungs["base_level"]["value"]
    levels = _levels_between(inlet_level, LEVELS[min(level_index(last) + 1, len(LEVELS) - 1)])
    zs = [z_inlet] + [frame(name).z_mm for name in levels]
    backs = [inlet.canal_back_y_mm] + [frame(name).canal_back_y_mm for name in levels]
    z, cy, ry, rx = [], [], [], []
    for zi, back in zip(zs, backs):
        o_cy, o_ry, o_rx = outline_section(outline, zi)
        full_front, full_half = o_cy - o_ry + wall, o_rx - wall
        t = min(max((z_inlet - zi) / (z_inlet - z_full), 0.0), 1.0)
        grow = math.sqrt(t)  # [lungs] cavity_widening
        front = inlet_front + grow * (full_front - inlet_front)
        half = inlet_half_width + grow * (full_half - inlet_half_width)
        z.append(zi)
        cy.append((front + back) / 2)
        ry.append((back - front) / 2)
        rx.append(half)
    cavity = midline_tube(z, ry, rx, cy, (min(z), max(z)))
    return cavity, lambda height: (float(np.interp(height, cavity.z_mm, cavity.centre_y_mm)),
                                   float(np.interp(height, cavity.z_mm, cavity.radii_y_mm)),
                                   float(np.interp(height, cavity.z_mm, cavity.radii_x_mm)))


def _heart(frame, outline, organs) -> Shape:
    heart = _table()["heart"]
    wall = value_of(_table()["thorax"]["chest_wall_mm"])
    oes = _table()["oesophagus"]
    first, last = heart["first_level"]["value"], heart["last_level"]["value"]
    z1 = frame(first).z_mm + level_dimensions(first).body_height_mm / 2
    z0 = frame(last).z_mm - level_dimensions(last).body_height_mm / 2
    zc = (z0 + z1) / 2
    middle = _levels_between(first, last)[len(_levels_between(first, last)) // 2]
    back = frame(middle).body_front_y_mm - value_of(oes["gap_to_vertebral_body_mm"]) - value_of(oes["ap_mm"])
    o_cy, o_ry, _ = outline_section(outline, zc)
    front = o_cy - o_ry + wall
    left = value_of(heart["apex_from_midline_mm"])
    fraction = value_of(heart["right_fraction"])
    right = left * fraction / (1 - fraction)
    solid = Ellipsoid((zc, (front + back) / 2, (left - right) / 2),
                      ((z1 - z0) / 2, (back - front) / 2, (left + right) / 2))
    keep_out = [organs[name] for name in ("esophagus", "aorta", "trachea", "bronchus_left", "bronchus_right")
                if name in organs]
    return solid - Union(tuple(keep_out)) if keep_out else solid


def _lungs(frame, vertebrae, outline, z_limits, organs) -> dict[str, Shape]:
    table = _table()
    lungs, thorax = table["lungs"], table["thorax"]
    bottom, top = z_limits
    apex_level = lungs["apex_level"]["value"]
    apex_z = (frame(apex_level).z_mm + level_dimensions(apex_level).body_height_mm / 2
              - value_of(lungs["apex_below_upper_endplate_fraction"]) * level_dimensions(apex_level).body_height_mm)
    base_z = frame(lungs["base_level"]["value"]).z_mm
    if apex_z <= bottom or base_z >= top:
        return {}
    cavity, section = _cavity(frame, outline)
    medial = value_of(lungs["medial_margin_from_midline_mm"])
    clearance = value_of(lungs["transverse_process_to_pleura_mm"])
    cupola = value_of(lungs["cupola_height_mm"])
    recess = value_of(lungs["posterior_recess_depth_mm"])
    a, _ = lungs["dome_right_level"]["value"].split("-")
    dome_right = _disc_mid_z(frame, a)
    dome = {"right": dome_right, "left": dome_right - value_of(lungs["dome_left_lower_mm"])}
    # Keep-outs: the spine with the pleura's clearance, the mediastinal band in front of the
    # vertebral bodies (superior, middle and posterior mediastinum down to the diaphragm),
    # the heart, vessels and airway.
    spine = Union(tuple(v.whole.offset(clearance) for v in vertebrae))
    half_band = value_of(thorax["mediastinum_width_mm"]) / 2
    band = Box((-1e4, -1e3, -half_band), (1e4, max(v.body_front_y_mm for v in vertebrae), half_band))
    others = [organs[name] for name in ("heart", "aorta", "esophagus", "larynx", "trachea", "bronchus_left",
                                        "bronchus_right") if name in organs]
    keep_out = Union((spine, band, *others))
    cap_z = apex_z - cupola
    cap_cy, cap_ry, cap_rx = section(cap_z)
    base_cy, base_ry, base_rx = section(base_z)
    z0, z1 = max(base_z, bottom), min(apex_z, top)
    out = {}
    for side, sign, name in (("left", 1.0, "lung_left"), ("right", -1.0, "lung_right")):
        half = Box((z0, -1e3, medial if sign > 0 else -1e3), (z1, 1e3, 1e3 if sign > 0 else -medial))
        cap = (Ellipsoid((cap_z, cap_cy, sign * cap_rx / 2), (cupola, cap_ry, cap_rx / 2))
               | Box((z0 - 1.0, -1e3, -1e3), (cap_z, 1e3, 1e3)))
        dome_solid = Ellipsoid((base_z, base_cy - recess, sign * base_rx / 2),
                               (dome[side] - base_z, base_ry, base_rx / 2))
        out[name] = (cavity & half & cap) - (keep_out | dome_solid)
    return out


# -- abdomen -------------------------------------------------------------------------------
def _kidneys(vertebrae, frame, index, z_limits) -> dict[str, Shape]:
    kidneys = _table()["kidneys"]
    span = _levels_between(kidneys["first_level"], kidneys["last_level"])
    if not any(v.level in span for v in vertebrae):
        return {}
    bottom, top = z_limits
    first, last = level_dimensions(span[0]), level_dimensions(span[-1])
    z_top = frame(span[0]).z_mm + first.body_height_mm / 2
    z_bottom = frame(span[-1]).z_mm - last.body_height_mm / 2
    z_mid = (z_top + z_bottom) / 2
    length, width, thickness = (value_of(kidneys[k]) for k in ("length_mm", "width_mm", "thickness_mm"))
    x_centre = value_of(kidneys["hilum_from_midline_mm"]) + width / 2
    lift = value_of(kidneys["left_higher_by_mm"])
    y_centre = index.body_centre_y_mm
    out = {}
    for side, name, dz in ((1, "kidney_left", lift / 2), (-1, "kidney_right", -lift / 2)):
        out[name] = Ellipsoid((z_mid + dz, y_centre, side * x_centre), (length / 2, thickness / 2, width / 2)) & \
            Box((bottom, -1e3, -1e3), (top, 1e3, 1e3))
    return out


def _bowel(vertebrae, outline, z_limits) -> Shape | None:
    table = _table()
    bowel, aorta = table["bowel"], table["aorta"]
    here = _present(bowel["first_level"], bowel["last_level"], vertebrae)
    if not here:
        return None
    bottom, top = z_limits
    front = min(v.body_front_y_mm for v in here)
    vessel = 2 * max(r["value"] for r in aorta["diameters"] if set(r["levels"]) & {"L2", "L3"}) / 2
    z0 = bottom if here[-1] is vertebrae[-1] else here[-1].z_range_mm[0]
    z1 = top if here[0] is vertebrae[0] else here[0].z_range_mm[1]
    return outline & Box((z0, -1e3, -1e3), (z1, front - vessel, 1e3))


def build_organs(vertebrae, frame: Callable[[str], Frame], outline: Shape, z_limits, index) -> dict[str, Shape]:
    """Solids of the organs that the phantom's z range reaches, by name.

    Parameters
    ----------
    vertebrae : tuple of Vertebra
        The phantom's vertebrae (superior to inferior), in their final (collapsed) place.
    frame : callable
        Level name -> :class:`Frame` for any level of the column, in its final place.
    outline : Shape
        The body outline.
    z_limits : tuple of float
        Lowest and highest z of the phantom, mm.
    index : Vertebra
        The index vertebra.

    Returns
    -------
    dict of str to Shape
        ``esophagus``, ``aorta``, ``larynx``, ``trachea``, ``bronchus_left``, ``bronchus_right``,
        ``heart``, ``lung_left``, ``lung_right``, ``kidney_left``, ``kidney_right``, ``bowel``,
        those present.

    Examples
    --------
    >>> from scenes.anatomy import build_anatomy
    >>> sorted(build_anatomy("T5").organs)  # build_anatomy calls build_organs
    ['aorta', 'bronchus_left', 'bronchus_right', 'esophagus', 'heart', 'lung_left', 'lung_right', 'trachea']
    >>> sorted(build_anatomy("C5").organs)
    ['esophagus', 'larynx']
    """
    organs: dict[str, Shape] = {}
    for name, solid in (("esophagus", _oesophagus(vertebrae, z_limits)), ("aorta", _aorta(vertebrae, z_limits))):
        if solid is not None:
            organs[name] = solid
    organs.update(_airway(frame, outline, z_limits))
    heart = _table()["heart"]
    first, last = heart["first_level"]["value"], heart["last_level"]["value"]
    heart_span = (frame(last).z_mm - level_dimensions(last).body_height_mm / 2,
                  frame(first).z_mm + level_dimensions(first).body_height_mm / 2)
    if _span_overlaps(heart_span, z_limits):
        organs["heart"] = _heart(frame, outline, organs)
    organs.update(_lungs(frame, vertebrae, outline, z_limits, organs))
    organs.update(_kidneys(vertebrae, frame, index, z_limits))
    bowel = _bowel(vertebrae, outline, z_limits)
    if bowel is not None:
        organs["bowel"] = bowel
    return organs
