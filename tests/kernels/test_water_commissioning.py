"""The superposition engine against the Monte Carlo water beam (10 x 10 cm, SSD 100 cm, 6 MV)."""

from pathlib import Path

import numpy as np
import pytest

from kernels.beam_model import load_beam_model
from kernels.commission import penumbra_80_20, water_field
from kernels.gamma_cpu import gamma_index, gamma_pass_rate

MC_PATH = Path(__file__).resolve().parents[1] / "data" / "mc_water_10x10_6mv.npz"


@pytest.fixture(scope="module")
def fields():
    mc = np.load(MC_PATH)
    reference = mc["dose_sym_gy"].astype(float)
    dose, z, xy, released, deposited = water_field(load_beam_model())
    x_mc = 5 * (mc["x_edges_cm"][:-1] + mc["x_edges_cm"][1:])
    columns = np.searchsorted(xy, x_mc - 1e-6)
    ours = dose[:, columns][:, :, columns]
    return dict(mc=mc, reference=reference, ours=ours, depth_cm=z / 10, x_mm=x_mc, released=released, deposited=deposited)


def central_axis(volume):
    n = volume.shape[1] // 2
    return volume[:, n - 1:n + 1, n - 1:n + 1].mean(axis=(1, 2))


def test_depth_of_maximum_within_1_mm(fields):
    depth = fields["depth_cm"]
    ours, mc = central_axis(fields["ours"]), central_axis(fields["reference"])
    assert abs(depth[np.argmax(ours)] - depth[np.argmax(mc)]) <= 0.1


def test_depth_dose_beyond_dmax_within_1_5_percent(fields):
    depth = fields["depth_cm"]
    ours, mc = central_axis(fields["ours"]), central_axis(fields["reference"])
    # The Monte Carlo has ~1% (1 sigma) noise per depth: compare with a 3-voxel running mean.
    smooth = np.convolve(mc, np.ones(3) / 3, mode="same")
    beyond = (depth > depth[np.argmax(mc)]) & (depth < 28.0)
    difference = ours / ours.max() - smooth / smooth[np.argmax(mc)]
    assert np.abs(difference[beyond]).max() <= 0.015


@pytest.mark.parametrize("depth_cm", [5, 10, 20])
def test_profiles_and_penumbra_within_1_mm(fields, depth_cm):
    k = int(np.argmin(np.abs(fields["depth_cm"] - (depth_cm + 0.125))))
    n = fields["ours"].shape[1] // 2
    ours = fields["ours"][k, n - 1:n + 1].mean(axis=0)
    mc = fields["reference"][k, n - 1:n + 1].mean(axis=0)
    (pen_ours, edge_ours), (pen_mc, edge_mc) = penumbra_80_20(fields["x_mm"], ours), penumbra_80_20(fields["x_mm"], mc)
    assert abs(pen_ours - pen_mc) <= 1.0
    assert abs(edge_ours - edge_mc) <= 1.0


def test_gamma_2_percent_2_mm(fields):
    ours, mc = fields["ours"], fields["reference"]
    # Shapes normalised at dmax on the axis (the absolute scale is tested separately).
    gamma = gamma_index(mc / central_axis(mc).max(), ours / central_axis(ours).max(), (2.5, 2.5, 2.5),
                        dose_percent=2, distance_mm=2, cutoff_percent=10, upsample=4)
    assert gamma_pass_rate(gamma) >= 0.98


def test_absolute_dose_per_unit_fluence(fields):
    """No free parameter sets the absolute scale: physics alone gives the Monte Carlo's within 2%."""
    k = int(np.argmin(np.abs(fields["depth_cm"] - 10.125)))
    ratio = central_axis(fields["ours"])[k] / central_axis(fields["reference"])[k]
    assert ratio == pytest.approx(1.0, abs=0.02)


def test_energy_balance(fields):
    """Deposited energy never exceeds the released energy times the kernel's absorbed share
    (0.958 in 60 cm of water); in a 30 cm cube escape takes about a quarter."""
    fraction = fields["deposited"].sum() / fields["released"].sum()
    assert 0.6 < fraction < 0.958
    assert np.all(fields["ours"] >= 0) and np.all(np.isfinite(fields["ours"]))


def test_mirror_symmetry(fields):
    ours = fields["ours"]
    assert np.allclose(ours, ours[:, ::-1, :], rtol=1e-3, atol=ours.max() * 1e-6)
    assert np.allclose(ours, ours[:, :, ::-1], rtol=1e-2, atol=ours.max() * 2e-3)


def test_output_factor_grows_with_field_size():
    """No head scatter in this beam: the output factor is phantom scatter alone, predicted by
    the engine (more scatter reaches the axis from a larger field)."""
    model = load_beam_model()
    values = []
    for field_mm in (30.0, 50.0, 100.0):
        dose, z, xy, _, _ = water_field(model, field_mm=field_mm, size_mm=200.0, depth_mm=150.0)
        n = dose.shape[1] // 2
        values.append(dose[int(np.argmin(np.abs(z - 100.0))), n - 1:n + 1, n - 1:n + 1].mean())
    assert values[0] < values[1] < values[2]
    assert 0.80 < values[0] / values[2] < 0.95


def test_pencil_beam_engine_in_water_against_monte_carlo():
    """The pencil-beam engine on the same field: depth dose, penumbra and absolute dose."""
    from planner.radiotherapy.beams import Beam, BeamSet
    from planner.radiotherapy.influence import build_influence, fluence_per_unit_weight
    from scenes.scene import scene_from_arrays

    mc = np.load(MC_PATH)
    reference = mc["dose_sym_gy"].astype(float)
    x_mc = 5 * (mc["x_edges_cm"][:-1] + mc["x_edges_cm"][1:])
    n_lateral, n_depth = len(x_mc), reference.shape[0]
    shape = (n_lateral, n_depth, n_lateral)  # gantry 0: depth along +y
    scene = scene_from_arrays(spacing_mm=(2.5, 2.5, 2.5), origin_mm=(x_mc[0], 1.25, x_mc[0]), density_g_cc=np.ones(shape),
                              structures={"body_outline": np.ones(shape, bool)})
    centres = np.arange(-47.5, 50.0, 5.0)
    uu, vv = np.meshgrid(centres, centres)
    beam = Beam(0.0, (0.0, 0.0, 0.0), 1000.0, 5.0, np.stack([uu.ravel(), vv.ravel()], axis=1))
    c = n_lateral // 2
    wanted = np.zeros(shape, bool)
    wanted[c - 1:c + 1, :, c - 1:c + 1] = True
    for depth_cm in (5, 10, 20):
        wanted[c - 1:c + 1, depth_cm * 4, :] = True
    influence = build_influence(scene, BeamSet((beam,)), roi=np.flatnonzero(wanted), cutoff=1e-4, report=lambda s: None)
    dose = influence.dose_volume(np.ones(beam.n_beamlets)) / fluence_per_unit_weight()
    ours = dose[c - 1:c + 1, :, c - 1:c + 1].mean(axis=(0, 2))
    mc_axis = central_axis(reference)
    depth = (np.arange(n_depth) + 0.5) * 0.25
    assert abs(depth[np.argmax(ours)] - depth[np.argmax(mc_axis)]) <= 0.1
    smooth = np.convolve(mc_axis, np.ones(3) / 3, mode="same")
    beyond = (depth > depth[np.argmax(mc_axis)]) & (depth < 28.0)
    assert np.abs(ours / ours.max() - smooth / smooth[np.argmax(mc_axis)])[beyond].max() <= 0.015
    assert ours[40] / mc_axis[40] == pytest.approx(1.0, abs=0.02)
    for depth_cm in (5, 10, 20):
        k = depth_cm * 4
        (pen, edge), (pen_mc, edge_mc) = (penumbra_80_20(x_mc, dose[c - 1:c + 1, k, :].mean(axis=0)),
                                          penumbra_80_20(x_mc, reference[k, c - 1:c + 1, :].mean(axis=0)))
        assert abs(pen - pen_mc) <= 1.0 and abs(edge - edge_mc) <= 1.0


@pytest.mark.slow
def test_hardened_and_tilted_kernels_keep_the_absolute_dose():
    """The complete kernel physics (kernels/data/beam_6mv.toml: ``kernel_hardening`` and
    ``kernel_tilting``, both on as commissioned, see tests/kernels/test_bone_slab_mc.py): hardening
    alone reads +1.8% at 10 cm (5 mm voxels, central 1 cm), because kernels along the beam axis
    send the forward scatter of off-axis voxels towards it; with each kernel along its own ray
    the absolute dose is the Monte Carlo's within 1% and the depth dose within 1.5%."""
    from dataclasses import replace

    mc = np.load(MC_PATH)
    model = replace(load_beam_model(), kernel_hardening=True, kernel_tilting=True)
    dose, z, _, _, _ = water_field(model, spacing_mm=5.0)
    n = dose.shape[1] // 2
    ours = dose[:, n - 1:n + 1, n - 1:n + 1].mean(axis=(1, 2))
    c = mc["dose_sym_gy"].shape[1] // 2
    reference = mc["dose_sym_gy"][:, c - 2:c + 2, c - 2:c + 2].astype(float).mean(axis=(1, 2)).reshape(-1, 2).mean(axis=1)
    depth = z / 10
    k = int(np.argmin(np.abs(depth - 10.25)))
    assert ours[k] / reference[k] == pytest.approx(1.0, abs=0.01)
    smooth = np.convolve(reference, np.ones(3) / 3, mode="same")
    beyond = (depth > depth[np.argmax(reference)]) & (depth < 28.0)
    assert np.abs(ours / ours.max() - smooth / smooth[np.argmax(reference)])[beyond].max() <= 0.015
