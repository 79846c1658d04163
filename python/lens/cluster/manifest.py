"""The set manifest: one JSON file (`LENS_SET.json`) describing a sharded set on shared storage.

It names every shard (id, source root, the top-level entries it leaves out of that root, its index
directory, counts, whether its build succeeded), the index format the shards were written in, and the
set's global statistics (documents, per-field length sums, the df file beside the manifest). It is
written to a temporary name, fsynced and renamed, so a reader sees the old manifest or the new one,
never half of one. A manifest that is not valid JSON of the expected shape is `IndexCorruptError`; one
from a newer set format is `IndexVersionError`, as with a single `Index`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import IndexCorruptError, IndexVersionError

__all__ = ["DF_FILE", "MANIFEST", "SET_FORMAT", "SetManifest", "ShardEntry", "read", "write"]

#: The set manifest's file name in the set directory.
MANIFEST = "LENS_SET.json"
#: The set-wide term -> document-frequency file (an `fst` map), beside the manifest.
DF_FILE = "global.df"
#: The set's canary state (share, kill switch), beside the manifest: it holds every shard's actor.
STATE_DIR = "state"
#: The set's flag overrides (`ClusterIndex.set_flags`), in the state directory.
FLAGS_FILE = "flags.json"
#: Version of this manifest's layout.
SET_FORMAT = 1


@dataclass
class ShardEntry:
    """One shard: `id` names it everywhere (result info, errors, the dashboard)."""

    id: str
    root: str
    #: Top-level entries of `root` this shard leaves to other shards (gitignore globs, anchored).
    exclude: list[str]
    #: The shard's index directory, relative to the set directory.
    dir: str
    status: str = "ok"  # "ok" or "failed"
    error: str | None = None
    attempts: int = 0
    files: int = 0
    bytes: int = 0
    docs: int = 0
    len_sums: list[int] = field(default_factory=lambda: [0] * 5)
    build_seconds: float = 0.0


@dataclass
class SetManifest:
    shards: list[ShardEntry]
    index_format: int
    set_format: int = SET_FORMAT
    generation: int = 1
    #: Set-wide statistics (None until gathered): documents, per-field length sums, distinct terms.
    stats: dict[str, Any] | None = None

    def ok_shards(self) -> list[ShardEntry]:
        return [s for s in self.shards if s.status == "ok"]

    def failed(self) -> dict[str, str]:
        return {s.id: s.error or "failed" for s in self.shards if s.status != "ok"}


def write(set_dir: Path, m: SetManifest) -> None:
    """Atomically replaces `set_dir/LENS_SET.json`."""
    tmp = set_dir / (MANIFEST + ".tmp")
    data = json.dumps(asdict(m), indent=1, sort_keys=True)
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, set_dir / MANIFEST)
    fd = os.open(set_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_flags(set_dir: Path) -> dict[str, Any]:
    """The set's flag overrides; empty when none were set. A damaged file raises `IndexCorruptError`."""
    path = set_dir / STATE_DIR / FLAGS_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IndexCorruptError(f"corrupt set flags {path}: {e}", path) from None
    if not isinstance(raw, dict):
        raise IndexCorruptError(f"corrupt set flags {path}: not an object", path)
    return raw


def write_flags(set_dir: Path, values: dict[str, Any]) -> None:
    """Atomically replaces the set's flag overrides."""
    state = set_dir / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    tmp = state / (FLAGS_FILE + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(values, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, state / FLAGS_FILE)


def read(set_dir: Path) -> SetManifest:
    """Reads and checks the manifest; `FileNotFoundError` when the set directory or its manifest is
    missing, `IndexCorruptError` when it is damaged, `IndexVersionError` when it is newer than this
    lens reads."""
    path = set_dir / MANIFEST
    if not set_dir.is_dir():
        raise FileNotFoundError(2, "No such file or directory", str(set_dir))
    if not path.is_file():
        raise FileNotFoundError(2, "No such file or directory (not a lens set: no manifest)", str(path))
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IndexCorruptError(f"corrupt set manifest {path}: {e}", path) from None
    if not isinstance(raw, dict):
        raise IndexCorruptError(f"corrupt set manifest {path}: not an object", path)
    version = raw.get("set_format")
    if isinstance(version, int) and version > SET_FORMAT:
        raise IndexVersionError(
            f"set manifest {path} has format {version}; this lens reads {SET_FORMAT} (upgrade lens)",
            path,
            version,
            SET_FORMAT,
        )
    try:
        if version != SET_FORMAT:
            raise ValueError(f"set_format {version!r}")
        shards = [ShardEntry(**s) for s in raw["shards"]]
        m = SetManifest(
            shards=shards,
            index_format=int(raw["index_format"]),
            set_format=version,
            generation=int(raw["generation"]),
            stats=raw.get("stats"),
        )
        ids = [s.id for s in shards]
        if len(set(ids)) != len(ids) or not shards:
            raise ValueError("shard ids must be present and unique")
        for s in shards:
            if not isinstance(s.id, str) or not isinstance(s.dir, str) or Path(s.dir).is_absolute():
                raise ValueError(f"bad shard entry {s.id!r}")
            if ".." in Path(s.dir).parts:
                raise ValueError(f"shard {s.id!r} points outside the set")
    except (KeyError, TypeError, ValueError) as e:
        raise IndexCorruptError(f"corrupt set manifest {path}: {e}", path) from None
    return m
