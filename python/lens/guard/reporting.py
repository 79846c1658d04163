"""Reporting: the guard's status and health documents, built from one evaluation's windows.

Every number here comes from recorded events; a figure with no events behind it is None, and a compliance
check without enough samples is None too, never a pass.
"""

from __future__ import annotations

from collections.abc import Mapping

from .alerts import conditions, span_coverage
from .breakers import HALF_OPEN, OPEN
from .windows import WindowStats

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

    from .core import Guard

__all__ = ["health", "span_coverage", "status"]


def _e2e_ratio(guard: Guard, new: WindowStats, base: WindowStats) -> float | None:
    enough = guard.config.min_samples
    if new.n < enough or base.n < enough or not new.p95 or not base.p95:
        return None
    return new.p95 / base.p95


def _e2e_compliant(guard: Guard, new: WindowStats, base: WindowStats) -> bool | None:
    ratio = _e2e_ratio(guard, new, base)
    return None if ratio is None else ratio <= 1.0 + guard.slos.e2e_max_regression


def status(guard: Guard, stats: Mapping[str, WindowStats]) -> dict[str, Any]:
    """Per stage (every stage the guard keeps): breaker, trips and why, the window's percentiles and
    errors, SLO compliance, reported counters, and what was skipped or shed; then the end-to-end figures."""
    totals = guard.totals()
    breakers = guard.breakers()
    out: dict[str, Any] = {}
    now = guard.clock()
    for stage, (state, trips, opened_at, cooldown, probe_ok, reason, kind, level) in breakers.items():
        st = stats.get(stage) or WindowStats([], now)
        slo = guard.slos.stage(stage)
        measured = st.n >= guard.config.min_samples
        out[stage] = {
            "breaker": state,
            "trips": trips,
            "last_trip_reason": reason,
            "trip_kind": kind,
            "shed_level": level,
            "opened_at": opened_at,
            "cooldown_s": cooldown,
            "probes_ok": probe_ok,
            **st.as_dict(),
            "errors_total": totals.get(f"errors.{stage}", 0),
            "samples_total": totals.get(f"samples.{stage}", 0),
            "skipped_budget": totals.get(f"skips.{stage}.budget"),
            "skipped_shed": totals.get(f"skips.{stage}.shed"),
            "slo": slo.as_dict(),
            "compliant": (guard.stage_breach(stage, st) is None) if measured else None,
            "window_counters": dict(st.counters),
        }
    if "stage_a" in out:
        a = stats.get("stage_a") or WindowStats([], now)
        ok_a = a.n - a.errors
        out["stage_a"]["early_termination_rate"] = a.early / ok_a if ok_a else None
        # Queries Stage-A served natively under a tighter budget while shedding load, and queries the
        # reference scanner served (errors of the native path) that hit their deadline.
        out["stage_a"]["tightened_total"] = totals.get("skips.stage_a.tightened", 0)
        out["stage_a"]["reference_deadline_total"] = totals.get("skips.stage_a.deadline", 0)
        out["stage_a"]["reference_served_total"] = totals.get("skips.stage_a.reference", 0)
    new = stats.get("e2e.new") or WindowStats([], now)
    base = stats.get("e2e.baseline") or WindowStats([], now)
    out["end_to_end"] = {
        "new": new.as_dict(),
        "baseline": base.as_dict(),
        "p95_vs_baseline": _e2e_ratio(guard, new, base),
        "max_regression": guard.slos.e2e_max_regression,
        "compliant": _e2e_compliant(guard, new, base),
    }
    return out


def health(guard: Guard, stats: Mapping[str, WindowStats]) -> dict[str, Any]:
    """ "healthy", "degraded" or "unhealthy", with the reasons and what was not measured."""
    reasons: list[str] = []
    unmeasured: list[str] = []
    state_of = "healthy"

    def worse(to: str) -> None:
        nonlocal state_of
        if to == "unhealthy" or state_of == "healthy":
            state_of = to

    now = guard.clock()
    for stage, state in guard.breaker_states().items():
        if state == OPEN:
            worse("unhealthy")
            reasons.append(f"{stage} breaker open")
        elif state == HALF_OPEN:
            reasons.append(f"{stage} breaker half-open (probing)")
            worse("degraded")
    for stage in guard.breaker_states():
        st = stats.get(stage) or WindowStats([], now)
        if st.n < guard.config.min_samples:
            unmeasured.append(stage)
            continue
        breach = guard.stage_breach(stage, st)
        if breach is not None:
            reasons.append(f"{stage}: {breach[0]}")
            worse("degraded")
    new = stats.get("e2e.new") or WindowStats([], now)
    base = stats.get("e2e.baseline") or WindowStats([], now)
    e2e = _e2e_compliant(guard, new, base)
    if e2e is None:
        unmeasured.append("end_to_end")
    elif not e2e:
        limit = guard.slos.e2e_max_regression
        reasons.append(f"end-to-end p95 of the new route more than {limit:.0%} above the baseline's")
        worse("degraded")
    for name, _sev, breached, value, threshold, _stage, message in conditions(
        stats, guard.span_copy(), guard.slos, guard.config
    ):
        if name in ("error_rate_high", "canary_error_rate_high", "span_coverage_low") and breached:
            reasons.append(f"{message}: {value:.3f} vs {threshold}")
            worse("unhealthy" if name == "error_rate_high" else "degraded")
    return {"status": state_of, "reasons": reasons, "unmeasured": unmeasured}
