"""`search`'s results as a reader sees them: scores that never rise down the list, `group_by="file"` with
the number of matches per file, and `lens search`'s grouped output on a terminal."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import lens
from lens.pipeline import monotonic
from lens.types import Hit


def _hit(path: str, line: int, score: float) -> Hit:
    return Hit(path, line, 0, 0, 1, "x", score, ("t",))


def test_monotonic_lifts_and_keeps_the_order() -> None:
    hits = [_hit("a", 1, 1000.0), _hit("a", 2, 500.0), _hit("b", 1, 1112.0), _hit("c", 1, 3.0)]
    got = monotonic(hits)
    assert [(h.path, h.line) for h in got] == [(h.path, h.line) for h in hits]
    assert [h.score for h in got] == [1112.0, 1112.0, 1112.0, 3.0]


@pytest.mark.parametrize(
    "query", ["urlsplit", "OrderedDict", "parse an http date header", "def urlsplit(", "escape html", "join"]
)
def test_scores_are_monotonic_in_rank(stdlib_index: lens.Index, query: str) -> None:
    for mode in ("auto", "symbol", "lex"):
        scores = [h.score for h in stdlib_index.search(query, k=20, mode=mode)]  # type: ignore[arg-type]
        assert scores == sorted(scores, reverse=True), (query, mode, scores)


def test_group_by_file(stdlib_index: lens.Index) -> None:
    res = stdlib_index.search("urlsplit", k=3, group_by="file")
    assert res.groups is not None and 1 <= len(res.groups) <= 3
    assert res.groups[0].path.endswith("urllib/parse.py") and res.groups[0].matches >= 1
    assert len({g.path for g in res.groups}) == len(res.groups)
    assert all(g.matches == len(g.hits) and all(h.path == g.path for h in g.hits) for g in res.groups)
    assert res.hits == [h for g in res.groups for h in g.hits]
    best = [g.score for g in res.groups]
    assert best == sorted(best, reverse=True)
    with pytest.raises(lens.QueryError):
        stdlib_index.search("urlsplit", group_by="line")  # type: ignore[arg-type]


def test_group_by_file_counts_matching_lines(sample_index: lens.Index) -> None:
    res = sample_index.search("PM_RESUME", k=5, mode="lex", group_by="file")
    assert res.groups is not None
    by = {g.path: g.matches for g in res.groups}
    assert by["src/bad_utf8.txt"] == 2 and by["docs/notes.md"] == 1


@pytest.mark.parametrize("query", ["urlsplit", "parse a url into its parts", "quote"])
def test_group_matches_are_the_lines_among_the_deep_ranking(stdlib_index: lens.Index, query: str) -> None:
    # What `matches` counts, as documented: the file's lines among the best k * GROUP_DEPTH hits of the
    # same search, ungrouped; the groups are the files of those hits in the order of their best hit.
    from lens.index import GROUP_DEPTH

    k = 4
    grouped = stdlib_index.search(query, k=k, mode="lex", group_by="file")
    deep = stdlib_index.search(query, k=k * GROUP_DEPTH, mode="lex").hits
    assert grouped.groups is not None and grouped.groups
    order = list(dict.fromkeys(h.path for h in deep))[:k]
    assert [g.path for g in grouped.groups] == order
    for g in grouped.groups:
        lines = [h for h in deep if h.path == g.path]
        assert g.matches == len(lines) == len(g.hits)
        assert [(h.line, h.score) for h in g.hits] == [(h.line, h.score) for h in lines]


def test_cli_search_groups_on_a_terminal(sample_index: lens.Index) -> None:
    cmd = [sys.executable, "-m", "lens", "search", "readFile", "--index", str(sample_index.index_dir)]
    master, slave = os.openpty()
    p = subprocess.Popen(cmd, cwd=sample_index.root, stdout=slave, stderr=subprocess.DEVNULL)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    p.wait()
    os.close(master)
    text = out.decode()
    assert "src/reader.py (" in text and "match" in text and "definition" in text
    # To a pipe: rg-style lines, one per hit; --group forces the grouped form.
    piped = subprocess.run(cmd, cwd=sample_index.root, capture_output=True, text=True, check=True).stdout
    assert piped.splitlines()[0].startswith("src/reader.py:1:5:def readFile")
    grouped = subprocess.run(
        [*cmd, "--group"], cwd=sample_index.root, capture_output=True, text=True, check=True
    ).stdout
    assert grouped.startswith("src/reader.py (")
