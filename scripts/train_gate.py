"""Train the semantic gate's weights (`python/lens/rerank/gate.json`).

    python scripts/train_gate.py [--site-packages DIR ...] [--kernel /work/kernel/linux-source-6.1]

Positives (plain English): first sentences of docstrings of third-party Python packages (the installed
site-packages, without anything copied from CPython: no `distutils`, no typeshed, no `.pyi`), and
kernel-doc summaries from C sources; plus short lower-case phrases cut from them, as people type.
Negatives: function and class names (plain, qualified, called), regexes from `re.compile` calls,
relative file paths, and code lines. The dev corpus (CPython's `Lib/`) is never read.

Logistic regression by full-batch gradient descent in numpy, on standardised features (the
standardisation is folded into the shipped weights). Files are split 80/20 at random (seeded); the
held-out accuracy is printed and written beside the weights. `--dev QUERIES` also scores the shared dev
set's query kinds (nl should pass the gate, ident should not) without training on it.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import re
import sys
from pathlib import Path

import numpy as np


def _load_gate() -> object:
    """lens/rerank/gate.py on its own (importing `lens` would need the built native core)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "python/lens/rerank/gate.py"
    spec = importlib.util.spec_from_file_location("_lens_gate", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_gate = _load_gate()
FEATURES: tuple[str, ...] = _gate.FEATURES  # type: ignore[attr-defined]
features = _gate.features  # type: ignore[attr-defined]

_SKIP = ("distutils", "typeshed", "/test/", "/tests/", "lens/")
_KDOC = re.compile(r"^\s*\*\s+(?:struct\s+|enum\s+|union\s+)?([A-Za-z_]\w*)(?:\(\))?\s+-\s+(.{8,})$")
_CIDENT = re.compile(r"\b[A-Za-z_]\w{3,}\b")


def first_sentence(doc: str) -> str:
    text = " ".join(doc.strip().split("\n\n")[0].split())
    m = re.match(r"(.+?[.!?])(\s|$)", text)
    return (m.group(1) if m else text)[:300]


def python_samples(path: Path, rel: str, pos: list[str], neg: list[str]) -> None:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return
    module = rel.removesuffix(".py").replace("/", ".")
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            doc = ast.get_docstring(node)
            if doc:
                s = first_sentence(doc)
                if len(s.split()) >= 2 and not s.startswith((">>>", ":", "..", "@")):
                    pos.append(s)
            name = node.name
            neg.append(random.choice([name, name, f"{module.split('.')[-1]}.{name}", f"{name}()"]))
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", None)
            in (
                "compile",
                "match",
                "search",
            )
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            pat = node.args[0].value.strip()
            if 3 <= len(pat) <= 80 and "\n" not in pat:
                neg.append(pat)
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    code = [ln for ln in lines if 8 <= len(ln) <= 100 and not ln.startswith(("#", '"', "'"))]
    neg.extend(random.sample(code, min(3, len(code))))
    neg.append(rel)


def c_samples(path: Path, rel: str, pos: list[str], neg: list[str]) -> None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    lines = text.splitlines()
    for ln in lines:
        m = _KDOC.match(ln)
        if m:
            summary = m.group(2).strip()
            if len(summary.split()) >= 2:
                pos.append(summary)
            neg.append(m.group(1))
    idents = _CIDENT.findall(text)
    neg.extend(random.sample(idents, min(4, len(idents))))
    code = [
        s for s in (ln.strip() for ln in lines) if 8 <= len(s) <= 100 and not s.startswith(("*", "/*", "//"))
    ]
    neg.extend(random.sample(code, min(2, len(code))))
    neg.append(rel)


def phrase(sentence: str) -> str:
    """A short lower-case query cut from a sentence, as a person types one ("parse http date")."""
    words = [w.strip(".,;:()`*'\"") for w in sentence.split()]
    words = [w for w in words if w]
    n = random.randint(2, min(6, max(2, len(words))))
    out = " ".join(words[:n]).lower()
    return random.choice([out, out, f"how to {out}", f"how do i {out}"])


def collect(site_packages: list[Path], kernel: Path | None, per_side: int) -> list[tuple[str, str, int]]:
    """(group, text, label) rows; `group` is the source file, for the split."""
    rows: list[tuple[str, str, int]] = []
    files: list[tuple[Path, str, str]] = []
    for sp in site_packages:
        for p in sp.rglob("*.py"):
            rel = p.relative_to(sp).as_posix()
            if not any(s in f"/{rel}" for s in _SKIP):
                files.append((p, rel, "py"))
    if kernel is not None:
        for sub in ("drivers", "fs", "net", "mm", "kernel"):
            for p in (kernel / sub).rglob("*.c"):
                files.append((p, p.relative_to(kernel).as_posix(), "c"))
    random.shuffle(files)
    n_py = n_c = 0
    for p, rel, lang in files:
        if (lang == "py" and n_py >= per_side) or (lang == "c" and n_c >= per_side):
            continue
        pos: list[str] = []
        neg: list[str] = []
        (python_samples if lang == "py" else c_samples)(p, rel, pos, neg)
        pos += [phrase(s) for s in pos[: max(1, len(pos) // 2)]]
        rows += [(rel, s, 1) for s in pos] + [(rel, s, 0) for s in neg]
        if lang == "py":
            n_py += len(pos)
        else:
            n_c += len(pos)
    return rows


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 3000, lr: float = 0.5) -> np.ndarray:
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w)))
        grad = x.T @ (p - y) / len(y) + l2 * np.r_[0.0, w[1:]]
        w -= lr * grad
    return w


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--site-packages", type=Path, action="append", default=[])
    ap.add_argument("--kernel", type=Path, default=Path("/work/kernel/linux-source-6.1"))
    ap.add_argument("--per-side", type=int, default=6000, help="positives to take from each language")
    ap.add_argument("--dev", type=Path, help="the shared dev queries, scored only")
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "python/lens/rerank/gate.json"
    )
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)
    random.seed(args.seed)
    sps = args.site_packages or [Path(p) for p in sys.path if p.endswith("site-packages")]
    rows = collect(sps, args.kernel if args.kernel.is_dir() else None, args.per_side)
    groups = sorted({g for g, _, _ in rows})
    random.shuffle(groups)
    held = set(groups[: len(groups) // 5])
    x = np.array([features(t) for _, t, _ in rows])
    y = np.array([lab for _, _, lab in rows], dtype=float)
    test = np.array([g in held for g, _, _ in rows])
    mu, sd = x[~test].mean(0), x[~test].std(0) + 1e-9
    z = np.c_[np.ones(len(x)), (x - mu) / sd]
    w = fit(z[~test], y[~test])
    # Fold the standardisation into the weights: w.(x - mu)/sd = (w/sd).x - w.mu/sd.
    weights = w[1:] / sd
    bias = float(w[0] - (w[1:] * mu / sd).sum())

    def acc(mask: np.ndarray) -> float:
        p = 1 / (1 + np.exp(-(x[mask] @ weights + bias)))
        return float(((p >= 0.5) == (y[mask] == 1)).mean())

    report = {
        "features": list(FEATURES),
        "weights": [round(float(v), 6) for v in weights],
        "bias": round(bias, 6),
        "threshold": 0.5,
        "training": {
            "rows": int((~test).sum()),
            "held_out_rows": int(test.sum()),
            "positives": int(y.sum()),
            "train_accuracy": round(acc(~test), 4),
            "held_out_accuracy": round(acc(test), 4),
            "held_out_accuracy_nl": round(acc(test & (y == 1)), 4),
            "held_out_accuracy_other": round(acc(test & (y == 0)), 4),
            "sources": "site-packages docstrings/identifiers/regexes/paths/code, Linux kernel-doc",
            "seed": args.seed,
        },
    }
    if args.dev and args.dev.is_file():
        qs = [json.loads(line) for line in args.dev.read_text().splitlines() if line.strip()]
        for kind in sorted({q["kind"] for q in qs}):
            feats = np.array([features(q["query"]) for q in qs if q["kind"] == kind])
            p = 1 / (1 + np.exp(-(feats @ weights + bias)))
            want_nl = kind == "nl"
            report["training"][f"dev_{kind}_accuracy"] = round(float(((p >= 0.5) == want_nl).mean()), 4)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["training"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
