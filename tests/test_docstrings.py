"""The examples in the public docstrings run and give what they show.

Every module of scenes, kernels and planner whose source holds an example (``>>>``) is found
by reading the files, so a module cannot be forgotten from a list; each must run at least
one example (an example doctest cannot see, e.g. in a comment, fails) and none may fail.
"""

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _modules_with_examples() -> list[str]:
    names = []
    for package in ("scenes", "kernels", "planner"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if ">>>" in path.read_text(encoding="utf-8") and path.name != "__main__.py":
                parts = path.relative_to(ROOT).with_suffix("").parts
                names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = _modules_with_examples()


def test_examples_are_found():
    # The scene builders, the planning chain and the scorecard each carry runnable examples.
    for expected in ("scenes.shapes", "scenes.cases", "planner.radiotherapy.beams", "planner.pictures.figures",
                     "planner.clinical.scorecard"):
        assert expected in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} shows examples (>>>) that doctest does not run"
    assert result.failed == 0
