"""Shared helpers for the ops tests: a small stdlib golden set and a real uvicorn on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lens.ops.golden import GoldenSet, stdlib_golden_set

#: Small enough for seconds-long runs, large enough for every gate's sample minimum (24 queries,
#: 24 x 9 = 216 timed candidate searches with `REPEATS`).
GOLDEN_FILES, GOLDEN_QUERIES, REPEATS = 15, 12, 9
SMALL = [
    "--golden-files",
    str(GOLDEN_FILES),
    "--golden-queries",
    str(GOLDEN_QUERIES),
    "--repeats",
    str(REPEATS),
]


def small_golden(cache: Path) -> GoldenSet:
    return stdlib_golden_set(cache, files=GOLDEN_FILES, per_kind=GOLDEN_QUERIES)


@contextmanager
def running_server(app: Any) -> Iterator[str]:
    """Serve `app` with uvicorn on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not t.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        t.join(timeout=10)
