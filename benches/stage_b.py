"""Stage-B benchmarks: latency, the cache on a repeated-query workload, and the Linux kernel.

    python benches/stage_b.py dev    [--corpus .lens-eval/cpython-lib]
    python benches/stage_b.py kernel [--src DIR] [--index /tmp/lens-kernel] [--build]

`dev` builds the dev corpus (the shared golden set's tree), then measures Stage-B time
(`timings_ms["stage_b"]`) on the 300 identifier queries, uncached and warm, and the lookup cache's
hit rate on a repeated-query workload: 3,000 queries drawn with a Zipf(1.1) law over those 300 names
(a few names asked often, most rarely, as in an editor's go-to-definition traffic), seeded.

`kernel` picks 300 function names defined exactly once in the kernel, with a regex that is independent
of lens's tree-sitter extraction (a line starting in column 0 with a type and `name(`, a parameter list
without `;`, and the body's `{` alone on the next line: the kernel's coding style for function
definitions), sampled with a fixed seed, and checks that the first hit of `search(name, mode="auto")`
is that definition line. `--build` (re)builds the index first and reports the build time with symbols;
`--touch FILE` then appends a comment to FILE (in a writable copy of the tree) and times the refresh.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import lens
from lens.guard import percentile

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

# Column 0: optional type words / stars, the name, "(", parameters without ; { }, ")", newline, "{".
KERNEL_DEF = re.compile(rb"^[A-Za-z_][\w \t\*]*?\b([A-Za-z_]\w*)\(([^;{}]*?)\)[ \t]*\n\{", re.M)
NOT_TYPES = {b"if", b"for", b"while", b"switch", b"return", b"sizeof"}


def summary(xs: list[float]) -> dict[str, float]:
    ordered = sorted(xs)
    return {
        **{f"p{p}": round(percentile(ordered, p), 3) for p in (50, 95, 99)},  # type: ignore[arg-type]
        "mean": round(statistics.fmean(xs), 3),
    }


def stage_b_ms(idx: lens.Index, queries: list[str], k: int = 50) -> list[float]:
    return [idx.search(q, k=k, mode="auto").timings_ms["stage_b"] for q in queries]


def dev(args: argparse.Namespace) -> dict[str, Any]:
    corpus = Path(args.corpus)
    queries = [json.loads(line) for line in (SHARED / "eval/dev/queries.jsonl").read_text().splitlines()]
    names = [q["query"] for q in queries if q["kind"] == "ident"]
    t = time.perf_counter()
    idx = lens.Index.build(corpus, Path(args.index), semantic=False)
    build_s = time.perf_counter() - t
    for q in names[:20]:  # warm the process and the page cache, not the lookup cache
        idx.search(q + "_warmup_", k=5)
    idx._native.clear_cache()
    uncached = stage_b_ms(idx, names)
    warm = stage_b_ms(idx, names)
    # The repeated-query workload, on a fresh cache.
    idx._native.clear_cache()
    before = idx.cache_stats()["lookups"]
    rng = random.Random(42)
    weights = [1 / (r + 1) ** 1.1 for r in range(len(names))]
    order = names[:]
    rng.shuffle(order)
    workload = rng.choices(order, weights=weights, k=3000)
    mixed = stage_b_ms(idx, workload)
    after = idx.cache_stats()["lookups"]
    hits, misses = after["hits"] - before["hits"], after["misses"] - before["misses"]
    pats = [r"def \w+_date", r"class \w+Error", "import os", r"\bself\.\w+ = None"]
    for p in rng.choices(pats, k=200):
        idx.grep(p, limit=100)
    cs = idx.cache_stats()
    return {
        "corpus": str(corpus),
        "build_s": round(build_s, 2),
        "symbols": _sym(idx),
        "stage_b_ms_uncached": summary(uncached),
        "stage_b_ms_warm": summary(warm),
        "workload": {
            "queries": len(workload),
            "distinct": len(set(workload)),
            "hits": hits,
            "misses": misses,
            "hit_rate": round(hits / (hits + misses), 4),
            "stage_b_ms": summary(mixed),
        },
        "patterns": {k: cs["patterns"][k] for k in ("hits", "misses", "hit_rate")}
        | {
            "pattern_compile_time_ms": round(cs["pattern_compile_time_ms"], 3),
            "pattern_compiles": cs["pattern_compiles"],
        },
        "cache": {k: cs[k] for k in ("hits", "misses", "hit_rate", "evictions", "bytes")},
    }


def _sym(idx: lens.Index) -> dict[str, Any]:
    s = idx.stats()
    sym = dict(s["symbols"])
    sym.pop("by_language", None)
    sym["index_bytes"] = s["index_bytes"]
    sym["build_seconds_total"] = s["build_seconds"]
    return sym


def kernel_gold(src: Path, cache: Path, n: int = 300) -> list[dict[str, Any]]:
    if cache.exists():
        return list(json.loads(cache.read_text()))
    found: dict[bytes, list[tuple[str, int]]] = {}
    for p in sorted(src.rglob("*.[ch]")):
        if not p.is_file() or p.stat().st_size > 1 << 20:
            continue
        data = p.read_bytes()
        for m in KERNEL_DEF.finditer(data):
            name = m.group(1)
            head = data[m.start() : m.start(1)]
            if name in NOT_TYPES or name.isupper() or not head.strip() or b"=" in head:
                continue
            line = data.count(b"\n", 0, m.start(1)) + 1
            found.setdefault(name, []).append((str(p.relative_to(src)), line))
    once = sorted(name for name, where in found.items() if len(where) == 1)
    rng = random.Random(0)
    picked = rng.sample(once, n)
    gold = [{"name": nm.decode(), "path": found[nm][0][0], "line": found[nm][0][1]} for nm in picked]
    cache.write_text(json.dumps(gold))
    print(
        f"kernel gold: {len(found)} names with a definition, {len(once)} defined once, {n} sampled",
        file=sys.stderr,
    )
    return gold


def kernel(args: argparse.Namespace) -> dict[str, Any]:
    src, index = Path(args.src), Path(args.index)
    out: dict[str, Any] = {}
    if args.build:
        t = time.perf_counter()
        idx = lens.Index.build(src, index, semantic=False)
        out["build_s"] = round(time.perf_counter() - t, 1)
    else:
        idx = lens.Index.open(index)
    out["symbols"] = _sym(idx)
    gold = kernel_gold(src, Path(args.gold))
    first = 0
    misses: list[dict[str, Any]] = []
    uncached: list[float] = []
    for g in gold:
        res = idx.search(g["name"], k=10, mode="auto")
        uncached.append(res.timings_ms["stage_b"])
        h = res.hits[0] if res.hits else None
        if h is not None and (h.path, h.line) == (g["path"], g["line"]):
            first += 1
        else:
            misses.append({**g, "got": f"{h.path}:{h.line} {h.why}" if h else None})
    warm = stage_b_ms(idx, [g["name"] for g in gold], k=10)
    if args.touch:
        # Refresh cost: one file changed (a comment appended), then put back. Needs a writable copy.
        touched = src / args.touch
        original = touched.read_bytes()
        try:
            touched.write_bytes(original + b"\n/* lens refresh benchmark */\n")
            t = time.perf_counter()
            counts = idx.refresh()
            out["refresh_one_file_s"] = round(time.perf_counter() - t, 2)
            out["refresh_counts"] = counts
        finally:
            touched.write_bytes(original)
        t = time.perf_counter()
        idx.refresh()
        out["refresh_restore_s"] = round(time.perf_counter() - t, 2)
    out.update(
        {
            "queries": len(gold),
            "definition_first": first,
            "definition_first_rate": round(first / len(gold), 4),
            "stage_b_ms_uncached": summary(uncached),
            "stage_b_ms_warm": summary(warm),
            "misses": misses[:15],
        }
    )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dev")
    d.add_argument("--corpus", default=str(REPO / ".lens-eval/cpython-lib"))
    d.add_argument("--index", default="/tmp/lens-bench-dev")
    k = sub.add_parser("kernel")
    k.add_argument("--src", default="/work/corpora/linux-source-6.1")
    k.add_argument("--index", default="/tmp/lens-kernel")
    k.add_argument("--gold", default="/tmp/lens-kernel-gold.json")
    k.add_argument("--build", action="store_true")
    k.add_argument("--touch", help="a file under --src to change, to time a refresh (needs a writable copy)")
    a = ap.parse_args()
    result = dev(a) if a.cmd == "dev" else kernel(a)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
