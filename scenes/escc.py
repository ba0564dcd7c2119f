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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from ._data import load_data
from .lesions import ESCC_GRADES
from .scene import Scene

__all__ = ["EsccMeasurement", "measure_escc_grade"]

# Measurement settings (scenes/data/escc.toml: what each one means and why).
_SETTINGS = {name: float(entry["value"]) for name, entry in load_data("escc")["measurement"].items()}
FINE_MM = _SETTINGS["fine_mm"]
CONTACT_MM = _SETTINGS["contact_mm"]  # tumour within this distance of the cord touches it
INDENT_MM = _SETTINGS["indent_mm"]  # a dent deeper than this (from the convex hull inwards) deforms the outline
SAC_LOSS = _SETTINGS["sac_loss"]  # sac (with contents) smaller than its uninvolved neighbours by this fraction
NEURAL_LOSS = _SETTINGS["neural_loss"]  # cord/cauda AP/RL ratio reduced by this fraction: compressed
CSF_MIN_MM2 = _SETTINGS["csf_min_mm2"]  # less CSF than this in the slice: none visible
MIN_EPIDURAL_MM2 = _SETTINGS["min_epidural_mm2"]  # less tumour than this inside the canal in a slice is noise


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


def _fine(occupancy: np.ndarray, factor: tuple[int, int]) -> np.ndarray:
    ny, nx = occupancy.shape
    fy = (np.arange(ny * factor[0]) + 0.5) / factor[0] - 0.5
    fx = (np.arange(nx * factor[1]) + 0.5) / factor[1] - 0.5
    yy, xx = np.meshgrid(fy, fx, indexing="ij")
    return ndimage.map_coordinates(occupancy.astype(float), [yy, xx], order=1, mode="nearest") >= 0.5


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
    canal = scene.structure("spinal_canal").full()
    tumour = scene.structure(tumour_name).full()
    sac = scene.structure("thecal_sac").full()
    neural = np.zeros(grid.shape, np.float32)
    for name in neural_names:
        neural = np.maximum(neural, scene.structure(name).full())
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
    rows = []
    for k in np.nonzero(neural.sum(axis=(1, 2)) > 0.5)[0]:
        block = (k, slice(j0, j1), slice(i0, i1))
        fine = [_fine(volume[block], factor) for volume in (tumour, sac, neural, canal)]
        # Tumour counts as epidural where its reconstructed outline lies inside the canal's,
        # by more than a sliver (bone tumour sharing the canal wall is not epidural).
        fine[0] &= fine.pop()
        if fine[0].sum() * fine_mm**2 < MIN_EPIDURAL_MM2:
            fine[0][:] = False
        rows.append((k, fine, _profile(fine[1], fine[2], fine_mm)))
    involved = [r for r in rows if r[1][0].any()]
    if not involved:
        return EsccMeasurement("0", None, None, 0.0, 0.0, None)
    normal = [r for r in rows if not r[1][0].any()]
    if len(normal) < 1:
        raise ValueError("measure_escc_grade needs at least one slice of the canal without tumour as a reference")
    z_normal = np.array([z_axis[r[0]] for r in normal])
    reference = np.array([r[2] for r in normal])
    best = None
    for k, (fine_tumour, fine_sac, fine_neural), (sac_area, neural_ratio) in involved:
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
