"""Stage-C's vector store: one document per definition, its embedding, kept in the index directory.

Layout (under `<index_dir>/semantic/`):

- `CURRENT.json`: the live generation, the model's sha256, the vector count and the build figures;
  replaced atomically, so a reader sees one whole generation or the previous one.
- `vectors-<gen>.i8`: `count x DIM` int8, each row scaled by its own `scales-<gen>.f32` entry (read with a
  numpy memmap);
- `defs-<gen>.json`: per vector, where its definition is (path, header line, byte spans) and the hash of
  its document, which `refresh` uses to embed only definitions whose document changed;
- `ann-<gen>.usearch`: for large generations only (`ann.min_vectors()`), an HNSW graph of the same
  vectors; `nearest` then rescores the graph's candidates exactly (`ann`).

Definitions come from Stage-B's symbol data (the native index's tree-sitter / SCIP definitions);
`definition_document` is the one place a document is made, so another source of documents (the
definition-level index of the lexical stage) can replace it in one spot.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._log import get_logger
from .embed import DIM, get_embedder, model_sha256

__all__ = [
    "SEMANTIC_DIRNAME",
    "Definition",
    "VectorStore",
    "build_vectors",
    "definition_document",
    "iter_definitions",
    "remove_vectors",
]

_log = get_logger("lens.rerank")

SEMANTIC_DIRNAME = "semantic"
#: Symbol kinds that are not worth a document of their own (a constant's line is all there is).
_SKIP_KINDS = frozenset({"constant", "variable", "field", "parameter", "local", "import"})
#: Lines of a definition (after its header) that go into its document; the token cap cuts it anyway.
DOC_LINES = 12
#: Tokens of a document that are embedded (MiniLM was trained on 128; see BENCHMARKS.md, Stage-C, for
#: what a shorter cap costs in quality and saves in build time).
DOC_TOKENS = 64
_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_SPACE = re.compile(r"[ \t]+")
#: A generation's files (`vectors-<gen>.i8`, `scales-`, `defs-`, `ann-`), the generation captured.
_GENERATION_FILE = re.compile(r"(?:vectors|scales|defs|ann)-(\d+)\.")


@dataclass(frozen=True, slots=True)
class Definition:
    """One definition as Stage-B knows it: `line`/`column`/`byte_start..byte_end` are its header line's
    hit; `def_start..def_end` the whole definition's bytes."""

    path: str
    line: int
    column: int
    byte_start: int
    byte_end: int
    text: str
    name: str
    kind: str
    container: str | None
    def_start: int
    def_end: int


def iter_definitions(native: Any) -> Iterator[Definition]:
    """Every definition in the index worth a document, in name order."""
    for name, kind, ndefs, _refs, _dist in native.symbols("", False, 1 << 40):
        if not ndefs or kind in _SKIP_KINDS:
            continue
        for path, line, column, start, end, text, _score, _why, sym in native.definitions(name):
            if sym is None or sym[1] in _SKIP_KINDS:
                continue
            yield Definition(path, line, column, start, end, text, sym[0], sym[1], sym[6], sym[3], sym[4])


def split_words(name: str) -> str:
    """`parse_http_date` / `parseHTTPDate` -> "parse http date"."""
    return " ".join(w.lower() for w in _WORDS.findall(name))


def word_set(text: str) -> frozenset[str]:
    """A name's or path's words, as `split_words` spells them."""
    return frozenset(split_words(text).split())


def definition_document(d: Definition, source: bytes) -> str:
    """The text embedded for one definition: kind, qualified name and its words, the path, then the
    header (signature) and the first lines of the body, blank lines and indentation dropped."""
    body = source[d.def_start : d.def_end].decode("utf-8", "replace")
    lines = [_SPACE.sub(" ", ln.strip()) for ln in body.splitlines()]
    lines = [ln for ln in lines if ln][: DOC_LINES + 1]
    qual = f"{d.container}.{d.name}" if d.container else d.name
    words = split_words(qual)
    head = f"{d.kind} {qual} ({words}) in {d.path}"
    return head + "\n" + "\n".join(lines)


def _doc_hash(doc: str, max_tokens: int) -> str:
    """A document's identity for reuse: its text and the token cap it was embedded under."""
    return hashlib.blake2b(f"{max_tokens}\n{doc}".encode(), digest_size=12).hexdigest()


def _quantize(vecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows scaled to int8 by their own max |x| (unit vectors lose < 0.5 % of a cosine)."""
    peak = np.abs(vecs).max(axis=1) if len(vecs) else np.zeros(0, dtype=np.float32)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(vecs / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


class VectorStore:
    """A loaded generation: int8 vectors (memmap), their scales, and where each definition is."""

    def __init__(self, directory: Path, meta: dict[str, Any]) -> None:
        gen = meta["generation"]
        self.directory = directory
        self.meta = meta
        self.count = int(meta["count"])
        defs = json.loads((directory / f"defs-{gen}.json").read_text())
        self.paths: list[str] = defs["paths"]
        self.path_idx: list[int] = defs["path_idx"]
        self.line: list[int] = defs["line"]
        self.column: list[int] = defs["column"]
        self.byte_start: list[int] = defs["byte_start"]
        self.byte_end: list[int] = defs["byte_end"]
        self.text: list[str] = defs["text"]
        self.def_start: list[int] = defs["def_start"]
        self.def_end: list[int] = defs["def_end"]
        self.names: list[str] = defs["name"]
        self.hashes: list[str] = defs["hash"]
        self.vectors: np.ndarray
        if self.count:
            self.vectors = np.memmap(
                directory / f"vectors-{gen}.i8", dtype=np.int8, mode="r", shape=(self.count, DIM)
            )
        else:
            self.vectors = np.zeros((0, DIM), dtype=np.int8)
        self.scales = np.fromfile(directory / f"scales-{gen}.f32", dtype=np.float32)
        # Exact search reads the int8 rows themselves in the native core (`lens._lens.NativeVectors`):
        # a quarter of the bytes of a float32 copy, no copy kept in memory, any size.
        from .. import _lens

        self._native = _lens.NativeVectors.open(
            str(directory / f"vectors-{gen}.i8"), str(directory / f"scales-{gen}.f32"), DIM
        )
        self._ann: Any = None
        self._words: dict[str, frozenset[str]] = {}
        if meta.get("ann") and (directory / f"ann-{gen}.usearch").is_file():
            from . import ann

            self._ann = ann.load(directory / f"ann-{gen}.usearch", DIM)
        # Per path: definitions sorted by start, for "which definition holds this byte".
        spans: dict[str, list[tuple[int, int, int]]] = {}
        for i in range(self.count):
            spans.setdefault(self.paths[self.path_idx[i]], []).append((self.def_start[i], self.def_end[i], i))
        self._starts: dict[str, list[int]] = {}
        self._spans: dict[str, list[tuple[int, int, int]]] = {}
        for p, rows in spans.items():
            rows.sort()
            self._spans[p] = rows
            self._starts[p] = [r[0] for r in rows]

    @classmethod
    def load(cls, index_dir: Path) -> VectorStore | None:
        """The live generation under `index_dir`, or None when there is none or another model made it."""
        directory = index_dir / SEMANTIC_DIRNAME
        try:
            meta = json.loads((directory / "CURRENT.json").read_text())
        except (OSError, ValueError):
            return None
        if meta.get("model_sha256") != model_sha256() or meta.get("dim") != DIM:
            _log.warning("semantic_vectors_ignored", reason="made by another model", index_dir=str(index_dir))
            return None
        return cls(directory, meta)

    def scores(self, query: np.ndarray, rows: list[int] | None = None) -> np.ndarray:
        """Cosines of `query` to every vector (or to `rows`)."""
        q = _query_bytes(query)
        if rows is not None:
            return np.asarray(self._native.scores_of(q, [int(r) for r in rows]), dtype=np.float32)
        return np.frombuffer(self._native.scores(q), dtype=np.float32)

    def vectors_of(self, rows: list[int]) -> np.ndarray:
        """The stored vectors of `rows` as float32 (int8 times each row's scale)."""
        out: np.ndarray = np.asarray(self.vectors[rows], dtype=np.float32) * self.scales[rows, None]
        return out

    def nearest(self, query: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The `n` best rows for `query` and their cosines, best first, ties by row (exact search)."""
        n = max(0, int(n))
        if self._ann is not None and n < self.count:
            from . import ann

            found = [int(r) for r in ann.search(self._ann, query, n) if 0 <= r < self.count]
            sims_all = np.asarray(self._native.scores_of(_query_bytes(query), found), dtype=np.float32)
            rows_all = np.asarray(found, dtype=np.int64)
            best = np.lexsort((rows_all, -sims_all))[:n]
            return rows_all[best], sims_all[best]
        rows, sims = self._native.nearest(_query_bytes(query), n)
        return np.asarray(rows, dtype=np.int64), np.asarray(sims, dtype=np.float32)

    def words(self, text: str) -> frozenset[str]:
        """A name's or path's words (`split_words`), cached: the ranker asks for the same ones often."""
        got = self._words.get(text)
        if got is None:
            got = self._words[text] = word_set(text)
        return got

    def enclosing(self, path: str, byte: int) -> int | None:
        """The innermost definition of `path` holding `byte`, or None."""
        starts = self._starts.get(path)
        if not starts:
            return None
        spans = self._spans[path]
        j = bisect_right(starts, byte) - 1
        steps = 0
        while j >= 0 and steps < 64:
            s, e, row = spans[j]
            if s <= byte < e:
                return row
            j -= 1
            steps += 1
        return None


def _query_bytes(query: np.ndarray) -> bytes:
    q = np.ascontiguousarray(query, dtype="<f4")
    if q.shape != (DIM,):
        raise ValueError(f"a query vector has shape ({DIM},), not {q.shape}")
    return q.tobytes()


def _write_generation(
    directory: Path, defs: list[Definition], hashes: list[str], vecs: np.ndarray, figures: dict[str, Any]
) -> dict[str, Any]:
    directory.mkdir(parents=True, exist_ok=True)
    try:
        old = json.loads((directory / "CURRENT.json").read_text()).get("generation", 0)
    except (OSError, ValueError):
        old = 0
    gen = int(old) + 1
    q, scale = _quantize(vecs)
    paths = sorted({d.path for d in defs})
    pidx = {p: i for i, p in enumerate(paths)}
    table = {
        "paths": paths,
        "path_idx": [pidx[d.path] for d in defs],
        "line": [d.line for d in defs],
        "column": [d.column for d in defs],
        "byte_start": [d.byte_start for d in defs],
        "byte_end": [d.byte_end for d in defs],
        "text": [d.text for d in defs],
        "def_start": [d.def_start for d in defs],
        "def_end": [d.def_end for d in defs],
        "name": [d.name for d in defs],
        "hash": hashes,
    }
    q.tofile(directory / f"vectors-{gen}.i8")
    scale.tofile(directory / f"scales-{gen}.f32")
    (directory / f"defs-{gen}.json").write_text(json.dumps(table, separators=(",", ":")))
    meta = {"generation": gen, "model_sha256": model_sha256(), "dim": DIM, "count": len(defs), **figures}
    from . import ann

    if len(defs) and len(defs) >= ann.min_vectors():
        if ann.available():
            started = time.perf_counter()
            ann.build(directory / f"ann-{gen}.usearch", q.astype(np.float32) * scale[:, None])
            meta["ann"] = {"kind": "usearch-hnsw", "seconds": round(time.perf_counter() - started, 3)}
        else:
            _log.warning(
                "semantic_ann_skipped", count=len(defs), reason="usearch is not installed: exact search"
            )
    tmp = directory / "CURRENT.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, directory / "CURRENT.json")
    for f in directory.iterdir():
        m = _GENERATION_FILE.match(f.name)
        if m and int(m.group(1)) != gen:
            f.unlink(missing_ok=True)
    return meta


def build_vectors(
    native: Any,
    index_dir: Path,
    root: Path,
    *,
    progress: Callable[[int, int], object] | None = None,
    incremental: bool = False,
    max_tokens: int = DOC_TOKENS,
) -> dict[str, Any]:
    """Embed every definition of the index (or, with `incremental`, only those whose document is not
    already in the live generation) and write a new generation. Returns its figures."""
    started = time.perf_counter()
    directory = index_dir / SEMANTIC_DIRNAME
    previous: dict[str, np.ndarray] = {}
    if incremental:
        old = VectorStore.load(index_dir)
        if old is not None and old.count:
            dense = old.vectors.astype(np.float32) * old.scales[:, None]
            previous = {h: dense[i] for i, h in enumerate(old.hashes)}
    defs = list(iter_definitions(native))
    defs.sort(key=lambda d: (d.path, d.def_start, d.name))
    docs: list[str] = []
    cache: dict[str, bytes] = {}
    for d in defs:
        src = cache.get(d.path)
        if src is None:
            cache.clear()  # definitions come sorted by path: one file in memory at a time
            try:
                src = (root / d.path).read_bytes()
            except OSError:
                src = b""
            cache[d.path] = src
        docs.append(definition_document(d, src))
    hashes = [_doc_hash(doc, max_tokens) for doc in docs]
    vecs = np.zeros((len(defs), DIM), dtype=np.float32)
    todo = [i for i, h in enumerate(hashes) if h not in previous]
    for i, h in enumerate(hashes):
        if h in previous:
            vecs[i] = previous[h]
    embed_started = time.perf_counter()
    tokens = 0
    if todo:
        embedder = get_embedder()
        new, tokens = embedder.embed([docs[i] for i in todo], max_tokens=max_tokens, progress=progress)
        vecs[todo] = new
        device = embedder.device
    else:
        device = "none"
    embed_s = time.perf_counter() - embed_started
    figures = {
        "embedded": len(todo),
        "reused": len(defs) - len(todo),
        "tokens": tokens,
        "max_tokens": max_tokens,
        "tokens_per_chunk": round(tokens / len(todo), 1) if todo else 0.0,
        "embed_seconds": round(embed_s, 3),
        "chunks_per_second": round(len(todo) / embed_s, 1) if todo and embed_s > 0 else 0.0,
        "device": device,
    }
    figures["seconds"] = round(time.perf_counter() - started, 3)
    meta = _write_generation(directory, defs, hashes, vecs, figures)
    _log.info(
        "semantic_built", index_dir=str(index_dir), **{k: v for k, v in meta.items() if k != "model_sha256"}
    )
    return meta


def remove_vectors(index_dir: Path) -> None:
    """Drop the vectors of `index_dir` (an index rebuilt without them must not use stale ones)."""
    directory = index_dir / SEMANTIC_DIRNAME
    if not directory.is_dir():
        return
    (directory / "CURRENT.json").unlink(missing_ok=True)
    for f in directory.iterdir():
        if _GENERATION_FILE.match(f.name) or f.name == "CURRENT.json.tmp":
            f.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        directory.rmdir()
