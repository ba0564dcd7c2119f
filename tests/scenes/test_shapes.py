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


def _naive_contains(shape, z, y, x):
    """Every part evaluated at every point, the plain set algebra the cropped one must equal."""
    from scenes.shapes import Difference, Empty, Intersection, Union

    if isinstance(shape, Union):
        out = np.zeros(np.broadcast_shapes(np.shape(z), np.shape(y), np.shape(x)), bool)
        for part in shape.parts:
            out = out | _naive_contains(part, z, y, x)
        return out
    if isinstance(shape, Intersection):
        return _naive_contains(shape.a, z, y, x) & _naive_contains(shape.b, z, y, x)
    if isinstance(shape, Difference):
        return _naive_contains(shape.a, z, y, x) & ~_naive_contains(shape.b, z, y, x)
    if isinstance(shape, Empty):
        return np.zeros(np.broadcast_shapes(np.shape(z), np.shape(y), np.shape(x)), bool)
    return shape.contains(z, y, x)


def _random_primitive(rng):
    from scenes.shapes import Empty

    kind = rng.integers(6)
    centre = rng.uniform(-8, 8, 3)
    radii = rng.uniform(0.5, 6, 3)
    if kind == 0:
        return Ellipsoid(tuple(centre), tuple(radii))
    if kind == 1:
        return EllipticCylinder(tuple(centre[1:]), tuple(radii[1:]), (centre[0] - radii[0], centre[0] + radii[0]),
                                float(rng.choice([2.0, 3.5])))
    if kind == 2:
        return Box(tuple(centre - radii), tuple(centre + radii))
    if kind == 3:
        return Rod(tuple(centre), tuple(centre + rng.uniform(-8, 8, 3)), tuple(radii[:2]))
    if kind == 4:
        z = np.sort(rng.uniform(-10, 10, 3))
        return Tube(tuple(z), tuple(rng.uniform(1, 4, 3)), tuple(rng.uniform(1, 4, 3)), tuple(rng.uniform(-3, 3, 3)),
                    tuple(rng.uniform(-3, 3, 3)), (z[0] - 1, z[-1] + 1))
    return Empty()


def _random_solid(rng, depth=3):
    if depth == 0 or rng.random() < 0.3:
        return _random_primitive(rng)
    a, b = _random_solid(rng, depth - 1), _random_solid(rng, depth - 1)
    op = rng.integers(3)
    return (a | b | _random_solid(rng, depth - 1)) if op == 0 else (a & b) if op == 1 else (a - b)


def test_composite_solids_equal_plain_set_algebra(rng):
    """Composites evaluate each part only inside its box; at grid axes (the rasteriser's
    broadcast), at scattered points and at points exactly on the boxes' faces the result is
    the plain algebra's, bit for bit."""
    grid = Grid((24, 26, 28), (0.9, 0.8, 0.7), (-10.4, -10.0, -9.45))
    z, y, x = grid.centres_mm()
    for _ in range(40):
        solid = _random_solid(rng)
        assert np.array_equal(np.broadcast_to(solid.contains(z, y, x), grid.shape),
                              np.broadcast_to(_naive_contains(solid, z, y, x), grid.shape))
        points = rng.uniform(-12, 12, (3, 500, 8))
        # Most coordinates of half the points on some part's bounding faces, where the crop decides.
        bounds = np.stack([np.asarray(p.bounds_mm, float) for p in _parts(solid)])
        face = bounds[rng.integers(len(bounds), size=(500, 4)), rng.integers(2, size=(500, 4))]
        for axis in range(3):
            points[axis, :, :4] = np.where(rng.random((500, 4)) < 0.8, face[..., axis], points[axis, :, :4])
        assert np.array_equal(solid.contains(*points), _naive_contains(solid, *points))
        assert np.array_equal(solid.contains(*points[:, :, 0]), _naive_contains(solid, *points[:, :, 0]))
        assert solid.contains(*points[:, 0, 0]) == _naive_contains(solid, *points[:, 0, 0])


def _parts(shape):
    from scenes.shapes import Difference, Intersection, Union

    if isinstance(shape, Union):
        return [shape] + [leaf for part in shape.parts for leaf in _parts(part)]
    if isinstance(shape, (Intersection, Difference)):
        return [shape] + _parts(shape.a) + _parts(shape.b)
    return [shape]
