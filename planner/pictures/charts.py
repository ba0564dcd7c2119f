"""Charts a resident reads at a glance: strategy trade-offs, the gap curve and the delay timeline.

No two labels overlap. Labels are placed by :func:`place_texts`: after a draw, each text is
tried at a short list of candidate positions and kept at the first where its box, measured
in display pixels, meets no box placed before it (nor the markers) and stays inside its
axes. Where that fails, the chart falls back: the trade-off numbers its points (points that
coincide share one label, '1, 2') and lists the numbers beside the plot; the timeline
numbers its recommendations. Strategies are named by :func:`short_label`, never by their
ids. Every chart carries the not-for-clinical-use line.
"""

from __future__ import annotations

import re
import textwrap

import numpy as np

from planner.common.safety import DISCLAIMER

from .figures import _pyplot

__all__ = ["plot_tradeoff", "plot_gap_curve", "plot_timeline", "short_label", "place_texts", "marker_boxes",
           "line_boxes"]

#: Words a short label drops from the surgical part when a radiotherapy follows.
_SURGICAL_FILLER = {"surgery", "posterior", "cement"}
#: Offsets (points) and alignments tried for a point's label, in order.
_OFFSETS = (((8, 6), "left", "bottom"), ((8, -6), "left", "top"), ((-8, 6), "right", "bottom"),
            ((-8, -6), "right", "top"), ((0, 10), "center", "bottom"), ((0, -10), "center", "top"),
            ((12, 0), "left", "center"), ((-12, 0), "right", "center"))
_READABLE = dict(boxstyle="round,pad=0.15", facecolor="white", alpha=0.9, linewidth=0)


def disclaim(figure):
    figure.text(0.5, 0.005, DISCLAIMER, ha="center", va="bottom", fontsize=8, color="dimgray")


def short_label(label) -> str:
    """A strategy's short human name for a chart, from its label (an id's underscores become spaces).

    Parentheses go; 'A + B, then RT' keeps the first procedure's main word and the course.

    Parameters
    ----------
    label : str
        The strategy's label (or key); anything is turned into text first.

    Returns
    -------
    str
        'Procedure + course', 'Procedure alone' (', no RT'), or the label without its
        parentheses when it names no procedure-then-course sequence.

    Examples
    --------
    >>> short_label("Separation surgery (2 mm) + CF-PEEK screws, then SBRT 27 Gy/3")
    'Separation + SBRT 27 Gy/3'
    >>> short_label("Posterior stabilisation (CF-PEEK), then SBRT 24 Gy/2")
    'Stabilisation + SBRT 24 Gy/2'
    >>> short_label("Separation surgery (2 mm) + CF-PEEK screws, no RT")
    'Separation surgery alone'
    >>> short_label("Best supportive care (steroids, analgesia)")
    'Best supportive care'
    """
    text = " ".join(re.sub(r"\s*\([^)]*\)", "", str(label)).replace("_", " ").split())
    surgery, then, course = text.partition(", then ")
    if not then:
        surgery, alone, _ = text.partition(", no RT")
        if not alone:
            return text
    first = surgery.split(" + ")[0].split()
    if then:
        first = [w for w in first if w.lower() not in _SURGICAL_FILLER] or first
    name = " ".join(first)
    name = name[:1].upper() + name[1:]
    return f"{name} + {course}" if then else f"{name} alone"


def _set(text, properties: dict):
    for key, value in properties.items():
        if key in ("xy", "xyann"):
            setattr(text, key, value)
        else:
            getattr(text, f"set_{key}")(value)


def _inside(box, bounds, tolerance=0.5) -> bool:
    return (box.x0 >= bounds.x0 - tolerance and box.x1 <= bounds.x1 + tolerance
            and box.y0 >= bounds.y0 - tolerance and box.y1 <= bounds.y1 + tolerance)


def place_texts(figure, texts, candidates, *, bounds=None, obstacles=(), pad_px: float = 2.0) -> list[int]:
    """Move each text, in order, to its first candidate position where it overlaps nothing placed.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        Drawn once here, so that limits and transforms are final before measuring.
    texts : sequence of Text or Annotation
        The texts to place, in order of priority.
    candidates : sequence (one per text) of sequences of dicts
        Properties to try: ``xy``, ``xyann`` (an annotation's offset) or any ``set_<name>``.
    bounds : Bbox or sequence of Bbox (one per text), optional
        Display box a text must lie in (e.g. its axes' ``get_window_extent()``).
    obstacles : sequence of Bbox
        Display boxes no text may meet (markers, legends).
    pad_px : float
        Clearance kept around each text.

    Returns
    -------
    list of int
        Indices of the texts that found no place (left at their first candidate).
    """
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    placed, failed = list(obstacles), []
    for n, (text, options) in enumerate(zip(texts, candidates)):
        limit = bounds[n] if isinstance(bounds, (list, tuple)) else bounds
        for properties in options:
            _set(text, properties)
            box = text.get_window_extent(renderer).padded(pad_px)
            if (limit is None or _inside(box, limit)) and not any(box.overlaps(other) for other in placed):
                placed.append(box)
                break
        else:
            failed.append(n)
            _set(text, options[0])
    return failed


def _pareto(rows, x_key, y_key) -> list[bool]:
    """Pareto-optimal rows for 'x higher is better, y lower is better'."""
    points = [(float(r[x_key]), float(r[y_key])) for r in rows]
    return [not any((x2 >= x and y2 <= y) and (x2 > x or y2 < y) for x2, y2 in points) for x, y in points]


def marker_boxes(axis, x, y, radius_pt):
    """Display boxes of markers, for labels to keep off them (obstacles of :func:`place_texts`).

    Parameters
    ----------
    axis : matplotlib.axes.Axes
        The axes the markers are drawn in (its limits final).
    x, y : array_like of float
        The markers' data coordinates.
    radius_pt : float or array_like of float
        Marker radius in points, one for all or one per marker.

    Returns
    -------
    list of matplotlib.transforms.Bbox
        One square box (display pixels) per marker.
    """
    from matplotlib.transforms import Bbox

    radii = np.broadcast_to(np.asarray(radius_pt, float) * axis.figure.dpi / 72.0, np.shape(x))
    return [Bbox.from_extents(px - r, py - r, px + r, py + r)
            for (px, py), r in zip(axis.transData.transform(np.column_stack([x, y])), radii)]


def line_boxes(axis, x, y, step_px: float = 4.0, half_px: float = 1.5):
    """Small display boxes along a polyline, for labels to keep off it (obstacles of :func:`place_texts`).

    Parameters
    ----------
    axis : matplotlib.axes.Axes
        The axes the line is drawn in (its limits final).
    x, y : array_like of float
        The line's data coordinates; a non-finite point breaks the line.
    step_px : float
        Distance between boxes along the line, in display pixels.
    half_px : float
        Half-width of each box, in display pixels.

    Returns
    -------
    list of matplotlib.transforms.Bbox
        The boxes, in display pixels.
    """
    from matplotlib.transforms import Bbox

    pixels = axis.transData.transform(np.column_stack([np.asarray(x, float), np.asarray(y, float)]))
    finite = np.all(np.isfinite(pixels), axis=1)
    boxes = []
    for run in np.split(np.arange(len(pixels)), np.nonzero(np.diff(finite.astype(int)))[0] + 1):
        points = pixels[run]
        if not finite[run[0]] or len(points) == 0:
            continue
        length = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(points, axis=0).T))])
        samples = np.append(np.arange(0.0, length[-1], step_px), length[-1])
        for px, py in zip(np.interp(samples, length, points[:, 0]), np.interp(samples, length, points[:, 1])):
            boxes.append(Bbox.from_extents(px - half_px, py - half_px, px + half_px, py + half_px))
    return boxes


def _number_points(figure, axis, x, y, markers) -> list[list[int]]:
    """Numbered labels ('1', '1, 2' where points coincide) placed without overlap; returns the groups."""
    pixels = axis.transData.transform(np.column_stack([x, y]))
    groups = []
    for i, p in enumerate(pixels):  # points within a marker's width of a group share its label
        near = next((g for g in groups if np.hypot(*(pixels[g[0]] - p)) < 16.0), None)
        near.append(i) if near is not None else groups.append([i])
    candidates = [dict(xyann=xy, ha=ha, va=va) for xy, ha, va in _OFFSETS]
    while True:
        labels = [axis.annotate(", ".join(str(i + 1) for i in g), (x[g[0]], y[g[0]]), xytext=(7, 5),
                                textcoords="offset points", fontsize=8, fontweight="bold", gid="label",
                                bbox=_READABLE) for g in groups]
        failed = place_texts(figure, labels, [candidates] * len(labels), bounds=axis.get_window_extent(),
                             obstacles=markers)
        if not failed or len(groups) == 1:
            return groups
        for label in labels:
            label.remove()
        lost = groups.pop(failed[0])  # join the nearest group and try again
        nearest = min(groups, key=lambda g: np.hypot(*(pixels[g[0]] - pixels[lost[0]])))
        nearest.extend(lost)
        nearest.sort()


def plot_tradeoff(rows, *, x_key: str, y_key: str, label_key: str, pareto_key: str | None = None,
                  x_label: str, y_label: str, title: str | None = None):
    """Strategies as labelled points on two outcomes (e.g. 1-year local control vs myelopathy risk).

    ``rows`` are dicts; ``label_key`` names their label (shortened by :func:`short_label`).
    Pareto points are marked (stars joined by a line): those whose ``pareto_key`` is true, or
    with no key those no other row beats on both axes, where a higher x and a lower y are
    better. Each point is labelled beside it; where two labels would overlap the points are
    numbered instead, and the legend beside the plot lists the numbers. Returns the Figure;
    ``figure.numbered`` says which was drawn.

    Parameters
    ----------
    rows : iterable of dict
        One per strategy, at least one (ValueError otherwise), e.g.
        :meth:`planner.clinical.scorecard.Scorecard.rows`; the x and y values must be numbers.
    x_key : str
        Key of the horizontal value (higher is better).
    y_key : str
        Key of the vertical value (lower is better).
    label_key : str
        Key of each point's label.
    pareto_key : str, optional
        Key of a precomputed Pareto flag; default: computed on the two axes.
    x_label : str
        Horizontal axis title.
    y_label : str
        Vertical axis title.
    title : str, optional
        Chart title (default 'trade-off: <x_label> vs <y_label>').

    Returns
    -------
    matplotlib.figure.Figure
        The chart, with ``figure.numbered`` (bool) set.
    """
    plt = _pyplot()
    from matplotlib.lines import Line2D

    rows = list(rows)
    if not rows:
        raise ValueError("plot_tradeoff needs at least one row")
    front = np.array([bool(r[pareto_key]) for r in rows] if pareto_key else _pareto(rows, x_key, y_key))
    figure, axis = plt.subplots(figsize=(10.0, 5.6))
    figure.subplots_adjust(left=0.08, right=0.64, bottom=0.14, top=0.9)
    x = np.array([float(r[x_key]) for r in rows])
    y = np.array([float(r[y_key]) for r in rows])
    axis.scatter(x[~front], y[~front], s=50, color="grey", zorder=3, gid="dominated")
    axis.scatter(x[front], y[front], s=160, marker="*", color="crimson", zorder=4, gid="pareto")
    order = np.argsort(x[front])
    axis.plot(x[front][order], y[front][order], color="crimson", linewidth=1.0, alpha=0.6)
    axis.margins(x=0.15, y=0.15)  # room for the labels
    axis.set_xlabel(x_label)
    axis.set_ylabel(y_label)
    axis.grid(alpha=0.3)
    axis.set_title(title or f"trade-off: {x_label} vs {y_label}", fontsize=10)
    names = [short_label(r[label_key]) for r in rows]
    figure.canvas.draw()
    markers = (marker_boxes(axis, x, y, np.where(front, 6.5, 3.8))
               + line_boxes(axis, x[front][order], y[front][order]))
    labels = [axis.annotate(name, (xi, yi), xytext=(7, 5), textcoords="offset points", fontsize=8, gid="label",
                            bbox=_READABLE) for name, xi, yi in zip(names, x, y)]
    candidates = [dict(xyann=xy, ha=ha, va=va) for xy, ha, va in _OFFSETS]
    figure.numbered = bool(place_texts(figure, labels, [candidates] * len(labels), bounds=axis.get_window_extent(),
                                       obstacles=markers))
    styles = {True: dict(marker="*", markersize=12, color="crimson"),
              False: dict(marker="o", markersize=7, color="grey")}
    handles = [Line2D([], [], linestyle="none", label=name, **styles[on])
               for on, name in ((False, "dominated"), (True, "Pareto front")) if (front == on).any()]
    if figure.numbered:
        for label in labels:
            label.remove()
        _number_points(figure, axis, x, y, markers)
        handles += [Line2D([], [], linestyle="none", label=f"{n}  {name}", **styles[bool(on)])
                    for n, (name, on) in enumerate(zip(names, front), 1)]
    axis.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                title="strategies" if figure.numbered else None, title_fontsize=8)
    disclaim(figure)
    return figure


def plot_gap_curve(gaps_mm, achievable_gy, *, prescription_gy: float | None = None, title: str | None = None):
    """Maximum achievable prescription against the separation gap (mm).

    With ``prescription_gy`` the prescription is drawn and the smallest gap reaching it
    (linearly interpolated) is marked. Returns the Figure; ``figure.gap_needed_mm`` holds
    that gap (``nan`` if none reaches it, or no prescription given).

    Parameters
    ----------
    gaps_mm : array_like of float
        Separation gaps (mm), 1-D, any order.
    achievable_gy : array_like of float
        Maximum achievable prescription (Gy) at each gap, same non-zero length (ValueError
        otherwise).
    prescription_gy : float, optional
        The prescription (Gy) to reach.
    title : str, optional
        Chart title (default 'what a surgical gap buys').

    Returns
    -------
    matplotlib.figure.Figure
        The chart, with ``figure.gap_needed_mm`` (float) set.
    """
    plt = _pyplot()
    gaps = np.asarray(gaps_mm, float)
    achievable = np.asarray(achievable_gy, float)
    if gaps.shape != achievable.shape or gaps.ndim != 1 or gaps.size == 0:
        raise ValueError("gaps_mm and achievable_gy must be 1-D sequences of equal, non-zero length")
    order = np.argsort(gaps)
    gaps, achievable = gaps[order], achievable[order]
    figure, axis = plt.subplots(figsize=(7.6, 5.0))
    axis.plot(gaps, achievable, marker="o", color="navy", linewidth=1.8, label="maximum achievable prescription", gid="curve")
    needed, note = float("nan"), None
    if prescription_gy:
        axis.axhline(prescription_gy, color="crimson", linestyle="--", linewidth=1.2, label=f"prescription {prescription_gy:g} Gy")
        above = np.nonzero(achievable >= prescription_gy)[0]
        if above.size:
            first = int(above[0])
            if first == 0:
                needed = float(gaps[0])
            else:
                g0, g1, a0, a1 = gaps[first - 1], gaps[first], achievable[first - 1], achievable[first]
                needed = float(g0 + (prescription_gy - a0) * (g1 - g0) / (a1 - a0))
            axis.axvline(needed, color="forestgreen", linestyle=":", linewidth=1.2)
            note = axis.annotate(f"gap needed ~{needed:.1f} mm", (needed, prescription_gy), xytext=(8, -8),
                                 textcoords="offset points", fontsize=9, color="forestgreen", bbox=_READABLE,
                                 gid="gap_needed")
    axis.set_xlabel("separation gap between tumour and thecal sac (mm)")
    axis.set_ylabel("achievable prescription (Gy)")
    axis.grid(alpha=0.3)
    legend = axis.legend(fontsize=8, loc="lower right")
    axis.set_title(title or "what a surgical gap buys", fontsize=10)
    figure.subplots_adjust(bottom=0.14)
    if note is not None:
        figure.canvas.draw()
        options = [dict(xyann=(dx, dy), ha=ha, va=va) for dx, ha in ((8, "left"), (-8, "right"))
                   for dy, va in ((-8, "top"), (8, "bottom"))]
        place_texts(figure, [note], [options], bounds=axis.get_window_extent(),
                    obstacles=[legend.get_window_extent(), *marker_boxes(axis, gaps, achievable, 4.0),
                               *line_boxes(axis, gaps, achievable),
                               *line_boxes(axis, axis.get_xlim(), [prescription_gy] * 2),
                               *line_boxes(axis, [needed] * 2, axis.get_ylim())])
    disclaim(figure)
    figure.gap_needed_mm = needed
    return figure


_GRADES = ("0", "1a", "1b", "1c", "2", "3")


def _sins_bands() -> tuple[int, int, int]:
    """(potentially unstable from, unstable from, maximum) SINS points (planner/clinical/data/scores.toml, fisher2010_sins)."""
    from planner.clinical.prognosis import score_tables

    table = score_tables()["sins"]
    return int(table["potentially_unstable"][0]), int(table["unstable"][0]), int(table["unstable"][1])


def _recommendation_strip(figure, strip, rows, edges):
    """The NOMS recommendation over time as spans, each named inside it (or numbered); returns key handles."""
    from matplotlib.patches import Patch
    from matplotlib.transforms import Bbox

    segments = []  # [start, end, text]
    for row, a, b in zip(rows, edges[:-1], edges[1:]):
        if segments and str(row["recommendation"]) == segments[-1][2]:
            segments[-1][1] = b
        else:
            segments.append([a, b, str(row["recommendation"])])
    colours = ("#d6e2f3", "#eef2f8")
    for n, (a, b, _) in enumerate(segments):
        strip.axvspan(a, b, color=colours[n % 2], linewidth=0)
        if n:
            strip.axvline(a, color="navy", linewidth=0.9)
    strip.set_ylim(0, 1)
    strip.set_yticks([])
    strip.set_ylabel("NOMS", rotation=0, ha="right", va="center", fontsize=8)
    figure.canvas.draw()
    where = strip.get_xaxis_transform()
    boxes = [Bbox(where.transform([(a, 0.0), (b, 1.0)])) for a, b, _ in segments]
    texts = [strip.annotate(text, (a, 0.5), xycoords=where, xytext=(4, 0), textcoords="offset points", fontsize=7.5,
                            color="navy", va="center", gid="recommendation") for a, _, text in segments]
    options = [[dict(xy=(a, height)) for height in (0.5, 0.76, 0.24)] for a, _, _ in segments]
    if not place_texts(figure, texts, options, bounds=boxes, pad_px=1.0):
        return []
    for n, (text, (a, b, _)) in enumerate(zip(texts, segments), 1):  # too narrow: number them, key beside
        text.set_text(str(n))
        text.xy, text.xyann = ((a + b) / 2, 0.5), (0, 0)
        text.set_ha("center")
    return [Patch(color=colours[n % 2], label=f"{n + 1}  " + textwrap.fill(text, 34))
            for n, (_, _, text) in enumerate(segments)]


def _mark_week(figure, axis, week, text, colour, obstacles):
    """Name a vertical line beside it in the axis, where it overlaps nothing; dropped if nowhere fits."""
    label = axis.annotate(text, (week, 0.93), xycoords=axis.get_xaxis_transform(), textcoords="offset points",
                          xytext=(4, 0), fontsize=8, color=colour, va="center", bbox=_READABLE, gid="week_mark")
    options = [dict(xy=(week, height), xyann=(dx, 0), ha=ha) for dx, ha in ((4, "left"), (-4, "right"))
               for height in (0.93, 0.75, 0.3, 0.12)]
    if place_texts(figure, [label], [options], bounds=axis.get_window_extent(), obstacles=obstacles):
        label.remove()
        return None
    figure.canvas.draw()
    obstacles.append(label.get_window_extent(figure.canvas.get_renderer()).padded(2.0))
    return label


def _stack_legends(figure, x: float, groups):
    """Legends beside the plot (figure fraction ``x``), each level with its axis' top or below the one before."""
    renderer = figure.canvas.get_renderer()
    below = 1.0
    for handles, axis, title in groups:
        if not handles:
            continue
        legend = figure.legend(handles=handles, fontsize=7, loc="upper left", alignment="left", title=title,
                               title_fontsize=7.5, bbox_to_anchor=(x, min(axis.get_position().y1, below - 0.01)))
        below = legend.get_window_extent(renderer).y0 / figure.bbox.height


def plot_timeline(rows, *, title: str | None = None):
    """The delay timeline: NOMS recommendation, chance of walking, ESCC grade and SINS against weeks of delay.

    ``rows`` are dicts with ``weeks``, ``escc_grade`` (str, '0'..'3'), ``ambulatory_probability``
    (0-1), ``sins`` (int), ``recommendation`` (str) and ``sbrt_alone_ok`` (bool). A strip on
    top names the recommendation over time (numbered, with a key, where a span is too narrow
    for its name). Weeks where SBRT alone is acceptable are shaded green, the others red; a
    line marks where that window closes (the first week it is no longer acceptable) and where
    walking is lost (the chance of walking first falls below 50%). The SINS axis is ticked
    at its Fisher 2010 thresholds. Legends sit beside the plot. Returns the Figure (axes
    gids ``timeline:recommendation``, ``timeline:walking``, ``timeline:escc``);
    ``figure.window_closes_weeks`` and ``figure.walking_lost_weeks`` hold those weeks
    (``nan`` where it does not happen).

    Parameters
    ----------
    rows : iterable of dict
        One per time point, at least one (ValueError otherwise), e.g.
        :meth:`planner.clinical.timeline.Timeline.rows`; sorted by ``weeks`` here. The
        ``escc_grade`` must be one of '0', '1a', '1b', '1c', '2', '3'.
    title : str, optional
        Chart title (default 'what waiting costs').

    Returns
    -------
    matplotlib.figure.Figure
        The chart, with ``figure.window_closes_weeks`` and ``figure.walking_lost_weeks``
        (float) set.
    """
    plt = _pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    rows = sorted(rows, key=lambda r: float(r["weeks"]))
    if not rows:
        raise ValueError("plot_timeline needs at least one row")
    weeks = np.array([float(r["weeks"]) for r in rows])
    walking = np.array([float(r["ambulatory_probability"]) for r in rows])
    grade = np.array([_GRADES.index(str(r["escc_grade"]).lower()) for r in rows])
    sins = np.array([int(r["sins"]) for r in rows])
    alone = np.array([bool(r["sbrt_alone_ok"]) for r in rows])
    figure, (strip, top, bottom) = plt.subplots(3, 1, figsize=(11.0, 7.2), sharex=True,
                                                gridspec_kw={"height_ratios": [0.3, 1.1, 1]})
    figure.subplots_adjust(left=0.08, right=0.68, bottom=0.09, top=0.93, hspace=0.1)
    for axis, gid in ((strip, "recommendation"), (top, "walking"), (bottom, "escc")):
        axis.set_gid(f"timeline:{gid}")
    # Each row holds from its week to the next row's (the last for half a step more).
    last_step = (weeks[-1] - weeks[-2]) / 2 if len(weeks) > 1 else 1.0
    edges = np.concatenate([weeks, [weeks[-1] + last_step]])
    for axis in (top, bottom):
        for a, b, ok in zip(edges[:-1], edges[1:], alone):
            axis.axvspan(a, b, color="palegreen" if ok else "mistyrose", alpha=0.6, linewidth=0)
    top.plot(weeks, walking, marker="o", color="black", linewidth=1.6, label="chance of walking", gid="walking")
    top.axhline(0.5, color="grey", linestyle=":", linewidth=1.0)
    top.set_ylim(0, 1.05)
    top.set_ylabel("chance of walking")
    closes = float("nan")
    shut = np.nonzero(~alone)[0]
    if shut.size and alone[: shut[0]].any():
        closes = float(weeks[shut[0]])
    lost = float("nan")
    below = np.nonzero(walking < 0.5)[0]
    if below.size and (walking[: below[0]] >= 0.5).any():
        lost = float(weeks[below[0]])
    handles = [Patch(color=colour, label=name) for shown, colour, name in
               ((alone.any(), "palegreen", "SBRT alone acceptable"),
                (not alone.all(), "mistyrose", "surgery first (or not SBRT alone)")) if shown]
    handles.append(Line2D([], [], marker="o", color="black", linewidth=1.6, label="chance of walking"))
    for week, gid, style, name in ((closes, "window_closes", dict(color="crimson", linewidth=1.6),
                                    "SBRT-alone window closes"),
                                   (lost, "walking_lost", dict(color="black", linestyle="--", linewidth=1.4),
                                    "walking likely lost")):
        if np.isfinite(week):
            for axis in (top, bottom):
                axis.axvline(week, gid=gid, **style)
            handles.append(Line2D([], [], label=f"{name} (week {week:g})", **style))
    bottom.step(weeks, grade, where="post", color="purple", linewidth=1.8, label="ESCC grade", gid="escc")
    bottom.set_yticks(range(len(_GRADES)), [f"ESCC {g}" for g in _GRADES], fontsize=7)
    bottom.set_ylim(-0.3, len(_GRADES) - 0.7)
    bottom.set_xlabel("weeks of delay")
    twin = bottom.twinx()
    twin.plot(weeks, sins, marker="s", color="darkorange", linewidth=1.2, label="SINS", gid="sins")
    potentially, unstable, most = _sins_bands()
    twin.set_ylim(0, most)
    twin.set_yticks(sorted({0, potentially, unstable, most}))
    for threshold in (potentially, unstable):
        twin.axhline(threshold, color="darkorange", linestyle=":", linewidth=0.8)
    twin.set_ylabel("SINS", fontsize=9, color="darkorange")
    strip.set_title(title or "what waiting costs", fontsize=10)
    key = _recommendation_strip(figure, strip, rows, edges)
    obstacles = [*marker_boxes(top, weeks, walking, 4.0), *line_boxes(top, weeks, walking)]
    for week in (closes, lost):
        if np.isfinite(week):
            obstacles += line_boxes(top, [week, week], top.get_ylim())
    for week, text, colour in ((closes, f"SBRT-alone window closes ({closes:g} wk)", "crimson"),
                               (lost, f"walking likely lost ({lost:g} wk)", "black")):
        if np.isfinite(week):
            _mark_week(figure, top, week, text, colour, obstacles)
    sins_key = [Line2D([], [], color="purple", linewidth=1.8, label="ESCC grade (left axis)"),
                Line2D([], [], marker="s", color="darkorange", linewidth=1.2, label="SINS (right axis)"),
                Line2D([], [], color="darkorange", linestyle=":", linewidth=0.8,
                       label=f"SINS {potentially}-{unstable - 1}: potentially unstable,\n"
                             f"{unstable}-{most}: unstable (Fisher 2010)")]
    _stack_legends(figure, 0.75, [(key, strip, "NOMS recommendation"), (handles, top, None), (sins_key, bottom, None)])
    disclaim(figure)
    figure.window_closes_weeks = closes
    figure.walking_lost_weeks = lost
    return figure
