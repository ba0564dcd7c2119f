"""DVH metrics on analytic cases with known answers."""

import numpy as np
import pytest

from planner.radiotherapy.metrics import (StructureDose, dose_at_volume, dvh, gradient_index, homogeneity_index, metric,
                             paddick_conformity, structure_dose, volume_at_dose)


def ramp(n=1000, low=0.0, high=10.0):
    """Uniform dose distribution on [low, high] over n equal voxels of 0.001 cc (1 cc)."""
    doses = np.linspace(low, high, n)
    return structure_dose(doses.reshape(n, 1, 1), np.ones((n, 1, 1)), 0.001)


def test_uniform_distribution_percentiles():
    sd = ramp()
    assert sd.total_cc == pytest.approx(1.0)
    assert metric(sd, "D50%") == pytest.approx(5.0, abs=0.02)
    assert metric(sd, "D90%") == pytest.approx(1.0, abs=0.02)
    assert metric(sd, "Dmean") == pytest.approx(5.0, abs=1e-9)
    assert metric(sd, "V8Gy") == pytest.approx(0.2, abs=0.002)
    assert metric(sd, "D0.1cc") == pytest.approx(9.0, abs=0.02)
    assert metric(sd, "Dmax") == pytest.approx(10 - 0.35, abs=0.02)  # D0.035cc of a 1 cc ramp
    assert metric(sd, "Dmin") == 0.0


def test_fractional_occupancy_counts_volume(rng):
    """A half-occupied voxel counts half: same metrics as an explicitly halved volume."""
    doses = rng.uniform(0, 20, (50, 1, 1))
    occupancy = rng.uniform(0.05, 1.0, (50, 1, 1))
    sd = structure_dose(doses, occupancy, 0.002)
    assert sd.total_cc == pytest.approx(occupancy.sum() * 0.002)
    order = np.argsort(-doses.ravel())
    cumulative = np.cumsum(occupancy.ravel()[order] * 0.002)
    target = 0.3 * sd.total_cc
    assert dose_at_volume(sd, target) == doses.ravel()[order][np.searchsorted(cumulative, target)]


def test_dvh_is_consistent():
    sd = ramp()
    bins = np.linspace(0, 10, 11)
    cumulative, differential = dvh(sd, bins)
    assert cumulative[0] == pytest.approx(1.0) and np.all(np.diff(cumulative) <= 0)
    assert differential.sum() == pytest.approx(sd.total_cc)
    assert volume_at_dose(sd, 5.0) == pytest.approx(cumulative[5] * sd.total_cc)


def test_conformity_gradient_homogeneity_analytic():
    # A target of 1 cc at 20 Gy inside a body where 1.5 cc get >= 20 Gy and 4 cc >= 10 Gy.
    target = StructureDose(np.full(10, 20.0), np.full(10, 0.1))
    body = StructureDose(np.concatenate([np.full(15, 20.0), np.full(25, 12.0), np.full(60, 1.0)]), np.full(100, 0.1))
    assert paddick_conformity(target, body, 20.0) == pytest.approx(1.0**2 / (1.0 * 1.5))
    assert gradient_index(body, 20.0) == pytest.approx(4.0 / 1.5)
    assert homogeneity_index(target) == pytest.approx(0.0)


def test_unknown_metric_is_named():
    with pytest.raises(ValueError, match="unknown metric"):
        metric(ramp(), "D50")


def test_critical_volume_is_the_highest_dose_of_the_coldest_volume():
    """TG-101's critical volume ('200 cc must stay below'): CV<v>cc of a 1 cc ramp is D(1 - v)."""
    sd = ramp()
    assert metric(sd, "CV0.3cc") == pytest.approx(3.0, abs=0.02)
    assert metric(sd, "CV0.3cc") == pytest.approx(metric(sd, "D0.7cc"), abs=0.02)
    # A structure no larger than the critical volume: all of it must stay below (its maximum).
    assert metric(sd, "CV2cc") == metric(sd, "CV1cc") == 10.0
    # Scaling the dose scales the metric (the achievable prescription relies on it).
    doubled = StructureDose(2 * sd.dose_gy, sd.volume_cc)
    assert metric(doubled, "CV0.3cc") == pytest.approx(2 * metric(sd, "CV0.3cc"))
