import numpy as np
import pytest

from planner.radiotherapy.radiobiology import (bed, dose_per_fraction_for_eqd2, eqd2, lkb_ntcp, myelopathy_band,
                                  reirradiation_budget)

# (total Gy, fractions, BED10, EQD2_10, EQD2_2) from the clinical reference's fractionation table.
SCHEMES = [(8, 1, 14.4, 12.0, 20.0), (20, 5, 28.0, 23.3, 30.0), (30, 10, 39.0, 32.5, 37.5), (16, 1, 41.6, 34.7, 72.0),
           (24, 2, 52.8, 44.0, 84.0), (24, 3, 43.2, 36.0, 60.0), (30, 3, 60.0, 50.0, 90.0), (35, 5, 59.5, 49.6, 78.8)]


@pytest.mark.parametrize("total, n, bed10, eqd2_10, eqd2_2", SCHEMES)
def test_reference_fractionation_table(total, n, bed10, eqd2_10, eqd2_2):
    assert bed(total, n, 10.0) == pytest.approx(bed10, abs=0.05)
    assert eqd2(total, n, 10.0) == pytest.approx(eqd2_10, abs=0.05)
    assert eqd2(total, n, 2.0) == pytest.approx(eqd2_2, abs=0.05)


def test_hytec_limits_are_one_iso_effect_line():
    """HyTEC 12.4/1, 17.0/2, 20.3/3, 23.0/4, 25.3/5 Gy all lie near EQD2 44.6 Gy (alpha/beta 2)."""
    for total, n in ((12.4, 1), (17.0, 2), (20.3, 3), (23.0, 4), (25.3, 5)):
        assert eqd2(total, n, 2.0) == pytest.approx(44.6, abs=0.8)


def test_inverse_and_arrays(rng):
    doses = rng.uniform(0, 30, 20)
    assert np.allclose(eqd2(doses, 3, 2.0), [eqd2(d, 3, 2.0) for d in doses])
    for n in (1, 2, 5):
        target = rng.uniform(10, 60)
        assert eqd2(n * dose_per_fraction_for_eqd2(target, n, 2.0), n, 2.0) == pytest.approx(target)


def test_reirradiation_worked_example():
    """Reference: prior 30 Gy/10 -> SBRT budget 25 Gy2/2 -> Pmax 9.0/1, 12.3/2, 14.6/3, 17.9/5 Gy."""
    for n, pmax in ((1, 9.0), (2, 12.3), (3, 14.6), (5, 17.9)):
        budget = reirradiation_budget(30.0, 10, 9.0, n)
        assert budget["sbrt_eqd2_gy"] == pytest.approx(25.0)
        assert budget["pmax_gy"] == pytest.approx(pmax, abs=0.05)
        assert budget["warning"] is None
    assert "interval" in reirradiation_budget(30.0, 10, 3.0, 2)["warning"]


def test_lkb_ntcp_behaves():
    volumes = np.full(20, 0.05)
    low = lkb_ntcp(np.full(20, 10.0), volumes, 1)["ntcp"]
    high = lkb_ntcp(np.full(20, 20.0), volumes, 1)["ntcp"]
    assert 0 <= low < high <= 1
    # Uniform dose: gEUD equals it (in EQD2).
    assert lkb_ntcp(np.full(20, 10.0), volumes, 5)["geud_gy"] == pytest.approx(eqd2(10.0, 5, 2.0))


def test_myelopathy_band_at_the_hytec_line():
    assert myelopathy_band(17.0, 2)["band"] == "<= 5%"
    assert myelopathy_band(22.0, 2)["band"] == "> 5%"
    assert myelopathy_band(16.0, 1)["warning"]


@pytest.mark.parametrize("args", [(-1, 1, 2.0), (10, 0, 2.0), (10, 1, 0.0)])
def test_bad_inputs(args):
    with pytest.raises(ValueError):
        bed(*args)
