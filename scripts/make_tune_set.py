"""Make a tuning set for Stage-C's fusion and cutoff, built the way the shared dev set is, from code that
is NOT the dev corpus (the dev corpus is CPython's stdlib; this takes third-party packages).

    python scripts/make_tune_set.py DEST [--package DIR ...] [--queries 300]

Writes DEST/orig (the packages' .py files), DEST/nodoc (the same with every docstring blanked, line
numbers unchanged) and DEST/queries.jsonl: `nl` queries (a docstring's first sentence; gold: the whole
definition) searched in nodoc, in the dev set's format, so `../shared/eval/evaluate.py` scores it too.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

DEFAULT_PACKAGES = ("_pytest", "structlog", "packaging", "pluggy")


def first_sentence(doc: str) -> str:
    text = " ".join(doc.strip().split("\n\n")[0].split())
    m = re.match(r"(.+?[.!?])(\s|$)", text)
    return (m.group(1) if m else text).rstrip(".")


Definition = ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef


def questions(tree: ast.Module) -> Iterator[tuple[Definition, str]]:
    """Each documented class or function with its question: the docstring's first sentence, 3-40 words."""
    for node in ast.walk(tree):
        if isinstance(node, Definition):
            doc = ast.get_docstring(node)
            if doc and 3 <= len((q := first_sentence(doc)).split()) <= 40:
                yield node, q


def blank(source: str, tree: ast.Module) -> str:
    """Every docstring replaced by `""` and spaces, newlines kept (as the dev set's nodoc twin)."""
    lines = source.splitlines(keepends=True)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if not (node.body and isinstance(node.body[0], ast.Expr)):
            continue
        c = node.body[0].value
        if not (isinstance(c, ast.Constant) and isinstance(c.value, str)):
            continue
        assert c.end_lineno is not None and c.end_col_offset is not None
        for ln in range(c.lineno - 1, c.end_lineno):
            text = lines[ln]
            body = text.rstrip("\r\n")
            end = text[len(body) :]
            start = c.col_offset if ln == c.lineno - 1 else 0
            stop = c.end_col_offset if ln == c.end_lineno - 1 else len(body)
            filler = '""' if ln == c.lineno - 1 else ""
            span = stop - start
            body = body[:start] + (filler + " " * span)[:span] + body[stop:]
            lines[ln] = body + end
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dest", type=Path)
    ap.add_argument("--package", type=Path, action="append", default=[])
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)
    random.seed(args.seed)
    site = next(Path(p) for p in sys.path if p.endswith("site-packages"))
    packages = args.package or [site / p for p in DEFAULT_PACKAGES]
    orig, nodoc = args.dest / "orig", args.dest / "nodoc"
    for d in (orig, nodoc):
        shutil.rmtree(d, ignore_errors=True)
    candidates = []
    for pkg in packages:
        for p in sorted(pkg.rglob("*.py")):
            rel = Path(pkg.name) / p.relative_to(pkg)
            src = p.read_text(encoding="utf-8")
            try:
                tree = ast.parse(src)
            except SyntaxError:
                continue
            for d, text in ((orig, src), (nodoc, blank(src, tree))):
                (d / rel).parent.mkdir(parents=True, exist_ok=True)
                (d / rel).write_text(text, encoding="utf-8")
            for node, q in questions(tree):
                gold = {
                    "path": rel.as_posix(),
                    "line_start": node.lineno,
                    "line_end": node.end_lineno,
                }
                candidates.append((q, gold))
    random.shuffle(candidates)
    with (args.dest / "queries.jsonl").open("w") as f:
        for i, (q, gold) in enumerate(candidates[: args.queries]):
            row = {"id": f"tune-nl-{i:04d}", "kind": "nl", "query": q, "corpus": "nodoc", "gold": [gold]}
            f.write(json.dumps(row) + "\n")
    print(f"{min(len(candidates), args.queries)} queries over {len(packages)} packages in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
