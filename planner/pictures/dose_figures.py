"""Matplotlib pictures of plans: dose slices, the cord-tumour close-up, DVHs and trade-off charts.

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
from planner.common.safety import DISCLAIMER
from .figures import STANDARD_ISODOSE_PERCENT, STRUCTURE_COLOURS, _pyplot, isodose_colour
from planner.radiotherapy.metrics import POINT_MAX_CC, StructureDose, dvh, metric, structure_dose

__all__ = ["render_dose_slices", "render_interface_closeup", "interface_point_mm", "dvh_curves", "plot_dvh",
           "plot_tradeoff", "plot_gap_curve", "plot_timeline", "slice_gap_mm", "SLICE_STRUCTURES", "STATUS_COLOURS"]

#: Structures contoured on the dose slices, drawn in this order (those the scene has).
SLICE_STRUCTURES = ("gtv", "epidural_disease", "ptv", "spinal_cord", "thecal_sac", "cauda_equina", "esophagus")
_COLOURS = dict(STRUCTURE_COLOURS, ptv="darkorange")
_DASHED = {"ptv"}
#: Constraint marker colour by checker status.
STATUS_COLOURS = {"pass": "forestgreen", "within 5%": "orange", "fail": "red"}
_PLANES = ("axial", "sagittal", "coronal")


def _disclaim(figure):
    figure.text(0.5, 0.005, DISCLAIMER, ha="center", va="bottom", fontsize=8, color="dimgray")


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
    at the centre of the cord (or sac) in that axial slice."""
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
    axis.set_xlim(centre_mm[a] - half_width_mm, centre_mm[a] + half_width_mm)
    low, high = centre_mm[b] - half_width_mm, centre_mm[b] + half_width_mm
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
    dose_gy : ndarray
        Dose on the scene's grid (z, y, x).
    prescription_gy : float
        The isodose percentages and the wash's colour scale refer to it.
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

    Returns
    -------
    matplotlib.figure.Figure
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
    ``(nan, None, None)`` where either is absent from the slice. Points are (x, y) mm."""
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
    """{name: StructureDose} for :func:`plot_dvh` (default: the slice structures the scene has)."""
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
        Per structure, its voxel doses and volumes (:func:`dvh_curves`).
    constraints : sequence of Constraint or ConstraintResult, optional
        Each limit is drawn as a marker at (limit dose, the volume it applies to): Dmax at
        0.035 cc, D<v>cc at v cc, D<x>% at x%. Colour by status (pass green, within 5%
        orange, fail red): a ConstraintResult's own status, else measured on the curve.
        Limits that are no DVH point (Dmean, V<x>Gy, the partial-cord D10%) are listed
        under the plot. Markers carry ``gid`` ``limit:<structure>:<metric>``; the panels
        ``dvh:percent`` and ``dvh:cc``.
    prescription_gy : float, optional
        Drawn as a dotted vertical line.

    Returns
    -------
    matplotlib.figure.Figure
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
    peak = max([float(sd.dose_gy.max()) for sd in curves.values()] + [1.0])
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
    unplotted = []
    for number, c in enumerate(constraints):
        sd = curves[c.structure]
        volume_cc = None if c.metric == "D10%_partial" else _limit_volume_cc(c.metric, sd.total_cc)
        if volume_cc is None:
            unplotted.append(f"{c.structure} {c.metric} <= {c.limit_gy:.1f} Gy")
            continue
        status = getattr(c, "status", None)
        if status not in STATUS_COLOURS:
            value = metric(sd, c.metric)
            status = constraint_status(value, c.limit_gy)
        for axis, volume in ((relative, 100 * volume_cc / sd.total_cc), (absolute, volume_cc)):
            axis.plot([c.limit_gy], [volume], marker="D", markersize=7, color=STATUS_COLOURS[status], linestyle="none",
                      markeredgecolor=_PLOT_COLOURS.get(c.structure, "black"), markeredgewidth=1.6, zorder=5,
                      gid=f"limit:{c.structure}:{c.metric}")
        absolute.annotate(f"{c.structure.replace('_', ' ')} {c.metric} {c.limit_gy:.1f} Gy", (c.limit_gy, volume_cc),
                          textcoords="offset points", xytext=(7, 3 + 9 * (number % 3)), fontsize=7,
                          color=STATUS_COLOURS[status])
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
    relative.legend(handles=handles, fontsize=8, loc="upper right")
    relative.set_title("all structures, percent of volume", fontsize=9)
    figure.suptitle(title or "cumulative dose-volume histograms", fontsize=11)
    if unplotted:
        figure.text(0.01, 0.045, "limits that are not DVH points: " + "; ".join(unplotted), fontsize=7, color="dimgray")
    figure.subplots_adjust(left=0.06, right=0.98, bottom=0.15, wspace=0.22)
    _disclaim(figure)
    return figure


def _pareto(rows, x_key, y_key) -> list[bool]:
    """Pareto-optimal rows for 'x higher is better, y lower is better'."""
    points = [(float(r[x_key]), float(r[y_key])) for r in rows]
    return [not any((x2 >= x and y2 <= y) and (x2 > x or y2 < y) for x2, y2 in points) for x, y in points]


def plot_tradeoff(rows, *, x_key: str, y_key: str, label_key: str, pareto_key: str | None = None,
                  x_label: str, y_label: str, title: str | None = None):
    """Strategies as labelled points on two outcomes (e.g. 1-year local control vs myelopathy risk).

    ``rows`` are dicts. Pareto points are marked (stars joined by a line): those whose
    ``pareto_key`` is true, or with no key those no other row beats on both axes, where a
    higher x and a lower y are better. Returns the Figure.
    """
    plt = _pyplot()
    rows = list(rows)
    if not rows:
        raise ValueError("plot_tradeoff needs at least one row")
    front = [bool(r[pareto_key]) for r in rows] if pareto_key else _pareto(rows, x_key, y_key)
    figure, axis = plt.subplots(figsize=(8.0, 5.6))
    x = np.array([float(r[x_key]) for r in rows])
    y = np.array([float(r[y_key]) for r in rows])
    front = np.array(front)
    axis.scatter(x[~front], y[~front], s=50, color="grey", label="dominated", zorder=3, gid="dominated")
    axis.scatter(x[front], y[front], s=160, marker="*", color="crimson", label="Pareto front", zorder=4, gid="pareto")
    order = np.argsort(x[front])
    axis.plot(x[front][order], y[front][order], color="crimson", linewidth=1.0, alpha=0.6)
    for row, xi, yi in zip(rows, x, y):
        axis.annotate(str(row[label_key]), (xi, yi), textcoords="offset points", xytext=(7, 5), fontsize=8)
    axis.margins(x=0.18, y=0.12)  # room for the labels
    axis.set_xlabel(x_label)
    axis.set_ylabel(y_label)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    axis.set_title(title or f"trade-off: {x_label} vs {y_label}", fontsize=10)
    figure.subplots_adjust(bottom=0.14)
    _disclaim(figure)
    return figure


def plot_gap_curve(gaps_mm, achievable_gy, *, prescription_gy: float | None = None, title: str | None = None):
    """Maximum achievable prescription against the separation gap (mm).

    With ``prescription_gy`` the prescription is drawn and the smallest gap reaching it
    (linearly interpolated) is marked. Returns the Figure; ``figure.gap_needed_mm`` holds
    that gap (``nan`` if none reaches it, or no prescription given).
    """
    plt = _pyplot()
    gaps = np.asarray(gaps_mm, float)
    achievable = np.asarray(achievable_gy, float)
    if gaps.shape != achievable.shape or gaps.ndim != 1 or gaps.size == 0:
        raise ValueError("gaps_mm and achievable_gy must be 1-D sequences of equal, non-zero length")
    order = np.argsort(gaps)
    gaps, achievable = gaps[order], achievable[order]
    figure, axis = plt.subplots(figsize=(7.6, 5.0))
    axis.plot(gaps, achievable, marker="o", color="navy", linewidth=1.8, label="maximum achievable prescription", gid="curve")
    needed = float("nan")
    if prescription_gy:
        axis.axhline(prescription_gy, color="crimson", linestyle="--", linewidth=1.2, label=f"prescription {prescription_gy:g} Gy")
        above = np.nonzero(achievable >= prescription_gy)[0]
        if above.size:
            first = int(above[0])
            if first == 0:
                needed = float(gaps[0])
            else:
                g0, g1, a0, a1 = gaps[first - 1], gaps[first], achievable[first - 1], achievable[first]
                needed = float(g0 + (prescription_gy - a0) * (g1 - g0) / (a1 - a0))
            axis.axvline(needed, color="forestgreen", linestyle=":", linewidth=1.2)
            axis.annotate(f"gap needed ~{needed:.1f} mm", (needed, prescription_gy), textcoords="offset points",
                          xytext=(8, -16), fontsize=9, color="forestgreen")
    axis.set_xlabel("separation gap between tumour and thecal sac (mm)")
    axis.set_ylabel("achievable prescription (Gy)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    axis.set_title(title or "what a surgical gap buys", fontsize=10)
    figure.subplots_adjust(bottom=0.14)
    _disclaim(figure)
    figure.gap_needed_mm = needed
    return figure


_GRADES = ("0", "1a", "1b", "1c", "2", "3")


def _sins_bands() -> tuple[int, int, int]:
    """(potentially unstable from, unstable from, maximum) SINS points (planner/clinical/data/scores.toml, fisher2010_sins)."""
    from planner.clinical.prognosis import score_tables

    table = score_tables()["sins"]
    return int(table["potentially_unstable"][0]), int(table["unstable"][0]), int(table["unstable"][1])


def plot_timeline(rows, *, title: str | None = None):
    """The delay timeline: ESCC grade, SINS and the chance of walking against weeks of delay.

    ``rows`` are dicts with ``weeks``, ``escc_grade`` (str, '0'..'3'), ``ambulatory_probability``
    (0-1), ``sins`` (int), ``recommendation`` (str) and ``sbrt_alone_ok`` (bool). Weeks where
    SBRT alone is acceptable are shaded green, the others red; a line marks where that
    window closes (the first week it is no longer acceptable) and where walking is lost (the
    chance of walking first falls below 50%). Changes of recommendation are written on the
    top panel. Returns the Figure; ``figure.window_closes_weeks`` and
    ``figure.walking_lost_weeks`` hold those weeks (``nan`` where it does not happen).
    """
    plt = _pyplot()
    rows = sorted(rows, key=lambda r: float(r["weeks"]))
    if not rows:
        raise ValueError("plot_timeline needs at least one row")
    weeks = np.array([float(r["weeks"]) for r in rows])
    walking = np.array([float(r["ambulatory_probability"]) for r in rows])
    grade = np.array([_GRADES.index(str(r["escc_grade"]).lower()) for r in rows])
    sins = np.array([int(r["sins"]) for r in rows])
    alone = np.array([bool(r["sbrt_alone_ok"]) for r in rows])
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9.0, 6.6), sharex=True, gridspec_kw={"height_ratios": [1.1, 1]})
    # Each row holds from its week to the next row's (the last for half a step more).
    last_step = (weeks[-1] - weeks[-2]) / 2 if len(weeks) > 1 else 1.0
    edges = np.concatenate([weeks, [weeks[-1] + last_step]])
    for axis in (top, bottom):
        for a, b, ok in zip(edges[:-1], edges[1:], alone):
            axis.axvspan(a, b, color="palegreen" if ok else "mistyrose", alpha=0.6, linewidth=0)
    top.plot(weeks, walking, marker="o", color="black", linewidth=1.6, label="chance of walking", gid="walking")
    top.axhline(0.5, color="grey", linestyle=":", linewidth=1.0)
    top.set_ylim(0, 1.05)
    top.set_ylabel("chance of walking")
    closes = float("nan")
    shut = np.nonzero(~alone)[0]
    if shut.size and alone[: shut[0]].any():
        closes = float(weeks[shut[0]])
    lost = float("nan")
    below = np.nonzero(walking < 0.5)[0]
    if below.size and (walking[: below[0]] >= 0.5).any():
        lost = float(weeks[below[0]])
    for axis in (top, bottom):
        if np.isfinite(closes):
            axis.axvline(closes, color="crimson", linewidth=1.6, gid="window_closes")
        if np.isfinite(lost):
            axis.axvline(lost, color="black", linestyle="--", linewidth=1.4, gid="walking_lost")
    if np.isfinite(closes):
        top.annotate(f"SBRT-alone window closes ({closes:g} wk)", (closes, 1.0), xytext=(4, -12), textcoords="offset points",
                     fontsize=8, color="crimson")
    if np.isfinite(lost):
        top.annotate(f"walking likely lost ({lost:g} wk)", (lost, 0.5), xytext=(4, -14), textcoords="offset points",
                     fontsize=8)
    previous = None
    for row, week in zip(rows, weeks):
        if row["recommendation"] != previous:
            top.annotate(str(row["recommendation"]), (week, 0.06), rotation=90, fontsize=7, color="navy", va="bottom",
                         xytext=(4, 0), textcoords="offset points", gid="recommendation")
            previous = row["recommendation"]
    bottom.step(weeks, grade, where="post", color="purple", linewidth=1.8, label="ESCC grade", gid="escc")
    bottom.set_yticks(range(len(_GRADES)), [f"ESCC {g}" for g in _GRADES], fontsize=7)
    bottom.set_ylim(-0.3, len(_GRADES) - 0.7)
    twin = bottom.twinx()
    twin.plot(weeks, sins, marker="s", color="darkorange", linewidth=1.2, label="SINS", gid="sins")
    potentially, unstable, most = _sins_bands()
    twin.set_ylim(0, most)
    twin.axhline(potentially, color="darkorange", linestyle=":", linewidth=0.8)
    twin.axhline(unstable, color="darkorange", linestyle=":", linewidth=0.8)
    twin.set_ylabel("SINS", fontsize=9, color="darkorange")
    twin.text(weeks[0], unstable + 0.3, f"SINS >= {unstable}: unstable; {potentially}-{unstable - 1}: potentially "
              "unstable (Fisher 2010)", fontsize=7, color="darkorange")
    bottom.set_xlabel("weeks of delay")
    from matplotlib.patches import Patch

    top.legend(handles=[Patch(color="palegreen", label="SBRT alone acceptable"),
                        Patch(color="mistyrose", label="surgery first (or not SBRT alone)")]
               + top.get_legend_handles_labels()[0], fontsize=7, loc="upper right")
    top.set_title(title or "what waiting costs", fontsize=10)
    figure.subplots_adjust(bottom=0.1, hspace=0.08, right=0.92)
    _disclaim(figure)
    figure.window_closes_weeks = closes
    figure.walking_lost_weeks = lost
    return figure
