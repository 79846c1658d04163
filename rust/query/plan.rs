//! Planning: from a pattern's HIR to the n-gram lookups that must succeed in
//! any file it matches, in the manner of Google Code Search and Zoekt.
//!
//! Each node yields either the exact, finite set of (folded) strings it can
//! match, or only a necessary condition. Concatenations multiply exact sets
//! while they stay small; alternations union them. A set of strings becomes
//! an OR over its members of the AND of each member's trigrams; a member
//! shorter than three bytes cannot narrow, so it makes the whole OR `All`.

use std::collections::BTreeSet;

use regex_syntax::hir::{self, Class, Hir, HirKind};

use crate::index::format::Segment;
use crate::index::grams::{fold, for_each_gram};
use crate::index::postings::{decode_into, FileSet};

const MAX_EXACT: usize = 64;
const MAX_CLASS: usize = 8;

/// A boolean query over n-grams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GramQuery {
    /// Every file may match.
    All,
    /// No file can match.
    Nothing,
    /// Files holding every one of these grams.
    Grams(Vec<u32>),
    And(Vec<GramQuery>),
    Or(Vec<GramQuery>),
}

impl GramQuery {
    fn and(parts: Vec<GramQuery>) -> GramQuery {
        let mut out = Vec::new();
        for p in parts {
            match p {
                GramQuery::All => {}
                GramQuery::Nothing => return GramQuery::Nothing,
                GramQuery::And(inner) => out.extend(inner),
                other => out.push(other),
            }
        }
        match out.len() {
            0 => GramQuery::All,
            1 => out.pop().unwrap(),
            _ => GramQuery::And(out),
        }
    }

    /// Files that may hold any one of several strings' queries.
    pub fn any(parts: Vec<GramQuery>) -> GramQuery {
        Self::or(parts)
    }

    fn or(parts: Vec<GramQuery>) -> GramQuery {
        let mut out = Vec::new();
        for p in parts {
            match p {
                GramQuery::All => return GramQuery::All,
                GramQuery::Nothing => {}
                GramQuery::Or(inner) => out.extend(inner),
                other => out.push(other),
            }
        }
        match out.len() {
            0 => GramQuery::Nothing,
            1 => out.pop().unwrap(),
            _ => GramQuery::Or(out),
        }
    }

    /// The query for "the text holds `s`" (ASCII case folded).
    pub fn for_string(s: &[u8]) -> GramQuery {
        let mut grams = Vec::new();
        for_each_gram(s, |g| grams.push(g));
        Self::all_of(grams)
    }

    /// The query for "the text holds `s` with exactly this case": its grams
    /// that hold a capital (the only ones stored unfolded).
    pub fn for_exact_case(s: &[u8]) -> GramQuery {
        let mut grams = Vec::new();
        crate::index::grams::for_each_case_gram(s, |g| grams.push(g));
        Self::all_of(grams)
    }

    /// Files holding every one of `grams` (no grams: no constraint).
    fn all_of(mut grams: Vec<u32>) -> GramQuery {
        grams.sort_unstable();
        grams.dedup();
        if grams.is_empty() {
            GramQuery::All
        } else {
            GramQuery::Grams(grams)
        }
    }

    /// Both queries must hold.
    pub fn both(a: GramQuery, b: GramQuery) -> GramQuery {
        Self::and(vec![a, b])
    }

    /// The chunks of `seg` this query admits; `None` means all of them.
    pub fn eval(&self, seg: &Segment) -> Option<FileSet> {
        self.eval_with(seg, &mut GramSets::default())
    }

    /// `eval`, decoding each gram's list at most once across the calls that
    /// share `cache` (an identifier's spellings share most of their grams).
    pub fn eval_with(&self, seg: &Segment, cache: &mut GramSets) -> Option<FileSet> {
        let n = seg.nchunks();
        match self {
            GramQuery::All => None,
            GramQuery::Nothing => Some(FileSet::empty(n)),
            GramQuery::Grams(grams) => {
                let mut lists = Vec::with_capacity(grams.len());
                for &g in grams {
                    match seg.postings(g) {
                        Some((kind, bytes)) => lists.push((g, kind, bytes)),
                        None => return Some(FileSet::empty(n)),
                    }
                }
                // Shortest lists first: the running set only shrinks.
                lists.sort_by_key(|&(_, _, b)| b.len());
                let mut acc: Option<FileSet> = None;
                for (g, kind, bytes) in lists {
                    let set = cache.0.entry(g).or_insert_with(|| {
                        let mut s = FileSet::empty(n);
                        decode_into(kind, bytes, &mut s);
                        s
                    });
                    match &mut acc {
                        None => acc = Some(set.clone()),
                        Some(a) => a.and_with(set),
                    }
                    if acc.as_ref().is_some_and(|a| a.is_empty()) {
                        break;
                    }
                }
                acc
            }
            GramQuery::And(parts) => {
                let mut acc: Option<FileSet> = None;
                for p in parts {
                    if let Some(s) = p.eval_with(seg, cache) {
                        match &mut acc {
                            None => acc = Some(s),
                            Some(a) => a.and_with(&s),
                        }
                    }
                }
                acc
            }
            GramQuery::Or(parts) => {
                let mut acc = FileSet::empty(n);
                for p in parts {
                    acc.or_with(&p.eval_with(seg, cache)?);
                }
                Some(acc)
            }
        }
    }
}

impl GramQuery {
    /// At least as many chunks of `seg` as [`GramQuery::eval`] would admit,
    /// read from the gram dictionary's list lengths alone (nothing decoded):
    /// the smallest list of an `AND`, the sum of an `OR`'s parts.
    pub fn count_bound(&self, seg: &Segment) -> u64 {
        let n = seg.nchunks();
        let bound = match self {
            GramQuery::All => u64::from(n),
            GramQuery::Nothing => 0,
            GramQuery::Grams(grams) => grams
                .iter()
                .map(|&g| seg.postings(g).map_or(0, |(kind, bytes)| crate::index::postings::count(kind, bytes, n)))
                .min()
                .unwrap_or(u64::from(n)),
            GramQuery::And(parts) => parts.iter().map(|p| p.count_bound(seg)).min().unwrap_or(u64::from(n)),
            GramQuery::Or(parts) => parts.iter().map(|p| p.count_bound(seg)).sum(),
        };
        bound.min(u64::from(n))
    }
}

/// Decoded posting lists of one segment, kept for the length of one query.
#[derive(Default)]
pub struct GramSets(std::collections::HashMap<u32, FileSet>);

struct Info {
    exact: Option<BTreeSet<Vec<u8>>>,
    query: GramQuery,
}

impl Info {
    fn exact(set: BTreeSet<Vec<u8>>) -> Info {
        Info { exact: Some(set), query: GramQuery::All }
    }

    fn inexact(query: GramQuery) -> Info {
        Info { exact: None, query }
    }

    fn into_query(self) -> GramQuery {
        match self.exact {
            Some(set) => GramQuery::or(set.iter().map(|s| GramQuery::for_string(s)).collect()),
            None => self.query,
        }
    }
}

fn folded(b: &[u8]) -> Vec<u8> {
    b.iter().map(|&c| fold(c)).collect()
}

/// The byte strings a class matches (each code point's UTF-8, or each
/// byte), when there are at most `MAX_CLASS` of them.
fn class_members(class: &Class) -> Option<Vec<Vec<u8>>> {
    match class {
        Class::Unicode(c) => {
            let size: usize = c.ranges().iter().map(|r| r.end() as usize - r.start() as usize + 1).sum();
            (size <= MAX_CLASS).then(|| {
                c.ranges()
                    .iter()
                    .flat_map(|r| r.start()..=r.end())
                    .map(|ch| ch.encode_utf8(&mut [0u8; 4]).as_bytes().to_vec())
                    .collect()
            })
        }
        Class::Bytes(c) => {
            let size: usize = c.ranges().iter().map(|r| r.end() as usize - r.start() as usize + 1).sum();
            (size <= MAX_CLASS).then(|| c.ranges().iter().flat_map(|r| r.start()..=r.end()).map(|b| vec![b]).collect())
        }
    }
}

fn class_strings(class: &Class) -> Option<BTreeSet<Vec<u8>>> {
    Some(class_members(class)?.iter().map(|m| folded(m)).collect())
}

fn analyze(h: &Hir) -> Info {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => Info::exact(BTreeSet::from([Vec::new()])),
        HirKind::Literal(hir::Literal(b)) => Info::exact(BTreeSet::from([folded(b)])),
        HirKind::Class(c) => match class_strings(c) {
            Some(set) if set.is_empty() => Info::inexact(GramQuery::Nothing),
            Some(set) => Info::exact(set),
            None => Info::inexact(GramQuery::All),
        },
        HirKind::Capture(c) => analyze(&c.sub),
        HirKind::Repetition(r) => {
            if r.min == 0 {
                Info::inexact(GramQuery::All)
            } else if r.min == 1 && r.max == Some(1) {
                analyze(&r.sub)
            } else {
                Info::inexact(analyze(&r.sub).into_query())
            }
        }
        HirKind::Concat(subs) => {
            let mut required = Vec::new();
            let mut cur: Option<BTreeSet<Vec<u8>>> = Some(BTreeSet::from([Vec::new()]));
            let mut exact_throughout = true;
            for sub in subs {
                let info = analyze(sub);
                match (cur.take(), info.exact) {
                    (Some(a), Some(b)) if a.len() * b.len() <= MAX_EXACT => {
                        cur = Some(a.iter().flat_map(|x| b.iter().map(move |y| [x.as_slice(), y].concat())).collect());
                    }
                    (Some(a), Some(b)) => {
                        exact_throughout = false;
                        required.push(Info::exact(a).into_query());
                        cur = Some(b);
                    }
                    (a, None) => {
                        exact_throughout = false;
                        if let Some(a) = a {
                            required.push(Info::exact(a).into_query());
                        }
                        required.push(info.query);
                        cur = Some(BTreeSet::from([Vec::new()]));
                    }
                    (None, Some(b)) => cur = Some(b),
                }
            }
            if exact_throughout {
                return Info::exact(cur.unwrap_or_default());
            }
            if let Some(a) = cur {
                required.push(Info::exact(a).into_query());
            }
            Info::inexact(GramQuery::and(required))
        }
        HirKind::Alternation(subs) => {
            let infos: Vec<Info> = subs.iter().map(analyze).collect();
            if infos.iter().all(|i| i.exact.is_some()) {
                let union: BTreeSet<Vec<u8>> = infos.iter().flat_map(|i| i.exact.clone().unwrap()).collect();
                if union.len() <= MAX_EXACT {
                    return Info::exact(union);
                }
            }
            Info::inexact(GramQuery::or(infos.into_iter().map(Info::into_query).collect()))
        }
    }
}

/// The exact-case grams every match of `hir` holds, from the strings one of
/// which each match contains: an OR over those strings of the AND of their
/// grams that hold a capital (see `grams`). `All` when that says nothing.
pub fn case_plan(h: &Hir) -> GramQuery {
    match required(h) {
        Some(set) => GramQuery::or(set.iter().map(|s| GramQuery::for_exact_case(s)).collect()),
        None => GramQuery::All,
    }
}

/// A set of byte strings one of which every match of `hir` contains (exact
/// bytes, not folded), for verifying line by line from literal hits the way
/// ripgrep does with inner literals. `None` when no set of strings of at
/// least two bytes (and at most `MAX_EXACT` members) is required.
pub fn required_literals(h: &Hir) -> Option<Vec<Vec<u8>>> {
    let set = required(h)?;
    let min = set.iter().map(Vec::len).min()?;
    (min >= 2).then(|| set.into_iter().collect())
}

/// The exact strings `h` matches, if few and finite (case kept).
fn exact_strings(h: &Hir) -> Option<BTreeSet<Vec<u8>>> {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => Some(BTreeSet::from([Vec::new()])),
        HirKind::Literal(hir::Literal(b)) => Some(BTreeSet::from([b.to_vec()])),
        HirKind::Class(c) => Some(class_members(c)?.into_iter().collect()),
        HirKind::Capture(c) => exact_strings(&c.sub),
        HirKind::Repetition(r) if r.min == 1 && r.max == Some(1) => exact_strings(&r.sub),
        HirKind::Concat(subs) => {
            let mut acc = BTreeSet::from([Vec::new()]);
            for sub in subs {
                let next = exact_strings(sub)?;
                if acc.len() * next.len() > MAX_EXACT {
                    return None;
                }
                acc = acc.iter().flat_map(|a| next.iter().map(move |b| [a.as_slice(), b].concat())).collect();
            }
            Some(acc)
        }
        HirKind::Alternation(subs) => {
            let mut acc = BTreeSet::new();
            for sub in subs {
                acc.extend(exact_strings(sub)?);
                if acc.len() > MAX_EXACT {
                    return None;
                }
            }
            Some(acc)
        }
        _ => None,
    }
}

fn required(h: &Hir) -> Option<BTreeSet<Vec<u8>>> {
    if let Some(set) = exact_strings(h) {
        return (!set.iter().any(Vec::is_empty)).then_some(set);
    }
    match h.kind() {
        HirKind::Capture(c) => required(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => required(&r.sub),
        // Any child's requirement will do: take the one whose shortest
        // member is longest (the most selective).
        HirKind::Concat(subs) => subs
            .iter()
            .filter_map(required)
            .max_by_key(|set| (set.iter().map(Vec::len).min().unwrap_or(0), std::cmp::Reverse(set.len()))),
        HirKind::Alternation(subs) => {
            let mut acc = BTreeSet::new();
            for sub in subs {
                acc.extend(required(sub)?);
            }
            (acc.len() <= MAX_EXACT).then_some(acc)
        }
        _ => None,
    }
}

/// The n-gram query every file matching `hir` satisfies.
pub fn plan(hir: &Hir) -> GramQuery {
    analyze(hir).into_query()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::grams::pack;

    fn plan_of(re: &str, ci: bool) -> GramQuery {
        plan(&crate::query::parser(ci).parse(re).unwrap())
    }

    #[test]
    fn required_literals_come_from_inside_the_pattern() {
        let req = |re: &str| required_literals(&crate::query::parser(false).parse(re).unwrap());
        assert_eq!(req(r"\wAh"), Some(vec![b"Ah".to_vec()]));
        assert_eq!(req(r"[A-Z]+_RESUME"), Some(vec![b"_RESUME".to_vec()]));
        assert_eq!(req(r"foo|\w+bar"), Some(vec![b"bar".to_vec(), b"foo".to_vec()]));
        assert_eq!(req(r"\w+"), None);
        assert_eq!(req(r"a\w"), None);
        assert_eq!(req(r"x*ab"), Some(vec![b"ab".to_vec()]));
    }

    #[test]
    fn case_sensitive_patterns_use_exact_case_grams() {
        let cp = |re: &str, ci: bool| case_plan(&crate::query::parser(ci).parse(re).unwrap());
        assert!(matches!(cp("PM_RESUME", false), GramQuery::Grams(g) if g.len() == 7));
        assert_eq!(cp("pm_resume", false), GramQuery::All);
        assert_eq!(cp("PM_RESUME", true), GramQuery::All); // 2^8 spellings: nothing to say
        assert!(matches!(cp("ERR_SYS|PME_TURN_OFF", false), GramQuery::Or(v) if v.len() == 2));
    }

    #[test]
    fn literals_become_their_grams() {
        let q = plan_of("abcd", false);
        let mut want = vec![pack(b'a', b'b', b'c'), pack(b'b', b'c', b'd')];
        want.sort();
        assert_eq!(q, GramQuery::Grams(want));
    }

    #[test]
    fn short_or_unbounded_patterns_scan_everything() {
        assert_eq!(plan_of(r"\wAh", false), GramQuery::All);
        assert_eq!(plan_of("a*", false), GramQuery::All);
        assert_eq!(plan_of("ab|cde", false), GramQuery::All);
    }

    #[test]
    fn classes_and_alternations_narrow() {
        assert!(matches!(plan_of("[A-Z]+_RESUME", false), GramQuery::Grams(_)));
        assert!(matches!(plan_of("ERR_SYS|PME_TURN_OFF|LINK_REQ_RST", false), GramQuery::Or(v) if v.len() == 3));
        // Unicode folding adds the Kelvin sign and long s as separate strings.
        assert!(matches!(plan_of("(?i)kiss", true), GramQuery::Or(_)));
        assert!(matches!(plan_of("(?i)PM_RESUME", true), GramQuery::Or(_)));
    }
}
