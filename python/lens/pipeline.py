"""The query pipeline: mode handling, path choice under the canary, the flags and the guard, and
per-stage timing.

    query -> Stage-A (native, or the reference scanner) -> [Stage-B] -> [Stage-C] -> hits

Per query, once each: the canary routes the caller's key (or the query) to the new or the baseline path;
the flags (one consistent snapshot) and the guard's breakers narrow the new path stage by stage; the
stages run and are timed with the guard's clock; the guard records what happened.

Stage-B and Stage-C plug in as hooks (`register_stage`, or `idx.stages[name]` for one index). A stage
that is absent is a no-op; one that raises is recorded as an error and the query goes on with the hits it
had. The per-call `budget_ms` is Stage-A's deadline, and a later stage is skipped once it is spent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._log import get_logger
from .errors import QueryError

# `index` imports this module lazily (in `Index.search`), so importing it here at the top is safe.
from .index import SearchResult, _hits

if TYPE_CHECKING:
    from .index import Hit, Index

__all__ = ["MODES", "MODE_STAGES", "StageCall", "StageHook", "register_stage", "run_search", "stage_hook"]

_log = get_logger("lens.pipeline")

MODES = ("lex", "symbol", "hybrid", "auto")
#: The later stages each mode asks for ("lex" is Stage-A alone).
MODE_STAGES: dict[str, tuple[str, ...]] = {
    "lex": (),
    "symbol": ("stage_b",),
    "hybrid": ("stage_b", "stage_c"),
    "auto": ("stage_b", "stage_c"),
}


@dataclass(slots=True)
class StageCall:
    """What a later stage gets. It returns the new hit list (or None to keep `hits`).

    `hits`: the hits so far, best first (for Stage-C, only the top `stage_c.rerank_depth`; the rest are
    appended after its result unchanged). `budget_ms`: the most this call may take (the stage's budget
    flag, cut to what is left of the per-call budget). `flags`: the snapshot this query runs under.
    `counters`: the stage adds what it measured here (`lens.guard.STAGE_COUNTERS`: Stage-B `cache_hits`,
    `cache_misses`, `lsif_resolved`, `lsif_total`, `pattern_compiles`, `pattern_compile_ms`; Stage-C
    `gated`, `cutoff`), which the dashboard turns into its rates.
    """

    index: Index
    stage: str
    query: str
    k: int
    mode: str
    hits: list[Hit]
    budget_ms: float
    flags: Mapping[str, Any]
    counters: dict[str, float] = field(default_factory=dict)


StageHook = Callable[[StageCall], "Sequence[Hit] | None"]

_HOOKS: dict[str, StageHook] = {}
# (index into the guard's plan, stage, its enabled flag)
_LATER = ((1, "stage_b", "stage_b.enabled"), (2, "stage_c", "stage_c.enabled"))
_NOT_RUN: tuple[None, bool, None] = (None, False, None)


def register_stage(name: str, hook: StageHook | None) -> None:
    """Install (or, with None, remove) the process-wide hook for "stage_b" or "stage_c"."""
    if name not in ("stage_b", "stage_c"):
        raise ValueError(f"only stage_b and stage_c take hooks, not {name!r}")
    if hook is None:
        _HOOKS.pop(name, None)
    else:
        _HOOKS[name] = hook


def stage_hook(index: Index, name: str) -> StageHook | None:
    """The hook a query on `index` runs for `name`: the index's own, else the process-wide one."""
    return index.stages.get(name) or _HOOKS.get(name)


def _check(query: object, k: object, mode: str, budget_ms: float | None) -> None:
    if not isinstance(query, str):
        raise QueryError(f"query must be a str, not {type(query).__name__}")
    if mode not in MODES:
        raise QueryError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise QueryError(f"k must be a positive int, not {k!r}")
    if budget_ms is not None and budget_ms < 0:
        raise QueryError(f"budget_ms must be >= 0, not {budget_ms!r}")


def run_search(
    index: Index, query: str, k: int, *, mode: str, budget_ms: float | None, key: str | bytes | None = None
) -> SearchResult:
    _check(query, k, mode, budget_ms)
    guard = index.guard
    clock = guard.clock
    t0 = clock()
    flags = index.flags.snapshot()
    new = index.canary.route(query if key is None else key) == "new"
    allowed = guard.plan()
    native = new and allowed[0] and bool(flags["stage_a.native"])

    # -- Stage-A ------------------------------------------------------------------------------
    a_error = False
    a_ms: float | None = None
    ta = clock()  # Stage-A's own time starts here, after the guard's routing work
    try:
        rows, truncated, info = index._native.search(query, k, budget_ms, native)
    except QueryError:
        raise  # the caller's mistake, not a stage failure
    except Exception as exc:
        if not native:
            _record_failure(index, new, t0)
            raise
        # The native path failed: count it against Stage-A and serve this query from the reference scanner.
        a_error = True
        a_ms = (clock() - ta) * 1000
        _log.error("stage_failed", stage="stage_a", error=repr(exc), fallback="reference")
        try:
            rows, truncated, info = index._native.search(query, k, budget_ms, False)
        except Exception:
            _record_failure(index, new, t0, a_ms=a_ms)
            raise
    t1 = clock()
    if native and not a_error:
        a_ms = (t1 - ta) * 1000
    hits = _hits(rows)
    timings = {"stage_a": (t1 - ta) * 1000}
    stages = {"stage_a": ("fallback" if a_error else "native") if native else "reference"}

    # -- Stage-B, Stage-C ---------------------------------------------------------------------
    # Written out rather than looped through helpers: this runs on every query, and the guard's budget is
    # a couple of microseconds.
    ran: dict[str, tuple[float, bool, dict[str, float] | None]] = {}
    if not new:
        stages["stage_b"] = stages["stage_c"] = "route"  # the baseline path has no later stages
    elif not index.stages and not _HOOKS:
        stages["stage_b"] = stages["stage_c"] = "absent"  # no Stage-B/C installed anywhere
    else:
        wanted = MODE_STAGES[mode]
        for i, name, enabled in _LATER:
            hook = None
            if name not in wanted:
                why = "mode"
            elif not flags[enabled]:
                why = "off"
            elif not allowed[i]:
                why = "tripped"
            else:
                hook = index.stages.get(name) or _HOOKS.get(name)
                if hook is None:
                    why = "absent"
                elif budget_ms is not None and (clock() - t0) * 1000 >= budget_ms:
                    why = "budget"
                    guard.count_skip(name, "budget")
                else:
                    hits, ms, err, counters = _run_stage(
                        index, hook, name, query, k, mode, hits, flags, budget_ms, t0
                    )
                    timings[name] = ms
                    why = "error" if err else "ran"
                    ran[name] = (ms, err, counters)
            stages[name] = why

    if len(hits) > k:
        hits = hits[:k]
    total_ms = (clock() - t0) * 1000
    timings["total"] = total_ms
    b_ms, b_err, b_counters = ran.get("stage_b", _NOT_RUN)
    c_ms, c_err, c_counters = ran.get("stage_c", _NOT_RUN)
    guard.record(
        new,
        a_ms,
        a_error,
        bool(info.get("early_terminated")),
        b_ms,
        b_err,
        b_counters,
        c_ms,
        c_err,
        c_counters,
        total_ms,
        False,
        hits,
    )
    if truncated:
        _log.info("search_truncated", mode=mode, k=k, budget_ms=budget_ms, visited=info.get("visited"))
    result_info: dict[str, Any] = {**info, "route": "new" if new else "baseline", "stages": stages}
    return SearchResult(
        hits=hits,
        timings_ms=timings,
        truncated=bool(truncated),
        mode=mode,
        path="native" if native and not a_error else "baseline",
        info=result_info,
    )


def _run_stage(
    index: Index,
    hook: StageHook,
    name: str,
    query: str,
    k: int,
    mode: str,
    hits: list[Hit],
    flags: Mapping[str, Any],
    budget_ms: float | None,
    t0: float,
) -> tuple[list[Hit], float, bool, dict[str, float] | None]:
    clock = index.guard.clock
    start = clock()
    stage_budget = float(flags[f"{name}.budget_ms"])
    if budget_ms is not None:
        stage_budget = max(0.0, min(stage_budget, budget_ms - (start - t0) * 1000))
    rest: list[Hit] = []
    given = hits
    if name == "stage_c":
        depth = int(flags["stage_c.rerank_depth"])
        given, rest = hits[:depth], hits[depth:]
    call = StageCall(index, name, query, k, mode, list(given), stage_budget, flags)
    error = False
    try:
        result = hook(call)
        new_hits = hits if result is None else [*result, *rest]
    except Exception as exc:
        # A later stage failing costs its contribution, not the query.
        error = True
        new_hits = hits
        _log.error("stage_failed", stage=name, error=repr(exc), fallback="skip")
    ms = (clock() - start) * 1000
    return new_hits, ms, error, (call.counters or None)


def _record_failure(index: Index, new: bool, t0: float, *, a_ms: float | None = None) -> None:
    total = (index.guard.clock() - t0) * 1000
    index.guard.record(
        new, a_ms, a_ms is not None, False, None, False, None, None, False, None, total, True, None
    )
