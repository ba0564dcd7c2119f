import numpy as np
import pytest

from scenes.materials import label_of, material
from scenes.scene import scene_from_arrays


def test_scene_from_hu(rng):
    hu = rng.choice([-1000.0, -85.0, 40.0, 1450.0], size=(4, 6, 5))
    cord = rng.random((4, 6, 5)) < 0.3
    scene = scene_from_arrays(spacing_mm=(2.5, 1.25, 1.25), origin_mm=(0, -3, -2), hu=hu, structures={"spinal_cord": cord})
    expected = {-1000.0: "air", -85.0: "fat", 40.0: "soft_tissue", 1450.0: "cortical_bone"}
    for value, name in expected.items():
        assert np.all(scene.labels[hu == value] == label_of(name))
        assert np.allclose(scene.density_g_cc[hu == value], material(name).density_g_cc, rtol=1e-5)
    assert scene.structure("spinal_cord").volume_cc == pytest.approx(cord.sum() * 2.5 * 1.25 * 1.25 / 1000)
    assert np.allclose(scene.electron_density[hu == 0.0], 1.0) if np.any(hu == 0.0) else True


def test_electron_density_scales_with_density(rng):
    density = rng.uniform(0.9, 1.1, (3, 3, 3))
    scene = scene_from_arrays(spacing_mm=(1, 1, 1), density_g_cc=density)
    ratio = scene.electron_density / scene.density_g_cc
    assert np.allclose(ratio, material("soft_tissue").relative_electron_density / material("soft_tissue").density_g_cc, rtol=0.02)


@pytest.mark.parametrize("kwargs, message", [
    (dict(spacing_mm=(1, 1, 1)), "exactly one"),
    (dict(spacing_mm=(1, 1, 1), density_g_cc=np.ones((2, 2))), "3-D"),
    (dict(spacing_mm=(1, 1, 1), density_g_cc=-np.ones((2, 2, 2))), "density_g_cc"),
    (dict(spacing_mm=(1, 1, 1), density_g_cc=np.ones((2, 2, 2)), structures={"cord": np.ones((2, 2, 3))}), "cord"),
    (dict(spacing_mm=(1, 1, 1), density_g_cc=np.ones((2, 2, 2)), structures={"cord": 2 * np.ones((2, 2, 2))}), "0..1"),
    (dict(spacing_mm=(1, 0, 1), density_g_cc=np.ones((2, 2, 2))), "spacing_mm"),
])
def test_bad_arrays_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        scene_from_arrays(**kwargs)
