//! The index: a directory of immutable segments tied together by a manifest.
//!
//! A build writes fresh segments and then a new manifest; a refresh writes a
//! segment for the files that were added or changed, marks the replaced and
//! removed ones dead in the manifest, and swaps the in-memory snapshot. A
//! search holds an `Arc<Snapshot>` for its whole run, so it sees the old index
//! or the new one, never a mix; an interrupted build or refresh leaves the
//! previous manifest, and so the previous index, in force.

pub mod build;
pub mod chunks;
pub mod format;
pub mod grams;
pub mod manifest;
pub mod postings;
pub mod progress;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use build::{BuildOptions, Found, Skipped};
use format::Segment;
use manifest::{Manifest, SegmentEntry};
use postings::FileSet;
use progress::Progress;

use crate::error::{Error, Result};
use crate::symbols::layers::SymbolSet;
use crate::symbols::{self, SymbolOptions};

/// Merge everything back into fresh segments once a refresh would leave more
/// than this many segments, or more dead files than live ones.
const MAX_SEGMENTS: usize = 12;

/// One segment and which of its files (and so chunks) are still live.
pub struct SegmentView {
    pub seg: Segment,
    pub live: FileSet,
    pub live_chunks: FileSet,
}

/// A file addressed within a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileRef {
    pub seg: u32,
    pub id: u32,
}

/// An immutable view of the index: what one query runs against.
pub struct Snapshot {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub segments: Vec<SegmentView>,
    /// Stage-B: the symbol files the manifest names, if any.
    pub symbols: Option<Arc<SymbolSet>>,
    path_order: OnceLock<Vec<FileRef>>,
    path_ids: OnceLock<HashMap<String, FileRef>>,
}

impl Snapshot {
    fn open(dir: &Path) -> Result<Snapshot> {
        let manifest = Manifest::read(dir)?;
        let mut segments = Vec::with_capacity(manifest.segments.len());
        for entry in &manifest.segments {
            let seg = Segment::open(&dir.join(&entry.name)).map_err(|e| match e {
                Error::NotFound(p) => Error::corrupt(&p, "segment named by the manifest is missing"),
                other => other,
            })?;
            let mut live = FileSet::full(seg.nfiles());
            let mut gone = FileSet::empty(seg.nfiles());
            for &d in &entry.deleted {
                if d >= seg.nfiles() {
                    return Err(Error::corrupt(
                        dir,
                        format!("manifest deletes file {d} past the end of {}", entry.name),
                    ));
                }
                gone.insert(d);
            }
            live.and_not(&gone);
            let mut live_chunks = FileSet::full(seg.nchunks());
            let mut dead = FileSet::empty(seg.nchunks());
            for &d in &entry.deleted {
                let m = seg.file(d);
                for c in m.first_chunk..m.first_chunk + m.nchunks {
                    dead.insert(c);
                }
            }
            live_chunks.and_not(&dead);
            segments.push(SegmentView { seg, live, live_chunks });
        }
        // Stage-B: the symbol file is part of the generation; damage is corruption.
        let symbols = match &manifest.symbols {
            Some(name) => Some(Arc::new(SymbolSet::open(dir, name, &manifest.symbol_deltas)?)),
            None => None,
        };
        Ok(Snapshot {
            dir: dir.to_path_buf(),
            manifest,
            segments,
            symbols,
            path_order: OnceLock::new(),
            path_ids: OnceLock::new(),
        })
    }

    /// The live file at `path`, if any (Stage-B maps symbol paths through this).
    pub fn file_by_path(&self, path: &str) -> Option<FileRef> {
        self.path_ids
            .get_or_init(|| self.live_files().map(|f| (self.path(f).to_string(), f)).collect())
            .get(path)
            .copied()
    }

    pub fn segment(&self, f: FileRef) -> &Segment {
        &self.segments[f.seg as usize].seg
    }

    pub fn path(&self, f: FileRef) -> &str {
        self.segment(f).path(f.id)
    }

    pub fn content(&self, f: FileRef) -> &[u8] {
        self.segment(f).content(f.id)
    }

    /// Every live file, in segment then rank order.
    pub fn live_files(&self) -> impl Iterator<Item = FileRef> + '_ {
        self.segments.iter().enumerate().flat_map(|(s, v)| v.live.iter().map(move |id| FileRef { seg: s as u32, id }))
    }

    /// Every live file, in path order (what `grep` reports in).
    pub fn path_order(&self) -> &[FileRef] {
        self.path_order.get_or_init(|| {
            let mut v: Vec<FileRef> = self.live_files().collect();
            v.sort_by(|a, b| self.path(*a).cmp(self.path(*b)));
            v
        })
    }

    pub fn nfiles(&self) -> usize {
        self.segments.iter().map(|s| s.live.count()).sum()
    }

    pub fn nchunks(&self) -> usize {
        self.segments.iter().map(|s| s.live_chunks.count()).sum()
    }

    pub fn root(&self) -> &Path {
        Path::new(&self.manifest.root)
    }
}

/// What `refresh` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefreshCounts {
    pub added: u64,
    pub changed: u64,
    pub removed: u64,
    pub unchanged: u64,
    pub compacted: bool,
}

/// Index-wide facts for `stats()`.
#[derive(Clone, Debug)]
pub struct Stats {
    pub root: String,
    pub files: u64,
    pub bytes: u64,
    pub index_bytes: u64,
    pub segments: u64,
    pub chunks: u64,
    pub grams: u64,
    pub generation: u64,
    pub build_seconds: f64,
    pub format_version: u32,
    pub max_file_bytes: u64,
    pub skipped: Vec<Skipped>,
}

/// A searchable index, safe to share between threads.
pub struct Index {
    dir: PathBuf,
    current: RwLock<Arc<Snapshot>>,
    /// Serialises writers (refresh) within this process.
    writer: Mutex<()>,
}

/// The last component of an index path (paths use `/` on every platform).
pub fn base_name(path: &str) -> &str {
    // A byte scan: names are short, and a ranked search asks this per file.
    &path[path.as_bytes().iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1)..]
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The next unused generation in `dir`, judged from the manifest and from
/// any segment files a crashed writer left behind.
fn next_generation(dir: &Path) -> u64 {
    let from_manifest = Manifest::read(dir).map(|m| m.generation).unwrap_or(0);
    let from_files = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let rest = name.strip_prefix("seg-").or_else(|| name.strip_prefix("sym-"))?;
            rest.split(['-', '.']).next()?.parse::<u64>().ok()
        })
        .max()
        .unwrap_or(0);
    from_manifest.max(from_files) + 1
}

/// Deletes segment and temporary files the manifest no longer names.
fn collect_garbage(dir: &Path, manifest: &Manifest) {
    let mut keep: std::collections::HashSet<&str> = manifest.segments.iter().map(|s| s.name.as_str()).collect();
    keep.extend(manifest.symbols.as_deref());
    keep.extend(manifest.symbol_deltas.iter().map(|d| d.name.as_str()));
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = ((name.starts_with("seg-") || name.starts_with("sym-"))
            && (name.ends_with(".lens") || name.ends_with(".tmp")))
            || name == "MANIFEST.tmp";
        // Issue 10: a segment's term file lives and dies with its segment.
        let orphan_terms = name.starts_with("seg-")
            && name.strip_suffix(".terms").is_some_and(|s| !keep.contains(format!("{s}.lens").as_str()));
        if (ours && !keep.contains(name.as_str())) || orphan_terms {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn segment_namer(generation: u64) -> impl FnMut() -> String {
    let mut n = 0;
    move || {
        n += 1;
        format!("seg-{generation:06}-{n:04}.lens")
    }
}

impl Index {
    /// Builds an index of `root` in `dir` and opens it. The previous index in
    /// `dir`, if any, stays in force until the new manifest is in place.
    pub fn build(root: &Path, dir: &Path, opts: &BuildOptions, progress: &mut Progress<'_>) -> Result<Index> {
        Index::build_with(root, dir, opts, &SymbolOptions::default(), progress)
    }

    /// `build`, with Stage-B options: symbols are extracted from the new
    /// segments (and a SCIP index ingested) before the manifest commits.
    pub fn build_with(
        root: &Path,
        dir: &Path,
        opts: &BuildOptions,
        sym: &SymbolOptions,
        progress: &mut Progress<'_>,
    ) -> Result<Index> {
        let started = Instant::now();
        let root = root.canonicalize().map_err(|e| Error::io(root, e))?;
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let dir = dir.canonicalize().map_err(|e| Error::io(dir, e))?;
        let (found, mut skipped) = build::walk(&root, &dir, opts)?;
        let generation = next_generation(&dir);
        let (names, read_skipped) = build::write_segments(&dir, &found, segment_namer(generation), progress)?;
        skipped.extend(read_skipped);
        skipped.sort_by(|a, b| a.path.cmp(&b.path));
        let sym_started = Instant::now();
        let symbols =
            if sym.disabled { None } else { Some(symbols::hooks::for_build(&dir, generation, &names, sym, progress)?) };
        let mut extra = std::collections::BTreeMap::new();
        extra.insert("symbols_seconds".to_string(), format!("{:.3}", sym_started.elapsed().as_secs_f64()));
        // Issue 10: the definition index, one term file per segment, before the commit.
        let terms_started = Instant::now();
        crate::terms::build_for_segments(&dir, &names, symbols.as_deref().map(|s| (s, &[][..])))?;
        extra.insert("terms_seconds".to_string(), format!("{:.3}", terms_started.elapsed().as_secs_f64()));
        let manifest = Manifest {
            format_version: format::FORMAT_VERSION,
            generation,
            root: root.to_string_lossy().into_owned(),
            max_file_bytes: opts.max_file_bytes,
            exclude: opts.exclude.clone(),
            segments: names.into_iter().map(|name| SegmentEntry { name, deleted: Vec::new() }).collect(),
            skipped,
            build_seconds: started.elapsed().as_secs_f64(),
            built_unix: now_unix(),
            refreshed_unix: None,
            extra,
            symbols,
            symbol_deltas: Vec::new(),
        };
        manifest.write(&dir)?;
        collect_garbage(&dir, &manifest);
        Index::open(&dir)
    }

    pub fn open(dir: &Path) -> Result<Index> {
        let snapshot = Snapshot::open(dir)?;
        Ok(Index { dir: snapshot.dir.clone(), current: RwLock::new(Arc::new(snapshot)), writer: Mutex::new(()) })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The index as it stands now; hold it for the length of one query.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Re-indexes what changed under the root since the last build or
    /// refresh, then swaps the new snapshot in atomically.
    pub fn refresh(&self, progress: &mut Progress<'_>) -> Result<RefreshCounts> {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let started = Instant::now();
        let snap = self.snapshot();
        let root = snap.root().to_path_buf();
        let opts =
            BuildOptions { max_file_bytes: snap.manifest.max_file_bytes, exclude: snap.manifest.exclude.clone() };
        let (found, walk_skipped) = build::walk(&root, &self.dir, &opts)?;

        let mut known: HashMap<&str, FileRef> = HashMap::new();
        for f in snap.live_files() {
            known.insert(snap.path(f), f);
        }
        let old_skips: HashMap<&str, &Skipped> = snap.manifest.skipped.iter().map(|s| (s.path.as_str(), s)).collect();
        let mut counts = RefreshCounts::default();
        let mut to_read: Vec<Found> = Vec::new();
        let mut dead: Vec<FileRef> = Vec::new();
        let mut kept_skips: Vec<Skipped> = Vec::new();
        for f in &found {
            match known.remove(f.rel.as_str()) {
                Some(old) => {
                    let meta = snap.segment(old).file(old.id);
                    if meta.content_len == f.size && meta.mtime_ns == f.mtime_ns {
                        counts.unchanged += 1;
                        continue;
                    }
                    // Size or mtime moved: the content hash decides.
                    match fs::read(&f.abs) {
                        Ok(data)
                            if data.len() as u64 == meta.content_len
                                && xxhash_rust::xxh3::xxh3_64(&data) == meta.hash =>
                        {
                            counts.unchanged += 1;
                        }
                        _ => {
                            counts.changed += 1;
                            dead.push(old);
                            to_read.push(f.clone());
                        }
                    }
                }
                None => match old_skips.get(f.rel.as_str()) {
                    // Still the same binary or unreadable file: no need to read it again.
                    Some(s) if s.size == f.size && s.mtime_ns == f.mtime_ns => kept_skips.push((*s).clone()),
                    _ => {
                        counts.added += 1;
                        to_read.push(f.clone());
                    }
                },
            }
        }
        counts.removed = known.len() as u64;
        dead.extend(known.into_values());
        if to_read.is_empty() && dead.is_empty() {
            return Ok(counts);
        }

        let generation = next_generation(&self.dir);
        let live_after = snap.nfiles() - dead.len() + to_read.len();
        let dead_after: usize = snap.manifest.segments.iter().map(|s| s.deleted.len()).sum::<usize>() + dead.len();
        let mut segments = snap.manifest.segments.clone();
        let mut skipped = walk_skipped;
        skipped.extend(kept_skips);
        if segments.len() + 1 > MAX_SEGMENTS || dead_after > live_after {
            // Compact: rewrite everything rather than pile up dead weight.
            let (names, read_skipped) = build::write_segments(&self.dir, &found, segment_namer(generation), progress)?;
            segments = names.into_iter().map(|name| SegmentEntry { name, deleted: Vec::new() }).collect();
            // The rewrite re-read every file: its read-time skips replace the old ones.
            skipped = read_skipped
                .into_iter()
                .chain(skipped.into_iter().filter(|s| s.reason != "binary" && s.reason != "unreadable"))
                .collect();
            counts.compacted = true;
        } else {
            let (names, read_skipped) =
                build::write_segments(&self.dir, &to_read, segment_namer(generation), progress)?;
            for f in &dead {
                segments[f.seg as usize].deleted.push(f.id);
            }
            for s in &mut segments {
                s.deleted.sort_unstable();
            }
            segments.extend(names.into_iter().map(|name| SegmentEntry { name, deleted: Vec::new() }));
            skipped.extend(read_skipped);
        }
        skipped.sort_by(|a, b| a.path.cmp(&b.path));
        skipped.dedup_by(|a, b| a.path == b.path);
        let (symbols, symbol_deltas) =
            symbols::hooks::for_refresh(&self.dir, generation, &snap, &segments, &dead, progress)?;
        // Issue 10: term files for the segments this refresh wrote, and only those.
        let old_names: std::collections::HashSet<&str> =
            snap.manifest.segments.iter().map(|s| s.name.as_str()).collect();
        let new_names: Vec<String> =
            segments.iter().filter(|s| !old_names.contains(s.name.as_str())).map(|s| s.name.clone()).collect();
        crate::terms::build_for_segments(
            &self.dir,
            &new_names,
            symbols.as_deref().map(|s| (s, symbol_deltas.as_slice())),
        )?;
        let manifest = Manifest {
            symbols,
            symbol_deltas,
            generation,
            segments,
            skipped,
            refreshed_unix: Some(now_unix()),
            build_seconds: if counts.compacted { started.elapsed().as_secs_f64() } else { snap.manifest.build_seconds },
            ..snap.manifest.clone()
        };
        manifest.write(&self.dir)?;
        let fresh = Arc::new(Snapshot::open(&self.dir)?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        collect_garbage(&self.dir, &manifest);
        Ok(counts)
    }

    /// Commits a new symbol file for the current segments (SCIP / LSIF
    /// attach): `make(snapshot, generation)` writes it and returns its name;
    /// a new manifest naming it is the commit. On error nothing changes.
    pub fn commit_symbols(&self, make: &mut dyn FnMut(&Snapshot, u64) -> Result<String>) -> Result<()> {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let snap = self.snapshot();
        let generation = next_generation(&self.dir);
        let name = make(&snap, generation)?;
        let manifest = Manifest { generation, symbols: Some(name), symbol_deltas: Vec::new(), ..snap.manifest.clone() };
        manifest.write(&self.dir)?;
        let fresh = Arc::new(Snapshot::open(&self.dir)?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        collect_garbage(&self.dir, &manifest);
        Ok(())
    }

    pub fn stats(&self) -> Stats {
        let snap = self.snapshot();
        let manifest_bytes = fs::metadata(self.dir.join(manifest::FILE_NAME)).map_or(0, |m| m.len());
        Stats {
            root: snap.manifest.root.clone(),
            files: snap.nfiles() as u64,
            bytes: snap.live_files().map(|f| snap.content(f).len() as u64).sum(),
            index_bytes: snap.segments.iter().map(|s| s.seg.bytes_on_disk()).sum::<u64>()
                + snap.symbols.as_ref().map_or(0, |s| s.bytes_on_disk())
                // Issue 10: the segments' term files.
                + snap
                    .manifest
                    .segments
                    .iter()
                    .map(|e| fs::metadata(crate::terms::store::terms_path(&self.dir.join(&e.name))).map_or(0, |m| m.len()))
                    .sum::<u64>()
                + manifest_bytes,
            segments: snap.segments.len() as u64,
            chunks: snap.nchunks() as u64,
            grams: snap.segments.iter().map(|s| s.seg.ngrams() as u64).sum(),
            generation: snap.manifest.generation,
            build_seconds: snap.manifest.build_seconds,
            format_version: snap.manifest.format_version,
            max_file_bytes: snap.manifest.max_file_bytes,
            skipped: snap.manifest.skipped.clone(),
        }
    }

    /// Checks every checksum of every segment.
    pub fn verify(&self) -> Result<()> {
        self.snapshot().segments.iter().try_for_each(|s| s.seg.verify())
    }
}
