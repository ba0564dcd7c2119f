"""Dose slices, the cord-tumour close-up, DVHs and the charts: asserted on their content.

The charts are drawn and their texts measured: no two labels overlap, labels stay inside
their axes, and no strategy id (with its underscores) is printed.

Golden image: see tests/planner/test_viz.py's docstring for how to regenerate.
"""

import numpy as np
import pytest

from planner.clinical.menu import standard_strategies
from planner.pictures import charts
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


def drawn_texts(figure):
    """(text, display box) of the figure's visible texts: annotations and texts in every axes, titles,
    axis labels, legend entries and titles, figure texts (tick labels aside), after a draw."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    texts = list(figure.texts)
    legends = list(figure.legends)
    for axis in figure.axes:
        texts += [*axis.texts, axis.title, axis._left_title, axis._right_title, axis.xaxis.label, axis.yaxis.label]
        legends += [axis.get_legend()] if axis.get_legend() else []
    for legend in legends:
        texts += [*legend.texts, legend.get_title()]
    return [(t, t.get_window_extent(renderer)) for t in texts if t.get_visible() and t.get_text().strip()]


def overlaps(boxes):
    """Pairs of texts whose boxes share an area."""
    pairs = []
    for n, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[n + 1:]:
            width = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
            height = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
            if width > 0 and height > 0:
                pairs.append((a.get_text(), b.get_text()))
    return pairs


def assert_readable(figure):
    """No two texts overlap, texts in an axes stay inside it, legends stay in the figure, no id printed."""
    from matplotlib.text import Text

    boxes = drawn_texts(figure)
    assert overlaps(boxes) == []
    renderer = figure.canvas.get_renderer()
    for axis in figure.axes:
        frame = axis.get_window_extent(renderer)
        for text in axis.texts:
            box = text.get_window_extent(renderer)
            assert frame.x0 - 1 <= box.x0 and box.x1 <= frame.x1 + 1 and frame.y0 - 1 <= box.y0 and box.y1 <= frame.y1 + 1, \
                text.get_text()
    for legend in figure.legends + [a.get_legend() for a in figure.axes if a.get_legend()]:
        box = legend.get_window_extent(renderer)
        assert box.x0 >= 0 and box.x1 <= figure.bbox.width and box.y0 >= 0 and box.y1 <= figure.bbox.height
        for axis in figure.axes:  # a legend never covers a label
            assert overlaps([(legend.get_title(), box)] + [(t, t.get_window_extent(renderer)) for t in axis.texts]) == []
    assert [t.get_text() for t in figure.findobj(Text) if "_" in t.get_text()] == []


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


@pytest.mark.parametrize("half_width_mm", [20.0, 400.0])
def test_each_panel_shows_the_grid_and_nothing_beyond_it(half_width_mm):
    """The window around the point is cut to the grid: no empty band where the phantom ends
    before the window does (the T10 column is 92.5 mm long against a 90 mm window)."""
    scene, dose = coarse_scene(), synthetic_dose()
    figure = figures.render_dose_slices(scene, dose, prescription_gy=PRESCRIPTION_GY, half_width_mm=half_width_mm)
    for axis in (a for a in figure.axes if (a.get_gid() or "").startswith("panel:")):
        left, right, bottom, top = axis.images[0].get_extent()
        for (low, high), (edge_low, edge_high) in ((sorted(axis.get_xlim()), sorted((left, right))),
                                                   (sorted(axis.get_ylim()), sorted((bottom, top)))):
            assert edge_low - 1e-9 <= low < high <= edge_high + 1e-9, (axis.get_gid(), low, high, edge_low, edge_high)
            assert high - low <= 2 * half_width_mm + 1e-9


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


def test_dvh_names_every_limit_apart_and_shows_limits_beyond_the_dose():
    scene, dose = coarse_scene(), synthetic_dose()
    curves = figures.dvh_curves(dose, scene)
    peak = float(dose.max())
    constraints = [ConstraintResult("spinal_cord", "Dmax", 15.5, 17.0, 1.5, "pass", "test", "source"),
                   ConstraintResult("thecal_sac", "Dmax", 17.0, 17.0, 0.0, "within 5%", "test", "source"),
                   ConstraintResult("spinal_cord", "D0.35cc", 10.0, 2 * peak, 2 * peak - 10.0, "pass", "test", "source")]
    figure = figures.plot_dvh(curves, constraints=constraints, prescription_gy=PRESCRIPTION_GY)
    absolute = next(axis for axis in figure.axes if axis.get_gid() == "dvh:cc")
    assert absolute.get_xlim()[1] > 2 * peak  # the far limit is on the plot
    names = [t.get_text() for t in absolute.texts if t.get_gid() == "limit_label"]
    assert sorted(names) == sorted(["spinal cord Dmax 17.0 Gy", "thecal sac Dmax 17.0 Gy", f"spinal cord D0.35cc {2 * peak:.1f} Gy"])
    assert_readable(figure)
    assert texts_on_curves(figure, {f"dvh_cc:{name}" for name in curves}) == []  # the names hide no curve


# -- charts -----------------------------------------------------------------------------------
#: The demo's scorecard (T10 RCC, ESCC 2): strategy key -> (local control, walking, myelopathy, complications) %.
DEMO_OUTCOMES = {
    "separation_sbrt_27gy_3fx": (95.9, 94.1, 0.222, 19.0), "sbrt_24gy_2fx": (77.4, 74.3, 5.035, 0.0),
    "augmentation_sbrt_24gy_2fx": (77.4, 74.3, 5.035, 0.0), "cebrt_8gy_1fx": (62.0, 74.3, 0.0076, 0.0),
    "cebrt_20gy_5fx": (62.0, 74.3, 0.185, 0.0), "decompression_cebrt_30gy_10fx": (62.0, 94.1, 0.116, 19.0),
    "stabilisation_sbrt_24gy_2fx": (77.4, 74.3, 5.035, 19.0), "best_supportive_care": (0.0, None, 0.0, 0.0),
}


def demo_rows():
    """Scorecard-like rows of the demo's strategies: several share their coordinates exactly."""
    menu = standard_strategies("t10_rcc_escc2")
    return [dict(key=s.key, strategy=s.label, local_control=lc, walking=walk, myelopathy=risk, complications=harm)
            for s in menu if s.key in DEMO_OUTCOMES for lc, walk, risk, harm in [DEMO_OUTCOMES[s.key]]]


def test_short_labels_are_short_distinct_and_no_ids():
    menu = standard_strategies("t10_rcc_escc2")
    short = {s.key: charts.short_label(s.label) for s in menu}
    assert short["stabilisation_sbrt_24gy_2fx"] == "Stabilisation + SBRT 24 Gy/2"
    assert short["separation_sbrt_27gy_3fx"] == "Separation + SBRT 27 Gy/3"
    assert short["sbrt_24gy_2fx"] == "SBRT 24 Gy/2"
    assert len(set(short.values())) == len(short)
    assert all("_" not in name and len(name) <= 32 for name in short.values())
    assert charts.short_label("sbrt_24gy_2fx") == "sbrt 24gy 2fx"  # an id given as label loses its underscores


@pytest.mark.parametrize("x_key, y_key", [("local_control", "myelopathy"), ("walking", "complications")])
def test_tradeoff_of_the_demo_numbers_coinciding_points_and_nothing_overlaps(x_key, y_key):
    rows = [r for r in demo_rows() if r[x_key] is not None]
    figure = charts.plot_tradeoff(rows, x_key=x_key, y_key=y_key, label_key="strategy", x_label="x (%)", y_label="y (%)")
    assert figure.numbered  # SBRT 24/2, augmentation + SBRT 24/2 and stabilisation + SBRT 24/2 coincide
    assert_readable(figure)
    axis = figure.axes[0]
    numbers = [int(n) for t in axis.texts for n in t.get_text().split(", ")]
    assert sorted(numbers) == list(range(1, len(rows) + 1))
    key = [t.get_text() for t in axis.get_legend().texts]
    assert f"{[r['key'] for r in rows].index('stabilisation_sbrt_24gy_2fx') + 1}  Stabilisation + SBRT 24 Gy/2" in key
    assert f"{[r['key'] for r in rows].index('sbrt_24gy_2fx') + 1}  SBRT 24 Gy/2" in key


def test_tradeoff_names_points_beside_them_when_they_fit():
    rows = [dict(strategy=s.label, x=x, y=y) for s, (x, y) in
            zip(standard_strategies("t10_rcc_escc2")[:4], [(10, 1), (40, 4), (70, 2), (95, 0.5)])]
    figure = charts.plot_tradeoff(rows, x_key="x", y_key="y", label_key="strategy", x_label="x", y_label="y")
    assert not figure.numbered
    assert sorted(t.get_text() for t in figure.axes[0].texts) == sorted(charts.short_label(r["strategy"]) for r in rows)
    assert_readable(figure)


def test_tradeoff_marks_the_pareto_front():
    rows = [dict(name="A", control=0.9, risk=0.02), dict(name="B", control=0.8, risk=0.01),
            dict(name="C", control=0.7, risk=0.03), dict(name="D", control=0.6, risk=0.005)]
    figure = charts.plot_tradeoff(rows, x_key="control", y_key="risk", label_key="name", x_label="1-year local control",
                                  y_label="myelopathy risk")
    axis = figure.axes[0]
    front = {c.get_gid(): c.get_offsets() for c in axis.collections}
    assert sorted(map(tuple, front["pareto"])) == [(0.6, 0.005), (0.8, 0.01), (0.9, 0.02)]
    assert [tuple(p) for p in front["dominated"]] == [(0.7, 0.03)]
    flagged = charts.plot_tradeoff(rows, x_key="control", y_key="risk", label_key="name", pareto_key="name",
                                   x_label="x", y_label="y")
    assert len(flagged.axes[0].collections[1].get_offsets()) == 4
    assert has_disclaimer(figure)
    assert_readable(figure)


@pytest.mark.parametrize("achievable", [(18.0, 21.0, 25.0, 27.0), (16.2, 18.7, 20.1, 24.3)])
def test_gap_curve_finds_the_gap_that_reaches_the_prescription(achievable):
    figure = charts.plot_gap_curve([0, 1, 2, 3], achievable, prescription_gy=24.0)
    assert figure.gap_needed_mm == pytest.approx({27.0: 1.75, 24.3: 2 + 3.9 / 4.2}[achievable[-1]])
    assert has_disclaimer(figure)
    assert_readable(figure)
    assert np.isnan(charts.plot_gap_curve([0, 1], [10.0, 12.0], prescription_gy=24.0).gap_needed_mm)


def timeline_rows(*points):
    return [dict(weeks=w, escc_grade=g, ambulatory_probability=p, sins=s, recommendation=r, sbrt_alone_ok=ok)
            for w, g, p, s, r, ok in points]


SEPARATION = "Separation surgery + stabilisation, then SBRT"
#: The demo's timeline (T10 RCC): the window is shut from the start, walking is lost at week 8.
DEMO_TIMELINE = timeline_rows((0, "2", 0.743, 8, SEPARATION, False), (4, "2", 0.743, 8, SEPARATION, False),
                              (8, "3", 0.1875, 8, SEPARATION, False), (12, "3", 0.1875, 8, SEPARATION, False))
CHANGING = timeline_rows((0, "1b", 0.95, 8, "SBRT alone", True), (4, "1c", 0.9, 8, "SBRT alone", True),
                         (8, "2", 0.7, 9, "surgery + SBRT", False), (12, "3", 0.4, 13, "surgery", False))
#: Weekly changes of long recommendations, the window and walking lost in adjacent weeks.
CROWDED = timeline_rows((0, "1b", 0.95, 8, "SBRT alone", True), (1, "1c", 0.6, 8, SEPARATION, False),
                        (2, "2", 0.4, 9, "Decompression + titanium screws, then cEBRT 30 Gy/10", False),
                        (3, "3", 0.4, 13, "Best supportive care", False), (12, "3", 0.3, 13, "Best supportive care", False))


def texts_on_curves(figure, gids):
    """(text, curve gid) where a text of an axes covers a point of a drawn curve (every 2 px along it)."""
    from matplotlib.cbook import STEP_LOOKUP_MAP

    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    boxes = [(t, t.get_window_extent(renderer)) for axis in figure.axes for t in axis.texts if t.get_text().strip()]
    hits = []
    for line in (line for axis in figure.axes for line in axis.lines if line.get_gid() in gids):
        x, y = STEP_LOOKUP_MAP[line.get_drawstyle()](*(np.asarray(v, float) for v in line.get_data()))
        pixels = line.get_transform().transform(np.column_stack([x, y]))
        for a, b in zip(pixels[:-1], pixels[1:]):
            if not np.all(np.isfinite([a, b])):
                continue
            for px, py in a + np.linspace(0, 1, int(np.hypot(*(b - a)) / 2) + 2)[:, None] * (b - a):
                hits += [(t.get_text(), line.get_gid()) for t, box in boxes
                         if box.x0 < px < box.x1 and box.y0 < py < box.y1 and (t.get_text(), line.get_gid()) not in hits]
    return hits


def timeline_axes(figure):
    return {axis.get_gid(): axis for axis in figure.axes if axis.get_gid()}


def test_timeline_marks_the_window_and_walking():
    figure = charts.plot_timeline(CHANGING)
    assert figure.window_closes_weeks == 8 and figure.walking_lost_weeks == 12
    axes = timeline_axes(figure)
    top = axes["timeline:walking"]
    lines = {line.get_gid(): line for line in top.lines if line.get_gid()}
    assert lines["window_closes"].get_xdata()[0] == 8 and lines["walking_lost"].get_xdata()[0] == 12
    strip = axes["timeline:recommendation"]
    assert [t.get_text() for t in strip.texts if t.get_gid() == "recommendation"] == ["SBRT alone", "surgery + SBRT", "surgery"]
    assert has_disclaimer(figure)


@pytest.mark.parametrize("rows", [DEMO_TIMELINE, CHANGING, CROWDED], ids=["demo", "changing", "crowded"])
def test_timeline_texts_never_overlap(rows):
    figure = charts.plot_timeline(rows, title="Delay timeline: T10 renal cell carcinoma, ESCC 2, mild myelopathy")
    assert_readable(figure)
    assert texts_on_curves(figure, {"walking", "escc", "sins"}) == []
    legend_text = " ".join(t.get_text() for legend in figure.legends for t in legend.texts)
    for week, name in ((figure.window_closes_weeks, "SBRT-alone window closes"), (figure.walking_lost_weeks, "walking likely lost")):
        if np.isfinite(week):
            assert f"{name} (week {week:g})" in legend_text
    strip = timeline_axes(figure)["timeline:recommendation"]
    shown = [t.get_text() for t in strip.texts]
    changes = [r["recommendation"] for n, r in enumerate(rows) if n == 0 or r["recommendation"] != rows[n - 1]["recommendation"]]
    assert shown == changes or (shown == [str(n) for n in range(1, len(changes) + 1)]
                                and all(change.split()[0] in legend_text for change in changes))
