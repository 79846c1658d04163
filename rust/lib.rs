//! # lens: the native core
//!
//! Stage-A of lens, an embedded code-search engine: an on-disk n-gram index
//! over a source tree, SIMD verification of candidates, ranked lexical search
//! with early termination, and a plain reference scanner that serves as the
//! baseline path and as the oracle every fast path is tested against.
//!
//! - [`index`]: building, storing (segments + manifest), opening, refreshing.
//! - [`query`]: validating queries, compiling patterns, planning n-gram lookups.
//! - [`scan`]: verification (memchr / aho-corasick / regex-automata), spans,
//!   ranking and early termination.
//! - [`reference`]: the baseline scanner.
//! - [`symbols`]: Stage-B: tree-sitter symbols, SCIP / LSIF, the symbol file,
//!   lookups and their cache.
//! - [`terms`]: definition-level retrieval for plain-English questions
//!   (definitions as BM25F documents, code-aware ranking, query routing).
//! - [`engine`]: the facade the bindings wrap.
//!
//! The core never touches Python; `bindings` (behind the `python` feature)
//! is the only module that does.

pub mod engine;
pub mod error;
pub mod index;
pub mod query;
pub mod reference;
pub mod scan;
pub mod symbols;
pub mod terms;

#[cfg(feature = "python")]
mod bindings;

pub use engine::{Engine, Hit, SearchResult};
pub use error::{Error, Result};
pub use query::GrepOptions;
