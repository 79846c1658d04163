"""Plain-English questions over the Linux kernel, built as the shared dev set's `nl` queries are.

    python benches/kernel_questions.py --kernel /path/to/linux-6.1 --out /tmp/kq [--only drivers/net fs/ext4]
        [--from drivers fs] [--sample 300] [--seed 7] [--queries-only]

writes:
  OUT/tree/             the kernel (or the `--only` subtrees) with every kernel-doc comment (`/** ... */`)
                        blanked: its lines kept, their text gone, so line numbers match the original and
                        the question's words are not in the corpus. Unchanged files are hard links.
  OUT/queries.jsonl     one line a question, the dev set's format (`kind: "nl"`, `corpus: "nodoc"`): the
                        kernel-doc summary ("foo - do the thing" -> "do the thing") of a function under
                        one of `--from`, 4 to 15 words, and as gold the function's definition, from its
                        header line to its closing brace.

Summaries shared by several functions are dropped (no single right answer). The tree is walked in sorted
order and the sample is seeded, so a run is repeatable on any machine (the walk used to follow the file
system's directory order, so one seed drew different questions on two machines). `--queries-only` writes
queries.jsonl alone (another seed's questions over a tree already written: the tree does not depend on it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
from collections import Counter
from pathlib import Path

# `/**` opens a kernel-doc comment; its first text line is "name - summary" (or "name() - summary").
_DOC = re.compile(rb"/\*\*(?!/)(.*?)\*/", re.S)
_SUMMARY = re.compile(
    rb"^\s*\*?\s*(?:(?:struct|union|enum|typedef)\s+)?([A-Za-z_]\w*)\s*(?:\(\))?\s*-+\s+(.+)$"
)
_SOURCE_EXT = (b".c", b".h")


def blank_docs(data: bytes) -> tuple[bytes, list[tuple[int, bytes, bytes]]]:
    """The file with kernel-doc comments blanked (newlines kept), and per comment (the line after it,
    the documented name, the summary)."""
    out = bytearray()
    found: list[tuple[int, bytes, bytes]] = []
    last = 0
    for m in _DOC.finditer(data):
        out += data[last : m.start()]
        body = m.group(0)
        out += b"\n" * body.count(b"\n")
        last = m.end()
        first = next((ln for ln in m.group(1).split(b"\n") if ln.strip(b" \t*")), b"")
        sm = _SUMMARY.match(first)
        if sm:
            end_line = data.count(b"\n", 0, m.end()) + 1  # 1-based line holding `*/`
            found.append((end_line + 1, sm.group(1), sm.group(2).strip()))
    out += data[last:]
    return bytes(out), found


def definition_span(lines: list[bytes], start: int, name: bytes) -> tuple[int, int] | None:
    """(header line, closing-brace line), 1-based, of function `name` defined right after line `start`."""
    header = None
    for i in range(start - 1, min(start + 5, len(lines))):
        if re.search(rb"\b" + re.escape(name) + rb"\s*\(", lines[i]):
            header = i
            break
    if header is None:
        return None
    depth = 0
    opened = False
    for j in range(header, min(header + 2000, len(lines))):
        line = lines[j]
        if not opened and line.rstrip().endswith(b";") and b"{" not in line:
            return None  # a prototype, not a definition
        depth += line.count(b"{") - line.count(b"}")
        opened = opened or b"{" in line
        if opened and depth <= 0:
            return header + 1, j + 1
    return None


def write_questions(
    path: Path, candidates: list[tuple[object, dict[str, object]]], prefix: str, sample: int, seed: int
) -> tuple[int, int]:
    """Writes `sample` of the `(summary key, question)` candidates whose key no other candidate shares
    (no single right answer otherwise), drawn with `seed`, to `path` in the dev set's format with ids
    `{prefix}-nl-0001`...: (questions written, unique summaries). The question sets of C
    (this module) and of Rust (`rust_questions.py`) both end here."""
    counts = Counter(key for key, _ in candidates)
    unique = [question for key, question in candidates if counts[key] == 1]
    random.Random(seed).shuffle(unique)
    chosen = unique[:sample]
    with open(path, "w") as f:
        for i, question in enumerate(chosen, 1):
            row = {"id": f"{prefix}-nl-{i:04d}", "kind": "nl", "query": question["query"], "corpus": "nodoc"}
            row["gold"] = question["gold"]
            f.write(json.dumps(row) + "\n")
    return len(chosen), len(unique)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernel", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--only", nargs="*", default=[], help="copy only these subtrees (default: all)")
    ap.add_argument("--from", dest="sources", nargs="*", default=["drivers", "fs"])
    ap.add_argument("--sample", type=int, default=300)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--queries-only", action="store_true", help="write queries.jsonl only, not the tree")
    args = ap.parse_args()

    src: Path = args.kernel.resolve()
    tree = args.out / "tree"
    write_tree = not args.queries_only
    if write_tree and tree.exists():
        shutil.rmtree(tree)
    args.out.mkdir(parents=True, exist_ok=True)
    tops = [src / p for p in args.only] or [src]
    candidates: list[tuple[object, dict[str, object]]] = []
    for top in tops:
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            rel_dir = Path(dirpath).relative_to(src)
            if write_tree:
                (tree / rel_dir).mkdir(parents=True, exist_ok=True)
            for fn in sorted(filenames):
                path = Path(dirpath) / fn
                dest = tree / rel_dir / fn
                if path.is_symlink() or not path.is_file():
                    continue
                if not fn.encode().endswith(_SOURCE_EXT):
                    if write_tree:
                        os.link(path, dest)
                    continue
                data = path.read_bytes()
                blanked, docs = blank_docs(data)
                if write_tree and not docs and blanked == data:
                    os.link(path, dest)
                elif write_tree:
                    dest.write_bytes(blanked)
                rel = (rel_dir / fn).as_posix()
                if not any(rel.startswith(s.rstrip("/") + "/") for s in args.sources):
                    continue
                lines = data.split(b"\n")
                for after, name, summary in docs:
                    words = summary.split()
                    if not 4 <= len(words) <= 15:
                        continue
                    span = definition_span(lines, after, name)
                    if span is None:
                        continue
                    gold = [{"path": rel, "line_start": span[0], "line_end": span[1]}]
                    question = {"query": summary.decode("utf-8", "replace"), "gold": gold}
                    candidates.append((summary.lower(), question))
    queries = args.out / "queries.jsonl"
    written, unique = write_questions(queries, candidates, "kernel", args.sample, args.seed)
    where = f"; tree in {tree}" if write_tree else ""
    print(f"{written} questions of {unique} unique summaries{where}")


if __name__ == "__main__":
    main()
