"""Stage-C's learned ranker: a linear mix of six signals per candidate definition.

The candidates are those of the reciprocal rank fusion (`stage`): the lexical ranking's definitions and
the nearest definitions of the whole index. Each gets six numbers (`FEATURES`):

- `lexical_rrf`, `dense_rrf`: its reciprocal rank term in each list, `1 / (rrf_k + rank + 1)`, 0 when
  absent (the two terms the plain fusion adds with weight 1 each);
- `lexical_score`: its BM25F score over the top lexical score (0 when absent);
- `cosine`: the query vector's cosine to its stored vector (0 for a lexical hit outside any definition);
- `name_words`, `path_words`: the share of the question's words (stop words dropped) that its name, and
  its file's path, spell once split into words.

Its score is the weighted sum; the weights ship in `model/ranker.json`, fit by `scripts/train_ranker.py`
on the tuning set of `scripts/make_tune_set.py` (third-party packages, never the dev set), and say what
the ranking rests on: `Ranker.leading` picks the signals that carry a candidate's score, which
`stage` names in the hit's `why`. `LENS_RANKER=0` turns it off (the plain fusion then ranks).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .gate import STOP_WORDS
from .store import split_words

__all__ = ["FEATURES", "RANKER_PATH", "Ranker", "load_ranker", "query_words", "word_share"]

FEATURES = ("lexical_rrf", "dense_rrf", "lexical_score", "cosine", "name_words", "path_words")
RANKER_PATH = Path(__file__).resolve().parent / "model" / "ranker.json"


@dataclass(frozen=True, slots=True)
class Ranker:
    """The fitted weights, one per entry of `FEATURES`, and the RRF constant of the rank terms."""

    weights: tuple[float, ...]
    rrf_k: float = 20.0

    def scores(self, matrix: np.ndarray) -> np.ndarray:
        """Each row's score: the weighted sum of its signals."""
        out: np.ndarray = matrix @ np.asarray(self.weights, dtype=np.float64)
        return out

    def leading(self, matrix: np.ndarray) -> list[tuple[str, ...]]:
        """`why` per row: the signals that carry at least a quarter of its positive score, largest
        first (`("rank:cosine", "rank:lexical_score")`); empty when nothing counts in its favour."""
        terms = np.clip(matrix * np.asarray(self.weights, dtype=np.float64), 0.0, None)
        keep = (terms >= 0.25 * terms.sum(axis=1, keepdims=True)) & (terms > 0)
        order = np.argsort(-terms, axis=1, kind="stable")
        out: list[tuple[str, ...]] = []
        for row_order, row_keep in zip(order.tolist(), keep.tolist(), strict=True):
            picked = tuple(i for i in row_order if row_keep[i])
            tags = _TAGS.get(picked)
            if tags is None:
                tags = _TAGS.setdefault(picked, tuple(f"rank:{FEATURES[i]}" for i in picked))
            out.append(tags)
        return out


#: `leading`'s tag tuples, by the signals' indices (a few dozen at most).
_TAGS: dict[tuple[int, ...], tuple[str, ...]] = {}


def load_ranker(path: Path = RANKER_PATH) -> Ranker | None:
    """The shipped ranker, or None when `LENS_RANKER=0`, the file is absent or unreadable, or it was fit
    over other signals than this code computes (its `features` must equal `FEATURES`, one finite weight
    each)."""
    if os.environ.get("LENS_RANKER", "1") == "0":
        return None
    try:
        spec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    try:
        if tuple(spec.get("features", ())) != FEATURES:
            return None
        weights = tuple(float(w) for w in spec["weights"])
        rrf_k = float(spec.get("rrf_k", 20.0))
    except (AttributeError, KeyError, TypeError, ValueError):
        return None  # not a ranker file this code can use: the plain fusion ranks
    if len(weights) != len(FEATURES) or not all(map(math.isfinite, (*weights, rrf_k))) or rrf_k < 0:
        return None
    return Ranker(weights, rrf_k)


def query_words(query: str) -> frozenset[str]:
    """The question's words as `split_words` spells names, stop words dropped."""
    return frozenset(w for w in split_words(query).split() if w not in STOP_WORDS)


def word_share(words: frozenset[str], spelled: frozenset[str]) -> float:
    """The share of `words` that a name or path spells (`spelled`: its words, `store.word_set`)."""
    if not words:
        return 0.0
    return len(words & spelled) / len(words)
