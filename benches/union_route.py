"""The union route's cost (questions that name an identifier), with Stage-A narrowed to the question's
identifiers and rarest words (`scan::narrow`, the default) and, in the same process, on the whole
sentence as before: installing the index's own Stage-A counts for the query (what a shard of a set gets,
`_lens.set_lexical_stats`) keeps every term and no cap, which scores exactly as the code before did.

    python benches/union_route.py --index-dir /tmp/s19-kq --query-file /work/kq-full/queries.jsonl

Per union-route question, the native call (`NativeSnapshot.search(q, 50)`), CPU time of the searching
thread, the two ways alternated question by question; `--dump` writes both answers for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import lens
from lens import _lens
from lens.guard import percentile
from lens.pipeline import parse


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index-dir", type=Path, required=True)
    ap.add_argument("--query-file", type=Path, required=True, help="JSON lines with a 'query' field")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()

    lens.guard.slos.stage_a.p95_ms = float("inf")
    idx = lens.Index.open(a.index_dir)
    lines = a.query_file.read_text().splitlines()
    qs = list(dict.fromkeys(json.loads(x)["query"] for x in lines if x.strip()))
    union = [q for q in qs if _lens.query_route(q) == "union"]
    snap = idx._native.snapshot()
    stats = {q: _lens.lexical_document_frequencies(idx._native, q) for q in union}
    cpu: dict[str, list[float]] = {"narrowed": [], "whole sentence": []}
    work: dict[str, list[tuple[int, int]]] = {"narrowed": [], "whole sentence": []}
    for rep in range(a.repeat + 1):  # the first pass warms
        for q in union:
            p = parse(q, None, None)
            for name in ("narrowed", "whole sentence"):
                # The index's own counts installed: every term, no cap (the code before).
                _lens.set_lexical_stats(*(stats[q] if name == "whole sentence" else (None, 0)))
                c = time.thread_time()
                _, _, info = snap.search(p, 50, None, True)
                ms = (time.thread_time() - c) * 1000
                _lens.set_lexical_stats(None)
                if rep:
                    cpu[name].append(ms)
                    work[name].append((int(info["candidates"]), int(info["visited"])))
    out: dict[str, object] = {"load_average": os.getloadavg(), "questions": len(union), "repeat": a.repeat}
    print(f"load average {os.getloadavg()}; {len(union)} union-route questions x {a.repeat}, thread CPU ms")
    for name, xs in cpu.items():
        s = sorted(xs)
        row = {f"p{p}": round(percentile(s, p) or 0.0, 2) for p in (50, 90, 95, 99)}
        row["mean"] = round(sum(s) / len(s), 2)
        row["max"] = round(s[-1], 2)
        row["over_5ms"] = sum(x > 5 for x in s)
        w = work[name]
        row["candidates_mean"] = round(sum(c for c, _ in w) / len(w))
        row["visited_mean"] = round(sum(v for _, v in w) / len(w))
        out[name] = row
        print(f"{name:15} " + "  ".join(f"{k} {v}" for k, v in row.items()))
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
