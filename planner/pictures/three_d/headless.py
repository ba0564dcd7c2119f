"""Headless OpenGL for the 3-D pictures: probe rendering safely, then import PyVista configured.

A missing OpenGL driver makes VTK crash the whole process (SIGSEGV) rather than raise, so
:func:`rendering_available` first renders a tiny sphere in a *subprocess* and reports why
rendering is impossible instead of crashing. Off-screen rendering goes through Mesa EGL
(``VTK_DEFAULT_OPENGL_WINDOW=vtkEGLRenderWindow``) with OSMesa as the fallback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["RenderingStatus", "RenderingUnavailable", "rendering_available", "require_rendering", "display_available",
           "pyvista_for"]

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

    Parameters
    ----------
    timeout_s : float, default 120.0
        Seconds each probe render may take before it counts as failed.

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
    """The working render-window class, or raise :class:`RenderingUnavailable` with the probe's reason.

    Returns
    -------
    str
        The VTK render-window class that rendered the probe (e.g. ``'vtkEGLRenderWindow'``).
    """
    status = rendering_available()
    if not status:
        raise RenderingUnavailable(status.reason)
    return status.window


def pyvista_for(*, off_screen: bool = True):
    """Import PyVista configured for off-screen use (the probe has run first) or for a window.

    Parameters
    ----------
    off_screen : bool, default True
        Off-screen rendering: the probe's render window is set in
        ``VTK_DEFAULT_OPENGL_WINDOW`` (:class:`RenderingUnavailable` when none works);
        False restores the user's own setting for a desktop window.

    Returns
    -------
    module
        The ``pyvista`` module, with ``pyvista.OFF_SCREEN`` set to ``off_screen``.
    """
    if off_screen:
        os.environ["VTK_DEFAULT_OPENGL_WINDOW"] = require_rendering()
    elif _USER_WINDOW is None:
        os.environ.pop("VTK_DEFAULT_OPENGL_WINDOW", None)
    else:
        os.environ["VTK_DEFAULT_OPENGL_WINDOW"] = _USER_WINDOW
    import pyvista

    pyvista.OFF_SCREEN = off_screen
    return pyvista


def display_available() -> bool:
    """Whether a desktop display seems to exist (X11 or Wayland on Linux; always on macOS/Windows).

    Returns
    -------
    bool
        True on macOS and Windows, else whether ``DISPLAY`` or ``WAYLAND_DISPLAY`` is set.
    """
    if sys.platform.startswith(("darwin", "win")):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
