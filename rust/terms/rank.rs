//! Code-aware ranking rules, applied to the BM25F candidate pool. Each can
//! be switched alone (`LENS_TERMS_ABLATE` / `LENS_TERMS_EXTRA`, for the
//! ablation table in BENCHMARKS.md):
//!
//! - `ident`: query words that spell a definition's name (`parse http date`
//!   -> `parse_http_date`), or its name plus its container or module
//!   (`escape html` -> `html.escape`), boost it strongly.
//! - `keys` (off by default, see [`Rules::default`]): the spelled keys are
//!   also query terms at scoring time (the `#parse_http_date` name term), so
//!   such a definition reaches the pool however weak its other fields.
//! - `sink`: tests, vendored and generated code sink, and so do windows of
//!   files without definitions.
//! - `files`: a file with several matching definitions gets a modest boost.
//! - `diversify` (off by default, see [`Rules::default`]): past a file's
//!   first two hits, each further one counts for less, so one file cannot
//!   fill the top 10.

use std::collections::{HashMap, HashSet};

use super::tokenize::{subtokens, Analyzer};

/// Which rules are on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// The definition index itself ("terms" in `LENS_TERMS_ABLATE` routes
    /// every query to Stage-A, as before it existed).
    pub enabled: bool,
    pub ident: bool,
    /// The spelled keys as extra query terms (part of `ident`, measurable alone as "keys").
    pub keys: bool,
    pub sink: bool,
    pub files: bool,
    pub diversify: bool,
}

impl Default for Rules {
    /// `diversify` is off: it lowered both nDCG@10 and recall@50 on the dev
    /// questions and on the kernel questions (BENCHMARKS.md), since the
    /// answer to a question often sits in a file with several close matches.
    /// `keys` is off: as extra query terms, spelled keys lowered nDCG@10 on
    /// both sets (many definitions spell two words of a longer question).
    fn default() -> Self {
        Rules { enabled: true, ident: true, keys: false, sink: true, files: true, diversify: false }
    }
}

impl Rules {
    /// The default rules less those named in `LENS_TERMS_ABLATE` (comma
    /// separated: ident, sink, files, diversify; "all" for every rule;
    /// "terms" for the definition index itself), plus those named in
    /// `LENS_TERMS_EXTRA` (diversify, keys). Benchmarks set these; the defaults
    /// are what lens runs.
    pub fn from_env() -> Rules {
        let mut r = Rules::default();
        if let Ok(v) = std::env::var("LENS_TERMS_EXTRA") {
            for name in v.split(',').map(str::trim) {
                match name {
                    "diversify" => r.diversify = true,
                    "keys" => r.keys = true,
                    _ => {}
                }
            }
        }
        if let Ok(v) = std::env::var("LENS_TERMS_ABLATE") {
            for name in v.split(',').map(str::trim) {
                match name {
                    "terms" => r.enabled = false,
                    "ident" => (r.ident, r.keys) = (false, false),
                    "keys" => r.keys = false,
                    "sink" => r.sink = false,
                    "files" => r.files = false,
                    "diversify" => r.diversify = false,
                    "all" => r = Rules { ident: false, keys: false, sink: false, files: false, diversify: false, ..r },
                    _ => {}
                }
            }
        }
        r
    }
}

/// Multiplier of a spelled-identifier key's weight at scoring time.
pub const KEY_WEIGHT: f64 = 1.5;
/// A spelled name (with its owner) must cover this share of the query's terms.
const SPELL_SHARE: f64 = 0.5;
/// Score factor of a definition whose name the query spells.
const IDENT_BOOST: f64 = 1.6;
/// Windows (text of files without definitions: data, docs, scripts) sink
/// below definitions.
const WINDOW_FACTOR: f64 = 0.5;
/// Per further matching definition in the same file, up to `FILE_MAX` of them.
const FILE_BOOST: f64 = 0.04;
const FILE_MAX: usize = 4;
/// A pool member counts as "matching" for the file boost at this share of the top score.
const FILE_SHARE: f64 = 0.4;
/// Past a file's first `DIVERSIFY_FREE` hits, each further one is worth
/// this much of the one before.
const DIVERSIFY: f64 = 0.8;
const DIVERSIFY_FREE: i32 = 2;

/// How much a path sinks: tests, vendored and generated code.
pub fn path_factor(path: &str) -> f64 {
    let lower = path.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split('/').collect();
    let (dirs, name) = parts.split_at(parts.len() - 1);
    let name = name[0];
    let dir_is = |set: &[&str]| dirs.iter().any(|d| set.contains(d));
    let mut f = 1.0;
    if dir_is(&["test", "tests", "testing", "__tests__", "spec", "testdata", "fixtures", "selftests"])
        || name.starts_with("test_")
        || name.contains("_test.")
        || name.contains(".test.")
        || name.contains("_spec.")
    {
        f *= 0.7;
    }
    if dir_is(&["vendor", "third_party", "thirdparty", "node_modules", "external", "_vendor"]) {
        f *= 0.6;
    }
    if lower.contains("generated") || name.contains(".min.") || name.contains("_pb2") || name.contains(".pb.") {
        f *= 0.6;
    }
    f
}

/// A pool member as the rules see it.
pub struct Candidate<'a> {
    /// The caller's handle on the candidate (the rules re-sort the pool).
    pub id: usize,
    pub score: f64,
    pub path: &'a str,
    pub name: &'a str,
    pub container: &'a str,
    /// A window of lines from a file without definitions, not a definition.
    pub window: bool,
    /// Set by the rules: the query spelled this definition's name.
    pub spelled: bool,
}

fn stems(an: &mut Analyzer, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    subtokens(text.as_bytes(), |t| {
        if let Some(s) = an.term(t) {
            out.push(s.to_string());
        }
    });
    out
}

/// Whether the query's terms spell `name` (all its sub-tokens), with the
/// container or module named too when the name is a single word, and the
/// name covers at least [`SPELL_SHARE`] of the query's terms.
fn spells(an: &mut Analyzer, q: &HashSet<&str>, c: &Candidate<'_>) -> bool {
    let name = stems(an, c.name);
    if name.is_empty() || !name.iter().all(|t| q.contains(t.as_str())) {
        return false;
    }
    // The name must be much of what the question says: in C especially,
    // many functions spell two generic words of a longer question.
    let share = |n: usize| n as f64 >= SPELL_SHARE * q.len() as f64;
    if name.len() >= 2 {
        return share(name.len());
    }
    let module = crate::index::base_name(c.path);
    let module = module.rsplit_once('.').map_or(module, |(s, _)| s);
    let module =
        if module == "__init__" || module == "mod" { c.path.rsplit('/').nth(1).unwrap_or(module) } else { module };
    [c.container, module].iter().any(|owner| {
        let o = stems(an, owner);
        !o.is_empty() && o.iter().all(|t| q.contains(t.as_str()) && !name.contains(t)) && share(1 + o.len())
    })
}

/// Applies the rules in place and sorts the pool best first (stable on ties).
pub fn apply(rules: Rules, an: &mut Analyzer, query_terms: &[String], pool: &mut [Candidate<'_>]) {
    if pool.is_empty() {
        return;
    }
    let q: HashSet<&str> = query_terms.iter().map(String::as_str).collect();
    for c in pool.iter_mut() {
        if rules.ident && spells(an, &q, c) {
            c.spelled = true;
            c.score *= IDENT_BOOST;
        }
        if rules.sink {
            c.score *= path_factor(c.path) * if c.window { WINDOW_FACTOR } else { 1.0 };
        }
    }
    if rules.files {
        let top = pool.iter().map(|c| c.score).fold(0.0, f64::max);
        let mut per_file: HashMap<&str, usize> = HashMap::new();
        for c in pool.iter().filter(|c| c.score >= FILE_SHARE * top) {
            *per_file.entry(c.path).or_default() += 1;
        }
        for c in pool.iter_mut() {
            let n = per_file.get(c.path).copied().unwrap_or(0);
            c.score *= 1.0 + FILE_BOOST * n.saturating_sub(1).min(FILE_MAX) as f64;
        }
    }
    pool.sort_by(|a, b| b.score.total_cmp(&a.score));
    if rules.diversify {
        let mut seen: HashMap<&str, i32> = HashMap::new();
        for c in pool.iter_mut() {
            let n = seen.entry(c.path).or_default();
            c.score *= DIVERSIFY.powi((*n - DIVERSIFY_FREE).max(0));
            *n += 1;
        }
        pool.sort_by(|a, b| b.score.total_cmp(&a.score));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand<'a>(score: f64, path: &'a str, name: &'a str, container: &'a str) -> Candidate<'a> {
        Candidate { id: 0, score, path, name, container, window: false, spelled: false }
    }

    fn q(an: &mut Analyzer, s: &str) -> Vec<String> {
        super::super::tokenize::analyze_query(an, s).terms
    }

    #[test]
    fn spelled_names_rise() {
        let mut an = Analyzer::default();
        let terms = q(&mut an, "escape html");
        let mut pool = vec![cand(2.0, "cgitb.py", "html", ""), cand(1.5, "html/__init__.py", "escape", "")];
        apply(Rules::default(), &mut an, &terms, &mut pool);
        assert_eq!(pool[0].name, "escape");
        assert!(pool[0].spelled);
        assert!(!pool[1].spelled, "a one-word name needs its owner named too");

        let terms = q(&mut an, "how to read a zip file");
        let mut pool = vec![cand(2.0, "a.py", "readfile", ""), cand(1.5, "zipfile.py", "read", "ZipFile")];
        apply(Rules::default(), &mut an, &terms, &mut pool);
        assert_eq!(pool[0].name, "read");
    }

    #[test]
    fn tests_sink_and_one_file_cannot_fill_the_top() {
        assert!(path_factor("tests/test_x.py") < path_factor("x.py"));
        assert!(path_factor("vendor/x.py") < 1.0);
        let mut an = Analyzer::default();
        let mut pool: Vec<Candidate<'_>> = (0..5).map(|i| cand(10.0 - i as f64 * 0.1, "a.py", "f", "")).collect();
        pool.push(cand(8.0, "b.py", "g", ""));
        let rules = Rules { files: false, diversify: true, ..Rules::default() };
        apply(rules, &mut an, &[], &mut pool);
        assert_eq!(pool[3].path, "b.py", "a file's third and later hits make room");
    }
}
