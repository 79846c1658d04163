"""The operations record: quality-gate runs, nights, release bundles, drills and promotions, in SQLite.

One database file, `lens-ops.db`, in the state directory (`$LENS_STATE_DIR`, as the canary uses it, else
`$XDG_STATE_HOME/lens`, or one the host names). WAL mode, so readers never block the writer; every write
is one short `BEGIN IMMEDIATE` transaction with a busy timeout, so several processes (two nightly runs at
once, a server and a CLI) can share the file without corrupting it or losing a row. Nothing is ever
deleted: every run, night, bundle and promotion stays in the history.

The schema carries a version (`schema_version`); opening a database from a newer lens raises
`StateError` rather than guessing, and an older one is migrated forward in place.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..canary import default_state_path
from ..errors import LensError

__all__ = ["DB_NAME", "SCHEMA_VERSION", "OpsStore", "StateError", "default_state_dir"]

DB_NAME = "lens-ops.db"
SCHEMA_VERSION = 1
_BUSY_MS = 30_000

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS schema_version (
        version INTEGER NOT NULL, applied_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS gate_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        started_at REAL NOT NULL, finished_at REAL NOT NULL,
        golden_name TEXT NOT NULL, golden_sha256 TEXT NOT NULL,
        status TEXT NOT NULL, report TEXT NOT NULL, source TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS nights (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        night TEXT NOT NULL, forced INTEGER NOT NULL,
        started_at REAL NOT NULL, finished_at REAL NOT NULL, duration_s REAL NOT NULL,
        passed INTEGER NOT NULL, lens_version TEXT NOT NULL,
        metrics TEXT NOT NULL, failures TEXT NOT NULL, host_pid INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS releases (
        version TEXT PRIMARY KEY, created_at REAL NOT NULL,
        after_night_id INTEGER NOT NULL, bundle TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS drills (
        id INTEGER PRIMARY KEY AUTOINCREMENT, version TEXT NOT NULL, at REAL NOT NULL,
        passed INTEGER NOT NULL, report TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS promotions (
        id INTEGER PRIMARY KEY AUTOINCREMENT, version TEXT NOT NULL, at REAL NOT NULL,
        signoff TEXT NOT NULL)""",
]


class StateError(LensError, RuntimeError):
    """The state database cannot be used (unreadable, or written by a newer lens)."""


def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The operator's state directory: `$LENS_STATE_DIR` (where the canary keeps its state too), else
    `$XDG_STATE_HOME/lens` (`~/.local/state/lens`), which the operator's own tools use alone."""
    env = os.environ if environ is None else environ
    named = default_state_path(env)
    if named is not None:
        return named.parent
    base = Path(env["XDG_STATE_HOME"]) if env.get("XDG_STATE_HOME") else Path.home() / ".local" / "state"
    return base / "lens"


def _j(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL (a no-op once the file is in WAL). SQLite answers "database is locked" at once,
    without its busy handler, when two connections race to switch a new file: retry within the busy
    timeout, as the handler would (two nightly runs start at once on a fresh state directory)."""
    deadline = time.monotonic() + _BUSY_MS / 1000
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)


class OpsStore:
    """The SQLite record. Safe to share between threads and processes (a connection per operation)."""

    def __init__(self, state_dir: str | os.PathLike[str] | None = None) -> None:
        self.state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
        self.path = self.state_dir / DB_NAME
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._migrate()
        except sqlite3.Error as exc:
            raise StateError(f"cannot use the state database {self.path}: {exc}") from exc
        except OSError as exc:
            raise StateError(f"cannot create the state directory {self.state_dir}: {exc}") from exc

    # -- plumbing ------------------------------------------------------------------------------
    # A connection per operation, closed after it: opening SQLite costs tens of microseconds, and no
    # connection outlives its thread or is left for the garbage collector to close.
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=_BUSY_MS / 1000, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
            _use_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            yield conn
        finally:
            conn.close()

    def _one(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        with self._connect() as conn:
            return conn.execute(sql, args).fetchone()

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self._connect() as conn:
            return conn.execute(sql, args).fetchall()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StateError(f"state database {self.path} is busy or unwritable: {exc}") from exc
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")

    def _migrate(self) -> None:
        with self._write() as c:
            for stmt in _SCHEMA:
                c.execute(stmt)
            row = c.execute("SELECT MAX(version) FROM schema_version").fetchone()
            have = row[0]
            if have is None:
                c.execute("INSERT INTO schema_version VALUES (?, ?)", (SCHEMA_VERSION, time.time()))
            elif have > SCHEMA_VERSION:
                raise StateError(
                    f"{self.path} has schema version {have}; this lens reads up to {SCHEMA_VERSION}: "
                    "upgrade lens"
                )
            # (Future versions migrate `have` -> SCHEMA_VERSION here, one step at a time.)

    def schema_version(self) -> int:
        return int(self._one("SELECT MAX(version) FROM schema_version")[0])

    def integrity_check(self) -> str:
        return str(self._one("PRAGMA integrity_check")[0])

    def journal_mode(self) -> str:
        return str(self._one("PRAGMA journal_mode")[0])

    # -- quality gates -------------------------------------------------------------------------
    def record_gate_run(self, report: Mapping[str, Any], source: str) -> int:
        r = report["quality_gates_report"]
        with self._write() as c:
            cur = c.execute(
                "INSERT INTO gate_runs (started_at, finished_at, golden_name, golden_sha256, status, report,"
                " source) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    r["started_at"],
                    r["finished_at"],
                    r["golden_set"]["name"],
                    r["golden_set"]["sha256"],
                    r["status"],
                    _j(report),
                    source,
                ),
            )
            return int(cur.lastrowid or 0)

    def latest_gate_report(self) -> dict[str, Any] | None:
        row = self._one("SELECT report FROM gate_runs ORDER BY id DESC LIMIT 1")
        return None if row is None else dict(json.loads(row["report"]))

    def gate_runs(self) -> int:
        return int(self._one("SELECT COUNT(*) FROM gate_runs")[0])

    # -- nights --------------------------------------------------------------------------------
    def record_night(
        self,
        night: str,
        forced: bool,
        started_at: float,
        finished_at: float,
        passed: bool,
        lens_version: str,
        metrics: Mapping[str, Any],
        failures: list[str],
    ) -> int:
        with self._write() as c:
            cur = c.execute(
                "INSERT INTO nights (night, forced, started_at, finished_at, duration_s, passed,"
                " lens_version, metrics, failures, host_pid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    night,
                    int(forced),
                    started_at,
                    finished_at,
                    finished_at - started_at,
                    int(passed),
                    lens_version,
                    _j(metrics),
                    _j(failures),
                    os.getpid(),
                ),
            )
            return int(cur.lastrowid or 0)

    def nights(self, after_id: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """Recorded runs after `after_id`, oldest first (the last `limit` of them)."""
        rows = self._all("SELECT * FROM nights WHERE id > ? ORDER BY id", (after_id,))
        out = [
            {
                **dict(r),
                "passed": bool(r["passed"]),
                "forced": bool(r["forced"]),
                "metrics": json.loads(r["metrics"]),
                "failures": json.loads(r["failures"]),
            }
            for r in rows
        ]
        return out[-limit:] if limit else out

    def last_night_id(self) -> int:
        return int(self._one("SELECT COALESCE(MAX(id), 0) FROM nights")[0])

    # -- releases ------------------------------------------------------------------------------
    def add_release(self, version: str, bundle: Mapping[str, Any]) -> None:
        with self._write() as c:
            if c.execute("SELECT 1 FROM releases WHERE version = ?", (version,)).fetchone():
                raise StateError(f"release {version} was already cut; cut a new rc number")
            after = c.execute("SELECT COALESCE(MAX(id), 0) FROM nights").fetchone()[0]
            c.execute("INSERT INTO releases VALUES (?, ?, ?, ?)", (version, time.time(), after, _j(bundle)))

    def release(self, version: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM releases WHERE version = ?", (version,))
        if row is None:
            return None
        return {
            "version": row["version"],
            "created_at": row["created_at"],
            "after_night_id": row["after_night_id"],
            "bundle": json.loads(row["bundle"]),
        }

    def releases(self) -> list[dict[str, Any]]:
        rows = self._all("SELECT version FROM releases ORDER BY created_at")
        return [r for r in (self.release(row["version"]) for row in rows) if r is not None]

    def record_drill(self, version: str, passed: bool, report: Mapping[str, Any]) -> None:
        with self._write() as c:
            c.execute(
                "INSERT INTO drills (version, at, passed, report) VALUES (?, ?, ?, ?)",
                (version, time.time(), int(passed), _j(report)),
            )

    def latest_drill(self, version: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM drills WHERE version = ? ORDER BY id DESC LIMIT 1", (version,))
        if row is None:
            return None
        return {"at": row["at"], "passed": bool(row["passed"]), "report": json.loads(row["report"])}

    def record_promotion(self, version: str, signoff: Mapping[str, Any]) -> None:
        with self._write() as c:
            c.execute(
                "INSERT INTO promotions (version, at, signoff) VALUES (?, ?, ?)",
                (version, time.time(), _j(signoff)),
            )

    def promotions(self) -> list[dict[str, Any]]:
        rows = self._all("SELECT * FROM promotions ORDER BY id")
        return [{"version": r["version"], "at": r["at"], "signoff": json.loads(r["signoff"])} for r in rows]
