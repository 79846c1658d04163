//! The query language of ranked search, parsed once into a typed [`Query`],
//! after Zoekt and GitHub code search:
//!
//! | syntax | meaning |
//! |---|---|
//! | `foo bar` | ranked by both words |
//! | `"foo bar"` | the phrase as written: files must hold it, lines holding it rank first |
//! | `-foo`, `-"foo bar"` | leave out files that contain it |
//! | `foo or bar`, `foo OR bar` | hits for either side, by score |
//! | `file:GLOB`, `file:/REGEX/`, `file:TEXT` (also `path:`) | only paths matching (a glob, a regex, a substring) |
//! | `-file:...` | no paths matching |
//! | `lang:NAME` (also `language:`), `-lang:NAME` | only / no files of the language (ripgrep's types) |
//! | `sym:NAME` | definitions of NAME only |
//! | `case:yes`, `case:no`, `case:auto` | exact case for words and phrases, folded, or (default) ranked with both |
//!
//! Filters apply to the whole query wherever they stand. A question in
//! words (four or more that the router sends to the definition index) is
//! taken as typed apart from its filters: there `or`, quotes and a leading
//! `-` are words, as in "read the first or last line" (`OR` in capitals
//! stays the operator).

use crate::error::{Error, Result};
use crate::query::filter::{lang_type, PathMatch};

/// Whether words match in exact case.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Case {
    /// Case-insensitive, exact case ranked higher (the ranker's default).
    #[default]
    Auto,
    /// Only exact-case occurrences count.
    Yes,
    /// Case-insensitive.
    No,
}

impl Case {
    pub fn name(self) -> &'static str {
        match self {
            Case::Auto => "auto",
            Case::Yes => "yes",
            Case::No => "no",
        }
    }
}

/// A parsed query.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// The text each `or` branch ranks by (one branch without `or`): its
    /// words and phrases in order, filters and negations taken out.
    pub branches: Vec<String>,
    /// The words and phrases each branch holds, for `case:yes`.
    pub branch_terms: Vec<Vec<String>>,
    /// `-term` / `-"phrase"`: files containing any of these are left out.
    pub negated: Vec<String>,
    /// Quoted phrases: text to find as written (Stage-A, never the question
    /// engine); with one branch, a file must hold each of them.
    pub phrases: Vec<String>,
    pub case: Case,
    /// `sym:NAME`: definitions of NAME only.
    pub sym: Option<String>,
    /// `file:` / `path:` matchers, all of which a path must match.
    pub files: Vec<PathMatch>,
    /// `-file:` matchers, none of which a path may match.
    pub not_files: Vec<PathMatch>,
    /// `lang:` (ripgrep type names; any of them).
    pub langs: Vec<&'static str>,
    /// `-lang:` (none of them).
    pub not_langs: Vec<&'static str>,
    /// Whether the query used any syntax at all (else it is plain text).
    pub has_syntax: bool,
}

impl Query {
    /// The text to rank by when there is one branch (the whole query, for a
    /// query without syntax).
    pub fn text(&self) -> &str {
        self.branches.first().map_or("", String::as_str)
    }

    /// Whether a path filter applies (file:, -file:, lang:, -lang:).
    pub fn filters_paths(&self) -> bool {
        !(self.files.is_empty() && self.not_files.is_empty() && self.langs.is_empty() && self.not_langs.is_empty())
    }
}

/// One whitespace-separated token as written, and where it starts. A
/// quote opens a phrase only at the start of a token (after `-` or `field:`
/// too); elsewhere it is a character, so `== "__main__":` is code to find.
#[derive(Debug)]
struct Token<'a> {
    raw: &'a str,
    at: usize,
    /// The token is one quoted phrase (`"foo bar"`, `-"foo bar"`).
    phrase: bool,
}

/// Where a phrase may open in the token starting at `s`: right at it, after
/// a leading `-`, or after a field name and its colon.
fn opener(s: &str) -> Option<usize> {
    let body_at = usize::from(s.starts_with('-'));
    let body = &s[body_at..];
    if body.starts_with('"') {
        return Some(body_at);
    }
    let colon = body.find(':')?;
    (FIELDS.contains(&&body[..colon]) && body[colon + 1..].starts_with('"')).then_some(body_at + colon + 1)
}

/// Splits on whitespace outside phrases; an unterminated phrase is an error.
fn tokens(q: &str) -> Result<Vec<Token<'_>>> {
    let mut out = Vec::new();
    let b = q.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        let mut phrase = false;
        if let Some(open) = opener(&q[start..]) {
            let open = start + open;
            let mut j = open + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            if j < b.len() {
                i = j + 1;
                phrase = i >= b.len() || b[i].is_ascii_whitespace();
            } else if open > start {
                // `-"foo` or `file:"foo`: syntax, left open.
                return Err(Error::query("unterminated quote: a phrase needs its closing \"", Some(open)));
            }
            // A lone `"` at a word's start is code (`"""`, `return "abc`): the word is text.
        }
        while i < b.len() && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        out.push(Token { raw: &q[start..i.min(b.len())], at: start, phrase });
    }
    Ok(out)
}

/// A token's text with quotes removed and `\"` / `\\` resolved.
fn unquote(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut quoted = false;
    let mut cs = raw.chars();
    while let Some(c) = cs.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => {
                if let Some(n) = cs.next() {
                    out.push(n);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// A question has at least this many words (fewer, and `a or b`, quotes and
/// `-x` are operators even when the words are plain).
const PROSE_WORDS: usize = 4;

const FIELDS: &[&str] = &["file", "path", "lang", "language", "sym", "case"];

/// `(negated, field, value, value offset)` when the token is a field.
fn field<'a>(t: &Token<'a>) -> Option<(bool, &'a str, &'a str, usize)> {
    let (neg, body, off) = match t.raw.strip_prefix('-') {
        Some(rest) => (true, rest, 1),
        None => (false, t.raw, 0),
    };
    let (name, value) = body.split_once(':')?;
    FIELDS.contains(&name).then_some((neg, name, value, t.at + off + name.len() + 1))
}

/// Parses a ranked-search query. Malformed syntax is a query error with the
/// byte offset of what is wrong.
pub fn parse(q: &str) -> Result<Query> {
    let toks = tokens(q)?;
    let mut query = Query::default();
    let mut rest: Vec<&Token<'_>> = Vec::new();
    for t in &toks {
        let Some((neg, name, value, at)) = field(t) else {
            rest.push(t);
            continue;
        };
        query.has_syntax = true;
        let value_text = unquote(value);
        if value_text.is_empty() {
            return Err(Error::query(
                format!("{name}: needs a value (to search for the text itself, quote it: \"{name}:\")"),
                Some(at),
            ));
        }
        match name {
            "file" | "path" => {
                let m = PathMatch::parse(&value_text, at)?;
                if neg {
                    query.not_files.push(m);
                } else {
                    query.files.push(m);
                }
            }
            "lang" | "language" => {
                let ty = lang_type(&value_text).ok_or_else(|| {
                    Error::query(
                        format!("unknown language {value_text:?} (ripgrep's type names, or python, javascript, ...)"),
                        Some(at),
                    )
                })?;
                if neg {
                    query.not_langs.push(ty);
                } else {
                    query.langs.push(ty);
                }
            }
            "sym" => {
                if neg {
                    return Err(Error::query("sym: cannot be negated", Some(t.at)));
                }
                if query.sym.is_some() {
                    return Err(Error::query("only one sym: per query", Some(t.at)));
                }
                if crate::symbols::stage::identifier(&value_text).is_none() {
                    return Err(Error::query(format!("sym: takes an identifier, not {value_text:?}"), Some(at)));
                }
                query.sym = Some(value_text);
            }
            _ => {
                if neg {
                    return Err(Error::query("case: cannot be negated", Some(t.at)));
                }
                query.case = match value_text.to_ascii_lowercase().as_str() {
                    "yes" => Case::Yes,
                    "no" => Case::No,
                    "auto" => Case::Auto,
                    _ => {
                        return Err(Error::query(format!("case: takes yes, no or auto, not {value_text:?}"), Some(at)))
                    }
                };
            }
        }
    }
    let words: Vec<&str> = rest.iter().map(|t| t.raw).collect();
    let plain = words.join(" ");
    if query.sym.is_some() {
        if let Some(t) = rest.first() {
            return Err(Error::query(
                "sym: takes the whole query; only filters (file:, lang:, case:) may stand beside it",
                Some(t.at),
            ));
        }
        return Ok(query);
    }
    // Four words or more that the router reads as a question.
    // (`OR` in capitals is always the operator, as in GitHub code search.)
    let prose = rest.len() >= PROSE_WORDS
        && !rest.iter().any(|t| t.raw == "OR")
        && crate::terms::route::classify(&plain) != crate::terms::route::Route::Lexical;
    // Code (`x = a or b`, `if not x or y:`): a word with punctuation in it.
    let code = rest.iter().any(|t| !wordish(t));
    if prose || code {
        // A question in words, or code, is taken as typed.
        query.branch_terms.push(rest.iter().map(|t| t.raw.to_string()).collect());
        query.branches.push(plain);
    } else {
        operators(&rest, &mut query)?;
    }
    if !query.has_syntax {
        // Plain text ranks exactly as typed (its spacing is part of the phrase).
        query.branches = vec![q.trim().to_string()];
    }
    if query.branches.iter().all(|b| b.trim().is_empty()) {
        return Err(Error::query("the query has nothing to search for, only filters", Some(q.len())));
    }
    Ok(query)
}

/// A token the operators may read: a phrase, `or`, or a word of letters,
/// digits, `_`, `.`, `$`, `-` and `::` (perhaps negated).
fn wordish(t: &Token<'_>) -> bool {
    if t.phrase {
        return true;
    }
    let body = t.raw.strip_prefix('-').unwrap_or(t.raw);
    !body.is_empty()
        && body.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '$' | '-' | ':'))
        && body.split("::").all(|p| !p.contains(':'))
}

/// Whether a token is `-term` / `-"phrase"`: a `-` before a letter, `_` or a quote.
fn negation(t: &Token<'_>) -> bool {
    t.raw.strip_prefix('-').and_then(|r| r.chars().next()).is_some_and(|c| c.is_alphabetic() || c == '_' || c == '"')
}

/// Quotes, `-term` and `or` in a query that is neither a question nor code.
fn operators(rest: &[&Token<'_>], query: &mut Query) -> Result<()> {
    let mut branch: Vec<String> = Vec::new();
    let mut last_or: Option<usize> = None;
    let close = |branch: &mut Vec<String>, query: &mut Query| {
        query.branches.push(branch.join(" "));
        query.branch_terms.push(std::mem::take(branch));
    };
    for (n, t) in rest.iter().enumerate() {
        // Lowercase `or` at an edge, or after another, is a word (a fragment of code); `OR` is
        // always the operator, and misplaced it is an error.
        let inner = n > 0 && n + 1 < rest.len() && rest[n - 1].raw != "or";
        if t.raw == "OR" || (t.raw == "or" && inner) {
            query.has_syntax = true;
            if branch.is_empty() {
                return Err(Error::query(
                    format!("`{}` needs something to search for on each side", t.raw),
                    Some(t.at),
                ));
            }
            close(&mut branch, query);
            last_or = Some(t.at);
            continue;
        }
        let quoted = t.phrase;
        query.has_syntax |= quoted;
        let negated = negation(t);
        if negated {
            query.has_syntax = true;
            let text = unquote(&t.raw[1..]);
            if text.trim().is_empty() {
                return Err(Error::query("`-` needs a word or phrase after it", Some(t.at)));
            }
            query.negated.push(text);
            continue;
        }
        let text = if quoted { unquote(t.raw) } else { t.raw.to_string() };
        if text.trim().is_empty() {
            return Err(Error::query("an empty phrase", Some(t.at)));
        }
        if quoted {
            query.phrases.push(text.clone());
        }
        branch.push(text);
    }
    if branch.is_empty() {
        if let Some(at) = last_or {
            return Err(Error::query("`or` needs something to search for on each side", Some(at)));
        }
    }
    close(&mut branch, query);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(q: &str) -> Option<usize> {
        match parse(q) {
            Err(Error::Query { position, .. }) => position,
            other => panic!("{q:?} parsed: {other:?}"),
        }
    }

    #[test]
    fn plain_text_is_itself() {
        let q = parse("urlsplit").unwrap();
        assert_eq!(q.branches, vec!["urlsplit"]);
        assert!(!q.has_syntax && q.negated.is_empty() && q.sym.is_none());
        let q = parse("def parse_http_date(").unwrap();
        assert_eq!(q.text(), "def parse_http_date(");
    }

    #[test]
    fn fields_are_filters() {
        let q = parse("lang:python urlsplit").unwrap();
        assert_eq!(q.text(), "urlsplit");
        assert_eq!(q.langs, vec!["py"]);
        let q = parse("urlsplit file:urllib/*.py -file:test -lang:c").unwrap();
        assert_eq!(q.text(), "urlsplit");
        assert_eq!((q.files.len(), q.not_files.len(), q.not_langs.clone()), (1, 1, vec!["c"]));
        let q = parse("path:\"my dir\" x").unwrap();
        assert!(q.files[0].matches("a/my dir/b"));
        let q = parse("sym:urlsplit lang:python").unwrap();
        assert_eq!(q.sym.as_deref(), Some("urlsplit"));
        assert_eq!(parse("case:yes Foo").unwrap().case, Case::Yes);
        // Not a field: words with colons stay words.
        assert_eq!(parse("http://x").unwrap().text(), "http://x");
        assert_eq!(parse("Type::method").unwrap().text(), "Type::method");
    }

    #[test]
    fn phrases_negation_and_or() {
        let q = parse("\"parse http\" date -test").unwrap();
        assert_eq!(q.branches, vec!["parse http date"]);
        assert_eq!(q.negated, vec!["test"]);
        assert_eq!(q.phrases, vec!["parse http"]);
        let q = parse("urlsplit or urlparse").unwrap();
        assert_eq!(q.branches, vec!["urlsplit", "urlparse"]);
        let q = parse("a_b OR \"c d\" e").unwrap();
        assert_eq!(q.branches, vec!["a_b", "c d e"]);
        let q = parse("-\"foo bar\" baz").unwrap();
        assert_eq!(q.negated, vec!["foo bar"]);
        let q = parse("\"say \\\"hi\\\"\"").unwrap();
        assert_eq!(q.text(), "say \"hi\"");
        // Code is taken as typed: `or`, a lone quote and `-` in it are text.
        for code in ["x = a or b", "if not x or y:", "return \"abc", "\"\"\"", "x -1", "a - b", "-- x"] {
            let q = parse(code).unwrap();
            assert_eq!((q.branches.clone(), q.has_syntax), (vec![code.to_string()], false), "{code}");
        }
        // Quotes inside a word are code, not a phrase; neither is a phrase glued to more text.
        let q = parse("if __name__ == \"__main__\":").unwrap();
        assert!(!q.has_syntax && q.text() == "if __name__ == \"__main__\":");
        assert_eq!(parse("print(\"a").unwrap().text(), "print(\"a");
        assert_eq!(parse("x = \"a b\";").unwrap().text(), "x = \"a b\";");
        // Flags and lone dashes are words.
        assert_eq!(parse("--verbose").unwrap().text(), "--verbose");
    }

    #[test]
    fn questions_are_taken_as_typed() {
        let q = parse("Join two or more pathname components, inserting '/' as needed").unwrap();
        assert_eq!(q.branches.len(), 1);
        assert_eq!(q.text(), "Join two or more pathname components, inserting '/' as needed");
        let q = parse("lang:python Find a \"loader\" object for fullname").unwrap();
        assert_eq!(q.text(), "Find a \"loader\" object for fullname");
        assert_eq!(q.langs, vec!["py"]);
    }

    #[test]
    fn malformed_syntax_names_the_position() {
        assert_eq!(pos("foo -\"bar"), Some(5));
        assert_eq!(pos("file:\"bar x"), Some(5));
        assert_eq!(pos("x lang:klingon"), Some(7));
        assert_eq!(pos("x file:/(/"), Some(8));
        assert_eq!(pos("x case:maybe"), Some(7));
        assert_eq!(pos("OR foo"), Some(0));
        assert_eq!(pos("foo OR"), Some(4));
        assert_eq!(parse("foo or").unwrap().text(), "foo or");
        assert_eq!(pos("foo file:"), Some(9));
        assert_eq!(pos("sym:a sym:b"), Some(6));
        assert_eq!(pos("sym:a b"), Some(6));
        assert_eq!(pos("-sym:a"), Some(0));
        assert_eq!(pos("file:*.py"), Some(9));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        #[test]
        fn never_panics(q in "[a-z\"\\\\:/()*?\\[\\]{} \\-éOR]{0,40}") {
            let _ = parse(&q);
        }

        #[test]
        fn never_panics_on_fields(
            f in "(file|path|lang|sym|case|-file|-lang)",
            v in "[a-zA-Z0-9_*?\\[\\]{}/().\\\\\"^$|+ ]{0,12}",
            w in "[a-z_ ]{0,10}",
        ) {
            let _ = parse(&format!("{w} {f}:{v} {w}"));
        }
    }
}
