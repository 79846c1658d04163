"""The runbook's commands: help, exit codes, --json, and two nightly runs at once on one database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lens.cli import main
from lens.ops import OpsStore
from tests.ops_helpers import SMALL

COMMANDS = [
    "quality-gates",
    "nightly-validation",
    "check-signoff",
    "cut-rc",
    "compat-drill",
    "promote",
    "serve",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert command in out and ("exit status" in out or command == "serve")


@pytest.mark.parametrize(
    "argv",
    [
        ["nightly-validation"],  # --duration is required
        ["nightly-validation", "--duration", "soon"],
        ["check-signoff"],
        ["cut-rc", "--version"],
        ["quality-gates", "--repeats", "x"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2


def test_errors_exit_2_and_not_promotable_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    st = ["--state-dir", str(tmp_path)]
    assert main(["cut-rc", "--version", "1.0", *st]) == 2
    assert "X.Y.Z-rc.N" in capsys.readouterr().err
    assert main(["compat-drill", "--version", "1.0.0-rc.9", *st]) == 2
    assert main(["nightly-validation", "--duration", "-1", *st]) == 2
    assert main(["check-signoff", "--version", "1.0.0-rc.9", *st, "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["promotable"] is False and "no release candidate" in doc["reasons"][0]
    assert main(["promote", "--version", "1.0.0-rc.9", *st]) == 1
    assert "refusing to promote" in capsys.readouterr().out


def test_quality_gates_json_and_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["quality-gates", "--state-dir", str(tmp_path), "--json", *SMALL])
    doc = json.loads(capsys.readouterr().out)
    r = doc["quality_gates_report"]
    assert rc == (0 if r["status"] == "passed" else 1)
    assert OpsStore(tmp_path).latest_gate_report() == doc


def test_quality_gates_table_and_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["quality-gates", "--state-dir", str(tmp_path), *SMALL])
    out, err = capsys.readouterr()
    assert "span_coverage" in out and "status:" in out
    assert "quality gates [" in err and "100.0%" in err


def test_two_nightly_processes_at_once(tmp_path: Path) -> None:
    env = {**os.environ, "LENS_STATE_DIR": str(tmp_path)}
    # Both also build the golden set into the same cache at once: one wins the rename, both use it.
    args = [
        sys.executable,
        "-m",
        "lens",
        "nightly-validation",
        "--duration",
        "0.01",
        "--threads",
        "1",
        "--qps",
        "20",
        "--json",
        *SMALL,
    ]
    procs = [
        subprocess.Popen([*args, "--force-night", str(n)], env=env, stdout=subprocess.PIPE, text=True)
        for n in (1, 2)
    ]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    codes = [p.returncode for p in procs]
    nights = [json.loads(o) for o in outs]
    for code, night in zip(codes, nights, strict=True):
        assert code == (0 if night["passed"] else 1)
    store = OpsStore(tmp_path)
    assert store.integrity_check() == "ok"
    assert sorted(n["night"] for n in store.nights()) == ["forced-1", "forced-2"]
    assert store.gate_runs() == 2


def test_state_database_opened_at_once_on_a_fresh_directory(tmp_path: Path) -> None:
    """Several openers of a new state database race to switch it to WAL, which SQLite refuses at once
    ("database is locked") rather than waiting: every opener must wait and succeed. A race test: it
    failed in 4 of 30 rounds of 6 threads before the retry."""
    import threading

    def open_at_once(where: Path, n: int) -> list[BaseException]:
        errors: list[BaseException] = []
        start = threading.Barrier(n)

        def open_store() -> None:
            start.wait()
            try:
                OpsStore(where)
            except BaseException as exc:  # reported by the caller
                errors.append(exc)

        threads = [threading.Thread(target=open_store) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        return errors

    for round_ in range(20):
        d = tmp_path / str(round_)
        errors = open_at_once(d, 6)
        assert errors == [], errors[0]
        assert OpsStore(d).integrity_check() == "ok"


def test_lens_serve_subprocess(tmp_path: Path, sample_root: Path) -> None:
    """`lens serve` as an operator starts it: loopback by default, token from the environment."""
    httpx = pytest.importorskip("httpx", reason="needs lens[server] and httpx")
    import socket
    import time

    lens_index = tmp_path / "idx"
    assert main(["index", str(sample_root), "--out", str(lens_index), "-q"]) == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LENS_STATE_DIR": str(tmp_path / "state"), "LENS_ADMIN_TOKEN": "t0k3n"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lens", "serve", "--index", str(lens_index), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"{url}/health", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["admin_enabled"] is True
        r = httpx.post(f"{url}/search", json={"query": "parse_http_date", "k": 3})
        assert r.status_code == 200 and r.json()["hits"][0]["path"] == "src/http_date.py"
        r = httpx.post(f"{url}/canary/progress", headers={"Authorization": "Bearer t0k3n"})
        assert r.status_code == 200  # 100 % already: nothing to do, nothing changed
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
