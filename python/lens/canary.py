"""The canary: which share of queries takes the new path, the staged rollout and the kill switch.

A query takes the new path (native Stage-A and every enabled later stage) when its key falls inside the
current share (0, 5, 25 or 100 %); otherwise it takes the baseline path (the reference scanner, no later
stages). The split is a keyed hash of a caller-given key (a user or session id) or of the query, so the
same key always lands on the same side, and a key inside 5 % stays inside at 25 % and 100 %.

`progress()` moves 5 -> 25 -> 100 only while the guard reports healthy and the new route has enough
queries in the guard's window to judge by. `kill_switch(reason)` drops the share to 0 % and turns the
new stages' flags off at once. `start(reason)` begins a rollout at 5 % (and lifts a kill switch,
restoring the flags it turned off). With no state file the share is 100 %: no rollout in progress.

The state (share, kill switch, the flags a kill turned off, recent events) lives in a small JSON file,
written atomically (temp file, fsync, `os.replace`), so it survives restarts: a process that starts
while the kill switch is on turns the stages off again.

Scope: the state is a deployment's, never a user's. When the host names a state directory
(`$LENS_STATE_DIR`, or `lens.set_state_dir(path)`), the process-wide canary keeps `canary.json` there and
every index uses it (the runbook's deployment). Otherwise each index directory has its own canary
(`INDEX_DIR/canary.json`, shared by every process that opens that index), whose flags every `Index` of
that directory inherits; the process-wide `lens.canary` then lives in memory, and its kill switch still
holds every index of the process.
"""

from __future__ import annotations

import os
import threading
import time
import zlib
from collections.abc import Mapping
from pathlib import Path

from ._canarystate import SHARES, STAGE_FLAGS, STATE_FILE, named_state_file, parse_state, read_state
from ._log import get_logger
from .errors import LensError
from .flags import Flags
from .guard import Guard

TYPE_CHECKING = False  # typing is not imported at run time (its import is a cost `import lens` avoids)
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "SHARES",
    "STAGE_FLAGS",
    "STATE_FILE",
    "Canary",
    "CanaryError",
    "default_state_path",
    "parse_state",
]

_log = get_logger("lens.canary")

_STATE_VERSION = 1
_HISTORY = 50


class CanaryError(LensError, RuntimeError):
    """The canary cannot do what was asked (unhealthy guard, kill switch active, bad share)."""

    def __init__(self, message: str, reasons: list[str] | None = None) -> None:
        super().__init__(message)
        self.reasons = reasons or []


def default_state_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """`$LENS_STATE_DIR/canary.json` when the host names a state directory; else None: the process-wide
    canary then keeps its state in memory, and each index keeps its own in its index directory (an
    embedded library does not reach across the applications of a user)."""
    named = named_state_file(environ)
    return Path(named) if named is not None else None


def bucket(key: str | bytes) -> int:
    """The key's place in 0..9999.

    CRC-32 rather than `hash()`: Python salts str hashes per process, and the split must be the same in
    every process, after a restart and across releases. A Fibonacci multiply (a bijection mod 2**32)
    mixes every input bit into the low digits. Not cryptographic: a split needs spread, not secrecy, and
    this runs on the query path (about 0.3 us, against 1.1 us for blake2b); a chi-square test guards the
    spread."""
    data = key if isinstance(key, bytes) else key.encode("utf-8", "surrogatepass")
    return ((zlib.crc32(data) * 0x9E3779B1) & 0xFFFFFFFF) % 10_000


class Canary:
    """The rollout state for the queries that consult it (by default, every index in the process)."""

    def __init__(
        self,
        guard: Guard,
        flags: Flags,
        state_path: str | os.PathLike[str] | None = None,
        *,
        lazy: bool = False,
        parent: Canary | None = None,
    ) -> None:
        self.guard = guard
        self.flags = flags
        #: Where the state persists; None keeps it in memory (no state directory named).
        self.state_path: Path | None = Path(state_path) if state_path is not None else default_state_path()
        #: A canary whose kill switch also holds here (an index's canary: the process-wide one).
        self.parent = parent
        self._lock = threading.Lock()
        # Serialises writers of the state file, each writing the state as of its turn, so an older
        # state never lands after a newer one.
        self._save_lock = threading.Lock()
        # Held while the state file is read: a query that arrives meanwhile waits for the state rather than
        # routing on the defaults (a restarted server's first queries come on several threads at once).
        # Re-entrant, because reading a kill switch sets flags whose first use asks for the state again.
        self._load_lock = threading.RLock()
        self._loading = False
        self._share = 100
        self._killed = False
        self._kill_reason: str | None = None
        self._killed_at: float | None = None
        self._flags_before_kill: dict[str, Any] = {}
        self._history: list[dict[str, Any]] = []
        self._updated_at: float | None = None
        self._saved = True
        # `lazy`: read the state file on first use rather than now (the process-wide canary, so that
        # `import lens` reads no files).
        self._pending_load = lazy
        if not lazy:
            self._load()

    def ensure_loaded(self) -> None:
        """Read the state file now if it has not been read yet; other threads wait until it has."""
        if self._pending_load:
            with self._load_lock:
                if self._pending_load and not self._loading:
                    self._loading = True
                    try:
                        with self._save_lock:
                            self._load()
                    finally:
                        self._loading = False
                        self._pending_load = False

    # -- the hot path -------------------------------------------------------------------------
    def route(self, key: str | bytes) -> str:
        """ "new" or "baseline" for this key (a user or session id, or the query itself)."""
        if self._pending_load:
            self.ensure_loaded()
        parent = self.parent
        if parent is not None and parent.killed:
            return "baseline"  # the process-wide kill switch holds every index
        share = self._share  # one read: a concurrent change applies to the next query
        if share >= 100:
            return "new"
        if share <= 0:
            return "baseline"
        return "new" if bucket(key) < share * 100 else "baseline"

    @property
    def share(self) -> int:
        self.ensure_loaded()
        return self._share

    @property
    def killed(self) -> bool:
        self.ensure_loaded()
        return self._killed

    # -- operations ---------------------------------------------------------------------------
    def progress(self, reason: str | None = None) -> dict[str, Any]:
        """Move to the next share (5 -> 25 -> 100) if the guard is healthy and the new route has at least
        `guard.config.min_samples` queries in the window; raises `CanaryError` saying why not. At 100 %
        there is nowhere to go and nothing changes."""
        self.ensure_loaded()
        if self._killed:
            raise CanaryError(f"the kill switch is active ({self._kill_reason}); call start(reason) first")
        share = self._share
        if share >= 100:
            return self.status()
        if share == 0:
            raise CanaryError("no rollout in progress (0 %); call start(reason) to begin at 5 %")
        health = self.guard.health()
        if health["status"] != "healthy":
            _log.warning("canary_progress_blocked", share=share, reasons=health["reasons"])
            raise CanaryError(
                f"guard is {health['status']}: " + "; ".join(health["reasons"]), health["reasons"]
            )
        have, need = self.guard.evidence("new"), self.guard.config.min_samples
        if have < need:
            why = f"only {have} queries on the new route in the window, need {need}"
            _log.warning("canary_progress_blocked", share=share, reasons=[why])
            raise CanaryError(f"not enough evidence: {why}", [why])
        nxt = SHARES[SHARES.index(share) + 1] if share in SHARES else 100
        with self._lock:
            # The checks above ran without the lock; a kill switch (or another progress) since then wins.
            if self._killed or self._share != share:
                raise CanaryError("the canary changed while progress() was checking; check status and retry")
            self._share = nxt
            self._event("progress", share, nxt, reason)
        self._save()
        _log.info("canary_progressed", old=share, new=nxt, reason=reason)
        return self.status()

    def start(self, reason: str) -> dict[str, Any]:
        """Begin a rollout at 5 %. Lifts an active kill switch, setting the flags it turned off back to
        what they were before it."""
        self.ensure_loaded()
        restore: dict[str, Any] = {}
        with self._lock:
            old = self._share
            if self._killed:
                restore = dict(self._flags_before_kill)
                self._killed = False
                self._kill_reason = None
                self._killed_at = None
                self._flags_before_kill = {}
            self._share = SHARES[1]
            self._event("start", old, self._share, reason)
        if restore:
            self.flags.set_many(restore, reason=f"canary start: {reason}", source="canary")
        self._save()
        _log.info("canary_started", old=old, new=self._share, reason=reason, restored=restore or None)
        return self.status()

    def set_share(self, share: int, reason: str) -> dict[str, Any]:
        """Set the share by hand (an operator's override; no health check). Must be one of `SHARES`,
        and the kill switch must be off."""
        self.ensure_loaded()
        if share not in SHARES:
            raise CanaryError(f"share must be one of {SHARES}, not {share!r}")
        if self._killed:
            raise CanaryError(f"the kill switch is active ({self._kill_reason}); call start(reason) first")
        with self._lock:
            old = self._share
            self._share = share
            self._event("set_share", old, share, reason)
        self._save()
        _log.info("canary_share_set", old=old, new=share, reason=reason)
        return self.status()

    def kill_switch(self, reason: str) -> dict[str, Any]:
        """Send every query down the baseline path now: share 0 %, the new stages' flags off, the reason
        recorded and persisted, and a critical `kill_switch_activated` alert raised."""
        self.ensure_loaded()
        if not isinstance(reason, str) or not reason.strip():
            raise CanaryError("kill_switch needs a reason")
        with self._lock:
            old = self._share
            # The share first: from this instruction on, routing sends every query to the baseline.
            self._share = 0
            if not self._killed:
                self._flags_before_kill = {name: self.flags[name] for name in STAGE_FLAGS}
            self._killed = True
            self._kill_reason = reason
            self._killed_at = time.time()
            self._event("kill_switch", old, 0, reason)
        self.flags.set_many(
            dict.fromkeys(STAGE_FLAGS, False), reason=f"kill switch: {reason}", source="kill_switch"
        )
        self._save()
        _log.critical("kill_switch_activated", old_share=old, reason=reason)
        self.guard.alert(
            "kill_switch_activated", "critical", f"kill switch: {reason}", value=float(old), threshold=0.0
        )
        return self.status()

    def status(self) -> dict[str, Any]:
        """The runbook's `/canary/status` document: `canary_deployment.trafficPercentage`, `nextStage`,
        the kill switch, and queries routed each way (measured by the guard)."""
        self.ensure_loaded()
        with self._lock:
            share, killed = self._share, self._killed
            doc: dict[str, Any] = {
                "trafficPercentage": share,
                "stages": list(SHARES),
                "nextStage": None
                if killed or share >= 100 or share == 0
                else SHARES[SHARES.index(share) + 1]
                if share in SHARES
                else None,
                "killSwitch": {
                    "active": killed,
                    "reason": self._kill_reason,
                    "activatedAt": self._killed_at,
                    "flagsBeforeKill": dict(self._flags_before_kill) or None,
                },
                "updatedAt": self._updated_at,
                "stateFile": str(self.state_path) if self.state_path is not None else None,
                "parentKillSwitch": self.parent.killed if self.parent is not None else None,
                "stateSaved": self._saved,
                "history": list(self._history[-20:]),
            }
        totals = self.guard.totals()
        doc["routed"] = {"new": totals["samples.e2e.new"], "baseline": totals["samples.e2e.baseline"]}
        doc["errors"] = {"new": totals["errors.e2e.new"], "baseline": totals["errors.e2e.baseline"]}
        return {"canary_deployment": doc}

    # -- state file ---------------------------------------------------------------------------
    def _event(self, what: str, old: int, new: int, reason: str | None) -> None:
        self._updated_at = time.time()
        self._history.append(
            {"event": what, "from": old, "to": new, "reason": reason, "at": self._updated_at}
        )
        del self._history[:-_HISTORY]

    def _state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "version": _STATE_VERSION,
                "share": self._share,
                "killed": self._killed,
                "kill_reason": self._kill_reason,
                "killed_at": self._killed_at,
                "flags_before_kill": self._flags_before_kill,
                "updated_at": self._updated_at,
                "history": self._history,
            }

    def _save(self) -> None:
        with self._save_lock:
            self._save_locked()

    def _save_locked(self) -> None:
        state = self._state()
        path = self.state_path
        if path is None:
            return  # in memory only: no state directory named
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            import json
            import tempfile  # here, not at import: it costs `import lens` ~10 ms (random, shutil)

            fd, tmp = tempfile.mkstemp(prefix=".canary.", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(state, fh, indent=1, sort_keys=True)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            self._saved = True
        except OSError as exc:
            # The in-memory state already holds (a kill switch must work on a read-only disk too); the
            # operator sees `stateSaved: false` and this event.
            self._saved = False
            _log.error("canary_state_not_saved", path=str(path), error=str(exc))

    def _load(self) -> None:
        path = self.state_path
        if path is None:
            return
        state, why = read_state(path, parse_state)
        if state is None:
            if why:
                self._fail_safe(why)
            return
        self._share = state["share"]
        self._killed = state["killed"]
        self._kill_reason = state["kill_reason"]
        self._killed_at = state["killed_at"]
        self._flags_before_kill = state["flags_before_kill"]
        self._updated_at = state["updated_at"]
        self._history = state["history"][-_HISTORY:]
        if self._killed:
            self.flags.set_many(
                dict.fromkeys(STAGE_FLAGS, False),
                reason=f"kill switch (restored): {self._kill_reason}",
                source="canary_state",
            )
        _log.info("canary_state_loaded", path=str(path), share=self._share, killed=self._killed)

    def _fail_safe(self, why: str) -> None:
        # A state file we cannot trust might have held a kill switch: serve the baseline until an
        # operator acts (start() or set_share()), rather than guess the rollout was fine.
        self._share = 0
        _log.error("canary_state_unusable", path=str(self.state_path), error=why, share=0)
        self.guard.alert(
            "canary_state_unusable",
            "critical",
            f"canary state file {self.state_path} is unusable ({why}); serving the baseline (0 %) until an "
            "operator calls start() or set_share()",
            value=0.0,
            threshold=0.0,
        )
