"""Fit Stage-C's learned ranker (`lens.rerank.ranker`) on the tuning set, and check it.

    # the tuning set (scripts/make_tune_set.py; never the dev set) and an index of its nodoc tree with vectors
    python scripts/train_ranker.py dump /tmp/lens-tune-idx /tmp/lens-tune/queries.jsonl /tmp/ranker-tune.pkl
    python scripts/train_ranker.py fit /tmp/ranker-tune.pkl --index /tmp/lens-tune-idx \\
        --out python/lens/rerank/model/ranker.json
    # the real fusion, plain RRF against the ranker, over any dump (the dev set's is only a check)
    python scripts/train_ranker.py check /tmp/ranker-tune.pkl --index /tmp/lens-tune-idx

`dump` records, for each plain-English question, what Stage-C receives: the lexical ranking (mode
"symbol", k=50: the definition index's BM25F hits) and the query vector (with the shipped query adapter).
`fit` gathers the candidates and their six signals with the stage's own code (`SemanticStage.candidates`,
`SemanticStage.signals`), labels a candidate relevant when the hit the stage would return for it lies
in a gold span, and fits one weight per signal by a listwise softmax loss (each question's candidates
against its gold ones; the signals standardised, an L2 pull of `--l2`, Adam for `--iters` full passes;
deterministic). It prints 5-fold cross-validated nDCG@10 / recall@50 beside the plain RRF's, so the
choice of signals is made on held-out questions of the tuning set. `check` runs the stage's real fusion
with and without the ranker. Metrics as `../shared/eval/evaluate.py` defines them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np

import lens
from lens.rerank.ranker import FEATURES
from lens.rerank.stage import FusionConfig, SemanticStage
from lens.rerank.store import VectorStore

RRF_K = 20.0


def _inside(path: str, line: int, g: dict[str, Any]) -> bool:
    return path == g["path"] and int(g["line_start"]) <= line <= int(g["line_end"])


def metrics(locs: list[tuple[str, int]], gold: list[dict[str, Any]]) -> tuple[float, float]:
    """nDCG@10 and recall@50 of a ranked list of (path, line), as the shared scorer counts them."""
    found: set[int] = set()
    dcg = 0.0
    for rank, (p, ln) in enumerate(locs[:10]):
        for gi, g in enumerate(gold):
            if gi not in found and _inside(p, ln, g):
                found.add(gi)
                dcg += 1 / math.log2(rank + 2)
                break
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(gold), 10)))
    recall = sum(1 for g in gold if any(_inside(p, ln, g) for p, ln in locs[:50])) / len(gold)
    return dcg / ideal, recall


def dump(index: Path, queries: Path, out: Path) -> None:
    from lens.rerank.embed import get_embedder

    lens.guard.slos.stage_a.p95_ms = 1e6  # a busy machine must not shed a stage while we record
    lens.guard.slos.stage_a.tail_ratio = None
    idx = lens.Index.open(index)
    emb = get_embedder()
    rows = []
    for line in queries.read_text().splitlines():
        q = json.loads(line) if line.strip() else None
        if q is None or q.get("kind") != "nl":
            continue
        hits = idx.search(q["query"], k=50, mode="symbol").hits
        rows.append({"q": q, "hits": hits, "vector": emb.embed_query(q["query"])})
    out.write_bytes(
        pickle.dumps({"queries": str(queries), "adapter": emb.query_adapter is not None, "rows": rows})
    )
    print(f"dumped {len(rows)} questions to {out}")


def _prepare(dump_path: Path, index: Path) -> list[tuple[np.ndarray, np.ndarray, list[tuple[str, int]], Any]]:
    """Per question: the candidates' signals (rows in the stage's tie order), their labels and the
    (path, line) the stage would return for each."""
    store = VectorStore.load(index)
    if store is None:
        sys.exit(f"{index}: no vectors")
    stage = SemanticStage(index, FusionConfig(use_ranker=False))
    data = []
    for r in pickle.loads(dump_path.read_bytes())["rows"]:
        cands = stage.candidates(r["hits"], r["vector"], store)
        sig = stage.signals(r["q"]["query"], cands, store, RRF_K)  # keys in the stage's tie order
        locs = []
        for k in sig.keys:
            if k in cands.groups:
                locs.append((cands.groups[k][0].path, cands.groups[k][0].line))
            else:
                locs.append((store.paths[store.path_idx[k]], store.line[k]))
        gold = r["q"]["gold"]
        y = np.array([1.0 if any(_inside(p, ln, g) for g in gold) else 0.0 for p, ln in locs])
        data.append((sig.matrix, y, locs, gold))
    return data


def fit_listwise(data: list[Any], l2: float, iters: int, lr: float = 0.1) -> np.ndarray:
    """Weights on the raw signals minimising the mean over questions of -log(softmax mass on gold)."""
    xs = [d[0] for d in data if d[1].sum() > 0]
    ys = [d[1] / d[1].sum() for d in data if d[1].sum() > 0]
    stacked = np.vstack(xs)
    mu, sd = stacked.mean(0), stacked.std(0) + 1e-9
    zs = [(x - mu) / sd for x in xs]
    w = np.zeros(stacked.shape[1])
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for it in range(1, iters + 1):
        g = np.zeros_like(w)
        for z, t in zip(zs, ys, strict=True):
            s = z @ w
            p = np.exp(s - s.max())
            p /= p.sum()
            g += z.T @ (p - t)
        g = g / len(zs) + l2 * w
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w -= lr * (m / (1 - 0.9**it)) / (np.sqrt(v / (1 - 0.999**it)) + 1e-8)
    out: np.ndarray = w / sd
    return out


def _score(data: list[Any], weights: list[np.ndarray]) -> tuple[float, float]:
    out = []
    for (x, _y, locs, gold), w in zip(data, weights, strict=True):
        s = x @ w
        order = np.lexsort((np.arange(len(s)), -s))
        out.append(metrics([locs[i] for i in order[:50]], gold))
    return sum(a for a, _ in out) / len(out), sum(b for _, b in out) / len(out)


def fit(dump_path: Path, index: Path, out: Path | None, l2: float, iters: int, folds: int) -> None:
    data = _prepare(dump_path, index)
    n = len(data)
    rrf = np.array([1.0, 1.0, 0, 0, 0, 0])
    base = _score(data, [rrf] * n)
    per: list[np.ndarray] = [rrf] * n
    for f in range(folds):
        w = fit_listwise([d for i, d in enumerate(data) if i % folds != f], l2, iters)
        for i in range(f, n, folds):
            per[i] = w
    cv = _score(data, per)
    w = fit_listwise(data, l2, iters)
    inside = _score(data, [w] * n)
    print(f"{n} questions; plain RRF nDCG@10 {base[0]:.4f} R@50 {base[1]:.4f}")
    print(f"ranker, {folds}-fold cross-validated: nDCG@10 {cv[0]:.4f} R@50 {cv[1]:.4f}")
    print(f"ranker fit on all, in sample: nDCG@10 {inside[0]:.4f} R@50 {inside[1]:.4f}")
    print("weights:", {k: round(float(x), 4) for k, x in zip(FEATURES, w, strict=True)})
    if out is not None:
        src = pickle.loads(dump_path.read_bytes())
        qfile = Path(src["queries"])
        spec = {
            "features": list(FEATURES),
            "weights": [round(float(x), 6) for x in w],
            "rrf_k": RRF_K,
            "fit": {
                "script": "scripts/train_ranker.py",
                "questions": n,
                "queries": qfile.name,
                "queries_sha256": hashlib.sha256(qfile.read_bytes()).hexdigest() if qfile.is_file() else None,
                "query_adapter": src["adapter"],
                "loss": "listwise softmax over each question's candidates",
                "l2": l2,
                "iters": iters,
                "plain_rrf": {"ndcg10": round(base[0], 4), "recall50": round(base[1], 4)},
                f"cv{folds}": {"ndcg10": round(cv[0], 4), "recall50": round(cv[1], 4)},
                "in_sample": {"ndcg10": round(inside[0], 4), "recall50": round(inside[1], 4)},
            },
        }
        out.write_text(json.dumps(spec, indent=1) + "\n")
        print(f"wrote {out}")


def check(dump_path: Path, index: Path, ranker_path: Path | None) -> None:
    """The stage's real fusion over the dumped inputs, plain RRF against the ranker."""
    from lens.rerank import ranker as ranker_mod

    store = VectorStore.load(index)
    if store is None:
        sys.exit(f"{index}: no vectors")
    loaded = ranker_mod.load_ranker(ranker_path or ranker_mod.RANKER_PATH)
    if loaded is None:
        sys.exit("no ranker to check (file absent, LENS_RANKER=0, or other features)")
    plain = SemanticStage(index, FusionConfig(use_ranker=False))
    ranked = SemanticStage(index)
    ranked._ranker = loaded
    arms: dict[str, list[tuple[float, float]]] = {"rrf": [], "ranker": []}
    rows = pickle.loads(dump_path.read_bytes())["rows"]
    for r in rows:
        for name, stage in (("rrf", plain), ("ranker", ranked)):
            hits = stage._fuse(r["hits"], r["vector"], store, r["q"]["query"])
            arms[name].append(metrics([(h.path, h.line) for h in hits], r["q"]["gold"]))
    for name, ms in arms.items():
        ndcg, recall = sum(a for a, _ in ms) / len(ms), sum(b for _, b in ms) / len(ms)
        print(f"{name:7s} nDCG@10 {ndcg:.4f} R@50 {recall:.4f}")
    won = sum(1 for a, b in zip(arms["rrf"], arms["ranker"], strict=True) if b[1] > a[1])
    lost = sum(1 for a, b in zip(arms["rrf"], arms["ranker"], strict=True) if b[1] < a[1])
    print(f"recall@50 won {won} lost {lost} of {len(rows)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("index", type=Path)
    d.add_argument("queries", type=Path)
    d.add_argument("out", type=Path)
    f = sub.add_parser("fit")
    f.add_argument("dump", type=Path)
    f.add_argument("--index", type=Path, required=True)
    f.add_argument("--out", type=Path)
    f.add_argument("--l2", type=float, default=0.01)
    f.add_argument("--iters", type=int, default=300)
    f.add_argument("--folds", type=int, default=5)
    c = sub.add_parser("check")
    c.add_argument("dump", type=Path)
    c.add_argument("--index", type=Path, required=True)
    c.add_argument("--ranker", type=Path)
    a = ap.parse_args(argv)
    if a.cmd == "dump":
        dump(a.index, a.queries, a.out)
    elif a.cmd == "fit":
        fit(a.dump, a.index, a.out, a.l2, a.iters, a.folds)
    else:
        check(a.dump, a.index, a.ranker)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
