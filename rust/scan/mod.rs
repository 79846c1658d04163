//! Verification: confirming candidate files with SIMD searchers and turning
//! matches into exact spans (line, code-point column, byte range).

pub mod global;
pub mod grep;
pub mod narrow;
pub mod rank;
#[cfg(test)]
mod rank_props;

use crate::index::FileRef;

/// A confirmed match, before it is rendered for a caller.
#[derive(Clone, Debug, PartialEq)]
pub struct RawHit {
    pub file: FileRef,
    pub line: u32,
    pub line_start: usize,
    pub line_end: usize,
    pub byte_start: usize,
    pub byte_end: usize,
    pub score: f64,
    pub why: Vec<&'static str>,
}

/// The column of the byte after `prefix` (the start of its line up to a
/// match), in Unicode code points, invalid bytes replaced as Python's
/// `decode("utf-8", "replace")` and Rust's lossy decoding both do.
pub fn column(prefix: &[u8]) -> u32 {
    if prefix.is_ascii() {
        prefix.len() as u32
    } else {
        String::from_utf8_lossy(prefix).chars().count() as u32
    }
}

/// Fills in the line of a hit found by either scanner (the fast one leaves
/// it 0 when it did not count lines) and returns its column.
pub fn locate(snap: &crate::index::Snapshot, h: &mut RawHit) -> u32 {
    let content = snap.content(h.file);
    if h.line == 0 {
        h.line = snap.segment(h.file).line_table(h.file.id).line_of(content, h.byte_start);
    }
    column(&content[h.line_start..h.byte_start])
}

pub use crate::hit::line_bounds;

/// Whether a match at `at` lies on the phantom empty "line" after a final
/// newline (or in an empty file): no such line exists.
pub fn past_last_line(content: &[u8], at: usize) -> bool {
    at >= content.len() && (content.is_empty() || content.ends_with(b"\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_code_points() {
        assert_eq!(column(b"abc"), 3);
        assert_eq!(column("é€x".as_bytes()), 3);
        assert_eq!(column(b"\xffa"), 2);
    }

    #[test]
    fn phantom_line() {
        assert!(past_last_line(b"", 0));
        assert!(past_last_line(b"a\n", 2));
        assert!(!past_last_line(b"a", 1));
    }
}
