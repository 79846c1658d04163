"""lens's event log: structlog events handed to the standard library's `logging`, never configured here.

Each module takes `_log = get_logger("lens.<area>")`. An event goes to `logging.getLogger("lens.<area>")`,
so a host's `logging.basicConfig(level=WARNING)` (or any handler set on "lens") decides what is shown,
and with no configuration at all nothing but warnings reaches stderr (the standard library's last
resort) and nothing ever reaches stdout. Where the host has configured structlog (its processors,
or `structlog.testing.capture_logs()` in tests), events run through that configuration instead, as
structlog's guidance for libraries asks. structlog itself is imported on the first event that will be
seen, and the standard library's `logging` on the first event at all, not at `import lens`.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, MutableMapping
    from typing import Any

__all__ = ["get_logger", "when_logging_loads"]

# logging's levels, as constants here so that an event below the host's level costs no import.
_DEBUG, _INFO, _WARNING, _ERROR, _CRITICAL = 10, 20, 30, 40, 50
_ON_LOAD: list[Callable[[], object]] | None = []


def when_logging_loads(fn: Callable[[], object]) -> None:
    """Call `fn` when lens first needs the standard library's `logging` (at once if it already has):
    the `lens` command configures logging this way, so a command that logs nothing never imports it."""
    if _ON_LOAD is None:
        fn()
    else:
        _ON_LOAD.append(fn)


def _logging() -> Any:
    global _ON_LOAD
    import logging

    if _ON_LOAD is not None:
        hooks, _ON_LOAD = _ON_LOAD, None
        for fn in hooks:
            fn()
    return logging


def _structlog_configured() -> bool:
    sl = sys.modules.get("structlog")
    return sl is not None and bool(sl.is_configured())


def _route(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """The processor chain: the host's structlog configuration when there is one, else a plain
    `event key=value ...` record whose fields also ride along as `record.lens_fields`."""
    if _structlog_configured():
        import structlog

        for proc in structlog.get_config()["processors"]:
            event_dict = proc(logger, method, event_dict)
        return event_dict
    event = str(event_dict.pop("event", ""))
    fields = " ".join(f"{k}={v!r}" for k, v in event_dict.items())
    return {
        "msg": f"{event} {fields}" if fields else event,
        "extra": {"lens_event": event, "lens_fields": event_dict},
    }


class Logger:
    """A structlog bound logger over `logging.getLogger(name)`, built on the first event that will be seen."""

    __slots__ = ("_bound", "_name", "_std")

    def __init__(self, name: str) -> None:
        self._name = name
        self._std: logging.Logger | None = None
        self._bound: Any = None

    def _emit(self, level: int, method: str, event: str, kw: dict[str, Any]) -> None:
        if not _structlog_configured() and not self.stdlib.isEnabledFor(level):
            return
        if self._bound is None:
            import structlog

            self._bound = structlog.wrap_logger(
                self.stdlib, processors=[_route], wrapper_class=structlog.stdlib.BoundLogger
            )
        getattr(self._bound, method)(event, **kw)

    def debug(self, event: str, **kw: Any) -> None:
        self._emit(_DEBUG, "debug", event, kw)

    def info(self, event: str, **kw: Any) -> None:
        self._emit(_INFO, "info", event, kw)

    def warning(self, event: str, **kw: Any) -> None:
        self._emit(_WARNING, "warning", event, kw)

    def error(self, event: str, **kw: Any) -> None:
        self._emit(_ERROR, "error", event, kw)

    def critical(self, event: str, **kw: Any) -> None:
        self._emit(_CRITICAL, "critical", event, kw)

    @property
    def stdlib(self) -> logging.Logger:
        if self._std is None:
            self._std = _logging().getLogger(self._name)
        return self._std


def get_logger(name: str) -> Logger:
    """The logger for one area of lens (`"lens.index"`, `"lens.flags"`, ...)."""
    return Logger(name)
