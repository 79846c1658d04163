"""Issue 9: nothing lost, nothing read from outside, no crash.

Writers across processes, files that change under the walk, hostile index directories, a segment
truncated while mapped, absurd arguments, a corrupt canary state file, and silent content damage. Each
test here reproduces one failure the adversarial run found; the ones that crashed the interpreter run
in a child process so that a regression fails the test instead of killing the suite.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

import lens
from lens.canary import Canary
from lens.flags import Flags
from lens.guard import Guard
from lens.index import Hit
from tests.conftest import SAMPLE_FILES, write_tree

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _global_guard_reset() -> Iterator[None]:
    """Several tests here make Stage-A fail on purpose; what they record in the process-wide guard must
    not trip its breakers for the tests that follow (the timing gate would time the reference scanner)."""
    yield
    lens.guard.reset()


def _child(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Runs `code` in a fresh interpreter; a signal death shows as a negative return code."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def _segments(idx_dir: Path) -> list[Path]:
    return sorted(idx_dir.glob("seg-*.lens"))


# -- 1. one writer at a time, across processes ----------------------------------------------------
def test_a_second_writer_waits_for_the_lock_then_raises(
    sample_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    idx_dir = tmp_path / "idx"
    idx = lens.Index.build(sample_root, idx_dir)
    monkeypatch.setenv("LENS_WRITER_TIMEOUT_S", "0.3")
    (sample_root / "new.py").write_text("def added(): pass\n")
    # Another process's writer holds the lock (flock is per open file, so this fd is "another writer").
    with open(idx_dir / "LOCK", "a+b") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        started = time.monotonic()
        with pytest.raises(lens.IndexBusyError, match="another writer"):
            idx.refresh()
        assert time.monotonic() - started >= 0.25
        with pytest.raises(lens.IndexBusyError):
            lens.Index.build(sample_root, idx_dir)
        # Readers never block on it.
        assert lens.Index.open(idx_dir).grep("parse_http_date")
    assert idx.refresh()["added"] == 1


def test_segment_names_are_unique_per_writer(sample_root: Path, tmp_path: Path) -> None:
    a = lens.Index.build(sample_root, tmp_path / "a")
    b = lens.Index.build(sample_root, tmp_path / "b")
    names_a = {p.name for p in _segments(a.index_dir)}
    names_b = {p.name for p in _segments(b.index_dir)}
    assert names_a and names_b and not names_a & names_b
    assert all(re.fullmatch(r"seg-\d{6}-[0-9a-f]{8}-\d{4}\.lens", n) for n in names_a | names_b)


def test_two_processes_refreshing_in_a_loop_leave_a_sound_index(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "repo", SAMPLE_FILES)
    idx_dir = tmp_path / "idx"
    lens.Index.build(root, idx_dir)
    code = f"""
        import time, lens
        idx = lens.Index.open({str(idx_dir)!r})
        end = time.monotonic() + 2.0
        n = 0
        while time.monotonic() < end:
            with open({str(root / "churn.py")!r}, "w") as f:
                f.write(f"value = {{n}}\\n" * (n % 7 + 1))
            idx.refresh()
            n += 1
        print(n)
    """
    writers = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO) for _ in range(2)]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    idx = lens.Index.open(idx_dir)
    idx.verify()
    paths = [h.path for h in idx.grep("value =")]
    assert paths == ["churn.py"] * len(paths)  # one live copy of the file, never stale and new
    assert idx.refresh()["removed"] == 0


# -- 2. lens deletes only what it created ---------------------------------------------------------
@pytest.mark.parametrize("where", ["root", "parent"])
def test_index_dir_equal_to_or_above_the_root_is_refused(tmp_path: Path, where: str) -> None:
    root = write_tree(
        tmp_path / "repo", {**SAMPLE_FILES, "seg-notes.tmp": b"mine", "sym-table.lens": b"mine"}
    )
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(lens.IndexLocationError, match=r"contains the root|is the root"):
        lens.Index.build(root, root if where == "root" else tmp_path)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_a_foreign_directory_is_never_cleaned(sample_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "seg-notes.tmp").write_text("the user's")
    with pytest.raises(lens.IndexLocationError, match="not a lens index"):
        lens.Index.build(sample_root, out)
    assert (out / "seg-notes.tmp").read_text() == "the user's"
    assert sorted(p.name for p in out.iterdir()) == ["seg-notes.tmp"]  # not even a lock file
    # The default `root/.lens` is still fine, and is left out of the walk.
    idx = lens.Index.build(sample_root)
    assert idx.index_dir == (sample_root / ".lens").resolve()
    assert not [h for h in idx.grep("lens") if h.path.startswith(".lens")]


def test_an_index_an_older_lens_wrote_is_still_lens_s_own(sample_root: Path, tmp_path: Path) -> None:
    # An older lens left no marker; a rebuild adopts the directory and clears its old segments away.
    idx_dir = tmp_path / "idx"
    lens.Index.build(sample_root, idx_dir)
    (idx_dir / "LENS_INDEX").unlink()
    (idx_dir / "seg-000001-0001.lens").write_bytes(b"LENSSEG\0 from format 2")
    (idx_dir / "notes.txt").write_text("kept")
    idx = lens.Index.build(sample_root, idx_dir)
    assert idx.grep("parse_http_date")
    assert (idx_dir / "LENS_INDEX").exists() and (idx_dir / "notes.txt").read_text() == "kept"
    assert not (idx_dir / "seg-000001-0001.lens").exists()


def test_a_plain_file_as_the_index_dir(sample_root: Path, tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(NotADirectoryError):
        lens.Index.build(sample_root, f)
    with pytest.raises(NotADirectoryError):
        lens.Index.open(f)
    assert f.read_text() == "x"


# -- 4. the walk / read race ----------------------------------------------------------------------
def test_a_fifo_or_symlink_in_place_of_a_file_is_skipped_not_read(tmp_path: Path) -> None:
    """What a file swapped after the walk looks like to the reader: it opens each path without following
    links and without blocking, and skips whatever is not a regular file within the cap."""
    root = write_tree(tmp_path / "repo", SAMPLE_FILES)
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP_SECRET outside the root\n")
    os.mkfifo(root / "pipe.py")
    code = f"""
        import lens
        idx = lens.Index.build({str(root)!r}, {str(tmp_path / "idx")!r})
        print(idx.stats()["files"])
    """
    done = _child(code, timeout=60)
    assert done.returncode == 0, done.stderr


def test_read_skips_links_fifos_and_grown_files(tmp_path: Path) -> None:
    # The Rust unit test `read_files_skip_what_changed_after_the_walk` drives the race itself; this
    # checks the build as a whole never reads through a symlink.
    root = write_tree(tmp_path / "repo", SAMPLE_FILES)
    outside = tmp_path / "outside.txt"
    outside.write_text("TOP_SECRET\n")
    (root / "link.py").symlink_to(outside)
    idx = lens.Index.build(root, tmp_path / "idx")
    assert idx.grep("TOP_SECRET") == []


# -- 5. a crafted index ---------------------------------------------------------------------------
def _open_in_child(idx_dir: Path) -> subprocess.CompletedProcess[str]:
    code = f"""
        import lens
        try:
            lens.Index.open({str(idx_dir)!r}).grep("x")
        except lens.IndexCorruptError as e:
            print("CORRUPT", e)
    """
    return _child(code, timeout=20)


@pytest.mark.parametrize("what", ["manifest", "segment"])
@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "directory", "symlink_outside"])
def test_special_files_in_an_index_are_corruption_not_hangs(
    sample_root: Path, tmp_path: Path, what: str, kind: str
) -> None:
    idx_dir = tmp_path / "idx"
    lens.Index.build(sample_root, idx_dir)
    target = idx_dir / "MANIFEST" if what == "manifest" else _segments(idx_dir)[0]
    copy = tmp_path / "copy"
    shutil.copy(target, copy)
    target.unlink()
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "dev_zero":
        target.symlink_to("/dev/zero")
    elif kind == "directory":
        target.mkdir()
    else:
        target.symlink_to(copy)  # even a link to the real bytes: lens does not follow links in its index
    try:
        done = _open_in_child(idx_dir)
    except subprocess.TimeoutExpired:
        pytest.fail(f"open() hung on a {kind} as the {what}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("CORRUPT"), done.stdout


def test_swapped_symbol_files_are_corruption(sample_root: Path, tmp_path: Path) -> None:
    idx_dir = tmp_path / "idx"
    idx = lens.Index.build(sample_root, idx_dir)
    (sample_root / "src" / "more.py").write_text("def more_things():\n    pass\n")
    idx.refresh()
    syms = sorted(idx_dir.glob("sym-*.lens"))
    assert len(syms) == 2
    a, b = (p.read_bytes() for p in syms)
    syms[0].write_bytes(b)
    syms[1].write_bytes(a)
    with pytest.raises(lens.IndexCorruptError):
        lens.Index.open(idx_dir)


def test_a_manifest_from_another_index_is_corruption(sample_root: Path, tmp_path: Path) -> None:
    lens.Index.build(sample_root, tmp_path / "a")
    lens.Index.build(sample_root, tmp_path / "b")
    for seg in _segments(tmp_path / "b"):
        seg.unlink()
    for seg in _segments(tmp_path / "a"):
        shutil.copy(seg, tmp_path / "b" / seg.name)
    # b's own manifest, now naming segments that are not there; then a's manifest over b's segments.
    with pytest.raises(lens.IndexCorruptError):
        lens.Index.open(tmp_path / "b")
    shutil.copy(tmp_path / "a" / "MANIFEST", tmp_path / "b" / "MANIFEST")
    with pytest.raises(lens.IndexCorruptError, match="another index"):
        lens.Index.open(tmp_path / "b")


# -- 6. a segment truncated while mapped -----------------------------------------------------------
def test_truncating_an_open_segment_is_an_error_not_sigbus(sample_root: Path, tmp_path: Path) -> None:
    idx_dir = tmp_path / "idx"
    lens.Index.build(sample_root, idx_dir)
    code = f"""
        import os, lens
        idx = lens.Index.open({str(idx_dir)!r})
        assert idx.grep("PM_RESUME")
        seg = sorted(p for p in os.listdir({str(idx_dir)!r}) if p.startswith("seg-"))[0]
        os.truncate(os.path.join({str(idx_dir)!r}, seg), 200)
        for call in (lambda: idx.grep("PM_RESUME"), lambda: idx.search("parse http date")):
            try:
                call()
                print("NO ERROR")
            except lens.IndexCorruptError as e:
                print("CORRUPT", e)
    """
    done = _child(code)
    assert done.returncode == 0, (done.returncode, done.stderr)
    outcomes = [line for line in done.stdout.splitlines() if line.startswith(("CORRUPT", "NO ERROR"))]
    assert len(outcomes) == 2 and all(o.startswith("CORRUPT") and "shrank" in o for o in outcomes), outcomes


# -- 7, 8, 10. bad arguments -----------------------------------------------------------------------
@pytest.mark.parametrize("k", [10**12, 2**62, 2**64, 2**70])
def test_huge_k_is_a_query_error_naming_the_limit(sample_index: lens.Index, k: int) -> None:
    with pytest.raises(lens.QueryError, match=f"{lens.MAX_K}"):
        sample_index.search("json", k=k)


def test_the_cli_rejects_a_huge_k(sample_root: Path, tmp_path: Path) -> None:
    lens.Index.build(sample_root, tmp_path / "idx")
    done = subprocess.run(
        [sys.executable, "-m", "lens", "search", "--index", str(tmp_path / "idx"), "-k", str(10**12), "json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode not in (0, -6), done.stderr
    assert "k must be" in done.stderr


def test_a_large_k_does_not_preallocate(sample_index: lens.Index) -> None:
    assert sample_index.search("parse", k=lens.MAX_K).hits


@pytest.mark.parametrize("budget", [float("inf"), float("nan"), -1.0, "5", True])
def test_bad_budgets_are_query_errors(sample_index: lens.Index, budget: object) -> None:
    with pytest.raises(lens.QueryError, match="budget_ms"):
        sample_index.search("json", budget_ms=budget)  # type: ignore[arg-type]


def test_a_huge_finite_budget_is_no_budget(sample_index: lens.Index) -> None:
    assert sample_index.search("parse_http_date", budget_ms=1e300).hits


def test_reference_grep_reports_an_oversized_regex_like_the_fast_path(sample_index: lens.Index) -> None:
    with pytest.raises(lens.QueryError) as fast:
        sample_index.grep(r"\w{1000}")
    sample_index.flags.set("stage_a.native", False, reason="test", source="test")
    with pytest.raises(lens.QueryError) as ref:
        sample_index.grep(r"\w{1000}")
    assert type(fast.value) is type(ref.value)


def test_internal_errors_are_lens_errors_and_exceptions() -> None:
    assert issubclass(lens.InternalError, lens.LensError)
    assert issubclass(lens.InternalError, Exception)


@pytest.mark.parametrize("query", ["caf\udce9", "\ud800"])
def test_lone_surrogates_are_query_errors(sample_index: lens.Index, query: str) -> None:
    with pytest.raises(lens.QueryError, match="surrogate"):
        sample_index.search(query)
    with pytest.raises(lens.QueryError, match="surrogate"):
        sample_index.grep(query)


def test_huge_grep_limit_is_a_query_error(sample_index: lens.Index) -> None:
    with pytest.raises(lens.QueryError, match="limit"):
        sample_index.grep("x", limit=2**64)
    assert sample_index.grep("PM_RESUME", limit=2**63 - 1)


def test_a_newline_in_a_search_is_treated_as_grep_treats_it(sample_index: lens.Index) -> None:
    with pytest.raises(lens.QueryError) as g:
        sample_index.grep("a\nb", regex=False)
    with pytest.raises(lens.QueryError) as s:
        sample_index.search("a\nb")
    assert "line terminator" in str(g.value) and "line terminator" in str(s.value)


def test_a_stage_hook_returning_non_hits_is_that_stages_error(sample_index: lens.Index) -> None:
    sample_index.stages["stage_b"] = lambda call: ["not", "hits"]  # type: ignore[list-item,return-value]
    try:
        res = sample_index.search("parse_http_date", mode="symbol")
    finally:
        sample_index.stages.clear()
    assert res.info["stages"]["stage_b"] == "error"
    assert all(isinstance(h, Hit) for h in res.hits)


def test_attach_a_directory_says_so(sample_index: lens.Index, tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        sample_index.attach_scip(tmp_path)


def test_a_failed_build_with_bad_scip_leaves_no_orphan(sample_root: Path, tmp_path: Path) -> None:
    idx_dir = tmp_path / "idx"
    lens.Index.build(sample_root, idx_dir)
    before = sorted(p.name for p in idx_dir.iterdir())
    bad = tmp_path / "bad.scip"
    bad.write_bytes(b"\xff\xff\xff\xff not protobuf")
    with pytest.raises(lens.SymbolDataError):
        lens.Index.build(sample_root, idx_dir, scip=bad)
    assert sorted(p.name for p in idx_dir.iterdir()) == before


# -- 9. a corrupt canary state file ---------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe{not utf-8",
        json.dumps({"share": 5}).encode("utf-16"),
        json.dumps({"share": 5, "history": 5}).encode(),
        b'{"share": 5, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        json.dumps({"share": 5, "killed": True, "flags_before_kill": "stage_a.native"}).encode(),
        json.dumps({"share": 5, "killed": True, "flags_before_kill": ["stage_a.native"]}).encode(),
        json.dumps({"share": 5, "killed": True, "flags_before_kill": {"no.such.flag": True}}).encode(),
        json.dumps({"share": True}).encode(),
        json.dumps({"share": 5, "kill_reason": 7}).encode(),
        json.dumps({"share": 5, "history": [1, 2]}).encode(),
        json.dumps([5]).encode(),
        b"",
    ],
)
def test_a_corrupt_canary_state_fails_safe_with_an_alert(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "canary.json"
    path.write_bytes(raw)
    guard = Guard()
    with capture_logs() as logs:
        c = Canary(guard, Flags(), path)
    assert c.share == 0 and c.route("anyone") == "baseline"
    assert "canary_state_unusable" in [e["event"] for e in logs]
    assert "canary_state_unusable" in [a.name for a in guard.recent_alerts()]
    c.status()  # and the rest of the canary still works
    c.start("operator checked")
    assert c.share == 5


def test_import_lens_survives_a_corrupt_state_file(tmp_path: Path) -> None:
    (tmp_path / "canary.json").write_bytes(b'{"share": 5, "history": 5}')
    done = subprocess.run(
        [sys.executable, "-c", "import lens; print(lens.canary.share)"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "LENS_STATE_DIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0"


# -- 11. silent damage ----------------------------------------------------------------------------
def _flip_in_section(seg: Path, section: int) -> None:
    data = bytearray(seg.read_bytes())
    at = 24 + section * 24 + 8  # the format-3 header: magic, version, counts, index id, then the table
    off = int.from_bytes(data[at : at + 8], "little")
    length = int.from_bytes(data[at + 8 : at + 16], "little")
    assert length > 0
    data[off + length // 2] ^= 0x01
    seg.write_bytes(bytes(data))


@pytest.mark.parametrize(("section", "name"), [(5, "postings"), (6, "content")])
def test_damaged_content_or_postings_never_reach_a_hit(
    sample_root: Path, tmp_path: Path, section: int, name: str
) -> None:
    idx_dir = tmp_path / "idx"
    lens.Index.build(sample_root, idx_dir)
    _flip_in_section(_segments(idx_dir)[0], section)
    idx = lens.Index.open(idx_dir)
    with pytest.raises(lens.IndexCorruptError, match="checksum"):
        idx.grep("PM_RESUME")
    with pytest.raises(lens.IndexCorruptError, match="checksum"):
        lens.Index.open(idx_dir).search("parse http date")


def test_a_reader_racing_a_rebuild_never_sees_corruption(sample_root: Path, tmp_path: Path) -> None:
    """Item 3, end to end (the deterministic interleaving is the Rust test
    `open_retries_when_the_manifest_moves_on`)."""
    idx_dir = tmp_path / "idx"
    lens.Index.build(sample_root, idx_dir)
    stop = threading.Event()
    errors: list[BaseException] = []

    def rebuild() -> None:
        while not stop.is_set():
            lens.Index.build(sample_root, idx_dir, symbols=False)

    t = threading.Thread(target=rebuild)
    t.start()
    try:
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            try:
                lens.Index.open(idx_dir)
            except lens.IndexCorruptError as e:
                errors.append(e)
    finally:
        stop.set()
        t.join()
    assert errors == []
