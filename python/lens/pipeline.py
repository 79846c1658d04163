"""The query pipeline: mode handling, path choice under the canary, the flags and the guard, the stage
registry, and per-stage timing.

    query -> snapshot -> Stage-A (native, or the reference scanner) -> [Stage-B] -> [Stage-C] -> ... -> hits

Per query, once each: the canary routes the caller's key (or the query) to the new or the baseline path;
the flags (one consistent snapshot) and the guard's breakers narrow the new path stage by stage; one
snapshot of the index is taken, and every stage of the query answers from it (a refresh in between
cannot mix generations); the stages run and are timed with the guard's clock; the guard records one
`QueryEvent`.

Later stages are registered by name (`register_stage("stage_c", hook)`, or `idx.stages[name]` for one
index) and run in registration order in the modes that ask for them (`MODE_STAGES`; a stage the table
does not name runs in "hybrid" and "auto"). A stage that is absent is a no-op; one that raises is
recorded as an error and the query goes on with the hits it had. The per-call `budget_ms` is Stage-A's
deadline, and a later stage is skipped once it is spent.

What a tripped breaker costs is always less than what it replaces:
- a later stage's breaker open: that stage is skipped;
- Stage-A's breaker open on *latency*: optional work is shed one step per trip, the last later stage
  first (Stage-C, then Stage-B), and then Stage-A runs natively under a budget of its p95 target
  (`truncated=True` when that cuts it short). The reference scanner is never the answer to slowness: it
  reads every byte;
- Stage-A's breaker open on *errors*, or the native path raising: the reference scanner answers, under
  a deadline of the Stage-A SLO's p99 line (its p95 target when it has none), then `truncated=True`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, cast

from . import _lens
from ._log import get_logger
from ._validate import check_search
from ._validate import names as _names
from .errors import QueryError
from .guard import HALF_OPEN, LATENCY, QueryEvent
from .guard import register_stage as _guard_register
from .symbols import stage_b_hook
from .types import Hit, Mode, SearchResult

__all__ = [
    "MODES",
    "MODE_STAGES",
    "SnapshotHandle",
    "StageCall",
    "StageHook",
    "register_stage",
    "registered_stages",
    "run_search",
]

_log = get_logger("lens.pipeline")

MODES = ("lex", "symbol", "hybrid", "auto")
#: The later stages each mode asks for ("lex" is Stage-A alone). A registered stage not named here runs
#: in "hybrid" and "auto".
MODE_STAGES: dict[str, tuple[str, ...]] = {
    "lex": (),
    "symbol": ("stage_b",),
    "hybrid": ("stage_b", "stage_c"),
    "auto": ("stage_b", "stage_c"),
}
_OPEN_MODES = ("hybrid", "auto")


class SnapshotHandle(Protocol):
    """What a stage may ask of the index: one generation of it, fixed for the whole query."""

    @property
    def generation(self) -> int: ...

    def search(
        self, query: Any, k: int, budget_ms: float | None = None, native: bool = True
    ) -> tuple[list[Hit], bool, dict[str, Any]]: ...

    def stage_b(self, query: Any, k: int) -> tuple[list[Any], bool]: ...


@dataclass(slots=True)
class StageCall:
    """What a later stage gets. It returns the new hit list (or None to keep `hits`).

    `hits`: the hits so far, best first (for Stage-C, only the top `stage_c.rerank_depth`; the rest are
    appended after its result unchanged). `budget_ms`: the most this call may take (the stage's budget
    flag, cut to what is left of the per-call budget). `flags`: the snapshot this query runs under.
    `counters`: the stage adds what it measured here (`lens.guard.STAGE_COUNTERS`: Stage-B `cache_hits`,
    `cache_misses`, `lsif_resolved`, `lsif_total`, `pattern_compiles`, `pattern_compile_ms`; Stage-C
    `gated`, `cutoff`), which the dashboard turns into its rates. `snapshot`: the index generation the
    query runs against (the narrow handle a stage uses instead of the `Index`); `stage`: this stage's
    registered name.
    """

    query: str
    k: int
    mode: str
    hits: list[Hit]
    budget_ms: float
    flags: Mapping[str, Any]
    counters: dict[str, float] = field(default_factory=dict)
    snapshot: SnapshotHandle | None = None
    stage: str = ""
    #: The query as parsed once by the native core (`lens._lens.NativeQuery`: its `text`, `sym`, filters);
    #: `query` is its text, without the syntax. A stage that looks things up passes this one on.
    parsed: Any = None


StageHook = Callable[[StageCall], "Sequence[Hit] | None"]

# name -> hook, in registration order (Stage-B and Stage-C hold their places even while unhooked). Stage-B
# is built in: every index runs it (in the modes that want it, while `stage_b.enabled`).
_HOOKS: dict[str, StageHook | None] = {"stage_b": stage_b_hook, "stage_c": None}
_ORDER: list[str] = ["stage_b", "stage_c"]
_BUILTIN = frozenset(_ORDER)


def register_stage(name: str, hook: StageHook | None) -> None:
    """Install (or, with None, remove) the process-wide hook for a later stage. "stage_b" and "stage_c"
    are built in; any other name adds a stage after them, which the guard then keeps a window, a breaker
    and counters for, and whose on/off and budget flags are `<name>.enabled` / `<name>.budget_ms` when
    set (on, and 300 ms, otherwise)."""
    if not isinstance(name, str) or not name.isidentifier() or name == "stage_a":
        raise ValueError(f"a later stage needs a name other than stage_a, not {name!r}")
    if name not in _ORDER:
        _ORDER.append(name)
        _guard_register(name)
    _HOOKS[name] = hook


def registered_stages() -> tuple[str, ...]:
    """The later stages in the order they run."""
    return tuple(_ORDER)


def _min_budget(a: float | None, b: float) -> float:
    return b if a is None else min(a, b)


class _Index(Protocol):
    """The part of `lens.Index` the pipeline uses."""

    _native: Any
    guard: Any
    canary: Any
    flags: Any
    stages: dict[str, StageHook]


def parse(query: str, paths: object = None, lang: object = None) -> Any:
    """The query parsed by the native core, with `paths` (gitignore-style globs, `!` excludes) and `lang`
    (languages) folded into its filter; malformed syntax raises `QueryError` with the position."""
    if paths is None and lang is None:
        return _lens.parse_query(query)  # no filter to fold in: no lists to build
    return _lens.parse_query(query, _names("paths", paths), _names("lang", lang))


def run_search(
    index: _Index,
    query: str,
    k: int,
    *,
    mode: str,
    budget_ms: float | None,
    key: str | bytes | None = None,
    paths: object = None,
    lang: object = None,
    raw_scores: bool = False,
) -> SearchResult:
    """One search through the stages. `raw_scores` keeps each stage's own scores instead of lifting
    them to be monotonic in rank: a sharded set's coordinator merges shards by those and lifts once."""
    check_search(query, k, mode, MODES, budget_ms)
    parsed = parse(query, paths, lang)
    guard = index.guard
    clock = guard.clock
    t0 = clock()
    flags = index.flags.snapshot()
    new = index.canary.route(query if key is None else key) == "new"
    blocked = guard.plan()  # empty while every breaker is closed
    native = new and bool(flags["stage_a.native"])
    # The stages this query wants and has, in order (the baseline route runs none).
    later: list[tuple[str, StageHook | None, str]] = []
    if new and (index.stages or any(_HOOKS.values())):
        wanted = MODE_STAGES[mode]
        own = index.stages
        for name in _ORDER:
            if name in wanted or (name not in MODE_STAGES["auto"] and mode in _OPEN_MODES):
                hook = own.get(name) or _HOOKS.get(name)
                later.append((name, hook, "" if hook is not None else "absent"))
            else:
                later.append((name, None, "mode"))
    stages: dict[str, str] = {}
    skipped: dict[str, str] = {}
    shed: list[str] = []
    a_budget = budget_ms
    reference_deadline: float | None = None
    a_state = blocked.get("stage_a") if blocked else None
    if native and a_state is not None and a_state[0] != HALF_OPEN:
        slo = guard.slos.stage("stage_a")
        if a_state[1] == LATENCY:
            # Shed optional work, one step per trip, last stage first: Stage-C, then Stage-B (the built-in
            # stages always hold their rungs, installed or not; another stage while it has a hook), then
            # Stage-A's own budget. A step sheds only what this query would have run.
            ladder = [n for n in reversed(_ORDER) if n in _BUILTIN or _HOOKS.get(n) or index.stages.get(n)]
            would_run = {n for n, hook, why in later if hook is not None and not why}
            for name in ladder[: a_state[2]]:
                if name in would_run:
                    shed.append(name)
                    skipped[name] = "shed"
            if a_state[2] > len(ladder):
                a_budget = _min_budget(budget_ms, slo.p95_ms)
                shed.append("stage_a.budget")
                skipped["stage_a"] = "tightened"
        else:  # ERRORS: the native path is not to be trusted
            native = False
            reference_deadline = slo.p99_limit_ms() or slo.p95_ms

    # -- Stage-A ------------------------------------------------------------------------------
    snap = index._native.snapshot()
    a_error = False
    a_ms: float | None = None
    ta = clock()  # Stage-A's own time starts here, after the guard's routing work
    if native:
        try:
            hits, truncated, info = snap.search(parsed, k, a_budget, True)
            a_ms = (clock() - ta) * 1000
        except QueryError:
            raise  # the caller's mistake, not a stage failure
        except Exception as exc:
            # The native path failed: count it against Stage-A, and serve this query from the reference
            # scanner under a deadline.
            a_error = True
            a_ms = (clock() - ta) * 1000
            native = False
            slo = guard.slos.stage("stage_a")
            reference_deadline = slo.p99_limit_ms() or slo.p95_ms
            _log.error("stage_failed", stage="stage_a", error=repr(exc), fallback="reference")
    if not native:
        # The baseline route and an operator's `stage_a.native = False` honour the caller's budget only;
        # a fallback for errors also runs under the SLO's deadline.
        deadline = budget_ms if reference_deadline is None else _min_budget(budget_ms, reference_deadline)
        try:
            hits, truncated, info = snap.search(parsed, k, deadline, False)
        except Exception:
            _record_failure(guard, new, t0, a_ms)
            raise
        if reference_deadline is not None:
            skipped["stage_a"] = "deadline" if truncated else "reference"
    t1 = clock()  # the native core made the hits (`lens.Hit`s) itself
    timings = {"stage_a": (t1 - ta) * 1000}
    stages["stage_a"] = "native" if native else ("fallback" if a_error or reference_deadline else "reference")
    ran: dict[str, tuple[float, bool, Any]] = {}
    if a_ms is not None:
        ran["stage_a"] = (a_ms, a_error, bool(info.get("early_terminated")))

    # -- later stages -------------------------------------------------------------------------
    if not new:
        for name in _ORDER:
            stages[name] = "route"  # the baseline path has no later stages
    elif not later:
        for name in _ORDER:
            stages[name] = "absent"  # no later stage installed anywhere
    else:
        for name, hook, why in later:
            if why:
                pass
            elif not flags.get(f"{name}.enabled", True):
                why = "off"
            elif name in skipped:
                why = "shed"
            elif blocked and name in blocked and blocked[name][0] != HALF_OPEN:
                why = "tripped"
            elif budget_ms is not None and (clock() - t0) * 1000 >= budget_ms:
                why = "budget"
                skipped[name] = "budget"
            else:
                assert hook is not None
                hits, ms, err, counters = _run_stage(
                    guard.clock, snap, hook, name, parsed, k, mode, hits, flags, budget_ms, t0
                )
                timings[name] = ms
                why = "error" if err else "ran"
                ran[name] = (ms, err, counters)
            stages[name] = why

    if parsed.narrows:
        # Whatever a later stage added stays within the paths and languages asked for.
        hits = [h for h in hits if parsed.allows_path(h.path)]
    if len(hits) > k:
        hits = hits[:k]
    if not raw_scores:
        hits = monotonic(hits)
    total_ms = (clock() - t0) * 1000
    timings["total"] = total_ms
    guard.record(QueryEvent(new, total_ms, ran, skipped or None, False, hits))
    if truncated:
        _log.info("search_truncated", mode=mode, k=k, budget_ms=budget_ms, visited=info.get("visited"))
    result_info: dict[str, Any] = {**info, "route": "new" if new else "baseline", "stages": stages}
    if shed:
        result_info["shed"] = shed
    return SearchResult(
        hits=hits,
        timings_ms=timings,
        truncated=bool(truncated),
        mode=cast(Mode, mode),
        path="native" if native else "baseline",
        info=result_info,
    )


def monotonic(hits: list[Hit]) -> list[Hit]:
    """The hits with scores that never rise down the list: a stage that ranks a hit above better-scored
    ones (Stage-B puts definitions, scored 1000, above text matches scored more; a question's two engines
    are interleaved) lifts its score to the best score below it, so a reader of the scores is not
    misled about the order. The order itself is untouched."""
    out = list(hits)
    floor = float("-inf")
    for i in range(len(out) - 1, -1, -1):
        h = out[i]
        if h.score < floor:
            out[i] = _with_score(h, floor)
        else:
            floor = h.score
    return out


def _with_score(h: Hit, score: float) -> Hit:
    """`replace(h, score=score)`; a plain `Hit` (what the stages return) is built directly, without
    `dataclasses.replace`'s look at the fields (a question's interleaved hits are lifted often)."""
    if h.__class__ is Hit:
        return Hit(h.path, h.line, h.column, h.byte_start, h.byte_end, h.text, score, h.why, h.symbol)
    return replace(h, score=score)


def _run_stage(
    clock: Callable[[], float],
    snap: SnapshotHandle,
    hook: StageHook,
    name: str,
    parsed: Any,
    k: int,
    mode: str,
    hits: list[Hit],
    flags: Mapping[str, Any],
    budget_ms: float | None,
    t0: float,
) -> tuple[list[Hit], float, bool, dict[str, float] | None]:
    start = clock()
    stage_budget = float(flags.get(f"{name}.budget_ms", 300.0))
    if budget_ms is not None:
        stage_budget = max(0.0, min(stage_budget, budget_ms - (start - t0) * 1000))
    rest: list[Hit] = []
    given = hits
    if name == "stage_c":
        depth = int(flags["stage_c.rerank_depth"])
        given, rest = hits[:depth], hits[depth:]
    call = StageCall(parsed.text, k, mode, list(given), stage_budget, flags, {}, snap, name, parsed)
    error = False
    try:
        result = hook(call)
        new_hits = hits if result is None else [*_only_hits(name, result), *rest]
    except Exception as exc:
        # A later stage failing costs its contribution, not the query.
        error = True
        new_hits = hits
        _log.error("stage_failed", stage=name, error=repr(exc), fallback="skip")
    ms = (clock() - start) * 1000
    return new_hits, ms, error, (call.counters or None)


def _only_hits(stage: str, result: Sequence[Hit]) -> list[Hit]:
    """A hook's result, which must be hits: anything else is that stage's error."""
    got = list(result)
    for h in got:
        if not isinstance(h, Hit):
            raise TypeError(f"{stage} hook returned a {type(h).__name__} among its hits, not a lens.Hit")
    return got


def _record_failure(guard: Any, new: bool, t0: float, a_ms: float | None) -> None:
    total = (guard.clock() - t0) * 1000
    stages = {"stage_a": (a_ms, True, False)} if a_ms is not None else {}
    guard.record(QueryEvent(new, total, stages, None, True, None))
