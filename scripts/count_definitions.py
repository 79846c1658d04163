"""Count the definition documents of a lens index by kind, from its term files alone (read-only: the
index is never opened, so a shared index cannot be touched). These are the documents Stage-C embeds
(functions, methods, classes/structs, types, interfaces, enums); line windows are counted apart.

    python scripts/count_definitions.py INDEX_DIR

The layout read is `rust/terms/store.rs`'s: a 144-byte header (magic, version, document count, term
count, then offset and length of seven sections), the document table (section 5) 36 bytes a document
with the kind byte at offset 32.
"""

from __future__ import annotations

import collections
import mmap
import struct
import sys
from pathlib import Path

KINDS = {0: "function", 1: "class", 2: "method", 5: "type", 6: "interface", 7: "enum", 255: "window"}
DOC_LEN, KIND_AT, DOCTABLE = 36, 32, 5


def count(index_dir: Path) -> collections.Counter[str]:
    total: collections.Counter[str] = collections.Counter()
    for path in sorted(index_dir.glob("*.terms")):
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            if m[:8] != b"LENSTRM\0":
                raise SystemExit(f"{path}: not a lens term file")
            (ndocs,) = struct.unpack_from("<I", m, 12)
            off, length = struct.unpack_from("<QQ", m, 24 + DOCTABLE * 16)
            if length != ndocs * DOC_LEN:
                raise SystemExit(f"{path}: document table of {length} bytes for {ndocs} documents")
            kinds = collections.Counter(m[off + i * DOC_LEN + KIND_AT] for i in range(ndocs))
        total.update({KINDS.get(k, f"kind {k}"): v for k, v in kinds.items()})
    return total


def main() -> int:
    total = count(Path(sys.argv[1]))
    defs = sum(v for k, v in total.items() if k != "window")
    for kind, n in total.most_common():
        print(f"{kind:10s} {n:>10,}")
    print(f"{'definitions':10s} {defs:>10,}  (windows {total['window']:,})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
