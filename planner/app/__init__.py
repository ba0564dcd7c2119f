"""The resident app (``spinesim teach``): a browser planner with live replanning and
teaching feedback, built on trame.

:mod:`.store` keeps residents' progress in SQLite; :mod:`.live` holds one resident's live
plan (a warm influence matrix re-optimised on each slider change) and checks every value the
page sends; :mod:`.images` draws the fast views (slices as PNG, DVH as SVG) in milliseconds;
:mod:`.resident` is one resident's session without the browser (case, decision, views as
plain values); :mod:`.ui` binds it to a trame server (plan and background threads) and
:mod:`.layout` draws the page; :mod:`.launcher` starts one trame process per resident session
(one trame process has one shared state), with an idle timeout and a cap on sessions.

May import: scenes, kernels, planner.common, planner.radiotherapy, planner.clinical,
planner.pictures. Nothing from planner.cli. trame and PyVista are imported inside functions.
"""
