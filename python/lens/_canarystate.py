"""The canary's state file, read without the canary: where it lives, what it may hold, and reading it.

`lens.canary` keeps, writes and acts on the state; the `lens grep` command only needs to know whether a
kill switch holds (it turns `STAGE_FLAGS` off), and learns that here without importing the canary, the
guard, their locks or `pathlib` (see `lens._grepindex`).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

__all__ = ["SHARES", "STAGE_FLAGS", "STATE_FILE", "named_state_file", "parse_state", "read_state"]

SHARES: tuple[int, ...] = (0, 5, 25, 100)
#: The flags a kill switch turns off: everything that makes the new path new.
STAGE_FLAGS: tuple[str, ...] = ("stage_a.native", "stage_b.enabled", "stage_c.enabled")

#: The state file's name, in the state directory the host names or in an index directory.
STATE_FILE = "canary.json"


def named_state_file(environ: Mapping[str, str] | None = None) -> str | None:
    """`$LENS_STATE_DIR/canary.json` when the environment names a state directory, else None."""
    env = os.environ if environ is None else environ
    if env.get("LENS_STATE_DIR"):
        return os.path.join(env["LENS_STATE_DIR"], STATE_FILE)
    return None


def read_state(
    path: str | os.PathLike[str], parse: Callable[[bytes], tuple[dict[str, Any] | None, str]] | None = None
) -> tuple[dict[str, Any] | None, str]:
    """The state in the file at `path` (checked by `parse`, default `parse_state`): (state, ""); (None, "")
    when there is no file; (None, why) when it is unreadable or corrupt, which a reader must take as
    possibly holding a kill switch."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return None, ""
    except OSError as exc:
        return None, f"unreadable: {exc}"
    state, why = (parse or parse_state)(raw)
    return (state, "") if state is not None else (None, f"corrupt: {why}")


_MAX_STATE_BYTES = 1 << 20


def _number_or_none(v: object) -> bool:
    import math  # here: a grep that finds no state file never needs it

    return v is None or (isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v))


def parse_state(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    """The canary state in `raw` (the state file's bytes), checked field by field, or None and why not.

    Self-contained and total: it never raises, whatever the bytes (not UTF-8, not JSON, nested past the
    parser's depth, fields of the wrong type), so that a damaged file can only fail safe."""
    try:
        if len(raw) > _MAX_STATE_BYTES:
            return None, f"{len(raw)} bytes, more than a state file holds"
        import json  # a state file is read once per process, when there is one

        doc = json.loads(raw.decode("utf-8"))
        if not isinstance(doc, dict):
            return None, f"the top level is a {type(doc).__name__}, not an object"
        share = doc.get("share")
        if isinstance(share, bool) or not isinstance(share, int) or share not in SHARES:
            return None, f"share {share!r} is not one of {SHARES}"
        killed = doc.get("killed", False)
        if not isinstance(killed, bool):
            return None, f"killed {killed!r} is not a bool"
        reason = doc.get("kill_reason")
        if reason is not None and not isinstance(reason, str):
            return None, f"kill_reason {reason!r} is not a str"
        for name in ("killed_at", "updated_at"):
            if not _number_or_none(doc.get(name)):
                return None, f"{name} {doc.get(name)!r} is not a number"
        before = doc.get("flags_before_kill") or {}
        if not isinstance(before, dict) or not all(
            k in STAGE_FLAGS and isinstance(v, bool) for k, v in before.items()
        ):
            return None, f"flags_before_kill {before!r} is not a map of stage flags to bools"
        history = doc.get("history") or []
        if not isinstance(history, list) or not all(isinstance(e, dict) for e in history):
            return None, "history is not a list of events"
        return {
            "share": share,
            "killed": killed,
            "kill_reason": reason,
            "killed_at": doc.get("killed_at"),
            "flags_before_kill": dict(before),
            "updated_at": doc.get("updated_at"),
            "history": list(history),
        }, ""
    except Exception as exc:  # total by design: any failure to parse is "corrupt"
        return None, f"{type(exc).__name__}: {exc}"[:200]
