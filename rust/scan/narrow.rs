//! A union route's Stage-A terms, within a work budget (issue 10).
//!
//! A question that names an identifier ("clear the I_NEW state and wake up
//! any waiters") takes the union route: the definition index and Stage-A
//! both answer, interleaved. Stage-A's cost grows with its terms' candidate
//! chunks, not with its answer: every term's grams are decoded in every
//! segment and every chunk that may hold a term is grouped before one is
//! verified. A sentence's common words ("clear", "state", a two-letter
//! word with no gram at all) make most of a big tree's chunks candidates
//! (200 k on the Linux kernel) for hits that the definition index ranks
//! better anyway. So when the sum of the terms' candidate bounds passes
//! [`UNION_CANDIDATES`], the union route gives Stage-A the identifiers the
//! question names and then its rarest other terms while the sum fits, and
//! caps the chunks it verifies ([`UNION_VISITS`]); on a small tree every
//! term fits and nothing changes.
//!
//! The bounds come from the gram dictionary's list lengths alone
//! ([`GramQuery::count_bound`]), so choosing costs no decoding, and the
//! choice is a function of the query and the index, never of time or load.

use super::global;
use crate::index::Snapshot;
use crate::query::terms::Terms;
use crate::query::GramQuery;

/// Candidate chunks (summed bounds over the kept terms) a union route's
/// Stage-A may look at. On the kernel (205 k chunks) it takes the union
/// questions' candidates from 81 k to 6 k on average; a tree of a few
/// thousand chunks never reaches it.
pub const UNION_CANDIDATES: u64 = 10_000;

/// Chunks a union route's Stage-A verifies at most, once its terms were
/// narrowed (a big tree): a named identifier that few lines hold exactly
/// leaves the top k unfilled, and then every candidate of its grams would
/// be verified (3,569 chunks, 70-80 CPU ms on a loaded machine, for
/// `REG_INT_START` on the kernel).
pub const UNION_VISITS: u64 = 128;

/// Per term, at least how many chunks of `snap` may hold it (one of its
/// spellings), from the dictionary alone.
pub fn candidate_bounds(snap: &Snapshot, terms: &Terms) -> Vec<u64> {
    terms
        .variants
        .iter()
        .map(|spellings| {
            let plan = GramQuery::any(spellings.iter().map(|v| GramQuery::for_string(v)).collect());
            snap.segments.iter().map(|v| plan.count_bound(&v.seg)).sum()
        })
        .collect()
}

/// `terms` less its commonest terms, when the bounds of all of them exceed
/// `budget`: the terms spelled by `named` (the identifiers the question
/// names, why it took the union route) stay whatever they cost, unless they
/// cannot narrow at all (`v2`: no gram, every chunk); when none does, the
/// rarest term stays. Then the other terms come in rarest first while the
/// bounds' sum fits. The phrase and the kept terms' order are kept. A shard
/// of a set (set-wide counts installed, `super::global`) keeps every term:
/// all its shards must search the same terms with the set's counts.
pub fn within_budget(snap: &Snapshot, terms: Terms, named: &[Vec<u8>], budget: u64) -> Terms {
    let n = terms.terms.len();
    if n <= 1 || global::lexical(n).is_some() {
        return terms;
    }
    let bounds = candidate_bounds(snap, &terms);
    let is_named: Vec<bool> = terms.terms.iter().map(|t| named.contains(t)).collect();
    let universe = snap.segments.iter().map(|v| u64::from(v.seg.nchunks())).sum();
    keep_within(terms, &bounds, &is_named, universe, budget)
}

/// The choice of [`within_budget`] for given bounds, over `universe` chunks.
fn keep_within(terms: Terms, bounds: &[u64], named: &[bool], universe: u64, budget: u64) -> Terms {
    if bounds.iter().fold(0u64, |s, &b| s.saturating_add(b)) <= budget {
        return terms;
    }
    let mut order: Vec<usize> = (0..bounds.len()).collect();
    order.sort_by_key(|&i| (bounds[i], i));
    let mut keep: Vec<bool> = (0..bounds.len()).map(|i| named[i] && bounds[i] < universe).collect();
    if !keep.contains(&true) {
        keep[order[0]] = true;
    }
    let mut spent = (0..bounds.len()).filter(|&i| keep[i]).fold(0u64, |s, i| s.saturating_add(bounds[i]));
    for &i in &order {
        let after = spent.saturating_add(bounds[i]);
        if !keep[i] && after <= budget {
            spent = after;
            keep[i] = true;
        }
    }
    let Terms { phrase, terms, variants } = terms;
    let (terms, variants) = terms.into_iter().zip(variants).zip(&keep).filter(|(_, &k)| k).map(|(tv, _)| tv).unzip();
    Terms { phrase, terms, variants }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::terms::split;

    #[test]
    fn the_rarest_terms_stay_while_they_fit() {
        let t = split("clear the I_NEW state and wake up any waiters");
        // Terms, longest first: waiters, clear, i_new, state, wake, any, up.
        assert_eq!(t.terms.len(), 7);
        let none = [false; 7];
        let bounds = [900, 5_000, 40, 7_000, 600, 9_000, 20_000];
        let kept = keep_within(t.clone(), &bounds, &none, 30_000, 2_000);
        let words: Vec<&[u8]> = kept.terms.iter().map(Vec::as_slice).collect();
        assert_eq!(words, vec![&b"waiters"[..], b"i_new", b"wake"]);
        assert_eq!(kept.phrase, t.phrase);
        assert_eq!(kept.variants[1], t.variants[2]);
        // Everything fits: the same terms.
        assert_eq!(keep_within(t.clone(), &bounds, &none, 30_000, 42_540), t);
        // Nothing fits: the rarest alone.
        assert_eq!(keep_within(t.clone(), &bounds, &none, 30_000, 0).terms, vec![b"i_new".to_vec()]);
        // Ties go to the earlier (longer) term.
        let even = keep_within(t.clone(), &[10; 7], &none, 30_000, 25);
        assert_eq!(even.terms, t.terms[..2].to_vec());
    }

    #[test]
    fn a_named_identifier_stays_unless_it_cannot_narrow() {
        let t = split("clear the I_NEW state and wake up any waiters");
        let named: Vec<bool> = t.terms.iter().map(|w| w == b"i_new").collect();
        // i_new is not the rarest: it stays, and the rarest prose that fits.
        let bounds = [100, 5_000, 1_500, 7_000, 600, 9_000, 20_000];
        let kept = keep_within(t.clone(), &bounds, &named, 30_000, 2_000);
        assert_eq!(kept.terms, vec![b"waiters".to_vec(), b"i_new".to_vec()]);
        // Over the budget alone, it still stays, alone.
        let bounds = [100, 5_000, 2_500, 7_000, 600, 9_000, 20_000];
        assert_eq!(keep_within(t.clone(), &bounds, &named, 30_000, 2_000).terms, vec![b"i_new".to_vec()]);
        // An identifier that cannot narrow (no grams: every chunk) is left
        // out; the rarest term and the prose words that fit come in.
        let t = split("initialize UGEE v2 battery reporting.");
        let named: Vec<bool> = t.terms.iter().map(|w| w == b"v2").collect();
        let words: Vec<&[u8]> = t.terms.iter().map(Vec::as_slice).collect();
        assert_eq!(words, vec![&b"initialize"[..], b"reporting", b"battery", b"ugee", b"v2"]);
        let kept = keep_within(t.clone(), &[30_000, 8_000, 3_000, 50, 200_000], &named, 200_000, 20_000);
        assert_eq!(kept.terms, vec![b"reporting".to_vec(), b"battery".to_vec(), b"ugee".to_vec()]);
    }

    #[test]
    fn count_bounds_hold_on_a_real_index() {
        use crate::index::{build::BuildOptions, Index};
        let dir = tempfile::tempdir().unwrap();
        let (root, idx) = (dir.path().join("src"), dir.path().join("idx"));
        std::fs::create_dir_all(&root).unwrap();
        for i in 0..40 {
            let extra = if i % 3 == 0 { "fn clear_state() { wake_waiters(); }\n" } else { "" };
            std::fs::write(root.join(format!("f{i}.rs")), format!("// state {i}\n{extra}fn f{i}() {{}}\n")).unwrap();
        }
        let index = Index::build(&root, &idx, &BuildOptions::default(), &mut |_, _, _| {}).unwrap();
        let snap = index.snapshot();
        let t = split("clear the state and wake up any waiters");
        let bounds = candidate_bounds(&snap, &t);
        let scorer = super::super::rank::Scorer::new(&t);
        let (df, _) = super::super::global::document_frequencies(&snap, &scorer);
        for (i, (&b, &d)) in bounds.iter().zip(&df).enumerate() {
            assert!(b >= d, "term {:?}: bound {b} < df {d}", String::from_utf8_lossy(&t.terms[i]));
        }
    }
}
