"""Release bundles, compatibility drills and promotion.

`cut_rc` snapshots what a release candidate is: lens version, API version, index format version, the
flags, the Stage-C model id (None when no Stage-C is installed), the golden set's hash, a fresh quality
gate report, the public API surface, and a CycloneDX SBOM of the installed distributions. It refuses
when the gates do not pass (the runbook: "all quality gates passing" before an RC cut).

The SBOM is built by hand from `importlib.metadata` as minimal, valid CycloneDX 1.5 JSON (bomFormat,
specVersion, serialNumber, metadata, components with PyPI purls, the root's dependencies) rather than
with `cyclonedx-python-lib`: that library would add five packages to the core install for what is
forty lines of JSON here, and release commands run on production hosts.

`compat_drill` opens an index of every format version any bundle was cut with (small fixture indexes of
each format live in `lens/ops/fixtures/index-vN/`, with the answers they gave when written) and runs
the public API against them, and compares this lens's API surface with every earlier bundle's: a name
or a parameter that went away is a break. `promote` refuses without sign-off and records the promotion.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import importlib.util
import inspect
import json
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lens

from .. import INDEX_FORMAT_VERSION, __version__
from .._log import get_logger
from ..errors import LensError
from ..flags import Flags
from ..index import Hit, Index, SearchResult
from .golden import GoldenSet
from .nightly import signoff
from .state import OpsStore

__all__ = [
    "API_VERSION",
    "FIXTURES_DIR",
    "NotPromotable",
    "ReleaseError",
    "api_surface",
    "check_compat",
    "compat_bundles",
    "compat_drill",
    "cut_rc",
    "promote",
    "sbom",
    "stage_c_model_id",
    "write_fixture",
]

_log = get_logger("lens.ops.release")

#: The version of lens's public Python and HTTP API. Bump the number on a breaking change.
API_VERSION = "v1"
SUPPORTED_API_VERSIONS = ("v1",)
#: Index formats this build opens (the native core reads exactly its own format).
READABLE_INDEX_VERSIONS = (INDEX_FORMAT_VERSION,)
FIXTURES_DIR = Path(__file__).parent / "fixtures"
RC_VERSION = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)-rc\.(0|[1-9]\d*)$")


class ReleaseError(LensError, ValueError):
    """A release command cannot run as asked (bad version, unknown RC, RC cut twice)."""


class NotPromotable(LensError, RuntimeError):
    """The gates, the nights or the drill say no; `reasons` says why."""

    def __init__(self, message: str, reasons: list[str], report: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.reasons = reasons
        self.report = dict(report or {})


def check_rc_version(version: str) -> str:
    if not RC_VERSION.match(version):
        raise ReleaseError(f"release candidate versions look like X.Y.Z-rc.N (SemVer), not {version!r}")
    return version


def stage_c_model_id() -> str | None:
    """The Stage-C model's id when a Stage-C is installed (`lens.rerank`), else None."""
    if importlib.util.find_spec("lens.rerank") is None:
        return None
    try:
        mod = importlib.import_module("lens.rerank")
    except Exception:  # an unusable optional stage is reported as absent, not fatal to a release
        return None
    for name in ("MODEL_ID", "model_id"):
        value = getattr(mod, name, None)
        if callable(value):
            value = value()
        if isinstance(value, str):
            return value
    return None


def api_surface() -> dict[str, Any]:
    """Public names and the parameters of the public callables a host relies on."""

    def params(fn: Any) -> list[str]:
        try:
            return [p for p in inspect.signature(fn).parameters if p not in ("self", "cls")]
        except (TypeError, ValueError):
            return []

    index_methods = {
        name: params(getattr(Index, name))
        for name in sorted(dir(Index))
        if not name.startswith("_") and callable(getattr(Index, name))
    }
    return {
        "api_version": API_VERSION,
        "lens": sorted(lens.__all__),
        "Index": index_methods,
        "Hit": sorted(Hit.__dataclass_fields__),
        "SearchResult": sorted(SearchResult.__dataclass_fields__),
    }


def _breaks(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    out = [f"lens.{n} removed" for n in old.get("lens", []) if n not in new.get("lens", [])]
    for meth, ps in old.get("Index", {}).items():
        if meth not in new.get("Index", {}):
            out.append(f"Index.{meth} removed")
            continue
        out += [f"Index.{meth}({p}=) removed" for p in ps if p not in new["Index"][meth]]
    for cls in ("Hit", "SearchResult"):
        out += [f"{cls}.{f} removed" for f in old.get(cls, []) if f not in new.get(cls, [])]
    return out


def _purl(name: str, version: str) -> str:
    return f"pkg:pypi/{re.sub(r'[-_.]+', '-', name).lower()}@{version}"


def sbom(now: float | None = None) -> dict[str, Any]:
    """CycloneDX 1.5 JSON for the distributions installed beside lens."""
    comps: dict[str, dict[str, Any]] = {}
    for dist in md.distributions():
        name, version = dist.metadata["Name"], dist.version
        if not name or name.lower() == "lens":
            continue
        purl = _purl(name, version)
        comp: dict[str, Any] = {
            "type": "library",
            "bom-ref": purl,
            "name": name,
            "version": version,
            "purl": purl,
        }
        lic = next(
            iter(dist.metadata.get_all("License-Expression") or dist.metadata.get_all("License") or []), None
        )
        if lic and len(lic) < 100 and "\n" not in lic:
            comp["licenses"] = [{"license": {"name": lic}}]
        comps[purl] = comp
    root = _purl("lens", __version__)
    direct = []
    try:
        for req in md.requires("lens") or []:
            if "extra ==" in req:
                continue
            m = re.match(r"[A-Za-z0-9_.\-]+", req)
            if m:
                with contextlib.suppress(md.PackageNotFoundError):
                    direct.append(_purl(m.group(0), md.version(m.group(0))))
    except md.PackageNotFoundError:
        pass
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now if now is not None else time.time()))
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": stamp,
            "tools": {"components": [{"type": "application", "name": "lens", "version": __version__}]},
            "component": {
                "type": "library",
                "bom-ref": root,
                "name": "lens",
                "version": __version__,
                "purl": root,
            },
        },
        "components": sorted(comps.values(), key=lambda c: c["bom-ref"]),
        "dependencies": [{"ref": root, "dependsOn": sorted(d for d in direct if d in comps)}],
    }


def cut_rc(
    store: OpsStore,
    version: str,
    golden: GoldenSet,
    gate_report: Mapping[str, Any],
    flags: Flags | None = None,
) -> dict[str, Any]:
    """Record the bundle for `version` (the gate report must have passed) and write it, with its SBOM,
    under `<state dir>/releases/<version>/`."""
    check_rc_version(version)
    if store.release(version) is not None:
        raise ReleaseError(f"release {version} was already cut; cut the next rc number")
    r = gate_report["quality_gates_report"]
    if r["status"] != "passed":
        raise NotPromotable(
            f"quality gates {r['status']}: not cutting {version}", list(r["blocking_issues"]), gate_report
        )
    bom = sbom()
    bundle = {
        "version": version,
        "created_at": time.time(),
        "lens_version": __version__,
        "api_version": API_VERSION,
        "index_format_version": INDEX_FORMAT_VERSION,
        "flags": dict((flags if flags is not None else lens.flags).snapshot()),
        "stage_c_model_id": stage_c_model_id(),
        "golden_set": {"name": golden.name, "sha256": golden.sha256, "queries": len(golden.queries)},
        "gate_report": dict(gate_report),
        "api_surface": api_surface(),
        "sbom": bom,
    }
    store.add_release(version, bundle)
    out = store.state_dir / "releases" / version
    out.mkdir(parents=True, exist_ok=True)
    (out / "bundle.json").write_text(json.dumps(bundle, indent=1, sort_keys=True, default=str))
    (out / "sbom.cdx.json").write_text(json.dumps(bom, indent=1))
    _log.info("rc_cut", version=version, bundle=str(out))
    return bundle


# -- compatibility ---------------------------------------------------------------------------------

FIXTURE_TREE = {
    "shapes.py": (
        'class Circle:\n    """A circle."""\n\n    def area(self, r):\n        return 3.14159 * r * r\n\n\n'
        "def parse_header(line):\n    # TODO: folding\n    name, _, value = line.partition(':')\n"
        "    return name.strip().lower(), value.strip()\n"
    ),
    "util/text.py": (
        "import re\n\nWORD = re.compile(r'\\w+')\n\n\ndef words(s):\n    return WORD.findall(s)\n\n\n"
        "def shout(s):\n    return s.upper() + '!'\n"
    ),
    "README.md": "# fixture\n\nparse_header splits an HTTP header line; words() finds words.\n",
}

FIXTURE_QUERIES: list[dict[str, Any]] = [
    # Ranked search may legitimately reorder between releases: the drill asks only that the defining
    # file is among the hits. grep and definitions are exact and must answer exactly as before.
    {"op": "search", "query": "parse_header", "k": 5, "must_contain": "shapes.py"},
    {"op": "search", "query": "split words", "k": 10, "must_contain": "util/text.py"},
    {"op": "grep", "pattern": "TODO", "regex": False},
    {"op": "grep", "pattern": r"def \w+\(", "regex": True},
    {"op": "definitions", "name": "Circle"},
]


def _answer(idx: Index, q: Mapping[str, Any]) -> Any:
    if q["op"] == "search":
        hits = idx.search(q["query"], k=q["k"], mode="lex").hits
        return q["must_contain"] in {h.path for h in hits}
    elif q["op"] == "grep":
        hits = idx.grep(q["pattern"], regex=q["regex"])
    else:
        hits = idx.definitions(q["name"])
    return [[h.path, h.line, h.column, h.byte_start, h.byte_end] for h in hits]


def write_fixture(dest: Path) -> dict[str, Any]:
    """Write `dest/index` (this build's format) from the fixture tree and `dest/fixture.json` with the
    answers it gives now. Run once per new format version; the result is committed."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        for rel, text in FIXTURE_TREE.items():
            (tree / rel).parent.mkdir(parents=True, exist_ok=True)
            (tree / rel).write_text(text)
        if (dest / "index").exists():
            shutil.rmtree(dest / "index")
        idx = Index.build(tree, dest / "index")
        meta: dict[str, Any] = {
            "format_version": INDEX_FORMAT_VERSION,
            "lens_version": __version__,
            "queries": [{**q, "expected": _answer(idx, q)} for q in FIXTURE_QUERIES],
        }
        if not all(q["expected"] for q in meta["queries"]):
            raise ReleaseError(f"fixture queries found nothing on this build: {meta['queries']}")
    (dest / "fixture.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def _fixtures(fixtures_dir: Path) -> dict[int, Path]:
    out = {}
    for d in sorted(fixtures_dir.glob("index-v*")):
        m = re.fullmatch(r"index-v(\d+)", d.name)
        if m and (d / "fixture.json").is_file():
            out[int(m.group(1))] = d
    return out


def _drill_fixture(d: Path) -> dict[str, Any]:
    meta = json.loads((d / "fixture.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "index"
        shutil.copytree(d / "index", copy)
        try:
            idx = Index.open(copy)
            idx.verify()
        except (LensError, OSError) as exc:
            return {
                "format_version": meta["format_version"],
                "opened": False,
                "error": f"{type(exc).__name__}: {exc}",
                "mismatches": [],
            }
        mismatches = []
        for q in meta["queries"]:
            got = _answer(idx, q)
            if got != q["expected"]:
                mismatches.append(
                    {
                        "query": {k: v for k, v in q.items() if k != "expected"},
                        "expected": q["expected"],
                        "got": got,
                    }
                )
    return {
        "format_version": meta["format_version"],
        "opened": True,
        "error": None,
        "queries": len(meta["queries"]),
        "mismatches": mismatches,
    }


def compat_drill(store: OpsStore, version: str, fixtures_dir: Path = FIXTURES_DIR) -> dict[str, Any]:
    """Open a fixture index of every format version a bundle was cut with (and this build's), run the
    API against each, and compare the API surface with earlier bundles'. Recorded; returns the report."""
    rel = store.release(check_rc_version(version))
    if rel is None:
        raise ReleaseError(f"no release candidate {version}: run `lens cut-rc --version {version}` first")
    releases = store.releases()
    earlier = [r for r in releases if r["created_at"] <= rel["created_at"]]
    required = sorted({int(r["bundle"]["index_format_version"]) for r in earlier} | {INDEX_FORMAT_VERSION})
    fixtures = _fixtures(fixtures_dir)
    problems: list[str] = []
    formats = []
    for v in sorted(set(required) | set(fixtures)):
        if v not in fixtures:
            formats.append({"format_version": v, "required": True, "opened": False, "error": "no fixture"})
            problems.append(f"no fixture index for format v{v} in {fixtures_dir}")
            continue
        res = _drill_fixture(fixtures[v])
        res["required"] = v in required
        formats.append(res)
        if v in required and not res["opened"]:
            problems.append(f"format v{v} fixture does not open: {res['error']}")
        elif res["mismatches"]:
            problems.append(f"format v{v} fixture answers changed on {len(res['mismatches'])} queries")
    now_api = api_surface()
    api = []
    for r in earlier:
        old = r["bundle"].get("api_surface", {})
        same_major = old.get("api_version") == API_VERSION
        brk = _breaks(old, now_api)
        api.append({"bundle": r["version"], "api_version": old.get("api_version"), "breaks": brk})
        if same_major and brk:
            problems += [f"API break vs {r['version']}: {b}" for b in brk]
    report = {
        "version": version,
        "passed": not problems,
        "api_version": API_VERSION,
        "index_format_version": INDEX_FORMAT_VERSION,
        "required_formats": required,
        "formats": formats,
        "api": api,
        "problems": problems,
    }
    store.record_drill(version, not problems, report)
    _log.info("compat_drill", version=version, passed=not problems, problems=len(problems))
    return report


def _parse_index_version(value: str) -> int | None:
    m = re.fullmatch(r"v?(\d+)", value.strip())
    return int(m.group(1)) if m else None


def check_compat(api_version: str, index_version: str) -> dict[str, Any]:
    """Can this lens serve clients of `api_version` and open indexes of `index_version` ("v2" or "2")?"""
    iv = _parse_index_version(index_version)
    if iv is None:
        raise ReleaseError(f"index_version must look like v2 or 2, not {index_version!r}")
    api_ok = api_version in SUPPORTED_API_VERSIONS
    idx_ok = iv in READABLE_INDEX_VERSIONS
    return {
        "compatible": api_ok and idx_ok,
        "api_version": {
            "requested": api_version,
            "current": API_VERSION,
            "supported": list(SUPPORTED_API_VERSIONS),
            "compatible": api_ok,
        },
        "index_version": {
            "requested": iv,
            "current": INDEX_FORMAT_VERSION,
            "readable": list(READABLE_INDEX_VERSIONS),
            "compatible": idx_ok,
        },
        "lens_version": __version__,
    }


def compat_bundles(store: OpsStore, allow_compat: bool) -> dict[str, Any]:
    """Every recorded bundle against this build: exact (same API and index format), or compatible (this
    build reads its format and speaks its API); `allow_compat` accepts compatible as well as exact."""
    rows = []
    for r in store.releases():
        b = r["bundle"]
        exact = b["api_version"] == API_VERSION and b["index_format_version"] == INDEX_FORMAT_VERSION
        compatible = (
            b["api_version"] in SUPPORTED_API_VERSIONS
            and b["index_format_version"] in READABLE_INDEX_VERSIONS
        )
        drill = store.latest_drill(r["version"])
        rows.append(
            {
                "version": r["version"],
                "lens_version": b["lens_version"],
                "api_version": b["api_version"],
                "index_format_version": b["index_format_version"],
                "exact": exact,
                "compatible": compatible,
                "ok": exact or (allow_compat and compatible),
                "compat_drill": None if drill is None else drill["passed"],
            }
        )
    return {
        "allow_compat": allow_compat,
        "current": {
            "lens_version": __version__,
            "api_version": API_VERSION,
            "index_format_version": INDEX_FORMAT_VERSION,
        },
        "bundles": rows,
        "compatible": all(r["ok"] for r in rows),
        "count": len(rows),
    }


def promote(store: OpsStore, version: str) -> dict[str, Any]:
    """Record the promotion of `version`; raises `NotPromotable` without sign-off."""
    check_rc_version(version)
    report = signoff(store, version)
    if not report["promotable"]:
        raise NotPromotable(f"{version} is not promotable", report["reasons"], report)
    store.record_promotion(version, report)
    _log.info("promoted", version=version)
    return {**report, "promoted": True, "promoted_at": time.time()}
