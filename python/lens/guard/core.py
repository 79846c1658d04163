"""The guard itself: the stage registry, the SLOs, and the two calls a query makes (`plan`, `record`).

The pipeline asks the guard once per query which stages' breakers are not closed (`plan`), and tells it
once per query what happened (`record`, one `QueryEvent`). Stages are kept by name: a stage the guard has
not seen before gets its window, breaker and counters on its first event (or when `register_stage` names
it), so a new stage needs no change here. Evaluation runs every `eval_every` queries or `eval_interval_s`
seconds, never per query.

Time. `clock` (seconds, monotonic; default `time.perf_counter`) times the stages in the pipeline and ages
the windows and cooldowns; tests pass a fake clock and advance it instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

from .._log import get_logger
from .._record import Record
from . import reporting
from .alerts import Alert, AlertBook, conditions
from .breakers import CLOSED, ERRORS, HALF_OPEN, LATENCY, OPEN, Breaker
from .windows import Sample, WindowStats, percentile

TYPE_CHECKING = False  # typing is not imported at run time (its import is a cost `import lens` avoids)
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "BUILTIN_STAGES",
    "STAGE_COUNTERS",
    "Guard",
    "GuardConfig",
    "QueryEvent",
    "SLOs",
    "StageSLO",
    "register_stage",
    "registered_stages",
]

_log = get_logger("lens.guard")

#: The stages every guard knows from the start, in pipeline order.
BUILTIN_STAGES: tuple[str, ...] = ("stage_a", "stage_b", "stage_c")
ROUTES: tuple[str, str] = ("new", "baseline")

#: Counters the built-in later stages report through `StageCall.counters` (a stage may report others;
#: every numeric counter is summed per stage).
STAGE_COUNTERS: dict[str, tuple[str, ...]] = {
    "stage_b": (
        "cache_hits",
        "cache_misses",
        "lsif_resolved",
        "lsif_total",
        "pattern_compiles",
        "pattern_compile_ms",
    ),
    "stage_c": ("gated", "cutoff"),
}

# The process-wide stage names, in pipeline order (the built-ins, then what `register_stage` adds).
_REGISTERED: list[str] = list(BUILTIN_STAGES)
_REGISTRY_LOCK = threading.Lock()


def register_stage(name: str) -> None:
    """Name a stage to every guard (idempotent). `lens.pipeline.register_stage` calls this."""
    if not isinstance(name, str) or not name or name.startswith("e2e."):
        raise ValueError(f"not a stage name: {name!r}")
    with _REGISTRY_LOCK:
        if name not in _REGISTERED:
            _REGISTERED.append(name)


def registered_stages() -> tuple[str, ...]:
    """Every registered stage name, in pipeline order."""
    return tuple(_REGISTERED)


class StageSLO(Record):
    """One stage's objective over the window. `tail_ratio`: the p99 may be at most this many times the
    p95 *target* (Stage-A: 2 x 5 ms = 10 ms, the runbook's p99 line); None turns the tail check off."""

    _FIELDS = ("p95_ms", "tail_ratio", "max_error_rate")

    def __init__(self, p95_ms: float, tail_ratio: float | None = None, max_error_rate: float = 0.05) -> None:
        self.p95_ms = p95_ms
        self.tail_ratio = tail_ratio
        self.max_error_rate = max_error_rate

    def p99_limit_ms(self) -> float | None:
        return None if self.tail_ratio is None else self.tail_ratio * self.p95_ms


class SLOs(Record):
    """Every threshold the guard and its alerts use (the runbook's defaults). Edit in place at runtime:
    `lens.guard.slos.stage_a.p95_ms = 3.0`; the next evaluation uses it. A stage with no SLO of its own
    gets `default_stage` (a copy, kept in `others`, editable the same way).

    `e2e_max_regression`: the new route's end-to-end p95 may be at most this much above the baseline
    route's (0.10 = +10 %). `max_error_rate`: the share of queries with any error, over the window.
    `canary_max_error_rate`: the share of errors on the canary (new) route that raises the runbook's
    canary warning. `tail_alert_floor_ms`: the tail-latency alert (p99 > 2 x p95) ignores a p99 below
    this; 0 gives the runbook's bare ratio."""

    _FIELDS = (
        "stage_a",
        "stage_b",
        "stage_c",
        "e2e_max_regression",
        "max_error_rate",
        "canary_max_error_rate",
        "min_cache_hit_rate",
        "min_span_coverage",
        "tail_alert_floor_ms",
        "default_stage",
        "others",
    )

    def __init__(
        self,
        stage_a: StageSLO | None = None,
        stage_b: StageSLO | None = None,
        stage_c: StageSLO | None = None,
        e2e_max_regression: float = 0.10,
        max_error_rate: float = 0.05,
        canary_max_error_rate: float = 0.03,
        min_cache_hit_rate: float = 0.80,
        min_span_coverage: float = 0.98,
        tail_alert_floor_ms: float = 5.0,
        default_stage: StageSLO | None = None,
        others: dict[str, StageSLO] | None = None,
    ) -> None:
        self.stage_a = stage_a if stage_a is not None else StageSLO(p95_ms=5.0, tail_ratio=2.0)
        self.stage_b = stage_b if stage_b is not None else StageSLO(p95_ms=300.0)
        self.stage_c = stage_c if stage_c is not None else StageSLO(p95_ms=300.0)
        self.e2e_max_regression = e2e_max_regression
        self.max_error_rate = max_error_rate
        self.canary_max_error_rate = canary_max_error_rate
        self.min_cache_hit_rate = min_cache_hit_rate
        self.min_span_coverage = min_span_coverage
        self.tail_alert_floor_ms = tail_alert_floor_ms
        self.default_stage = default_stage if default_stage is not None else StageSLO(p95_ms=300.0)
        self.others: dict[str, StageSLO] = others if others is not None else {}

    def stage(self, name: str) -> StageSLO:
        slo = getattr(self, name, None) if name in BUILTIN_STAGES else None
        if isinstance(slo, StageSLO):
            return slo
        got = self.others.get(name)
        if got is None:
            d = self.default_stage
            got = self.others.setdefault(name, StageSLO(d.p95_ms, d.tail_ratio, d.max_error_rate))
        return got


class GuardConfig(Record):
    """How the guard measures: window bounds, evaluation cadence and breaker timing.
    `span_sample_every`: span coverage is checked on one query in this many (it walks every hit, too
    slow for each query)."""

    _FIELDS = (
        "window_size",
        "window_s",
        "min_samples",
        "eval_every",
        "eval_interval_s",
        "cooldown_s",
        "max_cooldown_s",
        "probes",
        "span_sample_every",
        "recent_alerts",
    )

    def __init__(
        self,
        window_size: int = 1024,
        window_s: float = 60.0,
        min_samples: int = 50,
        eval_every: int = 256,
        eval_interval_s: float = 1.0,
        cooldown_s: float = 30.0,
        max_cooldown_s: float = 600.0,
        probes: int = 5,
        span_sample_every: int = 16,
        recent_alerts: int = 50,
    ) -> None:
        self.window_size = window_size
        self.window_s = window_s
        self.min_samples = min_samples
        self.eval_every = eval_every
        self.eval_interval_s = eval_interval_s
        self.cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self.probes = probes
        self.span_sample_every = span_sample_every
        self.recent_alerts = recent_alerts


#: One stage's part of a query: (latency ms, raised, extra). `extra` is Stage-A's early-termination bit
#: or a later stage's counters dict (or None).
StageSample = tuple[float, bool, "Any"]


class QueryEvent(Record):
    """What one query did, as the pipeline tells the guard.

    `stages`: the stages whose new implementation ran (Stage-A's native path included, also when it
    raised; the reference scanner is the baseline and is measured end to end only). `skipped`: later
    stages left out and why ("budget": the per-call budget was spent; "shed": a Stage-A latency trip shed
    it). `failed`: the query as a whole raised. `hits`: what it returned (sampled for span coverage)."""

    __slots__ = _FIELDS = ("new_route", "total_ms", "stages", "skipped", "failed", "hits")

    def __init__(
        self,
        new_route: bool,
        total_ms: float,
        stages: dict[str, StageSample] | None = None,
        skipped: dict[str, str] | None = None,
        failed: bool = False,
        hits: Sequence[Any] | None = None,
    ) -> None:
        self.new_route = new_route
        self.total_ms = total_ms
        self.stages: dict[str, StageSample] = stages if stages is not None else {}
        self.skipped = skipped
        self.failed = failed
        self.hits = hits


class _Series:
    """One series' window and cumulative counts (and, for a stage, its reported counters)."""

    __slots__ = ("counters", "errors", "samples", "window")

    def __init__(self, size: int) -> None:
        self.window: deque[Sample] = deque(maxlen=size)
        self.samples = 0
        self.errors = 0
        self.counters: dict[str, float] = {}


#: `plan()` while every breaker is closed: nothing to route around.
ALL_CLOSED: Mapping[str, tuple[str, str | None, int]] = MappingProxyType({})


class Guard:
    """The SLO guard for the queries that run through it (by default, every index in the process)."""

    #: `lens.guard.percentile(sorted_values, q)` works on the process-wide guard as on the module.
    percentile = staticmethod(percentile)

    def __init__(
        self,
        slos: SLOs | None = None,
        config: GuardConfig | None = None,
        *,
        clock: Callable[[], float] = time.perf_counter,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.slos = slos if slos is not None else SLOs()
        self.config = config if config is not None else GuardConfig()
        self.clock = clock
        self.wall = wall
        self._lock = threading.Lock()
        self._eval_lock = threading.Lock()
        self._alerts = AlertBook(self.config.recent_alerts, wall)
        self._reset_locked()

    # -- setup --------------------------------------------------------------------------------
    def _reset_locked(self) -> None:
        self._windows: dict[str, deque[Sample]] = {}
        self._series: dict[str, _Series] = {}
        self._breakers: dict[str, Breaker] = {}
        self._skips: dict[str, int] = {}
        self._stage_counters: dict[str, dict[str, float]] = {}
        self._new = self._add_series_locked("e2e.new")
        self._baseline = self._add_series_locked("e2e.baseline")
        for stage in registered_stages():
            self._add_stage_locked(stage)
        self._span: deque[tuple[float, int, int]] = deque(maxlen=self.config.window_size)
        self._shedding: tuple[str, ...] = ()
        self._nonclosed = 0
        self._queries = 0
        self._since_eval = 0
        self._last_eval = self.clock()

    def _add_series_locked(self, name: str) -> _Series:
        series = _Series(self.config.window_size)
        self._series[name] = series
        self._windows[name] = series.window
        return series

    def _add_stage_locked(self, stage: str) -> _Series:
        got = self._series.get(stage)
        if got is not None:
            return got
        series = self._add_series_locked(stage)
        self._breakers[stage] = Breaker(stage, self.config.cooldown_s)
        series.counters = self._stage_counters[stage] = dict.fromkeys(STAGE_COUNTERS.get(stage, ()), 0.0)
        if stage != "stage_a":
            for why in ("budget", "shed"):
                self._skips.setdefault(f"{stage}.{why}", 0)
        return series

    def stages(self) -> tuple[str, ...]:
        """The stages this guard keeps: the registered ones, then any it has seen since."""
        with self._lock:
            for name in registered_stages():
                self._add_stage_locked(name)
            return tuple(self._breakers)

    def reset(self) -> None:
        """Forget every sample, count, breaker state and alert (the SLOs and subscribers stay)."""
        with self._lock:
            self._reset_locked()
        self._alerts.clear()

    def subscribe(self, callback: Callable[[Alert], object]) -> Callable[[], None]:
        """Call `callback(alert)` for every alert from now on; returns a function that unsubscribes.
        Callbacks run in the thread that raised the alert; an exception in one is logged and dropped."""
        return self._alerts.subscribe(callback)

    # -- the hot path -------------------------------------------------------------------------
    def plan(self) -> Mapping[str, tuple[str, str | None, int]]:
        """The stages whose breaker is not closed: {stage: (state, why it opened, shed level)}, empty
        while all are closed. Moves an open breaker whose cooldown has passed to half-open."""
        if not self._nonclosed:
            return ALL_CLOSED
        now = self.clock()
        moved: list[Breaker] = []
        with self._lock:
            out = {}
            for b in self._breakers.values():
                if b.cool(now):
                    moved.append(b)
                if b.state != CLOSED:
                    out[b.stage] = (b.state, b.kind, b.shed_level)
        for b in moved:
            _log.info("guard_half_open", stage=b.stage, trips=b.trips, cooldown_s=b.cooldown_s)
        return out

    def record(self, event: QueryEvent) -> None:
        """One query's outcome (see `QueryEvent`)."""
        now = self.clock()
        stages = event.stages
        # A query counts as an error if any stage raised, even when a fallback still served it.
        err = event.failed
        with self._lock:
            self._queries = q = self._queries + 1
            series = self._series
            for name, (ms, error, extra) in stages.items():
                st = series.get(name)
                if st is None:
                    st = self._add_stage_locked(name)
                st.window.append((now, ms, error, extra))
                st.samples += 1
                if error:
                    err = True
                    st.errors += 1
                if extra.__class__ is dict:
                    totals = st.counters
                    for key, value in extra.items():
                        totals[key] = totals.get(key, 0.0) + value
            route = self._new if event.new_route else self._baseline
            route.window.append((now, event.total_ms, err, None))
            route.samples += 1
            if err:
                route.errors += 1
            skipped = event.skipped
            if skipped:
                shed = []
                for name, why in skipped.items():
                    key = f"{name}.{why}"
                    self._skips[key] = self._skips.get(key, 0) + 1
                    if why == "shed":
                        shed.append(name)
                    elif why == "tightened":
                        shed.append(f"{name}.budget")
                self._shedding = tuple(shed)
            elif self._shedding:
                self._shedding = ()
            self._since_eval = since = self._since_eval + 1
        cfg = self.config
        hits = event.hits
        if hits is not None and q % cfg.span_sample_every == 0:
            span = self._span_sample(now, hits)
            with self._lock:
                self._span.append(span)
        if self._nonclosed:
            self._probe(now, stages)
        if since >= cfg.eval_every or now - self._last_eval >= cfg.eval_interval_s:
            self.evaluate()

    @staticmethod
    def _span_sample(now: float, hits: Sequence[Any]) -> tuple[float, int, int]:
        # A hit "has a span" when its location is well formed: 1-based line, 0-based column, and a byte
        # range that starts at or before it ends.
        good = 0
        for h in hits:
            try:
                if h.line >= 1 and h.column >= 0 and 0 <= h.byte_start <= h.byte_end:
                    good += 1
            except (AttributeError, TypeError):
                pass
        return (now, len(hits), good)

    # -- breakers -----------------------------------------------------------------------------
    def _probe(self, now: float, stages: Mapping[str, StageSample]) -> None:
        events: list[tuple[Breaker, str]] = []
        with self._lock:
            for name, (ms, err, _extra) in stages.items():
                b = self._breakers.get(name)
                if b is None or b.state != HALF_OPEN:
                    continue
                limit = self.slos.stage(name).p95_ms
                if err or ms > limit:
                    why = "probe failed: error" if err else f"probe failed: {ms:.3f} ms > {limit} ms"
                    b.cooldown_s = min(b.cooldown_s * 2, self.config.max_cooldown_s)
                    self._open_locked(b, now, why, ERRORS if err else LATENCY)
                    events.append((b, "reopened"))
                else:
                    b.probe_ok += 1
                    if b.probe_ok >= self.config.probes:
                        self._close_locked(b)
                        events.append((b, "closed"))
        for b, what in events:
            self._breaker_event(b, what)

    def _open_locked(self, b: Breaker, now: float, reason: str, kind: str) -> None:
        if b.open(now, reason, kind):
            self._nonclosed += 1

    def _close_locked(self, b: Breaker) -> None:
        if b.close(self.config.cooldown_s):
            self._nonclosed -= 1
        # Start the stage's window afresh: the samples that tripped it must not trip it again.
        self._windows[b.stage].clear()

    def _breaker_event(self, b: Breaker, what: str) -> None:
        if what == "closed":
            _log.info("guard_recovered", stage=b.stage, trips=b.trips)
            self._alerts.emit(
                Alert(
                    "stage_recovered",
                    "info",
                    "resolved",
                    f"{b.stage} is back on its new path",
                    stage=b.stage,
                    at=self.wall(),
                )
            )
        else:
            _log.warning(
                "guard_tripped",
                stage=b.stage,
                reason=b.reason,
                kind=b.kind,
                trips=b.trips,
                shed_level=b.steps,
                cooldown_s=b.cooldown_s,
                event_kind=what,
            )
            self._alerts.emit(
                Alert(
                    "stage_tripped",
                    "critical",
                    "firing",
                    f"{b.stage} tripped ({b.kind}): {b.reason}",
                    stage=b.stage,
                    at=self.wall(),
                )
            )

    def trip(self, stage: str, reason: str, *, kind: str = ERRORS) -> None:
        """Open a stage's breaker by hand (an operator's or a host's decision). `kind` says what to treat
        it as: `ERRORS` (default: Stage-A's answers are not to be trusted, the reference scanner serves)
        or `LATENCY` (shed load)."""
        if kind not in (ERRORS, LATENCY):
            raise ValueError(f"kind must be {ERRORS!r} or {LATENCY!r}, not {kind!r}")
        with self._lock:
            self._add_stage_locked(stage)
            b = self._breakers[stage]
            self._open_locked(b, self.clock(), reason, kind)
        self._breaker_event(b, "tripped")

    # -- evaluation ---------------------------------------------------------------------------
    def _snapshot(self, now: float) -> tuple[dict[str, WindowStats], list[tuple[float, int, int]]]:
        cutoff = now - self.config.window_s
        with self._lock:
            for dq in self._windows.values():
                while dq and dq[0][0] < cutoff:
                    dq.popleft()
            while self._span and self._span[0][0] < cutoff:
                self._span.popleft()
            copies = {name: list(dq) for name, dq in self._windows.items()}
            span = list(self._span)
            self._since_eval = 0
            self._last_eval = now
        return {name: WindowStats(samples, now) for name, samples in copies.items()}, span

    def _snapshot_only(self, now: float) -> dict[str, WindowStats]:
        with self._lock:
            copies = {name: list(dq) for name, dq in self._windows.items()}
        cutoff = now - self.config.window_s
        return {
            name: WindowStats([s for s in samples if s[0] >= cutoff], now) for name, samples in copies.items()
        }

    def stage_breach(self, stage: str, st: WindowStats) -> tuple[str, str] | None:
        """(why, kind) when the window breaks the stage's SLO, None when it does not or is too small."""
        if st.n < self.config.min_samples or st.p95 is None or st.p99 is None:
            return None
        slo = self.slos.stage(stage)
        rate = st.error_rate
        # Errors first: a stage that fails and is slow is not to be trusted, whatever its speed.
        if rate is not None and rate > slo.max_error_rate:
            return f"error rate {rate:.1%} > {slo.max_error_rate:.1%}", ERRORS
        if st.p95 > slo.p95_ms:
            return f"p95 {st.p95:.3f} ms > {slo.p95_ms} ms", LATENCY
        limit = slo.p99_limit_ms()
        if limit is not None and st.p99 > limit:
            return f"p99 {st.p99:.3f} ms > {limit} ms", LATENCY
        return None

    def evaluate(self) -> dict[str, WindowStats]:
        """Check every window against its SLO now: trip breakers and raise or resolve alerts. Runs on its
        own every `eval_every` queries or `eval_interval_s`; `status()` and the dashboard call it too."""
        now = self.clock()
        self.stages()  # every registered stage gets its window before the reports read them
        # One evaluator at a time; a query thread that finds one running just goes on.
        if not self._eval_lock.acquire(blocking=False):
            return self._snapshot_only(now)
        try:
            stats, span = self._snapshot(now)
            tripped: list[Breaker] = []
            for stage, b in list(self._breakers.items()):
                if b.state != CLOSED:
                    continue
                breach = self.stage_breach(stage, stats[stage])
                if breach is not None:
                    with self._lock:
                        if b.state == CLOSED:
                            self._open_locked(b, now, *breach)
                            self._windows[stage].clear()
                            tripped.append(b)
            for b in tripped:
                self._breaker_event(b, "tripped")
            self._alerts.check(conditions(stats, span, self.slos, self.config))
            return stats
        finally:
            self._eval_lock.release()

    def alert(self, name: str, severity: str, message: str, **fields: Any) -> Alert:
        """Raise a one-off alert (the canary's kill switch uses this)."""
        a = Alert(name, severity, "firing", message, at=self.wall(), **fields)
        self._alerts.emit(a)
        return a

    # -- reading ------------------------------------------------------------------------------
    def stage_counters(self) -> dict[str, dict[str, float]]:
        """Cumulative counters the later stages reported (`STAGE_COUNTERS`, and any others)."""
        with self._lock:
            return {s: dict(c) for s, c in self._stage_counters.items() if s != "stage_a"}

    def totals(self) -> dict[str, int]:
        """Cumulative sample and error counts per series, and later-stage skips, since start or reset."""
        with self._lock:
            out: dict[str, int] = {}
            for name, st in self._series.items():
                out[f"samples.{name}"] = st.samples
                out[f"errors.{name}"] = st.errors
            out.update({f"skips.{k}": v for k, v in self._skips.items()})
            out["queries"] = self._queries
            return out

    def breaker_states(self) -> dict[str, str]:
        with self._lock:
            return {s: b.state for s, b in self._breakers.items()}

    def breakers(self) -> dict[str, tuple[str, int, float | None, float, int, str | None, str | None, int]]:
        """Per stage: (state, trips, opened_at, cooldown_s, probes_ok, reason, kind, shed level)."""
        with self._lock:
            return {s: b.as_tuple() for s, b in self._breakers.items()}

    def shedding(self) -> tuple[str, ...]:
        """What the latest query shed under a latency trip, in the order it was shed ("stage_c",
        "stage_b", then "stage_a.budget" for Stage-A's tighter budget); empty when it shed nothing."""
        return self._shedding

    def recent_alerts(self) -> list[Alert]:
        return self._alerts.recent()

    def active_alerts(self) -> list[Alert]:
        return self._alerts.active()

    def span_copy(self) -> list[tuple[float, int, int]]:
        with self._lock:
            return list(self._span)

    def span_coverage(self) -> float | None:
        return reporting.span_coverage(self.span_copy())

    def status(self, stats: Mapping[str, WindowStats] | None = None) -> dict[str, Any]:
        """Per stage: breaker state, p50/p95/p99 over the window, errors, trips, SLO compliance, what
        the stage reported over the window, and what a trip shed; and the end-to-end latency per route."""
        return reporting.status(self, stats if stats is not None else self.evaluate())

    def health(self, stats: Mapping[str, WindowStats] | None = None) -> dict[str, Any]:
        """ "healthy", "degraded" (a measured SLO is broken, or a breaker is probing) or "unhealthy" (a
        breaker is open, or errors are over their SLO), with the reasons. Unmeasured SLOs (too few
        samples) do not count against health; `unmeasured` lists them."""
        return reporting.health(self, stats if stats is not None else self.evaluate())

    def conditions(self, stats: Mapping[str, WindowStats] | None = None) -> list[dict[str, Any]]:
        """Every alert condition now: name, severity, breached (None: not enough data), value, threshold."""
        stats = stats if stats is not None else self.evaluate()
        keys = ("name", "severity", "breached", "value", "threshold", "stage", "message")
        conds = conditions(stats, self.span_copy(), self.slos, self.config)
        return [dict(zip(keys, c, strict=True)) for c in conds]

    def evidence(self, route: str = "new") -> int:
        """Queries on `route` inside the window now."""
        now = self.clock()
        cutoff = now - self.config.window_s
        with self._lock:
            return sum(1 for s in self._windows[f"e2e.{route}"] if s[0] >= cutoff)


__all__ += ["ALL_CLOSED", "CLOSED", "ERRORS", "HALF_OPEN", "LATENCY", "OPEN"]
