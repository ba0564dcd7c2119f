"""Time to build each level's phantom scene (with its case-like lesion) at 2.5 and 1.25 mm.

Run: pytest benchmarks/test_scene_build.py --benchmark-enable --benchmark-columns=min,median,max
"""

import pytest

from scenes.anatomy import build_anatomy
from scenes.lesions import Lesion, reach_for_grade
from scenes.morphometry import PHANTOM_LEVELS
from scenes.phantom import default_grid, render_phantom

SPACINGS = {"2.5mm": (2.5, 2.5, 2.5), "1.25mm": (2.5, 1.25, 1.25)}


@pytest.mark.parametrize("spacing", list(SPACINGS))
@pytest.mark.parametrize("level", PHANTOM_LEVELS)
def test_build_level(benchmark, level, spacing):
    def build():
        anatomy = build_anatomy(level)
        lesion = Lesion(sites=("body", "pedicle_left"), epidural_reach_mm=reach_for_grade(anatomy, "2"))
        return render_phantom(anatomy, default_grid(anatomy, SPACINGS[spacing]), lesion)

    scene = benchmark.pedantic(build, rounds=2, iterations=1, warmup_rounds=0)
    benchmark.extra_info["voxels"] = scene.grid.size
    assert scene.level == level
