//! The index: a directory of immutable segments tied together by a manifest.
//!
//! A build writes fresh segments and then a new manifest; a refresh writes a
//! segment for the files that were added or changed, marks the replaced and
//! removed ones dead in the manifest, and swaps the in-memory snapshot. A
//! query holds an `Arc<Snapshot>` for its whole run, so it sees the old index
//! or the new one, never a mix; an interrupted build or refresh leaves the
//! previous manifest, and so the previous index, in force.
//!
//! The index knows no symbols and no ranking. What rides along with each
//! generation (Stage-B's symbol files) is written by a [`Companion`] the
//! engine hands in: the index calls it at each commit and each open, names
//! the files it returns in the manifest, keeps them from garbage collection,
//! and carries what it opened in the snapshot without looking inside.
//!
//! Across processes: one writer at a time (the directory's writer lock, see
//! `dir`), any number of readers, who never wait. A reader that opens while
//! a writer commits may find a file the new manifest no longer names already
//! gone; it then reads the manifest again (`Snapshot::open`), so a healthy
//! index never reports corruption.

pub mod build;
pub mod chunks;
pub mod dir;
pub mod format;
pub mod fsafe;
pub mod grams;
pub mod manifest;
pub mod postings;
pub mod progress;

use std::any::Any;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use build::{BuildOptions, Found, Skipped};
use format::Segment;
use manifest::{Manifest, SegmentEntry, SymbolDelta};
use postings::FileSet;
use progress::Progress;

use crate::error::{Error, Result};

/// Merge everything back into fresh segments once a refresh would leave more
/// than this many segments, or more dead files than live ones.
const MAX_SEGMENTS: usize = 12;

/// One segment and which of its files (and so chunks) are still live.
pub struct SegmentView {
    /// Shared with the narrowed snapshots a filtered query runs against.
    pub seg: Arc<Segment>,
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
    /// What the companion opened for this generation (Stage-B's symbol set), if anything.
    companion: Option<Arc<dyn Any + Send + Sync>>,
    path_order: OnceLock<Vec<FileRef>>,
    /// Path -> file, over the snapshot's files or (in a narrowed one) its
    /// parent's, shared: a lookup then checks that the file is live here.
    path_ids: OnceLock<Arc<HashMap<String, FileRef>>>,
}

/// The companion files of one commit, for the manifest: a base file, and
/// deltas on top of it (each naming the paths whose older data it replaces).
#[derive(Clone, Debug, Default)]
pub struct CompanionFiles {
    pub base: Option<String>,
    pub deltas: Vec<SymbolDelta>,
    /// How long the companion's steps took, for the manifest.
    pub phases: Vec<progress::PhaseTime>,
}

/// Sees a build's files as they are read, one batch (one segment's files,
/// as `(path, content)`) at a time, on the thread that assembles that
/// segment, before the segment is written: a companion starts its own work
/// on them while the reading goes on, and gets it back in
/// [`Companion::on_build`]. Batches may come from two threads at once.
pub trait ReadSink: Any + Send + Sync {
    fn batch(&self, files: &[(&str, &[u8])]);
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

/// Data that rides along with each generation, written and read by the
/// layer above (the engine's Stage-B). Each call either writes new files and
/// returns their names, or fails and leaves the previous generation in force.
pub trait Companion: Send + Sync {
    /// What sees a build's files as they are read (none by default).
    fn read_sink(&self) -> Option<Box<dyn ReadSink>> {
        None
    }

    /// At a build's commit, once the segments `names` are written; `read`
    /// is [`Companion::read_sink`]'s sink, after it saw every file.
    fn on_build(
        &self,
        dir: &Path,
        generation: u64,
        names: &[String],
        read: Option<Box<dyn ReadSink>>,
        progress: &mut Progress<'_>,
    ) -> Result<CompanionFiles>;

    /// At a refresh's commit: `old` is the generation being replaced,
    /// `segments` the new manifest's segments, `dead` the files it drops.
    fn on_refresh(
        &self,
        dir: &Path,
        generation: u64,
        old: &Snapshot,
        segments: &[SegmentEntry],
        dead: &[FileRef],
        progress: &mut Progress<'_>,
    ) -> Result<CompanionFiles>;

    /// Opens what `manifest` names, to be carried by its snapshot. Damage is
    /// corruption of the index.
    fn open(&self, dir: &Path, manifest: &Manifest) -> Result<Option<Arc<dyn Any + Send + Sync>>>;
}

/// The manifest's `extra` key for the last build's phase times
/// ([`progress::format_phases`]).
pub const PHASES_KEY: &str = "build_phases";

/// No companion: an index of segments alone (it keeps whatever companion
/// files an earlier commit named, and opens none of them).
pub struct NoCompanion;

impl Companion for NoCompanion {
    fn on_build(
        &self,
        _: &Path,
        _: u64,
        _: &[String],
        _: Option<Box<dyn ReadSink>>,
        _: &mut Progress<'_>,
    ) -> Result<CompanionFiles> {
        Ok(CompanionFiles::default())
    }

    fn on_refresh(
        &self,
        _: &Path,
        _: u64,
        old: &Snapshot,
        _: &[SegmentEntry],
        _: &[FileRef],
        _: &mut Progress<'_>,
    ) -> Result<CompanionFiles> {
        // Nothing re-derives the files; a generation without them is the honest answer.
        let _ = old;
        Ok(CompanionFiles::default())
    }

    fn open(&self, _: &Path, _: &Manifest) -> Result<Option<Arc<dyn Any + Send + Sync>>> {
        Ok(None)
    }
}

#[cfg(test)]
thread_local! {
    /// Runs between reading the manifest and opening what it names: the
    /// tests' way to let a writer commit at the worst moment.
    static AFTER_MANIFEST_READ: std::cell::RefCell<Option<Box<dyn FnMut()>>> = const { std::cell::RefCell::new(None) };
}

/// How often an open reads the manifest again when a writer moved it on
/// while the open was reading the files it named.
const OPEN_ATTEMPTS: usize = 5;

impl Snapshot {
    /// What the companion opened for this generation, if it is a `T`.
    pub fn companion<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.companion.as_deref().and_then(|c| c.downcast_ref::<T>())
    }

    /// Opens the generation the manifest names. If that fails while a
    /// writer has since committed a newer generation (which may have removed
    /// the files just read), it reads the new manifest and tries again.
    fn open(dir: &Path, companion: &dyn Companion) -> Result<Snapshot> {
        let mut attempt = 0;
        loop {
            let manifest = Manifest::read(dir)?;
            let generation = manifest.generation;
            #[cfg(test)]
            if let Some(mut f) = AFTER_MANIFEST_READ.with(|h| h.borrow_mut().take()) {
                f()
            }
            match Snapshot::open_generation(dir, manifest, companion) {
                Ok(s) => return Ok(s),
                Err(e) => {
                    attempt += 1;
                    let moved_on = Manifest::read(dir).is_ok_and(|m| m.generation != generation);
                    if !moved_on || attempt >= OPEN_ATTEMPTS {
                        return Err(e);
                    }
                }
            }
        }
    }

    fn open_generation(dir: &Path, manifest: Manifest, companion: &dyn Companion) -> Result<Snapshot> {
        // A directory without a marker is still readable (copied without it, say).
        if dir::read_marker(dir)?.is_some_and(|id| id != manifest.index_id) {
            return Err(Error::corrupt(
                &dir.join(manifest::FILE_NAME),
                "manifest belongs to another index (its index id is not this directory's)",
            ));
        }
        let mut segments = Vec::with_capacity(manifest.segments.len());
        for entry in &manifest.segments {
            let seg = Segment::open(&dir.join(&entry.name)).map_err(|e| match e {
                Error::NotFound(p) => Error::corrupt(&p, "segment named by the manifest is missing"),
                other => other,
            })?;
            if seg.index_id() != manifest.index_id {
                return Err(Error::corrupt(
                    &dir.join(&entry.name),
                    "segment belongs to another index (its index id is not the manifest's)",
                ));
            }
            if manifest.identities.get(&entry.name) != Some(&seg.identity()) {
                return Err(Error::corrupt(
                    &dir.join(&entry.name),
                    "segment is not the one the manifest names (identity mismatch: replaced or damaged)",
                ));
            }
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
            segments.push(SegmentView { seg: Arc::new(seg), live, live_chunks });
        }
        // The companion's files are part of the generation: each must be the one the manifest names.
        for name in manifest.symbols.iter().chain(manifest.symbol_deltas.iter().map(|d| &d.name)) {
            let path = dir.join(name);
            let identity = fsafe::file_identity(&path).map_err(|e| match e {
                Error::NotFound(p) => Error::corrupt(&p, "symbol file named by the manifest is missing"),
                other => other,
            })?;
            if manifest.identities.get(name) != Some(&identity) {
                return Err(Error::corrupt(&path, "symbol file is not the one the manifest names (identity mismatch)"));
            }
        }
        let companion = companion.open(dir, &manifest)?;
        Ok(Snapshot {
            dir: dir.to_path_buf(),
            manifest,
            segments,
            companion,
            path_order: OnceLock::new(),
            path_ids: OnceLock::new(),
        })
    }

    /// This snapshot narrowed to the live files `keep` accepts (by file and
    /// root-relative path): what a filtered query runs against. Segments,
    /// manifest and companion are shared; only the live sets shrink, so
    /// every search path (ranked, reference, definition index, grep) sees
    /// the allowed files alone, before anything is scored.
    pub fn restricted(&self, keep: impl Fn(FileRef, &str) -> bool) -> Snapshot {
        let segments = self
            .segments
            .iter()
            .enumerate()
            .map(|(si, v)| {
                let mut live = FileSet::empty(v.seg.nfiles());
                let mut live_chunks = FileSet::empty(v.seg.nchunks());
                for id in v.live.iter() {
                    if keep(FileRef { seg: si as u32, id }, v.seg.path(id)) {
                        live.insert(id);
                        let m = v.seg.file(id);
                        for c in m.first_chunk..m.first_chunk + m.nchunks {
                            live_chunks.insert(c);
                        }
                    }
                }
                live_chunks.and_with(&v.live_chunks);
                SegmentView { seg: v.seg.clone(), live, live_chunks }
            })
            .collect();
        let narrowed = Snapshot {
            dir: self.dir.clone(),
            manifest: self.manifest.clone(),
            segments,
            companion: self.companion.clone(),
            path_order: OnceLock::new(),
            path_ids: OnceLock::new(),
        };
        // The parent's path order, kept where kept (the parent sorts once per
        // generation; a narrowed snapshot would sort its own files again per
        // query), and the parent's path map.
        let order: Vec<FileRef> = self.path_order().iter().copied().filter(|f| narrowed.is_live(*f)).collect();
        let _ = narrowed.path_order.set(order);
        let _ = narrowed.path_ids.set(self.ids().clone());
        narrowed
    }

    fn is_live(&self, f: FileRef) -> bool {
        self.segments[f.seg as usize].live.contains(f.id)
    }

    fn ids(&self) -> &Arc<HashMap<String, FileRef>> {
        self.path_ids.get_or_init(|| Arc::new(self.live_files().map(|f| (self.path(f).to_string(), f)).collect()))
    }

    /// The live file at `path`, if any (Stage-B maps symbol paths through this).
    pub fn file_by_path(&self, path: &str) -> Option<FileRef> {
        self.ids().get(path).copied().filter(|f| self.is_live(*f))
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

    /// Before a query reads the segments: none shrank under its mapping,
    /// and their postings and content match their checksums (checked once
    /// per segment and process, in parallel the first time).
    pub fn check_readable(&self) -> Result<()> {
        use rayon::prelude::*;
        if self.segments.iter().any(|s| !s.seg.first_check_done()) {
            // The first query: checksums of whole sections, one segment per thread.
            return self.segments.par_iter().try_for_each(|s| s.seg.check_readable());
        }
        self.segments.iter().try_for_each(|s| s.seg.check_readable())
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

/// What moved under the root since the last build or refresh, by size and
/// mtime alone (no file is read): what a refresh would look at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Staleness {
    pub added: u64,
    pub changed: u64,
    pub removed: u64,
    /// Up to a few paths of each kind, added then changed then removed.
    pub examples: Vec<String>,
}

impl Staleness {
    pub fn any(&self) -> bool {
        self.added + self.changed + self.removed > 0
    }
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
    /// The last full build's steps (walk, reading, symbols, ...), wall and
    /// process CPU seconds; empty for an index built before they were kept.
    pub phases: Vec<progress::PhaseTime>,
}

impl Stats {
    /// Skipped files by reason: how many, and the first `examples` paths.
    pub fn skipped_by_reason(&self, examples: usize) -> std::collections::BTreeMap<String, (u64, Vec<String>)> {
        let mut out: std::collections::BTreeMap<String, (u64, Vec<String>)> = std::collections::BTreeMap::new();
        for sk in &self.skipped {
            let entry = out.entry(sk.reason.clone()).or_default();
            entry.0 += 1;
            if entry.1.len() < examples {
                entry.1.push(sk.path.clone());
            }
        }
        out
    }
}

/// A searchable index, safe to share between threads.
pub struct Index {
    dir: PathBuf,
    current: RwLock<Arc<Snapshot>>,
    companion: Arc<dyn Companion>,
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

/// The manifest's record of what each named file is (see `fsafe`).
fn seal(dir: &Path, manifest: &mut Manifest) -> Result<()> {
    manifest.identities = manifest
        .file_names()
        .map(|n| Ok((n.to_string(), fsafe::file_identity(&dir.join(n))?)))
        .collect::<Result<_>>()?;
    Ok(())
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

/// Segment names for one writer's generation: unique to the writer (a
/// random token) as well as to the generation.
fn segment_namer(generation: u64) -> impl FnMut() -> String {
    let token = dir::unique_u64() as u32;
    let mut n = 0;
    move || {
        n += 1;
        format!("seg-{generation:06}-{token:08x}-{n:04}.lens")
    }
}

/// Runs a writer's work; if it fails, removes whatever it wrote.
fn or_clean_up<T>(dir: &Path, work: impl FnOnce() -> Result<T>) -> Result<T> {
    let r = work();
    if r.is_err() {
        dir::clean_up_failed_write(dir);
    }
    r
}

impl Index {
    /// Builds an index of `root` in `dir` and opens it. The previous index in
    /// `dir`, if any, stays in force until the new manifest is in place.
    pub fn build(root: &Path, dir: &Path, opts: &BuildOptions, progress: &mut Progress<'_>) -> Result<Index> {
        Index::build_with(root, dir, opts, Arc::new(NoCompanion), progress)
    }

    /// `build`, with a companion: its files for the new segments are written
    /// before the manifest commits, and named by it.
    pub fn build_with(
        root: &Path,
        dir: &Path,
        opts: &BuildOptions,
        companion: Arc<dyn Companion>,
        progress: &mut Progress<'_>,
    ) -> Result<Index> {
        let started = Instant::now();
        let root = root.canonicalize().map_err(|e| Error::io(root, e))?;
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let dir = dir.canonicalize().map_err(|e| Error::io(dir, e))?;
        if !dir.is_dir() {
            return Err(Error::location(&dir, "it is not a directory"));
        }
        // Refuse before the lock, which would leave a LOCK file in a directory that is not ours.
        dir::check_claimable(&root, &dir)?;
        let _lock = dir::lock_writer(&dir)?;
        let index_id = dir::claim(&root, &dir)?;
        or_clean_up(&dir, || Index::build_locked(&root, &dir, index_id, opts, companion.as_ref(), progress, started))?;
        Index::open_with(&dir, companion)
    }

    fn build_locked(
        root: &Path,
        dir: &Path,
        index_id: u64,
        opts: &BuildOptions,
        companion: &dyn Companion,
        progress: &mut Progress<'_>,
        started: Instant,
    ) -> Result<()> {
        let (root, dir) = (root.to_path_buf(), dir.to_path_buf());
        let mut clock = progress::Clock::default();
        let (found, mut skipped) = build::walk(&root, &dir, opts)?;
        clock.lap("walk");
        let generation = next_generation(&dir);
        let sink = build::SegmentSink { dir: &dir, index_id, max_file_bytes: opts.max_file_bytes };
        let read = companion.read_sink();
        let (names, read_skipped) =
            build::write_segments_seen(&sink, &found, segment_namer(generation), read.as_deref(), progress)?;
        skipped.extend(read_skipped);
        skipped.sort_by(|a, b| a.path.cmp(&b.path));
        clock.lap("reading");
        let companion_started = Instant::now();
        let files = companion.on_build(&dir, generation, &names, read, progress)?;
        let mut extra = std::collections::BTreeMap::new();
        extra.insert("symbols_seconds".to_string(), format!("{:.3}", companion_started.elapsed().as_secs_f64()));
        let mut phases = clock.laps;
        phases.extend(files.phases);
        extra.insert(PHASES_KEY.to_string(), progress::format_phases(&phases));
        let mut manifest = Manifest {
            format_version: format::FORMAT_VERSION,
            generation,
            index_id,
            identities: Default::default(),
            root: root.to_string_lossy().into_owned(),
            max_file_bytes: opts.max_file_bytes,
            exclude: opts.exclude.clone(),
            segments: names.into_iter().map(|name| SegmentEntry { name, deleted: Vec::new() }).collect(),
            skipped,
            build_seconds: started.elapsed().as_secs_f64(),
            built_unix: now_unix(),
            refreshed_unix: None,
            extra,
            symbols: files.base,
            symbol_deltas: files.deltas,
        };
        seal(&dir, &mut manifest)?;
        manifest.write(&dir)?;
        dir::collect_garbage(&dir, &manifest);
        Ok(())
    }

    pub fn open(dir: &Path) -> Result<Index> {
        Index::open_with(dir, Arc::new(NoCompanion))
    }

    /// Opens the index with a companion, which opens its files for each snapshot.
    pub fn open_with(dir: &Path, companion: Arc<dyn Companion>) -> Result<Index> {
        let snapshot = Snapshot::open(dir, companion.as_ref())?;
        // A build of an older lens (no marker) is told apart by its version above.
        Ok(Index {
            dir: snapshot.dir.clone(),
            current: RwLock::new(Arc::new(snapshot)),
            companion,
            writer: Mutex::new(()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The index as it stands now; hold it for the length of one query.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `snapshot`, checked for what a query must not touch: a segment that
    /// shrank under its mapping, or damaged postings or content (see
    /// `Segment::check_readable`). Search and grep start with this.
    pub fn checked_snapshot(&self) -> Result<Arc<Snapshot>> {
        let snap = self.snapshot();
        snap.check_readable()?;
        Ok(snap)
    }

    /// Files added, changed (size or mtime) or removed under the root since
    /// the last build or refresh: one walk of the tree, comparing its sizes
    /// and mtimes with the file table's, reading no file.
    pub fn staleness(&self, examples: usize) -> Result<Staleness> {
        let snap = self.snapshot();
        let opts =
            BuildOptions { max_file_bytes: snap.manifest.max_file_bytes, exclude: snap.manifest.exclude.clone() };
        let (found, _) = build::walk(snap.root(), &self.dir, &opts)?;
        let mut known: HashMap<&str, FileRef> = snap.live_files().map(|f| (snap.path(f), f)).collect();
        let old_skips: HashMap<&str, &Skipped> = snap.manifest.skipped.iter().map(|s| (s.path.as_str(), s)).collect();
        let mut out = Staleness::default();
        let (mut added, mut changed) = (Vec::new(), Vec::new());
        for f in &found {
            match known.remove(f.rel.as_str()) {
                Some(old) => {
                    let meta = snap.segment(old).file(old.id);
                    if meta.content_len != f.size || meta.mtime_ns != f.mtime_ns {
                        out.changed += 1;
                        changed.push(f.rel.clone());
                    }
                }
                None => match old_skips.get(f.rel.as_str()) {
                    Some(s) if s.size == f.size && s.mtime_ns == f.mtime_ns => {}
                    _ => {
                        out.added += 1;
                        added.push(f.rel.clone());
                    }
                },
            }
        }
        out.removed = known.len() as u64;
        let mut removed: Vec<String> = known.into_keys().map(str::to_string).collect();
        removed.sort();
        for mut list in [added, changed, removed] {
            list.truncate(examples);
            out.examples.extend(list);
        }
        Ok(out)
    }

    /// Re-indexes what changed under the root since the last build or
    /// refresh, then swaps the new snapshot in atomically.
    pub fn refresh(&self, progress: &mut Progress<'_>) -> Result<RefreshCounts> {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let _lock = dir::lock_writer(&self.dir)?;
        self.catch_up()?;
        or_clean_up(&self.dir, || self.refresh_locked(progress))
    }

    /// Under the writer lock: if another process committed since this one
    /// last looked, switch to the newest generation, so that a write builds
    /// on it rather than on ours.
    fn catch_up(&self) -> Result<()> {
        if Manifest::read(&self.dir).is_ok_and(|m| m.generation != self.snapshot().manifest.generation) {
            let fresh = Arc::new(Snapshot::open(&self.dir, self.companion.as_ref())?);
            *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        }
        Ok(())
    }

    fn refresh_locked(&self, progress: &mut Progress<'_>) -> Result<RefreshCounts> {
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
                    match build::read_now(&f.abs, opts.max_file_bytes) {
                        Ok(build::Read::Data { data, .. })
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
        let sink = build::SegmentSink {
            dir: &self.dir,
            index_id: snap.manifest.index_id,
            max_file_bytes: opts.max_file_bytes,
        };
        if segments.len() + 1 > MAX_SEGMENTS || dead_after > live_after {
            // Compact: rewrite everything rather than pile up dead weight.
            let (names, read_skipped) = build::write_segments(&sink, &found, segment_namer(generation), progress)?;
            segments = names.into_iter().map(|name| SegmentEntry { name, deleted: Vec::new() }).collect();
            // The rewrite re-read every file: its read-time skips replace the old ones.
            skipped = read_skipped
                .into_iter()
                .chain(skipped.into_iter().filter(|s| s.reason != "binary" && s.reason != "unreadable"))
                .collect();
            counts.compacted = true;
        } else {
            let (names, read_skipped) = build::write_segments(&sink, &to_read, segment_namer(generation), progress)?;
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
        let files = self.companion.on_refresh(&self.dir, generation, &snap, &segments, &dead, progress)?;
        let mut manifest = Manifest {
            symbols: files.base,
            symbol_deltas: files.deltas,
            generation,
            segments,
            skipped,
            refreshed_unix: Some(now_unix()),
            build_seconds: if counts.compacted { started.elapsed().as_secs_f64() } else { snap.manifest.build_seconds },
            ..snap.manifest.clone()
        };
        seal(&self.dir, &mut manifest)?;
        manifest.write(&self.dir)?;
        let fresh = Arc::new(Snapshot::open(&self.dir, self.companion.as_ref())?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        dir::collect_garbage(&self.dir, &manifest);
        Ok(counts)
    }

    /// Commits a new companion base file for the current segments (Stage-B's
    /// SCIP / LSIF attach): `make(snapshot, generation)` writes it and returns
    /// its name; a new manifest naming it is the commit. On error nothing
    /// changes.
    pub fn commit_companion(&self, make: &mut dyn FnMut(&Snapshot, u64) -> Result<String>) -> Result<()> {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let _lock = dir::lock_writer(&self.dir)?;
        self.catch_up()?;
        or_clean_up(&self.dir, || {
            let snap = self.snapshot();
            let generation = next_generation(&self.dir);
            let name = make(&snap, generation)?;
            let mut manifest =
                Manifest { generation, symbols: Some(name), symbol_deltas: Vec::new(), ..snap.manifest.clone() };
            seal(&self.dir, &mut manifest)?;
            manifest.write(&self.dir)?;
            let fresh = Arc::new(Snapshot::open(&self.dir, self.companion.as_ref())?);
            *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
            dir::collect_garbage(&self.dir, &manifest);
            Ok(())
        })
    }

    pub fn stats(&self) -> Stats {
        let snap = self.snapshot();
        let file_bytes = |name: &str| fs::metadata(self.dir.join(name)).map_or(0, |m| m.len());
        let manifest_bytes = file_bytes(manifest::FILE_NAME);
        let companion_bytes = snap.manifest.symbols.iter().map(|n| file_bytes(n)).sum::<u64>()
            + snap.manifest.symbol_deltas.iter().map(|d| file_bytes(&d.name)).sum::<u64>();
        Stats {
            root: snap.manifest.root.clone(),
            files: snap.nfiles() as u64,
            bytes: snap.live_files().map(|f| snap.content(f).len() as u64).sum(),
            index_bytes: snap.segments.iter().map(|s| s.seg.bytes_on_disk()).sum::<u64>()
                + companion_bytes
                + manifest_bytes,
            segments: snap.segments.len() as u64,
            chunks: snap.nchunks() as u64,
            grams: snap.segments.iter().map(|s| s.seg.ngrams() as u64).sum(),
            generation: snap.manifest.generation,
            build_seconds: snap.manifest.build_seconds,
            format_version: snap.manifest.format_version,
            max_file_bytes: snap.manifest.max_file_bytes,
            skipped: snap.manifest.skipped.clone(),
            phases: snap.manifest.extra.get(PHASES_KEY).map(|t| progress::parse_phases(t)).unwrap_or_default(),
        }
    }

    /// Checks every checksum of every segment (and that none shrank).
    pub fn verify(&self) -> Result<()> {
        self.snapshot().segments.iter().try_for_each(|s| s.seg.verify())
    }
}

#[cfg(test)]
mod tests;
