"""`lens grep`'s flags: one table that builds its argparse parser, and a parser for the plain command lines
that needs neither argparse nor `re`.

argparse imports `re` (and with it `enum`, `functools`, `collections`), `gettext` and, through gettext,
`locale`, and building the grep parser adds 40 actions: together about a third of the instructions of
a `lens grep` run. `parse_plain` reads the command lines a user types (exact flags, `-nH` bundles, `-A3`,
`--index=DIR`, positionals anywhere, as argparse and `lens.cli` combine them) into what argparse would
give; anything else (`-h`, an abbreviated or unknown flag, `--`, a value that looks like a flag, a bad
number or choice) returns None, and the command line goes to argparse, whose help, errors and exit
status are then the command's. `tests/test_grep_args.py` holds the two to the same answers.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's constant without importing typing: the grep path stays lean
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = ["GREP_ARGS", "parse_plain"]

#: `add_argument(*names, **options)` for each of grep's arguments, in the order of its help.
GREP_ARGS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("pattern",), {"nargs": "?", "help": "a regex (rg's syntax), or a literal with -F"}),
    (("paths",), {"nargs": "*", "metavar": "PATH", "help": "files or directories under the index root"}),
    (("--index",), {"help": "the index directory or the repository root (default: found upward)"}),
    (
        ("-n", "--line-number"),
        {"dest": "line_number", "action": "store_const", "const": True, "default": None},
    ),
    (("-N", "--no-line-number"), {"dest": "line_number", "action": "store_const", "const": False}),
    (("--column",), {"dest": "column", "action": "store_const", "const": True, "default": None}),
    (("--no-column",), {"dest": "column", "action": "store_const", "const": False}),
    (("-H", "--with-filename"), {"dest": "with_filename", "action": "store_const", "const": True}),
    (("-I", "--no-filename"), {"dest": "with_filename", "action": "store_const", "const": False}),
    (("--heading",), {"dest": "heading", "action": "store_const", "const": True, "default": None}),
    (("--no-heading",), {"dest": "heading", "action": "store_const", "const": False}),
    (("-F", "--fixed-strings"), {"action": "store_true"}),
    (
        ("-i", "--ignore-case"),
        {"dest": "case", "action": "store_const", "const": "ignore", "default": "sensitive"},
    ),
    (("-s", "--case-sensitive"), {"dest": "case", "action": "store_const", "const": "sensitive"}),
    (("-S", "--smart-case"), {"dest": "case", "action": "store_const", "const": "smart"}),
    (("-w", "--word-regexp"), {"action": "store_true"}),
    (("-A", "--after-context"), {"type": int, "metavar": "NUM"}),
    (("-B", "--before-context"), {"type": int, "metavar": "NUM"}),
    (("-C", "--context"), {"type": int, "metavar": "NUM"}),
    (("-l", "--files-with-matches"), {"action": "store_true"}),
    (("-c", "--count"), {"action": "store_true"}),
    (("-o", "--only-matching"), {"action": "store_true"}),
    (("-m", "--max-count"), {"type": int, "metavar": "NUM"}),
    (("--files",), {"action": "store_true", "help": "list the files that would be searched"}),
    (("--color", "--colour"), {"choices": ["never", "auto", "always", "ansi"], "default": "auto"}),
    (("-g", "--glob"), {"action": "append", "default": [], "help": "include (or !exclude) paths"}),
    (("-t", "--type"), {"action": "append", "default": [], "help": "only files of this rg type"}),
    (("-T", "--type-not"), {"action": "append", "default": [], "help": "no files of this rg type"}),
    (
        ("--sort",),
        {"choices": ["path", "none"], "help": "accepted for rg's sake: lens prints in path order"},
    ),
    (("--json",), {"action": "store_true", "help": "rg's JSON Lines event stream"}),
    (("--limit",), {"type": int, "help": "stop after this many matching lines in all"}),
    (("--version",), {"action": "store_true", "help": "print lens's version"}),
)


class _Flag:
    """One optional argument as argparse stores it: its dest, whether it takes a value, and what it
    stores (a constant, or the value converted by `type` and checked against `choices`)."""

    __slots__ = ("append", "choices", "const", "dest", "takes_value", "type")

    def __init__(self, names: tuple[str, ...], options: dict[str, Any]) -> None:
        action = options.get("action")
        # argparse's dest: the first long name without its dashes, `-` as `_` (else the first short's letter).
        long = next((n for n in names if n.startswith("--")), names[0])
        self.dest: str = options.get("dest", long.lstrip("-").replace("-", "_"))
        self.takes_value = action in (None, "append")
        self.append = action == "append"
        self.const: object = True if action == "store_true" else options.get("const")
        self.type = options.get("type")
        self.choices = options.get("choices")

    def value(self, text: str) -> tuple[bool, object]:
        """(ok, the stored value) for `text`, converted and checked as argparse does; not ok where
        argparse would report an error."""
        value: object = text
        if self.type is not None:
            try:
                value = self.type(text)
            except (TypeError, ValueError):
                return False, None
        if self.choices is not None and value not in self.choices:
            return False, None
        return True, value


_FLAGS: dict[str, _Flag] = {}
_DEFAULTS: dict[str, object] = {}
for _names, _options in GREP_ARGS:
    if _names[0].startswith("-"):
        _flag = _Flag(_names, _options)
        for _name in _names:
            _FLAGS[_name] = _flag
        # argparse's defaults: a dest shared by several flags takes the first one's.
        _action = _options.get("action")
        _DEFAULTS.setdefault(_flag.dest, _options.get("default", False if _action == "store_true" else None))
del _names, _options, _flag, _name, _action


def parse_plain(argv: Sequence[str]) -> dict[str, Any] | None:
    """grep's arguments (what follows `grep`) as argparse's namespace would hold them, with `lens.cli`'s
    extra positionals appended to `paths`; None for anything argparse should see (see the module)."""
    values: dict[str, Any] = {k: list(v) if isinstance(v, list) else v for k, v in _DEFAULTS.items()}
    positionals: list[str] = []
    i, n = 0, len(argv)
    while i < n:
        arg = argv[i]
        i += 1
        if not arg.startswith("-"):
            positionals.append(arg)
            continue
        if arg.startswith("--"):
            name, eq, attached = arg.partition("=")
            flag = _FLAGS.get(name)
            if flag is None or (eq and (not flag.takes_value or not attached)):
                return None
            pending: list[tuple[_Flag, str | None]] = [(flag, attached if eq else None)]
        else:
            # `-nH`, `-nA3`, `-A 3`: flags without a value, then at most one that takes the rest (or the
            # next argument) as its value. (argparse reads `-A=3` and `-gx=y` its own way: left to it.)
            if "=" in arg:
                return None
            pending = []
            at = 1
            while at < len(arg):
                flag = _FLAGS.get("-" + arg[at])
                if flag is None:
                    return None
                at += 1
                if flag.takes_value:
                    pending.append((flag, arg[at:] or None))
                    break
                pending.append((flag, None))
            if not pending:
                return None
        for flag, given in pending:
            if not flag.takes_value:
                values[flag.dest] = flag.const
                continue
            if given is None:
                # The value is the next argument; one that starts with `-` is argparse's to judge.
                if i >= n or argv[i].startswith("-"):
                    return None
                given = argv[i]
                i += 1
            ok, value = flag.value(given)
            if not ok:
                return None
            if flag.append:
                values[flag.dest].append(value)
            else:
                values[flag.dest] = value
    # argparse's positionals: the first is the pattern, the rest are paths (argparse leaves those after a
    # flag over, and `lens.cli` appends them to `paths`, in order).
    values["pattern"] = positionals[0] if positionals else None
    values["paths"] = positionals[1:]
    return values
