//! # Definition-level retrieval for plain-English questions
//!
//! Every definition Stage-B knows (function, method, class, struct, type,
//! function-like macro; a window of lines where a file has none) is a
//! document with five fields (name sub-tokens, signature, container and
//! path, comments, body), scored with BM25F over stemmed terms times the
//! code-aware rules' multipliers.
//!
//! - [`tokenize`]: sub-tokens, stop words, stemming, query analysis.
//! - [`docs`]: a file's definitions turned into documents.
//! - [`store`]: the term file written beside each segment, and its reader.
//! - [`score`]: top-k with block-max WAND early termination, and its oracle.
//! - [`rank`]: the code-aware rules, per-document multipliers applied
//!   inside the top-k search.
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

#[cfg(test)]
mod build_tests;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use crate::error::Result;
use crate::hit::Hit;
use crate::index::format::Segment;
use crate::index::manifest::SymbolDelta;
use crate::index::progress::{Phase, Progress};
use crate::index::Snapshot;
use crate::symbols::layers::SymbolSet;
use crate::symbols::store::{DefRec, Prepared, NONE};
use docs::{file_docs, is_document_kind, DefIn, FIELD_NAMES, NFIELDS};
use rank::Rules;
use score::{ScoreStats, SegTerms, WeightedTerm};
use store::{terms_path, TermFile};
use tokenize::{analyze_query, Analyzer};

/// Integer scale of query-term weights.
const WEIGHT_SCALE: f64 = 1000.0;

/// A query term's integer weight: its BM25 idf over `ndocs` documents of
/// which `df` hold it, scaled by [`WEIGHT_SCALE`].
pub fn term_weight(ndocs: u64, df: u64) -> u64 {
    let idf = (1.0 + (ndocs as f64 - df as f64 + 0.5) / (df as f64 + 0.5)).ln();
    (idf * WEIGHT_SCALE).round().max(1.0) as u64
}

/// Definitions by segment and file id: what the terms phase takes.
pub type DefsByFile = Vec<Vec<Vec<DefIn>>>;

/// Where each path of `segs` is, as (segment, file id).
fn places_of(segs: &[Segment]) -> HashMap<&str, Vec<(u32, u32)>> {
    let mut at: HashMap<&str, Vec<(u32, u32)>> = HashMap::new();
    for (s, seg) in segs.iter().enumerate() {
        for id in 0..seg.nfiles() {
            at.entry(seg.path(id)).or_default().push((s as u32, id));
        }
    }
    at
}

/// Appends the document-kind definitions among `defs` (all of the name
/// `name`, in the symbol file's order) to the files they are in;
/// `places[file]` is where a symbol file's file id is in the segments.
fn push_defs(
    out: &mut DefsByFile,
    places: &[&[(u32, u32)]],
    name: &str,
    defs: impl Iterator<Item = DefRec>,
    container: &dyn Fn(u32) -> String,
) {
    for d in defs {
        let places = places[d.file as usize];
        if places.is_empty() || !is_document_kind(d.kind) {
            continue;
        }
        let def = DefIn {
            name: name.to_string(),
            container: (d.container != NONE).then(|| container(d.container)),
            kind: d.kind,
            name_start: d.name_start,
            name_end: d.name_end,
            def_start: d.def_start,
            def_end: d.def_end,
            line: d.line,
        };
        for &(s, id) in places {
            out[s as usize][id as usize].push(def.clone());
        }
    }
}

fn empty_defs(segs: &[Segment]) -> DefsByFile {
    segs.iter().map(|s| vec![Vec::new(); s.nfiles() as usize]).collect()
}

/// The document-kind definitions of every file of `segs`, by segment and
/// file id, from the symbol file(s) of the generation being committed. One
/// pass over the symbol table serves all segments (it is one table of the
/// whole tree; a pass per segment read it seven times on the kernel).
pub fn defs_by_file(set: &SymbolSet, segs: &[Segment]) -> DefsByFile {
    let at = places_of(segs);
    let mut out = empty_defs(segs);
    for layer in &set.layers {
        let t = &layer.table;
        let places: Vec<&[(u32, u32)]> = (0..t.nfiles() as u32)
            .map(|f| if layer.is_live(f) { at.get(t.path(f)).map_or(&[][..], Vec::as_slice) } else { &[] })
            .collect();
        // One pass in name order (names come with their entries; only
        // containers are looked up by id).
        t.for_each_entry(|_, name, defs, _| push_defs(&mut out, &places, name, defs, &|c| t.name(c)));
    }
    out
}

/// [`defs_by_file`] from a symbol file not yet written: its definitions
/// as [`Prepared`] holds them, which are the file's own records in its
/// order, so the documents (and the term files) are the same. A build takes
/// this route, so that the symbol file is written beside the term files.
pub fn defs_by_file_prepared(p: &Prepared, segs: &[Segment]) -> DefsByFile {
    let at = places_of(segs);
    // Segments are filled side by side, each by its own pass in name order
    // over the records of its files only.
    (0..segs.len())
        .into_par_iter()
        .map(|s| {
            let places: Vec<Vec<(u32, u32)>> = (0..p.nfiles() as u32)
                .map(|f| {
                    at.get(p.path(f)).map_or(Vec::new(), |v| {
                        v.iter().filter(|pl| pl.0 == s as u32).map(|&(_, id)| (0, id)).collect()
                    })
                })
                .collect();
            let places: Vec<&[(u32, u32)]> = places.iter().map(Vec::as_slice).collect();
            let mut out = vec![vec![Vec::new(); segs[s].nfiles() as usize]];
            for run in p.defs().chunk_by(|a, b| a.name == b.name) {
                if run.iter().any(|d| !places[d.file as usize].is_empty()) {
                    push_defs(&mut out, &places, p.name(run[0].name), run.iter().copied(), &|c| p.name(c).to_string());
                }
            }
            out.pop().unwrap_or_default()
        })
        .collect()
}

/// A segment's documents in file order, as the analysers that made them
/// left them (each with its vocabulary).
type SegDocs = Vec<store::Chunk>;

/// Writes the term file of each segment in `names` (files of `dir`), taking
/// definitions from the symbol files `symbols` (base, deltas) of the same
/// generation; without symbols every file is windowed. Reports
/// [`Phase::Terms`] progress in bytes of the segments' files.
pub fn build_for_segments(
    dir: &Path,
    names: &[String],
    symbols: Option<(&str, &[SymbolDelta])>,
    progress: &mut Progress<'_>,
) -> Result<u64> {
    let set = match symbols {
        Some((base, deltas)) => Some(SymbolSet::open(dir, base, deltas)?),
        None => None,
    };
    let segs = open_segments(dir, names)?;
    let defs = set.as_ref().map(|s| defs_by_file(s, &segs));
    write_for_segments(dir, names, &segs, defs, progress)
}

/// The segments `names` of `dir`, opened.
pub fn open_segments(dir: &Path, names: &[String]) -> Result<Vec<Segment>> {
    names.iter().map(|n| Segment::open(&dir.join(n))).collect()
}

/// Writes the term files of the segments `segs` (named `names` in `dir`)
/// with the definitions `defs` ([`defs_by_file`]; `None`: every file
/// windowed). Reports [`Phase::Terms`] progress in bytes of the segments' files.
pub fn write_for_segments(
    dir: &Path,
    names: &[String],
    segs: &[Segment],
    mut defs: Option<DefsByFile>,
    progress: &mut Progress<'_>,
) -> Result<u64> {
    let content_bytes = |seg: &Segment| (0..seg.nfiles()).map(|id| seg.content(id).len() as u64).sum::<u64>();
    let total: u64 = segs.iter().map(content_bytes).sum();
    let mut done = 0;
    progress(Phase::Terms, 0, total);
    let mut bytes = 0;
    // A segment's term file is written (one thread: inverted, sorted,
    // encoded) while the next segment is analysed (all threads): inside
    // rayon's pool, so a core the writer leaves idle steals analysis work.
    let mut pending: Option<(std::path::PathBuf, SegDocs, u64)> = None;
    for (s, (name, seg)) in names.iter().zip(segs).enumerate() {
        let seg_defs = defs.as_mut().map(|d| std::mem::take(&mut d[s])).unwrap_or_default();
        // Each of rayon's pieces of the range has an analyser, whose term
        // ids its documents hold; the pieces come back in order.
        let analyse = || -> SegDocs {
            (0..seg.nfiles())
                .into_par_iter()
                .fold(
                    || (Analyzer::default(), Vec::new()),
                    |(mut an, mut docs), id| {
                        let d = seg_defs.get(id as usize).map_or(&[][..], Vec::as_slice);
                        docs.extend(
                            file_docs(&mut an, seg.path(id), seg.content(id), d).into_iter().map(|doc| (id, doc)),
                        );
                        (an, docs)
                    },
                )
                .map(|(an, docs)| store::Chunk { vocab: an.into_vocab(), docs })
                .collect()
        };
        let docs = match pending.take() {
            None => analyse(),
            Some((path, prev, size)) => {
                let (docs, written) = rayon::join(analyse, move || store::write_chunks(&path, &prev));
                bytes += written?;
                done += size;
                progress(Phase::Terms, done, total);
                docs
            }
        };
        pending = Some((terms_path(&dir.join(name)), docs, content_bytes(seg)));
    }
    if let Some((path, prev, size)) = pending {
        bytes += store::write_chunks(&path, &prev)?;
        done += size;
        progress(Phase::Terms, done, total);
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

/// A segment's term file, with each document's `sink` prior (out of
/// [`rank::PRIOR_ONE`]), computed once when the file is opened.
pub struct SegFile {
    pub terms: TermFile,
    sink: Vec<u16>,
    /// Bit `d`: document `d` sinks (its prior is below [`rank::PRIOR_ONE`]).
    /// The scorer's bound of most candidates reads this (a few KiB per
    /// segment, in cache) rather than `sink` (two bytes a document).
    sinks: Vec<u64>,
    /// The first document of each file id (and the document count last):
    /// documents are in file order.
    file_start: Vec<u32>,
}

impl SegFile {
    fn open(p: &Path, seg: &Segment) -> Result<SegFile> {
        let terms = TermFile::open(p)?;
        let mut sink = Vec::with_capacity(terms.ndocs() as usize);
        let mut last: Option<(u32, f64)> = None;
        let on = Rules::default();
        for d in 0..terms.ndocs() {
            let file = terms.file_of(d);
            let f = match last {
                Some((lf, f)) if lf == file => f,
                _ => {
                    let f = if file < seg.nfiles() { rank::path_factor(seg.path(file)) } else { 1.0 };
                    last = Some((file, f));
                    f
                }
            };
            sink.push(rank::prior(on, f, terms.row(d).kind == docs::WINDOW_KIND) as u16);
        }
        let file_start = file_starts(&terms, seg.nfiles());
        let mut sinks = vec![0u64; sink.len().div_ceil(64)];
        for (d, &p) in sink.iter().enumerate() {
            if u64::from(p) < rank::PRIOR_ONE {
                sinks[d / 64] |= 1 << (d % 64);
            }
        }
        Ok(SegFile { terms, sink, sinks, file_start })
    }

    /// The documents of a file.
    fn docs_of_file(&self, file: u32) -> std::ops::Range<u32> {
        match (self.file_start.get(file as usize), self.file_start.get(file as usize + 1)) {
            (Some(&a), Some(&b)) => a..b,
            _ => self.terms.docs_of_file(file),
        }
    }
}

/// The first document of each of `nfiles` files in `terms` (documents are
/// in file order), and the document count last.
fn file_starts(terms: &TermFile, nfiles: u32) -> Vec<u32> {
    let mut file_start = vec![0u32; nfiles as usize + 1];
    for d in 0..terms.ndocs() {
        if let Some(n) = file_start.get_mut(terms.file_of(d) as usize + 1) {
            *n += 1;
        }
    }
    for i in 1..file_start.len() {
        file_start[i] += file_start[i - 1];
    }
    file_start
}

/// The file whose documents `file_starts` says include `doc` (None past them).
fn file_in(file_start: &[u32], doc: u32) -> Option<u32> {
    match file_start.partition_point(|&s| s <= doc) {
        i if i < file_start.len() => Some(i as u32 - 1),
        _ => None,
    }
}

/// [`file_in`], galloping on from file `from` when `doc` is at or past that
/// file's first document (the scorer asks in document order: the next
/// candidate's file is the same one or a near one).
fn file_in_from(file_start: &[u32], from: usize, doc: u32) -> Option<u32> {
    let n = file_start.len();
    if from + 1 >= n || file_start[from] > doc {
        return file_in(file_start, doc);
    }
    // `file_start[lo] <= doc`; `hi == n` or `file_start[hi] > doc`.
    let (mut lo, mut hi, mut step) = (from, from + 1, 1);
    while hi < n && file_start[hi] <= doc {
        lo = hi;
        hi = (hi + step).min(n);
        step *= 2;
    }
    let i = lo + 1 + file_start[lo + 1..hi].partition_point(|&s| s <= doc);
    (i < n).then(|| i as u32 - 1)
}

/// The engine's handle on term files: opened once per segment and shared.
#[derive(Default)]
pub struct Terms {
    open: Mutex<HashMap<String, Option<Arc<SegFile>>>>,
}

/// The ranking rules as the top-k search sees them: per-document
/// multipliers, a function of the query, the document, its file and the
/// corpus statistics (the query's weights) only.
struct RuleBoost<'a> {
    rules: Rules,
    files: &'a [Arc<SegFile>],
    /// Each segment's postings of the query's terms, with their weights.
    postings: Vec<Vec<(store::Postings<'a>, u64)>>,
    /// The matched query weight from which a definition counts for `files`.
    cover: u64,
    /// Documents the query spells (fast path: found by key lookup). The
    /// two per-candidate maps hash with hashbrown's default (foldhash), not
    /// SipHash: they are asked for every document that may enter the top k.
    spelled: hashbrown::HashSet<(u32, u32)>,
    /// The oracle checks every document's name instead of the lookup.
    oracle: Option<OracleSpelling<'a>>,
    per_file: hashbrown::HashMap<(usize, u32), u64>,
    /// Per segment and list of `postings`: where the last `matching` scan
    /// of that list stopped (the first posting past its file).
    hints: Vec<Vec<usize>>,
    /// Per segment: the file of the last document asked for (where the
    /// next one's file is searched from).
    last_file: Vec<usize>,
    /// The last file's `matching` count, as (segment, file, count): the
    /// scan's candidates come in runs from one file.
    last_count: Option<(usize, u32, u64)>,
    /// `matching`'s per-definition sums (kept between calls).
    sums: Vec<u64>,
}

struct OracleSpelling<'a> {
    an: Analyzer,
    terms: HashSet<&'a str>,
    snap: &'a Snapshot,
}

impl RuleBoost<'_> {
    fn file_max(&self) -> u64 {
        if self.rules.files {
            rank::FILE_BOOST_MAX
        } else {
            rank::FILE_ONE
        }
    }
    fn prior(&self, seg: usize, doc: u32) -> u64 {
        let f = &self.files[seg];
        let d = doc as usize;
        if self.rules.sink && f.sinks[d / 64] >> (d % 64) & 1 == 1 {
            f.sink[d] as u64
        } else {
            rank::PRIOR_ONE
        }
    }
    /// Definitions of `file` that hold at least `cover` of the query's weight.
    fn matching(&mut self, seg: usize, file: u32) -> u64 {
        if let Some((s, f, n)) = self.last_count {
            if (s, f) == (seg, file) {
                return n;
            }
        }
        if let Some(&n) = self.per_file.get(&(seg, file)) {
            self.last_count = Some((seg, file, n));
            return n;
        }
        let range = self.files[seg].docs_of_file(file);
        let acc = &mut self.sums;
        acc.clear();
        acc.resize(range.len(), 0);
        for ((p, weight), hint) in self.postings[seg].iter().zip(&mut self.hints[seg]) {
            // The scan asks for files in ascending order: search on from
            // where the last file's postings ended when that is before this one.
            let i = if *hint == 0 || (*hint <= p.len() && p.doc(*hint - 1) < range.start) {
                p.lower_bound_from(*hint, range.start)
            } else {
                p.lower_bound(range.start)
            };
            *hint = p.each_below(i, range.end, |d| acc[(d - range.start) as usize] += weight);
        }
        let n = acc.iter().filter(|&&w| w >= self.cover).count() as u64;
        self.per_file.insert((seg, file), n);
        self.last_count = Some((seg, file, n));
        n
    }
    /// The file of a candidate document, found in the segment's per-file
    /// starts (a few KiB, in cache) rather than in its row, searched on
    /// from the last candidate's file.
    fn file_of(&mut self, seg: usize, doc: u32) -> u32 {
        let f = &self.files[seg];
        let file = file_in_from(&f.file_start, self.last_file[seg], doc).unwrap_or_else(|| f.terms.file_of(doc));
        self.last_file[seg] = file as usize;
        file
    }
    fn is_spelled(&mut self, seg: usize, doc: u32) -> bool {
        if !self.rules.ident || !self.files[seg].terms.has_spell_keys() {
            return false;
        }
        match &mut self.oracle {
            None => self.spelled.contains(&(seg as u32, doc)),
            Some(o) => {
                let t = &self.files[seg].terms;
                let row = t.row(doc);
                let (name, container) = t.names(&row);
                let path = o.snap.segments[seg].seg.path(row.file);
                rank::spells(&mut o.an, &o.terms, path, name, container)
            }
        }
    }
}

impl score::Boost for RuleBoost<'_> {
    fn max(&self) -> u64 {
        rank::PRIOR_ONE * self.file_max() * rank::IDENT_NO
    }
    fn bound(&self, seg: usize, doc: u32) -> u64 {
        self.prior(seg, doc) * self.file_max() * rank::IDENT_NO
    }
    fn exact(&mut self, seg: usize, doc: u32) -> u64 {
        let files = if self.rules.files {
            let file = self.file_of(seg, doc);
            rank::file_boost(self.rules, self.matching(seg, file))
        } else {
            rank::FILE_ONE
        };
        let ident = if self.is_spelled(seg, doc) { rank::IDENT_YES } else { rank::IDENT_NO };
        self.prior(seg, doc) * files * ident
    }
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
    fn files(&self, snap: &Snapshot) -> Result<Vec<Option<Arc<SegFile>>>> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::with_capacity(snap.manifest.segments.len());
        for (entry, view) in snap.manifest.segments.iter().zip(&snap.segments) {
            if !open.contains_key(&entry.name) {
                let p = terms_path(&snap.dir.join(&entry.name));
                let t = match SegFile::open(&p, &view.seg) {
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

    /// The top `k` definitions for a question, the ranking rules applied
    /// inside the search (exact for any k). `exhaustive` scores every
    /// posting and checks every name (the oracle); otherwise block-max WAND stops
    /// early and spelled names come from a key lookup. None when the index
    /// has no term files or the query no content word: Stage-A answers.
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
        let files: Vec<Arc<SegFile>> = files.into_iter().flatten().collect();
        let mut an = Analyzer::default();
        let q = analyze_query(&mut an, query);
        // A shard of a set scores with the set's statistics (issue 14).
        let global = global::lookup(&snap.dir);
        let ndocs: u64 =
            global.as_ref().map_or_else(|| files.iter().map(|t| t.terms.ndocs() as u64).sum(), |g| g.ndocs);
        // Each term's postings in each segment, looked up once: they give the
        // document frequency, the scan's lists and the rules' counts.
        let found: Vec<Vec<Option<store::Postings<'_>>>> =
            files.iter().map(|f| q.terms.iter().map(|t| f.terms.postings(t)).collect()).collect();
        let mut weighted = Vec::new();
        let mut kept = Vec::new();
        for (ti, term) in q.terms.iter().enumerate() {
            let df: u64 = global.as_ref().map_or_else(
                || found.iter().filter_map(|lists| lists[ti].as_ref()).map(|p| p.len() as u64).sum(),
                |g| g.df(term),
            );
            if df == 0 {
                continue;
            }
            weighted.push(WeightedTerm { term: term.clone(), weight: term_weight(ndocs, df) });
            kept.push(ti);
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
                // Every file of the segment live (no file changed since it
                // was written): no document's row is read to ask.
                if v.live.count() == v.seg.nfiles() as usize {
                    return Box::new(|_| true);
                }
                let t = t.clone();
                Box::new(move |doc| v.live.contains(t.terms.file_of(doc)))
            })
            .collect();
        let segs: Vec<SegTerms<'_>> = files
            .iter()
            .zip(&lives)
            .zip(&found)
            .map(|((t, l), lists)| SegTerms {
                terms: &t.terms,
                live: l.as_ref(),
                lists: kept.iter().map(|&ti| lists[ti]).collect(),
            })
            .collect();
        let qset: HashSet<&str> = q.terms.iter().map(String::as_str).collect();
        let total: u64 = weighted.iter().map(|w| w.weight).sum();
        let mut boost = RuleBoost {
            rules,
            files: &files,
            postings: segs
                .iter()
                .map(|s| s.lists.iter().zip(&weighted).filter_map(|(p, w)| Some(((*p)?, w.weight))).collect())
                .collect(),
            cover: (total as f64 * rank::FILE_COVER).ceil() as u64,
            spelled: hashbrown::HashSet::new(),
            oracle: None,
            per_file: hashbrown::HashMap::new(),
            hints: Vec::new(),
            last_file: vec![0; files.len()],
            last_count: None,
            sums: Vec::new(),
        };
        boost.hints = boost.postings.iter().map(|l| vec![0; l.len()]).collect();
        let mut stats = ScoreStats::default();
        let top = if exhaustive {
            boost.oracle = Some(OracleSpelling { an: Analyzer::default(), terms: qset, snap });
            score::top_k_exhaustive(&segs, &weighted, k, &mut boost)
        } else {
            let mut direct = Vec::new();
            if rules.ident {
                let mut sorted: Vec<&str> = qset.iter().copied().collect();
                sorted.sort_unstable();
                for (si, f) in files.iter().enumerate().filter(|(_, f)| f.terms.has_spell_keys()) {
                    let ids = rank::SpellKeys::new(&sorted).ids(f.terms.dict());
                    for d in f.terms.docs_of_terms(&ids) {
                        let row = f.terms.row(d);
                        let (name, container) = f.terms.names(&row);
                        let path = snap.segments[si].seg.path(row.file);
                        if rank::spells(&mut an, &qset, path, name, container) {
                            direct.push((si as u32, d));
                        }
                    }
                }
            }
            boost.spelled = direct.iter().copied().collect();
            score::top_k(&segs, &weighted, k, &mut boost, &direct, &mut stats)
        };
        out.scored = stats.scored;
        out.postings = stats.postings;

        let mut hits = Vec::with_capacity(top.len());
        for s in &top {
            let (si, doc) = (s.seg.0 as usize, s.doc.0);
            let t = &files[si].terms;
            let row = t.row(doc);
            let seg = &snap.segments[si].seg;
            let mask =
                boost.postings[si].iter().filter_map(|(p, _)| p.find(doc).map(|i| p.mask(i))).fold(0, |a, m| a | m);
            let mut why: Vec<&'static str> = vec!["bm25f"];
            why.extend((0..NFIELDS).filter(|f| mask & (1 << f) != 0).map(|f| FIELD_NAMES[f]));
            if boost.is_spelled(si, doc) {
                why.push("spelled");
            }
            let score = s.score as f64 / (WEIGHT_SCALE * rank::SCALE as f64);
            let content = seg.content(row.file);
            let best = if hits.len() < BEST_LINE_HITS { best_line(&mut an, &weighted, content, &row) } else { None };
            hits.push(render(content, seg.path(row.file), &row, best, score, why));
        }
        Ok(Some((hits, out)))
    }
}

/// The most bytes of a definition [`best_line`] reads (a long struct or
/// table is cut short: the span is a pointer, not a score).
const BEST_LINE_SCAN: usize = 4 << 10;

/// How many of the first hits get their best-matching line (the ones a
/// reader looks at): each costs a tokenization of its definition, which
/// for all 50 of a kernel question's hits was a third of the search.
pub const BEST_LINE_HITS: usize = 10;

/// The end of the line inside the definition `row` that holds the most of
/// the query's weight (each term counted once per line; the first such line
/// on a tie), or None when no line past the header line holds any.
pub fn best_line(an: &mut Analyzer, query: &[WeightedTerm], content: &[u8], row: &store::DocRow) -> Option<usize> {
    let header = (row.start as usize).min(content.len());
    let end = (row.def_end as usize).clamp(header, content.len()).min(header + BEST_LINE_SCAN);
    // A stem starts with its word's first letter: only words starting like
    // a query term are stemmed.
    let mut firsts = [false; 256];
    for q in query {
        if let Some(&b) = q.term.as_bytes().first() {
            firsts[b as usize] = true;
        }
    }
    let header_end = memchr::memchr(b'\n', &content[header..end]).map_or(end, |i| header + i);
    let mut best: Option<(u64, usize)> = None;
    let mut at = header_end;
    let mut seen: Vec<bool> = vec![false; query.len()];
    while at < end {
        let line_start = at + 1;
        let line_end = memchr::memchr(b'\n', &content[line_start.min(end)..end]).map_or(end, |i| line_start + i);
        seen.iter_mut().for_each(|x| *x = false);
        let mut weight = 0u64;
        tokenize::runs(&content[line_start.min(end)..line_end], |run| {
            tokenize::subtokens(run, |tok| {
                if !firsts[tok.as_bytes()[0] as usize] {
                    return;
                }
                if let Some(t) = an.term(tok) {
                    if let Some(i) = query.iter().position(|q| q.term == t) {
                        if !seen[i] {
                            seen[i] = true;
                            weight += query[i].weight;
                        }
                    }
                }
            })
        });
        if weight > 0 && best.is_none_or(|(w, _)| weight > w) {
            best = Some((weight, line_end));
        }
        at = line_end;
    }
    // The header line itself may hold as much: then the name is the span.
    let mut head = 0u64;
    seen.iter_mut().for_each(|x| *x = false);
    tokenize::runs(&content[memchr::memrchr(b'\n', &content[..header]).map_or(0, |i| i + 1)..header_end], |run| {
        tokenize::subtokens(run, |tok| {
            if let Some(i) = an.term(tok).and_then(|t| query.iter().position(|q| q.term == t)) {
                if !seen[i] {
                    seen[i] = true;
                    head += query[i].weight;
                }
            }
        })
    });
    best.filter(|&(w, _)| w > head).map(|(_, e)| e)
}

/// A hit at the definition's name on its header line (a window's first
/// line). Its span runs from the name to the end of `best`, the line inside
/// the definition that matches the question best (the name alone when none
/// matches better than the header line).
fn render(
    content: &[u8],
    path: &str,
    row: &store::DocRow,
    best: Option<usize>,
    score: f64,
    why: Vec<&'static str>,
) -> Hit {
    let start = (row.start as usize).min(content.len());
    let mut end = (row.end as usize).clamp(start, content.len());
    if let Some(b) = best {
        // Trailing blanks (and a CR) are not part of the line's text.
        let trimmed =
            content[..b.min(content.len())].iter().rposition(|c| !c.is_ascii_whitespace()).map_or(0, |i| i + 1);
        end = end.max(trimmed);
    }
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

/// How many Stage-A hits a union route asks for first, when the definition
/// index gave `questions` hits: with k of those, [`interleave`] takes about
/// one in [`UNION_EVERY`] of Stage-A's, so a short Stage-A search usually
/// serves (it stops sooner); else all k.
pub fn union_lexical_k(k: usize, questions: usize) -> usize {
    if questions >= k {
        (k / UNION_EVERY + 2).min(k)
    } else {
        k
    }
}

/// A union route's answer: the definition index's hits with one of
/// Stage-A's after every [`UNION_EVERY`], then the rest of Stage-A's; the
/// first occurrence of a (path, line) is kept. The flag says whether it
/// wanted more of Stage-A's hits than `b` held: only then could a longer
/// Stage-A list change the answer.
pub fn interleave(a: Vec<Hit>, b: Vec<Hit>, k: usize) -> (Vec<Hit>, bool) {
    let mut seen: HashSet<(String, u32)> = HashSet::new();
    let mut out = Vec::with_capacity(k);
    let (mut a, mut b) = (a.into_iter(), b.into_iter());
    let mut wanted_more = false;
    let mut round = 0;
    loop {
        round += 1;
        let x = a.next();
        let y = if round % UNION_EVERY == 0 && out.len() < k {
            let y = b.next();
            wanted_more |= y.is_none();
            y
        } else {
            None
        };
        if x.is_none() && y.is_none() {
            for h in b.by_ref() {
                if out.len() >= k {
                    break;
                }
                if seen.insert((h.path.clone(), h.line)) {
                    out.push(h);
                }
            }
            wanted_more |= out.len() < k;
            break;
        }
        for h in [x, y].into_iter().flatten() {
            if out.len() < k && seen.insert((h.path.clone(), h.line)) {
                out.push(h);
            }
        }
    }
    (out, wanted_more)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(path: &str, line: u32) -> Hit {
        Hit {
            path: path.into(),
            line,
            column: 0,
            byte_start: 0,
            byte_end: 0,
            text: String::new(),
            score: 0.0,
            why: vec![],
        }
    }

    /// A document's file from the per-file starts (the rules' path) is its
    /// row's file (the oracle), with files that have no documents between.
    #[test]
    fn file_starts_give_each_document_its_rows_file() {
        let dir = tempfile::tempdir().unwrap();
        let files = [0u32, 0, 2, 2, 2, 3, 7, 7, 9];
        let docs: Vec<(u32, docs::Doc)> = files
            .iter()
            .map(|&f| (f, docs::Doc { terms: vec![("t".to_string(), [1, 0, 0, 0, 0])], ..docs::Doc::default() }))
            .collect();
        let p = dir.path().join("f.terms");
        store::write(&p, &docs).unwrap();
        let t = TermFile::open(&p).unwrap();
        let starts = file_starts(&t, 10);
        for d in 0..t.ndocs() {
            assert_eq!(file_in(&starts, d), Some(t.file_of(d)), "doc {d}");
            // Galloping on from any file, before or after the answer's.
            for from in 0..starts.len() + 1 {
                assert_eq!(file_in_from(&starts, from, d), Some(t.file_of(d)), "doc {d} from file {from}");
            }
        }
        assert_eq!(file_in(&starts, t.ndocs()), None);
        assert_eq!(file_in_from(&starts, 3, t.ndocs()), None);
    }

    #[test]
    fn a_short_lexical_list_gives_the_same_union_unless_it_asks_for_more() {
        let mut seed = 11u64;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let mut shortcuts = 0;
        for _ in 0..500 {
            let k = [1, 5, 10, 50][next(4) as usize];
            let a: Vec<Hit> = (0..next(70)).map(|_| hit("a", next(40) as u32)).collect();
            let b: Vec<Hit> = (0..next(70)).map(|_| hit(["a", "b"][next(2) as usize], next(40) as u32)).collect();
            let full = interleave(a.clone(), b.clone(), k).0;
            let first = union_lexical_k(k, a.len());
            let (short, more) = interleave(a, b.iter().take(first).cloned().collect(), k);
            if !more {
                assert_eq!(short, full);
                shortcuts += usize::from(first < k && b.len() > first);
            }
        }
        assert!(shortcuts > 20, "the short list often serves");
    }
}
