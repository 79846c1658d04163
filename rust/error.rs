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
