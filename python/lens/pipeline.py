"""The query pipeline: mode handling, path choice and per-stage timing.

query -> Stage-A (native, or the reference scanner when `stage_a.native` is off) -> [Stage-B] -> [Stage-C]
Stage-B (`lens.symbols`) runs in every mode but "lex" while `stage_b.enabled` is on; Stage-C is not built yet.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import structlog

from .errors import QueryError

if TYPE_CHECKING:
    from .index import Index, SearchResult

__all__ = ["MODES", "run_search"]

_log = structlog.get_logger("lens.pipeline")

MODES = ("lex", "symbol", "hybrid", "auto")


def _check(query: object, k: object, mode: str, budget_ms: float | None) -> None:
    if not isinstance(query, str):
        raise QueryError(f"query must be a str, not {type(query).__name__}")
    if mode not in MODES:
        raise QueryError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise QueryError(f"k must be a positive int, not {k!r}")
    if budget_ms is not None and budget_ms < 0:
        raise QueryError(f"budget_ms must be >= 0, not {budget_ms!r}")


def run_search(index: Index, query: str, k: int, *, mode: str, budget_ms: float | None) -> SearchResult:
    from .index import SearchResult, _hits

    _check(query, k, mode, budget_ms)
    native = bool(index.flags["stage_a.native"])
    t0 = time.perf_counter()
    rows, truncated, info = index._native.search(query, k, budget_ms, native)
    hits = _hits(rows)
    t1 = time.perf_counter()
    stage_a = (t1 - t0) * 1000
    timings = {"stage_a": stage_a}
    # -- Stage-B (lens.symbols): definitions, then references, then Stage-A's hits ------------------
    if mode != "lex" and index.flags["stage_b.enabled"]:
        from .symbols import run_stage_b

        hits = run_stage_b(index, query, k, hits)
        timings["stage_b"] = (time.perf_counter() - t1) * 1000
    # -- end Stage-B --------------------------------------------------------------------------------
    timings["total"] = (time.perf_counter() - t0) * 1000
    if truncated:
        _log.info("search_truncated", mode=mode, k=k, budget_ms=budget_ms, visited=info.get("visited"))
    return SearchResult(
        hits=hits,
        timings_ms=timings,
        truncated=bool(truncated),
        mode=mode,
        path="native" if native else "baseline",
        info=dict(info),
    )
