//! Queries: validating them, parsing the query language ([`syntax`]),
//! filtering files by path and language ([`filter`]), compiling grep
//! patterns, and planning which n-gram lookups narrow a pattern's
//! candidate files.

pub mod cache;
pub mod filter;
pub mod plan;
pub mod syntax;
pub mod terms;

use regex_syntax::hir::{
    self, Class, ClassBytes, ClassBytesRange, ClassUnicode, ClassUnicodeRange, Hir, HirKind, Look,
};

use crate::error::{Error, Result};
pub use plan::GramQuery;

/// The longest query lens accepts, in bytes.
pub const MAX_QUERY_BYTES: usize = 4096;

/// Rejects queries no search could serve: empty, blank, or too long.
pub fn check_query(q: &str) -> Result<()> {
    if q.trim().is_empty() {
        return Err(Error::query("the query is empty", None));
    }
    if q.len() > MAX_QUERY_BYTES {
        return Err(Error::query(
            format!("the query is {} bytes long; the limit is {MAX_QUERY_BYTES}", q.len()),
            Some(MAX_QUERY_BYTES),
        ));
    }
    Ok(())
}

/// The largest `k` a ranked search accepts. Nothing is allocated from `k`
/// beyond a small bound; this only keeps absurd values out.
pub const MAX_K: usize = 100_000;

/// `check_query`, plus what a ranked search also needs: a `k` within
/// `MAX_K`, and no line terminator (a hit is a line, as in `grep`).
pub fn check_search(q: &str, k: usize) -> Result<()> {
    check_query(q)?;
    if k == 0 || k > MAX_K {
        return Err(Error::query(format!("k must be between 1 and {MAX_K}, not {k}"), None));
    }
    if let Some(at) = q.find('\n') {
        return Err(Error::query("the query contains a line terminator (\\n); lens matches within lines", Some(at)));
    }
    Ok(())
}

/// How `grep` reads its pattern.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GrepOptions {
    /// A regex (Rust regex syntax) rather than a literal string.
    pub regex: bool,
    /// Unicode simple case folding, as the regex crate's `(?i)`.
    pub ignore_case: bool,
    /// Only matches with a non-word character or a line edge on each side.
    pub word: bool,
}

/// What verification a compiled pattern needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatternKind {
    /// One exact byte string: memchr's memmem.
    Literal(Vec<u8>),
    /// Several exact byte strings, leftmost-first: aho-corasick (Teddy).
    Alternation(Vec<Vec<u8>>),
    /// Anything else: regex-automata's meta regex.
    Regex,
}

/// A validated grep pattern, ready for either scanner.
#[derive(Clone, Debug)]
pub struct Pattern {
    /// The regex source both scanners compile (literals escaped, `-w` wrapped).
    pub source: String,
    pub options: GrepOptions,
    /// The pattern's HIR, rewritten so that no match can cross a line end.
    pub hir: Hir,
    pub kind: PatternKind,
    pub plan: GramQuery,
}

const WORD_PREFIX: &str = r"(?:^|\W)(";
const WORD_SUFFIX: &str = r")(?:\W|$)";

impl Pattern {
    pub fn compile(pattern: &str, options: GrepOptions) -> Result<Pattern> {
        check_query(pattern)?;
        let inner = if options.regex { pattern.to_string() } else { regex_syntax::escape(pattern) };
        let (source, shift) =
            if options.word { (format!("{WORD_PREFIX}{inner}{WORD_SUFFIX}"), WORD_PREFIX.len()) } else { (inner, 0) };
        // Positions in errors refer to what the caller typed.
        let position = |offset: usize| -> usize {
            let o = offset.saturating_sub(shift).min(pattern.len());
            if options.regex {
                o
            } else {
                0
            }
        };
        let parsed = parser(options.ignore_case).parse(&source).map_err(|e| {
            let (msg, off) = match &e {
                regex_syntax::Error::Parse(p) => (p.kind().to_string(), p.span().start.offset),
                regex_syntax::Error::Translate(t) => (t.kind().to_string(), t.span().start.offset),
                _ => (e.to_string(), 0),
            };
            Error::query(format!("invalid regex: {msg}"), Some(position(off)))
        })?;
        let hir = single_line(&parsed).map_err(|msg| {
            let at = pattern.find('\n').or_else(|| pattern.find("\\n")).unwrap_or(0);
            Error::query(msg, Some(at))
        })?;
        let kind = if options.word { PatternKind::Regex } else { classify(&hir) };
        // Case-sensitive patterns also need their exact-case grams.
        let plan = if options.ignore_case {
            plan::plan(&hir)
        } else {
            GramQuery::both(plan::plan(&hir), plan::case_plan(&hir))
        };
        Ok(Pattern { source, options, hir, kind, plan })
    }
}

/// The regex-syntax configuration both scanners share: Unicode on, matching
/// arbitrary bytes allowed (haystacks may be invalid UTF-8), `^`/`$` at lines.
pub fn parser(ignore_case: bool) -> regex_syntax::Parser {
    regex_syntax::ParserBuilder::new().unicode(true).utf8(false).multi_line(true).case_insensitive(ignore_case).build()
}

fn classify(hir: &Hir) -> PatternKind {
    match hir.kind() {
        HirKind::Literal(hir::Literal(b)) if !b.is_empty() => PatternKind::Literal(b.to_vec()),
        HirKind::Alternation(alts) => {
            let lits: Option<Vec<Vec<u8>>> = alts
                .iter()
                .map(|a| match a.kind() {
                    HirKind::Literal(hir::Literal(b)) if !b.is_empty() => Some(b.to_vec()),
                    _ => None,
                })
                .collect();
            lits.map_or(PatternKind::Regex, PatternKind::Alternation)
        }
        _ => PatternKind::Regex,
    }
}

/// Rewrites `hir` for whole-buffer search with line semantics: classes lose
/// `\n`, `\A`/`\z` become line anchors. A literal newline is an error, as in
/// ripgrep: lens matches lines, and no line contains one.
fn single_line(hir: &Hir) -> std::result::Result<Hir, String> {
    Ok(match hir.kind() {
        HirKind::Empty => Hir::empty(),
        HirKind::Literal(hir::Literal(b)) => {
            if b.contains(&b'\n') {
                return Err("the pattern contains a line terminator (\\n); lens matches within lines".into());
            }
            hir.clone()
        }
        HirKind::Class(Class::Unicode(c)) => {
            let mut c = c.clone();
            c.difference(&ClassUnicode::new([ClassUnicodeRange::new('\n', '\n')]));
            if c.ranges().is_empty() {
                Hir::fail()
            } else {
                Hir::class(Class::Unicode(c))
            }
        }
        HirKind::Class(Class::Bytes(c)) => {
            let mut c = c.clone();
            c.difference(&ClassBytes::new([ClassBytesRange::new(b'\n', b'\n')]));
            if c.ranges().is_empty() {
                Hir::fail()
            } else {
                Hir::class(Class::Bytes(c))
            }
        }
        HirKind::Look(look) => match look {
            Look::Start => Hir::look(Look::StartLF),
            Look::End => Hir::look(Look::EndLF),
            Look::StartCRLF | Look::EndCRLF => return Err("CRLF mode (?R) is not supported".into()),
            _ => hir.clone(),
        },
        HirKind::Repetition(rep) => {
            Hir::repetition(hir::Repetition { sub: Box::new(single_line(&rep.sub)?), ..rep.clone() })
        }
        HirKind::Capture(cap) => Hir::capture(hir::Capture { sub: Box::new(single_line(&cap.sub)?), ..cap.clone() }),
        HirKind::Concat(subs) => Hir::concat(subs.iter().map(single_line).collect::<std::result::Result<_, _>>()?),
        HirKind::Alternation(subs) => {
            Hir::alternation(subs.iter().map(single_line).collect::<std::result::Result<_, _>>()?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(regex: bool, ignore_case: bool, word: bool) -> GrepOptions {
        GrepOptions { regex, ignore_case, word }
    }

    #[test]
    fn kinds() {
        let p = Pattern::compile("PM_RESUME", opts(false, false, false)).unwrap();
        assert_eq!(p.kind, PatternKind::Literal(b"PM_RESUME".to_vec()));
        let p = Pattern::compile("a.b(", opts(false, false, false)).unwrap();
        assert_eq!(p.kind, PatternKind::Literal(b"a.b(".to_vec()));
        let p = Pattern::compile("ERR_SYS|PME_TURN_OFF", opts(true, false, false)).unwrap();
        assert_eq!(p.kind, PatternKind::Alternation(vec![b"ERR_SYS".to_vec(), b"PME_TURN_OFF".to_vec()]));
        let p = Pattern::compile("PM_RESUME", opts(false, true, false)).unwrap();
        assert_eq!(p.kind, PatternKind::Regex);
    }

    #[test]
    fn invalid_regex_names_the_position() {
        match Pattern::compile("foo(bar", opts(true, false, false)) {
            Err(Error::Query { position: Some(3), .. }) => {}
            other => panic!("{other:?}"),
        }
        match Pattern::compile("ab[z-a]", opts(true, false, true)) {
            Err(Error::Query { position: Some(p), .. }) => assert!((2..=4).contains(&p), "{p}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn empty_long_and_newline_queries_are_rejected() {
        assert!(Pattern::compile("", opts(false, false, false)).is_err());
        assert!(Pattern::compile("  ", opts(false, false, false)).is_err());
        assert!(Pattern::compile(&"x".repeat(5000), opts(false, false, false)).is_err());
        assert!(Pattern::compile("a\\nb", opts(true, false, false)).is_err());
        assert!(Pattern::compile("a\nb", opts(false, false, false)).is_err());
        assert!(Pattern::compile("(?R)a$", opts(true, false, false)).is_err());
    }
}
