"""`Index.refresh`: only what changed is re-read, and searches see the old or the new index, never a mix."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import lens


def test_refresh_counts_and_results(sample_index: lens.Index, sample_root: Path) -> None:
    assert sample_index.refresh() == {"added": 0, "changed": 0, "removed": 0, "unchanged": 8, "compacted": 0}
    (sample_root / "src" / "new.py").write_text("def brand_new_function():\n    pass\n")
    (sample_root / "src" / "reader.py").write_text("def renamed_reader(path):\n    return path\n")
    (sample_root / "docs" / "notes.md").unlink()
    counts = sample_index.refresh()
    assert counts == {"added": 1, "changed": 1, "removed": 1, "unchanged": 6, "compacted": 0}
    assert [h.path for h in sample_index.grep("brand_new_function")] == ["src/new.py"]
    assert {h.path for h in sample_index.grep("readFile")} == {"tests/test_reader.py"}
    assert sample_index.grep("renamed_reader")[0].path == "src/reader.py"
    assert not any(h.path == "docs/notes.md" for h in sample_index.grep("PM_RESUME"))
    assert sample_index.stats()["files"] == 8
    # A reopened index sees the refreshed state.
    again = lens.Index.open(sample_index.index_dir)
    assert again.grep("brand_new_function") == sample_index.grep("brand_new_function")
    assert again.search("renamed_reader").hits == sample_index.search("renamed_reader").hits


def test_touched_but_unchanged_files_are_not_reindexed(sample_index: lens.Index, sample_root: Path) -> None:
    p = sample_root / "src" / "reader.py"
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert sample_index.refresh()["unchanged"] == 8


def test_refresh_matches_a_fresh_build(sample_index: lens.Index, sample_root: Path, tmp_path: Path) -> None:
    for i in range(5):
        (sample_root / f"gen{i}.txt").write_text(f"generation {i} PM_RESUME\n")
        sample_index.refresh()
    (sample_root / "gen0.txt").unlink()
    sample_index.refresh()
    fresh = lens.Index.build(sample_root, tmp_path / "fresh")
    for q in ["PM_RESUME", "generation", r"\w+_\w+"]:
        assert sample_index.grep(q) == fresh.grep(q)
    for q in ["PM_RESUME"]:
        assert sample_index.search(q, k=20).hits == fresh.search(q, k=20).hits
    # Two-word queries also reach the definition index (issue 10), whose BM25F statistics are per segment
    # until a compaction: the same hits, perhaps in another order.
    for q in ["generation 3", "read file"]:
        got = {(h.path, h.line, h.text) for h in sample_index.search(q, k=50).hits}
        assert got == {(h.path, h.line, h.text) for h in fresh.search(q, k=50).hits}


def test_many_refreshes_compact(sample_index: lens.Index, sample_root: Path) -> None:
    compacted = False
    for i in range(14):
        (sample_root / "churn.txt").write_text(f"version {i}\n")
        compacted |= bool(sample_index.refresh()["compacted"])
    assert compacted
    assert sample_index.stats()["segments"] <= 12
    assert [h.text for h in sample_index.grep("version")] == ["version 13"]


def test_searches_during_refresh_see_old_or_new(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    for i in range(50):
        (root / f"f{i}.txt").write_text(f"stamp OLD {i}\n")
    idx = lens.Index.build(root, tmp_path / "ri")
    stop = threading.Event()
    seen: list[set[str]] = []

    def reader() -> None:
        while not stop.is_set():
            stamps = {h.text.split()[1] for h in idx.grep(r"^stamp ")}
            seen.append(stamps)

    t = threading.Thread(target=reader)
    t.start()
    for i in range(50):
        (root / f"f{i}.txt").write_text(f"stamp NEW {i}\n")
    idx.refresh()
    stop.set()
    t.join()
    assert seen
    assert all(s in ({"OLD"}, {"NEW"}) for s in seen), [s for s in seen if len(s) != 1][:3]
    assert {h.text.split()[1] for h in idx.grep(r"^stamp ")} == {"NEW"}
