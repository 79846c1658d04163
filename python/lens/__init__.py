"""lens: embedded code search with a native Rust core.

    >>> import lens
    >>> idx = lens.Index.build("path/to/repo")
    >>> for hit in idx.search("parse http date", k=5).hits:
    ...     print(hit.path, hit.line, hit.text)

`Index.search` ranks; `Index.grep` is exhaustive and exact, like ripgrep. `lens.flags` switches paths at
runtime (`lens.flags["stage_a.native"] = False` sends queries down the baseline reference scanner).
"""

from __future__ import annotations

from . import _lens
from ._state import GLOBAL_FLAGS as flags
from .errors import IndexCorruptError, IndexVersionError, LensError, QueryError, SymbolDataError
from .index import Hit, Index, SearchResult

__version__: str = _lens.__version__
INDEX_FORMAT_VERSION: int = _lens.INDEX_FORMAT_VERSION

__all__ = [
    "INDEX_FORMAT_VERSION",
    "Hit",
    "Index",
    "IndexCorruptError",
    "IndexVersionError",
    "LensError",
    "QueryError",
    "SearchResult",
    "SymbolDataError",
    "__version__",
    "flags",
]
