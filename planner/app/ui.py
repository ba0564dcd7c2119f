"""The trame page of one resident session (one process per session: trame's state is shared
by every browser connected to a process).

Fast changes (gap, dose, fractions, surrogate, protocol, weights) are checked, merged into
one pending change and applied on the plan thread; a storm of slider events collapses into
the newest values. Heavy changes (strategy, beams, weeks) rebuild the live plan with a progress
bar; each carries a generation number and a newer change makes an older result be dropped.
The scorecard, timeline, 3-D view and printable summary are computed on a background thread
at a lower priority, so they never hold up a slider. A slider update is a few warm-started
iterations: its figures are provisional (the page says 'refining...') and depend on the
slider's history; once the sliders rest the plan thread converges the plan (cancelled by the
next change) and the headline, constraint table, DVH and slices show the settled plan.
Run it with ``python -m planner.app.ui --port P ...`` (:mod:`planner.app.launcher` does).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import sys
import tempfile
import traceback

from planner.common.safety import DISCLAIMER

from .live import GAP_MAX_MM, GAP_STEP_MM, SURROGATES, BEAMS_RANGE, WEEKS_MAX, regimen_menu
from .resident import ResidentModel

__all__ = ["TeachApp", "main"]

_FAST = ("gap_mm", "dose_gy", "fractions", "surrogate", "protocol")


def _lower_priority() -> None:
    """Let the background thread (scorecard, timeline, 3-D, rebuilds) yield the cores to the
    slider updates: on Linux a thread has its own nice value."""
    import threading

    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # not Linux, or not allowed: run at the same priority
        pass


class _Superseded(Exception):
    """A scorecard started ahead for a case the resident has since left."""


class TeachApp:
    """Binds a :class:`ResidentModel` to a trame server's state."""

    def __init__(self, server, model: ResidentModel):
        self.server, self.model = server, model
        self.state = server.state
        self.plan_lane = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="plan")
        self.background = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="background",
                                                                initializer=_lower_priority)
        self.pending = {}
        self.draining = False
        self.generation = 0
        self.card_ahead = None  # (case, weeks, future) of the scorecard started when the case opened
        self.timeline = None
        self.report_dir = tempfile.mkdtemp(prefix="spinesim-teach-")
        server.serve["summary"] = self.report_dir
        self._defaults()
        for name in _FAST:
            self.state.change(name)(self._make_handler(name))
        self.state.change(*[f"w_{k}" for k in self.weight_keys])(self._on_weights)
        self.state.change("n_beams", "weeks", "strategy")(self._on_heavy)
        self.camera = "posterior"
        self.state.change("camera")(self._on_camera)

    # -- state ----------------------------------------------------------------------------
    def _defaults(self):
        from planner.clinical.scorecard import DEFAULT_WEIGHTS
        from planner.radiotherapy.constraints import protocols

        s = self.state
        self.weight_keys = tuple(DEFAULT_WEIGHTS)
        s.update({"resident": self.model.resident, "disclaimer": DISCLAIMER, "step": "pick",
                  "cases": self.model.cases(), "case_id": "", "vignette": {}, "strategies": [], "choice": None,
                  "decision_label": "", "busy": False, "busy_text": "", "busy_value": 0, "error": "", "show_error": False,
                  "gap_mm": 0.0, "dose_gy": 24.0, "fractions": 2, "surrogate": "cord", "protocol": "hytec",
                  "n_beams": 9, "weeks": 0, "strategy": None, "achievable_gy": None, "ptv_d90_gy": None,
                  "constraint_rows": [], "failed": 0, "dvh_svg": "", "img_axial": "", "img_sagittal": "",
                  "img_closeup": "", "img_3d": "", "three_d_note": "", "img_timeline": "", "timeline_summary": "",
                  "noms_summary": "", "noms_label": "", "noms_parts": [], "side_by_side": [], "ranked": [],
                  "card_comment": "", "agreed": False, "update_count": 0, "recorded": False,
                  "escalated_gy": None, "binding_text": "", "img_phantom": "",
                  "camera": "posterior", "card_ready": False, "provisional": False, "server_ms": None, "plan_note": "",
                  "regimen_text": "", "report_url": "", "tab": "plan", "regimens": [f"{d:g} Gy / {f} fx" for d, f in regimen_menu()],
                  "regimen_pick": None, "protocols": sorted(protocols()), "surrogates": list(SURROGATES),
                  "gap_max": GAP_MAX_MM, "gap_step": GAP_STEP_MM, "beams_min": BEAMS_RANGE[0], "beams_max": BEAMS_RANGE[1],
                  "weeks_max": WEEKS_MAX, "weight_keys": list(self.weight_keys), "case_file": None,
                  **{f"w_{k}": float(v) for k, v in DEFAULT_WEIGHTS.items()}, **self.model.progress_state()})
        self.state.change("regimen_pick")(self._on_regimen)

    def _push(self, values: dict):
        with self.state:
            self.state.update(values)

    def _error(self, message: str):
        self._push({"error": message, "show_error": True})

    def _revert(self, name: str):
        """Put the page's control back to the value in force (after refusing a value)."""
        value = getattr(self.model.controls, name)
        self.state[name] = value

    # -- fast changes -----------------------------------------------------------------------
    def _make_handler(self, name):
        def handler(**kwargs):
            raw = kwargs.get(name)
            current = getattr(self.model.controls, name)
            if raw == current and name not in self.pending:
                return
            try:
                value = self.model.check(name, raw)
            except (ValueError, TypeError) as error:
                self._error(str(error))
                self._revert(name)
                return
            if value == current and name not in self.pending:
                return
            self._queue({name: value})
        return handler

    def _on_weights(self, **kwargs):
        raw = {k: self.state[f"w_{k}"] for k in self.weight_keys}
        try:
            weights = self.model.check("weights", raw)
        except (ValueError, TypeError) as error:
            self._error(str(error))
            return
        self._queue({"weights": weights})

    def _on_camera(self, camera=None, **kwargs):
        from planner.pictures.three_d.render import CAMERAS

        if camera == self.camera:
            return
        if not isinstance(camera, str) or camera not in CAMERAS:
            self._error(f"camera must be one of {', '.join(CAMERAS)}")
            self.state.camera = self.camera
            return
        self.camera = camera
        self._refresh_three_d(delay_s=0.0)

    def _on_regimen(self, regimen_pick, **kwargs):
        if not regimen_pick:
            return
        menu = {f"{d:g} Gy / {f} fx": (d, f) for d, f in regimen_menu()}
        if not isinstance(regimen_pick, str) or regimen_pick not in menu:
            self._error(f"regimen must be one of {', '.join(menu)}")
            return
        dose, fractions = menu[regimen_pick]
        try:
            self.model.check("fractions", fractions)
        except ValueError as error:
            self._error(str(error))
            return
        self._push({"dose_gy": dose, "fractions": fractions})

    def _queue(self, change: dict):
        self.pending.update(change)
        if set(change) != {"weights"} and not self.state.provisional:
            # The figures on the page are no longer the settled plan's: say so at once, before
            # the plan thread has the quick update.
            self._push({"provisional": True})
        if not self.draining:
            self.draining = True
            asyncio.ensure_future(self._drain())

    async def _drain(self):
        loop = asyncio.get_running_loop()
        try:
            while self.pending:
                changes, self.pending = self.pending, {}
                from dataclasses import replace

                # The event loop owns the controls; the plan thread only reads them.
                self.model.controls = replace(self.model.controls, **changes)
                try:
                    values = await loop.run_in_executor(
                        self.plan_lane, lambda: self.model.apply(changes, controls_set=True))
                except ValueError as error:
                    session = self.model.session  # back to the rules the plan has
                    if session is not None:
                        self.model.controls = replace(self.model.controls, protocol=session.protocol,
                                                      fractions=session.regimen.fractions, surrogate=session.surrogate,
                                                      dose_gy=session.regimen.dose_gy, gap_mm=session.gap_mm)
                    self._error(str(error))
                    self._push({k: getattr(self.model.controls, k) for k in _FAST})
                    continue
                except Exception as error:  # never let a bad change take the session down
                    traceback.print_exc()
                    self._error(f"could not update the plan: {error}")
                    continue
                self._push(values)
            self._refresh_three_d()
        finally:
            self.draining = False

    def _refresh_three_d(self, delay_s: float = 0.6):
        """Once the sliders have rested ``delay_s``: converge the plan (on the plan thread,
        stopped by a newer change) and show the settled views, then the escalation and the 3-D
        view (seconds of rendering: on the background thread, dropped when a newer change comes)."""
        self.three_d_token = getattr(self, "three_d_token", 0) + 1
        token, generation = self.three_d_token, self.generation

        def superseded():
            return token != self.three_d_token or generation != self.generation or bool(self.pending)

        async def run():
            await asyncio.sleep(delay_s)
            if superseded() or self.model.session is None:
                return
            loop = asyncio.get_running_loop()
            try:
                settled = await loop.run_in_executor(self.plan_lane, lambda: self.model.settle(cancelled=superseded))
                if settled is None or superseded():
                    return  # a newer change came: it refreshes again once the sliders rest
                self._push(settled)
                frozen = await loop.run_in_executor(self.plan_lane, self.model.frozen_session)
                escalated = await loop.run_in_executor(self.background, self.model.escalated, frozen)
                if token == self.three_d_token and not self.pending:
                    self._push(escalated)
                inputs = await loop.run_in_executor(self.plan_lane, self.model.three_d_inputs)
                values = await loop.run_in_executor(self.background, self.model.render_three_d, inputs, self.camera)
            except Exception as error:
                traceback.print_exc()
                values = {"three_d_note": f"3-D view failed: {error}"}
            if token == self.three_d_token:
                self._push(values)
        asyncio.ensure_future(run())

    # -- heavy changes ------------------------------------------------------------------------
    def _on_heavy(self, n_beams=None, weeks=None, strategy=None, **kwargs):
        if self.model.case is None or self.model.decision is None:
            return
        changes = {}
        for name, raw in (("n_beams", n_beams), ("weeks", weeks), ("strategy", strategy)):
            if raw is None or raw == getattr(self.model.controls, name):
                continue
            try:
                changes[name] = self.model.check(name, raw)
            except (ValueError, TypeError) as error:
                self._error(str(error))
                self.state[name] = getattr(self.model.controls, name)
        if not changes:
            return
        from dataclasses import replace

        controls = replace(self.model.controls, **changes)
        if "strategy" in changes:
            controls = self.model._controls_for(changes["strategy"], controls)
            self.state.update({k: getattr(controls, k) for k in _FAST})
        self.model.controls = controls
        self._rebuild(card="weeks" in changes)

    def _rebuild(self, *, card: bool):
        self.generation += 1
        asyncio.ensure_future(self._build(self.generation, card=card))

    def _progress(self, generation, loop):
        def report(message, done, total):
            if generation == self.generation:
                loop.call_soon_threadsafe(self._push, {"busy_text": message, "busy_value": 100 * done / max(total, 1)})
        return report

    async def _build(self, generation: int, *, card: bool):
        loop = asyncio.get_running_loop()
        self._push({"busy": True, "busy_text": "building the plan (scene, beams, influence matrix)", "busy_value": 0})
        try:
            # The resident waits for this plan: it is built at normal priority on the plan thread
            # (slider changes meanwhile are merged and applied after it), skipped if superseded.
            session = await loop.run_in_executor(self.plan_lane, lambda: None if generation != self.generation
                                                 else self.model.build_session())
            if session is None or generation != self.generation:
                return  # a newer change superseded this one
            values = await loop.run_in_executor(self.plan_lane, self.model.install, session)
            self._push(values)
            self._refresh_three_d(delay_s=0.0)  # converge the new plan, then its escalation and 3-D view
            if card or self.model.card is None:
                self._push({"busy_text": "scoring the strategies", "card_ready": False})
                result = await self._card_started_ahead()
                if result is None:
                    result = await loop.run_in_executor(self.background, lambda: self.model.compute_card(
                        progress=self._progress(generation, loop)))
                if generation != self.generation:
                    return
                self._push({**self.model.install_card(result), "card_ready": True})
                if self.model.decision and not self.state.recorded:
                    self.model.record_noms(result.noms_key)
                    self._push({**self.model.progress_state(), "recorded": True})
            gaps = [GAP_STEP_MM * i for i in range(int(GAP_MAX_MM / GAP_STEP_MM) + 1)]
            await loop.run_in_executor(self.plan_lane, lambda: session.prepare_gaps(
                gaps, cancelled=lambda: generation != self.generation or bool(self.pending)))
        except Exception as error:
            traceback.print_exc()
            self._error(f"could not build the plan: {error}")
        finally:
            if generation == self.generation:
                self._push({"busy": False, "busy_text": "", "busy_value": 100})

    # -- page actions ---------------------------------------------------------------------------
    def pick_case(self, case_id, *, uploaded: bool = False):
        from scenes.cases import list_cases

        if not uploaded and str(case_id) not in list_cases():  # the page may name teaching cases only
            self._error(f"case: no teaching case named {str(case_id)[:40]!r}")
            return
        try:
            values = self.model.open_case(str(case_id))
        except (ValueError, KeyError, FileNotFoundError) as error:
            self._error(str(error))
            return
        self.generation += 1
        self._push({**values, "step": "decide", "choice": None, "card_ready": False, "recorded": False,
                    "side_by_side": [], "ranked": [], "img_3d": "", "report_url": "", "img_timeline": "",
                    "escalated_gy": None, "binding_text": "", "img_phantom": ""})
        generation = self.generation

        async def phantom():
            loop = asyncio.get_running_loop()
            try:
                values = await loop.run_in_executor(self.background, self.model.render_three_d,
                                                    {"case": self.model.case})
            except Exception as error:
                traceback.print_exc()
                values = {"three_d_note": f"3-D view failed: {error}", "img_3d": ""}
            if generation == self.generation:
                self._push({"img_phantom": values["img_3d"], "three_d_note": values["three_d_note"]})
        asyncio.ensure_future(phantom())
        self._start_card_ahead()

    def _start_card_ahead(self):
        """Start the scorecard while the resident reads the vignette and decides: it plans the
        whole menu on the report's grid (about 25 s for T10 on 2 cores, the longest wait after
        the decision); nothing of it is shown before the decision. Abandoned (at its next
        progress step) when the resident opens another case."""
        case, weeks = self.model.case, self.model.controls.weeks

        def still_wanted(*_):
            if self.model.case is not case:
                raise _Superseded()

        def compute():
            still_wanted()
            return self.model.compute_card(progress=still_wanted)

        self.card_ahead = (case, weeks, self.background.submit(compute))

    async def _card_started_ahead(self):
        """The scorecard started when the case opened, if it is this case's at these weeks
        (None otherwise, or if it failed: then it is computed again)."""
        ahead, self.card_ahead = self.card_ahead, None
        if ahead is None or ahead[0] is not self.model.case or ahead[1] != self.model.controls.weeks:
            return None
        try:
            return await asyncio.wrap_future(ahead[2])
        except Exception:  # superseded or failed: computed again in the caller, which reports errors
            return None

    def upload_case(self, files=None, **kwargs):
        files = files or self.state.case_file
        if not files:
            return
        entry = files[0] if isinstance(files, list) else files
        content = entry.get("content") if isinstance(entry, dict) else None
        if not isinstance(content, (bytes, bytearray)) or len(content) > 1_000_000:
            self._error("case file: upload one TOML case file under 1 MB")
            return
        path = os.path.join(self.report_dir, "uploaded_case.toml")
        with open(path, "wb") as handle:
            handle.write(content)
        self.pick_case(path, uploaded=True)

    def decide(self):
        try:
            values = self.model.decide(self.state.choice)
        except (ValueError, TypeError) as error:
            self._error(f"choose a strategy first ({error})")
            return
        try:
            self.model.record_decision()
        except Exception as error:  # the store is shared with other sessions; say so, keep going
            self._error(f"progress not saved: {error}")
        c = self.model.controls
        self._push({**values, "step": "plan", "strategy": c.strategy, **self.model.progress_state(),
                    **{k: getattr(c, k) for k in _FAST}})
        self._rebuild(card=True)

    def save_plan(self):
        async def run():
            # On the plan thread: the plan is settled first, and the session is not read while
            # a slider update changes it.
            loop = asyncio.get_running_loop()
            try:
                self._push(await loop.run_in_executor(self.plan_lane, self.model.save_plan))
            except Exception as error:
                self._error(f"could not save: {error}")
        asyncio.ensure_future(run())

    def timeline_view(self):
        if self.model.case is None:
            return
        generation = self.generation

        async def run():
            loop = asyncio.get_running_loop()
            self._push({"busy": True, "busy_text": "following the case through weeks of delay"})
            try:
                values, self.timeline = await loop.run_in_executor(self.background, lambda: self.model.compute_timeline(
                    progress=self._progress(generation, loop)))
                self._push(values)
            except Exception as error:
                self._error(f"timeline: {error}")
            finally:
                self._push({"busy": False})
        asyncio.ensure_future(run())

    def summary(self):
        if self.model.card is None:
            self._error("the scorecard is still being computed")
            return

        async def run():
            loop = asyncio.get_running_loop()
            self._push({"busy": True, "busy_text": "writing the printable summary"})
            try:
                html = await loop.run_in_executor(self.background, lambda: self.model.report_html(self.timeline))
                name = f"summary-{self.generation}.html"
                from planner.common.files import write_text_atomically

                write_text_atomically(os.path.join(self.report_dir, name), html)
                self._push({"report_url": f"summary/{name}"})
            except Exception as error:
                self._error(f"summary: {error}")
            finally:
                self._push({"busy": False})
        asyncio.ensure_future(run())


def build(server, model: ResidentModel) -> TeachApp:
    """Create the app's state and page on a trame server."""
    from .layout import build_page

    app = TeachApp(server, model)
    build_page(server, app)
    return app


def _parse(argv):
    parser = argparse.ArgumentParser(prog="python -m planner.app.ui", description="one resident session")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--resident", required=True)
    parser.add_argument("--db", default=None)
    parser.add_argument("--grid-mm", type=float, default=2.5)
    parser.add_argument("--score-grid-mm", type=float, default=None)
    parser.add_argument("--idle-s", type=int, default=900)
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_known_args(argv)[0]


def main(argv=None) -> int:
    """Serve one resident session until it has been idle ``--idle-s`` seconds."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    import numba

    numba.set_num_threads(max(1, min(args.threads, numba.config.NUMBA_NUM_THREADS)))
    from trame.app import get_server

    from .store import ProgressStore

    store = ProgressStore(args.db) if args.db else None
    server = get_server("spinesim-teach", client_type="vue3")
    score_grid = None if args.score_grid_mm is None else (args.score_grid_mm,) * 3  # None: the report's grid
    build(server, ResidentModel(args.resident, store=store, grid_mm=(args.grid_mm,) * 3, score_grid_mm=score_grid))
    sys.argv = sys.argv[:1]  # trame parses the command line too
    server.start(port=args.port, host=args.host, open_browser=False, timeout=args.idle_s, show_connection_info=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
