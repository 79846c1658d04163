"""The canary: deterministic split, staged progress gated on health, kill switch, persisted state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from structlog.testing import capture_logs

import lens
from lens.canary import SHARES, Canary, CanaryError, bucket, default_state_path
from lens.flags import Flags
from lens.guard import Alert, Guard, GuardConfig
from tests.guard_helpers import StageDouble, make_rig

pytestmark = pytest.mark.usefixtures("no_builtin_stages")


def _canary(tmp_path: Path, **config: float) -> Canary:
    guard = Guard(config=GuardConfig(**{"min_samples": 20, "eval_every": 1, **config}))  # type: ignore[arg-type]
    return Canary(guard, Flags(), tmp_path / "state" / "canary.json")


# -- routing ------------------------------------------------------------------------------------
def test_split_is_deterministic_proportional_and_nested(tmp_path: Path) -> None:
    c = _canary(tmp_path)
    assert c.share == 100  # no state file: no rollout in progress
    keys = [f"user-{i}" for i in range(20_000)]
    assert {c.route(k) for k in keys} == {"new"}
    routed = {}
    for share in (5, 25):
        c.set_share(share, "test")
        routed[share] = {k for k in keys if c.route(k) == "new"}
        assert abs(len(routed[share]) / len(keys) - share / 100) < 0.01
        assert all(c.route(k) == c.route(k) for k in keys[:100])
    # A key inside 5 % stays inside at 25 %: raising the share only adds users.
    assert routed[5] <= routed[25]
    c.set_share(0, "test")
    assert {c.route(k) for k in keys} == {"baseline"}
    # The split does not depend on the process (not the salted hash()) nor may it change between
    # releases: a user would jump sides. This pins it.
    assert bucket("user-1") == bucket(b"user-1") == 1044


@pytest.mark.parametrize(
    "keys",
    [
        [str(i) for i in range(20_000)],
        [f"session-{i:08x}" for i in range(0, 20_000 * 7919, 7919)],
        [f"find {w} in module {w % 97}" for w in range(20_000)],
    ],
    ids=["ints", "hex-sessions", "queries"],
)
def test_buckets_spread_evenly(keys: list[str]) -> None:
    counts = [0] * 100
    for k in keys:
        counts[bucket(k) // 100] += 1
    expected = len(keys) / 100
    chi2 = sum((c - expected) ** 2 / expected for c in counts)
    # 99 degrees of freedom: the 99.9th percentile of chi-square is about 148.
    assert chi2 < 148, chi2


def test_search_routes_by_key_or_query(index_dir: Path, tmp_path: Path) -> None:
    rig = make_rig(index_dir, tmp_path)
    rig.canary.set_share(25, "test")
    inside = next(f"u{i}" for i in range(1000) if rig.canary.route(f"u{i}") == "new")
    outside = next(f"u{i}" for i in range(1000) if rig.canary.route(f"u{i}") == "baseline")
    for _ in range(3):
        r = rig.idx.search("needle", key=inside)
        assert r.info["route"] == "new" and r.path == "native"
        r = rig.idx.search("needle", key=outside)
        assert r.info["route"] == "baseline" and r.path == "baseline"
        assert r.info["stages"]["stage_b"] == "route"
    # Without a key the query text decides.
    q_route = rig.canary.route("needle")
    assert rig.idx.search("needle").info["route"] == q_route
    totals = rig.guard.totals()
    assert totals["samples.e2e.new"] + totals["samples.e2e.baseline"] == 7


def test_baseline_route_runs_no_later_stage(index_dir: Path, tmp_path: Path) -> None:
    rig = make_rig(index_dir, tmp_path)
    hook = StageDouble(rig.clock)
    rig.idx.stages["stage_b"] = hook
    rig.canary.set_share(0, "test")
    r = rig.idx.search("needle")
    assert hook.calls == 0 and r.path == "baseline" and rig.native.calls == [False]


# -- progress -----------------------------------------------------------------------------------
def test_progress_needs_health_and_evidence(index_dir: Path, tmp_path: Path) -> None:
    rig = make_rig(index_dir, tmp_path)
    rig.canary.set_share(0, "test")
    with pytest.raises(CanaryError, match="no rollout"):
        rig.canary.progress()
    rig.canary.start("release 1.1")
    assert rig.canary.share == 5
    with pytest.raises(CanaryError, match="not enough evidence"):
        rig.canary.progress()
    rig.native.native_ms = 1.0
    keys = [f"user-{i}" for i in range(2000)]
    for k in keys:
        rig.idx.search("needle", mode="lex", key=k)
    status = rig.canary.progress("5 % looks good")
    assert status["canary_deployment"]["trafficPercentage"] == 25
    assert status["canary_deployment"]["nextStage"] == 100

    # A broken SLO blocks the next step.
    rig.native.native_ms = 9.0
    for k in keys[:400]:
        rig.idx.search("needle", mode="lex", key=k)
    assert rig.guard.breaker_states()["stage_a"] == "open"
    with pytest.raises(CanaryError, match="unhealthy") as err:
        rig.canary.progress()
    assert any("stage_a" in r for r in err.value.reasons)
    assert rig.canary.share == 25

    # Healthy again (recovered breaker, fresh evidence): on to 100 %, where it stays.
    rig.native.native_ms = 1.0
    rig.clock.advance(10.0)
    for k in keys:
        rig.idx.search("needle", mode="lex", key=k)
    assert rig.guard.breaker_states()["stage_a"] == "closed"
    assert rig.canary.progress()["canary_deployment"]["trafficPercentage"] == 100
    assert rig.canary.progress()["canary_deployment"]["trafficPercentage"] == 100
    events = [h["event"] for h in rig.canary.status()["canary_deployment"]["history"]]
    assert events == ["set_share", "start", "progress", "progress"]


# -- kill switch --------------------------------------------------------------------------------
def test_kill_switch_turns_everything_off_at_once(index_dir: Path, tmp_path: Path) -> None:
    rig = make_rig(index_dir, tmp_path)
    hook = StageDouble(rig.clock)
    rig.idx.stages["stage_b"] = hook
    alerts: list[Alert] = []
    rig.guard.subscribe(alerts.append)
    assert rig.idx.search("needle").path == "native" and hook.calls == 1
    native_before = rig.idx._native.counters()["native_searches"]
    with capture_logs() as logs:
        status = rig.canary.kill_switch("Performance regression - Stage-A p95 exceeds 10ms")
    doc = status["canary_deployment"]
    assert doc["trafficPercentage"] == 0 and doc["killSwitch"]["active"] is True
    assert doc["killSwitch"]["reason"] == "Performance regression - Stage-A p95 exceeds 10ms"
    assert doc["nextStage"] is None
    assert [a.name for a in alerts] == ["kill_switch_activated"]
    assert any(e["event"] == "kill_switch_activated" for e in logs)
    for name in ("stage_a.native", "stage_b.enabled", "stage_c.enabled"):
        assert rig.root_flags[name] is False
        assert rig.root_flags.history()[-1].source == "kill_switch"
    # Every query, keyed or not, now takes the baseline: reference scanner, no Stage-B.
    for k in ("a", "b", "c", None):
        r = rig.idx.search("needle", key=k)
        assert r.path == "baseline" and r.info["route"] == "baseline"
    assert hook.calls == 1
    assert rig.idx._native.counters()["native_searches"] == native_before
    with pytest.raises(CanaryError, match="kill switch"):
        rig.canary.progress()
    with pytest.raises(CanaryError):
        rig.canary.kill_switch("  ")

    # start() lifts it and gives the flags back.
    rig.canary.start("fixed in 1.1.1")
    assert rig.canary.share == 5 and not rig.canary.killed
    assert all(rig.root_flags[n] is True for n in ("stage_a.native", "stage_b.enabled", "stage_c.enabled"))


# -- state file ---------------------------------------------------------------------------------
def test_state_survives_restart(tmp_path: Path) -> None:
    c = _canary(tmp_path)
    c.start("go")
    c.set_share(25, "manual")
    again = Canary(Guard(), Flags(), c.state_path)
    assert again.share == 25 and not again.killed
    c.kill_switch("bad release")
    flags = Flags()
    with capture_logs():
        restarted = Canary(Guard(), flags, c.state_path)
    assert restarted.share == 0 and restarted.killed
    assert restarted.status()["canary_deployment"]["killSwitch"]["reason"] == "bad release"
    # A process that starts under the kill switch turns the stages off again.
    assert flags["stage_a.native"] is False and flags.history()[-1].source == "canary_state"
    restarted.start("fixed")
    assert flags["stage_a.native"] is True  # the values from before the kill, persisted with it
    # Atomic writes leave no temp files behind, and the file is plain JSON.
    assert c.state_path is not None
    assert sorted(p.name for p in c.state_path.parent.iterdir()) == ["canary.json"]
    assert json.loads(c.state_path.read_text())["share"] == 5


def test_corrupt_state_fails_safe_to_baseline(tmp_path: Path) -> None:
    path = tmp_path / "canary.json"
    path.write_text('{"share": 42}')
    with capture_logs() as logs:
        c = Canary(Guard(), Flags(), path)
    assert c.share == 0 and c.route("anyone") == "baseline"
    assert [e["event"] for e in logs] == ["canary_state_unusable", "alert"]  # logged, and alerted
    c.start("operator checked")
    assert c.share == 5


def test_unwritable_state_path_still_kills(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the state directory should be")
    c = Canary(Guard(), Flags(), blocker / "canary.json")
    with capture_logs() as logs:
        status = c.kill_switch("state dir unusable")
    assert c.share == 0 and c.route("x") == "baseline"
    assert status["canary_deployment"]["stateSaved"] is False
    assert "canary_state_not_saved" in [e["event"] for e in logs]


def test_default_state_path(tmp_path: Path) -> None:
    assert default_state_path({"LENS_STATE_DIR": str(tmp_path)}) == tmp_path / "canary.json"
    # No user-wide default: without a named state directory the state is the index directory's.
    assert default_state_path({"XDG_STATE_HOME": str(tmp_path)}) is None
    assert default_state_path({}) is None


def test_share_validation(tmp_path: Path) -> None:
    c = _canary(tmp_path)
    with pytest.raises(CanaryError):
        c.set_share(50, "not a stage")
    assert SHARES == (0, 5, 25, 100)


def test_global_canary_is_exported() -> None:
    assert isinstance(lens.canary, Canary)
    assert lens.canary.guard is lens.guard and lens.canary.flags is lens.flags
    assert set(lens.canary.status()["canary_deployment"]) >= {"trafficPercentage", "nextStage", "killSwitch"}


def test_kill_switch_during_progress_wins(tmp_path: Path) -> None:
    c = _canary(tmp_path)
    c.start("go")

    def health_then_kill() -> dict[str, object]:
        # Another thread pulls the kill switch while progress() is checking the guard.
        c.kill_switch("concurrent kill")
        return {"status": "healthy", "reasons": [], "unmeasured": []}

    c.guard.health = health_then_kill  # type: ignore[method-assign]
    c.guard.evidence = lambda route="new": 10**6  # type: ignore[method-assign]
    with capture_logs(), pytest.raises(CanaryError, match="changed"):
        c.progress()
    assert c.share == 0 and c.killed
    assert c.state_path is not None and json.loads(c.state_path.read_text())["killed"] is True


def test_a_query_during_the_first_read_of_the_state_waits_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lazily loaded canary (a restarted server's) gets its first queries on several threads at once:
    the ones that arrive while the state file is being read must route by that state (here a kill
    switch), not by the defaults."""
    import importlib
    import threading
    import time

    canary_mod = importlib.import_module("lens.canary")  # the module (`lens.canary` is also an attribute)

    path = tmp_path / "state" / "canary.json"
    _canary(tmp_path).kill_switch("a bad release")
    assert json.loads(path.read_text())["killed"]
    real_parse = canary_mod.parse_state
    reading = threading.Event()

    def slow_parse(raw: bytes) -> tuple[dict[str, object] | None, str]:
        reading.set()
        time.sleep(0.3)
        return real_parse(raw)

    monkeypatch.setattr(canary_mod, "parse_state", slow_parse)
    lazy = Canary(Guard(), Flags(), path, lazy=True)
    first: list[str] = []
    t = threading.Thread(target=lambda: first.append(lazy.route("q")))
    t.start()
    assert reading.wait(5)
    assert lazy.route("q") == "baseline"  # arrived mid-read: waits, then routes by the kill switch
    t.join(5)
    assert first == ["baseline"]
