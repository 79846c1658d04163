"""The ops record (SQLite), sign-off, release bundles, the compat drill and promotion."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

import lens
from lens.ops import (
    THRESHOLDS,
    NotPromotable,
    OpsStore,
    ReleaseError,
    StateError,
    check_compat,
    compat_bundles,
    compat_drill,
    cut_rc,
    promote,
    run_nightly,
    run_quality_gates,
    sbom,
    signoff,
)
from lens.ops.golden import GoldenSet
from lens.ops.release import FIXTURES_DIR, api_surface, stage_c_model_id
from lens.ops.state import DB_NAME, SCHEMA_VERSION
from tests.ops_helpers import REPEATS, small_golden

# Thresholds no scheduler hiccup on a shared CI machine can break: these tests are about the release
# flow, the gates' own tests are about the thresholds.
LENIENT = replace(THRESHOLDS, stage_a_p95_ms=1e6, tail_floor_ms=1e6, e2e_max_regression=1e6)


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> GoldenSet:
    return small_golden(tmp_path_factory.mktemp("golden"))


@pytest.fixture(scope="module")
def passing_report(golden: GoldenSet) -> dict:
    r = run_quality_gates(golden, latency_repeats=REPEATS, thresholds=LENIENT)
    assert r["quality_gates_report"]["status"] == "passed", r["quality_gates_report"]["blocking_issues"]
    return r


def _failed(report: dict) -> dict:
    r = json.loads(json.dumps(report))
    r["quality_gates_report"]["status"] = "failed"
    return r


def _night(store: OpsStore, key: str, passed: bool) -> None:
    store.record_night(key, True, 0.0, 1.0, passed, "test", {}, [] if passed else ["x"])


def test_store_schema_wal_and_versioning(tmp_path: Path) -> None:
    store = OpsStore(tmp_path)
    assert (tmp_path / DB_NAME).is_file() and store.schema_version() == SCHEMA_VERSION
    assert store.journal_mode() == "wal"
    with sqlite3.connect(tmp_path / DB_NAME) as c:
        c.execute("INSERT INTO schema_version VALUES (?, 0)", (SCHEMA_VERSION + 1,))
    with pytest.raises(StateError, match="upgrade lens"):
        OpsStore(tmp_path)


def test_state_dir_defaults_to_the_canarys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LENS_STATE_DIR", str(tmp_path / "st"))
    assert OpsStore().path == tmp_path / "st" / DB_NAME


WRITER = textwrap.dedent(
    """
    import sys
    from lens.ops.state import OpsStore
    store = OpsStore(sys.argv[1])
    for i in range(int(sys.argv[3])):
        store.record_night(f"{sys.argv[2]}-{i}", True, 0.0, 1.0, i % 2 == 0, "t", {"i": i}, [])
        store.record_gate_run({"quality_gates_report": {"started_at": 0, "finished_at": 1, "status": "passed",
                               "golden_set": {"name": "g", "sha256": "h"}}}, source=sys.argv[2])
    """
)


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    OpsStore(tmp_path)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), f"p{n}", "60"]) for n in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    store = OpsStore(tmp_path)
    assert store.integrity_check() == "ok"
    nights = store.nights()
    assert len(nights) == 240 and len({n["night"] for n in nights}) == 240
    assert store.gate_runs() == 240


def test_signoff_counts_consecutive_nights_and_a_failure_resets(tmp_path: Path, passing_report: dict) -> None:
    store = OpsStore(tmp_path)
    _night(store, "before-the-cut", True)  # nights before the RC was cut do not count for it
    golden = GoldenSet("g", [], {})
    cut_rc(store, "1.0.0-rc.1", golden, passing_report)
    compat_drill(store, "1.0.0-rc.1")
    s = signoff(store, "1.0.0-rc.1")
    assert not s["promotable"] and s["consecutive_passing_nights"] == 0
    _night(store, "n1", True)
    _night(store, "n2", True)
    _night(store, "n3", False)
    _night(store, "n4", True)
    _night(store, "n5", True)
    s = signoff(store, "1.0.0-rc.1")
    assert s["consecutive_passing_nights"] == 2 and not s["promotable"]
    assert any("2 consecutive passing night(s)" in r for r in s["reasons"])
    with pytest.raises(NotPromotable) as e:
        promote(store, "1.0.0-rc.1")
    assert e.value.reasons and store.promotions() == []
    _night(store, "n5", False)  # a night re-run counts by its latest run
    assert signoff(store, "1.0.0-rc.1")["consecutive_passing_nights"] == 0
    for key in ("n6", "n7", "n8"):
        _night(store, key, True)
    s = signoff(store, "1.0.0-rc.1")
    assert s["promotable"] and s["reasons"] == []
    out = promote(store, "1.0.0-rc.1")
    assert out["promoted"] and [p["version"] for p in store.promotions()] == ["1.0.0-rc.1"]


def test_signoff_needs_the_drill_and_passing_gates(tmp_path: Path, passing_report: dict) -> None:
    store = OpsStore(tmp_path)
    assert "no release candidate" in signoff(store, "2.0.0-rc.1")["reasons"][0]
    cut_rc(store, "2.0.0-rc.1", GoldenSet("g", [], {}), passing_report)
    for key in ("a", "b", "c"):
        _night(store, key, True)
    s = signoff(store, "2.0.0-rc.1")
    assert not s["promotable"] and any("compat-drill" in r for r in s["reasons"])


def test_cut_rc_validates_and_refuses_failing_gates(tmp_path: Path, passing_report: dict) -> None:
    store = OpsStore(tmp_path)
    g = GoldenSet("g", [], {})
    for bad in ("1.0", "1.0.0", "v1.0.0-rc.1", "1.0.0-rc", "01.0.0-rc.1"):
        with pytest.raises(ReleaseError):
            cut_rc(store, bad, g, passing_report)
    with pytest.raises(NotPromotable):
        cut_rc(store, "1.0.0-rc.1", g, _failed(passing_report))
    bundle = cut_rc(store, "1.0.0-rc.1", g, passing_report)
    with pytest.raises(ReleaseError, match="already cut"):
        cut_rc(store, "1.0.0-rc.1", g, passing_report)
    assert bundle["lens_version"] == lens.__version__
    assert bundle["index_format_version"] == lens.INDEX_FORMAT_VERSION
    assert bundle["api_version"] == "v1"
    assert bundle["stage_c_model_id"] == stage_c_model_id()
    assert bundle["flags"] == dict(lens.flags.snapshot())
    assert bundle["golden_set"]["sha256"] == g.sha256
    on_disk = json.loads((tmp_path / "releases" / "1.0.0-rc.1" / "bundle.json").read_text())
    assert on_disk["version"] == "1.0.0-rc.1"
    assert json.loads((tmp_path / "releases" / "1.0.0-rc.1" / "sbom.cdx.json").read_text())["bomFormat"]


def test_sbom_is_cyclonedx() -> None:
    bom = sbom()
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.5" and bom["version"] == 1
    assert bom["serialNumber"].startswith("urn:uuid:")
    names = {c["name"].lower() for c in bom["components"]}
    assert {"numpy", "structlog"} <= names
    for c in bom["components"]:
        assert c["purl"].startswith("pkg:pypi/") and c["bom-ref"] == c["purl"] and c["type"] == "library"
    refs = {c["bom-ref"] for c in bom["components"]}
    (root,) = bom["dependencies"]
    assert root["ref"] == bom["metadata"]["component"]["bom-ref"]
    assert set(root["dependsOn"]) <= refs


def test_compat_drill_opens_the_fixture_of_every_format(tmp_path: Path, passing_report: dict) -> None:
    store = OpsStore(tmp_path)
    with pytest.raises(ReleaseError, match="cut-rc"):
        compat_drill(store, "1.0.0-rc.1")
    cut_rc(store, "1.0.0-rc.1", GoldenSet("g", [], {}), passing_report)
    r = compat_drill(store, "1.0.0-rc.1")
    assert r["passed"], r["problems"]
    assert (FIXTURES_DIR / f"index-v{lens.INDEX_FORMAT_VERSION}" / "fixture.json").is_file()
    (fmt,) = [f for f in r["formats"] if f["format_version"] == lens.INDEX_FORMAT_VERSION]
    assert fmt["opened"] and fmt["mismatches"] == [] and fmt["queries"] >= 5
    assert store.latest_drill("1.0.0-rc.1")["passed"]

    # No fixture for a format a bundle needs: the drill fails and says which.
    empty = tmp_path / "no-fixtures"
    empty.mkdir()
    r = compat_drill(store, "1.0.0-rc.1", fixtures_dir=empty)
    assert not r["passed"] and any("no fixture index" in p for p in r["problems"])

    # A damaged fixture does not open: a failure, not a crash.
    broken = tmp_path / "broken"
    shutil.copytree(FIXTURES_DIR, broken)
    manifest = broken / f"index-v{lens.INDEX_FORMAT_VERSION}" / "index" / "MANIFEST"
    manifest.write_bytes(b"garbage")
    r = compat_drill(store, "1.0.0-rc.1", fixtures_dir=broken)
    assert not r["passed"] and any("does not open" in p for p in r["problems"])


def test_compat_drill_catches_an_api_break(tmp_path: Path, passing_report: dict) -> None:
    store = OpsStore(tmp_path)
    cut_rc(store, "1.0.0-rc.1", GoldenSet("g", [], {}), passing_report)
    # Pretend the earlier bundle had a name and a parameter this lens no longer has.
    with sqlite3.connect(store.path) as c:
        (raw,) = c.execute("SELECT bundle FROM releases").fetchone()
        b = json.loads(raw)
        b["api_surface"]["lens"].append("gone_function")
        b["api_surface"]["Index"]["search"].append("old_param")
        c.execute("UPDATE releases SET bundle = ?", (json.dumps(b),))
    r = compat_drill(store, "1.0.0-rc.1")
    assert not r["passed"]
    assert "API break vs 1.0.0-rc.1: lens.gone_function removed" in r["problems"]
    assert "API break vs 1.0.0-rc.1: Index.search(old_param=) removed" in r["problems"]
    assert "search" in api_surface()["Index"]


def test_compat_check_and_bundles(tmp_path: Path, passing_report: dict) -> None:
    ok = check_compat("v1", f"v{lens.INDEX_FORMAT_VERSION}")
    assert ok["compatible"] and ok["index_version"]["requested"] == lens.INDEX_FORMAT_VERSION
    assert not check_compat("v2", "v1")["compatible"]
    assert not check_compat("v1", str(lens.INDEX_FORMAT_VERSION + 1))["index_version"]["compatible"]
    with pytest.raises(ReleaseError):
        check_compat("v1", "latest")
    store = OpsStore(tmp_path)
    assert compat_bundles(store, False) == {**compat_bundles(store, False), "bundles": [], "count": 0}
    cut_rc(store, "1.0.0-rc.1", GoldenSet("g", [], {}), passing_report)
    doc = compat_bundles(store, allow_compat=False)
    assert doc["count"] == 1 and doc["bundles"][0]["exact"] and doc["compatible"]


def test_full_flow_from_real_nights(tmp_path: Path, golden: GoldenSet, passing_report: dict) -> None:
    """The runbook's order, every night a real run: cut, drill, three nights, sign-off, promote."""
    store = OpsStore(tmp_path)
    cut_rc(store, "1.0.0-rc.1", golden, passing_report)
    assert compat_drill(store, "1.0.0-rc.1")["passed"]
    for n in (1, 2, 3):
        night = run_nightly(
            store,
            golden,
            duration_s=0.5,
            force_night=n,
            threads=2,
            load_qps=40,
            latency_repeats=REPEATS,
            thresholds=LENIENT,
        )
        assert night["passed"], night["failures"]
        assert night["night"] == f"forced-{n}" and night["metrics"]["load"]["queries"] > 0
        assert night["metrics"]["gate_runs"] >= 1
    s = signoff(store, "1.0.0-rc.1")
    assert s["promotable"], s["reasons"]
    assert promote(store, "1.0.0-rc.1")["promoted"]
    assert store.latest_gate_report() is not None


def test_a_failing_night_is_recorded_with_its_failures(tmp_path: Path, golden: GoldenSet) -> None:
    store = OpsStore(tmp_path)
    strict = replace(THRESHOLDS, stage_a_p95_ms=0.0)
    night = run_nightly(
        store,
        golden,
        duration_s=0.0,
        force_night=9,
        threads=1,
        load_qps=20,
        latency_repeats=REPEATS,
        thresholds=strict,
    )
    assert not night["passed"] and any("stage_a_p95_ms" in f for f in night["failures"])
    (rec,) = store.nights()
    assert rec["night"] == "forced-9" and not rec["passed"] and rec["failures"] == night["failures"]
