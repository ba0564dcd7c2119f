"""The superposition engine against an independent Monte Carlo bone slab (not fitted to it).

Reference (tests/data/mc_slab_bone_5x5_6mv.npz, reduced to depth doses): DOSXYZnrc (EGSnrc
9edee3e), 5 x 5 cm 6 MV field (Mohan spectrum) at SSD 100 cm; water 0-3 cm, ICRP cortical
bone (ICRPBONE521ICRU, 1.85 g/cc) 3-5 cm, water beyond; dose to the local medium. Compared
here: the mean over the central 1 x 1 cm (``central_1cm_dose``; the 2 x 2 voxels on the axis
carry twice the noise), both normalised in the water before the slab (1-2.5 cm). Percentages
below are ours/MC - 1.

The slab is built as a physicist would name it: the bone's mass density, its electron density
from its composition (scenes/data/materials.toml: icrp_cortical_bone, <Z/A> 0.5212 -> 1.737
relative to water) and its own attenuation table (``attenuation_table = "bone"``: EGSnrc's
ICRPBONE521ICRU mu/rho). Per electron, bone attenuates and releases 1.2% more energy than
water for this spectrum (pair production and photoelectric absorption grow with Z); its
mu_en/mu equals water's within 0.1%, so the water kernel's local share holds and the dose in
the bone is its collision kerma. With the fixed kernel (both switches below off) and
electron-density scaling alone the bone beyond its first voxel was -1.0% on average (-1.7% to -0.1%); with its table -0.05% (-0.7% to +0.9%).
Downstream the extra attenuation costs 0.16%. From 5 mm behind the slab to 11 cm the engine
is within 1.5% (-1.7% to +0.4% per depth, -0.7% on average; 3-voxel running mean -1.4% to +0.1%).

Deeper, the fixed untilted kernel (both switches off) drifts down (mean -1.8% at 11-15 cm,
-2.8% at 15-20 cm, -3.8% at 20-25 cm). That is not the bone: its 10 x 10 cm water field,
normalised the same way, drifts too (-1.5% at 19 cm). Two approximations of that engine pull in
opposite directions. (1) The fixed polyenergetic kernel: with depth the spectrum hardens and
the share of the released energy absorbed locally (mu_en/mu, the kernel's primary part) grows
from 0.518 to 0.543 at 20 cm, which matters most where a small field has little scatter
(``kernel_hardening`` weights the primary part by each voxel's own mu_en/mu). (2) Untilted
kernels: in a divergent beam a voxel's photons travel along its own ray, and a kernel pointed
along the axis instead sends the forward scatter of off-axis voxels towards the axis
(``kernel_tilting``). In the 10 x 10 cm water field (central 1 cm, ours/MC - 1): TERMA is the
analytic one to 1e-6; an FFT superposition of it with the 24 EDKnrc kernels, energy by energy
(no collapsed-cone step, no fit), is +1.0% at dmax, +1.6% at 10 cm, +2.3% at 20 cm, so the
engine's hardened +1.3%, +2.1%, +1.5% are the superposition itself (the hardening split adds
about +0.35%: its scatter part keeps the surface spectrum's absorbed share). The first-order
tilt of the same kernels, by FFT, is -0.7% (dmax), -1.7% (10 cm), -2.3% (20 cm) (the engine's
cones: -0.7%, -1.6%, -2.2%): with it the exact superposition is within 0.3% of the Monte Carlo
(5-voxel running mean)
from dmax to 20 cm. Photons leaving the 30 cm cube and coming back (in an infinite-medium
kernel, not in the Monte Carlo) add only 0.1-0.2% to 20 cm (photon transport estimate).
Hardening alone is +2.35% at 10 cm on the 2 x 2 axis voxels (the water test allows 2%); with
tilting too it is +0.8% and the depth dose within 1.1%, and this slab is within 1.5% from 5.5
to 20 cm (running mean -1.3% to +0.9%; means +0.3%, -0.2%, -0.6% at 5.5-11, 11-15, 15-20 cm).
Both switches are on in the commissioned engine (kernels/data/beam_6mv.toml; the tilt rides
the one cone pass, about 1.1x the cost of both off), and the tests below state what it meets.
Inside the bone, between its first and last voxels, it is within 1.5% (-0.2% to +1.2%, mean
+0.47%; the Monte Carlo's 0.75% per voxel puts about 0.4% on that mean relative to the
normalisation). The bone's last voxel reads +1.6% (the fixed kernel +0.9%) and the mean over
the bone beyond its first voxel is +0.64% (fixed kernel -0.05%): with hardening the local
share rises 0.6% from the normalisation depth to the bone, and the last voxel sits at the
bone-to-water interface, where electrons from the bone stop in water (below). The fixed,
untilted kernel (both off) is kept as measured at the end of this file.
(The Monte Carlo is per unit mean fluence on the surface plane, histories over the field's
area; the on-axis fluence of its isotropic point source is 1.0025 times that for 10 x 10 cm,
1.0006 for 5 x 5, so per unit on-axis fluence ours/MC is 0.25% higher than the water test's
ratio.)

What a density-scaled water kernel cannot model is measured and kept visible: the backscatter
from the bone into the water before it (MC 1.6% above us in the last 2.5 mm of water; 1.8%
with the fixed kernel), the first 2.5 mm of bone (-2.2%; fixed kernel -2.5%, -3.0% before the
bone table), the last 2.5 mm of bone (+1.6%) and the first 2.5 mm of water behind it (+4.4%;
fixed kernel +3.5%), where electrons set in motion in one medium deposit in the other. Why
(research/bone_interface_findings.md, measured 2026-12-07): the engine reproduces an exact
density-scaled superposition of the tabulated kernel within 0.2% at both faces, so the
collapsed lines are not the cause; correcting bone's collision stopping power per electron
(Bethe, ICRU 37 I-values: 0.905 of water's per gram at 1 MeV against the 0.939 electron
density scaling assumes) moves both bone faces the wrong way (first bone -4.3%, first water
behind +6.6%); bone's stronger multiple scattering (1.40 x water's per electron) dominates,
with the opposite sign: it reflects water-born electrons back (the backscatter) and stops them
sooner (the first bone voxel), and sends less forward into the water behind. A 1-D condensed-
history estimate of that (scratch, not the engine) puts the four voxels within 1.5%; the engine
would need medium-specific primary kernels from electron transport to carry it.
"""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from kernels.beam_model import load_beam_model
from kernels.engine import square_field, superposition_dose
from scenes.materials import materials

MC_PATH = Path(__file__).resolve().parents[1] / "data" / "mc_slab_bone_5x5_6mv.npz"
SPACING_MM = 2.5


def slab_ratio(*, kernel_hardening: bool, kernel_tilting: bool = False):
    """Ours / Monte Carlo on the axis (central 1 x 1 cm), both normalised at 1-2.5 cm."""
    mc = np.load(MC_PATH)
    model = replace(load_beam_model(), source_axis_distance_mm=float(mc["ssd_cm"]) * 10,  # an SSD setup
                    kernel_hardening=kernel_hardening, kernel_tilting=kernel_tilting)
    n_xy, n_z = 96, 120  # 24 cm wide: the scatter of a narrower phantom is missing at depth
    origin = np.array([SPACING_MM / 2, -n_xy * SPACING_MM / 2 + SPACING_MM / 2, -n_xy * SPACING_MM / 2 + SPACING_MM / 2])
    z_mm = origin[0] + SPACING_MM * np.arange(n_z)
    (start, stop) = mc["material_z_ranges_cm"][1] * 10
    bone = materials()["icrp_cortical_bone"]
    in_bone = (z_mm > start) & (z_mm < stop)
    density, electron = np.ones((n_z, n_xy, n_xy)), np.ones((n_z, n_xy, n_xy))
    medium = np.zeros((n_z, n_xy, n_xy), np.int64)
    density[in_bone], electron[in_bone], medium[in_bone] = bone.density_g_cc, bone.relative_electron_density, 1
    assert bone.density_g_cc == pytest.approx(float(mc["material_densities_gcc"][1]))
    assert bone.attenuation_table == "bone"
    fluence, fluence_origin, fluence_spacing = square_field(float(mc["field_cm"]) * 10)
    dose, _, _ = superposition_dose(density, electron, origin, np.full(3, SPACING_MM), np.array([-model.source_axis_distance_mm, 0, 0]),
                                    (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, 1.0, 0.0), fluence, fluence_origin,
                                    fluence_spacing, model, medium=medium, media=(bone.attenuation_table,))
    centre = n_xy // 2
    ours = dose[:, centre - 2:centre + 2, centre - 2:centre + 2].mean(axis=(1, 2))  # the central 1 x 1 cm
    reference = np.interp(z_mm / 10, mc["cax_depth_cm"], mc["central_1cm_dose"])
    # Both normalised in the water before the slab, beyond the build-up (1-2.5 cm).
    before = (z_mm > 10) & (z_mm < 25)
    ratio = (ours / ours[before].mean()) / (reference / reference[before].mean())
    return z_mm, ratio, start, stop


@pytest.fixture(scope="module")
def axis_doses():
    """The engine as commissioned (switches as in kernels/data/beam_6mv.toml: both on)."""
    model = load_beam_model()
    return slab_ratio(kernel_hardening=model.kernel_hardening, kernel_tilting=model.kernel_tilting)


@pytest.fixture(scope="module")
def fixed_kernel_axis_doses():
    """The fixed polyenergetic kernel along the beam axis (both switches off)."""
    return slab_ratio(kernel_hardening=False, kernel_tilting=False)


def smoothed(ratio):
    # 3-voxel running mean: the Monte Carlo carries about 1% (1 sigma) noise per depth there.
    return np.convolve(ratio, np.ones(3) / 3, mode="same")


def test_the_commissioned_engine_hardens_and_tilts_its_kernels():
    model = load_beam_model()
    assert model.kernel_hardening and model.kernel_tilting


def test_inside_the_bone_within_1_5_percent(axis_doses):
    # Between the first and last bone voxels (the interfaces: last test).
    z_mm, ratio, start, stop = axis_doses
    inside = (z_mm > start + SPACING_MM) & (z_mm < stop - SPACING_MM)
    assert np.all(np.abs(ratio[inside] - 1) <= 0.015), ratio[inside]
    assert abs(ratio[inside].mean() - 1) <= 0.005
    # Beyond the first voxel, the last one included: +0.64% on average (module docstring).
    beyond_first = (z_mm > start + SPACING_MM) & (z_mm < stop)
    assert 0.0 <= ratio[beyond_first].mean() - 1 <= 0.008


def test_downstream_of_the_bone_within_1_5_percent_to_20_cm(axis_doses):
    # From 5 mm behind the slab: the running mean must not reach into the first voxel behind it.
    z_mm, ratio, start, stop = axis_doses
    beyond = (z_mm > stop + 2 * SPACING_MM) & (z_mm < 200)
    assert np.all(np.abs(smoothed(ratio)[beyond] - 1) <= 0.015), smoothed(ratio)[beyond]
    near = (z_mm > stop + 2 * SPACING_MM) & (z_mm < 110)  # single voxels too, where the MC noise is low
    assert np.all(np.abs(ratio[near] - 1) <= 0.015), ratio[near]


def test_deeper_than_20_cm_stays_as_measured(axis_doses):
    # 20-25 cm: mean -1.1%, running mean -2.3% to +0.1% (the phantom's 24 cm width and the
    # Monte Carlo's noise there); recorded so that a change shows here.
    z_mm, ratio, start, stop = axis_doses
    deep = (z_mm > 200) & (z_mm < 250)
    assert -0.015 <= ratio[deep].mean() - 1 <= 0.005
    assert np.all(np.abs(smoothed(ratio)[deep] - 1) <= 0.03)


def test_the_interface_effects_not_modelled_stay_as_measured(axis_doses):
    # Kept visible so that an improvement (or a regression) of the interfaces shows here.
    z_mm, ratio, start, stop = axis_doses
    backscatter = ratio[(z_mm > start - SPACING_MM) & (z_mm < start)]
    first_bone = ratio[(z_mm > start) & (z_mm < start + SPACING_MM)]
    last_bone = ratio[(z_mm > stop - SPACING_MM) & (z_mm < stop)]
    first_water_behind = ratio[(z_mm > stop) & (z_mm < stop + SPACING_MM)]
    assert np.all((backscatter > 0.975) & (backscatter < 1.0))  # -1.6%
    assert np.all((first_bone > 0.965) & (first_bone < 1.0))  # -2.2%
    assert np.all((last_bone > 1.0) & (last_bone < 1.025))  # +1.6%
    assert np.all((first_water_behind > 1.0) & (first_water_behind < 1.045))  # +4.4%


def test_fixed_kernel_stays_as_measured(fixed_kernel_axis_doses):
    # Both switches off: the bone within 1.5% beyond its first voxel (mean -0.05%), downstream
    # within 1.5% to 11 cm, then the deep drift of the fixed untilted kernel (module docstring).
    z_mm, ratio, start, stop = fixed_kernel_axis_doses
    inside = (z_mm > start + SPACING_MM) & (z_mm < stop)
    assert np.all(np.abs(ratio[inside] - 1) <= 0.015), ratio[inside]
    assert abs(ratio[inside].mean() - 1) <= 0.005
    beyond = (z_mm > stop + 2 * SPACING_MM) & (z_mm < 110)
    assert np.all(np.abs(smoothed(ratio)[beyond] - 1) <= 0.015), smoothed(ratio)[beyond]
    for low, high, mean_low in ((110, 150, -0.025), (150, 200, -0.035)):
        region = (z_mm > low) & (z_mm < high)
        assert mean_low <= ratio[region].mean() - 1 <= 0.01
        assert np.all(np.abs(smoothed(ratio)[region] - 1) <= 0.045)
