"""The embedding model: all-MiniLM-L6-v2 (int8, ONNX) run by onnxruntime, tokenised by `tokenizers`.

Both come with the `lens[semantic]` extra and are imported only here, and only when a model is first
needed, so `import lens` stays light without them. The model file and its tokenizer ship inside the
package (`model/`, made by `scripts/make_model.py`); nothing is downloaded. Sentence vectors are the
mean of the last hidden states over the attention mask, L2-normalised, so a dot product is a cosine.

Questions are embedded by the same model, then moved by the query adapter when one ships beside it
(`model/query_adapter.npy`, made by `scripts/train_query_adapter.py`): a DIM x DIM matrix W, the query
vector becomes W q, L2-normalised. It was fit so that docstring sentences land nearer the vectors of the
code they describe; definition vectors are untouched, so an index built before it still works.
`LENS_QUERY_ADAPTER=0` turns it off.

The CUDA provider is used when onnxruntime offers it (the `onnxruntime-gpu` wheel on a machine with an
NVIDIA GPU); `LENS_EMBED_PROVIDER=cpu` forces the CPU.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .extra import MODEL_DIR, available, require

__all__ = [
    "DIM",
    "MAX_TOKENS",
    "MODEL_DIR",
    "Embedder",
    "available",
    "get_embedder",
    "load_query_adapter",
    "model_sha256",
    "require",
]

#: MiniLM's training length: documents are cut here.
MAX_TOKENS = 128
DIM = 384


_SHA: dict[str, str] = {}


def model_sha256() -> str:
    """The shipped model file's sha256 (vectors made by another model are not used)."""
    if "model" not in _SHA:
        h = hashlib.sha256()
        with (MODEL_DIR / "model.onnx").open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _SHA["model"] = h.hexdigest()
    return _SHA["model"]


def load_query_adapter(model_dir: Path = MODEL_DIR) -> np.ndarray | None:
    """The shipped query adapter as float32 `(DIM, DIM)`, or None: none ships, `LENS_QUERY_ADAPTER=0`, or
    it was fit for another model file (its manifest names the model's sha256)."""
    if os.environ.get("LENS_QUERY_ADAPTER", "") == "0":
        return None
    path, manifest_path = model_dir / "query_adapter.npy", model_dir / "query_adapter.json"
    if not (path.is_file() and manifest_path.is_file()):
        return None  # without its manifest there is no telling which model it was fit for
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("model_sha256") != model_sha256():
        return None
    w: np.ndarray = np.load(path).astype(np.float32)
    if w.shape != (DIM, DIM):
        from ..errors import SemanticUnavailableError

        raise SemanticUnavailableError(f"{path}: a query adapter is {DIM} x {DIM}, not {w.shape}")
    return w


class Embedder:
    """One loaded model. Thread-safe: onnxruntime sessions may be run concurrently."""

    def __init__(self, threads: int | None = None, provider: str | None = None) -> None:
        require()
        import onnxruntime as ort  # type: ignore[import-untyped]
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
        self._tok.enable_truncation(MAX_TOKENS)
        # The shipped tokenizer.json pads every text to 128 tokens; batches are padded here, to their
        # longest member, instead.
        self._tok.no_padding()
        self.providers = _providers(ort.get_available_providers(), provider)
        # One session, one thread per run: a query (10-20 tokens) is too little work to split across
        # threads, and a build runs `workers` batches at once from a thread pool (a session may be run
        # concurrently; onnxruntime releases the GIL), which cost 17 CPU-ms a 64-token document against
        # 25 with two intra-op threads per batch (benches/embed_speed.py). Spinning is off: on a shared
        # machine a spinning pool burns the CPU another process needs.
        self.workers = threads or _build_threads()
        self._sess = self._session(ort, 1, self.providers)
        self.providers = list(self._sess.get_providers())
        self._inputs = {i.name for i in self._sess.get_inputs()}
        self.query_adapter = load_query_adapter()
        self._qcache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._qlock = threading.Lock()
        self.query_cache_size = 1024
        self.query_cache_hits = 0
        self.query_cache_misses = 0

    @staticmethod
    def _session(ort: Any, threads: int, providers: Sequence[str]) -> Any:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.log_severity_level = 3
        return ort.InferenceSession(str(MODEL_DIR / "model.onnx"), so, providers=providers)

    @property
    def device(self) -> str:
        return "cuda" if self.providers and self.providers[0] == "CUDAExecutionProvider" else "cpu"

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self._tok.encode_batch(list(texts))]

    def embed(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 8,
        max_tokens: int = MAX_TOKENS,
        progress: Callable[[int, int], object] | None = None,
    ) -> tuple[np.ndarray, int]:
        """(float32 `(len(texts), DIM)` unit vectors, tokens run through the model). Each text is cut at
        `max_tokens` tokens (its closing [SEP] kept); identical texts are run once; texts are sorted by
        length and each batch is padded only to its longest member, so padding costs little; `workers`
        batches run at once. `progress(done, total)` is called after each batch, in order."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32), 0
        first: dict[str, int] = {}
        twin = [first.setdefault(t, i) for i, t in enumerate(texts)]
        unique = list(first.values())
        encs = self._tok.encode_batch([texts[i] for i in unique])
        ids_of = []
        for e in encs:
            ids = e.ids
            if len(ids) > max_tokens:
                ids = [*ids[: max_tokens - 1], ids[-1]]
            ids_of.append(ids)
        if progress is not None:
            progress(0, len(texts))  # a phase of its own, counted from 0 like the native ones
        order = sorted(range(len(ids_of)), key=lambda j: len(ids_of[j]))
        batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
        tokens = sum(len(ids) for ids in ids_of)
        vecs = np.zeros((len(unique), DIM), dtype=np.float32)
        done = len(texts) - len(unique)  # the twins cost nothing

        def run(rows: list[int]) -> np.ndarray:
            width = max(len(ids_of[j]) for j in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, j in enumerate(rows):
                n = len(ids_of[j])
                ids[r, :n] = ids_of[j]
                mask[r, :n] = 1
            return self._run(ids, mask)

        workers = 1 if self.device == "cuda" or len(batches) < 2 else min(self.workers, len(batches))
        if workers == 1:
            results: Any = map(run, batches)
        else:
            pool = ThreadPoolExecutor(workers, thread_name_prefix="lens-embed")
            results = pool.map(run, batches)  # in order; at most `workers` batches run at once
        try:
            for rows, out in zip(batches, results, strict=True):
                vecs[rows] = out
                done += len(rows)
                if progress is not None:
                    progress(done, len(texts))
        finally:
            if workers > 1:
                pool.shutdown(cancel_futures=True)
        return vecs[_slots(twin, unique)], tokens

    def set_query_adapter(self, adapter: np.ndarray | None) -> None:
        """Replace the query adapter (None: questions embed as documents do); empties the query cache."""
        if adapter is not None and adapter.shape != (DIM, DIM):
            raise ValueError(f"a query adapter is {DIM} x {DIM}, not {adapter.shape}")
        with self._qlock:
            self.query_adapter = None if adapter is None else np.asarray(adapter, dtype=np.float32)
            self._qcache.clear()

    def embed_query(self, text: str) -> np.ndarray:
        """One query's vector (moved by the query adapter, if any), through an LRU cache of
        `query_cache_size` entries."""
        with self._qlock:
            cached = self._qcache.get(text)
            if cached is not None:
                self._qcache.move_to_end(text)
                self.query_cache_hits += 1
                return cached
            self.query_cache_misses += 1
            adapter = self.query_adapter
        vec: np.ndarray = self.embed([text], batch_size=1)[0][0]
        if adapter is not None:
            vec = adapter @ vec
            vec = (vec / max(float(np.linalg.norm(vec)), 1e-12)).astype(np.float32)
        vec.setflags(write=False)
        with self._qlock:
            if adapter is not self.query_adapter:
                return vec  # the adapter was replaced meanwhile: not cached under the new one
            self._qcache[text] = vec
            while len(self._qcache) > self.query_cache_size:
                self._qcache.popitem(last=False)
        return vec

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feed: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = np.asarray(self._sess.run(None, feed)[0], dtype=np.float32)
        m = mask[..., None].astype(np.float32)
        vec = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        norm = np.linalg.norm(vec, axis=1, keepdims=True)
        out: np.ndarray = (vec / np.maximum(norm, 1e-12)).astype(np.float32)
        return out


def _slots(twin: list[int], unique: list[int]) -> np.ndarray:
    """For each text, the row of its first occurrence among the unique texts."""
    slot = {i: r for r, i in enumerate(unique)}
    return np.fromiter((slot[t] for t in twin), dtype=np.int64, count=len(twin))


def _build_threads() -> int:
    """Batches embedded at once: `LENS_EMBED_THREADS`, else the CPUs this process may use."""
    env = os.environ.get("LENS_EMBED_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _providers(offered: Sequence[str], forced: str | None) -> list[str]:
    choice = (forced or os.environ.get("LENS_EMBED_PROVIDER", "")).lower()
    if choice != "cpu" and "CUDAExecutionProvider" in offered:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


_EMBEDDER: Embedder | None = None
_LOCK = threading.Lock()


def get_embedder() -> Embedder:
    """The process-wide embedder, loaded on first use."""
    global _EMBEDDER
    if _EMBEDDER is None:
        with _LOCK:
            if _EMBEDDER is None:
                _EMBEDDER = Embedder()
    return _EMBEDDER
