"""`Hit` and `SearchResult`: the values a query returns.

A leaf: this module imports nothing of lens, so every layer (the index, the pipeline, the stages, the
guard, the CLI) may use it without an import loop.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["FileGroup", "Hit", "Mode", "SearchResult", "Symbol", "group_by_file", "hits_from_rows"]

#: How `Index.search` answers: Stage-A alone ("lex"), with Stage-B ("symbol"), or every stage.
Mode = Literal["lex", "symbol", "hybrid", "auto"]


@dataclass(frozen=True, slots=True)
class Symbol:
    """What a hit knows about its symbol: where and what it is defined as.

    `def_start..def_end` is the byte span of the whole definition in `path`; `line` is the 1-based
    line of the definition's name. `precise` says the data came from SCIP or LSIF."""

    name: str
    kind: str
    path: str
    def_start: int
    def_end: int
    line: int
    container: str | None
    precise: bool


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
    #: The symbol of a Stage-B hit (a definition or a reference); None for a plain text match.
    symbol: Symbol | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column + 1}:{self.text}"

    def as_dict(self) -> dict[str, Any]:
        """The hit's fields as JSON-ready values (the CLI's `--json` and the admin API's `/search`);
        `symbol` is left out."""
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "byte_start": self.byte_start,
            "byte_end": self.byte_end,
            "text": self.text,
            "score": self.score,
            "why": list(self.why),
        }


@dataclass(frozen=True, slots=True)
class FileGroup:
    """One file's hits in a result grouped by file (`group_by="file"`): best first, with the file's best
    score. `matches` is how many of the file's lines are among the query's best `k * GROUP_DEPTH` hits
    (`lens.index.GROUP_DEPTH`, 10; at most `MAX_K`): the search ranks that deep before grouping, so it is
    every ranked match of the file unless the file holds more than that depth reached, and then a lower
    bound. It counts lines, as `hits` holds them (every hit is one line of the file); for every line of a
    file that a pattern matches, `grep` it."""

    path: str
    hits: list[Hit]
    matches: int
    score: float


def group_by_file(hits: Sequence[Hit], files: int) -> list[FileGroup]:
    """`hits` (best first) grouped by file, files in the order of their best hit, at most `files`."""
    by: dict[str, list[Hit]] = {}
    for h in hits:
        by.setdefault(h.path, []).append(h)
    return [FileGroup(p, hs, len(hs), hs[0].score) for p, hs in list(by.items())[:files]]


@dataclass(frozen=True, slots=True)
class SearchResult:
    """What `Index.search` returns: hits best first, per-stage timings (ms) and whether a budget or
    limit cut the search short."""

    hits: list[Hit]
    timings_ms: dict[str, float]
    truncated: bool
    mode: Mode
    path: str = "native"
    info: dict[str, Any] = field(default_factory=dict)
    #: With `group_by="file"`: the hits by file (files in rank order); `hits` is then their hits in turn.
    groups: list[FileGroup] | None = None

    def __iter__(self) -> Iterator[Hit]:
        return iter(self.hits)

    def __len__(self) -> int:
        return len(self.hits)


def hits_from_rows(rows: Sequence[tuple[Any, ...]]) -> list[Hit]:
    """Native hit tuples (path, line, column, byte_start, byte_end, text, score, why) -> `Hit`s."""
    return [Hit(*row) for row in rows]
