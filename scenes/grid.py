"""Regular voxel grids in patient coordinates.

The coordinate convention of the whole project is written here, once::

          superior (+z, head)
               ^
               |     posterior (+y, back)
               |    /
               |   /
               |  /
               | /
               +-------------> patient's left (+x)

    Patient coordinates: DICOM LPS, millimetres, patient head-first supine.
      +x  towards the patient's Left
      +y  towards the patient's Posterior (the back, where the couch is)
      +z  towards the patient's Superior (the head)

    Arrays are indexed ``volume[k, j, i]`` = (z, y, x).  Voxel ``(k, j, i)`` has its
    centre at ``origin_mm + (k, j, i) * spacing_mm`` (all three tuples in (z, y, x)
    order).  An axial slice ``volume[k]`` seen on screen with ``origin="upper"`` shows
    anterior at the top and the patient's left on the right, as radiology viewers do.

A :class:`Grid` knows nothing of anatomy or dose; every volume in spinesim carries one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["Grid", "resample_volume"]


def _triple(name: str, value, kind=float) -> tuple:
    try:
        values = tuple(kind(v) for v in value)
    except TypeError:
        raise TypeError(f"Grid.{name} must be a sequence of three numbers (z, y, x), got {value!r}") from None
    if len(values) != 3:
        raise ValueError(f"Grid.{name} must have three entries (z, y, x), got {len(values)}")
    return values


@dataclass(frozen=True)
class Grid:
    """A regular voxel grid: shape (nz, ny, nx), spacing and origin in mm, all (z, y, x).

    Parameters
    ----------
    shape : tuple of int
        Number of voxels along (z, y, x); each at least 1.
    spacing_mm : tuple of float
        Voxel size along (z, y, x) in mm; each strictly positive. Anisotropic is fine.
    origin_mm : tuple of float
        Patient (LPS) position of the centre of voxel (0, 0, 0), in (z, y, x) order.

    Examples
    --------
    >>> grid = Grid((3, 4, 5), spacing_mm=(2.0, 1.0, 1.0), origin_mm=(-2.0, -1.5, -2.0))
    >>> grid.index_to_mm((1, 0, 2))
    array([ 0. , -1.5,  0. ])
    >>> grid.mm_to_index((0.0, -1.5, 0.0))
    array([1., 0., 2.])
    >>> grid.voxel_volume_cc
    0.002
    """

    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self):
        shape = _triple("shape", self.shape, int)
        spacing = _triple("spacing_mm", self.spacing_mm)
        origin = _triple("origin_mm", self.origin_mm)
        if min(shape) < 1:
            raise ValueError(f"Grid.shape must be >= 1 along every axis, got {shape}")
        if not all(np.isfinite(spacing)) or min(spacing) <= 0:
            raise ValueError(f"Grid.spacing_mm must be finite and > 0, got {spacing}")
        if not all(np.isfinite(origin)):
            raise ValueError(f"Grid.origin_mm must be finite, got {origin}")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "spacing_mm", spacing)
        object.__setattr__(self, "origin_mm", origin)

    # -- basic properties ---------------------------------------------------------
    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def voxel_volume_cc(self) -> float:
        """Volume of one voxel in cm^3."""
        return float(np.prod(self.spacing_mm)) / 1000.0

    @property
    def extent_mm(self) -> tuple[float, float, float]:
        """Edge-to-edge size of the grid along (z, y, x)."""
        return tuple(n * s for n, s in zip(self.shape, self.spacing_mm))

    @property
    def bounds_mm(self) -> np.ndarray:
        """Array (2, 3): lowest and highest voxel *edges* along (z, y, x)."""
        origin = np.asarray(self.origin_mm)
        spacing = np.asarray(self.spacing_mm)
        low = origin - spacing / 2
        return np.stack([low, low + spacing * np.asarray(self.shape)])

    def axes_mm(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Voxel-centre coordinates along z, y and x (three 1-D arrays)."""
        return tuple(o + s * np.arange(n) for o, s, n in zip(self.origin_mm, self.spacing_mm, self.shape))

    # -- conversions ---------------------------------------------------------------
    def index_to_mm(self, index) -> np.ndarray:
        """Fractional (k, j, i) indices -> patient (z, y, x) mm. Last axis has length 3."""
        index = np.asarray(index, dtype=float)
        return np.asarray(self.origin_mm) + index * np.asarray(self.spacing_mm)

    def mm_to_index(self, position_mm) -> np.ndarray:
        """Patient (z, y, x) mm -> fractional (k, j, i) indices (inverse of index_to_mm)."""
        position_mm = np.asarray(position_mm, dtype=float)
        return (position_mm - np.asarray(self.origin_mm)) / np.asarray(self.spacing_mm)

    def nearest_index(self, position_mm) -> tuple[int, int, int]:
        """Index of the voxel containing a point; raises if the point is outside."""
        index = np.rint(self.mm_to_index(position_mm)).astype(int)
        if np.any(index < 0) or np.any(index >= np.asarray(self.shape)):
            raise ValueError(f"position {tuple(np.round(position_mm, 2))} mm lies outside the grid {self.bounds_mm.tolist()}")
        return tuple(int(v) for v in index)

    def contains_mm(self, position_mm) -> np.ndarray:
        """Whether points (..., 3) lie inside the grid's edges."""
        position_mm = np.asarray(position_mm, dtype=float)
        low, high = self.bounds_mm
        return np.all((position_mm >= low) & (position_mm < high), axis=-1)

    # -- derived grids ---------------------------------------------------------------
    def crop_slices(self, low_mm, high_mm) -> tuple[slice, slice, slice]:
        """Index slices of the smallest sub-grid whose voxels cover the box [low_mm, high_mm]."""
        low_mm = np.asarray(low_mm, dtype=float)
        high_mm = np.asarray(high_mm, dtype=float)
        if np.any(high_mm < low_mm):
            raise ValueError(f"crop box low {low_mm.tolist()} exceeds high {high_mm.tolist()}")
        start = np.floor(self.mm_to_index(low_mm) + 0.5).astype(int)
        stop = np.ceil(self.mm_to_index(high_mm) + 0.5).astype(int)
        start = np.clip(start, 0, np.asarray(self.shape))
        stop = np.clip(stop, 0, np.asarray(self.shape))
        if np.any(stop <= start):
            raise ValueError(f"crop box {low_mm.tolist()}..{high_mm.tolist()} mm does not overlap the grid")
        return tuple(slice(int(a), int(b)) for a, b in zip(start, stop))

    def subgrid(self, slices: tuple[slice, slice, slice]) -> "Grid":
        """The grid of ``volume[slices]`` (unit steps only)."""
        starts, shape = [], []
        for axis, (sl, n) in enumerate(zip(slices, self.shape)):
            start, stop, step = sl.indices(n)
            if step != 1 or stop <= start:
                raise ValueError(f"subgrid needs non-empty unit-step slices, axis {axis} got {sl}")
            starts.append(start)
            shape.append(stop - start)
        return Grid(tuple(shape), self.spacing_mm, tuple(self.index_to_mm(starts)))

    def crop(self, low_mm, high_mm) -> tuple["Grid", tuple[slice, slice, slice]]:
        """Crop to a region of interest. Returns the new grid and the index slices."""
        slices = self.crop_slices(low_mm, high_mm)
        return self.subgrid(slices), slices

    def with_spacing(self, spacing_mm) -> "Grid":
        """A grid over the same box (edges kept, to within a voxel) with a new spacing."""
        spacing = np.asarray(_triple("spacing_mm", spacing_mm))
        if np.any(spacing <= 0):
            raise ValueError(f"Grid.spacing_mm must be > 0, got {tuple(spacing)}")
        low, high = self.bounds_mm
        shape = np.maximum(1, np.round((high - low) / spacing).astype(int))
        centre = (low + high) / 2
        origin = centre - spacing * (shape - 1) / 2
        return Grid(tuple(int(n) for n in shape), tuple(spacing), tuple(origin))

    def centres_mm(self, slices=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable (z, y, x) voxel-centre coordinates, optionally of a sub-block."""
        axes = self.axes_mm()
        if slices is not None:
            axes = tuple(a[s] for a, s in zip(axes, slices))
        z, y, x = axes
        return z[:, None, None], y[None, :, None], x[None, None, :]


def resample_volume(volume: np.ndarray, grid: Grid, new_grid: Grid, *, order: int = 1, fill_value: float = 0.0) -> np.ndarray:
    """Resample a volume from ``grid`` onto ``new_grid`` (trilinear by default).

    ``order=0`` keeps labels intact (nearest neighbour). Points of the new grid that fall
    outside the old one take ``fill_value``.

    Examples
    --------
    >>> grid = Grid((2, 2, 2), (2.0, 2.0, 2.0))
    >>> fine = grid.with_spacing((1.0, 1.0, 1.0))
    >>> resample_volume(np.ones(grid.shape), grid, fine).shape
    (4, 4, 4)
    """
    volume = np.asarray(volume)
    if volume.shape != grid.shape:
        raise ValueError(f"volume shape {volume.shape} does not match grid shape {grid.shape}")
    if order not in (0, 1, 3):
        raise ValueError(f"order must be 0 (nearest), 1 (linear) or 3 (cubic), got {order}")
    z, y, x = np.meshgrid(*new_grid.axes_mm(), indexing="ij")
    index = grid.mm_to_index(np.stack([z, y, x], axis=-1))
    coordinates = np.moveaxis(index, -1, 0)
    # Points within half a voxel of the outermost centres clamp to the edge voxel, as a
    # voxel's value holds over its whole extent.
    upper = np.asarray(grid.shape, dtype=float)[:, None, None, None] - 1
    inside = np.all((coordinates >= -0.5) & (coordinates <= upper + 0.5), axis=0)
    coordinates = np.clip(coordinates, 0, upper)
    out = ndimage.map_coordinates(volume.astype(float) if order else volume, coordinates, order=order, mode="nearest")
    out = np.where(inside, out, fill_value)
    return out.astype(volume.dtype, copy=False)
