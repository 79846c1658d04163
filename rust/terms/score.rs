//! Top-k BM25F over the term files of a snapshot, with MaxScore and
//! block-max early termination, and the exhaustive scorer it is tested against.
//!
//! A document's score is its BM25F score (integer: term weight times stored
//! impact) times an integer multiplier (the ranking rules, [`Boost`]), so
//! the order in which a document's terms are added never changes its score,
//! and the fast path and the oracle agree exactly, ties included (score,
//! then segment, then document id). The multiplier enters the pruning
//! through its bounds, so the top k are exact for any k: no pool re-ranked
//! afterwards. The search is MaxScore: candidates come only from the lists
//! that could lift a document into the top k on their own account (the
//! rarer terms), the others are probed per candidate. Besides each list's
//! bound, each block of 128 postings of a list has its own maximum impact
//! (block-max), so runs of documents that cannot enter the top k are
//! skipped a block at a time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::store::{Frame, Postings, TermFile, BLOCK};

/// A query term with its integer weight (idf and boosts folded in).
#[derive(Clone, Debug)]
pub struct WeightedTerm {
    pub term: String,
    pub weight: u64,
}

/// A scored document: (segment, doc id within its term file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Scored {
    pub score: u64,
    pub seg: Reverse<u32>,
    pub doc: Reverse<u32>,
}

/// One searchable segment: its term file, which of its files are live, and
/// the postings of each query term (looked up once per query: the `fst`
/// walk is paid once, not by every pass over the lists).
pub struct SegTerms<'a> {
    pub terms: &'a TermFile,
    pub live: &'a dyn Fn(u32) -> bool,
    /// `lists[i]`: the postings of the query's `i`-th term, if it has any here.
    pub lists: Vec<Option<Postings<'a>>>,
}

impl<'a> SegTerms<'a> {
    /// The segment with the postings of `query`'s terms looked up.
    pub fn new(terms: &'a TermFile, live: &'a dyn Fn(u32) -> bool, query: &[WeightedTerm]) -> Self {
        SegTerms { terms, live, lists: query.iter().map(|q| terms.postings(&q.term)).collect() }
    }
}

/// Per-document multipliers of the BM25F score: the ranking rules. The
/// fast path asks for bounds while it prunes and for the exact value of a
/// document only once it may enter the top k.
pub trait Boost {
    /// An upper bound of [`Boost::exact`] over every document the scan may
    /// meet (those not given to [`top_k`] as `direct`).
    fn max(&self) -> u64;
    /// An upper bound of [`Boost::exact`] of one such document, cheap.
    fn bound(&self, seg: usize, doc: u32) -> u64;
    /// The multiplier of a document.
    fn exact(&mut self, seg: usize, doc: u32) -> u64;
}

/// No rules: every multiplier is 1.
pub struct NoBoost;

impl Boost for NoBoost {
    fn max(&self) -> u64 {
        1
    }
    fn bound(&self, _: usize, _: u32) -> u64 {
        1
    }
    fn exact(&mut self, _: usize, _: u32) -> u64 {
        1
    }
}

/// Counts for `info`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScoreStats {
    /// Documents whose score was computed (fully or until they could not win).
    pub scored: u64,
    /// Postings in the query's lists.
    pub postings: u64,
}

struct Cursor<'a> {
    p: Postings<'a>,
    pos: usize,
    /// The document at `pos` (u32::MAX past the end), kept beside it: the
    /// scan compares it often.
    cur: u32,
    weight: u64,
    bound: u64,
    /// The block `pos` is in, where its doc ids are, its first position,
    /// its length and its last doc id: kept so that a step inside a block
    /// reads no block head.
    blk: usize,
    frame: Frame,
    start: usize,
    len: usize,
    last: u32,
    /// The block's doc ids, decoded in one pass the first time the cursor
    /// steps inside it (an essential list visits every posting of a block
    /// it does not skip) or after [`DECODE_AFTER`] seeks into it; a block
    /// sought into fewer times is read id by id.
    docs: Box<[u32; BLOCK]>,
    decoded: bool,
    /// Seeks that searched inside the current block.
    seeks: u32,
}

impl Cursor<'_> {
    /// A bound of this list's contribution to any document up to [`Cursor::block_last`].
    fn block_bound(&self) -> u64 {
        if self.pos < self.p.len() {
            self.weight * self.p.block_max(self.pos) as u64
        } else {
            0
        }
    }
    /// The last document of the current block.
    fn block_last(&self) -> u32 {
        if self.pos < self.p.len() {
            self.last
        } else {
            u32::MAX
        }
    }
    fn new(p: Postings<'_>, weight: u64) -> Cursor<'_> {
        let bound = weight * p.max_impact as u64;
        let mut c = Cursor {
            p,
            pos: 0,
            cur: 0,
            weight,
            bound,
            blk: usize::MAX,
            frame: (0, 0, 0),
            start: 0,
            len: 0,
            last: 0,
            docs: Box::new([0; BLOCK]),
            decoded: false,
            seeks: 0,
        };
        c.moved();
        c
    }
    fn doc(&self) -> u32 {
        self.cur
    }
    /// The current posting's contribution.
    fn score(&self) -> u64 {
        self.weight * self.p.impacts[self.pos] as u64
    }
    /// Enters block `b` (which must exist).
    fn enter(&mut self, b: usize) {
        self.blk = b;
        self.frame = self.p.frame(b);
        self.start = b * BLOCK;
        self.len = self.p.block_end(self.start) - self.start;
        self.last = self.p.frame_doc(self.frame, self.len - 1);
        self.decoded = false;
        self.seeks = 0;
    }
    /// Doc id `j` of the current block.
    #[inline]
    fn block_doc(&self, j: usize) -> u32 {
        if self.decoded {
            self.docs[j]
        } else {
            self.p.frame_doc(self.frame, j)
        }
    }
    fn moved(&mut self) {
        if self.pos >= self.p.len() {
            self.cur = u32::MAX;
            return;
        }
        let b = self.pos / BLOCK;
        if b != self.blk {
            self.enter(b);
        }
        self.cur = self.block_doc(self.pos - self.start);
    }
    /// One posting on (the scan drains instead; the tests step with it).
    #[cfg(test)]
    fn next(&mut self) {
        self.pos += 1;
        let j = self.pos - self.start;
        if j < self.len {
            if !self.decoded {
                self.p.frame_docs(self.frame, &mut self.docs[..self.len]);
                self.decoded = true;
            }
            self.cur = self.docs[j];
        } else {
            self.moved();
        }
    }
    /// Adds this list's postings up to `end` (inclusive) into the window
    /// starting at document `base` (`acc`: the sums, `seen`: the bitmap),
    /// a block at a time over the decoded ids and the impacts beside them.
    /// The window's arrays have fixed sizes and `j` is masked into them (it
    /// is below [`ACC_WINDOW`] already): no bounds check per posting.
    fn drain(&mut self, base: u32, end: u32, acc: &mut Window, seen: &mut Seen) {
        while self.cur <= end {
            if !self.decoded {
                self.p.frame_docs(self.frame, &mut self.docs[..self.len]);
                self.decoded = true;
            }
            let j0 = self.pos - self.start;
            let ids = &self.docs[j0..self.len];
            let impacts = &self.p.impacts[self.pos..self.start + self.len];
            let mut taken = 0;
            for (&d, &imp) in ids.iter().zip(impacts) {
                if d > end {
                    break;
                }
                let j = (d - base) as usize;
                debug_assert!(j < ACC_WINDOW);
                let j = j & (ACC_WINDOW - 1);
                acc[j] += self.weight * imp as u64;
                seen[j / 64] |= 1 << (j % 64);
                taken += 1;
            }
            self.pos += taken;
            if self.pos - self.start < self.len {
                self.cur = self.docs[self.pos - self.start];
                return;
            }
            self.moved();
        }
    }
    /// Moves to the first posting >= `d` (inline, the search itself not:
    /// most probes find the cursor already there, and a call that saves
    /// registers for the search was a tenth of the scan).
    #[inline(always)]
    fn seek(&mut self, d: u32) {
        if self.cur < d {
            self.seek_past(d);
        }
    }
    /// [`Cursor::seek`] when the cursor is before `d`: inside the current
    /// block when its last doc reaches `d`, else galloping over the blocks'
    /// first ids, then a search inside the one block that can hold it.
    #[inline(never)]
    fn seek_past(&mut self, d: u32) {
        if self.last < d {
            // Blocks after the current one: the first whose first id is
            // past `d` is `a`; the answer is in block `a - 1`, or starts `a`.
            let a = self.p.gallop_blocks(self.blk, d) + 1;
            if a - 1 == self.blk {
                // Nothing of the current block reaches `d`.
                self.pos = (a * BLOCK).min(self.p.len());
                self.moved();
                return;
            }
            self.enter(a - 1);
            if self.last < d {
                self.pos = (a * BLOCK).min(self.p.len());
                self.moved();
                return;
            }
            self.pos = (a - 1) * BLOCK;
            if self.frame.0 >= d {
                // The block starts at `d`.
                self.cur = self.frame.0;
                return;
            }
        }
        // The answer is in the current block, after `pos` (whose doc is
        // below `d`) and at or before its last posting (which reaches `d`).
        self.seeks += 1;
        if !self.decoded && self.seeks >= DECODE_AFTER {
            self.p.frame_docs(self.frame, &mut self.docs[..self.len]);
            self.decoded = true;
        }
        // Galloping from `pos` (a list probed in doc order lands a few
        // postings on), over the decoded ids or the packed ones.
        let (from, last) = (self.pos - self.start, self.len - 1);
        let j = if self.decoded {
            let docs = &self.docs[..self.len];
            gallop_in(from, last, d, |i| docs[i])
        } else {
            let (p, frame) = (&self.p, self.frame);
            gallop_in(from, last, d, |i| p.frame_doc(frame, i))
        };
        self.pos = self.start + j;
        self.cur = self.block_doc(j);
    }
}

/// The first `j` in `lo + 1..=last` with `id(j) >= d`, where `id(lo) < d
/// <= id(last)` (ids ascending): galloping from `lo`, then a binary search
/// between the last two probes.
#[inline]
fn gallop_in(lo: usize, last: usize, d: u32, id: impl Fn(usize) -> u32) -> usize {
    let (mut lo, mut hi, mut step) = (lo, lo + 1, 1);
    while id(hi) < d {
        lo = hi;
        hi = (hi + step).min(last);
        step *= 2;
    }
    // `id(lo) < d <= id(hi)`.
    let (mut a, mut b) = (lo + 1, hi);
    while a < b {
        let m = (a + b) / 2;
        if id(m) < d {
            a = m + 1;
        } else {
            b = m;
        }
    }
    a
}

/// In-block seeks into one block after which the cursor decodes the
/// block's ids (a binary search reads ids one by one; a list probed by
/// many candidates of a block gallops over its decoded ids).
const DECODE_AFTER: u32 = 4;

/// The most documents whose essential sums are gathered at once.
const ACC_WINDOW: usize = 1024;

/// The essential lists' sums over a window, and which documents of the
/// window they hold.
type Window = [u64; ACC_WINDOW];
type Seen = [u64; ACC_WINDOW / 64];

/// The least sum `s` of a document's lists with which `s * max` can still
/// reach the threshold `thr` (0 without one): `s * max < t` exactly when
/// `s < ceil(t / max)`, so the scan's per-candidate checks compare sums
/// with no multiplication.
fn need_of(thr: Option<Scored>, max: u64) -> u64 {
    match thr {
        None => 0,
        Some(t) if max == 0 => u64::from(t.score > 0) * u64::MAX,
        Some(t) => t.score.div_ceil(max),
    }
}

fn push(heap: &mut BinaryHeap<Reverse<Scored>>, k: usize, s: Scored) {
    if heap.len() < k {
        heap.push(Reverse(s));
    } else if heap.peek().is_some_and(|m| s > m.0) {
        heap.pop();
        heap.push(Reverse(s));
    }
}

fn threshold(heap: &BinaryHeap<Reverse<Scored>>, k: usize) -> Option<Scored> {
    if heap.len() < k {
        None
    } else {
        heap.peek().map(|m| m.0)
    }
}

fn sorted(heap: BinaryHeap<Reverse<Scored>>) -> Vec<Scored> {
    let mut v: Vec<Scored> = heap.into_iter().map(|r| r.0).collect();
    v.sort_by(|a, b| b.cmp(a));
    v
}

/// The BM25F score of one document (a binary search per query term).
pub fn doc_score(seg: &SegTerms<'_>, query: &[WeightedTerm], doc: u32) -> u64 {
    query
        .iter()
        .zip(&seg.lists)
        .filter_map(|(q, p)| {
            let p = p.as_ref()?;
            p.find(doc).map(|i| q.weight * p.impacts[i] as u64)
        })
        .sum()
}

/// The top `k` documents by MaxScore with block maxima. Lists are ordered
/// by their bound (weight times largest impact); the longest prefix whose
/// bounds together (times the largest multiplier) cannot reach the current
/// k-th score is *non-essential*: a document found only there cannot enter
/// the top k, so candidates come from the other (essential, rarer) lists
/// alone, and the non-essential ones are probed by search for each
/// candidate, largest bound first, until the rest cannot lift it over the
/// k-th. Runs of the essential lists whose block maxima (with every
/// non-essential bound) cannot reach the k-th are skipped a block at a
/// time. A document's exact multiplier is asked for only when its score
/// times its own bound beats the k-th. `direct` (segment, doc) pairs,
/// sorted and distinct, are scored first by lookup and skipped by the
/// scan: documents whose multiplier may exceed [`Boost::max`] (the spelled
/// names).
pub fn top_k(
    segs: &[SegTerms<'_>],
    query: &[WeightedTerm],
    k: usize,
    boost: &mut dyn Boost,
    direct: &[(u32, u32)],
    stats: &mut ScoreStats,
) -> Vec<Scored> {
    let mut heap = BinaryHeap::with_capacity(k + 1);
    if k == 0 {
        return Vec::new();
    }
    for &(si, d) in direct {
        let seg = &segs[si as usize];
        let base = doc_score(seg, query, d);
        stats.scored += 1;
        if base > 0 && (seg.live)(d) {
            let s = base * boost.exact(si as usize, d);
            push(&mut heap, k, Scored { score: s, seg: Reverse(si), doc: Reverse(d) });
        }
    }
    let max = boost.max();
    // The essential lists' sums over a window of documents, and which
    // documents of the window they hold.
    let mut acc: Box<Window> = Box::new([0; ACC_WINDOW]);
    let mut seen: Seen = [0; ACC_WINDOW / 64];
    for (si, seg) in segs.iter().enumerate() {
        let skip_lo = direct.partition_point(|x| x.0 < si as u32);
        let skip = &direct[skip_lo..direct.partition_point(|x| x.0 <= si as u32)];
        let mut cur: Vec<Cursor<'_>> = query
            .iter()
            .zip(&seg.lists)
            .filter_map(|(q, p)| Some(Cursor::new((*p)?, q.weight)))
            .filter(|c| c.bound > 0)
            .collect();
        stats.postings += cur.iter().map(|c| c.p.len() as u64).sum::<u64>();
        let key = |score: u64, doc: u32| Scored { score, seg: Reverse(si as u32), doc: Reverse(doc) };
        cur.sort_unstable_by_key(|c| c.bound);
        // `upto[i]`: the bounds of lists `0..i` together.
        let mut upto = vec![0u64; cur.len() + 1];
        for i in 0..cur.len() {
            upto[i + 1] = upto[i] + cur[i].bound;
        }
        // Lists `0..ess` are non-essential; the essential ones' block
        // window is known to hold candidates up to `window` (inclusive).
        let mut ess = 0;
        let mut window: Option<u32> = None;
        loop {
            let thr = threshold(&heap, k);
            if let Some(t) = thr {
                while ess < cur.len() && upto[ess + 1] * max < t.score {
                    ess += 1;
                    window = None;
                }
            }
            if ess == cur.len() {
                break;
            }
            let d = cur[ess..].iter().map(Cursor::doc).min().unwrap_or(u32::MAX);
            if d == u32::MAX {
                break;
            }
            if window.is_none_or(|w| d > w) {
                // Block-max over the essential lists: up to `last` (the
                // nearest end of their current blocks) each adds at most its
                // block maximum; when that and every non-essential bound
                // cannot reach the threshold, no document up to `last` can.
                let last = cur[ess..].iter().map(Cursor::block_last).min().unwrap_or(u32::MAX);
                if let Some(t) = thr {
                    let ub: u64 = cur[ess..].iter().filter(|c| c.doc() <= last).map(Cursor::block_bound).sum();
                    if (ub + upto[ess]) * max < t.score && last != u32::MAX {
                        for c in cur[ess..].iter_mut() {
                            c.seek(last + 1);
                        }
                        continue;
                    }
                }
                window = Some(last);
            }
            // The essential lists' postings in `d..=end` are summed per
            // document list by list (a tight loop over each list's decoded
            // block, no merge of the lists per document), then the
            // documents are taken in order as candidates. The window ends
            // with the block window, so the block-max check above runs
            // again at the next block end (before the heap holds k, the
            // window is cut there too); the partition into essential lists is
            // fixed for the window (a list that turns non-essential inside
            // it still adds candidates, each checked in full: only pruning
            // is lost, never a document).
            let end = d.saturating_add(ACC_WINDOW as u32 - 1).min(window.unwrap_or(u32::MAX)).min(u32::MAX - 1);
            for c in cur[ess..].iter_mut() {
                c.drain(d, end, &mut acc, &mut seen);
            }
            // The threshold changes only when a candidate enters the heap.
            // `first`: the least essential sum with which every
            // non-essential bound can still lift a document to `need`.
            let mut thr = threshold(&heap, k);
            let mut need = need_of(thr, max);
            let mut first = need.saturating_sub(upto[ess]);
            for (w, bits) in seen.iter_mut().enumerate().take((end - d) as usize / 64 + 1) {
                stats.scored += u64::from(bits.count_ones());
                while *bits != 0 {
                    let j = w * 64 + bits.trailing_zeros() as usize;
                    *bits &= *bits - 1;
                    let doc = d + j as u32;
                    let mut score = std::mem::take(&mut acc[j]);
                    // Most candidates stop here, before any probe.
                    if score < first {
                        continue;
                    }
                    // The non-essential lists, largest bound first, while the rest
                    // could still lift the document over the threshold
                    // (`(score + upto[j + 1]) * max < t` when below `need`;
                    // the first list's check is `first`'s).
                    let mut alive = true;
                    for j in (0..ess).rev() {
                        if j + 1 < ess && score + upto[j + 1] < need {
                            alive = false;
                            break;
                        }
                        let c = &mut cur[j];
                        c.seek(doc);
                        if c.doc() == doc {
                            score += c.score();
                        }
                    }
                    if alive
                        && thr.is_none_or(|t| key(score * max, doc) > t && key(score * boost.bound(si, doc), doc) > t)
                        && (seg.live)(doc)
                        && skip.binary_search(&(si as u32, doc)).is_err()
                    {
                        push(&mut heap, k, key(score * boost.exact(si, doc), doc));
                        thr = threshold(&heap, k);
                        need = need_of(thr, max);
                        first = need.saturating_sub(upto[ess]);
                    }
                }
            }
        }
    }
    sorted(heap)
}

/// The oracle: every document of every list scored in full.
pub fn top_k_exhaustive(segs: &[SegTerms<'_>], query: &[WeightedTerm], k: usize, boost: &mut dyn Boost) -> Vec<Scored> {
    let mut heap = BinaryHeap::with_capacity(k + 1);
    if k == 0 {
        return Vec::new();
    }
    for (si, seg) in segs.iter().enumerate() {
        let mut acc = vec![0u64; seg.terms.ndocs() as usize];
        for (q, p) in query.iter().zip(&seg.lists) {
            if let Some(p) = p {
                for i in 0..p.len() {
                    acc[p.doc(i) as usize] += q.weight * p.impacts[i] as u64;
                }
            }
        }
        for (d, &s) in acc.iter().enumerate() {
            if s > 0 && (seg.live)(d as u32) {
                let s = s * boost.exact(si, d as u32);
                push(&mut heap, k, Scored { score: s, seg: Reverse(si as u32), doc: Reverse(d as u32) });
            }
        }
    }
    sorted(heap)
}

#[cfg(test)]
mod tests {
    use super::super::docs::{Doc, NFIELDS};
    use super::super::store::write;
    use super::*;

    /// A deterministic pseudo-random generator (no dependency for tests).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    fn random_file(dir: &std::path::Path, name: &str, rng: &mut Lcg, ndocs: usize) -> TermFile {
        random_file_of(dir, name, rng, ndocs, |rng| rng.next(12))
    }

    /// `term` draws a term number: a skewed draw gives long lists of
    /// common terms beside short ones, so whole blocks get skipped.
    fn random_file_of(
        dir: &std::path::Path,
        name: &str,
        rng: &mut Lcg,
        ndocs: usize,
        term: impl Fn(&mut Lcg) -> u64,
    ) -> TermFile {
        let docs: Vec<(u32, Doc)> = (0..ndocs)
            .map(|i| {
                let mut terms: Vec<(String, [u8; NFIELDS])> = Vec::new();
                for _ in 0..rng.next(6) + 1 {
                    let t = format!("t{}", term(rng));
                    if terms.iter().any(|(x, _)| *x == t) {
                        continue;
                    }
                    let mut c = [0u8; NFIELDS];
                    c[rng.next(NFIELDS as u64) as usize] = rng.next(4) as u8 + 1;
                    terms.push((t, c));
                }
                terms.sort();
                let lens = std::array::from_fn(|_| rng.next(30) as u16);
                (i as u32 / 3, Doc { terms, lens, ..Doc::default() })
            })
            .collect();
        let p = dir.join(name);
        write(&p, &docs).unwrap();
        TermFile::open(&p).unwrap()
    }

    /// Multipliers from a hash of the document, large for the direct ones.
    struct HashBoost {
        max: u64,
        direct: Vec<(u32, u32)>,
        tight: bool,
    }
    impl HashBoost {
        fn base(&self, seg: usize, doc: u32) -> u64 {
            (seg as u64 * 7919 + doc as u64 * 104_729) % self.max + 1
        }
    }
    impl Boost for HashBoost {
        fn max(&self) -> u64 {
            self.max
        }
        fn bound(&self, seg: usize, doc: u32) -> u64 {
            if self.tight {
                self.base(seg, doc)
            } else {
                self.max
            }
        }
        fn exact(&mut self, seg: usize, doc: u32) -> u64 {
            let b = self.base(seg, doc);
            if self.direct.binary_search(&(seg as u32, doc)).is_ok() {
                b + 3 * self.max
            } else {
                b
            }
        }
    }

    #[test]
    fn block_max_wand_agrees_with_the_oracle() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Lcg(7);
        let files: Vec<TermFile> =
            (0..3).map(|i| random_file(dir.path(), &format!("s{i}.terms"), &mut rng, [200, 250, 4000][i])).collect();
        let dead = |f: u32| f % 7 != 3;
        for round in 0..400 {
            let q: Vec<WeightedTerm> = (0..rng.next(5) + 1)
                .map(|_| WeightedTerm { term: format!("t{}", rng.next(14)), weight: rng.next(50) + 1 })
                .collect();
            let k = [1, 3, 10, 50][round % 4];
            let segs: Vec<SegTerms<'_>> = files.iter().map(|t| SegTerms::new(t, &dead, &q)).collect();
            let mut st = ScoreStats::default();
            assert_eq!(
                top_k(&segs, &q, k, &mut NoBoost, &[], &mut st),
                top_k_exhaustive(&segs, &q, k, &mut NoBoost),
                "query {q:?} k {k}"
            );
            let mut direct: Vec<(u32, u32)> =
                (0..rng.next(6)).map(|_| (rng.next(3) as u32, rng.next(200) as u32)).collect();
            direct.sort();
            direct.dedup();
            let mut boost = HashBoost { max: rng.next(20) + 1, direct: direct.clone(), tight: round % 2 == 0 };
            let fast = top_k(&segs, &q, k, &mut boost, &direct, &mut st);
            assert_eq!(fast, top_k_exhaustive(&segs, &q, k, &mut boost), "query {q:?} k {k} boosted");
        }
    }

    #[test]
    fn block_max_wand_agrees_with_the_oracle_on_skewed_lists() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Lcg(19);
        let skew = |rng: &mut Lcg| {
            let top = rng.next(300) + 1;
            rng.next(top)
        };
        let files: Vec<TermFile> = (0..2)
            .map(|i| random_file_of(dir.path(), &format!("z{i}.terms"), &mut rng, [3000, 20_000][i], skew))
            .collect();
        let live = |f: u32| f % 11 != 5;
        let mut skipped = 0;
        for round in 0..300 {
            let q: Vec<WeightedTerm> = (0..rng.next(6) + 2)
                .map(|_| WeightedTerm { term: format!("t{}", skew(&mut rng)), weight: rng.next(3000) + 1 })
                .collect();
            let k = [1, 10, 50][round % 3];
            let segs: Vec<SegTerms<'_>> = files.iter().map(|t| SegTerms::new(t, &live, &q)).collect();
            let mut st = ScoreStats::default();
            let fast = top_k(&segs, &q, k, &mut NoBoost, &[], &mut st);
            assert_eq!(fast, top_k_exhaustive(&segs, &q, k, &mut NoBoost), "query {q:?} k {k}");
            skipped += usize::from(st.scored * 2 < st.postings);
            let mut direct: Vec<(u32, u32)> =
                (0..rng.next(4)).map(|_| (rng.next(2) as u32, rng.next(3000) as u32)).collect();
            direct.sort();
            direct.dedup();
            let mut boost = HashBoost { max: rng.next(8) + 1, direct: direct.clone(), tight: round % 2 == 0 };
            let fast = top_k(&segs, &q, k, &mut boost, &direct, &mut st);
            assert_eq!(fast, top_k_exhaustive(&segs, &q, k, &mut boost), "query {q:?} k {k} boosted");
        }
        assert!(skipped > 30, "the fast path skips most postings often ({skipped} of 300)");
    }

    /// The cursor's block-local steps and seeks against the list's own
    /// `lower_bound` (the oracle), over long lists and every seek distance:
    /// inside a block, to its last posting, just past it, far ahead, past the end.
    #[test]
    fn cursor_seeks_land_where_lower_bound_says() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Lcg(23);
        let skew = |rng: &mut Lcg| {
            let top = rng.next(40) + 1;
            rng.next(top)
        };
        let file = random_file_of(dir.path(), "c.terms", &mut rng, 9000, skew);
        for t in 0..40 {
            let Some(p) = file.postings(&format!("t{t}")) else { continue };
            for _ in 0..20 {
                let mut c = Cursor::new(p, 1);
                let mut want = 0usize;
                while c.pos < p.len() {
                    let d = match rng.next(4) {
                        0 => c.doc() + 1,
                        1 => c.block_last() + 1,
                        2 => c.doc() + rng.next(40) as u32,
                        _ => c.doc() + rng.next(3000) as u32,
                    };
                    if rng.next(5) == 0 {
                        // A drain to `d - 1` (a window of at most 1,024
                        // documents from the cursor's) adds exactly the
                        // postings before `d` from where it stood.
                        let base = c.doc();
                        let end = d.saturating_sub(1).min(base + ACC_WINDOW as u32 - 1);
                        let (mut acc, mut seen): (Box<Window>, Seen) =
                            (Box::new([0; ACC_WINDOW]), [0; ACC_WINDOW / 64]);
                        c.drain(base, end, &mut acc, &mut seen);
                        let to = p.lower_bound(end + 1).max(want);
                        let (mut want_acc, mut want_seen) = (vec![0u64; ACC_WINDOW], vec![0u64; ACC_WINDOW / 64]);
                        for i in want..to {
                            let j = (p.doc(i) - base) as usize;
                            want_acc[j] += p.impacts[i] as u64;
                            want_seen[j / 64] |= 1 << (j % 64);
                        }
                        assert_eq!((acc.to_vec(), seen.to_vec()), (want_acc, want_seen), "term t{t} drain to {end}");
                        want = to;
                    } else if rng.next(3) == 0 {
                        c.next();
                        want += 1;
                    } else {
                        c.seek(d);
                        want = want.max(p.lower_bound(d));
                    }
                    let want_doc = if want < p.len() { p.doc(want) } else { u32::MAX };
                    assert_eq!((c.pos.min(p.len()), c.doc()), (want.min(p.len()), want_doc), "term t{t} seek {d}");
                    if c.pos < p.len() {
                        assert_eq!(c.block_last(), p.doc(p.block_end(c.pos) - 1));
                    }
                }
            }
        }
    }

    /// The scan's per-candidate check against its product form (the
    /// oracle): `s < need_of(t, max)` exactly when `s * max < t`, at the
    /// edges (`s * max` one below, at and above `t`) and at random.
    #[test]
    fn need_compares_as_the_product_does() {
        let mut rng = Lcg(41);
        let at = |score: u64| Some(Scored { score, seg: Reverse(0), doc: Reverse(0) });
        for round in 0..20_000 {
            let max = [1, 2, 7, 11_600_000, rng.next(1 << 20) + 1][round % 5];
            let s = rng.next(1 << 24);
            let t = match round % 4 {
                0 => s * max,
                1 => s * max + 1,
                2 => (s * max).saturating_sub(1),
                _ => rng.next(1 << 40),
            };
            assert_eq!(s < need_of(at(t), max), s * max < t, "s {s} max {max} t {t}");
            assert!(s >= need_of(None, max));
        }
        assert!(9 < need_of(at(1), 0) && need_of(at(0), 0) == 0, "no multiplier: only a zero threshold passes");
    }

    /// Lists whose blocks of [`super::super::store::BLOCK`] postings are
    /// skipped whole, with the best documents right after a block's end and
    /// right before it: a skip one posting too far or too short, or a bound
    /// taken from the wrong block, changes the answer.
    #[test]
    fn block_skips_stop_exactly_at_a_block_boundary() {
        use super::super::store::BLOCK;
        let dir = tempfile::tempdir().unwrap();
        let n = BLOCK * 8;
        // Term "b" in every document: in the name (a large impact) at a few
        // documents on either side of block ends, in a long body elsewhere;
        // "a" (before it in the file, so "b"'s list does not start at a
        // block of the file) in the first 50; "c" in every third.
        let strong = [5, BLOCK * 3 - 1, BLOCK * 6 + 1, n - 1, BLOCK * 4];
        let docs: Vec<(u32, Doc)> = (0..n)
            .map(|i| {
                let mut terms = Vec::new();
                if i < 50 {
                    terms.push(("a".to_string(), [0, 0, 0, 0, 1]));
                }
                let name = strong.iter().position(|&s| s == i);
                terms.push((
                    "b".to_string(),
                    if let Some(r) = name { [r as u8 + 1, 0, 0, 0, 0] } else { [0, 0, 0, 0, 1] },
                ));
                if i % 3 == 0 {
                    terms.push(("c".to_string(), [0, 0, 0, 0, 1]));
                }
                (i as u32, Doc { terms, lens: [1, 1, 1, 1, 40], ..Doc::default() })
            })
            .collect();
        let p = dir.path().join("b.terms");
        write(&p, &docs).unwrap();
        let file = TermFile::open(&p).unwrap();
        let live = |_: u32| true;
        let queries =
            [(&["b"][..], 1), (&["b"][..], 3), (&["a", "b", "c"][..], 1), (&["b", "c"][..], 1), (&["b", "c"][..], 4)];
        for (terms, k) in queries {
            // "b" weighs most, so that its low blocks cannot win even with the others' bounds.
            let weight = |t: &str| if t == "b" { 30 } else { 10 };
            let q: Vec<WeightedTerm> =
                terms.iter().map(|t| WeightedTerm { term: t.to_string(), weight: weight(t) }).collect();
            let segs = vec![SegTerms::new(&file, &live, &q)];
            let mut st = ScoreStats::default();
            let fast = top_k(&segs, &q, k, &mut NoBoost, &[], &mut st);
            assert_eq!(fast, top_k_exhaustive(&segs, &q, k, &mut NoBoost), "{terms:?} k {k}");
            if k == 1 {
                assert!(st.scored <= (n - 2 * BLOCK) as u64, "whole blocks are skipped ({} of {n} scored)", st.scored);
            }
        }
    }
}
