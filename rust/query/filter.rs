//! Which files a query may answer from: gitignore-style globs (the API's
//! `paths=` and the CLI's `-g`, with ripgrep's override rules), languages
//! (the API's `lang=`, the query's `lang:` and the CLI's `-t`, by ripgrep's
//! file types), and the query language's `file:` / `-file:` (a glob, a
//! `/regex/`, or a substring of the path).
//!
//! A filter decides per path, from the file table alone; the engine turns
//! its decisions into a narrowed snapshot before anything is scored, so a
//! filter never costs a search its `k` hits.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use ignore::overrides::{Override, OverrideBuilder};
use ignore::types::{Types, TypesBuilder};

use crate::error::{Error, Result};

/// Query-language names for ripgrep's file types (`lang:python` is `-t py`).
const LANG_ALIASES: &[(&str, &str)] = &[
    ("python", "py"),
    ("javascript", "js"),
    ("typescript", "ts"),
    ("golang", "go"),
    ("c++", "cpp"),
    ("csharp", "cs"),
    ("c#", "cs"),
    ("shell", "sh"),
    ("bash", "sh"),
    ("markdown", "md"),
    ("text", "txt"),
    ("restructuredtext", "rst"),
    ("yml", "yaml"),
    ("rs", "rust"),
    ("rb", "ruby"),
    ("kt", "kotlin"),
];

fn type_names() -> &'static Vec<String> {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut b = TypesBuilder::new();
        b.add_defaults();
        b.definitions().into_iter().map(|d| d.name().to_string()).collect()
    })
}

/// ripgrep's type name for a language as typed (`Python`, `py`, `c++`), or None.
pub fn lang_type(name: &str) -> Option<&'static str> {
    let lower = name.trim().to_ascii_lowercase();
    if lower == "all" {
        return Some("all"); // rg's `-t all`: any file of a known type
    }
    let wanted = LANG_ALIASES.iter().find(|(a, _)| *a == lower).map_or(lower.as_str(), |(_, t)| t);
    type_names().iter().find(|n| n.as_str() == wanted).map(String::as_str)
}

/// The matcher for a set of type names, built once per set: compiling
/// ripgrep's whole type table takes about a millisecond, a query should not.
fn types_of(names: &[&str]) -> Result<Option<Arc<Types>>> {
    if names.is_empty() {
        return Ok(None);
    }
    static BUILT: OnceLock<Mutex<HashMap<Vec<String>, Arc<Types>>>> = OnceLock::new();
    let mut key: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    key.sort();
    key.dedup();
    let built = BUILT.get_or_init(Default::default);
    if let Some(t) = built.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(Some(t.clone()));
    }
    let t = Arc::new(build_types(&key)?);
    let mut cache = built.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() < 256 {
        cache.insert(key, t.clone());
    }
    Ok(Some(t))
}

fn build_types(names: &[String]) -> Result<Types> {
    let mut b = TypesBuilder::new();
    b.add_defaults();
    for n in names {
        b.select(n);
    }
    b.build().map_err(|e| Error::query(format!("file types: {e}"), None))
}

/// How `file:` matches a path.
#[derive(Clone, Debug)]
pub enum PathMatch {
    /// `file:*.py`, `file:src/**/*.rs`: a glob over the whole root-relative
    /// path, `*` crossing `/` unless the glob has a `/` of its own.
    Glob(globset::GlobMatcher),
    /// `file:/^lib\//`: a regex searched in the path.
    Regex(regex::Regex),
    /// `file:urllib`: a substring of the path (case-insensitive unless it has
    /// a capital, as Zoekt's `case:auto`).
    Substring { text: String, fold: bool },
}

impl PathMatch {
    /// `value` as `file:` reads it; a bad glob or regex is a query error
    /// whose position is `at` (the value's offset in the query).
    pub fn parse(value: &str, at: usize) -> Result<PathMatch> {
        if value.len() >= 2 && value.starts_with('/') && value.ends_with('/') {
            let body = &value[1..value.len() - 1];
            return regex::Regex::new(body).map(PathMatch::Regex).map_err(|e| {
                Error::query(format!("invalid regex in file:/.../: {}", first_line(&e.to_string())), Some(at + 1))
            });
        }
        if value.contains(['*', '?', '[', '{']) {
            let glob = globset::GlobBuilder::new(value.trim_start_matches('/'))
                .literal_separator(value.contains('/'))
                .build()
                .map_err(|e| Error::query(format!("invalid glob in file:: {}", e.kind()), Some(at)))?;
            return Ok(PathMatch::Glob(glob.compile_matcher()));
        }
        let fold = !value.chars().any(char::is_uppercase);
        let text = if fold { value.to_lowercase() } else { value.to_string() };
        Ok(PathMatch::Substring { text, fold })
    }

    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Glob(g) => {
                // An unanchored glob without `/` also matches a file name anywhere.
                g.is_match(path) || path.rsplit_once('/').is_some_and(|(_, name)| g.is_match(name))
            }
            PathMatch::Regex(r) => r.is_match(path),
            PathMatch::Substring { text, fold } => {
                if *fold {
                    path.to_lowercase().contains(text.as_str())
                } else {
                    path.contains(text.as_str())
                }
            }
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().rfind(|l| !l.trim().is_empty()).unwrap_or(s).trim().to_string()
}

/// One path the CLI was given: rg walks it, matches the globs against
/// each path as it spells it under that argument (`../json/a.py`), never
/// filters the argument itself, and searches a named file whatever the
/// globs and types say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WalkRoot {
    /// Root-relative path of the argument ("" for the root itself).
    pub prefix: String,
    /// How paths under it are spelled ("" for bare root-relative rests).
    pub shown: String,
    /// Whether the argument names a file.
    pub is_file: bool,
}

impl WalkRoot {
    /// `path` (root-relative) as the globs see it under this argument, and
    /// how many leading bytes of that are the argument itself (never
    /// matched), or None when `path` is not under it.
    fn spell<'p>(&self, path: &'p str) -> Option<(Cow<'p, str>, usize)> {
        let rest =
            if self.prefix.is_empty() { path } else { path.strip_prefix(self.prefix.as_str())?.strip_prefix('/')? };
        // ignore strips a leading "./" before matching, as rg's walk of "." does.
        let shown = self.shown.strip_prefix("./").unwrap_or(&self.shown);
        let shown = if shown == "." { "" } else { shown.trim_end_matches('/') };
        Some(if shown.is_empty() { (rest.into(), 0) } else { (format!("{shown}/{rest}").into(), shown.len()) })
    }
}

/// Which files a search may answer from. The default allows every file.
#[derive(Clone, Debug, Default)]
pub struct PathFilter {
    /// `paths=` / `-g`: ripgrep's overrides (last matching glob wins, `!`
    /// excludes, any include glob leaves out what no glob matches, an
    /// excluded directory takes its files with it).
    globs: Option<Override>,
    /// The paths the CLI was given, as rg walks them (empty: the root,
    /// spelled root-relative, as the API's `paths=` means).
    roots: Vec<WalkRoot>,
    /// `lang=` / `lang:` / `-t`: any of these file types.
    langs: Option<Arc<Types>>,
    lang_names: Vec<&'static str>,
    /// `-lang:` / `-T`: none of these.
    not_langs: Option<Arc<Types>>,
    not_lang_names: Vec<&'static str>,
    /// Every glob of those languages is `*.` and no other `*` (`*.py`,
    /// `*.[chH].in`), so a file name's verdict depends on its extensions
    /// alone (from its first dot), and a pass remembers it per extension.
    by_extension: bool,
    /// `file:`: every one of these must match.
    pub include: Vec<PathMatch>,
    /// `-file:`: none of these may match.
    pub exclude: Vec<PathMatch>,
}

impl PathFilter {
    /// A filter from gitignore-style `globs` (matched as rg matches them
    /// under the CLI's path arguments `roots`; none: root-relative), and
    /// language names.
    pub fn new(globs: &[String], roots: &[WalkRoot], langs: &[String], not_langs: &[String]) -> Result<PathFilter> {
        let mut f = PathFilter { roots: roots.to_vec(), ..Default::default() };
        f.set_globs(globs)?;
        f.add_langs(&resolve_langs(langs)?, &resolve_langs(not_langs)?)?;
        Ok(f)
    }

    fn set_globs(&mut self, globs: &[String]) -> Result<()> {
        if globs.is_empty() {
            return Ok(());
        }
        let mut b = OverrideBuilder::new("/");
        for g in globs {
            b.add(g).map_err(|e| Error::query(format!("invalid glob {g:?}: {}", first_line(&e.to_string())), None))?;
        }
        self.globs = Some(b.build().map_err(|e| Error::query(format!("invalid globs: {e}"), None))?);
        Ok(())
    }

    /// Adds languages (already resolved type names) to the allowed or the
    /// excluded set.
    pub fn add_langs(&mut self, allowed: &[&str], excluded: &[&str]) -> Result<()> {
        if !allowed.is_empty() {
            self.lang_names.extend(allowed.iter().filter_map(|a| lang_type(a)));
            self.langs = types_of(&self.lang_names)?;
        }
        if !excluded.is_empty() {
            self.not_lang_names.extend(excluded.iter().filter_map(|a| lang_type(a)));
            self.not_langs = types_of(&self.not_lang_names)?;
        }
        let types = self.langs.iter().chain(&self.not_langs);
        let names: Vec<&str> = self.lang_names.iter().chain(&self.not_lang_names).copied().collect();
        self.by_extension = types.flat_map(|t| t.definitions()).filter(|d| names.contains(&d.name())).all(|d| {
            d.globs().iter().all(|g| g.strip_prefix("*.").is_some_and(|rest| !rest.contains('*') && !rest.is_empty()))
        });
        Ok(())
    }

    /// Whether the filter lets every file through.
    pub fn is_empty(&self) -> bool {
        self.globs.is_none()
            && self.langs.is_none()
            && self.not_langs.is_none()
            && self.include.is_empty()
            && self.exclude.is_empty()
    }

    /// Whether a search may answer from the file at root-relative `path`.
    pub fn allows(&self, path: &str) -> bool {
        self.allows_with(path, &Memo::default())
    }

    /// `allows` for a pass over many files (a file table): each directory's
    /// verdict under the globs is decided once and remembered for the files
    /// and directories below it, where `allows` asks the globs about every
    /// ancestor of every file (on the kernel's 78 k files, most of the cost
    /// of a `paths=` filter).
    pub fn allows_each(&self) -> impl Fn(&str) -> bool + '_ {
        let memo = Memo::default();
        move |path| self.allows_with(path, &memo)
    }

    fn allows_with(&self, path: &str, memo: &Memo) -> bool {
        if self.roots.is_empty() {
            return self.allows_under(path, (path.into(), 0), memo);
        }
        self.roots.iter().any(|r| {
            if r.is_file {
                r.prefix == path
            } else {
                r.spell(path).is_some_and(|spelled| self.allows_under(path, spelled, memo))
            }
        })
    }

    /// `allows_with` for `path` as spelled under one walk root (`floor`
    /// leading bytes of it being the root's own spelling).
    fn allows_under(&self, path: &str, (spelled, floor): (Cow<'_, str>, usize), memo: &Memo) -> bool {
        if let Some(o) = &self.globs {
            // As rg's walk: an excluded directory is never entered.
            if spelled.rfind('/').is_some_and(|i| dir_excluded(o, &spelled[..i], floor, &memo.dirs)) {
                return false;
            }
            if o.matched(format!("/{spelled}"), false).is_ignore() {
                return false;
            }
        }
        if self.langs.is_some() || self.not_langs.is_some() {
            let name = path.rsplit('/').next().unwrap_or(path);
            let ok = if self.by_extension {
                let ext = name.find('.').map_or("", |i| &name[i..]);
                let known = memo.extensions.borrow().get(ext).copied();
                known.unwrap_or_else(|| {
                    let v = self.lang_allows(name);
                    memo.extensions.borrow_mut().insert(ext.to_string(), v);
                    v
                })
            } else {
                self.lang_allows(name)
            };
            if !ok {
                return false;
            }
        }
        self.include.iter().all(|m| m.matches(path)) && !self.exclude.iter().any(|m| m.matches(path))
    }
}

impl PathFilter {
    /// Whether the languages allow a file named `name`.
    fn lang_allows(&self, name: &str) -> bool {
        self.langs.as_ref().is_none_or(|t| t.matched(name, false).is_whitelist())
            && !self.not_langs.as_ref().is_some_and(|t| t.matched(name, false).is_whitelist())
    }
}

/// What a pass over many files remembers: each directory's verdict under
/// the globs, and each extension's under the languages (`by_extension`).
#[derive(Default)]
struct Memo {
    dirs: RefCell<HashMap<String, bool>>,
    extensions: RefCell<HashMap<String, bool>>,
}

/// Whether the globs exclude directory `dir` or one above it, remembered
/// in `memo` per directory; its first `floor` bytes are a path rg was given
/// (never filtered itself).
fn dir_excluded(o: &Override, dir: &str, floor: usize, memo: &RefCell<HashMap<String, bool>>) -> bool {
    if dir.len() <= floor {
        return false;
    }
    if let Some(&v) = memo.borrow().get(dir) {
        return v;
    }
    let above = dir.rfind('/').is_some_and(|i| dir_excluded(o, &dir[..i], floor, memo));
    let v = above || o.matched(format!("/{dir}"), true).is_ignore();
    memo.borrow_mut().insert(dir.to_string(), v);
    v
}

/// Type names for languages as typed; an unknown one is a query error.
pub fn resolve_langs(langs: &[String]) -> Result<Vec<&'static str>> {
    langs
        .iter()
        .map(|l| {
            lang_type(l).ok_or_else(|| {
                Error::query(format!("unknown language {l:?} (ripgrep's type names, or python, javascript, ...)"), None)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globs(g: &[&str]) -> PathFilter {
        PathFilter::new(&g.iter().map(|s| s.to_string()).collect::<Vec<_>>(), &[], &[], &[]).unwrap()
    }

    #[test]
    fn globs_follow_rg_overrides() {
        let f = globs(&["*.py"]);
        assert!(f.allows("a/b.py") && f.allows("b.py") && !f.allows("a/b.rs"));
        let f = globs(&["!docs"]);
        assert!(!f.allows("docs/x.md") && f.allows("src/x.md"));
        let f = globs(&["!*.md", "!*.rs"]);
        assert!(!f.allows("a.md") && !f.allows("a/b.rs") && f.allows("a.py"));
        let f = globs(&["a/**"]);
        assert!(f.allows("a/x/y.c") && !f.allows("b/a/x.c"));
        let f = globs(&["*.py", "!test_*"]);
        assert!(f.allows("x.py") && !f.allows("t/test_x.py"));
        assert!(PathFilter::new(&["a[b".to_string()], &[], &[], &[]).is_err());
    }

    #[test]
    fn a_pass_over_many_files_decides_as_each_file_alone() {
        let paths = [
            "docs/a.md",
            "docs/x/b.py",
            "src/a.py",
            "src/docs/c.py",
            "src/test_a.py",
            "src/t/test_b.py",
            "a.py",
            "x/y/z/w.c",
            "x/y/z.py",
            "docs",
            "tests/x/y/test_z.py",
        ];
        let sets: [&[&str]; 6] =
            [&["!docs"], &["*.py", "!test_*"], &["!x/y/"], &["x/**", "!x/y/z/"], &["!/src/docs"], &[]];
        for g in sets {
            let f = globs(g);
            let each = f.allows_each();
            // Twice over, in two orders: a remembered directory answers as a fresh one.
            for p in paths.iter().chain(paths.iter().rev()) {
                assert_eq!(each(p), f.allows(p), "{g:?} {p}");
            }
        }
        let f = globs(&["!x/y/"]);
        assert!(!f.allows("x/y/z/w.c") && f.allows("x/a.c"));
    }

    #[test]
    fn a_pass_remembers_languages_per_extension_only_where_that_is_exact() {
        let names = [
            "a.c",
            "b/x.h",
            "a.c.in",
            "y/a.h.in",
            "a.cats",
            "a.b.c",
            "Makefile",
            "x/Makefile",
            "a.mk",
            "c",
            ".c",
            "a.py",
            "a.pyi",
            "x.PY",
            "Kconfig",
            "a.in",
            "GNUmakefile",
            "a.txt",
        ];
        for (langs, not_langs, by_ext) in [
            (vec!["c"], vec![], true),
            (vec!["py"], vec!["c"], true),
            (vec!["make"], vec![], false),
            (vec![], vec!["make", "c"], false),
        ] {
            let langs: Vec<String> = langs.into_iter().map(String::from).collect();
            let not_langs: Vec<String> = not_langs.into_iter().map(String::from).collect();
            let f = PathFilter::new(&[], &[], &langs, &not_langs).unwrap();
            assert_eq!(f.by_extension, by_ext, "{langs:?} {not_langs:?}");
            let each = f.allows_each();
            for n in names.iter().chain(names.iter().rev()) {
                assert_eq!(each(n), f.allows(n), "{langs:?} -{not_langs:?} {n}");
            }
        }
        let f = PathFilter::new(&[], &[], &["c".into()], &[]).unwrap();
        let each = f.allows_each();
        assert!(each("a.c") && each("b.h.in") && !each("a.b.py") && !each("Makefile"));
    }

    #[test]
    fn globs_match_paths_as_spelled_under_each_walk_root() {
        let root =
            |prefix: &str, shown: &str, is_file| WalkRoot { prefix: prefix.into(), shown: shown.into(), is_file };
        let g = |globs: &[&str], roots: &[WalkRoot]| {
            PathFilter::new(&globs.iter().map(|s| s.to_string()).collect::<Vec<_>>(), roots, &[], &[]).unwrap()
        };
        // From lib/ with no path argument: globs are relative to lib/.
        let f = g(&["/x/*.py"], &[root("lib", "", false)]);
        assert!(f.allows("lib/x/a.py") && !f.allows("lib/y/x/a.py") && !f.allows("x/a.py"));
        // From email/, searching ../json and .: the walk spells ../json/a.py.
        let roots = [root("json", "../json", false), root("email", ".", false)];
        let f = g(&["../json/*.py"], &roots);
        assert!(f.allows("json/a.py") && !f.allows("json/a.txt") && !f.allows("email/a.py"));
        let f = g(&["json/*.py"], &roots);
        assert!(!f.allows("json/a.py"));
        let f = g(&["/sub/*.py"], &roots);
        assert!(f.allows("email/sub/b.py") && !f.allows("email/a.py"));
        // The argument itself is never filtered; a directory below it is.
        let f = g(&["!json", "!sub"], &roots);
        assert!(f.allows("json/a.py") && f.allows("email/a.py") && !f.allows("email/sub/b.py"));
        // A named file is searched whatever the globs and types say.
        let f = g(&["!*.py"], &[root("email/a.py", "a.py", true)]);
        assert!(f.allows("email/a.py") && !f.allows("email/b.py"));
    }

    #[test]
    fn languages_by_rg_type_or_name() {
        assert_eq!(lang_type("Python"), Some("py"));
        assert_eq!(lang_type("rust"), Some("rust"));
        assert_eq!(lang_type("nosuch"), None);
        let f = PathFilter::new(&[], &[], &["python".into()], &[]).unwrap();
        assert!(f.allows("a/b.py") && f.allows("a/b.pyi") && !f.allows("a/b.c"));
        let f = PathFilter::new(&[], &[], &[], &["py".into()]).unwrap();
        assert!(!f.allows("a/b.py") && f.allows("a/b.c"));
        assert!(PathFilter::new(&[], &[], &["klingon".into()], &[]).is_err());
    }

    #[test]
    fn file_matchers() {
        let m = PathMatch::parse("*.py", 0).unwrap();
        assert!(m.matches("a/b.py") && !m.matches("a/b.pyc"));
        let m = PathMatch::parse("urllib/*.py", 0).unwrap();
        assert!(m.matches("urllib/parse.py") && !m.matches("x/urllib/y/parse.py"));
        let m = PathMatch::parse("/^email/", 0).unwrap();
        assert!(m.matches("email/utils.py") && !m.matches("x/email/utils.py"));
        let m = PathMatch::parse("URLlib", 0).unwrap();
        assert!(!m.matches("urllib/parse.py"));
        let m = PathMatch::parse("urllib", 0).unwrap();
        assert!(m.matches("Lib/URLLIB/parse.py"));
        assert!(matches!(PathMatch::parse("/(/", 5), Err(Error::Query { position: Some(6), .. })));
    }
}
