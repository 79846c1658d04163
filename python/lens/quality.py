"""Quality measurements computed from real runs: consistency between the native path and the baseline.

A *consistency violation* is a query for which the native Stage-A path (index + SIMD + early termination)
and the reference scanner (the baseline path) disagree on anything they return: paths, lines, columns,
byte spans, line text, scores or reasons. lens's target is zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._log import get_logger
from .index import Hit, Index
from .types import hits_from_rows

__all__ = ["ConsistencyReport", "consistency_violations"]

_log = get_logger("lens.quality")


@dataclass
class ConsistencyReport:
    """How many queries were compared and which ones disagreed."""

    checked: int = 0
    violations: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rate(self) -> float | None:
        return self.violations / self.checked if self.checked else None


def _rows(hits: Sequence[Hit]) -> list[tuple[Any, ...]]:
    return [(h.path, h.line, h.column, h.byte_start, h.byte_end, h.text, h.score, h.why) for h in hits]


def consistency_violations(
    index: Index,
    searches: Iterable[str] = (),
    greps: Iterable[tuple[str, dict[str, Any]]] = (),
    *,
    k: int = 50,
    keep_examples: int = 5,
) -> ConsistencyReport:
    """Run each query down both paths and count disagreements (`searches` with `k`, `greps` with their
    keyword options). Slow by design: the baseline path reads everything."""
    report = ConsistencyReport()
    native = index._native
    for q in searches:
        # Both paths on one snapshot: a refresh in between must not pass for a disagreement.
        snap = native.snapshot()
        fast, _, _ = snap.search(q, k, None, True)
        slow, _, _ = snap.search(q, k, None, False)
        _tally(report, {"search": q}, fast, slow, keep_examples)
    for pattern, opts in greps:
        args = (
            pattern,
            opts.get("regex", True),
            opts.get("ignore_case", False),
            opts.get("word", False),
            None,
        )
        fast = hits_from_rows(native.grep(*args, True))
        slow = hits_from_rows(native.grep(*args, False))
        _tally(report, {"grep": pattern, **opts}, fast, slow, keep_examples)
    if report.violations:
        _log.warning("consistency_violations", checked=report.checked, violations=report.violations)
    return report


def _tally(
    report: ConsistencyReport, what: dict[str, Any], fast: list[Hit], slow: list[Hit], keep: int
) -> None:
    report.checked += 1
    a, b = _rows(fast), _rows(slow)
    if a != b:
        report.violations += 1
        if len(report.examples) < keep:
            first = next(
                (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
            )
            report.examples.append(
                {**what, "at": first, "native": a[first : first + 1], "baseline": b[first : first + 1]}
            )
