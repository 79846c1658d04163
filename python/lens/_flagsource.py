"""Where the process-wide flags' initial values come from: `DEFAULTS`, then a TOML file, then `LENS_FLAG_*`
environment variables, each checked against the flag's type.

Pure reading, no registry: `lens.flags` applies these values to its thread-safe `Flags` (recording each
change), and the `lens grep` command reads the one flag it needs from them without importing that registry,
its locks or `pathlib` (a cost its start-up should not pay; see `lens._grepindex`).
"""

from __future__ import annotations

import os
import sys

from ._log import get_logger
from .errors import LensError

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import Any

__all__ = [
    "DEFAULTS",
    "ENV_PREFIX",
    "FlagError",
    "coerce",
    "env_name",
    "flags_file",
    "initial_values",
    "read_env",
    "read_toml",
]

# The same logger as `lens.flags`: a bad source is reported as the flags' own event.
_log = get_logger("lens.flags")

#: Every flag lens knows, with its default. A flag not named here is an error. The type of the default
#: is the type the flag takes (an int is accepted where a float is wanted).
DEFAULTS: dict[str, Any] = {
    # Stage-A: the n-gram index + SIMD path; off means the reference scanner (the baseline path).
    "stage_a.native": True,
    # Stage-B: symbol lookups (definitions first).
    "stage_b.enabled": True,
    # Stage-C: semantic rerank of natural-language queries.
    "stage_c.enabled": True,
    # Tunables handed to the stages with every call (see `lens.pipeline.StageCall`).
    # How many of the best hits so far Stage-C may rerank.
    "stage_c.rerank_depth": 50,
    # The most time each later stage may spend on one query; the per-call `budget_ms` can only shrink it.
    "stage_b.budget_ms": 300.0,
    "stage_c.budget_ms": 300.0,
}

#: `LENS_FLAG_STAGE_A_NATIVE=0` sets `stage_a.native`; see `env_name`.
ENV_PREFIX = "LENS_FLAG_"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class FlagError(LensError, ValueError):
    """A flag source (TOML file or environment variable) holds a value lens cannot use."""


def env_name(flag: str) -> str:
    """The variable that sets `flag`: `stage_c.rerank_depth` -> `LENS_FLAG_STAGE_C_RERANK_DEPTH`."""
    return ENV_PREFIX + flag.replace(".", "_").upper()


def coerce(name: str, value: Any) -> Any:
    """Check `value` against the flag's type; returns the value to store (ints widen to float)."""
    if name not in DEFAULTS:
        raise KeyError(f"unknown flag {name!r}; known flags: {', '.join(sorted(DEFAULTS))}")
    want = type(DEFAULTS[name])
    if want is bool:
        if not isinstance(value, bool):
            raise TypeError(f"flag {name!r} takes a bool, not {type(value).__name__}")
        return value
    # bool is an int subclass; `True` as a depth is a bug, not a value.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"flag {name!r} takes a {want.__name__}, not {type(value).__name__}")
    if want is int and not isinstance(value, int):
        raise TypeError(f"flag {name!r} takes an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"flag {name!r} must be >= 0, not {value!r}")
    return want(value)


def _parse_text(name: str, text: str) -> Any:
    """Turn an environment variable's text into a value of the flag's type."""
    want = type(DEFAULTS[name])
    raw = text.strip().lower()
    if want is bool:
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        raise FlagError(f"{env_name(name)}={text!r}: expected one of {sorted(_TRUE | _FALSE)}")
    try:
        return coerce(name, int(raw) if want is int else float(raw))
    except (TypeError, ValueError) as exc:
        raise FlagError(f"{env_name(name)}={text!r}: {exc}") from exc


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    # Both `[stage_a] native = false` and `"stage_a.native" = false` name the same flag.
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def flags_file(environ: Mapping[str, str] | None = None) -> str:
    """`$LENS_FLAGS_FILE`, else `$XDG_CONFIG_HOME/lens/flags.toml` (`~/.config/lens/flags.toml`)."""
    env = os.environ if environ is None else environ
    if env.get("LENS_FLAGS_FILE"):
        return env["LENS_FLAGS_FILE"]
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "lens", "flags.toml")


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The flag values a TOML file sets, checked. Raises `FlagError` for a bad file (unknown flag, wrong
    type, invalid TOML), `OSError` for one that cannot be read."""
    if sys.version_info >= (3, 11):  # imported here: most processes never read a flags file
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib

    shown = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            table = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise FlagError(f"{shown}: invalid TOML: {exc}") from exc
    # A `[flags]` table lets the file hold other settings too.
    flat = _flatten(table["flags"] if isinstance(table.get("flags"), dict) else table)
    try:
        return {name: coerce(name, value) for name, value in flat.items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise FlagError(f"{shown}: {exc.args[0] if exc.args else exc}") from exc


def read_env(environ: Mapping[str, str] | None = None) -> dict[str, tuple[Any, str]]:
    """The flags `LENS_FLAG_*` variables set: flag name -> (value, variable). Raises `FlagError` for a
    variable that names no flag or holds a value of the wrong type."""
    env = os.environ if environ is None else environ
    known = {env_name(name): name for name in DEFAULTS}
    values: dict[str, tuple[Any, str]] = {}
    for var, text in env.items():
        if not var.startswith(ENV_PREFIX):
            continue
        if var not in known:
            raise FlagError(f"{var} names no flag; known: {', '.join(sorted(known))}")
        values[known[var]] = (_parse_text(known[var], text), var)
    return values


def initial_values(
    toml_path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Iterator[tuple[dict[str, Any], str]]:
    """The initial values over `DEFAULTS`, in the order they apply, each batch with its source: the TOML
    file's (`flags_file()` unless given; absent is fine) as one batch, "file:PATH", then each
    `LENS_FLAG_*` variable's, "env:NAME". A bad source is logged (`flags_file_ignored`,
    `flags_env_ignored`) and skipped rather than raised: an unusable flags file must not make a search
    fail."""
    path = os.fspath(toml_path) if toml_path is not None else flags_file(environ)
    if os.path.isfile(path):
        try:
            values = read_toml(path)
        except (OSError, FlagError) as exc:
            _log.error("flags_file_ignored", path=path, error=str(exc))
        else:
            if values:
                yield values, f"file:{path}"
    try:
        env_values = read_env(environ)
    except FlagError as exc:
        _log.error("flags_env_ignored", error=str(exc))
        return
    for name, (value, var) in env_values.items():
        yield {name: value}, f"env:{var}"
