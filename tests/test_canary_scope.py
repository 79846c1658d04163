"""The kill switch's scope: a deployment's state, never a user's. Without a named state directory each
index directory keeps its own canary state; with one (`$LENS_STATE_DIR`, `lens.set_state_dir`) the
process-wide canary keeps it there, as the runbook has it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

import lens
from lens.canary import Canary
from lens.flags import Flags
from lens.guard import Guard
from tests.conftest import SAMPLE_FILES, write_tree


@pytest.fixture
def no_state_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("LENS_STATE_DIR", raising=False)
    lens.set_state_dir(None)
    yield
    lens.set_state_dir(None)


def _index(tmp_path: Path, name: str) -> lens.Index:
    root = write_tree(tmp_path / f"{name}-repo", SAMPLE_FILES)
    return lens.Index.build(root, tmp_path / f"{name}-idx")


def test_each_index_directory_holds_its_own_kill_switch(tmp_path: Path, no_state_dir: None) -> None:
    a, b = _index(tmp_path, "a"), _index(tmp_path, "b")
    assert a.canary is not lens.canary and a.canary is not b.canary
    assert a.canary.state_path == a.index_dir / "canary.json"
    with capture_logs():
        a.canary.kill_switch("bad rollout of a")
    # a's queries take the baseline path and its stages are off; b and the process are untouched.
    assert a.search("parse_http_date").path == "baseline" and a.flags["stage_b.enabled"] is False
    assert b.search("parse_http_date").path == "native" and b.flags["stage_b.enabled"] is True
    assert not lens.canary.killed and lens.flags["stage_b.enabled"] is True
    # Another Index of the same directory in this process shares it ...
    assert lens.Index.open(a.index_dir).canary is a.canary
    # ... and so does another process (the state persists in the index directory), and nothing is
    # written under the user's home.
    assert json.loads((a.index_dir / "canary.json").read_text())["killed"] is True
    env = {k: v for k, v in os.environ.items() if k != "LENS_STATE_DIR"}
    env["HOME"] = str(tmp_path / "home")
    code = (
        "import sys, lens; a = lens.Index.open(sys.argv[1]); b = lens.Index.open(sys.argv[2]); "
        "print(a.canary.killed, a.search('parse_http_date').path, b.search('parse_http_date').path)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(a.index_dir), str(b.index_dir)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["True", "baseline", "native"]
    assert not (tmp_path / "home").exists()


def test_the_process_wide_kill_switch_holds_every_index(tmp_path: Path) -> None:
    parent = Canary(Guard(), Flags(), None)
    child = Canary(Guard(), Flags(), tmp_path / "canary.json", parent=parent)
    assert child.route("q") == "new"
    with capture_logs():
        parent.kill_switch("everything off")
    assert child.route("q") == "baseline"
    assert child.status()["canary_deployment"]["parentKillSwitch"] is True
    assert parent.status()["canary_deployment"]["stateFile"] is None  # in memory: no directory named


def test_a_named_state_directory_is_the_deployments(tmp_path: Path, no_state_dir: None) -> None:
    lens.set_state_dir(tmp_path / "state")
    assert lens.canary.state_path == tmp_path / "state" / "canary.json"
    idx = _index(tmp_path, "c")
    assert idx.canary is lens.canary
    lens.set_state_dir(None)
    assert lens.canary.state_path is None
