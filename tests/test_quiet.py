"""A library that stays quiet: lens's events go through the standard library's `logging`, nothing reaches
stdout, and a host's logging configuration decides what is shown."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from structlog.testing import capture_logs

import lens
from lens.progress import ProgressBar

SCRIPT = """
import logging, sys
{setup}
import lens
from lens.progress import ProgressBar
idx = lens.Index.build(sys.argv[1], sys.argv[2])
idx.refresh()
lens.flags.set("stage_c.enabled", not lens.flags["stage_c.enabled"], reason="quiet test", source="test")
idx.search("needle", k=3)
idx.grep("needle")
"""


def _run(sample_root: Path, tmp_path: Path, setup: str) -> subprocess.CompletedProcess[str]:
    code = SCRIPT.format(setup=setup)
    return subprocess.run(
        [sys.executable, "-c", code, str(sample_root), str(tmp_path / "idx")],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "", "LENS_STATE_DIR": str(tmp_path / "state")},
    )


def test_nothing_on_stdout_or_stderr_unless_configured(sample_root: Path, tmp_path: Path) -> None:
    r = _run(sample_root, tmp_path, "")
    assert r.stdout == "" and r.stderr == ""


def test_basic_config_warning_silences_info_events(sample_root: Path, tmp_path: Path) -> None:
    r = _run(sample_root, tmp_path, "logging.basicConfig(level=logging.WARNING)")
    assert r.stdout == "" and r.stderr == ""


def test_basic_config_info_shows_events_on_stderr(sample_root: Path, tmp_path: Path) -> None:
    r = _run(sample_root, tmp_path, "logging.basicConfig(level=logging.INFO, format='%(name)s %(message)s')")
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert any(line.startswith("lens.index index_built root=") for line in lines), r.stderr
    assert any(line.startswith("lens.index index_refreshed") for line in lines), r.stderr
    assert any(line.startswith("lens.flags flag_changed") for line in lines), r.stderr


def test_the_lens_logger_alone_can_be_turned_up(sample_root: Path, tmp_path: Path) -> None:
    setup = (
        "logging.basicConfig(level=logging.WARNING); logging.getLogger('lens.flags').setLevel(logging.INFO)"
    )
    r = _run(sample_root, tmp_path, setup)
    assert "flag_changed" in r.stderr and "index_built" not in r.stderr and r.stdout == ""


def test_importing_lens_leaves_the_heavy_modules_unimported() -> None:
    heavy = "('structlog', 'prometheus_client', 'tempfile', 'tomllib', 'asyncio', 'numpy')"
    code = f"import sys, lens; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_capture_logs_still_sees_lens_events(sample_root: Path, tmp_path: Path) -> None:
    with capture_logs() as logs:
        lens.Index.build(sample_root, tmp_path / "idx")
    events = [e for e in logs if e["event"] == "index_built"]
    assert events and events[0]["log_level"] == "info" and events[0]["files"] == 8


def test_progress_off_a_terminal_is_one_line_per_phase(sample_root: Path, tmp_path: Path) -> None:
    out = io.StringIO()  # not a terminal
    bar = ProgressBar("indexing", stream=out)
    lens._lens.NativeIndex.build(str(sample_root), str(tmp_path / "p"), 1 << 20, bar)
    bar.close()
    lines = out.getvalue().split("\n")
    assert "\r" not in out.getvalue() and "[#" not in out.getvalue()
    assert "(reading)" in lines[0] and "100.0%" in lines[0]
    assert "(symbols)" in lines[1] and "(terms)" in lines[2]
    assert lines[3:] == [""]
    live = io.StringIO()
    bar = ProgressBar("indexing", stream=live, live=True)
    lens._lens.NativeIndex.build(str(sample_root), str(tmp_path / "q"), 1 << 20, bar)
    bar.close()
    assert live.getvalue().startswith("\rindexing (reading)") and "[####" in live.getvalue()


def test_progress_callables_get_the_phase_and_old_ones_still_work(sample_root: Path, tmp_path: Path) -> None:
    three: list[tuple[int, int, str]] = []
    two: list[tuple[int, int]] = []
    lens.Index.build(sample_root, tmp_path / "a", progress=lambda d, t, phase: three.append((d, t, phase)))
    lens.Index.build(sample_root, tmp_path / "b", progress=lambda d, t: two.append((d, t)))
    assert [p for _, _, p in three] == sorted(p for _, _, p in three)  # "reading", "symbols", then "terms"
    assert {p for _, _, p in three} == {"reading", "symbols", "terms"}
    # Steps come as parallel work finishes; each phase ends at its total, the same for both callables.
    ends = [(d, t) for d, t, p in three if d == t and t > 0]
    assert ends[-1] == two[-1] and {t for _, t in two} == {t for _, t, _ in three}


def test_cli_index_off_a_terminal_writes_a_line_per_phase(sample_root: Path, tmp_path: Path) -> None:
    lens_bin = Path(sys.executable).parent / "lens"
    r = subprocess.run(
        [str(lens_bin), "index", str(sample_root), "--out", str(tmp_path / "i")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and r.stdout.startswith("indexed 8 files")
    assert r.stderr.count("\n") == 3 and "\r" not in r.stderr, r.stderr
