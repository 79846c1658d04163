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

use std::cell::RefCell;

use super::rank::Scorer;
use crate::index::Snapshot;
use crate::query::plan::GramSets;

thread_local! {
    static LEXICAL: RefCell<Option<(Vec<u64>, u64)>> = const { RefCell::new(None) };
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
