"""Search latency by kind of query, through the public API, on an index that already exists.

    python benches/query_kinds.py INDEX_DIR [--queries ../shared/eval/dev/queries.jsonl] [--mode lex]

Reads the queries (JSON lines with "query" and "kind", the dev set's format), runs each once to warm
up, then `passes` times, and prints p50 / p95 / p99 of the wall time of `idx.search(q, k=50, mode=...)`
per kind and for all queries together, as one JSON object. The SLO guard's Stage-A breaker is held
closed so that a slow first query does not switch the rest to the baseline path.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import defaultdict
from pathlib import Path

import lens
from lens.guard import percentile

REPO = Path(__file__).resolve().parent.parent
DEV_QUERIES = REPO.parent / "shared" / "eval" / "dev" / "queries.jsonl"


def percentiles(samples: list[float]) -> dict[str, float | None]:
    ordered = sorted(samples)
    return {"n": len(ordered), **{f"p{p}": percentile(ordered, p) for p in (50, 95, 99)}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("index_dir", type=Path)
    ap.add_argument("--queries", type=Path, default=DEV_QUERIES)
    ap.add_argument("--mode", default="lex")
    ap.add_argument("--passes", type=int, default=3)
    a = ap.parse_args()
    lens.guard.slos.stage_a.p95_ms = math.inf
    idx = lens.Index.open(a.index_dir)
    queries = [json.loads(line) for line in a.queries.read_text().splitlines() if line.strip()]
    for q in queries:
        idx.search(q["query"], k=50, mode=a.mode)
    by_kind: dict[str, list[float]] = defaultdict(list)
    for _ in range(a.passes):
        for q in queries:
            started = time.perf_counter()
            idx.search(q["query"], k=50, mode=a.mode)
            ms = (time.perf_counter() - started) * 1e3
            by_kind[q.get("kind", "all")].append(ms)
            by_kind["mixed"].append(ms)
    out = {
        kind: {k: v if v is None else round(v, 3) for k, v in percentiles(s).items()}
        for kind, s in by_kind.items()
    }
    print(json.dumps({"index": str(a.index_dir), "mode": a.mode, "latency_ms": out}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
