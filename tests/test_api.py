"""The public API end to end on a small generated tree: build, open, search, grep, stats, flags."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import lens
from lens.progress import ProgressBar
from tests.conftest import SAMPLE_FILES, span_ok


def test_build_defaults_to_a_hidden_dir_inside_the_root(sample_root: Path) -> None:
    idx = lens.Index.build(sample_root)
    assert idx.index_dir == (sample_root / ".lens").resolve()
    # The index never indexes itself.
    assert not any(h.path.startswith(".lens") for h in idx.grep("lens", ignore_case=True))
    again = lens.Index.build(sample_root)
    assert again.stats()["files"] == idx.stats()["files"]


def test_the_native_index_dir_is_a_str_as_its_stub_says(sample_index: lens.Index) -> None:
    native = lens._lens.NativeIndex.open(str(sample_index.index_dir))
    assert type(native.index_dir) is str and native.index_dir == str(sample_index.index_dir)
    assert type(native.root) is str


def test_stats_count_files_skips_and_format(sample_index: lens.Index, sample_root: Path) -> None:
    s = sample_index.stats()
    assert s["files"] == 8  # every sample file but the binary one
    assert s["skipped"] == {"binary": 1}
    assert s["skipped_examples"]["binary"] == ["bin/blob.bin"]
    files = [p for p in sample_root.rglob("*") if p.is_file() and p.suffix != ".bin"]
    assert s["bytes"] == sum(p.stat().st_size for p in files)
    assert s["format_version"] == lens.INDEX_FORMAT_VERSION
    assert s["index_bytes"] > s["bytes"]
    assert s["build_seconds"] > 0
    # Each step of the build, timed (wall and process CPU); together at most the whole build.
    phases = s["build_phases"]
    assert list(phases) == ["walk", "reading", "symbols", "symbol_file", "terms"]
    assert all(p["wall_s"] >= 0 and p["cpu_s"] >= 0 for p in phases.values())
    assert sum(p["wall_s"] for p in phases.values()) <= s["build_seconds"] + 0.01


def test_too_large_files_are_skipped_and_counted(sample_root: Path, tmp_path: Path) -> None:
    idx = lens.Index.build(sample_root, tmp_path / "small", max_file_bytes=100)
    s = idx.stats()
    assert s["skipped"]["too_large"] == sum(len(d) > 100 for d in SAMPLE_FILES.values() if b"\0" not in d)
    assert all(len((sample_root / h.path).read_bytes()) <= 100 for h in idx.grep("e"))


def test_symlinks_are_not_followed(sample_root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("SECRET_TOKEN\n")
    (sample_root / "link").symlink_to(outside)
    (sample_root / "file_link.txt").symlink_to(outside / "secret.txt")
    idx = lens.Index.build(sample_root, tmp_path / "idx2")
    assert idx.grep("SECRET_TOKEN") == []
    assert idx.stats()["skipped"]["symlink"] == 2


def test_gitignore_is_respected_inside_a_repo(sample_root: Path, tmp_path: Path) -> None:
    (sample_root / ".git").mkdir()
    (sample_root / ".gitignore").write_text("docs/\n")
    idx = lens.Index.build(sample_root, tmp_path / "gi")
    assert not any(h.path.startswith("docs/") for h in idx.grep("PM_RESUME"))


def test_search_finds_exact_identifier_first(sample_index: lens.Index, sample_root: Path) -> None:
    res = sample_index.search("parse_http_date", k=5, mode="lex")
    assert res.hits, res
    top = res.hits[0]
    assert (top.path, top.line) == ("src/http_date.py", 3)
    assert top.why[0] == "exact"
    assert top.text == "def parse_http_date(value):"
    assert set(res.timings_ms) == {"stage_a", "total"}
    assert res.truncated is False
    assert all(span_ok(sample_root, h) for h in res.hits)
    scores = [h.score for h in res.hits]
    assert scores == sorted(scores, reverse=True)


def test_search_matches_identifier_subtokens(sample_index: lens.Index) -> None:
    hits = sample_index.search("read file", k=10).hits
    lines = {(h.path, h.line) for h in hits}
    assert ("src/reader.py", 1) in lines  # readFile
    assert ("src/reader.py", 5) in lines  # read_file
    camel = next(h for h in hits if (h.path, h.line) == ("src/reader.py", 1))
    # Two words go to both engines (issue 10): Stage-A matches sub-tokens, the definition index names.
    assert "subtoken" in camel.why or "terms" in camel.why or camel.why[:2] == ("bm25f", "name")


def test_search_natural_language_ranks_term_rich_lines(sample_index: lens.Index) -> None:
    hits = sample_index.search("parse an HTTP date header", k=3).hits
    assert hits[0].path == "src/http_date.py"


def test_columns_are_code_points_and_spans_exact(sample_index: lens.Index, sample_root: Path) -> None:
    hits = sample_index.grep("PM_RESUME")
    assert [(h.path, h.line) for h in hits] == [
        ("docs/notes.md", 4),
        ("src/bad_utf8.txt", 1),
        ("src/bad_utf8.txt", 2),
    ]
    # b"valid start \xff\xfe then " : two invalid bytes count as one code point each.
    assert hits[1].column == len(b"valid start \xff\xfe then ".decode("utf-8", "replace"))
    assert all(span_ok(sample_root, h) for h in hits)
    k = sample_index.grep("Kelvin", ignore_case=True)
    assert len(k) == 1 and k[0].text.startswith("K\u212aelvin")
    assert all(span_ok(sample_root, h) for h in k)


def test_grep_options(sample_index: lens.Index) -> None:
    plain = sample_index.grep("PM_RESUME")
    ci = sample_index.grep("pm_resume", ignore_case=True)
    word = sample_index.grep("PM_RESUME", word=True)
    assert len(ci) == len(plain) == 3
    assert {h.path for h in word} == {"docs/notes.md", "src/bad_utf8.txt"}
    fixed = sample_index.grep("f.read()", regex=False)
    assert [h.line for h in fixed] == [3]
    assert sample_index.grep(r"^def \w+", limit=2) == sample_index.grep(r"^def \w+")[:2]
    assert sample_index.grep("zzz_nothing") == []
    # One hit per line, at its first match.
    line4 = next(h for h in ci if h.path == "docs/notes.md")
    assert line4.column == 0


def test_unicode_case_folding_matches_the_regex_crate(sample_index: lens.Index) -> None:
    # (?i)k also matches KELVIN SIGN, (?i)s matches LONG S: lens follows Unicode simple case folding.
    assert [h.line for h in sample_index.grep("kkelvin", ignore_case=True)] == [2]
    assert len(sample_index.grep("ss", ignore_case=True)) >= 1


def test_stage_a_native_flag_switches_to_the_baseline_path(sample_index: lens.Index) -> None:
    native = sample_index.search("PM_RESUME", k=10)
    sample_index.flags["stage_a.native"] = False
    baseline = sample_index.search("PM_RESUME", k=10)
    base_grep = sample_index.grep("PM_RESUME", ignore_case=True)
    sample_index.flags.reset("stage_a.native")
    assert (native.path, baseline.path) == ("native", "baseline")
    assert native.hits == baseline.hits
    assert base_grep == sample_index.grep("PM_RESUME", ignore_case=True)
    # The native path went through the index: candidates were counted only for it.
    assert native.info["candidates"] >= 1 and baseline.info["candidates"] == 0
    lens.flags["stage_a.native"] = False
    assert sample_index.search("PM_RESUME", k=10).path == "baseline"


def test_budget_marks_results_truncated(tmp_path: Path) -> None:
    root = tmp_path / "many"
    root.mkdir()
    for i in range(300):
        (root / f"f{i:03}.txt").write_text(("common word here\n" * 50) + f"unique{i}\n")
    idx = lens.Index.build(root, tmp_path / "many-idx")
    res = idx.search("common word", k=10_000, budget_ms=0)
    assert res.truncated
    assert res.info["budget_exhausted"] and res.info["visited"] < res.info["candidates"]
    full = idx.search("common word", k=20_000)
    assert not full.truncated and len(full.hits) == 300 * 50


def test_early_termination_is_counted(tmp_path: Path) -> None:
    root = tmp_path / "et"
    root.mkdir()
    for i in range(200):
        (root / f"m{i:03}.py").write_text(f"def helper_{i}():\n    return compute_total(x)\n")
    idx = lens.Index.build(root, tmp_path / "et-idx", semantic=False)
    res = idx.search("compute_total", k=5)
    assert len(res.hits) == 5 and res.info["early_terminated"]
    assert res.info["visited"] < res.info["candidates"]
    st = idx.stats()
    assert st["searches"]["early_terminated"] == 1
    assert st["early_termination_rate"] == 1.0
    flagged = idx.search("compute_total", k=500)
    assert len(flagged.hits) == 200 and not flagged.info["early_terminated"]
    assert idx.stats()["early_termination_rate"] == 0.5


def test_many_threads_share_one_index(sample_index: lens.Index) -> None:
    queries = ["PM_RESUME", "read file", "parse_http_date", "Kelvin", "notes"]
    expected = {q: sample_index.search(q, k=10).hits for q in queries}
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(50):
                for q in queries:
                    assert sample_index.search(q, k=10).hits == expected[q]
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_progress_callback_reports_bytes(sample_root: Path, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    lens.Index.build(sample_root, tmp_path / "p", progress=lambda d, t: seen.append((d, t)), semantic=False)
    # Three phases (reading every file, parsing the ones in supported languages, then the definition
    # index over every file), each from 0 up to its own total.
    starts = [i for i, (done, _) in enumerate(seen) if done == 0]
    assert starts[0] == 0 and len(starts) == 3
    for phase in (seen[: starts[1]], seen[starts[1] : starts[2]], seen[starts[2] :]):
        dones = [d for d, _ in phase]
        assert dones == sorted(dones) and phase[-1][0] == phase[-1][1] > 0
    assert seen[starts[1] - 1][1] > seen[starts[2] - 1][1]  # the sample has files tree-sitter does not parse


def test_progress_bar_draws_one_line_per_phase(sample_root: Path, tmp_path: Path) -> None:
    out = io.StringIO()
    bar = ProgressBar("indexing", stream=out)
    native = lens._lens.NativeIndex.build(str(sample_root), str(tmp_path / "p"), 1 << 20, bar)
    bar.close()
    assert native.stats()["files"] > 0
    lines = out.getvalue().split("\n")
    assert "(reading)" in lines[0] and "100.0%" in lines[0]
    assert "(symbols)" in lines[1] and "100.0%" in lines[1]
    assert "(terms)" in lines[2] and "100.0%" in lines[2]
    assert lines[3:] == [""]


def test_cli_index_search_grep(sample_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli-idx"
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "lens", *a], capture_output=True, text=True, check=False
    )
    r = run("index", str(sample_root), "--out", str(out), "-q")
    assert r.returncode == 0, r.stderr
    assert "indexed 8 files" in r.stdout
    r = run("grep", "PM_RESUME", "--index", str(out), "-w", "-n", "--column", str(sample_root / "docs"))
    assert r.returncode == 0
    # Outside the tree, paths print as `rg -n --column PM_RESUME ROOT/docs` prints them.
    assert (
        r.stdout.splitlines()[0] == f"{sample_root}/docs/notes.md:4:1:PM_RESUME and pm_resume and PM_RESUMED"
    )
    r = run("search", "parse_http_date", "--index", str(out), "-k", "1", "--json")
    doc = json.loads(r.stdout)
    assert doc["hits"][0]["path"] == "src/http_date.py" and "stage_a" in doc["timings_ms"]
    r = run("grep", "foo(", "--index", str(out))
    assert r.returncode == 2 and "position 3" in r.stderr


def test_cli_index_no_semantic_overrides_the_default(sample_root: Path, tmp_path: Path) -> None:
    """`lens index --no-semantic` builds no vectors even where the default would embed (the extra
    installed, `LENS_SEMANTIC` unset); the suite's own default (`LENS_SEMANTIC=0`) is lifted for it."""
    env = {k: v for k, v in os.environ.items() if k != "LENS_SEMANTIC"}
    out = tmp_path / "no-sem"
    r = subprocess.run(
        [sys.executable, "-m", "lens", "index", str(sample_root), "--out", str(out), "-q", "--no-semantic"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert not (out / "semantic").exists()
    assert lens.Index.open(out).search("parse http date", k=3).hits
