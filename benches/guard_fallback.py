"""The guard under load it cannot meet: does a breaker trip cost less than what it replaces?

Plain-English questions (kernel-doc summaries, from `benches/kernel_questions.py`) over a kernel subtree
whose kernel-doc is blanked, in mode "auto" (Stage-A, then Stage-B; the questions are not identifiers, so
Stage-B passes them through):

1. native only: the guard's Stage-A SLO is out of reach (p95 target = infinity), nothing trips; every
   query's wall time is recorded, and the slowest is the yardstick;
2. guard on, a Stage-A SLO nothing meets (p95 target 1 us): the breaker trips on latency, and each
   reopening moves one step down the ladder (shed Stage-C, shed Stage-B, tighten Stage-A's budget to
   the p95 target). The claim checked: no query takes more than twice the slowest query of run 1;
3. for scale, what the old fallback did: the reference scanner with no deadline, on a few queries, and
   the reference scanner under the SLO's p99 deadline (what serves native *errors* now).

The dashboard's view of run 2 (the trip, its kind, the shed level, what was shed) is printed and kept in
the JSON.

    python benches/guard_fallback.py --tree /tmp/kq8/tree --queries /tmp/kq8/queries.jsonl \\
        [--index-dir /tmp/lens-kq8-idx] [--rounds 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import lens
from lens.canary import Canary
from lens.flags import Flags
from lens.guard import Guard, GuardConfig, percentile


def _rig(idx: lens.Index, state: Path, config: GuardConfig) -> Guard:
    root = Flags()
    idx.flags = Flags(parent=root)
    guard = Guard(config=config)
    idx.guard = guard
    idx.canary = Canary(guard, root, state / "canary.json")
    return guard


def _run(idx: lens.Index, queries: list[str], rounds: int) -> tuple[list[float], list[lens.SearchResult]]:
    times: list[float] = []
    results: list[lens.SearchResult] = []
    for _ in range(rounds):
        for q in queries:
            t0 = time.perf_counter()
            r = idx.search(q, k=10, mode="auto")
            times.append((time.perf_counter() - t0) * 1000)
            results.append(r)
    return times, results


def _summary(times: list[float]) -> dict[str, Any]:
    s = sorted(times)
    return {
        "n": len(s),
        "p50_ms": percentile(s, 50),
        "p95_ms": percentile(s, 95),
        "p99_ms": percentile(s, 99),
        "max_ms": s[-1] if s else None,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", required=True, type=Path)
    ap.add_argument("--queries", required=True, type=Path)
    ap.add_argument("--index-dir", type=Path, default=Path("/tmp/lens-guard-fallback-idx"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--reference-queries", type=int, default=3)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()

    queries = [json.loads(line)["query"] for line in a.queries.read_text().splitlines() if line.strip()]
    if (a.index_dir / "MANIFEST").exists() or any(a.index_dir.glob("MANIFEST*")):
        idx = lens.Index.open(a.index_dir)
    else:
        idx = lens.Index.build(a.tree, a.index_dir, semantic=False)
    stats = idx.stats()
    print(f"{stats['files']} files, {stats['bytes'] / 1e6:.1f} MB, {len(queries)} questions x {a.rounds}")
    state = a.index_dir.parent / (a.index_dir.name + "-state")
    state.mkdir(exist_ok=True)
    for q in queries:  # warm the page cache and the native path
        idx.search(q, k=10, mode="auto")

    # 1. native only: nothing can trip.
    g1 = _rig(idx, state, GuardConfig())
    g1.slos.stage_a.p95_ms = math.inf
    native_times, native_results = _run(idx, queries, a.rounds)
    assert all(r.path == "native" and "shed" not in r.info for r in native_results)
    assert g1.status()["stage_a"]["trips"] == 0
    slowest = max(native_times)

    # 2. guard on, an SLO nothing meets; a short cooldown so the run walks the whole ladder.
    g2 = _rig(idx, state, GuardConfig(min_samples=20, eval_every=10, cooldown_s=0.1, probes=3))
    g2.slos.stage_a.p95_ms = 0.001
    guarded_times, guarded_results = _run(idx, queries, a.rounds)
    board = idx.dashboard()["dashboard_state"]
    a_board = board["metrics"]["performance"]["stageA"]
    paths = {p: sum(r.path == p for r in guarded_results) for p in ("native", "baseline")}
    shed_counts: dict[str, int] = {}
    for r in guarded_results:
        for what in r.info.get("shed", []):
            shed_counts[what] = shed_counts.get(what, 0) + 1
    truncated = sum(r.truncated for r in guarded_results)
    worst = max(guarded_times)

    # 3. for scale: the reference scanner, with no deadline (the old fallback) and under the SLO deadline.
    slo = lens.guard.slos.stage_a
    deadline = slo.p99_limit_ms() or slo.p95_ms
    ref_free: list[float] = []
    ref_deadline: list[float] = []
    ref_truncated = 0
    snap = idx._native.snapshot()
    for q in queries[: a.reference_queries]:
        t0 = time.perf_counter()
        snap.search(q, 10, None, False)
        ref_free.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        _rows, cut, _info = snap.search(q, 10, deadline, False)
        ref_deadline.append((time.perf_counter() - t0) * 1000)
        ref_truncated += bool(cut)

    out = {
        "corpus": {"files": stats["files"], "bytes": stats["bytes"], "questions": len(queries)},
        "native_only": _summary(native_times),
        "guarded": _summary(guarded_times),
        "guarded_paths": paths,
        "guarded_shed": shed_counts,
        "guarded_truncated": truncated,
        "worst_over_slowest_native": worst / slowest,
        "dashboard": {
            "stageA": {
                key: a_board[key]
                for key in (
                    "breaker",
                    "trips",
                    "trip_kind",
                    "shed_level",
                    "tightened_budget",
                    "reference_served",
                    "p95_latency_ms",
                )
            },
            "stageB_skipped_shed": board["metrics"]["performance"]["stageB"]["skipped_shed"],
            "health": {k: board["health"][k] for k in ("status", "shedding", "breakers")},
            "stage_tripped_alerts": sum(al["name"] == "stage_tripped" for al in board["recent_alerts"]),
        },
        "reference_no_deadline_ms": ref_free,
        "reference_with_deadline_ms": ref_deadline,
        "reference_deadline_ms": deadline,
        "reference_truncated": ref_truncated,
    }
    print(json.dumps(out, indent=1))
    ok = worst <= 2 * slowest
    print(
        f"slowest native-only query {slowest:.2f} ms; slowest guarded query {worst:.2f} ms "
        f"({worst / slowest:.2f}x): {'OK' if ok else 'OVER'} the 2x line"
    )
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
