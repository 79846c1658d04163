//! Running a parsed query ([`crate::query::syntax::Query`]) with a path
//! filter ([`crate::query::filter::PathFilter`]) on the engine.
//!
//! Everything that narrows by file (paths=, lang=, `file:`, `lang:`, `-term`,
//! `case:yes`) is decided first, from the file table and (for `-term` and
//! `case:yes`) one indexed grep, and becomes a narrowed snapshot; ranking
//! then runs on it unchanged, so the allowed files yield their `k` best
//! hits. `or` runs each side and merges by score; `sym:` answers from the
//! definitions alone.

use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crate::engine::{Engine, Hit, SearchResult};
use crate::error::Result;
use crate::index::{FileRef, Snapshot};
use crate::query::filter::PathFilter;
use crate::query::syntax::{Case, Query};
use crate::query::{check_query, check_search, GrepOptions, Pattern};
use crate::scan::rank::SearchOutcome;
use crate::symbols::stage::SymHit;

/// A query and the filter it runs under, ready for any stage.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub query: Query,
    pub filter: PathFilter,
}

impl Prepared {
    /// Parses `text` and folds its `file:` / `lang:` clauses into `filter`.
    pub fn new(text: &str, mut filter: PathFilter) -> Result<Prepared> {
        check_query(text)?;
        if let Some(at) = text.find('\n') {
            return Err(crate::error::Error::query(
                "the query contains a line terminator (\\n); lens matches within lines",
                Some(at),
            ));
        }
        let query = crate::query::syntax::parse(text)?;
        filter.include.extend(query.files.iter().cloned());
        filter.exclude.extend(query.not_files.iter().cloned());
        filter.add_langs(&query.langs, &query.not_langs)?;
        Ok(Prepared { query, filter })
    }

    /// Whether anything narrows the files a search answers from.
    pub fn narrows(&self) -> bool {
        !self.filter.is_empty()
            || !self.query.negated.is_empty()
            || self.query.case == Case::Yes
            || self.phrases_required()
    }

    /// With one branch, a file must hold each quoted phrase.
    fn phrases_required(&self) -> bool {
        self.query.branches.len() == 1 && !self.query.phrases.is_empty()
    }
}

/// The files of `snap` where `text` occurs (a literal): a files-only grep,
/// which stops at each file's first match. A narrowed snapshot keeps its
/// parent's segments, so a `FileRef` names the same file in both.
fn files_with(engine: &Engine, snap: &Snapshot, text: &str, ignore_case: bool) -> Result<HashSet<FileRef>> {
    let p = Pattern::compile(text, GrepOptions { regex: false, ignore_case, word: false })?;
    Ok(engine.files_matching(snap, &p)?.into_iter().collect())
}

impl Engine {
    /// `snap` narrowed to the files `prep` allows (or `None` when it allows all).
    pub fn narrowed(&self, snap: &Snapshot, prep: &Prepared) -> Result<Option<Snapshot>> {
        if !prep.narrows() {
            return Ok(None);
        }
        // An empty filter allows every file: no pass over the file table
        // (78 k paths on the kernel) for it; the first clause that narrows
        // starts from `snap` itself.
        let mut narrowed: Option<Snapshot> = (!prep.filter.is_empty()).then(|| {
            let allows = prep.filter.allows_each();
            snap.restricted(|_, path| allows(path))
        });
        let q = &prep.query;
        if !q.negated.is_empty() {
            let within = narrowed.as_ref().unwrap_or(snap);
            let mut out: HashSet<FileRef> = HashSet::new();
            for t in &q.negated {
                out.extend(files_with(self, within, t, q.case != Case::Yes)?);
            }
            narrowed = Some(within.restricted(|f, _| !out.contains(&f)));
        }
        if prep.phrases_required() {
            for p in &q.phrases {
                let within = narrowed.as_ref().unwrap_or(snap);
                let keep = files_with(self, within, p, q.case != Case::Yes)?;
                narrowed = Some(within.restricted(|f, _| keep.contains(&f)));
            }
        }
        if q.case == Case::Yes && q.sym.is_none() {
            // Files holding at least one word or phrase in its exact case.
            let within = narrowed.as_ref().unwrap_or(snap);
            let mut keep: HashSet<FileRef> = HashSet::new();
            for t in q.branch_terms.iter().flatten() {
                keep.extend(files_with(self, within, t, false)?);
            }
            narrowed = Some(within.restricted(|f, _| keep.contains(&f)));
        }
        Ok(Some(narrowed.unwrap_or_else(|| snap.restricted(|_, _| true))))
    }

    /// Ranked search for a parsed query on one snapshot.
    pub fn search_prepared(
        &self,
        snap: &Snapshot,
        prep: &Prepared,
        k: usize,
        budget: Option<Duration>,
        native: bool,
    ) -> Result<SearchResult> {
        let started = Instant::now();
        for b in &prep.query.branches {
            check_search(b, k)?;
        }
        let narrowed = self.narrowed(snap, prep)?;
        let within = narrowed.as_ref().unwrap_or(snap);
        if let Some(name) = &prep.query.sym {
            let hits = self.definitions_within(snap, within, name, k, narrowed.is_some())?;
            return Ok(SearchResult {
                hits: hits.into_iter().map(|h| h.hit).collect(),
                truncated: false,
                outcome: SearchOutcome::default(),
                generation: snap.manifest.generation,
                route: "symbol",
                terms: None,
            });
        }
        let q = &prep.query;
        // case:yes keeps the lines with an exact-case word: rank more, keep k.
        let want = if q.case == Case::Yes { k.saturating_mul(4).min(crate::query::MAX_K) } else { k };
        let mut result: Option<SearchResult> = None;
        for branch in &q.branches {
            let left = budget.map(|b| b.saturating_sub(started.elapsed()));
            let r = self.search_routed(within, branch, want, left, native, !q.phrases.is_empty())?;
            result = Some(match result {
                None => r,
                Some(mut acc) => {
                    acc.hits = merge_by_score(acc.hits, r.hits, want);
                    acc.truncated |= r.truncated;
                    acc.outcome.candidates += r.outcome.candidates;
                    acc.outcome.visited += r.outcome.visited;
                    acc
                }
            });
        }
        let mut result = result.expect("a parsed query has a branch");
        if q.case == Case::Yes {
            let words: Vec<&str> = q.branch_terms.iter().flatten().map(String::as_str).collect();
            result.hits.retain(|h| words.iter().any(|w| h.text.contains(w)));
            result.hits.truncate(k);
        }
        Ok(result)
    }

    /// Definitions of `name` among the files of `within` (Stage-B's cached
    /// lookup on the whole snapshot, then the filter), at most `k`.
    pub fn definitions_within(
        &self,
        snap: &Snapshot,
        within: &Snapshot,
        name: &str,
        k: usize,
        filtered: bool,
    ) -> Result<Vec<SymHit>> {
        let name = crate::symbols::stage::hyphens_to_underscores(name);
        let all = self.stage_b.definitions(snap, &name)?;
        Ok(all.iter().filter(|h| !filtered || within.file_by_path(&h.hit.path).is_some()).take(k).cloned().collect())
    }

    /// Stage-B for a parsed query: `sym:` gives definitions only; otherwise
    /// the identifier lookup of the query's text. Either way only the files
    /// the query allows.
    pub fn stage_b_prepared(&self, snap: &Snapshot, prep: &Prepared, k: usize) -> Result<(Vec<SymHit>, bool)> {
        let narrowed = if prep.narrows() { self.narrowed(snap, prep)? } else { None };
        let within = narrowed.as_ref().unwrap_or(snap);
        if let Some(name) = &prep.query.sym {
            return Ok((self.definitions_within(snap, within, name, k, narrowed.is_some())?, false));
        }
        // Each `or` branch is looked up on its own (a branch that is no
        // identifier finds nothing), and the branches' hits merge by score:
        // every branch's definitions (1000 down) before any reference (500).
        let ask = if narrowed.is_none() { k } else { k.saturating_mul(8).max(64) };
        let mut all: Vec<SymHit> = Vec::new();
        let mut cached = true;
        for branch in &prep.query.branches {
            let (hits, c) = self.stage_b.search(snap, branch, ask)?;
            cached &= c;
            all.extend(
                hits.iter().filter(|h| narrowed.is_none() || within.file_by_path(&h.hit.path).is_some()).cloned(),
            );
        }
        if prep.query.branches.len() > 1 {
            // A stable sort: ties keep the branches' order.
            all.sort_by(|x, y| y.hit.score.total_cmp(&x.hit.score));
            let mut seen = HashSet::new();
            all.retain(|h| seen.insert((h.hit.path.clone(), h.hit.line)));
        }
        all.truncate(k);
        Ok((all, cached))
    }

    /// Exhaustive grep over the files `filter` allows.
    pub fn grep_filtered(
        &self,
        pattern: &str,
        options: GrepOptions,
        limit: Option<usize>,
        native: bool,
        filter: &PathFilter,
    ) -> Result<Vec<Hit>> {
        if filter.is_empty() {
            return self.grep(pattern, options, limit, native);
        }
        let p = self.patterns.get(pattern, options)?;
        self.counters.greps.fetch_add(1, Relaxed);
        let snap = self.index.checked_snapshot()?;
        let allows = filter.allows_each();
        let narrowed = snap.restricted(|_, path| allows(path));
        self.grep_in(&narrowed, &p, limit.unwrap_or(usize::MAX), native)
    }
}

/// Two best-first hit lists as one, best first, without repeating a line.
fn merge_by_score(a: Vec<Hit>, b: Vec<Hit>, k: usize) -> Vec<Hit> {
    let mut all: Vec<Hit> = a.into_iter().chain(b).collect();
    all.sort_by(|x, y| y.score.total_cmp(&x.score).then_with(|| (&x.path, x.line).cmp(&(&y.path, y.line))));
    let mut seen = HashSet::new();
    all.retain(|h| seen.insert((h.path.clone(), h.line)));
    all.truncate(k);
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::build::BuildOptions;

    fn engine(files: &[(&str, &str)]) -> (tempfile::TempDir, Engine) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        crate::test_tree::write_tree(&root, files.iter().copied());
        let e = Engine::build(&root, &tmp.path().join("idx"), &BuildOptions::default(), &mut |_, _, _| {}).unwrap();
        (tmp, e)
    }

    /// The paths of the files `q`'s clauses keep (`Engine::narrowed`, no
    /// path filter given), in path order.
    fn kept_files(e: &Engine, snap: &Snapshot, q: &str) -> Vec<String> {
        let prep = Prepared::new(q, PathFilter::default()).unwrap();
        let n = e.narrowed(snap, &prep).unwrap().unwrap();
        n.path_order().iter().map(|&f| n.path(f).to_string()).collect()
    }

    #[test]
    fn files_only_grep_finds_the_files_the_full_grep_finds() {
        let many = "needle\n".repeat(50) + "x\n";
        let files = [("a.txt", many.as_str()), ("b/c.txt", "x\nNeedle\n"), ("d.txt", "nothing\n"), ("e.txt", "needle")];
        let (_tmp, e) = engine(&files);
        let snap = e.snapshot();
        for ignore_case in [false, true] {
            let p = Pattern::compile("needle", GrepOptions { regex: false, ignore_case, word: false }).unwrap();
            let full: Vec<String> = crate::reference::grep(&snap, &p, usize::MAX)
                .unwrap()
                .into_iter()
                .map(|h| snap.path(h.file).to_string())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let only: Vec<String> =
                e.files_matching(&snap, &p).unwrap().into_iter().map(|f| snap.path(f).to_string()).collect();
            assert_eq!(only, full, "ignore_case={ignore_case}");
        }
    }

    #[test]
    fn negated_terms_leave_out_their_files_after_the_path_filter() {
        let files = [("a.txt", "needle\nother\n"), ("b/c.txt", "needle\n"), ("d.txt", "needle\n"), ("e.txt", "x\n")];
        let (_tmp, e) = engine(&files);
        let snap = e.snapshot();
        let kept = |q: &str| kept_files(&e, &snap, q);
        assert_eq!(kept("needle -other"), vec!["b/c.txt", "d.txt", "e.txt"]);
        assert_eq!(kept("needle -other -file:d.txt"), vec!["b/c.txt", "e.txt"]);
        assert_eq!(kept("needle -OTHER -x"), vec!["b/c.txt", "d.txt"]);
        assert_eq!(kept("\"needle\" -other"), vec!["b/c.txt", "d.txt"]);
    }

    /// Without a path filter, the clauses narrow from the snapshot itself
    /// (no all-files pass first): the files kept are the naive ones, read
    /// from the contents here, for each clause alone and together; a
    /// query that narrows but restricts nothing keeps every file.
    #[test]
    fn without_a_filter_the_clauses_narrow_from_the_snapshot() {
        let files = [
            ("a.txt", "Foo Bar here\nbaz\n"),
            ("b/c.txt", "foo bar\n"),
            ("d.txt", "FOO BAR baz\n"),
            ("e.txt", "foo\nbar\n"),
            ("f.txt", "nothing\n"),
        ];
        let (_tmp, e) = engine(&files);
        let snap = e.snapshot();
        let kept = |q: &str| kept_files(&e, &snap, q);
        let naive = |keep: &dyn Fn(&str) -> bool| -> Vec<String> {
            let mut v: Vec<String> = files.iter().filter(|(_, t)| keep(t)).map(|(p, _)| p.to_string()).collect();
            v.sort();
            v
        };
        let folded = |t: &str, w: &str| t.to_ascii_lowercase().contains(w);
        assert_eq!(kept("\"foo bar\""), naive(&|t| folded(t, "foo bar")));
        assert_eq!(kept("\"foo bar\" -baz"), naive(&|t| folded(t, "foo bar") && !folded(t, "baz")));
        assert_eq!(kept("x -baz"), naive(&|t| !folded(t, "baz")));
        assert_eq!(kept("Foo case:yes"), naive(&|t| t.contains("Foo")));
        assert_eq!(kept("\"foo bar\" case:yes"), naive(&|t| t.contains("foo bar")));
        // With a path filter (`-file:`), the same.
        assert_eq!(
            kept("\"foo bar\" -baz -file:b/c.txt"),
            naive(&|t| folded(t, "foo bar") && !folded(t, "baz") && t != files[1].1)
        );
        // sym: with case:yes narrows (`narrows`) but restricts nothing here.
        assert_eq!(kept("sym:foo case:yes"), naive(&|_| true));
    }

    #[test]
    fn a_narrowed_snapshot_keeps_its_parents_order_and_sees_only_its_files() {
        let files = [("z.py", "x\n"), ("a/b.py", "x\n"), ("a/a.txt", "x\n"), ("m.py", "x\n"), ("b.txt", "x\n")];
        let (_tmp, e) = engine(&files);
        let snap = e.snapshot();
        let prep = Prepared::new("x lang:py", PathFilter::default()).unwrap();
        let n = e.narrowed(&snap, &prep).unwrap().unwrap();
        let order: Vec<&str> = n.path_order().iter().map(|&f| n.path(f)).collect();
        assert_eq!(order, vec!["a/b.py", "m.py", "z.py"]);
        assert!(n.file_by_path("m.py").is_some() && n.file_by_path("b.txt").is_none());
        assert!(snap.file_by_path("b.txt").is_some());
        // Narrowed again (a -term after the filter): the same order, fewer files.
        let prep = Prepared::new("x lang:py -file:m.py", PathFilter::default()).unwrap();
        let n = e.narrowed(&snap, &prep).unwrap().unwrap();
        let n2 = n.restricted(|_, p| p != "z.py");
        let order: Vec<&str> = n2.path_order().iter().map(|&f| n2.path(f)).collect();
        assert_eq!(order, vec!["a/b.py"]);
        assert!(n2.file_by_path("z.py").is_none() && n2.file_by_path("m.py").is_none());
    }

    #[test]
    fn or_runs_stage_b_for_each_branch() {
        let files = [
            ("pkg/__init__.py", "__all__ = ['alpha_fn', 'beta_fn', 'alpha_fn', 'beta_fn']\n"),
            ("pkg/a.py", "def alpha_fn():\n    return 1\n"),
            ("pkg/b.py", "def beta_fn():\n    return 2\n"),
            ("pkg/use.py", "from pkg.a import alpha_fn\nfrom pkg.b import beta_fn\nalpha_fn(); beta_fn()\n"),
        ];
        let (_tmp, e) = engine(&files);
        let snap = e.snapshot();
        let prep = Prepared::new("alpha_fn or beta_fn", PathFilter::default()).unwrap();
        let (hits, _) = e.stage_b_prepared(&snap, &prep, 10).unwrap();
        let top: Vec<&str> = hits.iter().take(2).map(|h| h.hit.path.as_str()).collect();
        assert_eq!(top, vec!["pkg/a.py", "pkg/b.py"], "{hits:?}");
        assert!(hits.iter().take(2).all(|h| h.hit.why.contains(&"definition")));
        assert!(hits.len() > 2, "references follow the definitions");
        // Filters still apply to every branch.
        let prep = Prepared::new("alpha_fn or beta_fn -file:pkg/a.py", PathFilter::default()).unwrap();
        let (hits, _) = e.stage_b_prepared(&snap, &prep, 10).unwrap();
        assert_eq!(hits.first().map(|h| h.hit.path.as_str()), Some("pkg/b.py"));
        assert!(hits.iter().all(|h| h.hit.path != "pkg/a.py"));
    }

    fn hit(path: &str, line: u32, score: f64) -> Hit {
        Hit { path: path.into(), line, column: 0, byte_start: 0, byte_end: 0, text: String::new(), score, why: vec![] }
    }

    #[test]
    fn or_merges_by_score_without_repeats() {
        let m = merge_by_score(vec![hit("a", 1, 5.0), hit("b", 1, 1.0)], vec![hit("a", 1, 5.0), hit("c", 2, 3.0)], 10);
        let got: Vec<(&str, f64)> = m.iter().map(|h| (h.path.as_str(), h.score)).collect();
        assert_eq!(got, vec![("a", 5.0), ("c", 3.0), ("b", 1.0)]);
    }
}
