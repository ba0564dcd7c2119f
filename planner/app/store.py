"""Residents' progress (decisions, scores, cases done) in an SQLite file.

Every write is one transaction. A file that is not a spinesim progress database (not SQLite,
another program's SQLite, a newer schema, or damaged) is refused with a clear message and
never written to: it is opened read-only for the checks, and read-write only once they pass.
Several session processes share one file: SQLite's locking serialises their writes.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProgressStore", "StoreError", "default_store_path", "Progress"]

#: PRAGMA application_id of spinesim progress files ('SPNS' in ASCII), so another program's
#: SQLite file is recognised and left alone.
APPLICATION_ID = 0x53504E53
SCHEMA_VERSION = 1
_SQLITE_HEADER = b"SQLite format 3\x00"
_SCHEMA = """
CREATE TABLE decisions (
    id INTEGER PRIMARY KEY,
    resident TEXT NOT NULL,
    case_id TEXT NOT NULL,
    strategy TEXT NOT NULL,
    noms_strategy TEXT,
    decided_at REAL NOT NULL
);
CREATE TABLE plans (
    id INTEGER PRIMARY KEY,
    resident TEXT NOT NULL,
    case_id TEXT NOT NULL,
    strategy TEXT,
    gap_mm REAL, dose_gy REAL, fractions INTEGER, protocol TEXT,
    achievable_gy REAL, constraints_failed INTEGER,
    saved_at REAL NOT NULL
);
CREATE INDEX decisions_resident ON decisions (resident);
CREATE INDEX plans_resident ON plans (resident);
"""


class StoreError(RuntimeError):
    """The progress file cannot be used (the message says why and that it was left untouched)."""


@dataclass(frozen=True)
class Progress:
    """One resident's progress: decisions (case, strategy, NOMS's choice, agreed), saved plans
    and the cases done (a decision made), oldest first."""

    resident: str
    decisions: tuple
    plans: tuple

    @property
    def cases_done(self) -> tuple:
        seen = []
        for decision in self.decisions:
            if decision["case_id"] not in seen:
                seen.append(decision["case_id"])
        return tuple(seen)

    @property
    def agreement(self) -> float | None:
        judged = [d for d in self.decisions if d["noms_strategy"]]
        return sum(d["strategy"] == d["noms_strategy"] for d in judged) / len(judged) if judged else None


def default_store_path() -> Path:
    """The progress file in the user's data folder (XDG on Linux, Application Support on
    macOS, %APPDATA% on Windows)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "spinesim" / "progress.sqlite"


def _refuse(path: Path, why: str) -> StoreError:
    return StoreError(f"{path}: {why}; it was left untouched (choose another file with --db)")


def check_store_file(path: str | os.PathLike) -> None:
    """Refuse (StoreError) a file that exists and is not a healthy spinesim progress database.

    A missing or empty file passes: it becomes a new database.

    Parameters
    ----------
    path : path-like
        The progress file.
    """
    path = Path(path)
    if path.is_dir():
        raise _refuse(path, "is a folder, not a progress file")
    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(_SQLITE_HEADER))
    except OSError as error:
        raise _refuse(path, f"cannot be read ({error.strerror})") from None
    if header != _SQLITE_HEADER:
        raise _refuse(path, "is not an SQLite database (not a spinesim progress file)")
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            application = connection.execute("PRAGMA application_id").fetchone()[0]
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if application != APPLICATION_ID:
                raise _refuse(path, "is another program's SQLite database, not a spinesim progress file")
            if version > SCHEMA_VERSION:
                raise _refuse(path, f"was written by a newer spinesim (schema {version}, this one reads {SCHEMA_VERSION})")
            health = connection.execute("PRAGMA quick_check").fetchone()[0]
            if health != "ok":
                raise _refuse(path, f"is damaged ({health})")
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        raise _refuse(path, f"is damaged or unreadable ({error})") from None


class ProgressStore:
    """Residents' progress in one SQLite file (created with its folder when missing).

    Parameters
    ----------
    path : path-like
        The progress file; an existing file must be a healthy spinesim progress database
        (StoreError otherwise, before anything is written).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> store = ProgressStore(pathlib.Path(tempfile.mkdtemp()) / "p.sqlite")
    >>> store.record_decision("ana", "t10_rcc_escc2", "sbrt_24gy_2fx", noms_strategy="separation_sbrt_27gy_3fx")
    >>> store.progress("ana").cases_done
    ('t10_rcc_escc2',)
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        check_store_file(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._connection = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False, isolation_level=None)
        if new:
            self._create()

    def _create(self) -> None:
        db = self._connection
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("PRAGMA user_version").fetchone()[0] == 0:  # another process may have won the race
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _transaction(self):
        store = self

        class _Transaction:
            def __enter__(self):
                store._connection.execute("BEGIN IMMEDIATE")
                return store._connection

            def __exit__(self, kind, value, trace):
                store._connection.execute("ROLLBACK" if kind else "COMMIT")
                return False

        return _Transaction()

    def close(self) -> None:
        """Close the file."""
        self._connection.close()

    def record_decision(self, resident: str, case_id: str, strategy: str, *, noms_strategy: str | None = None) -> None:
        """Record a resident's decision on a case (one transaction)."""
        with self._transaction() as db:
            db.execute("INSERT INTO decisions (resident, case_id, strategy, noms_strategy, decided_at) VALUES (?, ?, ?, ?, ?)",
                       (resident, case_id, strategy, noms_strategy, time.time()))

    def complete_decision(self, resident: str, case_id: str, noms_strategy: str) -> None:
        """Add NOMS's choice to the resident's latest decision on the case that lacks it (the
        decision is stored at once; NOMS's answer comes seconds later)."""
        with self._transaction() as db:
            db.execute("UPDATE decisions SET noms_strategy = ? WHERE id = (SELECT MAX(id) FROM decisions WHERE "
                       "resident = ? AND case_id = ? AND noms_strategy IS NULL)", (noms_strategy, resident, case_id))

    def record_plan(self, resident: str, case_id: str, **plan) -> None:
        """Record a plan the resident saved: strategy, gap_mm, dose_gy, fractions, protocol,
        achievable_gy, constraints_failed (one transaction)."""
        columns = ("strategy", "gap_mm", "dose_gy", "fractions", "protocol", "achievable_gy", "constraints_failed")
        unknown = set(plan) - set(columns)
        if unknown:
            raise ValueError(f"record_plan: unknown fields {sorted(unknown)}; allowed: {', '.join(columns)}")
        with self._transaction() as db:
            db.execute(f"INSERT INTO plans (resident, case_id, {', '.join(columns)}, saved_at) VALUES (?, ?, "
                       f"{', '.join('?' * len(columns))}, ?)",
                       (resident, case_id, *[plan.get(c) for c in columns], time.time()))

    def progress(self, resident: str) -> Progress:
        """A resident's decisions and saved plans, oldest first."""
        db = self._connection
        db.row_factory = sqlite3.Row
        try:
            decisions = tuple(dict(r) for r in db.execute(
                "SELECT case_id, strategy, noms_strategy, decided_at FROM decisions WHERE resident = ? ORDER BY id",
                (resident,)))
            plans = tuple(dict(r) for r in db.execute(
                "SELECT case_id, strategy, gap_mm, dose_gy, fractions, protocol, achievable_gy, constraints_failed, "
                "saved_at FROM plans WHERE resident = ? ORDER BY id", (resident,)))
        finally:
            db.row_factory = None
        return Progress(resident, decisions, plans)
