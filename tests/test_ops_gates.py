"""Quality gates: the golden sets (the dev set's format, lens's own stdlib set) and the gate report."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

import lens
from lens.ops import THRESHOLDS, GoldenSetError, format_table, load_golden_set, run_quality_gates
from lens.ops.gates import percentile
from lens.ops.golden import GoldenSet, build_stdlib_corpus
from tests.conftest import SHARED
from tests.ops_helpers import REPEATS, small_golden

GATES = {
    "span_coverage",
    "recall_at_50",
    "ndcg_at_10",
    "consistency_violations",
    "stage_a_p95_ms",
    "tail_latency",
    "e2e_p95_regression",
}


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> GoldenSet:
    return small_golden(tmp_path_factory.mktemp("golden"))


@pytest.fixture(scope="module")
def report(golden: GoldenSet) -> dict:
    return run_quality_gates(golden, latency_repeats=REPEATS)


def test_stdlib_set_is_built_like_the_dev_set(golden: GoldenSet) -> None:
    kinds = {q.kind for q in golden.queries}
    assert kinds == {"ident", "nl"}
    for q in golden.queries:
        (path, start, end) = q.gold[0]
        root = golden.roots[q.corpus]
        lines = (root / path).read_text().splitlines()
        if q.kind == "ident":
            # The gold line defines the name; the name is mentioned elsewhere too.
            assert q.corpus == "orig" and start == end
            assert f"def {q.query}" in lines[start - 1] or f"class {q.query}" in lines[start - 1]
        else:
            # The sentence is gone from the blanked twin, and line numbers did not move.
            assert q.corpus == "nodoc" and start <= end
            nodoc = (root / path).read_text()
            orig = (golden.roots["orig"] / path).read_text()
            assert nodoc.count("\n") == orig.count("\n")
            assert q.query not in " ".join(nodoc.split())


def test_stdlib_set_is_deterministic_and_hashed(tmp_path: Path, golden: GoldenSet) -> None:
    again = small_golden(tmp_path / "again")
    assert again.sha256 == golden.sha256
    assert [q.as_dict() for q in again.queries] == [q.as_dict() for q in golden.queries]
    other = build_stdlib_corpus(tmp_path / "other", files=15, per_kind=5, seed=1)
    assert other.sha256 != golden.sha256


def test_jsonl_round_trip_and_errors(tmp_path: Path, golden: GoldenSet) -> None:
    p = tmp_path / "set.jsonl"
    golden.write_jsonl(p)
    back = load_golden_set(p, orig=golden.roots["orig"], nodoc=golden.roots["nodoc"])
    assert back.sha256 == golden.sha256
    with pytest.raises(GoldenSetError, match="corpus nodoc"):
        load_golden_set(p, orig=golden.roots["orig"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "kind": "ident", "query": "x", "corpus": "orig"}\n')
    with pytest.raises(GoldenSetError, match="missing field 'gold'"):
        load_golden_set(bad, orig=tmp_path)
    bad.write_text("{not json\n")
    with pytest.raises(GoldenSetError, match="not JSON"):
        load_golden_set(bad, orig=tmp_path)
    assert issubclass(GoldenSetError, lens.LensError) and issubclass(GoldenSetError, ValueError)


@pytest.mark.corpus
def test_the_dev_set_loads_in_this_format() -> None:
    queries = SHARED / "eval" / "dev" / "queries.jsonl"
    if not queries.is_file():
        pytest.skip("../shared/eval/dev is absent")
    gs = load_golden_set(queries, orig=SHARED, nodoc=SHARED)
    assert len(gs.queries) == 600 and {q.kind for q in gs.queries} == {"ident", "nl"}


def test_report_has_the_runbook_shape(report: dict) -> None:
    r = report["quality_gates_report"]
    assert {g["gate"] for g in r["gates"]} == GATES
    for g in r["gates"]:
        assert set(g) >= {"gate", "value", "threshold", "passed"}
        assert g["passed"] in (True, False, None)
        assert g["samples"] > 0
    assert isinstance(r["blocking_issues"], list) and isinstance(r["recommendations"], list)
    assert r["status"] in ("passed", "failed", "insufficient data")
    assert r["passed"] == (r["status"] == "passed") == all(g["passed"] is True for g in r["gates"])
    json.dumps(report)  # JSON all the way down
    table = format_table(report)
    assert all(name in table for name in GATES)


def test_measurements_are_real(report: dict, golden: GoldenSet) -> None:
    r = report["quality_gates_report"]
    m = r["metrics"]
    # Every hit lens returns has an exact span; native and reference agree.
    assert m["candidate"]["span_coverage"] == 1.0 and m["baseline"]["span_coverage"] == 1.0
    assert m["consistency"]["violations"] == 0
    assert m["consistency"]["checked"] >= 2 * m["consistency"]["literal_queries"] > 0
    # The baseline path ran the reference scanner: lexical relevance identical to native "lex" mode.
    assert m["baseline"]["path"] == "reference" and m["candidate"]["path"] == "native"
    n = len(golden.queries)
    assert m["candidate"]["latency_ms"]["stage_a"]["samples"] == n * REPEATS
    assert m["baseline"]["latency_ms"]["total"]["samples"] == n
    # Identifier queries find their definition (Stage-B): candidate nDCG beats the lexical baseline.
    assert m["candidate"]["relevance"]["ident"]["ndcg@10"] > m["baseline"]["relevance"]["ident"]["ndcg@10"]
    values = {g["gate"]: g for g in r["gates"]}
    assert values["recall_at_50"]["threshold"] == m["baseline"]["relevance"]["all"]["recall@50"]


def test_insufficient_data_is_never_a_pass(golden: GoldenSet) -> None:
    tiny = GoldenSet("tiny", golden.queries[:3] + golden.queries[-3:], golden.roots)
    r = run_quality_gates(tiny, latency_repeats=1, generated=2)["quality_gates_report"]
    by = {g["gate"]: g for g in r["gates"]}
    for name in ("recall_at_50", "ndcg_at_10", "stage_a_p95_ms", "tail_latency", "e2e_p95_regression"):
        assert by[name]["passed"] is None and by[name]["status"] == "insufficient data"
    assert r["status"] != "passed" and not r["passed"]
    assert any("insufficient data" in b for b in r["blocking_issues"])


def test_a_broken_threshold_fails_with_a_recommendation(golden: GoldenSet) -> None:
    strict = replace(THRESHOLDS, stage_a_p95_ms=0.0, span_coverage=1.01)
    r = run_quality_gates(golden, latency_repeats=REPEATS, generated=5, thresholds=strict)
    r = r["quality_gates_report"]
    by = {g["gate"]: g for g in r["gates"]}
    assert by["stage_a_p95_ms"]["passed"] is False and by["span_coverage"]["passed"] is False
    assert r["status"] == "failed"
    assert any(b.startswith("stage_a_p95_ms") for b in r["blocking_issues"])
    assert any("Stage-A p95" in rec for rec in r["recommendations"])


def test_gates_do_not_touch_the_process_canary(golden: GoldenSet) -> None:
    before = lens.guard.totals()
    run_quality_gates(GoldenSet("t", golden.queries[:2], golden.roots), latency_repeats=1, generated=1)
    assert lens.guard.totals() == before


def test_percentile_is_nearest_rank() -> None:
    xs = [float(i) for i in range(1, 101)]
    assert percentile(xs, 95) == 95.0 and percentile(xs, 99) == 99.0 and percentile([], 50) is None
