"""Train Stage-C's query adapter: a 384x384 matrix W applied to a question's vector before it is
normalised, so a plain-English question lands nearer the vectors of the code it describes. Definition
vectors are untouched: an index built before still works, nothing is re-embedded.

    python scripts/train_query_adapter.py pairs WORK [--package NAME ...] [--max-pairs 9000]
    python scripts/train_query_adapter.py train WORK --tune TUNE --tune-index IDX [--out DIR]

`pairs` takes third-party packages from the venv's site-packages (never the dev corpus, CPython's stdlib,
and never the tuning set's packages), blanks their docstrings as `make_tune_set.py` does, indexes the
blanked tree without vectors, and for every definition with a docstring pairs the docstring's first
sentence (the question) with the definition's document as a build embeds it (`definition_document`,
the 64-token cap). Both sides are embedded by the shipped model (questions one at a time, as a search
does) and saved under WORK, in chunks, so an interrupted run resumes.

`train` drops the pairs that copy the standard library (the dev corpus: a question that is one of the
interpreter's stdlib docstring sentences, or a file under a `distutils` directory), then fits W with
numpy alone: an in-batch contrastive loss (each question against every document of its batch,
temperature `--temperature`) plus `--l2` x ||W - I||^2, Adam, starting from the identity.
The tuning set (`make_tune_set.py`'s packages, held out of the pairs) is the validation set: after each
epoch its 300 questions, adapted, are scored against the tuning index's stored vectors (dense recall@100
and MRR@10 of the gold definition), and the best epoch is kept. The dev set is never read. With `--out`
it writes `query_adapter.npy` (float16, a few hundred KB) and `query_adapter.json` (packages, versions,
counts, the shipped model's sha256, the hyper-parameters and the validation figures). The shipped one:

    python scripts/train_query_adapter.py pairs /tmp/i11e/work
    python scripts/train_query_adapter.py train /tmp/i11e/work --tune /tmp/i11-tune \
        --tune-index /tmp/i11c-tune --out python/lens/rerank/model

(`/tmp/i11-tune` from `make_tune_set.py /tmp/i11-tune`, `/tmp/i11c-tune` an index of its `nodoc` tree
built with vectors; BENCHMARKS.md, Stage-C, has the figures.)
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import random
import shutil
import sys
import sysconfig
import time
from importlib import metadata
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_tune_set import DEFAULT_PACKAGES, blank, first_sentence, questions

#: Packages the pairs come from by default: the venv's larger libraries with docstrings, less the tuning
#: set's and anything that copies the standard library (typing_extensions, importlib_metadata, ...).
PAIR_PACKAGES = (
    "numpy",
    "mypy",
    "huggingface_hub",
    "onnxruntime",
    "pygments",
    "pip",
    "mypyc",
    "hypothesis",
    "google",
    "setuptools",
    "fsspec",
    "anyio",
    "click",
    "urllib3",
    "httpx",
    "requests",
    "attr",
    "pkg_resources",
    "filelock",
    "prometheus_client",
    "tqdm",
    "pathspec",
    "httpcore",
    "jsonschema",
    "charset_normalizer",
    "referencing",
    "uvicorn",
    "starlette",
    "tokenizers",
)
#: Vendored copies (pip's packaging and pluggy are the tuning set's), stdlib copies, tests.
EXCLUDE_PARTS = ("_vendor", "_distutils", "thirdparty", "vendored", "tests", "test", "testing")
CHUNK = 1000


def _site() -> Path:
    return next(Path(p) for p in sys.path if p.endswith("site-packages"))


def _version(pkg: str) -> str:
    for dist in (
        pkg,
        pkg.replace("_", "-"),
        {"attr": "attrs", "google": "protobuf", "yaml": "PyYAML"}.get(pkg, pkg),
    ):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def make_pairs(work: Path, packages: list[str], max_pairs: int, per_package: int, seed: int) -> None:
    import lens
    from lens.rerank.store import DOC_TOKENS, definition_document, iter_definitions

    held_out = set(DEFAULT_PACKAGES)
    assert not held_out & set(packages), "the tuning set's packages are held out"
    tree = work / "nodoc"
    if not (work / "pairs.json").exists():
        shutil.rmtree(tree, ignore_errors=True)
        site = _site()
        docs_at: dict[tuple[str, int], str] = {}
        files: dict[str, int] = {}
        for pkg in packages:
            files[pkg] = 0
            for p in sorted((site / pkg).rglob("*.py")):
                rel = Path(pkg) / p.relative_to(site / pkg)
                if any(part in EXCLUDE_PARTS for part in rel.parts):
                    continue
                try:
                    src = p.read_text(encoding="utf-8")
                    parsed = ast.parse(src)
                except (SyntaxError, UnicodeDecodeError, ValueError):
                    continue
                (tree / rel).parent.mkdir(parents=True, exist_ok=True)
                (tree / rel).write_text(blank(src, parsed), encoding="utf-8")
                files[pkg] += 1
                for node, q in questions(parsed):
                    docs_at[(rel.as_posix(), node.lineno)] = q
        idx = lens.Index.build(tree, work / "idx", semantic=False)
        by_pkg: dict[str, list[dict[str, str]]] = {}
        cache: dict[str, bytes] = {}
        for d in iter_definitions(idx._native):
            q = docs_at.get((d.path, d.line))
            if q is None:
                continue
            if d.path not in cache:
                cache[d.path] = (tree / d.path).read_bytes()
            pkg = d.path.split("/", 1)[0]
            by_pkg.setdefault(pkg, []).append(
                {"q": q, "doc": definition_document(d, cache[d.path]), "path": d.path}
            )
        rng = random.Random(seed)
        pairs: list[dict[str, str]] = []
        seen: set[str] = set()
        for pkg in packages:
            rows = sorted(by_pkg.get(pkg, []), key=lambda r: (r["path"], r["doc"]))
            rng.shuffle(rows)
            kept = 0
            for r in rows:
                # A question asked of two definitions (overloads, "Return self.") would be its own
                # negative in a batch; the first one stays.
                if r["q"] in seen or kept >= per_package:
                    continue
                seen.add(r["q"])
                pairs.append(r)
                kept += 1
        rng.shuffle(pairs)
        pairs = pairs[:max_pairs]
        counts = {pkg: sum(1 for r in pairs if r["path"].startswith(pkg + "/")) for pkg in packages}
        info = {
            "packages": {
                p: {"version": _version(p), "files": files[p], "pairs": counts[p]} for p in packages
            },
            "pairs": len(pairs),
            "doc_tokens": DOC_TOKENS,
            "definitions_with_docstrings": sum(len(v) for v in by_pkg.values()),
        }
        (work / "pairs.json").write_text(json.dumps({"info": info, "pairs": pairs}))
        print(json.dumps(info), flush=True)
    data = json.loads((work / "pairs.json").read_text())
    pairs = data["pairs"]
    from lens.rerank.embed import get_embedder
    from lens.rerank.store import _quantize

    emb = get_embedder()
    cpu = wall = 0.0
    for c in range(0, len(pairs), CHUNK):
        out = work / f"emb-{c // CHUNK:03d}.npz"
        if out.exists():
            continue
        part = pairs[c : c + CHUNK]
        t0, w0 = time.process_time(), time.perf_counter()
        dv, _tokens = emb.embed([r["doc"] for r in part], max_tokens=DOC_TOKENS)
        q8, sc = _quantize(dv)  # as the store keeps them
        qv = np.stack([emb.embed([r["q"]], batch_size=1)[0][0] for r in part])
        np.savez(out, q=qv, d=(q8.astype(np.float32) * sc[:, None]).astype(np.float32))
        cpu += time.process_time() - t0
        wall += time.perf_counter() - w0
        print(f"chunk {c // CHUNK}: {len(part)} pairs, cpu {cpu:.0f}s wall {wall:.0f}s", flush=True)


def stdlib_sentences() -> set[str]:
    """The docstring first sentences of the running interpreter's standard library (lower-cased): the
    dev corpus is CPython's `Lib/`, and some packages carry copies of it (setuptools' and numpy's
    distutils, numpy's `_inspect`, anyio's backport of `asyncio.Runner`)."""
    lib = Path(sysconfig.get_paths()["stdlib"])
    out: set[str] = set()
    for p in lib.rglob("*.py"):
        if "site-packages" in p.parts:
            continue
        try:
            tree = ast.parse(p.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc:
                    out.add(first_sentence(doc).strip().lower())
    return out


def load_pairs(work: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """The embedded pairs, less those that copy the standard library (a question that is one of its
    docstring sentences, or a file under a `distutils` directory); and how many were dropped."""
    parts = [np.load(p) for p in sorted(work.glob("emb-*.npz"))]
    q, d = np.concatenate([p["q"] for p in parts]), np.concatenate([p["d"] for p in parts])
    pairs = json.loads((work / "pairs.json").read_text())["pairs"][: len(q)]
    stdlib = stdlib_sentences()
    keep = np.array(
        [r["q"].strip().lower() not in stdlib and "distutils" not in r["path"].split("/") for r in pairs]
    )
    return q[keep], d[keep], int((~keep).sum())


def tune_set(tune: Path, tune_index: Path) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """The tuning set's questions (embedded one at a time, as a search does), the tuning index's stored
    vectors (as Stage-C reads them) and, per question, the rows inside its gold span."""
    from lens.rerank.embed import get_embedder
    from lens.rerank.store import VectorStore

    store = VectorStore.load(tune_index)
    assert store is not None, f"no vectors in {tune_index}"
    qs = [json.loads(x) for x in (tune / "queries.jsonl").read_text().splitlines() if x.strip()]
    emb = get_embedder()
    qv = np.stack([emb.embed([q["query"]], batch_size=1)[0][0] for q in qs])
    dv = store.vectors.astype(np.float32) * store.scales[:, None]
    paths = [store.paths[i] for i in store.path_idx]
    gold = []
    for q in qs:
        rows = [
            r
            for g in q["gold"]
            for r in range(store.count)
            if paths[r] == g["path"] and g["line_start"] <= store.line[r] <= g["line_end"]
        ]
        gold.append(rows)
    return qv, dv, gold


def adapt(q: np.ndarray, w: np.ndarray) -> np.ndarray:
    out = q @ w.T
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def validate(w: np.ndarray, qv: np.ndarray, dv: np.ndarray, gold: list[list[int]]) -> dict[str, float]:
    """Dense-only figures of the adapted questions: recall@50 / @100 (a gold row among the nearest) and
    MRR@10 of the first gold row."""
    s = adapt(qv, w) @ dv.T
    r50 = r100 = mrr = 0.0
    for i, rows in enumerate(gold):
        if not rows:
            continue
        best = float(s[i, rows].max())
        rank = int((s[i] > best).sum())
        r50 += rank < 50
        r100 += rank < 100
        mrr += 1.0 / (rank + 1) if rank < 10 else 0.0
    n = len(gold)
    return {
        "dense_r50": round(r50 / n, 4),
        "dense_r100": round(r100 / n, 4),
        "dense_mrr10": round(mrr / n, 4),
    }


def train(
    q: np.ndarray,
    d: np.ndarray,
    val: tuple[np.ndarray, np.ndarray, list[list[int]]],
    *,
    epochs: int,
    batch: int,
    lr: float,
    l2: float,
    temperature: float,
    seed: int,
    log: bool = True,
) -> tuple[np.ndarray, dict[str, float], list[dict[str, float]]]:
    """In-batch contrastive fit of W (Adam from the identity, L2 pull toward it); the epoch with the best
    validation (dense recall@100, then MRR@10) is returned."""
    rng = np.random.default_rng(seed)
    dim = q.shape[1]
    eye = np.eye(dim, dtype=np.float64)
    w = eye.copy()
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    dn = d / np.linalg.norm(d, axis=1, keepdims=True)
    best_w, best = w.copy(), validate(w, *val)
    history = [{"epoch": 0, **best}]
    step = 0
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(q))
        total = 0.0
        for s in range(0, len(order) - batch + 1, batch):
            ix = order[s : s + batch]
            qb, db = q[ix].astype(np.float64), dn[ix].astype(np.float64)
            raw = qb @ w.T
            norm = np.linalg.norm(raw, axis=1, keepdims=True)
            u = raw / norm
            logits = u @ db.T / temperature
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(axis=1, keepdims=True)
            total += float(-np.log(np.diag(p) + 1e-30).sum())
            g = p
            g[np.arange(len(ix)), np.arange(len(ix))] -= 1.0
            g /= len(ix)
            du = g @ db / temperature
            draw = (du - u * (u * du).sum(axis=1, keepdims=True)) / norm
            grad = draw.T @ qb + 2.0 * l2 * (w - eye)
            step += 1
            m = 0.9 * m + 0.1 * grad
            v = 0.999 * v + 0.001 * grad * grad
            w -= lr * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
        figures = validate(w, *val)
        history.append({"epoch": epoch, "loss": round(total / max(1, len(q) // batch * batch), 4), **figures})
        if log:
            print(history[-1], flush=True)
        if (figures["dense_r100"], figures["dense_mrr10"]) > (best["dense_r100"], best["dense_mrr10"]):
            best_w, best = w.copy(), {"epoch": epoch, **figures}
    return best_w.astype(np.float32), best, history


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pairs")
    p.add_argument("work", type=Path)
    p.add_argument("--package", action="append", default=[])
    p.add_argument("--max-pairs", type=int, default=9000)
    p.add_argument("--per-package", type=int, default=1200)
    p.add_argument("--seed", type=int, default=11)
    t = sub.add_parser("train")
    t.add_argument("work", type=Path)
    t.add_argument("--tune", type=Path, required=True, help="make_tune_set.py's directory (queries.jsonl)")
    t.add_argument("--tune-index", type=Path, required=True, help="an index of TUNE/nodoc with vectors")
    t.add_argument("--epochs", type=int, default=20)
    t.add_argument("--batch", type=int, default=256)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--l2", type=float, default=0.003)
    t.add_argument("--temperature", type=float, default=0.05)
    t.add_argument("--seed", type=int, default=11)
    t.add_argument("--out", type=Path, help="write query_adapter.npy / .json here")
    args = ap.parse_args(argv)
    if args.cmd == "train":
        from lens.rerank.embed import model_sha256

        q, d, dropped = load_pairs(args.work)
        print(f"{len(q)} pairs ({dropped} that copy the standard library dropped)", flush=True)
        val = tune_set(args.tune, args.tune_index)
        hp = {k: getattr(args, k) for k in ("epochs", "batch", "lr", "l2", "temperature", "seed")}
        w, best, history = train(q, d, val, **hp)
        identity = validate(np.eye(q.shape[1], dtype=np.float32), *val)
        print("identity", identity, "best", best, flush=True)
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            np.save(args.out / "query_adapter.npy", w.astype(np.float16))  # a few hundred KB
            info = json.loads((args.work / "pairs.json").read_text())["info"]
            info["pairs_dropped_as_stdlib_copies"] = dropped
            info["pairs_trained_on"] = len(q)
            manifest = {
                "what": "Stage-C query adapter: q' = W q, then L2-normalised (lens.rerank.embed)",
                "made_by": "scripts/train_query_adapter.py",
                "model_sha256": model_sha256(),
                "training": info,
                "held_out": {"packages": list(DEFAULT_PACKAGES), "questions": len(val[2])},
                "hyper_parameters": hp,
                "validation_identity": identity,
                "validation_best": best,
                "history": history,
                "sha256": hashlib.sha256((args.out / "query_adapter.npy").read_bytes()).hexdigest(),
            }
            (args.out / "query_adapter.json").write_text(json.dumps(manifest, indent=1) + "\n")
    if args.cmd == "pairs":
        args.work.mkdir(parents=True, exist_ok=True)
        make_pairs(
            args.work, args.package or list(PAIR_PACKAGES), args.max_pairs, args.per_package, args.seed
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
