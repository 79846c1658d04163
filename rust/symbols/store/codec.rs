//! The symbol file's byte codecs: LEB128 varints, zigzag, and one name's
//! *entry* in the RUNS section (its front-coded name, then its definition and
//! reference runs, each record delta-coded against the one before it).
//!
//! ```text
//! entry   shared u32v, suffix length u32v, suffix bytes,
//!         definitions u32v, their bytes u32v, references u32v, their bytes u32v,
//!         definition records, reference records
//! def     head u8: kind (bits 0-3), precise (4), container (5),
//!                  name span not the name's length (6), same file (7)
//!         same file:  name start - previous u32v, line - previous u32v
//!         otherwise:  zigzag(file - previous file) u64v, name start u32v, line u32v
//!         [zigzag(name end - name start - name length) u64v]
//!         zigzag(name start - def start) u64v, zigzag(def end - name end) u64v,
//!         [container name id u32v]
//! ref     head u8: precise (bit 0), span not the name's length (1), same file (2)
//!         then as a definition's file, start and line, [span length]
//! ```
//!
//! "Same file" is taken only when the file and the precision match the
//! previous record and the name start and line do not go back, so every
//! delta is unsigned; the previous file starts at 0 in each run. Names are
//! front-coded within blocks of [`BLOCK`] names: the first of a block has no
//! shared prefix, and a block's entries are found through the BLOCKS offsets.
//!
//! Decoding never trusts the bytes: every read is bounds-checked and every
//! sum is checked, so damage yields `None` (the reader's open turns that into
//! `Error::Corrupt`), never a panic.

use super::{DefRec, RefRec, NONE};
use crate::symbols::Kind;

/// Names per front-coding block (and per BLOCKS offset).
pub const BLOCK: usize = 16;

const D_PRECISE: u8 = 1 << 4;
const D_CONTAINER: u8 = 1 << 5;
const D_ODD_SPAN: u8 = 1 << 6;
const D_SAME_FILE: u8 = 1 << 7;
const R_PRECISE: u8 = 1;
const R_ODD_SPAN: u8 = 1 << 1;
const R_SAME_FILE: u8 = 1 << 2;

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A bounds-checked cursor over encoded bytes.
#[derive(Clone)]
pub struct Cursor<'a> {
    b: &'a [u8],
    pub at: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(b: &'a [u8], at: usize) -> Cursor<'a> {
        Cursor { b, at }
    }

    pub fn varint(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.at)?;
            self.at += 1;
            v |= u64::from(byte & 0x7f).checked_shl(shift)?;
            if byte < 0x80 {
                return Some(v);
            }
        }
        None
    }

    pub fn u32v(&mut self) -> Option<u32> {
        u32::try_from(self.varint()?).ok()
    }

    fn byte(&mut self) -> Option<u8> {
        let v = *self.b.get(self.at)?;
        self.at += 1;
        Some(v)
    }

    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
}

/// `base + zigzag-decoded delta`, if it stays a `u32`.
fn add_signed(base: u32, delta: u64) -> Option<u32> {
    u32::try_from(i64::from(base) + unzigzag(delta)).ok()
}

/// Position state shared by the definition and reference codecs.
#[derive(Default, Clone, Copy)]
struct Prev {
    file: u32,
    precise: bool,
    start: u32,
    line: u32,
    any: bool,
}

impl Prev {
    fn same(&self, file: u32, precise: bool, start: u32, line: u32) -> bool {
        self.any && self.file == file && self.precise == precise && start >= self.start && line >= self.line
    }

    fn put(&mut self, out: &mut Vec<u8>, same: bool, file: u32, precise: bool, start: u32, line: u32) {
        if same {
            put_varint(out, u64::from(start - self.start));
            put_varint(out, u64::from(line - self.line));
        } else {
            put_varint(out, zigzag(i64::from(file) - i64::from(self.file)));
            put_varint(out, u64::from(start));
            put_varint(out, u64::from(line));
        }
        *self = Prev { file, precise, start, line, any: true };
    }

    fn get(&mut self, c: &mut Cursor<'_>, same: bool, precise: bool) -> Option<(u32, u32, u32)> {
        let (file, start, line) = if same {
            (self.file, self.start.checked_add(c.u32v()?)?, self.line.checked_add(c.u32v()?)?)
        } else {
            (add_signed(self.file, c.varint()?)?, c.u32v()?, c.u32v()?)
        };
        *self = Prev { file, precise, start, line, any: true };
        Some((file, start, line))
    }
}

/// Encodes one name's definitions (sorted as the file keeps them); `name_len`
/// is the name's length in bytes.
pub fn encode_defs(defs: &[DefRec], name_len: u32, out: &mut Vec<u8>) {
    let mut prev = Prev::default();
    for d in defs {
        let same = prev.same(d.file, d.precise, d.name_start, d.line);
        let span = i64::from(d.name_end) - i64::from(d.name_start) - i64::from(name_len);
        let mut head = d.kind as u8;
        head |= if d.precise { D_PRECISE } else { 0 };
        head |= if d.container != NONE { D_CONTAINER } else { 0 };
        head |= if span != 0 { D_ODD_SPAN } else { 0 };
        head |= if same { D_SAME_FILE } else { 0 };
        out.push(head);
        prev.put(out, same, d.file, d.precise, d.name_start, d.line);
        if span != 0 {
            put_varint(out, zigzag(span));
        }
        put_varint(out, zigzag(i64::from(d.name_start) - i64::from(d.def_start)));
        put_varint(out, zigzag(i64::from(d.def_end) - i64::from(d.name_end)));
        if d.container != NONE {
            put_varint(out, u64::from(d.container));
        }
    }
}

/// Decodes the definition runs `encode_defs` wrote, one record at a time.
#[derive(Clone)]
pub struct DefRun<'a> {
    c: Cursor<'a>,
    left: usize,
    name: u32,
    name_len: u32,
    prev: Prev,
}

impl<'a> DefRun<'a> {
    pub fn new(bytes: &'a [u8], count: usize, name: u32, name_len: u32) -> DefRun<'a> {
        DefRun { c: Cursor::new(bytes, 0), left: count, name, name_len, prev: Prev::default() }
    }

    /// The next record, or `None` at the end or on damage (`done` tells which).
    pub fn next_rec(&mut self) -> Option<DefRec> {
        if self.left == 0 {
            return None;
        }
        let c = &mut self.c;
        let head = c.byte()?;
        let kind = Kind::from_u8(head & 0x0f)?;
        let precise = head & D_PRECISE != 0;
        let (file, name_start, line) = self.prev.get(c, head & D_SAME_FILE != 0, precise)?;
        let span = if head & D_ODD_SPAN != 0 { unzigzag(c.varint()?) } else { 0 };
        let name_end = u32::try_from(i64::from(name_start) + i64::from(self.name_len) + span).ok()?;
        let def_start = u32::try_from(i64::from(name_start) - unzigzag(c.varint()?)).ok()?;
        let def_end = add_signed(name_end, c.varint()?)?;
        let container = if head & D_CONTAINER != 0 { c.u32v().filter(|&v| v != NONE)? } else { NONE };
        self.left -= 1;
        Some(DefRec { name: self.name, file, kind, precise, name_start, name_end, def_start, def_end, container, line })
    }

    /// Whether every record was decoded and every byte used.
    pub fn done(&self) -> bool {
        self.left == 0 && self.c.at == self.c.b.len()
    }
}

impl Iterator for DefRun<'_> {
    type Item = DefRec;
    fn next(&mut self) -> Option<DefRec> {
        self.next_rec()
    }
}

/// Encodes one name's references (sorted as the file keeps them).
pub fn encode_refs(refs: &[RefRec], name_len: u32, out: &mut Vec<u8>) {
    let mut prev = Prev::default();
    for r in refs {
        let same = prev.same(r.file, r.precise, r.start, r.line);
        let span = i64::from(r.end) - i64::from(r.start) - i64::from(name_len);
        let mut head = if r.precise { R_PRECISE } else { 0 };
        head |= if span != 0 { R_ODD_SPAN } else { 0 };
        head |= if same { R_SAME_FILE } else { 0 };
        out.push(head);
        prev.put(out, same, r.file, r.precise, r.start, r.line);
        if span != 0 {
            put_varint(out, zigzag(span));
        }
    }
}

/// Decodes the reference runs `encode_refs` wrote.
#[derive(Clone)]
pub struct RefRun<'a> {
    c: Cursor<'a>,
    left: usize,
    name: u32,
    name_len: u32,
    prev: Prev,
}

impl<'a> RefRun<'a> {
    pub fn new(bytes: &'a [u8], count: usize, name: u32, name_len: u32) -> RefRun<'a> {
        RefRun { c: Cursor::new(bytes, 0), left: count, name, name_len, prev: Prev::default() }
    }

    pub fn next_rec(&mut self) -> Option<RefRec> {
        if self.left == 0 {
            return None;
        }
        let c = &mut self.c;
        let head = c.byte()?;
        if head & !(R_PRECISE | R_ODD_SPAN | R_SAME_FILE) != 0 {
            return None;
        }
        let precise = head & R_PRECISE != 0;
        let (file, start, line) = self.prev.get(c, head & R_SAME_FILE != 0, precise)?;
        let span = if head & R_ODD_SPAN != 0 { unzigzag(c.varint()?) } else { 0 };
        let end = u32::try_from(i64::from(start) + i64::from(self.name_len) + span).ok()?;
        self.left -= 1;
        Some(RefRec { name: self.name, file, start, end, line, precise })
    }

    pub fn done(&self) -> bool {
        self.left == 0 && self.c.at == self.c.b.len()
    }
}

impl Iterator for RefRun<'_> {
    type Item = RefRec;
    fn next(&mut self) -> Option<RefRec> {
        self.next_rec()
    }
}

/// Appends a name's entry: `prev` is the name before it in its block (empty
/// for a block's first name).
pub fn encode_entry(out: &mut Vec<u8>, prev: &[u8], name: &[u8], defs: &[DefRec], refs: &[RefRec]) {
    let shared = prev.iter().zip(name).take_while(|(a, b)| a == b).count();
    put_varint(out, shared as u64);
    put_varint(out, (name.len() - shared) as u64);
    out.extend_from_slice(&name[shared..]);
    let mut d = Vec::new();
    encode_defs(defs, name.len() as u32, &mut d);
    let mut r = Vec::new();
    encode_refs(refs, name.len() as u32, &mut r);
    for v in [defs.len(), d.len(), refs.len(), r.len()] {
        put_varint(out, v as u64);
    }
    out.extend_from_slice(&d);
    out.extend_from_slice(&r);
}

/// One decoded entry header: where its name's suffix and its runs lie.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    pub shared: usize,
    pub suffix: &'a [u8],
    pub ndefs: usize,
    pub defs: &'a [u8],
    pub nrefs: usize,
    pub refs: &'a [u8],
}

impl<'a> Entry<'a> {
    pub fn name_len(&self) -> u32 {
        (self.shared + self.suffix.len()) as u32
    }

    /// Rebuilds the name in `buf` (holding the previous name of the block).
    pub fn apply(&self, buf: &mut Vec<u8>) -> Option<()> {
        if self.shared > buf.len() {
            return None;
        }
        buf.truncate(self.shared);
        buf.extend_from_slice(self.suffix);
        Some(())
    }
}

/// Reads the entry at `c`, moving past it.
pub fn read_entry<'a>(c: &mut Cursor<'a>) -> Option<Entry<'a>> {
    let shared = usize::try_from(c.varint()?).ok()?;
    let slen = usize::try_from(c.varint()?).ok()?;
    let suffix = c.take(slen)?;
    let ndefs = usize::try_from(c.varint()?).ok()?;
    let dlen = usize::try_from(c.varint()?).ok()?;
    let nrefs = usize::try_from(c.varint()?).ok()?;
    let rlen = usize::try_from(c.varint()?).ok()?;
    let defs = c.take(dlen)?;
    let refs = c.take(rlen)?;
    // A record takes at least two bytes: a count past that is damage.
    if ndefs > dlen || nrefs > rlen {
        return None;
    }
    u32::try_from(shared + slen).ok()?;
    Some(Entry { shared, suffix, ndefs, defs, nrefs, refs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kind() -> impl Strategy<Value = Kind> {
        (0..Kind::ALL.len()).prop_map(|i| Kind::ALL[i])
    }

    /// Records as the writer sorts them, with positions that sometimes go
    /// back within a file (precise data can), spans that are not the
    /// name's length, and values at the ends of `u32`.
    fn defs() -> impl Strategy<Value = Vec<DefRec>> {
        let edge = prop_oneof![0u32..5, 0u32..100_000, Just(u32::MAX - 1), Just(u32::MAX), any::<u32>()];
        let rec = (
            0u32..6,
            kind(),
            any::<bool>(),
            edge.clone(),
            prop_oneof![Just(0i64), -3i64..3],
            edge.clone(),
            edge.clone(),
            prop_oneof![Just(NONE), 0u32..1000, Just(u32::MAX - 1)],
            edge,
        );
        proptest::collection::vec(rec, 0..40).prop_map(|v| {
            let mut out: Vec<DefRec> = v
                .into_iter()
                .filter_map(|(file, kind, precise, ns, span, ds, de, container, line)| {
                    let ne = u32::try_from(i64::from(ns) + 7 + span).ok()?;
                    Some(DefRec {
                        name: 3,
                        file,
                        kind,
                        precise,
                        name_start: ns,
                        name_end: ne,
                        def_start: ds,
                        def_end: de,
                        container,
                        line,
                    })
                })
                .collect();
            out.sort_by_key(|d| (!d.precise, d.file, d.name_start, d.def_start));
            out
        })
    }

    fn refs() -> impl Strategy<Value = Vec<RefRec>> {
        let edge = prop_oneof![0u32..5, 0u32..100_000, Just(u32::MAX), any::<u32>()];
        let rec = (0u32..6, any::<bool>(), edge.clone(), prop_oneof![Just(0i64), -3i64..3], edge);
        proptest::collection::vec(rec, 0..40).prop_map(|v| {
            let mut out: Vec<RefRec> = v
                .into_iter()
                .filter_map(|(file, precise, start, span, line)| {
                    let end = u32::try_from(i64::from(start) + 7 + span).ok()?;
                    Some(RefRec { name: 3, file, start, end, line, precise })
                })
                .collect();
            out.sort_by_key(|r| (!r.precise, r.file, r.start));
            out
        })
    }

    proptest! {
        #[test]
        fn varints_round_trip(v in prop_oneof![any::<u64>(), 0u64..300, Just(u64::MAX)]) {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut c = Cursor::new(&b, 0);
            prop_assert_eq!(c.varint(), Some(v));
            prop_assert_eq!(c.at, b.len());
            prop_assert_eq!(unzigzag(zigzag(v as i64)), v as i64);
            // One byte short is damage, not a smaller number.
            prop_assert_eq!(Cursor::new(&b[..b.len() - 1], 0).varint(), None);
        }

        #[test]
        fn definition_runs_round_trip(d in defs()) {
            let mut b = Vec::new();
            encode_defs(&d, 7, &mut b);
            let mut run = DefRun::new(&b, d.len(), 3, 7);
            let got: Vec<DefRec> = run.by_ref().collect();
            prop_assert_eq!(&got, &d);
            prop_assert!(run.done());
        }

        #[test]
        fn reference_runs_round_trip(r in refs()) {
            let mut b = Vec::new();
            encode_refs(&r, 7, &mut b);
            let mut run = RefRun::new(&b, r.len(), 3, 7);
            let got: Vec<RefRec> = run.by_ref().collect();
            prop_assert_eq!(&got, &r);
            prop_assert!(run.done());
        }

        /// Front-coded names of a block decode to themselves, and the runs
        /// of each entry are where its counts say.
        #[test]
        fn entries_round_trip(mut names in proptest::collection::vec("[a-c_]{0,6}|é[a-z]{0,3}", 1..40), d in defs(), r in refs()) {
            names.sort();
            names.dedup();
            let mut b = Vec::new();
            let mut prev: &[u8] = b"";
            for (i, n) in names.iter().enumerate() {
                if i % BLOCK == 0 {
                    prev = b"";
                }
                let dd: Vec<DefRec> = if i % 2 == 0 { d.clone() } else { Vec::new() };
                encode_entry(&mut b, prev, n.as_bytes(), &dd, &r);
                prev = n.as_bytes();
            }
            let mut c = Cursor::new(&b, 0);
            let mut buf = Vec::new();
            for (i, n) in names.iter().enumerate() {
                let e = read_entry(&mut c).unwrap();
                if i % BLOCK == 0 {
                    prop_assert_eq!(e.shared, 0);
                }
                e.apply(&mut buf).unwrap();
                prop_assert_eq!(&buf, n.as_bytes());
                prop_assert_eq!(e.name_len() as usize, n.len());
                let want = if i % 2 == 0 { d.len() } else { 0 };
                prop_assert_eq!(e.ndefs, want);
                prop_assert_eq!(e.nrefs, r.len());
            }
            prop_assert_eq!(c.at, b.len());
        }

        /// Damage never panics: any byte flipped or any cut decodes to
        /// something or to `None`.
        #[test]
        fn damaged_runs_do_not_panic(d in defs(), at in any::<usize>(), x in 1u8..=255) {
            let mut b = Vec::new();
            encode_defs(&d, 7, &mut b);
            if !b.is_empty() {
                let at = at % b.len();
                b[at] ^= x;
                let _ = DefRun::new(&b, d.len(), 3, 7).count();
                let _ = RefRun::new(&b, d.len(), 3, 7).count();
                let _ = read_entry(&mut Cursor::new(&b, 0));
                let _ = DefRun::new(&b[..at], d.len(), 3, 7).count();
            }
        }
    }

    #[test]
    fn a_run_of_one_file_costs_a_few_bytes_a_record() {
        // Consecutive `#define`s of one file: the common case on the kernel.
        let d: Vec<DefRec> = (0..100u32)
            .map(|i| DefRec {
                name: 0,
                file: 9,
                kind: Kind::Constant,
                precise: false,
                name_start: 1000 + i * 60,
                name_end: 1000 + i * 60 + 7,
                def_start: 1000 + i * 60 - 8,
                def_end: 1000 + i * 60 + 30,
                container: NONE,
                line: 40 + i,
            })
            .collect();
        let mut b = Vec::new();
        encode_defs(&d, 7, &mut b);
        assert!(b.len() <= 100 * 5 + 8, "{} bytes", b.len());
    }
}
