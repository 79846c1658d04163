"""Type stubs for the native core, `lens._lens`. Use the public API in `lens` instead."""

from collections.abc import Callable
from os import PathLike
from typing import Any

from .types import Hit

INDEX_FORMAT_VERSION: int
MAX_K: int
__version__: str

# (path, line, column, byte_start, byte_end, text, score, why)
HitTuple = tuple[str, int, int, int, int, str, float, tuple[str, ...]]
# (name, kind, def_path, def_start, def_end, def_line, container, precise)
SymbolTuple = tuple[str, str, str, int, int, int, str | None, bool]
# a HitTuple plus the symbol
SymHitTuple = tuple[str, int, int, int, int, str, float, tuple[str, ...], SymbolTuple | None]

def is_identifier(query: str) -> bool:
    """Whether Stage-B reads `query` as a symbol name (one identifier, possibly qualified with `.` or `::`,
    optionally followed by `()`; Unicode letters count as letters)."""

class NativeVectors:
    """Stage-C's exact dense search over one generation's int8 vectors (`rust/vectors.rs`); query
    vectors are the bytes of a float32 array."""

    @staticmethod
    def open(vectors: str, scales: str, dim: int) -> NativeVectors: ...
    @property
    def count(self) -> int: ...
    def scores(self, query: bytes) -> bytes: ...
    def scores_of(self, query: bytes, rows: list[int]) -> list[float]: ...
    def nearest(self, query: bytes, n: int) -> tuple[list[int], list[float]]: ...

class NativeQuery:
    """A ranked-search query parsed once (`parse_query`), with the filter it runs under."""

    @property
    def text(self) -> str:
        """The words and phrases to rank by (the `or` branches joined by a space)."""
    @property
    def branches(self) -> list[str]: ...
    @property
    def sym(self) -> str | None: ...
    @property
    def case(self) -> str: ...
    @property
    def negated(self) -> list[str]: ...
    @property
    def langs(self) -> list[str]: ...
    @property
    def narrows(self) -> bool:
        """Whether anything narrows the files (filters, `-term`, `case:yes`)."""
    def allows_path(self, path: str) -> bool:
        """Whether the path filters (paths=, lang=, file:, lang:) allow the root-relative `path`."""

def parse_query(
    query: str,
    paths: list[str] = ...,
    lang: list[str] = ...,
    not_lang: list[str] = ...,
    roots: list[tuple[str, str, bool]] = ...,
) -> NativeQuery:
    """Parse a query and its filters (gitignore-style `paths`, root-relative or matched as rg matches
    them under the CLI's path arguments `roots`: (root-relative path, as typed, is a file); languages); raises
    `lens.QueryError` with the position of malformed syntax."""

def lang_type(name: str) -> str | None:
    """ripgrep's type name for a language as typed (`python` -> `py`), or None when unknown."""

class LineMatcher:
    """A grep pattern compiled as the native grep compiles it, for one line at a time."""

    def __init__(
        self, pattern: str, regex: bool = True, ignore_case: bool = False, word: bool = False
    ) -> None: ...
    def spans(self, line: bytes, start: int) -> list[tuple[int, int]]:
        """Every match in `line` (one line, without its end) from byte `start` on, as (start, end) byte
        offsets, left to right without overlaps; empty matches are not reported."""

class NativeSnapshot:
    """One generation of an index, held for one query: every stage of the query answers from it."""

    def search(
        self, query: str | NativeQuery, k: int, budget_ms: float | None = None, native: bool = True
    ) -> tuple[list[Hit], bool, dict[str, int | bool | str]]:
        """Ranked search on this generation: (hits best first, as `lens.Hit`s made by the native core,
        truncated, info). `native=False` runs the reference scanner, for which `budget_ms` is a deadline
        (past it: the best hits so far, truncated)."""

    def stage_b(self, query: str | NativeQuery, k: int) -> tuple[list[SymHitTuple], bool]:
        """Stage-B hits on this generation for an identifier-like query (empty otherwise), and whether
        the lookup cache answered."""

    @property
    def generation(self) -> int: ...

class NativeIndex:
    """An opened index. Safe to share between threads; every method releases the GIL."""

    @staticmethod
    def build(
        root: str | PathLike[str],
        index_dir: str | PathLike[str],
        max_file_bytes: int,
        progress: Callable[[int, int, str], object] | None = None,
        exclude: list[str] = ...,
        scip: str | None = None,
        symbols: bool = True,
    ) -> NativeIndex:
        """Index `root` into `index_dir`; `progress(done_bytes, total_bytes, phase)` is called as files are
        read (phase "reading"), parsed for symbols (phase "symbols") and indexed as definitions (phase
        "terms"), each phase counting from 0;
        `exclude` holds extra gitignore-style globs to leave out.
        Symbols are extracted unless `symbols` is false; `scip` is ingested in the same commit."""

    @staticmethod
    def open(index_dir: str | PathLike[str]) -> NativeIndex:
        """Open an index; raises IndexCorruptError / IndexVersionError / FileNotFoundError."""

    def snapshot(self) -> NativeSnapshot:
        """The index as it stands now; take it once per query."""

    def search(
        self, query: str | NativeQuery, k: int, budget_ms: float | None = None, native: bool = True
    ) -> tuple[list[Hit], bool, dict[str, int | bool | str]]:
        """Ranked search on the current generation: (hits best first, as `lens.Hit`s, truncated, info
        about candidates, early termination and the generation that answered)."""

    def grep(
        self,
        pattern: str,
        regex: bool = True,
        ignore_case: bool = False,
        word: bool = False,
        limit: int | None = None,
        native: bool = True,
        paths: list[str] = ...,
        lang: list[str] = ...,
        not_lang: list[str] = ...,
        roots: list[tuple[str, str, bool]] = ...,
    ) -> list[HitTuple]:
        """Exhaustive grep, one hit per matching line, in path then offset order, over the files the
        gitignore-style `paths` (as in `parse_query`, under `roots`) and the languages allow."""

    def files(self) -> list[tuple[str, int]]:
        """Every live file as (path relative to the root, size in bytes), in path order."""

    def files_filtered(
        self,
        paths: list[str] = ...,
        lang: list[str] = ...,
        not_lang: list[str] = ...,
        roots: list[tuple[str, str, bool]] = ...,
    ) -> list[tuple[str, int]]:
        """`files()` narrowed by the same filter as `grep`."""

    def refresh(self, progress: Callable[[int, int, str], object] | None = None) -> dict[str, int | bool]:
        """Re-index what changed on disk; counts of added / changed / removed / unchanged files."""

    def staleness(self) -> dict[str, Any]:
        """Files added / changed / removed (and examples) since the last build or refresh, by size and
        mtime from one walk."""

    def stats(self) -> dict[str, object]:
        """Files, bytes, skipped files by reason, index bytes, build seconds, format version."""

    def verify(self) -> None:
        """Check every checksum of every segment; raises IndexCorruptError on a mismatch."""

    def counters(self) -> dict[str, int]:
        """What searches did since the index was opened: early terminations, candidates, visits."""

    def definitions(self, name: str) -> list[SymHitTuple]:
        """Every definition of `name`."""

    def references(self, name: str, limit: int) -> list[SymHitTuple]:
        """References to `name`, at most `limit`."""

    def symbols(self, text: str, fuzzy: bool, limit: int) -> list[tuple[str, str | None, int, int, int]]:
        """(name, kind, definitions, references, distance) by prefix, or within 2 edits when `fuzzy`."""

    def attach(self, format: str, path: str) -> dict[str, int]:
        """Ingest a SCIP ("scip") or LSIF ("lsif") file; raises SymbolDataError when it is malformed."""

    def cache_stats(self) -> dict[str, Any]:
        """Hits, misses, hit_rate, evictions and bytes of the Stage-B caches; pattern compile time."""

    def clear_cache(self) -> None:
        """Empty the Stage-B caches (their counters stay)."""

    def symbol_stats(self) -> dict[str, Any]:
        """Symbol and precise coverage of the live source files, and symbol counts."""

    @property
    def index_dir(self) -> str: ...
    @property
    def root(self) -> str: ...

# A sharded set's global statistics (issue 14, lens.cluster; rust/terms/global.rs).
def set_global_stats(index_dir: str, ndocs: int, df_path: str, len_sums: list[int]) -> None: ...
def clear_global_stats(index_dir: str) -> None: ...
def recorded_term_lengths(index_dir: str) -> tuple[int, list[int]] | None: ...
def rewrite_terms(index_dir: str) -> int: ...
def write_global_df(index_dirs: list[str], out: str) -> tuple[int, int]: ...
def lexical_document_frequencies(index: NativeIndex, query: str) -> tuple[list[int], int]: ...
def set_lexical_stats(df: list[int] | None, chunks: int = 0) -> None: ...
def query_route(query: str) -> str: ...
def stage_b_fallback_candidates(
    index: NativeIndex, query: str, scan: bool = True
) -> tuple[str, int, list[str], list[tuple[str, int, int]]] | None: ...
def set_stage_b_fallback(names: list[str] | None = None) -> None: ...
def set_union_parts(n: int | None = None) -> None: ...
def static_prior(rel: str, size: int) -> float: ...
