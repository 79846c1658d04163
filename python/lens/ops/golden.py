"""Golden query sets: loading the dev set's JSONL format, and building lens's own from the standard library.

A golden set is a list of queries, each with gold spans (`{"path", "line_start", "line_end"}`), over one or
two corpora: `"orig"` (the tree as it is) and `"nodoc"` (the same tree with every docstring blanked, line
numbers unchanged, so a natural-language query's words are not in the code it describes). The format is
`../shared/eval/dev/queries.jsonl`'s.

`stdlib_golden_set` builds one the same way as the dev set, at run time, from the running Python's
standard library: `ident` queries are names defined exactly once in the chosen files and mentioned at
least twice elsewhere (gold: the definition's header line); `nl` queries are the first sentence of a
docstring (gold: the whole definition), searched in the blanked twin. The choice is deterministic for a
given Python, so the set's hash is stable and a release bundle can name it.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import random
import re
import shutil
import sys
import sysconfig
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LensError

__all__ = ["GoldenQuery", "GoldenSet", "GoldenSetError", "load_golden_set", "stdlib_golden_set"]

KINDS = ("ident", "nl")
CORPORA = ("orig", "nodoc")
#: Bump when the way the stdlib set is chosen changes, so a cached copy is not reused.
_STDLIB_RECIPE = 1
_SENTENCE = re.compile(r"^(.+?[.!?])(\s|$)", re.S)


class GoldenSetError(LensError, ValueError):
    """A golden set file is malformed or names a corpus that was not given."""


@dataclass(frozen=True, slots=True)
class GoldenQuery:
    id: str
    kind: str
    query: str
    corpus: str
    gold: tuple[tuple[str, int, int], ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "query": self.query,
            "corpus": self.corpus,
            "gold": [{"path": p, "line_start": s, "line_end": e} for p, s, e in self.gold],
        }


@dataclass
class GoldenSet:
    """Queries plus the corpus roots they are searched in."""

    name: str
    queries: list[GoldenQuery]
    roots: dict[str, Path] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        """Hash of the canonical JSONL (sorted keys, one query a line): names the set in a bundle."""
        h = hashlib.sha256()
        for q in self.queries:
            h.update(json.dumps(q.as_dict(), sort_keys=True, ensure_ascii=False).encode("utf-8"))
            h.update(b"\n")
        return h.hexdigest()

    def corpora(self) -> list[str]:
        return sorted({q.corpus for q in self.queries})

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sha256": self.sha256,
            "queries": len(self.queries),
            "kinds": dict(sorted(Counter(q.kind for q in self.queries).items())),
            "corpora": {c: str(self.roots.get(c)) for c in self.corpora()},
        }

    def write_jsonl(self, path: Path) -> None:
        path.write_text(
            "".join(json.dumps(q.as_dict(), ensure_ascii=False) + "\n" for q in self.queries),
            encoding="utf-8",
        )


def _parse(obj: Any, where: str) -> GoldenQuery:
    if not isinstance(obj, dict):
        raise GoldenSetError(f"{where}: a query must be a JSON object")
    try:
        qid, kind, query, corpus, gold = (obj[k] for k in ("id", "kind", "query", "corpus", "gold"))
    except KeyError as exc:
        raise GoldenSetError(f"{where}: missing field {exc.args[0]!r}") from None
    if not isinstance(query, str) or not query.strip():
        raise GoldenSetError(f"{where}: query must be a non-empty string")
    if corpus not in CORPORA:
        raise GoldenSetError(f"{where}: corpus must be one of {CORPORA}, not {corpus!r}")
    if not isinstance(gold, list) or not gold:
        raise GoldenSetError(f"{where}: gold must be a non-empty list")
    spans = []
    for g in gold:
        try:
            path, start, end = g["path"], g["line_start"], g["line_end"]
        except (KeyError, TypeError):
            raise GoldenSetError(f"{where}: each gold span needs path, line_start, line_end") from None
        if not (
            isinstance(path, str) and isinstance(start, int) and isinstance(end, int) and 1 <= start <= end
        ):
            raise GoldenSetError(f"{where}: bad gold span {g!r}")
        spans.append((path, start, end))
    return GoldenQuery(str(qid), str(kind), query, corpus, tuple(spans))


def load_golden_set(
    path: str | os.PathLike[str],
    *,
    orig: str | os.PathLike[str] | None = None,
    nodoc: str | os.PathLike[str] | None = None,
) -> GoldenSet:
    """Read a JSONL golden set; `orig` and `nodoc` are the corpus roots its queries name."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise GoldenSetError(f"cannot read golden set {p}: {exc}") from exc
    queries = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise GoldenSetError(f"{p}:{n}: not JSON: {exc.msg}") from None
        queries.append(_parse(obj, f"{p}:{n}"))
    if not queries:
        raise GoldenSetError(f"{p}: no queries")
    roots = {k: Path(v) for k, v in (("orig", orig), ("nodoc", nodoc)) if v is not None}
    missing = [c for c in {q.corpus for q in queries} if c not in roots]
    if missing:
        raise GoldenSetError(f"{p}: queries need a root for corpus {', '.join(sorted(missing))}")
    for c, r in roots.items():
        if not r.is_dir():
            raise GoldenSetError(f"corpus {c!r} root {r} is not a directory")
    return GoldenSet(p.stem, queries, roots)


# -- the stdlib set --------------------------------------------------------------------------------


def _stdlib_files(limit: int) -> list[Path]:
    """Top-level stdlib modules that parse, in name order: the same list for the same Python."""
    root = Path(sysconfig.get_paths()["stdlib"])
    out = []
    for p in sorted(root.glob("*.py")):
        if p.name.startswith(("_", "test")) or p.stat().st_size > 200_000:
            continue
        try:
            ast.parse(p.read_bytes())
        except (SyntaxError, ValueError):
            continue
        out.append(p)
        if len(out) >= limit:
            break
    return out


def _docstring_node(node: ast.AST) -> ast.Constant | None:
    body = getattr(node, "body", None)
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        return body[0].value
    return None


def _blank(data: bytes, spans: Iterable[tuple[int, int, int, int]]) -> bytes:
    """Spaces over each (line, col, end_line, end_col) span (1-based lines, byte columns), newlines kept."""
    lines = data.split(b"\n")
    for l0, c0, l1, c1 in spans:
        for ln in range(l0, l1 + 1):
            row = lines[ln - 1]
            a = c0 if ln == l0 else 0
            b = c1 if ln == l1 else len(row)
            lines[ln - 1] = row[:a] + b" " * (b - a) + row[b:]
    return b"\n".join(lines)


def _defs(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef]:
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


def build_stdlib_corpus(dest: Path, *, files: int = 60, per_kind: int = 40, seed: int = 13) -> GoldenSet:
    """Copy `files` stdlib modules into `dest/orig`, their docstring-blanked twins into `dest/nodoc`, and
    write `dest/queries.jsonl`."""
    sources = _stdlib_files(files)
    orig, nodoc = dest / "orig", dest / "nodoc"
    orig.mkdir(parents=True)
    nodoc.mkdir(parents=True)
    trees: dict[str, tuple[bytes, ast.AST]] = {}
    for src in sources:
        data = src.read_bytes()
        tree = ast.parse(data)
        trees[src.name] = (data, tree)
        (orig / src.name).write_bytes(data)
        spans = []
        for node in [tree, *_defs(tree)]:
            doc = _docstring_node(node)
            if doc is not None and doc.end_lineno is not None and doc.end_col_offset is not None:
                spans.append((doc.lineno, doc.col_offset, doc.end_lineno, doc.end_col_offset))
        (nodoc / src.name).write_bytes(_blank(data, spans))

    # ident: defined once in the set, mentioned (as a word) at least twice elsewhere.
    definitions: dict[str, list[tuple[str, int]]] = {}
    for name, (_data, parsed) in trees.items():
        for d in _defs(parsed):
            definitions.setdefault(d.name, []).append((name, d.lineno))
    words: Counter[bytes] = Counter()
    for raw, _parsed in trees.values():
        words.update(re.findall(rb"[A-Za-z_][A-Za-z0-9_]*", raw))
    idents = sorted(
        (n, *where[0])
        for n, where in definitions.items()
        if len(where) == 1 and len(n) >= 5 and not n.startswith("__") and words[n.encode()] >= 3
    )
    # nl: the first sentence of a docstring, 4 to 20 words, unique in the set.
    sentences: dict[str, list[tuple[str, int, int]]] = {}
    for name, (_data, parsed) in trees.items():
        for d in _defs(parsed):
            text = ast.get_docstring(d)
            m = _SENTENCE.match(" ".join((text or "").split()))
            if m and 4 <= len(m.group(1).split()) <= 20 and d.end_lineno is not None:
                sentences.setdefault(m.group(1), []).append((name, d.lineno, d.end_lineno))
    nls = sorted((s, *w[0]) for s, w in sentences.items() if len(w) == 1)

    rng = random.Random(seed)
    queries = [
        GoldenQuery(f"stdlib-ident-{i:04d}", "ident", n, "orig", ((p, ln, ln),))
        for i, (n, p, ln) in enumerate(sorted(rng.sample(idents, min(per_kind, len(idents)))), 1)
    ]
    queries += [
        GoldenQuery(f"stdlib-nl-{i:04d}", "nl", s, "nodoc", ((p, a, b),))
        for i, (s, p, a, b) in enumerate(sorted(rng.sample(nls, min(per_kind, len(nls)))), 1)
    ]
    gs = GoldenSet(_stdlib_name(files, per_kind, seed), queries, {"orig": orig, "nodoc": nodoc})
    gs.write_jsonl(dest / "queries.jsonl")
    return gs


def _stdlib_name(files: int, per_kind: int, seed: int) -> str:
    v = sys.version_info
    return f"stdlib-{v.major}.{v.minor}.{v.micro}-r{_STDLIB_RECIPE}-f{files}-q{per_kind}-s{seed}"


def stdlib_golden_set(
    cache_dir: str | os.PathLike[str], *, files: int = 60, per_kind: int = 40, seed: int = 13
) -> GoldenSet:
    """lens's own golden set, built once per Python into `cache_dir` and reused. Building goes to a
    private directory renamed into place, so two processes building at once both end up with one
    complete copy."""
    name = _stdlib_name(files, per_kind, seed)
    dest = Path(cache_dir) / name
    queries = dest / "queries.jsonl"
    if not queries.is_file():
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=cache_dir))
        try:
            build_stdlib_corpus(tmp / "set", files=files, per_kind=per_kind, seed=seed)
            try:
                os.rename(tmp / "set", dest)
            except OSError:
                if not queries.is_file():  # not a lost race: a real failure
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    gs = load_golden_set(queries, orig=dest / "orig", nodoc=dest / "nodoc")
    gs.name = name
    return gs
