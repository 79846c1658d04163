"""`lens.cluster.build`: a sharded set built by Ray tasks, then its global statistics.

1. **Plan.** A list of roots gives one shard per root; one root is split by size into shards of whole
   top-level entries (largest first into the lightest shard), each shard being the root with the other
   shards' entries excluded, so every shard reports paths relative to the same root as one index would.
2. **Build.** One Ray task per shard runs `Index.build` (native, GIL released) with `cpus_per_shard`
   CPUs reserved and `RAYON_NUM_THREADS` set to match. A task that raises is retried once by Ray
   (`max_retries=1, retry_exceptions=True`); a shard that fails twice is recorded as failed, by name,
   in the manifest and the report, and the others are kept. Per-shard progress goes to a small actor,
   and the driver draws one bar for the set.
3. **Global statistics.** Each task returns its shard's documents and per-field length sums (recorded
   as the term files were written); the driver sums them, writes the set's df file (term -> documents
   over every shard), and a second round of tasks rewrites each shard's term files with the set's
   average field lengths, so that a shard scores exactly as one index over the whole set would.
4. **Commit.** The set manifest is written last, atomically.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .. import _lens
from .._log import get_logger
from ..progress import ProgressBar
from . import manifest as mf
from ._ray import connect

__all__ = ["ShardPlan", "build", "plan_shards", "refresh_shard"]

_log = get_logger("lens.cluster")

#: Default shard size when one root is split and `shards` is not given.
SHARD_TARGET_BYTES = 256 << 20

ShardPlan = mf.ShardEntry


def _tree_bytes(path: Path) -> int:
    if path.is_symlink():
        return 0
    if path.is_file():
        return path.stat().st_size
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for f in filenames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


def _glob_escape(name: str) -> str:
    return "".join("\\" + c if c in "*?[]{}!\\" else c for c in name)


def plan_shards(
    sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    dest: Path,
    shards: int | None = None,
) -> list[mf.ShardEntry]:
    """The shards of a set: one per root when `sources` is a list, else `shards` groups of the root's
    top-level entries balanced by size (default: one per `SHARD_TARGET_BYTES`)."""
    if isinstance(sources, (str, os.PathLike)):
        root = Path(sources).resolve()
        if not root.is_dir():
            raise (FileNotFoundError if not root.exists() else NotADirectoryError)(
                2 if not root.exists() else 20, "No such source directory", str(root)
            )
        entries = sorted(p for p in root.iterdir())
        dest_r = dest.resolve()
        entries = [p for p in entries if not (dest_r == p or p in dest_r.parents)]
        sizes = {p.name: (0 if p.name.startswith(".") else _tree_bytes(p)) for p in entries}
        if shards is None:
            shards = max(1, -(-sum(sizes.values()) // SHARD_TARGET_BYTES))
        if shards < 1:
            raise ValueError("shards must be >= 1")
        shards = min(shards, max(1, len(entries)))
        bins: list[list[str]] = [[] for _ in range(shards)]
        load = [0] * shards
        for name in sorted(sizes, key=lambda n: (-sizes[n], n)):
            i = min(range(shards), key=lambda j: (load[j], j))
            bins[i].append(name)
            load[i] += sizes[name]
        bins = sorted((sorted(b) for b in bins if b), key=lambda b: b[0])
        names = [p.name for p in entries]
        extra = []
        if root in dest_r.parents:  # the set lives inside the root: no shard indexes it
            extra = ["/" + _glob_escape(dest_r.relative_to(root).as_posix())]
        out = []
        for i, b in enumerate(bins):
            keep = set(b)
            exclude = ["/" + _glob_escape(n) for n in names if n not in keep] + extra
            sid = f"shard-{i:03d}"
            out.append(mf.ShardEntry(id=sid, root=str(root), exclude=exclude, dir=f"shards/{sid}"))
        return out
    roots = [Path(s).resolve() for s in sources]
    if not roots:
        raise ValueError("sources is empty")
    if shards is not None and shards != len(roots):
        raise ValueError("with a list of roots there is one shard per root; leave shards=None")
    out, seen = [], set()
    for r in roots:
        base = "".join(c if c.isalnum() or c in "-_." else "_" for c in r.name) or "root"
        sid, n = base, 1
        while sid in seen:
            n += 1
            sid = f"{base}-{n}"
        seen.add(sid)
        out.append(mf.ShardEntry(id=sid, root=str(r), exclude=[], dir=f"shards/{sid}"))
    return out


class _ProgressSink:
    """A Ray actor: the latest (phase, done, total) of each shard and how many attempts it had."""

    def __init__(self) -> None:
        self.state: dict[str, tuple[str, int, int]] = {}
        self.attempts: dict[str, int] = {}

    def attempt(self, shard: str) -> None:
        self.attempts[shard] = self.attempts.get(shard, 0) + 1

    def update(self, shard: str, phase: str, done: int, total: int) -> None:
        self.state[shard] = (phase, done, total)

    def read(self) -> tuple[dict[str, tuple[str, int, int]], dict[str, int]]:
        return self.state, self.attempts


def _build_shard(
    set_dir: str, entry: dict[str, Any], sink: Any, max_file_bytes: int, symbols: bool
) -> dict[str, Any]:
    """A Ray task: builds one shard's index; returns its counts and field-length sums."""
    import ray

    from ..index import Index

    sid = entry["id"]
    ray.get(sink.attempt.remote(sid))  # counted before the attempt can fail
    last = [0.0]

    def report(done: int, total: int, phase: str) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.25 or done >= total:
            last[0] = now
            sink.update.remote(sid, phase, done, total)

    if os.environ.get("LENS_CLUSTER_FAIL_SHARDS") and sid in os.environ["LENS_CLUSTER_FAIL_SHARDS"].split(
        ","
    ):
        raise RuntimeError(f"shard {sid}: failure injected by LENS_CLUSTER_FAIL_SHARDS")
    started = time.perf_counter()
    out = Path(set_dir) / entry["dir"]
    idx = Index.build(
        entry["root"],
        out,
        max_file_bytes=max_file_bytes,
        progress=report,
        exclude=entry["exclude"],
        symbols=symbols,
    )
    st = idx.stats()
    lengths = _lens.recorded_term_lengths(str(out))
    docs, sums = lengths if lengths is not None else (0, [0] * 5)
    return {
        "files": int(st["files"]),
        "bytes": int(st["bytes"]),
        "docs": int(docs),
        "len_sums": [int(x) for x in sums],
        "build_seconds": round(time.perf_counter() - started, 3),
    }


def _rewrite_terms(set_dir: str, shard_dir: str, stats: dict[str, Any]) -> int:
    """A Ray task: rewrites one shard's term files with the set's statistics."""
    d = str(Path(set_dir) / shard_dir)
    _lens.set_global_stats(d, stats["docs"], str(Path(set_dir) / mf.DF_FILE), stats["len_sums"])
    try:
        return int(_lens.rewrite_terms(d))
    finally:
        _lens.clear_global_stats(d)


def refresh_shard(set_dir: str, shard_dir: str, stats: dict[str, Any] | None) -> dict[str, int]:
    """A Ray task: refreshes one shard, writing new term files with the set's statistics."""
    from ..index import Index

    d = str(Path(set_dir) / shard_dir)
    if stats is not None:
        _lens.set_global_stats(d, stats["docs"], str(Path(set_dir) / mf.DF_FILE), stats["len_sums"])
    try:
        return Index.open(d).refresh()
    finally:
        _lens.clear_global_stats(d)


def gather_stats(set_dir: Path, entries: list[mf.ShardEntry]) -> dict[str, Any]:
    """Writes the set's df file over `entries` (the usable shards) and returns the set's statistics."""
    docs, terms = _lens.write_global_df([str(set_dir / e.dir) for e in entries], str(set_dir / mf.DF_FILE))
    sums = [sum(e.len_sums[f] for e in entries) for f in range(5)]
    if docs != sum(e.docs for e in entries):
        # A shard's recorded lengths do not cover its term files (an index opened, not built, here).
        raise RuntimeError("set statistics disagree with the shards' term files; rebuild the set")
    return {"docs": int(docs), "terms": int(terms), "len_sums": sums, "df_file": mf.DF_FILE}


def shard_task(ray: Any, fn: Callable[..., Any], cpus: float) -> Any:
    """`fn` as a Ray task over one shard: `cpus` CPUs reserved, the native build's thread pool sized to
    match, and one retry of a task that raises."""
    return ray.remote(
        num_cpus=cpus,
        max_retries=1,
        retry_exceptions=True,
        runtime_env={"env_vars": {"RAYON_NUM_THREADS": str(max(1, int(cpus)))}},
    )(fn)


def build(
    sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    dest: str | os.PathLike[str],
    *,
    shards: int | None = None,
    address: str | None = None,
    progress: bool = True,
    cpus_per_shard: int = 2,
    max_file_bytes: int = 1 << 20,
    symbols: bool = True,
) -> dict[str, Any]:
    """Build a sharded set at `dest` (storage every node sees) with Ray tasks, then gather its global
    statistics and write its manifest. `sources` is a list of roots (one shard each) or one root split
    into `shards` by size. Returns a report: shard ids built, `failed` (id -> error) for shards that
    failed twice (the others stay usable), counts and seconds. `address` names a Ray cluster (None: the
    session in this process, or a local one)."""
    ray = connect(address)
    set_dir = Path(dest)
    if set_dir.exists() and not set_dir.is_dir():
        raise NotADirectoryError(20, "Not a directory", str(set_dir))
    set_dir.mkdir(parents=True, exist_ok=True)
    entries = plan_shards(sources, set_dir, shards)
    # No task may ask for more CPUs than the cluster has (it would wait for ever).
    cpus_per_shard = max(1, min(cpus_per_shard, int(ray.cluster_resources().get("CPU", 1))))
    (set_dir / "shards").mkdir(exist_ok=True)
    started = time.perf_counter()
    sink = ray.remote(num_cpus=0)(_ProgressSink).remote()
    task = shard_task(ray, _build_shard, cpus_per_shard)
    refs = {
        task.remote(
            str(set_dir),
            {"id": e.id, "root": e.root, "exclude": e.exclude, "dir": e.dir},
            sink,
            max_file_bytes,
            symbols,
        ): e
        for e in entries
    }
    bar = ProgressBar(f"building {len(entries)} shards") if progress else None
    pending = list(refs)
    try:
        while pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=0.5)
            if bar is not None:
                state, _ = ray.get(sink.read.remote())
                done = total = 0
                for phase, d, t in state.values():
                    done += d if phase == "reading" else t + d
                    total += 2 * t  # a shard's bytes are counted once read, once parsed
                total += sum(1 for e in entries if e.id not in state)
                bar(min(done, total), total, "shards")
    finally:
        if bar is not None:
            bar.close()
    _, attempts = ray.get(sink.read.remote())
    for ref, e in refs.items():
        e.attempts = attempts.get(e.id, 0)
        try:
            got = ray.get(ref)
        except Exception as err:  # the task's own error, after its retry
            cause = getattr(err, "cause", None) or err
            e.status, e.error = "failed", f"{type(cause).__name__}: {cause}"
            with contextlib.suppress(OSError):  # an empty shard directory (lens deletes only its own)
                (set_dir / e.dir).rmdir()
            _log.warning("shard_failed", shard=e.id, root=e.root, error=e.error, attempts=e.attempts)
            continue
        for k, v in got.items():
            setattr(e, k, v)
    ray.kill(sink)
    ok = [e for e in entries if e.status == "ok"]
    stats = None
    if ok:
        stats = gather_stats(set_dir, ok)
        if len(ok) > 1:
            rewrite = shard_task(ray, _rewrite_terms, cpus_per_shard)
            ray.get([rewrite.remote(str(set_dir), e.dir, stats) for e in ok])
    m = mf.SetManifest(shards=entries, index_format=int(_lens.INDEX_FORMAT_VERSION), stats=stats)
    with contextlib.suppress(OSError, ValueError):
        m.generation = mf.read(set_dir).generation + 1
    mf.write(set_dir, m)
    seconds = round(time.perf_counter() - started, 3)
    report = {
        "shards": [e.id for e in ok],
        "failed": m.failed(),
        "files": sum(e.files for e in ok),
        "bytes": sum(e.bytes for e in ok),
        "docs": stats["docs"] if stats else 0,
        "seconds": seconds,
        "shard_seconds": {e.id: e.build_seconds for e in ok},
        "attempts": {e.id: e.attempts for e in entries},
    }
    _log.info("set_built", set_dir=str(set_dir), **{k: v for k, v in report.items() if k != "shard_seconds"})
    return report
