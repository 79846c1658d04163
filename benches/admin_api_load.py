"""A bounded load test of the admin API: POST /search over loopback from a few threads.

    python benches/admin_api_load.py [--requests 2000] [--threads 4] [--seconds 30]

Builds an index of a slice of the standard library, serves it with uvicorn on 127.0.0.1 (a free port),
and sends at most `--requests` searches or runs for at most `--seconds`, whichever ends first. Prints
requests/second and the client-side p50/p95/p99 (ms, nearest rank), then the same searches run
in-process without HTTP for comparison. `tests/test_ops_server.py` runs the
same function with small caps.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

QUERIES = [
    ("parse_header", "auto"),
    ("read a file into a string", "auto"),
    ("OrderedDict", "lex"),
    ("def __init__", "lex"),
    ("timeout", "auto"),
    ("quote a string for the shell", "auto"),
]


def run_load(url: str, requests: int, threads: int, seconds: float) -> dict[str, Any]:
    import httpx

    from lens.ops.gates import percentile

    counter = itertools.count()
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=30) as c:
            while time.perf_counter() < deadline:
                i = next(counter)
                if i >= requests:
                    return
                q, mode = QUERIES[i % len(QUERIES)]
                t = time.perf_counter()
                r = c.post("/search", json={"query": q, "k": 10, "mode": mode})
                ms = (time.perf_counter() - t) * 1000
                with lock:
                    if r.status_code == 200:
                        lat.append(ms)
                    else:
                        errors.append(f"{r.status_code}: {r.text[:100]}")

    started = time.perf_counter()
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    secs = time.perf_counter() - started
    n = len(lat) + len(errors)
    return {
        "requests": n,
        "ok": len(lat),
        "errors": len(errors),
        "error_examples": errors[:3],
        "threads": threads,
        "seconds": round(secs, 3),
        "rps": round(n / secs, 1) if secs else None,
        "p50_ms": percentile(lat, 50),
        "p95_ms": percentile(lat, 95),
        "p99_ms": percentile(lat, 99),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=30.0)
    a = ap.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import lens
    from lens.canary import Canary
    from lens.guard import Guard
    from lens.ops.golden import stdlib_golden_set
    from lens.ops.server import create_app
    from lens.ops.state import OpsStore
    from tests.ops_helpers import running_server

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        g = stdlib_golden_set(d / "golden")
        idx = lens.Index.build(g.roots["orig"], d / "idx", semantic=False)
        idx.guard = Guard()
        idx.canary = Canary(idx.guard, idx.flags, d / "canary.json")
        app = create_app(index=idx, store=OpsStore(d / "state"))
        with running_server(app) as url:
            out = run_load(url, a.requests, a.threads, a.seconds)
        # The peer in the same run: the same searches in-process, one thread, no HTTP.
        from lens.ops.gates import percentile

        lat = []
        for i in range(min(a.requests, 1000)):
            q, mode = QUERIES[i % len(QUERIES)]
            t = time.perf_counter()
            idx.search(q, k=10, mode=mode)
            lat.append((time.perf_counter() - t) * 1000)
        out["in_process"] = {
            "requests": len(lat),
            "p50_ms": percentile(lat, 50),
            "p95_ms": percentile(lat, 95),
        }
        out["corpus"] = {"files": idx.stats()["files"], "bytes": idx.stats()["bytes"]}
    print(json.dumps(out, indent=2))
    return 0 if out["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
