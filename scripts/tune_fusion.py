"""Fit Stage-C's fusion knobs (RRF k and weights, neighbours, lexical depth, cutoff margin) on a tuning
set that is not the dev set (`scripts/make_tune_set.py`), and print nDCG@10 / recall@50 per setting.

    python scripts/tune_fusion.py /tmp/lens-tune [--index /tmp/lens-tune-idx] [--reuse OLD_INDEX]
    python scripts/tune_fusion.py /tmp/lens-tune --index /tmp/lens-tune-idx --feedback   # the tail's feedback

Stage-A/B run once per query (mode "symbol": what Stage-C receives; for a question that is the
definition index's ranking), at k=50 and at the deepest lexical depth tried; each setting then reruns
Stage-C alone on those hits, with the query vectors cached. `--reuse` copies the vectors of an older
index of the same tree (identical documents are not embedded again). Metrics as
`../shared/eval/evaluate.py` defines them. Never point this at the dev set.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import lens
from lens.pipeline import StageCall
from lens.rerank.stage import FusionConfig, SemanticStage


def metrics(hits: list[lens.Hit], gold: list[dict[str, Any]]) -> tuple[float, float]:
    def inside(h: lens.Hit, g: dict[str, Any]) -> bool:
        return h.path == g["path"] and int(g["line_start"]) <= h.line <= int(g["line_end"])

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


class _Snap:
    """A snapshot stand-in that answers Stage-C's deeper lexical look-up from hits fetched once."""

    def __init__(self, deep: list[lens.Hit]) -> None:
        self.deep = deep

    def lexical_hits(self, k: int) -> list[lens.Hit]:
        return self.deep[:k]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tune", type=Path)
    ap.add_argument("--index", type=Path)
    ap.add_argument("--reuse", type=Path, help="an older index of the same tree whose vectors to reuse")
    ap.add_argument("--doc-tokens", type=int, help="the document token cap to embed under (a new index)")
    ap.add_argument("--quick", action="store_true", help="a smaller grid")
    ap.add_argument("--margins-only", action="store_true", help="only the cutoff margins, at the defaults")
    ap.add_argument("--feedback", action="store_true", help="only the tail's pseudo-relevance feedback grid")
    args = ap.parse_args(argv)
    queries = [json.loads(x) for x in (args.tune / "queries.jsonl").read_text().splitlines() if x.strip()]
    queries = [q for q in queries if q["kind"] == "nl"]
    index_dir = args.index or args.tune / "nodoc-idx"
    if (index_dir / "semantic" / "CURRENT.json").is_file():
        idx = lens.Index.open(index_dir)
    else:
        idx = lens.Index.build(args.tune / "nodoc", index_dir, progress=True, semantic=False)
        if args.reuse is not None and (args.reuse / "semantic").is_dir():
            shutil.copytree(args.reuse / "semantic", index_dir / "semantic")
        started = time.perf_counter()
        meta = lens.rerank.build_for(idx, True, incremental=True, max_tokens=args.doc_tokens)
        print(
            json.dumps(
                {
                    "embedding": {k: v for k, v in meta.items() if k != "model_sha256"},
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
        )
        idx = lens.Index.open(index_dir)
    deepest = 200
    base = [idx.search(q["query"], k=50, mode="symbol").hits for q in queries]
    deep = [idx.search(q["query"], k=deepest, mode="lex").hits for q in queries]
    n = len(queries)

    def score(runs: list[list[lens.Hit]]) -> tuple[float, float]:
        m = [metrics(h, q["gold"]) for h, q in zip(runs, queries, strict=True)]
        return round(sum(x for x, _ in m) / n, 4), round(sum(y for _, y in m) / n, 4)

    def run(cfg: FusionConfig) -> tuple[tuple[float, float], float]:
        stage = SemanticStage(idx.index_dir, cfg)
        runs, cut = [], 0
        for q, hits, dh in zip(queries, base, deep, strict=True):
            call = StageCall(
                q["query"], 50, "auto", list(hits), 300.0, idx.flags.snapshot(), {}, None, "stage_c"
            )
            out = stage.rerank(call, deeper=_Snap(dh).lexical_hits)
            cut += int(call.counters.get("cutoff", 0))
            runs.append(list(out)[:50] if out is not None else hits)
        return score(runs), cut / n

    print(json.dumps({"setting": "lex (Stage-C's input)", "n": n, "ndcg10_recall50": score(base)}))
    if args.feedback:
        # The tail's feedback (FusionConfig.feedback_*), the rest at the defaults; 0 definitions is off.
        for defs, weight in [(0, 0.0), *itertools.product((3, 5, 10), (0.5, 1.0, 2.0))]:
            s, _ = run(FusionConfig(feedback_defs=defs, feedback_weight=weight, margin_ratio=1e9))
            setting = {"feedback_defs": defs, "feedback_weight": weight}
            print(json.dumps({"setting": setting, "ndcg10_recall50": s}), flush=True)
        return 0
    if args.margins_only:
        grid: Any = ()
    elif args.quick:
        grid = itertools.product((0.25, 0.5, 1.0), (1.0,), (100,), (20.0, 60.0), (50,))
    else:
        grid = itertools.product(
            (0.25, 0.5, 1.0, 1.5, 2.0), (1.0,), (50, 100), (10.0, 20.0, 60.0), (50, 100, 200)
        )
    for lw, dw, nb, k, depth in grid:
        cfg = FusionConfig(
            rrf_k=k, lexical_weight=lw, dense_weight=dw, neighbours=nb, lexical_depth=depth, margin_ratio=1e9
        )
        s, _ = run(cfg)
        setting = {"lexical_weight": lw, "neighbours": nb, "rrf_k": k, "lexical_depth": depth}
        print(json.dumps({"setting": setting, "ndcg10_recall50": s}), flush=True)
    # The cutoff margin, at the default fusion: its rate and what it costs.
    for margin in (1.1, 1.2, 1.5, 2.0, 3.0, 1e9):
        s, rate = run(FusionConfig(margin_ratio=margin))
        print(json.dumps({"setting": {"margin_ratio": margin}, "cutoff_rate": rate, "ndcg10_recall50": s}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
