"""Every public function of the planner's library rooms documents its parameters and result.

The public API is what a module lists in ``__all__``: its functions, and the public methods
(no leading underscore) that its public classes define themselves. Dataclass-generated
methods, dunders and properties are not checked, and neither are classes as such. Each
function needs a numpydoc docstring with a ``Parameters`` section naming every parameter as
``name : type`` followed by an indented description (``*args``/``**kwargs`` as written in
the signature; several names may share one line, ``a, b : float``), and nothing that is not
a parameter; and a ``Returns`` (or ``Yields``) section unless it is annotated ``-> None``.

The modules are found by walking the packages, so a new module cannot be forgotten from a
list; cached functions (``functools.lru_cache``) are checked through their wrapped function.
The subpackages that hold policy as data (``planner.radiotherapy.protocols``,
``planner.clinical.data``) are left out: their readers are cached table loaders.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

PACKAGES = ("planner.radiotherapy", "planner.clinical", "planner.common", "planner.pictures",
            "planner.pictures.three_d")

_HEADER_UNDERLINE = re.compile(r"^-{3,}\s*$")
# 'name : type', 'a, b : type', '**kwargs : dict'; the type is required.
_ENTRY = re.compile(r"^(?P<names>\*{0,2}[A-Za-z_]\w*(?:\s*,\s*\*{0,2}[A-Za-z_]\w*)*)\s+:\s+(?P<type>\S.*)$")


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.iter_modules(module.__path__):
            if not info.ispkg:
                names.append(f"{package}.{info.name}")
    return sorted(names)


def _public_functions() -> dict[str, object]:
    """{'module:qualname': function} of every public function and public method."""
    found = {}
    for name in _modules():
        module = importlib.import_module(name)
        for public in getattr(module, "__all__", ()):
            obj = getattr(module, public)
            if callable(obj) and hasattr(obj, "__wrapped__"):  # e.g. functools.lru_cache
                obj = inspect.unwrap(obj)
            if inspect.isfunction(obj):
                found.setdefault(f"{obj.__module__}:{obj.__qualname__}", obj)
            elif inspect.isclass(obj) and obj.__module__ == name:
                for attribute, value in vars(obj).items():
                    if attribute.startswith("_"):
                        continue
                    if isinstance(value, (staticmethod, classmethod)):
                        value = value.__func__
                    # Properties are documented as attributes, not as functions.
                    if inspect.isfunction(value) and value.__qualname__ == f"{obj.__qualname__}.{attribute}":
                        found.setdefault(f"{name}:{value.__qualname__}", value)
    return found


def sections(doc: str) -> dict[str, list[str]]:
    """The numpydoc sections of a cleaned docstring: {'Parameters': [lines], ...}."""
    lines = doc.splitlines()
    out, current = {}, None
    for i, line in enumerate(lines):
        if i + 1 < len(lines) and line.strip() and _HEADER_UNDERLINE.match(lines[i + 1]) \
                and not line.startswith(" "):
            current = line.strip()
            out[current] = []
            continue
        if current is not None and _HEADER_UNDERLINE.match(line) and i > 0 and lines[i - 1].strip() == current:
            continue
        if current is not None:
            out[current].append(line)
    return out


def documented_parameters(lines: list[str]) -> dict[str, str]:
    """{name: type} of the 'name : type' entries of a Parameters section; an entry without an
    indented description line under it is reported with type ''."""
    entries = {}
    for i, line in enumerate(lines):
        if not line or line.startswith(" "):
            continue
        match = _ENTRY.match(line.rstrip())
        if match is None:
            continue
        described = i + 1 < len(lines) and lines[i + 1].startswith(" ") and lines[i + 1].strip()
        for name in match["names"].split(","):
            entries[name.strip()] = match["type"].strip() if described else ""
    return entries


def expected_parameters(function) -> list[str]:
    """The signature's parameter names as a docstring writes them (self and cls left out)."""
    names = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.name in ("self", "cls") and not names:
            continue
        stars = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}.get(parameter.kind, "")
        names.append(stars + parameter.name)
    return names


def problems(function) -> list[str]:
    """What the function's docstring lacks (empty: it is complete)."""
    doc = inspect.getdoc(function)
    if not doc or not doc.strip():
        return ["no docstring"]
    found = sections(doc)
    wrong = []
    expected = expected_parameters(function)
    if expected:
        if "Parameters" not in found:
            wrong.append("no Parameters section")
        else:
            documented = documented_parameters(found["Parameters"])
            plain = {name.lstrip("*"): name for name in documented}
            for name in expected:
                entry = name if name in documented else plain.get(name.lstrip("*"))
                if entry is None:
                    wrong.append(f"parameter {name!r} not documented as 'name : type'")
                elif not documented[entry]:
                    wrong.append(f"parameter {name!r} has no description under it")
            stale = set(plain) - {name.lstrip("*") for name in expected}
            if stale:
                wrong.append(f"documents parameters the signature does not have: {sorted(stale)}")
    returns = inspect.signature(function).return_annotation
    if returns not in (None, "None"):
        body = found.get("Returns", found.get("Yields"))
        if body is None:
            wrong.append("no Returns (or Yields) section")
        elif not any(line.strip() for line in body):
            wrong.append("empty Returns section")
    return wrong


FUNCTIONS = _public_functions()


def test_the_public_api_is_found():
    # The walk sees every room and both functions and methods, so this test cannot pass empty.
    modules = _modules()
    for expected in ("planner.radiotherapy.plan", "planner.clinical.scorecard", "planner.common.files",
                     "planner.pictures.figures", "planner.pictures.three_d.render"):
        assert expected in modules
    for expected in ("planner.radiotherapy.plan:plan_case", "planner.radiotherapy.beams:Beam.fluence_map",
                     "planner.radiotherapy.session:Session.set_gap", "planner.clinical.scores:noms",
                     "planner.clinical.scorecard:Scorecard.table", "planner.common.progress:is_terminal",
                     "planner.pictures.three_d.headless:rendering_available"):
        assert expected in FUNCTIONS
    assert len(FUNCTIONS) > 100


def test_the_checker_finds_what_is_missing():
    def complete(dose_gy: float, *, fractions: int = 1, **options) -> float:
        """Summary.

        Parameters
        ----------
        dose_gy : float
            Dose (Gy), >= 0.
        fractions : int
            1..40.
        **options : dict
            Passed on.

        Returns
        -------
        float
            The answer.
        """

    def missing(dose_gy: float, fractions: int) -> float:
        """Summary.

        Parameters
        ----------
        dose_gy : float
            Dose (Gy).
        """

    def stale(dose_gy: float) -> None:
        """Summary.

        Parameters
        ----------
        dose_gy : float
            Dose (Gy).
        dose : float
            Renamed long ago.
        """

    def untyped(dose_gy: float) -> None:
        """Summary.

        Parameters
        ----------
        dose_gy
            Dose (Gy).
        """

    assert problems(complete) == []
    assert problems(missing) == ["parameter 'fractions' not documented as 'name : type'", "no Returns (or Yields) section"]
    assert problems(stale) == ["documents parameters the signature does not have: ['dose']"]
    assert problems(untyped) == ["parameter 'dose_gy' not documented as 'name : type'"]
    assert problems(lambda: None) == ["no docstring"]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_public_function_is_documented(name):
    assert problems(FUNCTIONS[name]) == [], name
