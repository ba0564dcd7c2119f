"""The pencil-beam (beamlet) dose table, derived from the collapsed-cone engine in water.

One square beamlet of ``beamlet_mm`` at the isocentre plane, source-to-surface distance
equal to the source-axis distance, in a water block; its dose per unit fluence is computed
by superposition, the inverse-square factor ((SAD + d) / SAD)^2 is divided out and each
depth's lateral profile is resampled onto isocentre-plane coordinates. The pencil-beam
engine therefore reproduces the superposition engine in water by construction, and carries
heterogeneity only through the radiological depth (its known limitation).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

from .beam_model import BeamModel, load_beam_model
from .engine import superposition_dose

__all__ = ["BeamletTable", "beamlet_table"]


@dataclass(frozen=True, eq=False)
class BeamletTable:
    table: np.ndarray  # (n_depth, n_v, n_u) Gy per unit fluence, inverse square removed
    depth_step_mm: float
    lateral_step_mm: float
    beamlet_mm: float

    @property
    def reach_mm(self) -> float:
        """Half-width of the table: farthest lateral offset it describes."""
        return (self.table.shape[1] - 1) / 2 * self.lateral_step_mm


def _compute(model: BeamModel, beamlet_mm: float, lateral_step_mm: float, depth_step_mm: float, half_width_mm: float,
             depth_mm: float, n_azimuth: int = 24) -> BeamletTable:
    sad = model.source_axis_distance_mm
    n_lat = 2 * int(round(half_width_mm / lateral_step_mm)) + 1
    n_depth = int(round(depth_mm / depth_step_mm))
    spacing = np.array([depth_step_mm, lateral_step_mm, lateral_step_mm])
    centre = (n_lat - 1) / 2
    origin = np.array([depth_step_mm / 2, -centre * lateral_step_mm, -centre * lateral_step_mm])
    water = np.ones((n_depth, n_lat, n_lat))
    pixel = beamlet_mm / 10
    coordinates = np.arange(-beamlet_mm, beamlet_mm + pixel / 2, pixel)
    inside = (np.abs(coordinates) < beamlet_mm / 2 - 1e-9) + 0.5 * np.isclose(np.abs(coordinates), beamlet_mm / 2)
    fluence = np.outer(inside, inside).astype(float)
    # A narrow beamlet shows the collapsed cone's ray effect (scatter only along the cone
    # lines): use many azimuths and average over annuli, giving a smooth, symmetric kernel.
    dose, _, _ = superposition_dose(water, water, origin, spacing, np.array([-sad, 0.0, 0.0]), (1.0, 0.0, 0.0),
                                    (0.0, 0.0, 1.0), (0.0, 1.0, 0.0), fluence, (coordinates[0], coordinates[0]),
                                    (pixel, pixel), model, n_azimuth=n_azimuth)
    radius = np.hypot(*np.meshgrid((np.arange(n_lat) - centre) * lateral_step_mm,
                                   (np.arange(n_lat) - centre) * lateral_step_mm, indexing="ij"))
    ring = np.rint(radius / lateral_step_mm).astype(int)
    counts = np.bincount(ring.ravel())
    for k in range(n_depth):
        mean = np.bincount(ring.ravel(), weights=dose[k].ravel()) / np.maximum(counts, 1)
        dose[k] = mean[ring]
    depth = origin[0] + depth_step_mm * np.arange(n_depth)
    table = np.empty_like(dose)
    lateral = (np.arange(n_lat) - centre) * lateral_step_mm
    for k, d in enumerate(depth):
        magnification = (sad + d) / sad
        # Value at isocentre-plane offset x comes from the slice at x * magnification.
        index = lateral * magnification / lateral_step_mm + centre
        vv, uu = np.meshgrid(index, index, indexing="ij")
        table[k] = ndimage.map_coordinates(dose[k], [vv, uu], order=1, mode="constant", cval=0.0) * magnification**2
    return BeamletTable(table.astype(np.float64), depth_step_mm, lateral_step_mm, beamlet_mm)


@lru_cache(maxsize=4)
def beamlet_table(beamlet_mm: float = 5.0, *, lateral_step_mm: float = 1.25, depth_step_mm: float = 2.5,
                  half_width_mm: float = 50.0, depth_mm: float = 300.0) -> BeamletTable:
    """The beamlet table for the commissioned beam (computed once per process, ~seconds)."""
    if not 1.0 <= beamlet_mm <= 20.0:
        raise ValueError(f"beamlet_mm must be in 1..20 mm, got {beamlet_mm}")
    return _compute(load_beam_model(), float(beamlet_mm), lateral_step_mm, depth_step_mm, half_width_mm, depth_mm)
