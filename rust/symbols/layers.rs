//! The symbols of one index generation: a base symbol file plus the delta
//! files refreshes wrote since, each naming the paths it supersedes.
//!
//! A refresh writes only the symbols of the files it re-read (a delta), so its
//! cost follows the change, not the index (a full rewrite of the kernel's
//! 408 MB symbol file took 11.7 s per refresh). A record is live unless a
//! later layer supersedes its path. Lookups ask every layer's fst and drop
//! dead records; past [`MAX_LAYERS`] a refresh folds everything back into
//! one base, as the segments do.
//!
//! A snapshot holds [`OpenedSymbols`]: every layer's file mapped and its
//! header checked at open, and the files checked whole (checksum, every
//! record bounds-checked) on the first use of Stage-B, once per snapshot;
//! [`symbol_set`] is how Stage-B asks for the checked [`SymbolSet`]. A grep
//! never reads the symbols, so it never pays for their check (on the dev
//! corpus that check was most of the native open).

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::store::{DefRec, MappedSymbolFile, RefRec, SymbolTable};
use super::Kind;
use crate::error::{Error, Result};
use crate::index::manifest::SymbolDelta;
use crate::index::Snapshot;

/// Fold the deltas into a new base once a refresh would make more layers.
pub const MAX_LAYERS: usize = 8;

pub struct Layer {
    pub table: Arc<SymbolTable>,
    /// Per file of `table`: a later layer supersedes it.
    dead: Vec<bool>,
    any_dead: bool,
}

impl Layer {
    pub fn is_live(&self, file: u32) -> bool {
        !self.dead[file as usize]
    }
}

/// All layers, oldest first.
pub struct SymbolSet {
    pub layers: Vec<Layer>,
}

fn map_table(dir: &Path, name: &str) -> Result<MappedSymbolFile> {
    MappedSymbolFile::open(&dir.join(name)).map_err(|e| match e {
        Error::NotFound(p) => Error::corrupt(&p, "symbol file named by the manifest is missing"),
        other => other,
    })
}

/// The symbol files of a snapshot: mapped, their headers checked, at open;
/// checked whole, into a [`SymbolSet`], on first use ([`OpenedSymbols::set`]).
pub struct OpenedSymbols {
    files: Vec<MappedSymbolFile>,
    /// The paths each delta supersedes, oldest delta first.
    superseded: Vec<Vec<String>>,
    /// The checked set, or the damage found (the file and the reason).
    checked: OnceLock<std::result::Result<SymbolSet, (PathBuf, String)>>,
}

impl OpenedSymbols {
    /// Maps the base and the deltas (cheap: headers only). A missing file,
    /// a damaged header or another format is an error here.
    pub fn open(dir: &Path, base: &str, deltas: &[SymbolDelta]) -> Result<OpenedSymbols> {
        let mut files = vec![map_table(dir, base)?];
        for d in deltas {
            files.push(map_table(dir, &d.name)?);
        }
        let superseded = deltas.iter().map(|d| d.superseded.clone()).collect();
        Ok(OpenedSymbols { files, superseded, checked: OnceLock::new() })
    }

    /// The layers, checked whole the first time (every file's size, checksum
    /// and records); damage found then is `Error::Corrupt` naming the file,
    /// now and on every later call.
    pub fn set(&self) -> Result<&SymbolSet> {
        for f in &self.files {
            // One fstat each: a file truncated under its mapping is an error, not SIGBUS.
            f.check_size()?;
        }
        let checked = self.checked.get_or_init(|| {
            self.check_all().map_err(|e| match e {
                Error::Corrupt { path, reason } => (path, reason),
                other => (self.files[0].path().to_path_buf(), other.to_string()),
            })
        });
        match checked {
            Ok(set) => Ok(set),
            Err((path, reason)) => Err(Error::corrupt(path, reason.clone())),
        }
    }

    /// Every file checked whole, as the layers of a [`SymbolSet`].
    fn check_all(&self) -> Result<SymbolSet> {
        let tables = self.files.iter().map(SymbolTable::check).collect::<Result<Vec<_>>>()?;
        Ok(SymbolSet::from_tables(tables, &self.superseded))
    }

    /// Checks every file whole again, whatever an earlier check found
    /// (`Index.verify`: damage since the first use is found too).
    pub fn verify(&self) -> Result<()> {
        for f in &self.files {
            SymbolTable::check(f)?;
        }
        Ok(())
    }

    /// Whether the files were checked (and found sound) yet: tests' view.
    pub fn is_checked(&self) -> bool {
        matches!(self.checked.get(), Some(Ok(_)))
    }

    /// The files' sizes, summed (no check needed).
    pub fn bytes_on_disk(&self) -> u64 {
        self.files.iter().map(MappedSymbolFile::bytes_on_disk).sum()
    }
}

/// The checked symbols of `snap`: None when the index has none, an error when
/// its symbol files are damaged (found on their first use).
pub fn symbol_set(snap: &Snapshot) -> Result<Option<&SymbolSet>> {
    snap.companion::<OpenedSymbols>().map(OpenedSymbols::set).transpose()
}

impl SymbolSet {
    /// Maps and checks the base and the deltas at once (a build or refresh
    /// reading the symbols it writes from).
    pub fn open(dir: &Path, base: &str, deltas: &[SymbolDelta]) -> Result<SymbolSet> {
        OpenedSymbols::open(dir, base, deltas)?.check_all()
    }

    /// The layers of checked tables, base first; `superseded[i]` lists the
    /// paths delta `i` (table `i + 1`) supersedes.
    fn from_tables(tables: Vec<SymbolTable>, superseded: &[Vec<String>]) -> SymbolSet {
        // Walk newest to oldest, collecting what later layers supersede.
        let mut later: HashSet<&str> = HashSet::new();
        let mut layers: Vec<Layer> = Vec::with_capacity(tables.len());
        for (i, table) in tables.into_iter().enumerate().rev() {
            let dead: Vec<bool> = (0..table.nfiles() as u32).map(|f| later.contains(table.path(f))).collect();
            let any_dead = dead.iter().any(|&d| d);
            if i > 0 {
                later.extend(superseded[i - 1].iter().map(String::as_str));
            }
            layers.push(Layer { table: Arc::new(table), dead, any_dead });
        }
        layers.reverse();
        SymbolSet { layers }
    }

    pub fn base(&self) -> &SymbolTable {
        &self.layers[0].table
    }

    pub fn table(&self, layer: usize) -> &SymbolTable {
        &self.layers[layer].table
    }

    pub fn bytes_on_disk(&self) -> u64 {
        self.layers.iter().map(|l| l.table.bytes_on_disk()).sum()
    }

    /// Live definitions of `name`, layer by layer.
    pub fn defs(&self, name: &str) -> Vec<(usize, DefRec)> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            if let Some(id) = l.table.name_id(name) {
                out.extend(l.table.defs_of(id).filter(|d| l.is_live(d.file)).map(|d| (i, d)));
            }
        }
        out
    }

    /// Live references of `name`, precise ones first, at most `limit`.
    pub fn refs(&self, name: &str, limit: usize) -> Vec<(usize, RefRec)> {
        let mut out: Vec<(usize, RefRec)> = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            if let Some(id) = l.table.name_id(name) {
                out.extend(l.table.refs_of(id).filter(|r| l.is_live(r.file)).map(|r| (i, r)));
            }
        }
        if self.layers.len() > 1 {
            out.sort_by(|(la, a), (lb, b)| {
                (!a.precise, self.table(*la).path(a.file), a.start).cmp(&(
                    !b.precise,
                    self.table(*lb).path(b.file),
                    b.start,
                ))
            });
        }
        out.truncate(limit);
        out
    }

    pub fn ndefs(&self, name: &str) -> usize {
        self.layers
            .iter()
            .map(|l| match l.table.name_id(name) {
                Some(id) if l.any_dead => l.table.defs_of(id).filter(|d| l.is_live(d.file)).count(),
                Some(id) => l.table.ndefs_of(id),
                None => 0,
            })
            .sum()
    }

    pub fn nrefs(&self, name: &str) -> usize {
        self.layers
            .iter()
            .map(|l| match l.table.name_id(name) {
                Some(id) if l.any_dead => l.table.refs_of(id).filter(|r| l.is_live(r.file)).count(),
                Some(id) => l.table.nrefs_of(id),
                None => 0,
            })
            .sum()
    }

    pub fn first_kind(&self, name: &str) -> Option<Kind> {
        self.defs(name).first().map(|(_, d)| d.kind)
    }

    fn union(&self, each: impl Fn(&SymbolTable) -> Vec<u32>, limit: usize) -> Vec<String> {
        let mut all: BTreeSet<String> = BTreeSet::new();
        for l in &self.layers {
            all.extend(each(&l.table).into_iter().map(|id| l.table.name(id)));
        }
        // Names whose every record is dead are not names any more.
        all.into_iter().filter(|n| self.layers.len() == 1 || self.ndefs(n) + self.nrefs(n) > 0).take(limit).collect()
    }

    /// Names starting with `prefix`, in name order.
    pub fn prefix(&self, prefix: &str, limit: usize) -> Vec<String> {
        self.union(|t| t.prefix(prefix, limit), limit)
    }

    /// Names whose sub-token key starts with `prefix`'s.
    pub fn subtoken_prefix(&self, prefix: &str, limit: usize) -> Vec<String> {
        self.union(|t| t.subtoken_prefix(prefix, limit), limit)
    }

    /// Names sharing `name`'s sub-token key.
    pub fn same_subtokens(&self, name: &str) -> Vec<String> {
        self.union(|t| t.same_subtokens(name), usize::MAX)
    }

    /// Names within `distance` edits, closest first.
    pub fn fuzzy(&self, query: &str, distance: u32, limit: usize) -> Vec<(String, u32)> {
        let mut all: Vec<(String, u32)> = Vec::new();
        for l in &self.layers {
            all.extend(l.table.fuzzy(query, distance, limit).into_iter().map(|(id, d)| (l.table.name(id), d)));
        }
        all.sort();
        all.dedup_by(|a, b| a.0 == b.0);
        if self.layers.len() > 1 {
            all.retain(|(n, _)| self.ndefs(n) + self.nrefs(n) > 0);
        }
        all.sort_by_key(|(n, d)| (*d, std::cmp::Reverse(self.ndefs(n)), n.clone()));
        all.truncate(limit);
        all
    }

    /// Every live file: (layer, file id).
    pub fn live_files(&self) -> impl Iterator<Item = (usize, u32)> + '_ {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| (0..l.table.nfiles() as u32).filter(move |&f| l.is_live(f)).map(move |f| (i, f)))
    }

    /// Whether `path` has a live record set in some layer.
    pub fn has_live(&self, path: &str) -> bool {
        self.layers.iter().any(|l| l.table.file_id(path).is_some_and(|f| l.is_live(f)))
    }

    /// Distinct names (exact for one layer; with deltas, the base's plus the
    /// deltas' names the base lacks).
    pub fn nnames(&self) -> usize {
        let base = self.base();
        let mut extra: HashSet<String> = HashSet::new();
        for l in &self.layers[1..] {
            l.table.for_each_entry(|_, n, _, _| {
                if base.name_id(n).is_none() && !extra.contains(n) {
                    extra.insert(n.to_string());
                }
            });
        }
        base.nnames() + extra.len()
    }

    pub fn ndefs_live(&self) -> usize {
        self.layers
            .iter()
            .map(|l| if l.any_dead { l.table.defs().filter(|d| l.is_live(d.file)).count() } else { l.table.ndefs() })
            .sum()
    }

    pub fn nrefs_live(&self) -> usize {
        self.layers
            .iter()
            .map(|l| if l.any_dead { l.table.refs().filter(|r| l.is_live(r.file)).count() } else { l.table.nrefs() })
            .sum()
    }
}
