//! # Stage-B: symbols
//!
//! Owns everything the index knows about definitions and references:
//!
//! - [`lang`]: which language a path is in, and its tree-sitter tags query.
//! - [`extract`]: tree-sitter tags extraction of one file (definitions with
//!   name span, whole span, kind and container; references).
//! - [`c_scan`]: the hand-written C scanner [`extract`] uses for C files, a
//!   lexer and a parser (tree-sitter is its oracle, and parses the files it
//!   declines).
//! - [`store`]: the immutable per-generation symbol file (an `fst` map of
//!   names plus front-coded names with delta-coded definition and reference
//!   runs), its writer and its bounds-checked reader, and exact / prefix /
//!   fuzzy / sub-token lookups.
//! - [`scip`] and [`lsif`]: precise data from SCIP (protobuf) and LSIF (JSON
//!   lines), mapped onto exact byte spans of the indexed files.
//! - the lookup cache is `crate::cache`, a byte-bounded, thread-safe LRU.
//! - [`layers`]: a base symbol file plus refresh deltas, looked up as one.
//! - [`stage`]: the Stage-B query: identifier detection and ranking
//!   (definitions, then references), served through the cache.
//!
//! - [`hooks`]: the commit callbacks ([`hooks::SymbolFiles`], the index's
//!   companion) that write a symbol file at each build, refresh and attach.
//!
//! The engine hands the index a [`hooks::SymbolFiles`]; the index calls it
//! at each commit and names the resulting file in its manifest, so symbols
//! commit atomically with the segments they describe, while the index itself
//! knows nothing of them. A snapshot carries the opened
//! [`layers::SymbolSet`] as its companion.

pub mod c_scan;
pub mod extract;
pub mod hooks;
pub mod lang;
pub mod layers;
pub mod lsif;
pub mod precise;
pub mod scip;
pub mod stage;
pub mod store;

use std::path::PathBuf;

pub use stage::{StageB, SymHit};
pub use store::{build_symbols, SymbolTable};

/// The kinds of definitions lens reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    Function = 0,
    Class = 1,
    Method = 2,
    Variable = 3,
    Constant = 4,
    Type = 5,
    Interface = 6,
    Enum = 7,
    Field = 8,
    Module = 9,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Function,
        Kind::Class,
        Kind::Method,
        Kind::Variable,
        Kind::Constant,
        Kind::Type,
        Kind::Interface,
        Kind::Enum,
        Kind::Field,
        Kind::Module,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Function => "function",
            Kind::Class => "class",
            Kind::Method => "method",
            Kind::Variable => "variable",
            Kind::Constant => "constant",
            Kind::Type => "type",
            Kind::Interface => "interface",
            Kind::Enum => "enum",
            Kind::Field => "field",
            Kind::Module => "module",
        }
    }

    pub fn from_u8(v: u8) -> Option<Kind> {
        Kind::ALL.get(v as usize).copied()
    }

    /// Maps a tags-query capture suffix (`@definition.<suffix>`) onto a kind.
    pub fn from_tag(suffix: &str) -> Kind {
        match suffix {
            "class" | "struct" | "union" | "implementation" => Kind::Class,
            "method" => Kind::Method,
            "interface" | "trait" => Kind::Interface,
            "module" | "namespace" | "package" => Kind::Module,
            "constant" | "macro_constant" => Kind::Constant,
            "type" => Kind::Type,
            "enum" => Kind::Enum,
            "field" | "property" => Kind::Field,
            "variable" | "var" => Kind::Variable,
            // function, macro (function-like), anything unknown.
            _ => Kind::Function,
        }
    }
}

/// What a build or refresh should do about symbols beyond tree-sitter.
#[derive(Clone, Debug, Default)]
pub struct SymbolOptions {
    /// A SCIP index to ingest as precise data in the same commit.
    pub scip: Option<PathBuf>,
    /// Skip symbol extraction altogether (Stage-A only indexes).
    pub disabled: bool,
}
