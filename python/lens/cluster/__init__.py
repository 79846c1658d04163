"""lens over Ray (issue 14; the `lens[ray]` extra): a sharded set built by Ray tasks and served by Ray
actors, searched like one `Index`.

- `build(sources, dest, *, shards=None, address=None, progress=True)`: one Ray task per shard, then the
  set's global statistics and one manifest (`lens.cluster.manifest`).
- `open(dest, *, replicas=1, address=None)` -> `ClusterIndex` (`search`, `grep`, `definitions`,
  `stats`, `dashboard`, `refresh`).
- `embed(dest)`: Stage-C's vectors for every shard, one Ray task each (a GPU each where there are GPUs),
  with chunks per second per worker.

Importing this package does not import Ray; the first `build` or `open` does (and says what to install
when it is missing). `import lens` never imports this package.
"""

from __future__ import annotations

from .build import build, plan_shards
from .embed import embed
from .manifest import SetManifest, ShardEntry
from .serve import ClusterIndex, open_set

#: `lens.cluster.open(dest)`, as `Index.open(index_dir)`.
open = open_set

__all__ = ["ClusterIndex", "SetManifest", "ShardEntry", "build", "embed", "open", "plan_shards"]
