"""Stage-A on the running Python's standard library, with pytest-benchmark (`make bench`).

Grouped like memchr's benchmarks by how often the needle occurs; every benchmark also checks its answer.
Numbers beside ripgrep come from `benches/kernel_vs_rg.py`, which runs both in one process.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

import lens
from benches.conftest import EXCLUDE, STDLIB

IDENTIFIERS = ["OrderedDict", "urlsplit", "ThreadPoolExecutor", "parse_headers", "getaddrinfo", "lru_cache"]
COMMON = ["self", "return", "__init__", "import os"]
NATURAL = ["parse an http date header", "read a zip file member", "quote a string for the shell"]


def test_build_stdlib(benchmark: BenchmarkFixture, tmp_path: Path) -> None:
    idx = benchmark.pedantic(
        lambda: lens.Index.build(STDLIB, tmp_path / "i", exclude=EXCLUDE, semantic=False), rounds=3
    )
    assert idx.stats()["files"] > 500


@pytest.mark.parametrize(
    ("group", "queries"), [("identifier", IDENTIFIERS), ("common", COMMON), ("natural", NATURAL)]
)
def test_search_k50(
    benchmark: BenchmarkFixture, stdlib_index: lens.Index, group: str, queries: list[str]
) -> None:
    benchmark.group = f"search k=50 {group}"
    cycle = itertools.cycle(queries)
    res = benchmark.pedantic(lambda: stdlib_index.search(next(cycle), k=50, mode="lex"), rounds=300)
    assert len(res.hits) == 50


@pytest.mark.parametrize(
    ("name", "pattern", "opts"),
    [
        ("never", "NO_SUCH_NEEDLE_ANYWHERE", {"regex": False}),
        ("rare", "ThreadPoolExecutor", {"regex": False}),
        ("rare_casei", "threadpoolexecutor", {"regex": False, "ignore_case": True}),
        ("rare_word", "urlsplit", {"regex": False, "word": True}),
        ("regex", r"def \w+_timeout\(", {}),
        ("common", "self", {"regex": False}),
    ],
)
def test_grep(
    benchmark: BenchmarkFixture, stdlib_index: lens.Index, name: str, pattern: str, opts: dict
) -> None:  # type: ignore[type-arg]
    benchmark.group = "grep"
    hits = benchmark(lambda: stdlib_index.grep(pattern, **opts))
    stdlib_index.flags["stage_a.native"] = False
    try:
        assert hits == stdlib_index.grep(pattern, **opts)  # the baseline path agrees
    finally:
        stdlib_index.flags.reset("stage_a.native")
    assert (len(hits) == 0) == (name == "never")
