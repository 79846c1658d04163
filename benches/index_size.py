"""Where an index's bytes go: the section tables of its segment, term and symbol files, the symbol file's
RUNS section split into names, counts, definitions and references (format 2), and, with `--prefix`,
the share of the symbol file that files under a path prefix account for.

    python benches/index_size.py /tmp/i10s-kq [--prefix drivers/gpu/drm/amd/include/asic_reg/]

Reads the headers and decodes RUNS in pure Python (a kernel's symbol file takes a minute or two); it
reads the files only, never opens the index.
"""

from __future__ import annotations

import argparse
import struct
from pathlib import Path

SEGMENT_SECTIONS = ["files", "paths", "lines", "chunks", "gram_dict", "postings", "content"]
SYMBOL_SECTIONS = {
    1: [
        *["paths", "files", "name_fst", "name_idx", "name_blob", "def_idx", "defs", "ref_idx", "refs"],
        *["subtoken_fst", "subtoken_idx", "subtoken_ids", "reserved"],
    ],
    2: ["paths", "files", "name_fst", "blocks", "runs", "subtoken_fst", "subtoken_idx", "subtoken_ids"],
}


TERM_SECTIONS = {
    2: ["dict", "terms", "docs", "impacts", "masks", "doc_table", "names"],
    3: ["dict", "terms", "packed", "doc_table", "names"],
}


def term_sections(path: Path) -> tuple[int, dict[str, int]]:
    b = path.read_bytes()[:144]
    assert b[:8] == b"LENSTRM\0", path
    version = struct.unpack_from("<I", b, 8)[0]
    names = TERM_SECTIONS.get(version, [])
    return version, {n: struct.unpack_from("<QQ", b, 24 + i * 16)[1] for i, n in enumerate(names)}


def segment_sections(path: Path) -> dict[str, int]:
    b = path.read_bytes()[: 32 + len(SEGMENT_SECTIONS) * 24]
    assert b[:8] == b"LENSSEG\0", path
    return {n: struct.unpack_from("<QQQ", b, 32 + i * 24)[1] for i, n in enumerate(SEGMENT_SECTIONS)}


def symbol_sections(b: bytes) -> tuple[int, dict[str, tuple[int, int]]]:
    assert b[:8] == b"LENSSYM\0"
    version, n = struct.unpack_from("<II", b, 8)
    names = SYMBOL_SECTIONS.get(version, [f"s{i}" for i in range(n)])
    return version, {names[i]: struct.unpack_from("<QQ", b, 16 + i * 16) for i in range(n)}


class Runs:
    """A cursor over the RUNS section (the layout in rust/symbols/store/codec.rs)."""

    def __init__(self, b: bytes) -> None:
        self.b, self.at = b, 0

    def v(self) -> int:
        x, s = 0, 0
        while True:
            c = self.b[self.at]
            self.at += 1
            x |= (c & 0x7F) << s
            s += 7
            if c < 0x80:
                return x


def zigzag(x: int) -> int:
    return (x >> 1) ^ -(x & 1)


def split_runs(b: bytes, secs: dict[str, tuple[int, int]], prefix: str | None) -> dict[str, float]:
    po, _ = secs["paths"]
    n = struct.unpack_from("<I", b, po)[0]
    at, paths = po + 4, []
    for _ in range(n):
        ln = struct.unpack_from("<I", b, at)[0]
        paths.append(b[at + 4 : at + 4 + ln].decode())
        at += 4 + ln
    under = [prefix is not None and p.startswith(prefix) for p in paths]
    off, ln = secs["runs"]
    r = Runs(b[off : off + ln])
    out = dict.fromkeys(["names", "name_bytes", "count_bytes", "defs", "def_bytes", "refs", "ref_bytes"], 0.0)
    out |= dict.fromkeys(["under_defs", "under_def_bytes", "under_refs", "under_ref_bytes"], 0.0)
    out |= {"names_only_under": 0.0, "names_only_under_bytes": 0.0}
    while r.at < len(r.b):
        e0 = r.at
        r.v()
        suffix = r.v()
        r.at += suffix
        e1 = r.at
        nd, dl, nr, rl = r.v(), r.v(), r.v(), r.v()
        out["names"] += 1
        out["name_bytes"] += e1 - e0
        out["count_bytes"] += r.at - e1
        out["defs"] += nd
        out["def_bytes"] += dl
        out["refs"] += nr
        out["ref_bytes"] += rl
        only_under = nd + nr > 0
        for count, same_bit, odd_bit, is_def in ((nd, 0x80, 0x40, True), (nr, 4, 2, False)):
            prev_file = 0
            for _ in range(count):
                r0 = r.at
                head = r.b[r.at]
                r.at += 1
                if head & same_bit:
                    r.v(), r.v()
                else:
                    prev_file += zigzag(r.v())
                    r.v(), r.v()
                if head & odd_bit:
                    r.v()
                if is_def:
                    r.v(), r.v()
                    if head & 0x20:
                        r.v()
                if under[prev_file]:
                    kind = "def" if is_def else "ref"
                    out[f"under_{kind}s"] += 1
                    out[f"under_{kind}_bytes"] += r.at - r0
                else:
                    only_under = False
        if only_under:
            out["names_only_under"] += 1
            out["names_only_under_bytes"] += r.at - e0 - dl - rl
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("index", type=Path)
    ap.add_argument("--prefix", help="attribute the symbol file's records to files under this path prefix")
    a = ap.parse_args()
    mb = 1e6
    segs: dict[str, int] = {}
    for p in sorted(a.index.glob("seg-*.lens")):
        for k, v in segment_sections(p).items():
            segs[k] = segs.get(k, 0) + v
    total = sum(p.stat().st_size for p in a.index.iterdir() if p.is_file())
    content = segs.get("content", 0)
    print(f"index {total / mb:.1f} MB = {total / max(content, 1):.3f} x its content ({content / mb:.1f} MB)")
    seg_bytes = sum(p.stat().st_size for p in a.index.glob("seg-*.lens"))
    print(f"segments {seg_bytes / mb:.1f} MB: " + ", ".join(f"{k} {v / mb:.2f}" for k, v in segs.items()))
    terms: dict[str, int] = {}
    versions = set()
    for p in sorted(a.index.glob("seg-*.terms")):
        version, secs = term_sections(p)
        versions.add(version)
        for k, v in secs.items():
            terms[k] = terms.get(k, 0) + v
    print(
        f"term files {sum(p.stat().st_size for p in a.index.glob('*.terms')) / mb:.1f} MB, version "
        f"{'/'.join(map(str, sorted(versions)))}: " + ", ".join(f"{k} {v / mb:.2f}" for k, v in terms.items())
    )
    for p in sorted(a.index.glob("sym-*.lens")):
        b = p.read_bytes()
        version, secs = symbol_sections(b)
        print(f"symbol file {p.name}, format {version}: {len(b) / mb:.1f} MB")
        for k, (_, ln) in secs.items():
            print(f"  {k:13s} {ln / mb:9.2f} MB")
        if version == 2:
            s = split_runs(b, secs, a.prefix)
            print(
                f"  runs: {s['names']:.0f} names {s['name_bytes'] / mb:.2f} MB front-coded, counts "
                f"{s['count_bytes'] / mb:.2f} MB; {s['defs']:.0f} definitions {s['def_bytes'] / mb:.2f} MB "
                f"({s['def_bytes'] / max(s['defs'], 1):.2f} B each); {s['refs']:.0f} references "
                f"{s['ref_bytes'] / mb:.2f} MB ({s['ref_bytes'] / max(s['refs'], 1):.2f} B each)"
            )
            if a.prefix:
                print(
                    f"  under {a.prefix}: {s['under_defs']:.0f} definitions "
                    f"({s['under_def_bytes'] / mb:.2f} MB), "
                    f"{s['under_refs']:.0f} references ({s['under_ref_bytes'] / mb:.2f} MB), "
                    f"{s['names_only_under']:.0f} names found only there "
                    f"({s['names_only_under_bytes'] / mb:.2f} MB of names and counts; their share of the "
                    "fsts and the sub-token table is not counted)"
                )


if __name__ == "__main__":
    main()
