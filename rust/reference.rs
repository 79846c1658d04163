//! The reference scanner: the baseline path and the oracle. No index, no
//! SIMD, no early termination: every live file, line by line, with the
//! standard library's slice methods and the `regex` crate. Property tests
//! require the fast path to return exactly what this returns.

use std::collections::HashSet;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::index::chunks::chunk_bounds;
use crate::index::grams::for_each_gram;
use crate::index::{FileRef, Snapshot};
use crate::query::{GramQuery, Pattern, PatternKind};
use crate::scan::rank::{score_chunk, LineAcc, Scorer, TopK};
use crate::scan::RawHit;

/// The lines of `content`: split on `\n`, with no phantom empty line after a
/// final newline.
pub fn lines(content: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut start = 0usize;
    std::iter::from_fn(move || {
        if start >= content.len() {
            return None;
        }
        let end = content[start..].iter().position(|&b| b == b'\n').map_or(content.len(), |i| start + i);
        let line = (start, &content[start..end]);
        start = end + 1;
        Some(line)
    })
}

fn naive_find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Greps every live file (in path order), line by line. A pattern the
/// `regex` crate will not build (over its size limit, say) is a query error,
/// as it is on the fast path.
pub fn grep(snap: &Snapshot, p: &Pattern, limit: usize) -> Result<Vec<RawHit>> {
    let re = regex::bytes::RegexBuilder::new(&p.source)
        .case_insensitive(p.options.ignore_case)
        .multi_line(true)
        .unicode(true)
        .build()
        .map_err(|e| Error::query(format!("the pattern cannot be compiled: {e}"), None))?;
    let mut out = Vec::new();
    for &f in snap.path_order() {
        let content = snap.content(f);
        for (i, (ls, line)) in lines(content).enumerate() {
            let found = match (&p.kind, p.options.word) {
                (PatternKind::Literal(lit), false) => naive_find(line, lit).map(|s| (s, s + lit.len())),
                (_, true) => re.captures(line).and_then(|c| c.get(1)).map(|m| (m.start(), m.end())),
                _ => re.find(line).map(|m| (m.start(), m.end())),
            };
            if let Some((s, e)) = found {
                out.push(RawHit {
                    file: f,
                    line: i as u32 + 1,
                    line_start: ls,
                    line_end: ls + line.len(),
                    byte_start: ls + s,
                    byte_end: ls + e,
                    score: 0.0,
                    why: vec!["match"],
                });
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}

fn fold_line(line: &[u8]) -> Vec<u8> {
    line.iter().map(|b| b.to_ascii_lowercase()).collect()
}

fn past(deadline: Option<Instant>) -> bool {
    // A clock read per chunk: next to hashing every gram of a chunk, it is free.
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// Ranked search over every live file, scored exactly as the fast path
/// scores, with every statistic computed from the raw contents: chunks (the
/// unit the index keeps statistics for) are cut by the same pure function.
///
/// It reads every live byte, twice (document frequencies, then scoring), so
/// it is the slowest way to answer: a `deadline`, checked per file and per
/// chunk, stops it, returning the best hits of the chunks scored so far and
/// `true` (truncated). Past the deadline while still counting document
/// frequencies, nothing can be scored fairly, and it returns no hits.
pub fn search(snap: &Snapshot, scorer: &mut Scorer, k: usize, deadline: Option<Instant>) -> (Vec<RawHit>, bool) {
    let mut chunks: Vec<(FileRef, usize, usize)> = Vec::new();
    for f in snap.live_files() {
        if past(deadline) {
            return (Vec::new(), true);
        }
        chunks.extend(chunk_bounds(snap.content(f)).into_iter().map(|(s, l)| (f, s as usize, (s + l) as usize)));
    }
    // Document frequencies as the index would count them: chunks whose gram
    // set covers each term's grams, computed here from the text itself.
    let mut df = vec![0u64; scorer.terms.len()];
    for &(f, s, e) in &chunks {
        if past(deadline) {
            return (Vec::new(), true);
        }
        let mut grams = HashSet::new();
        for_each_gram(&snap.content(f)[s..e], |g| {
            grams.insert(g);
        });
        for (t, plan) in scorer.term_plans.iter().enumerate() {
            df[t] += u64::from(holds(plan, &grams));
        }
    }
    let (df, n) = crate::scan::global::lexical(df.len()).unwrap_or((df, chunks.len() as u64));
    scorer.set_document_frequencies(&df, n);
    let mut top = TopK::new(k);
    for &(f, cs, ce) in &chunks {
        if past(deadline) {
            return (top.into_sorted(), true);
        }
        let content = snap.content(f);
        let mut accs = Vec::new();
        let (mut terms_held, mut phrase_held) = (0u32, false);
        for (ls, line) in lines(&content[cs..ce]) {
            let ls = cs + ls;
            let folded = fold_line(line);
            let mut acc = LineAcc::new(ls, ls + line.len());
            for (p, pat) in scorer.patterns.iter().enumerate() {
                if pat.is_empty() || pat.len() > folded.len() {
                    continue;
                }
                for (i, w) in folded.windows(pat.len()).enumerate() {
                    if w == pat.as_slice() {
                        terms_held |= scorer.pattern_term[p].map_or(0, |t| 1 << t);
                        phrase_held |= scorer.pattern_phrase[p];
                        scorer.record(&mut acc, content, p, ls + i, ls + i + pat.len());
                    }
                }
            }
            if acc.present != 0 || acc.phrase_folded.is_some() {
                accs.push(acc);
            }
        }
        if scorer.eligible(terms_held, phrase_held) {
            let prior = crate::index::build::prior(snap.path(f), content.len() as u64);
            // From the path itself, not the native search's name index.
            score_chunk(scorer, snap, f, &accs, prior, scorer.name_part(snap.path(f)), &mut top);
        }
    }
    (top.into_sorted(), false)
}

/// Whether a gram set satisfies a term's gram query.
fn holds(plan: &GramQuery, grams: &HashSet<u32>) -> bool {
    match plan {
        GramQuery::All => true,
        GramQuery::Nothing => false,
        GramQuery::Grams(gs) => gs.iter().all(|g| grams.contains(g)),
        GramQuery::And(parts) => parts.iter().all(|p| holds(p, grams)),
        GramQuery::Or(parts) => parts.iter().any(|p| holds(p, grams)),
    }
}
