"""The native hooks a sharded set's shards answer with (issue 14), on one index and without Ray: each
changes only what it says, only on the thread that installed it, and nothing while unset."""

from __future__ import annotations

import threading

import pytest

import lens
from lens import _lens
from tests.conftest import write_tree

FILES = {
    "a/dates.py": "def parse_date(s):\n    return s\n\n\ndef parse_data(s):\n    return parse_date(s)\n",
    "b/more.py": "def parse_dale(s):\n    return s\n\n\nx = parse_data('x')\n",
    "c/words.py": "# how to call parse_date on a header\nvalue = 'parse the date header'\n",
}


@pytest.fixture(scope="module")
def idx(tmp_path_factory: pytest.TempPathFactory) -> lens.Index:
    root = tmp_path_factory.mktemp("hooks")
    write_tree(root / "src", {k: v.encode() for k, v in FILES.items()})
    return lens.Index.build(root / "src", root / "idx", semantic=False)


def _defs(r: lens.SearchResult) -> list[tuple[str, str]]:
    return [(h.why[0], h.text.strip()) for h in r.hits if h.why[:1] in (("definition",), ("fuzzy",))]


def test_fallback_candidates_and_names(idx: lens.Index) -> None:
    # parse_dat is defined nowhere: one index falls back to names within 2 edits.
    name, defs, same, near = _lens.stage_b_fallback_candidates(idx._native, "parse_dat") or ("", 0, [], [])
    assert (name, defs, same) == ("parse_dat", 0, [])
    assert {n for n, d, c in near if c} >= {"parse_date", "parse_data", "parse_dale"}
    assert _lens.stage_b_fallback_candidates(idx._native, "parse the date") is None
    # Without the scan, only the count (what a set's first round asks every shard).
    assert _lens.stage_b_fallback_candidates(idx._native, "parse_dat", False) == ("parse_dat", 0, [], [])
    assert _lens.stage_b_fallback_candidates(idx._native, "parse_date", True) == ("parse_date", 1, [], [])
    plain = idx.search("parse_dat", k=10)
    assert {t for _, t in _defs(plain)} == {"def parse_date(s):", "def parse_data(s):", "def parse_dale(s):"}
    try:
        _lens.set_stage_b_fallback(["parse_dale"])
        assert _defs(idx.search("parse_dat", k=10)) == [("fuzzy", "def parse_dale(s):")]
        _lens.set_stage_b_fallback([])  # the set defines the name elsewhere: no stand-ins here
        assert _defs(idx.search("parse_dat", k=10)) == []
        # A name this index defines is looked up as always, whatever the set decided.
        assert _defs(idx.search("parse_date", k=10)) == [("definition", "def parse_date(s):")]
        # Other threads are not affected.
        seen: list[lens.SearchResult] = []
        t = threading.Thread(target=lambda: seen.append(idx.search("parse_dat", k=10)))
        t.start()
        t.join()
        assert _defs(seen[0]) == _defs(plain)
    finally:
        _lens.set_stage_b_fallback(None)
    again = idx.search("parse_dat", k=10)
    assert [(h.path, h.line, h.score) for h in again.hits] == [(h.path, h.line, h.score) for h in plain.hits]


def test_union_parts_keep_the_two_lists_apart(idx: lens.Index) -> None:
    query = "how to call parse_date"
    assert _lens.query_route(query) == "union"
    plain = idx.search(query, k=10)
    try:
        _lens.set_union_parts(10)
        apart = idx.search(query, k=20)
    finally:
        _lens.set_union_parts(None)
    whys = [h.why[:1] == ("bm25f",) for h in apart.hits]
    # The definition index's hits, then Stage-A's: never interleaved, a line may come twice.
    assert whys == sorted(whys, reverse=True) and any(whys) and not all(whys)
    assert {(h.path, h.line) for h in plain.hits} <= {(h.path, h.line) for h in apart.hits}
    again = idx.search(query, k=10)
    assert [(h.path, h.line) for h in again.hits] == [(h.path, h.line) for h in plain.hits]
