"""Scripted scenario sweeps: a TOML spec in, one tidy table and trade-off plots out.

:mod:`.spec` reads and validates a sweep spec and expands it into scenarios (standard
library only, so a typo is refused in milliseconds, before anything heavy is imported);
:mod:`.store` is the result store (one SQLite database per sweep, one row per scenario keyed
by a stable hash of its resolved parameters, dose arrays in an npz side store) and its
tidy export (CSV, Parquet); :mod:`.evaluate` turns a batch of scenarios into rows with the
public planning and scorecard API (the task function Dask workers import);
:mod:`.execute` runs a sweep on a local process pool or a Dask cluster, resumably;
:mod:`.report` draws the trade-off plots and writes the HTML page. Shipped example specs
live in ``examples/``. Teaching and research only, not for clinical use.

May import: scenes, kernels, planner.common, planner.radiotherapy, planner.clinical,
planner.pictures. Nothing from planner.cli or planner.app.
"""
