"""The app's fast views, drawn in milliseconds so a slider never waits on matplotlib: dose
slices as PNG (anatomy in grey, the dose as isodose bands, structure outlines, nearest-voxel
enlargement) and the DVH as SVG, each returned as a ``data:`` URL or markup for the page.
"""

from __future__ import annotations

import base64
import io

import numpy as np

from planner.pictures.figures import STANDARD_ISODOSE_PERCENT, STRUCTURE_COLOURS, isodose_colour

__all__ = ["slice_png", "dvh_svg", "data_url", "OUTLINED"]

#: Structures outlined on the slices, with the planning targets.
OUTLINED = ("gtv", "ptv", "thecal_sac", "spinal_cord", "cauda_equina", "epidural_disease")
_OUTLINE_COLOURS = dict(STRUCTURE_COLOURS, ptv="darkorange")
_DVH_COLOURS = {"gtv": "#d62728", "ptv": "#ff7f0e", "spinal_cord": "#b8860b", "thecal_sac": "#1f9bd7",
                "cord_prv": "#7f7f7f", "cauda_equina": "#8c6d1f", "esophagus": "#2ca02c", "epidural_disease": "#c020c0"}
_STATUS_COLOURS = {"pass": "#2e7d32", "within 5%": "#ef8f00", "fail": "#c62828", "n/a": "#777777"}


_NAMED = {}
_BANDS = []
_LAYERS = {}  # (id(scene), plane, index, crop, repeat) -> (scene, grey, outline colours, outline mask)
_LAYERS_KEPT = 48


def _rgb(name) -> np.ndarray:
    if name not in _NAMED:
        from matplotlib.colors import to_rgb

        _NAMED[name] = np.array(to_rgb(name), dtype=np.float32)
    return _NAMED[name]


def _bands() -> list:
    """(percent, RGB) of the isodose bands, lowest first (matplotlib's colour map read once)."""
    if not _BANDS:
        _BANDS.extend((p, np.array(isodose_colour(p), np.float32)) for p in sorted(STANDARD_ISODOSE_PERCENT))
    return _BANDS


def data_url(png: bytes, kind: str = "image/png") -> str:
    """A ``data:`` URL of the bytes (for an <img> source)."""
    return f"data:{kind};base64," + base64.b64encode(png).decode("ascii")


def _plane(volume: np.ndarray, plane: str, index) -> np.ndarray:
    k, j, i = index
    if plane == "axial":
        return volume[k]  # (y, x): anterior up, the patient's left on the right (radiological)
    if plane == "sagittal":
        return volume[::-1, :, i]  # (z, y): superior up, anterior on the left
    raise ValueError(f"plane must be 'axial' or 'sagittal', got {plane!r}")


def _outline(mask: np.ndarray) -> np.ndarray:
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return mask & ~inner


def slice_png(scene, dose_gy: np.ndarray, *, prescription_gy: float, point_mm, plane: str = "axial",
              half_width_mm: float = 45.0, pixel_mm: float = 0.625) -> bytes:
    """A dose slice as PNG bytes: density in grey, isodose bands, structure outlines.

    Parameters
    ----------
    scene : Scene
        The planned scene (with its targets).
    dose_gy : numpy.ndarray
        Dose (Gy) on the scene's grid.
    prescription_gy : float
        Prescription (Gy): the isodose bands are percent of it.
    point_mm : sequence of float
        (z, y, x) mm the slice passes through, and the centre of the crop.
    plane : str, default "axial"
        'axial' or 'sagittal'.
    half_width_mm : float, default 45.0
        Half the side of the square crop (mm); a small value gives the gap close-up.
    pixel_mm : float, default 0.625
        Size of one picture pixel (mm): voxels are enlarged by whole numbers to about it.

    Returns
    -------
    bytes
        The PNG.
    """
    from PIL import Image

    grid = scene.grid
    index = tuple(int(v) for v in np.clip(np.round(grid.mm_to_index(np.asarray(point_mm, float))), 0,
                                          np.array(grid.shape) - 1))
    k, j, i = index
    axes = (1, 2) if plane == "axial" else (0, 1)
    spacing = [grid.spacing_mm[a] for a in axes]
    centre = [index[a] for a in axes]
    if plane == "sagittal":
        centre[0] = grid.shape[0] - 1 - centre[0]
    crop = tuple(slice(max(0, c - int(round(half_width_mm / s))), c + int(round(half_width_mm / s)) + 1)
                 for c, s in zip(centre, spacing))
    repeat = [max(1, int(round(s / pixel_mm))) for s in spacing]

    def cut(volume):
        part = _plane(volume, plane, index)[crop]
        return np.repeat(np.repeat(part, repeat[0], axis=0), repeat[1], axis=1)

    # The anatomy and outlines of a plane do not change while a slider moves: made once per
    # scene and cut, only the dose bands are drawn on each update.
    key = (id(scene), plane, index, tuple((c.start, c.stop) for c in crop), tuple(repeat))
    layers = _LAYERS.get(key)
    if layers is None or layers[0] is not scene:
        density = cut(scene.density_g_cc).astype(np.float32)
        grey = np.clip(density / 1.9, 0.0, 1.0) * 0.85  # 1.9 g/cc (cortical bone) shows near white
        outline = np.zeros(grey.shape + (3,), np.float32)
        drawn = np.zeros(grey.shape, bool)
        for name in OUTLINED:
            if scene.has(name):
                edge = _outline(cut(scene.structure(name).full()) >= 0.5)
                outline[edge] = _rgb(_OUTLINE_COLOURS.get(name, "white"))
                drawn |= edge
        layers = (scene, np.repeat(grey[..., None], 3, axis=2), outline, drawn)
        if len(_LAYERS) >= _LAYERS_KEPT:
            _LAYERS.pop(next(iter(_LAYERS)))
        _LAYERS[key] = layers
    _, grey, outline, drawn = layers
    dose = cut(np.asarray(dose_gy)).astype(np.float32) * np.float32(100.0 / max(float(prescription_gy), 1e-9))
    # One lookup for every band: the index of the highest isodose level each pixel reaches.
    levels = np.array([percent for percent, _ in _bands()], np.float32)
    palette = np.concatenate([np.zeros((1, 3), np.float32), 0.55 * np.array([c for _, c in _bands()])])
    reached = np.searchsorted(levels, dose, side="right")
    image = np.where((reached > 0)[..., None], 0.45 * grey + palette[reached], grey)
    image[drawn] = outline[drawn]
    picture = Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8), "RGB")
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def _path(xs, ys) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))


def _cumulative(structure_dose, bins_gy) -> np.ndarray:
    """Fraction of the volume at or above each bin edge (as metrics.dvh, by one sort)."""
    order = np.argsort(structure_dose.dose_gy)
    dose, volume = structure_dose.dose_gy[order], structure_dose.volume_cc[order]
    above = np.concatenate([np.cumsum(volume[::-1])[::-1], [0.0]])
    total = above[0] if above.size > 1 else 0.0
    return above[np.searchsorted(dose, bins_gy, side="left")] / total if total > 0 else np.zeros(len(bins_gy))


def dvh_svg(doses: dict, rows, *, prescription_gy: float, width: int = 620, height: int = 330) -> str:
    """The cumulative DVH as SVG: one curve per structure, the constraint limits as markers
    coloured by status, the prescription as a dashed line.

    Parameters
    ----------
    doses : dict of str to StructureDose
        Each structure's voxel doses (:attr:`~planner.app.live.Snapshot.doses`).
    rows : sequence of dict
        Constraint rows (structure, metric, limit_gy, status), drawn as markers at their limit.
    prescription_gy : float
        The prescription (Gy).

    Returns
    -------
    str
        An <svg> element.
    """
    shown = [n for n in ("gtv", "ptv", "spinal_cord", "cord_prv", "thecal_sac", "cauda_equina", "esophagus") if n in doses]
    top = max([prescription_gy * 1.3] + [float(np.max(doses[n].dose_gy)) for n in shown if doses[n].dose_gy.size])
    left, right, upper, lower = 52, 150, 16, 40
    plot_w, plot_h = width - left - right, height - upper - lower
    bins = np.linspace(0.0, top, 120)

    def x_of(gy):
        return left + plot_w * np.asarray(gy) / top

    def y_of(percent):
        return upper + plot_h * (1 - np.asarray(percent) / 100.0)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             'font-family="sans-serif" font-size="12" data-view="dvh">',
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
             f'<rect x="{left}" y="{upper}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#444"/>']
    step = 5 if top <= 40 else 10
    for gy in np.arange(0, top + 1e-9, step):
        x = x_of(gy)
        parts.append(f'<line x1="{x:.1f}" y1="{upper}" x2="{x:.1f}" y2="{upper + plot_h}" stroke="#eee"/>'
                     f'<text x="{x:.1f}" y="{upper + plot_h + 15}" text-anchor="middle">{gy:g}</text>')
    for percent in range(0, 101, 25):
        y = y_of(percent)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eee"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{percent}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle">dose (Gy)</text>'
                 f'<text x="14" y="{upper + plot_h / 2}" text-anchor="middle" transform="rotate(-90 14 {upper + plot_h / 2})">'
                 'volume (%)</text>')
    rx = x_of(prescription_gy)
    parts.append(f'<line x1="{rx:.1f}" y1="{upper}" x2="{rx:.1f}" y2="{upper + plot_h}" stroke="#333" stroke-dasharray="5,4"/>'
                 f'<text x="{rx + 3:.1f}" y="{upper + 12}">Rx {prescription_gy:g} Gy</text>')
    for n, name in enumerate(shown):
        colour = _DVH_COLOURS.get(name, "#555")
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                     f'points="{_path(x_of(bins), y_of(100 * _cumulative(doses[name], bins)))}"/>')
        y = upper + 14 + 18 * n
        parts.append(f'<line x1="{left + plot_w + 10}" y1="{y - 4}" x2="{left + plot_w + 30}" y2="{y - 4}" stroke="{colour}" '
                     f'stroke-width="3"/><text x="{left + plot_w + 35}" y="{y}">{name.replace("_", " ")}</text>')
    for row in rows:
        if row["structure"] not in doses or not np.isfinite(row["limit_gy"]) or row["limit_gy"] > top:
            continue
        x, colour = x_of(row["limit_gy"]), _STATUS_COLOURS.get(row["status"], "#777")
        y = upper + plot_h
        parts.append(f'<path d="M {x:.1f} {y - 12:.1f} L {x - 6:.1f} {y - 24:.1f} L {x + 6:.1f} {y - 24:.1f} Z" fill="{colour}">'
                     f'<title>{row["structure"]} {row["metric"]} limit {row["limit_gy"]:.1f} Gy: {row["status"]}</title></path>')
    parts.append(f'<text x="{left + plot_w + 10}" y="{upper + plot_h - 4}" font-size="11">&#9660; limits</text></svg>')
    return "".join(parts)
