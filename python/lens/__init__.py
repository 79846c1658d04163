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
"""

from __future__ import annotations

from typing import Any

from . import _lens
from ._state import GLOBAL_CANARY as canary
from ._state import GLOBAL_FLAGS as flags
from ._state import GLOBAL_GUARD as guard
from ._state import set_state_dir

# Imported before `dashboard()` is defined: importing the submodule binds `lens.dashboard` to it, and the
# function below must be what that name ends up as (as `lens.flags` is the flags, not `lens/flags.py`).
from .dashboard import build_dashboard as _build_dashboard
from .dashboard import render_metrics as _render_metrics
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
from .index import Index
from .pipeline import register_stage as _register_stage
from .quality import ConsistencyReport, consistency_violations
from .symbols import stage_b_hook as _stage_b_hook
from .types import FileGroup, Hit, Mode, SearchResult, Symbol

# Stage-B is built in: every index runs it (in the modes that want it, while `stage_b.enabled`).
_register_stage("stage_b", _stage_b_hook)

__version__: str = _lens.__version__
INDEX_FORMAT_VERSION: int = _lens.INDEX_FORMAT_VERSION
#: The largest `k` `Index.search` accepts.
MAX_K: int = _lens.MAX_K


def dashboard() -> dict[str, Any]:
    """The runbook's dashboard document for the process-wide guard, canary and flags."""
    return _build_dashboard(guard, canary, flags)


def metrics_text() -> str:
    """The dashboard's metrics in the Prometheus text format, for hosts that scrape."""
    return _render_metrics(guard, canary, flags)


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
