"""Lesion models: intraosseous disease, epidural extension, paraspinal extension, collapse.

Bone disease stays in bone (it is clipped to the outside of the spinal canal); whatever lies
inside the canal is epidural. The epidural part is built from one continuous number, its
*reach*: how far (mm) its front has advanced into the canal from the wall it grows from (the
posterior body wall for a diseased body or pedicle, the laminae for posterior elements alone;
:func:`scenes.mass_effect.approach_of`), at the index level's mid-height. The canal contents
yield to it by mass effect (:mod:`scenes.mass_effect`): the sac and the cord are pushed,
indented and flattened, never replaced, in the order of the ESCC (Bilsky) grades read
geometrically (``scores.escc_bilsky.phantom_geometry_rules`` of the project reference):

==========  ===========================================================================
band        the front lies between (:func:`scenes.mass_effect.compression_bands`)
==========  ===========================================================================
1a          0 and ``indent``: the epidural fat yields, the sac is pushed away intact
1b          ``indent`` and ``touch``: the sac is indented, CSF still in front of the cord
1c          ``touch`` and ``flatten``: tumour abuts the cord and pushes it, shape intact
2           ``flatten`` and ``crush``: the cord is flattened (area kept), CSF around it
3           ``crush`` and ``most``: the cord loses area and no CSF is left around it
==========  ===========================================================================

:func:`grade_band` narrows each band to where the ESCC measurement's own thresholds hold
(e.g. 1c ends once the cord's AP/RL ratio has fallen by what counts as compressed), and says
when a grade has no room at all. :func:`reach_for_grade` picks a reach inside a grade's band; :func:`scenes.escc.fit_reach`
checks it by measuring (:func:`scenes.escc.measure_escc_grade`) and searches the band until
the measured grade agrees. Growth (:func:`grown`) scales the reach; the grade is then
*measured*, never assumed, and it never falls because every stage of the yield only
advances with the front.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ._data import load_data, value_of
from .anatomy import Anatomy
from .mass_effect import HEIGHT_FRACTION, approach_of, compress, compression_bands, front_where
from .shapes import Ellipsoid, Empty, Shape, Union

__all__ = ["Lesion", "LesionGeometry", "ESCC_GRADES", "SITES", "KINDS", "SIDES", "reach_for_grade", "grade_band",
           "lesion_geometry", "posterolateral_of", "grown", "approach_of"]

ESCC_GRADES = ("0", "1a", "1b", "1c", "2", "3")
SITES = ("body", "pedicle_left", "pedicle_right", "posterior")
KINDS = ("lytic", "blastic", "mixed")
SIDES = ("midline", "left", "right")

#: The thresholds the ESCC measurement reads grades by (escc.toml [measurement]): the
#: construction aims between them, so that the first reach tried usually measures right.
_MEASURE = {name: value_of(entry) for name, entry in load_data("escc")["measurement"].items()}


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
        Depth of the epidural front into the canal from the wall it grows from (the anterior
        wall unless only posterior elements are diseased, then the posterior one); 0 = none.
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
    approach: str = "ventral"  # the canal wall the epidural part grows from
    front_mm: float = 0.0  # how far it reaches (the lesion's reach, stopped at the crushed cord)


def posterolateral_of(sites) -> str:
    """SINS posterolateral involvement from the sites: 'none', 'unilateral' or 'bilateral'."""
    pedicles = sum(site in sites for site in ("pedicle_left", "pedicle_right"))
    if pedicles == 2 or ("posterior" in sites and pedicles == 1):
        return "bilateral"
    if pedicles == 1:
        return "unilateral"
    return "none"


def grade_band(anatomy: Anatomy, grade: str, *, approach: str = "ventral", side: str = "midline") -> tuple | None:
    """(low, first try, high): the reaches (mm) between which ``grade`` is built by construction,
    or None when the construction cannot build it at all.

    The grade's band of the yield (:func:`scenes.mass_effect.compression_bands`) is narrowed
    to where the measurement's thresholds (``escc.toml`` [measurement]) are met: for 1b the
    sac has lost the area that counts as deformed while the tumour is still farther from the
    cord than the contact distance; for 1c the tumour touches the cord and its AP/RL ratio has
    fallen by less than what counts as compressed; for 2 by more, short of the crush; 1a is
    tried in the deeper half of its band, where the tumour shows on a coarse grid too. When
    that band is empty the grade cannot be built (e.g. 1b from behind where the cauda equina
    lies against the dorsal dura: the sac cannot deform without the roots being touched).
    Within it the first try is the middle of the part where the thresholds are met twice
    over (or of the band itself when that part is empty).

    Examples
    --------
    >>> from scenes.anatomy import build_anatomy
    >>> low, first, high = grade_band(build_anatomy("T10"), "2")
    >>> low < first < high
    True
    >>> grade_band(build_anatomy("L3"), "1b", approach="dorsal") is None
    True
    """
    if grade not in ESCC_GRADES:
        raise ValueError(f"ESCC grade must be one of {ESCC_GRADES}, got {grade!r}")
    if grade == "0":
        return 0.0, 0.0, 0.0
    bands = compression_bands(anatomy, approach, side)

    def where(**condition) -> float:
        return front_where(anatomy, approach=approach, side=side, **condition)

    sac_loss, contact, neural_loss = (_MEASURE[k] for k in ("sac_loss", "contact_mm", "neural_loss"))
    if grade == "1a":  # (clearly: deep enough to be seen on a coarse grid as well)
        band = (0.0, min(bands["indent"], where(sac_area_loss=sac_loss)))
        clear = (band[1] / 2, band[1])
    elif grade == "1b":
        band = (where(sac_area_loss=sac_loss), where(gap_mm=contact))
        clear = (where(sac_area_loss=2 * sac_loss), where(gap_mm=2 * contact))
    elif grade == "1c":
        band = (bands["touch"], where(ratio_loss=neural_loss))
        clear = (bands["touch"], where(ratio_loss=neural_loss / 2))
    elif grade == "2":
        band = (where(ratio_loss=neural_loss), bands["crush"])
        clear = (min(where(ratio_loss=2 * neural_loss), bands["crush"]), bands["crush"])
    else:
        band = clear = (bands["crush"], bands["most"])
    if band[1] <= band[0]:
        return None
    low, high = clear if clear[1] > clear[0] else band
    return float(band[0]), float((low + high) / 2), float(band[1])


def reach_for_grade(anatomy: Anatomy, grade: str, *, approach: str = "ventral", side: str = "midline") -> float:
    """Epidural reach (mm from the canal wall the mass grows from) that builds ``grade``.

    The first try of :func:`grade_band`; :func:`scenes.escc.fit_reach` checks it by
    measuring and moves it within the band when the measurement disagrees.

    Examples
    --------
    >>> from scenes.anatomy import build_anatomy
    >>> anatomy = build_anatomy("T10")
    >>> reach_for_grade(anatomy, "0")
    0.0
    >>> reach_for_grade(anatomy, "1b") < reach_for_grade(anatomy, "2")
    True
    """
    band = grade_band(anatomy, grade, approach=approach, side=side)
    if band is None:
        raise ValueError(f"ESCC {grade} cannot be built at {anatomy.level} with {approach} epidural extension "
                         f"({side}): see grade_band")
    return band[1]


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
    """Build the lesion's solids in ``anatomy`` and reshape the sac and cord around it.

    Collapse is the anatomy's (:func:`scenes.phantom.anatomy_with_collapse` builds the wedge
    and the approaching neighbours); ``lesion.collapse_pct`` is not applied again here."""
    if lesion.collapse_pct > 0 and anatomy.collapse_pct != lesion.collapse_pct:
        raise ValueError(f"the lesion asks for {lesion.collapse_pct:g}% collapse but the anatomy shows "
                         f"{anatomy.collapse_pct:g}%: pass scenes.phantom.anatomy_with_collapse(anatomy, lesion)")
    index = anatomy.index
    d = index.dims
    height = d.body_height_mm
    body, core = index.body, index.body_core
    parts = []
    if "body" in lesion.sites:
        parts.append(_body_tumour(index, body, lesion.body_fraction))
    if "pedicle_left" in lesion.sites:
        parts.append(index.pedicle_left | index.transverse_left)
    if "pedicle_right" in lesion.sites:
        parts.append(index.pedicle_right | index.transverse_right)
    if "posterior" in lesion.sites:
        parts.append(index.lamina | index.spinous)
    # Bone disease stays in bone: what lies inside the canal is epidural.
    bone = Union(tuple(parts)) - anatomy.canal if parts else Empty()
    approach = approach_of(lesion.sites)
    squeezed = compress(anatomy, lesion.epidural_reach_mm, approach=approach, side=lesion.epidural_side)
    paraspinal: Shape = Empty()
    if lesion.paraspinal_mm > 0:
        side = -1.0 if lesion.epidural_side == "right" else 1.0
        centre = (index.z_centre_mm, index.body_centre_y_mm, side * d.body_width_mm / 2)
        radii = (HEIGHT_FRACTION * height, lesion.paraspinal_mm + d.body_depth_mm / 4, lesion.paraspinal_mm)
        paraspinal = Ellipsoid(centre, radii) - body - anatomy.canal
    return LesionGeometry(bone, squeezed.epidural, paraspinal, squeezed.sac, squeezed.cord, squeezed.cauda, body, core,
                          squeezed.csf_obliterated, approach, squeezed.front_mm)


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
