"""The architecture as a test: imports run one way, there are no circles, and PyVista is
imported only where pictures are made, lazily.

Every module of scenes, kernels and planner is parsed (not imported); every import in it,
at module level or inside a function, is an edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("scenes", "kernels", "planner")

#: Layers, lowest first: a module may import its own layer and the ones below it.
LAYERS = {
    "scenes": 0,
    "kernels": 1,
    "planner": 2,            # planner/__init__ and __main__ only
    "planner.common": 2,
    "planner.radiotherapy": 3,
    "planner.clinical": 4,
    "planner.pictures": 5,
    "planner.dicom": 5,      # DICOM RT in and out (issue 13 of the series): plans, doses, structures
    "planner.sweeps": 6,     # scripted scenario sweeps; their report draws with planner.pictures
    "planner.app": 6,        # the resident app (trame); draws with planner.pictures
    "planner.cli": 7,
}
#: Only these rooms may import PyVista or VTK, and only inside functions.
PYVISTA_ROOMS = ("planner.pictures.three_d", "planner.app")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def _imports(name: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, at module level) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            found.append((target, node.lineno, id(node) in top_level))
            # `from package import module` imports the module too
            found += [(f"{target}.{alias.name}", node.lineno, id(node) in top_level) for alias in node.names]
    return found


def _layer(module: str) -> tuple[str, int] | None:
    best = None
    for prefix, rank in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, rank)
    return best


def _resolve(target: str, modules: dict) -> str | None:
    """The project module an import names (the longest known prefix), or None if external."""
    parts = target.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def _edges():
    modules = _modules()
    for name, path in sorted(modules.items()):
        for target, line, top in _imports(name, path):
            resolved = _resolve(target, modules)
            if resolved is not None and resolved != name:
                yield name, resolved, path, line, top


def test_every_planner_room_is_in_the_layer_table():
    rooms = {p.parent.relative_to(ROOT).as_posix().replace("/", ".") for p in (ROOT / "planner").glob("*/__init__.py")}
    unknown = sorted(room for room in rooms if room not in LAYERS)
    assert not unknown, f"new planner rooms need a layer in tests/test_layers.py: {unknown}"
    loose = sorted(p.name for p in (ROOT / "planner").glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert not loose, f"modules directly under planner/ belong in a room: {loose}"


def test_imports_only_go_downwards():
    upward = []
    for name, target, path, line, _ in _edges():
        if name == "planner.__main__":
            continue  # the entry point runs the top layer by definition
        own, theirs = _layer(name), _layer(target)
        if own[1] < theirs[1] or (own[0] == "planner" and name == "planner" and target != name):
            upward.append(f"{path.relative_to(ROOT)}:{line}: {name} ({own[0]}) imports {target} ({theirs[0]})")
    assert not upward, "upward imports:\n" + "\n".join(upward)


def _cycle(graph: dict) -> list | None:
    colour, stack = {}, []

    def visit(node):
        colour[node] = "grey"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt) == "grey":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in colour:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        colour[node] = "black"
        return None

    for node in sorted(graph):
        if node not in colour:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_circles():
    graph = {}
    for name, target, *_ in _edges():
        # A package's __init__ importing its own submodules is how packages work, not a circle.
        if target.startswith(name + "."):
            continue
        graph.setdefault(name, set()).add(target)
    cycle = _cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_pyvista_only_in_picture_rooms_and_lazily():
    wrong = []
    for name, path in sorted(_modules().items()):
        for target, line, top in _imports(name, path):
            if target.split(".")[0] not in ("pyvista", "vtk", "vtkmodules", "trame", "trame_pyvista"):
                continue
            allowed = any(name == room or name.startswith(room + ".") for room in PYVISTA_ROOMS)
            if not allowed or top:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {name} imports {target}"
                             + (" at module level" if top else ""))
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("bad", ["upward", "circle"])
def test_the_checks_can_fail(bad):
    """The checkers themselves, on a made-up graph, catch what they should."""
    if bad == "circle":
        assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
        assert _cycle({"a": {"b"}, "b": {"c"}}) is None
    else:
        assert _layer("planner.radiotherapy.plan")[1] < _layer("planner.clinical.scores")[1]
        assert _layer("kernels.raytrace_cpu")[1] > _layer("scenes.grid")[1]
