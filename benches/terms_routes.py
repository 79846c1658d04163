"""Question latency per route, and what the Python pipeline adds: for each question, the CPU time of
`idx.search(q, k=50, mode="lex")` and of the native call alone (`NativeIndex.search` on a snapshot),
grouped by the route the query took ("terms" or "union"). CPU time of the searching thread, so that a
before/after pair on a shared machine compares work rather than waits.

    python benches/terms_routes.py /tmp/i10-kq /work/kq-full/queries.jsonl [REPEAT]
"""

from __future__ import annotations

import json
import os
import sys
import time

import lens
from lens.guard import percentile
from lens.pipeline import parse


def main() -> int:
    lens.guard.slos.stage_a.p95_ms = float("inf")
    idx = lens.Index.open(sys.argv[1])
    with open(sys.argv[2]) as f:
        qs = list(dict.fromkeys(json.loads(line)["query"] for line in f if line.strip()))
    repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    for q in qs:  # warm
        idx.search(q, k=50, mode="lex")
    full: dict[str, list[float]] = {}
    native: dict[str, list[float]] = {}
    snap = idx._native.snapshot()
    for _ in range(repeat):
        for q in qs:
            c = time.thread_time()
            res = idx.search(q, k=50, mode="lex")
            c1 = time.thread_time()
            route = str(res.info.get("query_route"))
            full.setdefault(route, []).append((c1 - c) * 1000)
            parsed = parse(q, None, None)
            c = time.thread_time()
            snap.search(parsed, 50, None, True)
            native.setdefault(route, []).append((time.thread_time() - c) * 1000)
    print("load average", os.getloadavg())
    for name, by in (("search()", full), ("native call", native)):
        every = sorted(v for vs in by.values() for v in vs)
        for route, vs in [("all", every), *sorted(by.items())]:
            vs = sorted(vs)
            ps = " / ".join(f"{percentile(vs, p):.2f}" for p in (50, 95, 99))
            print(f"{name:12} {route:6} n={len(vs):4} CPU ms p50/p95/p99 {ps}  mean {sum(vs) / len(vs):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
