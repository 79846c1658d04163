"""Stage-B precise data: LSIF (a fixture written by the spec), SCIP (hand-encoded, and the real
scip-python index of the dev corpus when ../shared is present), and malformed input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

import lens
from tests.conftest import span_ok

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

# Line 4 puts two-byte and four-byte (two UTF-16 units) characters before a reference, so byte
# offsets, code points and UTF-16 code units all differ there.
UTIL = 'import os\ndef greet(name):\n    return name\n\nx = "é𝄞"; greet(x)\n'
OTHER = "def lonely():\n    pass\n"


def utf16(line: str, col_cp: int) -> int:
    return len(line[:col_cp].encode("utf-16-le")) // 2


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "src/util.py").write_text(UTIL, encoding="utf-8")
    (root / "src/other.py").write_text(OTHER, encoding="utf-8")
    return root


@pytest.fixture
def idx(repo: Path, tmp_path: Path) -> lens.Index:
    return lens.Index.build(repo, tmp_path / "idx")


def lsif_records(root: Path) -> list[dict[str, Any]]:
    lines = UTIL.split("\n")
    ref_col = lines[4].index("greet(x)")
    start16 = utf16(lines[4], ref_col)
    pos = lambda line, ch: {"line": line, "character": ch}  # noqa: E731
    uri = f"file://{root}/src/util.py"
    return [
        {
            "id": 1,
            "type": "vertex",
            "label": "metaData",
            "version": "0.5.0",
            "positionEncoding": "utf-16",
            "projectRoot": f"file://{root}",
        },
        {"id": 2, "type": "vertex", "label": "project", "kind": "python"},
        {"id": 3, "type": "vertex", "label": "document", "uri": uri, "languageId": "python"},
        # LSIF 0.4 ranges may carry a tag with the symbol kind (12: Function) and the full range.
        {
            "id": 4,
            "type": "vertex",
            "label": "range",
            "start": pos(1, 4),
            "end": pos(1, 9),
            "tag": {
                "type": "definition",
                "text": "greet",
                "kind": 12,
                "fullRange": {"start": pos(1, 0), "end": pos(2, 15)},
            },
        },
        {"id": 5, "type": "vertex", "label": "resultSet"},
        {"id": 6, "type": "edge", "label": "next", "outV": 4, "inV": 5},
        {"id": 7, "type": "vertex", "label": "definitionResult"},
        {"id": 8, "type": "edge", "label": "textDocument/definition", "outV": 5, "inV": 7},
        # 0.4 style: `document` on the item edge.
        {"id": 9, "type": "edge", "label": "item", "outV": 7, "inVs": [4], "document": 3},
        {"id": 10, "type": "vertex", "label": "referenceResult"},
        {"id": 11, "type": "edge", "label": "textDocument/references", "outV": 5, "inV": 10},
        {"id": 12, "type": "vertex", "label": "range", "start": pos(4, start16), "end": pos(4, start16 + 5)},
        {"id": 13, "type": "edge", "label": "next", "outV": 12, "inV": 5},
        # 0.5 style: `shard`, and properties on reference items.
        {
            "id": 14,
            "type": "edge",
            "label": "item",
            "outV": 10,
            "inVs": [4],
            "shard": 3,
            "property": "definitions",
        },
        {
            "id": 15,
            "type": "edge",
            "label": "item",
            "outV": 10,
            "inVs": [12],
            "shard": 3,
            "property": "references",
        },
        {"id": 16, "type": "edge", "label": "contains", "outV": 3, "inVs": [4, 12]},
        {
            "id": 17,
            "type": "vertex",
            "label": "moniker",
            "kind": "export",
            "scheme": "python",
            "identifier": "util:greet",
        },
        {"id": 18, "type": "edge", "label": "moniker", "outV": 5, "inV": 17},
        {"id": 19, "type": "vertex", "label": "hoverResult", "result": {"contents": ["def greet(name)"]}},
        {"id": 20, "type": "edge", "label": "textDocument/hover", "outV": 5, "inV": 19},
        # A document the index does not hold: counted, not an error.
        {
            "id": 21,
            "type": "vertex",
            "label": "document",
            "uri": f"file://{root}/gone.py",
            "languageId": "python",
        },
    ]


def write_lsif(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_lsif_attach_maps_utf16_to_bytes(idx: lens.Index, repo: Path, tmp_path: Path) -> None:
    counts = idx.attach_lsif(write_lsif(tmp_path / "dump.lsif", lsif_records(repo)))
    assert counts["files"] == 1 and counts["definitions"] == 1 and counts["references"] == 1
    assert counts["unmatched_documents"] == 1
    (d,) = idx.definitions("greet")
    assert d.symbol is not None and d.symbol.precise and d.symbol.kind == "function"
    data = UTIL.encode()
    assert data[d.byte_start : d.byte_end] == b"greet"
    assert d.symbol.def_start == data.index(b"def greet")
    (r,) = idx.references("greet")
    assert r.symbol is not None and r.symbol.precise
    assert data[r.byte_start : r.byte_end] == b"greet" and r.line == 5
    assert r.column == UTIL.split("\n")[4].index("greet(x)")
    assert span_ok(repo, d) and span_ok(repo, r)
    s = idx.stats()
    assert s["precise_coverage"] == pytest.approx(0.5)  # util.py of {util.py, other.py}
    assert s["symbol_coverage"] == pytest.approx(1.0)
    first = idx.search("greet", k=5).hits[0]
    assert first.why == ("definition",) and first.symbol is not None and first.symbol.precise
    # The attach is committed: a fresh open sees it.
    assert lens.Index.open(idx.index_dir).definitions("greet")[0].symbol.precise  # type: ignore[union-attr]


def test_attach_after_a_refresh_folds_the_deltas(idx: lens.Index, repo: Path, tmp_path: Path) -> None:
    (repo / "src/other.py").write_text("def lonely2():\n    pass\n", encoding="utf-8")
    idx.refresh()
    assert idx.stats()["symbols"]["symbol_files"] == 2
    idx.attach_lsif(write_lsif(tmp_path / "dump.lsif", lsif_records(repo)))
    assert idx.stats()["symbols"]["symbol_files"] == 1
    assert idx.definitions("greet")[0].symbol.precise  # type: ignore[union-attr]
    assert idx.definitions("lonely2")[0].path == "src/other.py"
    assert idx.definitions("lonely") == []
    # Changing a file with precise data drops its precise data (it described the old text).
    (repo / "src/util.py").write_text(UTIL + "\n", encoding="utf-8")
    idx.refresh()
    assert idx.stats()["precise_coverage"] == 0.0
    assert not idx.definitions("greet")[0].symbol.precise  # type: ignore[union-attr]


def test_lsif_json_array_form(idx: lens.Index, repo: Path, tmp_path: Path) -> None:
    p = tmp_path / "dump.json"
    p.write_text(json.dumps(lsif_records(repo)), encoding="utf-8")
    assert idx.attach_lsif(p)["definitions"] == 1


@pytest.mark.parametrize(
    ("mutate", "record"),
    [
        (lambda lines: [*lines[:2], "{not json", *lines[2:]], "line 3"),
        (
            lambda lines: [
                *lines,
                json.dumps({"id": 99, "type": "edge", "label": "next", "outV": 4, "inV": 77}),
            ],
            "line 22",
        ),
        (
            lambda lines: [
                *lines,
                json.dumps({"id": 98, "type": "vertex", "label": "range", "start": {"line": 1}}),
            ],
            "line 22",
        ),
        (lambda lines: [*lines, json.dumps({"type": "vertex", "label": "range"})], "line 22"),
    ],
)
def test_malformed_lsif_leaves_the_index_as_it_was(
    idx: lens.Index, repo: Path, tmp_path: Path, mutate: Any, record: str
) -> None:
    before = (idx.stats()["generation"], idx.definitions("greet"))
    lines = [json.dumps(r) for r in lsif_records(repo)]
    bad = tmp_path / "bad.lsif"
    bad.write_text("\n".join(mutate(lines)) + "\n", encoding="utf-8")
    with pytest.raises(lens.SymbolDataError) as info:
        idx.attach_lsif(bad)
    assert info.value.path == bad and info.value.record == record
    assert str(bad) in str(info.value) and record in str(info.value)
    assert isinstance(info.value, lens.LensError) and isinstance(info.value, ValueError)
    assert (idx.stats()["generation"], idx.definitions("greet")) == before
    assert lens.Index.open(idx.index_dir).definitions("greet") == before[1]


def test_missing_precise_file(idx: lens.Index, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        idx.attach_scip(tmp_path / "nope.scip")


# -- SCIP, hand-encoded (protobuf wire format) -------------------------------------------------------
def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def ld(field: int, payload: bytes) -> bytes:
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def vi(field: int, value: int) -> bytes:
    return varint(field << 3) + varint(value)


def packed(field: int, values: list[int]) -> bytes:
    return ld(field, b"".join(varint(v) for v in values))


def occurrence(rng: list[int], symbol: str, roles: int, enclosing: list[int] | None = None) -> bytes:
    body = packed(1, rng) + ld(2, symbol.encode()) + vi(3, roles)
    return body + (packed(7, enclosing) if enclosing else b"")


def scip_index() -> bytes:
    lines = UTIL.split("\n")
    col = utf16(lines[4], lines[4].index("greet(x)"))
    sym = "scip-python python demo 0.1 util/greet()."
    doc = (
        ld(1, b"src/util.py")
        + ld(2, occurrence([1, 4, 9], sym, 1, [1, 0, 2, 15]))
        + ld(2, occurrence([4, col, col + 5], sym, 8))
        + ld(2, occurrence([1, 10, 14], sym + "(name)", 1))  # a parameter: not indexed
        + ld(2, occurrence([0, 7, 9], "scip-python python python-stdlib 3.11 os/", 0))
        + ld(2, occurrence([2, 11, 15], "local 0", 8))
        + vi(6, 2)  # UTF16CodeUnitOffsetFromLineStart
    )
    tool = ld(1, b"hand") + ld(2, b"1.0")
    metadata = ld(2, tool) + ld(3, b"file:///x") + vi(4, 1)
    return ld(1, metadata) + ld(2, doc) + ld(2, ld(1, b"not/indexed.py"))


def test_scip_attach_and_build(idx: lens.Index, repo: Path, tmp_path: Path) -> None:
    p = tmp_path / "index.scip"
    p.write_bytes(scip_index())
    counts = idx.attach_scip(p)
    assert (counts["files"], counts["definitions"], counts["references"]) == (1, 1, 2)
    assert counts["unmatched_documents"] == 1
    (d,) = idx.definitions("greet")
    assert d.symbol is not None and d.symbol.precise and d.symbol.kind == "function"
    assert d.symbol.def_start == UTIL.encode().index(b"def greet")
    refs = idx.references("greet")
    assert [(r.line, r.column) for r in refs] == [(5, UTIL.split("\n")[4].index("greet(x)"))]
    assert span_ok(repo, d) and all(span_ok(repo, r) for r in refs)
    assert idx.definitions("name") == []
    # The same file at build time, in the same commit.
    built = lens.Index.build(repo, tmp_path / "idx2", scip=p)
    assert built.definitions("greet")[0].symbol.precise  # type: ignore[union-attr]
    assert built.stats()["precise_coverage"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("data", "record"),
    [
        (b"\x12\x7fshort", "byte 0"),
        (b"\x0b\x00", "byte 0"),  # wire type 3 (group start): not SCIP
        (
            ld(2, ld(1, b"src/util.py") + ld(2, packed(1, [1, 4]) + ld(2, b"a b c d f()."))),
            'document "src/util.py" occurrence #0',
        ),
        (ld(2, b"\x0a\xff"), "document #0"),
        (b"", "index"),
    ],
)
def test_malformed_scip_leaves_the_index_as_it_was(
    idx: lens.Index, repo: Path, tmp_path: Path, data: bytes, record: str
) -> None:
    bad = tmp_path / "bad.scip"
    bad.write_bytes(data)
    before = (idx.stats()["generation"], idx.definitions("greet"))
    with pytest.raises(lens.SymbolDataError) as info:
        idx.attach_scip(bad)
    assert info.value.record == record and str(bad) in str(info.value)
    assert (idx.stats()["generation"], idx.definitions("greet")) == before
    # A build with it fails too, and the index already in that directory stays in force.
    with pytest.raises(lens.SymbolDataError):
        lens.Index.build(repo, idx.index_dir, scip=bad)
    assert lens.Index.open(idx.index_dir).stats()["generation"] == before[0]


# -- the real scip-python 0.6.6 index of the dev corpus ------------------------------------------------
@pytest.mark.corpus
@pytest.mark.skipif(
    not (SHARED / "eval/prepare_dev.sh").exists(),
    reason="../shared (the dev corpus and its SCIP index) is absent",
)
def test_real_scip_index_of_the_dev_corpus(tmp_path: Path) -> None:
    subprocess.run(
        [str(SHARED / "eval/prepare_dev.sh"), str(tmp_path / "dev")], check=True, capture_output=True
    )
    root = tmp_path / "dev/cpython-lib"
    idx = lens.Index.build(root, tmp_path / "idx", scip=tmp_path / "dev/cpython-lib.scip", semantic=False)
    s = idx.stats()
    assert s["precise_coverage"] > 0.9, s["symbols"]
    (d,) = idx.definitions("_set_decoded_chars")
    assert (d.path, d.line) == ("_pyio.py", 2249)
    assert d.symbol is not None and d.symbol.precise and d.symbol.container == "TextIOWrapper"
    assert d.symbol.kind == "method"
    assert span_ok(root, d)
    hits = idx.search("load_stop", k=10).hits
    assert (hits[0].path, hits[0].line, hits[0].why) == ("pickle.py", 1742, ("definition",))
    assert all(span_ok(root, h) for h in hits)
