"""The `lens grep` command's index: the native index, and the one flag a grep reads (`stage_a.native`) with
the value `Index.open(...).flags` would give it, without importing `lens.index`.

`lens.index` brings the process-wide flags, canary and SLO guard (with `threading`) and `pathlib`: about
half of the command's start-up beyond the interpreter, for one boolean. Here the flag is read from its
sources (`lens._flagsource`: defaults, the TOML file, `LENS_FLAG_*`) and the kill switch from the canary's
state file (`lens._canarystate`), the one the index answers to: `$LENS_STATE_DIR/canary.json` when the
environment names a state directory, else the index directory's own (`lens._state.canary_for`). A grep is
not routed by the canary's share and records nothing in the guard, so this is all it consults. A state
file that cannot be trusted (unreadable, corrupt) is left to the canary itself, through `lens.index`: it
logs it, raises its alert and decides.
"""

from __future__ import annotations

import os

from . import _lens
from ._canarystate import STAGE_FLAGS, STATE_FILE, named_state_file, read_state
from ._discover import index_dir_to_open, locate_index
from ._flagsource import DEFAULTS, initial_values

__all__ = ["GrepIndex", "open_for_grep"]


class GrepIndex:
    """An open native index, its root, and whether a grep takes the native path (`stage_a.native`)."""

    __slots__ = ("native", "root", "stage_a_native")

    def __init__(self, native: _lens.NativeIndex, stage_a_native: bool) -> None:
        self.native, self.stage_a_native = native, stage_a_native
        self.root: str = native.root


def open_for_grep(index: str | os.PathLike[str] | None) -> GrepIndex:
    """The index `index` names (its directory or the repository root), else the nearest `.lens` upward
    (`NoIndexError` when there is none); the errors of `Index.open` otherwise."""
    index_dir = index_dir_to_open(locate_index(index))
    native = _lens.NativeIndex.open(index_dir)
    return GrepIndex(native, _stage_a_native(native, index_dir))


def _stage_a_native(native: _lens.NativeIndex, index_dir: str) -> bool:
    # `index_dir` as opened (`native.index_dir` gives the same `str`).
    state_file = named_state_file() or os.path.join(os.path.realpath(index_dir), STATE_FILE)
    state, unusable = read_state(state_file)
    if unusable:
        from .index import Index

        return bool(Index(native).flags["stage_a.native"])
    values = dict(DEFAULTS)
    for batch, _source in initial_values():
        values.update(batch)
    if state is not None and state["killed"]:
        values.update(dict.fromkeys(STAGE_FLAGS, False))
    return bool(values["stage_a.native"])
