//! Stage-A's corpus statistics from outside, for a shard of a sharded set
//! (issue 14).
//!
//! Stage-A's idf counts, per query term, the live chunks whose grams may
//! hold it, over the chunks of the snapshot. A shard would count over its
//! own chunks only and score on its own scale. The set's coordinator asks
//! every shard for [`document_frequencies`] of the query (the DFS phase),
//! sums them, and has each shard search with the sums installed for the
//! calling thread ([`set_lexical`]); the native search releases the GIL on
//! that same thread. With nothing installed (every embedded use) nothing
//! changes.
//!
//! A union route's answer interleaves two lists and keeps a line once; a
//! shard that interleaves its own part of each loses lines the set's
//! interleaving counts. [`set_union_parts`] has this thread's union routes
//! answer with the two lists apart (the definition index's top n, then
//! Stage-A's top n), for the coordinator to interleave once.

use std::cell::{Cell, RefCell};

use super::rank::Scorer;
use crate::index::Snapshot;
use crate::query::plan::GramSets;

thread_local! {
    static LEXICAL: RefCell<Option<(Vec<u64>, u64)>> = const { RefCell::new(None) };
    static UNION_PARTS: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Has this thread's union routes answer with their two lists apart, `n`
/// hits each at most (None: interleaved, as always).
pub fn set_union_parts(n: Option<usize>) {
    UNION_PARTS.with(|u| u.set(n));
}

/// The per-list length installed by [`set_union_parts`].
pub fn union_parts() -> Option<usize> {
    UNION_PARTS.with(Cell::get)
}

/// Installs (or with None clears) the set-wide (df per query term, live
/// chunks) for this thread's next searches.
pub fn set_lexical(stats: Option<(Vec<u64>, u64)>) {
    LEXICAL.with(|l| *l.borrow_mut() = stats);
}

/// The installed statistics, when they are for a query of `nterms` terms.
pub fn lexical(nterms: usize) -> Option<(Vec<u64>, u64)> {
    LEXICAL.with(|l| l.borrow().as_ref().filter(|(df, _)| df.len() == nterms).cloned())
}

/// Per query term, the live chunks of `snap` that may hold it, and the live
/// chunks: what the native ranked search counts before it scores.
pub fn document_frequencies(snap: &Snapshot, scorer: &Scorer) -> (Vec<u64>, u64) {
    let mut df = vec![0u64; scorer.term_plans.len()];
    for view in &snap.segments {
        let live = &view.live_chunks;
        let mut cache = GramSets::default();
        for (t, plan) in scorer.term_plans.iter().enumerate() {
            df[t] += plan.eval_with(&view.seg, &mut cache).map_or(live.count() as u64, |mut s| {
                s.and_with(live);
                s.count() as u64
            });
        }
    }
    (df, snap.nchunks() as u64)
}
