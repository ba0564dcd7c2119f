"""Property-based tests of the protocol tables' reader at its boundary (issue 18): any protocol
name, fraction number and prior course (the case file's ``prior_radiotherapy``) gives the
limits or a ValueError naming what is wrong, never another exception. The packaged tables
themselves are checked field by field in tests/planner/test_constraints.py."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.radiotherapy.constraints import Constraint, constraints_for, protocols

NAMES = st.sampled_from(sorted(protocols())) | st.text(max_size=8) | st.sampled_from(["TG101", "", "hytec "])
NUMBERS = st.one_of(st.integers(-5, 50), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
                    st.text(max_size=4))
PRIOR = st.none() | st.fixed_dictionaries({"dose_gy": NUMBERS, "fractions": NUMBERS, "months_ago": NUMBERS}) | \
    st.dictionaries(st.sampled_from(["dose_gy", "fractions", "months_ago", "site"]), NUMBERS, max_size=4)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(NAMES, st.integers(-3, 45) | st.sampled_from([2.0, 2.5, True]), PRIOR)
def test_any_protocol_fractions_and_prior_course_is_limits_or_a_value_error(name, fractions, prior):
    try:
        limits = constraints_for(name, fractions, prior_course=prior)
    except ValueError as error:
        assert str(error) and "\n" not in str(error)
    else:
        assert all(isinstance(c, Constraint) for c in limits)


# --- regressions hypothesis found ----------------------------------------------------------

def test_a_float_fraction_number_is_a_value_error():
    import pytest

    with pytest.raises(ValueError, match="fractions must be a whole number, got 2.0"):  # was KeyError: '2.0'
        constraints_for("hytec", 2.0)
    with pytest.raises(ValueError, match=r"prior_course\['months_ago'\] must be a finite number"):
        constraints_for("hytec", 2, prior_course={"dose_gy": 30.0, "fractions": 10, "months_ago": None})
