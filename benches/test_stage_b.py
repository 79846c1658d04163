"""pytest-benchmark for Stage-B on the dev corpus (`make bench`): an identifier search in "auto" mode
(Stage-A + Stage-B), the same search in "lex" mode for comparison, and a direct definition lookup.
Each benchmark also asserts what it found, so a benchmark is a check too."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

import lens

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

pytestmark = [
    pytest.mark.corpus,
    pytest.mark.skipif(
        not (SHARED / "eval/prepare_dev.sh").exists(), reason="../shared (the dev corpus) is absent"
    ),
]


@pytest.fixture(scope="module")
def dev_index(tmp_path_factory: pytest.TempPathFactory) -> lens.Index:
    dest = tmp_path_factory.mktemp("dev")
    subprocess.run([str(SHARED / "eval/prepare_dev.sh"), str(dest)], check=True, capture_output=True)
    return lens.Index.build(dest / "cpython-lib", dest / "idx", semantic=False)


def test_auto_identifier_search(benchmark: Any, dev_index: lens.Index) -> None:
    res = benchmark(dev_index.search, "_set_decoded_chars", k=50, mode="auto")
    assert (res.hits[0].path, res.hits[0].line, res.hits[0].why) == ("_pyio.py", 2249, ("definition",))


def test_lex_identifier_search(benchmark: Any, dev_index: lens.Index) -> None:
    res = benchmark(dev_index.search, "_set_decoded_chars", k=50, mode="lex")
    assert any(h.path == "_pyio.py" and h.line == 2249 for h in res.hits)


def test_definitions_lookup(benchmark: Any, dev_index: lens.Index) -> None:
    defs = benchmark(dev_index.definitions, "load_stop")
    assert [(d.path, d.line) for d in defs] == [("pickle.py", 1742)]
