//! # Stage-C's exact dense search: int8 rows against a float32 query
//!
//! Stage-C stores one int8 vector per definition, each row scaled by its own
//! float32 (`semantic/vectors-<gen>.i8` and `scales-<gen>.f32`, written by
//! `lens.rerank.store`). A query is a float32 unit vector; a row's score is
//! `scale[row] * sum_j row[j] * query[j]`, the cosine to the stored vector.
//!
//! Reading the int8 rows directly (a quarter of the bytes of a float32 copy)
//! and widening them in registers is what makes the scan cheap: it is
//! memory-bound. [`dot`] is written so that LLVM vectorises it (sixteen
//! independent lanes, no reassociation needed); on x86-64 it is compiled a
//! second time for AVX2 and picked at run time. Large matrices are scanned
//! by rayon in blocks. [`naive_scores`] is the oracle the tests compare
//! against.

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;
use rayon::prelude::*;

use crate::error::{Error, Result};

/// Rows at or above this count are scanned in parallel blocks.
pub const PARALLEL_ROWS: usize = 1 << 17;
const BLOCK_ROWS: usize = 1 << 14;
const LANES: usize = 16;

/// One generation's vectors: the int8 matrix (memory-mapped) and its scales.
pub struct Vectors {
    map: Option<Mmap>,
    owned: Vec<i8>,
    scales: Vec<f32>,
    dim: usize,
}

impl Vectors {
    /// Opens `vectors` (`count x dim` int8, row-major) and `scales` (`count`
    /// little-endian float32); their sizes must agree.
    pub fn open(vectors: &Path, scales: &Path, dim: usize) -> Result<Vectors> {
        if dim == 0 {
            return Err(Error::corrupt(vectors, "vector dimension 0"));
        }
        let raw = std::fs::read(scales).map_err(|e| Error::io(scales, e))?;
        if raw.len() % 4 != 0 {
            return Err(Error::corrupt(scales, "scales: not a whole number of float32"));
        }
        let scales_v: Vec<f32> = raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let file = File::open(vectors).map_err(|e| Error::io(vectors, e))?;
        let len = file.metadata().map_err(|e| Error::io(vectors, e))?.len() as usize;
        if len != scales_v.len() * dim {
            return Err(Error::corrupt(vectors, format!("vectors: {len} bytes for {} rows of {dim}", scales_v.len())));
        }
        // An empty file cannot be mapped on every platform; nothing to scan then.
        let map = if len == 0 {
            None
        } else {
            // SAFETY: a generation's files are written whole under a new name
            // and never modified; a newer generation gets new files.
            Some(unsafe { Mmap::map(&file) }.map_err(|e| Error::io(vectors, e))?)
        };
        Ok(Vectors { map, owned: Vec::new(), scales: scales_v, dim })
    }

    /// Vectors held in memory (tests, and callers that have them already).
    pub fn from_parts(rows: Vec<i8>, scales: Vec<f32>, dim: usize) -> Vectors {
        assert!(dim > 0 && rows.len() == scales.len() * dim, "rows and scales disagree");
        Vectors { map: None, owned: rows, scales, dim }
    }

    pub fn count(&self) -> usize {
        self.scales.len()
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    fn rows(&self) -> &[i8] {
        match &self.map {
            // SAFETY: i8 and u8 have the same size and alignment.
            Some(m) => unsafe { std::slice::from_raw_parts(m.as_ptr().cast::<i8>(), m.len()) },
            None => &self.owned,
        }
    }

    fn check(&self, query: &[f32]) -> Result<()> {
        if query.len() != self.dim {
            return Err(Error::query(
                format!("query vector has {} dimensions, the index {}", query.len(), self.dim),
                None,
            ));
        }
        Ok(())
    }

    /// The score of every row, in row order.
    pub fn scores(&self, query: &[f32]) -> Result<Vec<f32>> {
        self.check(query)?;
        let (rows, dim) = (self.rows(), self.dim);
        let mut out = vec![0f32; self.count()];
        let fill = |(block, out): (usize, &mut [f32])| {
            let first = block * BLOCK_ROWS;
            for (i, o) in out.iter_mut().enumerate() {
                let r = first + i;
                *o = dot(&rows[r * dim..(r + 1) * dim], query) * self.scales[r];
            }
        };
        if self.count() >= PARALLEL_ROWS {
            out.par_chunks_mut(BLOCK_ROWS).enumerate().for_each(fill);
        } else {
            out.chunks_mut(BLOCK_ROWS).enumerate().for_each(fill);
        }
        Ok(out)
    }

    /// The scores of `rows` (any order; an out-of-range row is an error).
    pub fn scores_of(&self, query: &[f32], rows: &[u32]) -> Result<Vec<f32>> {
        self.check(query)?;
        let (all, dim) = (self.rows(), self.dim);
        rows.iter()
            .map(|&r| {
                let r = r as usize;
                if r >= self.count() {
                    return Err(Error::query(format!("vector row {r} out of range ({} rows)", self.count()), None));
                }
                Ok(dot(&all[r * dim..(r + 1) * dim], query) * self.scales[r])
            })
            .collect()
    }

    /// The `n` best rows and their scores, best first (ties: lower row first).
    pub fn nearest(&self, query: &[f32], n: usize) -> Result<Vec<(u32, f32)>> {
        let scores = self.scores(query)?;
        Ok(top_n(&scores, n))
    }
}

/// The `n` largest of `scores` as (index, score), best first, ties by index.
pub fn top_n(scores: &[f32], n: usize) -> Vec<(u32, f32)> {
    let n = n.min(scores.len());
    if n == 0 {
        return Vec::new();
    }
    let better = |a: &u32, b: &u32| {
        let (sa, sb) = (scores[*a as usize], scores[*b as usize]);
        sb.total_cmp(&sa).then(a.cmp(b))
    };
    let mut idx: Vec<u32> = (0..scores.len() as u32).collect();
    if n < idx.len() {
        idx.select_nth_unstable_by(n - 1, better);
        idx.truncate(n);
    }
    idx.sort_unstable_by(better);
    idx.into_iter().map(|i| (i, scores[i as usize])).collect()
}

/// `sum_j row[j] * query[j]` (the lengths must match).
#[inline]
pub fn dot(row: &[i8], query: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { dot_avx2(row, query) };
        }
    }
    dot_portable(row, query)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_avx2(row: &[i8], query: &[f32]) -> f32 {
    dot_portable(row, query)
}

/// Sixteen independent accumulators: each lane's sum is in a fixed order, so
/// the compiler may keep them in vector registers without reassociating.
#[inline(always)]
fn dot_portable(row: &[i8], query: &[f32]) -> f32 {
    debug_assert_eq!(row.len(), query.len());
    let mut acc = [0f32; LANES];
    let (rc, qc) = (row.chunks_exact(LANES), query.chunks_exact(LANES));
    let (rr, qr) = (rc.remainder(), qc.remainder());
    for (r, q) in rc.zip(qc) {
        for j in 0..LANES {
            acc[j] += f32::from(r[j]) * q[j];
        }
    }
    let mut tail = 0f32;
    for (r, q) in rr.iter().zip(qr) {
        tail += f32::from(*r) * q;
    }
    acc.iter().sum::<f32>() + tail
}

/// The oracle: every score in float64, row by row.
pub fn naive_scores(rows: &[i8], scales: &[f32], dim: usize, query: &[f32]) -> Vec<f64> {
    rows.chunks_exact(dim)
        .zip(scales)
        .map(|(r, s)| r.iter().zip(query).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum::<f64>() * f64::from(*s))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        *seed >> 33
    }

    fn random(count: usize, dim: usize, seed: u64) -> (Vec<i8>, Vec<f32>, Vec<f32>) {
        let mut s = seed;
        let rows = (0..count * dim).map(|_| (lcg(&mut s) % 255) as i32 as i8).collect::<Vec<_>>();
        let rows = rows.into_iter().map(|v| v.wrapping_sub(127).max(-127)).collect();
        let scales = (0..count).map(|_| (lcg(&mut s) % 1000) as f32 / 127_000.0 + 1e-4).collect();
        let query = (0..dim).map(|_| (lcg(&mut s) % 2001) as f32 / 1000.0 - 1.0).collect();
        (rows, scales, query)
    }

    #[test]
    fn scores_match_the_oracle_for_odd_and_even_dimensions() {
        for &(count, dim) in &[(1, 1), (7, 17), (300, 384), (5, 33), (PARALLEL_ROWS + 3, 8)] {
            let (rows, scales, query) = random(count, dim, count as u64 * 31 + dim as u64);
            let want = naive_scores(&rows, &scales, dim, &query);
            let v = Vectors::from_parts(rows, scales, dim);
            let got = v.scores(&query).unwrap();
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert!((f64::from(*g) - w).abs() <= 1e-4 * (1.0 + w.abs()), "{g} vs {w} (count {count}, dim {dim})");
            }
            let some: Vec<u32> = (0..count as u32).step_by(3).collect();
            let sub = v.scores_of(&query, &some).unwrap();
            for (r, s) in some.iter().zip(sub) {
                assert_eq!(s, got[*r as usize]);
            }
        }
    }

    #[test]
    fn nearest_is_the_best_n_in_order() {
        let (rows, scales, query) = random(1000, 24, 7);
        let v = Vectors::from_parts(rows, scales, 24);
        let all = v.scores(&query).unwrap();
        let mut want: Vec<u32> = (0..1000).collect();
        want.sort_by(|a, b| all[*b as usize].total_cmp(&all[*a as usize]).then(a.cmp(b)));
        for n in [0, 1, 10, 999, 1000, 5000] {
            let got: Vec<u32> = v.nearest(&query, n).unwrap().into_iter().map(|(r, _)| r).collect();
            assert_eq!(got, want[..n.min(1000)]);
        }
    }

    #[test]
    fn ties_go_to_the_lower_row() {
        assert_eq!(top_n(&[1.0, 2.0, 2.0, 0.5], 3), vec![(1, 2.0), (2, 2.0), (0, 1.0)]);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let v = Vectors::from_parts(vec![1, 2, 3, 4], vec![1.0, 1.0], 2);
        assert!(v.scores(&[1.0]).is_err());
        assert!(v.scores_of(&[1.0, 1.0], &[2]).is_err());
        let dir = tempfile::tempdir().unwrap();
        let (vp, sp) = (dir.path().join("v.i8"), dir.path().join("s.f32"));
        std::fs::write(&vp, [1u8, 2, 3]).unwrap();
        std::fs::write(&sp, 1f32.to_le_bytes()).unwrap();
        assert!(Vectors::open(&vp, &sp, 2).is_err());
        std::fs::write(&vp, [1u8, 2]).unwrap();
        let v = Vectors::open(&vp, &sp, 2).unwrap();
        assert_eq!(v.scores(&[1.0, 1.0]).unwrap(), vec![3.0]);
        std::fs::write(&vp, []).unwrap();
        std::fs::write(&sp, []).unwrap();
        assert_eq!(Vectors::open(&vp, &sp, 2).unwrap().nearest(&[1.0, 1.0], 5).unwrap(), vec![]);
    }
}
