"""Stage-C: semantic reranking of plain-English queries (the `lens[semantic]` extra).

- `gate`: is a query natural language? (pure Python, always available)
- `embed`: the shipped int8 all-MiniLM-L6-v2, run by onnxruntime (needs the extra)
- `store`: one document and vector per definition, in the index directory
- `stage`: the registered stage: gate, confidence cutoff, dense scoring, fusion

`Index.build` embeds definitions by default when the extra is installed (`enabled_by_default`;
`semantic=False` or `LENS_SEMANTIC=0` opts out, `semantic=True` without the extra raises
`SemanticUnavailableError`). An index opened with vectors gets the Stage-C hook; one without (or
without the extra) reports Stage-C "absent". `embed_index(index_dir)` embeds an existing index
directory (the entry point for other builders, such as a cluster's workers).
"""

from __future__ import annotations

import os
from pathlib import Path

from .extra import available, require

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Protocol

    from .gate import is_natural_language, nl_probability
else:
    Protocol = object


def __getattr__(name: str) -> object:
    # The gate (its regexes compiled at import) is loaded when a search asks, not when an index opens.
    if name in ("is_natural_language", "nl_probability"):
        from . import gate

        return getattr(gate, name)
    raise AttributeError(f"module 'lens.rerank' has no attribute {name!r}")


class Index(Protocol):
    """What Stage-C needs of an index: its directory, its root, its native handle and its per-index
    stages (a protocol, so this package never imports `lens.index`, which imports it)."""

    stages: dict[str, Any]
    _native: Any

    @property
    def index_dir(self) -> Path: ...

    @property
    def root(self) -> Any: ...


__all__ = [
    "attach",
    "available",
    "build_for",
    "embed_index",
    "enabled_by_default",
    "has_vectors",
    "is_natural_language",
    "nl_probability",
    "refresh_for",
    "remove_vectors",
    "require",
]


def enabled_by_default() -> bool:
    """Whether `Index.build(semantic=None)` embeds: the extra is installed and `LENS_SEMANTIC` is not "0"
    (an operator's or a test suite's way to keep builds lexical without touching every call)."""
    if os.environ.get("LENS_SEMANTIC", "").strip().lower() in ("0", "false", "no", "off"):
        return False
    return available()


def has_vectors(index_dir: Path) -> bool:
    return (Path(index_dir) / "semantic" / "CURRENT.json").is_file()


def attach(index: Index) -> None:
    """Give `index` the Stage-C hook when it has vectors and the extra is installed."""
    if "stage_c" in index.stages or not has_vectors(index.index_dir) or not available():
        return
    from .stage import SemanticStage

    index.stages["stage_c"] = SemanticStage(index.index_dir)


def _bar(progress: Any) -> tuple[Any, Any]:
    if progress is True:
        from ..progress import ProgressBar

        bar = ProgressBar("embedding", unit="defs")
        return bar, bar
    if callable(progress):
        from ..progress import as_reporter

        report = as_reporter(progress)
        return (lambda done, total: report(done, total, "embedding")), None
    return None, None


def build_for(
    index: Index, progress: Any = False, *, incremental: bool = False, max_tokens: int | None = None
) -> dict[str, Any]:
    """Embed `index`'s definitions (all, or with `incremental` the changed ones) and attach Stage-C."""
    from .store import DOC_TOKENS, build_vectors

    report, bar = _bar(progress)
    try:
        meta = build_vectors(
            index._native,
            index.index_dir,
            index.root,
            progress=report,
            incremental=incremental,
            max_tokens=max_tokens or DOC_TOKENS,
        )
    finally:
        if bar is not None:
            bar.close()
    attach(index)
    return meta


def embed_index(
    index_dir: str | os.PathLike[str], progress: Any = False, *, incremental: bool = True
) -> dict[str, Any]:
    """Embed the definitions of the lens index directory `index_dir` (by default only those whose
    document is not in its live vectors yet) and return the generation's figures (`CURRENT.json`).
    An `Index` opened on it afterwards runs Stage-C."""
    require()
    from .. import _lens
    from .store import DOC_TOKENS, build_vectors

    native = _lens.NativeIndex.open(str(index_dir))
    report, bar = _bar(progress)
    try:
        return build_vectors(
            native,
            Path(native.index_dir),
            Path(native.root),
            progress=report,
            incremental=incremental,
            max_tokens=DOC_TOKENS,
        )
    finally:
        if bar is not None:
            bar.close()


def refresh_for(index: Index, progress: Any = False) -> dict[str, Any] | None:
    """After `Index.refresh`: re-embed the definitions whose documents changed, if the index has vectors."""
    if not has_vectors(index.index_dir) or not available():
        return None
    return build_for(index, progress, incremental=True)


def remove_vectors(index_dir: Path) -> None:
    from .store import remove_vectors as _remove

    _remove(Path(index_dir))
