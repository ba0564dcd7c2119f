"""The interactive 3-D window (check boxes toggle structures and isodoses), and PNGs without a display."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scenes.scene import Scene

from .headless import display_available, pyvista_for
from .meshes import beam_meshes, scene_meshes
from .render import _BEAM, _BONE, _build_plotter, _isodose_colour, _label, _beam_length_mm, _reference_gy, _style, render_views

__all__ = ["interactive_plotter", "view", "scene_for_result"]


def scene_for_result(result, *, grid_mm=(2.5, 2.5, 2.5)) -> Scene:
    """The scene a :class:`planner.radiotherapy.plan.PlanResult` was planned on, rebuilt (case, surgery, targets).

    Uses ``result.scene`` when the result carries one. The rebuilt grid must match the
    dose's shape, else a ValueError says to pass the planning grid.

    Parameters
    ----------
    result : PlanResult
        The plan (its case id, gap, protocol, regimen and dose shape).
    grid_mm : tuple of float, default (2.5, 2.5, 2.5)
        Voxel spacing (z, y, x) in mm the plan was made on (used only when rebuilding).

    Returns
    -------
    Scene
        The planned scene with its targets.
    """
    scene = getattr(result, "scene", None)
    if scene is not None:
        return scene
    from scenes.cases import build_scene
    from scenes.surgery import separation_surgery

    from planner.radiotherapy.constraints import constraints_for
    from planner.radiotherapy.plan import add_targets, hard_structures

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
    (tests check the widgets).

    Parameters
    ----------
    scene : Scene
        The scene drawn (its default structures).
    dose_gy : numpy.ndarray, optional
        Dose (Gy) on the scene's grid; its isosurfaces at 100%, 80% and 50% of the reference
        are drawn.
    prescription_gy : float, optional
        The isodoses' reference (Gy); default 90% of the maximum dose.
    beams : BeamSet, list of Beam or list of float, optional
        Beams drawn as arrows and fans (or gantry angles, deg).
    off_screen : bool, default False
        Build the plotter off-screen (needs working off-screen rendering).
    window_size : tuple of int, default (1100, 800)
        (width, height) in pixels.
    title : str, optional
        Title in the upper left corner.

    Returns
    -------
    plotter : pyvista.Plotter
        The plotter with its check-box widgets (not shown yet).
    actors : dict
        {mesh name: its VTK actor}.
    """
    pv = pyvista_for(off_screen=off_screen)
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

    Parameters
    ----------
    case_or_result : str, Scene or PlanResult
        What to show: a case (id or path), a scene, or a plan (its scene and dose).
    out_dir : str or os.PathLike, optional
        Folder for the PNGs (default the current folder).
    grid_mm : tuple of float, default (2.5, 2.5, 2.5)
        Voxel spacing (z, y, x) in mm of a scene built from a case or rebuilt for a plan.
    beams : BeamSet, list of Beam or list of float, optional
        Beams drawn as arrows and fans (or gantry angles, deg).
    write_png : bool, default False
        Write the PNGs even when a display exists.
    say : callable, default print
        ``say(line)`` receives what is done.

    Returns
    -------
    list of pathlib.Path
        The PNGs written; empty when the window was shown.
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
