"""Shared fixtures: small corpora the project generates itself, and the shared dev data when present."""

from __future__ import annotations

import os
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

import lens
from tests.guard_helpers import build_corpus

# Builds embed definitions by default when lens[semantic] is installed (which `make test` installs);
# most tests need no vectors, so the suite turns the default off and the Stage-C tests ask for them
# (`semantic=True`, or by clearing this in `monkeypatch`). Subprocesses the tests start inherit it.
os.environ.setdefault("LENS_SEMANTIC", "0")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

SAMPLE_FILES: dict[str, bytes] = {
    "src/http_date.py": (
        b"import time\n\n"
        b"def parse_http_date(value):\n"
        b'    """Parse an HTTP date header."""\n'
        b"    return time.strptime(value, '%a, %d %b %Y %H:%M:%S GMT')\n\n"
        b"class HTTPDateError(ValueError):\n    pass\n"
    ),
    "src/reader.py": (
        b"def readFile(path):\n    with open(path) as f:\n        return f.read()\n\nread_file = readFile\n"
    ),
    "src/unicode.txt": (
        "caf\u00e9 na\u00efve \u00c5ngstr\u00f6m\r\nK\u212aelvin \u017fs long s\r\nlast line, no newline"
    ).encode(),
    "src/bad_utf8.txt": b"valid start \xff\xfe then PM_RESUME here\nsecond \xc3 line PM_RESUME\n",
    "docs/notes.md": (
        b"# Notes\n\nTODO: parse http dates faster\nPM_RESUME and pm_resume and PM_RESUMED\n\n\n"
    ),
    "tests/test_reader.py": (b"from src.reader import readFile\n\ndef test_read():\n    assert readFile\n"),
    "empty.txt": b"",
    "only_newlines.txt": b"\n\n\n",
    "bin/blob.bin": b"\x00\x01\x02PM_RESUME\x00",
}


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


@pytest.fixture
def sample_root(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "repo", SAMPLE_FILES)


@pytest.fixture
def sample_index(sample_root: Path, tmp_path: Path) -> lens.Index:
    return lens.Index.build(sample_root, tmp_path / "idx")


@pytest.fixture(autouse=True)
def _native_flag_restored() -> Iterator[None]:
    before = lens.flags["stage_a.native"]
    yield
    lens.flags.set("stage_a.native", before, reason="test teardown", source="test")


@pytest.fixture(autouse=True)
def _stages_left_as_found() -> Iterator[None]:
    """No test may leave a later stage registered process-wide (the pipeline's and the guard's registries
    have no unregister: a name, once added, keeps its place, its window and its flags for the process)."""
    from lens.guard.core import registered_stages as guard_stages
    from lens.pipeline import registered_stages

    before = (registered_stages(), guard_stages())
    yield
    assert (registered_stages(), guard_stages()) == before, "the test left a stage registered"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The guard / flags / canary / dashboard tests' small corpus, indexed once per test module."""
    root = tmp_path_factory.mktemp("guard-corpus")
    build_corpus(root)
    return root / "idx"


@pytest.fixture(scope="session")
def stdlib_index(tmp_path_factory: pytest.TempPathFactory) -> lens.Index:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return lens.Index.build(
        stdlib,
        tmp_path_factory.mktemp("stdlib-idx"),
        exclude=["site-packages/", "__pycache__/"],
        semantic=False,  # embedding the whole stdlib takes minutes; Stage-C has its own tests
    )


def shared_or_skip(*parts: str) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} is absent (../shared is only beside the repo in the project's own checkouts)")
    return p


def span_ok(root: Path, hit: lens.Hit) -> bool:
    """The evaluator's span check: offsets in range, line and column are those of byte_start."""
    data = (root / hit.path).read_bytes()
    s, e = hit.byte_start, hit.byte_end
    if not (0 <= s <= e <= len(data)):
        return False
    line = data.count(b"\n", 0, s) + 1
    col = len(data[data.rfind(b"\n", 0, s) + 1 : s].decode("utf-8", "replace"))
    return line == hit.line and col == hit.column


@pytest.fixture
def no_builtin_stages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide the built-in process-wide stage hooks (Stage-B), for tests that install their own doubles."""
    from lens import pipeline

    monkeypatch.setattr(pipeline, "_HOOKS", {})
