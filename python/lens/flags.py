"""Runtime feature flags: which path each query takes, and the tunables the stages read.

`lens.flags` holds the process-wide values; every `Index` has `idx.flags`, whose own overrides win over
the process-wide values. Writes happen under a lock and publish a fresh immutable snapshot, so a reader
(`snapshot()`, which the pipeline calls once per query) always sees one consistent set of values, never a
half-applied change, and any thread may flip a flag while others search. Every change is logged as a
structlog event (what, old, new, why, source) and kept in a bounded history.

Initial values of the process-wide flags come from `DEFAULTS`, then a TOML file, then `LENS_FLAG_*`
environment variables, each read once, on the flags' first use (not at import: `import lens` reads no
files; see `load_initial` and `Flags(on_first_use=...)`).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType

from ._flagsource import (
    DEFAULTS,
    ENV_PREFIX,
    FlagError,
    env_name,
    flags_file,
    initial_values,
    read_env,
    read_toml,
)
from ._flagsource import coerce as _coerce
from ._log import get_logger
from ._record import Frozen

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    _FlagsBase = Mapping[str, Any]
else:
    _FlagsBase = Mapping

__all__ = [
    "DEFAULTS",
    "ENV_PREFIX",
    "FlagChange",
    "FlagError",
    "Flags",
    "default_flags_file",
    "env_name",
    "load_initial",
]

_log = get_logger("lens.flags")

_HISTORY = 256


class FlagChange(Frozen):
    """One recorded flag change: what, old, new, why and who (`source`: "api", "env:NAME", "file:PATH",
    "kill_switch", ...), at a wall-clock time. Immutable, compared and printed by value."""

    __slots__ = ("at", "name", "new", "old", "reason", "source")
    _FIELDS = ("name", "old", "new", "reason", "source", "at")

    name: str
    old: Any
    new: Any
    reason: str | None
    source: str
    at: float

    def __init__(self, name: str, old: Any, new: Any, reason: str | None, source: str, at: float) -> None:
        self._set(name=name, old=old, new=new, reason=reason, source=source, at=at)

    def as_dict(self) -> dict[str, Any]:
        return {
            "flag": self.name,
            "old": self.old,
            "new": self.new,
            "reason": self.reason,
            "source": self.source,
            "at": self.at,
        }


def default_flags_file(environ: Mapping[str, str] | None = None) -> Path:
    """`$LENS_FLAGS_FILE`, else `$XDG_CONFIG_HOME/lens/flags.toml` (`~/.config/lens/flags.toml`)."""
    from pathlib import Path

    return Path(flags_file(environ))


class Flags(_FlagsBase):
    """A thread-safe set of flag values, optionally layered over a parent set."""

    def __init__(
        self,
        parent: Flags | None = None,
        values: Mapping[str, Any] | None = None,
        *,
        on_first_use: Callable[[Flags], object] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        # Run once, before the first read or write (the process-wide flags load their file and
        # environment here); re-entrant, so the loader may set flags itself.
        self._first_use = on_first_use
        self._first_use_lock = threading.RLock()
        self._parent = parent
        self._own: dict[str, Any] = {} if parent is not None else dict(DEFAULTS)
        self._history: deque[FlagChange] = deque(maxlen=_HISTORY)
        for name, value in (values or {}).items():
            self._own[name] = _coerce(name, value)
        # The published view: replaced (never mutated) on every write, so a reader holding it sees one
        # consistent set. A child caches its merged view keyed on the parent's published object.
        self._published: Mapping[str, Any] = MappingProxyType(dict(self._own))
        self._merged: tuple[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]] | None = None

    # -- reads --------------------------------------------------------------------------------
    def snapshot(self) -> Mapping[str, Any]:
        """Every flag's effective value at one instant, as a read-only mapping. Cheap: no lock is
        taken unless a flag changed since the last call."""
        if self._first_use is not None:
            self._run_first_use()
        own = self._published
        if self._parent is None:
            return own
        parent = self._parent.snapshot()
        cached = self._merged
        if cached is not None and cached[0] is parent and cached[1] is own:
            return cached[2]
        merged = MappingProxyType({**parent, **own})
        self._merged = (parent, own, merged)
        return merged

    def _run_first_use(self) -> None:
        with self._first_use_lock:
            loader = self._first_use
            if loader is None:
                return
            self._first_use = None
            loader(self)

    def __getitem__(self, name: str) -> Any:
        snap = self.snapshot()
        if name not in snap:
            raise KeyError(name)
        return snap[name]

    def __iter__(self) -> Iterator[str]:
        return iter(DEFAULTS)

    def __len__(self) -> int:
        return len(DEFAULTS)

    def overrides(self) -> dict[str, Any]:
        """The values set on this layer itself (for the process-wide flags: all of them)."""
        if self._first_use is not None:
            self._run_first_use()
        return dict(self._published)

    # -- writes -------------------------------------------------------------------------------
    def __setitem__(self, name: str, value: Any) -> None:
        self.set(name, value)

    def set(self, name: str, value: Any, *, reason: str | None = None, source: str = "api") -> None:
        """Set a flag, recording who changed it and why."""
        value = _coerce(name, value)
        if self._first_use is not None:
            self._run_first_use()
        with self._lock:
            old = self._own[name] if name in self._own else self._parent_value(name)
            self._own[name] = value
            self._published = MappingProxyType(dict(self._own))
            self._history.append(FlagChange(name, old, value, reason, source, time.time()))
        if old != value:
            _log.info("flag_changed", flag=name, old=old, new=value, reason=reason, source=source)

    def set_many(self, values: Mapping[str, Any], *, reason: str | None = None, source: str = "api") -> None:
        """Set several flags in one step: no reader sees some of them changed and others not."""
        checked = {name: _coerce(name, value) for name, value in values.items()}
        if self._first_use is not None:
            self._run_first_use()
        changes: list[FlagChange] = []
        with self._lock:
            now = time.time()
            for name, value in checked.items():
                old = self._own[name] if name in self._own else self._parent_value(name)
                self._own[name] = value
                changes.append(FlagChange(name, old, value, reason, source, now))
            self._published = MappingProxyType(dict(self._own))
            self._history.extend(changes)
        for c in changes:
            if c.old != c.new:
                _log.info("flag_changed", flag=c.name, old=c.old, new=c.new, reason=reason, source=source)

    def _parent_value(self, name: str) -> Any:
        return self._parent[name] if self._parent is not None else None

    def reset(self, name: str, *, reason: str | None = "reset", source: str = "api") -> None:
        """Drop this layer's override so the parent's value shows through again (for the process-wide
        flags: back to the default)."""
        if self._parent is None:
            self.set(name, DEFAULTS[name], reason=reason, source=source)
            return
        _coerce(name, DEFAULTS[name])  # unknown names fail here
        with self._lock:
            if name not in self._own:
                return
            old = self._own.pop(name)
            self._published = MappingProxyType(dict(self._own))
            new = self._parent[name]
            self._history.append(FlagChange(name, old, new, reason, source, time.time()))
        if old != new:
            _log.info("flag_changed", flag=name, old=old, new=new, reason=reason, source=source)

    def history(self) -> list[FlagChange]:
        """Recent changes (at most 256), oldest first."""
        if self._first_use is not None:
            self._run_first_use()
        with self._lock:
            return list(self._history)

    # -- initial values -----------------------------------------------------------------------
    def load_toml(self, path: str | os.PathLike[str]) -> int:
        """Apply a TOML file of flag values; returns how many it set. Raises `FlagError` for a bad file
        (unknown flag, wrong type, invalid TOML); nothing is applied then."""
        checked = read_toml(path)
        if checked:
            self.set_many(checked, reason="initial value", source=f"file:{os.fspath(path)}")
        return len(checked)

    def load_env(self, environ: Mapping[str, str] | None = None) -> int:
        """Apply `LENS_FLAG_*` variables; returns how many it set. Raises `FlagError` for a variable
        that names no flag or holds a value of the wrong type; nothing is applied then."""
        values = read_env(environ)
        for name, (value, var) in values.items():
            self.set(name, value, reason="initial value", source=f"env:{var}")
        return len(values)


def load_initial(
    flags: Flags, *, toml_path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> None:
    """Defaults, then the TOML file (`default_flags_file()` unless given; absent is fine), then
    `LENS_FLAG_*` variables (`lens._flagsource.initial_values`). A bad source is logged and skipped rather
    than raised: it runs on the flags' first use, and an unusable flags file must not make a search
    fail."""
    for values, source in initial_values(toml_path, environ):
        flags.set_many(values, reason="initial value", source=source)
