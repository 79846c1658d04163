"""Alerts: the runbook's alert conditions over the guard's windows, and their delivery.

Threshold alerts fire once when their condition starts and resolve once when it ends, so a subscriber is
not flooded; one-off alerts (a breaker trip, the kill switch) fire as they happen. Subscribers run in the
thread that raised the alert; an exception in one is logged and dropped.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping

from .._log import get_logger
from .._record import Frozen
from .windows import WindowStats

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from .core import GuardConfig, SLOs

__all__ = ["Alert", "AlertBook", "Condition", "conditions", "ratio", "span_coverage"]

_log = get_logger("lens.guard")

#: (name, severity, breached or None when unmeasured, value, threshold, stage, message)
Condition = tuple[str, str, bool | None, float | None, float | None, str | None, str]


class Alert(Frozen):
    """A structured alert. `state` is "firing" or "resolved"."""

    __slots__ = _FIELDS = ("name", "severity", "state", "message", "value", "threshold", "stage", "at")

    name: str
    severity: str
    state: str
    message: str
    value: float | None
    threshold: float | None
    stage: str | None
    at: float

    def __init__(
        self,
        name: str,
        severity: str,
        state: str,
        message: str,
        value: float | None = None,
        threshold: float | None = None,
        stage: str | None = None,
        at: float = 0.0,
    ) -> None:
        self._set(
            name=name,
            severity=severity,
            state=state,
            message=message,
            value=value,
            threshold=threshold,
            stage=stage,
            at=at,
        )


def ratio(counters: Mapping[str, float], good: str, bad: str) -> float | None:
    """good / (good + bad), None when both are zero."""
    total = counters.get(good, 0.0) + counters.get(bad, 0.0)
    return counters.get(good, 0.0) / total if total else None


def span_coverage(span: Iterable[tuple[float, int, int]]) -> float | None:
    """Share of sampled hits with a well-formed span; None when nothing was sampled."""
    total = good = 0
    for _t, n, g in span:
        total += n
        good += g
    return good / total if total else None


def _stats(stats: Mapping[str, WindowStats], name: str, now: float) -> WindowStats:
    st = stats.get(name)
    return st if st is not None else WindowStats([], now)


def conditions(
    stats: Mapping[str, WindowStats], span: Iterable[tuple[float, int, int]], slos: SLOs, config: GuardConfig
) -> list[Condition]:
    """Every runbook alert condition over these windows."""
    s = slos
    enough = config.min_samples
    a = _stats(stats, "stage_a", 0.0)
    out: list[Condition] = []
    p95_high: bool | None = None
    tail: bool | None = None
    if a.n >= enough and a.p95 is not None and a.p99 is not None:
        p95_high = a.p95 > s.stage_a.p95_ms
        # The runbook's alert compares the measured p99 with the measured p95 (the breaker uses the p95
        # target instead; see `StageSLO`). A tail under `tail_alert_floor_ms` is not a latency problem:
        # at tens of microseconds one scheduler hiccup doubles the p99.
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
    new, base = _stats(stats, "e2e.new", 0.0), _stats(stats, "e2e.baseline", 0.0)
    n_queries = new.n + base.n
    rate = (new.errors + base.errors) / n_queries if n_queries >= enough else None
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
    b_counters = _stats(stats, "stage_b", 0.0).counters
    hit_rate = ratio(b_counters, "cache_hits", "cache_misses")
    # Every name's first lookup is a miss, so a process that has served a handful of lookups has a low hit
    # rate by construction: judge the cache only on `min_samples` lookups.
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
    cov = span_coverage(span)
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


class AlertBook:
    """Subscribers, the recent alerts and the threshold alerts firing now."""

    def __init__(self, recent: int, wall: Callable[[], float]) -> None:
        self.wall = wall
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[Alert], object]] = []
        self._recent: deque[Alert] = deque(maxlen=recent)
        self._active: dict[str, Alert] = {}

    def clear(self) -> None:
        with self._lock:
            self._recent.clear()
            self._active.clear()

    def subscribe(self, callback: Callable[[Alert], object]) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def check(self, conds: Iterable[Condition]) -> None:
        """Fire the conditions that started and resolve those that ended."""
        fire: list[Alert] = []
        with self._lock:
            for name, severity, breached, value, threshold, stage, message in conds:
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
            self.emit(alert)

    def emit(self, alert: Alert) -> None:
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

    def recent(self) -> list[Alert]:
        with self._lock:
            return list(self._recent)

    def active(self) -> list[Alert]:
        with self._lock:
            return list(self._active.values())
