"""A library that stays quiet: lens's events go through the standard library's `logging`, nothing reaches
stdout, and a host's logging configuration decides what is shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from structlog.testing import capture_logs

import lens

SCRIPT = """
import logging, sys
{setup}
import lens
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


def test_importing_lens_does_not_import_structlog() -> None:
    code = "import sys, lens; print(sorted(m for m in ('structlog',) if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_capture_logs_still_sees_lens_events(sample_root: Path, tmp_path: Path) -> None:
    with capture_logs() as logs:
        lens.Index.build(sample_root, tmp_path / "idx")
    events = [e for e in logs if e["event"] == "index_built"]
    assert events and events[0]["log_level"] == "info" and events[0]["files"] == 8
