//! # Definition-level retrieval for plain-English questions
//!
//! Every definition Stage-B knows (function, method, class, struct, type,
//! function-like macro; a window of lines where a file has none) is a
//! document with five fields (name sub-tokens, signature, container and
//! path, comments, body), scored with BM25F over stemmed terms and re-ranked
//! by code-aware rules.
//!
//! - [`tokenize`]: sub-tokens, stop words, stemming, query analysis.
//! - [`docs`]: a file's definitions turned into documents.
//! - [`store`]: the term file written beside each segment, and its reader.
//! - [`score`]: top-k with MaxScore early termination, and its oracle.
//! - [`rank`]: the code-aware rules.
//! - [`route`]: which queries come here.
//!
//! One term file per segment (`seg-X.terms` beside `seg-X.lens`) means a
//! refresh writes terms only for the segment of changed files, a deleted
//! file drops out through the segment's live set, and a term file lives and
//! dies with its segment. The index calls [`build_for_segments`] before its
//! manifest commits; the engine calls [`Terms::search`].

pub mod docs;
pub mod global;
pub mod rank;
pub mod route;
pub mod score;
pub mod store;
pub mod tokenize;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use crate::error::Result;
use crate::hit::Hit;
use crate::index::format::Segment;
use crate::index::manifest::SymbolDelta;
use crate::index::Snapshot;
use crate::symbols::layers::SymbolSet;
use crate::symbols::store::NONE;
use docs::{file_docs, is_document_kind, DefIn, FIELD_NAMES, NFIELDS};
use rank::{Candidate, Rules};
use score::{ScoreStats, SegTerms, WeightedTerm};
use store::{terms_path, TermFile};
use tokenize::{analyze_query, Analyzer};

/// Candidates the rules re-rank (at least; more when k is larger).
const POOL: usize = 200;
/// Integer scale of query-term weights.
const WEIGHT_SCALE: f64 = 1000.0;

/// The document-kind definitions of the files in `paths`, by path, from the
/// symbol file(s) of the generation being committed.
fn defs_by_path(set: &SymbolSet, paths: &HashSet<&str>) -> HashMap<String, Vec<DefIn>> {
    let mut out: HashMap<String, Vec<DefIn>> = HashMap::new();
    for layer in &set.layers {
        let t = &layer.table;
        let wanted: Vec<bool> = (0..t.nfiles() as u32).map(|f| layer.is_live(f) && paths.contains(t.path(f))).collect();
        for i in 0..t.ndefs() {
            let d = t.def(i);
            if !wanted[d.file as usize] || !is_document_kind(d.kind) {
                continue;
            }
            out.entry(t.path(d.file).to_string()).or_default().push(DefIn {
                name: t.name(d.name).to_string(),
                container: (d.container != NONE).then(|| t.name(d.container).to_string()),
                kind: d.kind,
                name_start: d.name_start,
                name_end: d.name_end,
                def_start: d.def_start,
                def_end: d.def_end,
                line: d.line,
            });
        }
    }
    out
}

/// Writes the term file of each segment in `names` (files of `dir`), taking
/// definitions from the symbol files `symbols` (base, deltas) of the same
/// generation; without symbols every file is windowed.
pub fn build_for_segments(dir: &Path, names: &[String], symbols: Option<(&str, &[SymbolDelta])>) -> Result<u64> {
    let set = match symbols {
        Some((base, deltas)) => Some(SymbolSet::open(dir, base, deltas)?),
        None => None,
    };
    let mut bytes = 0;
    for name in names {
        let seg = Segment::open(&dir.join(name))?;
        let paths: HashSet<&str> = (0..seg.nfiles()).map(|id| seg.path(id)).collect();
        let defs = set.as_ref().map(|s| defs_by_path(s, &paths)).unwrap_or_default();
        let docs: Vec<(u32, docs::Doc)> = (0..seg.nfiles())
            .into_par_iter()
            .map_init(Analyzer::default, |an, id| {
                let path = seg.path(id);
                let d = defs.get(path).map_or(&[][..], Vec::as_slice);
                file_docs(an, path, seg.content(id), d).into_iter().map(|doc| (id, doc)).collect::<Vec<_>>()
            })
            .flatten()
            .collect();
        bytes += store::write(&terms_path(&dir.join(name)), &docs)?;
    }
    Ok(bytes)
}

/// What a terms search did, for the result's info.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TermsOutcome {
    pub scored: u64,
    pub postings: u64,
    pub segments: u64,
}

/// The engine's handle on term files: opened once per segment and shared.
#[derive(Default)]
pub struct Terms {
    open: Mutex<HashMap<String, Option<Arc<TermFile>>>>,
}

impl Terms {
    /// The bytes of `snap`'s term files on disk.
    pub fn bytes_on_disk(&self, snap: &Snapshot) -> u64 {
        snap.manifest
            .segments
            .iter()
            .map(|e| std::fs::metadata(store::terms_path(&snap.dir.join(&e.name))).map_or(0, |m| m.len()))
            .sum()
    }

    /// The term file of each segment of `snap` (None where there is none:
    /// an index built before term files existed).
    fn files(&self, snap: &Snapshot) -> Result<Vec<Option<Arc<TermFile>>>> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::with_capacity(snap.manifest.segments.len());
        for entry in &snap.manifest.segments {
            if !open.contains_key(&entry.name) {
                let p = terms_path(&snap.dir.join(&entry.name));
                let t = match TermFile::open(&p) {
                    Ok(t) => Some(Arc::new(t)),
                    Err(crate::error::Error::NotFound(_)) => None,
                    Err(e) => return Err(e),
                };
                open.insert(entry.name.clone(), t);
            }
            out.push(open[&entry.name].clone());
        }
        let live: HashSet<&str> = snap.manifest.segments.iter().map(|s| s.name.as_str()).collect();
        open.retain(|k, _| live.contains(k.as_str()));
        Ok(out)
    }

    /// Whether every segment of `snap` has a term file.
    pub fn available(&self, snap: &Snapshot) -> Result<bool> {
        Ok(!snap.segments.is_empty() && self.files(snap)?.iter().all(Option::is_some))
    }

    /// The top `k` definitions for a question. `exhaustive` scores every
    /// posting (the oracle); otherwise MaxScore stops early. None when the
    /// index has no term files or the query no content word: Stage-A answers.
    pub fn search(
        &self,
        snap: &Snapshot,
        query: &str,
        k: usize,
        exhaustive: bool,
    ) -> Result<Option<(Vec<Hit>, TermsOutcome)>> {
        let rules = Rules::from_env();
        if !rules.enabled {
            return Ok(None);
        }
        let files = self.files(snap)?;
        if files.is_empty() || files.iter().any(Option::is_none) {
            return Ok(None);
        }
        let files: Vec<Arc<TermFile>> = files.into_iter().flatten().collect();
        let mut an = Analyzer::default();
        let q = analyze_query(&mut an, query);
        // A shard of a set scores with the set's statistics (issue 14).
        let global = global::lookup(&snap.dir);
        let ndocs: u64 = global.as_ref().map_or_else(|| files.iter().map(|t| t.ndocs() as u64).sum(), |g| g.ndocs);
        let mut weighted = Vec::new();
        let keys: Vec<String> = if rules.keys { q.keys.iter().map(|k| format!("#{k}")).collect() } else { Vec::new() };
        for (term, mult) in q.terms.iter().map(|t| (t, 1.0)).chain(keys.iter().map(|k| (k, rank::KEY_WEIGHT))) {
            let df: u64 = global.as_ref().map_or_else(
                || files.iter().filter_map(|t| t.postings(term)).map(|p| p.len() as u64).sum(),
                |g| g.df(term),
            );
            if df == 0 {
                continue;
            }
            let idf = (1.0 + (ndocs as f64 - df as f64 + 0.5) / (df as f64 + 0.5)).ln();
            let weight = (idf * mult * WEIGHT_SCALE).round().max(1.0) as u64;
            weighted.push(WeightedTerm { term: term.clone(), weight });
        }
        // Nothing but stop words ("return None"): not a question after all.
        if weighted.is_empty() {
            return Ok(None);
        }
        let mut out = TermsOutcome { segments: files.len() as u64, ..TermsOutcome::default() };
        let lives: Vec<Box<dyn Fn(u32) -> bool + '_>> = snap
            .segments
            .iter()
            .zip(&files)
            .map(|(v, t)| -> Box<dyn Fn(u32) -> bool + '_> {
                let t = t.clone();
                Box::new(move |doc| v.live.contains(t.row(doc).file))
            })
            .collect();
        let segs: Vec<SegTerms<'_>> =
            files.iter().zip(&lives).map(|(t, l)| SegTerms { terms: t.as_ref(), live: l.as_ref() }).collect();
        let pool_k = POOL.max(k * 2);
        let mut stats = ScoreStats::default();
        let top = if exhaustive {
            score::top_k_exhaustive(&segs, &weighted, pool_k)
        } else {
            score::top_k(&segs, &weighted, pool_k, &mut stats)
        };
        out.scored = stats.scored;
        out.postings = stats.postings;

        struct Row<'a> {
            seg: usize,
            doc: u32,
            row: store::DocRow,
            names: (&'a str, &'a str),
        }
        let rows: Vec<Row<'_>> = top
            .iter()
            .map(|s| {
                let (seg, doc) = (s.seg.0 as usize, s.doc.0);
                let row = files[seg].row(doc);
                Row { seg, doc, row, names: files[seg].names(&row) }
            })
            .collect();
        let mut pool: Vec<Candidate<'_>> = rows
            .iter()
            .zip(&top)
            .enumerate()
            .map(|(id, (r, s))| Candidate {
                id,
                score: s.score as f64 / WEIGHT_SCALE,
                path: snap.segments[r.seg].seg.path(r.row.file),
                name: r.names.0,
                container: r.names.1,
                window: r.row.kind == docs::WINDOW_KIND,
                spelled: false,
            })
            .collect();
        rank::apply(rules, &mut an, &q.terms, &mut pool);
        let mut hits = Vec::with_capacity(k);
        for c in pool.iter().take(k) {
            let r = &rows[c.id];
            let seg = &snap.segments[r.seg].seg;
            let content = seg.content(r.row.file);
            let mask = score::field_mask(&files[r.seg], &weighted, r.doc);
            let mut why: Vec<&'static str> = vec!["bm25f"];
            why.extend((0..NFIELDS).filter(|f| mask & (1 << f) != 0).map(|f| FIELD_NAMES[f]));
            if c.spelled {
                why.push("spelled");
            }
            hits.push(render(content, c.path, &r.row, c.score, why));
        }
        Ok(Some((hits, out)))
    }
}

/// A hit at the definition's name on its header line (a window's first line).
fn render(content: &[u8], path: &str, row: &store::DocRow, score: f64, why: Vec<&'static str>) -> Hit {
    let start = (row.start as usize).min(content.len());
    let end = (row.end as usize).clamp(start, content.len());
    let line_start = memchr::memrchr(b'\n', &content[..start]).map_or(0, |i| i + 1);
    let line_end = memchr::memchr(b'\n', &content[start..]).map_or(content.len(), |i| start + i);
    let column = String::from_utf8_lossy(&content[line_start..start]).chars().count() as u32;
    Hit {
        path: path.to_string(),
        line: row.line,
        column,
        byte_start: start as u64,
        byte_end: end as u64,
        text: String::from_utf8_lossy(&content[line_start..line_end]).into_owned(),
        score,
        why,
    }
}

/// Every how many definition hits a union route takes one of Stage-A's
/// (one for one measured slightly worse on the dev questions).
const UNION_EVERY: usize = 3;

/// A union route's answer: the definition index's hits with one of
/// Stage-A's after every [`UNION_EVERY`], then the rest of Stage-A's; the
/// first occurrence of a (path, line) is kept.
pub fn interleave(a: Vec<Hit>, b: Vec<Hit>, k: usize) -> Vec<Hit> {
    let mut seen: HashSet<(String, u32)> = HashSet::new();
    let mut out = Vec::with_capacity(k);
    let (mut a, mut b) = (a.into_iter(), b.into_iter());
    let mut round = 0;
    loop {
        round += 1;
        let x = a.next();
        let y = if round % UNION_EVERY == 0 { b.next() } else { None };
        if x.is_none() && y.is_none() {
            let rest: Vec<Hit> = b.by_ref().collect();
            for h in rest {
                if out.len() < k && seen.insert((h.path.clone(), h.line)) {
                    out.push(h);
                }
            }
            break;
        }
        for h in [x, y].into_iter().flatten() {
            if out.len() < k && seen.insert((h.path.clone(), h.line)) {
                out.push(h);
            }
        }
    }
    out
}
