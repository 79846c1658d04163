"""The query language (`file:`, `lang:`, `sym:`, `case:yes`, phrases, `-term`, `or`), parsed once by the
native core, and the `paths=` / `lang=` filters of `search` and `grep`, applied before scoring."""

from __future__ import annotations

from pathlib import Path

import pytest

import lens
from lens import _lens
from tests.conftest import write_tree


def _def_first(res: lens.SearchResult, path: str, text: str) -> bool:
    top = res.hits[0]
    return top.path.endswith(path) and text in top.text


def test_lang_and_sym_keep_the_definition_first(stdlib_index: lens.Index) -> None:
    plain = stdlib_index.search("urlsplit", k=5)
    assert _def_first(plain, "urllib/parse.py", "def urlsplit")
    for q in ("lang:python urlsplit", "sym:urlsplit", "urlsplit lang:py", "sym:urlsplit file:urllib/*.py"):
        res = stdlib_index.search(q, k=5)
        assert _def_first(res, "urllib/parse.py", "def urlsplit"), (q, res.hits[:2])
    # sym: is definitions only.
    sym = stdlib_index.search("sym:urlsplit", k=20)
    assert sym.hits and all("definition" in h.why for h in sym.hits)
    assert all(h.symbol is not None and h.symbol.name == "urlsplit" for h in sym.hits)


def test_spelling_with_hyphens_finds_the_snake_case_definition(stdlib_index: lens.Index) -> None:
    for q in ("parse-qsl", "parse_qsl", "parseQsl"):
        res = stdlib_index.search(q, k=5)
        assert _def_first(res, "urllib/parse.py", "def parse_qsl"), (q, res.hits[:2])


def test_spelling_with_hyphens_on_the_sample(sample_index: lens.Index) -> None:
    for mode in ("lex", "auto"):
        res = sample_index.search("parse-http-date", k=3, mode=mode)
        assert res.hits and "def parse_http_date" in res.hits[0].text, (mode, res.hits)


def test_file_and_negation_filters(sample_index: lens.Index) -> None:
    everywhere = {h.path for h in sample_index.search("PM_RESUME", k=20).hits}
    assert {"docs/notes.md", "src/bad_utf8.txt"} <= everywhere
    only_md = sample_index.search("PM_RESUME file:*.md", k=20)
    assert only_md.hits and {h.path for h in only_md.hits} == {"docs/notes.md"}
    not_md = sample_index.search("PM_RESUME -file:*.md", k=20)
    assert not_md.hits and "docs/notes.md" not in {h.path for h in not_md.hits}
    regex = sample_index.search("PM_RESUME file:/^src/", k=20)
    assert regex.hits and all(h.path.startswith("src/") for h in regex.hits)
    # -term leaves out the files that hold the term.
    neg = sample_index.search("PM_RESUME -TODO", k=20)
    assert neg.hits and "docs/notes.md" not in {h.path for h in neg.hits}


def test_or_returns_either_side(sample_index: lens.Index) -> None:
    res = sample_index.search("readFile or HTTPDateError", k=20, mode="lex")
    texts = " ".join(h.text for h in res.hits)
    assert "readFile" in texts and "HTTPDateError" in texts
    assert [h.score for h in res.hits] == sorted((h.score for h in res.hits), reverse=True)


def test_or_ranks_each_branchs_definition_first(stdlib_index: lens.Index) -> None:
    """Stage-B runs for every `or` branch: both definitions come before the `__all__` line naming both."""
    for q in ("urlsplit or urlparse", "urlparse or urlsplit"):
        res = stdlib_index.search(q, k=10)
        top = {(h.path, h.text.split("(")[0]) for h in res.hits[:2]}
        want = {("urllib/parse.py", "def urlsplit"), ("urllib/parse.py", "def urlparse")}
        assert top == want, (q, res.hits[:3])
        assert all("definition" in h.why for h in res.hits[:2])


def test_case_yes_keeps_exact_case(sample_index: lens.Index) -> None:
    folded = sample_index.search("pm_resume", k=20, mode="lex")
    assert any("PM_RESUME" in h.text and "pm_resume" not in h.text for h in folded.hits)
    exact = sample_index.search("case:yes pm_resume", k=20, mode="lex")
    assert exact.hits and all("pm_resume" in h.text for h in exact.hits)


def test_phrase_is_ranked_as_written(sample_index: lens.Index) -> None:
    res = sample_index.search('"parse http dates"', k=3, mode="lex")
    assert res.hits and "parse http dates" in res.hits[0].text


@pytest.mark.parametrize(
    ("query", "position"),
    [
        ('foo -"bar', 5),
        ("x lang:klingon", 7),
        ("x file:/(/", 8),
        ("x case:maybe", 7),
        ("OR foo", 0),
        ("foo OR", 4),
        ("sym:a b", 6),
        ("file:*.py", 9),
    ],
)
def test_malformed_syntax_is_a_query_error_with_the_position(
    sample_index: lens.Index, query: str, position: int
) -> None:
    with pytest.raises(lens.QueryError) as info:
        sample_index.search(query)
    assert info.value.position == position
    assert isinstance(info.value, lens.LensError) and isinstance(info.value, ValueError)


def test_questions_are_taken_as_typed() -> None:
    q = _lens.parse_query("Join two or more pathname components, inserting '/' as needed")
    assert q.branches == ["Join two or more pathname components, inserting '/' as needed"]
    q = _lens.parse_query('lang:python Find a "loader" object for fullname')
    assert q.text == 'Find a "loader" object for fullname' and q.langs == ["py"]


def _many(root: Path) -> lens.Index:
    """Ten files that rank best for "needle" under top/ (named for it), and weaker ones under keep/."""
    files = {f"top/needle{i}.py": b"needle = 1\n" for i in range(10)}
    files.update({f"keep/k{i}.py": f"x = 1\n# a needle {i}\n".encode() for i in range(3)})
    files["keep/notes.md"] = b"needle in a md file\n"
    write_tree(root / "repo", files)
    return lens.Index.build(root / "repo", root / "idx")


def test_filters_apply_before_scoring(tmp_path: Path) -> None:
    idx = _many(tmp_path)
    top = idx.search("needle", k=3, mode="lex")
    assert all(h.path.startswith("top/") for h in top.hits)
    # Excluding every top file still gives k hits, all from the allowed files.
    for kwargs in ({"paths": ["!top"]}, {"paths": "keep/**"}, {"paths": ["!top/"]}):
        res = idx.search("needle", k=3, mode="lex", **kwargs)  # type: ignore[arg-type]
        assert len(res.hits) == 3 and all(h.path.startswith("keep/") for h in res.hits), (kwargs, res.hits)
    res = idx.search("needle", k=3, lang="python", paths="!top")
    assert len(res.hits) == 3 and {h.path for h in res.hits} == {f"keep/k{i}.py" for i in range(3)}
    md = idx.search("needle", k=5, lang="markdown")
    assert [h.path for h in md.hits] == ["keep/notes.md"]
    # The query language's file: uses the same mechanism.
    res = idx.search("needle -file:top/*", k=3, mode="lex")
    assert len(res.hits) == 3 and all(h.path.startswith("keep/") for h in res.hits)


def test_grep_filters(tmp_path: Path) -> None:
    idx = _many(tmp_path)
    assert {h.path for h in idx.grep("needle", paths="*.md")} == {"keep/notes.md"}
    assert all(h.path.startswith("keep/") for h in idx.grep("needle", paths=["!top"]))
    want = {f"keep/k{i}.py" for i in range(3)}
    assert {h.path for h in idx.grep("needle", lang="py", paths="keep/*")} == want
    with pytest.raises(lens.QueryError):
        idx.grep("needle", paths="a[b")
    with pytest.raises(lens.QueryError):
        idx.grep("needle", lang="klingon")
    with pytest.raises(lens.QueryError):
        idx.search("needle", paths=3)  # type: ignore[arg-type]
