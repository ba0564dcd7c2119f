"""Teaching cases: every one loads and builds to its grade; bad files are refused clearly."""

import copy
import tomllib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenes.cases import KPS_FROM_ECOG, CaseError, case_path, grow, list_cases, load_case, parse_case
from scenes.escc import measure_escc_grade
from scenes.lesions import ESCC_GRADES
from tests.conftest import case_scene

REFERENCE_SCENARIOS = {1, 2, 3, 5, 7, 9, 10}


def test_reference_scenarios_and_own_cases_are_present():
    cases = [load_case(name) for name in list_cases()]
    assert {c.teaching_scenario for c in cases if c.teaching_scenario} == REFERENCE_SCENARIOS
    own = [c for c in cases if c.teaching_scenario is None]
    regions = {c.level[0] for c in own}
    assert len(own) >= 3 and regions >= {"C", "T", "L"}


@pytest.mark.parametrize("name", list_cases())
def test_case_builds_to_its_grade(name):
    case = load_case(name)
    scene = case_scene(name)
    assert scene.level == case.level and scene.clinical["histology"] == case.histology
    assert measure_escc_grade(scene).grade == case.lesion.requested_grade


def valid():
    return tomllib.loads(case_path("t10_rcc_escc2").read_text())


def with_change(path, value):
    data = valid()
    node = data
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[key]
    if value is KeyError:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return data


BAD = [
    ("case.level", "T13", "case.level"),
    ("case.level", 10, "case.level"),
    ("case.colour", "red", "case.colour"),
    ("patient.histology", "unicorn", "patient.histology"),
    ("patient.ecog", 7, "patient.ecog"),
    ("patient.ecog", 1.5, "patient.ecog"),
    ("patient.ecog", True, "patient.ecog"),
    ("patient.frankel", "F", "patient.frankel"),
    ("patient.ambulatory", "yes", "patient.ambulatory"),
    ("patient.neurology", KeyError, "patient.neurology"),
    ("patient.prior_radiotherapy", {"dose_gy": 30, "fractions": 0, "months_ago": 9}, "patient.prior_radiotherapy.fractions"),
    ("lesion.escc_grade", 2, "lesion.escc_grade"),
    ("lesion.escc_grade", "4", "lesion.escc_grade"),
    ("lesion.sites", [], "lesion.sites"),
    ("lesion.sites", ["body", "body"], "lesion.sites"),
    ("lesion.kind", "osteoid", "lesion.kind"),
    ("lesion.body_fraction", 1.5, "lesion.body_fraction"),
    ("lesion.collapse_pct", float("nan"), "lesion.collapse_pct"),
    ("lesion.posterolateral", "bilateral", "lesion.posterolateral"),
    ("patient.kps", 85, "patient.kps"),
    ("patient.kps", 0, "patient.kps"),
    ("patient.kps", "good", "patient.kps"),
    ("patient.kps", 30, "patient.kps"),  # ECOG 1 in the file: KPS 30 is ECOG 3 by the mapping
    ("patient.extraspinal_bone_metastases", -1, "patient.extraspinal_bone_metastases"),
    ("patient.extraspinal_bone_metastases", 2.5, "patient.extraspinal_bone_metastases"),
    ("patient.vertebral_metastases", 0, "patient.vertebral_metastases"),
    ("patient.vertebral_metastases", True, "patient.vertebral_metastases"),
    ("patient.visceral_metastases_status", "treatable", "patient.visceral_metastases_status"),
]


@pytest.mark.parametrize("path, value, field", BAD)
def test_bad_fields_are_named(path, value, field):
    with pytest.raises(CaseError) as error:
        parse_case(with_change(path, value), where="bad.toml")
    message = str(error.value)
    assert message.startswith("bad.toml: field ") and f"'{field}'" in message
    assert "allowed" in message or "missing" in message


def test_impossible_combinations_are_refused():
    data = with_change("case.level", "L3")
    with pytest.raises(CaseError, match="conus"):
        parse_case(data, where="x.toml")  # myelopathy below the conus
    data = with_change("patient.frankel", "A")
    with pytest.raises(CaseError, match="patient.ambulatory"):
        parse_case(data, where="x.toml")
    data = valid()
    data["lesion"]["sites"] = ["pedicle_left"]
    data["lesion"]["collapse_pct"] = 20
    with pytest.raises(CaseError, match="collapse_pct"):
        parse_case(data, where="x.toml")


def test_prognostic_inputs_have_documented_defaults():
    patient = load_case("t10_rcc_escc2").patient  # ECOG 1, no prognostic inputs in the file
    assert (patient["kps"], patient["extraspinal_bone_metastases"], patient["vertebral_metastases"],
            patient["visceral_metastases_status"]) == (80, 0, 1, "none")
    assert set(patient["prognosis_defaults"]) == {"kps", "extraspinal_bone_metastases", "vertebral_metastases",
                                                  "visceral_metastases_status"}
    assert [KPS_FROM_ECOG[grade] for grade in range(5)] == [100, 80, 60, 40, 20]
    paraplegia = load_case("t4_nsclc_escc3_paraplegia").patient  # visceral_metastases = true, no status
    assert paraplegia["visceral_metastases_status"] == "unremovable" and paraplegia["kps"] == 20
    given = parse_case(with_change("patient.kps", 70), where="x.toml").patient
    assert given["kps"] == 70 and "kps" not in given["prognosis_defaults"]


def test_visceral_flag_and_status_must_agree():
    data = with_change("patient.visceral_metastases_status", "removable")
    case = parse_case(data, where="x.toml")
    assert case.patient["visceral_metastases"] is True  # derived from the status
    data["patient"]["visceral_metastases"] = False
    with pytest.raises(CaseError, match="'patient.visceral_metastases_status'.*allowed: none"):
        parse_case(data, where="x.toml")
    data = with_change("patient.visceral_metastases", True)
    data["patient"]["visceral_metastases_status"] = "none"
    with pytest.raises(CaseError, match="'patient.visceral_metastases_status'.*removable or unremovable"):
        parse_case(data, where="x.toml")


def test_bad_files(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[case\nid = ")
    with pytest.raises(CaseError, match="not valid TOML"):
        load_case(broken)
    with pytest.raises(CaseError, match="no such case file"):
        load_case(tmp_path / "missing.toml")
    with pytest.raises(CaseError, match="known cases"):
        load_case("no_such_case")


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)
FIELDS = [f"{table}.{key}" for table, keys in valid().items() if isinstance(keys, dict) for key in keys] + \
    ["case.unknown", "patient.prior_radiotherapy", "patient.kps", "patient.extraspinal_bone_metastases",
     "patient.vertebral_metastases", "patient.visceral_metastases_status"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(FIELDS), value=JSONISH)
def test_random_bad_values_never_crash(field, value):
    """Whatever a file holds, the loader either accepts it or raises CaseError, never another error."""
    data = with_change(field, value)
    try:
        case = parse_case(data, where="fuzz.toml")
    except CaseError as error:
        assert str(error).startswith("fuzz.toml")
    else:
        assert case.level


def test_growth_raises_the_grade_over_time():
    """A renal cell ESCC 1b lesion left alone: the grade never falls and rises within a year."""
    scene = case_scene("l4_colorectal_escc1b")
    grades = [measure_escc_grade(scene).grade]
    for weeks in (8, 26, 52):
        grown = grow(scene, weeks)
        grades.append(measure_escc_grade(grown).grade)
        assert grown.structure("gtv").volume_cc >= scene.structure("gtv").volume_cc
    ranks = [ESCC_GRADES.index(g) for g in grades]
    assert ranks == sorted(ranks) and ranks[-1] > ranks[0], grades


def test_growth_needs_a_published_doubling_time():
    from scenes.cases import build_scene

    case = load_case("t5_breast_escc2")
    data = tomllib.loads(case_path("t5_breast_escc2").read_text())
    data["patient"]["histology"] = "thyroid"
    thyroid = parse_case(copy.deepcopy(data), where="thyroid.toml")
    scene = build_scene(thyroid, spacing_mm=(5.0, 2.5, 2.5), supersample=2)
    with pytest.raises(ValueError, match="no published doubling time"):
        grow(scene, 4)
    assert case.histology == "breast"


def test_growth_is_deterministic():
    from scenes import cases

    scene = case_scene("t10_rcc_escc2")
    a = grow(scene, 6)
    cases._GROWN.clear()  # render again rather than return the memoised scene
    b = grow(scene, 6)
    assert a is not b and a.fingerprint() == b.fingerprint()
    assert np.array_equal(a.grid.shape, scene.grid.shape)


def test_scenes_are_memoised_by_their_inputs():
    """Equal builds and growths return the scene made before, which equals a fresh render;
    any changed input (case, grid, supersampling, weeks) builds anew. Memoised scenes are
    read-only throughout."""
    from dataclasses import replace

    from scenes import cases

    coarse = dict(spacing_mm=(5.0, 2.5, 2.5), supersample=2)
    scene = cases.build_scene("t10_rcc_escc2", **coarse)
    assert cases.build_scene(load_case("t10_rcc_escc2"), **coarse) is scene
    assert cases.build_scene("t10_rcc_escc2", spacing_mm=np.array([5.0, 2.5, 2.5]), supersample=2) is scene
    other = [cases.build_scene("t10_rcc_escc2", spacing_mm=(5.0, 2.5, 5.0), supersample=2),
             cases.build_scene("t10_rcc_escc2", spacing_mm=(5.0, 2.5, 2.5), supersample=1),
             cases.build_scene(replace(load_case("t10_rcc_escc2"), id="t10_other"), **coarse)]
    assert all(o is not scene for o in other)
    grown = grow(scene, 4)
    assert grow(scene, 4) is grown and grow(scene, 4.5) is not grown
    assert grow(grown, 4) is grow(grown, 4)
    cases._SCENES.clear()
    cases._GROWN.clear()
    fresh = cases.build_scene("t10_rcc_escc2", **coarse)
    assert fresh is not scene and fresh.fingerprint() == scene.fingerprint()
    assert grow(fresh, 4) is not grown and grow(fresh, 4).fingerprint() == grown.fingerprint()
    for array in (scene.labels, scene.density_g_cc, scene.electron_density,
                  *(mask.occupancy for mask in scene.structures.values())):
        assert not array.flags.writeable
    with pytest.raises(TypeError):
        scene.structures["spinal_cord"] = None


def test_scene_memo_is_bounded():
    from scenes.cases import _Memo

    memo = _Memo(maxsize=2)
    for key in "abc":
        memo.put(key, key.upper())
    assert memo.get("a") is None and memo.get("b") == "B"
    memo.put("d", "D")  # "b" was used last, so "c" goes
    assert memo.get("c") is None and memo.get("b") == "B" and memo.get("d") == "D"
