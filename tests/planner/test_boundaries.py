"""Issue 18: the radiotherapy API refuses empty beam sets and bad angles naming the argument."""

from __future__ import annotations

import numpy as np
import pytest

from planner.radiotherapy.beams import BeamSet, make_beams
from planner.radiotherapy.influence import build_influence


@pytest.mark.parametrize("angles", [[], [np.nan], [0.0, np.inf], "posterior", [[0.0, 90.0]]])
def test_make_beams_needs_finite_angles(angles):
    with pytest.raises(ValueError, match="gantry_deg must be one or more finite angles"):
        make_beams(np.zeros((3, 3)), gantry_deg=angles)


def test_make_beams_needs_finite_points():
    with pytest.raises(ValueError, match="target_points_mm must be finite"):
        make_beams(np.array([[0.0, np.nan, 0.0]]), gantry_deg=[180.0])


def test_build_influence_refuses_an_empty_beam_set():
    # Was IndexError: tuple index out of range, after building the region.
    with pytest.raises(ValueError, match="at least one beam"):
        build_influence(None, BeamSet(()))
