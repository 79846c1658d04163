"""Two builds of lens on two indexes of one tree (a format change): the same answers, and the CPU each
query kind costs. Run it once per build, alternately (the older build's package on PYTHONPATH), then
compare the answers files.

    python benches/format_check.py INDEX OUT.json [--questions Q.jsonl] [--names GOLD.json]

Times, single-threaded and warm (a pass of each first), two passes of: the kernel questions
(`search(q, k=50, mode="lex")`), identifier names (`search(name, k=10, mode="auto")`; the names file is
`benches/stage_b.py kernel --gold`'s JSON) and ripgrep's benchsuite `linux_*` greps (`grep`), each as
thread-CPU and wall ms p50/p95/p99. Writes the timings to OUT and every answer (path, line, score) to
OUT with `-answers` before `.json`, and the CPU time of `Index.open`.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lens
from lens.guard import percentile

GREPS = [  # (pattern, regex, ignore_case, word): the benchsuite's linux_* queries (kernel_vs_rg.py)
    ("PM_RESUME", False, False, False),
    ("PM_RESUME", False, True, False),
    ("PM_RESUME", False, False, True),
    ("[A-Z]+_RESUME", True, False, False),
    ("ERR_SYS|PME_TURN_OFF|LINK_REQ_RST|CFG_BME_EVT", True, False, False),
    ("ERR_SYS|PME_TURN_OFF|LINK_REQ_RST|CFG_BME_EVT", True, True, False),
    (r"\wAh", True, False, False),
]


def summary(xs: list[float]) -> dict[str, float]:
    s = sorted(xs)
    out = {f"p{p}": round(percentile(s, p) or 0.0, 3) for p in (50, 95, 99)}
    return {**out, "mean": round(sum(s) / len(s), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("index", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--questions", type=Path, default=Path("/work/kq-full/queries.jsonl"))
    ap.add_argument("--names", type=Path)
    a = ap.parse_args()
    lens.guard.slos.stage_a.p95_ms = float("inf")  # time the native paths only
    t0 = time.process_time()
    idx = lens.Index.open(a.index)
    res: dict[str, Any] = {"lens": lens.__file__, "open_cpu_s": round(time.process_time() - t0, 3)}
    questions = [json.loads(line)["query"] for line in a.questions.read_text().splitlines() if line.strip()]
    names = [g["name"] for g in json.loads(a.names.read_text())] if a.names else []
    kinds: list[tuple[str, list[Any], Callable[[Any], Any]]] = [
        ("questions", questions, lambda q: idx.search(q, k=50, mode="lex").hits),
        ("names", names, lambda q: idx.search(q, k=10, mode="auto").hits),
        ("grep", GREPS, lambda g: idx.grep(g[0], regex=g[1], ignore_case=g[2], word=g[3])),
    ]
    answers: dict[str, list[Any]] = {}
    for kind, items, call in kinds:
        if not items:
            continue
        for it in items:
            hits = call(it)
            answers[f"{kind}:{it}"] = [(h.path, h.line, round(getattr(h, "score", 0) or 0, 6)) for h in hits]
        cpu: list[float] = []
        wall: list[float] = []
        for _ in range(2):
            for it in items:
                w, c = time.perf_counter(), time.thread_time()
                call(it)
                cpu.append((time.thread_time() - c) * 1e3)
                wall.append((time.perf_counter() - w) * 1e3)
        res[kind] = {"cpu_ms": summary(cpu), "wall_ms": summary(wall), "n": len(cpu)}
    a.out.write_text(json.dumps(res, indent=1) + "\n")
    a.out.with_name(a.out.stem + "-answers.json").write_text(json.dumps(answers))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
