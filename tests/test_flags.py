"""Flags: values, types, layering, history and events, initial values (TOML, then env), and proof that
each flag changes the path a query takes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

import lens
from lens.flags import DEFAULTS, FlagError, Flags, default_flags_file, env_name, load_initial
from tests.guard_helpers import StageDouble, make_rig

pytestmark = pytest.mark.usefixtures("no_builtin_stages")


# -- values and types ---------------------------------------------------------------------------
def test_defaults_and_mapping() -> None:
    f = Flags()
    assert dict(f) == DEFAULTS
    assert len(f) == len(DEFAULTS)
    assert f["stage_a.native"] is True
    with pytest.raises(KeyError):
        f["stage_z.enabled"]
    with pytest.raises(KeyError):
        f["stage_z.enabled"] = True


def test_types_are_checked() -> None:
    f = Flags()
    with pytest.raises(TypeError):
        f["stage_b.enabled"] = 1
    with pytest.raises(TypeError):
        f["stage_c.rerank_depth"] = True
    with pytest.raises(TypeError):
        f["stage_c.rerank_depth"] = 2.5
    with pytest.raises(ValueError):
        f["stage_b.budget_ms"] = -1.0
    f["stage_b.budget_ms"] = 120  # an int widens to the float the flag takes
    assert f["stage_b.budget_ms"] == 120.0 and isinstance(f["stage_b.budget_ms"], float)


def test_change_is_event_and_history() -> None:
    f = Flags()
    with capture_logs() as logs:
        f.set("stage_c.enabled", False, reason="rerank too slow", source="oncall")
        f["stage_c.enabled"] = False  # no change: history yes, event no
    events = [e for e in logs if e["event"] == "flag_changed"]
    assert events == [
        {
            "event": "flag_changed",
            "flag": "stage_c.enabled",
            "old": True,
            "new": False,
            "reason": "rerank too slow",
            "source": "oncall",
            "log_level": "info",
        }
    ]
    hist = f.history()
    assert [(h.name, h.old, h.new, h.reason, h.source) for h in hist] == [
        ("stage_c.enabled", True, False, "rerank too slow", "oncall"),
        ("stage_c.enabled", False, False, None, "api"),
    ]


def test_history_is_bounded() -> None:
    f = Flags()
    for i in range(600):
        f.set("stage_b.enabled", i % 2 == 0)
    hist = f.history()
    assert len(hist) == 256
    assert hist[-1].new is False  # the last write (i = 599) is kept, the oldest dropped


def test_layering_and_reset() -> None:
    parent = Flags()
    child = Flags(parent=parent)
    parent["stage_b.enabled"] = False
    assert child["stage_b.enabled"] is False
    child.set("stage_b.enabled", True, reason="this index only")
    assert child["stage_b.enabled"] is True and parent["stage_b.enabled"] is False
    assert child.history()[-1].old is False
    child.reset("stage_b.enabled")
    assert child["stage_b.enabled"] is False
    assert child.overrides() == {}


def test_snapshot_is_consistent_and_read_only() -> None:
    parent = Flags()
    child = Flags(parent=parent)
    before = child.snapshot()
    parent.set_many({"stage_b.enabled": False, "stage_c.enabled": False})
    after = child.snapshot()
    assert before["stage_b.enabled"] and before["stage_c.enabled"]  # an old snapshot never changes
    assert not after["stage_b.enabled"] and not after["stage_c.enabled"]
    with pytest.raises(TypeError):
        after["stage_b.enabled"] = True  # type: ignore[index]


# -- initial values -----------------------------------------------------------------------------
def test_toml_nested_and_dotted(tmp_path: Path) -> None:
    p = tmp_path / "flags.toml"
    p.write_text('[stage_a]\nnative = false\n\n[flags]\n"stage_c.rerank_depth" = 7\n')
    f = Flags()
    # A [flags] table wins: the rest of the file may hold other settings.
    assert f.load_toml(p) == 1
    assert f["stage_c.rerank_depth"] == 7 and f["stage_a.native"] is True
    p.write_text('"stage_b.budget_ms" = 50\n[stage_a]\nnative = false\n')
    assert Flags().load_toml(p) == 2
    g = Flags()
    g.load_toml(p)
    assert g["stage_a.native"] is False and g["stage_b.budget_ms"] == 50.0
    assert g.history()[-1].source == f"file:{p}"


@pytest.mark.parametrize(
    "text", ["[stage_a]\nnative = 'no'\n", "[stage_q]\nenabled = true\n", "not toml = = ="]
)
def test_bad_toml_applies_nothing(tmp_path: Path, text: str) -> None:
    p = tmp_path / "flags.toml"
    p.write_text(text)
    f = Flags()
    with pytest.raises(FlagError):
        f.load_toml(p)
    assert dict(f) == DEFAULTS and f.history() == []


def test_env_names_and_values() -> None:
    assert env_name("stage_c.rerank_depth") == "LENS_FLAG_STAGE_C_RERANK_DEPTH"
    f = Flags()
    n = f.load_env(
        {"LENS_FLAG_STAGE_A_NATIVE": "off", "LENS_FLAG_STAGE_C_RERANK_DEPTH": "12", "PATH": "/bin"}
    )
    assert n == 2
    assert f["stage_a.native"] is False and f["stage_c.rerank_depth"] == 12
    assert {h.source for h in f.history()} == {
        "env:LENS_FLAG_STAGE_A_NATIVE",
        "env:LENS_FLAG_STAGE_C_RERANK_DEPTH",
    }
    for bad in (
        {"LENS_FLAG_STAGE_A_NATIVE": "maybe"},
        {"LENS_FLAG_NOPE": "1"},
        {"LENS_FLAG_STAGE_B_BUDGET_MS": "x"},
    ):
        g = Flags()
        with pytest.raises(FlagError):
            g.load_env(bad)
        assert dict(g) == DEFAULTS


def test_precedence_defaults_then_toml_then_env(tmp_path: Path) -> None:
    p = tmp_path / "flags.toml"
    p.write_text("[stage_b]\nenabled = false\nbudget_ms = 80\n")
    f = Flags()
    load_initial(f, toml_path=p, environ={"LENS_FLAG_STAGE_B_BUDGET_MS": "40"})
    assert f["stage_b.enabled"] is False  # from the file
    assert f["stage_b.budget_ms"] == 40.0  # env beats the file
    assert f["stage_c.enabled"] is True  # the default
    # A bad source is logged and skipped, never raised: it runs at import.
    p.write_text("garbage = = =")
    g = Flags()
    with capture_logs() as logs:
        load_initial(g, toml_path=p, environ={"LENS_FLAG_BOGUS": "1"})
    assert {e["event"] for e in logs} == {"flags_file_ignored", "flags_env_ignored"}
    assert dict(g) == DEFAULTS


def test_default_flags_file_location(tmp_path: Path) -> None:
    assert default_flags_file({"LENS_FLAGS_FILE": str(tmp_path / "x.toml")}) == tmp_path / "x.toml"
    assert default_flags_file({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "lens" / "flags.toml"


def test_first_use_reads_file_then_env_once(tmp_path: Path) -> None:
    p = tmp_path / "flags.toml"
    p.write_text("[stage_c]\nenabled = false\nrerank_depth = 9\n")
    env = {
        **os.environ,
        "LENS_FLAGS_FILE": str(p),
        "LENS_FLAG_STAGE_C_RERANK_DEPTH": "11",
        "LENS_STATE_DIR": str(tmp_path / "state"),
    }
    code = (
        "import json, os, lens\n"
        "first = lens.flags['stage_c.enabled']\n"  # the first use reads the file, then the environment
        "os.environ['LENS_FLAG_STAGE_C_ENABLED'] = '1'\n"  # read once: a later change is not seen
        "print(json.dumps([first, lens.flags['stage_c.enabled'], lens.flags['stage_c.rerank_depth'],"
        " [h.source for h in lens.flags.history()]]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    first, enabled, depth, sources = json.loads(out.stdout.strip().splitlines()[-1])
    assert first is False and enabled is False and depth == 11
    assert sources == [f"file:{p}", f"file:{p}", "env:LENS_FLAG_STAGE_C_RERANK_DEPTH"]


def test_import_reads_no_files(tmp_path: Path) -> None:
    """`import lens` opens neither the flags file nor the canary's state file; the first use of the flags
    (or the canary) opens both, once. A kill switch in the state file still holds from the first query."""
    flags_file = tmp_path / "flags.toml"
    flags_file.write_text("[stage_c]\nrerank_depth = 7\n")
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    state = state_dir / "canary.json"
    state.write_text(json.dumps({"version": 1, "share": 0, "killed": True, "kill_reason": "drill"}))
    env = {**os.environ, "LENS_FLAGS_FILE": str(flags_file), "LENS_STATE_DIR": str(state_dir)}
    code = (
        "import json, sys\n"
        f"watched = {{{str(flags_file)!r}: 0, {str(state)!r}: 0}}\n"
        "def hook(event, args):\n"
        "    if event == 'open' and str(args[0]) in watched:\n"
        "        watched[str(args[0])] += 1\n"
        "sys.addaudithook(hook)\n"
        "import lens\n"
        "at_import = dict(watched)\n"
        "depth = lens.flags['stage_c.rerank_depth']\n"
        "native = lens.flags['stage_a.native']\n"
        "print(json.dumps([at_import, dict(watched), depth, native, lens.canary.killed]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    at_import, after, depth, native, killed = json.loads(out.stdout.strip().splitlines()[-1])
    assert at_import == {str(flags_file): 0, str(state): 0}
    assert after == {str(flags_file): 1, str(state): 1}
    assert depth == 7 and native is False and killed is True


# -- every flag changes the path ----------------------------------------------------------------
def test_stage_a_native_flag_picks_the_scanner(index_dir: Path, tmp_path: Path) -> None:
    rig = make_rig(index_dir, tmp_path)
    before = rig.idx._native.counters()["native_searches"]
    r = rig.idx.search("needle", mode="lex")
    assert r.path == "native" and r.info["stages"]["stage_a"] == "native"
    rig.idx.flags["stage_a.native"] = False
    r2 = rig.idx.search("needle", mode="lex")
    assert r2.path == "baseline" and r2.info["stages"]["stage_a"] == "reference"
    assert rig.native.calls == [True, False]
    # The native core itself counts one native search, not two.
    assert rig.idx._native.counters()["native_searches"] == before + 1
    # Both paths find the same lines: the flag changes how, not what.
    assert {(h.path, h.line) for h in r.hits} == {(h.path, h.line) for h in r2.hits}
    # grep honours it too, and the two paths agree.
    reference = rig.idx.grep("needle")
    rig.idx.flags["stage_a.native"] = True
    assert [str(h) for h in rig.idx.grep("needle")] == [str(h) for h in reference]


@pytest.mark.parametrize("stage", ["stage_b", "stage_c"])
def test_stage_enabled_flags_decide_whether_the_stage_runs(
    index_dir: Path, tmp_path: Path, stage: str
) -> None:
    rig = make_rig(index_dir, tmp_path)
    hook = StageDouble(rig.clock, ms=2.0)
    rig.idx.stages[stage] = hook
    r = rig.idx.search("needle")
    assert hook.calls == 1 and r.info["stages"][stage] == "ran" and r.timings_ms[stage] == pytest.approx(2.0)
    rig.idx.flags[f"{stage}.enabled"] = False
    r = rig.idx.search("needle")
    assert hook.calls == 1 and r.info["stages"][stage] == "off" and stage not in r.timings_ms
    # The process-wide layer switches it for every index below it.
    rig.idx.flags.reset(f"{stage}.enabled")
    rig.root_flags[f"{stage}.enabled"] = False
    rig.idx.search("needle")
    assert hook.calls == 1
    rig.root_flags[f"{stage}.enabled"] = True
    rig.idx.search("needle")
    assert hook.calls == 2


def test_absent_stage_is_a_no_op_and_lex_mode_skips_later_stages(index_dir: Path, tmp_path: Path) -> None:
    rig = make_rig(index_dir, tmp_path)
    r = rig.idx.search("needle")
    assert r.info["stages"] == {"stage_a": "native", "stage_b": "absent", "stage_c": "absent"}
    hook = StageDouble(rig.clock)
    rig.idx.stages["stage_b"] = hook
    assert rig.idx.search("needle", mode="lex").info["stages"]["stage_b"] == "mode"
    assert rig.idx.search("needle", mode="symbol").info["stages"]["stage_b"] == "ran"
    assert hook.calls == 1


def test_rerank_depth_limits_what_stage_c_sees(index_dir: Path, tmp_path: Path) -> None:
    rig = make_rig(index_dir, tmp_path)
    hook = StageDouble(rig.clock)
    hook.transform = lambda hits: list(reversed(hits))
    rig.idx.stages["stage_c"] = hook
    rig.idx.flags["stage_c.rerank_depth"] = 2
    plain = rig.idx.search("needle", k=5, mode="lex").hits
    assert len(plain) >= 4
    r = rig.idx.search("needle", k=5)
    assert len(hook.seen[-1].hits) == 2
    # The top two were reranked (reversed); the rest follow unchanged. (Compared by place: a reranked
    # hit's score is lifted to the best below it, so that scores never rise down the list.)

    def at(hits: list[lens.Hit]) -> list[tuple[str, int]]:
        return [(h.path, h.line) for h in hits]

    assert at(r.hits) == at([plain[1], plain[0], *plain[2:]])
    rig.idx.flags["stage_c.rerank_depth"] = 4
    r = rig.idx.search("needle", k=5)
    assert len(hook.seen[-1].hits) == 4 and at(r.hits[:4]) == at(list(reversed(plain[:4])))


@pytest.mark.parametrize("stage", ["stage_b", "stage_c"])
def test_stage_budget_flag_reaches_the_stage(index_dir: Path, tmp_path: Path, stage: str) -> None:
    rig = make_rig(index_dir, tmp_path)
    hook = StageDouble(rig.clock, ms=0.0)
    rig.idx.stages[stage] = hook
    rig.idx.flags[f"{stage}.budget_ms"] = 25.0
    rig.idx.search("needle")
    assert hook.seen[-1].budget_ms == 25.0
    rig.idx.flags[f"{stage}.budget_ms"] = 40
    rig.idx.search("needle")
    assert hook.seen[-1].budget_ms == 40.0
    # A per-call budget can only shrink it: 10 ms, of which Stage-A spent 4.
    rig.native.native_ms = 4.0
    rig.idx.search("needle", budget_ms=10.0)
    assert hook.seen[-1].budget_ms == pytest.approx(6.0)


def test_global_flags_are_exported() -> None:
    assert isinstance(lens.flags, Flags)
    assert "stage_a.native" in lens.flags
