//! The core's one error type. Bindings map each variant onto the Python
//! hierarchy rooted at `lens.LensError`; nothing here knows about Python.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong in the core.
#[derive(Debug)]
pub enum Error {
    /// The query itself is unusable: empty, too long, or an invalid pattern.
    /// `position` is a byte offset into the pattern where one is known.
    Query { message: String, position: Option<usize> },
    /// A path the caller named does not exist.
    NotFound(PathBuf),
    /// The index on disk is damaged, truncated or not a lens index at all.
    Corrupt { path: PathBuf, reason: String },
    /// The index was written by a lens with another on-disk format (newer,
    /// or older and no longer read).
    Version { path: PathBuf, found: u32, supported: u32 },
    /// A SCIP or LSIF file cannot be read as such: `record` names the part of
    /// it that is wrong (a document, an occurrence, a line).
    SymbolData { path: PathBuf, record: String, reason: String },
    /// An I/O failure outside the cases above.
    Io { path: PathBuf, source: io::Error },
    /// Another writer (in this process or another) holds the index's writer
    /// lock and did not let go within the wait.
    Busy { path: PathBuf, waited_s: f64 },
    /// The index directory cannot be used for this root: it is the root, it
    /// contains the root, or it holds files that are not a lens index.
    Location { path: PathBuf, reason: String },
    /// A bug: a panic inside the core, caught at the boundary so that the
    /// host process sees an ordinary error instead of an abort.
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn query(message: impl Into<String>, position: Option<usize>) -> Self {
        Error::Query { message: message.into(), position }
    }

    pub fn corrupt(path: &Path, reason: impl Into<String>) -> Self {
        Error::Corrupt { path: path.to_path_buf(), reason: reason.into() }
    }

    pub fn symbol_data(path: &Path, record: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::SymbolData { path: path.to_path_buf(), record: record.into(), reason: reason.into() }
    }

    pub fn location(path: &Path, reason: impl Into<String>) -> Self {
        Error::Location { path: path.to_path_buf(), reason: reason.into() }
    }

    pub fn io(path: &Path, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::NotFound {
            Error::NotFound(path.to_path_buf())
        } else {
            Error::Io { path: path.to_path_buf(), source }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Query { message, position: Some(p) } => write!(f, "{message} (at position {p})"),
            Error::Query { message, position: None } => write!(f, "{message}"),
            Error::NotFound(p) => write!(f, "no such file or directory: {}", p.display()),
            Error::Corrupt { path, reason } => write!(f, "corrupt index at {}: {reason}", path.display()),
            Error::Version { path, found, supported } if found > supported => write!(
                f,
                "index at {} has format version {found}, newer than the {supported} this lens reads; upgrade lens or rebuild the index",
                path.display()
            ),
            Error::Version { path, found, supported } => write!(
                f,
                "index at {} has format version {found}, older than the {supported} this lens reads; rebuild it (Index.build)",
                path.display()
            ),
            Error::SymbolData { path, record, reason } => write!(f, "{}: {record}: {reason}", path.display()),
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Busy { path, waited_s } => write!(
                f,
                "index at {} is locked by another writer (waited {waited_s:.1} s); one writer at a time, retry later",
                path.display()
            ),
            Error::Location { path, reason } => write!(f, "cannot use {} as the index directory: {reason}", path.display()),
            Error::Internal(message) => write!(f, "internal error in lens (a bug; please report it): {message}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Runs `f`, turning a panic into `Error::Internal`: the one place where a
/// bug in the core stops short of the host process. The bindings wrap every
/// native call in this.
pub fn catch_panic<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic with a non-text payload".to_string());
            Err(Error::Internal(message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_internal_error() {
        let r: Result<()> = catch_panic(|| panic!("boom {}", 7));
        assert!(matches!(r, Err(Error::Internal(m)) if m == "boom 7"));
        let r: Result<u8> = catch_panic(|| Ok(3));
        assert_eq!(r.unwrap(), 3);
    }
}
