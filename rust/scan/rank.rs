//! Ranked search: candidate chunks from the n-gram index, verified with
//! memchr's SIMD memmem over the ASCII-case-folded text, scored per line, and
//! cut off as soon as the top k is certain.
//!
//! Score of a line = its best query term, weighted by BM25's idf and by how
//! cleanly it sits in the text (whole word > identifier sub-token > inside a
//! word), plus a quarter of the weight of its other terms; a large bonus when
//! the whole query appears (more when its case matches exactly); and
//! file-level signals: the idf of every query term the file holds (file
//! relevance, the match-density signal; counted per chunk, the unit the
//! index narrows to), terms in the file name, and the file's static rank
//! prior. Candidates are visited by an upper bound of what
//! they could score; the search stops once the k-th best hit beats the next
//! file's bound (WAND-style early termination) or the budget is spent. Lines
//! are scored by their best term rather than the sum of all, so that bounds
//! stay tight and the cut-off comes early.
//!
//! `Scorer` holds everything both scanners share, so that the reference
//! scanner (no index, no SIMD) scores exactly as this one does.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use memchr::memmem;

use super::{line_bounds, RawHit};
use crate::index::format::Segment;
use crate::index::grams::fold;
use crate::index::postings::FileSet;
use crate::index::{base_name, FileRef, Snapshot};
use crate::query::plan::GramSets;
use crate::query::terms::Terms;
use crate::query::GramQuery;

pub const PHRASE_EXACT: f64 = 1000.0;
pub const PHRASE_FOLDED: f64 = 500.0;
pub const PHRASE_WORD: f64 = 100.0;
pub const WORD_FACTOR: f64 = 1.5;
pub const SUBTOKEN_FACTOR: f64 = 1.25;
pub const NAME_WEIGHT: f64 = 0.3;
/// Weight of the idf of every query term the file holds (file relevance).
pub const FILE_TERMS_WEIGHT: f64 = 0.5;
/// Weight of a line's terms beyond its best one.
pub const CO_TERM_WEIGHT: f64 = 0.1;
pub const PRIOR_WEIGHT: f64 = 2.0;

/// Occurrence quality: inside a word, at identifier sub-token edges, or a
/// whole word.
pub const INSIDE: u8 = 0;
pub const SUBTOKEN: u8 = 1;
pub const WORD: u8 = 2;

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// How cleanly the occurrence `content[s..e]` sits among its neighbours.
pub fn boundary_class(content: &[u8], s: usize, e: usize) -> u8 {
    let before = s.checked_sub(1).map(|i| content[i]);
    let after = content.get(e).copied();
    if before.is_none_or(|b| !is_word_byte(b)) && after.is_none_or(|b| !is_word_byte(b)) {
        return WORD;
    }
    let (first, last) = (content[s], content[e - 1]);
    let start_edge = before.is_none_or(|b| {
        !is_word_byte(b)
            || b == b'_'
            || (!b.is_ascii_uppercase() && b.is_ascii_alphanumeric() && first.is_ascii_uppercase())
    });
    let end_edge = after.is_none_or(|a| {
        !is_word_byte(a)
            || a == b'_'
            || (a.is_ascii_uppercase() && !last.is_ascii_uppercase() && last.is_ascii_alphanumeric())
    });
    if start_edge && end_edge {
        SUBTOKEN
    } else {
        INSIDE
    }
}

/// What one line holds of the query.
#[derive(Clone, Debug)]
pub struct LineAcc {
    pub start: usize,
    pub end: usize,
    pub present: u32,
    pub class: [u8; crate::query::terms::MAX_TERMS],
    pub pos: [usize; crate::query::terms::MAX_TERMS],
    pub phrase_folded: Option<usize>,
    pub phrase_exact: Option<usize>,
    pub phrase_word: bool,
}

impl LineAcc {
    pub fn new(start: usize, end: usize) -> LineAcc {
        LineAcc {
            start,
            end,
            present: 0,
            class: [0; crate::query::terms::MAX_TERMS],
            pos: [usize::MAX; crate::query::terms::MAX_TERMS],
            phrase_folded: None,
            phrase_exact: None,
            phrase_word: false,
        }
    }
}

/// The query's patterns and weights, shared by both scanners.
pub struct Scorer {
    pub terms: Vec<Vec<u8>>,
    /// `terms`, ASCII case folded, for matching file names.
    terms_folded: Vec<Vec<u8>>,
    pub phrase: Vec<u8>,
    /// Folded patterns to find: the terms, then the phrase unless it is one
    /// of them. Each maps to a term index and/or the phrase.
    pub patterns: Vec<Vec<u8>>,
    pub pattern_term: Vec<Option<usize>>,
    pub pattern_phrase: Vec<bool>,
    pub idf: Vec<f64>,
    pub term_plans: Vec<GramQuery>,
    pub phrase_plan: GramQuery,
}

impl Scorer {
    /// The scorer of a split query; its idf stays 0 until
    /// [`Scorer::set_document_frequencies`].
    pub fn new(t: &Terms) -> Scorer {
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut pattern_term = Vec::new();
        let mut pattern_phrase = Vec::new();
        for (i, spellings) in t.variants.iter().enumerate() {
            for v in spellings {
                if !patterns.contains(v) {
                    patterns.push(v.clone());
                    pattern_term.push(Some(i));
                    pattern_phrase.push(false);
                }
            }
        }
        let phrase_folded: Vec<u8> = t.phrase.iter().map(|&b| fold(b)).collect();
        let phrase_usable = !phrase_folded.is_empty() && !phrase_folded.contains(&b'\n');
        if phrase_usable {
            match patterns.iter().position(|p| *p == phrase_folded) {
                Some(i) => pattern_phrase[i] = true,
                None => {
                    patterns.push(phrase_folded.clone());
                    pattern_term.push(None);
                    pattern_phrase.push(true);
                }
            }
        }
        let term_plans = t
            .variants
            .iter()
            .map(|spellings| GramQuery::any(spellings.iter().map(|v| GramQuery::for_string(v)).collect()))
            .collect();
        let phrase_plan = if phrase_usable { GramQuery::for_string(&phrase_folded) } else { GramQuery::Nothing };
        Scorer {
            terms: t.terms.clone(),
            terms_folded: t.terms.iter().map(|term| term.iter().map(|&b| fold(b)).collect()).collect(),
            phrase: t.phrase.clone(),
            patterns,
            pattern_term,
            pattern_phrase,
            idf: vec![0.0; t.terms.len()],
            term_plans,
            phrase_plan,
        }
    }

    /// `df` gives, for each term's plan, how many live chunks satisfy it
    /// (the unit the index keeps statistics for), and `n` is the number of
    /// live chunks.
    pub fn set_document_frequencies(&mut self, df: &[u64], n: u64) {
        let n = n as f64;
        self.idf = df.iter().map(|&d| (1.0 + (n - d as f64 + 0.5) / (d as f64 + 0.5)).ln()).collect();
    }

    /// Whether a file that holds these terms (and the phrase, or not)
    /// qualifies for ranking: it holds the whole query, or some term.
    pub fn eligible(&self, terms_held: u32, phrase_held: bool) -> bool {
        phrase_held || terms_held != 0
    }

    /// Records an occurrence of pattern `p` at `content[s..e]` in `acc`.
    pub fn record(&self, acc: &mut LineAcc, content: &[u8], p: usize, s: usize, e: usize) {
        let class = boundary_class(content, s, e);
        if let Some(t) = self.pattern_term[p] {
            let bit = 1u32 << t;
            if acc.present & bit == 0 || class > acc.class[t] || (class == acc.class[t] && s < acc.pos[t]) {
                acc.present |= bit;
                acc.class[t] = class;
                acc.pos[t] = s;
            }
        }
        if self.pattern_phrase[p] {
            acc.phrase_folded = Some(acc.phrase_folded.map_or(s, |x| x.min(s)));
            if &content[s..e] == self.phrase.as_slice() {
                acc.phrase_exact = Some(acc.phrase_exact.map_or(s, |x| x.min(s)));
                // Only the exact spelling earns the whole-word bonus: case-folded
                // lines then all score alike, so their bound is tight.
                acc.phrase_word |= class == WORD;
            }
        }
    }

    /// The file-name part of the score: the idf of query terms in the file's
    /// base name (0 when it holds none).
    ///
    /// For one file (the baseline scanner); a ranked search finds the named
    /// files among all its candidates with [`Scorer::named_files`] instead.
    pub fn name_part(&self, path: &str) -> f64 {
        let base = base_name(path).as_bytes();
        let mut in_name = 0u32;
        for (t, term) in self.terms_folded.iter().enumerate() {
            if contains_folded(base, term) {
                in_name |= 1 << t;
            }
        }
        self.name_part_of(in_name)
    }

    /// The name part for a file whose base name holds the terms `in_name`.
    pub fn name_part_of(&self, in_name: u32) -> f64 {
        let mut name = 0.0;
        for t in 0..self.terms.len() {
            if in_name & (1 << t) != 0 {
                name += NAME_WEIGHT * self.idf[t];
            }
        }
        name
    }

    /// The files of `seg` whose base names hold query terms, in file order,
    /// each with the terms it holds: what [`Scorer::name_part`] would find,
    /// one pass per term instead of one per file. `None` when a term holds
    /// the separator byte, which the shared name text cannot answer for.
    pub fn named_files(&self, seg: &Segment) -> Option<Vec<(u32, u32)>> {
        if self.terms_folded.iter().any(|t| t.contains(&b'/')) {
            return None;
        }
        let names = seg.basenames();
        let mut found: Vec<(u32, u32)> = Vec::new();
        for (t, term) in self.terms_folded.iter().enumerate() {
            found.extend(memmem::find_iter(&names.text, term).map(|at| (names.file_at(at), 1u32 << t)));
        }
        found.sort_unstable();
        found.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 |= later.1;
            }
            same
        });
        Some(found)
    }

    /// The chunk- and file-level part of every line's score: the name part,
    /// the idf of the query terms the chunk holds, the static prior. Bounds
    /// and scores both go through here, so they round alike.
    pub fn file_bonus(&self, name: f64, terms_held: u32, prior: f32) -> f64 {
        self.bonus_with(name, self.held_idf(terms_held), prior)
    }

    /// The summed idf of the terms in `terms_held`, in term order.
    fn held_idf(&self, terms_held: u32) -> f64 {
        let mut held = 0.0;
        for t in 0..self.terms.len() {
            if terms_held & (1 << t) != 0 {
                held += self.idf[t];
            }
        }
        held
    }

    fn bonus_with(&self, name: f64, held_idf: f64, prior: f32) -> f64 {
        name + FILE_TERMS_WEIGHT * held_idf + PRIOR_WEIGHT * f64::from(prior)
    }

    /// Best term plus a share of the rest, over the weights `w`.
    fn combine(w: impl Iterator<Item = f64>) -> f64 {
        let (mut max, mut sum) = (0.0f64, 0.0f64);
        for x in w {
            max = max.max(x);
            sum += x;
        }
        max + CO_TERM_WEIGHT * (sum - max)
    }

    /// The largest score any line of a chunk could reach, given which terms
    /// it may hold, whether it may hold the phrase, and its file's name part.
    /// `phrase` is what the chunk may hold of the whole query: 0 nothing,
    /// 1 a case-folded occurrence, 2 an exact one.
    pub fn bound(&self, name: f64, may_hold: u32, phrase: u8, prior: f32) -> f64 {
        self.bound_with(self.term_bound(may_hold), name, may_hold, phrase, prior)
    }

    /// The part of [`Scorer::bound`] that depends on `may_hold` alone, which
    /// most candidate chunks of a query share: a search computes it once per
    /// distinct set of terms rather than once per chunk.
    pub fn term_bound(&self, may_hold: u32) -> (f64, f64) {
        let terms = Self::combine(
            (0..self.terms.len()).filter(|t| may_hold & (1 << t) != 0).map(|t| self.idf[t] * WORD_FACTOR),
        );
        (terms, self.held_idf(may_hold))
    }

    /// [`Scorer::bound`] from a [`Scorer::term_bound`] of the same `may_hold`.
    pub fn bound_with(&self, term_bound: (f64, f64), name: f64, may_hold: u32, phrase: u8, prior: f32) -> f64 {
        debug_assert_eq!(term_bound.1.to_bits(), self.held_idf(may_hold).to_bits());
        let mut s = term_bound.0;
        // Added in the same order as `score_line` adds them, so that a line
        // that reaches the bound equals it to the last bit.
        if phrase == 2 {
            s += PHRASE_EXACT;
            s += PHRASE_WORD;
        } else if phrase == 1 {
            s += PHRASE_FOLDED;
        }
        s + self.bonus_with(name, term_bound.1, prior)
    }

    /// Scores one line. Returns None for a line that holds nothing.
    pub fn score_line(
        &self,
        acc: &LineAcc,
        file_bonus: f64,
        named: bool,
    ) -> Option<(f64, usize, usize, Vec<&'static str>)> {
        if acc.present == 0 && acc.phrase_folded.is_none() {
            return None;
        }
        let weight = |t: usize| {
            let factor = match acc.class[t] {
                WORD => WORD_FACTOR,
                SUBTOKEN => SUBTOKEN_FACTOR,
                _ => 1.0,
            };
            self.idf[t] * factor
        };
        let mut best: Option<(f64, usize)> = None;
        let mut s = if acc.phrase_folded.is_some() {
            // The line holds the whole query, so every term: score it as if
            // each were a whole word. This keeps phrase lines level with the
            // bound, which is what lets early termination stop after k.
            Self::combine((0..self.terms.len()).map(|t| self.idf[t] * WORD_FACTOR))
        } else {
            let present = (0..self.terms.len()).filter(|t| acc.present & (1 << t) != 0);
            for t in present.clone() {
                let w = weight(t);
                if best.is_none_or(|(bw, _)| w > bw) {
                    best = Some((w, t));
                }
            }
            Self::combine(present.map(weight))
        };
        let mut why = Vec::with_capacity(3);
        let (start, len, class);
        if let Some(p) = acc.phrase_exact.or(acc.phrase_folded) {
            s += if acc.phrase_exact.is_some() { PHRASE_EXACT } else { PHRASE_FOLDED };
            if acc.phrase_word {
                s += PHRASE_WORD;
            }
            why.push(if acc.phrase_exact.is_some() { "exact" } else { "phrase" });
            start = p;
            len = self.phrase.len();
            class = if acc.phrase_word { WORD } else { INSIDE };
        } else {
            let t = best.map(|(_, t)| t).unwrap_or(0);
            why.push("terms");
            start = acc.pos[t];
            len = self.terms[t].len();
            class = acc.class[t];
        }
        match class {
            WORD => why.push("word"),
            SUBTOKEN => why.push("subtoken"),
            _ => {}
        }
        if named {
            why.push("path");
        }
        Some((s + file_bonus, start, start + len, why))
    }
}

/// Whether `hay` holds `needle` (already folded) ignoring ASCII case.
fn contains_folded(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    hay.len() >= needle.len()
        && (0..=hay.len() - needle.len()).any(|i| {
            fold(hay[i]) == first && hay[i + 1..i + needle.len()].iter().zip(rest).all(|(&h, &n)| fold(h) == n)
        })
}

/// A chunk waiting to be verified, ordered by the bound of what it could
/// score (then by path and offset, so that equal bounds come in the final
/// tie order).
#[derive(Clone, Copy)]
struct Candidate<'a> {
    bound: f64,
    path: &'a str,
    f: FileRef,
    start: usize,
    end: usize,
    prior: f32,
    /// The bound still counts an exact-case phrase the file may not hold.
    exact_possible: bool,
    /// The terms the chunk's grams allow, and whether they allow the phrase:
    /// patterns outside these cannot occur, so verification skips them.
    may: u32,
    phrase_possible: bool,
    name: f64,
    /// The chunks of the same file and group that follow this one, in id
    /// (so offset) order: they share its bound and path, so they pop right
    /// after it, and join the queue one at a time as their file's entry
    /// pops ([`materialize`]).
    rest: &'a [(u32, u32)],
}

impl PartialEq for Candidate<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Candidate<'_> {}
impl PartialOrd for Candidate<'_> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Candidate<'_> {
    fn cmp(&self, o: &Self) -> Ordering {
        self.bound
            .total_cmp(&o.bound)
            .then_with(|| o.path.cmp(self.path))
            .then_with(|| o.start.cmp(&self.start))
            .then_with(|| o.f.cmp(&self.f))
    }
}

/// Ranked-search bookkeeping a caller may want to count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SearchOutcome {
    pub candidates: u64,
    pub visited: u64,
    /// Stopped early because the top k could no longer change.
    pub early_terminated: bool,
    /// Stopped early because the budget ran out (results may be incomplete).
    pub budget_exhausted: bool,
    /// Stopped at the cap on chunks verified ([`search_capped`]): the top k
    /// of the chunks verified, which may differ from the uncapped top k.
    pub capped: bool,
}

/// A hit in the top-k heap, ordered so that "greater" means better.
pub struct Ranked<'a> {
    pub score: f64,
    pub path: &'a str,
    pub hit: RawHit,
}

impl PartialEq for Ranked<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Ranked<'_> {}
impl PartialOrd for Ranked<'_> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ranked<'_> {
    fn cmp(&self, o: &Self) -> Ordering {
        self.score
            .total_cmp(&o.score)
            .then_with(|| o.path.cmp(self.path))
            .then_with(|| o.hit.byte_start.cmp(&self.hit.byte_start))
    }
}

/// A bounded best-k collection.
pub struct TopK<'a> {
    k: usize,
    heap: BinaryHeap<std::cmp::Reverse<Ranked<'a>>>,
}

impl<'a> TopK<'a> {
    pub fn new(k: usize) -> Self {
        // Never allocate from `k` itself: it is the caller's number.
        TopK { k, heap: BinaryHeap::with_capacity(k.min(1024) + 1) }
    }

    pub fn push(&mut self, r: Ranked<'a>) {
        if self.k == 0 {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(std::cmp::Reverse(r));
        } else if self.heap.peek().is_some_and(|w| r > w.0) {
            self.heap.pop();
            self.heap.push(std::cmp::Reverse(r));
        }
    }

    /// Whether no hit from the chunk of `path` starting at byte `start`
    /// and scoring at most `bound` could get in any more: the collection is
    /// full and its worst hit beats it (ties go to the smaller path, then
    /// the earlier byte, as in the final order).
    pub fn closed_to(&self, bound: f64, path: &str, start: usize) -> bool {
        self.k == 0
            || (self.heap.len() == self.k
                && self.heap.peek().is_some_and(|w| {
                    let w = &w.0;
                    w.score > bound || (w.score == bound && (w.path, w.hit.byte_start) < (path, start))
                }))
    }

    pub fn into_sorted(self) -> Vec<RawHit> {
        let mut v: Vec<Ranked> = self.heap.into_iter().map(|r| r.0).collect();
        v.sort_by(|a, b| b.cmp(a));
        v.into_iter().map(|r| r.hit).collect()
    }
}

/// Turns one chunk's line accumulators into scored hits; `name` is its
/// file's name part ([`Scorer::name_part`]), which each caller has at hand.
pub fn score_chunk<'a>(
    scorer: &Scorer,
    snap: &'a Snapshot,
    f: FileRef,
    accs: &[LineAcc],
    prior: f32,
    name: f64,
    top: &mut TopK<'a>,
) {
    let path = snap.path(f);
    let present = accs.iter().fold(0u32, |p, a| p | a.present);
    let named = name > 0.0;
    let bonus = scorer.file_bonus(name, present, prior);
    for acc in accs {
        if let Some((score, s, e, why)) = scorer.score_line(acc, bonus, named) {
            let hit = RawHit {
                file: f,
                line: 0,
                line_start: acc.start,
                line_end: acc.end,
                byte_start: s,
                byte_end: e,
                score,
                why,
            };
            top.push(Ranked { score, path, hit });
        }
    }
}

/// Every start of `finder`'s needle in `haystack`, overlapping ones
/// included (`memmem::find_iter` steps past each match, and would miss the
/// second "baz baz" in "baz baz baz"); the reference scanner slides a window
/// one byte at a time and sees them all.
fn overlapping<'a>(finder: &'a memmem::Finder<'_>, haystack: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    let mut from = 0;
    std::iter::from_fn(move || {
        let at = from + finder.find(haystack.get(from..)?)?;
        from = at + 1;
        Some(at)
    })
}

/// Candidate chunks that share what their grams allow.
struct Group {
    may: u32,
    /// 0: no phrase, 1: the phrase case-folded, 2: possibly in its exact case.
    level: u8,
    /// At least the bound of every member chunk.
    bound: f64,
    /// (segment, chunk id), in segment then id order.
    members: Vec<(u32, u32)>,
}

/// Queues a group's chunks: one entry per file, its first chunk with its own
/// bound and the file's other chunks of the group as its `rest`. A file's
/// chunks of one group share the bound (it depends on the terms, the
/// phrase level, the file's name part and prior) and the path, and their
/// offsets rise with their ids, so the queue pops them in the order it
/// would if each were queued alone (a k-way merge of the files' runs):
/// a group of a short identifier holds 50-80 k chunks of which a few are
/// verified. A run whose offsets do not rise is queued chunk by chunk.
fn materialize<'a>(
    snap: &'a Snapshot,
    scorer: &Scorer,
    named: &[Option<Vec<(u32, u32)>>],
    group: &'a Group,
    cands: &mut Vec<Candidate<'a>>,
) {
    let term_bound = scorer.term_bound(group.may);
    let members = group.members.as_slice();
    let mut i = 0;
    while i < members.len() {
        let (si, id) = members[i];
        let seg = &snap.segments[si as usize].seg;
        let chunk = seg.chunk(id);
        let meta = seg.file(chunk.file);
        // The file's chunks are the ids first_chunk..first_chunk + nchunks.
        let end_id = meta.first_chunk + meta.nchunks;
        let mut j = i + 1;
        let mut rising = true;
        let mut last = chunk.start;
        while j < members.len() && members[j].0 == si && members[j].1 < end_id {
            let next = seg.chunk(members[j].1).start;
            rising &= next > last;
            last = next;
            j += 1;
        }
        let f = FileRef { seg: si, id: chunk.file };
        let path = seg.path(chunk.file);
        let name = match &named[si as usize] {
            Some(list) => {
                let terms = list.binary_search_by_key(&chunk.file, |&(file, _)| file).map_or(0, |i| list[i].1);
                scorer.name_part_of(terms)
            }
            None => scorer.name_part(path),
        };
        debug_assert_eq!(name.to_bits(), scorer.name_part(path).to_bits(), "{path}");
        let prior = meta.prior;
        let bound = scorer.bound_with(term_bound, name, group.may, group.level, prior);
        debug_assert!(bound <= group.bound, "{path}: {bound} > group bound {}", group.bound);
        let entry = |at: usize, rest: &'a [(u32, u32)]| {
            let c = seg.chunk(members[at].1);
            Candidate {
                bound,
                path,
                f,
                start: c.start as usize,
                end: (c.start + c.len) as usize,
                prior,
                exact_possible: group.level == 2,
                may: group.may,
                phrase_possible: group.level >= 1,
                name,
                rest,
            }
        };
        if rising && !per_chunk() {
            cands.push(entry(i, &members[i + 1..j]));
        } else {
            cands.extend((i..j).map(|at| entry(at, &[])));
        }
        i = j;
    }
}

#[cfg(test)]
thread_local! {
    /// Tests: queue every chunk alone, as before the files' runs (the
    /// oracle of `rank_props::a_file_run_pops_as_its_chunks_would`).
    pub static PER_CHUNK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn per_chunk() -> bool {
    #[cfg(test)]
    return PER_CHUNK.with(|c| c.get());
    #[cfg(not(test))]
    false
}

/// The entry for the chunk after `c` in its file's run, if any.
fn next_of<'a>(snap: &Snapshot, c: &Candidate<'a>) -> Option<Candidate<'a>> {
    let (&(si, id), rest) = c.rest.split_first()?;
    let chunk = snap.segments[si as usize].seg.chunk(id);
    let (start, end) = (chunk.start as usize, (chunk.start + chunk.len) as usize);
    Some(Candidate { start, end, rest, ..*c })
}

/// The native ranked search.
pub fn search(
    snap: &Snapshot,
    scorer: &mut Scorer,
    k: usize,
    budget: Option<Duration>,
    started: Instant,
) -> (Vec<RawHit>, SearchOutcome) {
    search_capped(snap, scorer, k, budget, started, None)
}

/// [`search`] that verifies at most `max_visits` chunks (in the order of
/// their bounds, as always): a deterministic work cap, unlike `budget`.
/// Its answer is the exact top k of the chunks it verified.
pub fn search_capped(
    snap: &Snapshot,
    scorer: &mut Scorer,
    k: usize,
    budget: Option<Duration>,
    started: Instant,
    max_visits: Option<u64>,
) -> (Vec<RawHit>, SearchOutcome) {
    let nterms = scorer.terms.len();
    // Per segment: each term's candidate set, and the phrase's.
    let mut term_sets: Vec<Vec<Option<FileSet>>> = Vec::with_capacity(snap.segments.len());
    let mut phrase_sets: Vec<Option<FileSet>> = Vec::with_capacity(snap.segments.len());
    // Chunks that may hold the phrase in its exact case (its grams with capitals).
    let exact_plan = GramQuery::for_exact_case(&scorer.phrase);
    let mut exact_sets: Vec<Option<FileSet>> = Vec::with_capacity(snap.segments.len());
    let mut df = vec![0u64; nterms];
    let n = snap.nchunks() as u64;
    for view in &snap.segments {
        let live = &view.live_chunks;
        let mut cache = GramSets::default();
        let mut sets = Vec::with_capacity(nterms);
        for (t, plan) in scorer.term_plans.iter().enumerate() {
            let set = plan.eval_with(&view.seg, &mut cache).map(|mut s| {
                s.and_with(live);
                s
            });
            df[t] += set.as_ref().map_or(live.count() as u64, |s| s.count() as u64);
            sets.push(set);
        }
        term_sets.push(sets);
        let phrase = scorer.phrase_plan.eval_with(&view.seg, &mut cache).map(|mut s| {
            s.and_with(live);
            s
        });
        // The exact-case set only ever narrows the phrase's (`ew = pw & ..`
        // below): where no chunk may hold the phrase (a whole sentence, the
        // usual case) its grams are not decoded. An empty set stands in for
        // it, which gives the same empty `ew`.
        let exact = match &phrase {
            Some(p) if p.is_empty() => Some(FileSet::empty(view.seg.nchunks())),
            _ => exact_plan.eval_with(&view.seg, &mut cache),
        };
        phrase_sets.push(phrase);
        exact_sets.push(exact);
    }
    // A shard of a set scores with the set's counts (issue 14, `super::global`).
    let (df, n) = super::global::lexical(nterms).unwrap_or((df, n));
    scorer.set_document_frequencies(&df, n);

    let scorer: &Scorer = scorer;

    // Candidates: chunks that may qualify (see `Scorer::eligible`), grouped
    // by what their grams allow: the terms they may hold and how much of the
    // phrase. A group's bound counts the best file name and prior that any
    // chunk could have, so a chunk is only materialized (its file looked up,
    // its own bound computed, pushed on the heap) once its group could still
    // beat the best waiting chunk. Most chunks of a natural-language query
    // hold only common words and never are.
    let mut groups: Vec<Group> = Vec::new();
    // Group of each (level, may) key, plus one (0: none yet): a table, not a
    // hash map, as a question's 100-200 k candidate chunks each look theirs up.
    debug_assert!(nterms <= crate::query::terms::MAX_TERMS);
    let mut group_of: Vec<u32> = vec![0; 3 << nterms];
    let mut named: Vec<Option<Vec<(u32, u32)>>> = Vec::with_capacity(snap.segments.len());
    let (mut name_max, mut prior_max) = (0.0f64, 0.0f32);
    let all_terms = if nterms >= 32 { u32::MAX } else { (1u32 << nterms) - 1 };
    for (si, view) in snap.segments.iter().enumerate() {
        let seg_named = scorer.named_files(&view.seg);
        name_max = match &seg_named {
            Some(list) => list.iter().fold(name_max, |m, &(_, terms)| m.max(scorer.name_part_of(terms))),
            None => name_max.max(scorer.name_part_of(all_terms)),
        };
        named.push(seg_named);
        prior_max = prior_max.max(view.seg.max_prior());
        let mut union = phrase_sets[si].clone().unwrap_or_else(|| view.live_chunks.clone());
        for set in &term_sets[si] {
            union.or_with(set.as_ref().unwrap_or(&view.live_chunks));
        }
        // A word of 64 chunks at a time: each set's word is loaded once and
        // a chunk's bits are gathered without a branch (what `contains` on
        // each set for each chunk gives; an absent set allows everything).
        let word = |set: Option<&FileSet>, wi: usize| set.map_or(u64::MAX, |s| s.words().get(wi).copied().unwrap_or(0));
        let mut tw = [0u64; crate::query::terms::MAX_TERMS];
        for (wi, &u) in union.words().iter().enumerate() {
            if u == 0 {
                continue;
            }
            for (t, set) in term_sets[si].iter().enumerate() {
                tw[t] = word(set.as_ref(), wi);
            }
            // (An unusable phrase plans to `Nothing`, so it is never possible.)
            let pw = word(phrase_sets[si].as_ref(), wi);
            let ew = pw & word(exact_sets[si].as_ref(), wi);
            let mut bits = u;
            while bits != 0 {
                let b = bits.trailing_zeros();
                bits &= bits - 1;
                let mut may = 0u32;
                for (t, w) in tw[..nterms].iter().enumerate() {
                    may |= (((w >> b) & 1) as u32) << t;
                }
                let level = ((pw >> b) & 1) as usize + ((ew >> b) & 1) as usize;
                let slot = &mut group_of[(level << nterms) | may as usize];
                if *slot == 0 {
                    groups.push(Group { may, level: level as u8, bound: 0.0, members: Vec::new() });
                    *slot = groups.len() as u32;
                }
                groups[*slot as usize - 1].members.push((si as u32, wi as u32 * 64 + b));
            }
        }
    }
    for g in &mut groups {
        g.bound = scorer.bound(name_max, g.may, g.level, prior_max);
    }
    groups.sort_by(|a, b| b.bound.total_cmp(&a.bound));
    let mut cands: BinaryHeap<Candidate> = BinaryHeap::new();
    let mut fresh: Vec<Candidate> = Vec::new();
    let mut next_group = 0;
    // Verification: fold each file's ASCII case once, then one SIMD memmem
    // pass per pattern. Every occurrence is needed (terms overlap the
    // phrase and each other, and a pattern itself: "baz baz" twice in
    // "Baz baz baz", the second one exact), which rules out a leftmost
    // automaton, and an overlapping automaton walks byte by byte (both
    // measured slower here).
    let finders: Vec<memmem::Finder> = scorer.patterns.iter().map(memmem::Finder::new).collect();
    let mut folded: Vec<u8> = Vec::new();
    let mut occurrences: Vec<(usize, usize, usize)> = Vec::new();
    let candidates = groups.iter().map(|g| g.members.len() as u64).sum();
    let mut outcome = SearchOutcome { candidates, ..Default::default() };
    let mut top = TopK::new(k);
    let mut accs: Vec<LineAcc> = Vec::new();
    let exact_finder = memmem::Finder::new(&scorer.phrase);
    let mut first = true;
    loop {
        // Everything not yet materialized is bounded by the next group's
        // bound; popping only above it keeps the early-termination test
        // (which assumes nothing better waits elsewhere) sound, ties included.
        while next_group < groups.len() && cands.peek().is_none_or(|c| groups[next_group].bound >= c.bound) {
            // A group's chunks join the queue at once: a heap built from them
            // (or merged by `append`, which rebuilds when that is cheaper)
            // rather than pushed one by one; a group can hold 50-80 k chunks
            // (a short identifier's) of which a few are verified. The order
            // of `Candidate` is total, so the pops are the same.
            materialize(snap, scorer, &named, &groups[next_group], &mut fresh);
            cands.append(&mut BinaryHeap::from(std::mem::take(&mut fresh)));
            next_group += 1;
        }
        let Some(c) = cands.pop() else {
            break;
        };
        // The next chunk of its file's run takes its place in the queue.
        if let Some(next) = next_of(snap, &c) {
            cands.push(next);
        }
        if top.closed_to(c.bound, c.path, c.start) {
            outcome.early_terminated = true;
            break;
        }
        if max_visits.is_some_and(|m| outcome.visited >= m) {
            outcome.capped = true;
            break;
        }
        if !first && budget.is_some_and(|b| started.elapsed() >= b) {
            outcome.budget_exhausted = true;
            break;
        }
        first = false;
        let (f, prior) = (c.f, c.prior);
        let content = snap.content(f);
        let chunk = &content[c.start..c.end];
        if c.exact_possible {
            // The index folds case, so "may hold the phrase" cannot tell an
            // exact-case occurrence from a folded one. One raw memmem pass
            // tells, and a file without the exact spelling goes back into
            // the queue with its lower bound instead of being scanned now.
            if exact_finder.find(chunk).is_none() {
                let bound = scorer.bound(c.name, c.may, 1, c.prior);
                cands.push(Candidate { bound, exact_possible: false, rest: &[], ..c });
                continue;
            }
        }
        outcome.visited += 1;
        accs.clear();
        folded.clear();
        folded.extend(chunk.iter().map(|&b| fold(b)));
        occurrences.clear();
        let (mut terms_held, mut phrase_held) = (0u32, false);
        for (p, finder) in finders.iter().enumerate() {
            let may_occur = scorer.pattern_term[p].is_some_and(|t| c.may & (1 << t) != 0)
                || (c.phrase_possible && scorer.pattern_phrase[p]);
            if !may_occur {
                continue;
            }
            let len = scorer.patterns[p].len();
            let before = occurrences.len();
            occurrences.extend(overlapping(finder, &folded).map(|s| (c.start + s, p, c.start + s + len)));
            if occurrences.len() > before {
                terms_held |= scorer.pattern_term[p].map_or(0, |t| 1 << t);
                phrase_held |= scorer.pattern_phrase[p];
            }
        }
        occurrences.sort_unstable();
        for &(s, p, e) in &occurrences {
            if accs.last().is_none_or(|a| s > a.end) {
                let (ls, le) = line_bounds(content, s);
                accs.push(LineAcc::new(ls, le));
            }
            let acc = accs.last_mut().unwrap();
            scorer.record(acc, content, p, s, e);
        }
        if scorer.eligible(terms_held, phrase_held) {
            score_chunk(scorer, snap, f, &accs, prior, c.name, &mut top);
        }
    }
    (top.into_sorted(), outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_classes() {
        assert_eq!(boundary_class(b"a foo b", 2, 5), WORD);
        assert_eq!(boundary_class(b"readFile", 4, 8), SUBTOKEN);
        assert_eq!(boundary_class(b"read_file", 5, 9), SUBTOKEN);
        assert_eq!(boundary_class(b"readfile", 4, 8), INSIDE);
        assert_eq!(boundary_class(b"foo", 0, 3), WORD);
    }

    /// The verification's occurrences are every window that equals the
    /// needle, as the reference scanner's sliding window finds them.
    #[test]
    fn overlapping_finds_every_window() {
        let cases: [(&[u8], &[u8]); 6] = [
            (b"baz baz baz ", b"baz baz"),
            (b"aaaa", b"aa"),
            (b"abababa", b"aba"),
            (b"abc", b"abcd"),
            (b"xyz", b"y"),
            (b"", b"a"),
        ];
        for (haystack, needle) in cases {
            let naive: Vec<usize> =
                haystack.windows(needle.len()).enumerate().filter(|(_, w)| *w == needle).map(|(i, _)| i).collect();
            let finder = memmem::Finder::new(needle);
            assert_eq!(overlapping(&finder, haystack).collect::<Vec<_>>(), naive, "{needle:?} in {haystack:?}");
        }
    }
}
