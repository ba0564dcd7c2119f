"""Matplotlib figures of scenes (2-D slices). PyVista 3-D views live in planner/pictures/three_d/.

Matplotlib is imported lazily with the Agg backend, so this works with no display.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from scenes.materials import MATERIAL_NAMES
from scenes.scene import Scene

from planner.common.files import write_atomically
from planner.common.safety import DISCLAIMER

__all__ = ["MATERIAL_COLOURS", "STRUCTURE_COLOURS", "render_scene_slices", "render_dose_slice", "write_figure",
           "isodose_colour", "STANDARD_ISODOSE_PERCENT"]


#: One colour per material label (RGB 0..1), chosen for contrast on a dark background.
MATERIAL_COLOURS = {
    "air": (0.0, 0.0, 0.0), "soft_tissue": (0.55, 0.38, 0.33), "fat": (0.85, 0.75, 0.45),
    "lung": (0.15, 0.2, 0.35), "csf": (0.3, 0.6, 0.95), "neural_tissue": (1.0, 0.9, 0.2),
    "cortical_bone": (0.98, 0.98, 0.95), "cancellous_bone": (0.78, 0.74, 0.66), "disc": (0.55, 0.75, 0.6),
    "lytic_lesion": (0.85, 0.15, 0.15), "blastic_lesion": (0.95, 0.5, 0.6), "mixed_lesion": (0.9, 0.3, 0.4),
    "titanium": (0.6, 0.65, 0.75), "cf_peek": (0.25, 0.25, 0.25), "pmma_cement": (0.7, 0.95, 1.0),
    "postoperative_cavity": (0.5, 0.9, 0.8), "water": (0.35, 0.65, 1.0), "icrp_cortical_bone": (0.95, 0.95, 0.88),
}
STRUCTURE_COLOURS = {
    "spinal_cord": "yellow", "cauda_equina": "gold", "thecal_sac": "deepskyblue", "gtv": "red",
    "epidural_disease": "magenta", "esophagus": "lime", "aorta": "orchid", "kidney_left": "orange",
    "kidney_right": "orange", "bowel": "sandybrown",
}


#: Isodose levels drawn by default, in percent of the prescription.
STANDARD_ISODOSE_PERCENT = (110, 100, 90, 80, 50, 30)


def isodose_colour(percent: float) -> tuple:
    """RGB (0..1) of an isodose level in percent of the prescription, shared by the 2-D and 3-D pictures.

    Cool to warm along matplotlib's 'turbo' map: 30% blue, 50% cyan, 80% yellow, 90% orange,
    100% orange-red, 110% dark red.

    Parameters
    ----------
    percent : float
        Isodose level in percent of the prescription; levels outside 20..120 take the
        colour of the nearer end.

    Returns
    -------
    tuple of float
        (r, g, b), each in 0..1.

    Examples
    --------
    >>> [round(c, 2) for c in isodose_colour(50)]
    [0.1, 0.84, 0.8]
    """
    import matplotlib

    position = float(np.clip(0.1 + 0.8 * (float(percent) - 30.0) / 80.0, 0.0, 1.0))
    return tuple(float(c) for c in matplotlib.colormaps["turbo"](position)[:3])


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _label_rgb(labels: np.ndarray) -> np.ndarray:
    table = np.array([MATERIAL_COLOURS[name] for name in MATERIAL_NAMES])
    return table[labels]


def render_scene_slices(scene: Scene, *, title: str | None = None, point_mm=(0.0, 0.0, 0.0), zoom_mm: float | None = 70.0):
    """Axial and sagittal slices of the labelled phantom through ``point_mm`` (z, y, x).

    Materials are shown in colour (legend), structures as contours, with millimetre axes
    and the not-for-clinical-use line. ``zoom_mm`` crops the view to that half-width
    around the canal (None shows the whole grid). Returns the matplotlib Figure.

    Parameters
    ----------
    scene : Scene
        A labelled scene (material labels and structures).
    title : str, optional
        Figure title (default 'spinesim phantom <level>').
    point_mm : array_like of float, default (0.0, 0.0, 0.0)
        (z, y, x) mm the slices pass through (nearest voxel).
    zoom_mm : float or None, default 70.0
        Half-width (mm) of the view around the canal; None or 0 shows the whole grid.

    Returns
    -------
    matplotlib.figure.Figure
        The two-panel figure.
    """
    plt = _pyplot()
    from matplotlib.patches import Patch

    grid = scene.grid
    k, j, i = grid.nearest_index(point_mm)
    z, y, x = grid.axes_mm()
    rgb = _label_rgb(scene.labels)
    figure, (axial, sagittal) = plt.subplots(1, 2, figsize=(13, 6.4), gridspec_kw={"width_ratios": [1.15, 1]})
    # Axial: anterior at the top, patient's left on the viewer's right (radiological view
    # from the feet would mirror x; we show the LPS +x to the right and say so).
    axial.imshow(rgb[k], extent=(x[0], x[-1], y[-1], y[0]), interpolation="nearest")
    axial.set_xlabel("x (mm, +x = patient's left)")
    axial.set_ylabel("y (mm, +y = posterior)")
    axial.set_title(f"axial z = {z[k]:.1f} mm")
    sagittal.imshow(np.transpose(rgb[:, :, i], (0, 1, 2)), extent=(y[0], y[-1], z[0], z[-1]), origin="lower",
                    interpolation="nearest", aspect="equal")
    sagittal.set_xlabel("y (mm, anterior <- -> posterior)")
    sagittal.set_ylabel("z (mm, +z = superior)")
    sagittal.set_title(f"mid-sagittal x = {x[i]:.1f} mm")
    for name, colour in STRUCTURE_COLOURS.items():
        if name not in scene.structures or scene.structures[name].is_empty:
            continue
        occupancy = scene.structures[name].full()
        if occupancy[k].max() >= 0.5:
            axial.contour(x, y, occupancy[k], [0.5], colors=colour, linewidths=1.0)
        if occupancy[:, :, i].max() >= 0.5:
            sagittal.contour(y, z, occupancy[:, :, i], [0.5], colors=colour, linewidths=1.0)
    if zoom_mm:
        axial.set_xlim(-zoom_mm, zoom_mm)
        axial.set_ylim(zoom_mm * 0.8, -zoom_mm * 1.2)
        sagittal.set_xlim(-zoom_mm * 1.2, zoom_mm * 0.8)
    # 10 mm scale bar in the axial view.
    x0, x1 = axial.get_xlim()
    y0, y1 = axial.get_ylim()
    bar_x = x0 + 0.06 * (x1 - x0)
    bar_y = y0 - 0.06 * (y0 - y1)
    axial.plot([bar_x, bar_x + 10], [bar_y, bar_y], color="white", linewidth=3)
    axial.text(bar_x + 5, bar_y - 0.02 * (y0 - y1), "10 mm", color="white", ha="center", va="bottom", fontsize=9)
    present = sorted(set(np.unique(scene.labels)))
    handles = [Patch(color=MATERIAL_COLOURS[MATERIAL_NAMES[c]], label=MATERIAL_NAMES[c].replace("_", " ")) for c in present]
    handles += [Patch(facecolor="none", edgecolor=STRUCTURE_COLOURS[n], label=n.replace("_", " "))
                for n in STRUCTURE_COLOURS if n in scene.structures and not scene.structures[n].is_empty]
    figure.legend(handles=handles, loc="center right", fontsize=8, frameon=False)
    figure.suptitle(title or f"spinesim phantom {scene.level}", fontsize=12)
    figure.text(0.5, 0.01, DISCLAIMER, ha="center", fontsize=9, color="dimgray")
    figure.subplots_adjust(left=0.06, right=0.84, bottom=0.1, top=0.9, wspace=0.25)
    return figure


def write_figure(figure, path: str | os.PathLike, *, dpi: int = 110) -> Path:
    """Save a figure atomically (a temporary file renamed into place): never half-written.

    The figure is closed afterwards, whether or not saving worked.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        The figure to save.
    path : str or os.PathLike
        Output file ending in .png, .svg or .pdf (ValueError otherwise), in an existing
        folder.
    dpi : int, default 110
        Resolution (dots per inch) of a PNG.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".svg", ".pdf"):
        raise ValueError(f"output file must end in .png, .svg or .pdf, got {path.name!r}")
    try:
        write_atomically(path, lambda temporary: figure.savefig(temporary, dpi=dpi))
    finally:
        _pyplot().close(figure)
    return path


def render_dose_slice(scene: Scene, dose_gy: np.ndarray, *, title: str | None = None, point_mm=(0.0, 0.0, 0.0),
                      zoom_mm: float | None = 80.0, isodose_percent=(20, 50, 80, 95)):
    """Axial dose colour wash over the density image, isodose lines (percent of the maximum)
    and structure contours. Returns the matplotlib Figure.

    Parameters
    ----------
    scene : Scene
        The scene (density image and structure contours).
    dose_gy : numpy.ndarray
        Dose (Gy) on the scene's grid (another shape raises ValueError).
    title : str, optional
        Axis title (default 'dose, axial z = ... mm').
    point_mm : array_like of float, default (0.0, 0.0, 0.0)
        (z, y, x) mm the axial slice passes through (nearest voxel).
    zoom_mm : float or None, default 80.0
        Half-width (mm) of the view; None or 0 shows the whole slice.
    isodose_percent : sequence of float, default (20, 50, 80, 95)
        Isodose lines in percent of the maximum dose.

    Returns
    -------
    matplotlib.figure.Figure
        The figure with its colour bar (Gy).
    """
    plt = _pyplot()
    dose_gy = np.asarray(dose_gy, float)
    if dose_gy.shape != scene.grid.shape:
        raise ValueError(f"dose shape {dose_gy.shape} does not match the scene grid {scene.grid.shape}")
    grid = scene.grid
    k = grid.nearest_index(point_mm)[0]
    z, y, x = grid.axes_mm()
    extent = (x[0] - grid.spacing_mm[2] / 2, x[-1] + grid.spacing_mm[2] / 2, y[-1] + grid.spacing_mm[1] / 2,
              y[0] - grid.spacing_mm[1] / 2)
    figure, axis = plt.subplots(figsize=(8.5, 7.2))
    axis.imshow(scene.density_g_cc[k], cmap="gray", vmin=0, vmax=2.0, extent=extent, interpolation="nearest")
    peak = float(dose_gy.max())
    wash = np.ma.masked_less(dose_gy[k], 0.1 * peak)
    image = axis.imshow(wash, cmap="jet", alpha=0.45, vmin=0, vmax=peak, extent=extent, interpolation="bilinear")
    levels = [peak * p / 100 for p in isodose_percent]
    lines = axis.contour(x, y, dose_gy[k], levels, colors="white", linewidths=0.8)
    axis.clabel(lines, fmt={lv: f"{p}%" for lv, p in zip(levels, isodose_percent)}, fontsize=7)
    for name, colour in STRUCTURE_COLOURS.items():
        if name in scene.structures and scene.structures[name].full()[k].max() >= 0.5:
            axis.contour(x, y, scene.structures[name].full()[k], [0.5], colors=colour, linewidths=1.2)
    if zoom_mm:
        axis.set_xlim(-zoom_mm, zoom_mm)
        axis.set_ylim(zoom_mm * 0.8, -zoom_mm * 1.2)
    axis.set_xlabel("x (mm, +x = patient's left)")
    axis.set_ylabel("y (mm, +y = posterior)")
    figure.colorbar(image, ax=axis, label="dose (Gy)", shrink=0.8)
    axis.set_title(title or f"dose, axial z = {z[k]:.1f} mm", fontsize=10)
    figure.text(0.5, 0.01, DISCLAIMER, ha="center", fontsize=8, color="dimgray")
    return figure
