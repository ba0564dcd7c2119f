import pytest

from planner.app.live import Controls, check_control, surrogate_constraints
from planner.radiotherapy.constraints import constraints_for


@pytest.mark.parametrize("name, raw, message", [
    ("gap_mm", "abc", "separation gap must be a number"), ("gap_mm", 7, "separation gap must be in 0..5"),
    ("gap_mm", float("nan"), "separation gap"), ("dose_gy", 0, r"prescription dose must be in \(0, 80\]"),
    ("dose_gy", "1e9", "prescription dose"), ("fractions", 2.5, "whole number"),
    ("fractions", 10, "protocol hytec has limits for"), ("protocol", "rtog0631", "change the fractions first"),
    ("surrogate", "liver", "cord surrogate must be one of"), ("n_beams", 99, "number of beams"),
    ("weeks", -1, "delay of diagnosis"), ("weights", {"walking": "x"}, "weight of walking"),
    ("weights", {"beauty": 1}, "unknown outcome"), ("strategy", "nonsense", "strategy must be one of"),
    ("colour", 1, "unknown control")])
def test_every_bad_value_is_refused_with_its_field(name, raw, message):
    with pytest.raises(ValueError, match=message):
        check_control(name, raw, controls=Controls(), strategies=("sbrt_24gy_2fx",), weight_keys=("walking",))


def test_good_values_are_converted():
    assert check_control("fractions", "3", controls=Controls()) == 3
    assert check_control("protocol", "quantec", controls=Controls()) == "quantec"


def test_the_surrogate_takes_over_the_cord_point_limits():
    base = constraints_for("hytec", 2)
    moved = surrogate_constraints(base, "PRV")
    assert {c.structure for c in moved} >= {"cord_prv", "thecal_sac"} and "spinal_cord" not in {c.structure for c in moved}
    sac = surrogate_constraints(base, "thecal sac")
    assert [c.metric for c in sac if c.structure == "thecal_sac"] == ["Dmax"]  # the lower limit kept once
