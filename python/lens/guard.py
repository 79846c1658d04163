"""The SLO guard: per-stage latency and error windows, circuit breakers, health and alerts.

The pipeline asks the guard once per query which stages may run their new implementation (`plan`), and
tells it once per query what happened (`record`). Everything the dashboard and the Prometheus text show
is computed here from those recorded events; a metric with no events is `None`, never a made-up number.

Windows. Each series (a stage's new implementation, and the end-to-end latency of each canary route) keeps
its recent samples in a bounded ring buffer: at most `GuardConfig.window_size` samples, and only those
younger than `GuardConfig.window_s` seconds count. Percentiles are exact over that window (nearest rank on
the sorted samples), not estimates; the buffer is small enough that sorting it on evaluation is cheap, and
evaluation runs every `eval_every` queries or `eval_interval_s` seconds, never per query.

Breakers. Each stage has a circuit breaker. Closed: the stage's new implementation runs. When its window
(holding at least `min_samples`) breaks the stage's SLO, the breaker opens: queries take the baseline for
that stage (Stage-A: the reference scanner; Stage-B/C: the stage is skipped). The breaker overrides the
operator's flag rather than rewriting it, so an operator's setting is never lost. After `cooldown_s` it
goes half-open: queries probe the new implementation again, and `probes` good probes in a row (no error,
latency within the stage's p95 target) close it; one bad probe reopens it with the cooldown doubled (up to
`max_cooldown_s`). Closing clears the window, so a fresh `min_samples` must pile up before another trip:
that, the backoff and the consecutive-probe rule are the hysteresis that keeps it from flapping.

Time. `clock` (seconds, monotonic; default `time.perf_counter`) times the stages in the pipeline and ages
the windows and cooldowns; tests pass a fake clock and advance it instead of sleeping.
"""

from __future__ import annotations

import math
import operator
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ._log import get_logger

__all__ = [
    "CLOSED",
    "HALF_OPEN",
    "OPEN",
    "STAGES",
    "Alert",
    "Guard",
    "GuardConfig",
    "SLOs",
    "StageSLO",
    "percentile",
]

_log = get_logger("lens.guard")

STAGES: tuple[str, str, str] = ("stage_a", "stage_b", "stage_c")
ROUTES: tuple[str, str] = ("new", "baseline")
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
_ALL_ALLOWED = (True, True, True)

#: Stage counters a stage may report through `StageCall.counters` that the guard aggregates.
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


@dataclass
class StageSLO:
    """One stage's objective over the window. `tail_ratio`: the p99 may be at most this many times the
    p95 *target* (Stage-A: 2 x 5 ms = 10 ms, the runbook's p99 line); None turns the tail check off."""

    p95_ms: float
    tail_ratio: float | None = None
    max_error_rate: float = 0.05

    def p99_limit_ms(self) -> float | None:
        return None if self.tail_ratio is None else self.tail_ratio * self.p95_ms


@dataclass
class SLOs:
    """Every threshold the guard and its alerts use (the runbook's defaults). Edit in place at runtime:
    `lens.guard.slos.stage_a.p95_ms = 3.0`; the next evaluation uses it."""

    stage_a: StageSLO = field(default_factory=lambda: StageSLO(p95_ms=5.0, tail_ratio=2.0))
    stage_b: StageSLO = field(default_factory=lambda: StageSLO(p95_ms=300.0))
    stage_c: StageSLO = field(default_factory=lambda: StageSLO(p95_ms=300.0))
    #: End-to-end p95 of the new route may be at most this much above the baseline route's (0.10 = +10 %).
    e2e_max_regression: float = 0.10
    #: Share of queries with any error, over the window.
    max_error_rate: float = 0.05
    #: Share of errors on the canary (new) route that raises the runbook's canary warning.
    canary_max_error_rate: float = 0.03
    min_cache_hit_rate: float = 0.80
    min_span_coverage: float = 0.98
    #: The tail-latency alert (p99 > 2 x p95) ignores a p99 below this; 0 gives the runbook's bare ratio.
    tail_alert_floor_ms: float = 5.0

    def stage(self, name: str) -> StageSLO:
        slo = getattr(self, name)
        assert isinstance(slo, StageSLO)
        return slo


@dataclass
class GuardConfig:
    """How the guard measures: window bounds, evaluation cadence and breaker timing."""

    window_size: int = 1024
    window_s: float = 60.0
    min_samples: int = 50
    eval_every: int = 256
    eval_interval_s: float = 1.0
    cooldown_s: float = 30.0
    max_cooldown_s: float = 600.0
    probes: int = 5
    #: Span coverage is checked on one query in this many (it walks every hit, too slow for each query).
    span_sample_every: int = 16
    recent_alerts: int = 50


@dataclass(frozen=True)
class Alert:
    """A structured alert. `state` is "firing" or "resolved"; threshold alerts fire once when the
    condition starts and resolve once when it ends, so a subscriber is not flooded."""

    name: str
    severity: str
    state: str
    message: str
    value: float | None = None
    threshold: float | None = None
    stage: str | None = None
    at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile `q` (0-100] of already sorted values; None for no values."""
    n = len(sorted_values)
    if n == 0:
        return None
    rank = max(1, math.ceil(q / 100.0 * n))
    return sorted_values[min(rank, n) - 1]


# A sample: (clock time, latency ms, error, extra). `extra` is Stage-A's early-termination bit, a later
# stage's counters dict, or None.
_Sample = tuple[float, float, bool, Any]
_LATENCY = operator.itemgetter(1)
_ERROR = operator.itemgetter(2)


class _Breaker:
    __slots__ = ("cooldown_s", "opened_at", "probe_ok", "reason", "stage", "state", "trips")

    def __init__(self, stage: str, cooldown_s: float) -> None:
        self.stage = stage
        self.state = CLOSED
        self.trips = 0
        self.opened_at: float | None = None
        self.cooldown_s = cooldown_s
        self.probe_ok = 0
        self.reason: str | None = None


class _Stats:
    """Summary of one window at one instant."""

    __slots__ = ("_counters", "errors", "n", "p50", "p95", "p99", "rps", "samples")

    def __init__(self, samples: list[_Sample], now: float) -> None:
        self.samples = samples
        self.n = len(samples)
        # map(itemgetter) runs in C: three times faster than a comprehension over a full window.
        lat = list(map(_LATENCY, samples))
        lat.sort()
        self.p50 = percentile(lat, 50)
        self.p95 = percentile(lat, 95)
        self.p99 = percentile(lat, 99)
        self.errors = sum(map(_ERROR, samples))
        span = now - samples[0][0] if samples else 0.0
        self.rps = self.n / span if self.n >= 2 and span > 0 else None
        self._counters: dict[str, float] | None = None

    # Stage-A samples carry their early-termination bit, later stages their reported counters; both are
    # summed only when asked for (evaluation runs on the query path, the dashboard does not).
    @property
    def early(self) -> int:
        return sum([s[3] is True for s in self.samples])

    @property
    def counters(self) -> dict[str, float]:
        if self._counters is None:
            out: dict[str, float] = {}
            for s in self.samples:
                extra = s[3]
                if type(extra) is dict:
                    for key, value in extra.items():
                        out[key] = out.get(key, 0.0) + value
            self._counters = out
        return self._counters

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.n if self.n else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "samples": self.n,
            "p50_ms": self.p50,
            "p95_ms": self.p95,
            "p99_ms": self.p99,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "throughput_rps": self.rps,
        }


class Guard:
    """The SLO guard for the queries that run through it (by default, every index in the process)."""

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
        self._subscribers: list[Callable[[Alert], object]] = []
        self._recent: deque[Alert] = deque(maxlen=self.config.recent_alerts)
        self._active: dict[str, Alert] = {}
        self._reset_locked()

    # -- setup --------------------------------------------------------------------------------
    def _reset_locked(self) -> None:
        size = self.config.window_size
        self._windows: dict[str, deque[_Sample]] = {
            name: deque(maxlen=size) for name in (*STAGES, "e2e.new", "e2e.baseline")
        }
        self._span: deque[tuple[float, int, int]] = deque(maxlen=size)
        self._breakers = {s: _Breaker(s, self.config.cooldown_s) for s in STAGES}
        self._nonclosed = 0
        self._queries = 0
        self._since_eval = 0
        self._last_eval = self.clock()
        self._totals: dict[str, int] = {
            f"{what}.{series}": 0 for what in ("samples", "errors") for series in self._windows
        }
        self._skips: dict[str, int] = {f"{s}.budget": 0 for s in STAGES[1:]}
        self._stage_counters: dict[str, dict[str, float]] = {
            s: dict.fromkeys(names, 0.0) for s, names in STAGE_COUNTERS.items()
        }

    def reset(self) -> None:
        """Forget every sample, count, breaker state and alert (the SLOs and subscribers stay)."""
        with self._lock:
            self._reset_locked()
            self._recent.clear()
            self._active.clear()

    def subscribe(self, callback: Callable[[Alert], object]) -> Callable[[], None]:
        """Call `callback(alert)` for every alert from now on; returns a function that unsubscribes.
        Callbacks run in the thread that raised the alert; an exception in one is logged and dropped."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    # -- the hot path -------------------------------------------------------------------------
    def plan(self) -> tuple[bool, bool, bool]:
        """Per stage (A, B, C): may the new implementation run? False while the stage's breaker is open.
        Moves an open breaker whose cooldown has passed to half-open."""
        if not self._nonclosed:
            return _ALL_ALLOWED
        now = self.clock()
        moved: list[_Breaker] = []
        with self._lock:
            for b in self._breakers.values():
                if b.state == OPEN and b.opened_at is not None and now - b.opened_at >= b.cooldown_s:
                    b.state = HALF_OPEN
                    b.probe_ok = 0
                    moved.append(b)
            allowed = tuple(b.state != OPEN for b in self._breakers.values())
        for b in moved:
            _log.info("guard_half_open", stage=b.stage, trips=b.trips, cooldown_s=b.cooldown_s)
        return allowed  # type: ignore[return-value]

    def record(
        self,
        new_route: bool,
        a_ms: float | None,
        a_error: bool,
        early_terminated: bool,
        b_ms: float | None,
        b_error: bool,
        b_counters: Mapping[str, float] | None,
        c_ms: float | None,
        c_error: bool,
        c_counters: Mapping[str, float] | None,
        total_ms: float,
        failed: bool,
        hits: Sequence[Any] | None,
    ) -> None:
        """One query's outcome. `a_ms` is the native Stage-A latency (None when the reference scanner
        served it: that is the baseline, and is measured end to end); `b_ms`/`c_ms` are None when the stage
        did not run; `*_error` says the stage raised; `failed` that the query as a whole raised."""
        now = self.clock()
        # A query counts as an error if any stage raised, even when a fallback still served it.
        err = failed or a_error or b_error or c_error
        with self._lock:
            self._queries = q = self._queries + 1
            w = self._windows
            t = self._totals
            if a_ms is not None or a_error:
                w["stage_a"].append((now, a_ms or 0.0, a_error, early_terminated))
                t["samples.stage_a"] += 1
                if a_error:
                    t["errors.stage_a"] += 1
            if b_ms is not None:
                w["stage_b"].append((now, b_ms, b_error, dict(b_counters) if b_counters else None))
                t["samples.stage_b"] += 1
                if b_error:
                    t["errors.stage_b"] += 1
                if b_counters:
                    self._add_counters("stage_b", b_counters)
            if c_ms is not None:
                w["stage_c"].append((now, c_ms, c_error, dict(c_counters) if c_counters else None))
                t["samples.stage_c"] += 1
                if c_error:
                    t["errors.stage_c"] += 1
                if c_counters:
                    self._add_counters("stage_c", c_counters)
            if new_route:
                w["e2e.new"].append((now, total_ms, err, None))
                t["samples.e2e.new"] += 1
                if err:
                    t["errors.e2e.new"] += 1
            else:
                w["e2e.baseline"].append((now, total_ms, err, None))
                t["samples.e2e.baseline"] += 1
                if err:
                    t["errors.e2e.baseline"] += 1
            self._since_eval = since = self._since_eval + 1
        cfg = self.config
        if hits is not None and q % cfg.span_sample_every == 0:
            span = self._span_sample(now, hits)
            with self._lock:
                self._span.append(span)
        if self._nonclosed:
            self._probe(now, a_ms, a_error, b_ms, b_error, c_ms, c_error)
        if since >= cfg.eval_every or now - self._last_eval >= cfg.eval_interval_s:
            self.evaluate()

    def _add_counters(self, stage: str, counters: Mapping[str, float]) -> None:
        totals = self._stage_counters[stage]
        for key, value in counters.items():
            if key in totals:
                totals[key] += value

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

    def count_skip(self, stage: str, why: str) -> None:
        """A later stage was skipped for `why` ("budget": the per-call budget was spent)."""
        with self._lock:
            key = f"{stage}.{why}"
            self._skips[key] = self._skips.get(key, 0) + 1

    # -- breakers -----------------------------------------------------------------------------
    def _probe(
        self,
        now: float,
        a_ms: float | None,
        a_error: bool,
        b_ms: float | None,
        b_error: bool,
        c_ms: float | None,
        c_error: bool,
    ) -> None:
        events: list[tuple[_Breaker, str]] = []
        with self._lock:
            for b, ms, err in (
                (self._breakers["stage_a"], a_ms, a_error),
                (self._breakers["stage_b"], b_ms, b_error),
                (self._breakers["stage_c"], c_ms, c_error),
            ):
                if b.state != HALF_OPEN or (ms is None and not err):
                    continue
                limit = self.slos.stage(b.stage).p95_ms
                if err or (ms is not None and ms > limit):
                    why = "probe failed: error" if err else f"probe failed: {ms:.3f} ms > {limit} ms"
                    b.cooldown_s = min(b.cooldown_s * 2, self.config.max_cooldown_s)
                    self._open_locked(b, now, why)
                    events.append((b, "reopened"))
                else:
                    b.probe_ok += 1
                    if b.probe_ok >= self.config.probes:
                        self._close_locked(b)
                        events.append((b, "closed"))
        for b, what in events:
            self._breaker_event(b, what)

    def _open_locked(self, b: _Breaker, now: float, reason: str) -> None:
        if b.state == CLOSED:
            self._nonclosed += 1
        b.state = OPEN
        b.opened_at = now
        b.trips += 1
        b.probe_ok = 0
        b.reason = reason

    def _close_locked(self, b: _Breaker) -> None:
        if b.state != CLOSED:
            self._nonclosed -= 1
        b.state = CLOSED
        b.opened_at = None
        b.probe_ok = 0
        b.cooldown_s = self.config.cooldown_s
        # Start the stage's window afresh: the samples that tripped it must not trip it again.
        self._windows[b.stage].clear()

    def _breaker_event(self, b: _Breaker, what: str) -> None:
        if what == "closed":
            _log.info("guard_recovered", stage=b.stage, trips=b.trips)
            self._emit(
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
                trips=b.trips,
                cooldown_s=b.cooldown_s,
                event_kind=what,
            )
            self._emit(
                Alert(
                    "stage_tripped",
                    "critical",
                    "firing",
                    f"{b.stage} tripped to its baseline path: {b.reason}",
                    stage=b.stage,
                    at=self.wall(),
                )
            )

    def trip(self, stage: str, reason: str) -> None:
        """Open a stage's breaker by hand (an operator's or a host's decision)."""
        b = self._breakers[stage]
        with self._lock:
            self._open_locked(b, self.clock(), reason)
        self._breaker_event(b, "tripped")

    # -- evaluation ---------------------------------------------------------------------------
    def _snapshot(self, now: float) -> tuple[dict[str, _Stats], list[tuple[float, int, int]]]:
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
        return {name: _Stats(samples, now) for name, samples in copies.items()}, span

    def _stage_breach(self, stage: str, st: _Stats) -> str | None:
        if st.n < self.config.min_samples or st.p95 is None or st.p99 is None:
            return None
        slo = self.slos.stage(stage)
        if st.p95 > slo.p95_ms:
            return f"p95 {st.p95:.3f} ms > {slo.p95_ms} ms"
        limit = slo.p99_limit_ms()
        if limit is not None and st.p99 > limit:
            return f"p99 {st.p99:.3f} ms > {limit} ms"
        rate = st.error_rate
        if rate is not None and rate > slo.max_error_rate:
            return f"error rate {rate:.1%} > {slo.max_error_rate:.1%}"
        return None

    def evaluate(self) -> dict[str, _Stats]:
        """Check every window against its SLO now: trip breakers and raise or resolve alerts. Runs on its
        own every `eval_every` queries or `eval_interval_s`; `status()` and the dashboard call it too."""
        now = self.clock()
        # One evaluator at a time; a query thread that finds one running just goes on.
        if not self._eval_lock.acquire(blocking=False):
            return self._snapshot_only(now)
        try:
            stats, span = self._snapshot(now)
            tripped: list[_Breaker] = []
            for stage in STAGES:
                b = self._breakers[stage]
                if b.state != CLOSED:
                    continue
                why = self._stage_breach(stage, stats[stage])
                if why is not None:
                    with self._lock:
                        if b.state == CLOSED:
                            self._open_locked(b, now, why)
                            self._windows[stage].clear()
                            tripped.append(b)
            for b in tripped:
                self._breaker_event(b, "tripped")
            self._check_alerts(stats, span)
            return stats
        finally:
            self._eval_lock.release()

    def _snapshot_only(self, now: float) -> dict[str, _Stats]:
        with self._lock:
            copies = {name: list(dq) for name, dq in self._windows.items()}
        cutoff = now - self.config.window_s
        return {name: _Stats([s for s in samples if s[0] >= cutoff], now) for name, samples in copies.items()}

    def _conditions(
        self, stats: Mapping[str, _Stats], span: Iterable[tuple[float, int, int]]
    ) -> list[tuple[str, str, bool | None, float | None, float | None, str | None, str]]:
        """(name, severity, breached or None when unmeasured, value, threshold, stage, message)."""
        s = self.slos
        enough = self.config.min_samples
        a = stats["stage_a"]
        out: list[tuple[str, str, bool | None, float | None, float | None, str | None, str]] = []
        p95_high: bool | None = None
        tail: bool | None = None
        if a.n >= enough and a.p95 is not None and a.p99 is not None:
            p95_high = a.p95 > s.stage_a.p95_ms
            # The runbook's alert compares the measured p99 with the measured p95 (the breaker uses the
            # p95 target instead; see `StageSLO`). A tail under `tail_alert_floor_ms` is not a latency
            # problem: at tens of microseconds one scheduler hiccup doubles the p99.
            tail = a.p99 > 2 * a.p95 and a.p99 > s.tail_alert_floor_ms
        out.append(
            (
                "stage_a_p95_high",
                "critical",
                p95_high,
                a.p95,
                s.stage_a.p95_ms,
                "stage_a",
                "Stage-A p95 latency above its SLO",
            )
        )
        out.append(
            (
                "tail_latency_violation",
                "critical",
                tail,
                a.p99,
                2 * a.p95 if a.p95 is not None else None,
                "stage_a",
                "Stage-A p99 above 2x its p95",
            )
        )
        n_queries = stats["e2e.new"].n + stats["e2e.baseline"].n
        errors = stats["e2e.new"].errors + stats["e2e.baseline"].errors
        rate = errors / n_queries if n_queries >= enough else None
        out.append(
            (
                "error_rate_high",
                "critical",
                None if rate is None else rate > s.max_error_rate,
                rate,
                s.max_error_rate,
                None,
                "query error rate above its SLO",
            )
        )
        new = stats["e2e.new"]
        crate = new.error_rate if new.n >= enough else None
        out.append(
            (
                "canary_error_rate_high",
                "warning",
                None if crate is None else crate > s.canary_max_error_rate,
                crate,
                s.canary_max_error_rate,
                None,
                "error rate on the canary (new) route",
            )
        )
        b_counters = stats["stage_b"].counters
        hit_rate = _ratio(b_counters, "cache_hits", "cache_misses")
        # Every name's first lookup is a miss, so a process that has served a handful of lookups
        # has a low hit rate by construction: judge the cache only on `min_samples` lookups.
        lookups = b_counters.get("cache_hits", 0.0) + b_counters.get("cache_misses", 0.0)
        out.append(
            (
                "cache_hit_rate_low",
                "warning",
                None if hit_rate is None or lookups < enough else hit_rate < s.min_cache_hit_rate,
                hit_rate,
                s.min_cache_hit_rate,
                "stage_b",
                "Stage-B cache hit rate below its SLO",
            )
        )
        cov = _span_coverage(span)
        out.append(
            (
                "span_coverage_low",
                "critical",
                None if cov is None else cov < s.min_span_coverage,
                cov,
                s.min_span_coverage,
                None,
                "share of hits with a well-formed span below its SLO",
            )
        )
        return out

    def _check_alerts(self, stats: Mapping[str, _Stats], span: Iterable[tuple[float, int, int]]) -> None:
        fire: list[Alert] = []
        conditions = self._conditions(stats, span)
        with self._lock:
            for name, severity, breached, value, threshold, stage, message in conditions:
                if breached and name not in self._active:
                    alert = Alert(name, severity, "firing", message, value, threshold, stage, self.wall())
                    self._active[name] = alert
                    fire.append(alert)
                elif breached is False and name in self._active:
                    del self._active[name]
                    fire.append(
                        Alert(name, severity, "resolved", message, value, threshold, stage, self.wall())
                    )
        for alert in fire:
            self._emit(alert)

    def _emit(self, alert: Alert) -> None:
        with self._lock:
            self._recent.append(alert)
            subscribers = list(self._subscribers)
        log = _log.warning if alert.state == "firing" else _log.info
        log("alert", **alert.as_dict())
        for cb in subscribers:
            try:
                cb(alert)
            except Exception as exc:  # a subscriber's bug must not break queries
                _log.error("alert_subscriber_failed", alert=alert.name, error=repr(exc))

    def alert(self, name: str, severity: str, message: str, **fields: Any) -> Alert:
        """Raise a one-off alert (the canary's kill switch uses this)."""
        a = Alert(name, severity, "firing", message, at=self.wall(), **fields)
        self._emit(a)
        return a

    # -- reading ------------------------------------------------------------------------------
    def stage_counters(self) -> dict[str, dict[str, float]]:
        """Cumulative counters the later stages reported (`STAGE_COUNTERS`)."""
        with self._lock:
            return {s: dict(c) for s, c in self._stage_counters.items()}

    def totals(self) -> dict[str, int]:
        """Cumulative sample and error counts per series, and later-stage skips, since start or reset."""
        with self._lock:
            out = dict(self._totals)
            out.update({f"skips.{k}": v for k, v in self._skips.items()})
            out["queries"] = self._queries
            return out

    def breaker_states(self) -> dict[str, str]:
        with self._lock:
            return {s: b.state for s, b in self._breakers.items()}

    def recent_alerts(self) -> list[Alert]:
        with self._lock:
            return list(self._recent)

    def active_alerts(self) -> list[Alert]:
        with self._lock:
            return list(self._active.values())

    def span_coverage(self) -> float | None:
        with self._lock:
            span = list(self._span)
        return _span_coverage(span)

    def status(self, stats: Mapping[str, _Stats] | None = None) -> dict[str, Any]:
        """Per stage: breaker state, p50/p95/p99 over the window, errors, trips, SLO compliance, and what
        the stage reported over the window; and the end-to-end latency of each route."""
        stats = stats if stats is not None else self.evaluate()
        totals = self.totals()
        out: dict[str, Any] = {}
        with self._lock:
            breakers = {
                s: (b.state, b.trips, b.opened_at, b.cooldown_s, b.probe_ok, b.reason)
                for s, b in self._breakers.items()
            }
        for stage in STAGES:
            st = stats[stage]
            state, trips, opened_at, cooldown, probe_ok, reason = breakers[stage]
            slo = self.slos.stage(stage)
            measured = st.n >= self.config.min_samples
            out[stage] = {
                "breaker": state,
                "trips": trips,
                "last_trip_reason": reason,
                "opened_at": opened_at,
                "cooldown_s": cooldown,
                "probes_ok": probe_ok,
                **st.as_dict(),
                "errors_total": totals[f"errors.{stage}"],
                "samples_total": totals[f"samples.{stage}"],
                "skipped_budget": totals.get(f"skips.{stage}.budget"),
                "slo": asdict(slo),
                "compliant": (self._stage_breach(stage, st) is None) if measured else None,
                "window_counters": dict(st.counters),
            }
        a = stats["stage_a"]
        ok_a = a.n - a.errors
        out["stage_a"]["early_termination_rate"] = a.early / ok_a if ok_a else None
        new, base = stats["e2e.new"], stats["e2e.baseline"]
        out["end_to_end"] = {
            "new": new.as_dict(),
            "baseline": base.as_dict(),
            "p95_vs_baseline": self._e2e_ratio(new, base),
            "max_regression": self.slos.e2e_max_regression,
            "compliant": self._e2e_compliant(new, base),
        }
        return out

    def _e2e_ratio(self, new: _Stats, base: _Stats) -> float | None:
        enough = self.config.min_samples
        if new.n < enough or base.n < enough or not new.p95 or not base.p95:
            return None
        return new.p95 / base.p95

    def _e2e_compliant(self, new: _Stats, base: _Stats) -> bool | None:
        ratio = self._e2e_ratio(new, base)
        return None if ratio is None else ratio <= 1.0 + self.slos.e2e_max_regression

    def health(self, stats: Mapping[str, _Stats] | None = None) -> dict[str, Any]:
        """ "healthy", "degraded" (a measured SLO is broken, or a breaker is probing) or "unhealthy" (a
        breaker is open, or errors are over their SLO), with the reasons. Unmeasured SLOs (too few
        samples) do not count against health; `unmeasured` lists them."""
        stats = stats if stats is not None else self.evaluate()
        reasons: list[str] = []
        unmeasured: list[str] = []
        status = "healthy"
        for stage, state in self.breaker_states().items():
            if state == OPEN:
                status = "unhealthy"
                reasons.append(f"{stage} breaker open")
            elif state == HALF_OPEN:
                reasons.append(f"{stage} breaker half-open (probing)")
                status = "degraded" if status == "healthy" else status
        for stage in STAGES:
            st = stats[stage]
            if st.n < self.config.min_samples:
                unmeasured.append(stage)
                continue
            why = self._stage_breach(stage, st)
            if why is not None:
                reasons.append(f"{stage}: {why}")
                status = "degraded" if status == "healthy" else status
        e2e = self._e2e_compliant(stats["e2e.new"], stats["e2e.baseline"])
        if e2e is None:
            unmeasured.append("end_to_end")
        elif not e2e:
            reasons.append(
                "end-to-end p95 of the new route more than "
                f"{self.slos.e2e_max_regression:.0%} above the baseline's"
            )
            status = "degraded" if status == "healthy" else status
        for name, _sev, breached, value, threshold, _stage, message in self._conditions(
            stats, self._span_copy()
        ):
            if name in ("error_rate_high", "canary_error_rate_high", "span_coverage_low") and breached:
                reasons.append(f"{message}: {value:.3f} vs {threshold}")
                status = (
                    "unhealthy"
                    if name == "error_rate_high"
                    else ("degraded" if status == "healthy" else status)
                )
        return {"status": status, "reasons": reasons, "unmeasured": unmeasured}

    def conditions(self, stats: Mapping[str, _Stats] | None = None) -> list[dict[str, Any]]:
        """Every alert condition now: name, severity, breached (None: not enough data), value, threshold."""
        stats = stats if stats is not None else self.evaluate()
        keys = ("name", "severity", "breached", "value", "threshold", "stage", "message")
        return [dict(zip(keys, c, strict=True)) for c in self._conditions(stats, self._span_copy())]

    def _span_copy(self) -> list[tuple[float, int, int]]:
        with self._lock:
            return list(self._span)

    def evidence(self, route: str = "new") -> int:
        """Queries on `route` inside the window now."""
        now = self.clock()
        cutoff = now - self.config.window_s
        with self._lock:
            return sum(1 for s in self._windows[f"e2e.{route}"] if s[0] >= cutoff)


def _ratio(counters: Mapping[str, float], good: str, bad: str) -> float | None:
    total = counters.get(good, 0.0) + counters.get(bad, 0.0)
    return counters.get(good, 0.0) / total if total else None


def _span_coverage(span: Iterable[tuple[float, int, int]]) -> float | None:
    total = good = 0
    for _t, n, g in span:
        total += n
        good += g
    return good / total if total else None
