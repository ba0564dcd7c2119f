"""3-D pictures of scenes and plans (PyVista/VTK), off-screen or in a window.

PyVista is imported lazily, only inside these functions, so planning, sweeps and tests run
with no display and no OpenGL. Off-screen rendering goes through Mesa EGL
(``VTK_DEFAULT_OPENGL_WINDOW=vtkEGLRenderWindow``) with OSMesa as the fallback. A missing
OpenGL driver makes VTK crash the whole process (SIGSEGV) rather than raise, so
:func:`rendering_available` first renders a tiny sphere in a *subprocess* and reports why
rendering is impossible instead of crashing; :func:`render_3d` raises
:class:`RenderingUnavailable` with that reason.

Meshes are contoured from the structure masks (fractional occupancy at 0.5) and from the
dose (isosurfaces at chosen levels) in patient mm. PyVista points are (x, y, z) = the LPS
patient coordinates of :mod:`scenes.grid` (arrays there are indexed (z, y, x)).

Camera presets (patient head-first supine):

* ``posterior``: seen from behind (+y), head up; the patient's left is on the viewer's left;
* ``lateral``: seen from the patient's left (+x), head up; anterior on the viewer's left;
* ``axial``: seen from the feet (radiological), anterior up; the patient's left on the right.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from scenes.scene import Scene

from ._files import write_atomically
from .figures import DISCLAIMER

__all__ = ["RenderingStatus", "RenderingUnavailable", "rendering_available", "require_rendering", "scene_meshes",
           "beam_meshes", "default_structures", "render_3d", "render_views", "save_png", "view", "scene_for_result",
           "display_available", "interactive_plotter", "CAMERAS", "STYLES"]

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
_OPTIONAL = ("thecal_sac", "spinal_cord", "cauda_equina", "epidural_disease", "screws", "rods", "cage", "cement",
             "esophagus")
_BACKGROUND = (0.07, 0.08, 0.11)
_WINDOWS = ("vtkEGLRenderWindow", "vtkOSOpenGLRenderWindow")
_PACKAGES = "libegl1 libegl-mesa0 libgl1-mesa-dri (or libosmesa6)"
_USER_WINDOW = os.environ.get("VTK_DEFAULT_OPENGL_WINDOW")

_PROBE = """
import os, sys
os.environ["VTK_DEFAULT_OPENGL_WINDOW"] = sys.argv[1]
import pyvista
pyvista.OFF_SCREEN = True
plotter = pyvista.Plotter(off_screen=True, window_size=(48, 48))
plotter.add_mesh(pyvista.Sphere(), color="white")
image = plotter.screenshot(return_img=True)
made = plotter.ren_win.GetClassName()
plotter.close()
print("spinesim-probe", made, float(image.std()))
"""


class RenderingUnavailable(RuntimeError):
    """Off-screen rendering cannot work on this machine; the message says why and what to install."""


@dataclass(frozen=True)
class RenderingStatus:
    """The result of the rendering probe: ``bool(status)`` is whether rendering works.

    Attributes
    ----------
    available : bool
    window : str or None
        The VTK render-window class that worked (``vtkEGLRenderWindow`` or ``vtkOSOpenGLRenderWindow``).
    reason : str
        What worked, or why nothing did and what to install.
    """

    available: bool
    window: str | None
    reason: str

    def __bool__(self) -> bool:
        return self.available


def _try_window(window: str, timeout_s: float) -> tuple[bool, str]:
    environment = dict(os.environ, VTK_DEFAULT_OPENGL_WINDOW=window)
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE, window], capture_output=True, text=True,
                              timeout=timeout_s, env=environment)
    except subprocess.TimeoutExpired:
        return False, f"{window}: the probe render took over {timeout_s:g} s"
    if done.returncode < 0:
        import signal

        name = signal.Signals(-done.returncode).name
        return False, f"{window}: the OpenGL driver crashed the probe ({name})"
    lines = [line for line in done.stdout.splitlines() if line.startswith("spinesim-probe")]
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return False, f"{window}: the probe failed ({last[:200]})"
    _, made, spread = lines[-1].split()
    if made != window:
        return False, f"{window}: VTK made a {made} instead"
    if "not found" in done.stderr or float(spread) == 0.0:
        return False, f"{window}: the probe image was blank (the driver library is missing)"
    return True, f"{window} renders off-screen"


@lru_cache(maxsize=1)
def rendering_available(*, timeout_s: float = 120.0) -> RenderingStatus:
    """Whether off-screen 3-D rendering works here, probed safely in a subprocess.

    Tries the user's ``VTK_DEFAULT_OPENGL_WINDOW`` if set, then Mesa EGL, then OSMesa. A
    missing driver crashes only the probe. The answer is cached for the process.

    Returns
    -------
    RenderingStatus
        ``available``, the ``window`` class to use and a ``reason`` in words.
    """
    tried = []
    for window in dict.fromkeys([w for w in (_USER_WINDOW, *_WINDOWS) if w]):
        works, message = _try_window(window, timeout_s)
        if works:
            return RenderingStatus(True, window, message)
        tried.append(message)
    return RenderingStatus(False, None, "off-screen rendering is unavailable: " + "; ".join(tried)
                           + f". Install the Mesa packages {_PACKAGES} (Debian/Ubuntu names; see .ci/run).")


def require_rendering() -> str:
    """The working render-window class, or raise :class:`RenderingUnavailable` with the probe's reason."""
    status = rendering_available()
    if not status:
        raise RenderingUnavailable(status.reason)
    return status.window


def _pyvista(*, off_screen: bool = True):
    """Import PyVista configured for off-screen use (the probe has run first) or for a window."""
    if off_screen:
        os.environ["VTK_DEFAULT_OPENGL_WINDOW"] = require_rendering()
    elif _USER_WINDOW is None:
        os.environ.pop("VTK_DEFAULT_OPENGL_WINDOW", None)
    else:
        os.environ["VTK_DEFAULT_OPENGL_WINDOW"] = _USER_WINDOW
    import pyvista

    pyvista.OFF_SCREEN = off_screen
    return pyvista


# -- meshes -----------------------------------------------------------------------------
def _volume_surface(pv, block: np.ndarray, first_centre_mm, spacing_mm, level: float, smooth: bool):
    """Iso-surface of a (z, y, x) block whose voxel (0, 0, 0) is centred at ``first_centre_mm``."""
    block = np.pad(np.asarray(block, np.float32), 1)
    spacing = np.asarray(spacing_mm, float)
    origin = np.asarray(first_centre_mm, float) - spacing
    image = pv.ImageData(dimensions=block.shape[::-1], spacing=tuple(spacing[::-1]), origin=tuple(origin[::-1]))
    image.point_data["values"] = block.ravel(order="C")  # (z, y, x) C order = VTK's x-fastest order
    surface = image.contour([level], scalars="values", method="flying_edges")
    if smooth and surface.n_points:
        surface = surface.smooth_taubin(n_iter=30, pass_band=0.08)
    if surface.n_points:
        surface = surface.compute_normals(auto_orient_normals=False, split_vertices=False)
    return surface


def default_structures(scene: Scene) -> list[str]:
    """The structures drawn by default: every vertebra (index level first), the sac, cord or
    cauda, the lesion (bone part and epidural part), hardware and cement, oesophagus, aorta."""
    index = f"vertebra_{scene.level}"
    vertebrae = sorted(name for name in scene.structures if name.startswith("vertebra_") and scene.has(name))
    names = ([index] if index in vertebrae else []) + [name for name in vertebrae if name != index]
    names.append("lesion_bone" if scene.has("lesion_bone") else "gtv")
    names += [name for name in _OPTIONAL if scene.has(name)]
    return [name for name in names if scene.has(name)]


def scene_meshes(scene: Scene, *, structures=None, dose_gy: np.ndarray | None = None, isodose_gy=(),
                 smooth: bool = True) -> dict:
    """Surface meshes of the scene's structures and of the dose, in patient mm.

    Parameters
    ----------
    scene : Scene
    structures : sequence of str, optional
        Structure names (default :func:`default_structures`). Empty structures are left out.
    dose_gy : ndarray, optional
        Dose on the scene's grid (z, y, x); with ``isodose_gy`` its isosurfaces are added
        as ``isodose_<level>_gy`` (e.g. ``isodose_24_gy``).
    isodose_gy : sequence of float
        Dose levels in Gy for the isosurfaces.
    smooth : bool
        Taubin smoothing (keeps volume; removes the voxel staircase).

    Returns
    -------
    dict of str to pyvista.PolyData
        Points are (x, y, z) LPS mm; bounds via ``mesh.bounds``. Needs no OpenGL.
    """
    pv = _pyvista_meshes()
    grid = scene.grid
    out = {}
    for name in (default_structures(scene) if structures is None else structures):
        if not scene.has(name):
            continue
        mask = scene.structure(name)
        surface = _volume_surface(pv, mask.occupancy, grid.index_to_mm(mask.offset), grid.spacing_mm, 0.5, smooth)
        if surface.n_points:
            out[name] = surface
    if dose_gy is not None:
        dose_gy = np.asarray(dose_gy, float)
        if dose_gy.shape != grid.shape:
            raise ValueError(f"dose shape {dose_gy.shape} does not match the scene grid {grid.shape}")
        for level in isodose_gy:
            inside = np.argwhere(dose_gy >= level)
            if inside.size == 0:
                continue
            low = np.maximum(inside.min(axis=0) - 1, 0)
            high = np.minimum(inside.max(axis=0) + 2, grid.shape)
            block = dose_gy[low[0]:high[0], low[1]:high[1], low[2]:high[2]]
            surface = _volume_surface(pv, block, grid.index_to_mm(low), grid.spacing_mm, float(level), smooth)
            if surface.n_points:
                out[f"isodose_{float(level):g}_gy"] = surface
    return out


def _pyvista_meshes():
    # Building meshes needs no OpenGL: import PyVista without touching the window settings.
    import pyvista

    return pyvista


def _as_beam_list(beams, scene: Scene):
    from .beams import Beam, make_beams

    if hasattr(beams, "beams"):
        return list(beams.beams)
    beams = list(beams)
    if all(isinstance(b, Beam) for b in beams):
        return beams
    target = "ptv" if scene.has("ptv") else "gtv"
    points = scene.grid.index_to_mm(np.argwhere(scene.structure(target).full() > 0.5))
    return list(make_beams(points, gantry_deg=[float(b) for b in beams]).beams)


def beam_meshes(beams, scene: Scene, *, length_mm: float = 110.0) -> dict:
    """Beam directions as arrows towards the isocentre and fans (the field's width in the axial plane).

    ``beams`` is a :class:`planner.beams.BeamSet`, a list of Beams, or gantry angles in
    degrees (beams are then made on the PTV, or the GTV, with :func:`planner.beams.make_beams`).
    Returns ``beam_<gantry>`` arrows and ``fan_<gantry>`` triangles (x, y, z mm).
    """
    pv = _pyvista_meshes()
    out = {}
    for beam in _as_beam_list(beams, scene):
        axis, u, _ = beam.frame
        direction = axis[::-1]  # (z, y, x) -> (x, y, z)
        iso = np.asarray(beam.isocentre_mm, float)[::-1]
        start = iso - direction * length_mm
        out[f"beam_{beam.gantry_deg:g}"] = pv.Arrow(start=start, direction=direction, scale=0.45 * length_mm,
                                                     tip_length=0.22, tip_radius=0.07, shaft_radius=0.025)
        across = u[::-1]
        low, high = beam.beamlet_uv_mm[:, 0].min() - beam.beamlet_mm / 2, beam.beamlet_uv_mm[:, 0].max() + beam.beamlet_mm / 2
        source = iso - direction * 1.35 * length_mm
        near = 1.35 * length_mm / beam.source_axis_distance_mm  # the fan's width scales with distance from the source
        points = np.array([source + across * low * near, source + across * high * near, iso + across * high, iso + across * low])
        out[f"fan_{beam.gantry_deg:g}"] = pv.PolyData(points, faces=[4, 0, 1, 2, 3])
    return out


# -- rendering --------------------------------------------------------------------------
def _isodose_colour(fraction: float):
    from .figures import isodose_colour

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
    window_size : (width, height) in pixels
    structures : sequence of str, optional
        What to draw (default :func:`default_structures`).
    title : str, optional
    zoom : float
        Camera zoom on top of the preset framing (> 1 comes closer).
    legend : bool

    Raises
    ------
    RenderingUnavailable
        No OpenGL here; the message gives the probe's reason and the packages to install.
    """
    pv = _pyvista(off_screen=True)
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
    """
    folder = Path(folder)
    paths = []
    for camera in cameras:
        image = render_3d(scene, camera=camera, **options)
        paths.append(save_png(image, folder / f"{stem}_{camera}.png"))
    return paths


def save_png(image: np.ndarray, path) -> Path:
    """Write an RGB(A) uint8 image (height, width, 3 or 4) to a PNG atomically; returns the path."""
    from PIL import Image

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
        raise ValueError(f"image must be a (height, width, 3|4) uint8 array, got {image.shape} {image.dtype}")
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"output file must end in .png, got {path.name!r}")
    return write_atomically(path, lambda temporary: Image.fromarray(image).save(temporary, format="PNG"))


# -- interactive ---------------------------------------------------------------------------
def display_available() -> bool:
    """Whether a desktop display seems to exist (X11 or Wayland on Linux; always on macOS/Windows)."""
    if sys.platform.startswith(("darwin", "win")):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def scene_for_result(result, *, grid_mm=(2.5, 2.5, 2.5)) -> Scene:
    """The scene a :class:`planner.plan.PlanResult` was planned on, rebuilt (case, surgery, targets).

    Uses ``result.scene`` when the result carries one. The rebuilt grid must match the
    dose's shape, else a ValueError says to pass the planning grid."""
    scene = getattr(result, "scene", None)
    if scene is not None:
        return scene
    from scenes.cases import build_scene
    from scenes.surgery import separation_surgery

    from .constraints import constraints_for
    from .plan import add_targets, hard_structures

    scene = build_scene(result.case_id, spacing_mm=grid_mm)
    if result.gap_mm:
        scene = separation_surgery(scene, result.gap_mm)
    scene = add_targets(scene, prv_of=hard_structures(constraints_for(result.protocol, result.regimen.fractions)))
    if scene.grid.shape != np.shape(result.dose_gy):
        raise ValueError(f"the rebuilt scene's grid {scene.grid.shape} does not match the dose {np.shape(result.dose_gy)}; "
                         f"pass the planning grid_mm")
    return scene


def _inputs(case_or_result, grid_mm):
    """(scene, dose_gy, prescription_gy, label) from a case id/path, a Scene or a PlanResult."""
    if isinstance(case_or_result, Scene):
        return case_or_result, None, None, case_or_result.level or "scene"
    if hasattr(case_or_result, "dose_gy") and hasattr(case_or_result, "regimen"):
        scene = scene_for_result(case_or_result, grid_mm=grid_mm)
        return scene, np.asarray(case_or_result.dose_gy), case_or_result.regimen.dose_gy, case_or_result.case_id
    from scenes.cases import build_scene, load_case

    case = load_case(case_or_result)
    return build_scene(case, spacing_mm=grid_mm), None, None, case.id


def interactive_plotter(scene: Scene, *, dose_gy=None, prescription_gy=None, beams=None, off_screen: bool = False,
                        window_size=(1100, 800), title: str | None = None):
    """A plotter with one check box per structure and per isodose level (click to hide/show).

    Returns ``(plotter, actors)``; :func:`view` shows it. Off-screen it is built the same way
    (tests check the widgets)."""
    pv = _pyvista(off_screen=off_screen)
    reference = _reference_gy(dose_gy, prescription_gy)
    levels = () if dose_gy is None else (reference, 0.8 * reference, 0.5 * reference)
    meshes = scene_meshes(scene, dose_gy=dose_gy, isodose_gy=levels)
    if beams is not None:
        meshes.update(beam_meshes(beams, scene, length_mm=_beam_length_mm(meshes)))
    plotter, actors = _build_plotter(pv, scene, meshes, camera="lateral", window_size=window_size,
                                     reference_gy=reference, title=title, zoom=1.0, off_screen=off_screen, legend=False)
    groups = {}
    for name, actor in actors.items():
        key = "beams" if name.startswith(("beam_", "fan_")) else ("bone" if name.startswith("vertebra_") else name)
        groups.setdefault(key, []).append(actor)
    size, gap = 22, 6
    for row, (key, members) in enumerate(groups.items()):
        y = 10 + row * (size + gap)
        if key.startswith("isodose_"):
            colour = _isodose_colour(float(key.split("_")[1]) / reference)
        elif key in ("bone", "beams"):
            colour = _BONE if key == "bone" else _BEAM
        else:
            colour = _style(key, scene)["color"]

        def toggle(state, members=members):
            for actor in members:
                actor.SetVisibility(bool(state))

        plotter.add_checkbox_button_widget(toggle, value=True, position=(10, y), size=size, border_size=2,
                                           color_on=colour, color_off=(0.25, 0.25, 0.25), background_color=(0.5, 0.5, 0.5))
        text = key.replace("isodose_", "").replace("_gy", " Gy") if key.startswith("isodose_") else _label(key)
        plotter.add_text(text, position=(16 + size, y + 3), font_size=9, color="white")
    return plotter, actors


def view(case_or_result, *, out_dir=None, grid_mm=(2.5, 2.5, 2.5), beams=None, write_png: bool = False,
         say=print) -> list[Path]:
    """Open an interactive 3-D window (rotate; check boxes toggle structures and isodoses).

    ``case_or_result`` is a case id or .toml path, a Scene or a PlanResult. With no display
    (or with ``write_png``) it says so through ``say`` and writes the posterior, lateral and
    axial PNGs to ``out_dir`` (default the current folder) instead, returning their paths.
    """
    scene, dose_gy, prescription_gy, label = _inputs(case_or_result, grid_mm)
    title = f"spinesim {label}" + (f": {prescription_gy:g} Gy" if prescription_gy else "")
    if display_available() and not write_png:
        plotter, _ = interactive_plotter(scene, dose_gy=dose_gy, prescription_gy=prescription_gy, beams=beams, title=title)
        plotter.show()
        return []
    folder = Path(out_dir or ".")
    if not write_png:
        say(f"no display found (DISPLAY and WAYLAND_DISPLAY are unset): writing PNGs to {folder} instead of opening a window")
    paths = render_views(scene, folder, stem=Path(str(label)).stem, dose_gy=dose_gy, prescription_gy=prescription_gy,
                         beams=beams, title=title)
    for path in paths:
        say(f"wrote {path}")
    return paths
