"""Stage-C benchmarks on the dev corpus: latency warm (Stage-C and end to end, by query kind), the
gate's and the cutoff's rates, and the semantic build's throughput.

    python benches/stage_c.py [--nodoc .lens-eval/cpython-lib-nodoc] [--index DIR] [--rounds 3]
    python benches/stage_c.py --index DIR --uncached --compare-scan   # the dense scan, before/after
    python benches/stage_c.py --index DIR --uncached --compare-ranker # plain RRF against the ranker


Opens `--index` when it already holds vectors, else builds the docstring-blanked dev corpus there (the
tree the `nl` queries run on) and reports the build. Then each of the dev set's 600 queries runs once
cold (fills the query-vector cache) and `--rounds` times warm in mode "auto", k=50; the figures are
the warm ones. Percentiles are nearest-rank (`lens.guard.percentile`). The guard's Stage-A SLO is raised
for the run (as in the kernel benches), so a busy machine cannot trip Stage-A to the reference scanner
and hide Stage-C's own cost.

`--compare-scan` times the exact dense scan two ways in the same run, query by query, alternating
which goes first: "float32" (the previous scan: a float32 copy of the matrix in memory, numpy's
einsum matrix-vector product, argpartition) and "native-int8" (the int8 rows read in place by
`rust/vectors.rs`, the default). Each gets Stage-C and end-to-end percentiles and the process CPU
time spent in its searches; the load average is recorded at the start and the end. `--compare-ranker`
does the same for the fusion's ranking: "rrf" (plain reciprocal rank fusion) against "ranker" (the
learned linear mix of `lens.rerank.ranker`, the default), over the same candidates.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import lens
from lens.guard import percentile

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodoc", type=Path, default=REPO / ".lens-eval" / "cpython-lib-nodoc")
    ap.add_argument("--queries", type=Path, default=SHARED / "eval" / "dev" / "queries.jsonl")
    ap.add_argument("--index", type=Path, default=Path("/tmp/lens-stage-c-dev"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--uncached", action="store_true", help="empty the query-vector cache before each query")
    ap.add_argument(
        "--compare-scan", action="store_true", help="the float32 scan against the native int8 one"
    )
    ap.add_argument("--compare-ranker", action="store_true", help="the plain RRF against the learned ranker")
    a = ap.parse_args(argv)
    out: dict[str, object] = {}
    lens.guard.slos.stage_a.p95_ms = 1e6
    lens.guard.slos.stage_a.tail_ratio = None
    if (a.index / "semantic" / "CURRENT.json").is_file():
        idx = lens.Index.open(a.index)
    else:
        t = time.perf_counter()
        idx = lens.Index.build(a.nodoc, a.index, progress=True)
        out["build_seconds"] = round(time.perf_counter() - t, 1)
    out["semantic_build"] = json.loads((a.index / "semantic" / "CURRENT.json").read_text())
    from lens.rerank.embed import get_embedder

    out["query_adapter"] = get_embedder().query_adapter is not None  # LENS_QUERY_ADAPTER=0: off
    queries = [json.loads(x) for x in a.queries.read_text().splitlines() if x.strip()]
    if a.compare_scan or a.compare_ranker:
        compare = compare_scan if a.compare_scan else compare_ranker
        out.update(compare(idx, queries, a.rounds, a.uncached))
        print(json.dumps(out, indent=1))
        if a.json:
            a.json.write_text(json.dumps(out, indent=1) + "\n")
        return 0
    for q in queries:  # cold pass: model warm-up, the query-vector cache filled
        idx.search(q["query"], k=50)
    counters0 = dict(idx.guard.stage_counters()["stage_c"])
    by_kind: dict[str, dict[str, list[float]]] = {}
    stage = idx.stages.get("stage_c")
    for _ in range(a.rounds):
        for q in queries:
            if a.uncached and stage is not None:
                from lens.rerank.embed import get_embedder

                get_embedder()._qcache.clear()
            r = idx.search(q["query"], k=50)
            d = by_kind.setdefault(q["kind"], {"stage_c": [], "total": [], "ran": []})
            d["total"].append(r.timings_ms["total"])
            if "stage_c" in r.timings_ms:
                d["stage_c"].append(r.timings_ms["stage_c"])
    counters1 = idx.guard.stage_counters()["stage_c"]
    for kind, d in sorted(by_kind.items()):
        calls = len(d["stage_c"])
        out[kind] = {
            "queries": len(d["total"]),
            "stage_c_calls": calls,
            "stage_c_p50_ms": round(percentile(sorted(d["stage_c"]), 50), 3) if calls else None,
            "stage_c_p95_ms": round(percentile(sorted(d["stage_c"]), 95), 3) if calls else None,
            "end_to_end_p50_ms": round(percentile(sorted(d["total"]), 50), 3),
            "end_to_end_p95_ms": round(percentile(sorted(d["total"]), 95), 3),
        }
    calls = sum(len(d["stage_c"]) for d in by_kind.values())
    out["gated_share"] = round((counters1["gated"] - counters0["gated"]) / calls, 4) if calls else None
    out["cutoff_share"] = round((counters1["cutoff"] - counters0["cutoff"]) / calls, 4) if calls else None
    print(json.dumps(out, indent=1))
    if a.json:
        a.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


class _Float32Scan:
    """The previous exact scan, for comparison: a float32 copy of the matrix, numpy's einsum."""

    def __init__(self, store: Any) -> None:
        self.dense = np.asarray(store.vectors, dtype=np.float32) * store.scales[:, None]

    def scores(self, query: np.ndarray, rows: list[int] | None = None) -> np.ndarray:
        m = self.dense if rows is None else self.dense[rows]
        out: np.ndarray = np.einsum("ij,j->i", m, query)
        return out

    def nearest(self, query: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        sims = self.scores(query)
        n = min(n, len(sims))
        top = np.argpartition(-sims, n - 1)[:n]
        top = top[np.argsort(-sims[top], kind="stable")]
        return top, sims[top]


def compare_scan(
    idx: lens.Index, queries: list[dict[str, Any]], rounds: int, uncached: bool
) -> dict[str, Any]:
    stage = idx.stages["stage_c"]
    store = stage.store()
    old = _Float32Scan(store)
    native = (store.scores, store.nearest)
    pairs = {"float32": (old.scores, old.nearest), "native-int8": native}

    def use(v: str) -> Callable[[], None]:
        def set_scan() -> None:
            store.scores, store.nearest = pairs[v]

        return set_scan

    try:
        return _interleaved(idx, queries, {v: use(v) for v in pairs}, rounds, uncached)
    finally:
        store.scores, store.nearest = native


def compare_ranker(
    idx: lens.Index, queries: list[dict[str, Any]], rounds: int, uncached: bool
) -> dict[str, Any]:
    """The plain RRF ("rrf") against the learned ranker ("ranker"), the same candidates."""
    stage = idx.stages["stage_c"]
    if stage.ranker() is None:
        raise SystemExit("no ranker loaded (LENS_RANKER=0 or model/ranker.json absent)")

    def use(on: bool) -> Callable[[], None]:
        def set_ranker() -> None:
            stage.config.use_ranker = on

        return set_ranker

    try:
        return _interleaved(idx, queries, {"rrf": use(False), "ranker": use(True)}, rounds, uncached)
    finally:
        stage.config.use_ranker = True


def _interleaved(
    idx: lens.Index,
    queries: list[dict[str, Any]],
    variants: dict[str, Callable[[], None]],
    rounds: int,
    uncached: bool,
) -> dict[str, Any]:
    """Every nl question searched once per variant and round, alternating which goes first; Stage-C
    and end-to-end percentiles and the process CPU time per variant."""
    from lens.rerank.embed import get_embedder

    store = idx.stages["stage_c"].store()
    nl = [q for q in queries if q["kind"] == "nl"]
    for v, setup in variants.items():  # warm-up: the model, the cache, each variant
        setup()
        for q in nl if v == next(iter(variants)) else nl[:20]:
            idx.search(q["query"], k=50)
    times: dict[str, dict[str, list[float]]] = {v: {"stage_c": [], "total": []} for v in variants}
    cpu = dict.fromkeys(variants, 0.0)
    load0 = os.getloadavg()
    wall0 = time.perf_counter()
    for r in range(rounds):
        for i, q in enumerate(nl):
            order = list(variants) if (i + r) % 2 == 0 else list(variants)[::-1]
            for v in order:
                variants[v]()
                if uncached:
                    get_embedder()._qcache.clear()
                c0 = time.process_time()
                res = idx.search(q["query"], k=50)
                cpu[v] += time.process_time() - c0
                times[v]["total"].append(res.timings_ms["total"])
                if "stage_c" in res.timings_ms:
                    times[v]["stage_c"].append(res.timings_ms["stage_c"])
    out: dict[str, Any] = {
        "load_average_start": [round(x, 2) for x in load0],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "wall_seconds": round(time.perf_counter() - wall0, 1),
        "vectors": store.count if store is not None else 0,
        "uncached": uncached,
    }
    for v, d in times.items():
        sc, tot = sorted(d["stage_c"]), sorted(d["total"])
        out[v] = {
            "searches": len(tot),
            "stage_c_p50_ms": round(percentile(sc, 50), 3),
            "stage_c_p95_ms": round(percentile(sc, 95), 3),
            "end_to_end_p50_ms": round(percentile(tot, 50), 3),
            "end_to_end_p95_ms": round(percentile(tot, 95), 3),
            "cpu_seconds": round(cpu[v], 2),
            "cpu_ms_per_search": round(1000 * cpu[v] / max(1, len(tot)), 2),
        }
    return out


if __name__ == "__main__":
    sys.exit(main())
