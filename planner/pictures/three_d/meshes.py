"""Surface meshes of scenes, doses and beams for the 3-D pictures (no OpenGL needed).

Meshes are contoured from the structure masks (fractional occupancy at 0.5) and from the
dose (isosurfaces at chosen levels) in patient mm. PyVista points are (x, y, z) = the LPS
patient coordinates of :mod:`scenes.grid` (arrays there are indexed (z, y, x)).
"""

from __future__ import annotations

import numpy as np

from scenes.scene import Scene

__all__ = ["scene_meshes", "beam_meshes", "default_structures"]

_OPTIONAL = ("thecal_sac", "spinal_cord", "cauda_equina", "epidural_disease", "screws", "rods", "cage", "cement",
             "esophagus")


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
    cauda, the lesion (bone part and epidural part), hardware and cement, oesophagus.

    Parameters
    ----------
    scene : Scene
        The scene; only structures it has (non-empty) are named.

    Returns
    -------
    list of str
        Structure names in drawing order.
    """
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
        The scene whose structures are contoured (occupancy 0.5).
    structures : sequence of str, optional
        Structure names (default :func:`default_structures`). Empty structures are left out.
    dose_gy : ndarray, optional
        Dose on the scene's grid (z, y, x); another shape raises ValueError. With
        ``isodose_gy`` its isosurfaces are added as ``isodose_<level>_gy`` (e.g.
        ``isodose_24_gy``).
    isodose_gy : sequence of float
        Dose levels in Gy for the isosurfaces; a level no voxel reaches is left out.
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
    from planner.radiotherapy.beams import Beam, make_beams

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

    ``beams`` is a :class:`planner.radiotherapy.beams.BeamSet`, a list of Beams, or gantry
    angles in degrees (beams are then made on the PTV, or the GTV, with
    :func:`planner.radiotherapy.beams.make_beams`).

    Parameters
    ----------
    beams : BeamSet, list of Beam or list of float
        The beams, or gantry angles (deg).
    scene : Scene
        The scene (its PTV or GTV places beams given as angles).
    length_mm : float, default 110.0
        Distance (mm) from the arrow's start to the isocentre; the fans start 1.35 times as
        far out.

    Returns
    -------
    dict of str to pyvista.PolyData
        ``beam_<gantry>`` arrows and ``fan_<gantry>`` quadrilaterals, points (x, y, z) mm.
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
