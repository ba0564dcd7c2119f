"""Lesion models: intraosseous disease, epidural extension, paraspinal extension, collapse.

The epidural part is built from one continuous number, its *reach*: how far (mm) its
posterior front has advanced into the canal from the canal's anterior edge, at the index
level's mid-height. The tissues yield in order, following the geometric reading of the ESCC
(Bilsky) grades in the project reference (``scores.escc_bilsky.phantom_geometry_rules``):

==========  ===========================================================================
band        construction (e = posterior epidural fat depth, c = anterior CSF depth,
            a = cord/cauda AP diameter; the front is measured from the canal's edge)
==========  ===========================================================================
1a          front < 0.6 e: the epidural fat yields, sac and cord are pushed back intact
1b          front < 0.6 e + c: the sac is indented, CSF still between tumour and cord
1c          ... + 0.25 a: tumour abuts and hugs the cord, cord shape intact
2           ... + 0.6 a: cord indented (compressed), CSF left around it
3           beyond: cord indented and the CSF around it obliterated by tumour
==========  ===========================================================================

:func:`reach_for_grade` picks the reach in the middle of a grade's band, so a requested
grade is built; growth (:func:`grown`) scales the reach, and the grade is then *measured*
(:func:`scenes.escc.measure_escc_grade`), never assumed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .anatomy import Anatomy
import numpy as np

from .shapes import Box, Ellipsoid, Empty, Shape, Tube, Union

__all__ = ["Lesion", "LesionGeometry", "ESCC_GRADES", "SITES", "KINDS", "reach_for_grade",
           "lesion_geometry", "posterolateral_of", "grown"]

ESCC_GRADES = ("0", "1a", "1b", "1c", "2", "3")
SITES = ("body", "pedicle_left", "pedicle_right", "posterior")
KINDS = ("lytic", "blastic", "mixed")
SIDES = ("midline", "left", "right")

# Where in its band a requested grade is built.
_BAND_TARGET = {"1a": ("fat", 0.8), "1b": ("csf", 0.70), "1c": ("cord", 0.12), "2": ("cord", 0.42), "3": ("cord", 0.80)}
#: Fraction of the posterior epidural fat the sac may be pushed into before it deforms.
FAT_YIELD = 0.6


@dataclass(frozen=True)
class Lesion:
    """What the metastasis is and how far it has spread.

    Parameters
    ----------
    sites : tuple of str
        Bone involved: any of ``"body"``, ``"pedicle_left"``, ``"pedicle_right"``, ``"posterior"``.
    kind : str
        ``"lytic"``, ``"blastic"`` or ``"mixed"``; sets the density of the bone disease.
    body_fraction : float
        Fraction (0..1] of the vertebral body's volume replaced by tumour (when ``"body"``).
    epidural_reach_mm : float
        Depth of the epidural front into the canal from its anterior edge; 0 = none.
    epidural_side : str
        ``"midline"``, ``"left"`` or ``"right"``: where the epidural mass is centred.
    paraspinal_mm : float
        Thickness of soft-tissue extension outside the body (0 = none).
    collapse_pct : float
        Loss of vertebral-body height in percent (0..100).
    requested_grade : str or None
        The ESCC grade the case asked for (for the record; the scene's grade is measured).
    """

    sites: tuple = ("body",)
    kind: str = "lytic"
    body_fraction: float = 0.5
    epidural_reach_mm: float = 0.0
    epidural_side: str = "midline"
    paraspinal_mm: float = 0.0
    collapse_pct: float = 0.0
    requested_grade: str | None = None

    def __post_init__(self):
        sites = tuple(self.sites)
        bad = [s for s in sites if s not in SITES]
        if bad or not sites:
            raise ValueError(f"Lesion.sites must be a non-empty subset of {SITES}, got {sites}")
        object.__setattr__(self, "sites", sites)
        if self.kind not in KINDS:
            raise ValueError(f"Lesion.kind must be one of {KINDS}, got {self.kind!r}")
        if not 0 < self.body_fraction <= 1:
            raise ValueError(f"Lesion.body_fraction must be in (0, 1], got {self.body_fraction}")
        if not 0 <= self.epidural_reach_mm <= 60 or not math.isfinite(self.epidural_reach_mm):
            raise ValueError(f"Lesion.epidural_reach_mm must be in 0..60 mm, got {self.epidural_reach_mm}")
        if self.epidural_side not in SIDES:
            raise ValueError(f"Lesion.epidural_side must be one of {SIDES}, got {self.epidural_side!r}")
        if not 0 <= self.paraspinal_mm <= 60:
            raise ValueError(f"Lesion.paraspinal_mm must be in 0..60 mm, got {self.paraspinal_mm}")
        if not 0 <= self.collapse_pct < 100:
            raise ValueError(f"Lesion.collapse_pct must be in 0..<100 %, got {self.collapse_pct}")
        if self.requested_grade is not None and self.requested_grade not in ESCC_GRADES:
            raise ValueError(f"Lesion.requested_grade must be one of {ESCC_GRADES}, got {self.requested_grade!r}")


@dataclass(frozen=True)
class LesionGeometry:
    """Solids of a lesion in a given anatomy, plus the neural structures it reshaped."""

    bone: Shape
    epidural: Shape
    paraspinal: Shape
    sac: Shape
    cord: Shape
    cauda: Shape
    body: Shape  # the index vertebral body after any collapse
    body_core: Shape
    csf_obliterated: bool


def posterolateral_of(sites) -> str:
    """SINS posterolateral involvement from the sites: 'none', 'unilateral' or 'bilateral'."""
    pedicles = sum(site in sites for site in ("pedicle_left", "pedicle_right"))
    if pedicles == 2 or ("posterior" in sites and pedicles == 1):
        return "bilateral"
    if pedicles == 1:
        return "unilateral"
    return "none"


def _neural_geometry(anatomy: Anatomy) -> dict:
    """Canal, sac and neural fronts at the index level's mid-height, and the band limits."""
    profile = anatomy.neural_profile(0.0)
    canal, sac, neural = profile["canal"], profile["sac"], profile["neural"]
    canal_front = canal["centre_y_mm"] - canal["radius_y_mm"]
    sac_front = sac["centre_y_mm"] - sac["radius_y_mm"]
    neural_front = neural["centre_y_mm"] - neural["radius_y_mm"]
    fat = (canal["centre_y_mm"] + canal["radius_y_mm"]) - (sac["centre_y_mm"] + sac["radius_y_mm"])
    shift = FAT_YIELD * max(fat, 0.0)
    csf = neural_front - sac_front
    neural_ap = 2 * neural["radius_y_mm"]
    base = sac_front - canal_front + shift  # reach at which the displaced sac starts to deform
    return {"canal": canal, "canal_front": canal_front, "shift": shift, "csf": csf, "neural_ap": neural_ap,
            "limits": {"1a": base, "1b": base + csf, "1c": base + csf + 0.25 * neural_ap,
                       "2": base + csf + 0.6 * neural_ap}}


def reach_for_grade(anatomy: Anatomy, grade: str) -> float:
    """Epidural reach (mm from the canal's front) that builds ``grade`` in this anatomy.

    Examples
    --------
    >>> from scenes.anatomy import build_anatomy
    >>> anatomy = build_anatomy("T10")
    >>> reach_for_grade(anatomy, "0")
    0.0
    >>> reach_for_grade(anatomy, "1b") < reach_for_grade(anatomy, "2")
    True
    """
    if grade not in ESCC_GRADES:
        raise ValueError(f"ESCC grade must be one of {ESCC_GRADES}, got {grade!r}")
    if grade == "0":
        return 0.0
    g = _neural_geometry(anatomy)
    base, fraction = _BAND_TARGET[grade]
    start = {"fat": 0.0, "csf": g["limits"]["1a"], "cord": g["limits"]["1b"]}[base]
    scale = {"fat": g["limits"]["1a"], "csf": g["csf"], "cord": g["neural_ap"]}[base]
    return float(start + fraction * scale)


def _band(anatomy: Anatomy, reach: float) -> str:
    if reach <= 0:
        return "0"
    limits = _neural_geometry(anatomy)["limits"]
    for grade in ("1a", "1b", "1c", "2"):
        if reach < limits[grade]:
            return grade
    return "3"


def _displaced(shape: Shape, z_centre: float, half_extent: float, shift: float) -> Shape:
    """A z-tube pushed posteriorly by ``shift`` at ``z_centre``, tapering to 0 at +-half_extent."""
    if not isinstance(shape, Tube) or shift == 0:
        return shape
    z = np.asarray(shape.z_mm, float)
    keep = np.abs(z - z_centre) >= half_extent
    new_z = np.concatenate([z[keep], [z_centre - half_extent, z_centre, z_centre + half_extent]])
    order = np.argsort(new_z)
    new_z = new_z[order]

    def at(values, offset=0.0):
        values = np.asarray(values, float)
        extra = [np.interp(z_centre - half_extent, z, values), np.interp(z_centre, z, values) + offset,
                 np.interp(z_centre + half_extent, z, values)]
        return tuple(np.concatenate([values[keep], extra])[order])

    return Tube(tuple(new_z), at(shape.radii_y_mm), at(shape.radii_x_mm), at(shape.centre_y_mm, shift),
                at(shape.centre_x_mm), shape.z_range_mm)


def _body_tumour(index, body: Shape, fraction: float) -> Shape:
    """An ellipsoid of tumour in the vertebral body occupying ``fraction`` of the body's volume.

    Metastases seed the marrow near the posterior body wall (basivertebral plexus): the
    tumour is pushed back as far as it fits. Its size is found by bisection on a fixed lattice
    of points in the body (deterministic), because an ellipsoid cut by the body is not a
    closed-form fraction of it.
    """
    d = index.dims
    half = np.array([d.body_height_mm / 2, d.body_depth_mm / 2, d.body_width_mm / 2])
    centre = np.array([index.z_centre_mm, index.body_centre_y_mm, 0.0])
    axes = [centre[a] + half[a] * (np.arange(24) + 0.5) / 12 - half[a] for a in range(3)]
    z, y, x = np.meshgrid(*axes, indexing="ij")
    inside = body.contains(z, y, x)
    z, y, x = z[inside], y[inside], x[inside]

    def tumour(scale):
        radii = tuple(half * scale)
        centre_y = index.body_centre_y_mm + (d.body_depth_mm / 2 - radii[1])
        return Ellipsoid((index.z_centre_mm, centre_y, 0.0), radii)

    low, high = 0.0, 2.0
    for _ in range(30):
        middle = (low + high) / 2
        if tumour(middle).contains(z, y, x).mean() < fraction:
            low = middle
        else:
            high = middle
    return tumour(high) & body


def lesion_geometry(anatomy: Anatomy, lesion: Lesion) -> LesionGeometry:
    """Build the lesion's solids in ``anatomy`` and reshape the sac and cord around it."""
    index = anatomy.index
    d = index.dims
    z0, z1 = index.z_range_mm
    height = d.body_height_mm
    # Collapse: the upper endplate sinks; the space left becomes soft tissue (disc/haematoma).
    body, core = index.body, index.body_core
    if lesion.collapse_pct > 0:
        top = z1 - height * lesion.collapse_pct / 100
        keep = Box((z0 - 1, -1e3, -1e3), (top, 1e3, 1e3))
        body, core = body & keep, core & keep.offset(-index.shell_mm)
    parts = []
    if "body" in lesion.sites:
        parts.append(_body_tumour(index, body, lesion.body_fraction))
    if "pedicle_left" in lesion.sites:
        parts.append(index.pedicle_left | index.transverse_left)
    if "pedicle_right" in lesion.sites:
        parts.append(index.pedicle_right | index.transverse_right)
    if "posterior" in lesion.sites:
        parts.append(index.lamina | index.spinous)
    bone = Union(tuple(parts)) if parts else Empty()

    sac, cord, cauda = anatomy.sac, anatomy.cord, anatomy.cauda
    epidural: Shape = Empty()
    obliterated = False
    if lesion.epidural_reach_mm > 0:
        g = _neural_geometry(anatomy)
        canal, canal_front = g["canal"], g["canal_front"]
        reach = lesion.epidural_reach_mm
        band = _band(anatomy, reach)
        offset = {"midline": 0.0, "left": 0.35, "right": -0.35}[lesion.epidural_side] * canal["radius_x_mm"]
        mass = Ellipsoid((index.z_centre_mm, canal_front, offset), (0.45 * height, reach, 0.9 * canal["radius_x_mm"]))
        in_canal = mass & anatomy.canal
        # The epidural fat yields first: sac and its contents move back, shape intact.
        shift = min(reach, g["shift"])
        sac, cord, cauda = (_displaced(t, index.z_centre_mm, height, shift) for t in (sac, cord, cauda))
        # Cord above the conus, cauda below it: whichever is at this height yields alike.
        neural = cord | cauda
        if band == "1a":
            epidural = in_canal - sac
        elif band in ("1b", "1c"):
            epidural = in_canal - neural
            sac = sac - mass
        else:
            epidural = in_canal
            displaced_sac = sac
            sac = sac - mass
            cord, cauda = cord - mass, cauda - mass
            if band == "3":
                slab = Box((index.z_centre_mm - 0.3 * height, -1e3, -1e3), (index.z_centre_mm + 0.3 * height, 1e3, 1e3))
                remaining = cord | cauda
                epidural = epidural | ((displaced_sac & slab) - remaining)
                sac = (sac - slab) | (remaining & slab)
                obliterated = True
    paraspinal: Shape = Empty()
    if lesion.paraspinal_mm > 0:
        side = -1.0 if lesion.epidural_side == "right" else 1.0
        centre = (index.z_centre_mm, index.body_centre_y_mm, side * d.body_width_mm / 2)
        paraspinal = Ellipsoid(centre, (0.45 * height, lesion.paraspinal_mm + d.body_depth_mm / 4, lesion.paraspinal_mm)) - body
    return LesionGeometry(bone, epidural, paraspinal, sac, cord, cauda, body, core, obliterated)


def grown(lesion: Lesion, *, volume_factor: float, anatomy: Anatomy) -> Lesion:
    """The lesion after its volume has multiplied by ``volume_factor`` (>= 1).

    Linear sizes scale by the cube root: body involvement grows until the whole body is
    replaced, the epidural front advances into the canal (towards the cord), a paraspinal
    component thickens. A lesion without epidural disease starts one once the body is full,
    its front at the body's posterior wall.
    """
    if not volume_factor >= 1:
        raise ValueError(f"volume_factor must be >= 1, got {volume_factor}")
    linear = volume_factor ** (1 / 3)
    body_fraction = lesion.body_fraction
    overflow = 1.0
    if "body" in lesion.sites:
        body_fraction = min(1.0, lesion.body_fraction * volume_factor)
        overflow = max(1.0, lesion.body_fraction * volume_factor)  # tumour volume beyond a full body
    reach = lesion.epidural_reach_mm
    canal = anatomy.neural_profile(0.0)["canal"]
    max_reach = 2 * canal["radius_y_mm"]
    if reach > 0:
        reach = min(max_reach, reach * linear)
    elif overflow > 1.0:
        reach = min(max_reach, anatomy.index.dims.body_depth_mm * (overflow ** (1 / 3) - 1))
    paraspinal = min(60.0, lesion.paraspinal_mm * linear)
    return replace(lesion, body_fraction=body_fraction, epidural_reach_mm=float(reach), paraspinal_mm=paraspinal)
