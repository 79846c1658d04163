"""The `lens grep` command opens its index without `lens.index` (`lens._grepindex`): the one flag a grep
reads, `stage_a.native`, must come out as `Index.open(...).flags` gives it, from every source (defaults,
the TOML file, `LENS_FLAG_*`, a kill switch in the index directory's canary state or in the state
directory the environment names), each case in a fresh process, as the command starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import lens
from tests.conftest import write_tree

# Both readings in one fresh process: the grep command's first (it loads no registry), then the library's.
_BOTH = (
    "import sys\n"
    "from lens._grepindex import open_for_grep\n"
    "fast = open_for_grep(sys.argv[1]).stage_a_native\n"
    "assert 'lens.index' not in sys.modules or sys.argv[2] == 'fallback'\n"
    "import lens\n"
    "print(fast, lens.Index.open(sys.argv[1]).flags['stage_a.native'])\n"
)

_KILLED = {"version": 1, "share": 0, "killed": True, "kill_reason": "test", "flags_before_kill": {}}
_LIVE = {"version": 1, "share": 25, "killed": False}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_tree(tmp_path_factory.mktemp("grepidx") / "repo", {"a.py": b"def needle():\n    pass\n"})
    lens.Index.build(root, semantic=False)
    return root


def _run(root: Path, tmp: Path, *, env: dict[str, str], index_state: object, named_state: object) -> str:
    index_dir = root / ".lens"
    (index_dir / "canary.json").unlink(missing_ok=True)
    if index_state is not None:
        (index_dir / "canary.json").write_text(
            index_state if isinstance(index_state, str) else json.dumps(index_state)
        )
    full = {k: v for k, v in os.environ.items() if not k.startswith("LENS_FLAG") and k != "LENS_STATE_DIR"}
    full["LENS_FLAGS_FILE"] = str(tmp / "absent.toml")
    if named_state is not None:
        state_dir = tmp / "state"
        state_dir.mkdir(exist_ok=True)
        (state_dir / "canary.json").write_text(json.dumps(named_state))
        full["LENS_STATE_DIR"] = str(state_dir)
    full.update(env)
    fallback = "fallback" if isinstance(index_state, str) else "fast"
    r = subprocess.run(
        [sys.executable, "-P", "-c", _BOTH, str(root), fallback], env=full, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.mark.parametrize(
    ("case", "env", "index_state", "named_state", "want"),
    [
        ("defaults", {}, None, None, True),
        ("env off", {"LENS_FLAG_STAGE_A_NATIVE": "0"}, None, None, False),
        ("env on over the file", {"LENS_FLAG_STAGE_A_NATIVE": "yes", "FILE": "false"}, None, None, True),
        ("file off", {"FILE": "false"}, None, None, False),
        ("bad env ignored", {"LENS_FLAG_STAGE_A_NATIVE": "maybe"}, None, None, True),
        ("index kill switch", {}, _KILLED, None, False),
        ("index kill switch over env on", {"LENS_FLAG_STAGE_A_NATIVE": "1"}, _KILLED, None, False),
        ("index canary live", {}, _LIVE, None, True),
        ("named state killed", {}, None, _KILLED, False),
        ("named state rules the index's", {}, _KILLED, _LIVE, True),
        ("corrupt index state", {}, "{not json", None, True),
    ],
)
def test_the_grep_command_reads_stage_a_native_as_the_index_does(
    built: Path,
    tmp_path: Path,
    case: str,
    env: dict[str, str],
    index_state: object,
    named_state: object,
    want: bool,
) -> None:
    env = dict(env)
    if "FILE" in env:
        flags_file = tmp_path / "flags.toml"
        flags_file.write_text(f"[stage_a]\nnative = {env.pop('FILE')}\n")
        env["LENS_FLAGS_FILE"] = str(flags_file)
    assert (
        _run(built, tmp_path, env=env, index_state=index_state, named_state=named_state) == f"{want} {want}"
    )


def test_the_index_directorys_kill_switch_holds_for_a_grep_in_a_fresh_process(built: Path) -> None:
    """It used to hold only once a search had routed through the canary: `idx.flags` (and so
    `Index.grep` and `lens grep`) read the process-wide flags, not the index's kill switch."""
    (built / ".lens" / "canary.json").write_text(json.dumps(_KILLED))
    try:
        env = {k: v for k, v in os.environ.items() if k != "LENS_STATE_DIR"}
        code = "import sys, lens; i = lens.Index.open(sys.argv[1]); print(i.flags['stage_a.native'])"
        out = subprocess.run(
            [sys.executable, "-P", "-c", code, str(built)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.split() == ["False"]
    finally:
        (built / ".lens" / "canary.json").unlink()


def test_an_unusable_state_file_is_reported_by_the_canary(built: Path) -> None:
    """The grep command leaves a state file it cannot trust to the canary, which logs it (and serves the
    baseline): the same stderr line as before the command skipped `lens.index`, and the grep still runs."""
    (built / ".lens" / "canary.json").write_text("{not json")
    try:
        env = {k: v for k, v in os.environ.items() if k != "LENS_STATE_DIR"}
        lens_exe = Path(sys.executable).parent / "lens"
        r = subprocess.run(
            [str(lens_exe), "grep", "def needle"], cwd=built, env=env, capture_output=True, text=True
        )
        assert r.returncode == 0 and r.stdout == "a.py:def needle():\n", r
        assert "canary_state_unusable" in r.stderr
    finally:
        (built / ".lens" / "canary.json").unlink()
