"""Nightly validation and sign-off.

A night runs the quality gates again and again for its whole duration while several threads put a
bounded, mixed query load on the same indexes (identifier and natural-language searches, literal and
regex greps, at most `load_qps` queries a second in all). The night passes when every gate run passed and
the load's error rate stayed within the runbook's 5 %. It is recorded (pass or fail, metrics, failures)
in the ops database, never overwritten.

Nights are keyed by their UTC date; `force_night=N` records a run as night "forced-N" instead, so tests
and drills can play three nights in an afternoon. A night run more than once counts by its latest run.
Sign-off: a release candidate is promotable once the nights recorded since it was cut end in
`REQUIRED_NIGHTS` consecutive passes (a failing night resets the count), its bundle's gate report passed,
and its compatibility drill passed.
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .. import __version__
from .._log import get_logger
from ..canary import Canary
from ..guard import Guard
from ..index import Index
from .gates import percentile, run_quality_gates, summarize
from .golden import GoldenSet
from .state import OpsStore

__all__ = ["ERROR_RATE_LIMIT", "REQUIRED_NIGHTS", "night_key", "run_nightly", "signoff"]

_log = get_logger("lens.ops.nightly")

REQUIRED_NIGHTS = 3
ERROR_RATE_LIMIT = 0.05
Progress = Callable[[float, float, str], object]


def night_key(force_night: int | None = None, now: float | None = None) -> str:
    if force_night is not None:
        return f"forced-{force_night}"
    return time.strftime("%Y-%m-%d", time.gmtime(now if now is not None else time.time()))


class _Load:
    """Worker threads searching their own `Index` objects until told to stop, at a capped rate."""

    def __init__(self, golden: GoldenSet, index_dirs: Mapping[str, Path], threads: int, qps: float) -> None:
        self.golden = golden
        self.index_dirs = index_dirs
        self.threads = threads
        self.interval = threads / qps if qps > 0 else 0.0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.count = 0
        self._workers: list[threading.Thread] = []
        self.started = self.finished = 0.0

    def start(self) -> None:
        self.started = time.perf_counter()
        for i in range(self.threads):
            t = threading.Thread(target=self._work, args=(i,), name=f"lens-nightly-load-{i}", daemon=True)
            t.start()
            self._workers.append(t)

    def join(self) -> None:
        self.stop.set()
        for t in self._workers:
            t.join()
        self.finished = time.perf_counter()

    def _work(self, seed: int) -> None:
        rng = random.Random(seed)
        scratch = Path(tempfile.gettempdir())
        idxs = {}
        for corpus, d in self.index_dirs.items():
            idx = Index.open(d)
            idx.guard = Guard()
            idx.canary = Canary(idx.guard, idx.flags, state_path=scratch / f"lens-load-{id(idx)}-absent.json")
            idxs[corpus] = idx
        queries = self.golden.queries
        while not self.stop.is_set():
            q = rng.choice(queries)
            idx = idxs[q.corpus]
            kind = rng.randrange(4)
            t = time.perf_counter()
            try:
                if kind == 0:
                    idx.search(q.query, k=10, mode="auto")
                elif kind == 1:
                    idx.search(q.query, k=50, mode="lex")
                elif kind == 2:
                    idx.grep(q.query.split()[0], regex=False, limit=200)
                else:
                    idx.grep(r"def \w*" + q.query.split()[0][:3].lower(), limit=200)
                ms = (time.perf_counter() - t) * 1000
                with self.lock:
                    self.count += 1
                    self.latencies.append(ms)
            except Exception as exc:  # a failing query is a measured failure of the night, not a crash
                with self.lock:
                    self.count += 1
                    self.errors.append(f"{type(exc).__name__}: {exc}")
            spent = time.perf_counter() - t
            if self.interval > spent:
                self.stop.wait(self.interval - spent)

    def metrics(self) -> dict[str, Any]:
        with self.lock:
            lat = list(self.latencies)
            n, errs = self.count, list(self.errors)
        secs = max(self.finished - self.started, 1e-9)
        return {
            "threads": self.threads,
            "queries": n,
            "errors": len(errs),
            "error_rate": len(errs) / n if n else None,
            "qps": n / secs,
            "p50_ms": percentile(lat, 50),
            "p95_ms": percentile(lat, 95),
            "p99_ms": percentile(lat, 99),
            "error_examples": sorted(set(errs))[:5],
        }


def run_nightly(
    store: OpsStore,
    golden: GoldenSet,
    *,
    duration_s: float,
    force_night: int | None = None,
    threads: int = 3,
    load_qps: float = 30.0,
    index_dir: str | Path | None = None,
    progress: Progress | None = None,
    **gate_options: Any,
) -> dict[str, Any]:
    """Run one night and record it; returns the night's record."""
    if duration_s < 0:
        raise ValueError("duration must be >= 0")
    key = night_key(force_night)
    started = time.time()
    deadline = time.perf_counter() + duration_s
    failures: list[str] = []
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lens-nightly-") as tmp:
        base = Path(index_dir) if index_dir is not None else Path(tmp)
        idxs = {}
        for corpus in golden.corpora():
            d = base / corpus
            try:
                idxs[corpus] = Index.open(d)
            except (OSError, ValueError):
                idxs[corpus] = Index.build(golden.roots[corpus], d)
        load = _Load(golden, {c: i.index_dir for c, i in idxs.items()}, threads, load_qps)
        load.start()
        last: dict[str, Any] | None = None
        try:
            i = 0
            while i == 0 or time.perf_counter() < deadline:
                i += 1
                if progress is not None:
                    progress(
                        min(duration_s, duration_s - (deadline - time.perf_counter())),
                        duration_s,
                        f"night {key}, gate run {i}",
                    )
                last = run_quality_gates(golden, indexes=idxs, **gate_options)
                r = last["quality_gates_report"]
                runs.append(summarize(last))
                if r["status"] != "passed":
                    failures += [f"run {i}: {b}" for b in r["blocking_issues"]] or [f"run {i}: {r['status']}"]
        finally:
            load.join()
        if progress is not None:
            progress(duration_s, duration_s, f"night {key}, {len(runs)} gate runs")
    lm = load.metrics()
    if lm["queries"] == 0:
        failures.append("the query load ran no queries")
    elif lm["error_rate"] is not None and lm["error_rate"] > ERROR_RATE_LIMIT:
        failures.append(f"load error rate {lm['error_rate']:.1%} over {ERROR_RATE_LIMIT:.0%}")
    passed = not failures
    finished = time.time()
    metrics = {
        "gate_runs": len(runs),
        "gate_runs_passed": sum(r["status"] == "passed" for r in runs),
        "runs": runs,
        "load": lm,
        "golden_set": golden.summary(),
        "requested_duration_s": duration_s,
    }
    if last is not None:
        store.record_gate_run(last, source=f"nightly {key}")
    night_id = store.record_night(
        key, force_night is not None, started, finished, passed, __version__, metrics, failures
    )
    _log.info("night_recorded", night=key, passed=passed, gate_runs=len(runs), failures=len(failures))
    return {
        "id": night_id,
        "night": key,
        "forced": force_night is not None,
        "passed": passed,
        "started_at": started,
        "finished_at": finished,
        "duration_s": finished - started,
        "metrics": metrics,
        "failures": failures,
    }


def _collapse(nights: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per night (its latest run), in the order of those runs."""
    latest: dict[str, dict[str, Any]] = {}
    for n in nights:
        latest[n["night"]] = n
    return sorted(latest.values(), key=lambda n: n["id"])


def streak(nights: list[dict[str, Any]]) -> int:
    count = 0
    for n in reversed(_collapse(nights)):
        if not n["passed"]:
            break
        count += 1
    return count


def signoff(store: OpsStore, version: str) -> dict[str, Any]:
    """Is `version` promotable, and if not, why not."""
    rel = store.release(version)
    reasons: list[str] = []
    if rel is None:
        return {
            "version": version,
            "promotable": False,
            "consecutive_passing_nights": 0,
            "required_nights": REQUIRED_NIGHTS,
            "nights": [],
            "gates_passed": None,
            "compat_drill": None,
            "promoted": False,
            "reasons": [f"no release candidate {version}: run `lens cut-rc --version {version}`"],
        }
    nights = store.nights(after_id=rel["after_night_id"])
    run = streak(nights)
    if run < REQUIRED_NIGHTS:
        reasons.append(
            f"{run} consecutive passing night(s) since {version} was cut; {REQUIRED_NIGHTS} needed"
        )
    gates_passed = rel["bundle"]["gate_report"]["quality_gates_report"]["status"] == "passed"
    if not gates_passed:
        reasons.append("the release bundle's quality gates did not pass")
    drill = store.latest_drill(version)
    if drill is None:
        reasons.append(f"no compatibility drill for {version}: run `lens compat-drill --version {version}`")
    elif not drill["passed"]:
        reasons.append("the latest compatibility drill failed")
    promoted = any(p["version"] == version for p in store.promotions())
    return {
        "version": version,
        "promotable": not reasons,
        "consecutive_passing_nights": run,
        "required_nights": REQUIRED_NIGHTS,
        "nights": [
            {
                "id": n["id"],
                "night": n["night"],
                "passed": n["passed"],
                "forced": n["forced"],
                "finished_at": n["finished_at"],
                "failures": n["failures"][:5],
            }
            for n in _collapse(nights)
        ],
        "gates_passed": gates_passed,
        "compat_drill": None if drill is None else {"passed": drill["passed"], "at": drill["at"]},
        "promoted": promoted,
        "reasons": reasons,
    }
