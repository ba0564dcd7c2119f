"""Targets: GTV -> CTV (the involved vertebral sectors, whole) -> PTV (margin, minus the
cord's planning-risk volume), as the consortium contours them (Cox 2012)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from scenes.scene import Scene
from scenes.shapes import mask_from_full

from .constraints import organ_structures
from .protocols import read_table

__all__ = ["add_targets", "CORD_PRV_MM", "PTV_MARGIN_MM", "SECTORS"]


def _target_rules() -> dict:
    return read_table("targets")


#: Cord planning-risk-volume and PTV margins (planner/radiotherapy/protocols/targets.toml, with sources).
CORD_PRV_MM = float(_target_rules()["ptv"]["cord_prv_mm"]["value"])
PTV_MARGIN_MM = float(_target_rules()["ptv"]["margin_mm"]["value"])
#: Lesion site -> vertebral sector structure (ISRC sectors as the phantom has them).
SECTORS = {"body": "vertebral_body_{level}", "pedicle_left": "pedicle_left_{level}",
           "pedicle_right": "pedicle_right_{level}", "posterior": "lamina_{level}"}



def _dilate(occupancy: np.ndarray, margin_mm: float, spacing_mm) -> np.ndarray:
    if margin_mm <= 0:
        return occupancy > 0.5
    distance = ndimage.distance_transform_edt(occupancy <= 0.5, sampling=spacing_mm)
    return distance <= margin_mm


def add_targets(scene: Scene, *, ptv_margin_mm: float = PTV_MARGIN_MM, prv_margin_mm: float = CORD_PRV_MM,
                prv_of=("spinal_cord", "cauda_equina")) -> Scene:
    """GTV -> CTV (GTV plus every involved vertebral sector, whole) -> PTV (CTV + margin minus PRV).

    The CTV follows the consortium's sector method (Cox 2012, planner/radiotherapy/protocols/targets.toml):
    a sector the tumour touches enters the CTV whole. The PTV is cut back from the
    planning-risk volume of the
    structures ``prv_of`` (those whose limits are hard: the cord or cauda, or the thecal sac
    when the protocol limits it), as clinics do, so coverage yields near the cord.

    Parameters
    ----------
    scene : Scene
        A scene with a ``gtv`` structure (its lesion's sites name the involved sectors).
    ptv_margin_mm : float, default PTV_MARGIN_MM
        CTV-to-PTV margin (mm; default targets.toml [ptv] margin_mm); <= 0 means none.
    prv_margin_mm : float, default CORD_PRV_MM
        Margin (mm) around the ``prv_of`` structures (default targets.toml [ptv]
        cord_prv_mm); <= 0 means the structures themselves.
    prv_of : iterable of str, default ("spinal_cord", "cauda_equina")
        Structures whose planning-risk volume is cut out of the PTV; names the scene lacks
        are skipped.

    Returns
    -------
    Scene
        A new scene with the structures ``ctv``, ``cord_prv`` and ``ptv`` added (the PTV also
        kept inside ``body_outline`` when the scene has one), and the organs the limit rows
        name that the phantom builds from its own (skin, kidneys, airway, great vessels:
        :func:`~planner.radiotherapy.constraints.organ_structures`).
    """
    grid = scene.grid
    gtv = scene.structure("gtv").full()
    ctv = gtv.copy()
    for site in (scene.lesion.sites if scene.lesion is not None else ()):
        sector = SECTORS[site].format(level=scene.level)
        if sector in scene.structures:
            ctv = np.maximum(ctv, scene.structure(sector).full())
    neural = np.zeros(grid.shape, np.float32)
    for name in prv_of:
        if name in scene.structures:
            neural = np.maximum(neural, scene.structure(name).full())
    prv = _dilate(neural, prv_margin_mm, grid.spacing_mm)
    ptv = _dilate(ctv, ptv_margin_mm, grid.spacing_mm) & ~prv
    if "body_outline" in scene.structures:
        ptv &= scene.structure("body_outline").full() > 0.5
    structures = dict(scene.structures)
    for name, occupancy in organ_structures(scene).items():
        structures[name] = mask_from_full(grid, occupancy)
    structures["ctv"] = mask_from_full(grid, ctv)
    structures["cord_prv"] = mask_from_full(grid, prv.astype(np.float32))
    structures["ptv"] = mask_from_full(grid, ptv.astype(np.float32))
    return scene.evolve(structures=structures)
