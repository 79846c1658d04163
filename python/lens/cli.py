"""The `lens` command line: index, search, grep, stats, refresh, and the `make run` demo.

An application, unlike the library: it configures logging (lens's events, warnings and up, to stderr).
Exit status for every command: 0 a match (or success), 1 no match, 2 an error. `grep` is ripgrep's
command line (lens._grepcli), read without argparse when it is a plain one (lens._grepargs; argparse,
built by lens._cliparser's classes, reads the rest and every other command). The index is found upward
from the current directory unless --index names it.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import time

from ._discover import DEFAULT_INDEX_DIRNAME, locate_index
from ._grepcli import FileHits, Target, UsageError, add_grep_parser, line_of, targets
from ._log import when_logging_loads
from .errors import LensError

# typing's constant without importing typing: `lens grep` imports what grep needs and little else.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import Any

    from .index import Index
    from .types import FileGroup, Hit

_INDEX_HELP = (
    f"the index directory or the repository root (default: the nearest {DEFAULT_INDEX_DIRNAME} upward)"
)

DEMO_QUERIES: dict[str, list[str]] = {
    "identifier": ["OrderedDict", "urlsplit", "parse_headers", "ThreadPoolExecutor"],
    "literal": ['if __name__ == "__main__":', "raise NotImplementedError"],
    "natural language": [
        "parse an http date header",
        "read a zip file member",
        "quote a string for the shell",
    ],
}
DEMO_GREPS: list[tuple[str, dict[str, Any]]] = [
    (r"def \w+_timeout\(", {}),
    ("TODO", {"word": True}),
    ("utf-8", {"regex": False, "ignore_case": True}),
]


def _configure_logging() -> None:
    # lens's events go through the standard library's logging (lens._log): warnings and up to stderr.
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="lens: %(levelname)s: %(message)s")


def _print_hit(h: Hit, root: str, here: Target) -> None:
    """`path:line:column:text` as rg prints it: the path relative to the current directory, the column
    1-based and in bytes (`Hit.column` is 0-based, in code points)."""
    shown = here.display(h.path) or os.path.relpath(os.path.join(root, h.path))
    fh = FileHits(h.path, shown, [h], os.path.join(root, h.path), h.byte_end)
    _, start, _ = line_of(fh, h)
    print(f"{shown}:{h.line}:{h.byte_start - start + 1}:{h.text}")


def _print_groups(groups: list[FileGroup], root: str, here: Target) -> None:
    """Files in rank order, each with its number of matches, then its hits (line, byte column, score, why)."""
    for n, g in enumerate(groups):
        shown = here.display(g.path) or os.path.relpath(os.path.join(root, g.path))
        plural = "es" if g.matches != 1 else ""
        print(("\n" if n else "") + f"{shown} ({g.matches} match{plural}, best {g.score:.2f})")
        for h in g.hits:
            fh = FileHits(h.path, shown, [h], os.path.join(root, h.path), h.byte_end)
            _, start, _ = line_of(fh, h)
            print(f"{h.line}:{h.byte_start - start + 1}: [{h.score:.2f} {','.join(h.why)}] {h.text}")


def _open(index: str | None) -> Index:
    """The index --index names (its directory or the repository root), else the nearest `.lens` upward."""
    from .index import Index

    return Index.open(locate_index(index))


def cmd_index(a: argparse.Namespace) -> int:
    from pathlib import Path

    from .index import Index

    root = Path(a.path)
    out = Path(a.out) if a.out else root / DEFAULT_INDEX_DIRNAME
    idx = Index.build(
        root,
        out,
        max_file_bytes=a.max_file_bytes,
        progress=not a.quiet,
        exclude=a.exclude,
        semantic=a.semantic,
    )
    s = idx.stats()
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(s["skipped"].items())) or "none"
    print(
        f"indexed {s['files']} files ({s['bytes'] / 1e6:.1f} MB) into {out} "
        f"({s['index_bytes'] / 1e6:.1f} MB, {s['build_seconds']:.2f} s); skipped: {skipped}"
    )
    return 0


def cmd_search(a: argparse.Namespace) -> int:
    import json

    idx = _open(a.index)
    group = a.group if a.group is not None else (not a.json and sys.stdout.isatty())
    res = idx.search(
        a.query,
        k=a.k,
        mode=a.mode,
        budget_ms=a.budget_ms,
        paths=a.glob or None,
        lang=a.lang or None,
        group_by="file" if group else None,
    )
    if a.json:
        print(
            json.dumps(
                {
                    "hits": [h.as_dict() for h in res.hits],
                    "timings_ms": res.timings_ms,
                    "truncated": res.truncated,
                }
            )
        )
        return 0 if res.hits else 1
    root = str(idx.root)
    here = targets(root, [], os.getcwd())[0]
    if res.groups is not None:
        _print_groups(res.groups, root, here)
    else:
        for h in res.hits:
            _print_hit(h, root, here)
    _warn_stale(idx)
    timings = " ".join(f"{k}={v:.3f}ms" for k, v in res.timings_ms.items())
    print(f"# {len(res.hits)} hits, {timings}{' (truncated)' if res.truncated else ''}", file=sys.stderr)
    return 0 if res.hits else 1


def cmd_stats(a: argparse.Namespace) -> int:
    import json

    print(json.dumps(_open(a.index).stats(stale=True), indent=2, default=str))
    return 0


def _warn_stale(idx: Index) -> None:
    """One line on stderr when files moved since the index was built or refreshed."""
    st = idx.staleness()
    if st["stale"]:
        print(
            f"lens: the index is stale: {st['added']} added, {st['changed']} changed, "
            f"{st['removed']} removed since the last build or refresh; run `lens refresh`",
            file=sys.stderr,
        )


def cmd_refresh(a: argparse.Namespace) -> int:
    import json

    counts = _open(a.index).refresh(progress=not a.quiet)
    print(json.dumps(counts))
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    import sysconfig
    from pathlib import Path

    from .index import Index

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    out = Path(a.out)
    print(f"lens demo: indexing the Python {sys.version.split()[0]} standard library at {stdlib}")
    t = time.perf_counter()
    # Embedding every stdlib definition (Stage-C) takes many minutes on a small machine: opt in.
    idx = Index.build(
        stdlib, out, progress=True, exclude=["site-packages/", "__pycache__/"], semantic=a.semantic or False
    )
    s = idx.stats()
    print(
        f"indexed {s['files']} files, {s['bytes'] / 1e6:.1f} MB, in {time.perf_counter() - t:.2f} s "
        f"-> {out} ({s['index_bytes'] / 1e6:.1f} MB)\n"
    )
    for kind, queries in DEMO_QUERIES.items():
        for q in queries:
            res = idx.search(q, k=3)
            timings = " ".join(f"{k}={v:.3f}ms" for k, v in res.timings_ms.items())
            print(f"search [{kind}] {q!r}: {timings}")
            for h in res.hits:
                print(f"  {h.path}:{h.line}:{h.column}  {h.text.strip()[:100]}  {h.why}")
    for pattern, opts in DEMO_GREPS:
        t = time.perf_counter()
        hits = idx.grep(pattern, **opts)
        ms = (time.perf_counter() - t) * 1000
        print(f"grep {pattern!r} {opts or ''}: {len(hits)} lines in {ms:.2f} ms")
        for h in hits[:3]:
            print(f"  {h.path}:{h.line}:{h.column}  {h.text.strip()[:100]}")
    return 0


def _version() -> str:
    from . import _lens

    return str(_lens.__version__)


def _add_index(sub: argparse._SubParsersAction[Any]) -> None:
    import argparse

    s = sub.add_parser("index", help="index a source tree")
    s.add_argument("path")
    s.add_argument("--out", help=f"index directory (default: PATH/{DEFAULT_INDEX_DIRNAME})")
    s.add_argument("--max-file-bytes", type=int, default=1 << 20)
    s.add_argument("--exclude", action="append", default=[], help="gitignore-style glob to leave out")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.add_argument(
        "--semantic",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="embed definitions for Stage-C (default: on when lens[semantic] is installed)",
    )
    s.set_defaults(func=cmd_index)


def _add_search(sub: argparse._SubParsersAction[Any]) -> None:
    import argparse

    s = sub.add_parser("search", help="ranked search")
    s.add_argument("query")
    s.add_argument("--index", help=_INDEX_HELP)
    s.add_argument("-k", type=int, default=10)
    s.add_argument("--mode", default="auto", choices=["lex", "symbol", "hybrid", "auto"])
    s.add_argument("--budget-ms", type=float)
    s.add_argument("--json", action="store_true")
    s.add_argument("-g", "--glob", action="append", default=[], help="include (or !exclude) paths")
    s.add_argument("-t", "--lang", action="append", default=[], help="only files of this language")
    s.add_argument(
        "--group",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="group hits by file, with scores and why (default: on a terminal)",
    )
    s.set_defaults(func=cmd_search)


def _add_stats(sub: argparse._SubParsersAction[Any]) -> None:
    s = sub.add_parser("stats", help="index statistics as JSON")
    s.add_argument("--index", help=_INDEX_HELP)
    s.set_defaults(func=cmd_stats)


def _add_refresh(sub: argparse._SubParsersAction[Any]) -> None:
    s = sub.add_parser("refresh", help="re-index what changed")
    s.add_argument("--index", help=_INDEX_HELP)
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=cmd_refresh)


def _add_demo(sub: argparse._SubParsersAction[Any]) -> None:
    s = sub.add_parser("demo", help="index the stdlib and run example queries (make run)")
    s.add_argument("--out", default=".lens-demo")
    s.add_argument("--semantic", action="store_true", help="also embed definitions (Stage-C; slow)")
    s.set_defaults(func=cmd_demo)


#: The commands defined here, in the order `lens --help` lists them; for them the ops commands (and their
#: imports) are left out of the parser.
CORE_COMMANDS: dict[str, Callable[[argparse._SubParsersAction[Any]], None]] = {
    "index": _add_index,
    "search": _add_search,
    "grep": add_grep_parser,
    "stats": _add_stats,
    "refresh": _add_refresh,
    "demo": _add_demo,
}


def build_parser(*, ops: bool = True, only: str | None = None) -> argparse.ArgumentParser:
    """The `lens` parser. `only` (a core command) builds that command's parser alone: an argparse parser
    costs about a millisecond to build, and a command line that starts with its command reaches no other
    (its usage names them all, as the whole parser's does)."""
    from ._cliparser import Parser

    p = Parser(
        prog="lens",
        description="Embedded code search.",
        epilog="exit status: 0 a match (or success), 1 no match, 2 an error",
    )
    p.add_argument("--version", action="version", version=f"lens {_version()}")
    # prog given: argparse would otherwise build a help formatter to work it out (importing shutil).
    metavar = "{" + ",".join(CORE_COMMANDS) + "}" if only is not None else None
    sub = p.add_subparsers(dest="command", required=True, prog="lens", metavar=metavar)
    for name, add in CORE_COMMANDS.items():
        if only is None or name == only:
            add(sub)
    if ops and only is None:
        from .ops.cli import add_ops_commands  # the runbook's operations commands (lens.ops)

        add_ops_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = next((x for x in args if not x.startswith("-")), None)
    # A grep is a short run whose objects (modules, parsers, hits) form no garbage cycles worth a pass:
    # the cyclic collector's passes over every imported object, during the run and the one at exit, were
    # ~2 % of its instructions. Paused for the run (restored on return, for a caller in its own process),
    # and skipped at exit (after the atexit handlers, the interpreter collects only when enabled).
    pause_gc = command == "grep" and gc.isenabled()
    if pause_gc:
        gc.disable()
        atexit.register(gc.disable)
    try:
        return _main(args, command)
    finally:
        if pause_gc:
            gc.enable()


def _parse(args: list[str], command: str | None) -> Any:
    """The command line's namespace. A grep's plain command line (lens._grepargs) is read without argparse,
    which with `re`, gettext and locale is a third of a grep's start-up; argparse reads the rest, so help,
    usage errors and exit statuses are its own."""
    if command == "grep" and args[0] == command:
        from ._grepargs import parse_plain
        from ._grepcli import cmd_grep

        plain = parse_plain(args[1:])
        if plain is not None:
            return _Namespace(command=command, func=cmd_grep, **plain)
    # A command line that starts with a core command reaches that command's parser alone (top-level flags
    # before it, such as -h, need them all).
    only = command if command in CORE_COMMANDS and args[0] == command else None
    parser = build_parser(ops=command not in CORE_COMMANDS, only=only)
    a, extra = parser.parse_known_args(args)
    # rg takes paths anywhere among the flags; argparse stops filling a positional at the first flag.
    if extra and command == "grep" and not any(x.startswith("-") for x in extra):
        a.paths += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return a


class _Namespace:
    """argparse's `Namespace` for the command lines read without argparse: attributes, nothing more."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


def _main(args: list[str], command: str | None) -> int:
    if command in CORE_COMMANDS:
        when_logging_loads(_configure_logging)  # a grep that logs nothing never imports logging
    else:
        _configure_logging()  # the ops commands' servers and libraries log through it directly
    a = _parse(args, command)
    try:
        return int(a.func(a))
    except (LensError, UsageError) as e:
        print(f"lens: error: {e}", file=sys.stderr)
        return 2
    except (FileNotFoundError, NotADirectoryError) as e:
        print(f"lens: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
