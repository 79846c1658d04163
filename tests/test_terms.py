"""Issue 10: plain-English questions answered by the definition index (routing, hits, why, refresh)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

import lens

HTTP = '''"""Helpers for HTTP."""
import email.utils

# See https://www.rfc-editor.org/rfc/rfc9110 for the format.


def parse_http_date(value):
    parsed = email.utils.parsedate_to_datetime(value)
    return parsed.timestamp()


def quote_header_value(value):
    return '"%s"' % value.replace('"', '\\\\"')


class CookieJar:
    def add_cookie(self, cookie):
        self.cookies.append(cookie)

    def clear_expired_cookies(self, now):
        self.cookies = [c for c in self.cookies if c.expires > now]
'''

OTHER = """def render_page(template, context):
    for key, value in context.items():
        template = template.replace('{' + key + '}', str(value))
    return template
"""


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    (root / "web").mkdir(parents=True)
    (root / "web" / "http.py").write_text(HTTP)
    (root / "web" / "pages.py").write_text(OTHER)
    (root / "tests").mkdir()
    (root / "tests" / "test_http.py").write_text(
        "def test_parse_http_date():\n    assert parse_http_date('x')\n"
    )
    (root / "NOTES.txt").write_text("remove the expired cookies from the jar every night\n")
    return root


@pytest.fixture()
def idx(tmp_path: Path) -> lens.Index:
    return lens.Index.build(_tree(tmp_path), tmp_path / "index")


def test_a_question_finds_the_definition_header(idx: lens.Index) -> None:
    res = idx.search("parse an HTTP date", k=10, mode="lex")
    assert res.info["query_route"] == "terms"
    top = res.hits[0]
    assert (top.path, top.line) == ("web/http.py", 7)
    assert top.text.startswith("def parse_http_date")
    assert top.byte_end - top.byte_start == len("parse_http_date")
    assert top.why[0] == "bm25f"
    assert "name" in top.why and "spelled" in top.why
    # The test of the same name sinks below the definition.
    paths = [h.path for h in res.hits]
    assert paths.index("tests/test_http.py") > 0


def test_a_question_hit_spans_to_its_best_matching_line(tmp_path: Path) -> None:
    root = tmp_path / "src"
    root.mkdir()
    job = (
        "def run_nightly(jobs):\n"
        "    started = now()\n"
        "    for job in jobs:\n"
        "        job.retry_failed_uploads_with_backoff()  \n"
        "    return started\n"
    )
    (root / "job.py").write_text(job)
    idx = lens.Index.build(root, tmp_path / "index")
    res = idx.search("retry the failed uploads with a backoff", k=5, mode="lex")
    assert res.info["query_route"] == "terms"
    top = res.hits[0]
    # The hit points at the header line; its span runs from the name to the end of the line that
    # matches best (trailing blanks left out), so line and column still describe byte_start.
    assert (top.path, top.line, top.column) == ("job.py", 1, 4)
    assert top.text == "def run_nightly(jobs):"
    span = job.encode()[top.byte_start : top.byte_end]
    assert span.startswith(b"run_nightly(") and span.endswith(b"job.retry_failed_uploads_with_backoff()")
    # Where the header line matches best, the span is the name alone.
    top = idx.search("run the nightly jobs", k=5, mode="lex").hits[0]
    assert job.encode()[top.byte_start : top.byte_end] == b"run_nightly"


def test_methods_are_documents_and_words_meet_stems(idx: lens.Index) -> None:
    res = idx.search("removing expired cookies", k=5, mode="lex")
    assert (res.hits[0].path, res.hits[0].line) == ("web/http.py", 20)
    assert "name" in res.hits[0].why


def test_urls_and_imports_are_not_content(idx: lens.Index) -> None:
    res = idx.search("rfc editor email utils", k=10, mode="lex")
    assert all(h.path != "web/http.py" or "comment" not in h.why for h in res.hits)
    assert not any(h.line == 4 for h in res.hits if h.path == "web/http.py")


def test_identifiers_and_patterns_stay_on_stage_a(idx: lens.Index) -> None:
    res = idx.search("parse_http_date", k=5, mode="lex")
    assert res.info["query_route"] == "lexical"
    assert all(h.why[0] != "bm25f" for h in res.hits)
    assert idx.search(r"def \w+_date", k=5, mode="lex").info["query_route"] == "lexical"


def test_a_mixed_query_takes_the_union(idx: lens.Index) -> None:
    res = idx.search("where does render_page replace the template keys", k=10, mode="lex")
    assert res.info["query_route"] == "union"
    whys = {h.why[0] for h in res.hits}
    assert "bm25f" in whys and len(whys) > 1


def test_the_reference_path_agrees(idx: lens.Index) -> None:
    q = "clear the expired cookies of a jar"
    native = idx._native.search(q, 10, None, True)[0]
    reference = idx._native.search(q, 10, None, False)[0]
    assert native == reference


def test_refresh_reindexes_only_changed_files(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    idx = lens.Index.build(root, tmp_path / "index")
    before = sorted(p.name for p in (tmp_path / "index").glob("*.terms"))
    (root / "web" / "pages.py").write_text(
        OTHER + "\n\ndef compress_payload(data):\n    return zlib.compress(data)\n"
    )
    (root / "NOTES.txt").unlink()
    idx.refresh()
    after = sorted(p.name for p in (tmp_path / "index").glob("*.terms"))
    assert set(before) < set(after) and len(after) == len(before) + 1
    res = idx.search("compress a payload", k=5, mode="lex")
    assert (res.hits[0].path, res.hits[0].line) == ("web/pages.py", 7)
    res = idx.search("expired cookies every night", k=20, mode="lex")
    assert all(h.path != "NOTES.txt" for h in res.hits)
    # The replaced file's old definitions are gone with it; the new one holds render_page once.
    res = idx.search("render a page template", k=20, mode="lex")
    assert [(h.path, h.line) for h in res.hits].count(("web/pages.py", 1)) == 1


def test_a_rebuild_collects_old_term_files(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    lens.Index.build(root, tmp_path / "index")
    first = {p.name for p in (tmp_path / "index").glob("*.terms")}
    lens.Index.build(root, tmp_path / "index")
    second = {p.name for p in (tmp_path / "index").glob("*.terms")}
    assert first and second and not first & second


def test_a_damaged_term_file_is_corruption(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    lens.Index.build(root, tmp_path / "index")
    (term_file,) = (tmp_path / "index").glob("*.terms")
    data = bytearray(term_file.read_bytes())
    data[24:32] = b"\xff" * 8
    term_file.write_bytes(bytes(data))
    idx = lens.Index.open(tmp_path / "index")
    with pytest.raises(lens.IndexCorruptError):
        idx.search("parse an HTTP date", k=5, mode="lex")


def test_the_definition_index_can_be_switched_off_for_benchmarks(idx: lens.Index) -> None:
    os.environ["LENS_TERMS_ABLATE"] = "terms"
    try:
        assert idx.search("parse an HTTP date", k=5, mode="lex").info["query_route"] == "lexical"
    finally:
        del os.environ["LENS_TERMS_ABLATE"]


WORDS = [
    "parse",
    "http",
    "date",
    "header",
    "cookie",
    "jar",
    "expire",
    "clear",
    "render",
    "page",
    "template",
    "key",
    "value",
    "read",
    "zip",
    "file",
]


def _random_tree(root: Path, rng: random.Random) -> None:
    """Files of definitions whose names, owners and bodies share one small vocabulary, so many queries
    spell names (the `ident` rule's lookup), many files hold several matching definitions (`files`) and
    scores tie often; some sit under tests/ or vendor/ (`sink`), one file has no definitions (windows)."""
    for i in range(24):
        d = root / rng.choice(["web", "tests", "vendor", "zip"])
        d.mkdir(parents=True, exist_ok=True)
        lines = []
        if i % 3 == 0:
            lines.append(f"class {rng.choice(WORDS).title()}{rng.choice(WORDS).title()}:")
        for _ in range(rng.randint(1, 8)):
            name = "_".join(rng.sample(WORDS, rng.randint(1, 3)))
            indent = "    " if lines and lines[0].startswith("class") else ""
            body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))
            lines.append(f"{indent}def {name}(self, {rng.choice(WORDS)}):")
            lines.append(f"{indent}    # {body}")
            lines.append(f"{indent}    return {rng.choice(WORDS)}_{i}")
        (d / f"{rng.choice(WORDS)}_{i}.py").write_text("\n".join(lines) + "\n")
    (root / "NOTES.txt").write_text(" ".join(rng.choice(WORDS) for _ in range(200)) + "\n")


def test_the_ranked_top_k_equals_the_oracles(tmp_path: Path) -> None:
    """The rules are applied inside the pruned top-k search (spelled names by key lookup); scoring every
    document and checking every name must give the same hits, in the same order, for any k."""
    rng = random.Random(10)
    _random_tree(tmp_path / "src", rng)
    idx = lens.Index.build(tmp_path / "src", tmp_path / "index")
    spelled = 0
    for round in range(150):
        q = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 6)))
        k = [1, 3, 10, 50][round % 4]
        native, _, info = idx._native.search(q, k, None, True)
        reference = idx._native.search(q, k, None, False)[0]
        assert info["query_route"] == "terms", q
        assert native == reference, (q, k)
        spelled += any("spelled" in h.why for h in native)
    assert spelled > 10, "the queries spell names often"
