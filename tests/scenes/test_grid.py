import numpy as np
import pytest

from scenes.grid import Grid, resample_volume


def random_grid(rng):
    shape = tuple(int(v) for v in rng.integers(2, 12, 3))
    spacing = tuple(float(v) for v in rng.uniform(0.5, 3.0, 3))
    origin = tuple(float(v) for v in rng.uniform(-50, 50, 3))
    return Grid(shape, spacing, origin)


def test_index_mm_round_trip(rng):
    grid = random_grid(rng)
    index = rng.uniform(-2, 10, (50, 3))
    assert np.allclose(grid.mm_to_index(grid.index_to_mm(index)), index)
    position = rng.uniform(-60, 60, (50, 3))
    assert np.allclose(grid.index_to_mm(grid.mm_to_index(position)), position)


def test_voxel_centre_convention():
    grid = Grid((2, 3, 4), (2.0, 1.0, 0.5), (10.0, -1.0, 3.0))
    assert np.allclose(grid.index_to_mm((1, 2, 3)), (12.0, 1.0, 4.5))
    z, y, x = grid.axes_mm()
    assert np.allclose(x, [3.0, 3.5, 4.0, 4.5]) and np.allclose(z, [10.0, 12.0])
    assert np.allclose(grid.bounds_mm, [[9.0, -1.5, 2.75], [13.0, 1.5, 4.75]])
    assert grid.voxel_volume_cc == pytest.approx(0.001)


def test_nearest_index_and_outside():
    grid = Grid((4, 4, 4), (1.0, 1.0, 1.0))
    assert grid.nearest_index((1.2, 2.6, 0.0)) == (1, 3, 0)
    with pytest.raises(ValueError, match="outside the grid"):
        grid.nearest_index((10.0, 0.0, 0.0))


def test_crop_keeps_positions(rng):
    grid = random_grid(rng)
    volume = rng.random(grid.shape)
    low, high = grid.bounds_mm
    lo = low + (high - low) * 0.25
    hi = low + (high - low) * 0.75
    sub, slices = grid.crop(lo, hi)
    assert sub.shape == volume[slices].shape
    k = tuple(s.start for s in slices)
    assert np.allclose(sub.index_to_mm((0, 0, 0)), grid.index_to_mm(k))


def test_resample_identity_and_linear(rng):
    grid = random_grid(rng)
    volume = rng.random(grid.shape)
    same = resample_volume(volume, grid, grid)
    assert np.allclose(same, volume)
    # A linear field is reproduced exactly by trilinear resampling inside the grid.
    z, y, x = grid.centres_mm()
    field = 2 * z + 3 * y - x + np.zeros(grid.shape)
    fine = Grid(grid.shape, grid.spacing_mm, grid.origin_mm).with_spacing(np.asarray(grid.spacing_mm) / 2)
    resampled = resample_volume(field, grid, fine)
    fz, fy, fx = fine.centres_mm()
    expected = 2 * fz + 3 * fy - fx
    inside = np.broadcast_to(
        (fz >= grid.axes_mm()[0][0]) & (fz <= grid.axes_mm()[0][-1]) & (fy >= grid.axes_mm()[1][0])
        & (fy <= grid.axes_mm()[1][-1]) & (fx >= grid.axes_mm()[2][0]) & (fx <= grid.axes_mm()[2][-1]), fine.shape)
    assert np.allclose(resampled[inside], np.broadcast_to(expected, fine.shape)[inside])


def test_nearest_resampling_keeps_labels(rng):
    grid = random_grid(rng)
    labels = rng.integers(0, 5, grid.shape).astype(np.uint8)
    out = resample_volume(labels, grid, grid.with_spacing((1.0, 1.0, 1.0)), order=0)
    assert out.dtype == np.uint8 and set(np.unique(out)) <= set(np.unique(labels)) | {0}


@pytest.mark.parametrize("kwargs, message", [
    (dict(shape=(0, 2, 2), spacing_mm=(1, 1, 1)), "shape"),
    (dict(shape=(2, 2), spacing_mm=(1, 1, 1)), "three entries"),
    (dict(shape=(2, 2, 2), spacing_mm=(1, -1, 1)), "spacing_mm"),
    (dict(shape=(2, 2, 2), spacing_mm=(1, 1, 1), origin_mm=(0, np.nan, 0)), "origin_mm"),
])
def test_bad_grids_are_refused(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        Grid(**kwargs)
