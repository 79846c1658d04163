"""Type stubs for the native core, `lens._lens`. Use the public API in `lens` instead."""

from collections.abc import Callable
from os import PathLike

INDEX_FORMAT_VERSION: int
__version__: str

# (path, line, column, byte_start, byte_end, text, score, why)
HitTuple = tuple[str, int, int, int, int, str, float, tuple[str, ...]]

class NativeIndex:
    """An opened index. Safe to share between threads; every method releases the GIL."""

    @staticmethod
    def build(
        root: str | PathLike[str],
        index_dir: str | PathLike[str],
        max_file_bytes: int,
        progress: Callable[[int, int], object] | None = None,
        exclude: list[str] = ...,
    ) -> NativeIndex:
        """Index `root` into `index_dir`; `progress(done_bytes, total_bytes)` is called as files are read;
        `exclude` holds extra gitignore-style globs to leave out."""

    @staticmethod
    def open(index_dir: str | PathLike[str]) -> NativeIndex:
        """Open an index; raises IndexCorruptError / IndexVersionError / FileNotFoundError."""

    def search(
        self, query: str, k: int, budget_ms: float | None = None, native: bool = True
    ) -> tuple[list[HitTuple], bool, dict[str, int | bool]]:
        """Ranked search: (hits best first, truncated, info about candidates and early termination)."""

    def grep(
        self,
        pattern: str,
        regex: bool = True,
        ignore_case: bool = False,
        word: bool = False,
        limit: int | None = None,
        native: bool = True,
    ) -> list[HitTuple]:
        """Exhaustive grep, one hit per matching line, in path then offset order."""

    def refresh(self, progress: Callable[[int, int], object] | None = None) -> dict[str, int | bool]:
        """Re-index what changed on disk; counts of added / changed / removed / unchanged files."""

    def stats(self) -> dict[str, object]:
        """Files, bytes, skipped files by reason, index bytes, build seconds, format version."""

    def verify(self) -> None:
        """Check every checksum of every segment; raises IndexCorruptError on a mismatch."""

    def counters(self) -> dict[str, int]:
        """What searches did since the index was opened: early terminations, candidates, visits."""

    @property
    def index_dir(self) -> str: ...
    @property
    def root(self) -> str: ...
