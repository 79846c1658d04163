"""An `evaluate.py --engine` that keeps its indexes between runs (for iterating on Stage-C; `make eval`
itself builds fresh ones).

    LENS_EVAL_CACHE=/tmp/lens-eval-idx PYTHONPATH=scripts python ../shared/eval/evaluate.py \\
        --engine eval_cached:CachedIndex --corpus ... --nodoc ... --queries ...

An index is kept per corpus (by the root's directory name) under `LENS_EVAL_CACHE` and opened when it is
already there; `LENS_EVAL_SEMANTIC=0` builds new ones without vectors.

The guard's Stage-A latency SLO is raised for the run (as in `benches/stage_c.py`): on a machine shared
with other jobs a Stage-A latency trip would shed Stage-C for a stretch of queries, and the quality
figures would measure the machine's load instead of the ranking.
"""

from __future__ import annotations

import os
from pathlib import Path

import lens

lens.guard.slos.stage_a.p95_ms = 1e6
lens.guard.slos.stage_a.tail_ratio = None


class CachedIndex:
    @staticmethod
    def build(root: str | os.PathLike[str], index_dir: str | os.PathLike[str]) -> lens.Index:
        cache = Path(os.environ.get("LENS_EVAL_CACHE", str(index_dir))) / Path(root).name
        if (cache / "MANIFEST").is_file():
            return lens.Index.open(cache)
        semantic = None if os.environ.get("LENS_EVAL_SEMANTIC", "1") != "0" else False
        return lens.Index.build(root, cache, semantic=semantic)
