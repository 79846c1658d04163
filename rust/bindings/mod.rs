//! The Python bindings: the only module that knows about pyo3.
//!
//! Inputs are copied into owned Rust values, the GIL is released around all
//! native work (`py.detach`), and core errors map onto the Python hierarchy
//! in `lens.errors` in one place (`to_py_err`).

use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use pyo3::exceptions::{PyFileNotFoundError, PyOSError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple, PyType};

use crate::engine::{Engine, Hit};
use crate::error::Error;
use crate::index::build::BuildOptions;
use crate::index::progress::Phase;
use crate::query::GrepOptions;
use crate::symbols::cache::CacheStats;
use crate::symbols::hooks::Format;
use crate::symbols::stage::{coverage, SymHit};
use crate::symbols::SymbolOptions;

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
        };
        made.unwrap_or_else(|import_failure| import_failure)
    })
}

fn hit_tuple<'py>(py: Python<'py>, h: Hit) -> PyResult<Bound<'py, PyTuple>> {
    let why = PyTuple::new(py, h.why)?;
    (h.path, h.line, h.column, h.byte_start, h.byte_end, h.text, h.score, why).into_pyobject(py)
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

/// A lens index opened from Python.
#[pyclass(frozen, module = "lens._lens", name = "NativeIndex")]
pub struct NativeIndex {
    engine: Engine,
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
        let engine =
            py.detach(move || Engine::build_with(&root, &index_dir, &opts, &sym, &mut report)).map_err(to_py_err)?;
        Ok(NativeIndex { engine })
    }

    #[staticmethod]
    fn open(py: Python<'_>, index_dir: PathBuf) -> PyResult<Self> {
        let engine = py.detach(move || Engine::open(&index_dir)).map_err(to_py_err)?;
        Ok(NativeIndex { engine })
    }

    /// Ranked search: (hits, truncated, info).
    #[pyo3(signature = (query, k, budget_ms=None, native=true))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        query: String,
        k: usize,
        budget_ms: Option<f64>,
        native: bool,
    ) -> PyResult<(Bound<'py, PyList>, bool, Bound<'py, PyDict>)> {
        let budget = budget_ms.map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0));
        let res = py.detach(|| self.engine.search(&query, k, budget, native)).map_err(to_py_err)?;
        let info = PyDict::new(py);
        info.set_item("candidates", res.outcome.candidates)?;
        info.set_item("visited", res.outcome.visited)?;
        info.set_item("early_terminated", res.outcome.early_terminated)?;
        info.set_item("budget_exhausted", res.outcome.budget_exhausted)?;
        Ok((hits_list(py, res.hits)?, res.truncated, info))
    }

    #[pyo3(signature = (pattern, regex=true, ignore_case=false, word=false, limit=None, native=true))]
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
    ) -> PyResult<Bound<'py, PyList>> {
        let options = GrepOptions { regex, ignore_case, word };
        let hits = py.detach(|| self.engine.grep(&pattern, options, limit, native)).map_err(to_py_err)?;
        hits_list(py, hits)
    }

    /// Every live file as (path, size), in path order.
    fn files(&self, py: Python<'_>) -> Vec<(String, u64)> {
        py.detach(|| self.engine.files())
    }

    #[pyo3(signature = (progress=None))]
    fn refresh<'py>(&self, py: Python<'py>, progress: Option<Py<PyAny>>) -> PyResult<Bound<'py, PyDict>> {
        let mut report = progress_fn(progress);
        let c = py.detach(|| self.engine.index.refresh(&mut report)).map_err(to_py_err)?;
        let d = PyDict::new(py);
        d.set_item("added", c.added)?;
        d.set_item("changed", c.changed)?;
        d.set_item("removed", c.removed)?;
        d.set_item("unchanged", c.unchanged)?;
        d.set_item("compacted", c.compacted)?;
        Ok(d)
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = py.detach(|| self.engine.index.stats());
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
        for sk in &s.skipped {
            let n: u64 = counts.get_item(&sk.reason)?.map_or(Ok(0), |v| v.extract())?;
            counts.set_item(&sk.reason, n + 1)?;
            if n < 20 {
                let list = match examples.get_item(&sk.reason)? {
                    Some(l) => l.cast_into::<PyList>()?,
                    None => {
                        let l = PyList::empty(py);
                        examples.set_item(&sk.reason, &l)?;
                        l
                    }
                };
                list.append(&sk.path)?;
            }
        }
        d.set_item("skipped", counts)?;
        d.set_item("skipped_examples", examples)?;
        Ok(d)
    }

    fn verify(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.engine.index.verify()).map_err(to_py_err)
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
        Ok(d)
    }

    // -- Stage-B ---------------------------------------------------------------

    /// Stage-B: symbol hits for an identifier-like query (empty otherwise),
    /// and whether the lookup cache answered.
    fn stage_b<'py>(&self, py: Python<'py>, query: String, k: usize) -> PyResult<(Bound<'py, PyList>, bool)> {
        let (hits, cached) = py.detach(|| self.engine.stage_b.search(&self.engine.index.snapshot(), &query, k));
        Ok((sym_hits_list(py, &hits)?, cached))
    }

    fn definitions<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyList>> {
        let hits = py.detach(|| self.engine.stage_b.definitions(&self.engine.index.snapshot(), &name));
        sym_hits_list(py, &hits)
    }

    fn references<'py>(&self, py: Python<'py>, name: String, limit: usize) -> PyResult<Bound<'py, PyList>> {
        let hits = py.detach(|| self.engine.stage_b.references(&self.engine.index.snapshot(), &name, limit));
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
    ) -> Vec<(String, Option<&'static str>, u64, u64, u32)> {
        let names = py.detach(|| self.engine.stage_b.symbols(&self.engine.index.snapshot(), &text, fuzzy, limit));
        names.iter().map(|n| (n.name.clone(), n.kind, n.definitions, n.references, n.distance)).collect()
    }

    /// Ingests a SCIP (`format="scip"`) or LSIF (`"lsif"`) file.
    fn attach<'py>(&self, py: Python<'py>, format: &str, path: PathBuf) -> PyResult<Bound<'py, PyDict>> {
        let fmt = match format {
            "scip" => Format::Scip,
            "lsif" => Format::Lsif,
            other => return Err(pyo3::exceptions::PyValueError::new_err(format!("unknown format {other:?}"))),
        };
        let (c, skipped) = py.detach(|| self.engine.attach(fmt, &path)).map_err(to_py_err)?;
        let d = PyDict::new(py);
        d.set_item("files", c.files)?;
        d.set_item("definitions", c.definitions)?;
        d.set_item("references", c.references)?;
        d.set_item("unmatched_documents", c.unmatched_docs)?;
        d.set_item("skipped_occurrences", skipped)?;
        Ok(d)
    }

    fn cache_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let sb = &self.engine.stage_b;
        let (lookups, patterns) = (sb.lookup_stats(), sb.pattern_stats());
        let all = CacheStats {
            hits: lookups.hits + patterns.hits,
            misses: lookups.misses + patterns.misses,
            evictions: lookups.evictions + patterns.evictions,
            bytes: lookups.bytes + patterns.bytes,
            entries: lookups.entries + patterns.entries,
            capacity_bytes: lookups.capacity_bytes + patterns.capacity_bytes,
        };
        let d = cache_dict(py, &all)?;
        d.set_item("lookups", cache_dict(py, &lookups)?)?;
        d.set_item("patterns", cache_dict(py, &patterns)?)?;
        let (ms, n) = sb.compile_time();
        d.set_item("pattern_compile_time_ms", ms)?;
        d.set_item("pattern_compiles", n)?;
        Ok(d)
    }

    fn clear_cache(&self) {
        self.engine.stage_b.clear();
    }

    /// Symbol coverage of the live files, computed from the symbol file.
    fn symbol_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = py.detach(|| coverage(&self.engine.index.snapshot()));
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
        let seconds =
            self.engine.index.snapshot().manifest.extra.get("symbols_seconds").and_then(|s| s.parse::<f64>().ok());
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

    #[getter]
    fn index_dir(&self) -> PathBuf {
        self.engine.index.dir().to_path_buf()
    }

    #[getter]
    fn root(&self) -> String {
        self.engine.index.snapshot().manifest.root.clone()
    }
}

#[pymodule]
fn _lens(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeIndex>()?;
    m.add("INDEX_FORMAT_VERSION", crate::index::format::FORMAT_VERSION)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
