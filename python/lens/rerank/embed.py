"""The embedding model: all-MiniLM-L6-v2 (int8, ONNX) run by onnxruntime, tokenised by `tokenizers`.

Both come with the `lens[semantic]` extra and are imported only here, and only when a model is first
needed, so `import lens` stays light without them. The model file and its tokenizer ship inside the
package (`model/`, made by `scripts/make_model.py`); nothing is downloaded. Sentence vectors are the
mean of the last hidden states over the attention mask, L2-normalised, so a dot product is a cosine.

The CUDA provider is used when onnxruntime offers it (the `onnxruntime-gpu` wheel on a machine with an
NVIDIA GPU); `LENS_EMBED_PROVIDER=cpu` forces the CPU.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
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
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            so.intra_op_num_threads = threads
        so.log_severity_level = 3
        self.providers = _providers(ort.get_available_providers(), provider)
        self._sess = ort.InferenceSession(str(MODEL_DIR / "model.onnx"), so, providers=self.providers)
        self.providers = list(self._sess.get_providers())
        self._inputs = {i.name for i in self._sess.get_inputs()}
        self._qcache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._qlock = threading.Lock()
        self.query_cache_size = 1024
        self.query_cache_hits = 0
        self.query_cache_misses = 0

    @property
    def device(self) -> str:
        return "cuda" if self.providers and self.providers[0] == "CUDAExecutionProvider" else "cpu"

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self._tok.encode_batch(list(texts))]

    def embed(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        progress: Callable[[int, int], object] | None = None,
    ) -> tuple[np.ndarray, int]:
        """(float32 `(len(texts), DIM)` unit vectors, total tokens). Texts are batched by length, so
        padding costs little; `progress(done, total)` is called after each batch."""
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        if not texts:
            return out, 0
        encs = self._tok.encode_batch(list(texts))
        if progress is not None:
            progress(0, len(texts))  # a phase of its own, counted from 0 like the native ones
        order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
        tokens = 0
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            width = max(len(encs[i].ids) for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(encs[i].ids)
                ids[row, :n] = encs[i].ids
                mask[row, :n] = 1
                tokens += n
            out[idx] = self._run(ids, mask)
            if progress is not None:
                progress(min(s + batch_size, len(order)), len(order))
        return out, tokens

    def embed_query(self, text: str) -> np.ndarray:
        """One query's vector, through an LRU cache of `query_cache_size` entries."""
        with self._qlock:
            cached = self._qcache.get(text)
            if cached is not None:
                self._qcache.move_to_end(text)
                self.query_cache_hits += 1
                return cached
            self.query_cache_misses += 1
        vec: np.ndarray = self.embed([text], batch_size=1)[0][0]
        vec.setflags(write=False)
        with self._qlock:
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
