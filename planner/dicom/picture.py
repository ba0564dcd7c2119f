"""A picture of an exported DICOM RT set drawn from the files alone (pydicom + matplotlib).

What a viewer would show: the CT slice through the isocentre (soft-tissue window), the RT
Dose as a colour wash with isodose lines, and each structure's contour as written in the RT
Structure Set, in its display colour. Nothing comes from spinesim's own objects, so the
picture shows what another program reading the files would see.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scenes.dicom_import import contour_numbers

from planner.common.files import write_atomically
from planner.common.safety import DISCLAIMER

from .read import find_objects, read_dose, read_plan

__all__ = ["render_dicom_set"]

#: Soft-tissue display window (centre, width) in HU: a display setting, not a clinical figure.
WINDOW_HU = (40, 400)
#: Isodose lines as fractions of the prescription (or of the maximum without a plan).
ISODOSE_FRACTIONS = (0.3, 0.5, 0.8, 1.0)


def _ct_volume(paths):
    import pydicom

    slices = sorted((pydicom.dcmread(p) for p in paths), key=lambda ds: float(ds.ImagePositionPatient[2]))
    hu = np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in slices])
    x0, y0 = (float(v) for v in slices[0].ImagePositionPatient[:2])
    row_mm, column_mm = (float(v) for v in slices[0].PixelSpacing)
    z = np.array([float(ds.ImagePositionPatient[2]) for ds in slices])
    return hu, z, (x0, y0), (row_mm, column_mm)


def render_dicom_set(folder, out, *, z_mm: float | None = None, dpi: int = 110) -> Path:
    """Render the CT, dose and contours of one axial plane of a DICOM RT set to an image.

    Parameters
    ----------
    folder : str or os.PathLike
        A folder with a CT series, an RT Structure Set and, optionally, an RT Dose and RT Plan.
    out : str or os.PathLike
        The image file (.png, .svg or .pdf), written atomically.
    z_mm : float, optional
        The plane (patient z, mm); default the plan's isocentre, else the dose maximum, else
        the middle slice.
    dpi : int, default 110
        Resolution of a raster image.

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pydicom

    objects = find_objects(folder)
    hu, z, (x0, y0), (row_mm, column_mm) = _ct_volume(objects["CT"])
    dose = grid = plan = None
    if "RTDOSE" in objects:
        dose, grid = read_dose(objects["RTDOSE"][0])
    if "RTPLAN" in objects:
        plan = read_plan(objects["RTPLAN"][0])
    if z_mm is None:
        if plan is not None and plan.beams:
            z_mm = plan.beams[0].isocentre_mm[0]
        elif dose is not None:
            z_mm = grid.axes_mm()[0][int(np.unravel_index(np.argmax(dose), dose.shape)[0])]
        else:
            z_mm = float(z[len(z) // 2])
    k = int(np.argmin(np.abs(z - z_mm)))
    rows, columns = hu.shape[1:]
    extent = (x0 - column_mm / 2, x0 + column_mm * (columns - 0.5), y0 + row_mm * (rows - 0.5), y0 - row_mm / 2)
    figure, axes = plt.subplots(1, 2, figsize=(13.0, 6.2), gridspec_kw={"width_ratios": [1.35, 1.0]})
    centre, width = WINDOW_HU
    plane = reference = None
    if dose is not None:
        dz, dy, dx = grid.axes_mm()
        plane = dose[int(np.argmin(np.abs(dz - z[k])))]
        reference = plan.prescription_gy if plan is not None and np.isfinite(plan.prescription_gy) else float(dose.max())
    outlines = []
    half_gap = float(np.min(np.diff(z))) / 2 if len(z) > 1 else 0.5
    if "RTSTRUCT" in objects:
        structure_set = pydicom.dcmread(objects["RTSTRUCT"][0])
        names = {int(item.ROINumber): str(item.ROIName) for item in structure_set.StructureSetROISequence}
        for roi in structure_set.ROIContourSequence:
            colour = np.array([float(c) for c in roi.get("ROIDisplayColor", [255, 255, 0])]) / 255
            polygons = []
            for contour in roi.get("ContourSequence", []):
                points = contour_numbers(contour).reshape(-1, 3)
                if abs(points[0, 2] - z[k]) <= half_gap:
                    polygons.append(np.vstack([points[:, :2], points[:1, :2]]))
            if polygons:
                outlines.append((names.get(int(roi.ReferencedROINumber), "?"), colour, polygons))
    for axis in axes:
        axis.imshow(hu[k], cmap="gray", vmin=centre - width / 2, vmax=centre + width / 2, extent=extent, origin="upper")
        if plane is not None:
            wash = np.ma.masked_less(plane, ISODOSE_FRACTIONS[0] * reference)
            image = axis.imshow(wash, cmap="jet", alpha=0.4, vmin=0, vmax=max(float(dose.max()), 1e-9),
                                extent=(dx[0] - grid.spacing_mm[2] / 2, dx[-1] + grid.spacing_mm[2] / 2,
                                        dy[-1] + grid.spacing_mm[1] / 2, dy[0] - grid.spacing_mm[1] / 2), origin="upper")
            lines = axis.contour(dx, dy, plane, levels=[f * reference for f in ISODOSE_FRACTIONS], colors="white",
                                 linewidths=0.8, linestyles="dashed")
            axis.clabel(lines, fmt=lambda v: f"{v:.0f} Gy", fontsize=7)
        for _, colour, polygons in outlines:
            for polygon in polygons:
                axis.plot(polygon[:, 0], polygon[:, 1], color=colour, linewidth=0.9)
        axis.set_xlabel("x (mm, patient left +)")
        axis.set_ylabel("y (mm, posterior +)")
    # The right panel: 45 mm around the target (the plan's isocentre, else the dose maximum).
    if plan is not None and plan.beams:
        focus = plan.beams[0].isocentre_mm[2], plan.beams[0].isocentre_mm[1]
    elif plane is not None:
        j, i = np.unravel_index(np.argmax(plane), plane.shape)
        focus = dx[i], dy[j]
    else:
        focus = x0 + column_mm * columns / 2, y0 + row_mm * rows / 2
    reach = 45.0
    axes[1].set_xlim(focus[0] - reach, focus[0] + reach)
    axes[1].set_ylim(focus[1] + reach, focus[1] - reach)
    if plane is not None:
        figure.colorbar(image, ax=axes[1], fraction=0.046, label="dose (Gy, whole course)")
    handles = [plt.Line2D([], [], color=colour, label=name) for name, colour, _ in outlines]
    figure.legend(handles=handles, loc="lower center", fontsize=7, ncol=min(8, max(1, len(handles))), frameon=False)
    title = f"DICOM RT set {Path(folder).name}: axial z = {z[k]:.1f} mm (CT, RT Dose, RT Structure Set as written)"
    if plan is not None:
        title += f"; plan {plan.prescription_gy:g} Gy / {plan.fractions} fx, {len(plan.beams)} beams"
    figure.suptitle(title + f"\n{DISCLAIMER}", fontsize=10)
    figure.subplots_adjust(bottom=0.2)
    out = Path(out)

    def save(temporary):
        figure.savefig(temporary, dpi=dpi, format=out.suffix.lstrip(".") or "png", bbox_inches="tight")

    try:
        write_atomically(out, save)
    finally:
        plt.close(figure)
    return out
