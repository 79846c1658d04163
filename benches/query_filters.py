"""What the query language and the path / language filters cost (issue 12), in one process, interleaved.

    python benches/query_filters.py --corpus DIR --index-dir IDX [--runs 30]

Builds IDX from DIR if it is not an index yet, then times each case once per run, in turn (so a busy
machine weighs on all alike), and reports min / median wall ms and the median CPU ms (this process's
user + system) of `Index.search` (k=10, mode "auto") and `Index.grep`, with and without filters, and
the top hit of each search. The filters are built per call, as a host would pass them.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from pathlib import Path

import lens

SEARCHES: list[tuple[str, str, dict[str, object]]] = [
    ("plain", "urlsplit", {}),
    ("lang:python", "lang:python urlsplit", {}),
    ("sym:", "sym:urlsplit", {}),
    ("paths=!test_*", "urlsplit", {"paths": ["!test_*"]}),
    ("paths=email/**", "urlsplit", {"paths": ["email/**"]}),
    ("file:urllib/", "urlsplit file:urllib/", {}),
    ("-term", "urlsplit -http", {}),
    ("or", "urlsplit or urlparse", {}),
    ("question", "parse an http date header", {}),
    ("question lang:python", "lang:python parse an http date header", {}),
]
GREPS: list[tuple[str, str, dict[str, object]]] = [
    ("grep plain", r"def \w+_timeout\(", {}),
    ("grep paths=*.py", r"def \w+_timeout\(", {"paths": "*.py"}),
    ("grep paths=!test_*", r"def \w+_timeout\(", {"paths": ["!test_*"]}),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--index-dir", required=True)
    ap.add_argument("--runs", type=int, default=30)
    a = ap.parse_args()
    idx_dir = Path(a.index_dir)
    try:
        idx = lens.Index.open(idx_dir)
    except (OSError, lens.LensError):
        idx = lens.Index.build(a.corpus, idx_dir)
    wall: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    top: dict[str, str] = {}
    for run in range(a.runs + 1):  # the first pass warms the caches and is not counted
        for name, q, kw in SEARCHES:
            c, t = time.process_time(), time.perf_counter()
            res = idx.search(q, k=10, **kw)  # type: ignore[arg-type]
            w, u = (time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000
            if run:
                wall[name].append(w)
                cpu[name].append(u)
            h = res.hits[0] if res.hits else None
            top[name] = f"{h.path}:{h.line} {h.text.strip()[:40]!r}" if h else "(none)"
        for name, pattern, kw in GREPS:
            c, t = time.process_time(), time.perf_counter()
            hits = idx.grep(pattern, **kw)  # type: ignore[arg-type]
            w, u = (time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000
            if run:
                wall[name].append(w)
                cpu[name].append(u)
            top[name] = f"{len(hits)} lines"
    print("| case | wall min / median ms | CPU median ms | top hit (or lines) |\n|---|---|---|---|")
    for name in [*(s[0] for s in SEARCHES), *(g[0] for g in GREPS)]:
        ws = wall[name]
        print(
            f"| {name} | {min(ws):.2f} / {statistics.median(ws):.2f} | {statistics.median(cpu[name]):.2f} "
            f"| {top[name]} |"
        )


if __name__ == "__main__":
    main()
