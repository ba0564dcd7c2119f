"""Issue 18: scene_from_arrays (the imported-CT path) refuses bad arrays naming the argument."""

from __future__ import annotations

import numpy as np
import pytest

from scenes.scene import Scene, scene_from_arrays

ONES = np.ones((3, 4, 5))


@pytest.mark.parametrize("kwargs, message", [
    (dict(hu=np.where(ONES > 0, np.nan, 0.0)), "hu must be finite; 60 voxels"),
    (dict(density_g_cc=ONES, structures={"gtv": np.full(ONES.shape, np.nan)}), "structure 'gtv' must be boolean"),
    (dict(density_g_cc=ONES, structures={"gtv": np.full(ONES.shape, np.inf)}), "structure 'gtv' must be boolean"),
    (dict(density_g_cc=ONES, structures={"gtv": np.full(ONES.shape, "a")}), "structure 'gtv' must be boolean"),
    (dict(density_g_cc=ONES, structures={"gtv": np.ones((3, 4))}), "structure 'gtv' has shape"),
    (dict(density_g_cc=np.ones((0, 4, 5))), "density_g_cc must hold voxels"),
    (dict(density_g_cc="dense"), "density_g_cc must be a 3-D"),
    (dict(hu=np.ones((4, 5))), "hu must be a 3-D"),
    (dict(density_g_cc=ONES, spacing_mm=(1.0, 1.0)), "spacing_mm must be three finite values above 0"),
    (dict(density_g_cc=ONES, spacing_mm=(1.0, 0.0, 1.0)), "spacing_mm must be three finite values above 0"),
    (dict(density_g_cc=ONES, spacing_mm="1,1,1"), "spacing_mm must be three finite values above 0"),
    (dict(density_g_cc=ONES, origin_mm=(0.0, np.nan, 0.0)), "origin_mm must be three finite values"),
])
def test_bad_arrays_are_named(kwargs, message):
    kwargs.setdefault("spacing_mm", (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        scene_from_arrays(**kwargs)


def test_a_scene_refuses_nan_electron_density():
    scene = scene_from_arrays(spacing_mm=(1.0, 1.0, 1.0), density_g_cc=ONES)
    with pytest.raises(ValueError, match="Scene.electron_density must be finite"):
        Scene(scene.grid, scene.labels, scene.density_g_cc, np.full(ONES.shape, np.nan), {})
