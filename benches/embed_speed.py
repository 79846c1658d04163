"""Stage-C's embedding throughput on a sample of an index's definition documents: chunks/s, tokens per
chunk, wall and CPU seconds, per (document token cap, threads, batch size) setting, in one run.

    python benches/embed_speed.py --index DIR [--sample 1500] [--caps 128,64,48] [--threads 2,1]
    python benches/embed_speed.py --queries ../shared/eval/dev/queries.jsonl   # one query at a time

DIR is any index built with symbols (Stage-B's definitions are what a semantic build embeds). The
sample is every n-th document in path order, so it keeps the corpus's length mix; `--threads` is the
number of batches run at once (each run single-threaded). CPU time is this process's user+sys
(`resource.getrusage`), so a busy machine shows as wall well above CPU / threads.

`--queries` times the model on each question of a query file alone (no cache), p50 / p95, with the
shipped setting (one intra-op thread, no spinning) against two spinning intra-op threads (onnxruntime's
default on this machine), interleaved query by query so both see the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import lens
from lens.rerank.embed import Embedder
from lens.rerank.store import definition_document, iter_definitions


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def documents(index_dir: Path, sample: int) -> list[str]:
    idx = lens.Index.open(index_dir)
    defs = sorted(iter_definitions(idx._native), key=lambda d: (d.path, d.def_start, d.name))
    step = max(1, len(defs) // sample)
    picked = defs[::step][:sample]
    root = Path(idx.root)
    return [definition_document(d, (root / d.path).read_bytes()) for d in picked]


def query_latency(path: Path, rounds: int) -> None:
    import onnxruntime as ort  # type: ignore[import-untyped]

    from lens.guard import percentile

    texts = [json.loads(x)["query"] for x in path.read_text().splitlines() if x.strip()]
    shipped = Embedder(provider="cpu")
    two = Embedder(provider="cpu")
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.log_severity_level = 3
    two._sess = ort.InferenceSession(str(shipped_model()), so, providers=["CPUExecutionProvider"])
    times: dict[str, list[float]] = {"1 thread, no spin": [], "2 threads, spinning": []}
    for t in texts[:8]:
        shipped.embed([t], batch_size=1)
        two.embed([t], batch_size=1)
    for _ in range(rounds):
        for t in texts:
            for name, emb in (("1 thread, no spin", shipped), ("2 threads, spinning", two)):
                t0 = time.perf_counter()
                emb.embed([t], batch_size=1)
                times[name].append((time.perf_counter() - t0) * 1000)
    for name, ms in times.items():
        row = {
            "session": name,
            "queries": len(ms),
            "p50_ms": round(percentile(sorted(ms), 50) or 0.0, 2),
            "p95_ms": round(percentile(sorted(ms), 95) or 0.0, 2),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
        print(json.dumps(row), flush=True)


def shipped_model() -> Path:
    from lens.rerank.extra import MODEL_DIR

    return MODEL_DIR / "model.onnx"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path)
    ap.add_argument("--queries", type=Path)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--sample", type=int, default=1500)
    ap.add_argument("--caps", default="128,64,48")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--batch", default="32")
    a = ap.parse_args(argv)
    if a.queries is not None:
        query_latency(a.queries, a.rounds)
        return 0
    if a.index is None:
        ap.error("--index or --queries")
    docs = documents(a.index, a.sample)
    print(json.dumps({"documents": len(docs), "load_average": os.getloadavg()}), flush=True)
    for threads in (int(x) for x in a.threads.split(",")):
        emb = Embedder(threads=threads, provider="cpu")
        emb.embed(docs[:32], max_tokens=64)  # warm-up
        for batch in (int(x) for x in a.batch.split(",")):
            for cap in (int(x) for x in a.caps.split(",")):
                c0, t0 = _cpu(), time.perf_counter()
                _, tokens = emb.embed(docs, max_tokens=cap, batch_size=batch)
                wall, cpu = time.perf_counter() - t0, _cpu() - c0
                row = {
                    "threads": threads,
                    "batch": batch,
                    "max_tokens": cap,
                    "tokens_per_chunk": round(tokens / len(docs), 1),
                    "chunks_per_s": round(len(docs) / wall, 1),
                    "wall_s": round(wall, 2),
                    "cpu_s": round(cpu, 2),
                    "cpu_ms_per_chunk": round(1000 * cpu / len(docs), 2),
                    "load_average": [round(x, 2) for x in os.getloadavg()],
                }
                print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
