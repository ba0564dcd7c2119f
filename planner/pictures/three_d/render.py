"""Off-screen 3-D renders: styles, camera presets, the plotter, PNGs.

Camera presets (patient head-first supine):

* ``posterior``: seen from behind (+y), head up; the patient's left is on the viewer's left;
* ``lateral``: seen from the patient's left (+x), head up; anterior on the viewer's left;
* ``axial``: seen from the feet (radiological), anterior up; the patient's left on the right.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scenes.scene import Scene

from planner.common.files import write_atomically
from planner.common.safety import DISCLAIMER
from .headless import pyvista_for
from .meshes import beam_meshes, scene_meshes

__all__ = ["render_3d", "render_views", "save_png", "CAMERAS", "STYLES"]

CAMERAS = ("posterior", "lateral", "axial")
#: (direction of view from the camera to the focal point, view-up), both (x, y, z).
_CAMERA_VECTORS = {"posterior": ((0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),
                   "lateral": ((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
                   "axial": ((0.0, 0.0, 1.0), (0.0, -1.0, 0.0))}
_SCREEN_SIDES = {"posterior": "viewed from behind: patient's left <-  -> patient's right",
                 "lateral": "viewed from the patient's left: anterior <-  -> posterior",
                 "axial": "viewed from the feet: patient's right <-  -> patient's left, anterior up"}

_BONE = (0.96, 0.93, 0.85)
_BEAM = (0.85, 0.88, 0.95)
#: Colour (RGB 0..1), opacity and specular highlight of each kind of structure.
STYLES = {
    "index_vertebra": dict(color=_BONE, opacity=0.40, specular=0.3),
    "neighbour_vertebra": dict(color=_BONE, opacity=0.20, specular=0.2),
    "thecal_sac": dict(color=(0.35, 0.5, 1.0), opacity=0.30, specular=0.2),
    "spinal_cord": dict(color=(1.0, 0.88, 0.15), opacity=1.0, specular=0.4),
    "cauda_equina": dict(color=(1.0, 0.75, 0.1), opacity=1.0, specular=0.4),
    "lesion_bone": dict(color=(0.72, 0.05, 0.12), opacity=0.9, specular=0.2),
    "gtv": dict(color=(0.72, 0.05, 0.12), opacity=0.9, specular=0.2),
    "epidural_disease": dict(color=(1.0, 0.15, 0.85), opacity=1.0, specular=0.3),
    "screws": dict(color=(0.62, 0.66, 0.74), opacity=1.0, specular=0.8),
    "rods": dict(color=(0.62, 0.66, 0.74), opacity=1.0, specular=0.8),
    "cage": dict(color=(0.45, 0.47, 0.52), opacity=0.9, specular=0.6),
    "cement": dict(color=(0.7, 0.95, 1.0), opacity=0.8, specular=0.4),
    "esophagus": dict(color=(0.45, 0.85, 0.3), opacity=0.25, specular=0.1),
    "aorta": dict(color=(0.8, 0.35, 0.55), opacity=0.2, specular=0.1),
    "ptv": dict(color=(1.0, 0.55, 0.0), opacity=0.2, specular=0.0),
}
_BACKGROUND = (0.07, 0.08, 0.11)

def _isodose_colour(fraction: float):
    from planner.pictures.figures import isodose_colour

    return isodose_colour(100.0 * fraction)


def _style(name: str, scene: Scene):
    if name.startswith("vertebra_"):
        return dict(STYLES["index_vertebra" if name == f"vertebra_{scene.level}" else "neighbour_vertebra"])
    return dict(STYLES.get(name, dict(color=(0.7, 0.7, 0.7), opacity=0.5, specular=0.1)))


def _label(name: str) -> str:
    return name.replace("_", " ").replace("esophagus", "oesophagus")


def _add_scene(plotter, scene, meshes, *, reference_gy):
    """Add meshes with their styles; returns {name: actor} and the legend rows."""
    actors, legend = {}, []
    for name, mesh in meshes.items():
        if name.startswith("isodose_"):
            level = float(name.split("_")[1])
            fraction = level / reference_gy if reference_gy else 1.0
            colour = _isodose_colour(fraction)
            opacity = 0.55 if fraction >= 0.95 else 0.22
            actors[name] = plotter.add_mesh(mesh, color=colour, opacity=opacity, smooth_shading=True, specular=0.2,
                                            ambient=0.25)
            legend.append((f"{level:g} Gy" + (f" ({100 * fraction:.0f}%)" if reference_gy else ""), colour))
        elif name.startswith("beam_"):
            actors[name] = plotter.add_mesh(mesh, color=_BEAM, smooth_shading=True)
        elif name.startswith("fan_"):
            actors[name] = plotter.add_mesh(mesh, color=_BEAM, opacity=0.07, lighting=False)
        else:
            style = _style(name, scene)
            actors[name] = plotter.add_mesh(mesh, smooth_shading=True, specular_power=20, ambient=0.2, **style)
            if not name.startswith("vertebra_") or name == f"vertebra_{scene.level}":
                label = "bone (vertebrae)" if name.startswith("vertebra_") else _label(name)
                legend.append((label, style["color"]))
    if any(name.startswith("beam_") for name in meshes):
        legend.append(("beams", _BEAM))
    return actors, legend


def _anatomy_bounds(meshes) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) (x, y, z) mm of the vertebrae and the lesion (what the camera frames)."""
    focus = [m for n, m in meshes.items() if n.startswith(("vertebra_", "lesion", "gtv", "epidural"))]
    focus = focus or [m for n, m in meshes.items() if not n.startswith(("beam_", "fan_"))] or list(meshes.values())
    bounds = np.array([m.bounds for m in focus], float).reshape(-1, 3, 2)
    return bounds[:, :, 0].min(axis=0), bounds[:, :, 1].max(axis=0)


def _lesion_heights(meshes):
    """(lowest, highest) z mm of the lesion, or of the index vertebra's middle third."""
    for name in ("gtv", "lesion_bone", "epidural_disease"):
        if name in meshes:
            return meshes[name].bounds[4], meshes[name].bounds[5]
    low, high = _anatomy_bounds(meshes)
    middle, third = (low[2] + high[2]) / 2, (high[2] - low[2]) / 6
    return middle - third, middle + third


def _axial_slab(meshes, margin_mm: float = 2.0) -> dict:
    """Meshes clipped to the lesion's height: the axial preset looks at a thick slab from the feet."""
    low, high = _lesion_heights(meshes)
    out = {}
    for name, mesh in meshes.items():
        if name.startswith(("beam_", "fan_")):
            out[name] = mesh
            continue
        clipped = mesh
        # clip_closed_surface keeps the side its normal points to (and caps the cut); plain
        # clip keeps the other side.
        for keep, height in (("-z", high + margin_mm), ("z", low - margin_mm)):
            if not clipped.n_points:
                break
            try:  # capped, so cut structures read as solid sections
                clipped = clipped.clip_closed_surface(normal=keep, origin=(0.0, 0.0, height))
            except (ValueError, RuntimeError):
                clipped = clipped.clip(normal=keep.lstrip("-") if keep.startswith("-") else f"-{keep}",
                                       origin=(0.0, 0.0, height))
        if clipped.n_points:
            out[name] = clipped
    return out


def _place_camera(plotter, meshes, camera: str, zoom: float):
    """Parallel projection along the preset's direction, framing the vertebrae and lesion."""
    if camera not in CAMERAS:
        raise ValueError(f"camera must be one of {', '.join(CAMERAS)}, got {camera!r}")
    low, high = _anatomy_bounds(meshes)
    centre = (low + high) / 2
    lesion_low, lesion_high = _lesion_heights(meshes)
    if camera != "axial":
        centre[2] = (lesion_low + lesion_high) / 2
    direction, up = (np.asarray(v, float) for v in _CAMERA_VECTORS[camera])
    right = np.cross(direction, up)
    half = np.maximum(np.abs(high - centre), np.abs(centre - low))
    width, height = plotter.window_size
    scale = (1.45 if camera == "axial" else 1.15) * max(np.abs(up) @ half, np.abs(right) @ half * height / width)
    plotter.enable_parallel_projection()
    plotter.camera.focal_point = tuple(centre)
    plotter.camera.position = tuple(centre - direction * 1000.0)
    plotter.camera.up = tuple(up)
    plotter.camera.parallel_scale = scale / zoom
    plotter.reset_camera_clipping_range()


def _build_plotter(pv, scene, meshes, *, camera, window_size, reference_gy, title, zoom, off_screen, legend=True):
    plotter = pv.Plotter(off_screen=off_screen, window_size=tuple(int(v) for v in window_size))
    plotter.set_background(_BACKGROUND)
    # No depth peeling: with Mesa (llvmpipe) it drops translucent geometry altogether; VTK's
    # order-independent transparency (the default without peeling) blends it instead.
    actors, rows = _add_scene(plotter, scene, meshes, reference_gy=reference_gy)
    _place_camera(plotter, meshes, camera, zoom)
    font = max(7, int(window_size[1] / 55))
    if title:
        plotter.add_text(title, position="upper_left", font_size=font + 1, color="white")
    plotter.add_text(f"{_SCREEN_SIDES[camera]}\n{DISCLAIMER}", position="lower_left", font_size=max(6, font - 2),
                     color=(0.8, 0.8, 0.8))
    if legend and rows:
        plotter.add_legend([[label, colour] for label, colour in rows], bcolor=_BACKGROUND, size=(0.2, 0.032 * max(len(rows), 3)),
                           loc="upper right", face="rectangle", background_opacity=0.6)
    return plotter, actors


def _beam_length_mm(meshes) -> float:
    """Arrow length: from outside the anatomy (its largest axial half-extent) to near it."""
    low, high = _anatomy_bounds(meshes)
    return float(1.1 * np.max(high[:2] - low[:2]))


def _reference_gy(dose_gy, prescription_gy):
    if prescription_gy is not None:
        return float(prescription_gy)
    if dose_gy is None:
        return None
    return 0.9 * float(np.max(dose_gy))


def render_3d(scene: Scene, *, dose_gy: np.ndarray | None = None, isodose_gy=None, prescription_gy: float | None = None,
              beams=None, camera: str = "posterior", window_size=(900, 700), structures=None, title: str | None = None,
              zoom: float = 1.0, legend: bool = True) -> np.ndarray:
    """Render the scene (and dose, beams) off-screen; returns the RGB image (height, width, 3) uint8.

    Parameters
    ----------
    scene : Scene
        The scene drawn.
    dose_gy : ndarray, optional
        Dose on the scene's grid.
    isodose_gy : sequence of float, optional
        Isosurface levels in Gy; default the prescription and half of it (with no
        prescription, 90% of the maximum dose stands in for it).
    prescription_gy : float, optional
        Reference for the isodose colours and percentages.
    beams : BeamSet, list of Beam or gantry angles (deg), optional
        Drawn as arrows and fans towards the isocentre.
    camera : {'posterior', 'lateral', 'axial'}
        Camera preset (see the module docstring); another name raises ValueError.
    window_size : (width, height) in pixels
        Size of the image, default (900, 700).
    structures : sequence of str, optional
        What to draw (default :func:`default_structures`).
    title : str, optional
        Title in the upper left corner.
    zoom : float
        Camera zoom on top of the preset framing (> 1 comes closer).
    legend : bool
        Draw the legend of structures and isodoses (upper right).

    Returns
    -------
    numpy.ndarray
        The RGB image, uint8, shape (height, width, 3).

    Raises
    ------
    RenderingUnavailable
        No OpenGL here; the message gives the probe's reason and the packages to install.
    """
    pv = pyvista_for(off_screen=True)
    reference = _reference_gy(dose_gy, prescription_gy)
    if dose_gy is not None and isodose_gy is None:
        isodose_gy = (reference, 0.5 * reference)
    meshes = scene_meshes(scene, structures=structures, dose_gy=dose_gy, isodose_gy=isodose_gy or ())
    if beams is not None:
        meshes.update(beam_meshes(beams, scene, length_mm=_beam_length_mm(meshes)))
    if camera == "axial":
        meshes = _axial_slab(meshes)
    plotter, _ = _build_plotter(pv, scene, meshes, camera=camera, window_size=window_size, reference_gy=reference,
                                title=title, zoom=zoom, off_screen=True, legend=legend)
    try:
        image = plotter.screenshot(return_img=True)
    finally:
        plotter.close()
    return np.ascontiguousarray(image[..., :3], dtype=np.uint8)


def render_views(scene: Scene, folder, *, stem: str = "view", cameras=CAMERAS, **options) -> list[Path]:
    """Render each camera preset to ``folder/<stem>_<camera>.png``; returns the paths.

    ``options`` go to :func:`render_3d` (dose_gy, prescription_gy, beams, window_size, ...).

    Parameters
    ----------
    scene : Scene
        The scene drawn.
    folder : str or os.PathLike
        Existing folder the PNGs are written to.
    stem : str, default "view"
        File-name stem.
    cameras : sequence of str, default CAMERAS
        Camera presets, each one of :data:`CAMERAS`.
    **options : dict
        Keyword arguments of :func:`render_3d`.

    Returns
    -------
    list of pathlib.Path
        One PNG per camera, in the order of ``cameras``.
    """
    folder = Path(folder)
    paths = []
    for camera in cameras:
        image = render_3d(scene, camera=camera, **options)
        paths.append(save_png(image, folder / f"{stem}_{camera}.png"))
    return paths


def save_png(image: np.ndarray, path) -> Path:
    """Write an RGB(A) uint8 image (height, width, 3 or 4) to a PNG atomically; returns the path.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 array of shape (height, width, 3) or (height, width, 4) (ValueError
        otherwise).
    path : str or os.PathLike
        Output file ending in ``.png`` (ValueError otherwise), in an existing folder.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from PIL import Image

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
        raise ValueError(f"image must be a (height, width, 3|4) uint8 array, got {image.shape} {image.dtype}")
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"output file must end in .png, got {path.name!r}")
    return write_atomically(path, lambda temporary: Image.fromarray(image).save(temporary, format="PNG"))
