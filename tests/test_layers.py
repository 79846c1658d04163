"""The structure: no import loop on either side, and no arrow running back up.

Python: the import graph of `lens` (module-level and function-level imports alike; `TYPE_CHECKING`
blocks are types only and left out) has no cycle, the leaves import nothing of lens, and the guard never
imports what calls it. Rust: the index knows no symbols and no ranking, the leaves use nothing of the
crate, and only `bindings` touches pyo3.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PKG = REPO / "python" / "lens"
RUST = REPO / "rust"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, modules: set[str]) -> set[str]:
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join([*base, *(child.module.split(".") if child.module else [])])
                else:
                    target = child.module or ""
                for alias in child.names:
                    sub = f"{target}.{alias.name}"
                    out.add(sub if sub in modules else target)
            elif isinstance(child, ast.Import):
                out.update(a.name for a in child.names)
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return {m for m in out if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    files = list(PKG.rglob("*.py"))
    modules = {_module_name(p) for p in files} | {"lens._lens"}  # the native module (no .py)
    return {_module_name(p): _imports(p, modules) for p in files}


def _is_client(module: str) -> bool:
    """The clients of the public API (the CLI, the operations layer and its server) sit above the facade:
    they may import `lens`, and nothing under the facade may import them."""
    clients = ("lens.cli", "lens.__main__", "lens._grepcli", "lens.ops")
    return module in clients or module.startswith("lens.ops.")


def test_python_import_graph_has_no_cycle() -> None:
    graph = _graph()
    assert not [d for d in graph["lens"] if _is_client(d)], "the facade imports a client of itself"
    assert not [m for m, deps in graph.items() if not _is_client(m) and any(map(_is_client, deps))], (
        "a layer under the facade imports the CLI or the operations layer"
    )
    # `lens` (the package facade) imports everything; nothing below may import it back.
    below = {m: deps for m, deps in graph.items() if m != "lens"}
    assert not [m for m, deps in below.items() if "lens" in deps and not _is_client(m)], "reaches up to lens"
    state: dict[str, int] = {}

    def dfs(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(below.get(m, ())):
            if state.get(d) == 1:
                raise AssertionError("import loop: " + " -> ".join([*path, m, d]))
            if d not in state:
                dfs(d, [*path, m])
        state[m] = 2

    for m in sorted(below):
        if m not in state and not _is_client(m):
            dfs(m, [])


def test_python_leaves_and_arrows() -> None:
    graph = _graph()
    assert graph["lens.types"] == set()
    assert graph["lens._log"] == set()  # the event log is a leaf every layer may use
    assert graph["lens._record"] == set()  # so are the plain value records
    for m, deps in graph.items():
        if m.startswith("lens.guard"):
            assert all(d.startswith("lens.guard") or d in ("lens._log", "lens._record") for d in deps), (
                m,
                deps,
            )
    assert not {"lens.index", "lens.pipeline"} & graph["lens.symbols"]
    assert "lens.index" not in graph["lens.pipeline"]


def _rust_uses(path: Path) -> set[str]:
    text = path.read_text()
    return set(re.findall(r"crate::(\w+)", text)) | ({"pyo3"} if re.search(r"\bpyo3\b", text) else set())


def test_rust_layers() -> None:
    # A test module (`tests.rs`, compiled under cfg(test) only) may drive the index through the engine to
    # check it end to end; the rule is about the code that ships.
    shipped = [p for p in RUST.rglob("*.rs") if p.name != "tests.rs"]
    for path in (p for p in shipped if "index" in p.parts):
        uses = _rust_uses(path)
        assert not {"symbols", "scan", "engine", "reference", "bindings"} & uses, (path, uses)
    for leaf in ("hit.rs", "cache.rs", "bytes.rs"):
        assert _rust_uses(RUST / leaf) == set(), leaf
    for path in shipped:
        uses = _rust_uses(path)
        if "bindings" not in path.parts and path.name != "lib.rs":
            assert "pyo3" not in uses, path
        if path.parent.name in ("symbols", "scan", "query", "index"):
            assert not {"engine", "bindings"} & uses, (path, uses)
