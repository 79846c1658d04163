"""`lens.cluster.open` and `ClusterIndex`: a sharded set served by Ray actors.

Each actor (`_ShardServer`) opens a group of shards (read-only, mmapped by the native core) with the
set's global statistics registered for them, so every shard scores on the set's scale. A query fans
out one actor call per shard, waits with `ray.wait` until the deadline (`budget_ms`, by default the
Stage-A SLO's p99 limit plus `FANOUT_ALLOWANCE_MS` for Ray's round trips), retries a shard whose actor
died on the next replica while time is left, and merges the per-shard top k by score (ties: shard
order, then rank within the shard, which is the single index's order when shards are cut by path).
A shard that did not answer in time, or whose actor was dead on every replica, is listed in
`result.info["shards_missing"]` and the result has `truncated=True`; the call never waits past its
deadline. Actors restart by themselves (`max_restarts`).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import _lens
from .._log import get_logger
from .._validate import check_grep, check_search
from ..errors import LensError, QueryError
from ..pipeline import MODES, monotonic, run_search
from ..types import Hit, Mode, SearchResult
from . import manifest as mf
from ._ray import connect

__all__ = ["FANOUT_ALLOWANCE_MS", "ClusterIndex", "merge_hits", "open_set"]

_log = get_logger("lens.cluster")

#: Added to the Stage-A SLO for the default deadline: Ray's submit, schedule and return per call.
FANOUT_ALLOWANCE_MS = 250.0
#: How long `open` waits for the actors to have opened their shards.
OPEN_TIMEOUT_S = 120.0
#: Per-shard latency samples kept for `dashboard()`.
WINDOW = 512


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
                self.indexes[sid] = Index.open(d)
            except Exception as e:  # reported by `ready`, raised by the driver as it is
                self.errors[sid] = e

    def reload(self, set_dir: str, shards: list[tuple[str, str]], stats: dict[str, Any] | None) -> int:
        """Re-registers the set's statistics and re-opens the shards (after a refresh)."""
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

    def lexical_df(self, sid: str, query: str) -> tuple[list[int], int]:
        return _lens.lexical_document_frequencies(self.indexes[sid]._native, query)

    def search(
        self, sid: str, query: str, k: int, kw: dict[str, Any], lexical: tuple[list[int], int] | None
    ) -> tuple[list[Hit], bool, dict[str, Any]]:
        # The set's Stage-A counts, for this thread's search (the native call runs on this thread).
        _lens.set_lexical_stats(*(lexical or (None, 0)))
        try:
            # Unlifted scores: the coordinator merges shards by them, then lifts once as one index does.
            r = run_search(self.indexes[sid], query, k, raw_scores=True, **kw)
        finally:
            _lens.set_lexical_stats(None)
        info = {"route": r.info.get("route"), "query_route": r.info.get("query_route"), "path": r.path}
        # The definition index breaks score ties by file order (static rank, then path): the prior of each
        # of its hits lets the coordinator do the same across shards.
        idx = self.indexes[sid]
        sizes = self.sizes.get(sid)
        gen = idx._native.snapshot().generation
        if sizes is None or sizes[0] != gen:
            sizes = self.sizes[sid] = (gen, dict(idx._native.files()))
        info["priors"] = [
            _lens.static_prior(h.path, sizes[1].get(h.path, 0)) if h.why[:1] == ("bm25f",) else 0.0
            for h in r.hits
        ]
        return r.hits, r.truncated, info

    def call(self, sid: str, method: str, args: tuple[Any, ...], kw: dict[str, Any]) -> Any:
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


#: As rust/terms/mod.rs's `UNION_EVERY`: a union route takes one Stage-A hit after every this many
#: definition-index hits.
UNION_EVERY = 3


def _by_score(per_shard: list[tuple[int, list[Hit]]], priors: dict[int, float]) -> list[Hit]:
    """The definition index's hits of every shard, best score first; ties in one index's order of
    documents: file order (static rank, then path), then offset. `priors` maps `id(hit)` to its file's
    static rank."""
    hits = [h for _, hs in per_shard for h in hs]
    hits.sort(key=lambda h: (-h.score, -priors.get(id(h), 0.0), h.path, h.byte_start))
    return hits


def _lexical(per_shard: list[tuple[int, list[Hit]]]) -> list[Hit]:
    """Stage-A's hits of every shard in Stage-A's order: score, then path, then offset."""
    hits = [h for _, hs in per_shard for h in hs]
    hits.sort(key=lambda h: (-h.score, h.path, h.byte_start))
    return hits


def _interleave(a: list[Hit], b: list[Hit], k: int) -> list[Hit]:
    """rust/terms/mod.rs's `interleave`: a union route's definition hits with one of Stage-A's after
    every `UNION_EVERY`, then the rest of Stage-A's, the first of each (path, line) kept."""
    seen: set[tuple[str, int]] = set()
    out: list[Hit] = []
    ia, ib = iter(a), iter(b)
    rnd = 0
    while True:
        rnd += 1
        x = next(ia, None)
        y = next(ib, None) if rnd % UNION_EVERY == 0 else None
        if x is None and y is None:
            for r in list(ib):
                if len(out) < k and (r.path, r.line) not in seen:
                    seen.add((r.path, r.line))
                    out.append(r)
            return out
        for h in (x, y):
            if h is not None and len(out) < k and (h.path, h.line) not in seen:
                seen.add((h.path, h.line))
                out.append(h)


def _is_stage_b(h: Hit) -> bool:
    return h.why[:1] in (("definition",), ("fuzzy",), ("reference",))


#: rust/symbols/stage.rs's `kind_rank`: the kinds people look up by name first.
_KIND_RANK = {
    "function": 0,
    "class": 0,
    "method": 0,
    "interface": 0,
    "type": 0,
    "enum": 0,
    "module": 1,
    "constant": 2,
}


def _stage_b_key(h: Hit, qual: str | None) -> tuple[Any, ...]:
    """rust/symbols/stage.rs's order of definitions, from what a hit carries: exact name first, precise
    first, a definition whose container or path names the qualifier, kind, larger body (log2 buckets),
    shallower path, path, offset."""
    sym = h.symbol
    precise = bool(sym.precise) if sym is not None else False
    size = max(1, (sym.def_end - sym.def_start) if sym is not None else 1)
    qual_match = False
    if qual and sym is not None:
        parts = h.path.split("/")
        qual_match = sym.container == qual or any(
            c == qual or c.removesuffix(".py") == qual or c.split(".")[0] == qual for c in parts
        )
    kind = _KIND_RANK.get(sym.kind.lower(), 3) if sym is not None else 3
    return (
        h.why[:1] != ("definition",),
        not precise,
        not qual_match,
        kind,
        -(size.bit_length() - 1),
        h.path.count("/"),
        h.path,
        h.byte_start,
    )


def _stage_b(per_shard: list[tuple[int, list[Hit]]], query: str, k: int) -> list[Hit]:
    """Stage-B's hits of one index from each shard's: definitions (fuzzy ones only when no shard
    defines the exact name, as one index looks for them only then) in Stage-B's order, then references
    in path order, scored by position as Stage-B scores them."""
    hits = [h for _, hs in per_shard for h in hs if _is_stage_b(h)]
    if not hits:
        return []
    exact = any(h.why[:1] == ("definition",) for h in hits)
    defs = [h for h in hits if h.why[:1] == (("definition",) if exact else ("fuzzy",))]
    refs = [h for h in hits if h.why[:1] == ("reference",)]
    quals = [p for p in query.strip().replace("::", ".").split(".") if p]
    defs.sort(key=lambda h: _stage_b_key(h, quals[-2] if len(quals) > 1 else None))
    refs.sort(key=lambda h: (not (h.symbol is not None and h.symbol.precise), h.path, h.byte_start))
    out = [replace(h, score=(1000.0 if exact else 800.0) - i * 0.01) for i, h in enumerate(defs[:k])]
    out += [replace(h, score=500.0 - i * 0.01) for i, h in enumerate(refs[: k - len(out)])]
    return out


def merge_hits(
    per_shard: list[tuple[int, list[Hit]]],
    k: int,
    *,
    union: bool = False,
    query: str = "",
    priors: dict[int, float] | None = None,
) -> list[Hit]:
    """The set's top `k` from each shard's answer (shard order, hits), ordered as one index orders them:
    a union route's definition-index and Stage-A hits are merged apart and interleaved again; otherwise
    Stage-B's hits (definitions, references) come first, as `lens.symbols.merge` puts them, then the
    rest by score."""
    if union:
        d = [(o, [h for h in hits if h.why[:1] == ("bm25f",)]) for o, hits in per_shard]
        a = [(o, [h for h in hits if h.why[:1] != ("bm25f",)]) for o, hits in per_shard]
        return _interleave(_by_score(d, priors or {}), _lexical(a), k)
    b = _stage_b(per_shard, query, k)
    if any(h.why[:1] == ("bm25f",) for _, hs in per_shard for h in hs):
        return (b + _by_score(per_shard, priors or {}))[:k]
    rest = _lexical([(o, [h for h in hits if not _is_stage_b(h)]) for o, hits in per_shard])
    return (b + rest)[:k]


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
    ) -> None:
        self.set_dir = set_dir
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
        self, budget_ms: float, submit: Callable[[Any, str], Any], skip: set[str] | None = None
    ) -> tuple[dict[str, Any], list[str], dict[str, str]]:
        """Calls `submit(actor, shard)` for every shard and collects answers until the deadline. A shard
        whose actor died is retried on the next replica while time is left. Returns answers by shard,
        the shards missing (in shard order) and the errors seen."""
        ray = self._ray
        t0 = time.monotonic()
        deadline = t0 + budget_ms / 1000.0
        calls: dict[Any, tuple[str, int, float]] = {}
        for s in self._shards:
            if skip and s.id in skip:
                continue
            a = self.actors[0][self._group_of[s.id]]
            calls[submit(a, s.id)] = (s.id, 0, time.monotonic())
        got: dict[str, Any] = {}
        errors: dict[str, str] = {}
        while calls:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _ = ray.wait(list(calls), num_returns=1, timeout=left)
            for ref in ready:
                sid, replica, sent = calls.pop(ref)
                w = self.windows[sid]
                w.calls += 1
                try:
                    got[sid] = ray.get(ref, timeout=0)
                    w.ms.append((time.monotonic() - sent) * 1000)
                except ray.exceptions.RayTaskError as e:
                    cause = e.cause if getattr(e, "cause", None) is not None else e
                    if isinstance(cause, QueryError):
                        raise cause from None
                    w.errors += 1
                    errors[sid] = f"{type(cause).__name__}: {cause}"
                except (ray.exceptions.RayError, TimeoutError) as e:  # the actor died or is restarting
                    w.errors += 1
                    errors[sid] = f"{type(e).__name__}"
                    if replica + 1 < self._replicas and time.monotonic() < deadline:
                        a = self.actors[replica + 1][self._group_of[sid]]
                        calls[submit(a, sid)] = (sid, replica + 1, time.monotonic())
        missing = [s.id for s in self._shards if s.id not in got]
        for sid in missing:
            self.windows[sid].missing += 1
        return got, missing, errors

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
        """Ranked search over every shard, merged by score; keyword arguments beyond `Index.search`'s
        own are passed to each shard's `Index.search` as they are. `budget_ms` is the deadline for the
        whole fan-out; shards that miss it are in `info["shards_missing"]` (and `truncated` is set)."""
        check_search(query, k, mode, MODES, budget_ms)
        budget = self.default_budget_ms() if budget_ms is None else float(budget_ms)
        kw = dict(kwargs, mode=mode, budget_ms=budget_ms, key=key)
        t0 = time.perf_counter()
        deadline = time.monotonic() + budget / 1000.0
        lexical: tuple[list[int], int] | None = None
        dfs_missing: list[str] = []
        route = _lens.query_route(query)
        # A union route interleaves two lists two to one; a shard's top k holds only part of each, so it is
        # asked for enough of both that the set's interleaving finds every hit it takes.
        shard_k = k * (UNION_EVERY + 1) if route == "union" and len(self._shards) > 1 else k
        if len(self._shards) > 1 and route != "terms":
            # The DFS phase: Stage-A's counts over every shard, so each scores on the set's scale.
            got_df, dfs_missing, _ = self._fan_out(budget, lambda a, sid: a.lexical_df.remote(sid, query))
            if got_df:
                parts = list(got_df.values())
                df = [sum(col) for col in zip(*(p[0] for p in parts), strict=True)]
                lexical = (df, sum(p[1] for p in parts))
        left_ms = max(0.0, (deadline - time.monotonic()) * 1000.0)
        got, missing, errors = self._fan_out(
            left_ms, lambda a, sid: a.search.remote(sid, query, shard_k, kw, lexical), skip=set(dfs_missing)
        )
        fell_back = {i.get("query_route") for _, _, i in got.values()} - {"terms"}
        if lexical is None and len(self._shards) > 1 and fell_back:
            # A question of stop words only: the definition index declined and Stage-A answered with
            # each shard's own counts. Once more, with the set's.
            left_ms = max(0.0, (deadline - time.monotonic()) * 1000.0)
            got_df, dfs_missing, _ = self._fan_out(left_ms, lambda a, sid: a.lexical_df.remote(sid, query))
            if got_df and not dfs_missing:
                parts = list(got_df.values())
                df = [sum(col) for col in zip(*(p[0] for p in parts), strict=True)]
                lexical = (df, sum(p[1] for p in parts))
                left_ms = max(0.0, (deadline - time.monotonic()) * 1000.0)
                again, missing2, errors2 = self._fan_out(
                    left_ms, lambda a, sid: a.search.remote(sid, query, shard_k, kw, lexical)
                )
                if not missing2:
                    got, missing, errors = again, missing2, errors2
        truncated = bool(missing)
        routes: set[str] = set()
        query_routes: set[str] = set()
        per_shard: list[tuple[int, list[Hit]]] = []
        priors: dict[int, float] = {}
        for sid, (shard_hits, trunc, shard_info) in got.items():
            truncated |= trunc
            routes.add(shard_info.get("route") or "")
            query_routes.add(shard_info.get("query_route") or "")
            per_shard.append((self._order[sid], shard_hits))
            priors.update(zip(map(id, shard_hits), shard_info.get("priors", ()), strict=False))
        # As one index: scores never rise down the merged list (`Index.search` lifts them the same way).
        merged = merge_hits(per_shard, k, union=query_routes == {"union"}, query=query, priors=priors)
        hits = monotonic(merged)
        ms = (time.perf_counter() - t0) * 1000
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
        got, missing, errors = self._fan_out(budget, lambda a, sid: a.call.remote(sid, method, args, kw))
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

    def flags(self, *, timeout_s: float = 30.0) -> dict[str, Any]:
        """The set's flags, as its first actor holds them."""
        got: dict[str, Any] = self._ray.get(self.actors[0][0].flags.remote(), timeout=timeout_s)
        return got

    def canary_status(self, *, timeout_s: float = 30.0) -> dict[str, Any]:
        """The set's canary status (share, kill switch, state file), as its first actor reads it."""
        status: dict[str, Any] = self._ray.get(self.actors[0][0].canary_status.remote(), timeout=timeout_s)
        return status

    def dashboard(self) -> dict[str, Any]:
        """Per-shard latency (p50, p95 in ms over the last calls), calls, errors and misses, slowest
        shards first."""
        rows: list[dict[str, Any]] = []
        for sid, w in self.windows.items():
            rows.append(
                {
                    "shard": sid,
                    "p50_ms": w.p(0.5),
                    "p95_ms": w.p(0.95),
                    "calls": w.calls,
                    "errors": w.errors,
                    "missing": w.missing,
                }
            )
        rows.sort(key=lambda r: -float(r["p95_ms"] or 0.0))
        return {"shards": rows, "slowest": [r["shard"] for r in rows[:3]]}

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
) -> ClusterIndex:
    """Serve the set at `dest`: `actors` actors per replica (default one per shard, at most what the
    cluster's CPUs allow), each holding a group of shards; `actor_options` go to Ray's `.options()` (a
    `runtime_env`, custom resources). Raises what `Index.open` raises for a
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
    c = ClusterIndex(set_dir, m, ray, groups, replicas, opts)
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
