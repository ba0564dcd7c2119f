import numpy as np
import pytest

from planner.radiotherapy.beams import beam_frame, make_beams, posterior_fan_angles


@pytest.mark.parametrize("gantry, axis", [(0, (0, 1, 0)), (90, (0, 0, -1)), (180, (0, -1, 0)), (270, (0, 0, 1))])
def test_iec_61217_directions(gantry, axis):
    """Head-first supine: G0 from anterior (beam towards +y, posterior), G90 from the patient's left."""
    a, u, v = beam_frame(gantry)
    assert np.allclose(a, axis, atol=1e-12)
    assert np.allclose([a @ u, a @ v, u @ v], 0, atol=1e-12)


def test_posterior_fan():
    angles = posterior_fan_angles(9, spread_deg=160)
    assert len(angles) == 9 and 180.0 in angles
    assert min(angles) == pytest.approx(100.0) and max(angles) == pytest.approx(260.0)


def test_beamlets_cover_the_projection(rng):
    centre = rng.uniform(-20, 20, 3)
    points = centre + rng.uniform(-15, 15, (200, 3))
    beams = make_beams(points, gantry_deg=[0, 90, 200], beamlet_mm=5.0, margin_mm=0.0)
    for beam in beams.beams:
        axis, u, v = beam.frame
        rel = points - beam.source_mm
        scale = beam.source_axis_distance_mm / (rel @ axis)
        a, b = rel @ u * scale, rel @ v * scale
        # Every projected point lies inside some beamlet.
        covered = np.any((np.abs(a[:, None] - beam.beamlet_uv_mm[None, :, 0]) <= 2.5)
                         & (np.abs(b[:, None] - beam.beamlet_uv_mm[None, :, 1]) <= 2.5), axis=1)
        assert covered.all()
        grid, origin = beam.beamlet_grid()
        assert (grid >= 0).sum() == beam.n_beamlets


def test_bad_inputs():
    with pytest.raises(ValueError, match="beamlet_mm"):
        make_beams(np.zeros((3, 3)), gantry_deg=[0], beamlet_mm=3.0)
    with pytest.raises(ValueError, match="target_points_mm"):
        make_beams(np.zeros((0, 3)), gantry_deg=[0])


def test_named_arrangements():
    from planner.radiotherapy.beams import arrangement_angles

    assert arrangement_angles("pa") == [180.0] and arrangement_angles("ap_pa") == [0.0, 180.0]
    fan = arrangement_angles("sbrt_fan", n_beams=7)
    assert len(fan) == 7 and all(90 <= a <= 270 for a in fan)
    arc = arrangement_angles("arc", arc_step_deg=5.0)
    assert len(arc) == 33 and np.allclose(np.diff(arc), 5.0) and 180.0 in arc
    for name, kwargs, message in (("sbrt_fan", {"n_beams": 5}, "7-13"), ("arc", {"arc_step_deg": 2}, "5-10"),
                                  ("lateral", {}, "unknown arrangement")):
        with pytest.raises(ValueError, match=message):
            arrangement_angles(name, **kwargs)


def test_conventional_ap_pa_plan_with_2_5_mm_beamlets():
    from planner.radiotherapy.plan import Regimen, plan_case

    result = plan_case("t5_breast_escc2", regimen=Regimen(20.0, 5), protocol="quantec", arrangement="ap_pa",
                       beamlet_mm=2.5, engine="pencil")
    assert result.metrics["ptv"]["D90%"] == pytest.approx(20.0 * result.coverage_achieved)
    cord = next(r for r in result.constraints if r.structure == "spinal_cord")
    assert cord.status in ("pass", "within 5%") and cord.value_gy <= cord.limit_gy + 1e-6
