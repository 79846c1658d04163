"""Plain-English questions: quality of the definition index, rule by rule (the ablation table).

Builds (or reuses) one index of the question corpus, then runs the question set in mode "lex" once per
configuration of the code-aware ranking rules (`LENS_TERMS_ABLATE`, read per query by the native core),
scoring with the shared scorer (`../shared/eval/evaluate.py`'s `score`):

    python benches/terms_eval.py --corpus .lens-eval/cpython-lib-nodoc \
        --queries ../shared/eval/dev/queries.jsonl --index-dir /tmp/lens-terms-dev

Configurations: the default rules, each left out alone, no rules,
and the definition index off (questions go to Stage-A, as before issue 10). `--configs` picks a subset.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path

import lens
from lens.guard import percentile

RULES = ("ident", "sink", "files")
# name -> LENS_TERMS_ABLATE
CONFIGS = {
    "default rules": "",
    **{f"without {r}": r for r in RULES},
    "no rules (BM25F)": "all",
    "definition index off": "terms",
}


def load_scorer(path: Path):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("lens_shared_evaluate", path)
    if spec is None or spec.loader is None:
        sys.exit(f"cannot load the scorer from {path}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.score


def main() -> int:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True, help="the tree the questions are asked of")
    ap.add_argument("--queries", type=Path, required=True, help="dev-set format; only kind 'nl' is used")
    ap.add_argument("--index-dir", type=Path, required=True, help="built here unless --reuse finds one")
    ap.add_argument("--reuse", action="store_true", help="open the index in --index-dir instead of building")
    ap.add_argument("--scorer", type=Path, default=here.parent.parent / "shared" / "eval" / "evaluate.py")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated names from the list above")
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()

    score = load_scorer(a.scorer)
    # Time the native path: under load the SLO guard would trip Stage-A to the reference scanner.
    lens.guard.slos.stage_a.p95_ms = float("inf")
    queries = [json.loads(x) for x in a.queries.read_text().splitlines() if x.strip()]
    queries = [q for q in queries if q["kind"] == "nl"]
    if a.reuse:
        idx = lens.Index.open(a.index_dir)
    else:
        t = time.perf_counter()
        idx = lens.Index.build(a.corpus, a.index_dir, semantic=False)
        print(f"built in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    out = []
    print(f"{'configuration':24} {'nDCG@10':>8} {'R@50':>6} {'MRR@10':>7} {'p50ms':>6} {'p95ms':>6}")
    for name in a.configs.split(","):
        os.environ["LENS_TERMS_ABLATE"] = CONFIGS[name]
        rows: dict[str, list[float]] = {"r": [], "n": [], "m": [], "ms": []}
        for q in queries:
            t = time.perf_counter()
            res = idx.search(q["query"], k=a.k, mode="lex")
            rows["ms"].append((time.perf_counter() - t) * 1000)
            r, n, m = score(list(res.hits)[: a.k], q["gold"])
            rows["r"].append(r)
            rows["n"].append(n)
            rows["m"].append(m)
        row = {
            "config": name,
            "n": len(queries),
            "ndcg@10": round(statistics.fmean(rows["n"]), 4),
            "recall@50": round(statistics.fmean(rows["r"]), 4),
            "mrr@10": round(statistics.fmean(rows["m"]), 4),
            "p50_ms": round(percentile(sorted(rows["ms"]), 50), 3),
            "p95_ms": round(percentile(sorted(rows["ms"]), 95), 3),
        }
        out.append(row)
        print(
            f"{name:24} {row['ndcg@10']:8.3f} {row['recall@50']:6.3f} {row['mrr@10']:7.3f} "
            f"{row['p50_ms']:6.2f} {row['p95_ms']:6.2f}",
            flush=True,
        )
    os.environ.pop("LENS_TERMS_ABLATE", None)
    if a.json:
        a.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
