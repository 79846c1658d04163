"""Stage-B: tree-sitter symbols at index time, the lookups, the pipeline, the cache, refresh, damage."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import pytest

import lens
from lens.symbols import Symbol, is_identifier
from tests.conftest import span_ok, write_tree

# A few files per language; each defines one marker name the tests look up.
FILES: dict[str, bytes] = {
    "py/http_date.py": (
        b"import time\n\n"
        b"class DateParser:\n"
        b"    def parse_http_date(self, value):\n"
        b"        return time.strptime(value)\n\n"
        b"def caf\xc3\xa9_helper():\n"
        b"    return DateParser().parse_http_date('x')\n"
    ),
    "py/use.py": (
        b"from http_date import DateParser\n\nDateParser().parse_http_date('y')\n# see parse_http_date\n"
    ),
    "rs/lib.rs": (
        b"pub struct Widget { size: u32 }\nimpl Widget {\n"
        b"    pub fn render_widget(&self) -> u32 { self.size }\n}\n"
    ),
    "c/list.c": (
        b"int list_add(int a, int b);\n"
        b"static int *list_new(void)\n{\n\treturn 0;\n}\n"
        b"int list_add(int a, int b)\n{\n\treturn a + b + *list_new();\n}\n"
    ),
    "cpp/shape.cpp": b"namespace geo {\nclass Shape {\n public:\n  double area() { return 0; }\n};\n}\n",
    "go/server.go": (
        b"package server\n\ntype Server struct{}\n\n"
        b"func (s *Server) ServeHTTPish() {}\n\nfunc NewServer() *Server { return &Server{} }\n"
    ),
    "java/Queue.java": b"public class JobQueue {\n  public void enqueueJob(int x) {}\n}\n",
    "js/app.js": b"function startApp() {\n  return 1;\n}\nclass AppView {}\nstartApp();\n",
    "ts/model.ts": (
        b"interface UserModel { id: number }\nfunction loadUser(id: number): UserModel { return { id }; }\n"
    ),
    "rb/cart.rb": b"class Cart\n  def add_item(x)\n    x\n  end\nend\n",
    "php/router.php": b"<?php\nfunction route_request($r) { return $r; }\nclass Router {}\n",
    "docs/README.md": b"parse_http_date is documented here\n",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "repo", FILES)


@pytest.fixture
def idx(repo: Path, tmp_path: Path) -> lens.Index:
    return lens.Index.build(repo, tmp_path / "idx")


@pytest.mark.parametrize(
    ("name", "path", "kind", "container"),
    [
        ("DateParser", "py/http_date.py", "class", None),
        ("parse_http_date", "py/http_date.py", "method", "DateParser"),
        ("café_helper", "py/http_date.py", "function", None),
        ("render_widget", "rs/lib.rs", "method", None),
        ("list_add", "c/list.c", "function", None),
        ("list_new", "c/list.c", "function", None),
        ("Shape", "cpp/shape.cpp", "class", "geo"),
        ("NewServer", "go/server.go", "function", None),
        ("ServeHTTPish", "go/server.go", "method", None),
        ("JobQueue", "java/Queue.java", "class", None),
        ("enqueueJob", "java/Queue.java", "method", "JobQueue"),
        ("startApp", "js/app.js", "function", None),
        ("UserModel", "ts/model.ts", "interface", None),
        ("loadUser", "ts/model.ts", "function", None),
        ("add_item", "rb/cart.rb", "method", "Cart"),
        ("route_request", "php/router.php", "function", None),
    ],
)
def test_definitions_per_language(
    idx: lens.Index, repo: Path, name: str, path: str, kind: str, container: str | None
) -> None:
    defs = idx.definitions(name)
    assert len(defs) == 1, defs
    h = defs[0]
    assert h.path == path
    assert h.why == ("definition",)
    assert isinstance(h.symbol, Symbol)
    assert h.symbol.kind == kind
    if container is not None:
        assert h.symbol.container == container
    data = (repo / path).read_bytes()
    assert data[h.byte_start : h.byte_end] == name.encode()
    assert span_ok(repo, h)
    # The whole definition's span holds the name.
    assert h.symbol.def_start <= h.byte_start < h.byte_end <= h.symbol.def_end


def test_c_prototype_is_a_reference_not_a_definition(idx: lens.Index) -> None:
    (d,) = idx.definitions("list_add")
    assert d.line == 6
    refs = idx.references("list_add")
    assert [r.line for r in refs] == [1]
    assert refs[0].why == ("reference",)
    assert refs[0].symbol is not None and refs[0].symbol.line == 6


def test_identifier_query_puts_the_definition_first(idx: lens.Index, repo: Path) -> None:
    for mode in ("auto", "symbol", "hybrid"):
        res = idx.search("parse_http_date", k=10, mode=mode)
        first = res.hits[0]
        assert (first.path, first.line, first.why) == ("py/http_date.py", 4, ("definition",)), mode
        assert first.symbol is not None and first.symbol.name == "parse_http_date"
        whys = [h.why for h in res.hits]
        # Definitions, then references, then plain text matches.
        assert whys[1] == ("reference",)
        assert any(h.path == "docs/README.md" for h in res.hits)
        assert "stage_b" in res.timings_ms
        assert all(span_ok(repo, h) for h in res.hits)
        keys = [(h.path, h.line) for h in res.hits]
        assert len(keys) == len(set(keys)), "a line appears twice"
    lex = idx.search("parse_http_date", k=10, mode="lex")
    assert "stage_b" not in lex.timings_ms
    assert all(h.symbol is None for h in lex.hits)


def test_qualified_and_fuzzy_queries(idx: lens.Index) -> None:
    assert idx.search("DateParser.parse_http_date", k=5).hits[0].line == 4
    typo = idx.search("parse_htp_date", k=5).hits[0]
    assert typo.why == ("fuzzy",) and typo.symbol is not None and typo.symbol.name == "parse_http_date"
    # Sub-tokens: camelCase finds snake_case.
    camel = idx.search("parseHttpDate", k=5).hits[0]
    assert camel.symbol is not None and camel.symbol.name == "parse_http_date"
    # Not identifier-like: Stage-A only.
    assert all(h.symbol is None for h in idx.search("parse http date", k=5).hits)


def test_stage_b_flag_turns_it_off(idx: lens.Index) -> None:
    idx.flags.set("stage_b.enabled", False, reason="test", source="test")
    try:
        res = idx.search("parse_http_date", k=5)
        assert all(h.symbol is None for h in res.hits)
        assert "stage_b" not in res.timings_ms
    finally:
        idx.flags.reset("stage_b.enabled")


def test_symbols_prefix_fuzzy_subtokens(idx: lens.Index) -> None:
    names = [s.name for s in idx.symbols(prefix="parse_")]
    assert "parse_http_date" in names
    assert [s.name for s in idx.symbols(prefix="parseHttp")] == ["parse_http_date"]
    fz = idx.symbols(fuzzy="enqueuJob")
    assert fz[0].name == "enqueueJob" and fz[0].distance == 1 and fz[0].kind == "method"
    with pytest.raises(ValueError, match="exactly one"):
        idx.symbols()
    with pytest.raises(lens.QueryError):
        idx.definitions("  ")


def test_is_identifier() -> None:
    assert is_identifier("os.path.join")
    assert is_identifier("Vec::new")
    assert not is_identifier("read a file")
    assert not is_identifier("a+b")
    assert is_identifier("\u00e9lan") and is_identifier("stra\u00dfe.gr\u00f6\u00dfe()")


def test_one_identifier_rule_for_lookups_and_search(tmp_path: Path) -> None:
    """A name `definitions()` finds is shown as a definition by `search(mode="symbol")`: Python and the
    native Stage-B decide "looks like an identifier" with one function (Unicode letters included)."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "m.py").write_text("def \u00e9lan(x):\n    return x\n\n\u00e9lan(1)\n")
    idx = lens.Index.build(root, tmp_path / "idx")
    defs = idx.definitions("\u00e9lan")
    assert [(h.path, h.line) for h in defs] == [("m.py", 1)]
    r = idx.search("\u00e9lan", mode="symbol")
    assert r.hits[0].line == 1 and "definition" in r.hits[0].why and r.hits[0].symbol is not None


def test_cache_counts_and_pattern_compile_time(idx: lens.Index) -> None:
    before = idx.cache_stats()
    for _ in range(5):
        idx.search("list_add", k=5)
    after = idx.cache_stats()
    assert after["lookups"]["hits"] - before["lookups"]["hits"] == 4
    assert after["lookups"]["misses"] - before["lookups"]["misses"] == 1
    assert after["bytes"] > 0 and 0 < after["hit_rate"] <= 1
    for _ in range(3):
        idx.grep(r"list_\w+")
    p = idx.cache_stats()
    assert p["patterns"]["misses"] >= 1 and p["patterns"]["hits"] >= 2
    assert p["pattern_compile_time_ms"] > 0
    assert set(p) >= {"hits", "misses", "hit_rate", "evictions", "bytes"}


def test_coverage_is_computed(idx: lens.Index) -> None:
    s = idx.stats()
    sym = s["symbols"]
    assert sym["source_files"] == 11  # README.md is not source
    assert sym["other_files"] == 1
    assert s["symbol_coverage"] == pytest.approx(sym["files_with_symbols"] / 11)
    assert s["precise_coverage"] == 0.0
    assert sym["by_language"]["python"]["files"] == 2


def test_refresh_keeps_symbols_consistent(idx: lens.Index, repo: Path) -> None:
    (repo / "js/app.js").write_bytes(b"function stopApp() {}\n")
    (repo / "rb/cart.rb").unlink()
    (repo / "py/new_mod.py").write_bytes(b"def brand_new():\n    pass\n")
    counts = idx.refresh()
    assert counts["changed"] == 1 and counts["removed"] == 1 and counts["added"] == 1
    assert idx.definitions("startApp") == []
    assert idx.definitions("stopApp")[0].path == "js/app.js"
    assert idx.definitions("add_item") == []
    assert idx.definitions("brand_new")[0].line == 1
    assert idx.definitions("list_add")[0].line == 6  # untouched files keep theirs
    again = lens.Index.open(idx.index_dir)
    assert again.definitions("stopApp")[0].path == "js/app.js"
    assert again.search("brand_new", k=3).hits[0].why == ("definition",)


def test_refreshes_write_deltas_then_fold_them(idx: lens.Index, repo: Path) -> None:
    assert idx.stats()["symbols"]["symbol_files"] == 1
    target = repo / "py/churn.py"
    for i in range(10):
        target.write_bytes(f"def churn_{i}():\n    pass\n\nchurn_{i}()\n".encode())
        idx.refresh()
        files = idx.stats()["symbols"]["symbol_files"]
        assert 1 <= files <= 8, files
        # Only the newest version's symbols are live.
        assert [d.line for d in idx.definitions(f"churn_{i}")] == [1]
        assert len(idx.references(f"churn_{i}")) == 1
        if i:
            assert idx.definitions(f"churn_{i - 1}") == []
            assert idx.references(f"churn_{i - 1}") == []
            assert [s.name for s in idx.symbols(prefix="churn_")] == [f"churn_{i}"]
        assert idx.definitions("list_add")[0].line == 6
    # Past 8 symbol files a refresh folds them into one.
    assert idx.stats()["symbols"]["symbol_files"] < 8
    reopened = lens.Index.open(idx.index_dir)
    assert reopened.definitions("churn_9")[0].path == "py/churn.py"
    assert reopened.stats()["symbols"]["definitions"] == idx.stats()["symbols"]["definitions"]
    target.unlink()
    idx.refresh()
    assert idx.definitions("churn_9") == []
    assert idx.search("churn_9", k=3).hits == [] or idx.search("churn_9", k=3).hits[0].why != ("definition",)


def test_build_without_symbols(repo: Path, tmp_path: Path) -> None:
    plain = lens.Index.build(repo, tmp_path / "plain", symbols=False)
    assert plain.definitions("list_add") == []
    assert plain.search("list_add", k=3).hits[0].symbol is None
    assert plain.stats()["symbol_coverage"] == 0.0


def test_damaged_symbol_file_is_corrupt(repo: Path, tmp_path: Path) -> None:
    # Enough names that the symbol file outgrows its identity's 4 KiB (the manifest's record of the
    # file's head, which holds the header and its checksum): damage past it is the checksum's to find.
    many = "".join(f"def helper_number_{i}(value):\n    return value + {i}\n\n" for i in range(600))
    (repo / "py" / "many.py").write_text(many)
    idx = lens.Index.build(repo, tmp_path / "idx")
    (sym,) = list(idx.index_dir.glob("sym-*.lens"))
    data = bytearray(sym.read_bytes())
    assert len(data) > 3 * 4096
    data[len(data) - 8] ^= 0xFF
    sym.write_bytes(bytes(data))
    # The open maps the symbol file and checks its header; the body is checked on Stage-B's first use
    # (a grep never reads it). Every symbol lookup then refuses, with the file named, and keeps refusing.
    damaged = lens.Index.open(idx.index_dir)
    assert [h.path for h in damaged.grep("list_add", limit=1)] == ["c/list.c"]
    for _ in range(2):
        for call in (
            lambda: damaged.verify(),
            lambda: damaged.definitions("list_add"),
            lambda: damaged.references("list_add"),
            lambda: damaged.symbols(prefix="list_"),
            lambda: damaged.search("sym:list_add"),
            lambda: damaged.stats(),
        ):
            with pytest.raises(lens.IndexCorruptError, match=r"sym-\d+\.lens.*: checksum mismatch"):
                call()
    # A ranked search loses Stage-B's contribution (logged as the stage's failure), not the query.
    assert damaged.search("list_add", k=3).hits
    # The head's damage is refused at open (the manifest's identity of the file, then its header).
    data[100] ^= 0xFF
    sym.write_bytes(bytes(data))
    with pytest.raises(lens.IndexCorruptError, match="symbol file"):
        lens.Index.open(idx.index_dir)
    sym.write_bytes(b"not a symbol file at all")
    with pytest.raises(lens.IndexCorruptError):
        lens.Index.open(idx.index_dir)
    sym.unlink()
    with pytest.raises(lens.IndexCorruptError, match="missing"):
        lens.Index.open(idx.index_dir)


def test_threads_share_stage_b(idx: lens.Index) -> None:
    names = ["list_add", "startApp", "Shape", "loadUser", "parse_http_date", "enqueueJob"] * 20

    def first(q: str) -> tuple[str, int]:
        h = idx.search(q, k=3).hits[0]
        return h.path, h.line

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        got = list(pool.map(first, names))
    assert got == [first(q) for q in names]
