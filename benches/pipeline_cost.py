"""What the Python pipeline costs per question on top of the native call, measured inside the same
`search()`: the index's native handle is wrapped so that the native call's own thread CPU time is taken
in the search that makes it, and `search()`'s thread CPU minus that is the pipeline's (argument checks,
the parse, flags, canary, guard, the result; the native call includes the bindings' conversion).

    python benches/pipeline_cost.py --index-dir /tmp/s19-kq --query-file /work/kq-full/queries.jsonl

`search(q, k=50, mode="lex")`, single-threaded, warm, the guard's Stage-A SLO raised so only the native
path runs (as `terms_speed.py`). To compare two versions, run it under each (`PYTHONPATH=<other
python/>`) in turn, alternating. The wrapper itself adds two `time.thread_time()` calls (< 1 us).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import lens
from lens.guard import percentile

_clock = time.thread_time
_inner = [0.0]


class _TimedSnapshot:
    def __init__(self, real: Any) -> None:
        self._real = real

    @property
    def generation(self) -> int:
        return int(self._real.generation)

    def search(self, *args: Any) -> Any:
        c = _clock()
        out = self._real.search(*args)
        _inner[0] = _clock() - c
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _TimedNative:
    def __init__(self, real: Any) -> None:
        self._real = real

    def snapshot(self) -> _TimedSnapshot:
        return _TimedSnapshot(self._real.snapshot())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _summary(values: list[float]) -> dict[str, float | None]:
    values = sorted(values)
    return {
        "mean_ms": statistics.mean(values),
        "p50_ms": percentile(values, 50),
        "p95_ms": percentile(values, 95),
        "p99_ms": percentile(values, 99),
        "max_ms": values[-1],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index-dir", type=Path, required=True)
    ap.add_argument("--query-file", type=Path, required=True, help="JSON lines with a 'query' field")
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    lens.guard.slos.stage_a.p95_ms = float("inf")
    idx = lens.Index.open(a.index_dir)
    lines = a.query_file.read_text().splitlines()
    queries = list(dict.fromkeys(json.loads(x)["query"] for x in lines if x.strip()))
    for q in queries:  # warm
        idx.search(q, k=50, mode="lex")
    idx._native = _TimedNative(idx._native)
    load = os.getloadavg()
    pipeline: list[float] = []
    total: list[float] = []
    native: list[float] = []
    for _ in range(a.repeat):
        for q in queries:
            c = _clock()
            idx.search(q, k=50, mode="lex")
            spent = _clock() - c
            pipeline.append((spent - _inner[0]) * 1000)
            total.append(spent * 1000)
            native.append(_inner[0] * 1000)
    report = {
        "lens": lens.__file__,
        "load_avg": [load, os.getloadavg()],
        "samples": len(total),
        "pipeline": _summary(pipeline),
        "search": _summary(total),
        "native_call": _summary(native),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
