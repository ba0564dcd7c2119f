"""One self-contained HTML report per run, with JSON and CSV of the same numbers beside it.

:func:`write_report` takes a :class:`planner.scorecard.Scorecard` (and optionally the delay
timeline and a gap study) and writes ``report.html`` (images embedded as PNG data URIs, no
network fetches), ``scorecard.json``, ``scorecard.csv``, ``timeline.json`` and, optionally,
each picture as a PNG under ``images/``. Every file is written atomically; the HTML says on
its first line, as every output does, that spinesim is for teaching and research only.
"""

from __future__ import annotations

import base64
import html
import io
import tomllib
from importlib import resources
from pathlib import Path

from planner.common.files import write_atomically, write_text_atomically
from planner.common.safety import DISCLAIMER
from .figures import _pyplot

__all__ = ["write_report", "collect_citations", "MISSING_CITATION"]

#: Shown in place of a citation the project lacks (a test keeps it from ever appearing).
MISSING_CITATION = "no citation found in the project data (please report)"

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1200px;color:#1d232a;line-height:1.4}
h1{margin-bottom:0}h2{border-bottom:2px solid #d8dee4;padding-bottom:4px;margin-top:32px}
.banner{background:#fff3cd;border:1px solid #e0b400;padding:8px 12px;border-radius:4px;font-weight:600}
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid #d8dee4;padding:4px 7px;text-align:left}
th{background:#f1f4f7}.pass{background:#dcf5dc}.fail{background:#fbd5d5}.within{background:#ffe9c2}.best{font-weight:700}
.noms{outline:2px solid #4a7bd0}.muted{color:#5b6670;font-size:12px}figure{margin:10px 0}img{max-width:100%;border:1px solid #d8dee4}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:12px}
.scorecard{font-size:12px}.scorecard th,.scorecard td{padding:3px 5px}.scorecard td.flags{overflow-wrap:anywhere;min-width:10em}
.wide{overflow-x:auto;max-width:100%}
"""


def _esc(value) -> str:
    return html.escape("" if value is None else str(value))


def _figure_png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    _pyplot().close(figure)
    return buffer.getvalue()


def _image_png(image) -> bytes:
    import matplotlib.image

    buffer = io.BytesIO()
    matplotlib.image.imsave(buffer, image, format="png")
    return buffer.getvalue()


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<figure><img alt="{_esc(alt)}" src="data:image/png;base64,{data}"><figcaption class="muted">{_esc(alt)}</figcaption></figure>'


def collect_citations() -> dict:
    """Every citation the project holds: scenes/data/sources.toml and the [sources] tables of
    the kernels', radiotherapy's and clinical data files.

    Returns
    -------
    dict
        {source key: full citation}; a key in several files keeps the last one read.
    """
    from scenes._data import load_data

    citations = dict(load_data("sources")["sources"])
    for package in ("kernels.data", "planner.radiotherapy.protocols", "planner.clinical.data"):
        for entry in resources.files(package).iterdir():
            if entry.name.endswith(".toml"):
                citations.update(tomllib.loads(entry.read_text(encoding="utf-8")).get("sources", {}))
    return citations


def _not_indicated(card) -> str:
    """The strategies the menu leaves out for this case, with the indication that fails."""
    entries = getattr(card, "not_indicated", {}) or {}
    if not entries:
        return ""
    items = "".join(f"<li><b>{_esc(e['label'])}</b>: {_esc('; '.join(e['reasons']))} "
                    f"<span class='muted'>({_esc(', '.join(e['sources']))})</span></li>" for e in entries.values())
    return f"<h3>Not indicated here</h3><ul>{items}</ul>"


def _binding_text(binding) -> str:
    """The limit that binds an achievable prescription, as escaped HTML ('' without one)."""
    if not binding:
        return ""
    if binding.get("kind") == "escalation bound":
        return _esc(f"escalation bound {binding['limit_gy']:.1f} Gy ({binding.get('note', '')}; {binding['source']})")
    return (f"{_esc(binding['structure'])} {_esc(binding['metric'])} &le; {binding['limit_gy']:.1f} Gy "
            f"({_esc(binding.get('protocol', ''))}, {_esc(binding['source'])})")


def _achievable_line(result) -> str:
    """'Maximum achievable prescription X Gy in n fractions; binding limit: ...' of a planned strategy."""
    dosimetry = getattr(result, "dosimetry", None) or {}
    gy, binding = dosimetry.get("achievable_prescription_gy"), dosimetry.get("achievable_binding")
    if gy is None or result.strategy.regimen is None:
        return ""
    n = result.strategy.regimen.fractions
    bound = f"; binding limit: {_binding_text(binding)}" if binding else ""
    return (f"<p class='achievable'>Maximum achievable prescription (GTV Dmin with every organ limit and the "
            f"escalation bound kept): <b>{gy:.1f} Gy</b> in {n} fraction{'s' if n > 1 else ''}{bound}.</p>")


def _gap_table(gap_study) -> str:
    """The gap study's figures with the limit that binds each (when the study names them)."""
    gaps, achievable, _, *rest = gap_study
    bindings = rest[0] if rest else ()
    if not bindings:
        return ""
    rows = "".join(f"<tr><td>{g:g}</td><td>{a:.1f}</td><td>{_binding_text(b) or '-'}</td></tr>"
                   for g, a, b in zip(gaps, achievable, bindings))
    return ("<table class='gap-binding'><tr><th>gap (mm)</th><th>maximum achievable prescription (Gy)</th>"
            f"<th>binding limit</th></tr>{rows}</table>")


def _percent(value) -> str:
    return "n/a" if value is None else f"{value:.0f}%"


def _scorecard_table(card) -> str:
    rows = card.rows()
    columns = [("local_control", "LC 1 y"), ("walking", "walking"), ("pain", "pain CR 3 mo"), ("myelopathy", "myelopathy"),
               ("fracture", "VCF"), ("complications", "complications"), ("retreatment", "retreatment"),
               ("time", "days to end of RT"), ("hospital", "hospital days")]
    best = card.best_per_column()
    head = "".join(f"<th>{_esc(h)}</th>" for h in ["#", "strategy", *[h for _, h in columns], "GTV D95 (Gy)",
                                                  "PTV coverage", "cord Pmax (Gy)", "cord/OAR limits", "score", "flags"])
    body = []
    for r in rows:
        cells = [f"<td>{r['rank']}</td>",
                 f"<td>{_esc(r['strategy'])}{' <b>&#9733; Pareto</b>' if r['pareto'] else ''}"
                 f"{' <b>[NOMS]</b>' if r['noms'] else ''}</td>"]
        for key, _ in columns:
            v = r[key]
            text = "n/a" if v is None else (f"{v:.0f}" if key in ("time", "hospital") else f"{v:.1f}%")
            cls = ' class="best"' if v is not None and best.get(key) == v else ""
            cells.append(f"<td{cls}>{text}</td>")
        d95, cover, pmax = r["gtv_d95_gy"], r["ptv_coverage"], r["cord_pmax_gy"]
        cells.append(f"<td>{'-' if d95 is None else f'{d95:.1f}'}</td>")
        cells.append(f"<td>{'-' if cover is None else f'{100 * cover:.0f}%'}</td>")
        cells.append(f"<td>{'-' if pmax is None else f'{pmax:.1f}'}</td>")
        status = r["constraints"]
        cells.append(f'<td class="{"pass" if status == "pass" else "fail" if status == "fail" else ""}">{status}</td>')
        cells.append(f"<td>{r['score']:+.2f}</td><td class='muted flags'>{_esc(r['flags'])}</td>")
        body.append(f"<tr{' class=noms' if r['noms'] else ''}>{''.join(cells)}</tr>")
    weights = ", ".join(f"{k} {v:g}" for k, v in card.weights.items())
    return (f"<div class='wide'><table class='scorecard'><tr>{head}</tr>{''.join(body)}</table></div>"
            f"<p class='muted'>Ranking weights (adjustable): {weights}. "
            "An unknown benefit earns nothing and an unknown harm counts as the worst known; on the Pareto front an unknown is the worst possible. Bold: best in its column. "
            "&#9733;: Pareto-optimal on local control, walking, myelopathy, complications and time.</p>")


def _constraint_table(constraints) -> str:
    rows = []
    for c in constraints:
        cls = {"pass": "pass", "fail": "fail", "within 5%": "within"}.get(c["status"], "")
        value = "-" if c["value_gy"] is None else f"{c['value_gy']:.2f}"
        margin = "-" if c["margin_gy"] is None else f"{c['margin_gy']:+.2f}"
        rows.append(f"<tr><td>{_esc(c['structure'])}</td><td>{_esc(c['metric'])}</td><td>{value}</td>"
                    f"<td>{c['limit_gy']:.2f}</td><td>{margin}</td><td class='{cls}'>{_esc(c['status'])}</td>"
                    f"<td>{_esc(c['protocol'])}</td><td>{_esc(c['source'])}</td></tr>")
    return ("<table><tr><th>structure</th><th>metric</th><th>value (Gy)</th><th>limit (Gy)</th><th>margin (Gy)</th>"
            f"<th>status</th><th>protocol</th><th>source</th></tr>{''.join(rows)}</table>")


def _estimates_table(result) -> str:
    rows = []
    for name, e in result.estimates.items():
        rows.append(f"<tr><td>{_esc(name)}</td><td>{_esc(e.text(1))}</td><td>{_esc(e.horizon)}</td>"
                    f"<td>{_esc(e.source or '-')}{'' if e.verified or not e.source else ' (unverified)'}</td>"
                    f"<td class='muted'>{_esc(e.basis)}</td></tr>")
    return ("<table><tr><th>estimate</th><th>value</th><th>horizon</th><th>source</th><th>basis</th></tr>"
            f"{''.join(rows)}</table>")


def _sources_used(card, timeline) -> set:
    keys = set()
    for r in card.results:
        keys |= {e.source for e in r.estimates.values() if e.source}
        keys |= {c["source"] for c in r.constraints if c.get("source")}
    for part in card.noms.parts:
        keys |= set(part.sources)
    keys |= {card.tokuhashi.source, card.tomita.source, card.noms.source}
    if card.tokuhashi.validation_source:
        keys.add(card.tokuhashi.validation_source)
    for r in card.results:
        binding = (getattr(r, "dosimetry", None) or {}).get("achievable_binding")
        if binding and binding.get("source"):
            keys.add(binding["source"])
    for entry in (getattr(card, "not_indicated", {}) or {}).values():
        keys |= set(entry["sources"])
    return {k for k in keys if k and k != "case file"}


def _pictures(card, *, progress) -> list[tuple[str, str, bytes]]:
    """(section, caption, png) for every picture; per-strategy dose pictures and DVHs."""
    from .dose_figures import dvh_curves, plot_dvh, render_dose_slices, render_interface_closeup

    pictures = []
    planned = [r for r in card.ranked() if r.plan is not None]
    for n, r in enumerate(planned):
        progress(f"pictures: {r.strategy.label}", n, len(planned))
        plan, rx = r.plan, r.strategy.regimen.dose_gy
        pictures.append((r.strategy.key, f"{r.strategy.label}: dose slices (isodoses in % of {rx:g} Gy)",
                         _figure_png(render_dose_slices(plan.scene, plan.dose_gy, prescription_gy=rx,
                                                        title=r.strategy.label))))
        curves = dvh_curves(plan.dose_gy, plan.scene)
        pictures.append((r.strategy.key, f"{r.strategy.label}: DVH with the constraint limits",
                         _figure_png(plot_dvh(curves, constraints=plan.constraints, prescription_gy=rx,
                                              title=r.strategy.label))))
        if r.strategy.key in (card.noms_key, card.ranking[0]) or r.strategy.decompressed:
            pictures.append((r.strategy.key, f"{r.strategy.label}: the cord-tumour interface",
                             _figure_png(render_interface_closeup(plan.scene, plan.dose_gy, prescription_gy=rx,
                                                                  title=r.strategy.label))))
    pictures += [("tradeoffs", caption, _figure_png(figure)) for caption, figure in _tradeoff_charts(card)]
    return pictures


#: The trade-off charts: (caption, x column, y column, x label, y label).
_TRADEOFFS = (("Strategies: 1-year local control against myelopathy risk", "local_control", "myelopathy",
               "1-year local control (%)", "myelopathy risk (%)"),
              ("Strategies: chance of walking against surgical complications", "walking", "complications",
               "walking after treatment (%)", "complications (%)"))


def _tradeoff_charts(card) -> list[tuple[str, object]]:
    """(caption, Figure) of each trade-off chart with data; points named by the strategies' labels."""
    from .charts import plot_tradeoff

    charts = []
    for caption, x_key, y_key, x_label, y_label in _TRADEOFFS:
        rows = [row for row in card.rows() if row[x_key] is not None and row[y_key] is not None]
        if rows:
            charts.append((caption, plot_tradeoff(rows, x_key=x_key, y_key=y_key, label_key="strategy",
                                                  x_label=x_label, y_label=y_label)))
    return charts


def _three_d(card) -> list[tuple[str, str, bytes]]:
    from .three_d import render_3d, rendering_available

    status = rendering_available()
    if not status:
        return [("3d", f"3-D views not rendered: {status.reason}", b"")]
    chosen = next((r for r in card.ranked() if r.strategy.key == card.noms_key and r.plan is not None),
                  next((r for r in card.ranked() if r.plan is not None), None))
    if chosen is None:
        return []
    plan = chosen.plan
    out = []
    for camera in ("posterior", "lateral"):
        image = render_3d(plan.scene, dose_gy=plan.dose_gy, prescription_gy=chosen.strategy.regimen.dose_gy,
                          beams=plan.beams, camera=camera, title=f"{chosen.strategy.label} ({camera})")
        out.append(("3d", f"{chosen.strategy.label}: 3-D, {camera} view", _image_png(image)))
    return out


def write_report(card, out_dir, *, timeline=None, gap_study=None, png_exports: bool = True, three_d: bool = True,
                 progress=None) -> Path:
    """Write the report of ``card`` into ``out_dir`` (created if missing); returns the HTML path.

    ``timeline``: a :class:`planner.clinical.timeline.Timeline`; ``gap_study``: ``(gaps_mm,
    achievable_gy, prescription_gy)`` for the achievable-dose-versus-gap chart.

    Besides ``report.html`` the folder receives ``scorecard.json``, ``scorecard.csv``,
    ``timeline.json`` (with a timeline) and, with ``png_exports``, every picture under
    ``images/``; each file is written atomically.

    Parameters
    ----------
    card : Scorecard
        The compared strategies (:func:`planner.clinical.scorecard.compare_strategies`).
    out_dir : str or os.PathLike
        Report folder; its parent must exist and it must not be a file (ValueError
        otherwise).
    timeline : Timeline, optional
        A delay timeline to include.
    gap_study : tuple, optional
        ``(gaps_mm, achievable_gy, prescription_gy)`` for the gap chart, optionally with a
        fourth item, the limit that binds at each gap (shown in a table under the chart).
    png_exports : bool, default True
        Also write each picture as a PNG under ``images/``.
    three_d : bool, default True
        Include 3-D views (needs off-screen rendering).
    progress : callable, optional
        ``progress(message, done, total)`` after each step.

    Returns
    -------
    pathlib.Path
        The path of ``report.html``.
    """
    say = progress or (lambda message, done, total: None)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"report folder {str(out)!r} is a file")
    if not out.parent.exists():
        raise ValueError(f"report folder's parent {str(out.parent)!r} does not exist")
    out.mkdir(exist_ok=True)
    from .charts import plot_gap_curve, plot_timeline

    pictures = _pictures(card, progress=say)
    if gap_study is not None:
        gaps, achievable, rx, *_ = gap_study
        pictures.append(("gap", "Maximum achievable prescription against the separation gap",
                         _figure_png(plot_gap_curve(gaps, achievable, prescription_gy=rx))))
    if timeline is not None:
        pictures.append(("timeline", "Delay of diagnosis: the case after weeks of untreated growth",
                         _figure_png(plot_timeline(timeline.rows(), title=f"Delay timeline: {card.title}"))))
    if three_d:
        say("3-D views", 0, 1)
        pictures += _three_d(card)
    say("writing the report", 0, 1)
    citations = collect_citations()
    used = sorted(_sources_used(card, timeline))

    def section_images(section):
        return "".join(_img(png, caption) if png else f"<p class='muted'>{_esc(caption)}</p>"
                       for s, caption, png in pictures if s == section)

    noms_rows = "".join(f"<tr><td>{_esc(p.name)}</td><td>{_esc(p.finding)}</td><td>{_esc(p.decision)}</td>"
                        f"<td>{_esc(p.reason)}</td></tr>" for p in card.noms.parts)
    sins_rows = "".join(f"<tr><td>{_esc(k.replace('_', ' '))}</td><td>{_esc(c)}</td><td>{p}</td></tr>"
                        for k, (c, p) in card.noms.sins_score.components.items())
    prognosis_rows = "".join(f"<tr><td>{_esc(s.name)}</td><td>{s.total}</td><td>{_esc(s.band)}</td>"
                             f"<td>{_esc(s.survival or '-')}</td><td>{_esc(s.treatment)}</td><td>{_esc(s.source)}</td></tr>"
                             for s in (card.tokuhashi, card.tomita))
    strategies_html = []
    for r in card.ranked():
        block = [f"<h3>{_esc(r.strategy.label)} <span class='muted'>({_esc(r.strategy.kind)})</span></h3>"]
        if r.flags:
            block.append("<ul>" + "".join(f"<li>{_esc(f)}</li>" for f in r.flags) + "</ul>")
        block.append(_estimates_table(r))
        block.append(_achievable_line(r))
        if r.constraints:
            block.append(_constraint_table(r.constraints))
        block.append(f"<div class='grid'>{section_images(r.strategy.key)}</div>")
        strategies_html.append("".join(block))
    timeline_html = ""
    if timeline is not None:
        lines = "".join(f"<tr><td>{p.weeks:g}</td><td>{p.volume_factor:.2f}</td><td>{_esc(p.escc_grade)}</td>"
                        f"<td>{_esc(p.neurological_status)}</td><td>{p.sins}</td>"
                        f"<td class='{'pass' if p.sbrt_alone_ok else 'fail'}'>{'open' if p.sbrt_alone_ok else 'closed'}</td>"
                        f"<td>{_percent(p.ambulatory_probability)}</td><td>{_esc(p.recommendation)}</td></tr>"
                        for p in timeline.points)
        timeline_html = (f"<h2>Delay of diagnosis</h2><table><tr><th>weeks</th><th>volume x</th><th>ESCC</th>"
                         f"<th>neurology</th><th>SINS</th><th>SBRT-alone window</th><th>walking (best)</th>"
                         f"<th>NOMS</th></tr>{lines}</table><p class='muted'>{_esc(timeline.assumption)}</p>"
                         f"{section_images('timeline')}")
    references = "".join(f"<li><b>{_esc(k)}</b>: {_esc(citations.get(k, MISSING_CITATION))}</li>"
                         for k in used)
    document = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>spinesim report: {_esc(card.title)}</title><style>{_STYLE}</style></head>
<body>
<p class="banner">{_esc(DISCLAIMER)}. It must not be used to plan or deliver the treatment of any patient.</p>
<h1>{_esc(card.title)}</h1>
<p class="muted">case {_esc(card.case_id)}{f', after {card.weeks_delay:g} weeks of delay' if card.weeks_delay else ''}</p>
<h2>Case and scores</h2>
<p>ESCC grade measured on the phantom: <b>{_esc(card.escc_grade)}</b>. {_esc(card.noms.escc.explain())}</p>
<table><tr><th>SINS component</th><th>category</th><th>points</th></tr>{sins_rows}
<tr><th>total</th><th>{_esc(card.noms.sins_score.category)}</th><th>{card.sins_total}</th></tr></table>
<table><tr><th>prognosis score</th><th>total</th><th>band</th><th>survival</th><th>treatment</th><th>source</th></tr>{prognosis_rows}</table>
<h2>NOMS: {_esc(card.noms.summary)}</h2>
<table><tr><th>part</th><th>finding</th><th>decision</th><th>reason</th></tr>{noms_rows}</table>
<h2>Strategy scorecard</h2>
{_scorecard_table(card)}
<p>{_esc(card.comment)}</p>
{_not_indicated(card)}
<div class="grid">{section_images('tradeoffs')}{section_images('gap')}</div>
{_gap_table(gap_study) if gap_study is not None else ''}
{section_images('3d')}
<h2>Strategies in detail</h2>
{''.join(strategies_html)}
{timeline_html}
<h2>References</h2><ul>{references}</ul>
<p class="banner">{_esc(DISCLAIMER)}.</p>
</body></html>
"""
    target = out / "report.html"
    write_text_atomically(target, document)
    write_text_atomically(out / "scorecard.json", card.to_json())
    write_text_atomically(out / "scorecard.csv", card.to_csv())
    if timeline is not None:
        write_text_atomically(out / "timeline.json", timeline.to_json())
    if png_exports:
        images = out / "images"
        images.mkdir(exist_ok=True)
        for n, (section, caption, png) in enumerate(p for p in pictures if p[2]):
            name = f"{n:02d}_{section}.png"
            write_atomically(images / name, lambda t, data=png: Path(t).write_bytes(data))
    return target
