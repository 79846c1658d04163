"""`Hit` and `SearchResult`: the values a query returns.

A leaf: this module imports nothing of lens, so every layer (the index, the pipeline, the stages, the
guard, the CLI) may use it without an import loop.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Hit", "SearchResult", "hits_from_rows"]


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
class SearchResult:
    """What `Index.search` returns: hits best first, per-stage timings (ms) and whether a budget or
    limit cut the search short."""

    hits: list[Hit]
    timings_ms: dict[str, float]
    truncated: bool
    mode: str
    path: str = "native"
    info: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Hit]:
        return iter(self.hits)

    def __len__(self) -> int:
        return len(self.hits)


def hits_from_rows(rows: Sequence[tuple[Any, ...]]) -> list[Hit]:
    """Native hit tuples (path, line, column, byte_start, byte_end, text, score, why) -> `Hit`s."""
    return [Hit(*row) for row in rows]
