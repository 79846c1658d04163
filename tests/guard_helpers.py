"""Test doubles shared by the operations tests (flags, guard, canary, dashboard): a fake clock, a native
index wrapper that injects latency or failures into Stage-A, a Stage-B/C hook double, and a rig that gives
one index its own flags, guard and canary so no test touches the process-wide ones or the user's home."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lens import Index
from lens.canary import Canary
from lens.flags import Flags
from lens.guard import Guard, GuardConfig

CORPUS = {
    "alpha.py": "def parse_date(value):\n    return value\n\nclass Needle:\n    pass\n",
    "beta.py": "import os\n\nneedle = parse_date('x')\nprint(needle)\n",
    "gamma/delta.py": (
        "# needle in a haystack\nNEEDLE = 3\n\ndef find_needle(hay):\n    return 'needle' in hay\n"
    ),
    "gamma/notes.txt": "needle needle needle\nno match here\n",
}


def build_corpus(root: Path) -> Index:
    src = root / "src"
    for rel, text in CORPUS.items():
        p = src / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return Index.build(src, root / "idx", semantic=False)  # the ops tests install their own stage hooks


class FakeClock:
    """A monotonic clock that moves only when told to (seconds)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.t += seconds


class NativeDouble:
    """Wraps the real native index. On the native path it can cost `native_ms` of (fake) time, fail, or
    claim early termination; the reference path costs `reference_ms`. Records which path each call took,
    and the budget (ms) each was given (`budgets`). The pipeline searches through `snapshot()`, whose
    handle applies the same injections."""

    def __init__(self, real: Any, clock: FakeClock | None) -> None:
        self.real = real
        self.clock = clock
        self.native_ms = 0.0
        self.reference_ms = 0.0
        self.fail_native = False
        self.early: bool | None = None
        self.calls: list[bool] = []
        self.budgets: list[float | None] = []

    def snapshot(self) -> Any:
        return _SnapshotDouble(self, self.real.snapshot())

    def search(self, query: str, k: int, budget_ms: float | None, native: bool) -> Any:
        return self._search(self.real, query, k, budget_ms, native)

    def _search(self, real: Any, query: str, k: int, budget_ms: float | None, native: bool) -> Any:
        self.calls.append(native)
        self.budgets.append(budget_ms)
        if self.clock is not None:
            self.clock.advance((self.native_ms if native else self.reference_ms) / 1000)
        if native and self.fail_native:
            raise RuntimeError("injected native failure")
        rows, truncated, info = real.search(query, k, budget_ms, native)
        if native and self.early is not None:
            info = {**info, "early_terminated": self.early}
        return rows, truncated, info

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class _SnapshotDouble:
    def __init__(self, double: NativeDouble, real: Any) -> None:
        self.double = double
        self.real = real

    def search(self, query: str, k: int, budget_ms: float | None = None, native: bool = True) -> Any:
        return self.double._search(self.real, query, k, budget_ms, native)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class StageDouble:
    """A Stage-B/C hook: costs `ms` of fake time, may raise, reports `counters`, may rewrite the hits."""

    def __init__(
        self, clock: FakeClock | None = None, ms: float = 1.0, counters: dict[str, float] | None = None
    ):
        self.clock = clock
        self.ms = ms
        self.fail = False
        self.counters = counters or {}
        self.transform: Any = None
        self.calls = 0
        self.seen: list[Any] = []
        self._lock = threading.Lock()

    def __call__(self, call: Any) -> Any:
        with self._lock:
            self.calls += 1
            self.seen.append(call)
        if self.clock is not None:
            self.clock.advance(self.ms / 1000)
        if self.fail:
            raise RuntimeError("injected stage failure")
        call.counters.update(self.counters)
        return None if self.transform is None else self.transform(call.hits)


@dataclass
class Rig:
    idx: Index
    clock: FakeClock
    guard: Guard
    canary: Canary
    root_flags: Flags
    native: NativeDouble


TEST_CONFIG = {
    "window_size": 200,
    "window_s": 60.0,
    "min_samples": 20,
    "eval_every": 1,
    "cooldown_s": 10.0,
    "probes": 3,
    "span_sample_every": 1,
}


def make_rig(index_dir: Path, state_dir: Path, *, fake_clock: bool = True, **config: Any) -> Rig:
    """An index opened on `index_dir` with its own flags, guard (fake clock), canary (state in
    `state_dir`) and a `NativeDouble` in front of the native core."""
    idx = Index.open(index_dir)
    root = Flags()
    idx.flags = Flags(parent=root)
    clock = FakeClock()
    guard = Guard(config=GuardConfig(**{**TEST_CONFIG, **config}), clock=clock if fake_clock else _perf())
    canary = Canary(guard, root, state_dir / "canary.json")
    native = NativeDouble(idx._native, clock if fake_clock else None)
    idx.guard, idx.canary, idx._native = guard, canary, native  # type: ignore[assignment]
    return Rig(idx, clock, guard, canary, root, native)


def _perf() -> Any:
    import time

    return time.perf_counter
