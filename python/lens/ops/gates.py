"""Quality gates: run a golden set against lens and decide whether this build may ship.

Two runs over the same queries:

- the **baseline**: mode "lex" on the baseline path (the reference scanner, `stage_a.native` off), the
  path the canary falls back to. Its hits equal native Stage-A's (the consistency gate checks that), and
  its latency is the one the runbook's end-to-end SLO compares against;
- the **candidate**: mode "auto" on the new path (native Stage-A, then every later stage installed).

Measured: span coverage (the share of hits whose byte span and line/column are exact in the file),
recall@50, nDCG@10 and MRR@10 as `../shared/eval/evaluate.py` defines them, consistency violations
(native scanner against the reference scanner, on the set's literal queries and on a generated set), and
per-stage p50/p95/p99 from `SearchResult.timings_ms`. Gated with the runbook's thresholds. A gate whose
measurement has fewer samples than it needs is "insufficient data" (`passed: null`), never a pass, and
the report as a whole passes only when every gate does.

Each run uses its own SLO guard and canary, so measuring neither disturbs nor is disturbed by the
process's live rollout (a kill switch in production must not make the gates measure the fallback).
"""

from __future__ import annotations

import math
import random
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .. import __version__
from .._log import get_logger
from ..canary import Canary
from ..guard import Guard
from ..index import Hit, Index
from ..quality import consistency_violations
from .golden import GoldenSet

__all__ = [
    "THRESHOLDS",
    "GateResult",
    "Thresholds",
    "format_table",
    "open_indexes",
    "percentile",
    "run_quality_gates",
    "summarize",
]

_log = get_logger("lens.ops.gates")

#: `progress(done, total, phase)`
Progress = Callable[[int, int, str], object]
STAGE_KEYS = ("stage_a", "stage_b", "stage_c", "total")


@dataclass(frozen=True)
class Thresholds:
    """The runbook's quality and performance SLOs, and how many samples each gate needs."""

    span_coverage: float = 0.98
    ndcg_gain: float = 0.02  # relative: candidate >= baseline * (1 + gain)
    ndcg_unchanged: float = 0.005  # |candidate - baseline| within this counts as unchanged
    stage_a_p95_ms: float = 5.0
    tail_ratio: float = 2.0  # p99 <= ratio * p95 ...
    tail_floor_ms: float = 5.0  # ... unless p99 is under this (the guard's `tail_alert_floor_ms`)
    e2e_max_regression: float = 0.10
    min_hits: int = 50
    min_queries: int = 20
    # A nearest-rank p99 over fewer than 200 samples is one of the two slowest: noise, not a tail.
    min_latency_samples: int = 200
    min_consistency_checks: int = 20


THRESHOLDS = Thresholds()

RECOMMENDATIONS = {
    "span_coverage": "Span coverage below 98%: investigate indexing completeness (skipped files, "
    "encoding) and review parser updates.",
    "recall_at_50": "Recall@50 below the baseline: a later stage is dropping relevant hits; compare the "
    "per-kind tables and check the Stage-B/Stage-C routes.",
    "ndcg_at_10": "nDCG@10 gain under +2% without a latency win: the later stages do not pay for "
    "themselves on this set; check the rerank gate and cutoff.",
    "consistency_violations": "Native and reference scanners disagree: review recent Stage-A changes; "
    "keep stage_a.native off (flag or kill switch) until fixed.",
    "stage_a_p95_ms": "Stage-A p95 over 5 ms: check early-termination rate and candidate counts; keep "
    "the native scanner flag on.",
    "tail_latency": "Stage-A p99 over 2x p95: look for outlier queries (very common grams, regexes "
    "without literals) in the per-query timings.",
    "e2e_p95_regression": "End-to-end p95 more than 10% above the baseline path: profile Stage-B/C "
    "budgets (stage_b.budget_ms, stage_c.budget_ms).",
}


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest rank, as the shared scorer computes it; None for no values."""
    if not values:
        return None
    xs = sorted(values)
    return xs[min(len(xs) - 1, max(0, math.ceil(q / 100 * len(xs)) - 1))]


@dataclass
class GateResult:
    gate: str
    value: float | None
    threshold: float | None
    passed: bool | None
    detail: str
    samples: int

    def as_dict(self) -> dict[str, Any]:
        status = "insufficient data" if self.passed is None else ("pass" if self.passed else "fail")
        return {
            "gate": self.gate,
            "value": self.value,
            "threshold": self.threshold,
            "passed": self.passed,
            "status": status,
            "samples": self.samples,
            "detail": self.detail,
        }


class _SpanChecker:
    """Is a hit's span exact in the file? (The shared scorer's definition.)"""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache: dict[str, bytes | None] = {}

    def ok(self, hit: Hit) -> bool:
        if hit.path not in self.cache:
            p = self.root / hit.path
            self.cache[hit.path] = p.read_bytes() if p.is_file() else None
        data = self.cache[hit.path]
        if data is None:
            return False
        s, e = hit.byte_start, hit.byte_end
        if not (0 <= s <= e <= len(data)):
            return False
        line = data.count(b"\n", 0, s) + 1
        col = len(data[data.rfind(b"\n", 0, s) + 1 : s].decode("utf-8", "replace"))
        return line == hit.line and col == hit.column


def _score(hits: Sequence[Hit], gold: Sequence[tuple[str, int, int]]) -> tuple[float, float, float]:
    found: set[int] = set()
    gains = []
    for h in hits:
        g = 0
        for gi, (path, a, b) in enumerate(gold):
            if gi not in found and h.path == path and a <= h.line <= b:
                found.add(gi)
                g = 1
                break
        gains.append(g)
    recall = len(found) / len(gold)
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains[:10]))
    idcg = sum(1 / math.log2(i + 2) for i in range(min(10, len(gold))))
    mrr = next((1 / (i + 1) for i, g in enumerate(gains[:10]) if g), 0.0)
    return recall, dcg / idcg, mrr


def open_indexes(golden: GoldenSet, index_dir: Path) -> dict[str, Index]:
    """One index per corpus the set uses, built into `index_dir/<corpus>` (reused when already there)."""
    out = {}
    for corpus in golden.corpora():
        d = index_dir / corpus
        try:
            idx = Index.open(d)
        except (OSError, ValueError):
            idx = Index.build(golden.roots[corpus], d)
        out[corpus] = idx
    return out


def _isolate(idx: Index, scratch: Path) -> None:
    idx.guard = Guard()
    idx.canary = Canary(idx.guard, idx.flags, state_path=scratch / f"canary-{id(idx)}.json")


def _generated_checks(root: Path, n: int, seed: int) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    """Queries cut from the corpus itself: line fragments for `search`, and literal, case-folded, word and
    regex greps built from its identifiers."""
    rng = random.Random(seed)
    files = sorted(p for p in root.rglob("*.py") if p.is_file())
    lines: list[str] = []
    for p in files:
        lines += [ln.strip() for ln in p.read_text("utf-8", "replace").splitlines() if len(ln.strip()) >= 8]
    if not lines:
        return [], []
    searches, greps = [], []
    for _ in range(n):
        ln = rng.choice(lines)
        a = rng.randrange(0, max(1, len(ln) - 4))
        frag = ln[a : a + rng.randint(4, 24)].strip()
        if frag:
            searches.append(frag)
        words = re.findall(r"[A-Za-z_][A-Za-z0-9_]{3,}", rng.choice(lines))
        if words:
            w = rng.choice(words)
            kind = rng.randrange(4)
            if kind == 0:
                greps.append((w, {"regex": False}))
            elif kind == 1:
                greps.append((w.upper(), {"regex": False, "ignore_case": True}))
            elif kind == 2:
                greps.append((w, {"regex": False, "word": True}))
            else:
                greps.append((re.escape(w[:4]) + r"\w*\(", {"regex": True}))
    return searches, greps


def _lat(samples: Mapping[str, list[float]]) -> dict[str, dict[str, Any]]:
    return {
        stage: {
            "samples": len(xs),
            "p50_ms": percentile(xs, 50),
            "p95_ms": percentile(xs, 95),
            "p99_ms": percentile(xs, 99),
        }
        for stage, xs in samples.items()
    }


def _mean(xs: list[float]) -> float | None:
    return statistics.fmean(xs) if xs else None


def run_quality_gates(
    golden: GoldenSet,
    *,
    indexes: Mapping[str, Index] | None = None,
    index_dir: str | Path | None = None,
    k: int = 50,
    latency_repeats: int = 5,
    generated: int = 60,
    seed: int = 13,
    thresholds: Thresholds = THRESHOLDS,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the gates and return the runbook's report (`{"quality_gates_report": {...}}`)."""
    started = time.time()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lens-gates-") as scratch_s:
        scratch = Path(scratch_s)
        idxs = dict(indexes) if indexes is not None else open_indexes(golden, Path(index_dir or scratch))
        for idx in idxs.values():
            _isolate(idx, scratch)
        report = _run(golden, idxs, k, latency_repeats, generated, seed, thresholds, progress)
    report["started_at"] = started
    report["finished_at"] = time.time()
    report["duration_s"] = round(time.perf_counter() - t0, 3)
    _log.info(
        "quality_gates_run",
        status=report["status"],
        seconds=report["duration_s"],
        blocking=len(report["blocking_issues"]),
    )
    return {"quality_gates_report": report}


def _run(
    golden: GoldenSet,
    idxs: Mapping[str, Index],
    k: int,
    repeats: int,
    generated: int,
    seed: int,
    th: Thresholds,
    progress: Progress | None,
) -> dict[str, Any]:
    queries = golden.queries
    search_gen, grep_gen = (
        _generated_checks(golden.roots["orig"], generated, seed) if "orig" in idxs else ([], [])
    )
    literal = [q.query for q in queries if q.kind == "ident" and q.corpus == "orig"]
    total = len(queries) * (2 + repeats) + len(literal) * 2 + len(search_gen) + len(grep_gen)
    done = 0

    def tick(n: int, phase: str) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total, phase)

    checkers = {c: _SpanChecker(golden.roots[c]) for c in idxs}
    modes: dict[str, dict[str, Any]] = {}
    fallbacks = 0
    for mode, native in (("baseline", False), ("candidate", True)):
        per_kind: dict[str, dict[str, list[float]]] = {}
        lat: dict[str, list[float]] = {s: [] for s in STAGE_KEYS}
        spans = spans_ok = 0
        search_mode: Literal["auto", "lex"] = "auto" if native else "lex"
        for idx in idxs.values():
            idx.flags.set("stage_a.native", native, reason="quality gates", source="ops")
        try:
            for rep in range(1 + (repeats if native else 0)):
                for q in queries:
                    res = idxs[q.corpus].search(q.query, k=k, mode=search_mode)
                    if native and res.path != "native":
                        fallbacks += 1
                    # The candidate's first pass scores relevance and warms the caches; its latency is taken
                    # from the repeats (steady state). The baseline path is measured on its one pass.
                    timed = rep > 0 or not native
                    for stage in STAGE_KEYS:
                        if (
                            timed
                            and stage in res.timings_ms
                            and (stage != "stage_a" or res.path == "native" or not native)
                        ):
                            lat[stage].append(res.timings_ms[stage])
                    if rep == 0:
                        hits = list(res.hits)[:k]
                        r, n, m = _score(hits, q.gold)
                        for kind in (q.kind, "all"):
                            row = per_kind.setdefault(kind, {"recall@50": [], "ndcg@10": [], "mrr@10": []})
                            row["recall@50"].append(r)
                            row["ndcg@10"].append(n)
                            row["mrr@10"].append(m)
                        spans += len(hits)
                        spans_ok += sum(checkers[q.corpus].ok(h) for h in hits)
                    tick(1, f"{search_mode} run {rep + 1}" if native else "baseline")
        finally:
            for idx in idxs.values():
                idx.flags.reset("stage_a.native", reason="quality gates done", source="ops")
        modes[mode] = {
            "mode": search_mode,
            "path": "native" if native else "reference",
            "queries": len(queries),
            "relevance": {
                kind: {name: _mean(xs) for name, xs in row.items()} | {"n": len(row["recall@50"])}
                for kind, row in sorted(per_kind.items())
            },
            "span_coverage": spans_ok / spans if spans else None,
            "hits": spans,
            "hits_exact": spans_ok,
            "latency_ms": _lat(lat),
        }

    # Consistency: the set's literal queries (as searches and as word greps) and a generated set.
    checks = 0
    violations = 0
    examples: list[dict[str, Any]] = []
    if "orig" in idxs:
        idx = idxs["orig"]
        for batch_s, batch_g, phase in (
            (literal, [(q, {"regex": False, "word": True}) for q in literal], "consistency (literal)"),
            (search_gen, grep_gen, "consistency (generated)"),
        ):
            rep_s = consistency_violations(idx, searches=batch_s, k=k)
            tick(len(batch_s), phase)
            rep_g = consistency_violations(idx, greps=batch_g)
            tick(len(batch_g), phase)
            for one in (rep_s, rep_g):
                checks += one.checked
                violations += one.violations
                examples += one.examples
    consistency = {
        "checked": checks,
        "violations": violations,
        "literal_queries": len(literal),
        "generated_searches": len(search_gen),
        "generated_greps": len(grep_gen),
        "examples": examples[:5],
    }

    gates = _gates(modes, consistency, fallbacks, th)
    blocking = [f"{g.gate}: {g.detail}" for g in gates if g.passed is False]
    blocking += [f"{g.gate}: insufficient data ({g.detail})" for g in gates if g.passed is None]
    if fallbacks:
        blocking.append(f"stage_a fell back to the reference scanner on {fallbacks} candidate queries")
    recs = [RECOMMENDATIONS[g.gate] for g in gates if g.passed is False and g.gate in RECOMMENDATIONS]
    recs += [
        f"{g.gate}: collect more samples (a larger golden set or more repeats) before deciding"
        for g in gates
        if g.passed is None
    ]
    if any(g.passed is False for g in gates) or fallbacks:
        status = "failed"
    elif any(g.passed is None for g in gates):
        status = "insufficient data"
    else:
        status = "passed"
    return {
        "status": status,
        "passed": status == "passed",
        "lens_version": __version__,
        "golden_set": golden.summary(),
        "gates": [g.as_dict() for g in gates],
        "blocking_issues": blocking,
        "recommendations": recs,
        "metrics": {
            "baseline": modes["baseline"],
            "candidate": modes["candidate"],
            "consistency": consistency,
            "stage_a_fallbacks": fallbacks,
        },
        "thresholds": th.__dict__.copy(),
    }


def _gates(
    modes: Mapping[str, Mapping[str, Any]], cons: Mapping[str, Any], fallbacks: int, th: Thresholds
) -> list[GateResult]:
    base, cand = modes["baseline"], modes["candidate"]
    out = []

    hits = base["hits"] + cand["hits"]
    ok = base["hits_exact"] + cand["hits_exact"]
    cov = ok / hits if hits else None
    if hits < th.min_hits or cov is None:
        out.append(
            GateResult("span_coverage", cov, th.span_coverage, None, f"{hits} hits < {th.min_hits}", hits)
        )
    else:
        out.append(
            GateResult(
                "span_coverage",
                cov,
                th.span_coverage,
                cov >= th.span_coverage,
                f"{ok}/{hits} hits exact",
                hits,
            )
        )

    nq = cand["relevance"].get("all", {}).get("n", 0)
    b_all, c_all = base["relevance"].get("all", {}), cand["relevance"].get("all", {})
    enough = nq >= th.min_queries
    r_b, r_c = b_all.get("recall@50"), c_all.get("recall@50")
    out.append(
        GateResult(
            "recall_at_50",
            r_c,
            r_b,
            (r_c + 1e-12 >= r_b) if enough and r_b is not None and r_c is not None else None,
            f"candidate {_f(r_c)} vs baseline {_f(r_b)} over {nq} queries"
            if enough
            else f"{nq} queries < {th.min_queries}",
            nq,
        )
    )

    n_b, n_c = b_all.get("ndcg@10"), c_all.get("ndcg@10")
    e2e_b = base["latency_ms"]["total"]["p95_ms"]
    e2e_c = cand["latency_ms"]["total"]["p95_ms"]
    if not enough or n_b is None or n_c is None:
        out.append(GateResult("ndcg_at_10", n_c, None, None, f"{nq} queries < {th.min_queries}", nq))
    else:
        need = n_b * (1 + th.ndcg_gain)
        gain = n_c >= need - 1e-12
        unchanged = abs(n_c - n_b) <= th.ndcg_unchanged
        perf_win = e2e_b is not None and e2e_c is not None and e2e_c < e2e_b
        why = f"{_f(n_c)} vs baseline {_f(n_b)} (+{th.ndcg_gain:.0%} needs {_f(need)})" + (
            "; unchanged with a latency win" if not gain and unchanged and perf_win else ""
        )
        out.append(GateResult("ndcg_at_10", n_c, need, gain or (unchanged and perf_win), why, nq))

    checked, viol = cons["checked"], cons["violations"]
    out.append(
        GateResult(
            "consistency_violations",
            float(viol),
            0.0,
            (viol == 0) if checked >= th.min_consistency_checks else None,
            f"{viol} of {checked} queries disagree"
            if checked >= th.min_consistency_checks
            else f"{checked} checks < {th.min_consistency_checks}",
            checked,
        )
    )

    a = cand["latency_ms"]["stage_a"]
    n = a["samples"]
    measured = n >= th.min_latency_samples
    out.append(
        GateResult(
            "stage_a_p95_ms",
            a["p95_ms"],
            th.stage_a_p95_ms,
            (a["p95_ms"] <= th.stage_a_p95_ms) if measured else None,
            f"p95 {_f(a['p95_ms'])} ms over {n} native searches"
            if measured
            else f"{n} samples < {th.min_latency_samples}",
            n,
        )
    )
    # As the guard's tail alert: p99 over 2 x p95 breaks the SLO, unless p99 is under the floor (at tens of
    # microseconds one scheduler hiccup doubles a p99; that is not a latency problem).
    tail_limit = None if a["p95_ms"] is None else max(th.tail_ratio * a["p95_ms"], th.tail_floor_ms)
    out.append(
        GateResult(
            "tail_latency",
            a["p99_ms"],
            tail_limit,
            (a["p99_ms"] <= tail_limit) if measured and tail_limit is not None else None,
            f"p99 {_f(a['p99_ms'])} ms vs max(2 x p95, {th.tail_floor_ms:g} ms) = {_f(tail_limit)} ms"
            if measured
            else f"{n} samples < {th.min_latency_samples}",
            n,
        )
    )

    nb, nc = base["latency_ms"]["total"]["samples"], cand["latency_ms"]["total"]["samples"]
    enough_e2e = min(nb, nc) >= th.min_queries and e2e_b and e2e_c is not None
    ratio = e2e_c / e2e_b if enough_e2e and e2e_b and e2e_c is not None else None
    out.append(
        GateResult(
            "e2e_p95_regression",
            ratio,
            1.0 + th.e2e_max_regression,
            (ratio <= 1.0 + th.e2e_max_regression) if ratio is not None else None,
            f"candidate p95 {_f(e2e_c)} ms / baseline p95 {_f(e2e_b)} ms"
            if ratio is not None
            else f"{min(nb, nc)} samples < {th.min_queries}",
            min(nb, nc),
        )
    )
    return out


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def format_table(report: Mapping[str, Any]) -> str:
    """The gates as a readable table, then the blocking issues and recommendations."""
    r = report["quality_gates_report"]
    rows = [("gate", "value", "threshold", "status", "samples")]
    rows += [
        (g["gate"], _f(g["value"]), _f(g["threshold"]), g["status"], str(g["samples"])) for g in r["gates"]
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    m = r["metrics"]
    lines.append("")
    for mode in ("baseline", "candidate"):
        mm = m[mode]
        rel = mm["relevance"].get("all", {})
        lat = mm["latency_ms"]
        lines.append(
            f"{mode:9} ({mm['mode']}, {mm['path']}): R@50 {_f(rel.get('recall@50'))}  nDCG@10 "
            f"{_f(rel.get('ndcg@10'))}  MRR@10 {_f(rel.get('mrr@10'))}  spans {_f(mm['span_coverage'])}  "
            + "  ".join(
                f"{s} p95 {_f(lat[s]['p95_ms'])}/p99 {_f(lat[s]['p99_ms'])} ms"
                for s in STAGE_KEYS
                if lat[s]["samples"]
            )
        )
    lines.append(
        f"\nstatus: {r['status']} ({r['golden_set']['name']}, {r['golden_set']['queries']} queries, "
        f"{r['duration_s']} s)"
    )
    for b in r["blocking_issues"]:
        lines.append(f"  blocking: {b}")
    for rec in r["recommendations"]:
        lines.append(f"  recommend: {rec}")
    return "\n".join(lines)


def summarize(report: Mapping[str, Any]) -> dict[str, Any]:
    """The few numbers a night records from one gate run."""
    r = report["quality_gates_report"]
    return {"status": r["status"], **{g["gate"]: g["value"] for g in r["gates"]}}
