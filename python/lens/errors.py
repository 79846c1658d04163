"""The lens exception hierarchy: everything lens raises on purpose derives from `LensError`.

Each error also subclasses the built-in exception that fits, so callers that already catch
`ValueError` for bad input or `OSError` for disk trouble keep working.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "IndexCorruptError",
    "IndexError_",
    "IndexVersionError",
    "LensError",
    "QueryError",
    "SemanticUnavailableError",
    "SymbolDataError",
]


class LensError(Exception):
    """Base class of every error lens raises deliberately."""


class QueryError(LensError, ValueError):
    """The query or pattern cannot be run: empty, over 4 KiB, or an invalid regex.

    `position` is the 0-based offset in the pattern where the problem was found, when known.
    """

    def __init__(self, message: str, reason: str | None = None, position: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason if reason is not None else message
        self.position = position


class IndexError_(LensError, OSError):
    """Base class of problems with an index on disk."""


class IndexCorruptError(IndexError_):
    """The index is damaged, truncated, or not a lens index at all. Rebuild it."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.path = Path(path) if path is not None else None

    def __str__(self) -> str:
        return str(self.args[0])


class IndexVersionError(IndexError_):
    """The index was written in an on-disk format this lens does not read: by a newer lens (upgrade),
    or by an older one whose format is no longer read (rebuild)."""

    def __init__(
        self,
        message: str,
        path: str | Path | None = None,
        found: int | None = None,
        supported: int | None = None,
    ) -> None:
        super().__init__(message)
        self.path = Path(path) if path is not None else None
        self.found = found
        self.supported = supported

    def __str__(self) -> str:
        return str(self.args[0])


class SymbolDataError(LensError, ValueError):
    """A SCIP or LSIF file is malformed. `path` is the file and `record` the part of it that is wrong
    (a document, an occurrence, a line number); the index is left as it was."""

    def __init__(self, message: str, path: str | Path | None = None, record: str | None = None) -> None:
        super().__init__(message)
        self.path = Path(path) if path is not None else None
        self.record = record

    def __str__(self) -> str:
        return str(self.args[0])


class SemanticUnavailableError(LensError, ImportError):
    """Semantic search was asked for, but the `lens[semantic]` extra (onnxruntime, tokenizers) is not
    installed; the message says what to install."""
