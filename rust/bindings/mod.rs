//! The Python bindings: the only module that knows about pyo3.
//!
//! Inputs are copied into owned Rust values, the GIL is released around all
//! native work (`py.detach`), and core errors map onto the Python hierarchy
//! in `lens.errors` in one place (`to_py_err`). Every native call goes
//! through `guarded`, which also turns a panic into `lens.InternalError`, so
//! a bug in the core never surfaces as a `PanicException` (a
//! `BaseException` that `except Exception` misses).

use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::{PyFileNotFoundError, PyOSError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyString, PyTuple, PyType};

use crate::cache::CacheStats;
use crate::engine::{Engine, SearchResult};
use crate::error::{catch_panic, Error};
use crate::hit::Hit;
use crate::index::build::BuildOptions;
use crate::index::progress::Phase;
use crate::index::Snapshot;
use crate::query::filter::{PathFilter, WalkRoot};
use crate::query::{GrepOptions, Pattern};
use crate::run::Prepared;
use crate::scan::grep::Matcher;
use crate::symbols::hooks::Format;
use crate::symbols::stage::{identifier, SymHit};
use crate::symbols::SymbolOptions;

mod vectors;

fn error_class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyType>> {
    Ok(py.import("lens.errors")?.getattr(name)?.cast_into::<PyType>()?)
}

fn to_py_err(e: Error) -> PyErr {
    Python::attach(|py| {
        let made = match &e {
            Error::Query { message, position } => {
                error_class(py, "QueryError").map(|c| PyErr::from_type(c, (e.to_string(), message.clone(), *position)))
            }
            Error::Corrupt { path, .. } => {
                error_class(py, "IndexCorruptError").map(|c| PyErr::from_type(c, (e.to_string(), path.clone())))
            }
            Error::Version { path, found, supported } => error_class(py, "IndexVersionError")
                .map(|c| PyErr::from_type(c, (e.to_string(), path.clone(), *found, *supported))),
            Error::SymbolData { path, record, .. } => error_class(py, "SymbolDataError")
                .map(|c| PyErr::from_type(c, (e.to_string(), path.clone(), record.clone()))),
            Error::NotFound(p) => Ok(PyFileNotFoundError::new_err((2, "No such file or directory", p.clone()))),
            Error::Io { .. } => Ok(PyOSError::new_err(e.to_string())),
            Error::Busy { path, .. } => {
                error_class(py, "IndexBusyError").map(|c| PyErr::from_type(c, (e.to_string(), path.clone())))
            }
            Error::Location { path, .. } => {
                error_class(py, "IndexLocationError").map(|c| PyErr::from_type(c, (e.to_string(), path.clone())))
            }
            Error::Internal(_) => error_class(py, "InternalError").map(|c| PyErr::from_type(c, e.to_string())),
        };
        made.unwrap_or_else(|import_failure| import_failure)
    })
}

/// Runs native work with the GIL released; core errors and panics alike
/// come back as typed lens errors.
fn guarded<T: Send>(py: Python<'_>, work: impl FnOnce() -> crate::error::Result<T> + Send) -> PyResult<T> {
    py.detach(|| catch_panic(work)).map_err(to_py_err)
}

fn hit_tuple<'py>(py: Python<'py>, h: Hit) -> PyResult<Bound<'py, PyTuple>> {
    let why = PyTuple::new(py, h.why)?;
    (h.path, h.line, h.column, h.byte_start, h.byte_end, h.text, h.score, why).into_pyobject(py)
}

/// `lens.types.Hit` and the names of its fields, looked up on the first
/// ranked search: a ranked search's hits are made as `Hit`s here rather than
/// as tuples that Python then unpacks into `Hit(*row)` (about 1.7 us a hit
/// in Python, most of a question's pipeline cost beside the native call).
struct HitClass {
    class: Py<PyType>,
    /// `Hit.__new__` (`object.__new__`): an instance with its slots unset.
    new: Py<PyAny>,
    fields: [Py<PyString>; 9],
}

static HIT_CLASS: PyOnceLock<HitClass> = PyOnceLock::new();

/// The field names of `lens.types.Hit`, in its order (tests/test_native_hits.py
/// holds the two in step).
const HIT_FIELDS: [&str; 9] = ["path", "line", "column", "byte_start", "byte_end", "text", "score", "why", "symbol"];

fn hit_class(py: Python<'_>) -> PyResult<&HitClass> {
    HIT_CLASS.get_or_try_init(py, || {
        let class = py.import("lens.types")?.getattr("Hit")?.cast_into::<PyType>()?;
        let new = class.getattr("__new__")?.unbind();
        let fields = HIT_FIELDS.map(|name| PyString::intern(py, name).unbind());
        Ok(HitClass { class: class.unbind(), new, fields })
    })
}

/// One `lens.types.Hit`, equal to `Hit(path, line, ..., why)` (no symbol).
/// `Hit` is a frozen dataclass with slots: its own `__setattr__` refuses,
/// so, as its generated `__init__` does with `object.__setattr__`, the slots
/// are set through the generic attribute setter.
fn hit_object<'py>(
    py: Python<'py>,
    class: &HitClass,
    whys: &mut WhyTuples<'py>,
    h: Hit,
) -> PyResult<Bound<'py, PyAny>> {
    let why = whys.get(py, h.why)?;
    let obj = class.new.bind(py).call1((class.class.bind(py),))?;
    let values: [Bound<'py, PyAny>; 9] = [
        h.path.into_pyobject(py)?.into_any(),
        h.line.into_pyobject(py)?.into_any(),
        h.column.into_pyobject(py)?.into_any(),
        h.byte_start.into_pyobject(py)?.into_any(),
        h.byte_end.into_pyobject(py)?.into_any(),
        h.text.into_pyobject(py)?.into_any(),
        h.score.into_pyobject(py)?.into_any(),
        why.into_any(),
        py.None().into_bound(py),
    ];
    for (name, value) in class.fields.iter().zip(values) {
        // SAFETY: the three pointers are live objects held by this frame
        // (`obj`, the interned name, `value`) while the GIL is held; the call
        // takes its own references and reports failure with -1 and an error set.
        if unsafe { pyo3::ffi::PyObject_GenericSetAttr(obj.as_ptr(), name.as_ptr(), value.as_ptr()) } != 0 {
            return Err(PyErr::fetch(py));
        }
    }
    Ok(obj)
}

/// The `why` tuples of one result, each made once: a question's 50 hits
/// hold about a dozen distinct ones (the fields they matched), and a tuple
/// of str is immutable, so hits may share it.
struct WhyTuples<'py>(Vec<(Vec<&'static str>, Bound<'py, PyTuple>)>);

impl<'py> WhyTuples<'py> {
    fn get(&mut self, py: Python<'py>, why: Vec<&'static str>) -> PyResult<Bound<'py, PyTuple>> {
        if let Some((_, t)) = self.0.iter().find(|(w, _)| *w == why) {
            return Ok(t.clone());
        }
        let t = PyTuple::new(py, &why)?;
        self.0.push((why, t.clone()));
        Ok(t)
    }
}

/// A ranked search's hits as `lens.types.Hit`s.
fn hit_objects<'py>(py: Python<'py>, hits: Vec<Hit>) -> PyResult<Bound<'py, PyList>> {
    let class = hit_class(py)?;
    let mut whys = WhyTuples(Vec::new());
    let items = hits.into_iter().map(|h| hit_object(py, class, &mut whys, h)).collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

fn hits_list<'py>(py: Python<'py>, hits: Vec<Hit>) -> PyResult<Bound<'py, PyList>> {
    let items = hits.into_iter().map(|h| hit_tuple(py, h)).collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

type SymTuple = (String, &'static str, String, u64, u64, u32, Option<String>, bool);

fn sym_hits_list<'py>(py: Python<'py>, hits: &[SymHit]) -> PyResult<Bound<'py, PyList>> {
    let items = hits
        .iter()
        .map(|SymHit { hit: h, symbol }| {
            let why = PyTuple::new(py, &h.why)?;
            let sym: Option<SymTuple> = symbol.as_ref().map(|s| {
                (
                    s.name.clone(),
                    s.kind,
                    s.def_path.clone(),
                    s.def_start,
                    s.def_end,
                    s.def_line,
                    s.container.clone(),
                    s.precise,
                )
            });
            (h.path.clone(), h.line, h.column, h.byte_start, h.byte_end, h.text.clone(), h.score, why, sym)
                .into_pyobject(py)
        })
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

fn cache_dict<'py>(py: Python<'py>, s: &CacheStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("hits", s.hits)?;
    d.set_item("misses", s.misses)?;
    d.set_item("hit_rate", s.hit_rate())?;
    d.set_item("evictions", s.evictions)?;
    d.set_item("bytes", s.bytes)?;
    d.set_item("entries", s.entries)?;
    d.set_item("capacity_bytes", s.capacity_bytes)?;
    Ok(d)
}

/// Calls a Python progress callback, `cb(done, total, phase)`, from native
/// code (re-taking the GIL for the call only). Its failures are ignored:
/// progress must not break a build.
fn progress_fn(cb: Option<Py<PyAny>>) -> impl FnMut(Phase, u64, u64) {
    move |phase, done, total| {
        if let Some(cb) = &cb {
            Python::attach(|py| {
                let _ = cb.call1(py, (done, total, phase.name()));
            });
        }
    }
}

fn budget(budget_ms: Option<f64>) -> Option<Duration> {
    // Beyond what a Duration holds (1e300 ms, say) is no budget at all.
    budget_ms.and_then(|ms| Duration::try_from_secs_f64(ms.max(0.0) / 1000.0).ok())
}

type SearchTuple<'py> = (Bound<'py, PyList>, bool, Bound<'py, PyDict>);

fn search_tuple<'py>(py: Python<'py>, res: SearchResult) -> PyResult<SearchTuple<'py>> {
    let info = PyDict::new(py);
    info.set_item(intern!(py, "candidates"), res.outcome.candidates)?;
    info.set_item(intern!(py, "visited"), res.outcome.visited)?;
    info.set_item(intern!(py, "early_terminated"), res.outcome.early_terminated)?;
    info.set_item(intern!(py, "budget_exhausted"), res.outcome.budget_exhausted)?;
    info.set_item(intern!(py, "lexical_capped"), res.outcome.capped)?;
    info.set_item(intern!(py, "generation"), res.generation)?;
    // Where the query went, and what the definition index did.
    info.set_item(intern!(py, "query_route"), res.route)?;
    if let Some(t) = res.terms {
        info.set_item(intern!(py, "terms_scored"), t.scored)?;
        info.set_item(intern!(py, "terms_postings"), t.postings)?;
    }
    Ok((hit_objects(py, res.hits)?, res.truncated, info))
}

/// A parsed query and the filter it runs under (`parse_query`): parsed once,
/// handed to every stage of the query.
#[pyclass(frozen, module = "lens._lens", name = "NativeQuery")]
pub struct NativeQuery {
    prep: Arc<Prepared>,
}

#[pymethods]
impl NativeQuery {
    /// The words and phrases to rank by (the `or` branches joined by a space).
    #[getter]
    fn text(&self) -> String {
        self.prep.query.branches.join(" ")
    }

    #[getter]
    fn branches(&self) -> Vec<String> {
        self.prep.query.branches.clone()
    }

    #[getter]
    fn sym(&self) -> Option<String> {
        self.prep.query.sym.clone()
    }

    #[getter]
    fn case(&self) -> &'static str {
        self.prep.query.case.name()
    }

    #[getter]
    fn negated(&self) -> Vec<String> {
        self.prep.query.negated.clone()
    }

    #[getter]
    fn langs(&self) -> Vec<&'static str> {
        self.prep.query.langs.clone()
    }

    /// Whether anything narrows the files (filters, `-term`, `case:yes`).
    #[getter]
    fn narrows(&self) -> bool {
        self.prep.narrows()
    }

    /// Whether the path filters (paths=, lang=, file:, lang:) allow `path`.
    fn allows_path(&self, path: &str) -> bool {
        self.prep.filter.allows(path)
    }

    fn __repr__(&self) -> String {
        let q = &self.prep.query;
        format!(
            "NativeQuery(branches={:?}, sym={:?}, case={:?}, negated={:?}, narrows={})",
            q.branches,
            q.sym,
            q.case.name(),
            q.negated,
            self.prep.narrows()
        )
    }
}

/// A query as Python passes it: parsed already, or text to parse now.
#[derive(FromPyObject)]
enum QueryArg {
    Parsed(Py<NativeQuery>),
    Text(String),
}

impl QueryArg {
    fn prepared(self, py: Python<'_>) -> PyResult<Arc<Prepared>> {
        match self {
            QueryArg::Parsed(q) => Ok(q.get().prep.clone()),
            QueryArg::Text(t) => guarded(py, || Prepared::new(&t, PathFilter::default())).map(Arc::new),
        }
    }
}

fn filter_of(
    py: Python<'_>,
    paths: Vec<String>,
    lang: Vec<String>,
    not_lang: Vec<String>,
    roots: Vec<(String, String, bool)>,
) -> PyResult<PathFilter> {
    guarded(py, move || make_filter(&paths, &lang, &not_lang, roots))
}

fn make_filter(
    paths: &[String],
    lang: &[String],
    not_lang: &[String],
    roots: Vec<(String, String, bool)>,
) -> crate::error::Result<PathFilter> {
    let roots: Vec<WalkRoot> =
        roots.into_iter().map(|(prefix, shown, is_file)| WalkRoot { prefix, shown, is_file }).collect();
    PathFilter::new(paths, &roots, lang, not_lang)
}

/// Parses a ranked-search query and its filters once: `paths` are
/// gitignore-style globs (`!` excludes; root-relative, or as rg matches them
/// under the CLI's path arguments `roots`: (root-relative path, as typed, is
/// a file)), `lang` languages (ripgrep type names or python, javascript,
/// ...), `not_lang` languages left out. Malformed syntax raises
/// `lens.QueryError` with the position.
#[pyfunction]
#[pyo3(signature = (query, paths=Vec::new(), lang=Vec::new(), not_lang=Vec::new(), roots=Vec::new()))]
fn parse_query(
    py: Python<'_>,
    query: String,
    paths: Vec<String>,
    lang: Vec<String>,
    not_lang: Vec<String>,
    roots: Vec<(String, String, bool)>,
) -> PyResult<NativeQuery> {
    // One release of the GIL for the filter and the query (a question's parse takes microseconds).
    let prep = guarded(py, move || Prepared::new(&query, make_filter(&paths, &lang, &not_lang, roots)?))?;
    Ok(NativeQuery { prep: Arc::new(prep) })
}

/// ripgrep's type name for a language as typed (`python` -> `py`), or None.
#[pyfunction]
fn lang_type(name: &str) -> Option<&'static str> {
    crate::query::filter::lang_type(name)
}

/// A grep pattern compiled as the native grep compiles it, for one line at
/// a time: every match in a line (the command line's colors, `-o` and
/// `--json` submatches), with the grep's regex, case folding and `-w`.
#[pyclass(frozen, module = "lens._lens", name = "LineMatcher")]
pub struct LineMatcher {
    matcher: Matcher,
}

#[pymethods]
impl LineMatcher {
    #[new]
    #[pyo3(signature = (pattern, regex=true, ignore_case=false, word=false))]
    fn new(py: Python<'_>, pattern: String, regex: bool, ignore_case: bool, word: bool) -> PyResult<Self> {
        let options = GrepOptions { regex, ignore_case, word };
        let matcher = guarded(py, move || Matcher::new(&Pattern::compile(&pattern, options)?))?;
        Ok(LineMatcher { matcher })
    }

    /// Every match in `line` (one line, without its end) from byte `start`
    /// on, as (start, end) byte offsets; empty matches are not reported.
    fn spans(&self, line: &[u8], start: usize) -> Vec<(usize, usize)> {
        self.matcher.matches_in_line(line, start)
    }
}

/// A lens index opened from Python.
#[pyclass(frozen, module = "lens._lens", name = "NativeIndex")]
pub struct NativeIndex {
    engine: Arc<Engine>,
}

/// One generation of an index, held for one query: Stage-A and Stage-B of
/// that query answer from it, whatever refreshes happen meanwhile.
#[pyclass(frozen, module = "lens._lens", name = "NativeSnapshot")]
pub struct NativeSnapshot {
    engine: Arc<Engine>,
    snap: Arc<Snapshot>,
}

#[pymethods]
impl NativeSnapshot {
    /// Ranked search: (hits, truncated, info).
    #[pyo3(signature = (query, k, budget_ms=None, native=true))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        query: QueryArg,
        k: usize,
        budget_ms: Option<f64>,
        native: bool,
    ) -> PyResult<SearchTuple<'py>> {
        let prep = query.prepared(py)?;
        let res = guarded(py, || self.engine.search_prepared(&self.snap, &prep, k, budget(budget_ms), native))?;
        search_tuple(py, res)
    }

    /// Stage-B: symbol hits for an identifier-like query (empty otherwise;
    /// definitions only for `sym:`), in the files the query allows, and
    /// whether the lookup cache answered.
    fn stage_b<'py>(&self, py: Python<'py>, query: QueryArg, k: usize) -> PyResult<(Bound<'py, PyList>, bool)> {
        let prep = query.prepared(py)?;
        let (hits, cached) = guarded(py, || self.engine.stage_b_prepared(&self.snap, &prep, k))?;
        Ok((sym_hits_list(py, &hits)?, cached))
    }

    #[getter]
    fn generation(&self) -> u64 {
        self.snap.manifest.generation
    }
}

#[pymethods]
impl NativeIndex {
    #[staticmethod]
    #[pyo3(signature = (root, index_dir, max_file_bytes, progress=None, exclude=Vec::new(), scip=None, symbols=true))]
    #[allow(clippy::too_many_arguments)]
    fn build(
        py: Python<'_>,
        root: PathBuf,
        index_dir: PathBuf,
        max_file_bytes: u64,
        progress: Option<Py<PyAny>>,
        exclude: Vec<String>,
        scip: Option<PathBuf>,
        symbols: bool,
    ) -> PyResult<Self> {
        let opts = BuildOptions { max_file_bytes, exclude };
        let sym = SymbolOptions { scip, disabled: !symbols };
        let mut report = progress_fn(progress);
        let engine = guarded(py, move || Engine::build_with(&root, &index_dir, &opts, &sym, &mut report))?;
        Ok(NativeIndex { engine: Arc::new(engine) })
    }

    #[staticmethod]
    fn open(py: Python<'_>, index_dir: PathBuf) -> PyResult<Self> {
        let engine = guarded(py, move || Engine::open(&index_dir))?;
        Ok(NativeIndex { engine: Arc::new(engine) })
    }

    /// The index as it stands now, for one query's stages.
    fn snapshot(&self) -> NativeSnapshot {
        NativeSnapshot { engine: self.engine.clone(), snap: self.engine.snapshot() }
    }

    /// Ranked search on the current snapshot: (hits, truncated, info).
    #[pyo3(signature = (query, k, budget_ms=None, native=true))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        query: QueryArg,
        k: usize,
        budget_ms: Option<f64>,
        native: bool,
    ) -> PyResult<SearchTuple<'py>> {
        let prep = query.prepared(py)?;
        let snap = self.engine.snapshot();
        let res = guarded(py, || self.engine.search_prepared(&snap, &prep, k, budget(budget_ms), native))?;
        search_tuple(py, res)
    }

    /// Exhaustive grep over the files `paths` (gitignore-style globs,
    /// matched as in `parse_query`), `lang` and `not_lang` allow.
    #[pyo3(signature = (pattern, regex=true, ignore_case=false, word=false, limit=None, native=true, paths=Vec::new(), lang=Vec::new(), not_lang=Vec::new(), roots=Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn grep<'py>(
        &self,
        py: Python<'py>,
        pattern: String,
        regex: bool,
        ignore_case: bool,
        word: bool,
        limit: Option<usize>,
        native: bool,
        paths: Vec<String>,
        lang: Vec<String>,
        not_lang: Vec<String>,
        roots: Vec<(String, String, bool)>,
    ) -> PyResult<Bound<'py, PyList>> {
        let options = GrepOptions { regex, ignore_case, word };
        let filter = filter_of(py, paths, lang, not_lang, roots)?;
        let hits = guarded(py, || self.engine.grep_filtered(&pattern, options, limit, native, &filter))?;
        hits_list(py, hits)
    }

    /// Every live file the filter allows as (path, size), in path order.
    #[pyo3(signature = (paths=Vec::new(), lang=Vec::new(), not_lang=Vec::new(), roots=Vec::new()))]
    fn files_filtered(
        &self,
        py: Python<'_>,
        paths: Vec<String>,
        lang: Vec<String>,
        not_lang: Vec<String>,
        roots: Vec<(String, String, bool)>,
    ) -> PyResult<Vec<(String, u64)>> {
        let filter = filter_of(py, paths, lang, not_lang, roots)?;
        let all = guarded(py, || self.engine.files())?;
        let allows = filter.allows_each();
        Ok(all.into_iter().filter(|(p, _)| allows(p)).collect())
    }

    /// Every live file as (path, size), in path order.
    fn files(&self, py: Python<'_>) -> PyResult<Vec<(String, u64)>> {
        guarded(py, || self.engine.files())
    }

    #[pyo3(signature = (progress=None))]
    fn refresh<'py>(&self, py: Python<'py>, progress: Option<Py<PyAny>>) -> PyResult<Bound<'py, PyDict>> {
        let mut report = progress_fn(progress);
        let c = guarded(py, || self.engine.index.refresh(&mut report))?;
        let d = PyDict::new(py);
        d.set_item("added", c.added)?;
        d.set_item("changed", c.changed)?;
        d.set_item("removed", c.removed)?;
        d.set_item("unchanged", c.unchanged)?;
        d.set_item("compacted", c.compacted)?;
        Ok(d)
    }

    /// Files added / changed / removed under the root since the last build
    /// or refresh (sizes and mtimes from one walk; nothing is read).
    fn staleness<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = guarded(py, || self.engine.index.staleness(5))?;
        let d = PyDict::new(py);
        d.set_item("added", s.added)?;
        d.set_item("changed", s.changed)?;
        d.set_item("removed", s.removed)?;
        d.set_item("examples", s.examples)?;
        Ok(d)
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (s, by_reason) = guarded(py, || Ok(self.engine.stats(20)))?;
        let d = PyDict::new(py);
        d.set_item("root", &s.root)?;
        d.set_item("files", s.files)?;
        d.set_item("bytes", s.bytes)?;
        d.set_item("index_bytes", s.index_bytes)?;
        d.set_item("segments", s.segments)?;
        d.set_item("chunks", s.chunks)?;
        d.set_item("grams", s.grams)?;
        d.set_item("generation", s.generation)?;
        d.set_item("build_seconds", s.build_seconds)?;
        d.set_item("format_version", s.format_version)?;
        d.set_item("max_file_bytes", s.max_file_bytes)?;
        let counts = PyDict::new(py);
        let examples = PyDict::new(py);
        for (reason, (n, paths)) in by_reason {
            counts.set_item(&reason, n)?;
            examples.set_item(&reason, paths)?;
        }
        d.set_item("skipped", counts)?;
        d.set_item("skipped_examples", examples)?;
        let phases = PyDict::new(py);
        for p in &s.phases {
            let t = PyDict::new(py);
            t.set_item("wall_s", p.wall)?;
            t.set_item("cpu_s", p.cpu)?;
            phases.set_item(&p.name, t)?;
        }
        d.set_item("build_phases", phases)?;
        Ok(d)
    }

    fn verify(&self, py: Python<'_>) -> PyResult<()> {
        guarded(py, || self.engine.verify())
    }

    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = &self.engine.counters;
        let d = PyDict::new(py);
        d.set_item("searches", c.searches.load(Relaxed))?;
        d.set_item("native_searches", c.native_searches.load(Relaxed))?;
        d.set_item("early_terminated", c.early_terminated.load(Relaxed))?;
        d.set_item("budget_exhausted", c.budget_exhausted.load(Relaxed))?;
        d.set_item("candidates", c.candidates.load(Relaxed))?;
        d.set_item("visited", c.visited.load(Relaxed))?;
        d.set_item("greps", c.greps.load(Relaxed))?;
        d.set_item("reference_truncated", c.reference_truncated.load(Relaxed))?;
        Ok(d)
    }

    // -- Stage-B ---------------------------------------------------------------

    fn definitions<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyList>> {
        let hits = guarded(py, || self.engine.definitions(&name))?;
        sym_hits_list(py, &hits)
    }

    fn references<'py>(&self, py: Python<'py>, name: String, limit: usize) -> PyResult<Bound<'py, PyList>> {
        let hits = guarded(py, || self.engine.references(&name, limit))?;
        sym_hits_list(py, &hits)
    }

    /// Names: (name, kind, definitions, references, distance) tuples.
    #[allow(clippy::type_complexity)]
    fn symbols(
        &self,
        py: Python<'_>,
        text: String,
        fuzzy: bool,
        limit: usize,
    ) -> PyResult<Vec<(String, Option<&'static str>, u64, u64, u32)>> {
        let names = guarded(py, || self.engine.symbol_names(&text, fuzzy, limit))?;
        Ok(names.iter().map(|n| (n.name.clone(), n.kind, n.definitions, n.references, n.distance)).collect())
    }

    /// Ingests a SCIP (`format="scip"`) or LSIF (`"lsif"`) file.
    fn attach<'py>(&self, py: Python<'py>, format: &str, path: PathBuf) -> PyResult<Bound<'py, PyDict>> {
        let fmt = match format {
            "scip" => Format::Scip,
            "lsif" => Format::Lsif,
            other => return Err(pyo3::exceptions::PyValueError::new_err(format!("unknown format {other:?}"))),
        };
        let (c, skipped) = guarded(py, || self.engine.attach(fmt, &path))?;
        let d = PyDict::new(py);
        d.set_item("files", c.files)?;
        d.set_item("definitions", c.definitions)?;
        d.set_item("references", c.references)?;
        d.set_item("unmatched_documents", c.unmatched_docs)?;
        d.set_item("skipped_occurrences", skipped)?;
        Ok(d)
    }

    fn cache_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let r = self.engine.cache_report();
        let d = cache_dict(py, &r.total)?;
        d.set_item("lookups", cache_dict(py, &r.lookups)?)?;
        d.set_item("patterns", cache_dict(py, &r.patterns)?)?;
        d.set_item("pattern_compile_time_ms", r.pattern_compile_ms)?;
        d.set_item("pattern_compiles", r.pattern_compiles)?;
        Ok(d)
    }

    fn clear_cache(&self) {
        self.engine.clear_caches();
    }

    /// Symbol coverage of the live files, computed from the symbol file.
    fn symbol_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (c, seconds) = guarded(py, || self.engine.symbol_report())?;
        let d = PyDict::new(py);
        d.set_item("source_files", c.source_files)?;
        d.set_item("files_with_symbols", c.with_symbols)?;
        d.set_item("files_with_precise", c.with_precise)?;
        d.set_item("other_files", c.other_files)?;
        d.set_item("symbol_coverage", c.symbol_coverage())?;
        d.set_item("precise_coverage", c.precise_coverage())?;
        d.set_item("names", c.names)?;
        d.set_item("definitions", c.definitions)?;
        d.set_item("references", c.references)?;
        d.set_item("symbol_bytes", c.symbol_bytes)?;
        d.set_item("symbol_files", c.layers)?;
        d.set_item("build_seconds", seconds)?;
        let by = PyDict::new(py);
        for (lang, files, with, precise) in &c.by_language {
            let l = PyDict::new(py);
            l.set_item("files", files)?;
            l.set_item("with_symbols", with)?;
            l.set_item("with_precise", precise)?;
            by.set_item(lang, l)?;
        }
        d.set_item("by_language", by)?;
        Ok(d)
    }

    /// A `str`, as the stub says (an `OsString` converts losslessly, where a
    /// `PathBuf` would become a `pathlib.Path` and import `pathlib`).
    #[getter]
    fn index_dir(&self) -> std::ffi::OsString {
        self.engine.index.dir().as_os_str().to_os_string()
    }

    #[getter]
    fn root(&self) -> String {
        self.engine.index.snapshot().manifest.root.clone()
    }
}

/// Whether Stage-B reads `query` as a symbol name (the one rule, shared by
/// Python's `lens.symbols.is_identifier` and the native Stage-B).
#[pyfunction]
fn is_identifier(query: &str) -> bool {
    identifier(query).is_some()
}

// -- a sharded set's global statistics (issue 14; `crate::terms::global`) -------------------------

/// The snapshot of the index at `dir`, opened for one call.
fn snapshot_of(dir: &std::path::Path) -> crate::error::Result<Arc<Snapshot>> {
    Ok(Engine::open(dir)?.snapshot())
}

/// Makes searches of (and term files written into) the index at `index_dir` use a set's statistics,
/// in this process: its document count, df file and per-field length sums.
#[pyfunction]
fn set_global_stats(
    py: Python<'_>,
    index_dir: PathBuf,
    ndocs: u64,
    df_path: PathBuf,
    len_sums: [u64; 5],
) -> PyResult<()> {
    guarded(py, move || {
        let g = crate::terms::global::GlobalStats::load(ndocs, &df_path, len_sums)?;
        crate::terms::global::install(&index_dir, g);
        Ok(())
    })
}

/// Back to the index's own statistics.
#[pyfunction]
fn clear_global_stats(index_dir: PathBuf) {
    crate::terms::global::remove(&index_dir);
}

/// Documents and per-field length sums of the index's term files, as this process wrote them (None if
/// it did not write them all).
#[pyfunction]
fn recorded_term_lengths(py: Python<'_>, index_dir: PathBuf) -> PyResult<Option<(u64, [u64; 5])>> {
    guarded(py, move || Ok(crate::terms::global::recorded_lengths(&*snapshot_of(&index_dir)?)))
}

/// Rewrites the index's term files with the statistics registered for it; returns the bytes written.
#[pyfunction]
fn rewrite_terms(py: Python<'_>, index_dir: PathBuf) -> PyResult<u64> {
    guarded(py, move || crate::terms::global::rewrite(&*snapshot_of(&index_dir)?))
}

/// Sums the term statistics of the indexes `index_dirs` into the df file `out`; returns (documents,
/// distinct terms).
#[pyfunction]
fn write_global_df(py: Python<'_>, index_dirs: Vec<PathBuf>, out: PathBuf) -> PyResult<(u64, u64)> {
    guarded(py, move || {
        let snaps = index_dirs.iter().map(|d| snapshot_of(d)).collect::<crate::error::Result<Vec<_>>>()?;
        crate::terms::global::write_df(&snaps, &out)
    })
}

/// Stage-A's DFS phase for a set: per query term, the live chunks of `index` that may hold it, and its
/// live chunks.
#[pyfunction]
fn lexical_document_frequencies(
    py: Python<'_>,
    index: PyRef<'_, NativeIndex>,
    query: String,
) -> PyResult<(Vec<u64>, u64)> {
    let engine = index.engine.clone();
    guarded(py, move || {
        let scorer = crate::scan::rank::Scorer::new(&crate::query::terms::split(&query));
        Ok(crate::scan::global::document_frequencies(&engine.snapshot(), &scorer))
    })
}

/// Installs (None: clears) a set's Stage-A counts for this thread's next searches.
#[pyfunction]
#[pyo3(signature = (df, chunks=0))]
fn set_lexical_stats(df: Option<Vec<u64>>, chunks: u64) {
    crate::scan::global::set_lexical(df.map(|d| (d, chunks)));
}

/// Stage-B's fallback inputs for a set's coordinator (None: not an identifier): the name, its
/// definitions in `index`, and with `scan` (when it has none) the other names sharing its sub-tokens
/// and the names within the fallback's edits with (distance, definitions).
#[pyfunction]
#[pyo3(signature = (index, query, scan=true))]
#[allow(clippy::type_complexity)]
fn stage_b_fallback_candidates(
    py: Python<'_>,
    index: PyRef<'_, NativeIndex>,
    query: String,
    scan: bool,
) -> PyResult<Option<(String, u64, Vec<String>, Vec<(String, u32, u64)>)>> {
    let engine = index.engine.clone();
    guarded(py, move || crate::symbols::stage::fallback_candidates(&engine.snapshot(), &query, scan))
}

/// Installs (None: clears) the names this thread's Stage-B lookups fall back to: a set's decision.
#[pyfunction]
#[pyo3(signature = (names=None))]
fn set_stage_b_fallback(names: Option<Vec<String>>) {
    crate::symbols::stage::set_fallback_names(names);
}

/// Has this thread's union routes answer with their two lists apart, `n` hits each (None: interleaved).
#[pyfunction]
#[pyo3(signature = (n=None))]
fn set_union_parts(n: Option<usize>) {
    crate::scan::global::set_union_parts(n);
}

/// A file's static rank (the order of files within a segment, before their paths): a set's coordinator
/// breaks score ties between shards with it, as one index does.
#[pyfunction]
fn static_prior(rel: &str, size: u64) -> f32 {
    crate::index::build::prior(rel, size)
}

/// Where a query goes: "lexical", "terms" or "union" (a function of the query alone).
#[pyfunction]
fn query_route(query: &str) -> &'static str {
    crate::terms::route::classify(query).name()
}

#[pymodule]
fn _lens(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeIndex>()?;
    m.add_class::<NativeSnapshot>()?;
    m.add_class::<NativeQuery>()?;
    m.add_class::<LineMatcher>()?;
    m.add_class::<vectors::NativeVectors>()?;
    m.add_function(wrap_pyfunction!(parse_query, m)?)?;
    m.add_function(wrap_pyfunction!(lang_type, m)?)?;
    m.add_function(wrap_pyfunction!(is_identifier, m)?)?;
    for f in [
        wrap_pyfunction!(set_global_stats, m)?,
        wrap_pyfunction!(clear_global_stats, m)?,
        wrap_pyfunction!(recorded_term_lengths, m)?,
        wrap_pyfunction!(rewrite_terms, m)?,
        wrap_pyfunction!(write_global_df, m)?,
        wrap_pyfunction!(lexical_document_frequencies, m)?,
        wrap_pyfunction!(set_lexical_stats, m)?,
        wrap_pyfunction!(stage_b_fallback_candidates, m)?,
        wrap_pyfunction!(set_stage_b_fallback, m)?,
        wrap_pyfunction!(set_union_parts, m)?,
        wrap_pyfunction!(query_route, m)?,
        wrap_pyfunction!(static_prior, m)?,
    ] {
        m.add_function(f)?;
    }
    m.add("INDEX_FORMAT_VERSION", crate::index::format::FORMAT_VERSION)?;
    m.add("MAX_K", crate::query::MAX_K)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
