"""The semantic gate: is a query a plain-English question, or an identifier, regex, path or code?

A logistic regression over a handful of surface features (word count, stop words, casing, punctuation,
code syntax). Its weights are trained by `scripts/train_gate.py` on docstring first sentences and
kernel-doc summaries against identifiers, regexes, paths and code lines from corpora other than the dev
corpus, and ship as `gate.json` beside this module. Pure Python: it runs on every query in microseconds.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from pathlib import Path

__all__ = ["FEATURES", "features", "is_natural_language", "nl_probability"]

_STOP_TEXT = (
    "a an the of to in on for from by with without into onto over under at as is are was were be been "
    "being this that these those it its if then else when while which who whom whose what where why how "
    "and or not no nor but so than too very can could should would may might must will shall do does did "
    "done has have had having all any each every some such only own same other another more most much "
    "many few both either neither i we you he she they me us him her them my our your their there here "
    "about above after again against before below between during through until up down out off just "
    "one two given using used use whether also"
)
STOP_WORDS = frozenset(_STOP_TEXT.split())

_SNAKE = re.compile(r"[A-Za-z0-9]_[A-Za-z0-9]|^_|_$")
_CAMEL = re.compile(r"[a-z0-9][A-Z]")
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.|::|->)[A-Za-z_]\w*")
_REGEX = re.compile(r"\\[wdsbWDSB.()\[\]|]|\.\*|\.\+|\[[^\]]+\]|\(\?|[)\]][*+?]|\^\w|\w\$$|\|")
_PATH = re.compile(r"\w/\w|^\.{0,2}/|\.(?:py|pyi|c|h|rs|go|js|ts|java|cc|cpp|md|txt|toml|json)\b")
_CODE_PUNCT = set("()[]{}<>=;:*&|\\^$+?#@/%!~`\"'")
_KEYWORDS_TEXT = (
    "def class fn struct return import from include static const let mut impl pub void int char self "
    "async await lambda typedef enum union sizeof null none true false"
)
_KEYWORDS = frozenset(_KEYWORDS_TEXT.split())

#: Names of the features, in the order `features` returns them (the weights in gate.json follow it).
FEATURES = (
    "log_words",
    "one_word",
    "stop_share",
    "any_stop",
    "lower_alpha_share",
    "snake",
    "camel",
    "dotted",
    "code_punct_share",
    "regex",
    "path",
    "ends_period",
    "capitalised_first",
    "alpha_share",
    "all_caps_word",
    "digit_share",
    "mean_word_len",
    "keyword",
    "call_parens",
)


def features(query: str) -> list[float]:
    """The feature vector of `query` (see `FEATURES`)."""
    q = query.strip()
    words = q.split()
    n = len(words) or 1
    chars = [c for c in q if not c.isspace()] or [" "]
    nc = len(chars)
    lowered = [w.lower().strip(".,;:!?\"'()") for w in words]
    stops = sum(1 for w in lowered if w in STOP_WORDS)
    first = words[0] if words else ""
    return [
        math.log1p(len(words)),
        1.0 if len(words) <= 1 else 0.0,
        stops / n,
        1.0 if stops else 0.0,
        sum(1 for w in words if w.isalpha() and w.islower()) / n,
        1.0 if any(_SNAKE.search(w) for w in words) else 0.0,
        1.0 if any(_CAMEL.search(w) for w in words) else 0.0,
        1.0 if _DOTTED.search(q) else 0.0,
        sum(1 for c in chars if c in _CODE_PUNCT) / nc,
        1.0 if _REGEX.search(q) else 0.0,
        1.0 if _PATH.search(q) else 0.0,
        1.0 if q.endswith(".") else 0.0,
        1.0 if first[:1].isupper() and first[1:].islower() and first.isalpha() else 0.0,
        sum(1 for c in chars if c.isalpha()) / nc,
        1.0 if any(len(w) > 1 and w.isupper() and w.isalpha() for w in words) else 0.0,
        sum(1 for c in chars if c.isdigit()) / nc,
        min(sum(len(w) for w in words) / n, 30.0) / 10.0,
        1.0 if any(w in _KEYWORDS for w in (x.lower() for x in words)) else 0.0,
        1.0 if "(" in q and ")" in q else 0.0,
    ]


@lru_cache(maxsize=1)
def _weights() -> tuple[list[float], float, float]:
    data = json.loads((Path(__file__).with_name("gate.json")).read_text())
    if tuple(data["features"]) != FEATURES:
        raise RuntimeError("lens/rerank/gate.json does not match the gate's features; rerun train_gate.py")
    return list(map(float, data["weights"])), float(data["bias"]), float(data["threshold"])


def nl_probability(query: str) -> float:
    """How likely `query` is a plain-English question (0..1)."""
    w, b, _ = _weights()
    z = b + sum(wi * xi for wi, xi in zip(w, features(query), strict=True))
    return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, z))))


def is_natural_language(query: str) -> bool:
    """The gate: whether Stage-C should rerank `query`."""
    return nl_probability(query) >= _weights()[2]
