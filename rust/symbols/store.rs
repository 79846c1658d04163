//! The symbol file: one immutable file per index generation, named by the
//! manifest, holding every definition and reference the index knows.
//!
//! ```text
//! header    magic "LENSSYM\0", version u32, section count u32,
//!           (offset u64, length u64) per section, xxh3-64 of the body
//! PATHS     u32 count, then (u32 length, UTF-8 bytes) per file, in path order
//! FILES     per file: language u8, flags u8 (PARSED, HAS_SYMBOLS, PRECISE)
//! NAMES     fst map: symbol name -> name id (ids are the names' sorted rank)
//! NAME_IDX  (names + 1) u32: where each name's bytes start in NAME_BLOB
//! NAME_BLOB the names back to back (id -> name, for containers and fuzzy hits)
//! DEF_IDX   (names + 1) u32: each name's run in DEFS
//! DEFS      40-byte records sorted by name, precise first, then path, offset
//! REF_IDX   (names + 1) u32: each name's run in REFS
//! REFS      20-byte records, sorted the same way
//! NORM      fst map: sub-token key (`parse_http_date`) -> group id
//! NORM_IDX  (groups + 1) u32 into NORM_IDS
//! NORM_IDS  name ids per group
//! ```
//!
//! It is written to a temporary name, synced and renamed, and only then named
//! by a new manifest: a build, refresh or attach commits symbols atomically
//! with the rest. Opening checks the magic, version, checksum and every
//! record's bounds, so a damaged or foreign file is `Error::Corrupt`, and the
//! accessors after that cannot go out of bounds.

use crate::bytes::{u32_at, u64_at};
use std::collections::HashMap;
use std::fs::{self, File};
use std::hash::BuildHasher;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use fst::automaton::{Levenshtein, Str};
use fst::{Automaton, IntoStreamer, Map, MapBuilder, Streamer};
use hashbrown::hash_table::{Entry, HashTable};
use hashbrown::DefaultHashBuilder;
use memmap2::Mmap;
use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_64;

use super::extract::{self, FileSymbols};
use super::lang::{Lang, NO_LANG};
use super::layers::SymbolSet;
use super::Kind;
use crate::error::{Error, Result};
use crate::index::progress::{Phase, Progress};
use crate::query::terms::subtokens;

pub const MAGIC: &[u8; 8] = b"LENSSYM\0";
pub const VERSION: u32 = 1;
const NSECTIONS: usize = 13;
const HEADER_LEN: usize = 8 + 4 + 4 + NSECTIONS * 16 + 8;
const DEF_LEN: usize = 40;
const REF_LEN: usize = 20;
/// No container.
pub const NONE: u32 = u32::MAX;
const PRECISE_BIT: u32 = 1 << 31;

pub const F_PARSED: u8 = 1;
pub const F_HAS_SYMBOLS: u8 = 2;
pub const F_PRECISE: u8 = 4;

const S_PATHS: usize = 0;
const S_FILES: usize = 1;
const S_NAMES: usize = 2;
const S_NAME_IDX: usize = 3;
const S_NAME_BLOB: usize = 4;
const S_DEF_IDX: usize = 5;
const S_DEFS: usize = 6;
const S_REF_IDX: usize = 7;
const S_REFS: usize = 8;
const S_NORM: usize = 9;
const S_NORM_IDX: usize = 10;
const S_NORM_IDS: usize = 11;
const S_RESERVED: usize = 12;

/// A definition; `name` and `container` are name ids, `file` a path id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefRec {
    pub name: u32,
    pub file: u32,
    pub kind: Kind,
    pub precise: bool,
    pub name_start: u32,
    pub name_end: u32,
    pub def_start: u32,
    pub def_end: u32,
    pub container: u32,
    pub line: u32,
}

/// A reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefRec {
    pub name: u32,
    pub file: u32,
    pub start: u32,
    pub end: u32,
    pub line: u32,
    pub precise: bool,
}

/// The sub-token key of a name: `parseHTTPDate` and `parse_http_date` both
/// give `parse_http_date`.
pub fn norm_key(name: &str) -> String {
    if name.is_ascii() {
        norm_key_ascii(name.as_bytes())
    } else {
        norm_key_chars(name)
    }
}

/// `norm_key` for ASCII names (nearly all of them), without collecting the
/// sub-tokens first: a kernel-sized build keys millions of names.
fn norm_key_ascii(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut in_token = false;
    for (i, &c) in name.iter().enumerate() {
        if c == b'_' {
            in_token = false;
            continue;
        }
        let boundary = if in_token {
            // The same three boundaries as `subtokens`.
            let prev = name[i - 1];
            let next_lower = name.get(i + 1).is_some_and(u8::is_ascii_lowercase);
            (prev.is_ascii_lowercase() && c.is_ascii_uppercase())
                || prev.is_ascii_alphabetic() != c.is_ascii_alphabetic()
                || (prev.is_ascii_uppercase() && c.is_ascii_uppercase() && next_lower)
        } else {
            !out.is_empty()
        };
        if boundary {
            out.push('_');
        }
        in_token = true;
        out.push(c.to_ascii_lowercase() as char);
    }
    out
}

/// `norm_key` by way of `subtokens`: the reference the ASCII path is tested against.
fn norm_key_chars(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, t) in subtokens(name).into_iter().enumerate() {
        if i > 0 {
            out.push('_');
        }
        out.extend(t.chars().flat_map(char::to_lowercase));
    }
    out
}

/// Collects symbols in memory (names as strings), then writes a symbol file.
#[derive(Default)]
pub struct Builder {
    paths: Vec<String>,
    langs: Vec<u8>,
    flags: Vec<u8>,
    /// Name ids, hashed by the name they stand for (kept once, in `names`).
    ids: HashTable<u32>,
    hasher: DefaultHashBuilder,
    names: Vec<String>,
    pub defs: Vec<DefRec>,
    pub refs: Vec<RefRec>,
}

impl Builder {
    pub fn intern(&mut self, s: &str) -> u32 {
        let (names, hasher) = (&self.names, &self.hasher);
        let hash = hasher.hash_one(s);
        match self.ids.entry(hash, |&id| names[id as usize] == s, |&id| hasher.hash_one(&names[id as usize])) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                let id = names.len() as u32;
                e.insert(id);
                self.names.push(s.to_string());
                id
            }
        }
    }

    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// Adds a file; returns its id for the records that follow.
    pub fn add_file(&mut self, path: &str, lang: Option<Lang>, flags: u8) -> u32 {
        self.paths.push(path.to_string());
        self.langs.push(lang.map_or(NO_LANG, |l| l as u8));
        self.flags.push(flags);
        (self.paths.len() - 1) as u32
    }

    pub fn set_flags(&mut self, file: u32, flags: u8) {
        self.flags[file as usize] |= flags;
    }

    pub fn file_path(&self, file: u32) -> &str {
        &self.paths[file as usize]
    }

    pub fn nfiles(&self) -> usize {
        self.paths.len()
    }

    /// Adds a file with what tree-sitter found in it.
    pub fn add_extracted(&mut self, path: &str, lang: Option<Lang>, syms: &FileSymbols) {
        let has = !syms.defs.is_empty() || !syms.refs.is_empty();
        let flags = (if syms.parsed { F_PARSED } else { 0 }) | (if has { F_HAS_SYMBOLS } else { 0 });
        let file = self.add_file(path, lang, flags);
        for d in &syms.defs {
            let name = self.intern(&d.name);
            let container = d.container.as_deref().map_or(NONE, |c| self.intern(c));
            self.defs.push(DefRec {
                name,
                file,
                kind: d.kind,
                precise: false,
                name_start: d.name_start,
                name_end: d.name_end,
                def_start: d.def_start,
                def_end: d.def_end,
                container,
                line: d.line,
            });
        }
        for r in &syms.refs {
            let name = self.intern(&r.name);
            self.refs.push(RefRec { name, file, start: r.start, end: r.end, line: r.line, precise: false });
        }
    }

    /// Copies the live files of every layer that `keep` accepts.
    pub fn add_set(&mut self, set: &SymbolSet, keep: &dyn Fn(&str) -> bool) {
        for l in &set.layers {
            self.add_from(&l.table, &|f, p| l.is_live(f) && keep(p));
        }
    }

    /// Copies the files `keep` accepts, with all their records, from `old`.
    pub fn add_from(&mut self, old: &SymbolTable, keep: &dyn Fn(u32, &str) -> bool) {
        let mut remap: Vec<u32> = vec![NONE; old.paths.len()];
        for (i, p) in old.paths.iter().enumerate() {
            if keep(i as u32, p) {
                remap[i] = self.add_file(p, Lang::from_u8(old.file_lang(i as u32)), old.file_flags(i as u32));
            }
        }
        let mut names: Vec<u32> = vec![NONE; old.nnames()];
        let mut name_of = |b: &mut Builder, id: u32| -> u32 {
            if names[id as usize] == NONE {
                names[id as usize] = b.intern(old.name(id));
            }
            names[id as usize]
        };
        for i in 0..old.ndefs() {
            let d = old.def(i);
            if remap[d.file as usize] == NONE {
                continue;
            }
            let container = if d.container == NONE { NONE } else { name_of(self, d.container) };
            let name = name_of(self, d.name);
            self.defs.push(DefRec { name, file: remap[d.file as usize], container, ..d });
        }
        for i in 0..old.nrefs() {
            let r = old.ref_(i);
            if remap[r.file as usize] == NONE {
                continue;
            }
            let name = name_of(self, r.name);
            self.refs.push(RefRec { name, file: remap[r.file as usize], ..r });
        }
    }

    /// Writes the symbol file at `path` (through a temporary name).
    pub fn write(mut self, path: &Path) -> Result<u64> {
        // Files in path order, names in byte order: ids become ranks. Names
        // are unique and so are paths, so an unstable sort is deterministic.
        let mut file_order: Vec<u32> = (0..self.paths.len() as u32).collect();
        file_order.par_sort_unstable_by(|&a, &b| self.paths[a as usize].cmp(&self.paths[b as usize]));
        let file_new = inverse(&file_order);
        let mut name_order: Vec<u32> = (0..self.names.len() as u32).collect();
        name_order.par_sort_unstable_by(|&a, &b| self.names[a as usize].cmp(&self.names[b as usize]));
        let name_new = inverse(&name_order);
        self.defs.par_iter_mut().for_each(|d| {
            d.name = name_new[d.name as usize];
            d.file = file_new[d.file as usize];
            if d.container != NONE {
                d.container = name_new[d.container as usize];
            }
        });
        self.refs.par_iter_mut().for_each(|r| {
            r.name = name_new[r.name as usize];
            r.file = file_new[r.file as usize];
        });
        self.defs.par_sort_unstable_by_key(|d| (d.name, !d.precise, d.file, d.name_start, d.def_start));
        self.defs.dedup_by_key(|d| (d.name, d.precise, d.file, d.name_start));
        self.refs.par_sort_unstable_by_key(|r| (r.name, !r.precise, r.file, r.start));
        self.refs.dedup_by_key(|r| (r.name, r.precise, r.file, r.start));
        let nnames = self.names.len();
        let sorted_names: Vec<&str> = name_order.iter().map(|&n| self.names[n as usize].as_str()).collect();

        let mut sections: Vec<Vec<u8>> = vec![Vec::new(); NSECTIONS];
        let s = &mut sections[S_PATHS];
        s.extend_from_slice(&(self.paths.len() as u32).to_le_bytes());
        for &f in &file_order {
            let p = self.paths[f as usize].as_bytes();
            s.extend_from_slice(&(p.len() as u32).to_le_bytes());
            s.extend_from_slice(p);
        }
        for &f in &file_order {
            sections[S_FILES].push(self.langs[f as usize]);
            sections[S_FILES].push(self.flags[f as usize]);
        }
        // The two fst maps are built one key at a time; they and the record
        // sections are independent, so they are built side by side.
        let fst_err = |e: fst::Error| Error::corrupt(path, format!("fst: {e}"));
        let ((names, norm), (defs, refs)) = rayon::join(
            || rayon::join(|| name_sections(&sorted_names), || norm_sections(&sorted_names)),
            || rayon::join(|| def_sections(nnames, &self.defs), || ref_sections(nnames, &self.refs)),
        );
        [sections[S_NAMES], sections[S_NAME_IDX], sections[S_NAME_BLOB]] = names.map_err(fst_err)?;
        [sections[S_NORM], sections[S_NORM_IDX], sections[S_NORM_IDS]] = norm.map_err(fst_err)?;
        [sections[S_DEF_IDX], sections[S_DEFS]] = defs;
        [sections[S_REF_IDX], sections[S_REFS]] = refs;

        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&(NSECTIONS as u32).to_le_bytes());
        let mut off = HEADER_LEN as u64;
        let mut body_hash = xxhash_rust::xxh3::Xxh3::new();
        for s in &sections {
            header.extend_from_slice(&off.to_le_bytes());
            header.extend_from_slice(&(s.len() as u64).to_le_bytes());
            off += s.len() as u64;
            body_hash.update(s);
        }
        header.extend_from_slice(&body_hash.digest().to_le_bytes());
        let tmp = path.with_extension("tmp");
        let io = |e| Error::io(&tmp, e);
        let mut f = std::io::BufWriter::new(File::create(&tmp).map_err(io)?);
        f.write_all(&header).map_err(io)?;
        for s in &sections {
            f.write_all(s).map_err(io)?;
        }
        let f = f.into_inner().map_err(|e| Error::io(&tmp, e.into_error()))?;
        f.sync_all().map_err(io)?;
        fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        Ok(off)
    }
}

/// `inverse(order)[old] == new` for a permutation listing old ids in new order.
fn inverse(order: &[u32]) -> Vec<u32> {
    let mut new_of = vec![0u32; order.len()];
    for (new, &old) in order.iter().enumerate() {
        new_of[old as usize] = new as u32;
    }
    new_of
}

/// NAMES, NAME_IDX and NAME_BLOB over the names in byte order.
fn name_sections(sorted_names: &[&str]) -> std::result::Result<[Vec<u8>; 3], fst::Error> {
    let mut map = MapBuilder::memory();
    let mut blob = Vec::new();
    let mut idx = Vec::with_capacity((sorted_names.len() + 1) * 4);
    for (rank, name) in sorted_names.iter().enumerate() {
        map.insert(name.as_bytes(), rank as u64)?;
        idx.extend_from_slice(&(blob.len() as u32).to_le_bytes());
        blob.extend_from_slice(name.as_bytes());
    }
    idx.extend_from_slice(&(blob.len() as u32).to_le_bytes());
    Ok([map.into_inner()?, idx, blob])
}

/// NORM, NORM_IDX and NORM_IDS: names grouped by their sub-token key.
fn norm_sections(sorted_names: &[&str]) -> std::result::Result<[Vec<u8>; 3], fst::Error> {
    // Sorting (key, rank) pairs groups equal keys with their names in rank
    // order, which is what the readers expect.
    let mut keyed: Vec<(String, u32)> =
        sorted_names.par_iter().enumerate().map(|(rank, name)| (norm_key(name), rank as u32)).collect();
    keyed.par_sort_unstable();
    let mut map = MapBuilder::memory();
    let mut idx = Vec::new();
    let mut ids = Vec::with_capacity(keyed.len() * 4);
    for (i, (key, rank)) in keyed.iter().enumerate() {
        if i == 0 || keyed[i - 1].0 != *key {
            map.insert(key.as_bytes(), (idx.len() / 4) as u64)?;
            idx.extend_from_slice(&((ids.len() / 4) as u32).to_le_bytes());
        }
        ids.extend_from_slice(&rank.to_le_bytes());
    }
    idx.extend_from_slice(&((ids.len() / 4) as u32).to_le_bytes());
    Ok([map.into_inner()?, idx, ids])
}

/// DEF_IDX and DEFS from definitions sorted by name.
fn def_sections(nnames: usize, defs: &[DefRec]) -> [Vec<u8>; 2] {
    let mut out = Vec::with_capacity(defs.len() * DEF_LEN);
    for d in defs {
        for v in [
            d.name,
            d.file,
            (d.kind as u32) | (u32::from(d.precise) << 8),
            d.name_start,
            d.name_end,
            d.def_start,
            d.def_end,
            d.container,
            d.line,
            0,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    [run_index(nnames, defs.iter().map(|d| d.name)), out]
}

/// REF_IDX and REFS from references sorted by name.
fn ref_sections(nnames: usize, refs: &[RefRec]) -> [Vec<u8>; 2] {
    let mut out = Vec::with_capacity(refs.len() * REF_LEN);
    for r in refs {
        let line = r.line | if r.precise { PRECISE_BIT } else { 0 };
        for v in [r.name, r.file, r.start, r.end, line] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    [run_index(nnames, refs.iter().map(|r| r.name)), out]
}

fn run_index(nnames: usize, sorted_names: impl Iterator<Item = u32>) -> Vec<u8> {
    let mut counts = vec![0u32; nnames + 1];
    for n in sorted_names {
        counts[n as usize + 1] += 1;
    }
    for i in 1..counts.len() {
        counts[i] += counts[i - 1];
    }
    counts.iter().flat_map(|c| c.to_le_bytes()).collect()
}

/// Extracts every file in a supported language, in parallel, into a builder.
///
/// Rayon's threads parse while the calling thread interns what they found,
/// so the serial part overlaps the parallel one instead of idling the pool
/// between batches. The channel is bounded so that a slow consumer holds back
/// the parsers rather than letting a kernel's worth of per-file results (names
/// still as strings) pile up in memory.
///
/// Reports [`Phase::Symbols`] progress in bytes of the files it parses.
pub fn extract_into(b: &mut Builder, files: &[(&str, &[u8])], progress: &mut Progress<'_>) {
    let total: u64 = files.iter().filter(|(p, _)| Lang::of_path(p).is_some()).map(|(_, c)| c.len() as u64).sum();
    // At most a few hundred reports, whatever the tree's size: each may
    // cross into Python.
    let step = (total / 400).max(1);
    let (mut done, mut reported) = (0u64, 0u64);
    progress(Phase::Symbols, 0, total);
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Option<Lang>, FileSymbols)>(EXTRACT_QUEUE);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            files.par_iter().enumerate().for_each_with(tx, |tx, (i, (path, content))| {
                let lang = Lang::of_path(path);
                let syms = lang.map(|l| extract::extract(l, content)).unwrap_or_default();
                // The receiver only hangs up if the consumer panicked; the
                // scope re-raises that panic.
                let _ = tx.send((i, lang, syms));
            });
        });
        for (i, lang, syms) in rx {
            let (path, content) = files[i];
            b.add_extracted(path, lang, &syms);
            if lang.is_some() {
                done += content.len() as u64;
                if done - reported >= step || done == total {
                    reported = done;
                    progress(Phase::Symbols, done, total);
                }
            }
        }
    });
}

/// Extracted files waiting to be interned.
const EXTRACT_QUEUE: usize = 1024;

/// Builds and writes the symbol file of a generation: the files `keep`
/// accepts from `old`, plus tree-sitter extraction of `fresh`. Returns the
/// file's name within `dir`.
pub fn build_symbols(
    dir: &Path,
    generation: u64,
    old: Option<&SymbolSet>,
    keep: &dyn Fn(&str) -> bool,
    fresh: &[(&str, &[u8])],
    progress: &mut Progress<'_>,
) -> Result<String> {
    let mut b = Builder::default();
    if let Some(old) = old {
        b.add_set(old, keep);
    }
    extract_into(&mut b, fresh, progress);
    let name = file_name(generation);
    b.write(&dir.join(&name))?;
    Ok(name)
}

pub fn file_name(generation: u64) -> String {
    format!("sym-{generation:06}.lens")
}

/// A byte range of the mapped file that `fst` can read from.
#[derive(Clone)]
pub struct Slice {
    map: Arc<Mmap>,
    start: usize,
    end: usize,
}

impl AsRef<[u8]> for Slice {
    fn as_ref(&self) -> &[u8] {
        &self.map[self.start..self.end]
    }
}

/// An opened symbol file.
pub struct SymbolTable {
    map: Arc<Mmap>,
    sections: [(usize, usize); NSECTIONS],
    paths: Vec<String>,
    names: Map<Slice>,
    norm: Map<Slice>,
    ndefs: usize,
    nrefs: usize,
    nnames: usize,
    ngroups: usize,
    path_ids: OnceLock<HashMap<String, u32>>,
}

impl SymbolTable {
    pub fn open(path: &Path) -> Result<SymbolTable> {
        // Not through a link, not a FIFO or device: what the manifest names must be a plain file.
        let (file, _) = crate::index::fsafe::open_index_file(path)?;
        // SAFETY: the file is immutable once renamed into place; lens never
        // writes to a symbol file after it is named by a manifest.
        let map = Arc::new(unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?);
        let bad = |r: &str| Error::corrupt(path, format!("symbol file: {r}"));
        let b: &[u8] = &map;
        if b.len() < HEADER_LEN || &b[..8] != MAGIC {
            return Err(bad("not a lens symbol file"));
        }
        let version = u32_at(b, 8);
        if version != VERSION {
            return Err(Error::Version { path: path.to_path_buf(), found: version, supported: VERSION });
        }
        if u32_at(b, 12) as usize != NSECTIONS {
            return Err(bad("wrong section count"));
        }
        let mut sections = [(0usize, 0usize); NSECTIONS];
        let mut expect = HEADER_LEN as u64;
        for (i, s) in sections.iter_mut().enumerate() {
            let off = u64_at(b, 16 + i * 16);
            let len = u64_at(b, 24 + i * 16);
            if off != expect || off.checked_add(len).is_none_or(|e| e > b.len() as u64) {
                return Err(bad("section table out of bounds"));
            }
            expect = off + len;
            *s = (off as usize, (off + len) as usize);
        }
        if expect != b.len() as u64 {
            return Err(bad("trailing bytes"));
        }
        if xxh3_64(&b[HEADER_LEN..]) != u64_at(b, HEADER_LEN - 8) {
            return Err(bad("checksum mismatch"));
        }
        let sec = |i: usize| &b[sections[i].0..sections[i].1];
        // Paths.
        let ps = sec(S_PATHS);
        if ps.len() < 4 {
            return Err(bad("paths truncated"));
        }
        let n = u32_at(ps, 0) as usize;
        let mut paths = Vec::with_capacity(n);
        let mut at = 4;
        for _ in 0..n {
            if at + 4 > ps.len() {
                return Err(bad("paths truncated"));
            }
            let len = u32_at(ps, at) as usize;
            at += 4;
            let p = ps.get(at..at + len).ok_or_else(|| bad("paths truncated"))?;
            paths.push(std::str::from_utf8(p).map_err(|_| bad("path is not UTF-8"))?.to_string());
            at += len;
        }
        if sec(S_FILES).len() != 2 * n {
            return Err(bad("file table size"));
        }
        let slice = |i: usize| Slice { map: map.clone(), start: sections[i].0, end: sections[i].1 };
        let names = Map::new(slice(S_NAMES)).map_err(|e| bad(&format!("name map: {e}")))?;
        let norm = Map::new(slice(S_NORM)).map_err(|e| bad(&format!("sub-token map: {e}")))?;
        let nnames = names.len();
        let ndefs = sec(S_DEFS).len() / DEF_LEN;
        let nrefs = sec(S_REFS).len() / REF_LEN;
        let ngroups = norm.len();
        if sec(S_DEFS).len() % DEF_LEN != 0 || sec(S_REFS).len() % REF_LEN != 0 {
            return Err(bad("record table size"));
        }
        let check_idx = |i: usize, count: usize, total: usize, what: &str| -> Result<()> {
            let s = sec(i);
            if s.len() != (count + 1) * 4 {
                return Err(bad(&format!("{what} index size")));
            }
            let mut prev = 0;
            for k in 0..=count {
                let v = u32_at(s, k * 4) as usize;
                if v < prev || v > total {
                    return Err(bad(&format!("{what} index out of order")));
                }
                prev = v;
            }
            if prev != total {
                return Err(bad(&format!("{what} index does not cover its table")));
            }
            Ok(())
        };
        check_idx(S_NAME_IDX, nnames, sec(S_NAME_BLOB).len(), "name")?;
        check_idx(S_DEF_IDX, nnames, ndefs, "definition")?;
        check_idx(S_REF_IDX, nnames, nrefs, "reference")?;
        check_idx(S_NORM_IDX, ngroups, sec(S_NORM_IDS).len() / 4, "sub-token")?;
        if sec(S_NORM_IDS).len() % 4 != 0 || !sec(S_RESERVED).is_empty() {
            return Err(bad("sub-token table size"));
        }
        let t = SymbolTable {
            map: map.clone(),
            sections,
            paths,
            names,
            norm,
            ndefs,
            nrefs,
            nnames,
            ngroups,
            path_ids: OnceLock::new(),
        };
        for k in 0..nnames {
            if std::str::from_utf8(t.name_bytes(k as u32)).is_err() {
                return Err(bad("name is not UTF-8"));
            }
        }
        let nfiles = t.paths.len() as u32;
        let ds = t.sec(S_DEFS);
        for i in 0..ndefs {
            let r = &ds[i * DEF_LEN..];
            let (name, file, kind, ns, ne, dst, de, cont) = (
                u32_at(r, 0),
                u32_at(r, 4),
                u32_at(r, 8),
                u32_at(r, 12),
                u32_at(r, 16),
                u32_at(r, 20),
                u32_at(r, 24),
                u32_at(r, 28),
            );
            if name as usize >= nnames
                || file >= nfiles
                || Kind::from_u8(kind as u8).is_none()
                || ns > ne
                || dst > de
                || (cont != NONE && cont as usize >= nnames)
            {
                return Err(bad(&format!("definition record {i} out of bounds")));
            }
        }
        let rs = t.sec(S_REFS);
        for i in 0..nrefs {
            let r = &rs[i * REF_LEN..];
            if u32_at(r, 0) as usize >= nnames || u32_at(r, 4) >= nfiles || u32_at(r, 8) > u32_at(r, 12) {
                return Err(bad(&format!("reference record {i} out of bounds")));
            }
        }
        for &id in t
            .sec(S_NORM_IDS)
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4")))
            .collect::<Vec<_>>()
            .iter()
        {
            if id as usize >= nnames {
                return Err(bad("sub-token group names an unknown symbol"));
            }
        }
        Ok(t)
    }

    fn sec(&self, i: usize) -> &[u8] {
        &self.map[self.sections[i].0..self.sections[i].1]
    }

    pub fn bytes_on_disk(&self) -> u64 {
        self.map.len() as u64
    }
    pub fn nnames(&self) -> usize {
        self.nnames
    }
    pub fn ndefs(&self) -> usize {
        self.ndefs
    }
    pub fn nrefs(&self) -> usize {
        self.nrefs
    }
    pub fn nfiles(&self) -> usize {
        self.paths.len()
    }
    pub fn path(&self, file: u32) -> &str {
        &self.paths[file as usize]
    }
    pub fn file_lang(&self, file: u32) -> u8 {
        self.sec(S_FILES)[file as usize * 2]
    }
    pub fn file_flags(&self, file: u32) -> u8 {
        self.sec(S_FILES)[file as usize * 2 + 1]
    }

    /// The file id of a path.
    pub fn file_id(&self, path: &str) -> Option<u32> {
        self.path_ids
            .get_or_init(|| self.paths.iter().enumerate().map(|(i, p)| (p.clone(), i as u32)).collect())
            .get(path)
            .copied()
    }

    fn name_bytes(&self, id: u32) -> &[u8] {
        let idx = self.sec(S_NAME_IDX);
        let (s, e) = (u32_at(idx, id as usize * 4) as usize, u32_at(idx, id as usize * 4 + 4) as usize);
        &self.sec(S_NAME_BLOB)[s..e]
    }

    pub fn name(&self, id: u32) -> &str {
        // Checked to be UTF-8 at open.
        std::str::from_utf8(self.name_bytes(id)).unwrap_or("")
    }

    pub fn name_id(&self, name: &str) -> Option<u32> {
        self.names.get(name).map(|v| v as u32)
    }

    pub fn def(&self, i: usize) -> DefRec {
        let r = &self.sec(S_DEFS)[i * DEF_LEN..];
        let kp = u32_at(r, 8);
        DefRec {
            name: u32_at(r, 0),
            file: u32_at(r, 4),
            kind: Kind::from_u8(kp as u8).unwrap_or(Kind::Function),
            precise: (kp >> 8) & 1 == 1,
            name_start: u32_at(r, 12),
            name_end: u32_at(r, 16),
            def_start: u32_at(r, 20),
            def_end: u32_at(r, 24),
            container: u32_at(r, 28),
            line: u32_at(r, 32),
        }
    }

    pub fn ref_(&self, i: usize) -> RefRec {
        let r = &self.sec(S_REFS)[i * REF_LEN..];
        let line = u32_at(r, 16);
        RefRec {
            name: u32_at(r, 0),
            file: u32_at(r, 4),
            start: u32_at(r, 8),
            end: u32_at(r, 12),
            line: line & !PRECISE_BIT,
            precise: line & PRECISE_BIT != 0,
        }
    }

    fn run(&self, idx: usize, id: u32) -> std::ops::Range<usize> {
        let s = self.sec(idx);
        u32_at(s, id as usize * 4) as usize..u32_at(s, id as usize * 4 + 4) as usize
    }

    /// Definitions of a name id, precise first, then in path order.
    pub fn defs_of(&self, id: u32) -> impl Iterator<Item = DefRec> + '_ {
        self.run(S_DEF_IDX, id).map(|i| self.def(i))
    }

    pub fn ndefs_of(&self, id: u32) -> usize {
        self.run(S_DEF_IDX, id).len()
    }

    /// References of a name id, precise first, then in path order.
    pub fn refs_of(&self, id: u32) -> impl Iterator<Item = RefRec> + '_ {
        self.run(S_REF_IDX, id).map(|i| self.ref_(i))
    }

    pub fn nrefs_of(&self, id: u32) -> usize {
        self.run(S_REF_IDX, id).len()
    }

    /// Name ids starting with `prefix`, in name order, at most `limit`.
    pub fn prefix(&self, prefix: &str, limit: usize) -> Vec<u32> {
        let mut s = self.names.search(Str::new(prefix).starts_with()).into_stream();
        let mut out = Vec::new();
        while let Some((_, v)) = s.next() {
            if out.len() >= limit {
                break;
            }
            out.push(v as u32);
        }
        out
    }

    /// Name ids within `distance` edits of `query` (a Levenshtein automaton
    /// over the fst), at most `limit`, closest first.
    pub fn fuzzy(&self, query: &str, distance: u32, limit: usize) -> Vec<(u32, u32)> {
        let Ok(aut) = Levenshtein::new(query, distance) else {
            return Vec::new();
        };
        let mut s = self.names.search(&aut).into_stream();
        let mut out = Vec::new();
        while let Some((k, v)) = s.next() {
            let d = edit_distance(query.as_bytes(), k);
            out.push((v as u32, d));
            if out.len() >= limit * 4 {
                break;
            }
        }
        out.sort_by_key(|&(id, d)| (d, std::cmp::Reverse(self.ndefs_of(id)), id));
        out.truncate(limit);
        out
    }

    /// Name ids that share `name`'s sub-token key (`parse_date` ~ `parseDate`).
    pub fn same_subtokens(&self, name: &str) -> Vec<u32> {
        let Some(g) = self.norm.get(norm_key(name)) else {
            return Vec::new();
        };
        let g = g as usize;
        if g >= self.ngroups {
            return Vec::new();
        }
        let r = self.run(S_NORM_IDX, g as u32);
        let ids = self.sec(S_NORM_IDS);
        r.map(|i| u32_at(ids, i * 4)).collect()
    }

    /// Name ids whose key starts with the sub-tokens of `prefix`.
    pub fn subtoken_prefix(&self, prefix: &str, limit: usize) -> Vec<u32> {
        let key = norm_key(prefix);
        let mut s = self.norm.search(Str::new(&key).starts_with()).into_stream();
        let mut out = Vec::new();
        let ids = self.sec(S_NORM_IDS);
        while let Some((_, g)) = s.next() {
            for i in self.run(S_NORM_IDX, g as u32) {
                out.push(u32_at(ids, i * 4));
            }
            if out.len() >= limit {
                break;
            }
        }
        out.truncate(limit);
        out
    }
}

/// Plain Levenshtein distance (the automaton says "within d"; this says how close).
fn edit_distance(a: &[u8], b: &[u8]) -> u32 {
    let mut prev: Vec<u32> = (0..=b.len() as u32).collect();
    let mut cur = vec![0u32; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i as u32 + 1;
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + u32::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> SymbolTable {
        let files: Vec<(&str, &[u8])> = vec![
            (
                "a.py",
                b"def parse_date(s):\n    return s\n\nclass HTTPServer:\n    def serve(self):\n        parse_date(1)\n",
            ),
            ("b.c", b"int parseDate(void)\n{\n\treturn 0;\n}\n"),
            ("README", b"no symbols here"),
        ];
        let name = build_symbols(dir, 1, None, &|_| true, &files, &mut crate::index::progress::silent()).unwrap();
        SymbolTable::open(&dir.join(name)).unwrap()
    }

    #[test]
    fn round_trip_and_lookups() {
        let tmp = tempfile::tempdir().unwrap();
        let t = sample(tmp.path());
        assert_eq!(t.nfiles(), 3);
        let id = t.name_id("parse_date").unwrap();
        let defs: Vec<_> = t.defs_of(id).collect();
        assert_eq!(defs.len(), 1);
        assert_eq!(t.path(defs[0].file), "a.py");
        assert_eq!((defs[0].name_start, defs[0].name_end, defs[0].line), (4, 14, 1));
        assert_eq!(t.refs_of(id).count(), 1);
        let serve = t.defs_of(t.name_id("serve").unwrap()).next().unwrap();
        assert_eq!(serve.kind, Kind::Method);
        assert_eq!(t.name(serve.container), "HTTPServer");
        let same: Vec<&str> = t.same_subtokens("ParseDate").iter().map(|&i| t.name(i)).collect();
        assert_eq!(same, vec!["parseDate", "parse_date"]);
        let fz: Vec<&str> = t.fuzzy("parse_dat", 2, 5).iter().map(|&(i, _)| t.name(i)).collect();
        assert_eq!(fz[0], "parse_date");
        assert_eq!(t.prefix("HTTP", 10).len(), 1);
        assert_eq!(t.file_flags(t.file_id("README").unwrap()) & F_HAS_SYMBOLS, 0);
    }

    #[test]
    fn damage_is_corrupt_not_a_crash() {
        let tmp = tempfile::tempdir().unwrap();
        let _ = sample(tmp.path());
        let path = tmp.path().join(file_name(1));
        let good = fs::read(&path).unwrap();
        for at in [0, 20, HEADER_LEN + 3, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 0x5a;
            fs::write(&path, &bad).unwrap();
            assert!(matches!(SymbolTable::open(&path), Err(Error::Corrupt { .. })), "flip at {at}");
        }
        // The version field: another format, not damage.
        let mut other = good.clone();
        other[9] ^= 0x5a;
        fs::write(&path, &other).unwrap();
        assert!(matches!(SymbolTable::open(&path), Err(Error::Version { .. })));
        fs::write(&path, &good[..good.len() / 2]).unwrap();
        assert!(matches!(SymbolTable::open(&path), Err(Error::Corrupt { .. })));
        fs::write(&path, b"hello").unwrap();
        assert!(matches!(SymbolTable::open(&path), Err(Error::Corrupt { .. })));
    }

    /// The fst lookups against brute force over every name (the oracle), on
    /// random identifiers with shared prefixes, case and `_` variants.
    #[test]
    fn lookups_agree_with_brute_force() {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        let mut rnd = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let parts = ["get", "Set", "parse", "HTTP", "date", "x", "_", "io", "Read", "file"];
        let mut names: Vec<String> = (0..400)
            .map(|_| (0..1 + rnd(4)).map(|_| parts[rnd(parts.len() as u64) as usize]).collect::<String>())
            .filter(|n| !n.is_empty())
            .collect();
        names.sort();
        names.dedup();
        let mut b = Builder::default();
        let file = b.add_file("a.py", Some(Lang::Python), F_PARSED);
        for (i, n) in names.iter().enumerate() {
            let name = b.intern(n);
            let at = i as u32 * 10;
            b.defs.push(DefRec {
                name,
                file,
                kind: Kind::Function,
                precise: false,
                name_start: at,
                name_end: at + 1,
                def_start: at,
                def_end: at + 1,
                container: NONE,
                line: 1,
            });
        }
        let tmp = tempfile::tempdir().unwrap();
        b.write(&tmp.path().join("s.lens")).unwrap();
        let t = SymbolTable::open(&tmp.path().join("s.lens")).unwrap();
        let got = |ids: Vec<u32>| -> Vec<String> {
            let mut v: Vec<String> = ids.into_iter().map(|i| t.name(i).to_string()).collect();
            v.sort();
            v
        };
        for _ in 0..200 {
            let q = names[rnd(names.len() as u64) as usize].clone();
            let cut = q.len() - rnd(q.len() as u64) as usize;
            let prefix = &q[..cut];
            let want: Vec<String> = names.iter().filter(|n| n.starts_with(prefix)).cloned().collect();
            assert_eq!(got(t.prefix(prefix, usize::MAX)), want, "prefix {prefix:?}");
            for d in 1..=2 {
                let want: Vec<String> =
                    names.iter().filter(|n| edit_distance(q.as_bytes(), n.as_bytes()) <= d).cloned().collect();
                let ids: Vec<u32> = t.fuzzy(&q, d, usize::MAX / 8).into_iter().map(|(i, _)| i).collect();
                assert_eq!(got(ids), want, "fuzzy {q:?} within {d}");
            }
            let key = norm_key(&q);
            let want: Vec<String> = names.iter().filter(|n| norm_key(n) == key).cloned().collect();
            assert_eq!(got(t.same_subtokens(&q)), want, "sub-tokens of {q:?}");
            assert_eq!(t.name_id(&q).map(|i| t.name(i).to_string()), Some(q.clone()));
        }
    }

    #[test]
    fn ascii_norm_key_agrees_with_subtokens() {
        for name in
            ["parseHTTPDate", "parse_http_date", "HTTPServer", "__init__", "x86_64", "a1b2", "_", "", "ABC", "Ab_Cd"]
        {
            assert_eq!(norm_key_ascii(name.as_bytes()), norm_key_chars(name), "{name}");
        }
        // Every string of up to five characters over letters of both cases,
        // a digit, `_` and `$`.
        let alphabet = b"aZb9_$";
        let mut name = Vec::new();
        for len in 0..=5u32 {
            for mut code in 0..alphabet.len().pow(len) {
                name.clear();
                for _ in 0..len {
                    name.push(alphabet[code % alphabet.len()]);
                    code /= alphabet.len();
                }
                let s = std::str::from_utf8(&name).unwrap();
                assert_eq!(norm_key_ascii(&name), norm_key_chars(s), "{s}");
            }
        }
    }

    #[test]
    fn distance() {
        assert_eq!(edit_distance(b"kitten", b"sitting"), 3);
        assert_eq!(edit_distance(b"", b"ab"), 2);
    }
}
