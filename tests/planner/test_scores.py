import pytest

from planner.scores import sins
from scenes.cases import list_cases, load_case
from tests.conftest import case_scene

WITH_REFERENCE_SINS = [name for name in list_cases() if load_case(name).expected_sins is not None]


def test_every_reference_scenario_has_its_sins():
    assert len(WITH_REFERENCE_SINS) == 7


@pytest.mark.parametrize("name", WITH_REFERENCE_SINS)
def test_sins_measured_from_the_scene_matches_the_reference(name):
    """The clinical reference gives each teaching scenario's SINS with its breakdown; the
    score measured on the phantom (collapse, involvement, pedicles from the masks) agrees."""
    score = sins(case_scene(name))
    assert score.total == load_case(name).expected_sins, score.explain()


def test_collapse_is_measured_not_read():
    score = sins(case_scene("l3_melanoma_escc3"))
    assert score.components["collapse"][0] == "under_50"
    assert 0.2 < score.measured["height_loss"] < 0.4  # the case asks for 30% collapse
    assert score.category == "potentially_unstable" and "SINS 12" in score.explain()
