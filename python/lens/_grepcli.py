"""`lens grep`: ripgrep 14.1's command line and output formats over `Index.grep`.

rg's flags as rg takes them (-n/-N, --column, -H/-I, --heading, -F, -i/-s/-S, -w, -A/-B/-C, -l, -c, -o,
-m, --files, --color, -g, -t/-T, --json) and rg's output byte for byte: the standard and heading
formats, context with `--` between groups, rg's colors, and its `--json` event stream. Columns are
1-based and in bytes, paths relative to the current directory (or as given on the command line).

Path arguments choose what is shown; `-g`, `-t` and `-T` go to the native filter (`Index.grep`'s
`paths=` / `lang=`), which narrows the files before the grep runs.
"""

from __future__ import annotations

import os
import sys
import time

from ._grepargs import GREP_ARGS
from ._grepindex import open_for_grep

TYPE_CHECKING = False  # typing's constant without importing typing: the grep path stays lean
if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any, BinaryIO, Protocol

    from . import _lens

    class Match(Protocol):
        """What the printers read of a hit: `lens.Hit`, or the grep command's `_Row`."""

        @property
        def path(self) -> str: ...
        @property
        def line(self) -> int: ...
        @property
        def column(self) -> int: ...
        @property
        def byte_start(self) -> int: ...
        @property
        def byte_end(self) -> int: ...
        @property
        def text(self) -> str: ...


__all__ = ["UsageError", "add_grep_parser", "cmd_grep"]

# rg's default colors (path magenta, line number green, match bold red; columns reset only).
_RESET = "\x1b[0m"
_PATH, _LINE, _COL, _MATCH = "\x1b[0m\x1b[35m", "\x1b[0m\x1b[32m", "\x1b[0m", "\x1b[0m\x1b[1m\x1b[31m"


def add_grep_parser(sub: argparse._SubParsersAction[Any]) -> None:
    s = sub.add_parser(
        "grep",
        help="exhaustive search with ripgrep's flags and output",
        description="Exhaustive search with ripgrep 14's common flags and output formats. "
        "Exit status: 0 a match, 1 none, 2 an error.",
    )
    for names, options in GREP_ARGS:
        s.add_argument(*names, **options)
    s.set_defaults(func=cmd_grep)


# -- path filters: rg's -g (gitignore-style overrides) and -t / -T ---------------------------------
def check_types(names: Iterable[str]) -> None:
    """rg's error for a type name it does not know (the native filter knows rg's type table)."""
    from . import _lens

    for name in names:
        if _lens.lang_type(name) is None:
            raise UsageError(f"unrecognized file type: {name}")


class UsageError(Exception):
    """A bad flag or path: rg's exit status 2."""


# -- where the search runs: path arguments against the index root ----------------------------------
class Target:
    """One path argument: its root-relative prefix ("" for the whole root), how paths under it are
    displayed (as typed; "" when there was no path argument), and whether it names a file."""

    __slots__ = ("is_file", "prefix", "shown")

    def __init__(self, prefix: str, shown: str, is_file: bool) -> None:
        self.prefix, self.shown, self.is_file = prefix, shown, is_file

    def display(self, path: str) -> str | None:
        """`path` (root-relative) as rg would print it, or None when it is not under this target."""
        if self.is_file:
            return self.shown if path == self.prefix else None
        if self.prefix and not path.startswith(self.prefix + "/"):
            return None
        rest = path[len(self.prefix) + 1 :] if self.prefix else path
        return os.path.join(self.shown, rest) if self.shown else rest


def targets(root: str, paths: list[str], cwd: str) -> list[Target]:
    root = os.path.realpath(root)
    if not paths:
        here = os.path.realpath(cwd)
        rel = os.path.relpath(here, root)
        if rel == ".":
            return [Target("", "", False)]
        if not rel.startswith(".."):
            return [Target(rel.replace(os.sep, "/"), "", False)]
        # Outside the tree (--index names it): print paths as `rg PATTERN ROOT` would.
        shown = os.path.relpath(root, here)
        return [Target("", root if shown.startswith("..") else shown, False)]
    out = []
    for p in paths:
        full = os.path.realpath(os.path.join(cwd, p))
        if not os.path.exists(full):
            raise UsageError(f"{p}: IO error for operation on {p}: No such file or directory (os error 2)")
        rel = os.path.relpath(full, root)
        if rel.startswith(".."):
            raise UsageError(f"{p}: not under the index root {root}")
        prefix = "" if rel == "." else rel.replace(os.sep, "/")
        out.append(Target(prefix, p, os.path.isfile(full)))
    return out


# -- output --------------------------------------------------------------------------------------
class Style:
    """What rg's flags and the terminal decided about the output. (Plain classes here, not dataclasses:
    each dataclass costs the CLI's start about a millisecond.)"""

    def __init__(
        self,
        *,
        filename: bool,
        line_number: bool,
        column: bool,
        heading: bool,
        color: bool,
        before: int,
        after: int,
        only: bool,
    ) -> None:
        self.filename, self.line_number, self.column, self.heading = filename, line_number, column, heading
        self.color, self.before, self.after, self.only = color, before, after, only
        self.context_sep = before > 0 or after > 0

    def path(self, p: bytes) -> bytes:
        return _PATH.encode() + p + _RESET.encode() if self.color else p

    def num(self, n: int, color: str) -> bytes:
        s = str(n).encode()
        return color.encode() + s + _RESET.encode() if self.color else s

    def highlight(self, line: bytes, spans: list[tuple[int, int]]) -> bytes:
        if not self.color:
            return line
        out, at = [], 0
        for s, e in spans:
            if e <= s:
                continue
            out += [line[at:s], _MATCH.encode(), line[s:e], _RESET.encode()]
            at = e
        out.append(line[at:])
        return b"".join(out)


class _Row:
    """One native grep row with `lens.Hit`'s names for the fields the printers read: the grep command
    builds no `Hit` (the dataclass module and lens.types stay unloaded)."""

    __slots__ = ("byte_end", "byte_start", "column", "line", "path", "text")

    def __init__(self, path: str, line: int, column: int, byte_start: int, byte_end: int, text: str) -> None:
        self.path, self.line, self.column, self.text = path, line, column, text
        self.byte_start, self.byte_end = byte_start, byte_end


class FileHits:
    """One file's matching lines (first match each, from the native grep), and the file when needed."""

    __slots__ = ("_data", "_size", "abs_path", "hits", "rel", "shown")

    def __init__(
        self, rel: str, shown: str, hits: Sequence[Match], abs_path: str, size: int | None = None
    ) -> None:
        self.rel, self.shown, self.hits, self.abs_path = rel, shown, hits, abs_path
        self._data: bytes | None = None
        self._size = size

    @property
    def size(self) -> int:
        """The file's size on disk, asked for only when a printer needs it (listing every file of the
        index for its size cost ~45 ms CPU on the kernel, for every grep)."""
        if self._size is None:
            try:
                self._size = os.stat(self.abs_path).st_size
            except OSError:
                self._size = 0
        return self._size

    def data(self) -> bytes:
        if self._data is None:
            with open(self.abs_path, "rb") as f:
                self._data = f.read()
        return self._data


def line_of(fh: FileHits, h: Match) -> tuple[bytes, int, bool]:
    """(line bytes without its newline, byte offset of its start, whether a newline ends it)."""
    if "\ufffd" in h.text:  # not UTF-8 on disk: the native text is lossy, the file is not
        data = fh.data()
        start = data.rfind(b"\n", 0, h.byte_start) + 1
        end = data.find(b"\n", start)
        line = data[start:] if end < 0 else data[start:end]
    else:
        start = h.byte_start - len(h.text[: h.column].encode())
        line = h.text.encode()
    return line, start, start + len(line) < fh.size


def _line_starts(data: bytes) -> list[int]:
    starts, at = [0], data.find(b"\n")
    while at >= 0:
        starts.append(at + 1)
        at = data.find(b"\n", at + 1)
    return starts


class Matcher:
    """Every match in a line, for -o, colors and JSON submatches: the first from the native grep, the
    rest from `_lens.LineMatcher`, the grep's own pattern (its regex syntax, Unicode case folding and
    `-w`, as rg's). Compiled on the first call: plain output never asks."""

    def __init__(self, pattern: str, fixed: bool, ignore_case: bool, word: bool) -> None:
        self.pattern, self.fixed, self.ignore_case, self.word = pattern, fixed, ignore_case, word
        self._native: _lens.LineMatcher | None = None

    def compile(self) -> None:
        if self._native is None:
            from . import _lens

            self._native = _lens.LineMatcher(self.pattern, not self.fixed, self.ignore_case, self.word)

    def spans(self, line: bytes, first: tuple[int, int]) -> list[tuple[int, int]]:
        self.compile()
        assert self._native is not None
        return [first, *self._native.spans(line, first[1] if first[1] > first[0] else first[1] + 1)]


class Printer:
    def __init__(self, out: BinaryIO, style: Style, matcher: Matcher) -> None:
        self.out, self.style, self.matcher = out, style, matcher
        self.printed_files = 0

    def _prefix(self, shown: bytes, line: int | None, col: int | None, sep: bytes) -> bytes:
        st, parts = self.style, []
        if st.filename and not st.heading:
            parts.append(st.path(shown))
        if st.line_number and line is not None:
            parts.append(st.num(line, _LINE))
        if st.column and col is not None:
            parts.append(st.num(col, _COL))
        return b"".join(p + sep for p in parts)

    def _marked(self, line: bytes, first: tuple[int, int]) -> bytes:
        """A matching line as printed: its matches colored when colors are on (only then are they all
        found)."""
        return self.style.highlight(line, self.matcher.spans(line, first)) if self.style.color else line

    def file(self, fh: FileHits, max_count: int | None) -> int:
        """Print one file's lines; returns how many lines matched."""
        st, w = self.style, self.out.write
        hits = fh.hits[:max_count] if max_count is not None else fh.hits
        shown = fh.shown.encode("utf-8", "surrogateescape")
        if st.heading:
            if self.printed_files:
                w(b"\n")
            if st.filename:
                w(st.path(shown) + b"\n")
        elif st.context_sep and self.printed_files:
            w(b"--\n")
        self.printed_files += 1
        if not st.context_sep:
            for h in hits:
                line, off, _ = line_of(fh, h)
                col = h.byte_start - off
                first = (col, col + h.byte_end - h.byte_start)
                if st.only:
                    for s, e in self.matcher.spans(line, first):
                        w(
                            self._prefix(shown, h.line, s + 1, b":")
                            + st.highlight(line[s:e], [(0, e - s)])
                            + b"\n"
                        )
                else:
                    w(self._prefix(shown, h.line, col + 1, b":") + self._marked(line, first) + b"\n")
            return len(hits)
        lines = fh.data().split(b"\n")
        if fh.data().endswith(b"\n"):
            lines.pop()
        starts = _line_starts(fh.data())
        matched = {h.line: h for h in fh.hits}
        last = 0
        pending_end = 0

        def emit(n: int) -> None:
            text = lines[n - 1]
            h = matched.get(n)
            if h is None:
                w(self._prefix(shown, n, None, b"-") + text + b"\n")
            else:
                col = h.byte_start - starts[n - 1]
                w(
                    self._prefix(shown, n, col + 1, b":")
                    + self._marked(text, (col, col + h.byte_end - h.byte_start))
                    + b"\n"
                )

        for h in hits:
            for n in range(last + 1, min(pending_end, h.line - 1) + 1):
                emit(n)
                last = n
            start = max(1, h.line - st.before, last + 1)
            if last and start > last + 1:
                w(b"--\n")
            for n in range(start, h.line + 1):
                emit(n)
            last = h.line
            pending_end = h.line + st.after
        for n in range(last + 1, min(pending_end, len(lines)) + 1):
            emit(n)
        return len(hits)


def _elapsed(seconds: float, sort: bool = False) -> dict[str, object]:
    """rg's duration object; the summary prints its keys sorted, the end event in field order."""
    nanos = int(seconds * 1e9)
    d = {"secs": nanos // 1_000_000_000, "nanos": nanos % 1_000_000_000, "human": f"{seconds:.6f}s"}
    return dict(sorted(d.items())) if sort else d


def _jtext(b: bytes) -> dict[str, str]:
    try:
        return {"text": b.decode()}
    except UnicodeDecodeError:
        import base64

        return {"bytes": base64.b64encode(b).decode()}


class JsonPrinter:
    """rg's `--json` stream: begin / match / context / end per file, then a summary. Stats count the
    files with a match, as rg 14.1 does; `elapsed` is the time lens spent on each file's events."""

    def __init__(self, out: BinaryIO, matcher: Matcher, before: int, after: int) -> None:
        import json  # --json alone; here, outside the first file's `elapsed`

        self.out, self.matcher, self.before, self.after = out, matcher, before, after
        self._dumps = json.dumps
        matcher.compile()  # every match event lists its submatches: compiled here too
        self.totals = {
            "bytes_printed": 0,
            "bytes_searched": 0,
            "matched_lines": 0,
            "matches": 0,
            "searches": 0,
        }
        self.elapsed = 0.0

    def _emit(self, doc: Mapping[str, object]) -> int:
        b = self._dumps(doc, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        self.out.write(b)
        return len(b)

    def _event(
        self,
        kind: str,
        path: dict[str, str],
        line: bytes,
        nl: bool,
        n: int,
        off: int,
        spans: list[tuple[int, int]],
    ) -> int:
        text = line + (b"\n" if nl else b"")
        subs = [{"match": _jtext(line[s:e]), "start": s, "end": e} for s, e in spans]
        data = {
            "path": path,
            "lines": _jtext(text),
            "line_number": n,
            "absolute_offset": off,
            "submatches": subs,
        }
        return self._emit({"type": kind, "data": data})

    def file(self, fh: FileHits, max_count: int | None) -> int:
        t0 = time.perf_counter()
        hits = fh.hits[:max_count] if max_count is not None else fh.hits
        path = _jtext(fh.shown.encode("utf-8", "surrogateescape"))
        printed = self._emit({"type": "begin", "data": {"path": path}})
        matches = 0
        if self.before or self.after:
            data = fh.data()
            starts = _line_starts(data)
            nlines = len(starts) - (1 if data.endswith(b"\n") or not data else 0)
            by_line = {h.line: h for h in fh.hits}
            wanted: dict[int, bool] = {}
            for h in hits:
                for n in range(max(1, h.line - self.before), min(nlines, h.line + self.after) + 1):
                    wanted.setdefault(n, False)
                wanted[h.line] = True
            for n in sorted(wanted):
                s = starts[n - 1]
                e = data.find(b"\n", s)
                line, nl = (data[s:], False) if e < 0 else (data[s:e], True)
                hit = by_line.get(n)
                if hit is None:
                    printed += self._event("context", path, line, nl, n, s, [])
                else:
                    col = hit.byte_start - s
                    spans = self.matcher.spans(line, (col, col + hit.byte_end - hit.byte_start))
                    matches += len(spans)
                    printed += self._event("match", path, line, nl, n, s, spans)
        else:
            for h in hits:
                line, off, nl = line_of(fh, h)
                col = h.byte_start - off
                spans = self.matcher.spans(line, (col, col + h.byte_end - h.byte_start))
                matches += len(spans)
                printed += self._event("match", path, line, nl, h.line, off, spans)
        seconds = time.perf_counter() - t0
        stats = {
            "elapsed": _elapsed(seconds),
            "searches": 1,
            "searches_with_match": 1,
            "bytes_searched": fh.size,
            "bytes_printed": printed,
            "matched_lines": len(hits),
            "matches": matches,
        }
        self._emit({"type": "end", "data": {"path": path, "binary_offset": None, "stats": stats}})
        for k, v in (("bytes_printed", printed), ("bytes_searched", fh.size), ("matched_lines", len(hits))):
            self.totals[k] += v
        self.totals["matches"] += matches
        self.totals["searches"] += 1
        self.elapsed += seconds
        return len(hits)

    def summary(self, started: float) -> None:
        t = self.totals
        stats = {
            "bytes_printed": t["bytes_printed"],
            "bytes_searched": t["bytes_searched"],
            "elapsed": _elapsed(self.elapsed, sort=True),
            "matched_lines": t["matched_lines"],
            "matches": t["matches"],
            "searches": t["searches"],
            "searches_with_match": t["searches"],
        }
        total = _elapsed(time.perf_counter() - started, sort=True)
        self._emit({"data": {"elapsed_total": total, "stats": stats}, "type": "summary"})


# -- the command ----------------------------------------------------------------------------------
def _isatty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return False


def cmd_grep(a: argparse.Namespace) -> int:
    started = time.perf_counter()
    if a.version:
        from . import _lens

        print(f"lens {_lens.__version__}")
        return 0
    paths = list(a.paths)
    if a.files:
        if a.pattern is not None:
            paths.insert(0, a.pattern)
    elif a.pattern is None:
        raise UsageError("a pattern is required (or --files)")
    for name, v in (
        ("-A", a.after_context),
        ("-B", a.before_context),
        ("-C", a.context),
        ("-m", a.max_count),
    ):
        if v is not None and v < 0:
            raise UsageError(f"{name} needs a number >= 0")
    idx = open_for_grep(a.index)
    cwd = os.getcwd()
    root = idx.root
    tgts = targets(root, paths, cwd)
    from .errors import QueryError

    check_types([*a.type, *a.type_not])
    # -g / -t / -T narrow the files natively, before the search, matched as rg matches them: against
    # each path as spelled under the path argument that reaches it.
    roots = [(t.prefix, t.shown, t.is_file) for t in tgts]
    globs, langs, not_langs = list(a.glob), list(a.type), list(a.type_not)
    filtered = bool(globs or langs or not_langs)
    out = sys.stdout.buffer

    def shown_paths(rel_paths: Iterable[str]) -> list[tuple[str, str]]:
        """(root-relative, shown) in rg's order: per target, then path component by component."""
        res = []
        for t in tgts:
            chosen = [(r, s) for r in rel_paths if (s := t.display(r)) is not None]
            chosen.sort(key=lambda rs: rs[0].split("/"))
            res += chosen
        return res

    if a.files:
        try:
            listed_files = (
                idx.native.files_filtered(globs, langs, not_langs, roots) if filtered else idx.native.files()
            )
        except QueryError as e:
            raise UsageError(e.reason) from None
        listed = shown_paths(p for p, _ in listed_files)
        for _, s in listed:
            out.write(s.encode("utf-8", "surrogateescape") + b"\n")
        return 0 if listed else 1

    ignore_case = a.case == "ignore" or (a.case == "smart" and a.pattern == a.pattern.lower())
    rows = idx.native.grep(
        a.pattern,
        not a.fixed_strings,
        ignore_case,
        a.word_regexp,
        a.limit,
        idx.stage_a_native,
        globs,
        langs,
        not_langs,
        roots,
    )
    by_file: dict[str, list[_Row]] = {}
    for row in rows:
        by_file.setdefault(row[0], []).append(_Row(*row[:6]))
    files = [FileHits(r, s, by_file[r], os.path.join(root, r)) for r, s in shown_paths(by_file)]
    tty = _isatty(out)
    single_file = len(tgts) == 1 and tgts[0].is_file
    color = a.color in ("always", "ansi") or (a.color == "auto" and tty)
    context = a.context or 0
    style = Style(
        filename=a.with_filename if a.with_filename is not None else not single_file,
        line_number=a.line_number if a.line_number is not None else (tty or bool(a.column)),
        column=bool(a.column),
        heading=a.heading if a.heading is not None else tty,
        color=color,
        before=a.before_context if a.before_context is not None else context,
        after=a.after_context if a.after_context is not None else context,
        only=a.only_matching,
    )
    matcher = Matcher(a.pattern, a.fixed_strings, ignore_case, a.word_regexp)
    if a.max_count == 0:
        files = []
    if a.json:
        jp = JsonPrinter(out, matcher, style.before, style.after)
        for fh in files:
            jp.file(fh, a.max_count)
        jp.summary(started)
    elif a.files_with_matches:
        for fh in files:
            out.write(style.path(fh.shown.encode("utf-8", "surrogateescape")) + b"\n")
    elif a.count:
        for fh in files:
            hs = fh.hits[: a.max_count] if a.max_count is not None else fh.hits
            if a.only_matching:
                n = 0
                for h in hs:
                    line, off, _ = line_of(fh, h)
                    n += len(matcher.spans(line, (h.byte_start - off, h.byte_end - off)))
            else:
                n = len(hs)
            shown = fh.shown.encode("utf-8", "surrogateescape")
            out.write((style.path(shown) + b":" if style.filename else b"") + str(n).encode() + b"\n")
    else:
        printer = Printer(out, style, matcher)
        for fh in files:
            printer.file(fh, a.max_count)
    out.flush()
    return 0 if files else 1
