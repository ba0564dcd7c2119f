"""The page of :mod:`planner.app.ui`: case picker, decide-first step, then the workspace with
the controls on the left and the views (slices, DVH, constraint table, scorecard, 3-D,
timeline, progress) on the right, the maximum achievable prescription as the headline.
Readable at 1280 x 800.
"""

from __future__ import annotations

__all__ = ["build_page"]

_PIXELATED = "image-rendering: pixelated; width: 100%; border: 1px solid #999; background: #000"


def _table(html, heads, row_var, cells, *, row_style=None, table_id=None, long_text=()):
    with html.Table(id=table_id, style="border-collapse: collapse; width: 100%; font-size: 13px"):
        with html.Tr():
            for head in heads:
                html.Th(head, style="text-align: left; border-bottom: 2px solid #666; padding: 2px 6px")
        with html.Tr(v_for=f"(r, i) in {row_var}", key="i", style=(row_style,) if row_style else None):
            for cell in cells:
                # A long-text cell may break inside a word: its text carries long unbroken source
                # keys and cohort names ('laufer_high_dose_hypofractionated'), which otherwise widen
                # the scorecard's side-by-side cards past the page's right edge at 1280 px.
                wrap = "; overflow-wrap: anywhere" if cell in long_text else ""
                html.Td(f"{{{{ r.{cell} }}}}", style="padding: 2px 6px; border-bottom: 1px solid #ddd" + wrap)


def _controls(v3, html, app):
    with html.Div(classes="pa-3", style="font-size: 14px"):
        html.Div("Strategy", classes="text-subtitle-2")
        v3.VSelect(v_model=("strategy",), items=("strategies",), item_title="label", item_value="key", density="compact",
                   hide_details=True, id="strategy")
        html.Div("Separation gap {{ gap_mm }} mm", classes="text-subtitle-2 mt-3")
        with html.Div(id="gap"):
            v3.VSlider(v_model=("gap_mm",), min=0, max=("gap_max",), step=("gap_step",), hide_details=True,
                       show_ticks="always", density="compact", color="primary")
        html.Div("Dose and fractions", classes="text-subtitle-2 mt-2")
        v3.VSelect(v_model=("regimen_pick",), items=("regimens",), label="regimen menu", density="compact",
                   hide_details=True)
        with html.Div(style="display: flex; gap: 8px", classes="mt-2"):
            v3.VTextField(v_model=("dose_gy",), label="dose (Gy)", density="compact", hide_details=True, id="dose")
            v3.VTextField(v_model=("fractions",), label="fractions", density="compact", hide_details=True, id="fractions")
        v3.VSelect(v_model=("surrogate",), items=("surrogates",), label="cord surrogate", density="compact",
                   hide_details=True, classes="mt-2", id="surrogate")
        v3.VSelect(v_model=("protocol",), items=("protocols",), label="protocol", density="compact", hide_details=True,
                   classes="mt-2", id="protocol")
        html.Div("Beams {{ n_beams }} (rebuilds the matrix)", classes="text-subtitle-2 mt-2")
        with html.Div(id="beams"):
            v3.VSlider(v_model=("n_beams",), min=("beams_min",), max=("beams_max",), step=1, hide_details=True,
                       density="compact")
        html.Div("Delay of diagnosis {{ weeks }} weeks (re-plans)", classes="text-subtitle-2 mt-2")
        with html.Div(id="weeks"):
            v3.VSlider(v_model=("weeks",), min=0, max=("weeks_max",), step=1, hide_details=True, density="compact")
        with v3.VExpansionPanels(classes="mt-2"):
            with v3.VExpansionPanel(title="Scorecard weights"):
                with v3.VExpansionPanelText():
                    for key in app.weight_keys:
                        html.Div(f"{key.replace('_', ' ')} {{{{ w_{key} }}}}", style="font-size: 12px")
                        v3.VSlider(v_model=(f"w_{key}",), min=0, max=5, step=0.25, hide_details=True, density="compact")
        with html.Div(classes="mt-3", style="display: flex; gap: 6px; flex-wrap: wrap"):
            v3.VBtn("Save plan", click=app.save_plan, size="small", id="save")
            v3.VBtn("Printable summary", click=app.summary, size="small", id="summary")
        html.A("open the printable summary", v_if="report_url", href=("report_url",), target="_blank", id="summary-link")


def _pick(v3, html, app):
    with html.Div(v_if="step == 'pick'", classes="pa-4"):
        html.H2("Pick a case")
        html.Div("Your progress: {{ progress_text }}", id="progress-pick", style="font-size: 13px")
        with html.Div(style="display: grid; grid-template-columns: repeat(3, 1fr); gap: 12px"):
            with v3.VCard(v_for="c in cases", key="c.id", classes="pa-3", variant="outlined"):
                html.Div("{{ c.title }}", classes="text-subtitle-1 font-weight-bold")
                html.Div("{{ c.level }} · {{ c.histology }} · ECOG {{ c.ecog }} · {{ c.neurology }}",
                         style="font-size: 13px")
                html.Div("{{ c.findings }}", style="font-size: 12px; color: #555")
                v3.VBtn("Open", click=(app.pick_case, "[c.id]"), size="small", classes="mt-2",
                        __properties=[("data_case", "data-case")], data_case=("c.id",))
        html.Div("Or load your own case file (.toml):", classes="mt-4")
        v3.VFileInput(v_model=("case_file",), accept=".toml", density="compact", label="case file",
                      update_modelValue=(app.upload_case, "[$event]"), style="max-width: 420px")


def _decide(v3, html, app):
    with html.Div(v_if="step == 'decide'", classes="pa-4", style="display: flex; gap: 16px"):
        with html.Div(style="flex: 1 1 60%"):
            html.H2("{{ vignette.title }}")
            html.Div("{{ vignette.level }} · {{ vignette.histology }} · neurology: {{ vignette.neurology }} · "
                     "ECOG {{ vignette.ecog }}", classes="text-subtitle-1")
            html.Div("Imaging: {{ vignette.findings }}")
            html.P("{{ vignette.description }}", style="color: #555; font-size: 13px")
            html.H3("Decide first: which strategy would you choose?", classes="mt-3")
            html.Div("No numbers are shown until you commit; then NOMS and the scorecard are revealed.",
                     style="font-size: 13px")
            with v3.VRadioGroup(v_model=("choice",), id="choices", density="compact"):
                v3.VRadio(v_for="s in strategies", key="s.key", label=("s.label",), value=("s.key",))
            v3.VBtn("Commit to this decision", click=app.decide, color="primary", disabled=("!choice",), id="commit")
        with html.Div(style="flex: 1 1 40%"):
            html.Div("The phantom (3-D, viewed from behind)", classes="text-subtitle-2")
            html.Img(src=("img_phantom",), v_if="img_phantom", id="view-phantom", style="max-width: 100%")
            html.Div("drawing the phantom...", v_if="!img_phantom && !three_d_note")
            html.Div("{{ three_d_note }}")


def _workspace(v3, html, app):
    with html.Div(v_if="step == 'plan'", classes="pa-3"):
        with html.Div(style="display: flex; align-items: baseline; gap: 18px; flex-wrap: wrap"):
            html.Div("Maximum achievable prescription", classes="text-subtitle-1")
            # A slider update's figure is provisional (a few iterations, it depends on the slider's
            # history): greyed and marked until the plan has converged at these settings.
            html.Span("{{ achievable_gy == null ? '...' : achievable_gy.toFixed(1) + ' Gy' }}", id="achievable",
                      style=("'font-size: 30px; font-weight: bold; color: ' + (provisional ? '#8a9bb5' : '#0d47a1')",))
            # Hidden, not removed, once settled: the headline row keeps its layout.
            html.Span("refining...", id="refining",
                      style=("'font-size: 13px; font-style: italic; color: #8a6d00; visibility: ' + "
                             "(provisional && achievable_gy != null ? 'visible' : 'hidden')",))
            html.Span("(GTV Dmin with every limit kept, this plan scaled) · {{ regimen_text }} · PTV D90 "
                      "{{ ptv_d90_gy }} Gy · {{ failed }} limit(s) failed", style="font-size: 13px")
            html.Span("escalated: {{ escalated_gy }} Gy, bound by {{ binding_text }}", v_if="escalated_gy",
                      id="escalated", style="font-size: 12px; color: #333")
            html.Span("server {{ server_ms }} ms · update {{ update_count }}", id="server-ms",
                      style="font-size: 11px; color: #888")
            html.Span("{{ update_count }}", id="update-count", style="display: none")
        html.Div("Your decision: {{ decision_label }}. NOMS: {{ noms_label || 'being computed...' }}",
                 style="font-size: 13px")
        with v3.VTabs(v_model=("tab",), density="compact"):
            for key, title in (("plan", "Dose & limits"), ("score", "Scorecard & NOMS"), ("three", "3-D"),
                               ("timeline", "Delay timeline"), ("progress", "Progress")):
                v3.VTab(title, value=key, id=f"tab-{key}")
        with html.Div(v_if="tab == 'plan'", classes="mt-2"):
            with html.Div(style="display: grid; grid-template-columns: 1fr 1fr 1fr; gap: 8px"):
                for name, title in (("axial", "Axial"), ("sagittal", "Sagittal"), ("closeup", "Gap close-up (30 mm)")):
                    with html.Div():
                        html.Div(title, style="font-size: 12px")
                        html.Img(src=(f"img_{name}",), id=f"view-{name}", style=_PIXELATED)
            with html.Div(style="display: grid; grid-template-columns: 1fr 1fr; gap: 8px", classes="mt-2"):
                with html.Div():
                    html.Div("Constraints (pass / within 5% / fail)", classes="text-subtitle-2")
                    _table(html, ("structure", "metric", "limit Gy", "value Gy", "status", "source"), "constraint_rows",
                           ("name", "metric", "limit_text", "value_text", "status", "source"),
                           row_style="{background: r.colour}", table_id="constraints")
                html.Div(v_html=("dvh_svg",), id="dvh", style="width: 100%")
        with html.Div(v_if="tab == 'score'", classes="mt-2", style="font-size: 13px"):
            html.Div("Scoring the strategies... {{ busy_text }}", v_if="!card_ready")
            with html.Div(v_if="card_ready"):
                html.Div("NOMS recommends: {{ noms_label }} ({{ noms_summary }})", classes="text-subtitle-1",
                         id="noms")
                html.Div("{{ agreed ? 'You agreed with NOMS.' : 'You chose differently from NOMS: compare below.' }}")
                _table(html, ("NOMS part", "finding", "decision", "reason", "sources"), "noms_parts",
                       ("name", "finding", "decision", "reason", "sources"))
                with html.Div(style="display: grid; grid-template-columns: 1fr 1fr; gap: 10px", classes="mt-2"):
                    with v3.VCard(v_for="(s, i) in side_by_side", key="i", variant="outlined", classes="pa-2"):
                        html.Div("{{ s.role }}: {{ s.label }} (rank {{ s.rank }}, score {{ s.score }})",
                                 classes="font-weight-bold")
                        _table(html, ("estimate", "value", "source", "what it rests on"), "s.estimates",
                               ("name", "text", "source", "basis"), long_text=("basis",))
                html.Div("Ranking with your weights", classes="text-subtitle-2 mt-2")
                _table(html, ("#", "strategy", "score", "limits", "NOMS", "Pareto", "you"), "ranked",
                       ("rank", "strategy", "score", "constraints", "noms", "pareto", "you"), table_id="ranking")
                html.Div("{{ card_comment }}", style="color: #555")
        with html.Div(v_if="tab == 'three'", classes="mt-2"):
            with v3.VBtnToggle(v_model=("camera",), mandatory=True, density="compact", id="camera"):
                for camera in ("posterior", "lateral", "axial"):
                    v3.VBtn(camera, value=camera, size="small")
            html.Div("{{ three_d_note }}")
            html.Img(src=("img_3d",), v_if="img_3d", id="view-3d", style="max-width: 100%; max-height: 560px")
        with html.Div(v_if="tab == 'timeline'", classes="mt-2"):
            v3.VBtn("Compute the delay timeline", click=app.timeline_view, size="small", v_if="!img_timeline",
                    id="timeline-go")
            html.Div("{{ timeline_summary }}")
            html.Img(src=("img_timeline",), v_if="img_timeline", id="view-timeline", style="max-width: 100%")
        with html.Div(v_if="tab == 'progress'", classes="mt-2"):
            html.Div("{{ progress_text }}", id="progress-text")
            _table(html, ("case", "your choice", "NOMS", "agreed"), "progress_rows", ("case", "choice", "noms", "agreed"))


def build_page(server, app) -> None:
    """Lay out the page on the server's UI."""
    from trame.ui.vuetify3 import SinglePageWithDrawerLayout
    from trame.widgets import html
    from trame.widgets import vuetify3 as v3

    with SinglePageWithDrawerLayout(server, full_height=True) as layout:
        layout.title.set_text("spinesim teach")
        with layout.toolbar:
            v3.VSpacer()
            html.Div("{{ resident }} · case: {{ case_id || 'none' }}", style="font-size: 13px; margin-right: 12px")
            v3.VBtn("cases", click="step = 'pick'", size="small", variant="outlined")
            v3.VProgressLinear(v_if="busy", indeterminate=("busy_value <= 0",), model_value=("busy_value",),
                               absolute=True, location="bottom", color="orange", id="busy")
        with layout.drawer as drawer:
            drawer.width = 300
            html.Div("Controls appear once you have decided.", v_if="step != 'plan'", classes="pa-3")
            with html.Div(v_if="step == 'plan'"):
                _controls(v3, html, app)
        with layout.content:
            # The safety line first, on every page: teaching and research only.
            html.Div("{{ disclaimer }}", style="font-size: 11px; color: #a00; padding: 4px 12px", id="disclaimer")
            html.Div("{{ busy_text }}", v_if="busy", id="busy-text",
                     style="background: #fff3e0; padding: 2px 12px; font-size: 13px")
            _pick(v3, html, app)
            _decide(v3, html, app)
            _workspace(v3, html, app)
            v3.VSnackbar("{{ error }}", v_model=("show_error",), timeout=6000, color="red-darken-2", id="error")
