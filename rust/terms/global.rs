//! Global corpus statistics for a sharded set (issue 14), the DFS phase of
//! Elasticsearch done once after the build rather than per query.
//!
//! BM25F here depends on the corpus through three statistics: the number of
//! documents and each term's document frequency (the idf, applied at query
//! time in [`super::Terms::search`]) and each field's average length (the
//! length normalisation, baked into a term file's impacts by
//! [`super::store::write`]). One index computes them over itself; a shard of
//! a set would compute them over its own slice and score on its own scale,
//! so merging per-shard top-k by score would be wrong.
//!
//! This module is the optional hook: a process-wide registry of the set's
//! statistics by index directory. With nothing registered (every embedded
//! use) scoring is exactly as before. The cluster layer registers, per shard
//! directory, the set's document count, its term-frequency file (an `fst`
//! map, term -> summed df, written by [`write_df`]) and its field-length
//! sums; the two call sites then read [`lookup`] (query time) and
//! [`avglen_for`] (term-file write time). [`recorded_lengths`] hands back
//! the field-length sums each term-file write saw, so a build can gather
//! them without a second analysis pass.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use fst::{IntoStreamer, Map, Streamer};

use super::docs::NFIELDS;
use super::store::{terms_path, TermFile};
use crate::error::{Error, Result};
use crate::index::Snapshot;

/// A set's statistics as one shard scores with them.
pub struct GlobalStats {
    /// Documents over every shard of the set.
    pub ndocs: u64,
    /// Term -> documents holding it, over every shard.
    df: Map<Vec<u8>>,
    /// Per-field length sums over every shard (for the average lengths).
    pub len_sums: [u64; NFIELDS],
}

impl GlobalStats {
    /// Reads the df file at `df_path` (see [`write_df`]).
    pub fn load(ndocs: u64, df_path: &Path, len_sums: [u64; NFIELDS]) -> Result<GlobalStats> {
        let bytes = std::fs::read(df_path).map_err(|e| Error::io(df_path, e))?;
        let df = Map::new(bytes).map_err(|e| Error::corrupt(df_path, format!("global df file: {e}")))?;
        Ok(GlobalStats { ndocs, df, len_sums })
    }

    /// The set-wide document frequency of `term` (0 when no shard has it).
    pub fn df(&self, term: &str) -> u64 {
        self.df.get(term).unwrap_or(0)
    }

    /// Average field lengths, computed as [`super::store::write`] computes a
    /// segment's (f32, at least 1), so a set and one index over the same
    /// documents agree bit for bit while the sums stay below 2^24.
    pub fn avglen(&self) -> [f32; NFIELDS] {
        let n = self.ndocs.max(1) as f32;
        std::array::from_fn(|f| (self.len_sums[f] as f32 / n).max(1.0))
    }
}

type Registry = RwLock<HashMap<PathBuf, Arc<GlobalStats>>>;

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(Registry::default)
}

fn key(dir: &Path) -> PathBuf {
    dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf())
}

/// A file's key: its directory canonical (the file itself may not exist yet).
fn file_key(path: &Path) -> PathBuf {
    match (path.parent(), path.file_name()) {
        (Some(d), Some(n)) => key(d).join(n),
        _ => path.to_path_buf(),
    }
}

/// Makes every search of (and every term file written into) the index at
/// `dir` use `stats`, in this process.
pub fn install(dir: &Path, stats: GlobalStats) {
    registry().write().unwrap_or_else(|e| e.into_inner()).insert(key(dir), Arc::new(stats));
}

/// Back to the index's own statistics.
pub fn remove(dir: &Path) {
    registry().write().unwrap_or_else(|e| e.into_inner()).remove(&key(dir));
}

/// The statistics registered for the index at `dir`, if any.
pub fn lookup(dir: &Path) -> Option<Arc<GlobalStats>> {
    let r = registry().read().unwrap_or_else(|e| e.into_inner());
    if r.is_empty() {
        return None; // the embedded case: no syscall per query
    }
    r.get(&key(dir)).cloned()
}

/// The average field lengths a term file written at `path` must use, when
/// its index belongs to a set.
pub fn avglen_for(path: &Path) -> Option<[f32; NFIELDS]> {
    lookup(path.parent()?).map(|g| g.avglen())
}

type Lengths = Mutex<HashMap<PathBuf, (u64, [u64; NFIELDS])>>;

fn lengths() -> &'static Lengths {
    static L: OnceLock<Lengths> = OnceLock::new();
    L.get_or_init(Lengths::default)
}

/// Called by [`super::store::write`]: the documents and field-length sums of
/// the term file written at `path`.
pub fn record_lengths(path: &Path, ndocs: u64, sums: [u64; NFIELDS]) {
    lengths().lock().unwrap_or_else(|e| e.into_inner()).insert(file_key(path), (ndocs, sums));
}

/// The documents and field-length sums of `snap`'s term files, as written
/// by this process (None if one of them was not).
pub fn recorded_lengths(snap: &Snapshot) -> Option<(u64, [u64; NFIELDS])> {
    let l = lengths().lock().unwrap_or_else(|e| e.into_inner());
    let mut total = (0u64, [0u64; NFIELDS]);
    for e in &snap.manifest.segments {
        let (n, s) = l.get(&file_key(&terms_path(&snap.dir.join(&e.name))))?;
        total.0 += n;
        for (t, x) in total.1.iter_mut().zip(s) {
            *t += x;
        }
    }
    Some(total)
}

/// Sums the term statistics of `snaps` (every shard of a set) and writes the
/// df file at `out` (written to a temporary name, then renamed). Returns the
/// documents and distinct terms.
pub fn write_df(snaps: &[Arc<Snapshot>], out: &Path) -> Result<(u64, u64)> {
    let mut df: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    let mut ndocs = 0u64;
    for snap in snaps {
        for e in &snap.manifest.segments {
            let p = terms_path(&snap.dir.join(&e.name));
            let t = TermFile::open(&p)?;
            ndocs += t.ndocs() as u64;
            t.for_each_df(|term, n| *df.entry(term.to_vec()).or_default() += n);
        }
    }
    let tmp = out.with_extension("tmp");
    let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let mut w = std::io::BufWriter::new(file);
    let mut b = fst::MapBuilder::new(&mut w).map_err(|e| Error::corrupt(&tmp, e.to_string()))?;
    for (t, n) in &df {
        b.insert(t, *n).map_err(|e| Error::corrupt(&tmp, e.to_string()))?;
    }
    b.finish().map_err(|e| Error::corrupt(&tmp, e.to_string()))?;
    let file = w.into_inner().map_err(|e| Error::io(&tmp, e.into_error()))?;
    file.sync_all().map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, out).map_err(|e| Error::io(out, e))?;
    Ok((ndocs, df.len() as u64))
}

/// Rewrites every term file of `snap` (under the index's writer lock), so
/// that they take the statistics now registered for its directory: a set's
/// build calls this once the set's field lengths are known. Readers that
/// opened the old files keep them (each is replaced by a rename).
pub fn rewrite(snap: &Snapshot) -> Result<u64> {
    let _lock = crate::index::dir::lock_writer(&snap.dir)?;
    let names: Vec<String> = snap.manifest.segments.iter().map(|e| e.name.clone()).collect();
    let symbols = snap.manifest.symbols.as_deref().map(|b| (b, snap.manifest.symbol_deltas.as_slice()));
    super::build_for_segments(&snap.dir, &names, symbols, &mut crate::index::progress::silent())
}

/// Streams a term dictionary's terms in order (for [`TermFile::for_each_df`]).
pub(super) fn stream_terms(dict: &Map<Vec<u8>>, mut f: impl FnMut(&[u8], u64)) {
    let mut s = dict.into_stream();
    while let Some((t, id)) = s.next() {
        f(t, id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_by_directory_and_avglen_matches_a_segments() {
        let dir = tempfile::tempdir().unwrap();
        let df = dir.path().join("df.fst");
        let mut b = fst::MapBuilder::memory();
        b.insert("date", 3).unwrap();
        b.insert("parse", 7).unwrap();
        std::fs::write(&df, b.into_inner().unwrap()).unwrap();
        let g = GlobalStats::load(10, &df, [30, 0, 5, 1, 1000]).unwrap();
        assert_eq!((g.df("date"), g.df("parse"), g.df("nope")), (3, 7, 0));
        assert_eq!(g.avglen(), [3.0, 1.0, 1.0, 1.0, 100.0]);
        let shard = dir.path().join("shard");
        std::fs::create_dir(&shard).unwrap();
        assert!(lookup(&shard).is_none());
        install(&shard, g);
        assert_eq!(lookup(&shard).unwrap().ndocs, 10);
        assert_eq!(avglen_for(&shard.join("seg-1.terms")).unwrap()[4], 100.0);
        assert!(lookup(dir.path()).is_none(), "only the registered directory");
        remove(&shard);
        assert!(lookup(&shard).is_none());
    }
}
