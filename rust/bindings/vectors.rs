//! `NativeVectors`: Stage-C's exact dense search (`crate::vectors`) for
//! `lens.rerank.store`. Query vectors come as the bytes of a float32 array
//! (`ndarray.tobytes()`), so no numpy C API is needed under abi3.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::guarded;
use crate::error::Error;
use crate::vectors::Vectors;

#[pyclass(module = "lens._lens", frozen)]
pub struct NativeVectors {
    inner: Vectors,
}

fn floats(query: &[u8]) -> crate::error::Result<Vec<f32>> {
    if query.len() % 4 != 0 {
        return Err(Error::query("query vector: not a whole number of float32", None));
    }
    Ok(query.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

#[pymethods]
impl NativeVectors {
    #[staticmethod]
    fn open(py: Python<'_>, vectors: PathBuf, scales: PathBuf, dim: usize) -> PyResult<Self> {
        let inner = guarded(py, move || Vectors::open(&vectors, &scales, dim))?;
        Ok(NativeVectors { inner })
    }

    #[getter]
    fn count(&self) -> usize {
        self.inner.count()
    }

    /// Every row's score as the bytes of a float32 array, in row order.
    fn scores<'py>(&self, py: Python<'py>, query: Vec<u8>) -> PyResult<Bound<'py, PyBytes>> {
        let out = guarded(py, || self.inner.scores(&floats(&query)?))?;
        let bytes: Vec<u8> = out.iter().flat_map(|f| f.to_le_bytes()).collect();
        Ok(PyBytes::new(py, &bytes))
    }

    /// The scores of `rows`.
    fn scores_of(&self, py: Python<'_>, query: Vec<u8>, rows: Vec<u32>) -> PyResult<Vec<f32>> {
        guarded(py, || self.inner.scores_of(&floats(&query)?, &rows))
    }

    /// The `n` best rows and their scores, best first.
    fn nearest(&self, py: Python<'_>, query: Vec<u8>, n: usize) -> PyResult<(Vec<u32>, Vec<f32>)> {
        let top = guarded(py, || self.inner.nearest(&floats(&query)?, n))?;
        Ok(top.into_iter().unzip())
    }
}
