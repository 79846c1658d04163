"""argparse's parser and help formatter as the `lens` command builds them (lens.cli): the terminal's width
asked once per formatter without shutil. Imported only when a command line needs argparse (lens.cli
reads a plain `lens grep` without it)."""

from __future__ import annotations

import argparse
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Formatter", "Parser"]


def _terminal_columns() -> int:
    """The terminal's width as `shutil.get_terminal_size` finds it ($COLUMNS, then stdout's terminal,
    else 80), without importing shutil (and with it bz2, lzma and zlib) on every command's start."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class Formatter(argparse.HelpFormatter):
    """argparse builds a help formatter for every `add_argument` (to check the metavar), and the default
    one asks shutil for the terminal width each time; this one asks `_terminal_columns`."""

    def __init__(
        self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None
    ) -> None:
        super().__init__(
            prog, indent_increment, max_help_position, _terminal_columns() - 2 if width is None else width
        )


class Parser(argparse.ArgumentParser):
    """An `ArgumentParser` whose subcommands' parsers (made with its class) share `Formatter`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", Formatter)
        super().__init__(*args, **kwargs)
