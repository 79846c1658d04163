//! The symbol file's writer: [`Builder`] collects files, names (interned
//! once), definitions and references in memory, then writes the sections in
//! one go through a temporary name (synced, then renamed).

use std::fs::{self, File};
use std::hash::BuildHasher;
use std::io::Write;
use std::path::Path;

use fst::MapBuilder;
use hashbrown::hash_table::{Entry, HashTable};
use hashbrown::DefaultHashBuilder;
use rayon::prelude::*;

use super::codec::{self, BLOCK};
use super::format::{self, NSECTIONS, S_BLOCKS, S_FILES, S_NAMES, S_NORM, S_NORM_IDS, S_NORM_IDX, S_PATHS, S_RUNS};
use super::reader::SymbolTable;
use super::{norm_key, DefRec, RefRec, F_HAS_SYMBOLS, F_PARSED, NONE};
use crate::error::{Error, Result};
use crate::symbols::extract::FileSymbols;
use crate::symbols::lang::{Lang, NO_LANG};
use crate::symbols::layers::SymbolSet;
use crate::symbols::Kind;

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
        let remap: Vec<u32> = (0..old.nfiles() as u32)
            .map(|i| {
                let p = old.path(i);
                if keep(i, p) {
                    self.add_file(p, Lang::from_u8(old.file_lang(i)), old.file_flags(i))
                } else {
                    NONE
                }
            })
            .collect();
        let mut names: Vec<u32> = vec![NONE; old.nnames()];
        old.for_each_entry(|id, name, defs, refs| {
            let id = id as usize;
            for d in defs {
                let file = remap[d.file as usize];
                if file == NONE {
                    continue;
                }
                let container = if d.container == NONE {
                    NONE
                } else {
                    let c = d.container as usize;
                    if names[c] == NONE {
                        names[c] = self.intern(&old.name(d.container));
                    }
                    names[c]
                };
                if names[id] == NONE {
                    names[id] = self.intern(name);
                }
                self.defs.push(DefRec { name: names[id], file, container, ..d });
            }
            for r in refs {
                let file = remap[r.file as usize];
                if file == NONE {
                    continue;
                }
                if names[id] == NONE {
                    names[id] = self.intern(name);
                }
                self.refs.push(RefRec { name: names[id], file, ..r });
            }
        });
    }

    /// Writes the symbol file at `path` (through a temporary name).
    pub fn write(self, path: &Path) -> Result<u64> {
        self.prepare().write(path)
    }

    /// Puts files in path order and names in byte order (ids become ranks)
    /// and sorts and deduplicates the definitions: everything the symbol
    /// file's definitions depend on, so that [`Prepared::defs`] are the
    /// file's own, in its order, before it is written.
    pub fn prepare(self) -> Prepared {
        let Builder { paths, langs, flags, names, mut defs, refs, .. } = self;
        // Names are unique and so are paths, so an unstable sort is deterministic.
        let mut file_order: Vec<u32> = (0..paths.len() as u32).collect();
        file_order.par_sort_unstable_by(|&a, &b| paths[a as usize].cmp(&paths[b as usize]));
        let file_new = inverse(&file_order);
        let mut name_order: Vec<u32> = (0..names.len() as u32).collect();
        name_order.par_sort_unstable_by(|&a, &b| names[a as usize].cmp(&names[b as usize]));
        let name_new = inverse(&name_order);
        defs.par_iter_mut().for_each(|d| {
            d.name = name_new[d.name as usize];
            d.file = file_new[d.file as usize];
            if d.container != NONE {
                d.container = name_new[d.container as usize];
            }
        });
        // Records sort on every field (a total order), so the one kept of
        // those sharing a name, precision, file and start is always the same:
        // the first in that order (see `def_order`).
        defs.par_sort_unstable_by_key(def_order);
        defs.dedup_by_key(|d| (d.name, d.precise, d.file, d.name_start));
        let take = |v: &mut Vec<String>, order: &[u32]| -> Vec<String> {
            order.iter().map(|&i| std::mem::take(&mut v[i as usize])).collect()
        };
        let (mut paths, mut names) = (paths, names);
        Prepared {
            paths: take(&mut paths, &file_order),
            langs: file_order.iter().map(|&f| langs[f as usize]).collect(),
            flags: file_order.iter().map(|&f| flags[f as usize]).collect(),
            names: take(&mut names, &name_order),
            defs,
            refs,
            file_new,
            name_new,
        }
    }
}

/// A [`Builder`] made ready to write: files and names in their file order,
/// definitions sorted and deduplicated as written. References are still in
/// the builder's ids; [`Prepared::write`] sorts them (a build writes the
/// file while the definition index runs, so only what the definitions need
/// is done before).
pub struct Prepared {
    paths: Vec<String>,
    langs: Vec<u8>,
    flags: Vec<u8>,
    names: Vec<String>,
    defs: Vec<DefRec>,
    refs: Vec<RefRec>,
    /// The builder's file and name ids to ranks, for the references.
    file_new: Vec<u32>,
    name_new: Vec<u32>,
}

impl Prepared {
    /// Every definition the file will hold, in its order (name rank,
    /// precise first, file rank, offsets); name, file and container are
    /// ranks ([`Prepared::name`], [`Prepared::path`]).
    pub fn defs(&self) -> &[DefRec] {
        &self.defs
    }

    pub fn name(&self, rank: u32) -> &str {
        &self.names[rank as usize]
    }

    pub fn path(&self, rank: u32) -> &str {
        &self.paths[rank as usize]
    }

    pub fn nfiles(&self) -> usize {
        self.paths.len()
    }

    /// Writes the symbol file at `path` (through a temporary name, synced,
    /// then renamed).
    pub fn write(self, path: &Path) -> Result<u64> {
        let Prepared { paths, langs, flags, names, defs, mut refs, file_new, name_new } = self;
        refs.par_iter_mut().for_each(|r| {
            r.name = name_new[r.name as usize];
            r.file = file_new[r.file as usize];
        });
        drop((file_new, name_new));
        // As for definitions (`Builder::prepare`): the first of those sharing
        // a name, precision, file and start is kept (see `ref_order`).
        refs.par_sort_unstable_by_key(ref_order);
        refs.dedup_by_key(|r| (r.name, r.precise, r.file, r.start));
        let sorted_names: Vec<&str> = names.iter().map(String::as_str).collect();

        let mut sections: Vec<Vec<u8>> = vec![Vec::new(); NSECTIONS];
        let s = &mut sections[S_PATHS];
        s.extend_from_slice(&(paths.len() as u32).to_le_bytes());
        for p in &paths {
            s.extend_from_slice(&(p.len() as u32).to_le_bytes());
            s.extend_from_slice(p.as_bytes());
        }
        for (&lang, &flag) in langs.iter().zip(&flags) {
            sections[S_FILES].push(lang);
            sections[S_FILES].push(flag);
        }
        // The two fst maps are built one key at a time; they and the runs
        // are independent, so they are built side by side.
        let fst_err = |e: fst::Error| Error::corrupt(path, format!("fst: {e}"));
        let ((fst_names, norm), runs) = rayon::join(
            || rayon::join(|| name_fst(&sorted_names), || norm_sections(&sorted_names)),
            || run_sections(&sorted_names, &defs, &refs),
        );
        sections[S_NAMES] = fst_names.map_err(fst_err)?;
        [sections[S_NORM], sections[S_NORM_IDX], sections[S_NORM_IDS]] = norm.map_err(fst_err)?;
        [sections[S_BLOCKS], sections[S_RUNS]] = runs;

        let header = format::header(&sections);
        let off = (header.len() + sections.iter().map(Vec::len).sum::<usize>()) as u64;
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

/// `def_order`'s key: name, not precise, file, name start, def start, name
/// end, def end, line, kind, container + 1.
pub(super) type DefOrder = (u32, bool, u32, u32, u32, u32, u32, u32, Kind, u32);

/// The order definitions are written in, on every field: by name, precise
/// first, then by file and offset; of the records sharing a name, precision,
/// file and name start (one definition found twice), the writer keeps the
/// first, the one starting earliest (then the shorter name and body, the
/// lower line, the kind's order, no container before a container by name).
pub(super) fn def_order(d: &DefRec) -> DefOrder {
    // NONE (u32::MAX) + 1 wraps to 0: no container sorts first.
    let container = d.container.wrapping_add(1);
    (d.name, !d.precise, d.file, d.name_start, d.def_start, d.name_end, d.def_end, d.line, d.kind, container)
}

/// The order references are written in, on every field: by name, precise
/// first, then by file and offset; of those sharing a name, precision, file
/// and start the writer keeps the first (the shorter, then the lower line).
pub(super) fn ref_order(r: &RefRec) -> (u32, bool, u32, u32, u32, u32) {
    (r.name, !r.precise, r.file, r.start, r.end, r.line)
}

/// `inverse(order)[old] == new` for a permutation listing old ids in new order.
fn inverse(order: &[u32]) -> Vec<u32> {
    let mut new_of = vec![0u32; order.len()];
    for (new, &old) in order.iter().enumerate() {
        new_of[old as usize] = new as u32;
    }
    new_of
}

/// NAMES: the fst map of the names in byte order to their ranks (ids).
fn name_fst(sorted_names: &[&str]) -> std::result::Result<Vec<u8>, fst::Error> {
    let mut map = MapBuilder::memory();
    for (rank, name) in sorted_names.iter().enumerate() {
        map.insert(name.as_bytes(), rank as u64)?;
    }
    map.into_inner()
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

/// BLOCKS and RUNS: each name's entry (see `codec`), from definitions and
/// references sorted by name id; a block's entries are encoded on their own
/// (front coding restarts at each block), so blocks are encoded in parallel.
fn run_sections(sorted_names: &[&str], defs: &[DefRec], refs: &[RefRec]) -> [Vec<u8>; 2] {
    let bounds = |ids: &mut dyn Iterator<Item = u32>| -> Vec<usize> {
        let mut starts = vec![0usize; sorted_names.len() + 1];
        for n in ids {
            starts[n as usize + 1] += 1;
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        starts
    };
    let def_at = bounds(&mut defs.iter().map(|d| d.name));
    let ref_at = bounds(&mut refs.iter().map(|r| r.name));
    let blocks: Vec<Vec<u8>> = (0..sorted_names.len().div_ceil(BLOCK))
        .into_par_iter()
        .map(|b| {
            let mut out = Vec::new();
            let mut prev: &[u8] = b"";
            for id in b * BLOCK..((b + 1) * BLOCK).min(sorted_names.len()) {
                let name = sorted_names[id].as_bytes();
                let d = &defs[def_at[id]..def_at[id + 1]];
                let r = &refs[ref_at[id]..ref_at[id + 1]];
                codec::encode_entry(&mut out, prev, name, d, r);
                prev = name;
            }
            out
        })
        .collect();
    let mut offsets = Vec::with_capacity((blocks.len() + 1) * 8);
    let mut runs = Vec::with_capacity(blocks.iter().map(Vec::len).sum());
    for b in &blocks {
        offsets.extend_from_slice(&(runs.len() as u64).to_le_bytes());
        runs.extend_from_slice(b);
    }
    offsets.extend_from_slice(&(runs.len() as u64).to_le_bytes());
    [offsets, runs]
}
