"""The other tree-sitter route, measured for BENCHMARKS.md: the PyPI wheels (`tree-sitter` 0.26 and
the grammar wheels), extracting with the same tags queries the Rust route uses.

    python3 -m venv /tmp/ts-venv
    /tmp/ts-venv/bin/pip install "tree-sitter==0.26.1" tree-sitter-python tree-sitter-c
    /tmp/ts-venv/bin/python benches/ts_pypi_route.py DIR [DIR...]

Not a lens dependency: lens extracts in Rust (see BENCHMARKS.md, "Stage-B"). Prints one JSON object per
DIR: parse-only and parse + tags-query throughput on one process, and on a pool of 2 processes.
"""

from __future__ import annotations

import json
import multiprocessing
import re
import sys
import time
from pathlib import Path
from typing import Any

import tree_sitter as ts  # type: ignore[import-not-found]
import tree_sitter_c  # type: ignore[import-not-found]
import tree_sitter_python  # type: ignore[import-not-found]

REPO = Path(__file__).resolve().parent.parent
C_TAGS = re.search(r'const C_TAGS: &str = r#"(.*?)"#;', (REPO / "rust/symbols/lang.rs").read_text(), re.S)
PY_TAGS = """
(module (expression_statement (assignment left: (identifier) @name) @definition.constant))
(class_definition name: (identifier) @name) @definition.class
(function_definition name: (identifier) @name) @definition.function
(call function: [(identifier) @name (attribute attribute: (identifier) @name)]) @reference.call
"""
_STATE: dict[str, Any] = {}


def _setup() -> None:
    langs = {"py": ts.Language(tree_sitter_python.language()), "c": ts.Language(tree_sitter_c.language())}
    assert C_TAGS is not None
    queries = {"py": ts.Query(langs["py"], PY_TAGS), "c": ts.Query(langs["c"], C_TAGS.group(1))}
    _STATE.update(parsers={k: ts.Parser(v) for k, v in langs.items()}, queries=queries)


def _lang(p: Path) -> str | None:
    return {".py": "py", ".c": "c", ".h": "c"}.get(p.suffix)


def extract(item: tuple[str, str]) -> int:
    """Parse one file and run its tags query; returns the number of definitions."""
    lang, path = item
    if not _STATE:
        _setup()
    data = Path(path).read_bytes()
    tree = _STATE["parsers"][lang].parse(data)
    n = 0
    for _, caps in ts.QueryCursor(_STATE["queries"][lang]).matches(tree.root_node):
        for name, nodes in caps.items():
            if name.startswith("definition."):
                n += len(nodes)
                for node in nodes:  # what the Rust route keeps per tag
                    _ = (node.start_byte, node.end_byte, node.start_point)
    return n


def main() -> int:
    _setup()
    for d in sys.argv[1:]:
        files = [
            (lang, str(p))
            for p in sorted(Path(d).rglob("*"))
            if p.is_file() and (lang := _lang(p)) and p.stat().st_size <= 1 << 20
        ]
        mb = sum(Path(p).stat().st_size for _, p in files) / 1e6
        for _, p in files:  # page cache
            Path(p).read_bytes()
        t = time.perf_counter()
        for lang, p in files:
            _STATE["parsers"][lang].parse(Path(p).read_bytes())
        parse_only = time.perf_counter() - t
        t = time.perf_counter()
        defs = sum(extract(f) for f in files)
        one = time.perf_counter() - t
        t = time.perf_counter()
        with multiprocessing.Pool(2) as pool:
            defs2 = sum(pool.map(extract, files, chunksize=16))
        two = time.perf_counter() - t
        assert defs == defs2
        print(
            json.dumps(
                {
                    "dir": d,
                    "files": len(files),
                    "mb": round(mb, 1),
                    "defs": defs,
                    "parse_only_s": round(parse_only, 2),
                    "one_process_s": round(one, 2),
                    "one_process_mb_s": round(mb / one, 1),
                    "two_processes_s": round(two, 2),
                    "two_processes_mb_s": round(mb / two, 1),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
