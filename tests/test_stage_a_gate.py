"""The suite's one timing gate: Stage-A `search` p95 on the running Python's standard library.

pytest-benchmark times each call; the gate is the seed's Stage-A SLO (p95 <= 5 ms), which lens beats by a
wide margin on this corpus (see BENCHMARKS.md), so only a real regression trips it.
"""

from __future__ import annotations

import itertools

from pytest_benchmark.fixture import BenchmarkFixture

import lens

STAGE_A_P95_SLO_S = 0.005

QUERIES = [
    # identifiers, rare to very common
    "OrderedDict",
    "urlsplit",
    "ThreadPoolExecutor",
    "parse_headers",
    "getaddrinfo",
    "TemporaryDirectory",
    "_make_iterencode",
    "SimpleNamespace",
    "dataclass",
    "namedtuple",
    "__init__",
    "self",
    "Path",
    "read_file",
    "readFile",
    "HTTPConnection",
    "socket",
    "encode",
    "lru_cache",
    "isinstance",
    # literals and short phrases
    "raise NotImplementedError",
    'if __name__ == "__main__":',
    "import os",
    "return None",
    "utf-8",
    "except KeyboardInterrupt",
    "os.path.join",
    "def __repr__(self):",
    # natural language
    "parse an http date header",
    "read a zip file member",
    "quote a string for the shell",
    # questions for the definition index (issue 10), as the dev set asks them
    "Return the number of members (no aliases)",
    "Install importers that require external filesystem access",
    "Invoke a menu item identified by INDEX and execute the associated command",
]


def test_stage_a_search_p95_within_slo(benchmark: BenchmarkFixture, stdlib_index: lens.Index) -> None:
    for q in QUERIES:  # warm the page cache and check every query answers
        assert stdlib_index.search(q, k=50, mode="lex").hits, q
    queries = itertools.cycle(QUERIES)
    benchmark.pedantic(
        lambda: stdlib_index.search(next(queries), k=50, mode="lex"), rounds=len(QUERIES) * 10, iterations=1
    )
    samples = sorted(benchmark.stats.stats.data)
    p95 = samples[min(len(samples) - 1, int(0.95 * len(samples)))]
    benchmark.extra_info["p95_ms"] = p95 * 1000
    assert p95 <= STAGE_A_P95_SLO_S, f"Stage-A search p95 {p95 * 1000:.2f} ms > {STAGE_A_P95_SLO_S * 1000} ms"
