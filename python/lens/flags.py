"""Runtime feature flags: which path each query takes.

`lens.flags` holds the process-wide values; every `Index` has `idx.flags`, whose own overrides win over
the process-wide values. Reads and writes are atomic under a lock, so any thread may flip a flag while
others search. Every change is logged as a structlog event and kept in a bounded history.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

__all__ = ["DEFAULTS", "FlagChange", "Flags"]

_log = structlog.get_logger("lens.flags")

#: Every flag lens knows, with its default. A flag not named here is an error.
DEFAULTS: dict[str, Any] = {
    # Stage-A: the n-gram index + SIMD path; off means the reference scanner (the baseline path).
    "stage_a.native": True,
    # Stage-B: symbol lookups (definitions first).
    "stage_b.enabled": True,
    # Stage-C: semantic rerank of natural-language queries.
    "stage_c.enabled": True,
}

_HISTORY = 256


@dataclass(frozen=True)
class FlagChange:
    """One recorded flag change."""

    name: str
    old: Any
    new: Any
    reason: str | None
    source: str
    at: float


class Flags(Mapping[str, Any]):
    """A thread-safe set of flag values, optionally layered over a parent set."""

    def __init__(self, parent: Flags | None = None, values: Mapping[str, Any] | None = None) -> None:
        self._lock = threading.Lock()
        self._parent = parent
        self._own: dict[str, Any] = {} if parent is not None else dict(DEFAULTS)
        self._history: deque[FlagChange] = deque(maxlen=_HISTORY)
        for name, value in (values or {}).items():
            self._check(name, value)
            self._own[name] = value

    @staticmethod
    def _check(name: str, value: Any) -> None:
        if name not in DEFAULTS:
            raise KeyError(f"unknown flag {name!r}; known flags: {', '.join(sorted(DEFAULTS))}")
        want = type(DEFAULTS[name])
        if want is bool and not isinstance(value, bool):
            raise TypeError(f"flag {name!r} takes a bool, not {type(value).__name__}")

    def __getitem__(self, name: str) -> Any:
        with self._lock:
            if name in self._own:
                return self._own[name]
        if self._parent is not None:
            return self._parent[name]
        raise KeyError(name)

    def __setitem__(self, name: str, value: Any) -> None:
        self.set(name, value)

    def __iter__(self) -> Iterator[str]:
        return iter(DEFAULTS)

    def __len__(self) -> int:
        return len(DEFAULTS)

    def set(self, name: str, value: Any, *, reason: str | None = None, source: str = "api") -> None:
        """Set a flag, recording who changed it and why."""
        self._check(name, value)
        with self._lock:
            old = self._own.get(name, self._parent[name] if self._parent is not None else None)
            self._own[name] = value
            change = FlagChange(name, old, value, reason, source, time.time())
            self._history.append(change)
        if old != value:
            _log.info("flag_changed", flag=name, old=old, new=value, reason=reason, source=source)

    def reset(self, name: str) -> None:
        """Drop this layer's override so the parent's value shows through again."""
        if self._parent is None:
            self.set(name, DEFAULTS[name], reason="reset", source="api")
            return
        with self._lock:
            self._own.pop(name, None)

    def history(self) -> list[FlagChange]:
        """Recent changes, oldest first."""
        with self._lock:
            return list(self._history)

    def snapshot(self) -> dict[str, Any]:
        """All values at one instant."""
        return {name: self[name] for name in DEFAULTS}
