"""Stage-C as a pipeline stage: gate, confidence cutoff, dense scoring and fusion.

For one query (`lens.pipeline.StageCall`):

1. The gate (`gate.is_natural_language`): identifiers, regexes, paths and code go on unchanged.
   Passing it counts `gated`.
2. The confidence cutoff: when the lexical top hit is already certain (it is the header of a
   definition whose name spells the query's words, or its score clearly beats the next), Stage-C keeps
   the order and counts `cutoff`.
3. The query is embedded (an LRU cache holds recent query vectors) and scored by dot product against
   the definition vectors: the candidates' enclosing definitions, plus the `neighbours` nearest
   definitions of the whole index (exact search over the int8 matrix).
4. The candidates are ranked by the learned linear mix of `ranker` (six signals: the two lists'
   reciprocal rank terms, the BM25F score over the top one, the cosine, and the share of the question's
   words the name and the path spell; weights fit on the tuning set, `model/ranker.json`), or, when it
   is off (`LENS_RANKER=0`, `FusionConfig.use_ranker`), by reciprocal rank fusion of the lexical order
   (by definition, best hit first) and the dense order. Lexical hits outside any definition keep their
   lexical signals. A dense-only definition enters as a hit on its header line, with `why` "semantic";
   a ranked hit's `why` also names the signals that carry most of its score (`"rank:cosine"`, ...).
5. Optionally (`FusionConfig.feedback_defs`, off by default), the tail below the first `feedback_head`
   places is re-ranked by pseudo-relevance feedback in the vector space: the query vector plus the mean
   of the best fused definitions' vectors searches the whole index again, and that third list joins
   the fusion for the tail only, so the top ten cannot move.

`gated` / `cutoff` are added to `StageCall.counters` once per call, so the dashboard's
`semantic_gating_rate` is the share of Stage-C calls that reached the model's side of the gate and
`confidence_cutoff_rate` the share the cutoff then skipped.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .gate import STOP_WORDS, is_natural_language
from .ranker import Ranker, load_ranker, query_words, word_share
from .store import VectorStore, split_words

if TYPE_CHECKING:
    from ..pipeline import StageCall
    from ..types import Hit

__all__ = ["Candidates", "FusionConfig", "SemanticStage", "Signals"]


@dataclasses.dataclass(slots=True)
class FusionConfig:
    """The fusion's knobs, fit on the tuning set of `scripts/make_tune_set.py` (third-party packages,
    never the dev set) with `scripts/tune_fusion.py` over the definition index's ranking (issue 10);
    BENCHMARKS.md (Stage-C) has the grid. With definition-level lexical hits the two rankings are worth
    the same weight (the 0.25 fit on Stage-A's line hits lost 0.03 nDCG@10 on the tuning set)."""

    rrf_k: float = 20.0
    lexical_weight: float = 1.0
    dense_weight: float = 1.0
    #: How many nearest definitions of the whole index join the candidates.
    neighbours: int = 100
    #: How deep the lexical ranking is read: beyond the hits Stage-C is given, it asks the snapshot for
    #: more (one more lexical search) when this is larger, which happens when a search asks for fewer
    #: than 50 hits (the fusion was fit on 50 lexical candidates). 100 and 200 gained < 0.002 nDCG@10 on
    #: the tuning set, not worth a second search at k=50.
    lexical_depth: int = 50
    #: Pseudo-relevance feedback for the tail: the fused places kept as they are, how many of the best
    #: fused definitions are added to the query vector (0: off) and with what weight. Off by default:
    #: on the tuning set 3 / 1.0 gained 1 of 300 questions' recall@50 with the default 64-token vectors
    #: (5 with 128-token ones), on the dev set's check it lost 1 (BENCHMARKS.md, Stage-C), so it does
    #: not pay for its second scan of the index.
    feedback_head: int = 10
    feedback_defs: int = 0
    feedback_weight: float = 1.0
    #: Skip when the top lexical score is at least this many times the second (see BENCHMARKS.md).
    margin_ratio: float = 2.0
    #: Below this much of its budget left, Stage-C gives way (embedding a query alone takes a few ms).
    min_budget_ms: float = 2.0
    #: Rank the candidates by the learned linear mix of `ranker` (`model/ranker.json`) when it ships and
    #: `LENS_RANKER` is not 0; otherwise (or False) by the RRF above. The candidates are the same.
    use_ranker: bool = True


@dataclasses.dataclass(slots=True)
class Candidates:
    """What `SemanticStage.candidates` gathers for one query (keys: a definition's row, or
    `("line", path, line)` for a lexical hit outside any definition)."""

    groups: dict[Any, list[Hit]]
    lex_rank: dict[Any, int]
    sim: dict[int, float]
    dense_rank: dict[int, int]


@dataclasses.dataclass(slots=True)
class Signals:
    """`SemanticStage.signals`: the candidates' keys and their `ranker.FEATURES`, one row per key."""

    keys: list[Any]
    matrix: Any  # numpy float64, len(keys) x len(FEATURES)


class SemanticStage:
    """The Stage-C hook of one index (`idx.stages["stage_c"]`); loads its vectors on first use and again
    whenever a build or refresh writes a new generation."""

    def __init__(self, index_dir: Path, config: FusionConfig | None = None) -> None:
        self.index_dir = Path(index_dir)
        self.config = config or FusionConfig()
        self._store: VectorStore | None = None
        self._stamp: float | None = None
        self._lock = threading.Lock()
        self._ranker: object = _UNLOADED

    def ranker(self) -> Ranker | None:
        """The learned ranker this stage uses, or None (the plain RRF ranks)."""
        if not self.config.use_ranker:
            return None
        if self._ranker is _UNLOADED:
            self._ranker = load_ranker()
        return self._ranker  # type: ignore[return-value]

    def store(self) -> VectorStore | None:
        current = self.index_dir / "semantic" / "CURRENT.json"
        try:
            stamp = current.stat().st_mtime_ns
        except OSError:
            return None
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    self._store = VectorStore.load(self.index_dir)
                    self._stamp = stamp
        return self._store

    def __call__(self, call: StageCall) -> list[Hit] | None:
        return self.rerank(call)

    def rerank(self, call: StageCall, deeper: Callable[[int], list[Hit]] | None = None) -> list[Hit] | None:
        """Stage-C for one call; `deeper(k)` gives the lexical ranking `k` deep (by default one more
        search of the call's snapshot)."""
        if not is_natural_language(call.query):
            return None
        call.counters["gated"] = 1
        store = self.store()
        if store is None or store.count == 0:
            return None
        if self._confident(call.query, call.hits, store):
            call.counters["cutoff"] = 1
            return None
        if call.budget_ms < self.config.min_budget_ms:
            return None
        from .embed import get_embedder

        query = get_embedder().embed_query(call.query)
        hits = call.hits
        depth = self.config.lexical_depth
        if depth > len(hits) and len(hits) >= min(call.k, depth):
            more = deeper(depth) if deeper is not None else self._deeper(call, depth)
            seen = {(h.path, h.byte_start) for h in hits}
            hits = [*hits, *(h for h in more if (h.path, h.byte_start) not in seen)]
        return self._fuse(hits, query, store, call.query)

    @staticmethod
    def _deeper(call: StageCall, k: int) -> list[Hit]:
        if call.snapshot is None:
            return []
        hits, _truncated, _info = call.snapshot.search(call.query, k, call.budget_ms, True)
        return hits

    # -- the cutoff -------------------------------------------------------------------------------
    def _confident(self, query: str, hits: list[Hit], store: VectorStore) -> bool:
        if not hits:
            return False
        top = hits[0]
        words = [w for w in split_words(query).split() if w not in STOP_WORDS]
        row = store.enclosing(top.path, top.byte_start)
        spelled = row is not None and words and set(split_words(store.names[row]).split()) == set(words)
        # On the definition's header line: Stage-A points at the line's start, the definition index
        # (issue 10) at the name on it.
        on_header = row is not None and 0 <= top.byte_start - store.byte_start[row] < len(top.text.encode())
        if spelled and on_header:
            return True  # the top hit is the header of the definition the query spells
        if len(hits) > 1 and hits[1].score > 0:
            # Scores of one ranking (the definition index's BM25F for a question) compared by ratio,
            # so the margin holds whatever that ranking's scale.
            return top.score >= self.config.margin_ratio * hits[1].score
        return False

    # -- fusion -----------------------------------------------------------------------------------
    def candidates(self, hits: list[Hit], query: Any, store: VectorStore) -> Candidates:
        """The fusion's candidates: the lexical hits grouped by enclosing definition (the first hit of
        each stands for it; a hit outside any definition is keyed by its line), in lexical order, and
        the cosine and dense rank of every definition among them or among the `neighbours` nearest."""
        groups: dict[Any, list[Hit]] = {}
        lex_rank: dict[Any, int] = {}
        for h in hits:
            row = store.enclosing(h.path, h.byte_start)
            key: Any = row if row is not None else ("line", h.path, h.line)
            if key not in groups:
                groups[key] = []
                lex_rank[key] = len(lex_rank)
            groups[key].append(h)
        rows_near, sims_near = store.nearest(query, self.config.neighbours)
        sim: dict[int, float] = {int(r): float(s) for r, s in zip(rows_near, sims_near, strict=True)}
        missing = [k for k in groups if isinstance(k, int) and k not in sim]
        if missing:
            for r, s in zip(missing, store.scores(query, missing), strict=True):
                sim[r] = float(s)
        dense_rank = {r: i for i, r in enumerate(sorted(sim, key=lambda r: -sim[r]))}
        return Candidates(groups, lex_rank, sim, dense_rank)

    def _fuse(self, hits: list[Hit], query: Any, store: VectorStore, query_text: str = "") -> list[Hit]:
        from ..types import Hit

        cfg = self.config
        cands = self.candidates(hits, query, store)
        groups, lex_rank, sim, dense_rank = cands.groups, cands.lex_rank, cands.sim, cands.dense_rank
        fused: dict[Any, float] = {}
        ranker = self.ranker()
        explain: dict[Any, tuple[str, ...]] = {}
        if ranker is not None:
            signals = self.signals(query_text, cands, store, ranker.rrf_k)
            fused = dict(zip(signals.keys, ranker.scores(signals.matrix).tolist(), strict=True))
            explain = dict(zip(signals.keys, ranker.leading(signals.matrix), strict=True))
        else:
            for key in set(groups) | set(sim):
                score = 0.0
                if key in lex_rank:
                    score += cfg.lexical_weight / (cfg.rrf_k + lex_rank[key] + 1)
                if isinstance(key, int) and key in dense_rank:
                    score += cfg.dense_weight / (cfg.rrf_k + dense_rank[key] + 1)
                fused[key] = score

        def tie(k: Any) -> tuple[int, int]:
            return lex_rank.get(k, 1 << 30), k if isinstance(k, int) else 0

        far = 1 << 30
        order = sorted(
            fused,
            key=lambda k: (-fused[k], lex_rank.get(k, far), k if k.__class__ is int else 0),
        )
        order = self._feedback_tail(order, fused, query, store, tie)
        out: list[Hit] = []
        extra: list[Hit] = []
        ceiling = float("inf")
        for key in order:
            # Scores never rise down the list (the tail's feedback term can lift one above the head's).
            score = ceiling = min(ceiling, round(fused[key] * 1000, 4))
            if key in groups:
                first, *rest = groups[key]
                why = (*first.why, "semantic") if isinstance(key, int) else first.why
                if ranker is not None:
                    why = (*why, *explain[key])
                out.append(_rescored(first, score, why))
                extra.extend(rest)
            else:
                r = key
                out.append(
                    Hit(
                        store.paths[store.path_idx[r]],
                        store.line[r],
                        store.column[r],
                        store.byte_start[r],
                        store.byte_end[r],
                        store.text[r],
                        score,
                        ("semantic", *explain.get(key, ())),
                    )
                )
        # The other hits of an already listed definition follow, below every fused entry.
        floor = out[-1].score if out else 0.0
        out.extend(_rescored(h, min(h.score, floor), h.why) for h in extra)
        return out

    @staticmethod
    def signals(query_text: str, cands: Candidates, store: VectorStore, rrf_k: float) -> Signals:
        """Each candidate's `ranker.FEATURES`: the keys (lexical ones first, in lexical order, then the
        dense-only rows by row) and one row of the matrix per key."""
        import numpy as np

        groups, lex_rank, sim, dense_rank = cands.groups, cands.lex_rank, cands.sim, cands.dense_rank
        words = query_words(query_text)
        top = max((g[0].score for g in groups.values()), default=0.0)
        keys: list[Any] = [*groups, *sorted(r for r in sim if r not in groups)]
        rows: list[tuple[float, ...]] = []
        for key in keys:
            if key in groups:
                first = groups[key][0]
                path = first.path
                lex = 1.0 / (rrf_k + lex_rank[key] + 1)
                lex_score = first.score / top if top > 0 else 0.0
            else:
                path = store.paths[store.path_idx[key]]
                lex = lex_score = 0.0
            if isinstance(key, int):
                dense = 1.0 / (rrf_k + dense_rank[key] + 1)
                cosine = sim[key]
                name = word_share(words, store.words(store.names[key]))
            else:
                dense = cosine = name = 0.0
            rows.append((lex, dense, lex_score, cosine, name, word_share(words, store.words(path))))
        return Signals(keys, np.array(rows, dtype=np.float64).reshape(len(rows), 6))

    def _feedback_tail(
        self,
        order: list[Any],
        fused: dict[Any, float],
        query: Any,
        store: VectorStore,
        tie: Callable[[Any], tuple[int, int]],
    ) -> list[Any]:
        """`order` with its tail re-ranked by pseudo-relevance feedback (see the module's step 5);
        `fused` gains the tail's scores and the definitions the feedback search brought in."""
        cfg = self.config
        head = order[: cfg.feedback_head]
        best = [k for k in order[: cfg.feedback_defs] if isinstance(k, int)]
        if cfg.feedback_defs <= 0 or not best or len(order) <= cfg.feedback_head:
            return order
        import numpy as np

        moved = query + cfg.feedback_weight * store.vectors_of(best).mean(axis=0)
        moved = (moved / max(float(np.linalg.norm(moved)), 1e-12)).astype(np.float32)
        rows, _sims = store.nearest(moved, cfg.neighbours)
        placed = set(head)
        for rank, r in enumerate(rows.tolist()):
            if r not in placed:
                fused[r] = fused.get(r, 0.0) + cfg.dense_weight / (cfg.rrf_k + rank + 1)
        tail = sorted((k for k in fused if k not in placed), key=lambda k: (-fused[k], *tie(k)))
        return head + tail


_UNLOADED = object()


def _rescored(h: Hit, score: float, why: tuple[str, ...]) -> Hit:
    """`h` with a new score and why (`dataclasses.replace` without its per-call field walk)."""
    return h.__class__(h.path, h.line, h.column, h.byte_start, h.byte_end, h.text, score, why, h.symbol)
