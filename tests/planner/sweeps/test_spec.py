"""Sweep specs: every error names file, field, value and what is allowed; impossible
combinations are removed and reported once with their count; keys are stable."""

from __future__ import annotations

import copy

import pytest

from planner.sweeps import spec as spec_module
from planner.sweeps.spec import SpecError, load_spec, parse_spec, scenario_key

BASE = {"sweep": {"name": "t", "cases": ["t10_rcc_escc2"]},
        "fixed": {"strategy": "separation_sbrt_27gy_3fx", "grid_mm": 5.0},
        "grid": {"gap_mm": [1, 2]}}


def _with(path: str, value):
    data = copy.deepcopy(BASE)
    *tables, key = path.split(".")
    target = data
    for table in tables:
        target = target.setdefault(table, {})
    target[key] = value
    return data


def test_constants_repeated_for_the_stdlib_check_equal_their_source():
    from scenes.lesions import ESCC_GRADES, SITES
    from scenes.morphometry import PHANTOM_LEVELS

    from planner.radiotherapy.beams import ARRANGEMENTS
    from planner.radiotherapy.plan import MAX_FRACTIONS, MAX_PRESCRIPTION_GY

    assert spec_module.LEVELS == PHANTOM_LEVELS
    assert spec_module.ESCC_GRADES == ESCC_GRADES and spec_module.SITES == SITES
    assert spec_module.ARRANGEMENTS == ARRANGEMENTS
    assert (spec_module.DOSE_MAX_GY, spec_module.FRACTIONS_MAX) == (MAX_PRESCRIPTION_GY, MAX_FRACTIONS)


def test_the_shipped_examples_validate_and_say_what_they_remove():
    gap = load_spec(spec_module.Path(spec_module.__file__).parent / "examples" / "gap_vs_dose.toml")
    assert len(gap.scenarios) == 64 and gap.removed == ()
    assert set(gap.varied) == {"level", "histology", "escc_grade", "gap_mm"}
    delay = load_spec(spec_module.Path(spec_module.__file__).parent / "examples" / "delay_vs_walking.toml")
    # lymphoma has no doubling time: its 4 delays x 2 strategies are removed, reported once
    assert delay.removed_text() == ["removed 8 scenarios: a delay > 0 for histology lymphoma, which has no published "
                                    "doubling time (it cannot grow)"]
    assert len(delay.scenarios) == 7 * 5 * 2 - 8


@pytest.mark.parametrize("path, value, field, allowed", [
    ("sweep.name", "bad name!", "sweep.name", "letters, digits"),
    ("sweep.cases", [], "sweep.cases", "non-empty list"),
    ("sweep.cases", ["t99_nothing"], "sweep.cases[0]", "t10_rcc_escc2"),
    ("sweep.cases", ["missing_case.toml"], "sweep.cases[0]", "existing case file"),
    ("sweep.seed", -1, "sweep.seed", "an integer in 0.."),
    ("sweep.colour", "red", "sweep.colour", "known keys of [sweep]"),
    ("fixed.level", "T13", "fixed.level", "C3, C4"),
    ("fixed.histology", "glioma", "fixed.histology", "renal_cell"),
    ("fixed.escc_grade", 2, "fixed.escc_grade", '"1b"'),
    ("fixed.lesion_sites", ["body", "body"], "fixed.lesion_sites", "distinct values"),
    ("fixed.body_fraction", 1.5, "fixed.body_fraction", "0.05..1"),
    ("fixed.weeks_delay", 600, "fixed.weeks_delay", "0..520"),
    ("grid.gap_mm", [-1, 2], "grid.gap_mm[0]", "0..10"),
    ("grid.gap_mm", [2, 2], "grid.gap_mm", "distinct values"),
    ("grid.gap_mm", 2, "grid.gap_mm", "non-empty list"),
    ("fixed.strategy", "surgery_plus", "fixed.strategy", "sbrt_24gy_2fx"),
    ("fixed.regimen", "24Gy", "fixed.regimen", "'DOSE/FRACTIONS'"),
    ("fixed.regimen", "90/2", "fixed.regimen", "(0, 80] Gy"),
    ("fixed.regimen", "24/0", "fixed.regimen", "1..40 fractions"),
    ("fixed.beams", "rotational", "fixed.beams", "sbrt_fan"),
    ("fixed.grid_mm", [2.5, 2.5], "fixed.grid_mm", "[z, y, x]"),
    ("fixed.grid_mm", 0.1, "fixed.grid_mm", "0.5..5"),
    ("fixed.protocol", "rtog9999", "fixed.protocol", "hytec"),
    ("fixed.cord_surrogate", "conus", "fixed.cord_surrogate", "thecal_sac"),
    ("fixed.weights", {"beauty": 1}, "fixed.weights.beauty", "walking"),
    ("fixed.weights", {"walking": 101}, "fixed.weights.walking", "0..100"),
    ("fixed.dose", 24, "fixed.dose", "known keys of [fixed]"),
    ("outputs.dose_arrays", "yes", "outputs.dose_arrays", "true or false"),
    ("sample.method", "sobol", "sample.method", "latin_hypercube"),
])
def test_every_spec_error_names_file_field_value_and_what_is_allowed(path, value, field, allowed):
    data = _with(path, value)
    if path.startswith("sample."):
        data["sample"].update({"n": 4, "ranges": {"body_fraction": [0.2, 0.6]}} | {path.split(".")[1]: value})
    with pytest.raises(SpecError) as error:
        parse_spec(data, where="my_spec.toml")
    message = str(error.value)
    assert message.startswith("my_spec.toml: ") and f"'{field}'" in message and allowed in message, message
    named = [value] + (value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else [])
    assert any(repr(v) in message for v in named), message


def test_a_parameter_in_two_places_and_missing_tables_are_refused():
    with pytest.raises(SpecError, match="'grid.gap_mm'.*not also in \\[fixed\\]"):
        parse_spec(_with("fixed.gap_mm", 2), where="s.toml")
    with pytest.raises(SpecError, match="'sweep.cases' is missing"):
        parse_spec({"sweep": {"name": "x"}}, where="s.toml")
    with pytest.raises(SpecError, match="no such sweep spec"):
        load_spec("/nonexistent/spec.toml")


def test_files_that_are_not_toml_are_refused(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[sweep\nname = 1", encoding="utf-8")
    with pytest.raises(SpecError, match="broken.toml: not valid TOML"):
        load_spec(path)


def test_impossible_combinations_are_removed_once_with_their_count():
    data = {"sweep": {"name": "x", "cases": ["t10_rcc_escc2"]}, "fixed": {"grid_mm": 5.0},
            "grid": {"strategy": ["sbrt_24gy_2fx", "separation_sbrt_27gy_3fx", "best_supportive_care"],
                     "gap_mm": [1, 2, 3], "histology": ["renal_cell", "lymphoma"], "weeks_delay": [0, 4]}}
    sweep = parse_spec(data, where="x.toml")
    removed = dict(sweep.removed)
    # each removed scenario is counted once, under its first reason (the delay is judged first):
    # lymphoma cannot grow: 3 strategies x 3 gaps at 4 weeks
    assert removed["a delay > 0 for histology lymphoma, which has no published doubling time (it cannot grow)"] == 9
    # sbrt alone and supportive care have no separation surgery: 3 gaps x (renal at 0 and 4 weeks, lymphoma at 0)
    assert removed["a gap with no separation surgery (strategy sbrt_24gy_2fx)"] == 9
    assert removed["a gap with no separation surgery (strategy best_supportive_care)"] == 9
    assert len(removed) == 3 and len(sweep.scenarios) == 3 * 3
    assert sum(removed.values()) + len(sweep.scenarios) == 3 * 3 * 2 * 2


@pytest.mark.parametrize("fixed, reason", [
    ({"strategy": "sbrt_24gy_2fx", "regimen": "30/10"}, "SBRT (strategy sbrt_24gy_2fx) in 10 fractions"),
    ({"strategy": "sbrt_24gy_2fx", "protocol": "tg101"}, "protocol tg101 in 2 fractions"),
    ({"strategy": "cebrt_20gy_5fx", "cord_surrogate": "thecal_sac"}, "cord surrogate thecal_sac with protocol quantec"),
    ({"strategy": "best_supportive_care", "beams": "arc"}, "a beams for strategy best_supportive_care"),
])
def test_each_kind_of_clash_is_named(fixed, reason):
    data = {"sweep": {"name": "x", "cases": ["t10_rcc_escc2"]}, "fixed": fixed, "grid": {"weeks_delay": [0, 1]}}
    with pytest.raises(SpecError, match="every scenario is an impossible combination") as error:
        parse_spec(data, where="x.toml")
    assert reason in str(error.value)


def test_samples_are_seeded_and_latin_hypercube_strata_are_each_hit_once():
    data = {"sweep": {"name": "x", "cases": ["t10_rcc_escc2"], "seed": 7},
            "sample": {"method": "latin_hypercube", "n": 10, "ranges": {"body_fraction": [0.1, 0.9]}}}
    first, again = parse_spec(data, where="x.toml"), parse_spec(data, where="x.toml")
    values = [s.params["body_fraction"] for s in first.scenarios]
    assert values == [s.params["body_fraction"] for s in again.scenarios]
    strata = sorted(int((v - 0.1) / 0.8 * 10) for v in values)
    assert strata == list(range(10))
    other = parse_spec(_seed(data, 8), where="x.toml")
    assert [s.params["body_fraction"] for s in other.scenarios] != values
    assert first.spec_hash != other.spec_hash


def _seed(data, seed):
    data = copy.deepcopy(data)
    data["sweep"]["seed"] = seed
    return data


def test_keys_are_stable_and_independent_of_spelling(tmp_path):
    one = parse_spec(_with("grid.gap_mm", [1, 2.0]), where="a.toml")
    two = parse_spec(_with("grid.gap_mm", [1.0, 2]), where="b.toml")
    assert [s.key for s in one.scenarios] == [s.key for s in two.scenarios]
    assert one.spec_hash == two.spec_hash
    assert scenario_key(one.scenarios[0].params) == one.scenarios[0].key
    # a case file's content is part of the key: editing it makes new scenarios
    case = tmp_path / "mine.toml"
    case.write_text(spec_module.resources.files("scenes.data").joinpath("cases", "t10_rcc_escc2.toml")
                    .read_text(encoding="utf-8"), encoding="utf-8")
    data = _with("sweep.cases", ["mine.toml"])
    before = parse_spec(data, where=str(tmp_path / "s.toml"), folder=tmp_path)
    case.write_text(case.read_text(encoding="utf-8").replace('title = "', 'title = "Edited: '), encoding="utf-8")
    after = parse_spec(data, where=str(tmp_path / "s.toml"), folder=tmp_path)
    assert {s.key for s in before.scenarios}.isdisjoint(s.key for s in after.scenarios)


def test_checking_a_spec_imports_nothing_heavy():
    # The command line checks a spec before numba, scipy or numpy load (a typo costs milliseconds).
    import subprocess
    import sys

    code = ("import sys; from planner.sweeps.spec import load_spec; import planner.cli.sweep; "
            "from importlib import resources; "
            "load_spec(str(resources.files('planner.sweeps').joinpath('examples', 'gap_vs_dose.toml'))); "
            "print(sorted(m for m in ('numpy', 'scipy', 'numba', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
