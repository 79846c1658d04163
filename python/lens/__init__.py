"""lens: embedded code search with a native Rust core.

    >>> import lens
    >>> idx = lens.Index.build("path/to/repo")
    >>> for hit in idx.search("parse http date", k=5).hits:
    ...     print(hit.path, hit.line, hit.text)

`Index.search` ranks; `Index.grep` is exhaustive and exact, like ripgrep. Operations: `lens.flags` switches
paths at runtime (`lens.flags["stage_a.native"] = False` sends queries down the baseline reference
scanner), `lens.canary` routes a share of queries to the new path and holds the kill switch, `lens.guard`
measures every stage against its SLO and trips what breaks it, and `lens.dashboard()` /
`lens.metrics_text()` show what was measured.

`import lens` loads the native module and the errors alone; every other public name is imported on
first use (PEP 562), so a host, or the `lens` command, pays only for what it touches.
"""

from __future__ import annotations

import sys

from . import _lens
from .errors import (
    IndexBusyError,
    IndexCorruptError,
    IndexLocationError,
    IndexStorageError,
    IndexVersionError,
    InternalError,
    LensError,
    QueryError,
    SemanticUnavailableError,
    SymbolDataError,
)

# `typing.TYPE_CHECKING` without importing typing (mypy treats any constant of this name the same way).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ._state import GLOBAL_CANARY as canary
    from ._state import GLOBAL_FLAGS as flags
    from ._state import GLOBAL_GUARD as guard
    from ._state import set_state_dir
    from .index import Index
    from .quality import ConsistencyReport, consistency_violations
    from .types import FileGroup, Hit, Mode, SearchResult, Symbol

__version__: str = _lens.__version__
INDEX_FORMAT_VERSION: int = _lens.INDEX_FORMAT_VERSION
#: The largest `k` `Index.search` accepts.
MAX_K: int = _lens.MAX_K


def dashboard() -> dict[str, Any]:
    """The runbook's dashboard document for the process-wide guard, canary and flags."""
    from ._state import GLOBAL_CANARY, GLOBAL_FLAGS, GLOBAL_GUARD
    from .dashboard import build_dashboard

    return build_dashboard(GLOBAL_GUARD, GLOBAL_CANARY, GLOBAL_FLAGS)


def metrics_text() -> str:
    """The dashboard's metrics in the Prometheus text format, for hosts that scrape."""
    from ._state import GLOBAL_CANARY, GLOBAL_FLAGS, GLOBAL_GUARD
    from .dashboard import render_metrics

    return render_metrics(GLOBAL_GUARD, GLOBAL_CANARY, GLOBAL_FLAGS)


#: Public name -> (submodule, attribute), imported on first access.
_LAZY: dict[str, tuple[str, str]] = {
    "canary": ("_state", "GLOBAL_CANARY"),
    "flags": ("_state", "GLOBAL_FLAGS"),
    "guard": ("_state", "GLOBAL_GUARD"),
    "set_state_dir": ("_state", "set_state_dir"),
    "Index": ("index", "Index"),
    "ConsistencyReport": ("quality", "ConsistencyReport"),
    "consistency_violations": ("quality", "consistency_violations"),
    "FileGroup": ("types", "FileGroup"),
    "Hit": ("types", "Hit"),
    "Mode": ("types", "Mode"),
    "SearchResult": ("types", "SearchResult"),
    "Symbol": ("types", "Symbol"),
}


def __getattr__(name: str) -> object:
    spec = _LAZY.get(name)
    if spec is None:
        raise AttributeError(f"module 'lens' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{spec[0]}", __name__), spec[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


class _Package(type(sys)):  # type: ignore[misc]
    """`lens`'s module type. `lens.flags`, `lens.canary`, `lens.guard` and `lens.dashboard` are objects
    (the process-wide flags, canary, guard, and the dashboard function) that share their names with
    submodules; importing such a submodule would bind the submodule over the name, so that binding is
    skipped (the submodule stays in `sys.modules`, as `lens.flags` always named the flags)."""

    def __setattr__(self, name: str, value: object) -> None:
        if name in _SHADOWED and type(value) is type(sys):
            return
        super().__setattr__(name, value)


_SHADOWED = frozenset({"flags", "canary", "guard", "dashboard"})
sys.modules[__name__].__class__ = _Package

__all__ = [
    "INDEX_FORMAT_VERSION",
    "MAX_K",
    "ConsistencyReport",
    "FileGroup",
    "Hit",
    "Index",
    "IndexBusyError",
    "IndexCorruptError",
    "IndexLocationError",
    "IndexStorageError",
    "IndexVersionError",
    "InternalError",
    "LensError",
    "Mode",
    "QueryError",
    "SearchResult",
    "SemanticUnavailableError",
    "Symbol",
    "SymbolDataError",
    "__version__",
    "canary",
    "consistency_violations",
    "dashboard",
    "flags",
    "guard",
    "metrics_text",
    "set_state_dir",
]
