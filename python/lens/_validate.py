"""Argument checks for the public query calls: whatever a caller passes, a bad value is a `QueryError`
that says what is wrong, before anything reaches the native core (where a wrong type is a bare
`TypeError`, an oversized int an `OverflowError`, and a lone surrogate a `UnicodeEncodeError`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ._lens import MAX_K
from .errors import QueryError

__all__ = ["check_grep", "check_search", "check_text", "names"]

#: The largest count the native core takes (a `usize`); a `limit` above it is a mistake.
_MAX_LIMIT = 2**63 - 1


def check_text(what: str, value: object) -> None:
    """`value` must be a str that encodes to UTF-8 (no lone surrogates)."""
    if not isinstance(value, str):
        raise QueryError(f"{what} must be a str, not {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise QueryError(
            f"{what} holds a lone surrogate ({value[exc.start]!r} at {exc.start}); it is not valid text",
            position=exc.start,
        ) from None


def check_search(query: object, k: object, mode: str, modes: tuple[str, ...], budget_ms: object) -> None:
    check_text("query", query)
    if mode not in modes:
        raise QueryError(f"unknown mode {mode!r}; choose one of {', '.join(modes)}")
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise QueryError(f"k must be an int from 1 to {MAX_K}, not {k!r}")
    if budget_ms is not None and (
        not isinstance(budget_ms, int | float)
        or isinstance(budget_ms, bool)
        or not math.isfinite(budget_ms)
        or budget_ms < 0
    ):
        raise QueryError(f"budget_ms must be a finite number >= 0, or None; not {budget_ms!r}")


def check_grep(pattern: object, limit: object) -> None:
    check_text("pattern", pattern)
    if limit is not None and (
        not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= _MAX_LIMIT
    ):
        raise QueryError(f"limit must be an int from 0 to {_MAX_LIMIT}, or None; not {limit!r}")


def names(what: str, value: object) -> list[str]:
    """`paths=` / `lang=`: one str or a sequence of them."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(value)
    raise QueryError(f"{what} must be a str or a sequence of str, not {value!r}")
