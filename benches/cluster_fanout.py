"""Fan-out overhead of lens.cluster (issue 14): one Index against a sharded set of the same tree, at k=50,
on a local Ray. Prints (and with --json writes) build seconds, p50 / p95 latency and q/s for each.

    python benches/cluster_fanout.py --corpus /tmp/dev/cpython-lib \
        --queries ../shared/eval/dev/queries.jsonl --shards 4 --work /tmp/lens-fanout --json fanout.json

Queries run one at a time from one client (q/s = 1 / mean latency); the set's latency includes Ray's
submit and return for each shard call and the DFS round of lexical queries. Not a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import lens
import lens.cluster as lc


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def _run(search: Any, queries: list[str], repeat: int) -> dict[str, float]:
    for q in queries[:20]:  # warm caches and actors
        search(q)
    ms: list[float] = []
    for _ in range(repeat):
        for q in queries:
            t0 = time.perf_counter()
            search(q)
            ms.append((time.perf_counter() - t0) * 1000)
    return {
        "queries": len(ms),
        "p50_ms": round(_pct(ms, 0.50), 3),
        "p95_ms": round(_pct(ms, 0.95), 3),
        "qps": round(1000.0 / statistics.fmean(ms), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--queries", required=True, help="JSONL with a 'query' field (the dev set's format)")
    ap.add_argument("--corpus-tag", default=None, help="only queries whose 'corpus' field is this")
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--work", default="/tmp/lens-fanout")
    ap.add_argument("--one", default=None, help="an existing one-index build of the corpus (read-only)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    import ray

    ray.init(num_cpus=os.cpu_count() or 2, include_dashboard=False, log_to_driver=False)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"shards": a.shards, "load_avg_start": os.getloadavg()}
    if a.one:
        one = lens.Index.open(a.one)
    else:
        t0 = time.perf_counter()
        one = lens.Index.build(a.corpus, work / "one", semantic=False)
        out["one_build_s"] = round(time.perf_counter() - t0, 2)
    shutil.rmtree(work / "set", ignore_errors=True)
    t0 = time.perf_counter()
    rep = lc.build(a.corpus, work / "set", shards=a.shards, progress=False)
    out["set_build_s"] = round(time.perf_counter() - t0, 2)
    out["shard_build_s"] = rep["shard_seconds"]
    qs = [json.loads(line) for line in Path(a.queries).read_text().splitlines() if line.strip()]
    queries = [q["query"] for q in qs if a.corpus_tag is None or q.get("corpus") == a.corpus_tag]
    c = lc.open(work / "set")
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    out["one"] = _run(lambda q: one.search(q, k=50), queries, a.repeat)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    out["set"] = _run(lambda q: c.search(q, k=50, budget_ms=10_000), queries, a.repeat)
    out["one"]["driver_cpu_s"] = round(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime, 2)
    out["set"]["slowest_shards"] = c.dashboard()["slowest"]
    out["load_avg_end"] = os.getloadavg()
    c.close()
    print(json.dumps(out, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
