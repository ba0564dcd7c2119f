"""Property-based tests of the sweep spec loader (issue 18): structure-aware mutations of the
packaged example specs give a Sweep or a SpecError naming the field, never another exception."""

from __future__ import annotations

import copy
import tomllib
from importlib import resources

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.sweeps.spec import SpecError, Sweep, load_spec, parse_spec

EXAMPLES = {entry.name: tomllib.loads(entry.read_text(encoding="utf-8"))
            for entry in resources.files("planner.sweeps").joinpath("examples").iterdir() if entry.name.endswith(".toml")}
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=10), st.sampled_from(["", "T13", "T6", "2", "1c", "renal_cell", "nope", "x" * 200]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                      max_leaves=8)


def _paths(data, prefix=()):
    for key, value in data.items():
        yield prefix, key
        if isinstance(value, dict):
            yield from _paths(value, prefix + (key,))


def _table(data, path):
    for key in path:
        data = data[key]
    return data


@st.composite
def mutated_specs(draw):
    data = copy.deepcopy(EXAMPLES[draw(st.sampled_from(sorted(EXAMPLES)))])
    for _ in range(draw(st.integers(1, 4))):
        paths = list(_paths(data))
        if not paths:
            break
        path, key = draw(st.sampled_from(paths))
        table = _table(data, path)
        edit = draw(st.sampled_from(["drop", "replace", "add", "wrap", "grow"]))
        if edit == "drop":
            del table[key]
        elif edit == "replace":
            table[key] = draw(VALUES)
        elif edit == "add":
            table[draw(st.text(min_size=1, max_size=8))] = draw(VALUES)
        elif edit == "wrap":
            table[key] = [table[key]]
        elif isinstance(table[key], list):
            table[key] = table[key] + draw(st.lists(SCALARS, max_size=3))
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_specs())
def test_mutated_spec_is_a_sweep_or_a_spec_error(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("spec")
    try:
        sweep = parse_spec(data, where="mutated.toml", folder=folder)
    except SpecError as error:
        assert "\n" not in str(error).strip() and str(error).startswith("mutated.toml")
    else:
        assert isinstance(sweep, Sweep)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200) | st.sampled_from([b"\xef\xbb\xbf[sweep]\n", b"x = " + b"[" * 5000 + b"]" * 5000]))
def test_damaged_spec_file_is_a_spec_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("spec") / "s.toml"
    path.write_bytes(text)
    try:
        load_spec(path)
    except SpecError as error:
        assert "\n" not in str(error).strip()


# --- regressions hypothesis found (issue 18) -------------------------------------------------

def test_a_list_where_a_name_belongs_is_a_spec_error():
    data = copy.deepcopy(EXAMPLES["delay_vs_walking.toml"])
    data["grid"]["histology"] = [["renal_cell", "breast"]]  # was TypeError: unhashable type: 'list'
    try:
        parse_spec(data, where="nested.toml")
    except SpecError as error:
        assert "grid.histology" in str(error)
    else:
        raise AssertionError("a list is not a histology")


def test_deep_nesting_and_a_byte_order_mark(tmp_path):
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 50_000 + "]" * 50_000 + "\n")  # was RecursionError
    try:
        load_spec(deep)
    except SpecError as error:
        assert "nested too deeply" in str(error)
    bom = tmp_path / "bom.toml"
    example = resources.files("planner.sweeps").joinpath("examples").joinpath("gap_vs_dose.toml")
    bom.write_bytes(b"\xef\xbb\xbf" + example.read_bytes())
    assert isinstance(load_spec(bom), Sweep)
