//! Progress of a long build or refresh, reported to the caller as
//! `(phase, done, total)` in bytes: each phase counts from zero to its own
//! total, so a caller can draw one bar per phase.

/// What a build or refresh is busy with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Reading files and writing n-gram segments; bytes of every file read.
    Reading,
    /// Extracting symbols with tree-sitter; bytes of the files parsed.
    Symbols,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Reading => "reading",
            Phase::Symbols => "symbols",
        }
    }
}

/// The callback a build or refresh reports to.
pub type Progress<'a> = dyn FnMut(Phase, u64, u64) + 'a;

/// A callback that ignores every report.
pub fn silent() -> impl FnMut(Phase, u64, u64) {
    |_, _, _| {}
}
