"""The superposition engine against an independent Monte Carlo bone slab (not fitted to it).

Reference (tests/data/mc_slab_bone_5x5_6mv.npz, reduced to the central axis): DOSXYZnrc
(EGSnrc 9edee3e), 5 x 5 cm 6 MV field (Mohan spectrum) at SSD 100 cm; water 0-3 cm, ICRP
cortical bone (ICRPBONE521ICRU, 1.85 g/cc) 3-5 cm, water beyond; dose to the local medium.
The slab is built with the bone's own electron density, from its composition
(scenes/data/materials.toml: icrp_cortical_bone, <Z/A> 0.5212 -> 1.737 relative to water).

What the density-scaled collapsed cone does not model is measured and kept visible: the
backscatter from the bone into the water before it (MC about 2% above us in the last
millimetres of water) and the first millimetres of bone (about 4% below the MC), where
the electrons set in motion in water meet bone's lower stopping power per electron. Inside
the bone beyond its first voxel (-1.6%) and downstream to 11 cm (about -1%) the engine is
within 2%; deeper the ratio drifts down (-2.5% at 14 cm, -3 to -4% at 17-20 cm: a 5 x 5 cm
field's depth dose, where the engine is commissioned on 10 x 10 cm), which the water tests do
not see and this file records.
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


@pytest.fixture(scope="module")
def axis_doses():
    mc = np.load(MC_PATH)
    model = replace(load_beam_model(), source_axis_distance_mm=float(mc["ssd_cm"]) * 10)  # an SSD setup
    n_xy, n_z = 96, 120  # 24 cm wide: the scatter of a narrower phantom is missing at depth
    origin = np.array([SPACING_MM / 2, -n_xy * SPACING_MM / 2 + SPACING_MM / 2, -n_xy * SPACING_MM / 2 + SPACING_MM / 2])
    z_mm = origin[0] + SPACING_MM * np.arange(n_z)
    (start, stop) = mc["material_z_ranges_cm"][1] * 10
    bone = materials()["icrp_cortical_bone"]
    in_bone = (z_mm > start) & (z_mm < stop)
    density, electron = np.ones((n_z, n_xy, n_xy)), np.ones((n_z, n_xy, n_xy))
    density[in_bone], electron[in_bone] = bone.density_g_cc, bone.relative_electron_density
    assert bone.density_g_cc == pytest.approx(float(mc["material_densities_gcc"][1]))
    fluence, fluence_origin, fluence_spacing = square_field(float(mc["field_cm"]) * 10)
    dose, _, _ = superposition_dose(density, electron, origin, np.full(3, SPACING_MM), np.array([-model.source_axis_distance_mm, 0, 0]),
                                    (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, 1.0, 0.0), fluence, fluence_origin,
                                    fluence_spacing, model)
    centre = n_xy // 2
    ours = dose[:, centre - 1:centre + 1, centre - 1:centre + 1].mean(axis=(1, 2))
    reference = np.interp(z_mm / 10, mc["cax_depth_cm"], mc["cax_dose"])
    # Both normalised in the water before the slab, beyond the build-up (1-2.5 cm).
    before = (z_mm > 10) & (z_mm < 25)
    ratio = (ours / ours[before].mean()) / (reference / reference[before].mean())
    return z_mm, ratio, start, stop


def test_inside_the_bone_beyond_its_first_voxel(axis_doses):
    z_mm, ratio, start, stop = axis_doses
    inside = (z_mm > start + SPACING_MM) & (z_mm < stop)
    assert np.all(np.abs(ratio[inside] - 1) <= 0.02), ratio[inside]


def test_downstream_of_the_bone(axis_doses):
    z_mm, ratio, start, stop = axis_doses
    beyond = (z_mm > stop) & (z_mm < 110)
    # 3-voxel running mean: the Monte Carlo carries about 1% (1 sigma) noise per depth there.
    smooth = np.convolve(ratio, np.ones(3) / 3, mode="same")
    assert np.all(np.abs(smooth[beyond] - 1) <= 0.02), smooth[beyond]


def test_the_interface_effects_not_modelled_stay_as_measured(axis_doses):
    # Kept visible so that an improvement (or a regression) of the interface shows here.
    z_mm, ratio, start, stop = axis_doses
    backscatter = ratio[(z_mm > start - SPACING_MM) & (z_mm < start)]
    first_bone = ratio[(z_mm > start) & (z_mm < start + SPACING_MM)]
    assert np.all(backscatter > 0.96) and np.all(first_bone > 0.93)
