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
//! dictionary (fst: term -> term id), term table (16 bytes per term: posting
//! offset u64, df u32, max impact u8), posting doc ids (u32), impacts (u8),
//! field masks (u8), document table ([`DOC_LEN`] bytes each), name blob.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use fst::Map;
use memmap2::Mmap;

use super::docs::{Doc, NFIELDS};
use crate::error::{Error, Result};

pub const MAGIC: &[u8; 8] = b"LENSTRM\0";
/// Version 2 adds the spell keys (`rank::spell_keys`); version 1 files
/// (with `#name_key` terms instead) are still read, without them.
pub const VERSION: u32 = 2;
const HEADER_LEN: usize = 144;
const NSECTIONS: usize = 7;
const TERM_LEN: usize = 16;
const DOC_LEN: usize = 36;
/// Postings per block of the block-max bounds.
pub const BLOCK: usize = 128;

const S_DICT: usize = 0;
const S_TERMS: usize = 1;
const S_DOCS: usize = 2;
const S_IMPACTS: usize = 3;
const S_MASKS: usize = 4;
const S_DOCTABLE: usize = 5;
const S_BLOB: usize = 6;

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

/// Writes the term file of a segment's documents: `(file id, doc)` pairs in
/// file order. Returns the bytes written.
pub fn write(path: &Path, docs: &[(u32, Doc)]) -> Result<u64> {
    let (weights, bs, k1) = (WEIGHTS, B, K1);
    let n = docs.len().max(1) as f32;
    let mut avg = [0f32; NFIELDS];
    for (_, d) in docs {
        for (a, &l) in avg.iter_mut().zip(&d.lens) {
            *a += l as f32;
        }
    }
    for a in &mut avg {
        *a = (*a / n).max(1.0);
    }
    // A shard of a set normalises by the set's average lengths (issue 14, `global`).
    let mut sums = [0u64; NFIELDS];
    for (_, d) in docs {
        for (s, &l) in sums.iter_mut().zip(&d.lens) {
            *s += l as u64;
        }
    }
    super::global::record_lengths(path, docs.len() as u64, sums);
    let avg = super::global::avglen_for(path).unwrap_or(avg);
    // term -> postings (doc, impact, mask)
    type Posting = (u32, u8, u8);
    let mut inv: HashMap<&str, Vec<Posting>> = HashMap::new();
    for (id, (_, d)) in docs.iter().enumerate() {
        let norm: [f32; NFIELDS] = std::array::from_fn(|f| 1.0 - bs[f] + bs[f] * d.lens[f] as f32 / avg[f]);
        for (t, tf) in &d.terms {
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
            inv.entry(t.as_str()).or_default().push((id as u32, imp, mask));
        }
    }
    let mut terms: Vec<(&str, Vec<Posting>)> = inv.into_iter().collect();
    terms.sort_unstable_by(|a, b| a.0.cmp(b.0));

    let mut sections: Vec<Vec<u8>> = vec![Vec::new(); NSECTIONS];
    let mut dict = fst::MapBuilder::memory();
    let mut off = 0u64;
    for (i, (t, posts)) in terms.iter().enumerate() {
        dict.insert(t, i as u64).map_err(|e| Error::corrupt(path, format!("term dictionary: {e}")))?;
        let max = posts.iter().map(|p| p.1).max().unwrap_or(0);
        let s = &mut sections[S_TERMS];
        s.extend_from_slice(&off.to_le_bytes());
        s.extend_from_slice(&(posts.len() as u32).to_le_bytes());
        s.extend_from_slice(&[max, 0, 0, 0]);
        for &(d, imp, mask) in posts {
            sections[S_DOCS].extend_from_slice(&d.to_le_bytes());
            sections[S_IMPACTS].push(imp);
            sections[S_MASKS].push(mask);
        }
        off += posts.len() as u64;
    }
    sections[S_DICT] = dict.into_inner().map_err(|e| Error::corrupt(path, format!("term dictionary: {e}")))?;
    for (file, d) in docs {
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
        s.extend_from_slice(&[d.kind, 0, 0, 0]);
    }
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&(docs.len() as u32).to_le_bytes());
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

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"))
}

/// One term's postings.
#[derive(Clone, Copy)]
pub struct Postings<'a> {
    pub docs: &'a [u8],
    pub impacts: &'a [u8],
    pub masks: &'a [u8],
    pub max_impact: u8,
    /// This term's block maxima: the largest impact of each [`BLOCK`]
    /// postings of its list (see [`Postings::block_max`]).
    block_max: &'a [u8],
}

impl Postings<'_> {
    pub fn len(&self) -> usize {
        self.impacts.len()
    }
    pub fn is_empty(&self) -> bool {
        self.impacts.is_empty()
    }
    pub fn doc(&self, i: usize) -> u32 {
        u32_at(self.docs, i * 4)
    }
    /// The field mask of posting `i` (bit `f`: the term is in field `f`).
    pub fn mask(&self, i: usize) -> u8 {
        self.masks[i]
    }
    /// An upper bound of the impacts at positions `i..self.block_end(i)`:
    /// the largest impact of the block of [`BLOCK`] postings of this list
    /// that holds posting `i` (blocks are cut per term list, so a short
    /// list's bound is its own maximum, not a neighbour's).
    pub fn block_max(&self, i: usize) -> u8 {
        self.block_max.get(i / BLOCK).copied().unwrap_or(self.max_impact)
    }
    /// The end (exclusive) of the block that holds posting `i`.
    pub fn block_end(&self, i: usize) -> usize {
        ((i / BLOCK + 1) * BLOCK).min(self.len())
    }
    /// The index of the first posting with a doc id >= `doc`.
    pub fn lower_bound(&self, doc: u32) -> usize {
        let (mut a, mut b) = (0, self.len());
        while a < b {
            let m = (a + b) / 2;
            if self.doc(m) < doc {
                a = m + 1;
            } else {
                b = m;
            }
        }
        a
    }
    /// The index of `doc`'s posting, if it has one.
    pub fn find(&self, doc: u32) -> Option<usize> {
        let i = self.lower_bound(doc);
        (i < self.len() && self.doc(i) == doc).then_some(i)
    }
}

/// An opened term file.
pub struct TermFile {
    map: Mmap,
    /// The largest impact of each [`BLOCK`] postings of each term's list,
    /// the terms' blocks one after another, computed when the file is
    /// opened (one pass over the impacts; not stored).
    block_max: Vec<u8>,
    /// Each term's first block in `block_max`.
    block_start: Vec<u32>,
    /// Whether the file holds spell keys (version 2).
    spell_keys: bool,
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
        let version = u32_at(b, 8);
        if version != VERSION && version != 1 {
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
        let npost = sections[S_IMPACTS].1;
        if sections[S_TERMS].1 != nterms as usize * TERM_LEN
            || sections[S_DOCTABLE].1 != ndocs as usize * DOC_LEN
            || sections[S_DOCS].1 != npost * 4
            || sections[S_MASKS].1 != npost
        {
            return Err(bad("section sizes disagree"));
        }
        let (o, l) = sections[S_DICT];
        let dict = Map::new(b[o..o + l].to_vec()).map_err(|e| bad(&format!("dictionary: {e}")))?;
        let mut t = TermFile {
            map,
            block_max: Vec::with_capacity(npost / BLOCK + nterms as usize),
            block_start: Vec::with_capacity(nterms as usize),
            spell_keys: version >= 2,
            sections,
            dict,
            ndocs,
            nterms,
        };
        // Every term's postings and every doc's name must lie inside the
        // file; each term's list gets its own blocks.
        let (o, _) = sections[S_IMPACTS];
        let (mut block_max, mut block_start) = (std::mem::take(&mut t.block_max), std::mem::take(&mut t.block_start));
        for i in 0..nterms as usize {
            let r = &t.sec(S_TERMS)[i * TERM_LEN..];
            let (off, df) = (u64_at(r, 0), u32_at(r, 8) as u64);
            if off.checked_add(df).is_none_or(|e| e > npost as u64) {
                return Err(bad("postings out of bounds"));
            }
            let Ok(first) = u32::try_from(block_max.len()) else { return Err(bad("too many postings")) };
            block_start.push(first);
            let list = &t.map[o + off as usize..o + (off + df) as usize];
            block_max.extend(list.chunks(BLOCK).map(|c| c.iter().copied().max().unwrap_or(0)));
        }
        (t.block_max, t.block_start) = (block_max, block_start);
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
    /// where it does, in the fast path and the oracle alike.
    pub fn has_spell_keys(&self) -> bool {
        self.spell_keys
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
        super::global::stream_terms(&self.dict, |t, id| f(t, u32_at(&terms[id as usize * TERM_LEN..], 8) as u64));
    }

    pub fn postings(&self, term: &str) -> Option<Postings<'_>> {
        let id = self.dict.get(term)? as usize;
        let r = &self.sec(S_TERMS)[id * TERM_LEN..];
        let (off, df, max) = (u64_at(r, 0) as usize, u32_at(r, 8) as usize, r[12]);
        Some(Postings {
            docs: &self.sec(S_DOCS)[off * 4..(off + df) * 4],
            impacts: &self.sec(S_IMPACTS)[off..off + df],
            masks: &self.sec(S_MASKS)[off..off + df],
            max_impact: max,
            block_max: &self.block_max[self.block_start[id] as usize..][..df.div_ceil(BLOCK)],
        })
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
        let mut out = Vec::new();
        let mut s = self.dict.search(aut).into_stream();
        while let Some((_, id)) = s.next() {
            let r = &self.sec(S_TERMS)[id as usize * TERM_LEN..];
            let (off, df) = (u64_at(r, 0) as usize, u32_at(r, 8) as usize);
            let docs = &self.sec(S_DOCS)[off * 4..(off + df) * 4];
            out.extend(docs.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes"))));
        }
        out.sort_unstable();
        out.dedup();
        out
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
        assert_eq!(date.masks[0], 0b10001);
        assert_eq!(date.max_impact, date.impacts[0]);
        assert!(t.postings("zzz").is_none());
        let r = t.row(1);
        assert_eq!((r.file, r.line), (2, 3));
        assert_eq!(t.names(&r), ("format", ""));
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
    fn version_1_files_are_read_without_spell_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.terms");
        write(&p, &[(0, doc("a", &[("aa", [1, 0, 0, 0, 0])]))]).unwrap();
        assert!(TermFile::open(&p).unwrap().has_spell_keys());
        let mut b = fs::read(&p).unwrap();
        b[8..12].copy_from_slice(&1u32.to_le_bytes());
        fs::write(&p, &b).unwrap();
        let t = TermFile::open(&p).unwrap();
        assert!(!t.has_spell_keys() && t.postings("aa").is_some());
        b[8..12].copy_from_slice(&3u32.to_le_bytes());
        fs::write(&p, &b).unwrap();
        assert!(matches!(TermFile::open(&p), Err(Error::Corrupt { .. })));
    }
}
