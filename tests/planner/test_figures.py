import numpy as np
import pytest

from planner.pictures.figures import render_dose_slice, write_figure
from tests.conftest import case_scene


def test_dose_slice_shows_the_dose(tmp_path):
    import matplotlib.image

    scene = case_scene("t10_rcc_escc2")
    z, y, x = scene.grid.centres_mm()
    dose = np.broadcast_to(10.0 * np.exp(-((y + 10) ** 2 + x**2) / 400.0) + 0 * z, scene.grid.shape)
    path = write_figure(render_dose_slice(scene, dose, title="test"), tmp_path / "dose.png")
    image = matplotlib.image.imread(path)[..., :3]
    assert image.std() > 0.1
    # The colour wash: warm (red) pixels near the high dose, absent from a dose-free render.
    red = (image[..., 0] > 0.7) & (image[..., 2] < 0.4)
    assert red.sum() > 500


def test_dose_shape_is_checked():
    scene = case_scene("t10_rcc_escc2")
    with pytest.raises(ValueError, match="does not match"):
        render_dose_slice(scene, np.zeros((2, 2, 2)))
