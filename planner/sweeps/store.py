"""The result store: one SQLite database per sweep, one row per scenario, committed as rows finish.

A row is keyed by the scenario's stable hash (:func:`planner.sweeps.spec.scenario_key`) and
holds its resolved parameters, its status ('ok', or 'infeasible' with the reason: e.g. an
ESCC grade the level cannot reach), every scalar metric (JSON), the wall time, the spinesim
version and the seed. Each batch of rows is one transaction, so a run killed at any moment
(SIGKILL included) leaves whole rows or none; the primary key makes a second write of a row
impossible. The database remembers the spec it was made for (its hash over the scenario
keys) and refuses another one: two sweeps never share a database by accident.

Dose arrays, when a spec asks for them, go to a side store beside the database
(``<db>.doses/<key>.npz``, each written atomically before its row is committed).

:func:`export_table` writes the tidy table (one row per scenario, one column per parameter
and metric) as CSV or Parquet (pyarrow).
"""

from __future__ import annotations

import csv
import json
import sqlite3
import time
from pathlib import Path

from planner.common.files import write_atomically
from planner.common.safety import DISCLAIMER

__all__ = ["ResultStore", "StoreError", "export_table", "tidy_rows", "dose_folder"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS scenarios (
    key TEXT PRIMARY KEY,
    idx INTEGER NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    metrics TEXT NOT NULL,
    dose_file TEXT,
    wall_s REAL NOT NULL,
    version TEXT NOT NULL,
    seed INTEGER NOT NULL,
    finished_at TEXT NOT NULL
);
"""
#: Columns of every exported row before the parameters and metrics.
LEAD_COLUMNS = ("key", "index", "status", "message", "wall_s", "version", "seed", "dose_file")


class StoreError(ValueError):
    """A database that is not this sweep's, or not a sweep database at all."""


def dose_folder(db_path: str | Path) -> Path:
    """The side store of a database's dose arrays: ``<db>.doses/`` beside it.

    Parameters
    ----------
    db_path : str or os.PathLike
        The sweep database.

    Returns
    -------
    pathlib.Path
        The folder (not created here).
    """
    db_path = Path(db_path)
    return db_path.with_name(db_path.name + ".doses")


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("spinesim")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


class ResultStore:
    """A sweep's database, opened for one spec (or read-only, for export and reports).

    Parameters
    ----------
    path : str or os.PathLike
        The SQLite file (created when missing, unless ``spec`` is None).
    spec : Sweep, optional
        The sweep this database holds; a database made for another spec is refused
        (:class:`StoreError`). None opens an existing database to read.
    removed : sequence of str, default ()
        What was removed from the spec before running (impossible combinations, with
        counts), recorded when the database is created, for the report.
    """

    def __init__(self, path, spec=None, *, removed=()):
        self.path = Path(path)
        if spec is None and not self.path.is_file():
            raise StoreError(f"{self.path}: no such sweep database")
        if self.path.exists() and self.path.is_dir():
            raise StoreError(f"{self.path} is a folder, not a sweep database")
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
        self._db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30)
        try:
            self._db.execute("PRAGMA journal_mode=DELETE")  # rollback journal: atomic on SIGKILL
            self._db.execute("PRAGMA synchronous=FULL")
            tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as error:
            self._db.close()
            raise StoreError(f"{self.path}: not a sweep database ({error})") from None
        if spec is None:
            if "meta" not in tables:
                self._db.close()
                raise StoreError(f"{self.path}: not a sweep database (no meta table)")
        else:
            self._claim(spec, tables, removed)
        self.meta = dict(self._db.execute("SELECT name, value FROM meta"))

    def _claim(self, spec, tables, removed) -> None:
        if tables and "meta" not in tables:
            self._db.close()
            raise StoreError(f"{self.path}: an SQLite file that is not a sweep database; choose another --db")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.strip().split(";"):
                if statement.strip():
                    self._db.execute(statement)
            mine = {"spec_hash": spec.spec_hash, "spec_name": spec.name, "spec_source": spec.source,
                    "scenarios": str(len(spec.scenarios)), "seed": str(spec.seed),
                    "dose_arrays": json.dumps(spec.dose_arrays), "varied": json.dumps(list(spec.varied)),
                    "removed": json.dumps(list(removed)),
                    "created_by": _version(), "disclaimer": DISCLAIMER}
            found = dict(self._db.execute("SELECT name, value FROM meta"))
            if found and found.get("spec_hash") != spec.spec_hash:
                raise StoreError(f"{self.path} holds sweep {found.get('spec_name')!r} (from {found.get('spec_source')}, "
                                 f"{found.get('scenarios')} scenarios, spec hash {found.get('spec_hash')}), not this "
                                 f"spec ({spec.name!r}, hash {spec.spec_hash}): two sweeps never share a database; "
                                 "give another --db")
            if not found:
                mine["created_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                self._db.executemany("INSERT INTO meta (name, value) VALUES (?, ?)", mine.items())
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            self._db.close()
            raise

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def finished_keys(self) -> set:
        """The keys of the rows already stored.

        Returns
        -------
        set of str
            Scenario keys.
        """
        return {row[0] for row in self._db.execute("SELECT key FROM scenarios")}

    def count(self) -> int:
        """The number of rows stored.

        Returns
        -------
        int
            Rows in the scenarios table.
        """
        return self._db.execute("SELECT COUNT(*) FROM scenarios").fetchone()[0]

    def commit(self, rows, *, seed: int) -> int:
        """Store finished rows in one transaction (all or none); rows already stored are skipped.

        A row with a ``dose`` entry (a dict of arrays) has it written to the side store
        first, atomically, and referenced from the row.

        Parameters
        ----------
        rows : iterable of dict
            Rows of :func:`planner.sweeps.evaluate.evaluate_batch`: ``key``, ``index``,
            ``params``, ``status``, ``message``, ``metrics``, ``wall_s``, optional ``dose``.
        seed : int
            The sweep's seed, recorded with each row.

        Returns
        -------
        int
            The number of rows newly stored.
        """
        rows = list(rows)
        version = _version()
        for row in rows:
            if row.get("dose") is not None:
                row["dose_file"] = self._write_dose(row["key"], row["dose"])
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._db.execute("BEGIN IMMEDIATE")
        try:
            before = self._db.total_changes
            self._db.executemany(
                "INSERT OR IGNORE INTO scenarios (key, idx, params, status, message, metrics, dose_file, wall_s, version, "
                "seed, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(r["key"], r["index"], json.dumps(r["params"], sort_keys=True), r["status"], r.get("message", ""),
                  json.dumps(r["metrics"], sort_keys=True, allow_nan=False), r.get("dose_file"), float(r["wall_s"]),
                  version, int(seed), stamp) for r in rows])
            added = self._db.total_changes - before
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return added

    def _write_dose(self, key: str, dose: dict) -> str:
        import numpy as np

        folder = dose_folder(self.path)
        folder.mkdir(exist_ok=True)
        target = folder / f"{key}.npz"

        def write(temporary):
            with open(temporary, "wb") as handle:
                np.savez_compressed(handle, **dose)

        write_atomically(target, write)
        return f"{folder.name}/{target.name}"

    def rows(self) -> list[dict]:
        """Every stored row, in the spec's order, with parameters and metrics decoded.

        Returns
        -------
        list of dict
            ``key``, ``index``, ``status``, ``message``, ``wall_s``, ``version``, ``seed``,
            ``dose_file``, ``params`` (dict) and ``metrics`` (dict).
        """
        out = []
        for key, idx, params, status, message, metrics, dose_file, wall, version, seed in self._db.execute(
                "SELECT key, idx, params, status, message, metrics, dose_file, wall_s, version, seed FROM scenarios "
                "ORDER BY idx, key"):
            out.append({"key": key, "index": idx, "status": status, "message": message, "wall_s": wall,
                        "version": version, "seed": seed, "dose_file": dose_file, "params": json.loads(params),
                        "metrics": json.loads(metrics)})
        return out


def _cell(value):
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return value


def tidy_rows(rows) -> tuple[list[str], list[dict]]:
    """One flat record per scenario: lead columns, every parameter, every metric.

    Parameters
    ----------
    rows : list of dict
        Rows of :meth:`ResultStore.rows`.

    Returns
    -------
    columns : list of str
        Lead columns, then parameters, then metrics (the union over rows, first seen first).
    records : list of dict
        One per row; lists and tables are JSON text, a metric a row lacks is None.
    """
    params, metrics = {}, {}
    for row in rows:
        params.update(dict.fromkeys(row["params"]))
        metrics.update(dict.fromkeys(row["metrics"]))
    clash = set(params) & set(metrics) | (set(LEAD_COLUMNS) & (set(params) | set(metrics)))
    if clash:  # pragma: no cover - the evaluator names metrics apart from parameters
        raise ValueError(f"column names used twice: {sorted(clash)}")
    columns = list(LEAD_COLUMNS) + list(params) + list(metrics)
    records = []
    for row in rows:
        record = {name: row[name] for name in LEAD_COLUMNS}
        record.update({name: _cell(row["params"].get(name)) for name in params})
        record.update({name: _cell(row["metrics"].get(name)) for name in metrics})
        records.append(record)
    return columns, records


def export_table(db_path, out_path, *, kind: str) -> Path:
    """Write a sweep's tidy table (one row per scenario) as CSV or Parquet, atomically.

    Parameters
    ----------
    db_path : str or os.PathLike
        The sweep database.
    out_path : str or os.PathLike
        The file to write; its folder must exist.
    kind : str
        'csv' or 'parquet' (pyarrow; ImportError naming the extra when missing).

    Returns
    -------
    pathlib.Path
        ``out_path``.
    """
    if kind not in ("csv", "parquet"):
        raise ValueError(f"kind must be 'csv' or 'parquet', got {kind!r}")
    with ResultStore(db_path) as store:
        columns, records = tidy_rows(store.rows())
        meta = dict(store.meta)
    if kind == "csv":
        def write(temporary):
            with open(temporary, "w", encoding="utf-8", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
                writer.writeheader()
                writer.writerows(records)
                handle.write(f"# {DISCLAIMER}\n")

        return write_atomically(out_path, write)
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError("Parquet export needs pyarrow: pip install 'spinesim[dist]'") from None
    table = pa.Table.from_pylist(records, schema=None) if records else pa.table({c: [] for c in columns})
    table = table.select(columns) if records else table
    table = table.replace_schema_metadata({"disclaimer": DISCLAIMER, "spec_name": meta.get("spec_name", ""),
                                           "spec_hash": meta.get("spec_hash", "")})
    return write_atomically(out_path, lambda temporary: pq.write_table(table, temporary))
