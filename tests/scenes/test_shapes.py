import numpy as np
import pytest

from scenes.grid import Grid
from scenes.shapes import Box, Ellipsoid, EllipticCylinder, Rod, Tube, mask_from_full, rasterize


def test_ellipsoid_volume_is_accurate(rng):
    radii = rng.uniform(3.0, 9.0, 3)
    centre = rng.uniform(-2, 2, 3)
    grid = Grid((30, 30, 30), (1.0, 1.25, 1.25), (-14.5, -18.125, -18.125))
    mask = rasterize(Ellipsoid(tuple(centre), tuple(radii)), grid)
    exact = 4 / 3 * np.pi * np.prod(radii) / 1000
    assert mask.volume_cc == pytest.approx(exact, rel=0.01)
    assert mask.occupancy.min() >= 0 and mask.occupancy.max() <= 1


def test_thin_shell_is_rasterised(rng):
    """Sub-voxel tube walls (differences of two close solids) keep their volume: each within
    10% and on average within 3% (8 x 8 x 8 sub-points; regular sub-sampling aliases a little
    with the radius, hence the spread)."""
    grid = Grid((8, 40, 40), (2.5, 1.25, 1.25), (-8.75, -24.375, -24.375))
    errors = []
    for _ in range(8):
        radius, shell = rng.uniform(8, 12), rng.uniform(0.2, 0.5)
        outer = EllipticCylinder((0.0, 0.0), (radius, radius), (-50, 50))
        inner = EllipticCylinder((0.0, 0.0), (radius - shell, radius - shell), (-50, 50))
        measured = rasterize(outer - inner, grid, supersample=8, thin=True).volume_cc
        exact = np.pi * (radius**2 - (radius - shell) ** 2) * 20 / 1000
        errors.append(measured / exact - 1)
    errors = np.abs(errors)
    assert errors.max() < 0.10 and errors.mean() < 0.03


def test_rod_volume(rng):
    grid = Grid((40, 40, 40), (1.0, 1.0, 1.0), (-19.5, -19.5, -19.5))
    start = tuple(rng.uniform(-8, -4, 3))
    end = tuple(rng.uniform(4, 8, 3))
    radius = rng.uniform(1.5, 3.0)
    mask = rasterize(Rod(start, end, (radius, radius)), grid)
    exact = np.pi * radius**2 * np.linalg.norm(np.subtract(end, start)) / 1000
    assert mask.volume_cc == pytest.approx(exact, rel=0.03)


def test_tube_interpolates_cross_section():
    tube = Tube((-10.0, 10.0), (2.0, 4.0), (3.0, 6.0), (0.0, 1.0), (0.0, 0.0), (-10.0, 10.0))
    assert tube.contains(np.array(0.0), np.array(0.5 + 2.9), np.array(0.0))
    assert not tube.contains(np.array(0.0), np.array(0.5 + 3.1), np.array(0.0))
    assert not tube.contains(np.array(11.0), np.array(0.0), np.array(0.0))


def test_csg_and_mask_algebra(rng):
    grid = Grid((20, 20, 20), (1.0, 1.0, 1.0), (-9.5, -9.5, -9.5))
    a = Box((-5, -5, -5), (5, 5, 5))
    b = Box((0, -5, -5), (9, 5, 5))
    union, inter, diff = (rasterize(s, grid) for s in (a | b, a & b, a - b))
    ma, mb = rasterize(a, grid), rasterize(b, grid)
    assert union.volume_cc == pytest.approx(ma.volume_cc + mb.volume_cc - inter.volume_cc, rel=1e-3)
    assert diff.volume_cc == pytest.approx(ma.volume_cc - inter.volume_cc, rel=1e-3)
    assert (ma | mb).volume_cc == pytest.approx(union.volume_cc, rel=1e-3)


def test_mask_is_read_only_and_cropped(rng):
    grid = Grid((10, 10, 10), (1.0, 1.0, 1.0))
    full = np.zeros(grid.shape, np.float32)
    full[2:4, 5:7, 1:2] = rng.uniform(0.1, 1.0, (2, 2, 1))
    mask = mask_from_full(grid, full)
    assert mask.offset == (2, 5, 1) and mask.occupancy.shape == (2, 2, 1)
    assert np.array_equal(mask.full(), full)
    with pytest.raises(ValueError):
        mask.occupancy[0, 0, 0] = 1.0
