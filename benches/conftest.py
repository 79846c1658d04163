"""Fixtures for the pytest-benchmark suite (`make bench`): the running Python's stdlib, indexed once."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

import lens

STDLIB = Path(sysconfig.get_paths()["stdlib"])
EXCLUDE = ["site-packages/", "__pycache__/"]


@pytest.fixture(scope="session")
def stdlib_index(tmp_path_factory: pytest.TempPathFactory) -> lens.Index:
    return lens.Index.build(STDLIB, tmp_path_factory.mktemp("stdlib-idx"), exclude=EXCLUDE, semantic=False)
