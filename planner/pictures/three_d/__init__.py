"""3-D pictures of scenes and plans (PyVista/VTK), off-screen or in a window.

The one place (with the app) that imports PyVista, lazily, split by responsibility:
:mod:`.headless` (probe and configure OpenGL), :mod:`.meshes` (surfaces, no OpenGL),
:mod:`.render` (styles, cameras, off-screen renders, PNGs), :mod:`.interactive` (the window).

PyVista is imported lazily, only inside functions, so planning, sweeps and tests run with
no display and no OpenGL; a missing driver is reported by a subprocess probe, never a crash.
"""

from .headless import RenderingStatus, RenderingUnavailable, display_available, rendering_available, require_rendering
from .interactive import interactive_plotter, scene_for_result, view
from .meshes import beam_meshes, default_structures, scene_meshes
from .render import CAMERAS, STYLES, render_3d, render_views, save_png

__all__ = ["RenderingStatus", "RenderingUnavailable", "rendering_available", "require_rendering", "scene_meshes",
           "beam_meshes", "default_structures", "render_3d", "render_views", "save_png", "view", "scene_for_result",
           "display_available", "interactive_plotter", "CAMERAS", "STYLES"]
