"""The examples in the public docstrings run and give what they show."""

import doctest
import importlib

import pytest

MODULES = ["scenes.grid", "scenes.shapes", "scenes.materials", "scenes.morphometry", "scenes.anatomy",
           "scenes.lesions", "scenes.phantom", "scenes.escc", "scenes.scene", "scenes.cases", "scenes.surgery",
           "planner.beams", "planner.metrics", "planner.radiobiology", "planner.scores", "planner.prognosis", "planner.outcomes", "kernels.raytrace_cpu",
           "kernels._dispatch"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
