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
use crate::query::GrepOptions;

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

/// Calls a Python progress callback from native code (re-taking the GIL for
/// the call only). Its failures are ignored: progress must not break a build.
fn progress_fn(cb: Option<Py<PyAny>>) -> impl FnMut(u64, u64) {
    move |done, total| {
        if let Some(cb) = &cb {
            Python::attach(|py| {
                let _ = cb.call1(py, (done, total));
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
    #[pyo3(signature = (root, index_dir, max_file_bytes, progress=None, exclude=Vec::new()))]
    fn build(
        py: Python<'_>,
        root: PathBuf,
        index_dir: PathBuf,
        max_file_bytes: u64,
        progress: Option<Py<PyAny>>,
        exclude: Vec<String>,
    ) -> PyResult<Self> {
        let opts = BuildOptions { max_file_bytes, exclude };
        let mut report = progress_fn(progress);
        let engine = py.detach(move || Engine::build(&root, &index_dir, &opts, &mut report)).map_err(to_py_err)?;
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
