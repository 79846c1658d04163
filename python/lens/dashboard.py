"""The operator's view: the runbook's dashboard document and the same metrics as Prometheus text.

`build_dashboard` evaluates the guard once and lays out what it measured under the runbook's JSON paths
(`dashboard_state.metrics.performance.stageA.p95_latency_ms`, `...sla_compliance.tail_latency_compliant`,
`...health.status`, `...recent_alerts`, the canary's state). Every number comes from recorded events;
one with no events behind it is None (null in JSON), and a compliance check without enough samples is
None too, never a pass. `render_metrics` turns that same document into Prometheus text, so the two never
disagree.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .guard import CLOSED, HALF_OPEN, OPEN
from .guard import ratio as _ratio

if TYPE_CHECKING:  # prometheus_client is imported by render_metrics alone: `import lens` stays cheap
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.metrics_core import Metric

    from .canary import Canary
    from .flags import Flags
    from .guard import Guard

__all__ = ["build_dashboard", "render_metrics"]


def _rate(num: float, den: float) -> float | None:
    return num / den if den else None


def _all(values: list[bool | None]) -> bool | None:
    measured = [v for v in values if v is not None]
    if not measured:
        return None
    return all(measured)


def build_dashboard(guard: Guard, canary: Canary, flags: Flags) -> dict[str, Any]:
    """The runbook's `/monitoring/dashboard` document."""
    stats = guard.evaluate()
    status = guard.status(stats)
    health = guard.health(stats)
    conditions = {c["name"]: c for c in guard.conditions(stats)}
    a, b, c, e2e = status["stage_a"], status["stage_b"], status["stage_c"], status["end_to_end"]
    bc, cc = b["window_counters"], c["window_counters"]
    lsif = _rate(bc.get("lsif_resolved", 0.0), bc.get("lsif_total", 0.0))

    performance = {
        "stageA": {
            "p50_latency_ms": a["p50_ms"],
            "p95_latency_ms": a["p95_ms"],
            "p99_latency_ms": a["p99_ms"],
            "early_termination_rate": a["early_termination_rate"],
            "throughput_rps": a["throughput_rps"],
            "samples": a["samples"],
            "errors": a["errors"],
            "breaker": a["breaker"],
            "trips": a["trips"],
            # Why it last tripped ("latency" or "errors"), how far down its ladder it is, and what the
            # trips cost: queries answered natively under a tighter budget, and by the reference
            # scanner after native errors (and of those, how many ran into their deadline).
            "trip_kind": a["trip_kind"],
            "shed_level": a["shed_level"],
            "tightened_budget": a["tightened_total"],
            "reference_served": a["reference_served_total"] + a["reference_deadline_total"],
            "reference_deadline_hit": a["reference_deadline_total"],
        },
        "stageB": {
            "p50_latency_ms": b["p50_ms"],
            "p95_latency_ms": b["p95_ms"],
            "p99_latency_ms": b["p99_ms"],
            "lsif_coverage_percent": None if lsif is None else 100.0 * lsif,
            "lru_cache_hit_rate": _ratio(bc, "cache_hits", "cache_misses"),
            "pattern_compile_time_ms": _rate(
                bc.get("pattern_compile_ms", 0.0), bc.get("pattern_compiles", 0.0)
            ),
            "samples": b["samples"],
            "errors": b["errors"],
            "skipped_budget": b["skipped_budget"],
            "skipped_shed": b["skipped_shed"],
            "breaker": b["breaker"],
            "trips": b["trips"],
        },
        "stageC": {
            "p50_latency_ms": c["p50_ms"],
            "p95_latency_ms": c["p95_ms"],
            "p99_latency_ms": c["p99_ms"],
            # Shares of Stage-C calls whose gate fired / whose confidence cutoff dropped hits, as the
            # stage reported them (`gated`, `cutoff`).
            "semantic_gating_rate": _rate(cc.get("gated", 0.0), c["samples"]),
            "confidence_cutoff_rate": _rate(cc.get("cutoff", 0.0), c["samples"]),
            "samples": c["samples"],
            "errors": c["errors"],
            "skipped_budget": c["skipped_budget"],
            "skipped_shed": c["skipped_shed"],
            "breaker": c["breaker"],
            "trips": c["trips"],
        },
        # Every stage the guard keeps, by its registered name (Stage-C and later stages included).
        "stages": {
            name: {
                key: st[key]
                for key in (
                    "breaker",
                    "trips",
                    "trip_kind",
                    "shed_level",
                    "last_trip_reason",
                    "p50_ms",
                    "p95_ms",
                    "p99_ms",
                    "samples",
                    "errors",
                    "skipped_budget",
                    "skipped_shed",
                )
            }
            for name, st in status.items()
            if name != "end_to_end"
        },
        "endToEnd": {
            "new": e2e["new"],
            "baseline": e2e["baseline"],
            "p95_vs_baseline": e2e["p95_vs_baseline"],
        },
    }

    def ok(name: str) -> bool | None:
        breached = conditions[name]["breached"]
        return None if breached is None else not breached

    compliance: dict[str, bool | None] = {
        "stage_a_p95_compliant": ok("stage_a_p95_high"),
        "tail_latency_compliant": ok("tail_latency_violation"),
        "stage_b_compliant": b["compliant"],
        "stage_c_compliant": c["compliant"],
        "end_to_end_compliant": e2e["compliant"],
        "error_rate_compliant": ok("error_rate_high"),
        "cache_hit_rate_compliant": ok("cache_hit_rate_low"),
        "span_coverage_compliant": ok("span_coverage_low"),
    }
    compliance["overall"] = _all(list(compliance.values()))

    canary_doc = canary.status()["canary_deployment"]
    if canary_doc["killSwitch"]["active"]:
        health["reasons"].append(f"kill switch active: {canary_doc['killSwitch']['reason']}")
        if health["status"] == "healthy":
            health["status"] = "degraded"
    health["breakers"] = {s: st["breaker"] for s, st in status.items() if s != "end_to_end"}
    # What a Stage-A latency trip is shedding right now (as the latest query shed it), in the order it
    # sheds.
    health["shedding"] = list(guard.shedding())

    cov = guard.span_coverage()
    return {
        "dashboard_state": {
            "generated_at": time.time(),
            "window": {
                "max_samples": guard.config.window_size,
                "seconds": guard.config.window_s,
                "min_samples": guard.config.min_samples,
            },
            "metrics": {
                "performance": performance,
                "quality": {"span_coverage_percent": None if cov is None else 100.0 * cov},
            },
            "sla_compliance": compliance,
            "health": health,
            "recent_alerts": [al.as_dict() for al in guard.recent_alerts()],
            "active_alerts": [al.as_dict() for al in guard.active_alerts()],
            "canary": canary_doc,
            "flags": dict(flags.snapshot()),
            "totals": guard.totals(),
        }
    }


class _Snapshot:
    """Yields metric families built from one dashboard document (a prometheus_client collector)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def _gauge(name: str, doc: str, labels: list[str], rows: list[tuple[list[str], Any]]) -> GaugeMetricFamily:
    from prometheus_client.core import GaugeMetricFamily

    g = GaugeMetricFamily(name, doc, labels=labels)
    for values, v in rows:
        if v is not None:
            g.add_metric(values, float(v))
    return g


def render_metrics(guard: Guard, canary: Canary, flags: Flags) -> str:
    """The dashboard's numbers in the Prometheus text exposition format (unmeasured values are left out)."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily

    d = build_dashboard(guard, canary, flags)["dashboard_state"]
    perf = d["metrics"]["performance"]
    totals = d["totals"]
    keys = {"stage_a": "stageA", "stage_b": "stageB", "stage_c": "stageC"}
    fams: list[Metric] = []

    lat = []
    for stage, key in keys.items():
        for q, field in (("0.5", "p50_latency_ms"), ("0.95", "p95_latency_ms"), ("0.99", "p99_latency_ms")):
            lat.append(([stage, q], perf[key][field]))
    for route in ("new", "baseline"):
        for q, field in (("0.5", "p50_ms"), ("0.95", "p95_ms"), ("0.99", "p99_ms")):
            lat.append(([f"end_to_end_{route}", q], perf["endToEnd"][route][field]))
    fams.append(
        _gauge(
            "lens_latency_ms",
            "Latency over the guard's window (exact percentiles)",
            ["stage", "quantile"],
            lat,
        )
    )

    samples = CounterMetricFamily("lens_stage_samples", "Samples recorded per series", labels=["series"])
    errors = CounterMetricFamily("lens_stage_errors", "Errors recorded per series", labels=["series"])
    stage_names = [name for name in d["health"]["breakers"]]
    for series in (*stage_names, "e2e.new", "e2e.baseline"):
        samples.add_metric([series], totals[f"samples.{series}"])
        errors.add_metric([series], totals[f"errors.{series}"])
    fams += [samples, errors]

    reported = CounterMetricFamily(
        "lens_stage_reported", "Counters the later stages reported, since start", labels=["stage", "counter"]
    )
    for stage, counters in guard.stage_counters().items():
        for name, value in counters.items():
            reported.add_metric([stage, name], value)
    fams.append(reported)

    skips = CounterMetricFamily("lens_stage_skipped", "Later-stage calls skipped", labels=["stage", "reason"])
    for stage in stage_names[1:]:
        for why in ("budget", "shed"):
            skips.add_metric([stage, why], totals.get(f"skips.{stage}.{why}", 0))
    fams.append(skips)

    states = [
        ([stage, st], 1.0 if d["health"]["breakers"][stage] == st else 0.0)
        for stage in stage_names
        for st in (CLOSED, OPEN, HALF_OPEN)
    ]
    fams.append(
        _gauge(
            "lens_breaker_state", "Circuit breaker state per stage (1 = current)", ["stage", "state"], states
        )
    )
    trips = CounterMetricFamily("lens_breaker_trips", "Breaker trips per stage", labels=["stage"])
    for stage in stage_names:
        trips.add_metric([stage], perf["stages"][stage]["trips"])
    fams.append(trips)

    fams.append(
        _gauge(
            "lens_stage_a_early_termination_ratio",
            "Native Stage-A searches that stopped early",
            [],
            [([], perf["stageA"]["early_termination_rate"])],
        )
    )
    fams.append(
        _gauge(
            "lens_stage_a_throughput_rps",
            "Native Stage-A searches per second over the window",
            [],
            [([], perf["stageA"]["throughput_rps"])],
        )
    )
    fams.append(
        _gauge(
            "lens_stage_b_lsif_coverage_percent",
            "Stage-B LSIF coverage",
            [],
            [([], perf["stageB"]["lsif_coverage_percent"])],
        )
    )
    fams.append(
        _gauge(
            "lens_stage_b_cache_hit_ratio",
            "Stage-B LRU cache hit rate",
            [],
            [([], perf["stageB"]["lru_cache_hit_rate"])],
        )
    )
    fams.append(
        _gauge(
            "lens_stage_b_pattern_compile_ms",
            "Stage-B mean pattern compile time",
            [],
            [([], perf["stageB"]["pattern_compile_time_ms"])],
        )
    )
    fams.append(
        _gauge(
            "lens_stage_c_semantic_gating_ratio",
            "Stage-C semantic gating rate",
            [],
            [([], perf["stageC"]["semantic_gating_rate"])],
        )
    )
    fams.append(
        _gauge(
            "lens_stage_c_confidence_cutoff_ratio",
            "Stage-C confidence cutoff rate",
            [],
            [([], perf["stageC"]["confidence_cutoff_rate"])],
        )
    )
    cov = d["metrics"]["quality"]["span_coverage_percent"]
    fams.append(
        _gauge(
            "lens_span_coverage_ratio",
            "Sampled hits with a well-formed span",
            [],
            [([], None if cov is None else cov / 100.0)],
        )
    )

    canary_doc = d["canary"]
    fams.append(
        _gauge(
            "lens_canary_traffic_percent",
            "Share of queries routed to the new path",
            [],
            [([], canary_doc["trafficPercentage"])],
        )
    )
    fams.append(
        _gauge(
            "lens_kill_switch_active",
            "1 while the kill switch is on",
            [],
            [([], 1.0 if canary_doc["killSwitch"]["active"] else 0.0)],
        )
    )
    fams.append(
        _gauge(
            "lens_health",
            "Guard health (1 = current status)",
            ["status"],
            [
                ([st], 1.0 if d["health"]["status"] == st else 0.0)
                for st in ("healthy", "degraded", "unhealthy")
            ],
        )
    )
    fams.append(
        _gauge(
            "lens_sla_compliant",
            "SLO compliance (1 met, 0 broken; absent: not measured)",
            ["check"],
            [([k], None if v is None else float(v)) for k, v in d["sla_compliance"].items()],
        )
    )
    fams.append(
        _gauge(
            "lens_alert_active",
            "Alerts firing now",
            ["name"],
            [([al["name"]], 1.0) for al in d["active_alerts"]],
        )
    )
    fams.append(
        _gauge(
            "lens_flag_value",
            "Feature flag values (bools as 0/1)",
            ["flag"],
            [([k], float(v)) for k, v in d["flags"].items()],
        )
    )

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(fams))  # a collector by its collect(): prometheus_client duck-types it
    return generate_latest(registry).decode("utf-8")
