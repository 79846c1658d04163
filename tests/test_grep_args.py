"""`lens grep`'s command line read without argparse (`lens._grepargs.parse_plain`) against argparse's own
reading of it through `lens.cli` (the grep parser, then the extra positionals appended to `paths`): for
every command line the plain reader takes, the same namespace; for every one argparse refuses (or whose
leftovers `lens.cli` refuses), the plain reader declines, so argparse's help, errors and exit status
stay the command's."""

from __future__ import annotations

import contextlib
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lens._grepargs import GREP_ARGS, parse_plain
from lens._grepcli import cmd_grep
from lens.cli import build_parser
from tests.test_cli_rg import FLAG_SETS

_OPTIONS = [name for names, _ in GREP_ARGS for name in names if name.startswith("-")]
_SHORT_NO_VALUE = "nNHIFisSwlco"
_SHORT_VALUE = "ACBmgtT"


def _argparse(argv: list[str]) -> dict[str, object] | None:
    """What `lens.cli` gets from argparse for `lens grep ARGV`, or None where it would stop with an error."""
    parser = build_parser(ops=False, only="grep")
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            a, extra = parser.parse_known_args(["grep", *argv])
        except SystemExit:
            return None
    if extra and any(x.startswith("-") for x in extra):
        return None
    a.paths += extra
    return vars(a)


def _same(argv: list[str]) -> dict[str, object] | None:
    plain = parse_plain(argv)
    want = _argparse(argv)
    if plain is not None:
        assert want is not None, f"{argv}: argparse refuses what the plain reader took"
        assert {"command": "grep", "func": cmd_grep, **plain} == want, argv
    return plain


PLAIN = [
    *FLAG_SETS,
    ["-nH", "needle"],
    ["-nA3", "needle", "src"],
    ["-A3", "-B", "0", "needle"],
    ["needle", "-n", "src", "a.py", "--column", "docs"],
    ["needle", "src", "-n", "a.py"],
    ["--index=.lens", "needle"],
    ["--index", ".lens", "--color=never", "needle"],
    ["-g", "*.py", "--glob=!a/", "-t", "py", "--type-not=rust", "-T", "c", "needle"],
    ["-i", "-s", "-S", "Needle"],
    ["-n", "-N", "--column", "--no-column", "--heading", "--no-heading", "-H", "-I", "x"],
    ["-m", "0", "x"],
    ["-A-1", "x"],
    ["--sort", "path", "--limit", "5", "--json", "x"],
    ["--files", "src"],
    ["--version"],
    [],
    ["", "a b"],
    ["x", "--colour", "ansi"],
]

DECLINED = [
    ["-h"],
    ["--help"],
    ["--line", "x"],  # an abbreviation: argparse's to expand
    ["--col", "x"],  # ambiguous
    ["--bogus", "x"],
    ["-Z", "x"],
    ["-nZ", "x"],
    ["--", "-x"],
    ["-", "x"],
    ["-A", "x", "y"],
    ["-A"],
    ["-m", "-1", "x"],  # argparse reads -1 as a value here (then cmd_grep refuses it): left to argparse
    ["--color", "sometimes", "x"],
    ["--sort=size", "x"],
    ["--count=1", "x"],
    ["--index=", "x"],
    ["-A=3", "x"],
    ["-g=*.py", "x"],
    ["-1", "x"],
]


@pytest.mark.parametrize("argv", PLAIN, ids=" ".join)
def test_plain_command_lines_read_as_argparse_reads_them(argv: list[str]) -> None:
    assert _same(argv) is not None


@pytest.mark.parametrize("argv", DECLINED, ids=" ".join)
def test_the_rest_goes_to_argparse(argv: list[str]) -> None:
    assert parse_plain(argv) is None


_TOKENS = st.one_of(
    st.sampled_from(_OPTIONS),
    st.sampled_from(["-" + "".join(p) for p in ("nH", "iw", "lc", "Fo", "sS")]),
    st.builds(lambda a, b: f"-{a}{b}", st.sampled_from(_SHORT_NO_VALUE), st.sampled_from(_SHORT_VALUE)),
    st.builds(lambda a, v: f"-{a}{v}", st.sampled_from(_SHORT_VALUE), st.sampled_from(["3", "0", "-2", "x"])),
    st.builds(lambda o, v: f"{o}={v}", st.sampled_from(_OPTIONS), st.sampled_from(["3", "", "never", "p"])),
    st.sampled_from(
        ["needle", "src", "3", "-1", "0", "never", "path", "", "a b", "-", "--", "x=y", "-=", "-n="]
    ),
    st.sampled_from(["--line", "--col", "--no-", "--files-with", "-Z", "--bogus", "-h", "--help"]),
)


@settings(max_examples=600, deadline=None)
@given(st.lists(_TOKENS, max_size=7))
def test_any_command_line_the_plain_reader_takes_argparse_reads_alike(argv: list[str]) -> None:
    _same(argv)
