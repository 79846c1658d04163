"""The question-set builders in benches/ (kernel_questions.py for C, rust_questions.py for Rust): doc
comments are blanked with their lines kept, and each question's gold is the documented item's span."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benches import kernel_questions, rust_questions

RUST = """//! Crate docs that name `frobnicate`.

/// Frobnicate the given widget in place, quickly.
///
/// More text that is not the summary.
#[inline]
pub fn frobnicate(w: &mut Widget) {
    let s = "}"; // a brace in a string must not close the item
    w.0 += 1;
}

/// A [`Widget`] holds one counter for the tests.
pub struct Widget(u8);

/** Block docs on a trait
    that spans lines. */
pub trait Shape {
    /// Compute the area of the shape here.
    fn area(&self) -> f64;
}

/// Return the `area` of a shape twice over.
pub(crate) const fn double(x: f64) -> f64 { x * 2.0 }
"""


def test_rust_doc_comments_are_blanked_and_lines_kept() -> None:
    blanked = rust_questions.blank_docs(RUST)
    assert blanked.count("\n") == RUST.count("\n")
    for word in ("Frobnicate", "Crate docs", "holds one counter", "Block docs", "spans lines", "Compute"):
        assert word not in blanked, word
    assert 'let s = "}";' in blanked and "pub trait Shape {" in blanked


def test_rust_questions_take_first_sentences_and_item_spans() -> None:
    found = rust_questions.questions_in(RUST.split("\n"))
    lines = RUST.split("\n")
    by_summary = {s: (a, b) for s, a, b in found}
    # the function: its header after the attribute, to its closing brace (not the brace in the string)
    a, b = by_summary["Frobnicate the given widget in place, quickly."]
    assert lines[a - 1].startswith("pub fn frobnicate") and lines[b - 1] == "}"
    # a one-line item; markdown code marks dropped
    a, b = by_summary["Return the area of a shape twice over."]
    assert a == b and "fn double" in lines[a - 1]
    # a tuple struct without a body and a trait method without one are not questions
    assert not any("Widget holds" in s or "Compute" in s for s in by_summary)


def test_rust_question_set_is_repeatable(tmp_path: Path) -> None:
    src = tmp_path / "src" / "crate-1.0" / "src"
    src.mkdir(parents=True)
    (src / "lib.rs").write_text(RUST)
    runs = []
    for out in ("a", "b"):
        cmd = [sys.executable, "-m", "benches.rust_questions", "--src", str(tmp_path / "src"), "--out"]
        repo = Path(__file__).parents[1]
        subprocess.run([*cmd, str(tmp_path / out)], check=True, capture_output=True, cwd=repo)
        runs.append((tmp_path / out / "queries.jsonl").read_text())
        tree_file = tmp_path / out / "tree" / "crate-1.0" / "src" / "lib.rs"
        assert tree_file.read_text().count("\n") == RUST.count("\n")
    assert runs[0] == runs[1]
    rows = [json.loads(line) for line in runs[0].splitlines()]
    assert {r["query"] for r in rows} == {
        "Frobnicate the given widget in place, quickly.",
        "Return the area of a shape twice over.",
    }
    assert all(r["kind"] == "nl" and r["corpus"] == "nodoc" for r in rows)


def test_kernel_doc_comments_are_blanked_and_summaries_found() -> None:
    c = b"/**\n * foo_bar() - do the thing to a bar\n * @x: the bar\n */\n"
    c += b"int foo_bar(int x)\n{\n\treturn x;\n}\n"
    blanked, docs = kernel_questions.blank_docs(c)
    assert blanked.count(b"\n") == c.count(b"\n") and b"do the thing" not in blanked
    ((after, name, summary),) = docs
    assert (name, summary) == (b"foo_bar", b"do the thing to a bar")
    assert kernel_questions.definition_span(c.split(b"\n"), after, name) == (5, 8)
