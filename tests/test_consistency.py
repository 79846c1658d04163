"""The native path against the reference scanner (the baseline path), on random corpora and queries.

Every disagreement is a consistency violation; lens's target is zero. Corpora mix ASCII, Unicode (with
case-folding traps such as KELVIN SIGN and LONG S), CRLF, empty lines, missing final newlines and
invalid UTF-8.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lens

ALPHABET = [
    "a",
    "b",
    "c",
    "k",
    "s",
    "A",
    "B",
    "K",
    "S",
    "_",
    " ",
    "(",
    ".",
    "1",
    "\u00e9",
    "\u212a",
    "\u017f",
    "\u00c5",
    "\u03a3",
]
WORDS = ["foo", "bar", "Foo", "FOO_BAR", "fooBar", "foo_bar", "kiss", "KISS", "caf\u00e9", "x1", "end"]

line_text = st.lists(st.one_of(st.sampled_from(ALPHABET), st.sampled_from(WORDS)), max_size=12).map("".join)


@st.composite
def file_bytes(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(line_text, max_size=8))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = eol.join(lines)
    if lines and draw(st.booleans()):
        text += eol
    data = text.encode()
    if data and draw(st.integers(0, 4)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xe2\x84", b"\x80"])) + data[at:]
    return data


corpora = st.dictionaries(
    st.sampled_from(["a.txt", "b.py", "dir/c.rs", "dir/sub/d.md", "tests/e.py", "f.c"]),
    file_bytes(),
    min_size=1,
    max_size=5,
)

regexes = st.sampled_from(
    [
        r"foo",
        r"Foo|bar",
        r"[a-z]+_bar",
        r"\bfoo\b",
        r"^foo",
        r"bar$",
        r"o+",
        r"k",
        r"s\w",
        r"\w+",
        r".",
        r"caf.",
        r"(?i)kiss",
        r"x1|end|kiss",
        r"[^a ]+",
        r"\s",
        r"a*",
        r"^$",
        r"\Afoo",
        r"end\z",
        r"\W",
        r"FOO_BAR",
        r"(foo)(bar)?",
        r"\p{Greek}",
        r"\d+",
    ]
)


def grep_rows(idx: lens.Index, q: str, **opts: bool) -> list[tuple[object, ...]]:
    return [(h.path, h.line, h.column, h.byte_start, h.byte_end, h.text) for h in idx.grep(q, **opts)]


def search_rows(idx: lens.Index, q: str, k: int) -> list[tuple[object, ...]]:
    return [
        (h.path, h.line, h.column, h.byte_start, h.byte_end, h.score, h.why)
        # Stage-A alone: in "auto" Stage-B would run on both sides and could hide a Stage-A difference.
        for h in idx.search(q, k=k, mode="lex").hits
    ]


def both_paths(idx: lens.Index, fn, *args, **kw):  # type: ignore[no-untyped-def]
    idx.flags["stage_a.native"] = True
    fast = fn(idx, *args, **kw)
    idx.flags["stage_a.native"] = False
    slow = fn(idx, *args, **kw)
    idx.flags.reset("stage_a.native")
    return fast, slow


def build(files: dict[str, bytes]) -> tuple[lens.Index, tempfile.TemporaryDirectory[str]]:
    tmp = tempfile.TemporaryDirectory()
    root = Path(tmp.name) / "root"
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    root.mkdir(exist_ok=True)
    return lens.Index.build(root, Path(tmp.name) / "idx"), tmp


SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(corpora, st.data())
def test_grep_literal_native_equals_reference(files: dict[str, bytes], data: st.DataObject) -> None:
    idx, tmp = build(files)
    with tmp:
        text = b"".join(files.values()).decode("utf-8", "ignore").replace("\r", "").replace("\n", "")
        if text:
            i = data.draw(st.integers(0, len(text) - 1))
            n = data.draw(st.integers(1, 6))
            q = text[i : i + n]
        else:
            q = data.draw(st.sampled_from(WORDS))
        if not q.strip():
            q = "foo"
        opts = {"regex": False, "ignore_case": data.draw(st.booleans()), "word": data.draw(st.booleans())}
        fast, slow = both_paths(idx, grep_rows, q, **opts)
        assert fast == slow, (q, opts)


@SETTINGS
@given(corpora, regexes, st.booleans(), st.booleans())
def test_grep_regex_native_equals_reference(files: dict[str, bytes], q: str, ic: bool, word: bool) -> None:
    idx, tmp = build(files)
    with tmp:
        fast, slow = both_paths(idx, grep_rows, q, regex=True, ignore_case=ic, word=word)
        assert fast == slow, (q, ic, word)


@SETTINGS
@given(
    corpora,
    st.lists(
        st.sampled_from([*WORDS, "foo bar", "kiss end", "x", "\u00e9", "caf\u00e9 foo"]),
        min_size=1,
        max_size=3,
    ).map(" ".join),
    st.integers(1, 30),
)
def test_search_native_equals_reference(files: dict[str, bytes], q: str, k: int) -> None:
    idx, tmp = build(files)
    with tmp:
        fast, slow = both_paths(idx, search_rows, q, k)
        assert fast == slow, q


@settings(max_examples=60, deadline=None)
@given(corpora)
def test_plain_literals_agree_with_python(files: dict[str, bytes]) -> None:
    """An independent oracle for the simplest case: Python's own line splitting and str.find."""
    idx, tmp = build(files)
    with tmp:
        for q in ["foo", "kiss", "\u00e9", "_b"]:
            want = []
            for rel in sorted(files):
                data = files[rel]
                lines = data.split(b"\n")
                if lines and lines[-1] == b"":
                    lines.pop()
                start = 0
                for no, line in enumerate(lines, 1):
                    at = line.find(q.encode())
                    if at >= 0:
                        col = len(line[:at].decode("utf-8", "replace"))
                        want.append((rel, no, col, start + at))
                    start += len(line) + 1
            got = [(h.path, h.line, h.column, h.byte_start) for h in idx.grep(q, regex=False)]
            assert got == want, q


def test_consistency_report_counts_real_disagreements(sample_index: lens.Index) -> None:
    report = lens.consistency_violations(
        sample_index,
        searches=["PM_RESUME", "read file", "parse an HTTP date header", "Kelvin"],
        greps=[
            ("PM_RESUME", {"word": True}),
            (r"\w+\(", {}),
            ("kelvin", {"ignore_case": True, "regex": False}),
        ],
    )
    assert (report.checked, report.violations, report.rate) == (7, 0, 0.0)
    # A doctored native answer is caught: the report compares what the paths return, nothing assumed.
    real_snapshot = sample_index._native.snapshot

    def skewed_snapshot() -> object:
        snap = real_snapshot()

        def skewed(q: str, k: int, budget: float | None, native: bool):  # type: ignore[no-untyped-def]
            hits, truncated, info = snap.search(q, k, budget, native)
            return (hits[1:] if native else hits), truncated, info

        return _Proxy(snap, search=skewed)

    sample_index._native = _Proxy(sample_index._native, snapshot=skewed_snapshot)  # type: ignore[assignment]
    bad = lens.consistency_violations(sample_index, searches=["PM_RESUME"])
    assert (bad.checked, bad.violations) == (1, 1) and bad.examples[0]["search"] == "PM_RESUME"


class _Proxy:
    def __init__(self, inner: object, **overrides: object) -> None:
        self._inner, self._overrides = inner, overrides

    def __getattr__(self, name: str) -> object:
        return self._overrides.get(name) or getattr(self._inner, name)
