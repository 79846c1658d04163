"""lens.cluster on a local Ray (issue 14): a sharded set answers as one index would, survives a killed
actor within its deadline, and bad input raises the same typed errors as `Index`.

One Ray session for the module (`ray.init(num_cpus=2, include_dashboard=False)`, this machine only);
every wait is bounded.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lens
from lens.errors import IndexCorruptError, IndexVersionError

ray = pytest.importorskip("ray", reason="the lens[ray] extra is not installed")

import lens.cluster as lc  # noqa: E402  (after the skip: lens.cluster itself imports Ray lazily)
from tests.conftest import shared_or_skip  # noqa: E402

#: Deadline of the fault test's queries (this machine is shared; generous on purpose).
FAULT_BUDGET_MS = 3000.0
#: CPUs each test actor reserves: small, so that build and refresh tasks (1 CPU each) still fit beside
#: the module's open sets on a 2-CPU Ray (a task waits for its CPUs; it never fails for want of them).
ACTOR_CPUS = 0.1
#: Allowance over a query's deadline for the driver's own work (merge, Python) on a loaded machine.
SLACK_S = 2.0

TOPICS = {
    "net": ["parse http date header", "open socket connection", "send request body", "read http response"],
    "fs": ["read file contents", "walk directory tree", "copy file permissions", "remove empty dirs"],
    "text": ["escape html entities", "wrap long lines", "strip trailing whitespace", "split text words"],
    "data": ["load json config", "merge two dicts", "sort records by key", "hash password salt"],
}


def _write_corpus(root: Path) -> Path:
    """Four top-level packages of small Python modules, and a top-level module."""
    for top, phrases in TOPICS.items():
        for i, phrase in enumerate(phrases):
            words = phrase.split()
            name = "_".join(words)
            body = "\n".join(
                [
                    f'"""{top} helpers: {phrase}."""',
                    "",
                    f"def {name}(value, limit={i}):",
                    f'    """{phrase.capitalize()} for the {top} layer."""',
                    f"    result = [{words[0]!r}, {words[-1]!r}]",
                    "    return result if value else None",
                    "",
                    f"class {''.join(w.title() for w in words)}:",
                    f"    def run(self, {words[1]}):",
                    f"        return {name}({words[1]})",
                    "",
                ]
            )
            p = root / top / f"mod_{i}.py"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(body)
    (root / "main.py").write_text("from net.mod_0 import parse_http_date\n\ndef main():\n    return None\n")
    return root


@pytest.fixture(scope="module")
def ray_session() -> Iterator[Any]:
    if ray.is_initialized():  # pragma: no cover - another module's session
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def small(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("cluster")
    root = _write_corpus(base / "src")
    one = lens.Index.build(root, base / "one", semantic=False)
    report = lc.build(root, base / "set", shards=4, progress=False, cpus_per_shard=1)
    return {"base": base, "root": root, "one": one, "set": base / "set", "report": report}


@pytest.fixture(scope="module")
def small_set(small: dict[str, Any]) -> Iterator[lc.ClusterIndex]:
    c = lc.open(small["set"], cpus_per_actor=ACTOR_CPUS)
    yield c
    c.close()


def _same(a: lens.SearchResult, b: lens.SearchResult) -> None:
    assert [(h.path, h.line) for h in b.hits] == [(h.path, h.line) for h in a.hits]
    for x, y in zip(a.hits, b.hits, strict=True):
        assert y.score == pytest.approx(x.score, abs=1e-9), (x.path, x.line)


def test_import_lens_does_not_import_ray() -> None:
    code = "import sys, lens, lens.cluster; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


def test_build_writes_one_manifest_with_global_statistics(small: dict[str, Any]) -> None:
    report = small["report"]
    assert report["failed"] == {}
    assert len(report["shards"]) == 4
    m = lc.manifest.read(small["set"])
    assert [s.id for s in m.shards] == report["shards"]
    assert m.index_format == lens._lens.INDEX_FORMAT_VERSION
    one = small["one"].stats()
    assert sum(s.files for s in m.shards) == one["files"] == report["files"]
    assert m.stats is not None and m.stats["docs"] == sum(s.docs for s in m.shards) > 0
    # Every top-level entry is in exactly one shard.
    entries = {p.name for p in small["root"].iterdir()}
    held = [entries - {e.lstrip("/") for e in s.exclude} for s in m.shards]
    assert sorted(n for h in held for n in h) == sorted(entries)


@pytest.mark.parametrize(
    "query",
    [q for phrases in TOPICS.values() for q in phrases] + ["how to escape html", "json config loader"],
)
def test_questions_score_as_one_index(small: dict[str, Any], small_set: lc.ClusterIndex, query: str) -> None:
    a = small["one"].search(query, k=50)
    b = small_set.search(query, k=50, budget_ms=FAULT_BUDGET_MS)
    assert b.info["shards_missing"] == []
    assert a.info["query_route"] == "terms"
    _same(a, b)


@pytest.mark.parametrize(
    "query",
    [
        "parse_http_date_header",
        "sortRecordsByKey",
        "parse_http_date_headr",
        "wrap_long_line",
        "net.mod_0",
        "run",
    ],
)
def test_identifiers_answer_as_one_index(
    small: dict[str, Any], small_set: lc.ClusterIndex, query: str
) -> None:
    """Defined names, names only their sub-tokens match (`sortRecordsByKey`) and names within edits of
    defined ones: Stage-B's fallback is decided over the set, as one index decides it."""
    a = small["one"].search(query, k=50)
    b = small_set.search(query, k=50, budget_ms=FAULT_BUDGET_MS)
    assert b.info["shards_missing"] == []
    assert any(h.why[:1] in (("definition",), ("fuzzy",)) for h in a.hits) or query == "net.mod_0"
    _same(a, b)


def test_files_rule_shards_exactly(small: dict[str, Any]) -> None:
    """The definition index's rules depend only on the query, the document, its file and the set's
    statistics (rust/terms/rank.rs), so questions that several definitions of one file match merge
    exactly too."""
    with lc.open(small["set"], cpus_per_actor=ACTOR_CPUS) as c:
        for q in ["read http response", "walk directory tree", "escape html entities"]:
            _same(small["one"].search(q, k=50), c.search(q, k=50, budget_ms=FAULT_BUDGET_MS))


@pytest.mark.parametrize("pattern,regex", [("return", False), ("def [a-z_]+\\(value", True), ("None", False)])
def test_grep_same_lines(
    small: dict[str, Any], small_set: lc.ClusterIndex, pattern: str, regex: bool
) -> None:
    a = small["one"].grep(pattern, regex=regex)
    b = small_set.grep(pattern, regex=regex, budget_ms=FAULT_BUDGET_MS)
    assert [(h.path, h.line, h.text) for h in b] == [(h.path, h.line, h.text) for h in a]
    assert a
    assert small_set.grep(pattern, regex=regex, limit=3) == b[:3]


def test_definitions_and_stats(small: dict[str, Any], small_set: lc.ClusterIndex) -> None:
    a = small["one"].definitions("parse_http_date")
    b = small_set.definitions("parse_http_date")
    assert [(h.path, h.line) for h in b] == [(h.path, h.line) for h in a]
    s = small_set.stats()
    assert s["files"] == small["one"].stats()["files"]
    assert set(s["shards"]) == set(small_set.shard_ids)


def test_bad_queries_raise_as_index_does(small_set: lc.ClusterIndex) -> None:
    with pytest.raises(lens.QueryError):
        small_set.search("", k=5)
    with pytest.raises(lens.QueryError):
        small_set.search("x", k=0)
    with pytest.raises(lens.QueryError):
        small_set.grep("(unclosed")


def _search_until_complete(c: lc.ClusterIndex, query: str, k: int) -> lens.SearchResult:
    """Searches until no shard is missing (a killed actor is back) or 60 s have passed; the last answer."""
    deadline = time.monotonic() + 60
    while True:
        r = c.search(query, k=k, budget_ms=FAULT_BUDGET_MS)
        if not r.info["shards_missing"] or time.monotonic() > deadline:
            return r
        time.sleep(0.5)


def test_killed_actor_costs_at_most_a_deadline(small: dict[str, Any], ray_session: Any) -> None:
    c = lc.open(small["set"], actors=2, cpus_per_actor=ACTOR_CPUS, max_restarts=5)
    assert len(c._groups) == 2
    try:
        query = "parse http date header"
        full = c.search(query, k=10, budget_ms=FAULT_BUDGET_MS)
        assert full.info["shards_missing"] == [] and not full.truncated
        victim = c.actors[0][0]
        held = set(c._groups[0])
        outcomes = []
        for i in range(12):
            if i == 2:
                ray.kill(victim, no_restart=False)
            t0 = time.monotonic()
            r = c.search(query, k=10, budget_ms=FAULT_BUDGET_MS)
            took = time.monotonic() - t0
            assert took <= FAULT_BUDGET_MS / 1000 + SLACK_S, took
            missing = set(r.info["shards_missing"])
            assert missing <= held
            assert r.truncated == bool(missing)
            if not missing:
                _same(full, r)
            outcomes.append(bool(missing))
        # The actor restarts; later queries are complete again.
        r = _search_until_complete(c, query, 10)
        assert r.info["shards_missing"] == []
        _same(full, r)
        rows = c.dashboard()["shards"]
        assert {row["shard"] for row in rows} == set(c.shard_ids)
    finally:
        c.close()


def _own_set(small: dict[str, Any], tmp_path: Path) -> tuple[Path, lc.ClusterIndex]:
    """A copy of the small set (its state directory is the test's own), served by 2 actors that
    restart."""
    set_dir = tmp_path / "set"
    shutil.copytree(small["set"], set_dir)
    return set_dir, lc.open(set_dir, actors=2, cpus_per_actor=ACTOR_CPUS, max_restarts=5)


def test_flags_hold_the_whole_set_and_survive_a_restart(
    small: dict[str, Any], ray_session: Any, tmp_path: Path
) -> None:
    set_dir, c = _own_set(small, tmp_path)
    try:
        assert c.flags()["stage_b.enabled"] is True
        with pytest.raises(KeyError):
            c.set_flags({"no.such.flag": True}, reason="typo")
        assert not (set_dir / lc.manifest.STATE_DIR / lc.manifest.FLAGS_FILE).exists()
        c.set_flags({"stage_b.enabled": False}, reason="test: Stage-B misbehaves")
        assert lc.manifest.read_flags(set_dir) == {"stage_b.enabled": False}
        every = [ray.get(a.flags.remote()) for row in c.actors for a in row]
        assert [f["stage_b.enabled"] for f in every] == [False, False]
        assert c.search("parse_http_date", k=10, budget_ms=FAULT_BUDGET_MS).hits
        ray.kill(c.actors[0][0], no_restart=False)
        deadline = time.monotonic() + 60
        while True:
            try:
                restarted = ray.get(c.actors[0][0].flags.remote(), timeout=5)
                break
            except Exception:  # the actor is restarting
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        assert restarted["stage_b.enabled"] is False
    finally:
        c.close()


def test_replica_answers_for_a_dead_actor(small: dict[str, Any], ray_session: Any) -> None:
    c = lc.open(small["set"], actors=1, replicas=2, cpus_per_actor=ACTOR_CPUS, max_restarts=0)
    try:
        query = "walk directory tree"
        full = c.search(query, k=10, budget_ms=FAULT_BUDGET_MS)
        ray.kill(c.actors[0][0], no_restart=True)
        r = c.search(query, k=10, budget_ms=FAULT_BUDGET_MS)
        assert r.info["shards_missing"] == []
        _same(full, r)
    finally:
        c.close()


def test_kill_switch_holds_the_whole_set_and_survives_a_restart(
    small: dict[str, Any], ray_session: Any, tmp_path: Path
) -> None:
    set_dir, c = _own_set(small, tmp_path)
    try:
        query = "parse http date header"
        assert c.search(query, k=5, budget_ms=FAULT_BUDGET_MS).info["routes"] == ["new"]
        status = c.kill_switch("test: a bad release")
        assert status["canary_deployment"]["killSwitch"]["active"]
        assert (set_dir / lc.manifest.STATE_DIR / "canary.json").is_file()
        # Every shard of every actor answers on the baseline path now.
        assert c.search(query, k=5, budget_ms=FAULT_BUDGET_MS).info["routes"] == ["baseline"]
        # A restarted actor reads the set's state back before its first query.
        ray.kill(c.actors[0][0], no_restart=False)
        r = _search_until_complete(c, query, 5)
        assert r.info["shards_missing"] == []
        assert r.info["routes"] == ["baseline"]
        assert c.canary_status()["canary_deployment"]["killSwitch"]["reason"] == "test: a bad release"
    finally:
        c.close()
    # The set's state is its own: the one-index copy of the same corpus is untouched.
    assert small["one"].search(query, k=5).info["route"] == "new"


def test_failed_shard_is_reported_and_the_rest_serve(small: dict[str, Any], ray_session: Any) -> None:
    base: Path = small["base"]
    roots = [small["root"] / "net", base / "no-such-root", small["root"] / "fs"]
    report = lc.build(roots, base / "partial", progress=False, cpus_per_shard=1)
    assert list(report["failed"]) == ["no-such-root"]
    assert "FileNotFoundError" in report["failed"]["no-such-root"]
    assert report["attempts"]["no-such-root"] == 2, "retried once"
    assert report["shards"] == ["net", "fs"]
    with lc.open(base / "partial", cpus_per_actor=ACTOR_CPUS) as c:
        r = c.search("walk directory tree", k=5, budget_ms=FAULT_BUDGET_MS)
        assert r.hits and r.info["shards_missing"] == []
        assert c.stats()["failed_shards"] == report["failed"]


def test_refresh_picks_up_changed_sources(small: dict[str, Any], ray_session: Any, tmp_path: Path) -> None:
    root = tmp_path / "src"
    shutil.copytree(small["root"], root)
    lc.build(root, tmp_path / "set", shards=2, progress=False, cpus_per_shard=1)
    with lc.open(tmp_path / "set", cpus_per_actor=ACTOR_CPUS) as c:
        before = lc.manifest.read(tmp_path / "set")
        assert not c.search("decompress zstandard frame", k=5, budget_ms=FAULT_BUDGET_MS).hits
        (root / "data" / "mod_9.py").write_text("def decompress_zstandard_frame(blob):\n    return blob\n")
        counts = c.refresh(timeout_s=300)
        assert sum(x["added"] for x in counts.values()) == 1
        after = lc.manifest.read(tmp_path / "set")
        assert after.generation == before.generation + 1
        assert after.stats is not None and before.stats is not None
        assert after.stats["docs"] > before.stats["docs"]
        r = c.search("decompress zstandard frame", k=5, budget_ms=FAULT_BUDGET_MS)
        assert r.hits[0].path == "data/mod_9.py" and r.info["shards_missing"] == []


def test_embed_reports_chunks_per_second_per_worker(
    small: dict[str, Any], ray_session: Any, tmp_path: Path
) -> None:
    from lens import rerank

    if not rerank.available():
        pytest.skip("the lens[semantic] extra (onnxruntime, tokenizers) is not installed")
    roots = [small["root"] / "net", small["root"] / "text"]
    lc.build(roots, tmp_path / "set", progress=False, cpus_per_shard=1, symbols=True)
    report = lc.embed(tmp_path / "set", cpus_per_shard=1)
    assert set(report["shards"]) == {"net", "text"}
    assert report["chunks"] == sum(r["embedded"] for r in report["shards"].values()) > 0
    for w in report["workers"].values():
        assert w["chunks"] > 0 and w["chunks_per_second"] > 0
    assert all(rerank.has_vectors(tmp_path / "set" / "shards" / sid) for sid in report["shards"])


def test_bad_sets_raise_index_errors(small: dict[str, Any], ray_session: Any, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        lc.open(tmp_path / "nothing")
    bad = tmp_path / "bad"
    shutil.copytree(small["set"], bad)
    (bad / "LENS_SET.json").write_text("{not json")
    with pytest.raises(IndexCorruptError):
        lc.open(bad)
    m = json.loads((small["set"] / "LENS_SET.json").read_text())
    (bad / "LENS_SET.json").write_text(json.dumps({**m, "set_format": 99}))
    with pytest.raises(IndexVersionError):
        lc.open(bad)
    (bad / "LENS_SET.json").write_text(json.dumps({**m, "shards": [{"id": "x"}]}))
    with pytest.raises(IndexCorruptError):
        lc.open(bad)
    # A missing shard directory: FileNotFoundError, as Index.open.
    (bad / "LENS_SET.json").write_text(json.dumps(m))
    shard = bad / m["shards"][1]["dir"]
    shutil.rmtree(shard)
    with pytest.raises(FileNotFoundError) as missing:
        lens.Index.open(shard)
    with pytest.raises(type(missing.value)):
        lc.open(bad)
    # A corrupt shard manifest: IndexCorruptError, as Index.open.
    shutil.copytree(small["set"] / m["shards"][1]["dir"], shard)
    (shard / "MANIFEST").write_bytes(b"garbage")
    with pytest.raises(IndexCorruptError):
        lens.Index.open(shard)
    with pytest.raises(IndexCorruptError):
        lc.open(bad, cpus_per_actor=ACTOR_CPUS)


def test_failing_and_slow_shards_trip_in_the_guard(small: dict[str, Any], ray_session: Any) -> None:
    """Every shard is a stage of the set's guard (`shard.<id>`): a shard whose actor is dead on every
    replica trips on errors, one over its latency SLO trips on latency, the others stay closed, and the
    dashboard lists the tripped shards with their breaker state."""
    from lens.guard import ERRORS, LATENCY, OPEN, Guard, GuardConfig, SLOs, StageSLO

    # Generous for every shard (this machine is shared), but for the one made slow below.
    slos = SLOs(default_stage=StageSLO(p95_ms=10 * FAULT_BUDGET_MS))
    guard = Guard(slos, GuardConfig(min_samples=5, eval_every=1))
    c = lc.open(small["set"], actors=2, cpus_per_actor=ACTOR_CPUS, max_restarts=0, guard=guard)
    try:
        dead, slow = c._groups[0], c._groups[1][0]
        guard.slos.others[lc.serve.SHARD_STAGE.format(slow)] = StageSLO(p95_ms=1e-6)
        ray.kill(c.actors[0][0], no_restart=True)
        for _ in range(8):
            r = c.search("walk directory tree", k=5, budget_ms=FAULT_BUDGET_MS)
            assert set(r.info["shards_missing"]) == set(dead) and r.truncated
        breakers = guard.breakers()
        for sid in c.shard_ids:
            state, _trips, _at, _cool, _ok, reason, kind, _level = breakers[lc.serve.SHARD_STAGE.format(sid)]
            if sid in dead:
                assert (state, kind) == (OPEN, ERRORS), (sid, reason)
            elif sid == slow:
                assert (state, kind) == (OPEN, LATENCY), (sid, reason)
            else:
                assert state != OPEN, (sid, reason)
        board = c.dashboard()
        assert set(board["tripped"]) == {*dead, slow}
        rows = {row["shard"]: row for row in board["shards"]}
        assert all(rows[sid]["errors"] >= 8 and rows[sid]["breaker"] == OPEN for sid in dead)
        alerted = {a.stage for a in guard.recent_alerts() if a.name == "stage_tripped"}
        assert {lc.serve.SHARD_STAGE.format(sid) for sid in (*dead, slow)} <= alerted
    finally:
        c.close()


def test_fallback_names_decided_over_the_set() -> None:
    """Stage-B's fallback over the set, as one index decides it from all of its names."""
    from lens.cluster.merge import fallback_names

    # Any shard defining the name: no fallback anywhere.
    assert fallback_names([("parse_dat", 0, ["parseDat"], []), ("parse_dat", 2, [], [])]) == []
    # Names sharing its sub-tokens, over every shard, before any edit.
    got = fallback_names(
        [("parse_dat", 0, ["parseDat"], [("parse_date", 1, 3)]), ("parse_dat", 0, ["ParseDat"], [])]
    )
    assert got == ["ParseDat", "parseDat"]
    # Else the closest names, most defined over the set first: a shard's own count would pick `abce`.
    near: list[tuple[str, int, list[str], list[tuple[str, int, int]]]] = [
        ("abcd", 0, [], [("abce", 1, 2), ("abcf", 1, 1)]),
        ("abcd", 0, [], [("abcf", 1, 2)]),
    ]
    assert fallback_names(near)[:2] == ["abcf", "abce"]
    # Only the first names a table streams (name order) are ranked, eight at most.
    many: list[tuple[str, int, list[str], list[tuple[str, int, int]]]] = [
        ("abcdefgh", 0, [], [(f"n{i:03d}", 2 if i < 40 else 1, 1) for i in range(50)])
    ]
    assert fallback_names(many) == [f"n{i:03d}" for i in range(8)]


# -- the dev corpus ------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["orig", "nodoc"])
def dev(
    request: pytest.FixtureRequest, ray_session: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    corpus = request.param
    name = "cpython-3.11.7-lib.tar.xz" if corpus == "orig" else "cpython-3.11.7-lib-nodoc.tar.xz"
    tar = shared_or_skip("corpora", name)
    queries = shared_or_skip("eval", "dev", "queries.jsonl")
    base = tmp_path_factory.mktemp(f"dev-cluster-{corpus}")
    root = base / "lib"
    root.mkdir()
    with tarfile.open(tar) as t:
        t.extractall(root, filter="data")
    one = lens.Index.build(root, base / "one", semantic=False)
    lc.build(root, base / "set", shards=4, progress=False, cpus_per_shard=1)
    c = lc.open(base / "set", cpus_per_actor=ACTOR_CPUS)
    qs = [json.loads(line) for line in queries.read_text().splitlines() if line.strip()]
    yield {
        "corpus": corpus,
        "one": one,
        "set": c,
        "queries": [q["query"] for q in qs if q["corpus"] == corpus],
    }
    c.close()


def _same_hit(x: tuple[str, int, float], y: tuple[str, int, float]) -> bool:
    return x[:2] == y[:2] and abs(x[2] - y[2]) <= 1e-9


@pytest.mark.corpus
def test_dev_queries_answer_as_one_index(dev: dict[str, Any]) -> None:
    """Every dev query of the corpus, k=50: the same hits in the same order with scores equal to 1e-9,
    on every route (identifiers with Stage-B's fallback decided over the set, union routes interleaved
    once), and no shard missing."""
    differ: dict[str, list[tuple[str, int]]] = {}
    for q in dev["queries"]:
        a = dev["one"].search(q, k=50)
        b = dev["set"].search(q, k=50, budget_ms=10_000)
        assert b.info["shards_missing"] == [], q
        ka = [(h.path, h.line, h.score) for h in a.hits]
        kb = [(h.path, h.line, h.score) for h in b.hits]
        first = next(
            (
                i
                for i, (x, y) in enumerate(zip(ka, kb, strict=False))
                if x[:2] != y[:2] or abs(x[2] - y[2]) > 1e-9
            ),
            None if len(ka) == len(kb) else min(len(ka), len(kb)),
        )
        if first is not None:
            differ.setdefault(a.info["query_route"], []).append((q, first))
    assert differ == {}, {route: (len(qs), qs[:5]) for route, qs in differ.items()}


@pytest.mark.corpus
@pytest.mark.parametrize(
    "pattern,regex",
    [
        ("def parse", False),
        ("HTTPConnection", False),
        (r"^class \w+Error\(", True),
        (r"\bself\.assert\w+", True),
    ],
)
def test_dev_grep_same_lines(dev: dict[str, Any], pattern: str, regex: bool) -> None:
    a = dev["one"].grep(pattern, regex=regex)
    b = dev["set"].grep(pattern, regex=regex, budget_ms=30_000)
    assert [(h.path, h.line) for h in b] == [(h.path, h.line) for h in a]
