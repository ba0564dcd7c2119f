"""One resident session without the browser: the case, the decision, the live plan and what
each view shows, as plain values the page binds to.

:class:`ResidentModel` turns a change into the state the page needs (numbers, table rows,
image URLs, SVG); :mod:`planner.app.ui` runs its fast methods on one plan thread and its
heavy ones on a background thread. Everything here is testable and measurable without
trame (the benchmarks time :meth:`ResidentModel.apply` as the server's part of a slider move).
"""

from __future__ import annotations

import time
from dataclasses import replace

from scenes.cases import list_cases, load_case

from planner.common.safety import DISCLAIMER

from .images import data_url, dvh_svg, slice_png
from .live import FAST_CONTROLS, Controls, LiveSession, check_control

__all__ = ["ResidentModel", "case_vignette", "STATUS_COLOURS"]

#: Constraint-table colours (pass / near / fail), light enough to read black text on.
STATUS_COLOURS = {"pass": "#c8e6c9", "within 5%": "#ffe0a3", "fail": "#ffcdd2", "n/a": "#eeeeee"}


def case_vignette(case) -> dict:
    """The short vignette of a case: level, histology, neurology, ECOG, imaging findings."""
    patient = case.patient
    lesion = case.lesion
    findings = f"ESCC {lesion.requested_grade} (requested), {lesion.kind} lesion" if hasattr(lesion, "kind") else \
        f"ESCC {lesion.requested_grade} (requested)"
    sites = ", ".join(getattr(lesion, "sites", ()) or ())
    return {"id": case.id, "title": case.title, "level": case.level,
            "histology": str(patient.get("histology", "")).replace("_", " "),
            "neurology": str(patient.get("neurology", "")).replace("_", " "), "ecog": patient.get("ecog"),
            "findings": findings + (f"; sites: {sites.replace('_', ' ')}" if sites else ""),
            "description": case.description}


def _clean(value, digits=1):
    return None if value is None or value != value else round(float(value), digits)


class ResidentModel:
    """A resident's session: pick a case, decide, then move the controls.

    Parameters
    ----------
    resident : str
        The resident's name (their progress is stored under it).
    store : ProgressStore or None
        Where decisions and saved plans go (None: nowhere).
    grid_mm : tuple of float
        Planning grid (z, y, x) mm of the live plan: (2.5, 2.5, 2.5) for teaching, coarser for tests.
    score_grid_mm : tuple of float, optional
        Grid (z, y, x) mm the scorecard and the delay timeline plan their strategies on; default
        the report's gap-resolving grid (``GAP_RESOLVING_GRID_MM``), so the app's scorecard is
        the report's and ``spinesim compare``'s. On the live plan's 2.5 mm grid a strategy near
        a cohort's dose floor can fall on the other side (T10 SBRT 24 Gy/2: GTV D95 19.2 Gy and
        the conventional cohort's 62% local control at 2.5 mm, 21.2 Gy and the SBRT cohort's 90%
        on the gap-resolving grid); tests pass a coarse grid for speed.
    """

    def __init__(self, resident: str, *, store=None, grid_mm=(2.5, 2.5, 2.5), score_grid_mm=None):
        from planner.radiotherapy.plan import GAP_RESOLVING_GRID_MM

        self.resident, self.store, self.grid_mm = resident, store, tuple(grid_mm)
        self.score_grid_mm = tuple(GAP_RESOLVING_GRID_MM if score_grid_mm is None else score_grid_mm)
        self.case = None
        self.session = None
        self.card = None
        self.controls = Controls()
        self.strategies = {}
        self.decision = None
        self.updates = 0

    # -- the case and the decision -------------------------------------------------------
    @staticmethod
    def cases() -> list[dict]:
        """The teaching cases' vignettes."""
        return [case_vignette(load_case(name)) for name in list_cases()]

    def open_case(self, case) -> dict:
        """Load a case (id or file) and its strategy menu; no numbers are shown yet."""
        from planner.clinical.menu import standard_strategies

        self.case = load_case(case)
        self.strategies = {s.key: s for s in standard_strategies(self.case)}
        self.card, self.session, self.decision = None, None, None
        self.controls = Controls()
        return {"case_id": self.case.id, "vignette": case_vignette(self.case),
                "strategies": [{"key": k, "label": s.label} for k, s in self.strategies.items()]}

    def decide(self, strategy_key) -> dict:
        """Commit to a strategy (recorded) before any number is shown."""
        key = check_control("strategy", strategy_key, controls=self.controls, strategies=tuple(self.strategies))
        self.decision = key
        self.controls = self._controls_for(key, self.controls)
        return {"decision": key, "decision_label": self.strategies[key].label}

    def record_decision(self, noms_key: str | None = None) -> None:
        """Store the decision (at commit, before NOMS is known: a closed page keeps it)."""
        if self.store is not None and self.decision:
            self.store.record_decision(self.resident, self.case.id, self.decision, noms_strategy=noms_key)

    def record_noms(self, noms_key: str) -> None:
        """Add NOMS's choice to the stored decision once the scorecard has it."""
        if self.store is not None and self.decision:
            self.store.complete_decision(self.resident, self.case.id, noms_key)

    def _controls_for(self, key: str, controls: Controls) -> Controls:
        """The plan settings a strategy implies: its regimen, technique's protocol and gap."""
        from planner.clinical.strategies import TECHNIQUES

        strategy = self.strategies[key]
        gap = next((float(p.option) for p in strategy.procedures
                    if p.name == "separation_surgery" and p.option is not None), 0.0)
        changes = {"strategy": key, "gap_mm": min(gap, 5.0)}
        if strategy.regimen is not None:
            changes.update(dose_gy=strategy.regimen.dose_gy, fractions=strategy.regimen.fractions,
                           protocol=TECHNIQUES[strategy.technique][1])
        return replace(controls, **changes)

    # -- the live plan ----------------------------------------------------------------------
    def build_session(self) -> LiveSession:
        """The live plan for the current controls (seconds: scene, beams, matrix). Does not
        install it: :meth:`install` does, so a newer change can discard an older build."""
        from planner.radiotherapy.plan import Regimen

        strategy = self.strategies.get(self.controls.strategy)
        technique = strategy.technique if strategy is not None and strategy.technique else "sbrt"
        procedures = tuple(p for p in (strategy.procedures if strategy is not None else ())
                           if p.name != "separation_surgery")
        return LiveSession(self.case, regimen=Regimen(float(self.controls.dose_gy), int(self.controls.fractions)),
                           protocol=self.controls.protocol, surrogate=self.controls.surrogate, grid_mm=self.grid_mm,
                           technique=technique, n_beams=self.controls.n_beams, procedures=procedures,
                           weeks=self.controls.weeks)

    def install(self, session: LiveSession) -> dict:
        self.session = session
        return self.apply({"gap_mm": self.controls.gap_mm}, controls_set=True)

    def check(self, name: str, raw):
        """A value from the page, checked (ValueError naming the field and range)."""
        from planner.clinical.scorecard import DEFAULT_WEIGHTS

        return check_control(name, raw, controls=self.controls, strategies=tuple(self.strategies),
                             weight_keys=tuple(DEFAULT_WEIGHTS))

    def apply(self, changes: dict, *, controls_set: bool = False) -> dict:
        """Apply checked fast changes (gap, dose, fractions, surrogate, protocol, weights) on the
        warm matrix; returns the fast views' state and the server time (ms).

        ``controls_set``: the caller has already put the changes into :attr:`controls` (the app
        does, on its event loop, so that the plan thread never writes the controls back)."""
        started = time.perf_counter()
        unknown = set(changes) - set(FAST_CONTROLS)
        if unknown:
            raise ValueError(f"not a re-optimisation control: {sorted(unknown)}")
        if not controls_set:
            self.controls = replace(self.controls, **changes)
        out = {}
        if "weights" in changes and self.card is not None:
            out.update(self.scorecard_state())
        if self.session is None or set(changes) == {"weights"}:
            return out
        c = self.controls
        session = self.session
        state = None
        if (c.protocol, c.fractions, c.surrogate, c.dose_gy) != (session.protocol, session.regimen.fractions,
                                                                 session.surrogate, session.regimen.dose_gy):
            state = session.set_rules(protocol=c.protocol, fractions=c.fractions, surrogate=c.surrogate, dose_gy=c.dose_gy)
        if state is None or c.gap_mm != session.gap_mm:  # one re-optimisation per update
            state = session.set_gap(c.gap_mm)
        snapshot = session.snapshot(state, started=started)
        out.update(self.views(snapshot))
        self.updates += 1
        out["update_count"] = self.updates  # the page shows it: a browser sees each new picture arrive
        out["server_ms"] = round(1000.0 * (time.perf_counter() - started), 1)
        return out

    def views(self, snapshot) -> dict:
        """The fast views of a snapshot: headline, constraint rows, slices and DVH."""
        rx = snapshot.state.regimen.dose_gy
        point = self.session.interface_mm()
        rows = [{**r, "value_text": "n/a" if r["value_gy"] != r["value_gy"] else f"{r['value_gy']:.1f}",
                 "limit_text": f"{r['limit_gy']:.1f}", "colour": STATUS_COLOURS.get(r["status"], "#eee"),
                 "name": r["structure"].replace("_", " ")} for r in snapshot.rows]
        pictures = {f"img_{name}": data_url(slice_png(snapshot.scene, snapshot.dose_gy, prescription_gy=rx, point_mm=point,
                                                      **options))
                    for name, options in (("axial", {"plane": "axial"}), ("sagittal", {"plane": "sagittal"}),
                                          ("closeup", {"plane": "axial", "half_width_mm": 15.0, "pixel_mm": 0.25}))}
        return {"achievable_gy": _clean(snapshot.achievable_gy), "ptv_d90_gy": _clean(snapshot.state.ptv_d90_gy),
                "constraint_rows": rows, "failed": snapshot.failed,
                "dvh_svg": dvh_svg(snapshot.doses, snapshot.rows, prescription_gy=rx),
                "plan_note": snapshot.state.note, "regimen_text": f"{rx:g} Gy / {snapshot.state.regimen.fractions} fx",
                "provisional": not snapshot.state.converged, **pictures}

    def settle(self, *, cancelled=None) -> dict | None:
        """The fast views of the converged plan at the current settings (run on the plan thread
        once the sliders rest: a full optimisation, seconds on the 2.5 mm grid, cancellable).

        A slider update's few iterations leave a provisional plan whose figures depend on the
        slider's history (the page marks it 'refining...'); :meth:`Session.converge
        <planner.radiotherapy.session.Session.converge>` gives the settled one.

        Parameters
        ----------
        cancelled : callable, optional
            Checked after every iteration (e.g. a newer slider move is waiting).

        Returns
        -------
        dict or None
            The views with ``provisional`` False; only that flag when the plan had already
            settled; None when cancelled (nothing changed).
        """
        session = self.session
        if session is None:
            return {}
        if session.converged:
            return {"provisional": False}
        state = session.converge(cancelled=cancelled)
        if state is None:
            return None
        out = self.views(session.snapshot(state))
        self.updates += 1
        out["update_count"] = self.updates
        return out

    def frozen_session(self):
        """A copy of the live session as it is now (its own gap, weights and rules; the caches
        shared), for work on another thread while the sliders go on moving (take it on the
        plan thread)."""
        import copy

        return copy.copy(self.session) if self.session is not None else None

    @staticmethod
    def escalated(session) -> dict:
        """The maximum achievable prescription by the plan's escalation search for a (frozen)
        session, and the limit that binds it (0.1-0.3 s: run when the sliders rest)."""
        from planner.radiotherapy.plan import describe_binding

        if session is None:
            return {}
        gy, _, binding = session.maximum_prescription()
        return {"escalated_gy": _clean(gy), "binding_text": describe_binding(binding)}

    # -- scorecard, NOMS, timeline (background) ----------------------------------------------
    def compute_card(self, *, progress=None):
        """The scorecard of the case's menu at the current delay (seconds; background)."""
        from planner.clinical.scorecard import compare_strategies

        return compare_strategies(self.case, weights=self.controls.weights or None, weeks_delay=self.controls.weeks,
                                  grid_mm=self.score_grid_mm, progress=progress)

    def install_card(self, card) -> dict:
        self.card = card
        return self.scorecard_state()

    def scorecard_state(self) -> dict:
        """NOMS, the side-by-side of the resident's choice and NOMS's, and the ranked table,
        re-ranked for the current weights (no re-planning)."""
        from planner.clinical.scorecard import DEFAULT_WEIGHTS, _comment, _scores

        card = self.card
        weights = {**DEFAULT_WEIGHTS, **(self.controls.weights or {})}
        totals = _scores(card.results, weights)
        keys = [r.strategy.key for r in card.results]
        scores = dict(zip(keys, totals))
        ranking = tuple(sorted(scores, key=lambda k: (-scores[k], keys.index(k))))
        card = replace(card, weights=weights, scores=scores, ranking=ranking,
                       comment=_comment(card.results, scores, ranking, card.noms_key, weights))
        self.card = card
        side = []
        for role, key in (("your choice", self.decision), ("NOMS", card.noms_key)):
            if key is None or key not in keys:
                continue
            result = card.result(key)
            estimates = [{"name": name.replace("_", " "), "text": e.text(), "source": e.source or "none",
                          "basis": e.basis, "verified": "verified" if e.verified else "unverified"}
                         for name, e in result.estimates.items()]
            side.append({"role": role, "label": result.strategy.label, "rank": ranking.index(key) + 1,
                         "score": f"{scores[key]:+.2f}", "estimates": estimates,
                         "flags": "; ".join(result.flags)})
        ranked = [{"rank": r["rank"], "strategy": r["strategy"], "score": f"{r['score']:+.2f}",
                   "constraints": r["constraints"], "noms": "N" if r["noms"] else "", "pareto": "*" if r["pareto"] else "",
                   "you": "you" if r["key"] == self.decision else ""} for r in card.rows()]
        parts = [{"name": p.name, "finding": p.finding, "decision": p.decision, "reason": p.reason,
                  "sources": ", ".join(p.sources)} for p in card.noms.parts]
        return {"noms_summary": card.noms.summary, "noms_key": card.noms_key,
                "noms_label": card.result(card.noms_key).strategy.label if card.noms_key in keys else card.noms_key,
                "noms_parts": parts, "side_by_side": side, "ranked": ranked, "card_comment": card.comment,
                "agreed": self.decision == card.noms_key}

    def compute_timeline(self, *, weeks=(0, 4, 8, 12, 26), progress=None) -> dict:
        """The delay-of-diagnosis timeline chart as a PNG data URL (seconds; background)."""
        from planner.clinical.timeline import timeline
        from planner.pictures.charts import plot_timeline
        from planner.pictures.report import _figure_png

        result = timeline(self.case, weeks=weeks, grid_mm=self.score_grid_mm, progress=progress)
        figure = plot_timeline(result.rows(), title=f"{self.case.title}: delay of diagnosis")
        return {"img_timeline": data_url(_figure_png(figure)), "timeline_summary": result.summary()}, result

    def three_d_inputs(self) -> dict:
        """What the 3-D view draws, taken on the plan thread (milliseconds): the scene, dose,
        prescription and beam angles of the plan now."""
        session = self.session
        if session is None:
            return {"case": self.case}
        return {"scene": session._scene(session.gap_mm), "dose_gy": session.influence.dose_volume(session.weights),
                "prescription_gy": session.regimen.dose_gy, "beams": list(session.gantry_deg)}

    def render_three_d(self, inputs: dict, camera: str = "posterior") -> dict:
        """The 3-D view (anatomy, dose isosurfaces, beams) as a PNG data URL, or why not
        (seconds: run it on the background thread)."""
        import io

        from PIL import Image

        from planner.pictures.three_d.headless import rendering_available
        from planner.pictures.three_d.render import render_3d

        status = rendering_available()
        if not status:
            return {"img_3d": "", "three_d_note": f"3-D view unavailable: {status.reason}"}
        if "scene" not in inputs:
            from scenes.cases import build_scene

            image = render_3d(build_scene(inputs["case"], spacing_mm=self.grid_mm), camera=camera,
                              window_size=(640, 480))
        else:
            image = render_3d(inputs["scene"], dose_gy=inputs["dose_gy"], prescription_gy=inputs["prescription_gy"],
                              beams=inputs["beams"], camera=camera, window_size=(640, 480))
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "PNG")
        return {"img_3d": data_url(buffer.getvalue()), "three_d_note": ""}

    def save_plan(self) -> dict:
        """Record the plan at the current settings, settled first: a provisional figure depends
        on the slider's history (seconds when the plan has not settled yet; run it on the plan
        thread). Returns the progress, and the settled views when settling happened here."""
        if self.store is None or self.session is None:
            return {}
        session = self.session
        out = {}
        if not session.converged:
            out = self.settle()
        snapshot = session.snapshot(session.converge())
        self.store.record_plan(self.resident, self.case.id, strategy=self.controls.strategy, gap_mm=session.gap_mm,
                               dose_gy=session.regimen.dose_gy, fractions=session.regimen.fractions,
                               protocol=session.protocol, achievable_gy=float(snapshot.achievable_gy),
                               constraints_failed=int(snapshot.failed))
        return {**out, **self.progress_state()}

    def progress_state(self) -> dict:
        if self.store is None:
            return {"progress_rows": [], "progress_text": "progress is not being saved"}
        progress = self.store.progress(self.resident)
        rows = [{"case": d["case_id"], "choice": d["strategy"], "noms": d["noms_strategy"] or "",
                 "agreed": "yes" if d["strategy"] == d["noms_strategy"] else "no"} for d in progress.decisions]
        agreement = progress.agreement
        text = (f"{len(progress.cases_done)} case(s) done, {len(progress.decisions)} decision(s), "
                f"{len(progress.plans)} saved plan(s)"
                + (f"; agreed with NOMS {100 * agreement:.0f}% of the time" if agreement is not None else ""))
        return {"progress_rows": rows, "progress_text": text}

    def report_html(self, timeline=None) -> str:
        """The printable summary: the project's HTML report of this case's scorecard."""
        import tempfile
        from pathlib import Path

        from planner.pictures.report import write_report

        with tempfile.TemporaryDirectory() as folder:
            path = write_report(self.card, Path(folder) / "report", timeline=timeline, png_exports=False, three_d=False)
            html = Path(path).read_text(encoding="utf-8")
        heading = (f"<p><b>Resident:</b> {self.resident} &middot; <b>decision:</b> "
                   f"{self.strategies[self.decision].label if self.decision else 'none'} &middot; {DISCLAIMER}</p>")
        return html.replace("<body>", "<body>" + heading, 1)
