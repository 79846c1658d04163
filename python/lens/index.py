"""`Index`, `Hit` and `SearchResult`: the public face of an index on disk.

An `Index` wraps the native core (`lens._lens.NativeIndex`). Queries go through `lens.pipeline`, which
decides the path (new or baseline) from the canary, the flags and the SLO guard, and times each stage.
By default every index shares the process-wide guard and canary (`lens.guard`, `lens.canary`); assign
`idx.guard` / `idx.canary` to give one index its own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _lens
from ._log import get_logger
from ._state import GLOBAL_CANARY, GLOBAL_FLAGS, GLOBAL_GUARD
from .canary import Canary
from .errors import QueryError
from .flags import Flags
from .guard import Guard
from .progress import ProgressBar, as_reporter

if TYPE_CHECKING:
    from .pipeline import StageHook
    from .symbols import SymbolName

__all__ = ["DEFAULT_INDEX_DIRNAME", "Hit", "Index", "SearchResult"]

_log = get_logger("lens.index")
_symlog = get_logger("lens.symbols")

#: Where `Index.build(root)` puts the index when no `index_dir` is given: inside the root, hidden, and
#: left out of the walk.
DEFAULT_INDEX_DIRNAME = ".lens"

#: `True` draws a bar on stderr when it is a terminal (else one line per phase); a callable is called as
#: `progress(done_bytes, total_bytes, phase)` (or `progress(done_bytes, total_bytes)` if it takes two
#: arguments) per step of each phase ("reading" files, then "symbols"), each counting from 0 to its total.
Progress = bool | Callable[[int, int, str], object] | Callable[[int, int], object]


@dataclass(frozen=True, slots=True)
class Hit:
    """One match. Offsets are exact: `byte_start..byte_end` in the file, `line` 1-based, `column`
    0-based in code points, both of `byte_start`."""

    path: str
    line: int
    column: int
    byte_start: int
    byte_end: int
    text: str
    score: float
    why: tuple[str, ...]
    symbol: Any = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column + 1}:{self.text}"


@dataclass(frozen=True, slots=True)
class SearchResult:
    """What `Index.search` returns: hits best first, per-stage timings (ms) and whether a budget or
    limit cut the search short."""

    hits: list[Hit]
    timings_ms: dict[str, float]
    truncated: bool
    mode: str
    path: str = "native"
    info: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Any:
        return iter(self.hits)

    def __len__(self) -> int:
        return len(self.hits)


def _hits(rows: Sequence[tuple[Any, ...]]) -> list[Hit]:
    return [Hit(*row) for row in rows]


def _name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise QueryError(f"a symbol name must be a non-empty str, not {name!r}")
    return name.strip()


def _reporter(
    progress: Progress, label: str
) -> tuple[Callable[[int, int, str], object] | None, ProgressBar | None]:
    if progress is True:
        bar = ProgressBar(label)
        return bar, bar
    if callable(progress):
        return as_reporter(progress), None
    return None, None


class Index:
    """A code-search index over one source tree."""

    def __init__(self, native: _lens.NativeIndex) -> None:
        self._native = native
        self.flags = Flags(parent=GLOBAL_FLAGS)
        self.guard: Guard = GLOBAL_GUARD
        self.canary: Canary = GLOBAL_CANARY
        #: Per-index Stage-B / Stage-C hooks; they win over `lens.pipeline.register_stage`.
        self.stages: dict[str, StageHook] = {}

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        root: str | os.PathLike[str],
        index_dir: str | os.PathLike[str] | None = None,
        *,
        max_file_bytes: int = 1 << 20,
        progress: Progress = False,
        exclude: Sequence[str] = (),
        scip: str | os.PathLike[str] | None = None,
        symbols: bool = True,
    ) -> Index:
        """Index every text file under `root` (gitignore-aware, hidden files and symlinks skipped,
        binary files and files over `max_file_bytes` skipped and counted) into `index_dir`
        (default `root/.lens`). The previous index there stays usable until the new one is complete.

        Symbols (Stage-B) are extracted with tree-sitter unless `symbols=False`; `scip` names a SCIP
        index to ingest as precise data in the same commit (a malformed one raises `SymbolDataError`
        and leaves the previous index in place)."""
        root_path = Path(root)
        if not root_path.exists():
            raise FileNotFoundError(2, "No such file or directory", str(root_path))
        if not root_path.is_dir():
            raise NotADirectoryError(20, "Not a directory", str(root_path))
        if max_file_bytes <= 0:
            raise ValueError("max_file_bytes must be positive")
        out = Path(index_dir) if index_dir is not None else root_path / DEFAULT_INDEX_DIRNAME
        report, bar = _reporter(progress, "indexing")
        started = time.perf_counter()
        try:
            native = _lens.NativeIndex.build(
                str(root_path),
                str(out),
                max_file_bytes,
                report,
                [str(g) for g in exclude],
                str(scip) if scip is not None else None,
                symbols,
            )
        finally:
            if bar is not None:
                bar.close()
        idx = cls(native)
        stats = native.stats()
        _log.info(
            "index_built",
            root=str(root_path),
            index_dir=str(out),
            files=stats["files"],
            bytes=stats["bytes"],
            seconds=round(time.perf_counter() - started, 3),
        )
        if symbols:
            sym = native.symbol_stats()
            _symlog.info(
                "symbols_built",
                index_dir=str(out),
                definitions=sym["definitions"],
                references=sym["references"],
                symbol_coverage=round(sym["symbol_coverage"], 4),
                precise_coverage=round(sym["precise_coverage"], 4),
                seconds=sym["build_seconds"],
            )
        return idx

    @classmethod
    def open(cls, index_dir: str | os.PathLike[str]) -> Index:
        """Open an existing index: its directory, or the repository root it was built in (`root/.lens`).
        Raises `IndexCorruptError` for a damaged or foreign directory, `IndexVersionError` for one
        written by a newer lens, `FileNotFoundError` if it is missing."""
        from ._discover import resolve_index_dir

        path = resolve_index_dir(index_dir)
        if not path.exists():
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return cls(_lens.NativeIndex.open(str(path)))

    # -- queries ------------------------------------------------------------------------------
    def search(
        self,
        query: str,
        k: int = 10,
        *,
        mode: str = "auto",
        budget_ms: float | None = None,
        key: str | bytes | None = None,
    ) -> SearchResult:
        """Ranked search. `mode` is "lex" (Stage-A alone), "symbol", "hybrid" or "auto". `key` (a user or
        session id) decides the canary split; without one the query text does."""
        from .pipeline import run_search

        return run_search(self, query, k, mode=mode, budget_ms=budget_ms, key=key)

    def grep(
        self,
        pattern: str,
        *,
        regex: bool = True,
        ignore_case: bool = False,
        word: bool = False,
        limit: int | None = None,
    ) -> list[Hit]:
        """Every matching line (first match on each), in path then offset order, like `rg -n`."""
        if not isinstance(pattern, str):
            raise QueryError(f"pattern must be a str, not {type(pattern).__name__}")
        if limit is not None and limit < 0:
            raise ValueError("limit must be >= 0")
        native = bool(self.flags["stage_a.native"])
        rows = self._native.grep(pattern, regex, ignore_case, word, limit, native)
        return _hits(rows)

    # -- Stage-B: symbols (lens.symbols) -------------------------------------------------------
    def definitions(self, name: str) -> list[Hit]:
        """Every definition of `name` (exact), precise (SCIP / LSIF) first, then in path order."""
        from .symbols import rows_to_hits

        return rows_to_hits(self._native.definitions(_name(name)))

    def references(self, name: str, *, limit: int = 1000) -> list[Hit]:
        """References to `name` (exact), precise first, then in path order, at most `limit`."""
        from .symbols import rows_to_hits

        if limit < 0:
            raise ValueError("limit must be >= 0")
        return rows_to_hits(self._native.references(_name(name), limit))

    def symbols(
        self, prefix: str | None = None, *, fuzzy: str | None = None, limit: int = 50
    ) -> list[SymbolName]:
        """Symbol names starting with `prefix` (also by identifier sub-tokens: "parse_h" finds
        `parseHeaders`), or within two edits of `fuzzy` (a Levenshtein automaton), at most `limit`."""
        from .symbols import SymbolName

        if (prefix is None) == (fuzzy is None):
            raise ValueError("pass exactly one of prefix= or fuzzy=")
        if limit < 0:
            raise ValueError("limit must be >= 0")
        text = prefix if prefix is not None else fuzzy
        assert text is not None
        rows = self._native.symbols(text, fuzzy is not None, limit)
        return [SymbolName(*row) for row in rows]

    def attach_scip(self, path: str | os.PathLike[str]) -> dict[str, int]:
        """Ingest a SCIP index as precise symbol data. Raises `SymbolDataError` (the index unchanged)
        when the file is malformed."""
        return self._attach("scip", path)

    def attach_lsif(self, path: str | os.PathLike[str]) -> dict[str, int]:
        """Ingest an LSIF dump (JSON lines, LSIF 0.4-0.6) as precise symbol data. Raises
        `SymbolDataError` (the index unchanged) when the file is malformed."""
        return self._attach("lsif", path)

    def _attach(self, fmt: str, path: str | os.PathLike[str]) -> dict[str, int]:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(2, "No such file or directory", str(p))
        started = time.perf_counter()
        counts = {k: int(v) for k, v in self._native.attach(fmt, str(p)).items()}
        seconds = round(time.perf_counter() - started, 3)
        _symlog.info("precise_attached", format=fmt, path=str(p), seconds=seconds, **counts)
        return counts

    def cache_stats(self) -> dict[str, Any]:
        """The Stage-B LRU caches (symbol lookups and compiled patterns): hits, misses, hit_rate,
        evictions, bytes (totals, then `lookups` and `patterns` apart), and
        `pattern_compile_time_ms`, the time spent compiling patterns that missed the cache."""
        return dict(self._native.cache_stats())

    # -- maintenance --------------------------------------------------------------------------
    def refresh(self, *, progress: Progress = False) -> dict[str, int]:
        """Re-index the files added, changed or removed since the last build or refresh, and swap
        the result in atomically. Returns counts of added / changed / removed / unchanged files."""
        report, bar = _reporter(progress, "refreshing")
        try:
            counts = self._native.refresh(report)
        finally:
            if bar is not None:
                bar.close()
        _log.info("index_refreshed", index_dir=str(self.index_dir), **counts)
        return {k: int(v) for k, v in counts.items()}

    def stats(self) -> dict[str, Any]:
        """Files, bytes, skipped files (by reason, with examples), index bytes, build seconds,
        format version, and what searches have done so far."""
        s = dict(self._native.stats())
        counters = self._native.counters()
        native = counters["native_searches"]
        s["searches"] = counters
        s["early_termination_rate"] = counters["early_terminated"] / native if native else None
        # Stage-B coverage, computed from the symbol file: the share of indexed source files in a
        # supported language with any symbol data, and the share with precise (SCIP / LSIF) data.
        sym = dict(self._native.symbol_stats())
        s["symbols"] = sym
        s["symbol_coverage"] = sym["symbol_coverage"]
        s["precise_coverage"] = sym["precise_coverage"]
        return s

    def dashboard(self) -> dict[str, Any]:
        """The runbook's dashboard document for this index's guard, canary and flags."""
        from .dashboard import build_dashboard

        return build_dashboard(self.guard, self.canary, self.flags)

    def metrics_text(self) -> str:
        """The same metrics in the Prometheus text format."""
        from .dashboard import render_metrics

        return render_metrics(self.guard, self.canary, self.flags)

    def verify(self) -> None:
        """Check every checksum of the index; raises `IndexCorruptError` on damage."""
        self._native.verify()

    @property
    def index_dir(self) -> Path:
        return Path(self._native.index_dir)

    @property
    def root(self) -> Path:
        return Path(self._native.root)

    def __repr__(self) -> str:
        return f"Index(root={str(self.root)!r}, index_dir={str(self.index_dir)!r})"
