"""A small progress bar for long native work (index builds and refreshes), drawn on stderr.

lens reports progress through a `(done, total)` callback; this turns it into a bar that redraws at most
ten times a second and only when stderr is a terminal or the caller insists.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """Callable `(done_bytes, total_bytes)` progress reporter."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.started = time.perf_counter()
        self._last_draw = 0.0
        self._done = False

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        final = total > 0 and done >= total
        if not final and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        frac = done / total if total else 1.0
        filled = int(frac * self.width)
        elapsed = now - self.started
        rate = done / elapsed / 1e6 if elapsed > 0 else 0.0
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(
            f"\r{self.label} [{bar}] {frac:6.1%} {done / 1e6:8.1f}/{total / 1e6:.1f} MB {rate:6.1f} MB/s"
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
