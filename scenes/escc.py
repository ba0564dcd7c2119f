"""Measure the ESCC (Bilsky) grade of any scene from its geometry.

The grade is read the way a radiologist reads the axial slice of worst compression, using
the geometric interpretation of the grades in the project reference
(``scores.escc_bilsky.phantom_geometry_rules``):

* 0  no tumour inside the spinal canal;
* 1a tumour in the canal, the thecal sac's outline unchanged (convex);
* 1b the sac indented, CSF between tumour and cord;
* 1c tumour touching the cord, the cord's outline unchanged;
* 2  the cord indented, CSF still visible around it somewhere in the slice;
* 3  the cord indented and no CSF left in the slice.

It needs the structures ``spinal_canal``, ``thecal_sac``, ``spinal_cord`` and/or
``cauda_equina`` and the tumour (``epidural_disease``, else ``gtv``), so it works on
imported scenes as well as phantoms. Each slice is analysed on a 0.25 mm sub-grid
reconstructed from the fractional occupancies (bilinear, 50% iso-line), so sub-voxel gaps
and indentations are seen at 1.25-2.5 mm voxels.

The case builder uses it as a check: :func:`fit_reach` finds the epidural reach at which a
lesion *measures* the requested grade on the default planning grid (the canal's
neighbourhood only, the same voxels as the full phantom there), searching the grade's band
(:func:`scenes.lesions.grade_band`), or raises :class:`GradeNotReachable` naming the grades
the lesion's sites can reach at that level.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from ._data import load_data, value_of
from .lesions import ESCC_GRADES, Lesion, approach_of, grade_band, lesion_geometry
from .mass_effect import compression_bands
from .phantom import anatomy_with_collapse, default_grid
from .scene import Scene
from .shapes import Empty, rasterize

__all__ = ["EsccMeasurement", "measure_escc_grade", "measure_built_grade", "fit_reach", "reachable_grades",
           "GradeNotReachable"]

# Measurement settings (scenes/data/escc.toml: what each one means and why).
_SETTINGS = {name: float(entry["value"]) for name, entry in load_data("escc")["measurement"].items()}
FINE_MM = _SETTINGS["fine_mm"]
CONTACT_MM = _SETTINGS["contact_mm"]  # tumour within this distance of the cord touches it
INDENT_MM = _SETTINGS["indent_mm"]  # a dent deeper than this (from the convex hull inwards) deforms the outline
SAC_LOSS = _SETTINGS["sac_loss"]  # sac (with contents) smaller than its uninvolved neighbours by this fraction
NEURAL_LOSS = _SETTINGS["neural_loss"]  # cord/cauda AP/RL ratio reduced by this fraction: compressed
CSF_MIN_MM2 = _SETTINGS["csf_min_mm2"]  # less CSF than this in the slice: none visible
MIN_EPIDURAL_MM2 = _SETTINGS["min_epidural_mm2"]  # less tumour than this inside the canal in a slice is noise
_CHECK = load_data("escc")["check"]
CHECK_SPACING_MM = tuple(float(v) for v in _CHECK["spacing_mm"]["value"])
CHECK_SUPERSAMPLE = int(value_of(_CHECK["supersample"]))
SEARCH_ROUNDS = int(value_of(_CHECK["search_rounds"]))
#: Voxels kept around the canal when only its neighbourhood is rendered for the check (the
#: measurement reads 3 around it; partial volumes are exact farther than one from a cut).
_CHECK_MARGIN_VOXELS = 6
#: Decimals an interpolated occupancy is rounded to before it is compared with 1/2 (numerical).
_TIE_DECIMALS = 9


#: Why the construction has no room for a grade (scenes.lesions.grade_band is None).
_NO_ROOM = {
    "1a": "the sac deforms as soon as the tumour enters the canal",
    "1b": "on that side no CSF lies between the dura and the cord or cauda equina, so the sac cannot be "
          "indented without the tumour touching them",
    "1c": "the cord flattens as soon as the tumour touches it",
    "2": "the cord loses area as soon as it flattens",
}


class GradeNotReachable(ValueError):
    """A lesion cannot be built to the requested ESCC grade at its level; the message names
    the grades its sites can reach there."""


@dataclass(frozen=True)
class EsccMeasurement:
    """The grade and the evidence for it, at the worst axial slice."""

    grade: str
    slice_z_mm: float | None
    tumour_to_neural_mm: float | None
    sac_indentation: float
    neural_indentation: float
    csf_area_mm2: float | None

    def explain(self) -> str:
        if self.grade == "0":
            return "ESCC 0: no epidural tumour inside the spinal canal."
        parts = [f"ESCC {self.grade} at z = {self.slice_z_mm:.1f} mm:",
                 f"tumour-to-neural gap {self.tumour_to_neural_mm:.1f} mm,",
                 f"sac area lost {100 * self.sac_indentation:.0f}%,",
                 f"cord/cauda AP/RL ratio down {100 * self.neural_indentation:.0f}%,",
                 f"CSF in slice {self.csf_area_mm2:.0f} mm2."]
        return " ".join(parts)


def _fine(occupancy: np.ndarray, factor: tuple[int, int], *, strict: bool = False) -> np.ndarray:
    """The outline reconstructed on the sub-grid: bilinear occupancy at least 1/2 (more than
    1/2 with ``strict``, so that two solids sharing a surface through voxel centres, each 1/2
    there, do not both claim it)."""
    ny, nx = occupancy.shape
    fy = (np.arange(ny * factor[0]) + 0.5) / factor[0] - 0.5
    fx = (np.arange(nx * factor[1]) + 0.5) / factor[1] - 0.5
    yy, xx = np.meshgrid(fy, fx, indexing="ij")
    values = ndimage.map_coordinates(occupancy.astype(float), [yy, xx], order=1, mode="nearest")
    # Rounded, so that a point on the iso-line reads the same wherever the slice's block starts
    # (the weights of a fine point differ in their last bits with its offset in the block).
    values = np.round(values, _TIE_DECIMALS)
    return values > 0.5 if strict else values >= 0.5


def _indentation(mask: np.ndarray, fine_mm: float) -> float:
    """Depth (mm) of the deepest dent: how far the mask's convex hull reaches into what
    the mask leaves empty. A convex outline gives about zero."""
    if int(mask.sum()) < 8:
        return 0.0
    points = np.argwhere(mask).astype(float)
    try:
        hull = ConvexHull(points)
    except QhullError:
        return 0.0
    low, high = points.min(axis=0).astype(int), points.max(axis=0).astype(int)
    yy, xx = np.mgrid[low[0]:high[0] + 1, low[1]:high[1] + 1]
    grid_points = np.stack([yy.ravel(), xx.ravel(), np.ones(yy.size)], axis=1)
    inside = np.all(grid_points @ hull.equations.T <= 1e-9, axis=1).reshape(yy.shape)
    dent = inside & ~mask[low[0]:high[0] + 1, low[1]:high[1] + 1]
    if not dent.any():
        return 0.0
    depth = ndimage.distance_transform_edt(np.pad(inside, 1))[1:-1, 1:-1]
    return float(depth[dent].max()) * fine_mm


def _profile(sac, neural, fine_mm):
    """Area (mm2) of the sac with its contents, and the neural AP/RL diameter ratio."""
    rows = np.nonzero(neural.any(axis=1))[0]
    cols = np.nonzero(neural.any(axis=0))[0]
    ratio = (rows.max() - rows.min() + 1) / (cols.max() - cols.min() + 1) if rows.size else 0.0
    return float((sac | neural).sum()) * fine_mm**2, float(ratio)


def measure_escc_grade(scene: Scene) -> EsccMeasurement:
    """Measure the ESCC grade from the scene's structures (worst axial slice).

    Deformation is judged against the same structure in the uninvolved slices above and
    below (interpolated to the slice's height), as a reader compares with normal levels:
    the sac is deformed when it lost more than 4% of its area or shows a dent deeper than
    0.6 mm; the cord (or cauda) when its AP/RL diameter ratio fell by more than 15% (a
    shape measure, so the cord's taper into the conus is not mistaken for compression).

    Examples
    --------
    >>> from scenes.phantom import build_phantom
    >>> measure_escc_grade(build_phantom("T10", spacing_mm=(5.0, 2.5, 2.5), supersample=2)).grade
    '0'
    """
    for required in ("spinal_canal", "thecal_sac"):
        if required not in scene.structures:
            raise KeyError(f"measure_escc_grade needs a {required!r} structure; the scene has {sorted(scene.structures)}")
    neural_names = [n for n in ("spinal_cord", "cauda_equina") if n in scene.structures]
    if not neural_names:
        raise KeyError("measure_escc_grade needs a 'spinal_cord' or 'cauda_equina' structure")
    tumour_name = "epidural_disease" if "epidural_disease" in scene.structures else "gtv"
    if tumour_name not in scene.structures:
        return EsccMeasurement("0", None, None, 0.0, 0.0, None)
    grid = scene.grid
    neural = np.zeros(grid.shape, np.float32)
    for name in neural_names:
        neural = np.maximum(neural, scene.structure(name).full())
    return _measure(grid, scene.structure("spinal_canal").full(), scene.structure(tumour_name).full(),
                    scene.structure("thecal_sac").full(), neural)


def _measure(grid, canal: np.ndarray, tumour: np.ndarray, sac: np.ndarray, neural: np.ndarray) -> EsccMeasurement:
    """The measurement on full-grid occupancies of the canal, tumour, sac and cord/cauda."""
    _, dy, dx = grid.spacing_mm
    factor = (max(1, int(round(dy / FINE_MM))), max(1, int(round(dx / FINE_MM))))
    fine_mm = min(dy / factor[0], dx / factor[1])
    nonzero = np.argwhere(canal.max(axis=0) > 0)
    if nonzero.size == 0:
        raise ValueError("the spinal_canal structure is empty")
    (j0, i0), (j1, i1) = nonzero.min(axis=0), nonzero.max(axis=0)
    j0, i0 = max(j0 - 2, 0), max(i0 - 2, 0)
    j1, i1 = min(j1 + 3, grid.shape[1]), min(i1 + 3, grid.shape[2])
    z_axis = grid.axes_mm()[0]
    neural_slices = np.nonzero(neural.sum(axis=(1, 2)) > 0.5)[0]
    # Only slices with tumour near the canal can be involved; a slice without any is normal.
    near = tumour[:, j0:j1, i0:i1].max(axis=(1, 2)) > 0
    involved = []
    for k in neural_slices[near[neural_slices]]:
        block = (k, slice(j0, j1), slice(i0, i1))
        # Tumour counts as epidural where its reconstructed outline lies inside the canal's,
        # by more than a sliver (bone tumour sharing the canal wall is not epidural).
        fine_tumour = _fine(tumour[block], factor) & _fine(canal[block], factor, strict=True)
        if fine_tumour.sum() * fine_mm**2 >= MIN_EPIDURAL_MM2:
            involved.append((k, fine_tumour))
    if not involved:
        return EsccMeasurement("0", None, None, 0.0, 0.0, None)
    involved_k = {k for k, _ in involved}
    normal_k = [k for k in neural_slices if k not in involved_k]
    if len(normal_k) < 1:
        raise ValueError("measure_escc_grade needs at least one slice of the canal without tumour as a reference")

    def outlines(k):
        block = (k, slice(j0, j1), slice(i0, i1))
        return _fine(sac[block], factor), _fine(neural[block], factor)

    # The reference at an involved slice interpolates its nearest normal slices below and
    # above (np.interp), so only those are reconstructed.
    needed = set()
    for k in involved_k:
        below = [n for n in normal_k if n < k]
        above = [n for n in normal_k if n > k]
        needed.update(([below[-1]] if below else []) + ([above[0]] if above else []))
    needed = sorted(needed)
    z_normal = np.array([z_axis[k] for k in needed])
    reference = np.array([_profile(*outlines(k), fine_mm) for k in needed])
    best = None
    for k, fine_tumour in involved:
        fine_sac, fine_neural = outlines(k)
        sac_area, neural_ratio = _profile(fine_sac, fine_neural, fine_mm)
        z = z_axis[k]
        ref_sac, ref_ratio = (float(np.interp(z, z_normal, reference[:, i])) for i in range(2))
        gap = float(ndimage.distance_transform_edt(~fine_neural)[fine_tumour].min()) * fine_mm if fine_neural.any() else np.inf
        sac_loss = 1 - sac_area / ref_sac if ref_sac else 0.0
        neural_loss = 1 - neural_ratio / ref_ratio if ref_ratio else 0.0
        dent = _indentation(fine_sac | fine_neural, fine_mm)
        csf = float((fine_sac & ~fine_neural).sum()) * fine_mm**2
        if neural_loss > NEURAL_LOSS and gap <= CONTACT_MM:
            grade = "2" if csf >= CSF_MIN_MM2 else "3"
        elif gap <= CONTACT_MM:
            grade = "1c"
        elif sac_loss > SAC_LOSS or dent > INDENT_MM:
            grade = "1b"
        else:
            grade = "1a"
        measurement = EsccMeasurement(grade, float(z), gap, max(sac_loss, 0.0), max(neural_loss, 0.0), csf)
        if best is None or ESCC_GRADES.index(grade) > ESCC_GRADES.index(best.grade):
            best = measurement
    return best


def measure_built_grade(anatomy, lesion: Lesion, *, spacing_mm=CHECK_SPACING_MM,
                        supersample: int = CHECK_SUPERSAMPLE) -> EsccMeasurement:
    """The grade ``lesion`` measures in ``anatomy``, rendering only the canal's neighbourhood.

    The voxels are those of the phantom's default grid at ``spacing_mm`` (the canal, sac,
    cord, cauda and tumour there are bit for bit those of :func:`scenes.phantom.render_phantom`),
    so the grade is the full phantom's, at a small share of the cost.

    Parameters
    ----------
    anatomy : Anatomy
        The phantom's anatomy.
    lesion : Lesion
        The lesion, with its epidural reach.
    spacing_mm : tuple of float
        Voxel size (z, y, x) of the grid measured on.
    supersample : int
        Sub-points per axis of the partial-volume rasterisation.

    Returns
    -------
    EsccMeasurement
        The measured grade and its evidence.

    Examples
    --------
    >>> from scenes.anatomy import build_anatomy
    >>> from scenes.lesions import reach_for_grade
    >>> anatomy = build_anatomy("T10")
    >>> measure_built_grade(anatomy, Lesion(epidural_reach_mm=reach_for_grade(anatomy, "1c"))).grade
    '1c'
    """
    # As render_phantom does: the anatomy carries the collapse, the lesion's solids sit on it.
    anatomy = anatomy_with_collapse(anatomy, lesion)
    geometry = lesion_geometry(anatomy, lesion)
    full = default_grid(anatomy, spacing_mm)
    margin = _CHECK_MARGIN_VOXELS * np.asarray(full.spacing_mm)
    low, high = anatomy.canal.bounds_mm
    # Along z only the tumour's heights and a few slices around it: a slice without tumour is a
    # reference, and the measurement reads only the nearest references above and below.
    tumour_shape = geometry.epidural if not isinstance(geometry.epidural, Empty) else geometry.bone | geometry.paraspinal
    bounds = tumour_shape.bounds_mm
    if not isinstance(tumour_shape, Empty) and np.all(bounds[1] >= bounds[0]) and np.any(bounds[1] > bounds[0]):
        low[0], high[0] = max(low[0], bounds[0, 0] - margin[0]), min(high[0], bounds[1, 0] + margin[0])
    grid, _ = full.crop(low - margin * [0, 1, 1], high + margin * [0, 1, 1])

    def occupancy(shape):
        return rasterize(shape, grid, supersample=supersample).full()

    neural = np.zeros(grid.shape, np.float32)
    for shape in (geometry.cord, geometry.cauda):
        if not isinstance(shape, Empty):
            neural = np.maximum(neural, occupancy(shape))
    if not isinstance(geometry.epidural, Empty):
        tumour = occupancy(geometry.epidural)
    else:  # no epidural part: the phantom's measurement reads its gtv (bone and paraspinal parts)
        tumour = np.minimum(occupancy(geometry.bone) + occupancy(geometry.paraspinal), 1.0)
    return _measure(grid, _occupancy(anatomy.canal, grid, supersample), tumour, occupancy(geometry.sac), neural)


@lru_cache(maxsize=64)
def _occupancy(shape, grid, supersample: int) -> np.ndarray:
    """A solid's occupancy on a grid, kept for the next check (the canal is measured often)."""
    out = rasterize(shape, grid, supersample=supersample).full()
    out.setflags(write=False)
    return out


def _key(anatomy) -> tuple:
    index = anatomy.index
    return (anatomy.level, anatomy.canal, anatomy.sac, anatomy.cord, anatomy.cauda, index.z_centre_mm,
            index.dims.body_height_mm)


_ANATOMIES: dict = {}


@lru_cache(maxsize=1024)
def _fit(key: tuple, approach: str, side: str, grade: str, spacing_mm: tuple, supersample: int):
    """(reach, measured grade, tries) for one anatomy (by key), approach, side and grade."""
    anatomy = _ANATOMIES[key]
    sites = ("body",) if approach == "ventral" else ("posterior",)
    probe = Lesion(sites=sites, epidural_side=side)

    def measured(reach: float) -> str:
        return measure_built_grade(anatomy, replace(probe, epidural_reach_mm=float(reach)),
                                   spacing_mm=spacing_mm, supersample=supersample).grade

    target = ESCC_GRADES.index(grade)
    if grade == "0":
        got = measured(0.0)
        return (0.0 if got == grade else None), got, ((0.0, got),)
    band = grade_band(anatomy, grade, approach=approach, side=side)
    if band is None:  # the construction cannot build it: nothing to measure
        return None, None, ()
    first = band[1]
    most = compression_bands(anatomy, approach, side)["most"]
    below, above = 0.0, most  # reaches known to measure below / above the grade (or the ends)
    reach, tries = first, []
    for _ in range(SEARCH_ROUNDS):
        got = measured(reach)
        tries.append((round(reach, 4), got))
        rank = ESCC_GRADES.index(got)
        if rank == target:
            return float(reach), got, tuple(tries)
        if rank < target:
            below = reach
        else:
            above = reach
        if rank < target and reach >= most:
            break
        reach = (below + above) / 2
    return None, None, tuple(tries)


def fit_reach(anatomy, lesion: Lesion, grade: str, *, spacing_mm=CHECK_SPACING_MM,
              supersample: int = CHECK_SUPERSAMPLE) -> float:
    """The epidural reach at which ``lesion`` measures ``grade`` in ``anatomy``.

    The first try is the construction (:func:`scenes.lesions.reach_for_grade`); when the
    measurement (:func:`measure_built_grade`) disagrees, the reach is bisected between
    reaches measuring below and above the grade (the measured grade never falls as the
    reach grows), for at most ``search_rounds`` measurements (``escc.toml``).

    Parameters
    ----------
    anatomy : Anatomy
        The phantom's anatomy.
    lesion : Lesion
        The lesion: its sites decide the wall the epidural part grows from, its side where.
    grade : str
        The ESCC grade to build.
    spacing_mm : tuple of float
        Voxel size (z, y, x) of the check grid.
    supersample : int
        Sub-points per axis of the check's rasterisation.

    Returns
    -------
    float
        The reach (mm); 0 for ESCC 0.

    Raises
    ------
    GradeNotReachable
        When no reach measures ``grade``; the message lists the grades that can be built.

    Examples
    --------
    >>> from scenes.anatomy import build_anatomy
    >>> anatomy = build_anatomy("T7")
    >>> reach = fit_reach(anatomy, Lesion(sites=("body",), epidural_side="left"), "2")
    >>> measure_built_grade(anatomy, Lesion(sites=("body",), epidural_side="left", epidural_reach_mm=reach)).grade
    '2'
    """
    if grade not in ESCC_GRADES:
        raise ValueError(f"ESCC grade must be one of {ESCC_GRADES}, got {grade!r}")
    anatomy = anatomy_with_collapse(anatomy, lesion)
    key = _key(anatomy)
    _ANATOMIES.setdefault(key, anatomy)
    spacing = tuple(float(v) for v in spacing_mm)
    approach = approach_of(lesion.sites)
    side = _canonical_side(anatomy, lesion.epidural_side)
    if grade == "0":
        got = _bone_only_grade(anatomy, lesion, spacing, supersample)
        reach, tries = (0.0 if got == "0" else None), ((0.0, got),)
    else:
        reach, _, tries = _fit(key, approach, side, grade, spacing, int(supersample))
    if reach is None:
        reachable = reachable_grades(anatomy, lesion, spacing_mm=spacing, supersample=supersample)
        raise GradeNotReachable(
            f"ESCC {grade} cannot be built at {anatomy.level} for sites {list(lesion.sites)} with the epidural part "
            f"{lesion.epidural_side} ({approach} extension): the grades these sites reach at {anatomy.level} are "
            f"{', '.join(reachable)} (measured on the {'x'.join(f'{v:g}' for v in spacing)} mm check grid"
            + (f"; reaches tried and grades measured: {list(tries)}" if tries else
               f"; no reach builds it: {_NO_ROOM.get(grade, 'the yield leaves no room for it')}") + ")")
    return reach


def reachable_grades(anatomy, lesion: Lesion, *, spacing_mm=CHECK_SPACING_MM,
                     supersample: int = CHECK_SUPERSAMPLE) -> tuple:
    """The ESCC grades :func:`fit_reach` can build for ``lesion``'s sites and side in ``anatomy``.

    Parameters
    ----------
    anatomy : Anatomy
        The phantom's anatomy.
    lesion : Lesion
        The lesion (its sites and epidural side matter).
    spacing_mm : tuple of float
        Voxel size (z, y, x) of the check grid.
    supersample : int
        Sub-points per axis of the check's rasterisation.

    Returns
    -------
    tuple of str
        The grades, in order.
    """
    anatomy = anatomy_with_collapse(anatomy, lesion)
    key = _key(anatomy)
    _ANATOMIES.setdefault(key, anatomy)
    spacing = tuple(float(v) for v in spacing_mm)
    approach = approach_of(lesion.sites)
    side = _canonical_side(anatomy, lesion.epidural_side)
    grades = [g for g in ESCC_GRADES[1:] if _fit(key, approach, side, g, spacing, int(supersample))[0] is not None]
    if _bone_only_grade(anatomy, lesion, spacing, supersample) == "0":
        grades.insert(0, "0")
    return tuple(grades)


def _bone_only_grade(anatomy, lesion: Lesion, spacing_mm: tuple, supersample: int) -> str:
    """The grade the lesion measures without an epidural part (its bone disease alone)."""
    return measure_built_grade(anatomy, replace(lesion, epidural_reach_mm=0.0), spacing_mm=spacing_mm,
                               supersample=supersample).grade


def _canonical_side(anatomy, side: str) -> str:
    """'right' measures as its mirror image 'left' when the canal and its contents are
    symmetric about the midline (x = 0 is a voxel centre of the phantom's grids)."""
    tubes = (anatomy.canal, anatomy.sac, anatomy.cord, anatomy.cauda)
    symmetric = all(not hasattr(t, "centre_x_mm") or not np.any(np.asarray(t.centre_x_mm)) for t in tubes)
    return "left" if side == "right" and symmetric else side
