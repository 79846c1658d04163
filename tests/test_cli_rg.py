"""`lens grep` against ripgrep 14.1: the real executables in subprocesses, output compared byte for byte on
the flags both have (rg runs with `--sort path`; lens always prints in that order). Only what must differ
is normalized: the timings in `--json`'s end and summary events."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import lens
from tests.conftest import write_tree

BIN = Path(sys.executable).parent
RG = BIN / "rg"
LENS = BIN / "lens"

pytestmark = pytest.mark.skipif(
    not RG.exists() or not LENS.exists(),
    reason="needs rg 14.1.0 (pip) and lens in the venv",
)

TREE: dict[str, bytes] = {
    "a.py": b"a\nb needle\n",
    "a/b.py": b"import os\n\ndef find_needle(hay):\n    return hay.find('needle')  # needle\n",
    "a/c.txt": "caf\u00e9 na\u00efve needle \u00e9 needle\r\nno match here\r\nNEEDLE upper\r\n".encode(),
    "docs/notes.md": b"# Notes\n\nTODO: needle dates\nneedle and Needle and needles\n\n\nlast needle",
    "docs/many.md": b"".join(b"line %d needle\nfiller %d\n" % (i, i) for i in range(12)),
    "src/sub/deep.rs": b"fn needle() -> u32 {\n    42\n}\n// needle_2 needle\n",
    "src/bad.txt": b"valid start \xff\xfe then needle here\nsecond \xc3 line needle\n",
    "src/gap.py": b"".join(b"x = %d\n" % i for i in range(20)).replace(b"x = 3\n", b"needle = 3\n")
    + b"needle = 20\n",
}

FLAG_SETS = [
    ["needle"],
    ["-n", "needle"],
    ["-n", "--column", "needle"],
    ["-N", "--column", "needle"],
    ["--no-heading", "-H", "-n", "needle"],
    ["-i", "needle"],
    ["-w", "needle"],
    ["-F", "needle("],
    ["-F", "-i", "NEEDLE"],
    [r"ne+dle\b", "-n", "--column"],
    ["-o", "-n", "--column", "needle"],
    ["-c", "needle"],
    ["-c", "-o", "needle"],
    ["-l", "needle"],
    ["-m", "2", "-n", "needle"],
    ["-A", "1", "-n", "needle"],
    ["-B", "2", "needle"],
    ["-C", "1", "-n", "needle"],
    ["-m", "1", "-A", "2", "-n", "needle"],
    ["--heading", "-n", "needle"],
    ["--heading", "-C", "1", "needle"],
    ["--color", "always", "-n", "--column", "needle"],
    ["--color", "always", "--heading", "-C", "1", "needle"],
    ["--color", "always", "-o", "needle"],
    ["--color", "never", "needle"],
    # Every match in a line, found with the grep's own pattern: Unicode case folding, rg's -w.
    ["-o", "-i", "\u00c9"],
    ["--color", "always", "-i", "\u00c9", "a/c.txt"],
    ["-o", "-n", "-i", "-w", "needle"],
    ["--color", "always", "-w", "-i", "needle", "docs"],
    ["-g", "*.py", "needle"],
    ["-g", "!docs", "-l", "needle"],
    ["-g", "!*.md", "-g", "!*.rs", "-c", "needle"],
    ["-g", "a/**", "needle"],
    ["-g", "/a/*.py", "needle"],
    ["-g", "*.{py,rs}", "-g", "!src/sub", "-l", "needle"],
    ["-g", "!a/", "-t", "py", "-l", "needle"],
    ["-t", "all", "-l", "needle"],
    ["-t", "py", "-n", "needle"],
    ["-t", "rust", "-t", "markdown", "-l", "needle"],
    ["-T", "py", "-l", "needle"],
    ["-n", "needle", "src"],
    ["-n", "needle", "./src", "a.py"],
    ["-n", "needle", "a/c.txt"],
    ["-H", "needle", "a/c.txt"],
    ["-c", "needle", "docs/many.md"],
    ["--files"],
    ["--files", "src"],
    ["--files", "-g", "*.md"],
    ["--files", "-t", "py"],
    ["no-such-text-anywhere"],
    ["-l", "no-such-text-anywhere"],
    ["--json", "needle"],
    ["--json", "-C", "1", "needle", "src/gap.py"],
    ["--json", "-i", "needle", "a/c.txt"],
    ["--json", "no-such-text-anywhere"],
]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_tree(tmp_path_factory.mktemp("rgrepo"), TREE)
    lens.Index.build(root)
    return root


def _run(cmd: list[str | Path], cwd: Path) -> tuple[bytes, int]:
    p = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, check=False)
    return p.stdout, p.returncode


_TIMING = re.compile(rb'"(elapsed|elapsed_total)":\{[^}]*\}')


def _normalize(out: bytes, flags: list[str]) -> bytes:
    return _TIMING.sub(rb'"\1":{}', out) if "--json" in flags else out


@pytest.mark.parametrize("flags", FLAG_SETS, ids=" ".join)
def test_lens_grep_matches_rg_byte_for_byte(repo: Path, flags: list[str]) -> None:
    want, want_rc = _run([RG, "--sort", "path", *flags], repo)
    got, got_rc = _run([LENS, "grep", *flags], repo)
    assert _normalize(got, flags) == _normalize(want, flags)
    assert got_rc == want_rc


@pytest.mark.parametrize("flags", [["needle"], ["-C", "1", "needle"], ["-o", "needle"]], ids=" ".join)
def test_on_a_terminal_headings_colors_and_line_numbers_follow_rg(repo: Path, flags: list[str]) -> None:
    def tty(cmd: list[str | Path]) -> bytes:
        master, slave = os.openpty()
        p = subprocess.Popen([str(c) for c in cmd], cwd=repo, stdout=slave, stderr=subprocess.DEVNULL)
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
        return out

    want = tty([RG, "--sort", "path", *flags])
    assert b"\x1b[35m" in want  # rg did see a terminal
    assert tty([LENS, "grep", *flags]) == want


def test_from_a_subdirectory_paths_are_relative_and_the_index_is_found_upward(repo: Path) -> None:
    for flags in (["-n", "needle"], ["--files"], ["--json", "needle"]):
        want, _ = _run([RG, "--sort", "path", *flags], repo / "src")
        got, rc = _run([LENS, "grep", *flags], repo / "src")
        assert rc == 0 and _normalize(got, flags) == _normalize(want, flags)


def test_globs_from_a_subdirectory_are_relative_to_it_as_in_rg(repo: Path) -> None:
    for flags in (["-g", "/sub/*.rs", "-l", "needle"], ["-g", "!sub", "--files"], ["-g", "*.txt", "needle"]):
        want, want_rc = _run([RG, "--sort", "path", *flags], repo / "src")
        got, got_rc = _run([LENS, "grep", *flags], repo / "src")
        assert (got, got_rc) == (want, want_rc), flags


@pytest.mark.parametrize(
    "flags",
    [
        ["-g", "a/*.py", "-l", "needle", "../a", "."],
        ["-g", "../a/*.py", "-l", "needle", "../a", "."],
        ["-g", "!/a/b.py", "-l", "needle", "../a", "."],
        ["-g", "!a", "-l", "needle", "../a"],
        ["-g", "!sub", "-l", "needle", "sub", "../docs"],
        ["-g", "/sub/*.rs", "--files", ".."],
        ["-g", "!*.rs", "-n", "needle", "sub/deep.rs"],
        ["-t", "py", "-n", "needle", "sub/deep.rs", "../a"],
    ],
    ids=" ".join,
)
def test_globs_match_paths_as_rg_spells_them_under_each_path_argument(repo: Path, flags: list[str]) -> None:
    # rg matches -g against the path as it walks it (`../a/b.py`), never filters a path argument
    # itself, and searches a file it is given whatever -g and -t say.
    want, want_rc = _run([RG, "--sort", "path", *flags], repo / "src")
    got, got_rc = _run([LENS, "grep", *flags], repo / "src")
    assert (got, got_rc) == (want, want_rc)


def test_a_bad_glob_is_an_error_as_in_rg(repo: Path) -> None:
    want = subprocess.run([str(RG), "-g", "a[b", "needle"], cwd=repo, capture_output=True, text=True)
    got = subprocess.run([str(LENS), "grep", "-g", "a[b", "needle"], cwd=repo, capture_output=True, text=True)
    assert want.returncode == got.returncode == 2 and got.stdout == "" and "a[b" in got.stderr


def test_json_stream_parses_and_counts_every_submatch(repo: Path) -> None:
    got, rc = _run([LENS, "grep", "--json", "needle", "a/c.txt"], repo)
    events = [json.loads(line) for line in got.splitlines()]
    assert rc == 0 and [e["type"] for e in events] == ["begin", "match", "end", "summary"]
    subs = events[1]["data"]["submatches"]
    line = events[1]["data"]["lines"]["text"].encode()
    assert [(s["start"], s["end"]) for s in subs] == [(13, 19), (23, 29)]
    assert all(line[s["start"] : s["end"]] == b"needle" for s in subs)


def test_exit_codes_and_errors(repo: Path, tmp_path: Path) -> None:
    _, rc = _run([LENS, "grep", "needle"], repo)
    assert rc == 0
    _, rc = _run([LENS, "grep", "--json", "no-such-text-anywhere"], repo)
    assert rc == 1
    p = subprocess.run([str(LENS), "grep", "needle("], cwd=repo, capture_output=True, text=True, check=False)
    assert p.returncode == 2 and "position" in p.stderr
    p = subprocess.run([str(LENS), "grep", "needle", "nope"], cwd=repo, capture_output=True, text=True)
    assert p.returncode == 2 and "nope" in p.stderr
    p = subprocess.run([str(LENS), "grep", "-t", "nosuchtype", "x"], cwd=repo, capture_output=True, text=True)
    assert p.returncode == 2 and "unrecognized file type" in p.stderr
    for cmd in (["search", "--json", "zzqqxxnothing"], ["search", "zzqqxxnothing"]):
        p = subprocess.run([str(LENS), *cmd], cwd=repo, capture_output=True, text=True, check=False)
        assert p.returncode == 1, (cmd, p.stderr)
    p = subprocess.run([str(LENS), "search", "--json", "needle"], cwd=repo, capture_output=True, text=True)
    assert p.returncode == 0 and json.loads(p.stdout)["hits"]


def test_no_index_here(tmp_path: Path) -> None:
    for cmd in (["grep", "x"], ["search", "x"], ["stats"]):
        p = subprocess.run([str(LENS), *cmd], cwd=tmp_path, capture_output=True, text=True, check=False)
        assert p.returncode == 2 and "no index here; run `lens index`" in p.stderr and p.stdout == ""


def test_index_accepts_the_repository_root(repo: Path, tmp_path: Path) -> None:
    got, rc = _run([LENS, "grep", "--index", repo, "-c", "needle", "a.py"], repo)
    assert rc == 0 and got == b"1\n"
    idx = lens.Index.open(repo)
    assert idx.index_dir == repo / ".lens" and idx.grep("needle")
    assert lens.Index.open(repo / ".lens").index_dir == repo / ".lens"
    # Outside the tree, paths print as `rg PATTERN ROOT` prints them.
    got, rc = _run([LENS, "grep", "--index", repo, "-l", "def find_needle"], tmp_path)
    want, _ = _run([RG, "-l", "def find_needle", repo], tmp_path)
    assert rc == 0 and got == want


def test_version() -> None:
    for cmd in (["--version"], ["grep", "--version"]):
        p = subprocess.run([str(LENS), *cmd], capture_output=True, text=True, check=True)
        assert p.stdout == f"lens {lens.__version__}\n"


def test_search_prints_paths_from_here_and_byte_columns_as_rg_does(repo: Path) -> None:
    got, rc = _run([LENS, "search", "find_needle", "-k", "1"], repo / "a")
    want, _ = _run([RG, "-n", "--column", r"find_needle\("], repo / "a")
    assert rc == 0 and got.splitlines()[0] == want.splitlines()[0] == b"b.py:3:5:def find_needle(hay):"
    got, rc = _run([LENS, "search", "na\u00efve", "-k", "1", "--mode", "lex"], repo)
    want, _ = _run([RG, "-H", "-n", "--column", "na\u00efve", "a/c.txt"], repo)
    assert rc == 0 and got.splitlines()[0] == want.splitlines()[0]
    assert want.startswith("a/c.txt:1:7:caf\u00e9".encode())  # 7 in bytes; 6 in code points
