"""`lens.cluster.embed`: Stage-C's vectors for every shard of a set, one Ray task per shard.

Each task opens its shard and calls Stage-C's own entry point (`lens.rerank.build_for`, which embeds
the shard's definitions with the shipped model and writes the vectors beside the shard's index), with
one GPU reserved when the cluster has GPUs (`num_gpus=1`: onnxruntime's CUDA provider is used when
installed) and `cpus_per_shard` CPUs otherwise. The report gives chunks (definitions embedded) per
second for every shard and for every worker (host and process) that ran one.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from . import manifest as mf
from ._ray import connect

__all__ = ["embed"]


def _embed_shard(set_dir: str, shard_dir: str) -> dict[str, Any]:
    """A Ray task: embeds one shard's definitions; returns Stage-C's figures and who ran it."""
    from .. import rerank
    from ..index import Index

    rerank.require()
    started = time.perf_counter()
    meta = rerank.build_for(Index.open(str(Path(set_dir) / shard_dir)))
    seconds = time.perf_counter() - started
    figures = {k: meta.get(k) for k in ("embedded", "reused", "embed_seconds", "chunks_per_second", "device")}
    return {**figures, "seconds": round(seconds, 3), "worker": f"{socket.gethostname()}:{os.getpid()}"}


def embed(
    dest: str | os.PathLike[str],
    *,
    address: str | None = None,
    cpus_per_shard: int = 2,
    timeout_s: float = 24 * 3600.0,
) -> dict[str, Any]:
    """Compute Stage-C's vectors for every usable shard of the set at `dest` (needs `lens[semantic]`
    on every worker). Returns `shards` (each shard's Stage-C figures), `workers` (chunks, seconds and
    chunks/s per worker) and totals."""
    ray = connect(address)
    set_dir = Path(dest)
    m = mf.read(set_dir)
    gpus = float(ray.cluster_resources().get("GPU", 0.0))
    cpus = max(1, min(cpus_per_shard, int(ray.cluster_resources().get("CPU", 1))))
    opts: dict[str, Any] = {"num_gpus": 1, "num_cpus": 1} if gpus >= 1 else {"num_cpus": cpus}
    task = ray.remote(max_retries=1, retry_exceptions=True, **opts)(_embed_shard)
    shards = m.ok_shards()
    started = time.perf_counter()
    results = ray.get([task.remote(str(set_dir), s.dir) for s in shards], timeout=timeout_s)
    per = {s.id: r for s, r in zip(shards, results, strict=True)}
    workers: dict[str, dict[str, float]] = {}
    for r in per.values():
        w = workers.setdefault(r["worker"], {"chunks": 0, "seconds": 0.0})
        w["chunks"] += int(r["embedded"] or 0)
        w["seconds"] += float(r["embed_seconds"] or 0.0)
    for w in workers.values():
        w["chunks_per_second"] = round(w["chunks"] / w["seconds"], 1) if w["seconds"] else 0.0
    chunks = sum(int(r["embedded"] or 0) for r in per.values())
    wall = time.perf_counter() - started
    return {
        "shards": per,
        "workers": workers,
        "chunks": chunks,
        "seconds": round(wall, 3),
        "chunks_per_second": round(chunks / wall, 1) if wall else 0.0,
        "gpu": gpus >= 1,
    }
