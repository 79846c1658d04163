"""Plain-English questions over Rust code, built as the shared dev set's `nl` queries are (and as
`kernel_questions.py` builds them for C): a check on Rust that was never used for tuning.

    python benches/rust_questions.py --src ~/.cargo/registry/src/index.crates.io-*/ --out /tmp/rq \
        [--sample 300] [--seed 7]

writes:
  OUT/tree/             the .rs files under `--src` (each crate a directory) with every doc comment
                        (`///`, `//!`, `/** */`, `/*! */`) blanked: its lines kept, their text gone, so
                        line numbers match the original and the question's words are not in the corpus.
                        Other files are left out (a crate's README would hold the doc text again).
  OUT/queries.jsonl     one line a question, the dev set's format (`kind: "nl"`, `corpus: "nodoc"`): the
                        first sentence of a `///` comment on a `fn`, `struct`, `enum`, `union` or `trait`
                        with a body, 4 to 15 words, markdown code and link marks dropped (`` [`Foo`] `` ->
                        `Foo`), and as gold the item, from its header line to its closing brace.

Sentences shared by several items are dropped (no single right answer). The walk is sorted and the sample
seeded, so a run is repeatable on any machine.
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

try:
    from benches.kernel_questions import write_questions
except ModuleNotFoundError:  # run as a script: its own directory is on sys.path, the repository's is not
    from kernel_questions import write_questions  # type: ignore[no-redef]

_OUTER_DOC = re.compile(r"^\s*///(?!/)(.*)$")
_INNER_DOC = re.compile(r"^\s*//!(.*)$")
_BLOCK_DOC_OPEN = re.compile(r"/\*[*!](?![*/])")
_ATTRIBUTE = re.compile(r"^\s*#!?\[")
_ITEM = re.compile(
    r"^\s*(?:pub(?:\s*\([^)]*\))?\s+)?(?:(?:const|async|unsafe|default|extern(?:\s+\"[^\"]*\")?)\s+)*"
    r"(fn|struct|enum|union|trait)\s+([A-Za-z_]\w*)"
)
# Markdown in a summary: [`Foo`](url), [`Foo`], [Foo][bar] -> Foo; `code` -> code; *em* -> em.
_MD_LINK = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\[[^\]]*\])?")
_MD_MARKS = re.compile(r"[`*]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
# What brace counting must not see: strings, char literals, line comments.
_NOISE = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])\'|//.*$')


def blank_docs(text: str) -> str:
    """`text` with every doc comment's text blanked; its newlines (and so line numbers) kept."""
    out: list[str] = []
    in_block = False
    for line in text.split("\n"):
        if in_block:
            end = line.find("*/")
            if end < 0:
                out.append("")
                continue
            in_block = False
            line = " " * (end + 2) + line[end + 2 :]
        if _OUTER_DOC.match(line) or _INNER_DOC.match(line):
            out.append("")
            continue
        m = _BLOCK_DOC_OPEN.search(line)
        if m and "//" not in line[: m.start()] and line.count('"', 0, m.start()) % 2 == 0:
            end = line.find("*/", m.end())
            if end < 0:
                in_block = True
                out.append(line[: m.start()])
                continue
            line = line[: m.start()] + line[end + 2 :]
        out.append(line)
    return "\n".join(out)


def summary_of(doc_lines: list[str]) -> str:
    """The first sentence of a doc comment's first paragraph, markdown marks dropped."""
    para: list[str] = []
    for raw in doc_lines:
        text = raw.strip()
        if not text:
            if para:
                break
            continue
        if text.startswith(("#", "```", "|")):
            break
        para.append(text)
    joined = _MD_MARKS.sub("", _MD_LINK.sub(r"\1", " ".join(para)))
    return _SENTENCE_END.split(joined, maxsplit=1)[0].strip()


def item_span(lines: list[str], header: int) -> int | None:
    """The 0-based line of the closing brace of the item whose header is line `header`, or None for an
    item without a body (`fn f();`, `struct S;`, `struct S(u8);`)."""
    depth = 0
    opened = False
    for j in range(header, min(header + 5000, len(lines))):
        code = _NOISE.sub("", lines[j])
        if not opened and "{" not in code and code.rstrip().endswith(";"):
            return None
        for ch in code:
            if ch == "{":
                depth += 1
                opened = True
            elif ch == "}":
                depth -= 1
                if opened and depth == 0:
                    return j
    return None


def questions_in(lines: list[str]) -> list[tuple[str, int, int]]:
    """(summary, header line, closing line), 1-based, of each documented item with a body."""
    found: list[tuple[str, int, int]] = []
    i = 0
    while i < len(lines):
        m = _OUTER_DOC.match(lines[i])
        if not m:
            i += 1
            continue
        doc: list[str] = []
        while i < len(lines) and (m := _OUTER_DOC.match(lines[i])):
            doc.append(m.group(1))
            i += 1
        while i < len(lines) and (_ATTRIBUTE.match(lines[i]) or not lines[i].strip()):
            i += 1  # attributes (one line each) between the comment and the item
        if i < len(lines) and _ITEM.match(lines[i]):
            end = item_span(lines, i)
            if end is not None:
                found.append((summary_of(doc), i + 1, end + 1))
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, required=True, help="a directory of crates (or of .rs files)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sample", type=int, default=300)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    src: Path = args.src.resolve()
    tree = args.out / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    candidates: list[tuple[object, dict[str, object]]] = []
    for path in sorted(src.rglob("*.rs")):
        rel_path = path.relative_to(src)
        if path.is_symlink() or not path.is_file() or any(p.startswith(".") for p in rel_path.parts):
            continue
        rel = rel_path.as_posix()
        text = path.read_text(encoding="utf-8", errors="replace")
        dest = tree / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(blank_docs(text), encoding="utf-8")
        for summary, start, end in questions_in(text.split("\n")):
            if not 4 <= len(summary.split()) <= 15:
                continue
            gold = [{"path": rel, "line_start": start, "line_end": end}]
            candidates.append((summary.lower(), {"query": summary, "gold": gold}))
    written, unique = write_questions(args.out / "queries.jsonl", candidates, "rust", args.sample, args.seed)
    print(f"{written} questions of {unique} unique summaries; tree in {tree}")


if __name__ == "__main__":
    main()
