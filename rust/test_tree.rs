//! Test support: a source tree written from `(relative path, text)` pairs,
//! the fixture the index, run and ranking tests share; and [`Rng`], the
//! fixed random stream of their bounded property and fuzz runs.

use std::path::Path;

/// Writes each `(rel, text)` under `root`, making parent directories, and
/// `root` itself even when `files` is empty.
pub(crate) fn write_tree<P: AsRef<str>, T: AsRef<[u8]>>(root: &Path, files: impl IntoIterator<Item = (P, T)>) {
    std::fs::create_dir_all(root).unwrap();
    for (rel, text) in files {
        let p = root.join(rel.as_ref());
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text.as_ref()).unwrap();
    }
}

/// xorshift64*: a fixed, dependency-free stream for bounded property and fuzz runs.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}
