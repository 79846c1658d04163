"""Question latency on a big tree: `search(q, k=50, mode="lex")` single-threaded, warm, with the
definition index and, in the same run, without it (questions on Stage-A, as before issue 10).

    python benches/terms_speed.py --index-dir /tmp/lens-kq --query-file /work/kq-full/queries.jsonl

The index is one built beforehand (e.g. of /work/kq-full/tree by benches/kernel_questions.py's
tree); `--build ROOT` builds it first in a child process and reports its wall time, peak RSS and size.
The SLO guard's Stage-A p95 is raised so that only the native path is timed (as kernel_vs_rg.py does).
Each percentile is given in wall time and in CPU time of the searching thread (`cpu_*`): on a shared
machine the wall time includes the wait for a core.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import lens
from lens.guard import percentile


def build(root: Path, index_dir: Path) -> dict[str, float]:
    code = (
        "import lens, time; t = time.perf_counter(); "
        f"lens.Index.build({str(root)!r}, {str(index_dir)!r}, max_file_bytes=1 << 30, semantic=False); "
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"build_s": float(out.strip().splitlines()[-1]), "peak_rss_gib": rss_kib / 2**20}


def run(idx: lens.Index, queries: list[str], repeat: int) -> dict[str, object]:
    for q in queries:  # warm
        idx.search(q, k=50, mode="lex")
    lat: list[float] = []
    cpu: list[float] = []
    by_route: dict[str, list[float]] = {}
    cpu_by_route: dict[str, list[float]] = {}
    routes: Counter[str] = Counter()
    slowest = (0.0, "")
    for _ in range(repeat):
        for q in queries:
            t, c = time.perf_counter(), time.thread_time()
            res = idx.search(q, k=50, mode="lex")
            ms = (time.perf_counter() - t) * 1000
            cpu_ms = (time.thread_time() - c) * 1000
            cpu.append(cpu_ms)
            lat.append(ms)
            route = str(res.info.get("query_route"))
            routes[route] += 1
            by_route.setdefault(route, []).append(ms)
            cpu_by_route.setdefault(route, []).append(cpu_ms)
            slowest = max(slowest, (ms, q))
    lat.sort()
    cpu.sort()
    return {
        "samples": len(lat),
        "p50_ms": percentile(lat, 50),
        "p95_ms": percentile(lat, 95),
        "p99_ms": percentile(lat, 99),
        "max_ms": lat[-1],
        # CPU time of the searching thread (the native core runs on it): on a shared machine wall time
        # includes waiting for a core, CPU time does not.
        "cpu_p50_ms": percentile(cpu, 50),
        "cpu_p95_ms": percentile(cpu, 95),
        "cpu_p99_ms": percentile(cpu, 99),
        "slowest": slowest[1],
        "routes": dict(routes),
        "by_route": {
            r: {f"p{p}_ms": percentile(sorted(v), p) for p in (50, 95, 99)}
            for r, v in sorted(by_route.items())
        },
        "cpu_by_route": {
            r: {f"p{p}_ms": percentile(sorted(v), p) for p in (50, 95, 99)}
            for r, v in sorted(cpu_by_route.items())
        },
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index-dir", type=Path, required=True)
    ap.add_argument("--query-file", type=Path, required=True, help="JSON lines with a 'query' field")
    ap.add_argument("--build", type=Path, metavar="ROOT", help="build the index of ROOT first")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-before", action="store_true", help="skip the run without the definition index")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    lens.guard.slos.stage_a.p95_ms = float("inf")
    report: dict[str, object] = {"lens": lens.__version__, "load_avg_at_start": os.getloadavg()}
    if a.build:
        report["build"] = build(a.build, a.index_dir)
    idx = lens.Index.open(a.index_dir)
    st = idx.stats()
    report["index"] = {
        "files": st["files"],
        "corpus_bytes": st["bytes"],
        "index_bytes": st["index_bytes"],
        "size_ratio": st["index_bytes"] / st["bytes"],
        "term_bytes": sum(p.stat().st_size for p in a.index_dir.glob("*.terms")),
    }
    lines = a.query_file.read_text().splitlines()
    queries = list(dict.fromkeys(json.loads(x)["query"] for x in lines if x.strip()))
    report["queries"] = len(queries)
    report["with_definition_index"] = run(idx, queries, a.repeat)
    print(json.dumps(report, indent=2), flush=True)
    if not a.no_before:
        os.environ["LENS_TERMS_ABLATE"] = "terms"
        try:
            report["without_definition_index"] = run(idx, queries, a.repeat)
        finally:
            os.environ.pop("LENS_TERMS_ABLATE", None)
        print(json.dumps(report["without_definition_index"], indent=2))
    report["load_avg_at_end"] = os.getloadavg()
    if a.json:
        a.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
