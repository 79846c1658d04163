"""The admin HTTP API: a real uvicorn on 127.0.0.1 and httpx, every endpoint, the security rules, and a
bounded load test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip(
    "httpx", reason="the server tests need lens[server] and httpx (make test installs them)"
)
pytest.importorskip("starlette", reason="the server tests need lens[server]")
pytest.importorskip("uvicorn", reason="the server tests need lens[server]")

import lens  # noqa: E402
from benches.admin_api_load import run_load  # noqa: E402
from lens.canary import Canary  # noqa: E402
from lens.guard import Guard  # noqa: E402
from lens.ops.golden import GoldenSet  # noqa: E402
from lens.ops.server import admin_token_from, create_app  # noqa: E402
from lens.ops.state import OpsStore  # noqa: E402
from tests.ops_helpers import REPEATS, running_server, small_golden  # noqa: E402

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> GoldenSet:
    return small_golden(tmp_path_factory.mktemp("golden"))


def _index(golden: GoldenSet, d: Path) -> lens.Index:
    idx = lens.Index.build(golden.roots["orig"], d / "idx")
    # Its own guard and canary: the kill switch below must not reach the process-wide canary's file.
    idx.guard = Guard()
    idx.canary = Canary(idx.guard, idx.flags, d / "canary.json")
    return idx


@pytest.fixture(scope="module")
def server(golden: GoldenSet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    d = tmp_path_factory.mktemp("server")
    idx = _index(golden, d)
    store = OpsStore(d / "state")
    app = create_app(
        index=idx,
        store=store,
        admin_token=TOKEN,
        golden=lambda: golden,
        max_body=4096,
        gate_options={"latency_repeats": REPEATS},
        night_options={"threads": 1, "load_qps": 20, "latency_repeats": REPEATS},
    )
    with running_server(app) as url, httpx.Client(base_url=url, timeout=120) as client:
        yield {"url": url, "client": client, "index": idx, "store": store}


def test_binds_loopback(server: dict[str, Any]) -> None:
    assert server["url"].startswith("http://127.0.0.1:")


def test_health(server: dict[str, Any]) -> None:
    r = server["client"].get("/health")
    assert r.status_code == 200
    doc = r.json()
    assert doc["status"] in ("healthy", "degraded", "unhealthy") and doc["admin_enabled"] is True
    assert (
        doc["lens_version"] == lens.__version__ and doc["index_format_version"] == lens.INDEX_FORMAT_VERSION
    )


def test_search_returns_hits_timings_and_route(server: dict[str, Any]) -> None:
    c = server["client"]
    r = c.post("/search", json={"query": "import", "k": 5, "mode": "auto"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert 0 < len(doc["hits"]) <= 5 and doc["route"] in ("new", "baseline")
    assert doc["timings_ms"]["stage_a"] >= 0 and doc["timings_ms"]["total"] >= doc["timings_ms"]["stage_a"]
    h = doc["hits"][0]
    assert set(h) == {"path", "line", "column", "byte_start", "byte_end", "text", "score", "why"}
    assert c.post("/search", json={"query": "x"}).json()["mode"] == "auto"  # defaults: k 10, auto


def test_dashboard_and_metrics_reflect_served_queries(server: dict[str, Any]) -> None:
    c = server["client"]
    for _ in range(3):
        c.post("/search", json={"query": "parse", "k": 3, "mode": "lex"})
    d = c.get("/monitoring/dashboard").json()["dashboard_state"]
    assert d["metrics"]["performance"]["stageA"]["samples"] >= 3
    assert "tail_latency_compliant" in d["sla_compliance"] and "status" in d["health"]
    m = c.get("/metrics")
    assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain")
    assert 'lens_stage_samples_total{series="stage_a"}' in m.text
    assert "lens_validation_consecutive_passing_nights" in m.text


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{nope", 400, "malformed JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"query": "x", "limit": 3}', 400, "unknown parameter(s): limit"),
        (b'{"query": 42}', 400, "query must be str"),
        (b'{"query": "x", "k": "10"}', 400, "k must be int"),
        (b'{"query": "x", "k": true}', 400, "k must be int"),
        (b'{"query": "x", "k": 0}', 400, "k must be between"),
        (b'{"query": "x", "mode": "fast"}', 400, "mode must be one of"),
        (b'{"k": 3}', 400, "missing parameter: query"),
        (b'{"query": ""}', 400, ""),
        (b'{"query": "' + b"a" * 5000 + b'"}', 413, "over 4096 bytes"),
    ],
)
def test_bad_requests_get_4xx_with_a_message(
    server: dict[str, Any], body: bytes, status: int, message: str
) -> None:
    r = server["client"].post("/search", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def test_unknown_query_parameters_and_methods(server: dict[str, Any]) -> None:
    c = server["client"]
    assert c.get("/health?verbose=1").status_code == 400
    assert c.get("/compat/check?api_version=v1").status_code == 400
    assert c.get("/compat/bundles?allow_compat=maybe").status_code == 400
    assert c.get("/search").status_code == 405
    assert c.get("/nope").status_code == 404


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/canary/progress", {}),
        ("/canary/start", {"reason": "x"}),
        ("/canary/killswitch", {"reason": "x"}),
        ("/validation/quality-gates", {}),
        ("/validation/nightly", {"duration_minutes": 0}),
    ],
)
def test_mutating_endpoints_need_the_token(server: dict[str, Any], path: str, body: dict[str, Any]) -> None:
    c = server["client"]
    assert c.post(path, json=body).status_code == 401
    assert c.post(path, json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.post(path, json=body, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401


def test_without_a_configured_token_mutations_refuse(golden: GoldenSet, tmp_path: Path) -> None:
    app = create_app(index=_index(golden, tmp_path), store=OpsStore(tmp_path / "st"), admin_token=None)
    with running_server(app) as url, httpx.Client(base_url=url) as c:
        r = c.post("/canary/killswitch", json={"reason": "x"}, headers={"Authorization": "Bearer anything"})
        assert r.status_code == 403 and "LENS_ADMIN_TOKEN" in r.json()["error"]
        assert c.get("/canary/status").json()["canary_deployment"]["killSwitch"]["active"] is False


def test_token_from_env_or_config(tmp_path: Path) -> None:
    cfg = tmp_path / "server.toml"
    cfg.write_text('admin_token = "from-file"\n')
    assert admin_token_from({"LENS_ADMIN_TOKEN": "from-env"}, cfg) == "from-env"
    assert admin_token_from({}, cfg) == "from-file"
    assert admin_token_from({"LENS_ADMIN_TOKEN": "  "}, tmp_path / "absent.toml") is None
    assert admin_token_from({"XDG_CONFIG_HOME": str(tmp_path / "nothing")}) is None


def test_canary_progress_killswitch_and_start(server: dict[str, Any]) -> None:
    c = server["client"]
    st = c.get("/canary/status").json()["canary_deployment"]
    assert st["trafficPercentage"] == 100
    r = c.post("/canary/start", json={"reason": "rollout"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["canary_deployment"]["trafficPercentage"] == 5
    # The new route has too few queries in the guard's window: progress says why (409), changes nothing.
    r = c.post("/canary/progress", headers=AUTH)
    assert r.status_code == 409 and r.json()["reasons"]
    assert c.get("/canary/status").json()["canary_deployment"]["trafficPercentage"] == 5
    r = c.post(
        "/canary/killswitch",
        json={"reason": "Performance regression - Stage-A p95 exceeds 10ms"},
        headers=AUTH,
    )
    assert r.status_code == 200
    st = c.get("/canary/status").json()["canary_deployment"]
    assert st["trafficPercentage"] == 0 and st["killSwitch"]["active"]
    assert st["killSwitch"]["reason"].startswith("Performance regression")
    assert c.post("/search", json={"query": "import"}).json()["route"] == "baseline"
    assert c.post("/canary/killswitch", json={"reason": "  "}, headers=AUTH).status_code == 400
    assert c.post("/canary/killswitch", json={}, headers=AUTH).status_code == 400
    health = c.get("/monitoring/dashboard").json()["dashboard_state"]["health"]
    assert any("kill switch" in reason for reason in health["reasons"])
    assert c.post("/canary/progress", headers=AUTH).status_code == 409
    r = c.post("/canary/start", json={"reason": "recovered"}, headers=AUTH)
    assert r.json()["canary_deployment"]["killSwitch"]["active"] is False
    server["index"].canary.set_share(100, "test done")


def test_quality_gates_get_and_post(server: dict[str, Any]) -> None:
    c = server["client"]
    r = c.post("/validation/quality-gates", headers=AUTH)
    assert r.status_code == 200
    report = r.json()["quality_gates_report"]
    assert {g["gate"] for g in report["gates"]} >= {"span_coverage", "consistency_violations"}
    got = c.get("/validation/quality-gates").json()
    assert got["quality_gates_report"]["finished_at"] == report["finished_at"]
    span = [g for g in got["quality_gates_report"]["gates"] if g["gate"] == "span_coverage"]
    assert span[0]["passed"] is True
    assert c.post("/validation/quality-gates", json={"fast": True}, headers=AUTH).status_code == 400


def test_nightly_runs_in_the_background_and_is_polled(server: dict[str, Any]) -> None:
    c = server["client"]
    bad = c.post("/validation/nightly", json={"force_night": "one", "duration_minutes": 1}, headers=AUTH)
    assert bad.status_code == 400
    assert c.post("/validation/nightly", json={"force_night": 1}, headers=AUTH).status_code == 400
    assert c.post("/validation/nightly", json={"duration_minutes": -1}, headers=AUTH).status_code == 400
    t = time.perf_counter()
    r = c.post("/validation/nightly", json={"force_night": 1, "duration_minutes": 0.02}, headers=AUTH)
    assert r.status_code == 202 and time.perf_counter() - t < 5  # answered before the night ends
    assert r.json()["job"]["state"] == "running"
    again = c.post("/validation/nightly", json={"force_night": 2, "duration_minutes": 0}, headers=AUTH)
    assert again.status_code == 409
    assert c.get("/health").status_code == 200  # the event loop is free while the night runs
    deadline = time.monotonic() + 120
    while True:
        st = c.get("/validation/status").json()["validation_status"]
        if st["nightly_job"]["state"] != "running":
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert st["nightly_job"]["state"] in ("passed", "failed")
    assert st["nights"][-1]["night"] == "forced-1" and st["nights_recorded"] >= 1
    assert st["promotion_ready"] is False and st["required_nights"] == 3


def test_signoff_and_compat_endpoints(server: dict[str, Any]) -> None:
    c = server["client"]
    assert c.get("/validation/signoff-report").status_code == 404  # no RC cut yet
    r = c.get("/validation/signoff-report?version=1.0.0-rc.1")
    assert r.status_code == 200 and r.json()["signoff_report"]["promotable"] is False
    r = c.get(f"/compat/check?api_version=v1&index_version=v{lens.INDEX_FORMAT_VERSION}")
    assert r.status_code == 200 and r.json()["compatible"] is True
    assert c.get("/compat/check?api_version=v9&index_version=v1").json()["compatible"] is False
    assert c.get("/compat/check?api_version=v1&index_version=newest").status_code == 400
    doc = c.get("/compat/bundles?allow_compat=false").json()
    assert doc["allow_compat"] is False and doc["bundles"] == [] and doc["compatible"] is True
    assert c.get("/compat/bundles?allow_compat=true").json()["allow_compat"] is True


def test_bounded_load(server: dict[str, Any]) -> None:
    out = run_load(server["url"], requests=200, threads=4, seconds=20)
    assert out["errors"] == 0, out["error_examples"]
    assert out["requests"] > 0 and out["p95_ms"] is not None and out["rps"] > 0
