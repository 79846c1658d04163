"""Staleness: what moved under the root since the last build or refresh (sizes and mtimes, no reads),
reported by `staleness()` / `stats(stale=True)` / `lens stats`, and `Index.open(refresh="auto")`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import lens


def test_staleness_counts_what_moved(sample_root: Path, sample_index: lens.Index) -> None:
    fresh = sample_index.staleness(max_age_s=0)
    assert (fresh["stale"], fresh["added"], fresh["changed"], fresh["removed"]) == (False, 0, 0, 0)
    (sample_root / "src" / "reader.py").write_bytes(b"def readFile(path):\n    return 1\n")
    (sample_root / "src" / "new.py").write_bytes(b"def brand_new(): pass\n")
    (sample_root / "empty.txt").unlink()
    # Within max_age_s the last answer stands; a fresh look sees the changes.
    assert sample_index.staleness()["stale"] is False
    st = sample_index.staleness(max_age_s=0)
    assert (st["stale"], st["added"], st["changed"], st["removed"]) == (True, 1, 1, 1)
    assert set(st["examples"]) == {"src/new.py", "src/reader.py", "empty.txt"}
    assert sample_index.stats(stale=True)["stale"]["changed"] == 1
    sample_index.refresh()
    assert sample_index.staleness()["stale"] is False  # a refresh forgets the cached answer


def test_mtime_alone_counts(sample_root: Path, sample_index: lens.Index) -> None:
    p = sample_root / "src" / "reader.py"
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert sample_index.staleness(max_age_s=0)["changed"] == 1


@pytest.mark.parametrize("refresh", ["auto", "never"])
def test_open_with_auto_refresh(sample_root: Path, sample_index: lens.Index, refresh: str) -> None:
    (sample_root / "src" / "late.py").write_bytes(b"def arrived_late_xyzzy(): pass\n")
    idx = lens.Index.open(sample_index.index_dir, refresh=refresh)  # type: ignore[arg-type]
    hits = idx.grep("arrived_late_xyzzy")
    assert bool(hits) is (refresh == "auto")
    with pytest.raises(ValueError):
        lens.Index.open(sample_index.index_dir, refresh="sometimes")  # type: ignore[arg-type]


def test_cli_reports_staleness(sample_root: Path, sample_index: lens.Index) -> None:
    (sample_root / "src" / "new.py").write_bytes(b"x = 1\n")
    cmd = [sys.executable, "-m", "lens"]
    out = subprocess.run(
        [*cmd, "stats", "--index", str(sample_index.index_dir)], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout)["stale"]["added"] == 1
    p = subprocess.run(
        [*cmd, "search", "readFile", "--index", str(sample_index.index_dir)], capture_output=True, text=True
    )
    assert p.returncode == 0 and "stale: 1 added" in p.stderr
