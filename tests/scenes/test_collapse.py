"""A collapsed vertebral body is a wedge; the column above comes down onto it and can tilt.

Geometry is measured on the rasterised solids in a thin mid-sagittal slab (0.5 mm voxels): a
column's height is its occupancy sum, a body's tilt the slope of its columns' centroids.
"""

import copy
import math
import tomllib

import numpy as np
import pytest

from scenes.anatomy import build_anatomy, collapse_limits
from scenes.cases import CaseError, build_scene, case_path, parse_case
from scenes.grid import Grid
from scenes.lesions import Lesion
from scenes.materials import label_of
from scenes.phantom import default_grid, render_phantom
from scenes.shapes import rasterize

VOXEL_MM = 0.5
RATIO = collapse_limits()["posterior_to_anterior_loss"]


def slab(anatomy, level_above=True):
    """A one-voxel-wide mid-sagittal grid around the index body and the vertebra above."""
    index = anatomy.index
    names = [v.level for v in anatomy.vertebrae]
    above = anatomy.vertebrae[names.index(anatomy.level) - 1]
    z0 = index.z_range_mm[0] - 5
    z1 = above.z_centre_mm + above.dims.body_height_mm
    y0 = min(v.body_front_y_mm for v in anatomy.vertebrae) - 10
    y1 = index.body_front_y_mm + index.dims.body_depth_mm + 5
    shape = (int((z1 - z0) / VOXEL_MM) + 1, int((y1 - y0) / VOXEL_MM) + 1, 1)
    return Grid(shape, (VOXEL_MM,) * 3, (z0, y0, 0.0)), above


def column_heights(grid, solid):
    """Height (mm) of the solid in each y column of the slab, the columns' y and centroid z.

    Columns that cross the body's front or back wall (no voxel wholly inside) get height 0.
    """
    occupancy = rasterize(solid, grid, supersample=4).full()[:, :, 0]
    z, y, _ = grid.axes_mm()
    full = occupancy.max(axis=0) >= 1 - 1e-6
    heights = np.where(full, occupancy.sum(axis=0) * VOXEL_MM, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        centroid = (occupancy * z[:, None]).sum(axis=0) / occupancy.sum(axis=0)
    return y, heights, centroid


def interior(y, heights, front, depth, margin=0.15):
    """Full columns well inside a body of this depth (away from its rounded front and back)."""
    return (y > front + margin * depth) & (y < front + (1 - margin) * depth) & (heights > 0)


def lower_endplate_tilt_deg(grid, vertebra):
    """Forward tilt (deg) of a vertebra's lower endplate: the slope of its columns' lowest
    edge (sub-voxel: the partial voxels below the first full one), over the middle 70% of the
    endplate's span front to back (where a column's bottom is the endplate, not a wall)."""
    occupancy = rasterize(vertebra.body, grid, supersample=4).full()[:, :, 0]
    z, y, _ = grid.axes_mm()
    d, a = vertebra.dims, math.radians(vertebra.tilt_deg)
    corner = vertebra.body_centre_y_mm + d.body_height_mm / 2 * math.sin(a) - d.body_depth_mm / 2 * math.cos(a)
    span = d.body_depth_mm * math.cos(a)
    ys, lows = [], []
    for j in np.flatnonzero((y > corner + 0.15 * span) & (y < corner + 0.85 * span)):
        full = np.flatnonzero(occupancy[:, j] >= 1 - 1e-6)
        if full.size:
            ys.append(y[j])
            lows.append(z[full[0]] - VOXEL_MM / 2 - occupancy[:full[0], j].sum() * VOXEL_MM)
    return math.degrees(math.atan(np.polyfit(ys, lows, 1)[0]))


CASES = [("C5", 30.0), ("T6", 20.0), ("T12", 50.0), ("L3", 40.0)]


@pytest.mark.parametrize("level, collapse", CASES)
def test_collapse_is_a_wedge(level, collapse):
    """The front loses collapse_pct of the height, the back its share of that: a wedge."""
    anatomy = build_anatomy(level, collapse_pct=collapse)
    grid, _ = slab(anatomy)
    index = anatomy.index
    d = index.dims
    y, heights, _ = column_heights(grid, index.body)
    keep = interior(y, heights, index.body_front_y_mm, d.body_depth_mm, margin=0.0)
    front, back = heights[keep][0], heights[keep][-1]
    assert front < back
    # The outermost full columns sit within a voxel of the walls, where the endplate's slope
    # changes the height by less than a voxel: heights within two voxels.
    assert front == pytest.approx(d.body_height_mm * (1 - collapse / 100), abs=2 * VOXEL_MM)
    assert back == pytest.approx(d.body_height_mm * (1 - RATIO * collapse / 100), abs=2 * VOXEL_MM)
    assert anatomy.height_loss_mm[0] > anatomy.height_loss_mm[1] > 0


@pytest.mark.parametrize("level, collapse", CASES)
@pytest.mark.parametrize("kyphosis", [0.0, 12.0])
def test_endplates_stay_in_contact(level, collapse, kyphosis):
    """From the index body up through the disc to the body above there is bone or disc only:
    no soft tissue or fat in between (a gap would show one voxel or more of it)."""
    anatomy = build_anatomy(level, collapse_pct=collapse, kyphosis_deg=kyphosis)
    grid, above = slab(anatomy)
    scene = render_phantom(anatomy, grid, supersample=4)
    labels = scene.labels[:, :, 0]
    spine = {label_of(name) for name in ("cortical_bone", "cancellous_bone", "disc")}
    index_body = rasterize(anatomy.index.body, grid, supersample=4).full()[:, :, 0]
    above_body = rasterize(above.body, grid, supersample=4).full()[:, :, 0]
    y = grid.axes_mm()[1]
    depth = min(anatomy.index.dims.body_depth_mm, above.dims.body_depth_mm)
    front = max(anatomy.index.body_front_y_mm, above.body_front_y_mm)
    checked = 0
    for j in np.flatnonzero((y > front + 0.2 * depth) & (y < front + 0.8 * depth)):
        low = np.flatnonzero(index_body[:, j] > 0.5)
        high = np.flatnonzero(above_body[:, j] > 0.5)
        if low.size == 0 or high.size == 0:
            continue
        between = labels[low.max() + 1:high.min(), j]
        gap = np.count_nonzero(~np.isin(between, list(spine)))
        assert gap <= 1, (level, collapse, kyphosis, y[j], gap)
        checked += 1
    assert checked > 10


@pytest.mark.parametrize("level, collapse", CASES)
def test_column_above_comes_down(level, collapse):
    """The body above sinks by between the posterior and the anterior loss of height."""
    straight = build_anatomy(level)
    collapsed = build_anatomy(level, collapse_pct=collapse)
    names = [v.level for v in straight.vertebrae]
    above = names[names.index(level) - 1]
    drop = straight.vertebra(above).z_centre_mm - collapsed.vertebra(above).z_centre_mm
    front_loss, back_loss = collapsed.height_loss_mm
    assert back_loss <= drop <= front_loss + 1e-9
    # The vertebra below and the index's lower endplate do not move.
    below = names[names.index(level) + 1]
    assert collapsed.vertebra(below).z_centre_mm == straight.vertebra(below).z_centre_mm
    assert collapsed.index.z_range_mm[0] == straight.index.z_range_mm[0]


TILTS = [(level, collapse, kyphosis) for level, collapse in CASES for kyphosis in (0.0, 8.0, 25.0)]
TILTS += [("T8", 0.0, 8.0), ("T8", 0.0, 25.0)]  # a kyphosis without collapse opens the disc alone


@pytest.mark.parametrize("level, collapse, kyphosis", TILTS)
def test_kyphosis_measured_back(level, collapse, kyphosis):
    """The body above tilts forwards by the wedge angle plus the requested kyphosis, and the
    wedge angle is the one of the index body's own endplates. Tolerance 1 degree: an edge
    found from partial-volume occupancy on 0.5 mm voxels is good to ~0.05 mm, so a slope
    fitted over 70% of a 15-35 mm deep endplate is good to a few tenths of a degree."""
    anatomy = build_anatomy(level, collapse_pct=collapse, kyphosis_deg=kyphosis)
    grid, above = slab(anatomy)
    index = anatomy.index
    y, heights, _ = column_heights(grid, index.body)
    keep = interior(y, heights, index.body_front_y_mm, index.dims.body_depth_mm)
    wedge = math.degrees(math.atan(np.polyfit(y[keep], heights[keep], 1)[0]))
    assert wedge == pytest.approx(anatomy.wedge_deg, abs=1.0)
    measured = lower_endplate_tilt_deg(grid, above)
    assert measured == pytest.approx(wedge + kyphosis, abs=1.0)
    assert measured - wedge == pytest.approx(kyphosis, abs=1.5)


def test_render_collapses_a_straight_anatomy():
    """A lesion with collapse on an uncollapsed anatomy is drawn as the same wedge."""
    anatomy = build_anatomy("L1")
    grid = default_grid(anatomy, (2.5, 2.5, 2.5))
    scene = render_phantom(anatomy, grid, Lesion(collapse_pct=40), supersample=2)
    assert scene.anatomy.collapse_pct == 40 and scene.anatomy.height_loss_mm[0] > scene.anatomy.height_loss_mm[1]
    with pytest.raises(ValueError, match="collapse"):
        render_phantom(build_anatomy("L1", collapse_pct=20), grid, Lesion(collapse_pct=40), supersample=2)


@pytest.mark.parametrize("kwargs, message", [
    ({"collapse_pct": 100}, "collapse_pct"), ({"collapse_pct": -1}, "collapse_pct"),
    ({"kyphosis_deg": -1}, "kyphosis_deg"), ({"kyphosis_deg": collapse_limits()["max_kyphosis_deg"] + 1}, "kyphosis_deg"),
])
def test_bad_collapse_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_anatomy("T10", **kwargs)


# -- the case field -----------------------------------------------------------------------
def case_data(**lesion):
    data = tomllib.loads(case_path("t10_rcc_escc2").read_text())
    data = copy.deepcopy(data)
    data["lesion"].update(lesion)
    return data


def test_kyphosis_defaults_to_zero():
    assert parse_case(case_data(), where="x.toml").kyphosis_deg == 0


@pytest.mark.parametrize("value", [-1, collapse_limits()["max_kyphosis_deg"] + 0.5, "ten", float("nan"), True])
def test_bad_kyphosis_is_named(value):
    data = case_data(kyphosis_deg=value, collapse_pct=30)
    data["patient"]["alignment"] = "de_novo_deformity"
    with pytest.raises(CaseError) as error:
        parse_case(data, where="bad.toml")
    message = str(error.value)
    assert "'lesion.kyphosis_deg'" in message and f"0..{collapse_limits()['max_kyphosis_deg']:g}" in message


def test_kyphosis_needs_a_deformity():
    with pytest.raises(CaseError, match="lesion.kyphosis_deg.*alignment"):
        parse_case(case_data(kyphosis_deg=10, collapse_pct=30), where="x.toml")


def test_case_kyphosis_reaches_the_scene():
    data = case_data(kyphosis_deg=10, collapse_pct=40)
    data["patient"]["alignment"] = "de_novo_deformity"
    case = parse_case(data, where="x.toml")
    assert case.kyphosis_deg == 10
    scene = build_scene(case, spacing_mm=(5.0, 2.5, 2.5), supersample=2)
    assert scene.anatomy.kyphosis_deg == 10 and scene.anatomy.collapse_pct == 40
    assert scene.anatomy.segmental_kyphosis_deg > 10
