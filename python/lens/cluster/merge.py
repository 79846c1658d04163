"""The set's answer from its shards' answers, in the order one index over the whole set gives.

Each shard scores on the set's statistics (the term files' df and field lengths, Stage-A's DFS round),
so scores compare across shards; what is left is to rebuild the parts of one index's answer that a
shard cannot decide alone:

- **Stage-B** (identifier queries). Whether the lookup falls back to other names, and to which, depends
  on every shard's names: `fallback_names` decides it from every shard's `stage_b_fallback_candidates`
  as rust/symbols/stage.rs's `lookup` does on one index, and each shard looks up with that decision.
  The shards answer with their Stage-B hits and Stage-A hits apart (`StageParts`), before any line is
  dropped as a repeat, and `identifier_hits` orders the definitions, scores them by position, appends
  the references and merges Stage-A's hits after them as `lens.symbols.merge` does.
- **Union routes** (a question naming an identifier). The shards answer with the definition index's top
  k and Stage-A's top k apart (`_lens.set_union_parts`), and `union_hits` interleaves the two merged
  lists once, as rust/terms/mod.rs's `interleave` does.
- Everything else merges by score; ties go as one index breaks them (file order, then offset).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..symbols import merge as symbols_merge
from ..types import Hit

__all__ = [
    "UNION_EVERY",
    "by_score",
    "fallback_names",
    "identifier_hits",
    "lexical",
    "merge_hits",
    "union_hits",
]

#: As rust/terms/mod.rs's `UNION_EVERY`: a union route takes one Stage-A hit after every this many
#: definition-index hits.
UNION_EVERY = 3
#: As rust/symbols/stage.rs's `lookup`: at most this many names within edits stand in ...
FUZZY_NAMES = 8
#: ... chosen among the first this many (name order) that a symbol table's Levenshtein stream yields.
FUZZY_SCAN = 4 * FUZZY_NAMES

#: One shard's answer, by its position in the set: (shard order, hits).
PerShard = list[tuple[int, list[Hit]]]


def fallback_names(parts: list[tuple[str, int, list[str], list[tuple[str, int, int]]]]) -> list[str]:
    """The names one index's Stage-B falls back to, from every shard's `(name, definitions, names
    sharing its sub-tokens, names within edits as (name, distance, definitions))`: none while any shard
    defines the name; else every name sharing its sub-tokens; else the `FUZZY_NAMES` closest of the
    first `FUZZY_SCAN` names within edits in name order (fewest edits, then most definitions over the
    set, then name), as one symbol table streams and ranks them."""
    if not parts or any(defs for _, defs, _, _ in parts):
        return []
    name = parts[0][0]
    same = sorted({n for _, _, names, _ in parts for n in names} - {name})
    if same:
        return same
    distance: dict[str, int] = {}
    defs: dict[str, int] = {}
    for _, _, _, near in parts:
        for n, d, c in near:
            distance[n] = d
            defs[n] = defs.get(n, 0) + c
    # Python orders str by code point, as the fst orders UTF-8 bytes.
    first = sorted(distance)[:FUZZY_SCAN]
    best = sorted(first, key=lambda n: (distance[n], -defs[n], n))[:FUZZY_NAMES]
    return [n for n in best if n != name]


def by_score(per_shard: PerShard, priors: dict[int, float]) -> list[Hit]:
    """The definition index's hits of every shard, best score first; ties in one index's order of
    documents: file order (static rank, then path), then offset. `priors` maps `id(hit)` to its file's
    static rank."""
    hits = [h for _, hs in per_shard for h in hs]
    hits.sort(key=lambda h: (-h.score, -priors.get(id(h), 0.0), h.path, h.byte_start))
    return hits


def lexical(per_shard: PerShard) -> list[Hit]:
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
        y = next(ib, None) if rnd % UNION_EVERY == 0 and len(out) < k else None
        if x is None and y is None:
            for r in ib:
                if len(out) >= k:
                    break
                if (r.path, r.line) not in seen:
                    seen.add((r.path, r.line))
                    out.append(r)
            return out
        for h in (x, y):
            if h is not None and len(out) < k and (h.path, h.line) not in seen:
                seen.add((h.path, h.line))
                out.append(h)


def _is_bm25f(h: Hit) -> bool:
    return h.why[:1] == ("bm25f",)


def union_hits(per_shard: PerShard, k: int, priors: dict[int, float]) -> list[Hit]:
    """A union route's answer from each shard's two lists (the definition index's, then Stage-A's)."""
    d = [(o, [h for h in hs if _is_bm25f(h)]) for o, hs in per_shard]
    a = [(o, [h for h in hs if not _is_bm25f(h)]) for o, hs in per_shard]
    return _interleave(by_score(d, priors), lexical(a), k)


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


def _qualifier(query: str) -> str | None:
    quals = [p for p in query.strip().removesuffix("()").replace("::", ".").split(".") if p]
    return quals[-2] if len(quals) > 1 else None


def identifier_hits(stage_b: list[list[Hit]], stage_a: PerShard, k: int, query: str) -> list[Hit]:
    """An identifier query's answer from each shard's Stage-B hits (looked up with the set's fallback
    decision) and Stage-A hits, both as the shard found them: the definitions in Stage-B's order scored
    by position (1000, or 800 for stand-in names, less 0.01 a place), then the references in path order
    (500 less 0.01 a place), then Stage-A's hits, the first of each line kept, k in all."""
    hits = [h for hs in stage_b for h in hs]
    defs = [h for h in hits if h.why[:1] in (("definition",), ("fuzzy",))]
    refs = [h for h in hits if h.why[:1] == ("reference",)]
    qual = _qualifier(query)
    defs.sort(key=lambda h: _stage_b_key(h, qual))
    out = [
        replace(h, score=(1000.0 if h.why[:1] == ("definition",) else 800.0) - i * 0.01)
        for i, h in enumerate(defs[:k])
    ]
    # One index lists a name's references precise first, then in path order; a reference hit does not
    # say whether it is precise, so this is exact for sets without SCIP / LSIF references.
    refs.sort(key=lambda h: (h.path, h.byte_start))
    out += [replace(h, score=500.0 - i * 0.01) for i, h in enumerate(refs[: k - len(out)])]
    return symbols_merge(out, lexical(stage_a)[:k], k)


def _stage_b(per_shard: PerShard, query: str, k: int) -> list[Hit]:
    """Stage-B's hits of one index from answers already merged by each shard (the path when a shard
    answered without its parts apart): definitions (stand-ins only when no shard defines the name), then
    references, scored by position."""
    hits = [h for _, hs in per_shard for h in hs if _is_stage_b(h)]
    if not hits:
        return []
    exact = any(h.why[:1] == ("definition",) for h in hits)
    defs = [h for h in hits if h.why[:1] == (("definition",) if exact else ("fuzzy",))]
    refs = [h for h in hits if h.why[:1] == ("reference",)]
    qual = _qualifier(query)
    defs.sort(key=lambda h: _stage_b_key(h, qual))
    refs.sort(key=lambda h: (h.path, h.byte_start))
    out = [replace(h, score=(1000.0 if exact else 800.0) - i * 0.01) for i, h in enumerate(defs[:k])]
    out += [replace(h, score=500.0 - i * 0.01) for i, h in enumerate(refs[: k - len(out)])]
    return out


def merge_hits(
    per_shard: PerShard,
    k: int,
    *,
    union: bool = False,
    query: str = "",
    priors: dict[int, float] | None = None,
) -> list[Hit]:
    """The set's top `k` from each shard's answer (shard order, hits): a union route's two lists apart
    (`union_hits`); otherwise Stage-B's hits first, as `lens.symbols.merge` puts them, then the rest by
    score."""
    if union:
        return union_hits(per_shard, k, priors or {})
    b = _stage_b(per_shard, query, k)
    if any(_is_bm25f(h) for _, hs in per_shard for h in hs):
        return (b + by_score(per_shard, priors or {}))[:k]
    rest = lexical([(o, [h for h in hits if not _is_stage_b(h)]) for o, hits in per_shard])
    return (b + rest)[:k]
