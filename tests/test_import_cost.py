"""What `import lens` and the `lens grep` command load (issue 12's import cost), checked in fresh
interpreters by module name, not by time: `import lens` loads the native module and the errors alone, the
public names load on first use and behave as before, and a grep on an open index leaves the search
pipeline, logging, typing, dataclasses and the optional extras unloaded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import lens
from tests.conftest import write_tree

# Heavy or optional modules neither `import lens` nor `lens grep` may load.
NEVER = {
    "prometheus_client",
    "structlog",
    "numpy",
    "onnxruntime",
    "tokenizers",
    "ray",
    "dataclasses",
    "inspect",
    "typing",
    "logging",
    "importlib.metadata",
    "lens.pipeline",
    "lens.dashboard",
    "lens.rerank.gate",
    "lens.types",
    "lens.ops",
}


def _modules_after(code: str, cwd: Path | None = None) -> set[str]:
    """The modules loaded once `code` has run in a fresh interpreter (`-P`: the test tree stays off the
    path; `-I` would also drop the environment's site-packages)."""
    script = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)), file=sys.stderr)"
    r = subprocess.run([sys.executable, "-P", "-c", script], capture_output=True, text=True, cwd=cwd)
    assert r.returncode in (0, 1), r.stderr
    return set(r.stderr.strip().splitlines()[-1].split())


def test_import_lens_loads_the_native_module_and_the_errors_only() -> None:
    loaded = _modules_after("import lens")
    lens_modules = {m for m in loaded if m == "lens" or m.startswith("lens.")}
    assert lens_modules == {"lens", "lens._lens", "lens.errors"}, lens_modules
    assert not NEVER & loaded, NEVER & loaded
    assert not {"pathlib", "json", "threading"} & loaded


def test_grep_command_loads_what_grep_needs(tmp_path: Path) -> None:
    write_tree(tmp_path / "repo", {"a.py": b"def needle():\n    pass\n", "b.txt": b"no match\n"})
    lens.Index.build(tmp_path / "repo", tmp_path / "repo" / ".lens", semantic=False)
    code = "from lens.cli import main\nimport sys\nsys.stdout.flush()\nmain(['grep', 'def needle', '-n'])"
    loaded = _modules_after(code, cwd=tmp_path / "repo")
    assert not NEVER & loaded, NEVER & loaded
    assert {"lens._grepcli", "lens._grepindex"} <= loaded  # it did open the index ...
    # ... natively, reading its one flag from the flags' sources and the canary's state file: not through
    # `lens.index` (the flags, canary and guard registries, threading) nor pathlib.
    assert not {"lens.index", "lens._state", "lens.flags", "lens.canary", "lens.guard"} & loaded
    assert not {"pathlib", "threading"} & loaded
    # argparse's default help formatter imports shutil (and bz2, lzma, zlib) for the terminal width.
    assert "shutil" not in loaded


def test_lazy_names_resolve_as_before() -> None:
    # Every public name resolves, and `lens.flags` / `lens.canary` / `lens.guard` / `lens.dashboard` stay
    # the objects even after their submodules are imported (which would bind the submodule over them).
    code = """
import lens, types
names = {n: type(getattr(lens, n)).__name__ for n in lens.__all__}
import lens.flags, lens.canary, lens.guard, lens.dashboard, lens.index
from lens.flags import Flags
assert isinstance(lens.flags, Flags) and not isinstance(lens.flags, types.ModuleType)
assert type(lens.canary).__name__ == "Canary" and type(lens.guard).__name__ == "Guard"
assert callable(lens.dashboard) and not isinstance(lens.dashboard, types.ModuleType)
from lens import Index, Hit, flags
assert Index is lens.index.Index and flags is lens.flags
assert set(lens.__all__) <= set(dir(lens))
print(names["flags"], names["Index"], names["dashboard"])
"""
    r = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["Flags", "type", "function"]
    assert isinstance(lens.dashboard(), dict) and "lens_" in lens.metrics_text()


def test_plain_records_keep_their_dataclass_manners() -> None:
    """The flags' and the guard's records are plain classes now (`lens._record`): same reprs, equality,
    immutability where they were frozen, `as_dict`, and they survive pickle and deepcopy."""
    import copy
    import pickle

    import pytest

    from lens.flags import FlagChange
    from lens.guard import Alert, GuardConfig, QueryEvent, SLOs, StageSLO

    change = FlagChange("stage_a.native", True, False, "why", "api", 1.5)
    assert repr(change) == (
        "FlagChange(name='stage_a.native', old=True, new=False, reason='why', source='api', at=1.5)"
    )
    assert change.as_dict()["flag"] == "stage_a.native"
    alert = Alert("stage_tripped", "critical", "firing", "m", stage="stage_a")
    assert alert.as_dict() == {
        "name": "stage_tripped",
        "severity": "critical",
        "state": "firing",
        "message": "m",
        "value": None,
        "threshold": None,
        "stage": "stage_a",
        "at": 0.0,
    }
    for frozen in (change, alert):
        with pytest.raises(AttributeError):
            frozen.name = "x"  # type: ignore[misc]
        assert hash(frozen) == hash(copy.copy(frozen))
    slos = SLOs()
    assert slos.stage_a == StageSLO(p95_ms=5.0, tail_ratio=2.0) and slos == SLOs() and slos != GuardConfig()
    slos.stage_a.p95_ms = 3.0  # edited in place, as the runbook says
    assert slos != SLOs() and slos.as_dict()["stage_a"]["p95_ms"] == 3.0
    assert repr(GuardConfig(min_samples=3)).startswith(
        "GuardConfig(window_size=1024, window_s=60.0, min_samples=3"
    )
    with pytest.raises(TypeError):
        hash(slos)
    for value in (change, alert, slos, GuardConfig(), QueryEvent(True, 2.0, {"stage_a": (2.0, False, None)})):
        assert pickle.loads(pickle.dumps(value)) == value
        assert copy.deepcopy(value) == value


# What argparse brings (with `re`: enum, functools, collections; gettext then locale for its messages).
ARGPARSE = {"argparse", "re", "gettext", "locale", "enum", "functools", "collections"}


def _modules_of_command(cmd: list[str], cwd: Path) -> set[str]:
    """The modules an executable's interpreter imports, from `-X importtime`'s report (set through the
    environment, so the installed `lens` script runs as a user runs it)."""
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env)
    assert r.returncode in (0, 1), r.stderr
    rows = [line.split("|") for line in r.stderr.splitlines() if line.startswith("import time:")]
    return {row[-1].strip() for row in rows[1:]}


LENS = Path(sys.executable).parent / "lens"


@pytest.mark.skipif(not LENS.exists(), reason="needs the lens executable in the venv (make develop)")
def test_the_lens_executable_greps_without_argparse_or_re(tmp_path: Path) -> None:
    """The installed `lens` script (no pip-generated wrapper, which imports `re`), and a plain grep's
    command line read without argparse: neither `re` nor argparse's gettext and locale load, whatever
    the output format (`--json` aside: the `json` module imports `re`)."""
    write_tree(tmp_path / "repo", {"a.py": b"def needle():\n    pass\n", "b.txt": b"no match\n"})
    lens.Index.build(tmp_path / "repo", tmp_path / "repo" / ".lens", semantic=False)
    for flags in (
        ["-n", "def needle"],
        ["-nH", "--column", "needle", "a.py"],
        ["-c", "-A1", "x"],
        ["-l", "n"],
    ):
        loaded = _modules_of_command([str(LENS), "grep", *flags], tmp_path / "repo")
        assert {"lens.cli", "lens._grepcli", "lens._grepindex"} <= loaded, flags  # the grep did run
        assert not ARGPARSE & loaded, (flags, ARGPARSE & loaded)
        assert not NEVER & loaded, (flags, NEVER & loaded)
    # Help and errors are argparse's, as before.
    r = subprocess.run([str(LENS), "grep", "--bogus"], capture_output=True, text=True, cwd=tmp_path / "repo")
    assert r.returncode == 2 and "lens: error: unrecognized arguments: --bogus" in r.stderr
    # Colors and -o need every match in a line: the native LineMatcher finds them, still without `re`.
    for flags in (["--color", "always", "needle"], ["-o", "-C1", "e"]):
        loaded = _modules_of_command([str(LENS), "grep", *flags], tmp_path / "repo")
        assert "lens._grepcli" in loaded and not ARGPARSE & loaded, (flags, ARGPARSE & loaded)
