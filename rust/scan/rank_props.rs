//! Property tests of the ranked fast path against a naive reference written
//! here from the contract alone (it shares no scoring, matching or top-k
//! code with [`super::rank`] or [`crate::reference`]):
//!
//! - with k past the number of matching lines, the fast path returns exactly
//!   the lines whose ASCII-case-folded text holds a query term, each once;
//! - every hit's span is an occurrence of a term or of the whole query, on
//!   the hit's line;
//! - lines holding the whole query in its exact case come first, then lines
//!   holding it in another case, then the rest (the phrase bonuses dominate
//!   every other part of a score);
//! - early termination is exact: the top k is the first k of the full list;
//! - the reference scanner agrees hit for hit.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use proptest::prelude::*;

use crate::index::build::BuildOptions;
use crate::index::{Index, Snapshot};
use crate::query::terms;
use crate::reference;
use crate::scan::rank::{self, Scorer};
use crate::scan::{locate, RawHit};

// Every query word also comes in other cases and inside longer words, and whole two-word phrases come in
// exact and other cases, so most corpora hold every phrase class.
const WORDS: &[&str] = &[
    "foo", "bar", "baz", "qux", "foobar", "bar_baz", "Foo", "BAR", "fOo", "Baz", "QUX", "foo bar", "Foo Bar",
    "FOO bar", "bar baz", "x", "(", ".",
];
const QUERY_WORDS: &[&str] = &["foo", "bar", "baz", "qux"];

fn line() -> impl Strategy<Value = String> {
    prop::collection::vec((prop::sample::select(WORDS), prop::sample::select(&[" ", "", "  "][..])), 0..10)
        .prop_map(|parts| parts.into_iter().map(|(w, sep)| format!("{w}{sep}")).collect::<String>())
}

fn file() -> impl Strategy<Value = String> {
    (prop::collection::vec(line(), 0..10), any::<bool>()).prop_map(|(lines, final_newline)| {
        let mut text = lines.join("\n");
        if final_newline && !text.is_empty() {
            text.push('\n');
        }
        text
    })
}

fn corpus() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::btree_map(prop::sample::select(&["a.txt", "b.py", "dir/c.rs", "dir/d.md"][..]), file(), 1..4)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn query() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(QUERY_WORDS), 1..3).prop_map(|w| w.join(" "))
}

fn build(files: &[(String, String)]) -> (tempfile::TempDir, Index) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    crate::test_tree::write_tree(&root, files.iter().map(|(rel, text)| (rel, text)));
    let index = Index::build(&root, &tmp.path().join("idx"), &BuildOptions::default(), &mut |_, _, _| {}).unwrap();
    (tmp, index)
}

/// (path, 1-based line, line text) of every line, split on `\n` with no line
/// after a final newline: the naive way.
fn lines_of(files: &[(String, String)]) -> Vec<(String, u32, String)> {
    let mut out = Vec::new();
    for (path, text) in files {
        let mut parts: Vec<&str> = text.split('\n').collect();
        if parts.last() == Some(&"") {
            parts.pop();
        }
        for (i, l) in parts.iter().enumerate() {
            out.push((path.clone(), i as u32 + 1, l.to_string()));
        }
    }
    out
}

fn fast(snap: &Snapshot, q: &str, k: usize) -> Vec<(String, u32, usize, usize, String)> {
    let mut scorer = Scorer::new(&terms::split(q));
    let (raw, _) = rank::search(snap, &mut scorer, k, None, Instant::now());
    raw.into_iter().map(|h| render(snap, h)).collect()
}

fn slow(snap: &Snapshot, q: &str, k: usize) -> Vec<(String, u32, usize, usize, String)> {
    let mut scorer = Scorer::new(&terms::split(q));
    let (raw, truncated) = reference::search(snap, &mut scorer, k, None);
    assert!(!truncated);
    raw.into_iter().map(|h| render(snap, h)).collect()
}

fn render(snap: &Snapshot, mut h: RawHit) -> (String, u32, usize, usize, String) {
    locate(snap, &mut h);
    let content = snap.content(h.file);
    let text = String::from_utf8_lossy(&content[h.line_start..h.line_end]).into_owned();
    (snap.path(h.file).to_string(), h.line, h.byte_start - h.line_start, h.byte_end - h.line_start, text)
}

/// 2: the line holds the query exactly; 1: in another ASCII case; 0: not.
fn phrase_class(line: &str, q: &str) -> u8 {
    if line.contains(q) {
        2
    } else if line.to_ascii_lowercase().contains(&q.to_ascii_lowercase()) {
        1
    } else {
        0
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn fast_path_matches_the_naive_reference(files in corpus(), q in query()) {
        let (_tmp, index) = build(&files);
        let snap: Arc<Snapshot> = index.snapshot();
        let words: Vec<String> = q.split(' ').map(str::to_string).collect();
        let lines = lines_of(&files);
        let want: BTreeSet<(String, u32)> = lines
            .iter()
            .filter(|(_, _, l)| {
                let folded = l.to_ascii_lowercase();
                words.iter().any(|w| folded.contains(w.as_str()))
            })
            .map(|(p, n, _)| (p.clone(), *n))
            .collect();

        let all = fast(&snap, &q, 10_000);
        let got: BTreeSet<(String, u32)> = all.iter().map(|(p, n, ..)| (p.clone(), *n)).collect();
        prop_assert_eq!(got.len(), all.len(), "a line was returned twice");
        prop_assert_eq!(&got, &want);

        let mut prev_class = 2u8;
        for (path, line_no, s, e, text) in &all {
            let naive_line = &lines.iter().find(|(p, n, _)| p == path && n == line_no).unwrap().2;
            prop_assert_eq!(text, naive_line);
            let span = text[*s..*e].to_ascii_lowercase();
            prop_assert!(span == q.to_ascii_lowercase() || words.contains(&span), "span {:?} of {:?}", span, text);
            let class = phrase_class(text, &q);
            prop_assert!(class <= prev_class, "{:?} ranked after a worse phrase class", text);
            prev_class = class;
        }

        for k in [1usize, 3, 7] {
            let top = fast(&snap, &q, k);
            prop_assert_eq!(&top[..], &all[..k.min(all.len())]);
        }
        prop_assert_eq!(slow(&snap, &q, 10_000), all);
    }

    /// A search capped at n verified chunks returns real hits, each scored
    /// as in the uncapped list and in its order; under the cap it is the
    /// uncapped top k.
    #[test]
    fn a_capped_search_is_exact_over_what_it_verified(files in corpus(), q in query()) {
        let (_tmp, index) = build(&files);
        let snap: Arc<Snapshot> = index.snapshot();
        let scored = |k: usize, cap: Option<u64>| {
            let mut scorer = Scorer::new(&terms::split(&q));
            let (raw, o) = rank::search_capped(&snap, &mut scorer, k, None, Instant::now(), cap);
            (raw.into_iter().map(|h| { let bits = h.score.to_bits(); (render(&snap, h), bits) }).collect::<Vec<_>>(), o)
        };
        let (all, _) = scored(10_000, None);
        for cap in [1u64, 2, 3] {
            for k in [1usize, 3, 7] {
                let (got, o) = scored(k, Some(cap));
                prop_assert!(o.visited <= cap);
                prop_assert!(got.len() <= k);
                let mut at = 0;
                for h in &got {
                    let i = all[at..].iter().position(|a| a == h);
                    prop_assert!(i.is_some(), "{:?} is not an uncapped hit, or out of order", h);
                    at += i.unwrap() + 1;
                }
                if !o.capped {
                    prop_assert_eq!(&got[..], &all[..k.min(all.len())]);
                }
            }
        }
    }

    /// A search that returns fewer hits than asked for (it ran out of
    /// candidates, or reached its cap, before its top k filled) returns the
    /// same for any larger k, capped or not, and so does the reference
    /// scanner: what lets a union route skip its second Stage-A search.
    #[test]
    fn a_short_answer_is_the_answer_for_any_larger_k(files in corpus(), q in query()) {
        let (_tmp, index) = build(&files);
        let snap: Arc<Snapshot> = index.snapshot();
        let scored = |k: usize, cap: Option<u64>| {
            let mut scorer = Scorer::new(&terms::split(&q));
            let (raw, o) = rank::search_capped(&snap, &mut scorer, k, None, Instant::now(), cap);
            prop_assert!(!o.budget_exhausted);
            Ok(raw.into_iter().map(|h| { let bits = h.score.to_bits(); (render(&snap, h), bits) }).collect::<Vec<_>>())
        };
        for cap in [None, Some(1u64), Some(2), Some(3)] {
            for k in [1usize, 2, 3, 5, 7] {
                let got = scored(k, cap)?;
                if got.len() < k {
                    for more in [k + 1, 18, 50, 10_000] {
                        prop_assert_eq!(&scored(more, cap)?, &got, "cap {:?}, k {} -> {}", cap, k, more);
                    }
                }
            }
        }
        for k in [1usize, 3, 7] {
            let got = slow(&snap, &q, k);
            if got.len() < k {
                prop_assert_eq!(slow(&snap, &q, 10_000), got);
            }
        }
    }

    /// A file's chunks of one candidate group are queued as one entry that
    /// yields them in turn (`rank::materialize`): the search visits the
    /// same chunks in the same order as when each chunk is queued alone,
    /// so every answer, capped or not, and every count are the same. Files
    /// of many lines, so that they have several chunks.
    #[test]
    fn a_file_run_pops_as_its_chunks_would(files in long_corpus(), q in query()) {
        let (_tmp, index) = build(&files);
        let snap: Arc<Snapshot> = index.snapshot();
        let several = snap.segments.iter().any(|v| (0..v.seg.nfiles()).any(|f| v.seg.file(f).nchunks > 1));
        prop_assert!(several, "the corpus should have a file of several chunks");
        let run = |per_chunk: bool, k: usize, cap: Option<u64>| {
            rank::PER_CHUNK.with(|c| c.set(per_chunk));
            let mut scorer = Scorer::new(&terms::split(&q));
            let (raw, o) = rank::search_capped(&snap, &mut scorer, k, None, Instant::now(), cap);
            rank::PER_CHUNK.with(|c| c.set(false));
            let hits: Vec<_> = raw.into_iter().map(|h| { let bits = h.score.to_bits(); (render(&snap, h), bits) }).collect();
            (hits, o)
        };
        for cap in [None, Some(1u64), Some(2), Some(3), Some(5), Some(9)] {
            for k in [1usize, 3, 7, 50] {
                prop_assert_eq!(run(false, k, cap), run(true, k, cap), "cap {:?}, k {}", cap, k);
            }
        }
    }
}

/// Files of 200-900 lines (several 8 KiB chunks each).
fn long_corpus() -> impl Strategy<Value = Vec<(String, String)>> {
    let long_file = prop::collection::vec(line(), 200..900).prop_map(|lines| {
        let mut text = lines.join("\n");
        text.push('\n');
        // Pad each file past two chunks whatever its lines hold.
        text.push_str(&"// padding line without query words\n".repeat(600));
        text
    });
    prop::collection::btree_map(prop::sample::select(&["a.txt", "b.py", "dir/c.rs", "dir/d.md"][..]), long_file, 1..4)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}
