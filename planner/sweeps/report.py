"""The report of a sweep: trade-off plots, a summary table and an HTML page.

:func:`write_sweep_report` reads a sweep database and writes, into a folder, ``report.html``
(self-contained: pictures embedded as PNG data URIs, in the style of the case report),
``summary.csv`` and each picture under ``images/``, every file atomically. The plots are
drawn when the sweep varies what they need:

* achievable prescription and local control against the separation gap, one line per ESCC
  grade (mean over the other parameters, their range shaded);
* local control against myelopathy risk, one colour per strategy (one point per scenario);
* walking against weeks of delay, one line per histology (the best figure over the other
  parameters: the most walking any option of the sweep keeps).

Teaching and research only, not for clinical use: the page says so first and last.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from pathlib import Path

from planner.common.files import write_atomically, write_text_atomically
from planner.common.safety import DISCLAIMER

__all__ = ["write_sweep_report", "summary_rows", "tradeoff_figures"]

#: Metrics the summary table shows per value of each varied parameter (column, header).
SUMMARY_METRICS = (("achievable_prescription_gy", "achievable Rx (Gy)"), ("local_control_pct", "local control (%)"),
                   ("walking_pct", "walking (%)"), ("myelopathy_pct", "myelopathy (%)"), ("score", "score"))


def _value(row: dict, name: str):
    """A parameter (or, when the scenario left it to the base case, what was built) or metric."""
    params, metrics = row["params"], row["metrics"]
    if name in params and params[name] is not None:
        return params[name]
    return metrics.get(f"{name}_built", metrics.get(name))


def _label(value) -> str:
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _sort_key(value):
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, _label(value))


def summary_rows(rows, varied) -> list[dict]:
    """Per varied parameter and value: scenario counts and the mean of the key metrics.

    Parameters
    ----------
    rows : list of dict
        Stored rows (:meth:`planner.sweeps.store.ResultStore.rows`).
    varied : sequence of str
        The parameters the sweep varies.

    Returns
    -------
    list of dict
        ``parameter``, ``value``, ``scenarios``, ``infeasible`` and, per metric of
        :data:`SUMMARY_METRICS`, its mean over the feasible scenarios (None without one).
    """
    out = []
    for name in varied:
        groups = {}
        for row in rows:
            groups.setdefault(_label(_value(row, name)), (_value(row, name), []))[1].append(row)
        for label, (value, members) in sorted(groups.items(), key=lambda item: _sort_key(item[1][0])):
            ok = [r for r in members if r["status"] == "ok"]
            entry = {"parameter": name, "value": label, "scenarios": len(members), "infeasible": len(members) - len(ok)}
            for metric, _ in SUMMARY_METRICS:
                values = [r["metrics"].get(metric) for r in ok if r["metrics"].get(metric) is not None]
                entry[metric] = round(sum(values) / len(values), 3) if values else None
            out.append(entry)
    return out


def _series(rows, x: str, y: str, line: str, *, reduce: str):
    """{line value: (xs, centre, low, high)} over the feasible rows that have x and y."""
    points = {}
    for row in rows:
        if row["status"] != "ok":
            continue
        xv, yv, lv = _value(row, x), row["metrics"].get(y), _value(row, line)
        if xv is None or yv is None or lv is None:
            continue
        points.setdefault(_label(lv), {}).setdefault(float(xv), []).append(float(yv))
    series = {}
    for label in sorted(points, key=lambda text: _sort_key(text)):
        xs = sorted(points[label])
        values = [points[label][v] for v in xs]
        centre = [max(v) if reduce == "best" else sum(v) / len(v) for v in values]
        series[label] = (xs, centre, [min(v) for v in values], [max(v) for v in values])
    return series


#: Marker, size and dash per series, so that series which coincide stay visible (a larger
#: hollow-looking marker under a smaller one, dashes over a solid line).
_MARKERS, _DASHES = "osD^vP*X", ("-", "--", "-.", ":")


def _line_panel(axis, series, *, xlabel: str, ylabel: str, legend: str, band: bool) -> None:
    for n, (label, (xs, centre, low, high)) in enumerate(series.items()):
        (drawn,) = axis.plot(xs, centre, marker=_MARKERS[n % len(_MARKERS)], markersize=max(3.0, 10.0 - 1.5 * n),
                             linestyle=_DASHES[n % len(_DASHES)], label=label)
        if band and any(h > lo for lo, h in zip(low, high)):
            axis.fill_between(xs, low, high, color=drawn.get_color(), alpha=0.15, linewidth=0)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.grid(True, alpha=0.3)
    axis.legend(title=legend, fontsize=8, title_fontsize=8)


def _figure(width: float = 9.0, height: float = 4.0, panels: int = 1):
    from matplotlib.figure import Figure  # the Agg canvas: no display, no pyplot state

    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.subplots(1, panels)
    return figure, (axes if panels > 1 else [axes])


def tradeoff_figures(rows, varied) -> list[tuple[str, str, object]]:
    """The trade-off plots the sweep's rows support: (name, caption, matplotlib Figure).

    Parameters
    ----------
    rows : list of dict
        Stored rows.
    varied : sequence of str
        The parameters the sweep varies (a plot needs its x to vary).

    Returns
    -------
    list of tuple
        ``(name, caption, figure)``; empty when nothing the plots need varies.
    """
    out = []
    if "gap_mm" in varied:
        achievable = _series(rows, "gap_mm", "achievable_prescription_gy", "escc_grade", reduce="mean")
        control = _series(rows, "gap_mm", "local_control_pct", "escc_grade", reduce="mean")
        if achievable:
            figure, (left, right) = _figure(panels=2)
            _line_panel(left, achievable, xlabel="separation gap (mm)", ylabel="maximum achievable prescription (Gy)",
                        legend="ESCC grade", band=True)
            bounds = sorted({row["metrics"].get("achievable_binding_limit_gy") for row in rows
                             if row["metrics"].get("achievable_binding") == "escalation bound"} - {None})
            for bound in bounds:  # where the dose-escalation literature's bound, not an organ, stops the dose
                left.axhline(bound, color="grey", linestyle=":", linewidth=1)
                left.annotate(f"escalation bound {bound:.1f} Gy", (0.01, bound), xycoords=("axes fraction", "data"),
                              textcoords="offset points", xytext=(2, 3), fontsize=7, color="grey")
            _line_panel(right, control, xlabel="separation gap (mm)", ylabel="local control at 1 year (%)",
                        legend="ESCC grade", band=True)
            figure.suptitle(f"Separation gap: achievable dose and local control  ({DISCLAIMER})", fontsize=9)
            out.append(("gap", "Maximum achievable prescription and local control against the separation gap, per "
                               "ESCC grade (mean over the other parameters; shaded: their range)", figure))
    strategies = {}
    for row in rows:
        m = row["metrics"]
        if row["status"] == "ok" and m.get("local_control_pct") is not None and m.get("myelopathy_pct") is not None:
            strategies.setdefault(_label(_value(row, "strategy")), []).append((m["myelopathy_pct"], m["local_control_pct"]))
    if strategies and sum(len(v) for v in strategies.values()) > 1:
        figure, (axis,) = _figure(7.5, 4.5)
        markers = "osD^v<>p*h"
        for n, (label, points) in enumerate(sorted(strategies.items())):
            axis.scatter([p[0] for p in points], [p[1] for p in points], label=label, alpha=0.7,
                         marker=markers[n % len(markers)])
        axis.set_xlabel("myelopathy risk (%)")
        axis.set_ylabel("local control at 1 year (%)")
        axis.grid(True, alpha=0.3)
        axis.legend(title="strategy", fontsize=8, title_fontsize=8)
        axis.set_title(f"Local control against myelopathy risk  ({DISCLAIMER})", fontsize=9)
        out.append(("tradeoff", "Local control against myelopathy risk, one point per scenario, per strategy", figure))
    if "weeks_delay" in varied:
        walking = _series(rows, "weeks_delay", "walking_pct", "histology", reduce="best")
        if walking:
            figure, (axis,) = _figure(7.5, 4.5)
            _line_panel(axis, walking, xlabel="weeks of delay before treatment", ylabel="walking after treatment (%)",
                        legend="histology", band=False)
            axis.set_title(f"Walking against delay, per histology  ({DISCLAIMER})", fontsize=9)
            out.append(("delay", "Walking after treatment against weeks of untreated growth, per histology (the best "
                                 "figure over the other parameters: the most walking any option keeps)", figure))
    return out


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _esc(value) -> str:
    return html.escape("" if value is None else str(value))


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if isinstance(value, float) else _esc(value)


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1200px;color:#1d232a;line-height:1.4}
h1{margin-bottom:0}h2{border-bottom:2px solid #d8dee4;padding-bottom:4px;margin-top:32px}
.banner{background:#fff3cd;border:1px solid #e0b400;padding:8px 12px;border-radius:4px;font-weight:600}
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid #d8dee4;padding:4px 7px;text-align:left}
th{background:#f1f4f7}.muted{color:#5b6670;font-size:12px}figure{margin:10px 0}img{max-width:100%;border:1px solid #d8dee4}
"""


def write_sweep_report(db_path, out_dir) -> Path:
    """Write the report of a sweep database into ``out_dir``; returns the HTML path.

    Parameters
    ----------
    db_path : str or os.PathLike
        The sweep database.
    out_dir : str or os.PathLike
        Report folder (created; its parent must exist; ValueError when it is a file).

    Returns
    -------
    pathlib.Path
        ``out_dir/report.html``; ``summary.csv`` and ``images/*.png`` beside it.
    """
    from .store import ResultStore

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"report folder {str(out)!r} is a file")
    if not out.resolve().parent.is_dir():
        raise ValueError(f"report folder's parent {str(out.resolve().parent)!r} does not exist")
    with ResultStore(db_path) as store:
        rows, meta = store.rows(), dict(store.meta)
    varied = json.loads(meta.get("varied", "[]"))
    out.mkdir(exist_ok=True)
    pictures = [(name, caption, _png(figure)) for name, caption, figure in tradeoff_figures(rows, varied)]
    summary = summary_rows(rows, varied)
    headers = ["parameter", "value", "scenarios", "infeasible"] + [h for _, h in SUMMARY_METRICS]
    body = "".join("<tr>" + "".join(f"<td>{_cell(entry[k])}</td>" for k in
                                    ["parameter", "value", "scenarios", "infeasible"] + [m for m, _ in SUMMARY_METRICS])
                   + "</tr>" for entry in summary)
    reasons = {}
    for row in rows:
        if row["status"] != "ok":
            reasons[row["message"]] = reasons.get(row["message"], 0) + 1
    infeasible = "".join(f"<li>{n} x {_esc(message)}</li>" for message, n in sorted(reasons.items(), key=lambda i: -i[1]))
    images = "".join(f'<figure><img alt="{_esc(caption)}" src="data:image/png;base64,'
                     f'{base64.b64encode(png).decode("ascii")}"><figcaption class="muted">{_esc(caption)}</figcaption></figure>'
                     for _, caption, png in pictures)
    ok = sum(r["status"] == "ok" for r in rows)
    removed = "".join(f"<li>{_esc(line)}</li>" for line in json.loads(meta.get("removed", "[]")))
    title = f"spinesim sweep: {meta.get('spec_name', '?')}"
    document = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title><style>{_STYLE}</style></head>
<body>
<p class="banner">{_esc(DISCLAIMER)}. It must not be used to plan or deliver the treatment of any patient.</p>
<h1>{_esc(title)}</h1>
<p class="muted">spec {_esc(meta.get('spec_source'))} (hash {_esc(meta.get('spec_hash'))}); {len(rows)} of
{_esc(meta.get('scenarios'))} scenarios stored, {ok} feasible; varied: {_esc(', '.join(varied) or 'nothing')};
made with spinesim {_esc(meta.get('created_by'))}</p>
<h2>Trade-offs</h2>
{images or '<p class="muted">This sweep varies none of the parameters the trade-off plots need (gap_mm, weeks_delay, strategy).</p>'}
<h2>Summary</h2>
<p class="muted">Per value of each varied parameter: the mean over its feasible scenarios.</p>
<table><tr>{''.join(f'<th>{_esc(h)}</th>' for h in headers)}</tr>{body}</table>
{f'<h2>Infeasible scenarios</h2><ul>{infeasible}</ul>' if infeasible else ''}
{f'<h2>Removed before running</h2><ul>{removed}</ul>' if removed else ''}
<p class="muted">The full table: <code>spinesim sweep export {_esc(Path(db_path).name)} --csv table.csv</code>
(or <code>--parquet</code>), one row per scenario, one column per parameter and metric.</p>
<p class="banner">{_esc(DISCLAIMER)}.</p>
</body></html>
"""
    target = out / "report.html"
    write_text_atomically(target, document)
    columns = ["parameter", "value", "scenarios", "infeasible"] + [m for m, _ in SUMMARY_METRICS]

    def write_summary(temporary):
        with open(temporary, "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(summary)
            handle.write(f"# {DISCLAIMER}\n")

    write_atomically(out / "summary.csv", write_summary)
    images_folder = out / "images"
    images_folder.mkdir(exist_ok=True)
    for n, (name, _, png) in enumerate(pictures):
        write_atomically(images_folder / f"{n:02d}_{name}.png", lambda t, data=png: Path(t).write_bytes(data))
    return target
