"""Breakers: one circuit breaker per stage, and what a tripped one costs.

Closed: the stage's new implementation runs. When its window (holding at least `min_samples`) breaks the
stage's SLO, the breaker opens, and records *why*: `LATENCY` (p95 or p99 over the line) or `ERRORS` (the
error rate over the line). After `cooldown_s` it goes half-open: queries probe the full new path again,
and `probes` good probes in a row (no error, latency within the stage's p95 target) close it; one bad
probe reopens it with the cooldown doubled (up to `max_cooldown_s`) and one step further down its
ladder. Closing clears the window, so a fresh `min_samples` must pile up before another trip: that, the
backoff and the consecutive-probe rule are the hysteresis that keeps it from flapping.

What an open breaker does is the pipeline's business (`lens.pipeline`), but the rule lives here, in
`Breaker.shed_level`: a fallback must cost less than what it replaces. A later stage that trips is
skipped. Stage-A tripped on latency sheds optional work one step per trip: first the last later stage
(Stage-C), then the one before it (Stage-B), then Stage-A runs natively under a tighter budget; it never
falls back to the reference scanner, which reads every byte and would multiply the latency it reacts to.
Stage-A tripped on errors is served by the reference scanner, under a deadline.
"""

from __future__ import annotations

__all__ = ["CLOSED", "ERRORS", "HALF_OPEN", "LATENCY", "OPEN", "Breaker"]

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
#: Why a breaker opened.
LATENCY, ERRORS = "latency", "errors"


class Breaker:
    """One stage's breaker. Mutated only under the guard's lock."""

    __slots__ = ("cooldown_s", "kind", "opened_at", "probe_ok", "reason", "stage", "state", "steps", "trips")

    def __init__(self, stage: str, cooldown_s: float) -> None:
        self.stage = stage
        self.state = CLOSED
        self.trips = 0
        self.opened_at: float | None = None
        self.cooldown_s = cooldown_s
        self.probe_ok = 0
        self.reason: str | None = None
        self.kind: str | None = None
        #: Trips since the breaker last closed: how far down its ladder it has gone.
        self.steps = 0

    def open(self, now: float, reason: str, kind: str) -> bool:
        """Open (or reopen) it; True when it was closed before."""
        was_closed = self.state == CLOSED
        self.state = OPEN
        self.opened_at = now
        self.trips += 1
        self.steps += 1
        self.probe_ok = 0
        self.reason = reason
        self.kind = kind
        return was_closed

    def close(self, cooldown_s: float) -> bool:
        """Close it; True when it was not closed before."""
        was_open = self.state != CLOSED
        self.state = CLOSED
        self.opened_at = None
        self.probe_ok = 0
        self.steps = 0
        self.cooldown_s = cooldown_s
        return was_open

    def cool(self, now: float) -> bool:
        """Open -> half-open once the cooldown has passed; True when it moved."""
        if self.state == OPEN and self.opened_at is not None and now - self.opened_at >= self.cooldown_s:
            self.state = HALF_OPEN
            self.probe_ok = 0
            return True
        return False

    @property
    def shed_level(self) -> int:
        """0 while the new path runs in full (closed, or probing half-open); else how many steps of the
        stage's fallback ladder apply (1 = the first step)."""
        return self.steps if self.state == OPEN else 0

    def as_tuple(self) -> tuple[str, int, float | None, float, int, str | None, str | None, int]:
        return (
            self.state,
            self.trips,
            self.opened_at,
            self.cooldown_s,
            self.probe_ok,
            self.reason,
            self.kind,
            self.shed_level,
        )
