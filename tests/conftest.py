"""Shared fixtures: scenes are expensive, so build each once per session."""

from functools import lru_cache

import pytest

from scenes.cases import build_scene


@lru_cache(maxsize=None)
def case_scene(name: str, spacing=(2.5, 1.25, 1.25)):
    return build_scene(name, spacing_mm=spacing)


@pytest.fixture(scope="session")
def default_scene():
    return case_scene("t10_rcc_escc2")


@pytest.fixture
def rng(request):
    """A fresh, reported seed per test: failures can be replayed, inputs are never fixed."""
    import numpy as np

    seed = np.random.SeedSequence().entropy % (2**32)
    request.node.user_properties.append(("seed", seed))
    print(f"random seed: {seed}")
    return np.random.default_rng(seed)
