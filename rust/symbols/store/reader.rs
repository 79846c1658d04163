//! The symbol file's reader. [`MappedSymbolFile`] maps a file and checks its
//! header and section table only (what an index open pays: a grep never
//! reads symbols); [`SymbolTable::check`] then checks it whole (checksum,
//! and every entry and record decoded and bounds-checked, so the accessors
//! after that cannot go out of bounds) and answers exact, prefix, fuzzy and
//! sub-token lookups.
//!
//! Random access is by name id: the BLOCKS offsets lead to a name's block,
//! and at most [`BLOCK`] - 1 entries before it are skipped by their lengths.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use fst::automaton::{Levenshtein, Str};
use fst::{Automaton, IntoStreamer, Map, Streamer};
use memmap2::Mmap;
use rayon::prelude::*;

use super::codec::{read_entry, Cursor, DefRun, Entry, RefRun, BLOCK};
use super::format::{self, NSECTIONS, S_BLOCKS, S_FILES, S_NAMES, S_NORM, S_NORM_IDS, S_NORM_IDX, S_PATHS, S_RUNS};
use super::{norm_key, DefRec, RefRec, NONE};
use crate::bytes::{u32_at, u64_at};
use crate::error::{Error, Result};

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

/// Every entry of the RUNS section in id order, with its id.
pub struct Entries<'a> {
    c: Cursor<'a>,
    id: u32,
    n: u32,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (u32, Entry<'a>);
    fn next(&mut self) -> Option<(u32, Entry<'a>)> {
        if self.id >= self.n {
            return None;
        }
        // Checked at open: every entry decodes.
        let e = read_entry(&mut self.c)?;
        self.id += 1;
        Some((self.id - 1, e))
    }
}

/// A symbol file mapped, its header and section table checked and no byte
/// of its body read yet: what a snapshot holds from its open (the file stays
/// readable whatever a later writer unlinks) until the first use checks it
/// ([`SymbolTable::check`]).
pub struct MappedSymbolFile {
    path: PathBuf,
    /// Held open to ask its size before the check reads the mapping.
    file: File,
    map: Arc<Mmap>,
    sections: [(usize, usize); NSECTIONS],
}

impl MappedSymbolFile {
    /// Maps `path`: a damaged header or section table is `Error::Corrupt`,
    /// another format `Error::Version`, here; damage in the body is found by
    /// [`SymbolTable::check`].
    pub fn open(path: &Path) -> Result<MappedSymbolFile> {
        // Not through a link, not a FIFO or device: what the manifest names must be a plain file.
        let (file, _) = crate::index::fsafe::open_index_file(path)?;
        // SAFETY: the file is immutable once renamed into place; lens never
        // writes to a symbol file after it is named by a manifest. Another
        // process truncating it is caught by `check_size` before the check
        // reads the body.
        let map = Arc::new(unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?);
        let sections = format::sections(path, &map)?;
        Ok(MappedSymbolFile { path: path.to_path_buf(), file, map, sections })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn bytes_on_disk(&self) -> u64 {
        self.map.len() as u64
    }

    /// The file is still as long as its mapping (one `fstat`): reading a
    /// mapping past a truncated file's end would be SIGBUS.
    pub fn check_size(&self) -> Result<()> {
        let len = self.file.metadata().map_err(|e| Error::io(&self.path, e))?.len();
        if len < self.map.len() as u64 {
            return Err(Error::corrupt(&self.path, "symbol file shrank while open"));
        }
        Ok(())
    }
}

impl SymbolTable {
    /// Maps and checks the file at `path` whole ([`MappedSymbolFile::open`],
    /// then [`SymbolTable::check`]).
    pub fn open(path: &Path) -> Result<SymbolTable> {
        SymbolTable::check(&MappedSymbolFile::open(path)?)
    }

    /// Checks a mapped file whole: its size, its checksum, the paths, both
    /// fst maps, the index tables, and every block decoded with bounds
    /// checks. Damage is `Error::Corrupt` naming the file.
    pub fn check(m: &MappedSymbolFile) -> Result<SymbolTable> {
        let path = m.path.as_path();
        m.check_size()?;
        let (map, sections) = (m.map.clone(), m.sections);
        let bad = |r: &str| Error::corrupt(path, format!("symbol file: {r}"));
        let b: &[u8] = &map;
        format::check_body(path, b)?;
        let sec = |i: usize| &b[sections[i].0..sections[i].1];
        // Paths.
        let ps = sec(S_PATHS);
        if ps.len() < 4 {
            return Err(bad("paths truncated"));
        }
        let n = u32_at(ps, 0) as usize;
        let mut paths = Vec::with_capacity(n.min(ps.len()));
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
        let ngroups = norm.len();
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
        if sec(S_NORM_IDS).len() % 4 != 0 {
            return Err(bad("sub-token table size"));
        }
        check_idx(S_NORM_IDX, ngroups, sec(S_NORM_IDS).len() / 4, "sub-token")?;
        if sec(S_NORM_IDS).chunks_exact(4).any(|c| u32::from_le_bytes(c.try_into().expect("4")) as usize >= nnames) {
            return Err(bad("sub-token group names an unknown symbol"));
        }
        let nblocks = nnames.div_ceil(BLOCK);
        let bs = sec(S_BLOCKS);
        if bs.len() != (nblocks + 1) * 8 {
            return Err(bad("block table size"));
        }
        let runs_len = sec(S_RUNS).len() as u64;
        let offs: Vec<u64> = (0..=nblocks).map(|k| u64_at(bs, k * 8)).collect();
        if offs[0] != 0 || offs[nblocks] != runs_len || offs.windows(2).any(|w| w[0] > w[1]) {
            return Err(bad("block table out of order"));
        }
        let mut t = SymbolTable {
            map: map.clone(),
            sections,
            paths,
            names,
            norm,
            ndefs: 0,
            nrefs: 0,
            nnames,
            ngroups,
            path_ids: OnceLock::new(),
        };
        let counts: Vec<std::result::Result<(usize, usize), String>> =
            (0..nblocks).into_par_iter().map(|k| t.check_block(k)).collect();
        for c in counts {
            let (d, r) = c.map_err(|e| bad(&e))?;
            t.ndefs += d;
            t.nrefs += r;
        }
        Ok(t)
    }

    /// Decodes block `k` whole: names (UTF-8, strictly ascending), and every
    /// record in bounds. Returns its definition and reference counts.
    fn check_block(&self, k: usize) -> std::result::Result<(usize, usize), String> {
        let nfiles = self.paths.len() as u32;
        let runs = self.sec(S_RUNS);
        let (start, end) = self.block_range(k);
        let mut c = Cursor::new(&runs[..end], start);
        let (mut name, mut prev) = (Vec::new(), Vec::new());
        let (mut nd, mut nr) = (0, 0);
        for id in k * BLOCK..((k + 1) * BLOCK).min(self.nnames) {
            // The message is made only on damage: this runs for every name at open.
            let at = || format!("name {id}");
            let e = read_entry(&mut c).ok_or_else(|| format!("{}: entry truncated", at()))?;
            if id % BLOCK == 0 && e.shared != 0 {
                return Err(format!("{}: a block starts with a shared prefix", at()));
            }
            e.apply(&mut name).ok_or_else(|| format!("{}: shared prefix too long", at()))?;
            if std::str::from_utf8(&name).is_err() || (id % BLOCK != 0 && name <= prev) {
                return Err(format!("{}: name not UTF-8 or out of order", at()));
            }
            let mut defs = DefRun::new(e.defs, e.ndefs, id as u32, e.name_len());
            for d in defs.by_ref() {
                if d.file >= nfiles
                    || d.name_start > d.name_end
                    || d.def_start > d.def_end
                    || (d.container != NONE && d.container as usize >= self.nnames)
                {
                    return Err(format!("{}: definition record out of bounds", at()));
                }
            }
            let mut refs = RefRun::new(e.refs, e.nrefs, id as u32, e.name_len());
            for r in refs.by_ref() {
                if r.file >= nfiles || r.start > r.end {
                    return Err(format!("{}: reference record out of bounds", at()));
                }
            }
            if !defs.done() || !refs.done() {
                return Err(format!("{}: records damaged", at()));
            }
            nd += e.ndefs;
            nr += e.nrefs;
            prev.clear();
            prev.extend_from_slice(&name);
        }
        if c.at != end {
            return Err(format!("block {k}: trailing bytes"));
        }
        Ok((nd, nr))
    }

    fn sec(&self, i: usize) -> &[u8] {
        &self.map[self.sections[i].0..self.sections[i].1]
    }

    fn block_range(&self, k: usize) -> (usize, usize) {
        let bs = self.sec(S_BLOCKS);
        (u64_at(bs, k * 8) as usize, u64_at(bs, k * 8 + 8) as usize)
    }

    /// The entry of name `id`; the name itself is rebuilt into `name` when given.
    fn entry(&self, id: u32, mut name: Option<&mut Vec<u8>>) -> Option<Entry<'_>> {
        let id = id as usize;
        if id >= self.nnames {
            return None;
        }
        let (start, _) = self.block_range(id / BLOCK);
        let mut c = Cursor::new(self.sec(S_RUNS), start);
        if let Some(n) = name.as_deref_mut() {
            n.clear();
        }
        for _ in id / BLOCK * BLOCK..id {
            let e = read_entry(&mut c)?;
            if let Some(n) = name.as_deref_mut() {
                e.apply(n)?;
            }
        }
        let e = read_entry(&mut c)?;
        if let Some(n) = name {
            e.apply(n)?;
        }
        Some(e)
    }

    /// The sizes of the sections, by name, in bytes.
    pub fn section_sizes(&self) -> Vec<(&'static str, u64)> {
        format::SECTION_NAMES.iter().zip(&self.sections).map(|(&n, &(s, e))| (n, (e - s) as u64)).collect()
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

    /// The name of an id (decoded from its block: checked to be UTF-8 at open).
    pub fn name(&self, id: u32) -> String {
        let mut buf = Vec::new();
        if self.entry(id, Some(&mut buf)).is_none() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    pub fn name_id(&self, name: &str) -> Option<u32> {
        self.names.get(name).map(|v| v as u32)
    }

    /// Every entry in id order (names rebuilt by applying each in turn).
    pub fn entries(&self) -> Entries<'_> {
        Entries { c: Cursor::new(self.sec(S_RUNS), 0), id: 0, n: self.nnames as u32 }
    }

    /// Calls `f` with each name id, its name, and its definition and
    /// reference runs, in id order: a whole-file pass without random access.
    pub fn for_each_entry(&self, mut f: impl FnMut(u32, &str, DefRun<'_>, RefRun<'_>)) {
        let mut name = Vec::new();
        for (id, e) in self.entries() {
            if e.apply(&mut name).is_none() {
                return;
            }
            let n = std::str::from_utf8(&name).unwrap_or("");
            f(id, n, DefRun::new(e.defs, e.ndefs, id, e.name_len()), RefRun::new(e.refs, e.nrefs, id, e.name_len()));
        }
    }

    /// Every definition, in name order.
    pub fn defs(&self) -> impl Iterator<Item = DefRec> + '_ {
        self.entries().flat_map(|(id, e)| DefRun::new(e.defs, e.ndefs, id, e.name_len()))
    }

    /// Every reference, in name order.
    pub fn refs(&self) -> impl Iterator<Item = RefRec> + '_ {
        self.entries().flat_map(|(id, e)| RefRun::new(e.refs, e.nrefs, id, e.name_len()))
    }

    /// Definitions of a name id, precise first, then in path order.
    pub fn defs_of(&self, id: u32) -> DefRun<'_> {
        match self.entry(id, None) {
            Some(e) => DefRun::new(e.defs, e.ndefs, id, e.name_len()),
            None => DefRun::new(&[], 0, id, 0),
        }
    }

    pub fn ndefs_of(&self, id: u32) -> usize {
        self.entry(id, None).map_or(0, |e| e.ndefs)
    }

    /// References of a name id, precise first, then in path order.
    pub fn refs_of(&self, id: u32) -> RefRun<'_> {
        match self.entry(id, None) {
            Some(e) => RefRun::new(e.refs, e.nrefs, id, e.name_len()),
            None => RefRun::new(&[], 0, id, 0),
        }
    }

    pub fn nrefs_of(&self, id: u32) -> usize {
        self.entry(id, None).map_or(0, |e| e.nrefs)
    }

    fn run(&self, idx: usize, id: u32) -> std::ops::Range<usize> {
        let s = self.sec(idx);
        u32_at(s, id as usize * 4) as usize..u32_at(s, id as usize * 4 + 4) as usize
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
pub(super) fn edit_distance(a: &[u8], b: &[u8]) -> u32 {
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
