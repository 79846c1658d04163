"""Stage-B: symbols. Definitions first for identifier-like queries, then references, then Stage-A's hits.

The native core owns extraction (tree-sitter tags at index time), the symbol file, SCIP / LSIF
ingestion, the lookups, their byte-bounded LRU cache, and the one rule for what looks like an
identifier (`is_identifier`, shared with the native Stage-B so the two never disagree); this package
turns its rows into `Hit`s carrying a `Symbol`, and merges them with Stage-A's hits for `lens.pipeline`.
It sees the index only through the query's snapshot handle (`StageCall.snapshot`), never the `Index`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .. import _lens
from .._log import get_logger
from ..types import Hit, Symbol

__all__ = ["Symbol", "SymbolName", "is_identifier", "merge", "rows_to_hits", "run_stage_b", "stage_b_hook"]

_log = get_logger("lens.symbols")


def is_identifier(query: str) -> bool:
    """Whether Stage-B treats `query` as a symbol lookup: one identifier, possibly qualified (`pkg.Name`,
    `Type::method`), optionally followed by `()`. Letters are Unicode letters (`élan` is one), as the
    native core decides: this calls the same function."""
    return bool(_lens.is_identifier(query))


@dataclass(frozen=True, slots=True)
class SymbolName:
    """A name from `Index.symbols`: its first definition's kind and how often it occurs."""

    name: str
    kind: str | None
    definitions: int
    references: int
    distance: int


def rows_to_hits(rows: Sequence[tuple[Any, ...]]) -> list[Hit]:
    """Native Stage-B rows -> `Hit`s with a `Symbol`."""
    out = []
    for path, line, column, start, end, text, score, why, sym in rows:
        symbol = Symbol(*sym) if sym is not None else None
        out.append(Hit(path, line, column, start, end, text, score, tuple(why), symbol))
    return out


def merge(symbol_hits: Sequence[Hit], stage_a: Sequence[Hit], k: int) -> list[Hit]:
    """Symbol hits first, then Stage-A's, without repeating a line, at most `k`."""
    seen: set[tuple[str, int]] = set()
    out: list[Hit] = []
    for h in (*symbol_hits, *stage_a):
        key = (h.path, h.line)
        if key in seen:
            continue
        seen.add(key)
        out.append(h)
        if len(out) >= k:
            break
    return out


class _Snapshot(Protocol):
    def stage_b(self, query: Any, k: int) -> tuple[list[Any], bool]: ...


def run_stage_b(
    snapshot: _Snapshot,
    query: str | _lens.NativeQuery,
    k: int,
    stage_a: Sequence[Hit],
    counters: dict[str, float] | None = None,
) -> list[Hit]:
    """Stage-B for one query on one index snapshot: Stage-A's hits unchanged unless the query is
    identifier-like and the index knows the symbol. `counters`, when given, gets `cache_hits` /
    `cache_misses` and `lsif_total` / `lsif_resolved` (identifier queries, and those whose first
    definition is precise)."""
    # A parsed query (the pipeline's) keeps its filters and `sym:` on the way to the native Stage-B, which
    # looks up each `or` branch on its own (`urlsplit or urlparse`: both definitions first).
    if isinstance(query, str):
        wanted = is_identifier(query)
    else:
        wanted = query.sym is not None or any(is_identifier(b) for b in query.branches)
    if not wanted:
        return list(stage_a)
    rows, cached = snapshot.stage_b(query, k)
    if counters is not None:
        key = "cache_hits" if cached else "cache_misses"
        counters[key] = counters.get(key, 0) + 1
        counters["lsif_total"] = counters.get("lsif_total", 0) + 1
        first = rows[0][8] if rows else None
        counters["lsif_resolved"] = counters.get("lsif_resolved", 0) + int(first is not None and first[7])
    if not rows:
        return list(stage_a)
    return merge(rows_to_hits(rows), stage_a, k)


class _StageCall(Protocol):
    """The part of `lens.pipeline.StageCall` (the guard's stage-hook interface) Stage-B reads."""

    snapshot: Any
    query: str
    k: int
    hits: list[Hit]
    counters: dict[str, float]
    parsed: Any


def stage_b_hook(call: _StageCall) -> list[Hit]:
    """Stage-B as a pipeline stage hook (`lens.pipeline.register_stage("stage_b", stage_b_hook)`)."""
    query = call.parsed if call.parsed is not None else call.query
    return run_stage_b(call.snapshot, query, call.k, call.hits, call.counters)
