//! The term file of one segment (`seg-....terms` beside `seg-....lens`): an
//! `fst` term dictionary, per-term postings (doc ids ascending, a quantized
//! BM25F impact and a field mask per posting) and a document table.
//!
//! Impacts are precomputed at build time: the BM25F pseudo-frequency
//! `tf~ = sum_f w_f * tf_f / (1 - b_f + b_f * len_f / avglen_f)`, saturated
//! as `tf~ / (k1 + tf~)` and stored in a byte. The idf is applied at query
//! time from document frequencies summed over all live segments, so a small
//! refresh segment scores on the same scale as the base.
//!
//! Layout (little-endian): a 144-byte header (magic, version, counts, then
//! (offset, length) of the sections below), then the sections:
//! dictionary (fst: term -> term id), term table ([`TERM_LEN`] bytes per
//! term: df u32, the head of its first block), packed postings, document
//! table ([`DOC_LEN`] bytes each), name blob.
//!
//! Postings are cut per term into blocks of [`BLOCK`]. A block's head
//! ([`HEAD_LEN`] bytes: first doc id, offset of its packed bytes, a code of
//! bit widths, its largest impact) says how it is packed: each doc id as its
//! distance from the block's first in a fixed bit width (frame of reference,
//! so that any posting is read without decoding its neighbours: the scorer
//! seeks by binary search), then each field mask as the bits that vary
//! within the block (the bits common to all and the varying ones are in the
//! head). A term's impacts are one byte per posting, all its blocks' in one
//! run (the scorer indexes them directly). The first block's head is in the
//! term's row; in the packed section a term's other blocks' heads come
//! first, then its impacts, then its blocks' packed bytes, so everything is
//! found from the first block's offset and the df. The packed section ends
//! with 8 zero bytes, so a value is one unaligned load.
//! Version 3 (this layout); 2 and 1 held u32 doc ids and a mask byte per
//! posting and are no longer read (their index's format version is refused).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use fst::Map;
use memmap2::Mmap;

use super::docs::{Doc, NFIELDS};
use crate::error::{Error, Result};

pub const MAGIC: &[u8; 8] = b"LENSTRM\0";
/// 2: spell keys (`rank::spell_keys`); 3: bit-packed postings (module docs).
pub const VERSION: u32 = 3;
const HEADER_LEN: usize = 144;
const NSECTIONS: usize = 5;
/// A block head: first doc u32, packed-bytes offset u32, width code u16, max impact u8.
const HEAD_LEN: usize = 11;
/// A term row: df u32, its first block's head.
const TERM_LEN: usize = 4 + HEAD_LEN;
const DOC_LEN: usize = 33;
/// Postings per block (of the packing and of the block-max bounds).
pub const BLOCK: usize = 128;
/// Zero bytes after the packed postings: a value is read with one 8-byte load.
const PACK_PAD: usize = 8;

const S_DICT: usize = 0;
const S_TERMS: usize = 1;
const S_PACK: usize = 2;
const S_DOCTABLE: usize = 3;
const S_BLOB: usize = 4;

/// BM25F field weights (name, signature, path, comment, body), length
/// normalisation per field and saturation, tuned on the dev set's question
/// kind (BENCHMARKS.md): comments weigh little because in a tree whose
/// docstrings are blanked they are mostly section notes and commented-out
/// code; strong length normalisation keeps long bodies from matching
/// everything.
pub const WEIGHTS: [f32; NFIELDS] = [3.0, 2.0, 1.5, 0.3, 1.0];
const B: [f32; NFIELDS] = [0.9; NFIELDS];
const K1: f32 = 1.5;

/// The term file that goes with a segment file.
pub fn terms_path(segment: &Path) -> PathBuf {
    segment.with_extension("terms")
}

/// A document's row in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DocRow {
    pub file: u32,
    pub line: u32,
    pub start: u32,
    pub end: u32,
    pub def_start: u32,
    pub def_end: u32,
    pub kind: u8,
    blob_off: u32,
    name_len: u16,
    container_len: u16,
}

/// One analyser's documents, `(file id, doc)` in file order, and the
/// vocabulary their term ids index ([`super::tokenize::Analyzer::into_vocab`]).
pub struct Chunk {
    pub vocab: Vec<Box<str>>,
    pub docs: Vec<(u32, Doc<u32>)>,
}

/// Writes the term file of a segment's documents: `(file id, doc)` pairs in
/// file order. Returns the bytes written. [`write_chunks`] with the terms
/// spelled out (one vocabulary for all).
pub fn write(path: &Path, docs: &[(u32, Doc)]) -> Result<u64> {
    let mut ids: hashbrown::HashMap<&str, u32> = hashbrown::HashMap::new();
    let mut vocab: Vec<Box<str>> = Vec::new();
    let docs = docs
        .iter()
        .map(|(file, d)| {
            let terms = d
                .terms
                .iter()
                .map(|(t, c)| {
                    let id = *ids.entry(t.as_str()).or_insert_with(|| {
                        vocab.push(t.as_str().into());
                        vocab.len() as u32 - 1
                    });
                    (id, *c)
                })
                .collect();
            (*file, d.with_terms(terms))
        })
        .collect();
    write_chunks(path, &[Chunk { vocab, docs }])
}

/// Writes the term file of a segment's documents, the chunks' documents one
/// after another (in file order). Returns the bytes written.
pub fn write_chunks(path: &Path, chunks: &[Chunk]) -> Result<u64> {
    let (weights, bs, k1) = (WEIGHTS, B, K1);
    let docs = || chunks.iter().flat_map(|c| &c.docs);
    let ndocs: usize = chunks.iter().map(|c| c.docs.len()).sum();
    let n = ndocs.max(1) as f32;
    let mut avg = [0f32; NFIELDS];
    for (_, d) in docs() {
        for (a, &l) in avg.iter_mut().zip(&d.lens) {
            *a += l as f32;
        }
    }
    for a in &mut avg {
        *a = (*a / n).max(1.0);
    }
    // A shard of a set normalises by the set's average lengths (issue 14, `global`).
    let mut sums = [0u64; NFIELDS];
    for (_, d) in docs() {
        for (s, &l) in sums.iter_mut().zip(&d.lens) {
            *s += l as u64;
        }
    }
    super::global::record_lengths(path, ndocs as u64, sums);
    let avg = super::global::avglen_for(path).unwrap_or(avg);
    // The segment's terms: each chunk's ids mapped to the segment's, once
    // per chunk vocabulary entry rather than once per term per document.
    let mut seg_ids: hashbrown::HashMap<&str, u32> = hashbrown::HashMap::new();
    let mut text: Vec<&str> = Vec::new();
    let maps: Vec<Vec<u32>> = chunks
        .iter()
        .map(|c| {
            c.vocab
                .iter()
                .map(|t| {
                    *seg_ids.entry(&**t).or_insert_with(|| {
                        text.push(t);
                        text.len() as u32 - 1
                    })
                })
                .collect()
        })
        .collect();
    drop(seg_ids);
    // term -> postings (doc, impact, mask)
    let mut inv: Vec<Vec<Posting>> = vec![Vec::new(); text.len()];
    let mut id = 0u32;
    for (c, map) in chunks.iter().zip(&maps) {
        for (_, d) in &c.docs {
            let norm: [f32; NFIELDS] = std::array::from_fn(|f| 1.0 - bs[f] + bs[f] * d.lens[f] as f32 / avg[f]);
            for &(t, tf) in &d.terms {
                let mut pseudo = 0f32;
                let mut mask = 0u8;
                for f in 0..NFIELDS {
                    if tf[f] > 0 {
                        pseudo += weights[f] * tf[f] as f32 / norm[f];
                        mask |= 1 << f;
                    }
                }
                let sat = pseudo / (k1 + pseudo);
                let imp = (sat * 255.0).round().clamp(1.0, 255.0) as u8;
                inv[map[t as usize] as usize].push((id, imp, mask));
            }
            id += 1;
        }
    }
    // A vocabulary holds terms no kept document has (a dropped window's).
    let mut terms: Vec<(&str, Vec<Posting>)> =
        text.into_iter().zip(inv).filter(|(_, posts)| !posts.is_empty()).collect();
    terms.sort_unstable_by(|a, b| a.0.cmp(b.0));

    let mut sections: Vec<Vec<u8>> = vec![Vec::new(); NSECTIONS];
    let too_big = |what: &str| Error::corrupt(path, format!("term file: {what} past 4 GiB (segment too large)"));
    let mut dict = fst::MapBuilder::memory();
    for (i, (t, posts)) in terms.iter().enumerate() {
        dict.insert(t, i as u64).map_err(|e| Error::corrupt(path, format!("term dictionary: {e}")))?;
        let first = pack_postings(posts, &mut sections[S_PACK]).ok_or_else(|| too_big("packed postings"))?;
        let s = &mut sections[S_TERMS];
        s.extend_from_slice(&(posts.len() as u32).to_le_bytes());
        first.put(s);
    }
    sections[S_PACK].extend_from_slice(&[0; PACK_PAD]);
    sections[S_DICT] = dict.into_inner().map_err(|e| Error::corrupt(path, format!("term dictionary: {e}")))?;
    for (file, d) in docs() {
        let blob_off = sections[S_BLOB].len() as u32;
        let name = &d.name.as_bytes()[..d.name.len().min(u16::MAX as usize)];
        let cont = &d.container.as_bytes()[..d.container.len().min(u16::MAX as usize)];
        sections[S_BLOB].extend_from_slice(name);
        sections[S_BLOB].extend_from_slice(cont);
        let s = &mut sections[S_DOCTABLE];
        for v in [*file, d.line, d.start, d.end, d.def_start, d.def_end, blob_off] {
            s.extend_from_slice(&v.to_le_bytes());
        }
        s.extend_from_slice(&(name.len() as u16).to_le_bytes());
        s.extend_from_slice(&(cont.len() as u16).to_le_bytes());
        s.push(d.kind);
    }
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&(ndocs as u32).to_le_bytes());
    header.extend_from_slice(&(terms.len() as u32).to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    let mut at = HEADER_LEN as u64;
    for s in &sections {
        header.extend_from_slice(&at.to_le_bytes());
        header.extend_from_slice(&(s.len() as u64).to_le_bytes());
        at += s.len() as u64;
    }
    header.resize(HEADER_LEN, 0);
    let tmp = path.with_extension("terms.tmp");
    let mut f = std::io::BufWriter::new(File::create(&tmp).map_err(|e| Error::io(&tmp, e))?);
    f.write_all(&header).map_err(|e| Error::io(&tmp, e))?;
    for s in &sections {
        f.write_all(s).map_err(|e| Error::io(&tmp, e))?;
    }
    let f = f.into_inner().map_err(|e| Error::io(&tmp, e.into_error()))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    Ok(at)
}

/// A block's head (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Head {
    /// The block's first doc id; the others are stored as distances from it.
    base: u32,
    /// Where the block's packed bytes start in the packed section.
    data: u32,
    /// Bits 0-5: the doc ids' width (0-32); 6-10: the mask bits every
    /// posting of the block has; 11-15: the mask bits that vary (stored).
    code: u16,
    /// The block's largest impact.
    max: u8,
}

impl Head {
    fn parse(b: &[u8]) -> Head {
        Head { base: u32_at(b, 0), data: u32_at(b, 4), code: u16::from_le_bytes([b[8], b[9]]), max: b[10] }
    }
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.base.to_le_bytes());
        out.extend_from_slice(&self.data.to_le_bytes());
        out.extend_from_slice(&self.code.to_le_bytes());
        out.push(self.max);
    }
    fn width(&self) -> u32 {
        u32::from(self.code & 63)
    }
    fn mask_common(&self) -> u8 {
        ((self.code >> 6) & 31) as u8
    }
    fn mask_varying(&self) -> u8 {
        (self.code >> 11) as u8
    }
    /// The bytes of the packed doc ids of a block of `n` postings.
    fn doc_bytes(&self, n: usize) -> usize {
        (n * self.width() as usize).div_ceil(8)
    }
    /// All packed bytes of a block of `n` postings.
    fn bytes(&self, n: usize) -> usize {
        self.doc_bytes(n) + (n * self.mask_varying().count_ones() as usize).div_ceil(8)
    }
}

/// Appends `v` (`w` bits) to a little-endian bit stream.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    nbits: u32,
}

impl BitWriter<'_> {
    fn put(&mut self, v: u32, w: u32) {
        self.acc |= u64::from(v) << self.nbits;
        self.nbits += w;
        while self.nbits >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.nbits -= 8;
        }
    }
    /// Pads the stream to a whole byte.
    fn flush(&mut self) {
        if self.nbits > 0 {
            self.out.push(self.acc as u8);
        }
        (self.acc, self.nbits) = (0, 0);
    }
}

/// The `w`-bit value number `j` of the bit stream starting at `pack[at]`
/// (0 where damage points past the end: the file was checked at open).
#[inline]
fn bits_at(pack: &[u8], at: usize, j: usize, w: u32) -> u32 {
    if w == 0 {
        return 0;
    }
    let bit = j * w as usize;
    let Some(b) = pack.get(at + bit / 8..at + bit / 8 + 8) else { return 0 };
    let word = u64::from_le_bytes(b.try_into().expect("8 bytes"));
    ((word >> (bit % 8)) & ((1u64 << w) - 1)) as u32
}

/// The bits of `mask` selected by `sel`, gathered to the low end (pext).
fn gather(mask: u8, sel: u8) -> u32 {
    let (mut out, mut k) = (0u32, 0);
    for f in 0..8 {
        if sel >> f & 1 == 1 {
            out |= u32::from(mask >> f & 1) << k;
            k += 1;
        }
    }
    out
}

/// The low bits of `v` spread to the positions `sel` selects (pdep).
fn scatter(v: u32, sel: u8) -> u8 {
    let (mut out, mut k) = (0u8, 0);
    for f in 0..8 {
        if sel >> f & 1 == 1 {
            out |= (((v >> k) & 1) as u8) << f;
            k += 1;
        }
    }
    out
}

type Posting = (u32, u8, u8);

// A block head's code holds a field mask in 5 bits.
const _: () = assert!(NFIELDS <= 5);

/// Packs one term's postings (doc ascending) into `pack`: the heads of its
/// blocks after the first, its impacts, then every block's bytes. Returns
/// the first block's head (None past 4 GiB of packed bytes).
fn pack_postings(posts: &[Posting], pack: &mut Vec<u8>) -> Option<Head> {
    let nblocks = posts.len().div_ceil(BLOCK);
    let heads_at = pack.len();
    pack.resize(heads_at + nblocks.saturating_sub(1) * HEAD_LEN, 0);
    pack.extend(posts.iter().map(|p| p.1));
    let mut first = None;
    for (b, blk) in posts.chunks(BLOCK).enumerate() {
        let base = blk[0].0;
        let width = 32 - (blk[blk.len() - 1].0 - base).leading_zeros();
        let or = blk.iter().fold(0u8, |a, p| a | p.2);
        let and = blk.iter().fold((1u8 << NFIELDS) - 1, |a, p| a & p.2);
        let varying = or & !and;
        let head = Head {
            base,
            data: u32::try_from(pack.len()).ok()?,
            code: width as u16 | u16::from(and) << 6 | u16::from(varying) << 11,
            max: blk.iter().map(|p| p.1).max().unwrap_or(0),
        };
        let mut w = BitWriter { out: pack, acc: 0, nbits: 0 };
        for p in blk {
            w.put(p.0 - base, width);
        }
        w.flush();
        let mw = varying.count_ones();
        for p in blk {
            w.put(gather(p.2, varying), mw);
        }
        w.flush();
        if b == 0 {
            first = Some(head);
        } else {
            let mut h = Vec::with_capacity(HEAD_LEN);
            head.put(&mut h);
            let at = heads_at + (b - 1) * HEAD_LEN;
            pack[at..at + HEAD_LEN].copy_from_slice(&h);
        }
    }
    first
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"))
}

/// Where one block's doc ids are: (its first doc id, the packed offset of
/// the others, their bit width).
pub type Frame = (u32, usize, u32);

/// One term's postings.
#[derive(Clone, Copy)]
pub struct Postings<'a> {
    /// The file's packed section (block offsets are absolute in it).
    pack: &'a [u8],
    /// The first block's head.
    first: Head,
    /// The heads of the blocks after the first, [`HEAD_LEN`] bytes each.
    heads: &'a [u8],
    pub impacts: &'a [u8],
    pub max_impact: u8,
}

impl Postings<'_> {
    pub fn len(&self) -> usize {
        self.impacts.len()
    }
    pub fn is_empty(&self) -> bool {
        self.impacts.is_empty()
    }
    #[inline]
    fn head(&self, b: usize) -> Head {
        if b == 0 {
            self.first
        } else {
            Head::parse(&self.heads[(b - 1) * HEAD_LEN..])
        }
    }
    /// The number of blocks of [`BLOCK`] postings.
    pub fn blocks(&self) -> usize {
        self.len().div_ceil(BLOCK)
    }
    /// Where block `b`'s doc ids are: (first doc, packed offset, width),
    /// read without the rest of its head (the scorer's hot path: its cursor
    /// keeps the frame of the block it is in).
    #[inline]
    pub fn frame(&self, b: usize) -> Frame {
        if b == 0 {
            (self.first.base, self.first.data as usize, self.first.width())
        } else {
            let at = (b - 1) * HEAD_LEN;
            let h: &[u8; 9] = self.heads[at..at + 9].try_into().expect("9 bytes");
            let base = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
            let data = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
            (base, data as usize, u32::from(h[8] & 63))
        }
    }
    /// Value `j` of a frame's packed doc ids (a zero width reads 0: the
    /// section's padding keeps the 8-byte load inside it).
    #[inline]
    pub fn frame_doc(&self, (base, data, w): Frame, j: usize) -> u32 {
        let bit = j * w as usize;
        let at = data + bit / 8;
        let word = u64::from_le_bytes(self.pack[at..at + 8].try_into().expect("8 bytes"));
        base.wrapping_add(((word >> (bit % 8)) & ((1u64 << w) - 1)) as u32)
    }
    #[inline]
    pub fn doc(&self, i: usize) -> u32 {
        self.frame_doc(self.frame(i / BLOCK), i % BLOCK)
    }
    /// The first `out.len()` doc ids of a frame, decoded in one pass (the
    /// scorer's cursor, once it steps inside a block: one bounds check for
    /// the block and a shift and mask per posting, against a load per
    /// posting by [`Postings::frame_doc`]).
    #[inline]
    pub fn frame_docs(&self, (base, data, w): Frame, out: &mut [u32]) {
        if w == 0 {
            out.fill(base);
            return;
        }
        let mask = (1u64 << w) - 1;
        // The bytes of the block's ids and the 8-byte padding after the
        // last one (the section ends with PACK_PAD zero bytes).
        let end = data + (out.len() * w as usize).div_ceil(8) + PACK_PAD - 1;
        let Some(bytes) = self.pack.get(data..end.min(self.pack.len())) else {
            out.fill(base);
            return;
        };
        // Whole groups of 8 ids (`w` bytes each) by a loop made for the
        // width, whose shifts and offsets are constants: the reads of a
        // group need its `w` bytes and 7 more (the padding, or the next
        // group's), which a section cut short may lack (then id by id).
        let groups = out.len() / 8;
        let done = if bytes.len() >= groups * w as usize + 7 && unpack_groups(w, base, bytes, &mut out[..groups * 8]) {
            groups * 8
        } else {
            0
        };
        let mut bit = done * w as usize;
        for o in out[done..].iter_mut() {
            let at = bit / 8;
            let word = match bytes.get(at..at + 8) {
                Some(b) => u64::from_le_bytes(b.try_into().expect("8 bytes")),
                None => 0,
            };
            *o = base.wrapping_add(((word >> (bit % 8)) & mask) as u32);
            bit += w as usize;
        }
    }
    /// The field mask of posting `i` (bit `f`: the term is in field `f`).
    pub fn mask(&self, i: usize) -> u8 {
        let b = i / BLOCK;
        let h = self.head(b);
        let n = (self.len() - b * BLOCK).min(BLOCK);
        let varying = h.mask_varying();
        let v = bits_at(self.pack, h.data as usize + h.doc_bytes(n), i % BLOCK, varying.count_ones());
        h.mask_common() | scatter(v, varying)
    }
    /// An upper bound of the impacts at positions `i..self.block_end(i)`:
    /// the largest impact of the block of [`BLOCK`] postings of this list
    /// that holds posting `i` (blocks are cut per term list, so a short
    /// list's bound is its own maximum, not a neighbour's).
    #[inline]
    pub fn block_max(&self, i: usize) -> u8 {
        match i / BLOCK {
            _ if i >= self.len() => self.max_impact,
            0 => self.first.max,
            b => self.heads[(b - 1) * HEAD_LEN + 10],
        }
    }
    /// The end (exclusive) of the block that holds posting `i`.
    pub fn block_end(&self, i: usize) -> usize {
        ((i / BLOCK + 1) * BLOCK).min(self.len())
    }
    /// The index of the first posting with a doc id >= `doc`: a binary
    /// search over the blocks' first ids, then within one block.
    pub fn lower_bound(&self, doc: u32) -> usize {
        let n = self.len();
        let (mut a, mut b) = (0, n.div_ceil(BLOCK));
        while a < b {
            let m = (a + b) / 2;
            if self.frame(m).0 <= doc {
                a = m + 1;
            } else {
                b = m;
            }
        }
        // Every block before `a` starts at or below `doc`: the answer is in
        // block `a - 1`, or is the start of block `a`.
        let Some(blk) = a.checked_sub(1) else { return 0 };
        self.lower_bound_in_block(blk, blk * BLOCK, doc)
    }
    /// The first posting of block `blk`, at or after `from` (inside that
    /// block), with a doc id >= `doc`, or the block's end: a binary search.
    fn lower_bound_in_block(&self, blk: usize, from: usize, doc: u32) -> usize {
        let f = self.frame(blk);
        let (mut lo, mut hi) = (from - blk * BLOCK, (self.len() - blk * BLOCK).min(BLOCK));
        while lo < hi {
            let m = (lo + hi) / 2;
            if self.frame_doc(f, m) < doc {
                lo = m + 1;
            } else {
                hi = m;
            }
        }
        blk * BLOCK + lo
    }
    /// The last block from `blk` on whose first doc id is <= `doc` (`blk`
    /// itself when no later one is): galloping over the blocks' first ids,
    /// then a binary search, so that a block near `blk` costs few reads.
    pub fn gallop_blocks(&self, blk: usize, doc: u32) -> usize {
        let nb = self.blocks();
        let (mut lo, mut hi, mut step) = (blk, blk + 1, 1);
        while hi < nb && self.frame(hi).0 <= doc {
            lo = hi;
            step *= 2;
            hi = (hi + step).min(nb);
        }
        // Blocks `lo + 1..a` start at or below `doc`, block `a` (if any)
        // above it.
        let (mut a, mut b) = (lo + 1, hi);
        while a < b {
            let m = (a + b) / 2;
            if self.frame(m).0 <= doc {
                a = m + 1;
            } else {
                b = m;
            }
        }
        a - 1
    }
    /// [`Postings::lower_bound`] of `doc` when it is known to be at least
    /// `from` (every posting before `from` is below `doc`): galloping over
    /// the blocks' first ids from `from`'s block, then a binary search
    /// inside one block, so that ascending lookups near each other read
    /// only heads and ids near the last one.
    pub fn lower_bound_from(&self, from: usize, doc: u32) -> usize {
        if from >= self.len() {
            return self.len();
        }
        // The answer is in the last block (>= `from`'s) that starts at or
        // below `doc`, or starts the block after it.
        let blk = self.gallop_blocks(from / BLOCK, doc);
        self.lower_bound_in_block(blk, from.max(blk * BLOCK), doc)
    }
    /// Calls `f` with the doc id of each posting from `i` on while it is
    /// below `end`, and returns the index of the first posting not taken
    /// (a block's head is read once for its postings, not once per posting).
    pub fn each_below(&self, mut i: usize, end: u32, mut f: impl FnMut(u32)) -> usize {
        while i < self.len() {
            let frame = self.frame(i / BLOCK);
            for j in i % BLOCK..self.block_end(i) - i / BLOCK * BLOCK {
                let d = self.frame_doc(frame, j);
                if d >= end {
                    return i;
                }
                f(d);
                i += 1;
            }
        }
        i
    }
    /// The index of `doc`'s posting, if it has one.
    pub fn find(&self, doc: u32) -> Option<usize> {
        let i = self.lower_bound(doc);
        (i < self.len() && self.doc(i) == doc).then_some(i)
    }
}

/// Groups of 8 ids of width `W` from `bytes` (group `g` at byte `g * W`),
/// each plus `base`, into `out` (a multiple of 8 long); `bytes` holds each
/// group's `W` bytes and 7 more.
fn unpack_width<const W: usize>(base: u32, bytes: &[u8], out: &mut [u32]) {
    for (g, o) in out.chunks_exact_mut(8).enumerate() {
        let b = &bytes[g * W..g * W + W + 7];
        for (i, v) in o.iter_mut().enumerate() {
            let bit = i * W;
            let word = u64::from_le_bytes(b[bit / 8..bit / 8 + 8].try_into().expect("8 bytes"));
            *v = base.wrapping_add(((word >> (bit % 8)) & ((1u64 << W) - 1)) as u32);
        }
    }
}

/// [`unpack_width`] for a width known at run time; false (nothing done)
/// unless it is 1 to 32 (a block's width is checked at open).
fn unpack_groups(w: u32, base: u32, bytes: &[u8], out: &mut [u32]) -> bool {
    macro_rules! widths {
        ($($n:literal)*) => {
            match w {
                $($n => unpack_width::<$n>(base, bytes, out),)*
                _ => return false,
            }
        };
    }
    widths!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32);
    true
}

/// An opened term file.
pub struct TermFile {
    map: Mmap,
    sections: [(usize, usize); NSECTIONS],
    dict: Map<Vec<u8>>,
    ndocs: u32,
    nterms: u32,
}

impl TermFile {
    pub fn open(path: &Path) -> Result<TermFile> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: term files are written to a temporary name and renamed into
        // place; lens never modifies one afterwards.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let bad = |r: &str| Error::corrupt(path, format!("term file: {r}"));
        let b: &[u8] = &map;
        if b.len() < HEADER_LEN || &b[..8] != MAGIC {
            return Err(bad("not a lens term file"));
        }
        if u32_at(b, 8) != VERSION {
            return Err(bad("unknown version"));
        }
        let (ndocs, nterms) = (u32_at(b, 12), u32_at(b, 16));
        let mut sections = [(0usize, 0usize); NSECTIONS];
        for (i, s) in sections.iter_mut().enumerate() {
            let (off, len) = (u64_at(b, 24 + i * 16), u64_at(b, 32 + i * 16));
            if off.checked_add(len).is_none_or(|e| e > b.len() as u64) {
                return Err(bad("section out of bounds"));
            }
            *s = (off as usize, len as usize);
        }
        if sections[S_TERMS].1 != nterms as usize * TERM_LEN
            || sections[S_DOCTABLE].1 != ndocs as usize * DOC_LEN
            || sections[S_PACK].1 < PACK_PAD
        {
            return Err(bad("section sizes disagree"));
        }
        let (o, l) = sections[S_DICT];
        let dict = Map::new(b[o..o + l].to_vec()).map_err(|e| bad(&format!("dictionary: {e}")))?;
        let t = TermFile { map, sections, dict, ndocs, nterms };
        // Every term's impacts, block heads and packed bytes, and every
        // doc's name, must lie inside the file.
        let pack = t.sec(S_PACK).len() - PACK_PAD;
        for i in 0..nterms as usize {
            let r = &t.sec(S_TERMS)[i * TERM_LEN..];
            let df = u32_at(r, 0) as usize;
            if df == 0 {
                return Err(bad("empty postings"));
            }
            let first = Head::parse(&r[4..]);
            let nheads = (df - 1) / BLOCK;
            let Some(heads_at) = (first.data as usize).checked_sub(nheads * HEAD_LEN + df) else {
                return Err(bad("block heads out of bounds"));
            };
            for blk in 0..df.div_ceil(BLOCK) {
                let h = if blk == 0 { first } else { Head::parse(&t.sec(S_PACK)[heads_at + (blk - 1) * HEAD_LEN..]) };
                let n = (df - blk * BLOCK).min(BLOCK);
                if h.width() > 32 || h.data as usize + h.bytes(n) > pack {
                    return Err(bad("packed postings out of bounds"));
                }
            }
        }
        let blob = t.sec(S_BLOB).len();
        for i in 0..ndocs {
            let r = t.row(i);
            if r.blob_off as usize + r.name_len as usize + r.container_len as usize > blob {
                return Err(bad("name out of bounds"));
            }
        }
        Ok(t)
    }

    fn sec(&self, i: usize) -> &[u8] {
        let (o, l) = self.sections[i];
        &self.map[o..o + l]
    }

    /// Whether the file holds spell keys: the `ident` rule applies only
    /// where it does, in the fast path and the oracle alike (every file
    /// this version reads does).
    pub fn has_spell_keys(&self) -> bool {
        true
    }

    pub fn ndocs(&self) -> u32 {
        self.ndocs
    }

    pub fn nterms(&self) -> u32 {
        self.nterms
    }

    pub fn bytes_on_disk(&self) -> u64 {
        self.map.len() as u64
    }

    /// Each term with its document frequency, in term order.
    pub fn for_each_df(&self, mut f: impl FnMut(&[u8], u64)) {
        let terms = self.sec(S_TERMS);
        super::global::stream_terms(&self.dict, |t, id| f(t, u32_at(&terms[id as usize * TERM_LEN..], 0) as u64));
    }

    pub fn postings(&self, term: &str) -> Option<Postings<'_>> {
        self.postings_of(self.dict.get(term)? as usize)
    }

    fn postings_of(&self, id: usize) -> Option<Postings<'_>> {
        let r = self.sec(S_TERMS).get(id * TERM_LEN..(id + 1) * TERM_LEN)?;
        let df = u32_at(r, 0) as usize;
        let first = Head::parse(&r[4..]);
        let pack = self.sec(S_PACK);
        let impacts_at = first.data as usize - df;
        let heads = &pack[impacts_at - (df - 1) / BLOCK * HEAD_LEN..impacts_at];
        let max_impact = heads.chunks_exact(HEAD_LEN).map(|h| h[10]).fold(first.max, u8::max);
        Some(Postings { pack, first, heads, impacts: &pack[impacts_at..first.data as usize], max_impact })
    }

    pub fn row(&self, doc: u32) -> DocRow {
        let r = &self.sec(S_DOCTABLE)[doc as usize * DOC_LEN..];
        DocRow {
            file: u32_at(r, 0),
            line: u32_at(r, 4),
            start: u32_at(r, 8),
            end: u32_at(r, 12),
            def_start: u32_at(r, 16),
            def_end: u32_at(r, 20),
            blob_off: u32_at(r, 24),
            name_len: u16::from_le_bytes([r[28], r[29]]),
            container_len: u16::from_le_bytes([r[30], r[31]]),
            kind: r[32],
        }
    }

    /// The file id of a document (its row's first field).
    pub fn file_of(&self, doc: u32) -> u32 {
        u32_at(self.sec(S_DOCTABLE), doc as usize * DOC_LEN)
    }

    /// The documents of `file`: ids are in file order.
    pub fn docs_of_file(&self, file: u32) -> std::ops::Range<u32> {
        let first = |f: u32| {
            let (mut a, mut b) = (0, self.ndocs);
            while a < b {
                let m = a + (b - a) / 2;
                if self.file_of(m) < f {
                    a = m + 1;
                } else {
                    b = m;
                }
            }
            a
        };
        first(file)..first(file.saturating_add(1))
    }

    /// The documents holding a term the automaton accepts, ascending, distinct.
    pub fn docs_matching<A: fst::Automaton>(&self, aut: A) -> Vec<u32> {
        use fst::{IntoStreamer, Streamer};
        let mut ids = Vec::new();
        let mut s = self.dict.search(aut).into_stream();
        while let Some((_, id)) = s.next() {
            ids.push(id);
        }
        self.docs_of_terms(&ids)
    }

    /// The documents holding any of the terms `ids` (dictionary values),
    /// ascending, distinct.
    pub fn docs_of_terms(&self, ids: &[u64]) -> Vec<u32> {
        let mut out = Vec::new();
        for &id in ids {
            if let Some(p) = self.postings_of(id as usize) {
                out.extend((0..p.len()).map(|i| p.doc(i)));
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The term dictionary (term -> id), for a lookup that walks it itself.
    pub fn dict(&self) -> &fst::raw::Fst<Vec<u8>> {
        self.dict.as_fst()
    }

    /// A document's definition name and container ("" for windows).
    pub fn names(&self, row: &DocRow) -> (&str, &str) {
        let b = self.sec(S_BLOB);
        let s = row.blob_off as usize;
        let (n, c) = (row.name_len as usize, row.container_len as usize);
        (std::str::from_utf8(&b[s..s + n]).unwrap_or(""), std::str::from_utf8(&b[s + n..s + n + c]).unwrap_or(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str, terms: &[(&str, [u8; NFIELDS])]) -> Doc {
        Doc {
            line: 3,
            name: name.into(),
            terms: terms.iter().map(|(t, c)| (t.to_string(), *c)).collect(),
            lens: [2, 1, 1, 0, 10],
            ..Doc::default()
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("seg-000001-0001.terms");
        let docs = vec![
            (0, doc("parse_date", &[("date", [1, 0, 0, 0, 2]), ("pars", [1, 0, 0, 0, 0])])),
            (2, doc("format", &[("date", [0, 0, 0, 0, 1])])),
        ];
        write(&p, &docs).unwrap();
        let t = TermFile::open(&p).unwrap();
        assert_eq!((t.ndocs(), t.nterms()), (2, 2));
        let date = t.postings("date").unwrap();
        assert_eq!((date.len(), date.doc(0), date.doc(1)), (2, 0, 1));
        assert!(date.impacts[0] > date.impacts[1], "a name match outweighs a body match");
        assert_eq!(date.mask(0), 0b10001);
        assert_eq!(date.max_impact, date.impacts[0]);
        assert!(t.postings("zzz").is_none());
        let r = t.row(1);
        assert_eq!((r.file, r.line), (2, 3));
        assert_eq!(t.names(&r), ("format", ""));
    }

    #[test]
    fn chunks_write_the_file_their_spelled_documents_write() {
        // Two analysers' chunks: vocabularies in different orders, a term
        // in one chunk only, and a vocabulary term no document holds.
        let dir = tempfile::tempdir().unwrap();
        let vocab = |ts: &[&str]| ts.iter().map(|&t| Box::<str>::from(t)).collect::<Vec<_>>();
        let id_doc = |name: &str, terms: &[(u32, [u8; NFIELDS])]| Doc::<u32> {
            line: 3,
            name: name.into(),
            terms: terms.to_vec(),
            lens: [2, 1, 1, 0, 10],
            ..Doc::default()
        };
        let chunks = [
            Chunk {
                vocab: vocab(&["pars", "date", "unused"]),
                docs: vec![
                    (0, id_doc("parse_date", &[(1, [1, 0, 0, 0, 2]), (0, [1, 0, 0, 0, 0])])),
                    (1, id_doc("when", &[(1, [0, 0, 0, 3, 0])])),
                ],
            },
            Chunk {
                vocab: vocab(&["date", "#date_pars", "zone"]),
                docs: vec![(4, id_doc("format", &[(2, [0, 0, 1, 0, 0]), (0, [0, 0, 0, 0, 1]), (1, [0; NFIELDS])]))],
            },
        ];
        let spelled: Vec<(u32, Doc)> = chunks
            .iter()
            .flat_map(|c| {
                c.docs.iter().map(|(f, d)| {
                    let terms = d.terms.iter().map(|&(t, n)| (c.vocab[t as usize].to_string(), n)).collect();
                    (*f, Doc { terms, name: d.name.clone(), line: d.line, lens: d.lens, ..Doc::default() })
                })
            })
            .collect();
        let (a, b) = (dir.path().join("a.terms"), dir.path().join("b.terms"));
        write_chunks(&a, &chunks).unwrap();
        write(&b, &spelled).unwrap();
        assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
        let t = TermFile::open(&a).unwrap();
        assert_eq!((t.ndocs(), t.nterms()), (3, 4), "`unused` has no postings");
        let date = t.postings("date").unwrap();
        assert_eq!((date.len(), date.doc(0), date.doc(1), date.doc(2)), (3, 0, 1, 2));
        assert_eq!(t.row(2).file, 4);
    }

    #[test]
    fn damage_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.terms");
        write(&p, &[(0, doc("a", &[("aa", [1, 0, 0, 0, 0])]))]).unwrap();
        let mut b = fs::read(&p).unwrap();
        b[24] = 0xff;
        fs::write(&p, &b).unwrap();
        assert!(matches!(TermFile::open(&p), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn other_versions_are_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.terms");
        write(&p, &[(0, doc("a", &[("aa", [1, 0, 0, 0, 0])]))]).unwrap();
        assert!(TermFile::open(&p).unwrap().has_spell_keys());
        let mut b = fs::read(&p).unwrap();
        for v in [1u32, 2, 4] {
            b[8..12].copy_from_slice(&v.to_le_bytes());
            fs::write(&p, &b).unwrap();
            assert!(matches!(TermFile::open(&p), Err(Error::Corrupt { .. })), "version {v}");
        }
    }

    /// The naive oracle: every term's postings as (doc, impact, mask), from
    /// the documents as `write` computes them, against what the packed file
    /// gives back posting by posting, with block maxima, bounds and lookups.
    #[test]
    fn packed_postings_round_trip_against_the_oracle() {
        use crate::test_rng::Rng;
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng::new(0x5eed_1234_abcd_0001);
        for round in 0..12 {
            // Lists from one posting to several blocks, dense (term 0 is in
            // every document) and sparse (term t in ~1/(t+1) of them), masks
            // of one field or several; `widest_blocks_round_trip` has the
            // 32-bit widths.
            let ndocs = [1, 5, 127, 128, 129, 300, 2000, 5000][round % 8];
            let nterms = 1 + rng.below(40);
            let mut docs: Vec<(u32, Doc)> = Vec::new();
            for i in 0..ndocs {
                let mut terms: Vec<(String, [u8; NFIELDS])> = Vec::new();
                for t in 0..nterms {
                    // term t is in a document with probability ~1/(t+1), or always for t == 0
                    if t > 0 && rng.below(t + 1) != 0 {
                        continue;
                    }
                    let mut c = [0u8; NFIELDS];
                    let fields = if rng.below(3) == 0 { 1 + rng.below(NFIELDS) } else { 1 };
                    for _ in 0..fields {
                        c[rng.below(NFIELDS)] = 1 + rng.below(5) as u8;
                    }
                    terms.push((format!("t{t:03}"), c));
                }
                let lens = std::array::from_fn(|_| rng.below(40) as u16);
                docs.push((i as u32, Doc { terms, lens, ..doc("d", &[]) }));
            }
            let p = dir.path().join(format!("r{round}.terms"));
            write(&p, &docs).unwrap();
            let t = TermFile::open(&p).unwrap();
            assert_eq!(t.ndocs() as usize, ndocs);
            for (i, (file, d)) in docs.iter().enumerate() {
                let r = t.row(i as u32);
                assert_eq!((r.file, r.line, r.kind, t.names(&r)), (*file, d.line, d.kind, ("d", "")));
            }
            // Impacts stay one byte per posting, one run per term (the
            // scorer's slice); the oracle checks the packed doc ids, masks
            // and block maxima.
            for term in 0..nterms {
                let name = format!("t{term:03}");
                let want: Vec<(u32, u8)> = docs
                    .iter()
                    .enumerate()
                    .filter_map(|(id, (_, d))| {
                        let (_, c) = d.terms.iter().find(|(x, _)| *x == name)?;
                        let mask = (0..NFIELDS).filter(|&f| c[f] > 0).fold(0u8, |m, f| m | 1 << f);
                        Some((id as u32, mask))
                    })
                    .collect();
                let Some(got) = t.postings(&name) else {
                    assert!(want.is_empty(), "{name}");
                    continue;
                };
                assert_eq!(got.len(), want.len(), "{name}");
                for (i, &(d, m)) in want.iter().enumerate() {
                    assert_eq!((got.doc(i), got.mask(i)), (d, m), "{name} posting {i}");
                    assert_eq!(got.find(d), Some(i));
                    let blk = &got.impacts[i / BLOCK * BLOCK..got.block_end(i)];
                    assert_eq!(got.block_max(i), *blk.iter().max().unwrap());
                    assert!(got.impacts[i] >= 1);
                }
                // A block decoded whole (the scorer's cursor) gives the same ids.
                for b in 0..got.blocks() {
                    let n = got.block_end(b * BLOCK) - b * BLOCK;
                    let mut ids = vec![0u32; n];
                    got.frame_docs(got.frame(b), &mut ids);
                    let want_ids: Vec<u32> = want[b * BLOCK..b * BLOCK + n].iter().map(|w| w.0).collect();
                    assert_eq!(ids, want_ids, "{name} block {b}");
                }
                assert_eq!(got.max_impact, *got.impacts.iter().max().unwrap());
                assert_eq!(got.block_max(got.len()), got.max_impact);
                assert_eq!(got.lower_bound(u32::MAX), got.len());
                // From any position at or before the answer, the galloping
                // search lands where the binary search does.
                for _ in 0..40 {
                    let d = rng.below(ndocs + 2) as u32;
                    let want_i = got.lower_bound(d);
                    let from = if want_i == 0 { 0 } else { want_i - rng.below(want_i.min(3 * BLOCK) + 1) };
                    assert_eq!(got.lower_bound_from(from, d), want_i, "{name} doc {d} from {from}");
                    // The postings from `from` below `d`, by block, are
                    // those `doc(i)` gives one by one.
                    let mut seen = Vec::new();
                    assert_eq!(got.each_below(from, d, |x| seen.push(x)), want_i, "{name} below {d} from {from}");
                    assert_eq!(seen, (from..want_i).map(|i| got.doc(i)).collect::<Vec<_>>(), "{name} below {d}");
                }
                if want.len() < ndocs {
                    let absent = (0..ndocs as u32).find(|d| want.binary_search_by_key(d, |w| w.0).is_err()).unwrap();
                    assert_eq!(got.find(absent), None);
                    assert_eq!(got.lower_bound(absent), want.partition_point(|w| w.0 < absent));
                }
            }
        }
    }

    /// A block decoded whole (the width-specialised groups of 8 and the id
    /// by id tail) against [`Postings::frame_doc`] one id at a time (the
    /// oracle), at every width and at lengths around the groups of 8.
    #[test]
    fn frame_docs_agrees_with_frame_doc_at_every_width() {
        use crate::test_rng::Rng;
        let mut rng = Rng::new(0x10a2_f00d);
        for w in 1..=32u32 {
            for n in [2, 7, 8, 9, 15, 16, 17, 63, 64, 100, 127, BLOCK] {
                let top = if w == 32 { u32::MAX } else { (1u32 << w) - 1 };
                let base = rng.below(1000) as u32 * u32::from(w < 32);
                let mut vals: Vec<u32> = (0..n).map(|_| (rng.next() as u32) & top).collect();
                vals[0] = 0;
                vals[n - 1] = top;
                vals.sort_unstable();
                let posts: Vec<Posting> = vals.iter().map(|&v| (base.wrapping_add(v), 1, 1)).collect();
                let mut pack = Vec::new();
                let first = pack_postings(&posts, &mut pack).unwrap();
                pack.extend_from_slice(&[0; PACK_PAD]);
                assert_eq!(first.width(), w);
                let impacts = vec![1u8; n];
                let p = Postings { pack: &pack, first, heads: &[], impacts: &impacts, max_impact: 1 };
                let f = p.frame(0);
                let want: Vec<u32> = (0..n).map(|j| p.frame_doc(f, j)).collect();
                assert_eq!(want, posts.iter().map(|p| p.0).collect::<Vec<_>>(), "width {w} n {n}");
                for len in [n, n - 1, n / 2] {
                    let mut ids = vec![0u32; len];
                    p.frame_docs(f, &mut ids);
                    assert_eq!(ids, want[..len], "width {w} n {n} first {len}");
                }
            }
        }
    }

    /// Doc ids far apart: a block's width reaches 32 bits.
    #[test]
    fn widest_blocks_round_trip() {
        let mut pack = Vec::new();
        let posts: Vec<Posting> = [0u32, 1, 1 << 31, u32::MAX - 1, u32::MAX].iter().map(|&d| (d, 9, 0b10100)).collect();
        let first = pack_postings(&posts, &mut pack).unwrap();
        pack.extend_from_slice(&[0; PACK_PAD]);
        assert_eq!(first.width(), 32);
        let p = Postings { pack: &pack, first, heads: &[], impacts: &pack[..5], max_impact: 9 };
        assert_eq!(p.impacts, &[9; 5]);
        assert_eq!((0..5).map(|i| p.doc(i)).collect::<Vec<_>>(), posts.iter().map(|p| p.0).collect::<Vec<_>>());
        let mut ids = [0u32; 5];
        p.frame_docs(p.frame(0), &mut ids);
        assert_eq!(ids.to_vec(), posts.iter().map(|p| p.0).collect::<Vec<_>>());
        assert!((0..5).all(|i| p.mask(i) == 0b10100));
    }

    #[test]
    fn gather_and_scatter_are_inverse() {
        for sel in 0..32u8 {
            for m in 0..32u8 {
                assert_eq!(scatter(gather(m, sel), sel), m & sel);
            }
        }
    }

    #[test]
    fn damaged_block_heads_are_corruption() {
        use crate::test_rng::Rng;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.terms");
        let docs: Vec<(u32, Doc)> =
            (0..700).map(|i| (i, doc("a", &[("aa", [1, 0, 0, 0, 1]), ("bb", [0, 0, 0, 0, 1])]))).collect();
        write(&p, &docs).unwrap();
        let good = fs::read(&p).unwrap();
        let terms_at = u64_at(&good, 24 + S_TERMS * 16) as usize;
        let mut rng = Rng::new(77);
        for _ in 0..200 {
            let mut b = good.clone();
            // a flipped bit in a row's head: width or offset
            let at = terms_at + rng.below(2) * TERM_LEN + rng.below(4 + HEAD_LEN);
            b[at] ^= 1 << rng.below(8);
            fs::write(&p, &b).unwrap();
            // Either caught at open or harmless to read (never a panic).
            if let Ok(t) = TermFile::open(&p) {
                for term in ["aa", "bb"] {
                    let q = t.postings(term).unwrap();
                    for i in 0..q.len() {
                        let _ = (q.doc(i), q.mask(i), q.block_max(i), q.find(i as u32));
                    }
                }
            }
        }
    }
}
