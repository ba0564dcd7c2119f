"""Media by name, by mass density or by electron density, with the medium's own <Z/A>."""

import numpy as np
import pytest

from scenes.materials import materials, z_over_a_of
from scenes.scene import scene_from_arrays


def test_water_at_one_gram_per_cc_is_water():
    scene = scene_from_arrays(spacing_mm=(5.0, 5.0, 5.0), density_g_cc=np.ones((3, 4, 5)))
    assert set(np.unique(scene.labels)) == {materials()["water"].label}
    assert "water 60" in scene.history[0]


def test_icrp_bone_takes_its_own_electron_density():
    # ICRP cortical bone at 1.85 g/cc: <Z/A> 0.5212 from its composition, 1.737 electrons per
    # cc relative to water (the ICRU-44 cortical bone <Z/A> would give 1.716).
    bone = materials()["icrp_cortical_bone"]
    assert bone.relative_electron_density == pytest.approx(1.737, abs=0.002)
    mask = np.zeros((3, 4, 5), bool)
    mask[1] = True
    scene = scene_from_arrays(spacing_mm=(5.0, 5.0, 5.0), density_g_cc=np.where(mask, 1.85, 1.0),
                              media={"icrp_cortical_bone": mask})
    assert scene.electron_density[1].mean() == pytest.approx(bone.relative_electron_density, rel=1e-6)
    assert "icrp_cortical_bone 20" in scene.history[0]


def test_electron_density_in_gives_the_class_mass_density():
    rng = np.random.default_rng()
    relative = rng.choice([0.26, 1.0, 1.737], size=(4, 4, 4)) * (1 + 0.001 * rng.standard_normal((4, 4, 4)))
    scene = scene_from_arrays(spacing_mm=(5.0, 5.0, 5.0), electron_density=relative)
    assert np.allclose(scene.electron_density, relative, rtol=1e-6)  # what was given is kept
    water = np.abs(relative - 1.0) < 0.01
    assert np.allclose(scene.density_g_cc[water], relative[water] / materials()["water"].relative_electron_density)


def test_composition_sets_z_over_a():
    assert z_over_a_of({"H": 0.111894, "O": 0.888106}) == pytest.approx(0.55508, abs=1e-5)
    with pytest.raises(ValueError, match="Z/A"):
        z_over_a_of({"Xx": 1.0})


@pytest.mark.parametrize("arguments, message", [
    (dict(density_g_cc=np.ones((2, 2, 2)), hu=np.zeros((2, 2, 2))), "exactly one of"),
    (dict(electron_density=-np.ones((2, 2, 2))), "electron_density must be finite"),
    (dict(density_g_cc=np.ones((2, 2, 2)), media={"unobtainium": np.ones((2, 2, 2))}), "unknown medium"),
    (dict(density_g_cc=np.ones((2, 2, 2)), media={"water": np.ones((3, 2, 2))}), r"media\['water'\] has shape"),
])
def test_bad_media_input_is_named(arguments, message):
    with pytest.raises(ValueError, match=message):
        scene_from_arrays(spacing_mm=(5.0, 5.0, 5.0), **arguments)
