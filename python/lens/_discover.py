"""Finding an index: a directory is an index when it holds a MANIFEST; a repository root names the
`.lens` inside it; with nothing named, the search goes upward from the current directory, as git finds
`.git`. Paths are strings here (`os.path`): the `lens grep` command finds its index without importing
`pathlib`."""

from __future__ import annotations

import os

__all__ = [
    "DEFAULT_INDEX_DIRNAME",
    "NO_INDEX",
    "NoIndexError",
    "find_index",
    "index_dir_to_open",
    "locate_index",
    "resolve_index_dir",
]

DEFAULT_INDEX_DIRNAME = ".lens"
_MARKER = "MANIFEST"
NO_INDEX = "no index here; run `lens index`"


class NoIndexError(FileNotFoundError):
    """No index where one was looked for (the CLI's exit status 2)."""


def resolve_index_dir(path: str | os.PathLike[str]) -> str:
    """`path` itself when it is an index directory, else `path/.lens` when that is one; else `path`
    unchanged (opening it then says what is wrong)."""
    p = os.fspath(path)
    if not os.path.exists(os.path.join(p, _MARKER)):
        inner = os.path.join(p, DEFAULT_INDEX_DIRNAME)
        if os.path.exists(os.path.join(inner, _MARKER)):
            return inner
    return p


def index_dir_to_open(path: str | os.PathLike[str]) -> str:
    """The directory `Index.open(path)` opens (`resolve_index_dir`); `FileNotFoundError` or
    `NotADirectoryError` when it is missing or a file."""
    p = resolve_index_dir(path)
    if not os.path.exists(p):
        raise FileNotFoundError(2, "No such file or directory", p)
    if not os.path.isdir(p):
        raise NotADirectoryError(20, "Not a directory", p)
    return p


def find_index(start: str | os.PathLike[str] | None = None) -> str | None:
    """The nearest `.lens` index in `start` (default: the current directory) or a directory above it."""
    d = os.path.abspath(start if start is not None else os.getcwd())
    while True:
        candidate = os.path.join(d, DEFAULT_INDEX_DIRNAME)
        if os.path.exists(os.path.join(candidate, _MARKER)):
            return candidate
        if os.path.exists(os.path.join(d, _MARKER)) and os.path.basename(d) == DEFAULT_INDEX_DIRNAME:
            return d
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def locate_index(index: str | os.PathLike[str] | None) -> str | os.PathLike[str]:
    """What the CLI opens: `index` (an index directory or a repository root) when given and present, else
    the nearest `.lens` upward from the current directory; `NoIndexError` ("no index here; run `lens
    index`") when there is none."""
    if index is None:
        found = find_index()
        if found is None:
            raise NoIndexError(NO_INDEX)
        return found
    if not os.path.exists(index):
        raise NoIndexError(f"{index}: no such directory; {NO_INDEX}")
    return index
