//! Stage-B's commit callbacks: symbol files for a build, a refresh and an
//! attach (SCIP / LSIF). Each writes a new symbol file and returns its name;
//! the index's manifest rewrite is the commit. The engine hands
//! [`SymbolFiles`] to the index as its [`Companion`], so the index calls
//! these without knowing what they are.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::layers::{symbol_set, OpenedSymbols, MAX_LAYERS};
use super::precise::{self, MergeCounts, PreciseData};
use super::store::{self, Builder, Prepared};
use super::{lsif, scip, SymbolOptions};
use crate::error::{Error, Result};
use crate::index::format::Segment;
use crate::index::manifest::{Manifest, SegmentEntry, SymbolDelta};
use crate::index::progress::{Clock, Phase, Progress};
use crate::index::{Companion, CompanionFiles, FileRef, ReadSink, Snapshot};

/// Stage-B as the index's companion: symbol files written at each commit
/// and opened (as [`OpenedSymbols`](super::layers::OpenedSymbols), checked on
/// first use) with each snapshot.
pub struct SymbolFiles {
    pub opts: SymbolOptions,
}

impl Companion for SymbolFiles {
    fn read_sink(&self) -> Option<Box<dyn ReadSink>> {
        (!self.opts.disabled).then(|| Box::new(Extractor::default()) as Box<dyn ReadSink>)
    }

    fn on_build(
        &self,
        dir: &Path,
        generation: u64,
        names: &[String],
        read: Option<Box<dyn ReadSink>>,
        progress: &mut Progress<'_>,
    ) -> Result<CompanionFiles> {
        if self.opts.disabled {
            return Ok(CompanionFiles::default());
        }
        let mut clock = crate::index::progress::Clock::default();
        let base = for_build(dir, generation, names, &self.opts, Extractor::take(read), progress, &mut clock)?;
        Ok(CompanionFiles { base: Some(base), deltas: Vec::new(), phases: clock.laps })
    }

    fn on_refresh(
        &self,
        dir: &Path,
        generation: u64,
        old: &Snapshot,
        segments: &[SegmentEntry],
        dead: &[FileRef],
        progress: &mut Progress<'_>,
    ) -> Result<CompanionFiles> {
        let (base, deltas) = for_refresh(dir, generation, old, segments, dead, progress)?;
        Ok(CompanionFiles { base, deltas, phases: Vec::new() })
    }

    fn open(&self, dir: &Path, manifest: &Manifest) -> Result<Option<Arc<dyn Any + Send + Sync>>> {
        match &manifest.symbols {
            Some(name) => Ok(Some(Arc::new(OpenedSymbols::open(dir, name, &manifest.symbol_deltas)?))),
            None => Ok(None),
        }
    }
}

fn open_segments(dir: &Path, names: &[String]) -> Result<Vec<Segment>> {
    names.iter().map(|n| Segment::open(&dir.join(n))).collect()
}

/// Extracts each batch of a build's files as it is read (the index's
/// [`ReadSink`]), into one [`Builder`]: the symbols phase then runs beside
/// the reading instead of after it. The builder's order of files and names
/// does not matter: [`Builder::prepare`] sorts them all.
#[derive(Default)]
pub struct Extractor {
    builder: Mutex<Builder>,
}

impl ReadSink for Extractor {
    fn batch(&self, files: &[(&str, &[u8])]) {
        // Batches from two assembling threads take turns; each extraction
        // is parallel in rayon's pool.
        let mut b = self.builder.lock().unwrap_or_else(|e| e.into_inner());
        store::extract_into(&mut b, files, &mut |_, _, _| {});
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

impl Extractor {
    /// The builder an [`Extractor`] filled, if `read` is one.
    pub fn take(read: Option<Box<dyn ReadSink>>) -> Option<Builder> {
        let e = read?.into_any().downcast::<Extractor>().ok()?;
        Some(e.builder.into_inner().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The symbol file of a fresh build over the segments `names`.
pub fn for_build(
    dir: &Path,
    generation: u64,
    names: &[String],
    opts: &SymbolOptions,
    extracted: Option<Builder>,
    progress: &mut Progress<'_>,
    clock: &mut Clock,
) -> Result<String> {
    let (name, prepared) = prepare_build(dir, generation, names, opts, extracted, progress, clock)?;
    prepared.write(&dir.join(&name))?;
    clock.lap("symbol_file");
    Ok(name)
}

/// A fresh build's symbols, extracted (or `extracted` already, by an
/// [`Extractor`] that saw every file of the segments), a SCIP index
/// applied, and prepared, with the symbol file's name: the caller writes it
/// ([`Prepared::write`]), and can take the definitions before.
pub fn prepare_build(
    dir: &Path,
    generation: u64,
    names: &[String],
    opts: &SymbolOptions,
    extracted: Option<Builder>,
    progress: &mut Progress<'_>,
    clock: &mut Clock,
) -> Result<(String, Prepared)> {
    let segs = open_segments(dir, names)?;
    let files: Vec<(&str, &[u8])> =
        segs.iter().flat_map(|s| (0..s.nfiles()).map(move |id| (s.path(id), s.content(id)))).collect();
    let mut b = match extracted {
        Some(b) => {
            // Extracted while the files were read: the phase is done.
            let total = store::extractable_bytes(&files);
            progress(Phase::Symbols, 0, total);
            progress(Phase::Symbols, total, total);
            b
        }
        None => {
            let mut b = Builder::default();
            store::extract_into(&mut b, &files, progress);
            b
        }
    };
    clock.lap("symbols");
    if let Some(scip_path) = &opts.scip {
        let by_path: HashMap<&str, &[u8]> = files.iter().copied().collect();
        let (data, _skipped) = scip::read(scip_path, &|p| by_path.get(p).copied())?;
        precise::apply(&mut b, &data);
        clock.lap("scip");
    }
    Ok((store::file_name(generation), b.prepare()))
}

/// The symbol files after a refresh, as (base, deltas) for the manifest.
///
/// Usually a delta: the symbols of the files the refresh re-read, superseding
/// the changed and removed paths; the base and older deltas stay as they are
/// (precise data of unchanged files included). When the refresh compacted the
/// segments, or the deltas reach [`MAX_LAYERS`], everything is folded into a
/// new base instead, re-extracting only files whose text changed.
pub fn for_refresh(
    dir: &Path,
    generation: u64,
    old: &Snapshot,
    segments: &[SegmentEntry],
    dead: &[FileRef],
    progress: &mut Progress<'_>,
) -> Result<(Option<String>, Vec<SymbolDelta>)> {
    let Some(set) = symbol_set(old)? else {
        return Ok((None, Vec::new()));
    };
    let dead_paths: HashSet<&str> = dead.iter().map(|f| old.path(*f)).collect();
    let old_names: HashSet<&str> = old.manifest.segments.iter().map(|s| s.name.as_str()).collect();
    let new_names: Vec<String> =
        segments.iter().filter(|s| !old_names.contains(s.name.as_str())).map(|s| s.name.clone()).collect();
    let compacted = segments.iter().all(|s| !old_names.contains(s.name.as_str()));
    let segs = open_segments(dir, &new_names)?;
    let keep = |p: &str| !dead_paths.contains(p);
    let fresh: Vec<(&str, &[u8])> = segs
        .iter()
        .flat_map(|s| (0..s.nfiles()).map(move |id| (s.path(id), s.content(id))))
        .filter(|(p, _)| !keep(p) || !set.has_live(p))
        .collect();
    if compacted || set.layers.len() >= MAX_LAYERS {
        let fresh_paths: HashSet<&str> = fresh.iter().map(|(p, _)| *p).collect();
        let base = store::build_symbols(
            dir,
            generation,
            Some(set),
            &|p| keep(p) && !fresh_paths.contains(p),
            &fresh,
            progress,
        )?;
        return Ok((Some(base), Vec::new()));
    }
    let name = store::build_symbols(dir, generation, None, &|_| false, &fresh, progress)?;
    let mut superseded: Vec<String> = dead_paths.iter().map(|p| p.to_string()).collect();
    superseded.sort();
    let mut deltas = old.manifest.symbol_deltas.clone();
    deltas.push(SymbolDelta { name, superseded });
    Ok((old.manifest.symbols.clone(), deltas))
}

/// Which precise format to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Scip,
    Lsif,
}

/// Reads `path` against the snapshot's files and writes the merged symbol
/// file for `generation`. Fails (writing nothing) on malformed input.
pub fn attach(snap: &Snapshot, generation: u64, format: Format, path: &Path) -> Result<(String, MergeCounts, u64)> {
    let Some(set) = symbol_set(snap)? else {
        return Err(Error::symbol_data(
            path,
            "index",
            "this index was built without symbols; rebuild it to attach precise data",
        ));
    };
    let content_of = |p: &str| snap.file_by_path(p).map(|f| snap.content(f));
    let (data, skipped): (PreciseData, u64) = match format {
        Format::Scip => scip::read(path, &content_of)?,
        Format::Lsif => lsif::read(path, &snap.manifest.root, &content_of)?,
    };
    let mut b = Builder::default();
    b.add_set(set, &|p| snap.file_by_path(p).is_some());
    let counts = precise::apply(&mut b, &data);
    let name = store::file_name(generation);
    b.write(&snap.dir.join(&name))?;
    Ok((name, counts, skipped))
}
