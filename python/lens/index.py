"""`Index`: the public face of an index on disk (`Hit` and `SearchResult` live in `lens.types`).

An `Index` wraps the native core (`lens._lens.NativeIndex`). Queries go through `lens.pipeline`, which
decides the path (new or baseline) from the canary, the flags and the SLO guard, takes one snapshot of
the index for the whole query, and times each stage. Layers: `types` (leaf) <- `guard`, `flags`,
`canary` <- `pipeline`, `symbols` <- `index` <- `lens`; nothing imports upward.
By default every index shares the process-wide guard and canary (`lens.guard`, `lens.canary`); assign
`idx.guard` / `idx.canary` to give one index its own.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from . import _lens, rerank
from ._discover import DEFAULT_INDEX_DIRNAME, index_dir_to_open
from ._log import get_logger
from ._state import GLOBAL_CANARY, GLOBAL_FLAGS, GLOBAL_GUARD, canary_for
from ._validate import check_grep, check_search
from ._validate import names as _names
from .errors import QueryError
from .flags import Flags

# Imported where they are used: opening an index and grepping (the `lens` command's grep) load neither
# the search pipeline, Stage-B's helpers, progress bars nor the dashboard.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, Literal

    from .canary import Canary
    from .guard import Guard
    from .pipeline import StageHook
    from .progress import ProgressBar
    from .symbols import SymbolName
    from .types import Hit, Mode, SearchResult

# `Hit` and `SearchResult` are re-exported from `lens.types` for callers that import them from here.
__all__ = ["DEFAULT_INDEX_DIRNAME", "Hit", "Index", "SearchResult"]


def __getattr__(name: str) -> object:
    if name in ("Hit", "SearchResult"):
        from . import types

        return getattr(types, name)
    raise AttributeError(f"module 'lens.index' has no attribute {name!r}")


_log = get_logger("lens.index")
_symlog = get_logger("lens.symbols")

#: `staleness()` walks the tree at most once per this many seconds (unless asked with `max_age_s`).
STALE_CHECK_S = 5.0

#: With `group_by="file"`, how many lines per wanted file are ranked before grouping.
GROUP_DEPTH = 10

#: `True` draws a bar on stderr when it is a terminal (else one line per phase); a callable is called as
#: `progress(done, total, phase)` (or `progress(done, total)` if it takes two arguments) per step of each
#: phase: "reading" files, "symbols" and "terms" (the definition index) count bytes, "embedding" (when
#: `semantic`) counts definitions; each phase counts from 0 to its own total.
Progress = bool | Callable[[int, int, str], object] | Callable[[int, int], object]


# `lens.pipeline.run_search`, imported on the first search (not at import: see above) and kept here, so
# that a search does not pay for an import statement's lookups each time.
_run_search: Callable[..., SearchResult] | None = None


def _load_pipeline() -> Callable[..., SearchResult]:
    global _run_search
    from .pipeline import run_search

    _run_search = run_search
    return run_search


def _name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise QueryError(f"a symbol name must be a non-empty str, not {name!r}")
    return name.strip()


def _reporter(
    progress: Progress, label: str
) -> tuple[Callable[[int, int, str], object] | None, ProgressBar | None]:
    from .progress import ProgressBar, as_reporter

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
        self.guard: Guard = GLOBAL_GUARD
        #: The process-wide canary when the host named a state directory, else this index directory's
        #: own (`lens.canary` module docs); the flags layer over its flags, so its kill switch holds here.
        self.canary: Canary = canary_for(Path(native.index_dir))
        self.flags = Flags(parent=self.canary.flags if self.canary is not GLOBAL_CANARY else GLOBAL_FLAGS)
        #: Per-index Stage-B / Stage-C hooks; they win over `lens.pipeline.register_stage`.
        self.stages: dict[str, StageHook] = {}
        rerank.attach(self)  # Stage-C, when this index has vectors and lens[semantic] is installed
        self._refresh_pending = False
        self._stale: tuple[float, dict[str, Any]] | None = None
        self._stale_lock = threading.Lock()

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
        semantic: bool | None = None,
    ) -> Index:
        """Index every text file under `root` (gitignore-aware, hidden files and symlinks skipped,
        binary files and files over `max_file_bytes` skipped and counted) into `index_dir`
        (default `root/.lens`). The previous index there stays usable until the new one is complete.

        Symbols (Stage-B) are extracted with tree-sitter unless `symbols=False`; `scip` names a SCIP
        index to ingest as precise data in the same commit (a malformed one raises `SymbolDataError`
        and leaves the previous index in place).

        `index_dir` must not be the root or contain it, and must be new, empty or a lens index
        (`IndexLocationError` otherwise); while another writer holds the index's lock this waits up to
        `LENS_WRITER_TIMEOUT_S` seconds, then raises `IndexBusyError`.

        `semantic` (Stage-C) embeds every definition with the shipped model. By default (None) it is on
        when the `lens[semantic]` extra is installed and `symbols` is on, unless the environment sets
        `LENS_SEMANTIC=0`; `semantic=False` builds, and leaves, no vectors; `semantic=True` needs the
        extra (`SemanticUnavailableError`, saying what to install, otherwise)."""
        if semantic is None:
            semantic = symbols and rerank.enabled_by_default()
        elif semantic:
            rerank.require()
            if not symbols:
                raise ValueError("semantic=True needs symbols=True (Stage-C embeds Stage-B's definitions)")
        root_path = Path(root)
        if not root_path.exists():
            raise FileNotFoundError(2, "No such file or directory", str(root_path))
        if not root_path.is_dir():
            raise NotADirectoryError(20, "Not a directory", str(root_path))
        if max_file_bytes <= 0:
            raise ValueError("max_file_bytes must be positive")
        out = Path(index_dir) if index_dir is not None else root_path / DEFAULT_INDEX_DIRNAME
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(20, "Not a directory (index_dir)", str(out))
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
        if semantic:
            rerank.build_for(idx, progress)
        else:
            rerank.remove_vectors(out)
            idx.stages.pop("stage_c", None)
        return idx

    @classmethod
    def open(cls, index_dir: str | os.PathLike[str], *, refresh: Literal["auto", "never"] = "never") -> Index:
        """Open an existing index: its directory, or the repository root it was built in (`root/.lens`).
        Raises `IndexCorruptError` for a damaged or foreign directory, `IndexVersionError` for one
        written by a newer lens, `FileNotFoundError` if it is missing.

        `refresh="auto"` refreshes the index before its first query (search or grep) when any file under
        the root moved since the last build or refresh (`staleness()`); "never" (the default) leaves it
        as it is."""
        if refresh not in ("auto", "never"):
            raise ValueError(f"refresh takes 'auto' or 'never', not {refresh!r}")
        idx = cls(_lens.NativeIndex.open(index_dir_to_open(index_dir)))
        idx._refresh_pending = refresh == "auto"
        return idx

    # -- queries ------------------------------------------------------------------------------
    def search(
        self,
        query: str,
        k: int = 10,
        *,
        mode: Mode = "auto",
        budget_ms: float | None = None,
        key: str | bytes | None = None,
        paths: str | Sequence[str] | None = None,
        lang: str | Sequence[str] | None = None,
        group_by: Literal["file"] | None = None,
    ) -> SearchResult:
        """Ranked search. `query` may use the query language (`file:`, `lang:`, `sym:`, `case:yes`,
        quoted phrases, `-term`, `or`; see the README); malformed syntax raises `QueryError` with the
        position. `paths` are gitignore-style globs over root-relative paths (`!` excludes) and `lang`
        languages (`"python"`, or ripgrep's type names); both narrow the files before anything is scored.
        `mode` is "lex" (Stage-A alone), "symbol", "hybrid" or "auto". `key` (a user or session id) decides
        the canary split; without one the query text does.

        `group_by="file"` returns the best `k` files instead of lines: `result.groups` holds each file's
        hits and `matches`, how many of the file's lines are among the best `k * GROUP_DEPTH` hits (the
        search ranks `GROUP_DEPTH` times deeper before grouping: a lower bound once a file holds more than
        that depth reached; see `FileGroup`), and `result.hits` those hits in turn."""
        run_search = _run_search or _load_pipeline()
        if self._refresh_pending:
            self._auto_refresh()
        if group_by is None:
            return run_search(self, query, k, mode=mode, budget_ms=budget_ms, key=key, paths=paths, lang=lang)
        from .pipeline import MODES

        if group_by != "file":
            raise QueryError(f"group_by takes 'file' or None, not {group_by!r}")
        check_search(query, k, mode, MODES, budget_ms)
        deep = min(k * GROUP_DEPTH, _lens.MAX_K)
        res = run_search(self, query, deep, mode=mode, budget_ms=budget_ms, key=key, paths=paths, lang=lang)
        from dataclasses import replace

        from .types import group_by_file

        groups = group_by_file(res.hits, k)
        return replace(res, hits=[h for g in groups for h in g.hits], groups=groups)

    def grep(
        self,
        pattern: str,
        *,
        regex: bool = True,
        ignore_case: bool = False,
        word: bool = False,
        limit: int | None = None,
        paths: str | Sequence[str] | None = None,
        lang: str | Sequence[str] | None = None,
    ) -> list[Hit]:
        """Every matching line (first match on each), in path then offset order, like `rg -n`; `paths`
        (gitignore-style globs, `!` excludes) and `lang` narrow the files searched, as in `search`."""
        check_grep(pattern, limit)
        self._auto_refresh()
        native = bool(self.flags["stage_a.native"])
        rows = self._native.grep(
            pattern, regex, ignore_case, word, limit, native, _names("paths", paths), _names("lang", lang)
        )
        from .types import hits_from_rows

        return hits_from_rows(rows)

    # -- Stage-B: symbols (lens.symbols) -------------------------------------------------------
    def definitions(self, name: str) -> list[Hit]:
        """Every definition of `name` (exact), precise (SCIP / LSIF) first, then in path order."""
        from .symbols import rows_to_hits

        return rows_to_hits(self._native.definitions(_name(name)))

    def references(self, name: str, *, limit: int = 1000) -> list[Hit]:
        """References to `name` (exact), precise first, then in path order, at most `limit`."""
        if limit < 0:
            raise ValueError("limit must be >= 0")
        from .symbols import rows_to_hits

        return rows_to_hits(self._native.references(_name(name), limit))

    def symbols(
        self, prefix: str | None = None, *, fuzzy: str | None = None, limit: int = 50
    ) -> list[SymbolName]:
        """Symbol names starting with `prefix` (also by identifier sub-tokens: "parse_h" finds
        `parseHeaders`), or within two edits of `fuzzy` (a Levenshtein automaton), at most `limit`."""
        if (prefix is None) == (fuzzy is None):
            raise ValueError("pass exactly one of prefix= or fuzzy=")
        if limit < 0:
            raise ValueError("limit must be >= 0")
        text = prefix if prefix is not None else fuzzy
        assert text is not None
        rows = self._native.symbols(text, fuzzy is not None, limit)
        from .symbols import SymbolName

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
        if p.is_dir():
            raise IsADirectoryError(21, f"Is a directory, not a {fmt.upper()} file", str(p))
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
        with self._stale_lock:
            self._stale = None
        rerank.refresh_for(self, progress)  # re-embeds only definitions whose documents changed
        return {k: int(v) for k, v in counts.items()}

    def staleness(self, *, max_age_s: float = STALE_CHECK_S) -> dict[str, Any]:
        """Files added, changed or removed under the root since the last build or refresh: `added`,
        `changed`, `removed`, `stale` (any of them), up to five `examples` of each kind, and `checked_at`
        (a `time.time()`). Cheap: one walk comparing sizes and mtimes with the file table, reading no
        file; a result younger than `max_age_s` seconds is returned again without walking."""
        with self._stale_lock:
            now = time.time()
            if self._stale is not None and now - self._stale[0] < max_age_s:
                return dict(self._stale[1])
            s: dict[str, Any] = dict(self._native.staleness())
            s["stale"] = bool(s["added"] or s["changed"] or s["removed"])
            s["checked_at"] = now
            self._stale = (now, s)
            return dict(s)

    def _auto_refresh(self) -> None:
        """`Index.open(..., refresh="auto")`: before the first query, refresh if anything moved."""
        if not self._refresh_pending:
            return
        self._refresh_pending = False
        if self.staleness(max_age_s=0)["stale"]:
            self.refresh()

    def stats(self, *, stale: bool = False) -> dict[str, Any]:
        """Files, bytes, skipped files (by reason, with examples), index bytes, build seconds,
        `build_phases` (each step of the last full build as `{"wall_s", "cpu_s"}`, the CPU being the
        whole process's), format version, and what searches have done so far; with `stale=True` also
        `stale`, the files moved since the last build or refresh (`staleness()`, at most one walk per
        `STALE_CHECK_S`)."""
        s = dict(self._native.stats())
        if stale:
            s["stale"] = self.staleness()
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
