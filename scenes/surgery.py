"""Surgical procedures as scene transforms: each takes a Scene and returns a new one.

Every procedure paints materials into copies of the scene's volumes, updates the affected
structures and appends a line to ``scene.history`` saying what it did and with what sizes.
Hardware sizes come from ``scenes/data/surgery.toml`` (each with its source).

Procedures
----------
separation_surgery     epidural (and abutting) tumour within ``gap_mm`` of the thecal sac removed
laminectomy            lamina and spinous process of the index level removed
posterior_instrumentation  pedicle screws at the levels above and below, two rods
vertebral_augmentation PMMA cement in the index vertebral body
corpectomy_with_cage   index vertebral body (and its tumour) replaced by a cage
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ._data import load_data, value_of
from .scene import Scene, paint
from .shapes import Ellipsoid, EllipticCylinder, Mask, Rod, Union, mask_from_full, rasterize

__all__ = ["separation_surgery", "laminectomy", "posterior_instrumentation", "vertebral_augmentation",
           "corpectomy_with_cage", "min_gap_mm", "IMPLANT_MATERIALS", "PROCEDURES"]

IMPLANT_MATERIALS = ("titanium", "cf_peek")
TUMOUR_PARTS = ("epidural_disease", "lesion_bone", "paraspinal_disease")


def _hardware() -> dict:
    return load_data("surgery")


def _surface_gap_bound_mm(mask: Mask) -> np.ndarray:
    """Per voxel, the distance (mm) from that voxel's box to the nearest box ``mask`` occupies at
    all: a lower bound on the distance between their contents.

    Two voxel boxes whose centres are ``n`` voxels apart (per axis) are exactly
    ``|max(|n| - 1, 0) * spacing|`` apart, which is the centre-to-centre distance to the mask
    grown by one voxel in every direction (the 3 x 3 x 3 cube). This is exact for boxes,
    unlike a whole voxel diagonal taken off the centre distance (3.1 mm on the default grid),
    so a requested gap is left close to what was asked.
    """
    grid = mask.grid
    grown = ndimage.binary_dilation(mask.full() > 0, structure=np.ones((3, 3, 3), bool))
    return ndimage.distance_transform_edt(~grown, sampling=grid.spacing_mm)


def min_gap_mm(a: Mask, b: Mask) -> float:
    """A lower bound (mm) on the distance between the surfaces of two structures.

    Any voxel a structure occupies at all counts, as its whole box; the result is the least
    distance between a box of ``a`` and a box of ``b``. Returns ``inf`` if either structure
    is empty.
    """
    if a.grid != b.grid:
        raise ValueError("structures live on different grids")
    if a.is_empty or b.is_empty:
        return math.inf
    return max(0.0, float(_surface_gap_bound_mm(b)[a.full() > 0].min()))


class _Workspace:
    """Mutable copies of a scene's volumes and structures while a procedure runs."""

    def __init__(self, scene: Scene):
        self.scene = scene
        self.labels = np.array(scene.labels)
        self.density = np.array(scene.density_g_cc, dtype=np.float64)
        self.electron = np.array(scene.electron_density, dtype=np.float64)
        self.structures = dict(scene.structures)

    def paint(self, mask: Mask, material: str):
        paint(self.labels, self.density, self.electron, mask, material)

    def carve(self, mask: Mask, names):
        """Remove ``mask``'s occupancy from the named structures (what was cut away)."""
        removed = mask.full()
        for name in names:
            if name in self.structures:
                self.structures[name] = mask_from_full(self.scene.grid, np.clip(self.structures[name].full() - removed, 0, 1))

    def result(self, record: str) -> Scene:
        structures = {k: v for k, v in self.structures.items() if not v.is_empty or k in ("thecal_sac",)}
        return self.scene.evolve(labels=self.labels, density_g_cc=self.density, electron_density=self.electron,
                                 structures=structures, history=self.scene.history + (record,))


def _require(scene: Scene, *names: str):
    missing = [n for n in names if n not in scene.structures]
    if missing:
        raise ValueError(f"this procedure needs the structures {missing}; the scene has {sorted(scene.structures)}")


def _require_anatomy(scene: Scene, procedure: str):
    if scene.anatomy is None:
        raise ValueError(f"{procedure} needs a parametric phantom (scene.anatomy); scenes built from arrays do not carry "
                         "the vertebral geometry it places hardware in")


def separation_surgery(scene: Scene, gap_mm: float = 2.0) -> Scene:
    """Remove all tumour lying within ``gap_mm`` of the thecal sac (separation surgery).

    The removed tumour becomes a post-operative cavity (fluid, water-like). Afterwards
    ``min_gap_mm(gtv, thecal_sac) >= gap_mm`` (a conservative, voxel-based bound).

    Examples
    --------
    >>> from scenes.phantom import build_phantom
    >>> from scenes.lesions import Lesion
    >>> scene = build_phantom("T10", spacing_mm=(5.0, 2.5, 2.5), supersample=2,
    ...                       lesion=Lesion(epidural_reach_mm=8.0))
    >>> after = separation_surgery(scene, gap_mm=2.0)
    >>> min_gap_mm(after.structure("gtv"), after.structure("thecal_sac")) >= 2.0
    True
    """
    if not (isinstance(gap_mm, (int, float)) and math.isfinite(gap_mm) and 0 < gap_mm <= 10):
        raise ValueError(f"separation_surgery gap_mm must be in (0, 10] mm, got {gap_mm!r}")
    _require(scene, "thecal_sac", "gtv")
    grid = scene.grid
    work = _Workspace(scene)
    too_close = _surface_gap_bound_mm(scene.structure("thecal_sac")) < gap_mm
    removed_total = np.zeros(grid.shape, np.float32)
    for name in TUMOUR_PARTS + ("gtv",):
        if name not in work.structures:
            continue
        occupancy = work.structures[name].full()
        removed = np.where(too_close, occupancy, 0.0)
        if name != "gtv":
            removed_total += removed
        work.structures[name] = mask_from_full(grid, occupancy - removed)
    cavity = mask_from_full(grid, np.minimum(removed_total, 1.0))
    work.paint(cavity, "postoperative_cavity")
    if "postoperative_cavity" in work.structures:
        cavity = work.structures["postoperative_cavity"] | cavity
    work.structures["postoperative_cavity"] = cavity
    record = f"separation surgery: tumour within {gap_mm:g} mm of the thecal sac removed ({cavity.volume_cc:.2f} cc)"
    return work.result(record)


def laminectomy(scene: Scene) -> Scene:
    """Remove the lamina and spinous process of the index level (posterior decompression)."""
    _require_anatomy(scene, "laminectomy")
    level = scene.level
    _require(scene, f"lamina_{level}")
    work = _Workspace(scene)
    lamina = scene.structure(f"lamina_{level}")
    # What was bone becomes soft tissue; tumour in the lamina goes with it.
    work.paint(lamina, "soft_tissue")
    work.carve(lamina, [f"lamina_{level}", f"posterior_elements_{level}", f"vertebra_{level}", "lesion_bone", "gtv"])
    work.structures.pop(f"lamina_{level}", None)
    return work.result(f"laminectomy at {level}: lamina and spinous process removed ({lamina.volume_cc:.2f} cc)")


def posterior_instrumentation(scene: Scene, material: str = "titanium") -> Scene:
    """Pedicle screws in both pedicles of the levels above and below, joined by two rods.

    ``material`` is ``"titanium"`` or ``"cf_peek"`` (carbon-fibre PEEK): the densities
    differ, which the dose engine will show.
    """
    if material not in IMPLANT_MATERIALS:
        raise ValueError(f"posterior_instrumentation material must be one of {IMPLANT_MATERIALS}, got {material!r}")
    _require_anatomy(scene, "posterior_instrumentation")
    anatomy = scene.anatomy
    hardware = _hardware()
    levels = [v for v in anatomy.vertebrae if v.level != anatomy.level]
    if len(levels) < 2:
        raise ValueError("posterior_instrumentation needs a level above and below the index level")
    screws, heads = [], []
    widest = 0.0
    for vertebra in levels:
        d = vertebra.dims
        diameter = min(value_of(hardware["screw_diameter_max_mm"]),
                       value_of(hardware["screw_to_pedicle_width"]) * d.pedicle_width_mm)
        widest = max(widest, diameter)
        z = vertebra.z_centre_mm + d.body_height_mm / 2 - min(d.pedicle_height_mm, d.body_height_mm) / 2
        x = d.canal_width_mm / 2 + d.pedicle_width_mm / 2
        y_entry = d.canal_depth_mm / 4 + d.lamina_thickness_mm
        length = value_of(hardware["screw_depth_fraction"]) * (y_entry - vertebra.body_front_y_mm)
        for side in (1, -1):
            start = (z, y_entry, side * x)
            end = (z, y_entry - length, side * x)
            screws.append(Rod(start, end, (diameter / 2, diameter / 2)))
            heads.append(start)
    rod_radius = value_of(hardware["rod_diameter_mm"]) / 2
    rods = []
    for side in (1, -1):
        ends = [h for h in heads if np.sign(h[2]) == side]
        top, bottom = max(ends, key=lambda h: h[0]), min(ends, key=lambda h: h[0])
        offset = rod_radius + widest / 2
        rods.append(Rod((top[0] + rod_radius, top[1] + offset, top[2]), (bottom[0] - rod_radius, bottom[1] + offset, bottom[2]),
                        (rod_radius, rod_radius)))
    work = _Workspace(scene)
    screw_mask = rasterize(Union(tuple(screws)), scene.grid)
    rod_mask = rasterize(Union(tuple(rods)), scene.grid)
    for mask in (screw_mask, rod_mask):
        work.paint(mask, material)
        work.carve(mask, [n for n in work.structures if n.startswith(("vertebra_", "vertebral_body_", "posterior_elements_", "pedicle_"))])
    work.structures["screws"] = screw_mask
    work.structures["rods"] = rod_mask
    names = ", ".join(v.level for v in levels)
    return work.result(f"posterior instrumentation ({material}): {len(screws)} pedicle screws at {names}, 2 rods")


def vertebral_augmentation(scene: Scene) -> Scene:
    """Inject PMMA cement into the index vertebral body (vertebroplasty/kyphoplasty)."""
    _require_anatomy(scene, "vertebral_augmentation")
    level = scene.level
    _require(scene, f"vertebral_body_{level}")
    vertebra = scene.anatomy.index
    d = vertebra.dims
    fraction = value_of(_hardware()["cement_fill_fraction"])
    body = scene.structure(f"vertebral_body_{level}")
    centre_y = vertebra.body_centre_y_mm
    # A cement bolus centred in the body, its volume the fill fraction of the body's.
    full_ellipsoid_cc = 4 / 3 * math.pi * (d.body_height_mm / 2) * (d.body_depth_mm / 2) * (d.body_width_mm / 2) / 1000
    scale = min(1.0, (fraction * body.volume_cc / full_ellipsoid_cc) ** (1 / 3))
    bolus = Ellipsoid((vertebra.z_centre_mm, centre_y, 0.0),
                      (d.body_height_mm / 2 * scale, d.body_depth_mm / 2 * scale, d.body_width_mm / 2 * scale))
    cement = rasterize(bolus, scene.grid)
    cement = mask_from_full(scene.grid, np.minimum(cement.full(), body.full()))
    work = _Workspace(scene)
    work.paint(cement, "pmma_cement")
    work.carve(cement, ["lesion_bone", "gtv"])
    work.structures["cement"] = cement
    return work.result(f"vertebral augmentation at {level}: {cement.volume_cc:.1f} cc PMMA ({100 * fraction:.0f}% fill)")


def corpectomy_with_cage(scene: Scene, material: str = "titanium") -> Scene:
    """Remove the index vertebral body with its tumour; reconstruct with a cylindrical cage."""
    if material not in IMPLANT_MATERIALS:
        raise ValueError(f"corpectomy_with_cage material must be one of {IMPLANT_MATERIALS}, got {material!r}")
    _require_anatomy(scene, "corpectomy_with_cage")
    level = scene.level
    vertebra = scene.anatomy.index
    d = vertebra.dims
    hardware = _hardware()
    body = scene.structure(f"vertebral_body_{level}")
    work = _Workspace(scene)
    work.paint(body, "soft_tissue")
    work.carve(body, [f"vertebral_body_{level}", f"vertebra_{level}", "lesion_bone", "gtv"])
    work.structures.pop(f"vertebral_body_{level}", None)
    # The cage sits on the central endplate; it is a porous implant packed with bone graft,
    # modelled as a homogeneous mix of implant and graft at the cage's porosity.
    radius = value_of(hardware["cage_to_endplate"]) * min(d.body_width_mm, d.body_depth_mm) / 2
    z0, z1 = vertebra.z_range_mm
    cylinder = rasterize(EllipticCylinder((vertebra.body_centre_y_mm, 0.0), (radius, radius), (z0, z1)), scene.grid)
    work.paint(cylinder, "cancellous_bone")
    solid = 1.0 - value_of(hardware["cage_porosity"])
    cage = Mask(scene.grid, cylinder.offset, cylinder.occupancy * solid)
    work.paint(cage, material)
    cage = cylinder
    work.structures["cage"] = cage
    return work.result(f"corpectomy at {level} with a {material} cage ({2 * radius:.0f} mm diameter)")


PROCEDURES = {
    "separation_surgery": separation_surgery,
    "laminectomy": laminectomy,
    "posterior_instrumentation": posterior_instrumentation,
    "vertebral_augmentation": vertebral_augmentation,
    "corpectomy_with_cage": corpectomy_with_cage,
}

