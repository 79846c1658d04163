"""The public API's types as a host's type checker sees them: `mode` is a `Literal`, `Hit.symbol` a typed
`Symbol`, iterating a `SearchResult` yields `Hit`s (mypy, strict, on a small host program)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HOST = """
import lens

def host(idx: lens.Index) -> list[str]:
    res = idx.search("urlsplit", k=5, mode="symbol", paths=["*.py"], lang="python")
    out: list[str] = []
    for hit in res:
        reveal_type(hit)
        if hit.symbol is not None:
            out.append(hit.symbol.kind + hit.symbol.path)
    reveal_type(res.mode)
    if res.groups is not None:
        out += [g.path for g in res.groups]
    return out
"""

BAD = """
import lens

def host(idx: lens.Index) -> None:
    idx.search("urlsplit", mode="fast")
    for hit in idx.search("x"):
        hit.symbol.name
"""


def _mypy(tmp_path: Path, source: str) -> str:
    f = tmp_path / "host.py"
    f.write_text(source)
    cmd = [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir=/dev/null", str(f)]
    return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout


def test_the_api_is_typed_for_a_host(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    out = _mypy(tmp_path, HOST)
    assert 'Revealed type is "lens.types.Hit"' in out, out
    assert "Literal['lex'] | Literal['symbol'] | Literal['hybrid'] | Literal['auto']" in out, out
    assert "error" not in out.replace("Revealed type", ""), out
    bad = _mypy(tmp_path, BAD)
    assert 'Argument "mode"' in bad and "symbol" in bad and "None" in bad, bad
