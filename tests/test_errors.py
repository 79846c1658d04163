"""Bad input gets a clear, typed error and loses nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lens
from tests.conftest import SAMPLE_FILES, write_tree


@pytest.mark.parametrize(
    ("pattern", "position"),
    [("foo(bar", 3), ("a[z-b]", 2), ("x{2,1}", 1), ("ok)", 2), (r"\p{Nope}", 0)],
)
def test_invalid_regex_names_the_position(sample_index: lens.Index, pattern: str, position: int) -> None:
    with pytest.raises(lens.QueryError) as info:
        sample_index.grep(pattern)
    assert isinstance(info.value, ValueError)
    assert info.value.position == position
    assert f"position {position}" in str(info.value)


@pytest.mark.parametrize("query", ["", "   ", "x" * 4097])
def test_empty_and_oversized_queries_are_rejected(sample_index: lens.Index, query: str) -> None:
    with pytest.raises(lens.QueryError):
        sample_index.search(query)
    with pytest.raises(lens.QueryError):
        sample_index.grep(query)


def test_a_4096_byte_query_is_accepted(sample_index: lens.Index) -> None:
    assert sample_index.search("x" * 4096).hits == []


def test_bad_arguments(sample_index: lens.Index) -> None:
    with pytest.raises(lens.QueryError, match="mode"):
        sample_index.search("x", mode="fast")
    with pytest.raises(lens.QueryError, match="k must"):
        sample_index.search("x", k=0)
    with pytest.raises(lens.QueryError, match="line terminator"):
        sample_index.grep(r"a\nb")
    with pytest.raises(lens.QueryError):
        sample_index.search(b"bytes")  # type: ignore[arg-type]


def test_missing_root_and_missing_index(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        lens.Index.build(tmp_path / "nope")
    with pytest.raises(FileNotFoundError):
        lens.Index.open(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        lens.Index.build(tmp_path / "file")


def test_foreign_directory_is_a_corrupt_index(tmp_path: Path) -> None:
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "README").write_text("not an index")
    with pytest.raises(lens.IndexCorruptError, match="not a lens index"):
        lens.Index.open(tmp_path / "foreign")


def _segment(idx_dir: Path) -> Path:
    return next(idx_dir.glob("seg-*.lens"))


@pytest.mark.parametrize("damage", ["truncate", "flip_header", "flip_table", "garbage", "empty"])
def test_damaged_segments_raise_corrupt_errors(sample_root: Path, tmp_path: Path, damage: str) -> None:
    idx_dir = tmp_path / "idx"
    lens.Index.build(sample_root, idx_dir)
    seg = _segment(idx_dir)
    data = bytearray(seg.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip_header":
        data[20] ^= 0xFF
    elif damage == "flip_table":
        data[200] ^= 0xFF  # inside the file table, which is checksummed at open
    elif damage == "garbage":
        data = bytearray(os.urandom(len(data)))
    else:
        data = bytearray()
    seg.write_bytes(bytes(data))
    with pytest.raises(lens.IndexCorruptError):
        lens.Index.open(idx_dir)


def test_damaged_content_is_found_by_verify(sample_root: Path, tmp_path: Path) -> None:
    idx_dir = tmp_path / "idx"
    lens.Index.build(sample_root, idx_dir)
    seg = _segment(idx_dir)
    data = bytearray(seg.read_bytes())
    data[-3] ^= 0x20  # the content section is last
    seg.write_bytes(bytes(data))
    idx = lens.Index.open(idx_dir)  # content is not checksummed on open (it may be large)...
    with pytest.raises(lens.IndexCorruptError, match="checksum"):
        idx.verify()  # ...but verify() checks every section


def test_damaged_manifest(sample_root: Path, tmp_path: Path) -> None:
    idx_dir = tmp_path / "idx"
    lens.Index.build(sample_root, idx_dir)
    manifest = idx_dir / "MANIFEST"
    text = manifest.read_text()
    manifest.write_text(text.replace('"generation": 1', '"generation": 7'))
    with pytest.raises(lens.IndexCorruptError, match="checksum"):
        lens.Index.open(idx_dir)
    manifest.write_text(text[: len(text) // 2])
    with pytest.raises(lens.IndexCorruptError):
        lens.Index.open(idx_dir)


def test_missing_segment(sample_root: Path, tmp_path: Path) -> None:
    idx_dir = tmp_path / "idx"
    lens.Index.build(sample_root, idx_dir)
    _segment(idx_dir).unlink()
    with pytest.raises(lens.IndexCorruptError, match="missing"):
        lens.Index.open(idx_dir)


def test_newer_format_raises_version_error(sample_root: Path, tmp_path: Path) -> None:
    idx_dir = tmp_path / "idx"
    lens.Index.build(sample_root, idx_dir)
    manifest = idx_dir / "MANIFEST"
    first, _sum, body = manifest.read_text().split("\n", 2)
    doc = json.loads(body)
    doc["format_version"] = lens.INDEX_FORMAT_VERSION + 1
    manifest.write_text(f"{first}\n0000000000000000\n{json.dumps(doc)}")
    with pytest.raises(lens.IndexVersionError) as info:
        lens.Index.open(idx_dir)
    assert info.value.found == lens.INDEX_FORMAT_VERSION + 1
    assert "newer" in str(info.value)


def test_older_format_raises_version_error_and_a_rebuild_fixes_it(sample_root: Path, tmp_path: Path) -> None:
    idx_dir = tmp_path / "idx"
    lens.Index.build(sample_root, idx_dir)
    # A segment written by an older lens: same magic, older format number in the header.
    segment = next(idx_dir.glob("seg-*.lens"))
    data = bytearray(segment.read_bytes())
    data[8:12] = (lens.INDEX_FORMAT_VERSION - 1).to_bytes(4, "little")
    segment.write_bytes(bytes(data))
    with pytest.raises(lens.IndexVersionError) as info:
        lens.Index.open(idx_dir)
    assert info.value.found == lens.INDEX_FORMAT_VERSION - 1
    assert "older" in str(info.value) and "rebuild" in str(info.value)
    assert lens.Index.build(sample_root, idx_dir).search("parse_http_date").hits


# Real indexes of older formats (the compat fixtures of those formats), each refused for the file this
# lens no longer reads: format 3's symbol file is format 1 (format 2: front-coded names, delta-coded
# records); format 4's term files are version 2 (u32 doc ids, a mask byte per posting; version 3:
# bit-packed postings).
@pytest.mark.parametrize(
    ("found", "old_file", "old_file_version"),
    [(3, "sym-*.lens", 1), (4, "seg-*.terms", 2)],
)
def test_an_index_of_an_older_format_asks_for_a_rebuild(
    tmp_path: Path, found: int, old_file: str, old_file_version: int
) -> None:
    idx_dir = tmp_path / "idx"
    shutil.copytree(Path(__file__).parent / "data" / f"index-format{found}", idx_dir)
    assert int.from_bytes(next(idx_dir.glob(old_file)).read_bytes()[8:12], "little") == old_file_version
    with pytest.raises(lens.IndexVersionError) as info:
        lens.Index.open(idx_dir)
    assert info.value.found == found
    assert "older" in str(info.value) and "rebuild" in str(info.value)


def test_crash_leftovers_do_not_break_the_index(sample_root: Path, tmp_path: Path) -> None:
    idx_dir = tmp_path / "idx"
    lens.Index.build(sample_root, idx_dir)
    # What a writer killed mid-build leaves behind: a partial segment and a partial manifest.
    (idx_dir / "seg-000009-0001.tmp").write_bytes(b"LENSSEG\0partial")
    (idx_dir / "seg-000009-0002.lens").write_bytes(b"LENSSEG\0partial")
    (idx_dir / "MANIFEST.tmp").write_text("lens index manifest\npartial")
    idx = lens.Index.open(idx_dir)
    assert [h.line for h in idx.grep("PM_RESUME", limit=1)] == [4]
    # The next build does not clash with the leftovers and clears them away.
    lens.Index.build(sample_root, idx_dir)
    assert sorted(p.name for p in idx_dir.iterdir() if "tmp" in p.name or "000009" in p.name) == []


def test_killed_build_leaves_the_previous_index_usable(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "repo", SAMPLE_FILES)
    idx_dir = tmp_path / "idx"
    lens.Index.build(root, idx_dir)
    big = root / "big"
    big.mkdir()
    for i in range(400):
        (big / f"f{i}.txt").write_bytes(os.urandom(20_000).hex().encode())
    code = f"import lens; lens.Index.build({str(root)!r}, {str(idx_dir)!r})"
    proc = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    idx = lens.Index.open(idx_dir)  # old or new, never broken
    assert [h.line for h in idx.grep("parse_http_date")] == [3]
    idx.verify()
