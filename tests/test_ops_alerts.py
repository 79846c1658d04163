"""The shipped Prometheus rules and Grafana dashboard: valid, and about metrics lens really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lens.canary import Canary
from lens.dashboard import render_metrics
from lens.flags import Flags
from lens.guard import Guard
from tests.conftest import REPO

RULES = REPO / "deploy" / "prometheus" / "lens-alerts.yml"
RULE_TESTS = REPO / "deploy" / "prometheus" / "lens-alerts.test.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "lens-dashboard.json"
#: Families `lens.ops.server` adds to `/metrics` beside `render_metrics`'s.
OPS_FAMILIES = {
    "lens_quality_gate_passed",
    "lens_quality_gate_value",
    "lens_validation_consecutive_passing_nights",
    "lens_validation_last_night_passed",
}
PROMQL_WORDS = {"sum", "rate", "max_over_time", "ignoring", "and", "or", "by", "on"}


def _exported(tmp_path: Path) -> set[str]:
    guard = Guard()
    flags = Flags()
    text = render_metrics(guard, Canary(guard, flags, tmp_path / "c.json"), flags)
    names = set(re.findall(r"^# (?:HELP|TYPE) (\w+)", text, re.M))
    # Counters are exposed with a _total suffix.
    return (
        names
        | {n + "_total" for n in names}
        | OPS_FAMILIES
        | {
            # Gauges absent until measured still have fixed names in dashboard.py.
            "lens_latency_ms",
            "lens_span_coverage_ratio",
            "lens_stage_b_cache_hit_ratio",
            "lens_stage_b_lsif_coverage_percent",
            "lens_alert_active",
        }
    )


def _metrics_in(expr: str) -> set[str]:
    return {m for m in re.findall(r"\blens_\w+", expr)} - PROMQL_WORDS


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is absent (Debian: apt-get install prometheus)")
    return path


def test_promtool_check_rules() -> None:
    out = subprocess.run([_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 9 rules found" in out.stdout


def test_promtool_rule_unit_tests() -> None:
    out = subprocess.run(
        [_promtool(), "test", "rules", RULE_TESTS.name], capture_output=True, text=True, cwd=RULE_TESTS.parent
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_rules_carry_the_runbooks_thresholds() -> None:
    text = RULES.read_text()
    for needle in (
        'quantile="0.95"} > 5',  # Stage-A p95 > 5 ms
        "> ignoring(quantile) (2 * lens_latency_ms",  # p99 > 2 x p95
        "lens_span_coverage_ratio < 0.98",
        "> 0.05",  # error rate 5 %
        "lens_kill_switch_active == 1",
        "lens_stage_b_cache_hit_ratio < 0.80",
        "lens_quality_gate_passed == 0",
        "> 0.03",  # canary error rate 3 %
        "[1d]) - 5",  # LSIF coverage: a 5-point drop
    ):
        assert needle in text, needle


def test_rules_and_dashboard_use_exported_metrics(tmp_path: Path) -> None:
    exported = _exported(tmp_path)
    exprs = re.findall(r"expr: (.+(?:\n {10,}.+)*)", RULES.read_text())
    dash = json.loads(DASHBOARD.read_text())
    exprs += [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(dash["panels"]) >= 10
    for expr in exprs:
        missing = _metrics_in(expr) - exported
        assert not missing, (expr, missing)
