"""The pencil beam's lateral heterogeneity treatment against the superposition engine in lung.

A water phantom with a 10 cm slab of ICRU lung (0.26 g/cc) from 5 to 15 cm depth, open
square fields at SSD 100 cm, all beamlets at unit weight, kept energy 0.995; the pencil-beam
matrix dose on the central axis against the collapsed-cone superposition dose, in points of
the superposition maximum. Radiological depth alone (before) against radiological depth plus
the lateral density scaling (after), measured 2026-12 in this file's geometry (2.5 mm voxels,
8 cm of phantom beside the field; axis from 2 to 18 cm depth; mean over 6-15 cm, in lung):

    field        water          lung before                 lung after
    3 x 3 cm     -0.2..+0.4     +0.1..+11.8, mean +10.3     -2.2..+2.3, mean -1.4
    5 x 5 cm     -0.3..+0.2     -0.2..+7.1,  mean +5.9      -2.8..+3.1, mean -1.9
    10 x 10 cm   -2.0..-0.2     -1.7..+4.0,  mean +3.0      -3.5..+3.0, mean -3.1

(the 10 x 10 cm field, not tested here for time, is -1 to -2 in water already: the kept-energy
cut-off and this narrow phantom's missing scatter). The water matrices are unchanged: the
scaling is water's own electron density there, >= 1, which keeps the water kernel.
"""

import numpy as np
import pytest

from kernels.beam_model import load_beam_model
from kernels.engine import superposition_dose
from kernels.raytrace_cpu import depths_and_upstream_densities_to_voxels, path_integrals_to_voxels
from planner.radiotherapy.beams import open_field
from planner.radiotherapy.influence import build_influence, electron_range_mm, fluence_per_unit_weight, lateral_scaling
from scenes.materials import material
from scenes.scene import scene_from_arrays

SPACING_MM = 2.5
LUNG_MM = (50.0, 150.0)


def slab_scene(field_mm, insert):
    """Water (or water with a slab of ``insert``) with room for the field's scatter; depth along +y."""
    n_lat = int(round((field_mm + 80.0) / SPACING_MM))
    n_depth = int(round(200.0 / SPACING_MM))
    shape = (n_lat, n_depth, n_lat)
    origin = (-(n_lat - 1) / 2 * SPACING_MM, SPACING_MM / 2, -(n_lat - 1) / 2 * SPACING_MM)
    y = origin[1] + SPACING_MM * np.arange(n_depth)
    density = np.ones(shape)
    if insert is not None:
        density[:, (y >= LUNG_MM[0]) & (y < LUNG_MM[1]), :] = material(insert).density_g_cc
    scene = scene_from_arrays(spacing_mm=(SPACING_MM,) * 3, origin_mm=origin, density_g_cc=density,
                              structures={"body_outline": np.ones(shape, bool)})
    return scene, y


def superposition_axis(scene, beam, weights):
    """The collapsed-cone engine's dose of the weighted beamlets (Gy), as the final dose runs it."""
    fluence, origin, spacing = beam.fluence_map(weights)
    axis, u, v = beam.frame
    grid = scene.grid
    dose, _, _ = superposition_dose(np.asarray(scene.density_g_cc, float), np.asarray(scene.electron_density, float),
                                    np.asarray(grid.origin_mm), np.asarray(grid.spacing_mm), beam.source_mm, axis, u, v,
                                    fluence, origin, spacing, load_beam_model(),
                                    source_axis_distance_mm=beam.source_axis_distance_mm)
    return dose * fluence_per_unit_weight()


def axis_doses(field_mm, insert):
    scene, y = slab_scene(field_mm, insert)
    beams = open_field(field_mm, entry_mm=(0.0, 0.0, 0.0), ssd_mm=1000.0)
    shape = scene.grid.shape
    c = shape[0] // 2
    near_axis = (slice(c - 1, c + 1), slice(None), slice(c - 1, c + 1))
    rows = np.arange(scene.grid.size).reshape(shape)[near_axis].ravel()
    weights = np.ones(beams.n_beamlets)
    influence = build_influence(scene, beams, roi=np.sort(rows), kept_energy=0.995)
    pencil = influence.dose_volume(weights)[near_axis].mean(axis=(0, 2))
    superposition = superposition_axis(scene, beams.beams[0], weights)[near_axis].mean(axis=(0, 2))
    return y, pencil, superposition, scene, beams


@pytest.mark.slow
@pytest.mark.parametrize("field_mm", [30.0, 50.0])
def test_pencil_beam_follows_the_superposition_engine_in_lung(field_mm):
    y, pencil, superposition, _, _ = axis_doses(field_mm, "lung")
    points = 100 * (pencil - superposition) / superposition.max()
    # From the surface to 18 cm (build-up excluded: both engines differ there in water too).
    compared = (y > 20.0) & (y < 180.0)
    # Before the treatment: up to +11.8 (3 x 3 cm) and +7.1 (5 x 5 cm); after: 2.3 and 3.1.
    assert np.abs(points[compared]).max() < 4.0
    # Before the treatment the 3 x 3 cm field was +10 points inside the lung, the 5 x 5 +6.
    inside = (y > LUNG_MM[0] + 10) & (y < LUNG_MM[1])
    assert points[inside].mean() == pytest.approx(0.0, abs=2.5)


def test_lateral_scaling_is_one_in_water_and_the_density_in_deep_lung():
    scene, y = slab_scene(30.0, "lung")
    beams = open_field(30.0, entry_mm=(0.0, 0.0, 0.0), ssd_mm=1000.0)
    shape = scene.grid.shape
    c = shape[0] // 2
    rows = np.arange(scene.grid.size).reshape(shape)[c, :, c]
    eta = lateral_scaling(scene, beams.beams[0], rows)
    lung = material("lung")
    # In water, water's own electron density (to rounding; >= 1 keeps the water kernel as it was).
    water = scene.electron_density[c, 0, c]
    assert water >= 1.0
    assert eta[y < LUNG_MM[0]] == pytest.approx(water, rel=1e-12)
    assert eta[y > LUNG_MM[1] + electron_range_mm()] == pytest.approx(water, rel=1e-12)
    # Deep in the lung (beyond water's electrons' reach, range / density) it is the lung's own.
    deep = (y > LUNG_MM[0] + electron_range_mm() / lung.relative_electron_density + SPACING_MM) & (y < LUNG_MM[1])
    assert eta[deep] == pytest.approx(scene.electron_density[c, np.flatnonzero(deep), c], rel=1e-9)
    # Build-down after entering the lung, build-up after leaving it: monotone transitions.
    entering = (y >= LUNG_MM[0]) & ~deep & (y < LUNG_MM[1])
    assert np.all(np.diff(eta[entering]) < 0)
    leaving = (y >= LUNG_MM[1]) & (y <= LUNG_MM[1] + electron_range_mm())
    assert np.all(np.diff(eta[leaving]) > 0)


def test_upstream_density_matches_the_two_medium_formula():
    """Water over a medium of density rho: at x mm into the medium (x < range / rho), electrons
    released l upstream crossed s(l) = l / rho (l <= rho x) or x + l - rho x; the inverse mean
    stretch over l in [0, range] is range / (x + (1 - rho) x ln(range / (rho x)) + range - rho x)."""
    rho, range_mm, spacing = 0.25, 16.0, 1.0
    density = np.ones((1, 1, 200))
    density[..., 100:] = rho
    source = np.array([0.0, 0.0, -1000.0])
    voxels = np.arange(100, 140, dtype=np.int64)
    depth, out, path = np.empty(len(voxels)), np.empty(len(voxels)), np.empty(len(voxels))
    depths_and_upstream_densities_to_voxels(density, np.zeros(3), np.full(3, spacing), source, voxels, range_mm, depth, out)
    # The same walk gives the radiological depth, the path integral's to rounding.
    path_integrals_to_voxels(density, np.zeros(3), np.full(3, spacing), source, voxels, path)
    assert depth == pytest.approx(path, rel=1e-12)
    x = voxels - 99.5  # voxel centres lie half a voxel past each boundary
    expected = range_mm / (x + (1 - rho) * x * np.log(range_mm / (rho * x)) + range_mm - rho * x)
    expected = np.where(rho * x >= range_mm, rho, expected)
    assert out == pytest.approx(expected, rel=1e-9)


def test_air_in_the_grid_before_the_patient_does_not_stretch_the_build_up(rng):
    """The air a beam crosses inside the grid is no medium for the lateral scaling: just below
    the surface eta is water's whatever the air margin (with air counted, 5 cm of it took eta to
    0.64 at 1.5 mm depth)."""
    air_mm = rng.uniform(30.0, 100.0)
    n_air, n_water = int(air_mm // SPACING_MM), 16
    density = np.ones((5, n_air + n_water, 5))
    density[:, :n_air] = material("air").density_g_cc
    scene = scene_from_arrays(density_g_cc=density, spacing_mm=(SPACING_MM,) * 3,
                              origin_mm=(-5.0, -n_air * SPACING_MM + SPACING_MM / 2, -5.0))
    beams = open_field(10.0, entry_mm=(0.0, 0.0, 0.0), ssd_mm=1000.0)
    rows = np.arange(scene.grid.size).reshape(scene.grid.shape)[2, n_air:, 2]
    eta = lateral_scaling(scene, beams.beams[0], rows)
    assert eta == pytest.approx(scene.electron_density[2, n_air, 2], rel=1e-9)
