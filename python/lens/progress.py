"""Progress for long native work (index builds and refreshes), on stderr.

lens reports progress through a `(done, total, phase)` callback; `ProgressBar` turns it into one bar per
phase ("reading", "symbols", then "terms") that redraws at most ten times a second when its stream is a
terminal, and into one line per phase, written when the phase ends, when it is not (a log, a pipe, CI).
`as_reporter` adapts a user's callable: `(done, total, phase)`, or the older `(done, total)`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["ProgressBar", "as_reporter"]


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class ProgressBar:
    """Callable `(done_bytes, total_bytes, phase)` progress reporter. `live` (default: whether the
    stream is a terminal) picks a redrawn bar over one line per phase."""

    def __init__(
        self,
        label: str,
        stream: TextIO | None = None,
        width: int = 30,
        *,
        unit: str = "MB",
        live: bool | None = None,
    ) -> None:
        self.label = label
        #: "MB" counts bytes; anything else ("defs") counts items.
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.live = _isatty(self.stream) if live is None else live
        self.width = width
        self.started = time.perf_counter()
        self._last_draw = 0.0
        self._done = True
        self._phase: str | None = None
        self._last: tuple[int, int] = (0, 0)

    def __call__(self, done: int, total: int, phase: str | None = None) -> None:
        now = time.perf_counter()
        if phase != self._phase or (self._done and self._last == (0, 0)):
            # A new phase gets its own line, clock and rate.
            if self._phase is not None:
                self.close()
            self._phase, self._done, self._last_draw, self.started = phase, False, 0.0, now
        self._last = (done, total)
        final = total > 0 and done >= total
        if not self.live:
            if final:
                self._line(now, newline=True)
            return
        if not final and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        self._line(now, newline=final, bar=True)

    def _line(self, now: float, newline: bool, bar: bool = False) -> None:
        if self._done:
            return
        done, total = self._last
        frac = done / total if total else 1.0
        elapsed = now - self.started
        div = 1e6 if self.unit == "MB" else 1.0
        u = self.unit
        rate = done / elapsed / div if elapsed > 0 else 0.0
        label = f"{self.label} ({self._phase})" if self._phase else self.label
        drawn = "#" * int(frac * self.width) + "-" * (self.width - int(frac * self.width))
        middle = f" [{drawn}]" if bar else ""
        text = f"{label:<22}{middle} {frac:6.1%} {done / div:8.1f}/{total / div:.1f} {u} {rate:6.1f} {u}/s"
        self.stream.write(("\r" if bar else "") + text)
        if newline:
            self._done = True
            self.stream.write("\n")
        self.stream.flush()

    def close(self) -> None:
        if not self._done:
            if self.live:
                self._done = True
                self.stream.write("\n")
                self.stream.flush()
            else:
                self._line(time.perf_counter(), newline=True)


def as_reporter(progress: Callable[..., object]) -> Callable[[int, int, str], object]:
    """The native `(done, total, phase)` callback for a user's callable: one taking the phase as a
    third argument gets it; an older `(done, total)` one still works."""
    import inspect

    try:
        inspect.signature(progress).bind(0, 0, "reading")
    except TypeError:
        return lambda done, total, _phase: progress(done, total)
    except ValueError:  # no signature to read (some builtins): call it the old way
        return lambda done, total, _phase: progress(done, total)
    return lambda done, total, phase: progress(done, total, phase)
