"""`import lens` and `lens grep` end to end, beside ripgrep, in fresh processes (issue 12's import cost).

    python benches/cli_startup.py --corpus DIR [--runs 20] [--before PYTHONPATH [--before-corpus DIR2]
                                  [--before-command LENS]]

Builds DIR/.lens if missing, then times, in fresh processes: `python -c pass`; `import lens` (the
cumulative `-X importtime` figure for `lens`, and the wall time of `python -c "import lens"`); `lens grep
PATTERN` (wall, output to a pipe); `import lens; lens.Index.open(".lens")` (what a host pays before its
first query); and `rg PATTERN`. `--before` names the `python/` tree of an older lens (its PYTHONPATH
entry wins over the installed one) to time the same way, in `--before-corpus` (a copy of the corpus
whose index that lens built: an older lens cannot read a newer index format, nor the reverse), run by
`--before-command` (default: this environment's `lens`): the older console script, such as the wrapper
pip generated from lens's entry point before lens shipped its own (it imports `re` first, for
`sys.argv[0]`), copied with this interpreter on its `#!` line. Every command must succeed (a refused
index would otherwise time an error message). Each run takes every command once, in turn, so a busy
machine weighs on all of them alike. Reports min and median.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

BIN = Path(sys.executable).parent
IMPORTTIME = re.compile(r"\|\s*(\d+) \| lens$", re.M)


CPU: dict[str, list[float]] = defaultdict(list)


def _wall(cmd: list[str], cwd: Path, env: dict[str, str], name: str = "") -> float:
    """Wall ms; the child's CPU ms (user + system) go to CPU[name]: on a shared machine, wall time
    includes waiting for a core, CPU time much less so."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    wall = (time.perf_counter() - t) * 1000
    if p.returncode != 0:
        why = p.stderr.decode(errors="replace")[-500:]
        sys.exit(f"{' '.join(cmd)} (in {cwd}) exited {p.returncode}: {why}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if name:
        CPU[name].append(((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1000)
    return wall


def _importtime(env: dict[str, str]) -> float:
    cmd = [sys.executable, "-P", "-X", "importtime", "-c", "import lens"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    m = IMPORTTIME.search(p.stderr)
    assert m, p.stderr[-500:]
    return int(m.group(1)) / 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--pattern", default="def urlsplit")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--before", help="PYTHONPATH of an older lens's python/ tree")
    ap.add_argument("--before-corpus", help="the corpus for --before, indexed by it (default: --corpus)")
    ap.add_argument("--before-command", help="the `lens` executable for --before (default: this venv's)")
    a = ap.parse_args()
    corpus = Path(a.corpus)
    before_corpus = Path(a.before_corpus or a.corpus)
    build = (
        "import lens, sys; "
        "lens.Index.build(sys.argv[1], exclude=['__pycache__/', 'site-packages/'], semantic=False)"
    )
    for where, path in ((corpus, None), *(((before_corpus, a.before),) if a.before else ())):
        if not (where / ".lens").exists():
            env = {**os.environ, **({"PYTHONPATH": path} if path else {})}
            subprocess.run([sys.executable, "-P", "-c", build, str(where)], env=env, check=True)
    # As an installed wheel has them: bytecode for every module (PYTHONDONTWRITEBYTECODE would otherwise
    # leave edited modules compiling from source in every process).
    import compileall

    import lens

    for tree in [Path(lens.__file__).parent, *([Path(a.before) / "lens"] if a.before else [])]:
        compileall.compile_dir(str(tree), quiet=1)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    variants = {"after": (env, corpus, BIN / "lens")}
    if a.before:
        variants["before"] = (
            {**env, "PYTHONPATH": a.before},
            before_corpus,
            Path(a.before_command or BIN / "lens"),
        )
    times: dict[str, list[float]] = defaultdict(list)
    for _ in range(a.runs):
        k = "python -c pass (wall)"
        times[k].append(_wall([sys.executable, "-P", "-c", "pass"], corpus, env, k))
        for name, (e, here, command) in variants.items():
            times[f"import lens, -X importtime ({name})"].append(_importtime(e))
            # -P: the corpus may be a copy of the standard library, which must not shadow the real one.
            k = f"python -c 'import lens' (wall, {name})"
            times[k].append(_wall([sys.executable, "-P", "-c", "import lens"], here, e, k))
            # What a host pays before its first query: the import and opening the index.
            k = f"python -c 'import lens; lens.Index.open(...)' (wall, {name})"
            opened = "import lens; lens.Index.open('.lens')"
            times[k].append(_wall([sys.executable, "-P", "-c", opened], here, e, k))
            grep = [str(command), "grep", a.pattern, "--index", ".lens"]
            k = f"lens grep {a.pattern!r} (wall, {name})"
            times[k].append(_wall(grep, here, e, k))
        k = f"rg {a.pattern!r} (wall)"
        times[k].append(_wall([str(BIN / "rg"), a.pattern], corpus, env, k))
    for k, v in CPU.items():
        times[k.replace("(wall", "(cpu")] = v
    res = {
        k: {"min_ms": round(min(v), 1), "median_ms": round(statistics.median(v), 1)} for k, v in times.items()
    }
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
