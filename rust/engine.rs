//! The engine: an index plus the two ways of querying it (the native fast
//! path and the reference scanner), rendered into caller-ready hits, with
//! counters for what happened. The bindings wrap exactly this.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::error::Result;
use crate::index::build::BuildOptions;
use crate::index::{FileRef, Index, Snapshot};
use crate::query::{check_query, terms, GrepOptions, Pattern};
use crate::reference;
use crate::scan::grep::{grep_chunk, Matcher};
use crate::scan::rank::{self, Scorer};
use crate::scan::RawHit;
use crate::symbols::hooks::{self, Format};
use crate::symbols::precise::MergeCounts;
use crate::symbols::{StageB, SymbolOptions};

/// A hit as callers see it.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub path: String,
    pub line: u32,
    pub column: u32,
    pub byte_start: u64,
    pub byte_end: u64,
    pub text: String,
    pub score: f64,
    pub why: Vec<&'static str>,
}

/// What a ranked search returns.
#[derive(Clone, Debug)]
pub struct SearchResult {
    pub hits: Vec<Hit>,
    pub truncated: bool,
    pub outcome: rank::SearchOutcome,
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
}

pub struct Engine {
    pub index: Index,
    pub counters: Counters,
    /// Stage-B: symbol lookups and the lookup / pattern caches.
    pub stage_b: StageB,
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

impl Engine {
    pub fn build(
        root: &std::path::Path,
        dir: &std::path::Path,
        opts: &BuildOptions,
        progress: &mut crate::index::progress::Progress<'_>,
    ) -> Result<Engine> {
        Engine::build_with(root, dir, opts, &SymbolOptions::default(), progress)
    }

    pub fn build_with(
        root: &std::path::Path,
        dir: &std::path::Path,
        opts: &BuildOptions,
        sym: &SymbolOptions,
        progress: &mut crate::index::progress::Progress<'_>,
    ) -> Result<Engine> {
        Ok(Engine {
            index: Index::build_with(root, dir, opts, sym, progress)?,
            counters: Counters::default(),
            stage_b: StageB::default(),
        })
    }

    pub fn open(dir: &std::path::Path) -> Result<Engine> {
        Ok(Engine { index: Index::open(dir)?, counters: Counters::default(), stage_b: StageB::default() })
    }

    /// Ingests a SCIP or LSIF file as precise symbol data, committed with a
    /// new manifest; malformed input leaves the index as it was. Returns
    /// what was merged and how many occurrences pointed outside their file.
    pub fn attach(&self, format: Format, path: &std::path::Path) -> Result<(MergeCounts, u64)> {
        let mut out = (MergeCounts::default(), 0);
        self.index.commit_symbols(&mut |snap, generation| {
            let (name, counts, skipped) = hooks::attach(snap, generation, format, path)?;
            out = (counts, skipped);
            Ok(name)
        })?;
        Ok(out)
    }

    /// Ranked search. `native` picks the fast path; otherwise the reference
    /// scanner answers (no index, no early termination, no budget).
    pub fn search(&self, query: &str, k: usize, budget: Option<Duration>, native: bool) -> Result<SearchResult> {
        let started = Instant::now();
        check_query(query)?;
        let snap = self.index.snapshot();
        let mut scorer = Scorer::new(&terms::split(query));
        let c = &self.counters;
        c.searches.fetch_add(1, Relaxed);
        let (raw, outcome) = if native {
            c.native_searches.fetch_add(1, Relaxed);
            let (raw, o) = rank::search(&snap, &mut scorer, k, budget, started);
            c.early_terminated.fetch_add(u64::from(o.early_terminated), Relaxed);
            c.budget_exhausted.fetch_add(u64::from(o.budget_exhausted), Relaxed);
            c.candidates.fetch_add(o.candidates, Relaxed);
            c.visited.fetch_add(o.visited, Relaxed);
            (raw, o)
        } else {
            (reference::search(&snap, &mut scorer, k), rank::SearchOutcome::default())
        };
        let hits = raw.into_iter().map(|h| render(&snap, h)).collect();
        Ok(SearchResult { hits, truncated: outcome.budget_exhausted, outcome })
    }

    /// Exhaustive grep, in path then offset order, at most `limit` hits.
    pub fn grep(&self, pattern: &str, options: GrepOptions, limit: Option<usize>, native: bool) -> Result<Vec<Hit>> {
        // Through Stage-B's pattern cache (compile time is counted there).
        let p = self.stage_b.pattern(pattern, options)?;
        let limit = limit.unwrap_or(usize::MAX);
        self.counters.greps.fetch_add(1, Relaxed);
        let snap = self.index.snapshot();
        let raw = if native { self.grep_native(&snap, &p, limit)? } else { reference::grep(&snap, &p, limit) };
        Ok(raw.into_iter().map(|h| render(&snap, h)).collect())
    }

    /// Every live file as (path, size in bytes), in path order: what a
    /// grep searches (the CLI's `--files`, path filters, and rg's JSON stats).
    pub fn files(&self) -> Vec<(String, u64)> {
        let snap = self.index.snapshot();
        snap.path_order().iter().map(|&f| (snap.path(f).to_string(), snap.content(f).len() as u64)).collect()
    }

    fn grep_native(&self, snap: &Snapshot, p: &Pattern, limit: usize) -> Result<Vec<RawHit>> {
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
            let remaining = limit - out.len();
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
