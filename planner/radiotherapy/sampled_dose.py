"""The dose between the points of a sampling lattice (the planners' far-region rows).

Far from the target the planners' influence matrices keep one voxel in ``stride`` along each
axis (:func:`planner.radiotherapy.case_objectives.optimisation_stride`); the voxels between are filled by
trilinear interpolation so that a picture of the matrix's dose has no holes.
"""

from __future__ import annotations

import numpy as np

__all__ = ["interpolate_between_samples"]


def interpolate_between_samples(values: np.ndarray, known: np.ndarray, stride) -> np.ndarray:
    """Fill the unknown voxels between the points of a sampling lattice by trilinear interpolation.

    Parameters
    ----------
    values : numpy.ndarray
        A (z, y, x) grid whose ``known`` voxels hold values (the others are ignored).
    known : numpy.ndarray of bool
        The voxels that hold values, of the same shape.
    stride : tuple of int
        The lattice ``values[::stride[0], ::stride[1], ::stride[2]]`` (each >= 1).

    Returns
    -------
    numpy.ndarray
        A new grid: the known voxels unchanged; an unknown voxel whose eight surrounding lattice
        points are all known gets their trilinear interpolation; the others 0.

    Examples
    --------
    >>> values = np.zeros((1, 1, 5)); values[0, 0, ::2] = [1.0, 3.0, 5.0]
    >>> interpolate_between_samples(values, values > 0, (1, 1, 2))[0, 0]
    array([1., 2., 3., 4., 5.])
    """
    from scipy import ndimage

    given = np.atleast_1d(np.asarray(stride, dtype=float))
    stride = tuple(int(s) for s in given)
    if len(stride) != 3 or min(stride) < 1 or not np.array_equal(given, stride):
        raise ValueError(f"stride must be three integers >= 1, got {stride}")
    lattice = np.zeros(values.shape, bool)
    lattice[::stride[0], ::stride[1], ::stride[2]] = True
    lattice &= known
    numerator, weight = np.where(lattice, values, 0.0), lattice.astype(np.float64)
    for axis, step in enumerate(stride):
        if step > 1:  # the tent of half-width ``step``: linear interpolation between lattice points
            tent = 1.0 - np.abs(np.arange(1 - step, step)) / step
            numerator = ndimage.convolve1d(numerator, tent, axis=axis, mode="constant")
            weight = ndimage.convolve1d(weight, tent, axis=axis, mode="constant")
    out = np.where(known, values, 0.0)
    # All eight corners known: the tents' weights sum to 1 (to rounding).
    between = ~known & (weight > 1.0 - 1e-9)
    out[between] = numerator[between] / weight[between]
    return out
