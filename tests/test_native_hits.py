"""A ranked search's hits are made as `lens.Hit`s by the native core (the bindings set the frozen
dataclass's slots directly): they must be indistinguishable from hits built in Python."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

import lens
from lens.types import Hit


@pytest.mark.parametrize("native", [True, False])
def test_native_hits_are_plain_hits(sample_index: lens.Index, native: bool) -> None:
    snap = sample_index._native.snapshot()
    hits, _truncated, _info = snap.search("parse http date", 10, None, native)
    assert hits
    for h in hits:
        assert type(h) is Hit
        fields = {f.name: getattr(h, f.name) for f in dataclasses.fields(Hit)}  # every slot is set
        built = Hit(**fields)
        assert h == built and hash(h) == hash(built) and repr(h) == repr(built)
        assert h.symbol is None and isinstance(h.why, tuple) and isinstance(h.score, float)
        assert pickle.loads(pickle.dumps(h)) == h
        assert dataclasses.replace(h, score=0.5).score == 0.5
        with pytest.raises(dataclasses.FrozenInstanceError):
            h.line = 0  # type: ignore[misc]


def test_search_hits_match_the_rows_grep_gives(sample_index: lens.Index) -> None:
    # The same line found by both calls carries the same location and text, whichever way it was made.
    got = sample_index.search("readFile", k=50, mode="lex").hits
    grepped = {(h.path, h.line): h for h in sample_index.grep("readFile", regex=False)}
    assert got
    for h in got:
        g = grepped.get((h.path, h.line))
        if g is not None:
            assert (h.path, h.line, h.text) == (g.path, g.line, g.text)
