"""Stage-C: the gate, the shipped model, vectors in the index (build, refresh, opt-out), the stage's
counters and fusion, and lens without the `lens[semantic]` extra."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lens
from lens.rerank import available
from lens.rerank.gate import FEATURES, features, is_natural_language
from tests.conftest import write_tree

needs_extra = pytest.mark.skipif(not available(), reason="the lens[semantic] extra is not installed")

CODE: dict[str, bytes] = {
    "net/dates.py": (
        b"import time\n\n"
        b"def parse_http_date(value):\n"
        b"    return time.strptime(value, '%a, %d %b %Y %H:%M:%S GMT')\n\n"
        b"def format_rfc_timestamp(seconds):\n    return time.strftime('%Y', time.gmtime(seconds))\n"
    ),
    "archive/zips.py": (
        b"import zipfile\n\n"
        b"class ArchiveReader:\n"
        b"    def read_member(self, name):\n"
        b"        with zipfile.ZipFile(self.path) as zf:\n"
        b"            return zf.read(name)\n\n"
        b"    def list_members(self):\n        return []\n"
    ),
    "web/markup.py": (
        b"def escape_markup(text):\n"
        b"    return text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')\n\n"
        b"def unescape_markup(text):\n    return text.replace('&lt;', '<')\n"
    ),
    "crypto/digest.py": (
        b"import hashlib\n\n"
        b"def file_checksum(path, block=65536):\n"
        b"    h = hashlib.sha256()\n"
        b"    with open(path, 'rb') as f:\n"
        b"        for chunk in iter(lambda: f.read(block), b''):\n"
        b"            h.update(chunk)\n"
        b"    return h.hexdigest()\n"
    ),
}


# -- the gate (pure Python, always available) -----------------------------------------------------
@pytest.mark.parametrize(
    "query",
    [
        "parse_http_date",
        "ZipFile.read",
        "readFile()",
        r"foo\s+bar.*",
        "src/lens/index.py",
        "EINVAL",
        "def parse(",
    ],
)
def test_gate_passes_identifiers_regexes_paths_and_code_by(query: str) -> None:
    assert not is_natural_language(query)


@pytest.mark.parametrize(
    "query",
    [
        "parse an HTTP date header",
        "how to read a member of a zip archive",
        "escape html",
        "Compute the checksum of a file in blocks.",
    ],
)
def test_gate_sends_plain_english_to_the_rerank(query: str) -> None:
    assert is_natural_language(query)


def test_gate_weights_match_its_features() -> None:
    data = json.loads((Path(lens.__file__).parent / "rerank" / "gate.json").read_text())
    assert tuple(data["features"]) == FEATURES == tuple(FEATURES)
    assert len(data["weights"]) == len(features("x"))
    assert data["training"]["held_out_accuracy"] >= 0.95


# -- the model ------------------------------------------------------------------------------------
def test_model_manifest_matches_the_shipped_file() -> None:
    import hashlib

    model_dir = Path(lens.__file__).parent / "rerank" / "model"
    manifest = json.loads((model_dir / "MANIFEST.json").read_text())
    for name in ("model.onnx", "tokenizer.json"):
        assert hashlib.sha256((model_dir / name).read_bytes()).hexdigest() == manifest["outputs"][name]
    assert manifest["cosine_int8_vs_fp32"]["min"] >= 0.98
    assert (model_dir / "NOTICE").is_file()


@needs_extra
def test_embeddings_are_unit_vectors_and_rank_the_related_text_first() -> None:
    from lens.rerank.embed import DIM, get_embedder

    emb = get_embedder()
    docs = [
        "function parse_http_date (parse http date)\n"
        "def parse_http_date(value):\n  return time.strptime(value)",
        "class ZipFile (zip file)\nclass ZipFile:\n  def read(self, name):",
        "function escape (escape)\ndef escape(s): return s.replace('&', '&amp;')",
    ]
    vecs, tokens = emb.embed(docs)
    assert vecs.shape == (3, DIM) and tokens > 0
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    for query, want in [("convert an http date string to a time", 0), ("read a file out of an archive", 1)]:
        q = emb.embed_query(query)
        assert int(np.argmax(vecs @ q)) == want
    before = emb.query_cache_hits
    emb.embed_query("read a file out of an archive")
    assert emb.query_cache_hits == before + 1


@needs_extra
def test_long_documents_are_cut_at_128_tokens() -> None:
    from lens.rerank.embed import MAX_TOKENS, get_embedder

    assert get_embedder().token_counts(["word " * 1000]) == [MAX_TOKENS]


@needs_extra
def test_documents_are_cut_at_the_cap_and_identical_ones_run_once() -> None:
    from lens.rerank.embed import get_embedder

    emb = get_embedder()
    long = "parse the header " * 100
    texts = [long, "short text", long, "short text", "another"]
    vecs, tokens = emb.embed(texts, max_tokens=48, batch_size=2)
    # Three distinct texts run: the long one cut to 48 tokens ([CLS] ... [SEP]), the others whole.
    assert tokens == 48 + sum(emb.token_counts(["short text", "another"]))
    assert np.array_equal(vecs[0], vecs[2]) and np.array_equal(vecs[1], vecs[3])
    # A text's vector hardly depends on its batch (the int8 model quantizes activations per batch, so
    # its neighbours move it by about as much as quantization itself: cosine ~0.99).
    alone, _ = emb.embed(["short text"])
    assert float(alone[0] @ vecs[1]) > 0.98
    cut, _ = emb.embed([long], max_tokens=48)
    assert float(cut[0] @ vecs[0]) > 0.98


# -- vectors in the index -------------------------------------------------------------------------
@pytest.fixture
def code_root(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "code", CODE)


# -- the query adapter ----------------------------------------------------------------------------
@needs_extra
def test_query_adapter_moves_questions_and_the_identity_changes_no_ranking(
    code_root: Path, tmp_path: Path
) -> None:
    from lens.rerank.embed import DIM, get_embedder

    emb = get_embedder()
    shipped = emb.query_adapter
    # An index whose vectors were made before (or without) any adapter: only the question side moves.
    idx = lens.Index.build(code_root, tmp_path / "idx", semantic=True)
    questions = [
        "read one member out of an archive",
        "escape markup characters for html",
        "convert an http date string to a time",
    ]

    def ranking(q: str) -> list[tuple[str, int, float]]:
        r = idx.search(q, k=10)
        assert r.info["stages"]["stage_c"] == "ran"
        return [(h.path, h.line, h.score) for h in r.hits]

    try:
        emb.set_query_adapter(None)
        plain = {q: emb.embed_query(q) for q in questions}
        before = {q: ranking(q) for q in questions}
        emb.set_query_adapter(np.eye(DIM, dtype=np.float32))
        for q in questions:
            assert np.allclose(emb.embed_query(q), plain[q], atol=1e-6)
            # The same hits in the same order; a score may move in its last float digit (a product with the
            # identity rounds as the CPU's matmul kernel does), never more.
            now = ranking(q)
            assert [(p, line) for p, line, _ in now] == [(p, line) for p, line, _ in before[q]]
            assert [s for *_, s in now] == pytest.approx([s for *_, s in before[q]], rel=1e-6)
        w = np.eye(DIM) + 0.2 * np.random.default_rng(0).standard_normal((DIM, DIM))
        emb.set_query_adapter(w.astype(np.float32))
        q = questions[0]
        want = w @ plain[q]
        want /= np.linalg.norm(want)
        got = emb.embed_query(q)
        assert np.allclose(got, want, atol=1e-4) and not np.allclose(got, plain[q], atol=1e-2)
        assert abs(float(np.linalg.norm(got)) - 1.0) < 1e-5
        assert ranking(q)  # the old index still searches with the moved question
        with pytest.raises(ValueError, match="384 x 384"):
            emb.set_query_adapter(np.eye(3, dtype=np.float32))
    finally:
        emb.set_query_adapter(shipped)


def test_shipped_query_adapter_matches_its_manifest_and_was_fit_on_held_out_code() -> None:
    import hashlib

    model_dir = Path(lens.__file__).parent / "rerank" / "model"
    manifest = json.loads((model_dir / "query_adapter.json").read_text())
    w = np.load(model_dir / "query_adapter.npy")
    assert hashlib.sha256((model_dir / "query_adapter.npy").read_bytes()).hexdigest() == manifest["sha256"]
    model = json.loads((model_dir / "MANIFEST.json").read_text())
    assert manifest["model_sha256"] == model["outputs"]["model.onnx"]
    assert w.shape == (384, 384) and np.isfinite(w).all()
    # Fit from the identity with a pull back to it: a nudge, not a new space.
    assert 0.0 < float(np.linalg.norm(w.astype(np.float32) - np.eye(384))) < 20.0
    # Never the tuning set's packages (its validation set) nor the dev corpus (CPython's stdlib).
    trained_on = set(manifest["training"]["packages"])
    assert not trained_on & set(manifest["held_out"]["packages"])
    assert manifest["validation_best"]["dense_r100"] > manifest["validation_identity"]["dense_r100"]


def test_query_adapter_fit_finds_a_hidden_rotation_and_the_pull_holds_it_at_the_identity() -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "train_query_adapter.py"
    spec = importlib.util.spec_from_file_location("train_query_adapter", path)
    assert spec is not None and spec.loader is not None
    tqa = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tqa)
    rng = np.random.default_rng(0)
    dim = 384
    rotation = np.linalg.qr(rng.standard_normal((dim, dim)))[0]

    def pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
        q = rng.standard_normal((n, dim))
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        d = q @ rotation.T + 0.05 * rng.standard_normal((n, dim))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        return q.astype(np.float32), d.astype(np.float32)

    q, d = pairs(1024)
    vq, vd = pairs(200)
    val = (vq, vd, [[i] for i in range(200)])
    eye = np.eye(dim, dtype=np.float32)
    assert tqa.validate(eye, *val)["dense_mrr10"] < 0.1  # the identity: chance
    w, best, history = tqa.train(
        q, d, val, epochs=2, batch=256, lr=1e-2, l2=0.0, temperature=0.05, seed=0, log=False
    )
    assert best["dense_mrr10"] > 0.9 and w.shape == (dim, dim) and len(history) == 3
    held, best_held, _ = tqa.train(
        q, d, val, epochs=1, batch=256, lr=1e-2, l2=1e4, temperature=0.05, seed=0, log=False
    )
    assert float(np.abs(held - eye).max()) < 0.05 and best_held["dense_mrr10"] < 0.1


@needs_extra
def test_query_adapter_loads_only_for_its_model_and_can_be_turned_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lens.rerank.embed import DIM, load_query_adapter, model_sha256

    assert load_query_adapter(tmp_path) is None  # none shipped there
    w = np.eye(DIM, dtype=np.float16)
    np.save(tmp_path / "query_adapter.npy", w)
    (tmp_path / "query_adapter.json").write_text(json.dumps({"model_sha256": model_sha256()}))
    got = load_query_adapter(tmp_path)
    assert got is not None and got.shape == (DIM, DIM) and got.dtype == np.float32
    assert np.array_equal(got, np.eye(DIM))
    monkeypatch.setenv("LENS_QUERY_ADAPTER", "0")
    assert load_query_adapter(tmp_path) is None
    monkeypatch.delenv("LENS_QUERY_ADAPTER")
    (tmp_path / "query_adapter.json").write_text(json.dumps({"model_sha256": "0" * 64}))
    assert load_query_adapter(tmp_path) is None  # fit for another model file: not used
    (tmp_path / "query_adapter.json").write_text(json.dumps({"model_sha256": model_sha256()}))
    np.save(tmp_path / "query_adapter.npy", np.eye(8, dtype=np.float32))
    with pytest.raises(lens.SemanticUnavailableError, match="384 x 384"):
        load_query_adapter(tmp_path)
    (tmp_path / "query_adapter.json").unlink()
    assert load_query_adapter(tmp_path) is None  # no manifest: no telling which model it was fit for


@needs_extra
def test_semantic_build_embeds_and_stage_c_runs_for_questions(code_root: Path, tmp_path: Path) -> None:
    idx = lens.Index.build(code_root, tmp_path / "idx", semantic=True)
    meta = json.loads((tmp_path / "idx" / "semantic" / "CURRENT.json").read_text())
    assert meta["count"] >= 8 and meta["embedded"] == meta["count"]
    r = idx.search("compute the sha256 checksum of a file", k=5)
    assert r.info["stages"]["stage_c"] == "ran"
    assert "stage_c" in r.timings_ms
    top = r.hits[0]
    # The definition index already ranks it first by a clear margin: the cutoff keeps that order.
    assert top.path == "crypto/digest.py"
    # A definition that no lexical hit reached enters as a hit on its header line.
    r2 = idx.search("read one member out of an archive", k=5)
    assert any(h.path == "archive/zips.py" and h.text.strip().startswith("def read_member") for h in r2.hits)


@needs_extra
def test_build_embeds_by_default_with_the_extra_and_semantic_false_opts_out(
    code_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LENS_SEMANTIC", raising=False)
    idx = lens.Index.build(code_root, tmp_path / "default")
    assert (tmp_path / "default" / "semantic" / "CURRENT.json").is_file() and "stage_c" in idx.stages
    lens.Index.build(code_root, tmp_path / "off", semantic=False)
    assert not (tmp_path / "off" / "semantic").exists()
    lens.Index.build(code_root, tmp_path / "nosym", symbols=False)  # nothing to embed: no vectors
    assert not (tmp_path / "nosym" / "semantic").exists()
    monkeypatch.setenv("LENS_SEMANTIC", "0")
    lens.Index.build(code_root, tmp_path / "env-off")
    assert not (tmp_path / "env-off" / "semantic").exists()


@needs_extra
def test_embed_index_embeds_an_existing_index_directory(code_root: Path, tmp_path: Path) -> None:
    lens.Index.build(code_root, tmp_path / "idx", semantic=False)
    meta = lens.rerank.embed_index(tmp_path / "idx")
    assert meta["count"] >= 8 and meta["embedded"] == meta["count"]
    again = lens.rerank.embed_index(tmp_path / "idx")  # nothing changed: every vector reused
    assert again["embedded"] == 0 and again["reused"] == meta["count"]
    assert (
        lens.Index.open(tmp_path / "idx")
        .search("compute the sha256 checksum of a file")
        .info["stages"]["stage_c"]
        == "ran"
    )


@needs_extra
def test_identifier_queries_are_unchanged_by_stage_c(code_root: Path, tmp_path: Path) -> None:
    with_c = lens.Index.build(code_root, tmp_path / "with", semantic=True)
    without = lens.Index.build(code_root, tmp_path / "without", semantic=False)
    assert "stage_c" not in without.stages
    for q in ("parse_http_date", "ArchiveReader", "escape_markup", "hashlib.sha256", "zf.read"):
        a, b = with_c.search(q, k=10), without.search(q, k=10)
        assert [(h.path, h.line, h.score) for h in a.hits] == [(h.path, h.line, h.score) for h in b.hits]
        assert a.info["stages"]["stage_c"] == "ran" and b.info["stages"]["stage_c"] == "absent"


@needs_extra
def test_gated_and_cutoff_counters_come_from_real_calls(code_root: Path, tmp_path: Path) -> None:
    from lens.canary import Canary
    from lens.flags import Flags
    from lens.guard import Guard

    idx = lens.Index.build(code_root, tmp_path / "idx", semantic=True)
    idx.flags = Flags()
    idx.guard = Guard()
    idx.canary = Canary(idx.guard, idx.flags)
    idx.search("parse_http_date")  # identifier: not gated
    idx.search("parse http date")  # words that spell the top definition: gated, then cut off
    idx.search("read one member out of an archive")  # gated and reranked (no clear lexical margin)
    counters = idx.guard.stage_counters()["stage_c"]
    assert counters["gated"] == 2
    assert counters["cutoff"] == 1
    perf = idx.dashboard()["dashboard_state"]["metrics"]["performance"]["stageC"]
    assert perf["semantic_gating_rate"] == pytest.approx(2 / 3)
    assert perf["confidence_cutoff_rate"] == pytest.approx(1 / 3)


@needs_extra
def test_semantic_false_leaves_no_vectors_and_stage_c_absent(code_root: Path, tmp_path: Path) -> None:
    lens.Index.build(code_root, tmp_path / "idx", semantic=True)
    idx = lens.Index.build(code_root, tmp_path / "idx", semantic=False)  # a rebuild drops old vectors
    assert not (tmp_path / "idx" / "semantic").exists()
    assert idx.search("compute a file checksum").info["stages"]["stage_c"] == "absent"
    assert (
        lens.Index.open(tmp_path / "idx").search("compute a file checksum").info["stages"]["stage_c"]
        == "absent"
    )


@needs_extra
def test_open_attaches_stage_c_from_the_stored_vectors(code_root: Path, tmp_path: Path) -> None:
    lens.Index.build(code_root, tmp_path / "idx", semantic=True)
    idx = lens.Index.open(tmp_path / "idx")
    assert idx.search("escape markup characters for html").info["stages"]["stage_c"] == "ran"


@needs_extra
def test_refresh_reembeds_only_changed_definitions(code_root: Path, tmp_path: Path) -> None:
    idx = lens.Index.build(code_root, tmp_path / "idx", semantic=True)
    before = json.loads((tmp_path / "idx" / "semantic" / "CURRENT.json").read_text())
    (code_root / "web" / "markup.py").write_bytes(
        CODE["web/markup.py"] + b"\ndef strip_tags(text):\n    return text\n"
    )
    (code_root / "crypto" / "digest.py").unlink()
    idx.refresh()
    after = json.loads((tmp_path / "idx" / "semantic" / "CURRENT.json").read_text())
    assert after["generation"] == before["generation"] + 1
    assert after["embedded"] == 1  # strip_tags; the unchanged definitions are reused
    assert after["count"] == before["count"] + 1 - 1  # file_checksum is gone
    hits = idx.search("remove the tags from a piece of html", k=5).hits
    assert any(h.path == "web/markup.py" for h in hits)
    assert not any(h.path == "crypto/digest.py" for h in idx.search("sha256 checksum of a file", k=10).hits)


@needs_extra
def test_progress_reports_embedding(code_root: Path, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    lens.Index.build(code_root, tmp_path / "idx", semantic=True, progress=lambda d, t: seen.append((d, t)))
    count = json.loads((tmp_path / "idx" / "semantic" / "CURRENT.json").read_text())["count"]
    assert (count, count) in seen and (0, count) in seen  # the embedding phase, counted in definitions


@needs_extra
def test_a_failing_model_costs_stage_c_not_the_query(
    code_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lens.rerank.embed as embed

    idx = lens.Index.build(code_root, tmp_path / "idx", semantic=True)

    class Broken:
        def embed_query(self, text: str) -> None:
            raise RuntimeError("onnxruntime failed")

    monkeypatch.setattr(embed, "get_embedder", lambda: Broken())
    r = idx.search("read one member out of an archive", k=5)
    assert r.info["stages"]["stage_c"] == "error" and r.hits


# -- without the extra ----------------------------------------------------------------------------
_BLOCK = (
    "import sys\n"
    "class _Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('onnxruntime', 'tokenizers'):\n"
    "            raise ImportError(name)\n"
    "sys.meta_path.insert(0, _Block())\n"
)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LENS_SEMANTIC"}  # the default, as users get it
    return subprocess.run(
        [sys.executable, "-c", _BLOCK + code], capture_output=True, text=True, timeout=120, env=env
    )


def test_without_the_extra_lens_works_and_stage_c_is_absent(code_root: Path, tmp_path: Path) -> None:
    code = (
        "import lens, json\n"
        f"idx = lens.Index.build({str(code_root)!r}, {str(tmp_path / 'idx')!r})\n"
        "r = idx.search('compute the sha256 checksum of a file')\n"
        "print(json.dumps([lens.rerank.available(), r.info['stages']['stage_c'], len(r.hits),"
        " 'onnxruntime' in __import__('sys').modules]))\n"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    avail, stage, n, loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert avail is False and stage == "absent" and n > 0 and loaded is False
    assert not (tmp_path / "idx" / "semantic").exists()


def test_semantic_true_without_the_extra_says_what_to_install(code_root: Path, tmp_path: Path) -> None:
    code = (
        "import lens\n"
        "try:\n"
        f"    lens.Index.build({str(code_root)!r}, {str(tmp_path / 'idx')!r}, semantic=True)\n"
        "except lens.SemanticUnavailableError as e:\n"
        "    print('ERR', isinstance(e, ImportError), e)\n"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert "ERR True" in out.stdout and "lens[semantic]" in out.stdout
    assert not (tmp_path / "idx").exists()  # nothing was built


# -- exact dense search and the tail's feedback ---------------------------------------------------
@needs_extra
def test_exact_search_matches_numpy_over_the_stored_int8_vectors(code_root: Path, tmp_path: Path) -> None:
    from lens.rerank.embed import DIM
    from lens.rerank.store import VectorStore

    lens.Index.build(code_root, tmp_path / "idx", semantic=True)
    store = VectorStore.load(tmp_path / "idx")
    assert store is not None and store.count >= 8
    want_all = np.asarray(store.vectors, dtype=np.float64) * store.scales[:, None]
    rng = np.random.default_rng(3)
    for _ in range(5):
        q = rng.standard_normal(DIM).astype(np.float32)
        q /= np.linalg.norm(q)
        want = want_all @ q.astype(np.float64)
        assert np.allclose(store.scores(q), want, atol=1e-5)
        assert np.allclose(store.scores(q, [3, 0, 3]), want[[3, 0, 3]], atol=1e-5)
        rows, sims = store.nearest(q, 4)
        assert rows.tolist() == np.argsort(-want, kind="stable")[:4].tolist()
        assert np.allclose(sims, want[rows], atol=1e-5)
    assert store.nearest(q, 0)[0].size == 0 and store.nearest(q, 10_000)[0].size == store.count
    with pytest.raises(ValueError):
        store.scores(np.zeros(DIM + 1, dtype=np.float32))
    with pytest.raises(lens.LensError):
        store._native.scores_of(q.tobytes(), [store.count])


@needs_extra
def test_feedback_reranks_the_tail_and_keeps_the_head(
    code_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lens.pipeline import StageCall
    from lens.rerank.stage import FusionConfig, SemanticStage

    idx = lens.Index.build(code_root, tmp_path / "idx", semantic=True)
    query = "read one member out of an archive"
    hits = idx.search(query, k=50, mode="symbol").hits

    def rerank(cfg: FusionConfig) -> tuple[list[tuple[str, int]], int]:
        stage = SemanticStage(idx.index_dir, cfg)
        store = stage.store()
        assert store is not None
        searches = []
        nearest = store.nearest
        monkeypatch.setattr(store, "nearest", lambda q, n: searches.append(n) or nearest(q, n))
        call = StageCall(query, 50, "auto", list(hits), 300.0, idx.flags.snapshot(), {}, None, "stage_c")
        out = stage.rerank(call)
        assert out is not None
        scores = [h.score for h in out]
        assert scores == sorted(scores, reverse=True)
        return [(h.path, h.line) for h in out], len(searches)

    off, n_off = rerank(FusionConfig(feedback_defs=0, feedback_head=2, margin_ratio=1e9))
    on, n_on = rerank(FusionConfig(feedback_defs=2, feedback_head=2, margin_ratio=1e9))
    assert (n_off, n_on) == (1, 2)  # the feedback is one more search of the whole index
    assert on[:2] == off[:2]
    assert sorted(on) == sorted(off)  # a corpus this small: every definition is in both lists


@needs_extra
def test_large_generations_get_a_graph_searched_with_exact_rescoring(
    code_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lens.rerank import ann
    from lens.rerank.embed import DIM
    from lens.rerank.store import VectorStore

    if not ann.available():
        pytest.skip("usearch (part of the lens[semantic] extra) is not installed")
    # Below the threshold: exact search, no graph.
    lens.Index.build(code_root, tmp_path / "exact", semantic=True)
    exact = VectorStore.load(tmp_path / "exact")
    assert exact is not None and exact._ann is None and "ann" not in exact.meta
    # The threshold forced down to this small corpus: the build writes the graph, search goes through it.
    monkeypatch.setenv("LENS_ANN_MIN_VECTORS", "1")
    idx = lens.Index.build(code_root, tmp_path / "idx", semantic=True)
    store = VectorStore.load(tmp_path / "idx")
    assert store is not None and store._ann is not None and store.meta["ann"]["kind"] == "usearch-hnsw"
    gen = store.meta["generation"]
    assert (tmp_path / "idx" / "semantic" / f"ann-{gen}.usearch").is_file()
    calls = []
    search = ann.search
    monkeypatch.setattr(ann, "search", lambda *a: calls.append(a) or search(*a))
    rng = np.random.default_rng(5)
    for _ in range(5):
        q = rng.standard_normal(DIM).astype(np.float32)
        q /= np.linalg.norm(q)
        rows, sims = store.nearest(q, 3)
        want_rows, want_sims = exact.nearest(q, 3)  # same documents, same vectors: same answer
        assert rows.tolist() == want_rows.tolist() and np.allclose(sims, want_sims)
    assert len(calls) == 5
    assert idx.search("read one member out of an archive", k=5).info["stages"]["stage_c"] == "ran"
    # A fresh process whose first question loads the graph before the model (usearch imported before
    # onnxruntime crashed the process; see lens.rerank.ann).
    code = (
        "import lens\n"
        f"idx = lens.Index.open({str(tmp_path / 'idx')!r})\n"
        "r = idx.search('read one member out of an archive', k=5)\n"
        "print(r.info['stages']['stage_c'], r.hits[0].path)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "ran"
    # A refresh writes a new generation with its own graph and drops the old one.
    (code_root / "net" / "dates.py").write_bytes(
        (code_root / "net" / "dates.py").read_bytes() + b"\ndef g(): pass\n"
    )
    idx.refresh()
    files = sorted(f.name for f in (tmp_path / "idx" / "semantic").iterdir() if f.name.startswith("ann-"))
    assert files == [f"ann-{gen + 1}.usearch"]
    lens.rerank.remove_vectors(tmp_path / "idx")
    assert not (tmp_path / "idx" / "semantic").exists()


# -- the learned ranker ---------------------------------------------------------------------------
def test_shipped_ranker_matches_its_features_and_was_fit_on_the_tuning_set() -> None:
    from lens.rerank.ranker import FEATURES, RANKER_PATH, load_ranker

    spec = json.loads(RANKER_PATH.read_text())
    assert tuple(spec["features"]) == FEATURES and len(spec["weights"]) == len(FEATURES)
    assert spec["fit"]["queries"] == "queries.jsonl" and spec["fit"]["script"] == "scripts/train_ranker.py"
    ranker = load_ranker()
    assert ranker is not None and ranker.weights == tuple(spec["weights"])
    # Every signal counts in its favour: more lexical or dense evidence never lowers a candidate.
    assert all(w > 0 for w in ranker.weights)


def test_ranker_can_be_turned_off_and_ignores_a_file_of_other_features(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lens.rerank.ranker import FEATURES, RANKER_PATH, load_ranker

    monkeypatch.setenv("LENS_RANKER", "0")
    assert load_ranker() is None
    monkeypatch.delenv("LENS_RANKER")
    other = tmp_path / "ranker.json"
    other.write_text(
        json.dumps({"features": [*FEATURES[:-1], "something_else"], "weights": [1.0] * len(FEATURES)})
    )
    assert load_ranker(other) is None
    assert load_ranker(tmp_path / "absent.json") is None
    for bad in (
        {"features": list(FEATURES), "weights": [1.0] * (len(FEATURES) - 1)},
        {"features": list(FEATURES), "weights": [1.0] * (len(FEATURES) - 1) + ["nan"]},
        {"features": list(FEATURES)},
        {"features": list(FEATURES), "weights": None},
        [1, 2, 3],
    ):
        other.write_text(json.dumps(bad))
        assert load_ranker(other) is None, bad
    assert load_ranker(RANKER_PATH) is not None


def test_word_share_counts_the_questions_words_a_name_spells() -> None:
    from lens.rerank.ranker import query_words, word_share
    from lens.rerank.store import word_set

    words = query_words("Parse the HTTP date header")
    assert words == {"parse", "http", "date", "header"}
    assert word_set("parseHTTPDate") == {"parse", "http", "date"}
    assert word_share(words, word_set("parse_http_date")) == 0.75
    assert word_share(words, word_set("net/dates.py")) == 0.0
    assert word_share(frozenset(), word_set("anything")) == 0.0


@needs_extra
def test_ranker_with_the_rrf_weights_ranks_as_the_plain_fusion_and_explains_itself(
    code_root: Path, tmp_path: Path
) -> None:
    from lens.rerank.ranker import Ranker, load_ranker
    from lens.rerank.stage import FusionConfig, SemanticStage

    idx = lens.Index.build(code_root, tmp_path / "idx", semantic=True)
    query = "read one member out of an archive"
    hits = idx.search(query, k=50, mode="symbol").hits
    from lens.rerank.embed import get_embedder

    vector = get_embedder().embed_query(query)
    plain = SemanticStage(idx.index_dir, FusionConfig(use_ranker=False))
    store = plain.store()
    assert store is not None and plain.ranker() is None
    # The oracle: a ranker weighing only the two reciprocal rank terms, 1 each, is the plain RRF.
    as_rrf = SemanticStage(idx.index_dir)
    as_rrf._ranker = Ranker((1.0, 1.0, 0.0, 0.0, 0.0, 0.0))
    want = plain._fuse(hits, vector, store, query)
    got = as_rrf._fuse(hits, vector, store, query)
    assert [(h.path, h.line, h.score) for h in got] == [(h.path, h.line, h.score) for h in want]
    assert all(any(w.startswith("rank:") for w in h.why) for h in got if "semantic" in h.why)
    # The shipped weights: the definition the question describes first, its why naming the signals.
    shipped = SemanticStage(idx.index_dir)
    assert shipped.ranker() == load_ranker()
    out = shipped._fuse(hits, vector, store, query)
    assert out[0].text.strip().startswith("def read_member")
    assert "semantic" in out[0].why and any(w.startswith("rank:") for w in out[0].why)
    scores = [h.score for h in out]
    assert scores == sorted(scores, reverse=True)


def test_ranker_fit_finds_the_signal_that_marks_the_gold() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    try:
        import train_ranker
    finally:
        sys.path.pop(0)
    rng = np.random.default_rng(7)
    data = []
    for _ in range(60):
        x = rng.normal(size=(30, 6))
        y = np.zeros(30)
        y[int(np.argmax(x[:, 4]))] = 1.0  # the fifth signal alone says which candidate is gold
        data.append((x, y, [("p", i) for i in range(30)], None))
    w = train_ranker.fit_listwise(data, l2=0.01, iters=200)
    assert int(np.argmax(w)) == 4 and w[4] > 3 * np.abs(np.delete(w, 4)).max()
