"""Finding an index: a directory is an index when it holds a MANIFEST; a repository root names the
`.lens` inside it; with nothing named, the search goes upward from the current directory, as git finds
`.git`."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "DEFAULT_INDEX_DIRNAME",
    "NO_INDEX",
    "find_index",
    "resolve_index_dir",
]

DEFAULT_INDEX_DIRNAME = ".lens"
_MARKER = "MANIFEST"
NO_INDEX = "no index here; run `lens index`"


def resolve_index_dir(path: str | os.PathLike[str]) -> Path:
    """`path` itself when it is an index directory, else `path/.lens` when that is one; else `path`
    unchanged (opening it then says what is wrong)."""
    p = Path(path)
    if not (p / _MARKER).exists() and (p / DEFAULT_INDEX_DIRNAME / _MARKER).exists():
        return p / DEFAULT_INDEX_DIRNAME
    return p


def find_index(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest `.lens` index in `start` (default: the current directory) or a directory above it."""
    here = Path(start if start is not None else os.getcwd()).absolute()
    for d in (here, *here.parents):
        candidate = d / DEFAULT_INDEX_DIRNAME
        if (candidate / _MARKER).exists():
            return candidate
        if (d / _MARKER).exists() and d.name == DEFAULT_INDEX_DIRNAME:
            return d
    return None
