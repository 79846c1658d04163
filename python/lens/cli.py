"""The `lens` command line: index, search, grep, stats, refresh, and the `make run` demo.

An application, unlike the library: it may configure logging (structlog to stderr, warnings and up).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import sysconfig
import time
from collections.abc import Sequence
from pathlib import Path

import structlog

from . import Index, LensError
from .index import DEFAULT_INDEX_DIRNAME
from .types import Hit

DEMO_QUERIES: dict[str, list[str]] = {
    "identifier": ["OrderedDict", "urlsplit", "parse_headers", "ThreadPoolExecutor"],
    "literal": ['if __name__ == "__main__":', "raise NotImplementedError"],
    "natural language": [
        "parse an http date header",
        "read a zip file member",
        "quote a string for the shell",
    ],
}
DEMO_GREPS: list[tuple[str, dict[str, bool]]] = [
    (r"def \w+_timeout\(", {}),
    ("TODO", {"word": True}),
    ("utf-8", {"regex": False, "ignore_case": True}),
]


def _configure_logging() -> None:
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def _hit_json(h: Hit) -> dict[str, object]:
    return {
        "path": h.path,
        "line": h.line,
        "column": h.column,
        "byte_start": h.byte_start,
        "byte_end": h.byte_end,
        "text": h.text,
        "score": h.score,
        "why": list(h.why),
    }


def _print_hit(h: Hit) -> None:
    # ripgrep's --column is 1-based; Hit.column is 0-based.
    print(f"{h.path}:{h.line}:{h.column + 1}:{h.text}")


def _open(index: str | None) -> Index:
    return Index.open(index or DEFAULT_INDEX_DIRNAME)


def cmd_index(a: argparse.Namespace) -> int:
    root = Path(a.path)
    out = Path(a.out) if a.out else root / DEFAULT_INDEX_DIRNAME
    idx = Index.build(root, out, max_file_bytes=a.max_file_bytes, progress=not a.quiet, exclude=a.exclude)
    s = idx.stats()
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(s["skipped"].items())) or "none"
    print(
        f"indexed {s['files']} files ({s['bytes'] / 1e6:.1f} MB) into {out} "
        f"({s['index_bytes'] / 1e6:.1f} MB, {s['build_seconds']:.2f} s); skipped: {skipped}"
    )
    return 0


def cmd_search(a: argparse.Namespace) -> int:
    idx = _open(a.index)
    res = idx.search(a.query, k=a.k, mode=a.mode, budget_ms=a.budget_ms)
    if a.json:
        print(
            json.dumps(
                {
                    "hits": [_hit_json(h) for h in res.hits],
                    "timings_ms": res.timings_ms,
                    "truncated": res.truncated,
                }
            )
        )
        return 0
    for h in res.hits:
        _print_hit(h)
    timings = " ".join(f"{k}={v:.3f}ms" for k, v in res.timings_ms.items())
    print(f"# {len(res.hits)} hits, {timings}{' (truncated)' if res.truncated else ''}", file=sys.stderr)
    return 0 if res.hits else 1


def cmd_grep(a: argparse.Namespace) -> int:
    idx = _open(a.index)
    hits = idx.grep(
        a.pattern, regex=not a.fixed_strings, ignore_case=a.ignore_case, word=a.word_regexp, limit=a.limit
    )
    if a.json:
        print(json.dumps([_hit_json(h) for h in hits]))
    else:
        for h in hits:
            _print_hit(h)
    return 0 if hits else 1


def cmd_stats(a: argparse.Namespace) -> int:
    print(json.dumps(_open(a.index).stats(), indent=2, default=str))
    return 0


def cmd_refresh(a: argparse.Namespace) -> int:
    counts = _open(a.index).refresh(progress=not a.quiet)
    print(json.dumps(counts))
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lens", description="Embedded code search.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("index", help="index a source tree")
    s.add_argument("path")
    s.add_argument("--out", help=f"index directory (default: PATH/{DEFAULT_INDEX_DIRNAME})")
    s.add_argument("--max-file-bytes", type=int, default=1 << 20)
    s.add_argument("--exclude", action="append", default=[], help="gitignore-style glob to leave out")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_index)

    s = sub.add_parser("search", help="ranked search")
    s.add_argument("query")
    s.add_argument("--index", help=f"index directory (default: ./{DEFAULT_INDEX_DIRNAME})")
    s.add_argument("-k", type=int, default=10)
    s.add_argument("--mode", default="auto", choices=["lex", "symbol", "hybrid", "auto"])
    s.add_argument("--budget-ms", type=float)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_search)

    s = sub.add_parser("grep", help="exhaustive search, output like rg -n --column")
    s.add_argument("pattern")
    s.add_argument("--index")
    s.add_argument("-i", "--ignore-case", action="store_true")
    s.add_argument("-w", "--word-regexp", action="store_true")
    s.add_argument("-F", "--fixed-strings", action="store_true")
    s.add_argument("--limit", type=int)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_grep)

    s = sub.add_parser("stats", help="index statistics as JSON")
    s.add_argument("--index")
    s.set_defaults(func=cmd_stats)

    s = sub.add_parser("refresh", help="re-index what changed")
    s.add_argument("--index")
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=cmd_refresh)

    s = sub.add_parser("demo", help="index the stdlib and run example queries (make run)")
    s.add_argument("--out", default=".lens-demo")
    s.add_argument("--semantic", action="store_true", help="also embed definitions (Stage-C; slow)")
    s.set_defaults(func=cmd_demo)

    from .ops.cli import add_ops_commands  # the runbook's operations commands (lens.ops)

    add_ops_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    _configure_logging()
    a = build_parser().parse_args(argv)
    try:
        return int(a.func(a))
    except LensError as e:
        print(f"lens: error: {e}", file=sys.stderr)
        return 2
    except (FileNotFoundError, NotADirectoryError) as e:
        print(f"lens: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
