//! `Hit`, the caller-ready match every stage returns, and the line
//! arithmetic spans are built from. A leaf: it imports nothing of the crate,
//! so every layer (scan, symbols, engine, bindings) may use it.

/// A hit as callers see it. `byte_start..byte_end` is exact; `line` is
/// 1-based and `column` 0-based in code points, both of `byte_start`; `text`
/// is the whole line (lossily decoded).
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub path: String,
    pub line: u32,
    pub column: u32,
    pub byte_start: u64,
    pub byte_end: u64,
    pub text: String,
    pub score: f64,
    pub why: Vec<&'static str>,
}

/// The line around byte `at`: its start, and its end before any `\n`.
pub fn line_bounds(content: &[u8], at: usize) -> (usize, usize) {
    let start = memchr::memrchr(b'\n', &content[..at]).map_or(0, |i| i + 1);
    let end = memchr::memchr(b'\n', &content[at..]).map_or(content.len(), |i| at + i);
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_bounds_find_the_enclosing_line() {
        let text = b"ab\ncd\n\nef";
        assert_eq!(line_bounds(text, 0), (0, 2));
        assert_eq!(line_bounds(text, 4), (3, 5));
        assert_eq!(line_bounds(text, 6), (6, 6));
        assert_eq!(line_bounds(text, 9), (7, 9));
    }
}
