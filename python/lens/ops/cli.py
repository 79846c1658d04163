"""The runbook's commands: `quality-gates`, `nightly-validation`, `check-signoff`, `cut-rc`, `compat-drill`,
`promote` and `serve`, added to `lens`'s parser by `add_ops_commands`.

Exit codes scripts can trust: 0 ok; 1 a gate failed, a night failed, or the release is not promotable;
2 usage or error. `--json` prints the document instead of the table; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from ..errors import LensError
from ._progress import CountBar
from .gates import format_table, run_quality_gates
from .golden import GoldenSet, load_golden_set, stdlib_golden_set
from .nightly import REQUIRED_NIGHTS, run_nightly, signoff
from .release import NotPromotable, compat_drill, cut_rc, promote
from .state import OpsStore

__all__ = ["add_ops_commands"]

EPILOG = "exit status: 0 ok, 1 gate failed / night failed / not promotable, 2 usage or error"


def _common(p: argparse.ArgumentParser, golden: bool = False) -> None:
    p.add_argument(
        "--state-dir", help="where lens-ops.db lives (default: $LENS_STATE_DIR, else $XDG_STATE_HOME/lens)"
    )
    p.add_argument("--json", action="store_true", help="print the JSON document")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    if golden:
        g = p.add_argument_group("golden set (default: lens's own, built from this Python's stdlib)")
        g.add_argument("--golden", help="golden set JSONL (the dev set's format)")
        g.add_argument("--corpus", help="root for the set's corpus=orig queries")
        g.add_argument("--nodoc", help="root for the set's corpus=nodoc queries")
        g.add_argument("--golden-files", type=int, default=40, help="stdlib set: modules to use (40)")
        g.add_argument("--golden-queries", type=int, default=30, help="stdlib set: queries per kind (30)")
        g.add_argument("--repeats", type=int, default=5, help="timed passes of the candidate (5)")


def _store(a: argparse.Namespace) -> OpsStore:
    return OpsStore(a.state_dir)


def golden_from_args(a: argparse.Namespace, store: OpsStore) -> GoldenSet:
    if a.golden:
        return load_golden_set(a.golden, orig=a.corpus, nodoc=a.nodoc)
    if a.golden_files < 1 or a.golden_queries < 1:
        raise LensError("--golden-files and --golden-queries must be positive")
    return stdlib_golden_set(store.state_dir / "golden", files=a.golden_files, per_kind=a.golden_queries)


def _bar(a: argparse.Namespace, label: str, unit: str = "") -> CountBar | None:
    return None if a.quiet or a.json else CountBar(label, unit)


def _gates(a: argparse.Namespace, store: OpsStore, golden: GoldenSet, source: str) -> dict[str, Any]:
    bar = _bar(a, "quality gates")
    try:
        report = run_quality_gates(golden, latency_repeats=a.repeats, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    store.record_gate_run(report, source=source)
    return report


def _out(a: argparse.Namespace, doc: Any, text: str) -> None:
    print(json.dumps(doc, indent=2, default=str) if a.json else text)


def cmd_quality_gates(a: argparse.Namespace) -> int:
    store = _store(a)
    report = _gates(a, store, golden_from_args(a, store), "cli")
    _out(a, report, format_table(report))
    return 0 if report["quality_gates_report"]["status"] == "passed" else 1


def cmd_nightly(a: argparse.Namespace) -> int:
    if a.duration < 0:
        raise LensError("--duration must be >= 0 minutes")
    store = _store(a)
    golden = golden_from_args(a, store)
    bar = _bar(a, "nightly validation", " s")
    try:
        night = run_nightly(
            store,
            golden,
            duration_s=a.duration * 60,
            force_night=a.force_night,
            threads=a.threads,
            load_qps=a.qps,
            progress=bar,
            latency_repeats=a.repeats,
        )
    finally:
        if bar is not None:
            bar.close()
    m = night["metrics"]
    load = m["load"]
    lines = [
        f"night {night['night']}: {'PASSED' if night['passed'] else 'FAILED'} "
        f"({m['gate_runs_passed']}/{m['gate_runs']} gate runs passed, {night['duration_s']:.1f} s)",
        f"load: {load['queries']} queries from {load['threads']} threads, {load['qps']:.1f}/s, "
        f"errors {load['errors']}, p95 {_ms(load['p95_ms'])} ms",
    ]
    lines += [f"  failure: {f}" for f in night["failures"][:20]]
    _out(a, night, "\n".join(lines))
    return 0 if night["passed"] else 1


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _signoff_text(s: dict[str, Any]) -> str:
    lines = [
        f"{s['version']}: {'PROMOTABLE' if s['promotable'] else 'not promotable'} "
        f"({s['consecutive_passing_nights']}/{REQUIRED_NIGHTS} consecutive passing nights)"
    ]
    lines += [f"  night {n['night']}: {'pass' if n['passed'] else 'FAIL'}" for n in s["nights"]]
    lines += [f"  - {r}" for r in s["reasons"]]
    return "\n".join(lines)


def cmd_check_signoff(a: argparse.Namespace) -> int:
    s = signoff(_store(a), a.version)
    _out(a, s, _signoff_text(s))
    return 0 if s["promotable"] else 1


def cmd_cut_rc(a: argparse.Namespace) -> int:
    store = _store(a)
    from .release import check_rc_version

    check_rc_version(a.version)
    golden = golden_from_args(a, store)
    report = _gates(a, store, golden, f"cut-rc {a.version}")
    try:
        bundle = cut_rc(store, a.version, golden, report)
    except NotPromotable as e:
        _out(
            a,
            {"cut": False, "version": a.version, "reasons": e.reasons, **report},
            format_table(report) + f"\nnot cutting {a.version}: the quality gates did not pass",
        )
        return 1
    slim = {k: v for k, v in bundle.items() if k not in ("sbom", "gate_report", "api_surface")}
    path = store.state_dir / "releases" / a.version
    _out(
        a,
        {"cut": True, "bundle_dir": str(path), **slim},
        f"cut {a.version}: lens {bundle['lens_version']}, API {bundle['api_version']}, index format "
        f"v{bundle['index_format_version']}, Stage-C model {bundle['stage_c_model_id'] or 'none'}, "
        f"golden set {bundle['golden_set']['sha256'][:12]}, "
        f"SBOM {len(bundle['sbom']['components'])} components\n"
        f"bundle: {path}/bundle.json, {path}/sbom.cdx.json",
    )
    return 0


def cmd_compat_drill(a: argparse.Namespace) -> int:
    r = compat_drill(_store(a), a.version)
    lines = [
        f"compat drill {a.version}: {'PASSED' if r['passed'] else 'FAILED'} (API {r['api_version']}, "
        f"index format v{r['index_format_version']}, formats checked {r['required_formats']})"
    ]
    for f in r["formats"]:
        state = "opened" if f.get("opened") else f"not opened ({f.get('error')})"
        lines.append(f"  format v{f['format_version']}: {state}, {len(f.get('mismatches') or [])} mismatches")
    lines += [f"  - {p}" for p in r["problems"]]
    _out(a, r, "\n".join(lines))
    return 0 if r["passed"] else 1


def cmd_promote(a: argparse.Namespace) -> int:
    try:
        r = promote(_store(a), a.version)
    except NotPromotable as e:
        _out(a, e.report, f"refusing to promote {a.version}:\n" + "\n".join(f"  - {r}" for r in e.reasons))
        return 1
    _out(a, r, f"promoted {a.version}")
    return 0


def cmd_serve(a: argparse.Namespace) -> int:
    try:
        from .server import serve
    except ImportError as e:
        print(
            f"lens: error: `lens serve` needs the server extra: pip install 'lens[server]' ({e})",
            file=sys.stderr,
        )
        return 2
    return serve(
        index=a.index,
        host=a.host,
        port=a.port,
        state_dir=a.state_dir,
        config=a.config,
        golden_files=a.golden_files,
        golden_queries=a.golden_queries,
    )


def add_ops_commands(sub: Any) -> None:
    """Add the runbook's commands to `lens`'s subparsers."""

    def add(
        name: str, func: Callable[[argparse.Namespace], int], help_: str, golden: bool = False
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_, description=help_, epilog=EPILOG)
        _common(p, golden)
        p.set_defaults(func=func)
        return p

    add("quality-gates", cmd_quality_gates, "run the quality gates on a golden set", golden=True)
    p = add(
        "nightly-validation",
        cmd_nightly,
        "run the gates repeatedly for DURATION minutes under a mixed query load; record the night",
        golden=True,
    )
    p.add_argument("--duration", type=float, required=True, metavar="MIN", help="minutes (fractions allowed)")
    p.add_argument("--force-night", type=int, metavar="N", help="record as night N (testing and drills)")
    p.add_argument("--threads", type=int, default=3, help="load threads (3)")
    p.add_argument("--qps", type=float, default=30.0, help="the load's cap, queries per second in all (30)")
    p = add("check-signoff", cmd_check_signoff, "is release candidate V promotable, and why not")
    p.add_argument("--version", required=True)
    p = add("cut-rc", cmd_cut_rc, "run the gates and snapshot a release bundle for X.Y.Z-rc.N", golden=True)
    p.add_argument("--version", required=True, metavar="X.Y.Z-rc.N")
    p = add("compat-drill", cmd_compat_drill, "open every bundle's index format and check API compatibility")
    p.add_argument("--version", required=True)
    p = add("promote", cmd_promote, "promote V (refuses without sign-off)")
    p.add_argument("--version", required=True)
    p = sub.add_parser(
        "serve",
        help="the admin HTTP API (needs lens[server])",
        epilog=EPILOG,
        description="Serve the runbook's admin HTTP API for one index.",
    )
    p.add_argument("--index", help="index directory to serve /search from (optional)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: loopback only)")
    p.add_argument("--port", type=int, default=3000)
    p.add_argument("--state-dir")
    p.add_argument("--config", help="TOML with admin_token (default $XDG_CONFIG_HOME/lens/server.toml)")
    p.add_argument("--golden-files", type=int, default=40)
    p.add_argument("--golden-queries", type=int, default=30)
    p.set_defaults(func=cmd_serve)
