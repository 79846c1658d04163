//! # lens: the native core
//!
//! Stage-A and Stage-B of lens, an embedded code-search engine: an on-disk
//! n-gram index over a source tree, SIMD verification of candidates, ranked
//! lexical search with early termination, symbol lookups, and a plain
//! reference scanner that serves as the fallback path and as the oracle
//! every fast path is tested against.
//!
//! Layers, lowest first; each uses only those above it in this list:
//!
//! - [`hit`], [`cache`], [`bytes`], [`error`]: leaves: the caller-ready hit
//!   and line spans, a byte-bounded LRU, little-endian reads, the error type.
//! - [`index`]: building, storing (segments + manifest), opening,
//!   refreshing. Knows no symbols and no ranking: what rides along with a
//!   generation is written by a companion the engine hands in.
//! - [`query`]: validating queries, compiling patterns (and their cache),
//!   planning n-gram lookups.
//! - [`scan`]: verification (memchr / aho-corasick / regex-automata), spans,
//!   ranking and early termination.
//! - [`reference`]: the naive scanner.
//! - [`symbols`]: Stage-B: tree-sitter symbols, SCIP / LSIF, the symbol
//!   file, lookups and their cache, and the index companion that writes the
//!   symbol files at each commit.
//! - [`terms`]: definition-level retrieval for plain-English questions
//!   (definitions as BM25F documents, code-aware ranking, query routing).
//! - [`vectors`]: Stage-C's exact dense search (int8 rows, float query).
//! - [`engine`]: one snapshot per query; orchestrates the index, Stage-A and
//!   Stage-B. The bindings wrap it.
//!
//! The core never touches Python; `bindings` (behind the `python` feature)
//! is the only module that does.

pub mod bytes;
pub mod cache;
pub mod engine;
pub mod error;
pub mod hit;
pub mod index;
pub mod query;
pub mod reference;
pub mod run;
pub mod scan;
pub mod symbols;
pub mod terms;
#[cfg(test)]
mod test_rng;
#[cfg(test)]
mod test_tree;
pub mod vectors;

#[cfg(feature = "python")]
mod bindings;

/// The extension module allocates through mimalloc (a build's terms and
/// symbols are millions of small strings and vectors; BENCHMARKS.md, issue
/// 10's fifth build pass). The pure-Rust crate and its tests keep the
/// system allocator.
#[cfg(feature = "python")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub use engine::{Engine, SearchResult};
pub use error::{Error, Result};
pub use hit::Hit;
pub use query::GrepOptions;
