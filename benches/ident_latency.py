"""Identifier lookups end to end: `search(name, k=10, mode="auto")` over a list of names, wall and
thread-CPU milliseconds (p50/p95/p99), a warm pass first, then `--passes` timed passes.

    python benches/ident_latency.py /tmp/i10s-kq /tmp/i10s/kq-gold.json [--passes 2]

The names file is `benches/stage_b.py kernel --gold`'s JSON (300 kernel functions defined once). Run it
alternately with two builds of lens (one on PYTHONPATH) to compare them on the same machine state.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import lens
from lens.guard import percentile


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("index", type=Path)
    ap.add_argument("names", type=Path)
    ap.add_argument("--passes", type=int, default=2)
    a = ap.parse_args()
    # Time the native paths, not the guard's fallback under a loaded machine.
    lens.guard.slos.stage_a.p95_ms = float("inf")
    idx = lens.Index.open(a.index)
    names = [g["name"] for g in json.loads(a.names.read_text())]
    for n in names:
        idx.search(n, k=10, mode="auto")
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(a.passes):
        for n in names:
            w, c = time.perf_counter(), time.thread_time()
            idx.search(n, k=10, mode="auto")
            cpu.append((time.thread_time() - c) * 1e3)
            wall.append((time.perf_counter() - w) * 1e3)

    def summary(xs: list[float]) -> dict[str, float]:
        ordered = sorted(xs)
        return {f"p{p}": round(percentile(ordered, p), 3) for p in (50, 95, 99)}  # type: ignore[arg-type]

    out = {"index": str(a.index), "lens": lens.__file__, "wall_ms": summary(wall), "cpu_ms": summary(cpu)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
