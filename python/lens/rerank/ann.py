"""Stage-C's approximate nearest neighbours for large vector sets: an HNSW graph from usearch (part of
the `lens[semantic]` extra), with exact rescoring.

Exact search reads every int8 row per query (`rust/vectors.rs`): about 1.6 CPU ms at 22 k vectors, but
about 60 at the Linux kernel's 0.92 M definitions, past Stage-C's 20 ms SLO (BENCHMARKS.md, Stage-C).
At `min_vectors()` vectors or more, a build also writes `ann-<gen>.usearch` beside the generation's
vectors (the same vectors, int8 in the graph, cosine metric). A query then asks the graph for
`max(CANDIDATES * n, MIN_CANDIDATES)` rows and rescores them exactly against the stored int8 vectors,
so the scores are the exact ones and only rows the graph missed can be lost. Without usearch, or for a
generation written without a graph, search stays exact.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._log import get_logger

__all__ = ["CANDIDATES", "MIN_CANDIDATES", "available", "build", "load", "min_vectors", "search"]

_log = get_logger("lens.rerank")

#: Vector count from which a build writes the graph (`LENS_ANN_MIN_VECTORS` overrides it). At ~6.5 CPU
#: ms per 100 k int8 rows, 200 k rows are ~13 ms of a 20 ms SLO that the query's model run shares.
DEFAULT_MIN_VECTORS = 200_000
#: The graph is asked for this many times the rows wanted (at least MIN_CANDIDATES), rescored exactly.
CANDIDATES = 4
MIN_CANDIDATES = 200
#: HNSW knobs (usearch's defaults are 16 / 128 / 64): a wider search for recall against exact.
CONNECTIVITY = 16
EXPANSION_ADD = 128
EXPANSION_SEARCH = 256


def available() -> bool:
    try:
        return importlib.util.find_spec("usearch") is not None
    except (ImportError, ValueError):
        return False


def min_vectors() -> int:
    env = os.environ.get("LENS_ANN_MIN_VECTORS", "").strip()
    return int(env) if env.isdigit() else DEFAULT_MIN_VECTORS


def _import_usearch() -> Any:
    """`usearch.index`, imported after onnxruntime: usearch 2.26's compiled module loaded first makes the
    later import of onnxruntime 1.32 crash the process (a segmentation fault, `python -c "import
    usearch.index; import onnxruntime"`), while the other order works. A host that imports usearch itself
    before lens's model must import onnxruntime first."""
    import onnxruntime  # type: ignore[import-untyped]  # noqa: F401
    import usearch.index

    return usearch.index


def _index(dim: int) -> Any:
    Index = _import_usearch().Index

    return Index(
        ndim=dim,
        metric="cos",
        dtype="i8",
        connectivity=CONNECTIVITY,
        expansion_add=EXPANSION_ADD,
        expansion_search=EXPANSION_SEARCH,
    )


def build(path: Path, vectors: np.ndarray, threads: int = 0) -> None:
    """Write the graph of `vectors` (row i has key i) to `path`."""
    index = _index(vectors.shape[1])
    if len(vectors):
        index.add(
            np.arange(len(vectors), dtype=np.uint64),
            np.ascontiguousarray(vectors, dtype=np.float32),
            threads=threads,
        )
    tmp = path.with_suffix(".tmp")
    index.save(str(tmp))
    os.replace(tmp, path)


def load(path: Path, dim: int) -> Any | None:
    """The graph at `path`, memory-mapped, or None when usearch is missing or the file is unusable."""
    if not available():
        _log.warning("semantic_ann_unavailable", path=str(path), reason="usearch is not installed")
        return None
    Index = _import_usearch().Index
    try:
        index = Index.restore(str(path), view=True)
    except (OSError, RuntimeError, ValueError) as e:
        index, reason = None, str(e)
    else:
        reason = "not a usearch index" if index is None else ""
    if index is None or index.ndim != dim:
        _log.warning("semantic_ann_unavailable", path=str(path), reason=reason or f"{index.ndim} dimensions")
        return None
    index.expansion_search = EXPANSION_SEARCH
    return index


def search(index: Any, query: np.ndarray, n: int) -> np.ndarray:
    """Candidate rows for the `n` nearest to `query` (to be rescored exactly)."""
    want = max(CANDIDATES * n, MIN_CANDIDATES)
    matches = index.search(np.ascontiguousarray(query, dtype=np.float32), want)
    keys: np.ndarray = np.asarray(matches.keys, dtype=np.int64)
    return keys
