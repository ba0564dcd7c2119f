"""Render an Anatomy (plus a lesion) onto a voxel grid as a Scene.

Materials are painted in a fixed order (body outline, organs, airway, lungs, bone, discs,
canal contents, lesion) with partial-volume mixing at boundaries; every named structure is
rasterised with fractional occupancy (see :func:`scenes.shapes.rasterize`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .anatomy import Anatomy, build_anatomy
from .grid import Grid
from .lesions import Lesion, lesion_geometry
from .materials import label_of
from .scene import Scene, paint
from .shapes import Empty, Mask, Shape, Union, mask_from_full, rasterize

__all__ = ["anatomy_with_collapse", "default_grid", "render_phantom", "build_phantom", "PhantomRecipe", "LESION_MATERIAL", "AIRWAY"]

LESION_MATERIAL = {"lytic": "lytic_lesion", "blastic": "blastic_lesion", "mixed": "mixed_lesion"}
#: Parts of the air column (scenes/organs.py), painted as air inside the body.
AIRWAY = ("larynx", "trachea", "bronchus_left", "bronchus_right")
#: Sub-points per axis at most at the lungs' surface (see render_phantom).
LUNG_SUPERSAMPLE = 2
#: Air kept around the body outline so beams enter from air.
OUTLINE_MARGIN_MM = 5.0


@dataclass(frozen=True)
class PhantomRecipe:
    """Everything needed to rebuild a phantom scene bit for bit."""

    level: str
    spacing_mm: tuple
    lesion: Lesion | None
    supersample: int = 4
    neighbours: int = 1


def default_grid(anatomy: Anatomy, spacing_mm=(2.5, 1.25, 1.25)) -> Grid:
    """The grid covering the body outline (plus a small air margin across) and the column's z range
    (whole slices within it)."""
    spacing = np.asarray(spacing_mm, dtype=float)
    if spacing.shape != (3,) or np.any(spacing <= 0) or np.any(spacing > 10):
        raise ValueError(f"spacing_mm must be three values in (0, 10] mm (z, y, x), got {tuple(np.ravel(spacing_mm))}")
    low, high = anatomy.outline.bounds_mm
    low = low - np.array([0.0, OUTLINE_MARGIN_MM, OUTLINE_MARGIN_MM])
    high = high + np.array([0.0, OUTLINE_MARGIN_MM, OUTLINE_MARGIN_MM])
    # Align voxel centres so that x = 0 (the midline) and z = 0 fall on voxel centres. Across
    # (y, x) the nearest centres outside the margin; along z only slices lying wholly within the
    # outline's length: a slice rounded past its end would be air across the whole section,
    # with bone of the column (a sloping spinous process) floating in it.
    shape, origin = [], []
    for axis in range(3):
        if axis == 0:
            first = np.ceil(low[axis] / spacing[axis] + 0.5 - 1e-9)
            last = np.floor(high[axis] / spacing[axis] - 0.5 + 1e-9)
        else:
            first = np.floor(low[axis] / spacing[axis] + 0.5)
            last = np.ceil(high[axis] / spacing[axis] - 0.5)
        shape.append(int(last - first + 1))
        origin.append(float(first * spacing[axis]))
    return Grid(tuple(shape), tuple(spacing), tuple(origin))


def anatomy_with_collapse(anatomy: Anatomy, lesion: Lesion | None) -> Anatomy:
    """The anatomy with the lesion's collapse: built collapsed if it is not yet.

    Parameters
    ----------
    anatomy : Anatomy
        The vertebral anatomy, collapsed or not.
    lesion : Lesion or None
        The lesion whose ``collapse_pct`` the anatomy must show.

    Returns
    -------
    Anatomy
        ``anatomy`` itself when it already shows the lesion's collapse (or there is none),
        otherwise the same levels rebuilt with the collapse (and the anatomy's kyphosis).

    Raises
    ------
    ValueError
        When the anatomy is already collapsed by another percentage.
    """
    if lesion is None or lesion.collapse_pct <= 0 or anatomy.collapse_pct == lesion.collapse_pct:
        return anatomy
    if anatomy.collapse_pct > 0:
        raise ValueError(f"the anatomy is collapsed by {anatomy.collapse_pct:g}% but the lesion asks for "
                         f"{lesion.collapse_pct:g}%: build the anatomy with the lesion's collapse_pct")
    return build_anatomy(anatomy.level, neighbours=anatomy.neighbours, collapse_pct=lesion.collapse_pct,
                         kyphosis_deg=anatomy.kyphosis_deg)


def render_phantom(anatomy: Anatomy, grid: Grid, lesion: Lesion | None = None, *, supersample: int = 4,
                   clinical=None, history=()) -> Scene:
    """Paint ``anatomy`` (and ``lesion``) on ``grid`` and return the Scene."""
    labels = np.full(grid.shape, label_of("air"), dtype=np.uint8)
    density = np.zeros(grid.shape, dtype=np.float64)
    electron = np.zeros(grid.shape, dtype=np.float64)
    from .materials import material

    air = material("air")
    density[:] = air.density_g_cc
    electron[:] = air.relative_electron_density
    structures: dict[str, Mask] = {}
    cache: dict[tuple, Mask] = {}

    def raster(shape: Shape, sub: int) -> Mask:
        # Solids are frozen dataclasses: equal solids share one rasterisation.
        if (shape, sub) not in cache:
            cache[shape, sub] = rasterize(shape, grid, supersample=sub)
        return cache[shape, sub]

    def add(name: str, shape: Shape, material_name: str | None = None, within: str | None = None,
            sub: int | None = None) -> Mask:
        mask = raster(shape, supersample if sub is None else sub)
        if name:
            structures[name] = mask
        if material_name:
            paint(labels, density, electron, mask, material_name, within=within)
        return mask

    anatomy = anatomy_with_collapse(anatomy, lesion)
    # The anatomy carries the collapse (a wedge with the column above resting on it): the
    # lesion's solids are built on that body, so the lesion itself collapses nothing more.
    geometry = lesion_geometry(anatomy, lesion) if lesion is not None else None
    add("body_outline", anatomy.outline, "soft_tissue")
    for name in ("esophagus", "aorta", "heart", "kidney_left", "kidney_right", "bowel"):
        if name in anatomy.organs:
            add(name, anatomy.organs[name], "soft_tissue")
    for name in AIRWAY:  # the air column inside the body
        if name in anatomy.organs:
            add(name, anatomy.organs[name], "air")
    for name in ("lung_left", "lung_right"):
        # Large smooth solids bounded by many others: 2 sub-points per axis at their surface
        # change a lung's volume by < 0.5% and cost a tenth of the default. Painted after
        # the organs they touch, so a voxel wholly in a lung is lung whatever its neighbours.
        if name in anatomy.organs:
            add(name, anatomy.organs[name], "lung", sub=min(supersample, LUNG_SUPERSAMPLE))
    for vertebra in anatomy.vertebrae:
        is_index = vertebra.level == anatomy.level
        body = geometry.body if (is_index and geometry) else vertebra.body
        core = geometry.body_core if (is_index and geometry) else vertebra.body_core
        whole = Union((body, vertebra.posterior))
        add(f"vertebra_{vertebra.level}", whole)
        add(f"vertebral_body_{vertebra.level}", body, "cortical_bone")
        add("", core, "cancellous_bone", within="cortical_bone")
        add(f"posterior_elements_{vertebra.level}", vertebra.posterior, "cortical_bone")
        add("", vertebra.posterior.offset(-vertebra.shell_mm), "cancellous_bone", within="cortical_bone")
        if is_index:
            add(f"pedicle_left_{vertebra.level}", vertebra.pedicle_left)
            add(f"pedicle_right_{vertebra.level}", vertebra.pedicle_right)
            add(f"lamina_{vertebra.level}", vertebra.lamina | vertebra.spinous)
    for name, disc in anatomy.discs:
        add(name, disc, "disc")
    add("spinal_canal", anatomy.canal, "fat")
    sac = geometry.sac if geometry else anatomy.sac
    cord = geometry.cord if geometry else anatomy.cord
    cauda = geometry.cauda if geometry else anatomy.cauda
    add("thecal_sac", sac, "csf")
    if geometry is not None:
        kind = LESION_MATERIAL[lesion.kind]
        bone = add("lesion_bone", geometry.bone, kind) if not isinstance(geometry.bone, Empty) else None
        # Epidural and paraspinal tumour is soft tissue whatever the bone lesion's kind.
        epidural = add("epidural_disease", geometry.epidural, "lytic_lesion") if not isinstance(geometry.epidural, Empty) else None
        paraspinal = add("paraspinal_disease", geometry.paraspinal, "lytic_lesion") if not isinstance(geometry.paraspinal, Empty) else None
        parts = [m for m in (bone, epidural, paraspinal) if m is not None]
        if parts:
            # The parts are disjoint solids, so occupancies add.
            total = np.zeros(grid.shape, np.float32)
            for part in parts:
                total[part.slices] += part.occupancy
            structures["gtv"] = mask_from_full(grid, np.minimum(total, 1.0))
    # The cord and the cauda last: the tumour displaces them (lesions.lesion_geometry) and
    # never takes their share of a voxel.
    if not isinstance(cord, Empty):
        add("spinal_cord", cord, "neural_tissue")
    if not isinstance(cauda, Empty):
        add("cauda_equina", cauda, "neural_tissue")
    return Scene(grid, labels, density, electron, structures, level=anatomy.level, lesion=lesion,
                 clinical=dict(clinical or {}), anatomy=anatomy, history=tuple(history))


def build_phantom(level: str, *, spacing_mm=(2.5, 1.25, 1.25), lesion: Lesion | None = None,
                  supersample: int = 4, neighbours: int = 1, clinical=None) -> Scene:
    """Build the phantom of one level (with its neighbours) on its default grid.

    Examples
    --------
    >>> scene = build_phantom("L3", spacing_mm=(5.0, 5.0, 5.0), supersample=2)
    >>> scene.level, "cauda_equina" in scene.structures, "kidney_left" in scene.structures
    ('L3', True, True)
    """
    anatomy = build_anatomy(level, neighbours=neighbours)
    grid = default_grid(anatomy, spacing_mm)
    return render_phantom(anatomy, grid, lesion, supersample=supersample, clinical=clinical)
