"""Process-wide singletons (the global flags, SLO guard and canary), kept apart so every module can import
them. Creating them reads nothing: the flags take their initial values (TOML file, then `LENS_FLAG_*`) and
the canary reads its state file on first use, both at once, so `import lens` touches no file."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from .canary import STATE_FILE, Canary, default_state_path
from .flags import Flags, load_initial
from .guard import Guard


def _first_use(flags: Flags) -> None:
    load_initial(flags)
    # The canary's state may hold a kill switch that turns stages off: apply it before the first query
    # reads the flags.
    GLOBAL_CANARY.ensure_loaded()


GLOBAL_FLAGS = Flags(on_first_use=_first_use)
GLOBAL_GUARD = Guard()
GLOBAL_CANARY = Canary(GLOBAL_GUARD, GLOBAL_FLAGS, lazy=True)

#: The state directory the host named with `set_state_dir` (None: `$LENS_STATE_DIR`, else none named).
_named_state_dir: Path | None = None
_BY_DIR: dict[str, Canary] = {}
_BY_DIR_LOCK = threading.Lock()


def set_state_dir(path: str | os.PathLike[str] | None) -> None:
    """Name the deployment's state directory: the process-wide canary keeps its state (share, kill switch)
    in `path/canary.json`, and indexes opened from now on use it. None goes back to the default:
    `$LENS_STATE_DIR` when set, else each index directory keeps its own."""
    global _named_state_dir
    _named_state_dir = Path(path) if path is not None else None
    GLOBAL_CANARY.state_path = _named_state_dir / STATE_FILE if _named_state_dir else default_state_path()
    GLOBAL_CANARY._pending_load = True  # read the named directory's state on next use


def state_dir_named() -> bool:
    return _named_state_dir is not None or default_state_path() is not None


def canary_for(index_dir: Path) -> Canary:
    """The canary an index answers to: the process-wide one when the host named a state directory, else
    the index directory's own (one per directory in the process; its kill switch persists in
    `index_dir/canary.json`, and the process-wide kill switch still holds it)."""
    if state_dir_named():
        return GLOBAL_CANARY
    key = os.path.realpath(index_dir)
    with _BY_DIR_LOCK:
        c = _BY_DIR.get(key)
        if c is None:
            # The first read of these flags reads the state file, so that its kill switch holds for a
            # grep (which reads the flags and never routes through the canary) as for a search.
            flags = Flags(parent=GLOBAL_FLAGS, on_first_use=lambda _flags: canary.ensure_loaded())
            canary = Canary(GLOBAL_GUARD, flags, Path(key) / STATE_FILE, lazy=True, parent=GLOBAL_CANARY)
            _BY_DIR[key] = c = canary
        return c
