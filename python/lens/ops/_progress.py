"""A one-line progress bar for counted work (queries run, seconds of a night), drawn on stderr."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class CountBar:
    """Callable `(done, total, phase)`; redraws at most ten times a second, and on the last step."""

    def __init__(self, label: str, unit: str = "", stream: TextIO | None = None, width: int = 30) -> None:
        self.label, self.unit, self.width = label, unit, width
        self.stream = stream if stream is not None else sys.stderr
        self._last = 0.0
        self._open = False

    def __call__(self, done: float, total: float, phase: str = "") -> None:
        now = time.perf_counter()
        final = total > 0 and done >= total
        if not final and now - self._last < 0.1:
            return
        self._last = now
        frac = min(1.0, done / total) if total else 1.0
        bar = "#" * int(frac * self.width) + "-" * (self.width - int(frac * self.width))
        digits = 0 if float(total).is_integer() else 1
        text = (
            f"\r{self.label} [{bar}] {frac:6.1%} {done:.{digits}f}/{total:.{digits}f}{self.unit} "
            f"{phase[:40]:<40}"
        )
        self.stream.write(text)
        self.stream.flush()
        self._open = True

    def close(self) -> None:
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
