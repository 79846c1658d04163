"""`lens.cluster.open` and `ClusterIndex`: a sharded set served by Ray actors.

Each actor (`_ShardServer`) opens a group of shards (read-only, mmapped by the native core) with the
set's global statistics registered for them, so every shard scores on the set's scale. A query fans
out one actor call per actor (the call carries every shard the actor holds, answered on the actor's
threads, each shard's outcome apart), waits with `ray.wait` until the deadline (`budget_ms`, by default
the Stage-A SLO's p99 limit plus `FANOUT_ALLOWANCE_MS` for Ray's round trips), retries the shards of an
actor that died on the next replica while time is left, and merges the shards' answers as one index
orders them (`lens.cluster.merge`). A shard that did not answer in time, or whose actor was dead on
every replica, is listed in `result.info["shards_missing"]` and the result has `truncated=True`; the
call never waits past its deadline. Actors restart by themselves (`max_restarts`).

Every shard's latency and errors go to the set's guard (a `lens.guard.Guard` of its own, or the one
`open(guard=)` names) as a stage named `shard.<id>`: a shard that is repeatedly slow or failing trips its
own breaker and raises the guard's alerts as a stage does, and `dashboard()` shows the slowest shards
with their breaker state. (The set's guard is not the process's: a set's fan-out times in the process's
end-to-end window would read as a regression of the new route to its canary.)
"""

from __future__ import annotations

import os
import pickle
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import _lens
from .._log import get_logger
from .._validate import check_grep, check_search
from ..errors import LensError, QueryError
from ..guard import Guard, QueryEvent
from ..pipeline import MODES, monotonic, run_search
from ..symbols import is_identifier, rows_to_hits, stage_b_hook
from ..types import Hit, Mode, SearchResult
from . import manifest as mf
from ._ray import connect
from .merge import UNION_EVERY, fallback_names, identifier_hits, merge_hits

__all__ = ["FANOUT_ALLOWANCE_MS", "SHARD_STAGE", "UNION_EVERY", "ClusterIndex", "merge_hits", "open_set"]

_log = get_logger("lens.cluster")

#: Added to the Stage-A SLO for the default deadline: Ray's submit, schedule and return per call.
FANOUT_ALLOWANCE_MS = 250.0
#: How long `open` waits for the actors to have opened their shards.
OPEN_TIMEOUT_S = 120.0
#: Per-shard latency samples kept for `dashboard()`.
WINDOW = 512
#: The guard's stage name for a shard: `shard.<id>`.
SHARD_STAGE = "shard.{}"

#: A shard search's Stage-B and Stage-A hits, apart, as the query's Stage-B hook saw them (per thread).
_parts = threading.local()


class _Recorder:
    """A query's snapshot handle that keeps the Stage-B rows it hands the Stage-B hook."""

    __slots__ = ("_snap", "rows")

    def __init__(self, snap: Any) -> None:
        self._snap = snap
        self.rows: list[Any] | None = None

    def stage_b(self, query: Any, k: int) -> tuple[list[Any], bool]:
        rows, cached = self._snap.stage_b(query, k)
        self.rows = rows
        return rows, cached

    def __getattr__(self, name: str) -> Any:
        return getattr(self._snap, name)


def _stage_b_apart(call: Any) -> Any:
    """Stage-B on a shard (its per-index hook): the usual hook, with the Stage-B rows and Stage-A hits it
    was given kept for the coordinator, which merges them once over the set."""
    rec = _Recorder(call.snapshot)
    hits = stage_b_hook(replace(call, snapshot=rec))
    if rec.rows is not None:
        _parts.value = (rows_to_hits(rec.rows), list(call.hits))
    return hits


def _portable(e: BaseException) -> BaseException:
    """`e`, or a RuntimeError saying what it was when it cannot travel back through Ray."""
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:
        return RuntimeError(f"{type(e).__name__}: {e}")


class _ShardServer:
    """A Ray actor: a group of shards of one set, opened with the set's statistics."""

    def __init__(self, set_dir: str, shards: list[tuple[str, str]], stats: dict[str, Any] | None) -> None:
        from .. import _state
        from ..index import Index

        # The set's canary state lives beside its manifest: a kill switch thrown for the set holds every
        # shard here, and an actor that restarts reads it back before its first query.
        _state.set_state_dir(Path(set_dir) / mf.STATE_DIR)
        self._restore_flags(Path(set_dir))
        self.indexes: dict[str, Any] = {}
        self.sizes: dict[str, tuple[int, dict[str, int]]] = {}
        self.errors: dict[str, BaseException] = {}
        for sid, rel in shards:
            d = str(Path(set_dir) / rel)
            try:
                if stats is not None and len(shards) >= 1:
                    _lens.set_global_stats(
                        d, stats["docs"], str(Path(set_dir) / mf.DF_FILE), stats["len_sums"]
                    )
                self.indexes[sid] = idx = Index.open(d)
                idx.stages["stage_b"] = _stage_b_apart
            except Exception as e:  # reported by `ready`, raised by the driver as it is
                self.errors[sid] = e
        self.pool = ThreadPoolExecutor(max_workers=max(1, len(shards)), thread_name_prefix="lens-shard")

    def reload(self, set_dir: str, shards: list[tuple[str, str]], stats: dict[str, Any] | None) -> int:
        """Re-registers the set's statistics and re-opens the shards (after a refresh)."""
        self.pool.shutdown(wait=False)
        self.__init__(set_dir, shards, stats)  # type: ignore[misc]
        if self.errors:
            raise next(iter(self.errors.values()))
        return os.getpid()

    def ready(self) -> tuple[int, dict[str, BaseException]]:
        return os.getpid(), self.errors

    @staticmethod
    def _restore_flags(set_dir: Path) -> None:
        """The set's flag overrides, set again in a (re)started actor; a kill switch wins over them."""
        from .._state import GLOBAL_CANARY, GLOBAL_FLAGS
        from ..canary import STAGE_FLAGS

        saved = mf.read_flags(set_dir)
        if saved and GLOBAL_CANARY.killed:
            saved = {k: v for k, v in saved.items() if k not in STAGE_FLAGS}
        if saved:
            GLOBAL_FLAGS.set_many(saved, reason="the set's flags (restored)", source="cluster")

    def set_flags(self, values: dict[str, Any], reason: str) -> dict[str, Any]:
        from .._state import GLOBAL_FLAGS

        GLOBAL_FLAGS.set_many(values, reason=reason, source="cluster")
        return dict(GLOBAL_FLAGS.snapshot())

    def flags(self) -> dict[str, Any]:
        from .._state import GLOBAL_FLAGS

        return dict(GLOBAL_FLAGS.snapshot())

    def kill_switch(self, reason: str) -> dict[str, Any]:
        from .._state import GLOBAL_CANARY

        return GLOBAL_CANARY.kill_switch(reason)

    def canary_status(self) -> dict[str, Any]:
        from .._state import GLOBAL_CANARY

        return GLOBAL_CANARY.status()

    def run(
        self, sids: list[str], op: str, args: tuple[Any, ...]
    ) -> tuple[dict[str, tuple[bool, Any, float]], float]:
        """One call for several shards: `op` ("prepare", "search" or "call") on each of `sids`, on this
        actor's threads. Returns each shard's (ok, answer or error, ms) and the call's own ms."""
        t0 = time.perf_counter()

        def one(sid: str) -> tuple[bool, Any, float]:
            t = time.perf_counter()
            try:
                got = getattr(self, "_" + op)(sid, *args)
                return True, got, (time.perf_counter() - t) * 1000
            except Exception as e:
                return False, _portable(e), (time.perf_counter() - t) * 1000

        if len(sids) == 1:
            out = {sids[0]: one(sids[0])}
        else:
            out = dict(zip(sids, self.pool.map(one, sids), strict=True))
        return out, (time.perf_counter() - t0) * 1000

    def _prepare(self, sid: str, query: str, df: bool, fallback: str | None) -> tuple[Any, Any]:
        """The set's first round for a query: Stage-A's counts (the DFS phase) when `df`, and Stage-B's
        fallback inputs: "count" the definitions of the name, "scan" also the stand-in candidates."""
        native = self.indexes[sid]._native
        counts = _lens.lexical_document_frequencies(native, query) if df else None
        names = None
        if fallback is not None:
            names = _lens.stage_b_fallback_candidates(native, query, fallback == "scan")
        return counts, names

    def _search(
        self,
        sid: str,
        query: str,
        k: int,
        kw: dict[str, Any],
        lexical: tuple[list[int], int] | None,
        fallback: list[str] | None,
        union_k: int | None,
    ) -> tuple[list[Hit], bool, dict[str, Any]]:
        # The set's decisions, for this thread's search (the native calls run on this thread): Stage-A's
        # counts, Stage-B's fallback names, and a union route's two lists apart (k each).
        _lens.set_lexical_stats(*(lexical or (None, 0)))
        _lens.set_stage_b_fallback(fallback)
        _lens.set_union_parts(union_k)
        _parts.value = None
        try:
            # Unlifted scores: the coordinator merges shards by them, then lifts once as one index does.
            want = min(2 * union_k, int(_lens.MAX_K)) if union_k else k
            r = run_search(self.indexes[sid], query, want, raw_scores=True, **kw)
            parts = _parts.value
        finally:
            _parts.value = None
            _lens.set_union_parts(None)
            _lens.set_stage_b_fallback(None)
            _lens.set_lexical_stats(None)
        info: dict[str, Any] = {
            "route": r.info.get("route"),
            "query_route": r.info.get("query_route"),
            "path": r.path,
        }
        hits = r.hits
        if parts is not None:  # Stage-B ran: its hits and Stage-A's, apart and whole
            info["stage_b"], hits = parts
        # The definition index breaks score ties by file order (static rank, then path): the prior of each
        # of its hits lets the coordinator do the same across shards.
        idx = self.indexes[sid]
        sizes = self.sizes.get(sid)
        gen = idx._native.snapshot().generation
        if sizes is None or sizes[0] != gen:
            sizes = self.sizes[sid] = (gen, dict(idx._native.files()))
        info["priors"] = [
            _lens.static_prior(h.path, sizes[1].get(h.path, 0)) if h.why[:1] == ("bm25f",) else 0.0
            for h in hits
        ]
        return hits, r.truncated, info

    def _call(self, sid: str, method: str, args: tuple[Any, ...], kw: dict[str, Any]) -> Any:
        return getattr(self.indexes[sid], method)(*args, **kw)


class _ShardWindow:
    """Per-shard latency and errors for the dashboard."""

    def __init__(self) -> None:
        self.ms: deque[float] = deque(maxlen=WINDOW)
        self.calls = 0
        self.errors = 0
        self.missing = 0

    def p(self, q: float) -> float | None:
        if not self.ms:
            return None
        s = sorted(self.ms)
        return s[min(len(s) - 1, int(q * len(s)))]


class ClusterIndex:
    """A sharded set, searched like one `Index`: `search`, `grep`, `definitions`, `stats`."""

    def __init__(
        self,
        set_dir: Path,
        m: mf.SetManifest,
        ray: Any,
        groups: list[list[str]],
        replicas: int,
        actor_opts: dict[str, Any],
        guard: Guard | None = None,
    ) -> None:
        self.set_dir = set_dir
        #: The set's own guard (unless `open(guard=)` names one): every shard's latency and errors, as
        #: stage `shard.<id>`, and each query's end-to-end time, as the process's guard keeps an index's.
        self.guard = Guard() if guard is None else guard
        self.manifest = m
        self._ray = ray
        self._shards = [s for s in m.ok_shards()]
        self._order = {s.id: i for i, s in enumerate(self._shards)}
        self._groups = groups
        self._replicas = replicas
        self._actor_opts = actor_opts
        self._lock = threading.Lock()
        self.windows: dict[str, _ShardWindow] = {s.id: _ShardWindow() for s in self._shards}
        # actors[replica][group] and, per shard, its group
        self._group_of = {sid: g for g, ids in enumerate(groups) for sid in ids}
        self.actors: list[list[Any]] = []

    # -- lifecycle ------------------------------------------------------------------------------------
    def _start(self) -> None:
        remote = self._ray.remote(_ShardServer).options(**self._actor_opts)
        by_id = {s.id: s for s in self._shards}
        for _ in range(self._replicas):
            row = []
            for ids in self._groups:
                row.append(
                    remote.remote(
                        str(self.set_dir),
                        [(i, by_id[i].dir) for i in ids],
                        self.manifest.stats if len(self._shards) > 1 else None,
                    )
                )
            self.actors.append(row)
        readies = [a.ready.remote() for row in self.actors for a in row]
        for _pid, errors in self._ray.get(readies, timeout=OPEN_TIMEOUT_S):
            for sid in sorted(errors, key=self._order.__getitem__):
                self.close()
                raise errors[sid]

    def close(self) -> None:
        """Stops this set's actors."""
        for row in self.actors:
            for a in row:
                self._ray.kill(a, no_restart=True)
        self.actors = []

    def __enter__(self) -> ClusterIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def shard_ids(self) -> list[str]:
        return [s.id for s in self._shards]

    def refresh(self, *, cpus_per_shard: float = 1.0, timeout_s: float = 3600.0) -> dict[str, dict[str, int]]:
        """Refresh every shard whose sources changed (one Ray task per shard; new term files take the
        set's statistics), then the set's document frequencies and counts, the manifest, and the actors.
        Returns each shard's added / changed / removed / unchanged counts. The set's average field
        lengths stay those of the build (scaled with the document count): term files already written
        keep their impacts, as a refreshed single index keeps each segment's."""
        from .build import refresh_shard, shard_task

        ray = self._ray
        task = shard_task(ray, refresh_shard, cpus_per_shard)
        stats = self.manifest.stats if len(self._shards) > 1 else None
        refs = {s.id: task.remote(str(self.set_dir), s.dir, stats) for s in self._shards}
        counts = dict(zip(refs, ray.get(list(refs.values()), timeout=timeout_s), strict=True))
        if self.manifest.stats is not None:
            old_docs = max(1, int(self.manifest.stats["docs"]))
            docs, terms = _lens.write_global_df(
                [str(self.set_dir / s.dir) for s in self._shards], str(self.set_dir / mf.DF_FILE)
            )
            self.manifest.stats = {
                **self.manifest.stats,
                "docs": int(docs),
                "terms": int(terms),
                "len_sums": [round(x * docs / old_docs) for x in self.manifest.stats["len_sums"]],
            }
        self.manifest.generation += 1
        mf.write(self.set_dir, self.manifest)
        by_id = {s.id: s for s in self._shards}
        stats = self.manifest.stats if len(self._shards) > 1 else None
        reloads = [
            a.reload.remote(str(self.set_dir), [(i, by_id[i].dir) for i in ids], stats)
            for row in self.actors
            for a, ids in zip(row, self._groups, strict=True)
        ]
        ray.get(reloads, timeout=OPEN_TIMEOUT_S)
        _log.info("set_refreshed", set_dir=str(self.set_dir), generation=self.manifest.generation)
        return counts

    def default_budget_ms(self) -> float:
        from .._state import GLOBAL_GUARD

        slo = GLOBAL_GUARD.slos.stage("stage_a")
        return (slo.p99_limit_ms() or slo.p95_ms) + FANOUT_ALLOWANCE_MS

    # -- fan-out --------------------------------------------------------------------------------------
    def _fan_out(
        self,
        budget_ms: float,
        op: str,
        args: tuple[Any, ...],
        skip: set[str] | None = None,
        acc: dict[str, tuple[float, bool]] | None = None,
    ) -> tuple[dict[str, Any], list[str], dict[str, str]]:
        """Runs `op(shard, *args)` on every shard, one call per actor, and collects answers until the
        deadline. The shards of an actor that died are retried on the next replica while time is left.
        Returns answers by shard, the shards missing (in shard order) and the errors seen. Every shard's
        latency (its own time in the actor plus its call's transport; a shard that missed the deadline,
        the wait it cost) and outcome go to the dashboard's window and the guard, or, with `acc`, are
        added there for the caller to record once per query. A `QueryError` (the caller's mistake) is
        raised as it is."""
        ray = self._ray
        t0 = time.monotonic()
        deadline = t0 + budget_ms / 1000.0
        calls: dict[Any, tuple[list[str], int, float]] = {}

        def submit(sids: list[str], replica: int) -> None:
            actor = self.actors[replica][self._group_of[sids[0]]]
            calls[actor.run.remote(sids, op, args)] = (sids, replica, time.monotonic())

        for ids in self._groups:
            sids = [sid for sid in ids if not (skip and sid in skip)]
            if sids:
                submit(sids, 0)
        got: dict[str, Any] = {}
        errors: dict[str, str] = {}
        samples: dict[str, tuple[float, bool]] = {}
        query_error: QueryError | None = None
        while calls:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _ = ray.wait(list(calls), num_returns=1, timeout=left)
            for ref in ready:
                sids, replica, sent = calls.pop(ref)
                rtt = (time.monotonic() - sent) * 1000
                try:
                    outcomes, call_ms = ray.get(ref, timeout=0)
                except (ray.exceptions.RayError, TimeoutError) as e:  # the actor died or is restarting
                    for sid in sids:
                        errors[sid] = f"{type(e).__name__}"
                        samples[sid] = (rtt, True)
                    if replica + 1 < self._replicas and time.monotonic() < deadline:
                        submit(sids, replica + 1)
                    continue
                transport = max(0.0, rtt - call_ms)
                for sid in sids:
                    ok, value, ms = outcomes[sid]
                    samples[sid] = (ms + transport, not ok)
                    if ok:
                        got[sid] = value
                        errors.pop(sid, None)
                    elif isinstance(value, QueryError):
                        query_error = value
                    else:
                        errors[sid] = f"{type(value).__name__}: {value}"
        missing = [s.id for s in self._shards if s.id not in got and not (skip and s.id in skip)]
        waited = (time.monotonic() - t0) * 1000
        for sid in missing:
            if sid not in samples:  # late: as slow as the deadline it missed
                samples[sid] = (waited, False)
            self.windows[sid].missing += 1
        if acc is None:
            self._record(samples, waited)
        else:
            for sid, (ms, err) in samples.items():
                before = acc.get(sid, (0.0, False))
                acc[sid] = (before[0] + ms, before[1] or err)
        if query_error is not None:
            raise query_error
        return got, missing, errors

    def _record(self, samples: dict[str, tuple[float, bool]], total_ms: float) -> None:
        """Every shard's part of one query, to the dashboard's windows and the guard: one event with a
        stage per shard, as a query's stages are."""
        for sid, (ms, err) in samples.items():
            w = self.windows[sid]
            w.calls += 1
            w.ms.append(ms)
            w.errors += int(err)
        stages = {SHARD_STAGE.format(sid): (ms, err, None) for sid, (ms, err) in samples.items()}
        self.guard.record(QueryEvent(True, total_ms, stages, None, False, None))

    def _sum_df(self, got: dict[str, Any]) -> tuple[list[int], int] | None:
        parts = [v[0] for v in got.values() if v[0] is not None]
        if not parts:
            return None
        df = [sum(col) for col in zip(*(p[0] for p in parts), strict=True)]
        return df, sum(p[1] for p in parts)

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        mode: Mode = "auto",
        budget_ms: float | None = None,
        key: str | bytes | None = None,
        **kwargs: Any,
    ) -> SearchResult:
        """Ranked search over every shard, merged as one index orders its hits; keyword arguments beyond
        `Index.search`'s own are passed to each shard's `Index.search` as they are. `budget_ms` is the
        deadline for the whole fan-out; shards that miss it are in `info["shards_missing"]` (and
        `truncated` is set)."""
        check_search(query, k, mode, MODES, budget_ms)
        budget = self.default_budget_ms() if budget_ms is None else float(budget_ms)
        kw = dict(kwargs, mode=mode, budget_ms=budget_ms, key=key)
        t0 = time.perf_counter()
        deadline = time.monotonic() + budget / 1000.0
        lexical: tuple[list[int], int] | None = None
        fallback: list[str] | None = None
        first_missing: list[str] = []
        samples: dict[str, tuple[float, bool]] = {}
        route = _lens.query_route(query)
        # A union route's two lists come back apart (k each) and are interleaved here once.
        union_k = k if route == "union" else None
        several = len(self._shards) > 1
        ident = several and mode != "lex" and is_identifier(query)
        if several and (route != "terms" or ident):
            # The first round: Stage-A's counts over every shard (the DFS phase), so each scores on the
            # set's scale, and for an identifier the names Stage-B falls back to over the whole set.
            got1, first_missing, _ = self._fan_out(
                budget, "prepare", (query, route != "terms", "count" if ident else None), acc=samples
            )
            lexical = self._sum_df(got1)
            cands = [v[1] for v in got1.values() if v[1] is not None]
            if cands and not any(c[1] for c in cands):
                # No shard defines the name: one index falls back to stand-ins, chosen over the whole set
                # (the candidates' scan is costly, so only now).
                left_ms = max(0.0, (deadline - time.monotonic()) * 1000.0)
                got2, missing2, _ = self._fan_out(left_ms, "prepare", (query, False, "scan"), acc=samples)
                first_missing = sorted(set(first_missing) | set(missing2), key=self._order.__getitem__)
                cands = [v[1] for v in got2.values() if v[1] is not None]
            fallback = fallback_names(cands) if cands else None
        left_ms = max(0.0, (deadline - time.monotonic()) * 1000.0)
        args = (query, k, kw, lexical, fallback, union_k)
        got, missing, errors = self._fan_out(left_ms, "search", args, skip=set(first_missing), acc=samples)
        missing = [s.id for s in self._shards if s.id in set(missing) | set(first_missing)]
        fell_back = {i.get("query_route") for _, _, i in got.values()} - {"terms"}
        if lexical is None and several and fell_back:
            # A question of stop words only: the definition index declined and Stage-A answered with
            # each shard's own counts. Once more, with the set's.
            left_ms = max(0.0, (deadline - time.monotonic()) * 1000.0)
            got_df, df_missing, _ = self._fan_out(left_ms, "prepare", (query, True, False), acc=samples)
            if got_df and not df_missing:
                lexical = self._sum_df(got_df)
                left_ms = max(0.0, (deadline - time.monotonic()) * 1000.0)
                args = (query, k, kw, lexical, fallback, union_k)
                again, missing2, errors2 = self._fan_out(left_ms, "search", args, acc=samples)
                if not missing2:
                    got, missing, errors = again, missing2, errors2
        truncated = bool(missing)
        routes: set[str] = set()
        query_routes: set[str] = set()
        per_shard: list[tuple[int, list[Hit]]] = []
        stage_b: list[list[Hit]] = []
        priors: dict[int, float] = {}
        for sid in sorted(got, key=self._order.__getitem__):
            shard_hits, trunc, shard_info = got[sid]
            truncated |= trunc
            routes.add(shard_info.get("route") or "")
            query_routes.add(shard_info.get("query_route") or "")
            per_shard.append((self._order[sid], shard_hits))
            if "stage_b" in shard_info:
                stage_b.append(shard_info["stage_b"])
            priors.update(zip(map(id, shard_hits), shard_info.get("priors", ()), strict=False))
        if stage_b:
            merged = identifier_hits(stage_b, per_shard, k, query)
        else:
            merged = merge_hits(per_shard, k, union=query_routes == {"union"}, query=query, priors=priors)
        # As one index: scores never rise down the merged list (`Index.search` lifts them the same way).
        hits = monotonic(merged)
        ms = (time.perf_counter() - t0) * 1000
        self._record(samples, ms)
        info: dict[str, Any] = {
            "shards": len(self._shards),
            "shards_answered": len(got),
            "shards_missing": missing,
            "shard_errors": errors,
            "routes": sorted(r for r in routes if r),
            "query_route": "/".join(sorted(r for r in query_routes if r)),
            "dfs": lexical is not None,
        }
        return SearchResult(
            hits=hits, timings_ms={"fanout": ms}, truncated=truncated, mode=mode, path="cluster", info=info
        )

    def _gather(
        self, method: str, args: tuple[Any, ...], kw: dict[str, Any], budget_ms: float | None
    ) -> dict[str, Any]:
        budget = self.default_budget_ms() * 4 if budget_ms is None else budget_ms
        got, missing, errors = self._fan_out(budget, "call", (method, args, kw))
        if missing:
            late = ", ".join(missing)
            raise TimeoutError(
                f"{method}: shards {late} did not answer within {budget:.0f} ms ({errors or 'late'})"
            )
        return got

    def grep(
        self, pattern: str, *, limit: int | None = None, budget_ms: float | None = None, **kwargs: Any
    ) -> list[Hit]:
        """Every matching line over every shard, in path then offset order (`Index.grep`'s keyword
        arguments pass through). A shard that does not answer within the deadline raises `TimeoutError`:
        grep promises every match."""
        check_grep(pattern, limit)
        got = self._gather("grep", (pattern,), dict(kwargs, limit=limit), budget_ms)
        hits = [h for sid in sorted(got, key=self._order.__getitem__) for h in got[sid]]
        hits.sort(key=lambda h: (h.path, h.byte_start))
        return hits if limit is None else hits[:limit]

    def definitions(self, name: str, *, budget_ms: float | None = None) -> list[Hit]:
        """Every definition of `name` over every shard: precise first, then in path order."""
        got = self._gather("definitions", (name,), {}, budget_ms)
        hits = [h for sid in sorted(got, key=self._order.__getitem__) for h in got[sid]]
        hits.sort(key=lambda h: ("precise" not in h.why, h.path, h.line))
        return hits

    def stats(self) -> dict[str, Any]:
        """Counts summed over shards, each shard's own stats under `shards`, and the set's statistics."""
        got = self._gather("stats", (), {}, None)
        per = {sid: got[sid] for sid in self.shard_ids}
        total = {
            key: sum(int(s.get(key, 0)) for s in per.values()) for key in ("files", "bytes", "index_bytes")
        }
        return {
            **total,
            "shards": per,
            "failed_shards": self.manifest.failed(),
            "global_stats": self.manifest.stats,
            "generation": self.manifest.generation,
        }

    def kill_switch(self, reason: str, *, timeout_s: float = 30.0) -> dict[str, Any]:
        """Throw the kill switch for the whole set: every actor of every replica sends its shards' queries
        down the baseline path at once, and the state persists in `dest/state/canary.json` (the runbook's
        kill switch, scoped to the set), so actors that restart keep it. Returns the canary status of
        the first actor; an actor that cannot be reached raises (the switch holds on the others)."""
        refs = [a.kill_switch.remote(reason) for row in self.actors for a in row]
        done: list[dict[str, Any]] = self._ray.get(refs, timeout=timeout_s)
        return done[0]

    def set_flags(self, values: dict[str, Any], *, reason: str, timeout_s: float = 30.0) -> dict[str, Any]:
        """Set flags for the whole set: checked first (an unknown flag or a bad value raises as
        `Flags.set` does and changes nothing), written to `dest/state/flags.json` so that restarted
        actors set them again, then set on every actor of every replica. Returns the first actor's
        flags. A kill switch in force still holds the stages it turned off on restart."""
        from ..flags import Flags

        Flags().set_many(values)  # validation only: raises before anything is written
        mf.write_flags(self.set_dir, {**mf.read_flags(self.set_dir), **values})
        refs = [a.set_flags.remote(dict(values), reason) for row in self.actors for a in row]
        done: list[dict[str, Any]] = self._ray.get(refs, timeout=timeout_s)
        return done[0]

    def _ask_any(self, method: str, timeout_s: float) -> Any:
        """`method()` of the first actor that answers: each actor in turn, again while `timeout_s` lasts
        (an actor that is restarting answers `ActorUnavailableError` for a moment; the set's state is
        the same on every actor)."""
        ray = self._ray
        deadline = time.monotonic() + timeout_s
        actors = [a for row in self.actors for a in row]
        while True:
            for a in actors:
                left = deadline - time.monotonic()
                try:
                    return ray.get(getattr(a, method).remote(), timeout=max(0.1, left))
                except (ray.exceptions.RayError, TimeoutError):
                    if time.monotonic() >= deadline:
                        raise
            time.sleep(0.2)

    def flags(self, *, timeout_s: float = 30.0) -> dict[str, Any]:
        """The set's flags, as its first actor that answers holds them."""
        got: dict[str, Any] = self._ask_any("flags", timeout_s)
        return got

    def canary_status(self, *, timeout_s: float = 30.0) -> dict[str, Any]:
        """The set's canary status (share, kill switch, state file), as its first actor that answers
        reads it."""
        status: dict[str, Any] = self._ask_any("canary_status", timeout_s)
        return status

    def dashboard(self) -> dict[str, Any]:
        """Per-shard latency (p50, p95 in ms over the last calls), calls, errors and misses, and the state
        of the shard's breaker in the guard ("closed", "open", "half_open"; with why it opened), slowest
        shards first; `tripped` lists the shards whose breaker is not closed."""
        self.guard.evaluate()
        breakers = self.guard.breakers()
        rows: list[dict[str, Any]] = []
        for sid, w in self.windows.items():
            b = breakers.get(SHARD_STAGE.format(sid))
            rows.append(
                {
                    "shard": sid,
                    "p50_ms": w.p(0.5),
                    "p95_ms": w.p(0.95),
                    "calls": w.calls,
                    "errors": w.errors,
                    "missing": w.missing,
                    "breaker": b[0] if b is not None else "closed",
                    "breaker_reason": b[5] if b is not None else None,
                }
            )
        rows.sort(key=lambda r: -float(r["p95_ms"] or 0.0))
        return {
            "shards": rows,
            "slowest": [r["shard"] for r in rows[:3]],
            "tripped": [r["shard"] for r in rows if r["breaker"] != "closed"],
        }

    def __repr__(self) -> str:
        return f"ClusterIndex({str(self.set_dir)!r}, shards={len(self._shards)}, replicas={self._replicas})"


def open_set(
    dest: str | os.PathLike[str],
    *,
    replicas: int = 1,
    address: str | None = None,
    actors: int | None = None,
    cpus_per_actor: float = 0.5,
    max_restarts: int = 3,
    actor_options: dict[str, Any] | None = None,
    guard: Guard | None = None,
) -> ClusterIndex:
    """Serve the set at `dest`: `actors` actors per replica (default one per shard, at most what the
    cluster's CPUs allow), each holding a group of shards; `actor_options` go to Ray's `.options()` (a
    `runtime_env`, custom resources). Every shard's latency and errors go to `guard` (default: a guard
    of the set's own, `ClusterIndex.guard`) as stage `shard.<id>`. Raises what `Index.open` raises for a
    missing (`FileNotFoundError`) or damaged (`IndexCorruptError`, `IndexVersionError`) set or shard."""
    if not isinstance(replicas, int) or replicas < 1:
        raise ValueError("replicas must be an int >= 1")
    set_dir = Path(dest)
    m = mf.read(set_dir)
    if m.index_format != int(_lens.INDEX_FORMAT_VERSION):
        from ..errors import IndexVersionError

        raise IndexVersionError(
            f"set {set_dir} was built in index format {m.index_format}; this lens reads "
            f"{_lens.INDEX_FORMAT_VERSION} (rebuild the set)",
            set_dir / mf.MANIFEST,
            m.index_format,
            int(_lens.INDEX_FORMAT_VERSION),
        )
    ok = m.ok_shards()
    if not ok:
        raise LensError(f"set {set_dir} has no usable shard (failed: {m.failed()})")
    for s in ok:
        d = set_dir / s.dir
        if not d.exists():
            raise FileNotFoundError(2, f"No such file or directory (shard {s.id})", str(d))
        if not d.is_dir():
            raise NotADirectoryError(20, f"Not a directory (shard {s.id})", str(d))
    ray = connect(address)
    if actors is None:
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        actors = max(1, min(len(ok), int(cpus // max(cpus_per_actor, 1e-9) // replicas) or 1))
    actors = max(1, min(actors, len(ok)))
    groups = [[s.id for s in ok[g::actors]] for g in range(actors)]
    opts = {
        "num_cpus": cpus_per_actor,
        "max_restarts": max_restarts,
        "max_task_retries": 0,
        "max_concurrency": 4,
    }
    opts.update(actor_options or {})
    c = ClusterIndex(set_dir, m, ray, groups, replicas, opts, guard)
    c._start()
    _log.info(
        "set_opened",
        set_dir=str(set_dir),
        shards=len(ok),
        actors=actors,
        replicas=replicas,
        failed=list(m.failed()),
    )
    return c
