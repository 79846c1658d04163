"""The SLO guard: per-stage latency and error windows, circuit breakers, health and alerts.

- `windows`: bounded rings of samples and their exact percentiles.
- `breakers`: one breaker per stage; why it opened (latency or errors) and how far down its fallback
  ladder it has gone.
- `alerts`: the runbook's alert conditions and their delivery to subscribers.
- `reporting`: the status and health documents the dashboard and the canary read.
- `core`: `Guard` (the stage registry, `plan`, `record`), `SLOs`, `GuardConfig`, `QueryEvent`.

Stages are kept by name: Stage-A, Stage-B and Stage-C are built in, and a stage the pipeline registers
(`lens.pipeline.register_stage`) gets its own window, breaker and counters with no change here. The guard
never imports the pipeline, the index or the operations layer: they call it, never the reverse.
"""

from __future__ import annotations

from .alerts import Alert, ratio, span_coverage
from .breakers import CLOSED, ERRORS, HALF_OPEN, LATENCY, OPEN
from .core import (
    ALL_CLOSED,
    BUILTIN_STAGES,
    STAGE_COUNTERS,
    Guard,
    GuardConfig,
    QueryEvent,
    SLOs,
    StageSLO,
    register_stage,
    registered_stages,
)
from .windows import WindowStats, percentile

#: The built-in stages (kept for callers that read it; `registered_stages()` has every stage).
STAGES = BUILTIN_STAGES

__all__ = [
    "ALL_CLOSED",
    "BUILTIN_STAGES",
    "CLOSED",
    "ERRORS",
    "HALF_OPEN",
    "LATENCY",
    "OPEN",
    "STAGES",
    "STAGE_COUNTERS",
    "Alert",
    "Guard",
    "GuardConfig",
    "QueryEvent",
    "SLOs",
    "StageSLO",
    "WindowStats",
    "percentile",
    "ratio",
    "register_stage",
    "registered_stages",
    "span_coverage",
]
