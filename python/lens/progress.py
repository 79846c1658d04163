"""A small progress bar for long native work (index builds and refreshes), drawn on stderr.

lens reports progress through a `(done, total, phase)` callback; this turns it into one bar per phase
("reading", then "symbols") that redraws at most ten times a second.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """Callable `(done_bytes, total_bytes, phase)` progress reporter."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30, unit: str = "MB") -> None:
        self.label = label
        #: "MB" counts bytes; anything else ("defs") counts items.
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.started = time.perf_counter()
        self._last_draw = 0.0
        self._done = False
        self._phase: str | None = None

    def __call__(self, done: int, total: int, phase: str | None = None) -> None:
        now = time.perf_counter()
        if phase != self._phase:
            # A new phase gets its own line, clock and rate.
            if self._phase is not None:
                self.close()
            self._phase, self._done, self._last_draw, self.started = phase, False, 0.0, now
        final = total > 0 and done >= total
        if not final and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        frac = done / total if total else 1.0
        filled = int(frac * self.width)
        elapsed = now - self.started
        div = 1e6 if self.unit == "MB" else 1.0
        rate = done / elapsed / div if elapsed > 0 else 0.0
        bar = "#" * filled + "-" * (self.width - filled)
        label = f"{self.label} ({phase})" if phase else self.label
        u = self.unit
        self.stream.write(
            f"\r{label:<22} [{bar}] {frac:6.1%} {done / div:8.1f}/{total / div:.1f} {u} {rate:6.1f} {u}/s"
        )
        if final and not self._done:
            self._done = True
            self.stream.write("\n")
        self.stream.flush()

    def close(self) -> None:
        if not self._done:
            self._done = True
            self.stream.write("\n")
            self.stream.flush()
