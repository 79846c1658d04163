//! The engine: an index plus the ways of querying it (the native fast path
//! and the reference scanner for Stage-A, Stage-B's symbol lookups, grep),
//! rendered into caller-ready hits, with counters for what happened. The
//! bindings wrap exactly this.
//!
//! One snapshot per query: a caller takes [`Engine::snapshot`] once and runs
//! every stage of the query against it ([`Engine::search_in`],
//! [`Engine::stage_b_in`]), so a refresh in between cannot make Stage-A and
//! Stage-B answer from different generations. The engine also orchestrates
//! Stage-B's files and the definition index's: it hands the index an [`EngineFiles`] companion, whose
//! callbacks write the symbol files and the term files at each commit.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::cache::CacheStats;
use crate::error::Result;
use crate::index::build::BuildOptions;
use crate::index::manifest::{Manifest, SegmentEntry};
use crate::index::progress::Progress;
use crate::index::{Companion, CompanionFiles, ReadSink};
use crate::index::{FileRef, Index, Snapshot, Stats};
use crate::query::cache::PatternCache;
use crate::query::{check_search, terms, GrepOptions, Pattern};
use crate::reference;
use crate::scan::grep::{grep_chunk, Matcher};
use crate::scan::rank::{self, Scorer};
use crate::scan::RawHit;
use crate::symbols::hooks::{self, Extractor, Format, SymbolFiles};
use crate::symbols::precise::MergeCounts;
use crate::symbols::stage::{coverage, Coverage, SymHit, CACHE_BYTES};
use crate::symbols::{StageB, SymbolOptions};

pub use crate::hit::Hit;

/// What a ranked search returns.
#[derive(Clone, Debug)]
pub struct SearchResult {
    pub hits: Vec<Hit>,
    /// A budget or deadline cut the search short: the hits are the best
    /// found so far, not necessarily the best there are.
    pub truncated: bool,
    pub outcome: rank::SearchOutcome,
    /// The index generation that answered.
    pub generation: u64,
    /// Where the query went ("lexical", "terms", "union") and what the
    /// definition index did.
    pub route: &'static str,
    pub terms: Option<crate::terms::TermsOutcome>,
}

/// Counts of what searches did, since the engine was opened.
#[derive(Default, Debug)]
pub struct Counters {
    pub searches: AtomicU64,
    pub native_searches: AtomicU64,
    pub early_terminated: AtomicU64,
    pub budget_exhausted: AtomicU64,
    pub candidates: AtomicU64,
    pub visited: AtomicU64,
    pub greps: AtomicU64,
    /// Reference-scanner searches that ran out of their deadline.
    pub reference_truncated: AtomicU64,
}

/// The caches' counters: Stage-B's lookups and grep's compiled patterns,
/// apart and summed, and the time spent compiling patterns that missed.
#[derive(Clone, Debug)]
pub struct CacheReport {
    pub total: CacheStats,
    pub lookups: CacheStats,
    pub patterns: CacheStats,
    pub pattern_compile_ms: f64,
    pub pattern_compiles: u64,
}

pub struct Engine {
    pub index: Index,
    pub counters: Counters,
    /// Stage-B: symbol lookups and their cache.
    pub stage_b: StageB,
    /// Compiled grep patterns.
    pub patterns: PatternCache,
    /// The definition index's term files (questions).
    pub terms: crate::terms::Terms,
}

/// How many files one parallel grep step takes before checking the limit.
const GREP_CHUNK: usize = 1024;

fn render(snap: &Snapshot, mut h: RawHit) -> Hit {
    let column = crate::scan::locate(snap, &mut h);
    let content = snap.content(h.file);
    Hit {
        path: snap.path(h.file).to_string(),
        line: h.line,
        column,
        byte_start: h.byte_start as u64,
        byte_end: h.byte_end as u64,
        text: String::from_utf8_lossy(&content[h.line_start..h.line_end]).into_owned(),
        score: h.score,
        why: h.why,
    }
}

fn sum(a: CacheStats, b: CacheStats) -> CacheStats {
    CacheStats {
        hits: a.hits + b.hits,
        misses: a.misses + b.misses,
        evictions: a.evictions + b.evictions,
        bytes: a.bytes + b.bytes,
        entries: a.entries + b.entries,
        capacity_bytes: a.capacity_bytes + b.capacity_bytes,
    }
}

impl Engine {
    fn with_index(index: Index) -> Engine {
        Engine {
            index,
            counters: Counters::default(),
            stage_b: StageB::default(),
            patterns: PatternCache::new(CACHE_BYTES / 4),
            terms: Default::default(),
        }
    }

    pub fn build(
        root: &std::path::Path,
        dir: &std::path::Path,
        opts: &BuildOptions,
        progress: &mut crate::index::progress::Progress<'_>,
    ) -> Result<Engine> {
        Engine::build_with(root, dir, opts, &SymbolOptions::default(), progress)
    }

    /// Builds an index of `root` in `dir`, with Stage-B's symbol files
    /// (extracted, and a SCIP index ingested, per `sym`) in the same commit.
    pub fn build_with(
        root: &std::path::Path,
        dir: &std::path::Path,
        opts: &BuildOptions,
        sym: &SymbolOptions,
        progress: &mut crate::index::progress::Progress<'_>,
    ) -> Result<Engine> {
        let companion = Arc::new(EngineFiles::new(sym.clone()));
        Ok(Engine::with_index(Index::build_with(root, dir, opts, companion, progress)?))
    }

    pub fn open(dir: &std::path::Path) -> Result<Engine> {
        let companion = Arc::new(EngineFiles::new(SymbolOptions::default()));
        Ok(Engine::with_index(Index::open_with(dir, companion)?))
    }

    /// The index as it stands now: take it once per query and pass it to
    /// every stage of that query.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.index.snapshot()
    }

    /// Ingests a SCIP or LSIF file as precise symbol data, committed with a
    /// new manifest; malformed input leaves the index as it was. Returns
    /// what was merged and how many occurrences pointed outside their file.
    pub fn attach(&self, format: Format, path: &std::path::Path) -> Result<(MergeCounts, u64)> {
        let mut merged = (MergeCounts::default(), 0);
        self.index.commit_companion(&mut |snap, generation| {
            let (name, counts, skipped) = hooks::attach(snap, generation, format, path)?;
            merged = (counts, skipped);
            Ok(name)
        })?;
        Ok(merged)
    }

    /// Ranked search on the current snapshot (see [`Engine::search_in`]).
    pub fn search(&self, query: &str, k: usize, budget: Option<Duration>, native: bool) -> Result<SearchResult> {
        self.search_in(&self.snapshot(), query, k, budget, native)
    }

    /// Ranked search on one snapshot. `native` picks the fast path (index,
    /// early termination, `budget`); otherwise the reference scanner answers,
    /// reading every live byte, and `budget` is its deadline. Either way a
    /// spent budget returns the best hits so far with `truncated` set.
    pub fn search_in(
        &self,
        snap: &Snapshot,
        query: &str,
        k: usize,
        budget: Option<Duration>,
        native: bool,
    ) -> Result<SearchResult> {
        self.search_routed(snap, query, k, budget, native, false)
    }

    /// [`Engine::search_in`], with `lexical` keeping the query on Stage-A
    /// whatever the router would say (a quoted phrase is text to find).
    pub fn search_routed(
        &self,
        snap: &Snapshot,
        query: &str,
        k: usize,
        budget: Option<Duration>,
        native: bool,
        lexical: bool,
    ) -> Result<SearchResult> {
        let started = Instant::now();
        check_search(query, k)?;
        snap.check_readable()?;
        let c = &self.counters;
        c.searches.fetch_add(1, Relaxed);
        // A question goes to the definition index, a question naming an
        // identifier to both (interleaved), everything else to Stage-A.
        let route = if lexical { crate::terms::route::Route::Lexical } else { crate::terms::route::classify(query) };
        let mut answered = None;
        // A shard of a set may want a union route's two lists apart, n each.
        let parts = crate::scan::global::union_parts().filter(|_| route == crate::terms::route::Route::Union);
        if route != crate::terms::route::Route::Lexical {
            answered = self.terms.search(snap, query, parts.unwrap_or(k), !native)?;
        }
        let route = if answered.is_some() { route } else { crate::terms::route::Route::Lexical };
        if let (crate::terms::route::Route::Terms, Some((hits, t))) = (route, &answered) {
            return Ok(SearchResult {
                hits: hits.clone(),
                truncated: false,
                outcome: rank::SearchOutcome::default(),
                generation: snap.manifest.generation,
                route: route.name(),
                terms: Some(*t),
            });
        }
        if let (Some(n), Some((questions, t))) = (parts, &answered) {
            let (lexical, truncated, outcome) =
                self.lexical(snap, &terms::split(query), n, budget, native, started, None);
            let hits = questions.iter().cloned().chain(lexical).collect();
            let (route, terms) = (route.name(), Some(*t));
            return Ok(SearchResult { hits, truncated, outcome, generation: snap.manifest.generation, route, terms });
        }
        // A union route asks Stage-A for the few hits the interleaving takes
        // first, and for all k only when those were not enough: the answer
        // is the same, and Stage-A stops sooner.
        let first_k = answered.as_ref().map_or(k, |(q, _)| crate::terms::union_lexical_k(k, q.len()));
        // A union route's Stage-A searches the question's identifiers and
        // its rarest words, within a work budget (`scan::narrow`).
        // Once narrowed (a big tree), it also verifies a bounded number of
        // chunks.
        let split = terms::split(query);
        let (split, cap) = match answered {
            Some(_) => {
                let all = split.terms.len();
                let named = terms::split(&crate::terms::route::identifiers(query).join(" ")).terms;
                let split =
                    crate::scan::narrow::within_budget(snap, split, &named, crate::scan::narrow::UNION_CANDIDATES);
                let cap = (split.terms.len() < all).then_some(crate::scan::narrow::UNION_VISITS);
                (split, cap)
            }
            None => (split, None),
        };
        let query = &split;
        let (mut hits, mut truncated, mut outcome) = self.lexical(snap, query, first_k, budget, native, started, cap);
        let terms_outcome = answered.as_ref().map(|(_, t)| *t);
        // Fewer hits than asked for, and not cut by the deadline: the search
        // ran out of candidates or reached its cap before its top k filled,
        // so it never stopped early, and a search for more would verify the
        // same chunks and find the same hits (`scan::rank_props`).
        let complete = hits.len() < first_k && !truncated;
        if let Some((questions, _)) = answered {
            let (mixed, wanted_more) = crate::terms::interleave(questions.clone(), hits, k);
            hits = mixed;
            if wanted_more && first_k < k && !complete {
                let (all, t, o) = self.lexical(snap, query, k, budget, native, started, cap);
                (truncated, outcome) = (t, o);
                hits = crate::terms::interleave(questions, all, k).0;
            }
        }
        Ok(SearchResult {
            hits,
            truncated,
            outcome,
            generation: snap.manifest.generation,
            route: route.name(),
            terms: terms_outcome,
        })
    }

    /// Stage-A's ranked search, rendered: the native path (verifying at
    /// most `cap` chunks), or the reference scanner (with `budget` as its
    /// deadline).
    #[allow(clippy::too_many_arguments)]
    fn lexical(
        &self,
        snap: &Snapshot,
        query: &terms::Terms,
        k: usize,
        budget: Option<Duration>,
        native: bool,
        started: Instant,
        cap: Option<u64>,
    ) -> (Vec<Hit>, bool, rank::SearchOutcome) {
        let c = &self.counters;
        let mut scorer = Scorer::new(query);
        let (raw, outcome, truncated) = if native {
            c.native_searches.fetch_add(1, Relaxed);
            let (raw, o) = rank::search_capped(snap, &mut scorer, k, budget, started, cap);
            c.early_terminated.fetch_add(u64::from(o.early_terminated), Relaxed);
            c.budget_exhausted.fetch_add(u64::from(o.budget_exhausted), Relaxed);
            c.candidates.fetch_add(o.candidates, Relaxed);
            c.visited.fetch_add(o.visited, Relaxed);
            let truncated = o.budget_exhausted;
            (raw, o, truncated)
        } else {
            let deadline = budget.map(|b| started + b);
            let (raw, truncated) = reference::search(snap, &mut scorer, k, deadline);
            c.reference_truncated.fetch_add(u64::from(truncated), Relaxed);
            (raw, rank::SearchOutcome::default(), truncated)
        };
        (raw.into_iter().map(|h| render(snap, h)).collect(), truncated, outcome)
    }

    /// Stage-B on one snapshot: symbol hits for an identifier-like query
    /// (empty otherwise), and whether the lookup cache answered.
    pub fn stage_b_in(&self, snap: &Snapshot, query: &str, k: usize) -> Result<(Arc<Vec<SymHit>>, bool)> {
        self.stage_b.search(snap, query, k)
    }

    /// Every definition of `name` on the current snapshot.
    pub fn definitions(&self, name: &str) -> Result<Arc<Vec<SymHit>>> {
        self.stage_b.definitions(&*self.index.checked_snapshot()?, name)
    }

    /// References to `name` on the current snapshot, at most `limit`.
    pub fn references(&self, name: &str, limit: usize) -> Result<Arc<Vec<SymHit>>> {
        self.stage_b.references(&*self.index.checked_snapshot()?, name, limit)
    }

    /// Symbol names by prefix or (with `fuzzy`) within two edits.
    pub fn symbol_names(
        &self,
        text: &str,
        fuzzy: bool,
        limit: usize,
    ) -> Result<Arc<Vec<crate::symbols::stage::NameInfo>>> {
        self.stage_b.symbols(&*self.index.checked_snapshot()?, text, fuzzy, limit)
    }

    /// Checks every checksum of the current snapshot again: each segment's
    /// sections, then each symbol file whole (which an open leaves to
    /// Stage-B's first use).
    pub fn verify(&self) -> Result<()> {
        self.index.verify()?;
        let snap = self.snapshot();
        match snap.companion::<crate::symbols::layers::OpenedSymbols>() {
            Some(symbols) => symbols.verify(),
            None => Ok(()),
        }
    }

    /// Both caches' counters, apart and summed.
    pub fn cache_report(&self) -> CacheReport {
        let (lookups, patterns) = (self.stage_b.lookup_stats(), self.patterns.stats());
        let (ms, n) = self.patterns.compile_time();
        CacheReport { total: sum(lookups, patterns), lookups, patterns, pattern_compile_ms: ms, pattern_compiles: n }
    }

    /// Empties both caches (their counters stay).
    pub fn clear_caches(&self) {
        self.stage_b.clear();
        self.patterns.clear();
    }

    /// Symbol coverage of the live files, and how long the last build's
    /// symbol phase took (from the manifest; None when it does not say).
    /// Damaged symbol files (found on their first use) are an error.
    pub fn symbol_report(&self) -> Result<(Coverage, Option<f64>)> {
        let snap = self.snapshot();
        let seconds = snap.manifest.extra.get("symbols_seconds").and_then(|s| s.parse::<f64>().ok());
        Ok((coverage(&snap)?, seconds))
    }

    /// Index-wide facts, with skipped files grouped by reason (count and up
    /// to `examples` paths each).
    pub fn stats(&self, examples: usize) -> (Stats, BTreeMap<String, (u64, Vec<String>)>) {
        let mut s = self.index.stats();
        // The segments' term files (the definition index) ride beside them.
        s.index_bytes += self.terms.bytes_on_disk(&self.snapshot());
        let by_reason = s.skipped_by_reason(examples);
        (s, by_reason)
    }

    /// Exhaustive grep, in path then offset order, at most `limit` hits.
    pub fn grep(&self, pattern: &str, options: GrepOptions, limit: Option<usize>, native: bool) -> Result<Vec<Hit>> {
        let p = self.patterns.get(pattern, options)?;
        let limit = limit.unwrap_or(usize::MAX);
        self.counters.greps.fetch_add(1, Relaxed);
        let snap = self.index.checked_snapshot()?;
        self.grep_in(&snap, &p, limit, native)
    }

    /// Exhaustive grep of a compiled pattern on one (perhaps narrowed) snapshot.
    pub fn grep_in(&self, snap: &Snapshot, p: &Pattern, limit: usize, native: bool) -> Result<Vec<Hit>> {
        let raw = if native { self.grep_native(snap, p, limit, usize::MAX)? } else { reference::grep(snap, p, limit)? };
        Ok(raw.into_iter().map(|h| render(snap, h)).collect())
    }

    /// The files of `snap` with a match of `p`, in path order: the native
    /// grep stopping at each file's first match (rg's `-l`). The query
    /// language's `-term`, phrases and `case:yes` ask only which files hold a
    /// text, so they never collect every matching line.
    pub fn files_matching(&self, snap: &Snapshot, p: &Pattern) -> Result<Vec<FileRef>> {
        Ok(self.grep_native(snap, p, usize::MAX, 1)?.into_iter().map(|h| h.file).collect())
    }

    /// Every live file as (path, size in bytes), in path order: what a
    /// grep searches (the CLI's `--files`, path filters, and rg's JSON stats).
    pub fn files(&self) -> Result<Vec<(String, u64)>> {
        let snap = self.index.checked_snapshot()?;
        Ok(snap.path_order().iter().map(|&f| (snap.path(f).to_string(), snap.content(f).len() as u64)).collect())
    }

    /// At most `limit` hits in all, and at most `per_file` from each file.
    fn grep_native(&self, snap: &Snapshot, p: &Pattern, limit: usize, per_file: usize) -> Result<Vec<RawHit>> {
        let matcher = Matcher::new(p)?;
        let sets: Vec<_> = snap.segments.iter().map(|v| p.plan.eval(&v.seg)).collect();
        // Files in path order with at least one candidate chunk.
        let files: Vec<FileRef> = snap
            .path_order()
            .iter()
            .filter(|f| {
                sets[f.seg as usize].as_ref().is_none_or(|s| {
                    let m = snap.segment(**f).file(f.id);
                    (m.first_chunk..m.first_chunk + m.nchunks).any(|c| s.contains(c))
                })
            })
            .copied()
            .collect();
        let mut out = Vec::new();
        for chunk in files.chunks(GREP_CHUNK) {
            let remaining = (limit - out.len()).min(per_file);
            let parts: Vec<Vec<RawHit>> = chunk
                .par_iter()
                .map(|&f| {
                    let mut v = Vec::new();
                    let seg = snap.segment(f);
                    let (m, content, lines) = (seg.file(f.id), seg.content(f.id), seg.line_table(f.id));
                    let set = sets[f.seg as usize].as_ref();
                    for c in m.first_chunk..m.first_chunk + m.nchunks {
                        if set.is_none_or(|s| s.contains(c)) && v.len() < remaining {
                            let ch = seg.chunk(c);
                            let range = ch.start as usize..(ch.start + ch.len) as usize;
                            grep_chunk(&matcher, f, content, range, lines, &mut v, remaining);
                        }
                    }
                    v
                })
                .collect();
            for part in parts {
                out.extend(part);
                if out.len() >= limit {
                    out.truncate(limit);
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }
}

/// What rides along with each generation: Stage-B's symbol files and the
/// definition index's term files (one per new segment, built from those
/// symbols). The index calls this at each commit and knows neither. A build
/// extracts the symbols while the files are read ([`ReadSink`]) and writes
/// the symbol file beside the term files.
pub struct EngineFiles {
    symbols: SymbolFiles,
}

impl EngineFiles {
    pub fn new(opts: SymbolOptions) -> EngineFiles {
        EngineFiles { symbols: SymbolFiles { opts } }
    }
}

impl Companion for EngineFiles {
    fn read_sink(&self) -> Option<Box<dyn ReadSink>> {
        self.symbols.read_sink()
    }

    fn on_build(
        &self,
        dir: &std::path::Path,
        generation: u64,
        names: &[String],
        read: Option<Box<dyn ReadSink>>,
        progress: &mut Progress<'_>,
    ) -> Result<CompanionFiles> {
        let mut clock = crate::index::progress::Clock::default();
        if self.symbols.opts.disabled {
            crate::terms::build_for_segments(dir, names, None, progress)?;
            clock.lap("terms");
            return Ok(CompanionFiles { phases: clock.laps, ..CompanionFiles::default() });
        }
        // The symbols were extracted while the files were read (the read
        // sink); without it (a caller that gave none) they are extracted here.
        let extracted = Extractor::take(read);
        let (name, prepared) =
            hooks::prepare_build(dir, generation, names, &self.symbols.opts, extracted, progress, &mut clock)?;
        let segs = crate::terms::open_segments(dir, names)?;
        let defs = crate::terms::defs_by_file_prepared(&prepared, &segs);
        clock.lap("symbol_file");
        // The symbol file is written beside the term files: they need only
        // its definitions, taken above from the same prepared records. The
        // writer has a thread of its own: its sorts and sections run in
        // rayon's pool beside the terms phase's work (filling the cores that
        // phase leaves idle), and its file write and sync hold no worker.
        // The terms phase stays on this thread, which reports progress.
        let path = dir.join(&name);
        let (written, terms) = std::thread::scope(|scope| {
            let writer = scope.spawn(move || prepared.write(&path));
            let terms = crate::terms::write_for_segments(dir, names, &segs, Some(defs), progress);
            (writer.join().unwrap_or_else(|p| std::panic::resume_unwind(p)), terms)
        });
        // The writer's error comes first, as when it ran before the terms.
        written?;
        terms?;
        clock.lap("terms");
        Ok(CompanionFiles { base: Some(name), deltas: Vec::new(), phases: clock.laps })
    }

    fn on_refresh(
        &self,
        dir: &std::path::Path,
        generation: u64,
        old: &Snapshot,
        segments: &[SegmentEntry],
        dead: &[FileRef],
        progress: &mut Progress<'_>,
    ) -> Result<CompanionFiles> {
        let files = self.symbols.on_refresh(dir, generation, old, segments, dead, progress)?;
        // Term files for the segments this refresh wrote, and only those.
        let old_names: std::collections::HashSet<&str> =
            old.manifest.segments.iter().map(|s| s.name.as_str()).collect();
        let new_names: Vec<String> =
            segments.iter().filter(|s| !old_names.contains(s.name.as_str())).map(|s| s.name.clone()).collect();
        crate::terms::build_for_segments(
            dir,
            &new_names,
            files.base.as_deref().map(|s| (s, files.deltas.as_slice())),
            progress,
        )?;
        Ok(files)
    }

    fn open(&self, dir: &std::path::Path, manifest: &Manifest) -> Result<Option<Arc<dyn std::any::Any + Send + Sync>>> {
        self.symbols.open(dir, manifest)
    }
}
