"""`Index.refresh`: only what changed is re-read, and searches see the old or the new index, never a mix."""

from __future__ import annotations

import os
import threading
import time
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


# -- one snapshot per query ---------------------------------------------------------------------
# Two versions of one file, with the definition and the uses of `needle` on different lines: a hit names
# its version by its (line, text), so a result that mixes generations shows up as hits of both.
VERSIONS = [
    "def needle():\n    return 1\n\nneedle()\n",
    "# moved down\n# and again\n\n\ndef needle():\n    return 2\n\n\n\nprint(needle())\n",
]


def _versions_of(hits: list[lens.Hit]) -> set[int]:
    """The versions every hit is consistent with."""
    fits = set(range(len(VERSIONS)))
    for h in hits:
        fits &= {v for v, text in enumerate(VERSIONS) if text.split("\n")[h.line - 1 : h.line] == [h.text]}
    return fits


def test_a_snapshot_handle_pins_one_generation(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "mod.py").write_text(VERSIONS[0])
    idx = lens.Index.build(root, tmp_path / "idx")
    snap = idx._native.snapshot()
    (root / "mod.py").write_text(VERSIONS[1])
    assert idx.refresh()["changed"] == 1
    # The handle still answers from the generation it was taken at, both Stage-A and Stage-B...
    hits, _, info = snap.search("needle", 10)
    sym, _ = snap.stage_b("needle", 10)
    assert info["generation"] == snap.generation < idx.stats()["generation"]
    assert {h.line for h in hits} == {1, 4} and {r[1] for r in sym} == {1, 4}
    # ... and a new query sees the new one.
    r = idx.search("needle", mode="symbol")
    assert _versions_of(r.hits) == {1} and r.info["generation"] == idx.stats()["generation"]


def test_searches_never_mix_generations_while_refreshing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "mod.py").write_text(VERSIONS[0])
    idx = lens.Index.build(root, tmp_path / "idx")
    stop = threading.Event()
    refreshes = [0]
    errors: list[BaseException] = []

    def refresher() -> None:
        try:
            v = 0
            while not stop.is_set():
                v = 1 - v
                (root / "mod.py").write_text(VERSIONS[v])
                idx.refresh()
                refreshes[0] += 1
        except BaseException as exc:  # reported below
            errors.append(exc)

    t = threading.Thread(target=refresher)
    t.start()
    seen: set[int] = set()
    searches = 0
    deadline = time.monotonic() + 60
    try:
        # Until eight refreshes have swapped the index under the searches (bounded in time).
        while (refreshes[0] < 8 or searches < 200) and time.monotonic() < deadline:
            searches += 1
            # Stage-A and Stage-B both answer (symbol mode): definitions from Stage-B, uses from Stage-A.
            r = idx.search("needle", k=10, mode="symbol")
            fits = _versions_of(r.hits)
            assert len(fits) == 1, [(h.line, h.text, h.why) for h in r.hits]
            assert r.info["stages"]["stage_b"] == "ran"
            seen |= fits
    finally:
        stop.set()
        t.join()
    assert not errors
    assert refreshes[0] >= 8 and seen == {0, 1}
