"""Ray, imported only here and only when `lens.cluster` is used (the `lens[ray]` extra)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ..errors import ClusterUnavailableError

__all__ = ["connect", "require"]


def require() -> ModuleType:
    """The `ray` module, or `ClusterUnavailableError` saying what to install."""
    try:
        import ray
    except ImportError as e:
        raise ClusterUnavailableError(
            f"lens.cluster needs Ray: pip install 'lens[ray]' (or 'ray>=2.9'); importing it failed: {e}"
        ) from None
    return ray


def connect(address: str | None, **init: Any) -> ModuleType:
    """Ray, connected: the session already started in this process if there is one, else `address`
    (a running cluster, "auto" for the local one) or, with None, a local Ray on this machine."""
    ray = require()
    if not ray.is_initialized():
        opts: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        opts.update(init)
        if address is not None:
            opts["address"] = address
        ray.init(**opts)
    return ray
