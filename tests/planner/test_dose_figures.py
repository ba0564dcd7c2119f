"""Dose slices, the cord-tumour close-up, DVHs and trade-off charts: asserted on their content.

Golden image: see tests/planner/test_viz.py's docstring for how to regenerate.
"""

import numpy as np
import pytest

from planner.pictures import dose_figures as figures
from planner.radiotherapy.constraints import Constraint, ConstraintResult
from planner.common.safety import DISCLAIMER
from planner.pictures.figures import isodose_colour
from scenes.surgery import separation_surgery
from tests.planner.test_viz import PRESCRIPTION_GY, coarse_scene, compare_golden, synthetic_dose, synthetic_dose_for


def pixels(figure, dpi=60):
    figure.set_dpi(dpi)
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()


def pixel_at(figure, axis, x_mm, y_mm, image):
    column, row = axis.transData.transform((x_mm, y_mm))
    return image[int(round(image.shape[0] - row)), int(round(column))].astype(int)


def has_disclaimer(figure):
    return any(text.get_text() == DISCLAIMER for text in figure.texts)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def test_dose_slices_have_three_planes_isodoses_contours_and_a_wash():
    scene, dose = coarse_scene(), synthetic_dose()
    figure = figures.render_dose_slices(scene, dose, prescription_gy=PRESCRIPTION_GY)
    panels = {axis.get_gid(): axis for axis in figure.axes if axis.get_gid()}
    assert set(panels) == {"panel:axial", "panel:sagittal", "panel:coronal"}
    axial = panels["panel:axial"]
    gids = {artist.get_gid() for artist in axial.collections}
    assert {"isodose:100", "isodose:50", "isodose:30", "structure:gtv", "structure:spinal_cord",
            "structure:thecal_sac"} <= gids
    assert has_disclaimer(figure)
    # Colour wash: a high-dose pixel in the GTV differs from a low-dose pixel (still washed).
    point = figures.interface_point_mm(scene)
    k = scene.grid.nearest_index(point)[0]
    z, y, x = scene.grid.axes_mm()
    section = dose[k]
    view = (np.abs(x)[None, :] < 40) & (np.abs(y - point[1])[:, None] < 40)
    hot = np.argwhere((section > 1.0 * PRESCRIPTION_GY) & view)[0]
    cool = np.argwhere((section > 0.35 * PRESCRIPTION_GY) & (section < 0.45 * PRESCRIPTION_GY) & view)[0]
    image = pixels(figure)
    hot_rgb = pixel_at(figure, axial, x[hot[1]], y[hot[0]], image)
    cool_rgb = pixel_at(figure, axial, x[cool[1]], y[cool[0]], image)
    assert np.abs(hot_rgb - cool_rgb).sum() > 60
    assert hot_rgb[0] > hot_rgb[2]  # warm where the dose is high


def test_isodose_colours_run_cool_to_warm():
    warm = [isodose_colour(p) for p in (30, 50, 80, 100, 110)]
    assert warm[0][2] > warm[0][0] and warm[3][0] > warm[3][2]


def test_closeup_shows_the_gap_and_a_millimetre_scale():
    scene = coarse_scene()
    touching = figures.render_interface_closeup(scene, synthetic_dose(), prescription_gy=PRESCRIPTION_GY)
    assert touching.gap_mm == 0.0
    assert has_disclaimer(touching)
    operated = separation_surgery(scene, 2.0)
    figure = figures.render_interface_closeup(operated, synthetic_dose_for(operated, PRESCRIPTION_GY),
                                              prescription_gy=PRESCRIPTION_GY)
    assert figure.gap_mm >= 2.0
    axis = figure.axes[0]
    lines = {line.get_gid(): line for line in axis.lines if line.get_gid()}
    bar = lines["scale_bar"].get_xydata()
    assert bar[1, 0] - bar[0, 0] == pytest.approx(5.0)
    gap = lines["gap"].get_xydata()
    assert np.hypot(*(gap[1] - gap[0])) == pytest.approx(figure.gap_mm, abs=1e-6)
    # 1 mm is at least 10 pixels at 110 dpi: a 2 mm gap is visible.
    (left, _), (right, _) = axis.transData.transform([(0.0, 0.0), (1.0, 0.0)]) * 110 / figure.dpi
    assert right - left > 10


def test_golden_closeup():
    scene = coarse_scene()
    figure = figures.render_interface_closeup(scene, synthetic_dose(), prescription_gy=PRESCRIPTION_GY)
    compare_golden(pixels(figure, dpi=50), "t10_closeup.png", mean_tolerance=4.0, pixel_tolerance=0.03)


def test_dvh_markers_sit_at_the_limits():
    scene, dose = coarse_scene(), synthetic_dose()
    curves = figures.dvh_curves(dose, scene)
    constraints = [Constraint("spinal_cord", "Dmax", 14.0, "test", "source"),
                   Constraint("spinal_cord", "D0.35cc", 10.0, "test", "source"),
                   ConstraintResult("thecal_sac", "Dmax", 30.0, 17.0, -13.0, "fail", "test", "source"),
                   Constraint("spinal_cord", "D10%_partial", 10.0, "test", "source")]
    figure = figures.plot_dvh(curves, constraints=constraints, prescription_gy=PRESCRIPTION_GY)
    panels = {axis.get_gid(): axis for axis in figure.axes}
    absolute, relative = panels["dvh:cc"], panels["dvh:percent"]
    markers = {line.get_gid(): line for line in absolute.lines if (line.get_gid() or "").startswith("limit:")}
    assert set(markers) == {"limit:spinal_cord:Dmax", "limit:spinal_cord:D0.35cc", "limit:thecal_sac:Dmax"}
    assert tuple(markers["limit:spinal_cord:Dmax"].get_xydata()[0]) == pytest.approx((14.0, 0.035))
    assert tuple(markers["limit:spinal_cord:D0.35cc"].get_xydata()[0]) == pytest.approx((10.0, 0.35))
    assert markers["limit:thecal_sac:Dmax"].get_color() == figures.STATUS_COLOURS["fail"]
    cord_total = curves["spinal_cord"].total_cc
    percent = {line.get_gid(): line for line in relative.lines if (line.get_gid() or "").startswith("limit:")}
    assert percent["limit:spinal_cord:D0.35cc"].get_xydata()[0, 1] == pytest.approx(100 * 0.35 / cord_total)
    # The synthetic dose spares the cord: its status is measured on the curve.
    from planner.radiotherapy.metrics import metric

    value = metric(curves["spinal_cord"], "Dmax")
    expected = "pass" if value <= 0.95 * 14.0 else ("within 5%" if value <= 14.0 else "fail")
    assert markers["limit:spinal_cord:Dmax"].get_color() == figures.STATUS_COLOURS[expected]
    assert any("D10%_partial" in text.get_text() for text in figure.texts)
    assert {f"dvh:{name}" for name in curves} <= {line.get_gid() for line in relative.lines}
    assert has_disclaimer(figure)


def test_tradeoff_marks_the_pareto_front():
    rows = [dict(name="A", control=0.9, risk=0.02), dict(name="B", control=0.8, risk=0.01),
            dict(name="C", control=0.7, risk=0.03), dict(name="D", control=0.6, risk=0.005)]
    figure = figures.plot_tradeoff(rows, x_key="control", y_key="risk", label_key="name", x_label="1-year local control",
                                   y_label="myelopathy risk")
    axis = figure.axes[0]
    front = {c.get_gid(): c.get_offsets() for c in axis.collections}
    assert sorted(map(tuple, front["pareto"])) == [(0.6, 0.005), (0.8, 0.01), (0.9, 0.02)]
    assert [tuple(p) for p in front["dominated"]] == [(0.7, 0.03)]
    flagged = figures.plot_tradeoff(rows, x_key="control", y_key="risk", label_key="name", pareto_key="name",
                                    x_label="x", y_label="y")
    assert len(flagged.axes[0].collections[1].get_offsets()) == 4
    assert has_disclaimer(figure)


def test_gap_curve_finds_the_gap_that_reaches_the_prescription():
    figure = figures.plot_gap_curve([0, 1, 2, 3], [18.0, 21.0, 25.0, 27.0], prescription_gy=24.0)
    assert figure.gap_needed_mm == pytest.approx(1.75)
    assert has_disclaimer(figure)
    assert np.isnan(figures.plot_gap_curve([0, 1], [10.0, 12.0], prescription_gy=24.0).gap_needed_mm)


def test_timeline_marks_the_window_and_walking():
    rows = [dict(weeks=w, escc_grade=g, ambulatory_probability=p, sins=s, recommendation=r, sbrt_alone_ok=ok)
            for w, g, p, s, r, ok in [(0, "1b", 0.95, 8, "SBRT alone", True), (4, "1c", 0.9, 8, "SBRT alone", True),
                                      (8, "2", 0.7, 9, "surgery + SBRT", False), (12, "3", 0.4, 13, "surgery", False)]]
    figure = figures.plot_timeline(rows)
    assert figure.window_closes_weeks == 8 and figure.walking_lost_weeks == 12
    top = figure.axes[0]
    lines = {line.get_gid(): line for line in top.lines if line.get_gid()}
    assert lines["window_closes"].get_xdata()[0] == 8 and lines["walking_lost"].get_xdata()[0] == 12
    assert sum(1 for text in top.texts if text.get_gid() == "recommendation") == 3
    assert has_disclaimer(figure)
