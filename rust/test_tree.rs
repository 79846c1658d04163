//! Test support: a source tree written from `(relative path, text)` pairs,
//! the fixture the index, run and ranking tests share (their random stream is
//! [`crate::test_rng::Rng`]).

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
