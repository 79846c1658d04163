"""The dashboard document and the Prometheus text: runbook paths, numbers from recorded events only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import lens
from tests.guard_helpers import StageDouble, make_rig

pytestmark = pytest.mark.usefixtures("no_builtin_stages")


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_nothing_measured_means_null_not_zero(index_dir: Path, tmp_path: Path) -> None:
    rig = make_rig(index_dir, tmp_path)
    d = rig.idx.dashboard()
    json.dumps(d, allow_nan=False)  # valid JSON, no NaN standing in for "unknown"
    s = d["dashboard_state"]
    perf = s["metrics"]["performance"]
    for key in ("p95_latency_ms", "p99_latency_ms", "early_termination_rate", "throughput_rps"):
        assert perf["stageA"][key] is None
    for key in ("lsif_coverage_percent", "lru_cache_hit_rate", "pattern_compile_time_ms"):
        assert perf["stageB"][key] is None
    for key in ("semantic_gating_rate", "confidence_cutoff_rate"):
        assert perf["stageC"][key] is None
    assert s["sla_compliance"]["tail_latency_compliant"] is None
    assert s["sla_compliance"]["overall"] is None
    assert s["health"]["status"] == "healthy" and "stage_a" in s["health"]["unmeasured"]
    assert s["recent_alerts"] == []
    assert s["canary"]["trafficPercentage"] == 100
    text = rig.idx.metrics_text()
    assert "lens_latency_ms{" not in text  # unmeasured values are left out, not exported as 0


def test_numbers_come_from_recorded_queries(index_dir: Path, tmp_path: Path) -> None:
    rig = make_rig(index_dir, tmp_path)
    b = StageDouble(
        rig.clock,
        ms=30.0,
        counters={
            "cache_hits": 3,
            "cache_misses": 1,
            "lsif_resolved": 9,
            "lsif_total": 10,
            "pattern_compiles": 2,
            "pattern_compile_ms": 0.5,
        },
    )
    c = StageDouble(rig.clock, ms=40.0)
    rig.idx.stages.update(stage_b=b, stage_c=c)
    for i in range(1, 101):
        rig.native.native_ms = i / 100  # Stage-A takes 0.01 .. 1.00 ms
        rig.native.early = i % 4 == 0  # a quarter stop early
        c.counters = {"gated": 1.0 if i % 5 else 0.0, "cutoff": 1.0 if i % 10 == 0 else 0.0}
        rig.idx.search("needle")
        rig.clock.advance(0.1 - (i / 100 + 70) / 1000)  # one query every 100 ms, start to start
    s = rig.idx.dashboard()["dashboard_state"]
    a = s["metrics"]["performance"]["stageA"]
    assert a["p95_latency_ms"] == pytest.approx(0.95)
    assert a["p99_latency_ms"] == pytest.approx(0.99)
    assert a["early_termination_rate"] == pytest.approx(0.25)
    assert a["throughput_rps"] == pytest.approx(100 / 9.9, rel=0.02)
    sb = s["metrics"]["performance"]["stageB"]
    assert sb["lru_cache_hit_rate"] == pytest.approx(0.75)
    assert sb["lsif_coverage_percent"] == pytest.approx(90.0)
    assert sb["pattern_compile_time_ms"] == pytest.approx(0.25)
    assert sb["p95_latency_ms"] == pytest.approx(30.0)
    sc = s["metrics"]["performance"]["stageC"]
    assert sc["semantic_gating_rate"] == pytest.approx(0.8)
    assert sc["confidence_cutoff_rate"] == pytest.approx(0.1)
    assert s["metrics"]["quality"]["span_coverage_percent"] == 100.0
    comp = s["sla_compliance"]
    assert comp["stage_a_p95_compliant"] is True and comp["tail_latency_compliant"] is True
    assert comp["cache_hit_rate_compliant"] is False  # 75 % < 80 %
    assert comp["overall"] is False
    assert s["health"]["status"] == "healthy"  # the cache SLO alerts, it does not trip anything
    assert [a["name"] for a in s["recent_alerts"]] == ["cache_hit_rate_low"]

    # Prometheus carries the same numbers.
    m = _samples(rig.idx.metrics_text())
    assert m[("lens_latency_ms", (("quantile", "0.95"), ("stage", "stage_a")))] == pytest.approx(0.95)
    assert m[("lens_stage_b_cache_hit_ratio", ())] == pytest.approx(0.75)
    assert m[("lens_stage_samples_total", (("series", "stage_b"),))] == 100
    assert m[("lens_stage_reported_total", (("counter", "cache_hits"), ("stage", "stage_b")))] == 300
    assert m[("lens_canary_traffic_percent", ())] == 100
    assert m[("lens_kill_switch_active", ())] == 0
    assert m[("lens_alert_active", (("name", "cache_hit_rate_low"),))] == 1
    assert m[("lens_breaker_state", (("stage", "stage_a"), ("state", "closed")))] == 1
    assert m[("lens_flag_value", (("flag", "stage_a.native"),))] == 1


def test_tail_latency_compliance_follows_the_runbook(index_dir: Path, tmp_path: Path) -> None:
    rig = make_rig(index_dir, tmp_path)
    rig.guard.slos.stage_a.tail_ratio = None  # keep the breaker out of it: this is about the check
    for i in range(100):
        rig.native.native_ms = 30.0 if i >= 98 else 2.0  # p95 2 ms, p99 30 ms
        rig.idx.search("needle", mode="lex")
    s = rig.idx.dashboard()["dashboard_state"]
    assert s["metrics"]["performance"]["stageA"]["p99_latency_ms"] == pytest.approx(30.0)
    assert s["sla_compliance"]["tail_latency_compliant"] is False
    assert "tail_latency_violation" in [a["name"] for a in s["active_alerts"]]


def test_kill_switch_shows_on_the_dashboard(index_dir: Path, tmp_path: Path) -> None:
    rig = make_rig(index_dir, tmp_path)
    rig.canary.kill_switch("Emergency: Critical performance regression")
    s = rig.idx.dashboard()["dashboard_state"]
    assert s["canary"]["trafficPercentage"] == 0
    assert s["canary"]["killSwitch"]["active"] is True
    assert s["health"]["status"] == "degraded"
    assert any("kill switch" in r for r in s["health"]["reasons"])
    assert s["recent_alerts"][-1]["name"] == "kill_switch_activated"
    assert s["flags"]["stage_b.enabled"] is False
    m = _samples(rig.idx.metrics_text())
    assert m[("lens_kill_switch_active", ())] == 1 and m[("lens_canary_traffic_percent", ())] == 0
    assert m[("lens_health", (("status", "degraded"),))] == 1


def test_module_level_dashboard_and_metrics() -> None:
    d = lens.dashboard()
    assert set(d["dashboard_state"]) >= {"metrics", "sla_compliance", "health", "recent_alerts", "canary"}
    assert "lens_canary_traffic_percent" in lens.metrics_text()
