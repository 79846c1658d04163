"""Stage-C at scale (issue 14): four shards of the nodoc dev corpus (one per directory json, email, http,
urllib) embedded by `lens.cluster.embed` on a local Ray; prints the chunks/s per shard and per worker.

    ../shared/eval/prepare_dev.sh /tmp/i14-dev && python benches/cluster_embed.py /tmp/i14-dev
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import ray

import lens.cluster as lc


def main() -> None:
    dev = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/i14-dev")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    root = dev / "cpython-lib-nodoc"
    roots = [root / d for d in ("json", "email", "http", "urllib")]
    dest = Path("/tmp/lens-embed-set")
    shutil.rmtree(dest, ignore_errors=True)
    print(json.dumps(lc.build(roots, dest, progress=False, cpus_per_shard=1)))
    print("load", os.getloadavg())
    print(json.dumps(lc.embed(dest, cpus_per_shard=1), indent=1))
    print("load", os.getloadavg())


if __name__ == "__main__":
    main()
