"""Every source key the project uses has a full citation, so no report, table or app page
ever shows a key without its reference.

The keys are gathered from every TOML data file (``source``/``sources`` fields, at any depth)
and from the source-key-shaped string constants of the code (e.g. ``"laufer2013_noms"``).
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

from planner.pictures.report import collect_citations

ROOT = Path(__file__).resolve().parents[1]
DATA_FOLDERS = ("scenes/data", "kernels/data", "planner")
KEY_SHAPE = re.compile(r"^[a-z][a-z_]*(19|20)\d\d[a-z0-9_]*$")


def _keys_in(value, where: str, found: dict) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("source", "source_key") and isinstance(item, str):
                found.setdefault(item, set()).add(where)
            elif key in ("sources", "source_keys") and isinstance(item, list):
                for entry in item:
                    found.setdefault(entry, set()).add(where)
            else:
                _keys_in(item, where, found)
    elif isinstance(value, list):
        for item in value:
            _keys_in(item, where, found)


def data_source_keys() -> dict:
    found = {}
    for folder in DATA_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.toml")):
            _keys_in(tomllib.loads(path.read_text(encoding="utf-8")), str(path.relative_to(ROOT)), found)
    return found


def code_source_keys() -> dict:
    found = {}
    for package in ("scenes", "kernels", "planner"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and KEY_SHAPE.match(node.value):
                    found.setdefault(node.value, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_source_key_in_the_data_has_a_citation():
    citations = collect_citations()
    keys = data_source_keys()
    assert len(keys) > 50  # the gathering itself works
    missing = {key: sorted(where) for key, where in keys.items() if key not in citations}
    assert not missing, f"source keys without a citation: {missing}"


def test_every_source_key_in_the_code_has_a_citation():
    citations = collect_citations()
    keys = code_source_keys()
    assert "laufer2013_noms" in keys
    missing = {key: sorted(where) for key, where in keys.items() if key not in citations}
    assert not missing, f"source keys without a citation: {missing}"


def test_citations_are_full_references():
    # A citation is a reference a reader can find, not a placeholder or a bare key.
    for key, text in collect_citations().items():
        assert len(text) >= 30 and text != key, f"{key}: {text!r}"


def test_each_citation_is_written_once():
    # Two copies of a citation drift apart, and deleting one would go unnoticed.
    seen = {}
    files = [ROOT / "scenes/data/sources.toml", *sorted((ROOT / "planner").rglob("*.toml")),
             *sorted((ROOT / "kernels/data").rglob("*.toml"))]
    for path in files:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
        for key in (table.get("sources", {}) if path.name != "sources.toml" else table["sources"]):
            seen.setdefault(key, []).append(str(path.relative_to(ROOT)))
    repeated = {key: where for key, where in seen.items() if len(where) > 1}
    assert not repeated, f"citations written more than once: {repeated}"
