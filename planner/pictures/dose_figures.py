"""Matplotlib pictures of plans: dose slices, the cord-tumour close-up and DVHs.

The charts of strategies and of time (trade-off, gap curve, timeline) are in :mod:`.charts`
(also importable from here).

Every figure carries the not-for-clinical-use line (:data:`planner.figures.DISCLAIMER`).
Slices follow :mod:`scenes.grid`: axial seen from the feet (anterior up, the patient's left
on the right), sagittal with anterior on the left and the head up, coronal seen from the
front (the patient's left on the right, the head up). Save with
:func:`planner.figures.write_figure`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from scenes.scene import Scene

from planner.radiotherapy.constraints import constraint_status
from planner.radiotherapy.metrics import POINT_MAX_CC, StructureDose, dvh, metric, structure_dose

from .charts import _READABLE, disclaim as _disclaim, line_boxes, marker_boxes, place_texts
from .figures import STANDARD_ISODOSE_PERCENT, STRUCTURE_COLOURS, _pyplot, isodose_colour

__all__ = ["render_dose_slices", "render_interface_closeup", "interface_point_mm", "dvh_curves", "plot_dvh",
           "slice_gap_mm", "SLICE_STRUCTURES", "STATUS_COLOURS"]

#: Structures contoured on the dose slices, drawn in this order (those the scene has).
SLICE_STRUCTURES = ("gtv", "epidural_disease", "ptv", "spinal_cord", "thecal_sac", "cauda_equina", "esophagus")
_COLOURS = dict(STRUCTURE_COLOURS, ptv="darkorange")
_DASHED = {"ptv"}
#: Constraint marker colour by checker status.
STATUS_COLOURS = {"pass": "forestgreen", "within 5%": "orange", "fail": "red"}
_PLANES = ("axial", "sagittal", "coronal")


def _check_dose(scene: Scene, dose_gy) -> np.ndarray:
    dose_gy = np.asarray(dose_gy, float)
    if dose_gy.shape != scene.grid.shape:
        raise ValueError(f"dose shape {dose_gy.shape} does not match the scene grid {scene.grid.shape}")
    return dose_gy


def _neural(scene: Scene) -> str:
    for name in ("thecal_sac", "spinal_cord", "cauda_equina"):
        if scene.has(name):
            return name
    raise ValueError("the scene has no thecal sac, cord or cauda to look at")


def interface_point_mm(scene: Scene) -> np.ndarray:
    """(z, y, x) mm: the height where the tumour comes closest to the thecal sac (or cord),
    at the centre of the cord (or sac) in that axial slice.

    Parameters
    ----------
    scene : Scene
        A scene with a thecal sac, cord or cauda (ValueError otherwise); the tumour is its
        GTV, else its epidural disease, else the middle of the neural structure is used.

    Returns
    -------
    numpy.ndarray
        The point (z, y, x) in mm.
    """
    neural = scene.structure(_neural(scene)).full() >= 0.5
    tumour_name = "gtv" if scene.has("gtv") else "epidural_disease"
    tumour = scene.structure(tumour_name).full() >= 0.5 if scene.has(tumour_name) else np.zeros_like(neural)
    grid = scene.grid
    if tumour.any():
        distance = ndimage.distance_transform_edt(~neural, sampling=grid.spacing_mm)
        candidates = np.argwhere(tumour)
        k = int(candidates[np.argmin(distance[tumour])][0])
    else:
        k = int(np.mean(np.nonzero(neural.any(axis=(1, 2)))[0]))
    core = scene.structure("spinal_cord" if scene.has("spinal_cord") else _neural(scene)).full()[k]
    if core.sum() == 0:
        core = neural[k].astype(float)
    j, i = ndimage.center_of_mass(core)
    return grid.index_to_mm((k, j, i))


def _plane_data(volume: np.ndarray, plane: str, index: tuple) -> np.ndarray:
    k, j, i = index
    return {"axial": volume[k], "sagittal": volume[:, :, i], "coronal": volume[:, j, :]}[plane]


def _plane_axes(scene: Scene, plane: str):
    """(horizontal centres, vertical centres, extent, origin, labels) of a plane's image."""
    z, y, x = scene.grid.axes_mm()
    dz, dy, dx = scene.grid.spacing_mm
    if plane == "axial":
        return x, y, (x[0] - dx / 2, x[-1] + dx / 2, y[-1] + dy / 2, y[0] - dy / 2), "upper", (
            "x (mm, +x = patient's left)", "y (mm, +y = posterior)")
    if plane == "sagittal":
        return y, z, (y[0] - dy / 2, y[-1] + dy / 2, z[0] - dz / 2, z[-1] + dz / 2), "lower", (
            "y (mm, anterior <- -> posterior)", "z (mm, +z = superior)")
    return x, z, (x[0] - dx / 2, x[-1] + dx / 2, z[0] - dz / 2, z[-1] + dz / 2), "lower", (
        "x (mm, +x = patient's left)", "z (mm, +z = superior)")


def _draw_plane(axis, scene, dose_gy, plane, index, *, prescription_gy, isodose_percent, wash_threshold_percent,
                structures, centre_mm, half_width_mm):
    """Density, dose wash, isodose lines and structure contours of one plane; returns legend handles."""
    from matplotlib.lines import Line2D

    horizontal, vertical, extent, origin, (x_label, y_label) = _plane_axes(scene, plane)
    axis.imshow(_plane_data(scene.density_g_cc, plane, index), cmap="gray", vmin=0.6, vmax=1.9, extent=extent,
                origin=origin, interpolation="nearest")
    handles = []
    wash_image = None
    if dose_gy is not None:
        section = _plane_data(dose_gy, plane, index)
        wash = np.ma.masked_less(section, wash_threshold_percent / 100 * prescription_gy)
        wash_image = axis.imshow(wash, cmap="turbo", alpha=0.42, vmin=0.0, vmax=1.15 * prescription_gy, extent=extent,
                                 origin=origin, interpolation="bilinear")
        for percent in sorted(isodose_percent, reverse=True):
            level = percent / 100 * prescription_gy
            colour = isodose_colour(percent)
            if section.max() >= level:
                lines = axis.contour(horizontal, vertical, section, [level], colors=[colour], linewidths=1.1)
                lines.set_gid(f"isodose:{percent:g}")
                axis.clabel(lines, fmt={level: f"{percent:g}%"}, fontsize=6, inline_spacing=2)
            handles.append(Line2D([], [], color=colour, linewidth=1.1, label=f"{percent:g}% ({level:.1f} Gy)"))
    for name in structures:
        if not scene.has(name):
            continue
        occupancy = _plane_data(scene.structure(name).full(), plane, index)
        style = "--" if name in _DASHED else "-"
        if occupancy.max() >= 0.5:
            lines = axis.contour(horizontal, vertical, occupancy, [0.5], colors=[_COLOURS.get(name, "white")],
                                 linewidths=1.6, linestyles=style)
            lines.set_gid(f"structure:{name}")
        handles.append(Line2D([], [], color=_COLOURS.get(name, "white"), linewidth=1.6, linestyle=style,
                              label=name.replace("_", " ").replace("esophagus", "oesophagus")))
    a, b = {"axial": (2, 1), "sagittal": (1, 0), "coronal": (2, 0)}[plane]
    # The window around the point, cut to the grid: no empty band where the grid ends first
    # (a phantom a few mm shorter than the window along z).
    (h_low, h_high), (v_low, v_high) = sorted(extent[:2]), sorted(extent[2:])
    axis.set_xlim(max(centre_mm[a] - half_width_mm, h_low), min(centre_mm[a] + half_width_mm, h_high))
    low, high = max(centre_mm[b] - half_width_mm, v_low), min(centre_mm[b] + half_width_mm, v_high)
    axis.set_ylim((high, low) if plane == "axial" else (low, high))
    axis.set_xlabel(x_label, fontsize=8)
    axis.set_ylabel(y_label, fontsize=8)
    axis.tick_params(labelsize=7)
    return handles, wash_image


def render_dose_slices(scene: Scene, dose_gy: np.ndarray, *, prescription_gy: float, point_mm=None,
                       isodose_percent=STANDARD_ISODOSE_PERCENT, wash_threshold_percent: float = 30.0,
                       structures=SLICE_STRUCTURES, half_width_mm: float = 45.0, title: str | None = None):
    """Axial, sagittal and coronal dose slices through ``point_mm`` (default :func:`interface_point_mm`).

    Parameters
    ----------
    scene : Scene
        The planned scene (density image and structure contours).
    dose_gy : ndarray
        Dose on the scene's grid (z, y, x); another shape raises ValueError.
    prescription_gy : float
        The isodose percentages and the wash's colour scale refer to it; > 0 (ValueError
        otherwise).
    point_mm : (z, y, x) mm, optional
        Where the three planes cross.
    isodose_percent : sequence of float
        Isodose lines in percent of the prescription (each labelled inline).
    wash_threshold_percent : float
        The colour wash is transparent below this percentage of the prescription.
    structures : sequence of str
        Contoured structures (those the scene has).
    half_width_mm : float
        Half-width of each panel around the point.
    title : str, optional
        Figure title (default 'dose, prescription <Rx> Gy').

    Returns
    -------
    matplotlib.figure.Figure
        Three panels (gids ``panel:axial``, ``panel:sagittal``, ``panel:coronal``).
    """
    plt = _pyplot()
    dose_gy = _check_dose(scene, dose_gy)
    if not prescription_gy > 0:
        raise ValueError(f"prescription_gy must be > 0, got {prescription_gy}")
    point = interface_point_mm(scene) if point_mm is None else np.asarray(point_mm, float)
    index = scene.grid.nearest_index(point)
    centre = scene.grid.index_to_mm(index)
    figure, axes = plt.subplots(1, 3, figsize=(15.5, 5.8))
    handles, wash = [], None
    for axis, plane in zip(axes, _PLANES):
        handles, wash = _draw_plane(axis, scene, dose_gy, plane, index, prescription_gy=prescription_gy,
                                    isodose_percent=isodose_percent, wash_threshold_percent=wash_threshold_percent,
                                    structures=structures, centre_mm=centre, half_width_mm=half_width_mm)
        where = {"axial": f"z = {centre[0]:.1f}", "sagittal": f"x = {centre[2]:.1f}", "coronal": f"y = {centre[1]:.1f}"}[plane]
        axis.set_title(f"{plane} {where} mm", fontsize=9)
        axis.set_gid(f"panel:{plane}")
    figure.subplots_adjust(left=0.05, right=0.83, bottom=0.12, top=0.88, wspace=0.28)
    colourbar_axis = figure.add_axes((0.845, 0.15, 0.012, 0.68))
    figure.colorbar(wash, cax=colourbar_axis, label="dose (Gy)")
    figure.legend(handles=handles, loc="center right", fontsize=7.5, frameon=False, title="isodose / structure",
                  title_fontsize=8, bbox_to_anchor=(0.995, 0.5))
    figure.suptitle(title or f"dose, prescription {prescription_gy:g} Gy", fontsize=11)
    _disclaim(figure)
    return figure


def _dense_points(paths, step_mm: float = 0.1) -> np.ndarray:
    points = []
    for vertices in (polygon for path in paths for polygon in path.to_polygons(closed_only=False)):
        if len(vertices) == 0:
            continue
        for a, b in zip(vertices[:-1], vertices[1:]):
            count = max(1, int(np.ceil(np.hypot(*(b - a)) / step_mm)))
            points.append(a + (b - a) * np.linspace(0, 1, count, endpoint=False)[:, None])
        points.append(vertices[-1:])
    return np.concatenate(points) if points else np.zeros((0, 2))


def _contour_paths(contour_set):
    try:
        return contour_set.get_paths()
    except AttributeError:  # matplotlib < 3.8
        return [p for collection in contour_set.collections for p in collection.get_paths()]


def _contour_points(x, y, section) -> np.ndarray:
    """Points every 0.1 mm along the half-occupancy contour of a 2-D section (x, y mm)."""
    from matplotlib.figure import Figure

    helper = Figure().add_subplot()
    return _dense_points(_contour_paths(helper.contour(x, y, section, [0.5])))


def slice_gap_mm(scene: Scene, k: int):
    """In axial slice ``k``: (gap mm, tumour point, sac point) between the GTV's and the
    thecal sac's (else cord's) half-occupancy contours; gap 0 where they touch or overlap,
    ``(nan, None, None)`` where either is absent from the slice. Points are (x, y) mm.

    Parameters
    ----------
    scene : Scene
        A scene with a GTV and a thecal sac, cord or cauda.
    k : int
        Index of the axial slice (along z).

    Returns
    -------
    gap_mm : float
        Shortest distance (mm) between the two contours (contours sampled every 0.1 mm).
    tumour_point : numpy.ndarray or None
        (x, y) mm of the tumour contour's closest point.
    sac_point : numpy.ndarray or None
        (x, y) mm of the neural contour's closest point.
    """
    if not scene.has("gtv"):
        return float("nan"), None, None
    z, y, x = scene.grid.axes_mm()
    tumour = scene.structure("gtv").full()[k]
    sac = scene.structure(_neural(scene)).full()[k]
    if tumour.max() < 0.5 or sac.max() < 0.5:
        return float("nan"), None, None
    from scipy.spatial import cKDTree

    tumour_points, sac_points = _contour_points(x, y, tumour), _contour_points(x, y, sac)
    if len(tumour_points) == 0 or len(sac_points) == 0:
        return float("nan"), None, None
    distance, nearest = cKDTree(sac_points).query(tumour_points)
    best = int(np.argmin(distance))
    gap = 0.0 if np.any((tumour >= 0.5) & (sac >= 0.5)) else float(distance[best])
    return gap, tumour_points[best], sac_points[nearest[best]]


def render_interface_closeup(scene: Scene, dose_gy: np.ndarray | None = None, *, prescription_gy: float | None = None,
                             point_mm=None, half_width_mm: float = 12.0, isodose_percent=STANDARD_ISODOSE_PERCENT,
                             title: str | None = None):
    """Axial close-up of the cord-tumour interface with a millimetre scale bar and the gap drawn.

    The slice is the one where the GTV's contour comes closest to the thecal sac's (or the
    slice through ``point_mm``). The gap is measured in that slice between the two
    half-occupancy contours and drawn as a white segment with its length; touching or
    overlapping contours read 'gap 0 mm'. Returns the Figure; ``figure.gap_mm`` holds the
    measured gap (``nan`` if either contour is absent from the slice).

    Parameters
    ----------
    scene : Scene
        The scene (density image and contours).
    dose_gy : numpy.ndarray, optional
        Dose (Gy) on the scene's grid (another shape raises ValueError); drawn as a wash
        with isodose lines.
    prescription_gy : float, optional
        Reference of the isodose percentages; > 0 when a dose is given (ValueError
        otherwise).
    point_mm : array_like of float, optional
        (z, y, x) mm the slice passes through (default: the slice of the smallest gap).
    half_width_mm : float, default 12.0
        Half-width (mm) of the view around the interface.
    isodose_percent : sequence of float, default STANDARD_ISODOSE_PERCENT
        Isodose lines in percent of the prescription.
    title : str, optional
        Axis title (default 'cord-tumour interface, axial z = ... mm').

    Returns
    -------
    matplotlib.figure.Figure
        The close-up, with ``figure.gap_mm`` (float) set.
    """
    plt = _pyplot()
    if dose_gy is not None:
        dose_gy = _check_dose(scene, dose_gy)
        if not (prescription_gy or 0) > 0:
            raise ValueError("a dose needs prescription_gy > 0 for its isodose percentages")
    if point_mm is None:
        point = interface_point_mm(scene)
        heights = np.nonzero(scene.structure("gtv").full().max(axis=(1, 2)) >= 0.5)[0] if scene.has("gtv") else []
        gaps = {int(k): slice_gap_mm(scene, int(k))[0] for k in heights}
        gaps = {k: g for k, g in gaps.items() if np.isfinite(g)}
        if gaps:
            point[0] = scene.grid.axes_mm()[0][min(gaps, key=gaps.get)]
    else:
        point = np.asarray(point_mm, float)
    index = scene.grid.nearest_index(point)
    gap_mm, a, b = slice_gap_mm(scene, index[0])
    centre = scene.grid.index_to_mm(index)
    if a is not None:  # keep the gap in view, next to the cord
        centre[1:] = (centre[1:] + np.array([(a[1] + b[1]) / 2, (a[0] + b[0]) / 2])) / 2
    figure, axis = plt.subplots(figsize=(9.6, 6.6))
    names = [n for n in ("gtv", "epidural_disease", "spinal_cord", "thecal_sac", "cauda_equina") if scene.has(n)]
    handles, wash = _draw_plane(axis, scene, dose_gy, "axial", index, prescription_gy=prescription_gy or 1.0,
                                isodose_percent=isodose_percent if dose_gy is not None else (),
                                wash_threshold_percent=30.0, structures=names, centre_mm=centre,
                                half_width_mm=half_width_mm)
    if wash is not None:
        figure.colorbar(wash, ax=axis, label="dose (Gy)", shrink=0.8, pad=0.02)
    if a is not None:
        if gap_mm > 0:
            axis.plot([a[0], b[0]], [a[1], b[1]], color="white", linewidth=2.0, gid="gap")
        axis.annotate(f"gap {gap_mm:.1f} mm (this slice)" if gap_mm > 0 else "tumour touches the thecal sac (gap 0 mm)",
                      xy=((a[0] + b[0]) / 2, (a[1] + b[1]) / 2), xytext=(0.04, 0.93), textcoords="axes fraction",
                      color="white", fontsize=10, fontweight="bold",
                      bbox=dict(boxstyle="round", facecolor="black", alpha=0.5, linewidth=0),
                      arrowprops=dict(arrowstyle="->", color="white", linewidth=1.0))
    # Millimetre scale bar: 5 mm with a tick every millimetre, bottom left.
    x0, x1 = axis.get_xlim()
    y_bottom, y_top = axis.get_ylim()
    bar_x = x0 + 0.06 * (x1 - x0)
    bar_y = y_bottom - 0.07 * (y_bottom - y_top)
    axis.plot([bar_x, bar_x + 5.0], [bar_y, bar_y], color="white", linewidth=2.5, solid_capstyle="butt", gid="scale_bar")
    tick = 0.012 * (y_bottom - y_top)
    for millimetre in range(6):
        height = 2 * tick if millimetre in (0, 5) else tick
        axis.plot([bar_x + millimetre] * 2, [bar_y, bar_y - height], color="white", linewidth=1.2)
    axis.text(bar_x + 2.5, bar_y - 3 * tick, "5 mm (ticks 1 mm)", color="white", ha="center", va="bottom", fontsize=8)
    figure.legend(handles=handles, loc="center right", fontsize=7.5, frameon=False, bbox_to_anchor=(0.995, 0.5))
    figure.subplots_adjust(left=0.08, right=0.78, bottom=0.1, top=0.92)
    axis.set_title(title or f"cord-tumour interface, axial z = {centre[0]:.1f} mm", fontsize=10)
    _disclaim(figure)
    figure.gap_mm = gap_mm
    return figure


# -- plots ----------------------------------------------------------------------------------
def dvh_curves(dose_gy: np.ndarray, scene: Scene, structures=None) -> dict:
    """{name: StructureDose} for :func:`plot_dvh` (default: the slice structures the scene has).

    Parameters
    ----------
    dose_gy : numpy.ndarray
        Dose (Gy) on the scene's grid (another shape raises ValueError).
    scene : Scene
        The planned scene.
    structures : sequence of str, optional
        Structures to collect (default :data:`SLICE_STRUCTURES`); those the scene lacks are
        left out.

    Returns
    -------
    dict of str to StructureDose
        Each structure's voxel doses and volumes.
    """
    dose_gy = _check_dose(scene, dose_gy)
    names = [n for n in (SLICE_STRUCTURES if structures is None else structures) if scene.has(n)]
    voxel = scene.grid.voxel_volume_cc
    return {name: structure_dose(dose_gy, scene.structure(name).full(), voxel) for name in names}


def _limit_volume_cc(metric_name: str, total_cc: float) -> float | None:
    """Where a limit applies on the volume axis (cc), or None if it is no DVH point."""
    if metric_name == "Dmax":
        return POINT_MAX_CC
    if metric_name.startswith("D") and metric_name.endswith("cc"):
        return float(metric_name[1:-2])
    if metric_name.startswith("D") and metric_name.endswith("%") and metric_name[1:-1].replace(".", "", 1).isdigit():
        return float(metric_name[1:-1]) / 100 * total_cc
    return None


#: Structure colours that read on a white background (the slices' colours are for dark images).
_PLOT_COLOURS = dict(_COLOURS, spinal_cord="goldenrod", cauda_equina="darkgoldenrod", esophagus="limegreen",
                     thecal_sac="deepskyblue")


def plot_dvh(curves, *, constraints=None, prescription_gy: float | None = None, title: str | None = None):
    """Cumulative DVHs with the constraint limits as markers.

    Two panels: the volume in percent of each structure (linear), and the absolute volume
    in cc on a log scale for the constrained structures, where the small-volume limits of
    the cord (0.035 cc, 0.35 cc) can be read.

    Parameters
    ----------
    curves : mapping of str to StructureDose
        Per structure, its voxel doses and volumes (:func:`dvh_curves`); another value type
        raises TypeError.
    constraints : sequence of Constraint or ConstraintResult, optional
        Each limit is drawn as a marker at (limit dose, the volume it applies to): Dmax at
        0.035 cc, D<v>cc at v cc, D<x>% at x%. Colour by status (pass green, within 5%
        orange, fail red): a ConstraintResult's own status, else measured on the curve.
        Limits that are no DVH point (Dmean, V<x>Gy, the partial-cord D10%) are listed
        under the plot. Markers carry ``gid`` ``limit:<structure>:<metric>``; the panels
        ``dvh:percent`` and ``dvh:cc``.
    prescription_gy : float, optional
        Drawn as a dotted vertical line.
    title : str, optional
        Figure title (default 'cumulative dose-volume histograms').

    Returns
    -------
    matplotlib.figure.Figure
        The two-panel figure.
    """
    plt = _pyplot()
    from matplotlib.lines import Line2D

    for name, sd in curves.items():
        if not isinstance(sd, StructureDose):
            raise TypeError(f"curves[{name!r}] must be a StructureDose (see dvh_curves), got {type(sd).__name__}")
    curves = {name: sd for name, sd in curves.items() if sd.dose_gy.size}
    constraints = [c for c in (constraints or ()) if c.structure in curves]
    constrained = [name for name in curves if any(c.structure == name for c in constraints)] or list(curves)
    figure, (relative, absolute) = plt.subplots(1, 2, figsize=(13.0, 5.6))
    relative.set_gid("dvh:percent")
    absolute.set_gid("dvh:cc")
    # The dose axis reaches the highest dose, the prescription and every limit drawn.
    shown = [c.limit_gy for c in constraints if c.metric != "D10%_partial" and _limit_volume_cc(c.metric, 1.0) is not None]
    peak = max([float(sd.dose_gy.max()) for sd in curves.values()] + [1.0, prescription_gy or 0.0] + shown)
    bins = np.linspace(0.0, 1.08 * peak, 400)
    smallest = POINT_MAX_CC
    for name, sd in curves.items():
        cumulative, _ = dvh(sd, bins)
        style = dict(color=_PLOT_COLOURS.get(name), linewidth=1.6, linestyle="--" if name in _DASHED else "-",
                     label=name.replace("_", " ").replace("esophagus", "oesophagus"))
        relative.plot(bins, 100 * cumulative, gid=f"dvh:{name}", **style)
        if name in constrained:
            volume_cc = cumulative * sd.total_cc
            absolute.plot(bins, np.where(volume_cc > 0, volume_cc, np.nan), gid=f"dvh_cc:{name}", **style)
            smallest = min(smallest, float(sd.volume_cc.min()))
    unplotted, unnamed, labels, markers = [], [], [], []
    for c in constraints:
        sd = curves[c.structure]
        volume_cc = None if c.metric == "D10%_partial" else _limit_volume_cc(c.metric, sd.total_cc)
        if volume_cc is None:
            unplotted.append(f"{c.structure.replace('_', ' ')} {c.metric} <= {c.limit_gy:.1f} Gy")
            continue
        status = getattr(c, "status", None)
        if status not in STATUS_COLOURS:
            value = metric(sd, c.metric)
            status = constraint_status(value, c.limit_gy)
        for axis, volume in ((relative, 100 * volume_cc / sd.total_cc), (absolute, volume_cc)):
            axis.plot([c.limit_gy], [volume], marker="D", markersize=7, color=STATUS_COLOURS[status], linestyle="none",
                      markeredgecolor=_PLOT_COLOURS.get(c.structure, "black"), markeredgewidth=1.6, zorder=5,
                      gid=f"limit:{c.structure}:{c.metric}")
        markers.append((c.limit_gy, volume_cc))
        labels.append(absolute.annotate(f"{c.structure.replace('_', ' ')} {c.metric} {c.limit_gy:.1f} Gy",
                                        (c.limit_gy, volume_cc), xytext=(8, 3), textcoords="offset points", fontsize=7,
                                        color=STATUS_COLOURS[status], bbox=_READABLE, gid="limit_label"))
    for axis in (relative, absolute):
        if prescription_gy:
            axis.axvline(prescription_gy, color="black", linestyle=":", linewidth=1.0, label=f"prescription {prescription_gy:g} Gy")
        axis.set_xlim(0, bins[-1])
        axis.set_xlabel("dose (Gy)")
        axis.grid(alpha=0.3, which="both")
    relative.set_ylim(0, 102)
    relative.set_ylabel("volume receiving at least this dose (% of structure)")
    absolute.set_yscale("log")
    absolute.set_ylim(max(1e-3, 0.5 * smallest), 2 * max(curves[n].total_cc for n in constrained))
    absolute.set_ylabel("volume receiving at least this dose (cc, log)")
    absolute.set_title("constrained structures, absolute volume", fontsize=9)
    handles, _ = relative.get_legend_handles_labels()
    handles += [Line2D([], [], marker="D", linestyle="none", color=colour, label=f"limit: {status}")
                for status, colour in STATUS_COLOURS.items()]
    figure.legend(handles=handles, fontsize=8, loc="center right", bbox_to_anchor=(0.995, 0.5), frameon=False)
    relative.set_title("all structures, percent of volume", fontsize=9)
    figure.suptitle(title or "cumulative dose-volume histograms", fontsize=11)
    figure.subplots_adjust(left=0.06, right=0.86, bottom=0.15, wspace=0.22)
    if labels:  # each limit named beside its marker, off the curves and each other; the rest listed below
        obstacles = marker_boxes(absolute, *np.transpose(markers), 6.0)
        for line in absolute.lines:
            if (line.get_gid() or "").startswith("dvh_cc:"):
                obstacles += line_boxes(absolute, *line.get_data())
        options = [dict(xyann=(dx, dy), ha=ha, va="bottom" if dy > 0 else "top")
                   for dy in (3, -3, 15, -15, 27, -27, 39, -39, 55, -55, 75, -75)
                   for dx, ha in ((8, "left"), (-8, "right"), (0, "center"), (8, "right"))]
        for n in place_texts(figure, labels, [options] * len(labels), bounds=absolute.get_window_extent(),
                             obstacles=obstacles):
            labels[n].remove()
            unnamed.append(labels[n].get_text())
    notes = [f"{what}: " + "; ".join(items) for what, items in (("limits that are not DVH points", unplotted),
                                                                   ("markers not named in the plot", unnamed)) if items]
    if notes:
        figure.text(0.01, 0.045, "\n".join(notes), fontsize=7, color="dimgray", va="bottom")
    _disclaim(figure)
    return figure
