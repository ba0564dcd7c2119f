"""Structure masks as closed planar contours, for the RT Structure Set.

Each axial slice of a structure's fractional occupancy is contoured at occupancy 0.5 by
marching squares (contourpy, which matplotlib already brings), with the slice padded by a
row of empty voxels so that every contour closes. Why not rt-utils: it contours a binary
mask with OpenCV along voxel-centre pixels, which loses the partial-volume occupancy that
spinesim's masks carry and shrinks a structure by up to half a voxel; it also brings
OpenCV (~290 MB) and an obsolete ``dataclasses`` backport. The 0.5 iso-line of the
occupancy, interpolated linearly between voxel centres, passes through the same voxel
centres as the mask's 0.5 threshold, so a reader that fills each contour (even-odd, holes
as inner contours) gets the same voxels back.
"""

from __future__ import annotations

import numpy as np

from scenes.grid import Grid

__all__ = ["slice_contours", "mask_contours"]

#: The occupancy at which a structure's edge is drawn: a voxel at least half inside is in
#: (:meth:`scenes.shapes.Mask.binary`).
EDGE_OCCUPANCY = 0.5
#: Before contouring, occupancies are moved at least this far from the edge value, to the
#: side the mask's threshold puts them, so that a voxel exactly half inside (a structure
#: ending at a voxel centre) is drawn inside, clear of the line, not on it. A numerical
#: setting: it moves no other voxel's edge by more than a twentieth of a voxel.
EDGE_MARGIN = 0.05


def slice_contours(occupancy: np.ndarray, x_mm: np.ndarray, y_mm: np.ndarray) -> list[np.ndarray]:
    """Closed contours of one axial slice of occupancy at :data:`EDGE_OCCUPANCY`.

    Parameters
    ----------
    occupancy : numpy.ndarray
        (y, x) fractional occupancy 0..1.
    x_mm, y_mm : numpy.ndarray
        Voxel-centre coordinates (mm) of the columns and rows; equally spaced, increasing.

    Returns
    -------
    list of numpy.ndarray
        One (n, 2) array of (x, y) mm per closed contour, the closing point not repeated;
        outer boundaries and holes alike (a reader combines them even-odd).

    Examples
    --------
    >>> square = np.zeros((4, 4)); square[1:3, 1:3] = 1.0
    >>> [c.shape for c in slice_contours(square, np.arange(4.0), np.arange(4.0))]
    [(8, 2)]
    """
    import contourpy

    occupancy = np.asarray(occupancy, float)
    if not np.any(occupancy >= EDGE_OCCUPANCY):
        return []
    inside = occupancy >= EDGE_OCCUPANCY
    occupancy = np.where(inside, np.maximum(occupancy, EDGE_OCCUPANCY + EDGE_MARGIN),
                         np.minimum(occupancy, EDGE_OCCUPANCY - EDGE_MARGIN))
    padded = np.pad(occupancy, 1)
    dx, dy = x_mm[1] - x_mm[0] if len(x_mm) > 1 else 1.0, y_mm[1] - y_mm[0] if len(y_mm) > 1 else 1.0
    xs = np.concatenate([[x_mm[0] - dx], x_mm, [x_mm[-1] + dx]])
    ys = np.concatenate([[y_mm[0] - dy], y_mm, [y_mm[-1] + dy]])
    generator = contourpy.contour_generator(xs, ys, padded, line_type=contourpy.LineType.Separate)
    contours = []
    for line in generator.lines(EDGE_OCCUPANCY):
        line = np.asarray(line, float)
        if len(line) > 1 and np.allclose(line[0], line[-1]):
            line = line[:-1]
        # Drop repeated consecutive points (marching squares gives them at saddle corners).
        keep = np.ones(len(line), bool)
        keep[1:] = np.any(np.abs(np.diff(line, axis=0)) > 1e-9, axis=1)
        line = line[keep]
        if len(line) >= 3:
            contours.append(line)
    return contours


def mask_contours(occupancy: np.ndarray, grid: Grid) -> list[tuple[int, np.ndarray]]:
    """Every closed contour of a structure, slice by slice, in patient LPS mm.

    Parameters
    ----------
    occupancy : numpy.ndarray
        (z, y, x) fractional occupancy on ``grid``.
    grid : Grid
        The structure's grid.

    Returns
    -------
    list of (int, numpy.ndarray)
        (slice index k, (n, 3) array of DICOM (x, y, z) mm) per contour, in slice order.

    Examples
    --------
    >>> grid = Grid((2, 4, 4), (2.0, 1.0, 1.0))
    >>> cube = np.zeros(grid.shape); cube[1, 1:3, 1:3] = 1.0
    >>> [(k, float(points[0, 2])) for k, points in mask_contours(cube, grid)]
    [(1, 2.0)]
    """
    z_mm, y_mm, x_mm = grid.axes_mm()
    occupancy = np.asarray(occupancy)
    found = []
    for k in np.flatnonzero(np.any(occupancy >= EDGE_OCCUPANCY, axis=(1, 2))):
        for line in slice_contours(occupancy[k], x_mm, y_mm):
            found.append((int(k), np.column_stack([line, np.full(len(line), z_mm[k])])))
    return found
