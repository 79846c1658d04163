"""Fit Stage-C's fusion knobs (RRF weights, neighbours, cutoff margin) on a tuning set that is not the
dev set (`scripts/make_tune_set.py`), and print nDCG@10 / recall@50 for each setting.

    python scripts/tune_fusion.py /tmp/lens-tune [--index /tmp/lens-tune-idx]

Stage-A/B run once per query (mode "symbol", k=50: what Stage-C receives); each setting then reruns
Stage-C alone on those hits. Metrics as `../shared/eval/evaluate.py` defines them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path

import lens
from lens.pipeline import StageCall
from lens.rerank.stage import FusionConfig, SemanticStage


def metrics(hits: list[lens.Hit], gold: list[dict[str, object]]) -> tuple[float, float]:
    def inside(h: lens.Hit, g: dict[str, object]) -> bool:
        return h.path == g["path"] and int(g["line_start"]) <= h.line <= int(g["line_end"])  # type: ignore[call-overload]

    found: set[int] = set()
    dcg = 0.0
    for rank, h in enumerate(hits[:10]):
        for gi, g in enumerate(gold):
            if gi not in found and inside(h, g):
                found.add(gi)
                dcg += 1 / math.log2(rank + 2)
                break
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(gold), 10)))
    recall = sum(1 for g in gold if any(inside(h, g) for h in hits[:50])) / len(gold)
    return dcg / ideal, recall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tune", type=Path)
    ap.add_argument("--index", type=Path)
    args = ap.parse_args(argv)
    queries = [json.loads(x) for x in (args.tune / "queries.jsonl").read_text().splitlines() if x.strip()]
    index_dir = args.index or args.tune / "nodoc-idx"
    if (index_dir / "semantic" / "CURRENT.json").is_file():
        idx = lens.Index.open(index_dir)
    else:
        idx = lens.Index.build(args.tune / "nodoc", index_dir, progress=True)
    base = [idx.search(q["query"], k=50, mode="symbol").hits for q in queries]
    lex = [idx.search(q["query"], k=50, mode="lex").hits for q in queries]
    n = len(queries)

    def score(runs: list[list[lens.Hit]]) -> tuple[float, float]:
        m = [metrics(h, q["gold"]) for h, q in zip(runs, queries, strict=True)]
        return sum(x for x, _ in m) / n, sum(y for _, y in m) / n

    print(json.dumps({"setting": "lex", "ndcg10_recall50": score(lex)}))
    print(json.dumps({"setting": "symbol (Stage-C's input)", "ndcg10_recall50": score(base)}))
    grid = itertools.product((0.25, 0.5, 1.0, 2.0), (1.0,), (50, 100), (1e9,), (60.0, 20.0, 10.0))
    for lw, dw, nb, margin, k in grid:
        cfg = FusionConfig(rrf_k=k, lexical_weight=lw, dense_weight=dw, neighbours=nb, margin_ratio=margin)
        stage = SemanticStage(idx.index_dir, cfg)
        runs = []
        for q, hits in zip(queries, base, strict=True):
            call = StageCall(idx, "stage_c", q["query"], 50, "auto", list(hits), 300.0, idx.flags.snapshot())
            out = stage(call)
            runs.append(list(out) if out is not None else hits)
        print(
            json.dumps(
                {
                    "setting": {"lexical_weight": lw, "dense_weight": dw, "neighbours": nb, "rrf_k": k},
                    "ndcg10_recall50": score(runs),
                }
            )
        )
    # The cutoff margin, at the default fusion: its rate and what it costs.
    for margin in (1.5, 2.0, 3.0, 5.0, 1e9):
        stage = SemanticStage(idx.index_dir, FusionConfig(margin_ratio=margin))
        runs, cut = [], 0
        for q, hits in zip(queries, base, strict=True):
            call = StageCall(idx, "stage_c", q["query"], 50, "auto", list(hits), 300.0, idx.flags.snapshot())
            out = stage(call)
            cut += int(call.counters.get("cutoff", 0))
            runs.append(list(out) if out is not None else hits)
        print(
            json.dumps(
                {"setting": {"margin_ratio": margin}, "cutoff_rate": cut / n, "ndcg10_recall50": score(runs)}
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
