"""The lens exception hierarchy: everything lens raises on purpose derives from `LensError`.

Each error also subclasses the built-in exception that fits, so callers that already catch
`ValueError` for bad input or `OSError` for disk trouble keep working.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "ClusterUnavailableError",
    "IndexBusyError",
    "IndexCorruptError",
    "IndexLocationError",
    "IndexStorageError",
    "IndexVersionError",
    "InternalError",
    "LensError",
    "QueryError",
    "SemanticUnavailableError",
    "SymbolDataError",
]


def _path(path: str | Path | None) -> Path | None:
    # pathlib is imported when an error carries a path, not at `import lens`.
    from pathlib import Path

    return Path(path) if path is not None else None


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


class IndexStorageError(LensError, OSError):
    """Base class of problems with an index on disk."""


class IndexCorruptError(IndexStorageError):
    """The index is damaged, truncated, or not a lens index at all. Rebuild it."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.path = _path(path)

    def __str__(self) -> str:
        return str(self.args[0])


class IndexBusyError(IndexStorageError, TimeoutError):
    """Another writer (build, refresh or attach, in this process or another) holds the index's writer
    lock and did not release it within `LENS_WRITER_TIMEOUT_S` seconds (default 30). Retry later;
    readers are never blocked."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.path = _path(path)

    def __str__(self) -> str:
        return str(self.args[0])


class IndexLocationError(LensError, ValueError):
    """The index directory cannot be used: it is the root being indexed, it contains the root, or it is a
    non-empty directory that is not a lens index (lens writes and deletes only in a directory of its
    own)."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.path = _path(path)

    def __str__(self) -> str:
        return str(self.args[0])


class InternalError(LensError, RuntimeError):
    """A bug inside lens's native core, caught at the boundary (a panic) so the host process goes on.
    The query pipeline treats it as a stage failure and serves the query from the fallback path."""


class IndexVersionError(IndexStorageError):
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
        self.path = _path(path)
        self.found = found
        self.supported = supported

    def __str__(self) -> str:
        return str(self.args[0])


class SymbolDataError(LensError, ValueError):
    """A SCIP or LSIF file is malformed. `path` is the file and `record` the part of it that is wrong
    (a document, an occurrence, a line number); the index is left as it was."""

    def __init__(self, message: str, path: str | Path | None = None, record: str | None = None) -> None:
        super().__init__(message)
        self.path = _path(path)
        self.record = record

    def __str__(self) -> str:
        return str(self.args[0])


class SemanticUnavailableError(LensError, ImportError):
    """Semantic search was asked for, but the `lens[semantic]` extra (onnxruntime, tokenizers) is not
    installed; the message says what to install."""


class ClusterUnavailableError(LensError, ImportError):
    """`lens.cluster` was used, but the `lens[ray]` extra (Ray) is not installed; the message says what
    to install."""
