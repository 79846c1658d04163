//! The C scanner's lexer: tokens with their lines and `#if` depth; comments,
//! strings, character literals and preprocessor lines skipped, `#define`s
//! read as definitions on the way.

use crate::symbols::extract::RawDef;
use crate::symbols::Kind;

/// Punctuation the parser tells apart; every other operator is `OP`.
pub(super) const IDENT: u8 = b'a';
const LIT: u8 = b'0';
/// `.` and `->`: the identifier after it is a field, never a call's function.
pub(super) const MEMBER: u8 = b'.';
const OP: u8 = b'o';

#[derive(Clone, Copy, Debug)]
pub(super) struct Tok {
    pub(super) start: u32,
    pub(super) end: u32,
    pub(super) line: u32,
    pub(super) kind: u8,
    /// Depth of `#if` nesting the token sits in.
    pub(super) pp: u16,
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// Skips a block comment opening at `i` (`/*`); returns the index after it
/// and counts its newlines. `None` if it never closes.
fn block_comment(s: &[u8], i: usize, line: &mut u32) -> Option<usize> {
    let body = &s[i + 2..];
    let close = memchr::memmem::find(body, b"*/")?;
    *line += memchr::memchr_iter(b'\n', &body[..close]).count() as u32;
    Some(i + 2 + close + 2)
}

/// Skips a line comment at `i` (`//`, continued by a trailing backslash);
/// returns the index of the newline that ends it (or the end).
fn line_comment(s: &[u8], mut i: usize, line: &mut u32) -> usize {
    loop {
        let Some(nl) = memchr::memchr(b'\n', &s[i..]) else {
            return s.len();
        };
        let end = i + nl;
        let text = &s[..end];
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.ends_with(b"\\") {
            *line += 1;
            i = end + 1;
        } else {
            return end;
        }
    }
}

/// Skips a string or character literal opening at `i`; returns the index
/// after it. An unclosed literal ends at the end of its line.
fn literal(s: &[u8], mut i: usize, line: &mut u32) -> usize {
    let q = s[i];
    i += 1;
    while i < s.len() {
        match s[i] {
            b'\\' => {
                if s.get(i + 1) == Some(&b'\n') {
                    *line += 1;
                }
                i += 2;
            }
            b'\n' => return i,
            c if c == q => return i + 1,
            _ => i += 1,
        }
    }
    s.len()
}

/// Tokens of `s`, with preprocessor lines consumed: `#define`s become
/// definitions in `defs`, the other directives only move the `#if` depth.
pub(super) fn lex(s: &[u8], defs: &mut Vec<(RawDef, u32)>) -> Option<Vec<Tok>> {
    let mut toks = Vec::with_capacity(s.len() / 5);
    let (mut i, mut line, mut pp) = (0usize, 1u32, 0u16);
    let mut line_start = true;
    while i < s.len() {
        let c = s[i];
        match c {
            b'\n' => {
                line += 1;
                line_start = true;
                i += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' | 0x0c | 0x0b => {
                i += 1;
                continue;
            }
            b'\\' if matches!(s.get(i + 1), Some(b'\n')) => {
                line += 1;
                i += 2;
                continue;
            }
            b'/' if s.get(i + 1) == Some(&b'*') => {
                i = block_comment(s, i, &mut line)?;
                continue;
            }
            b'/' if s.get(i + 1) == Some(&b'/') => {
                i = line_comment(s, i, &mut line);
                continue;
            }
            b'#' if line_start => {
                i = directive(s, i, &mut line, &mut pp, defs, toks.len() as u32)?;
                continue;
            }
            0 => return None,
            _ => {}
        }
        line_start = false;
        let start = i;
        let kind = if is_ident_start(c) {
            while i < s.len() && is_ident(s[i]) {
                i += 1;
            }
            // A prefixed literal (L"x", u8'x') is one literal token.
            if i < s.len() && matches!(s[i], b'"' | b'\'') && matches!(&s[start..i], b"L" | b"u" | b"U" | b"u8") {
                i = literal(s, i, &mut line);
                LIT
            } else {
                IDENT
            }
        } else if c.is_ascii_digit() || (c == b'.' && s.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            i += 1;
            while i < s.len() {
                let d = s[i];
                // Digits, suffixes, `.`, and an exponent's sign (`1e+5`).
                let sign = matches!(d, b'+' | b'-') && matches!(s[i - 1], b'e' | b'E' | b'p' | b'P');
                if is_ident(d) || d == b'.' || sign {
                    i += 1;
                } else {
                    break;
                }
            }
            LIT
        } else if c == b'"' || c == b'\'' {
            i = literal(s, i, &mut line);
            LIT
        } else {
            i += 1;
            match c {
                b'{' | b'}' | b'(' | b')' | b'[' | b']' | b';' | b',' | b':' | b'*' => c,
                b'.' if s.get(i) == Some(&b'.') => {
                    i += 2.min(s.len() - i);
                    OP
                }
                b'.' => MEMBER,
                b'-' if s.get(i) == Some(&b'>') => {
                    i += 1;
                    MEMBER
                }
                b'=' if s.get(i) == Some(&b'=') => {
                    i += 1;
                    OP
                }
                b'=' => b'=',
                b'!' | b'<' | b'>' | b'+' | b'-' | b'/' | b'%' | b'&' | b'|' | b'^' => {
                    // Compound operators (`+=`, `<<=`, `&&`) are one token, so
                    // that a lone `=` is always an assignment or initialiser.
                    while i < s.len() && matches!(s[i], b'=' | b'<' | b'>' | b'&' | b'|' | b'+' | b'-') {
                        if s[i] == b'-' && s.get(i + 1) == Some(&b'>') {
                            break;
                        }
                        i += 1;
                    }
                    OP
                }
                _ => OP,
            }
        };
        toks.push(Tok { start: start as u32, end: i as u32, line, kind, pp });
    }
    Some(toks)
}

/// Consumes the directive at `i` (a `#` first on its line) through its
/// newline; a `#define` adds its definition as the tags query would.
/// `at` is the index of the token after it, stored with a definition.
fn directive(
    s: &[u8],
    i: usize,
    line: &mut u32,
    pp: &mut u16,
    defs: &mut Vec<(RawDef, u32)>,
    at: u32,
) -> Option<usize> {
    let start_line = *line;
    let mut j = i + 1;
    while j < s.len() && matches!(s[j], b' ' | b'\t') {
        j += 1;
    }
    let w0 = j;
    while j < s.len() && s[j].is_ascii_alphabetic() {
        j += 1;
    }
    let word = &s[w0..j];
    let mut define = None;
    match word {
        b"if" | b"ifdef" | b"ifndef" => *pp = pp.saturating_add(1),
        b"endif" => *pp = pp.checked_sub(1)?,
        b"define" if j < s.len() && matches!(s[j], b' ' | b'\t') => {
            let mut k = j;
            while k < s.len() && matches!(s[k], b' ' | b'\t') {
                k += 1;
            }
            let n0 = k;
            if k < s.len() && is_ident_start(s[k]) {
                while k < s.len() && is_ident(s[k]) {
                    k += 1;
                }
                define = Some((n0, k, s.get(k) == Some(&b'(')));
            } else {
                return None;
            }
        }
        _ => {}
    }
    // The directive runs to the first newline that is neither escaped nor in
    // a block comment.
    let mut k = j;
    let end = loop {
        if k >= s.len() {
            break s.len();
        }
        match s[k] {
            b'\n' => {
                *line += 1;
                break k + 1;
            }
            b'\\' if s.get(k + 1) == Some(&b'\n') => {
                *line += 1;
                k += 2;
            }
            b'\\' if s.get(k + 1) == Some(&b'\r') && s.get(k + 2) == Some(&b'\n') => {
                *line += 1;
                k += 3;
            }
            b'/' if s.get(k + 1) == Some(&b'*') => k = block_comment(s, k, line)?,
            b'/' if s.get(k + 1) == Some(&b'/') => k = line_comment(s, k, line),
            b'"' | b'\'' => k = literal(s, k, line),
            0 => return None,
            _ => k += 1,
        }
    };
    if let Some((n0, n1, function_like)) = define {
        let name = std::str::from_utf8(&s[n0..n1]).ok()?;
        let def = RawDef {
            name: name.to_string(),
            kind: if function_like { Kind::Function } else { Kind::Constant },
            name_start: n0 as u32,
            name_end: n1 as u32,
            def_start: i as u32,
            def_end: end as u32,
            line: start_line,
            container: None,
        };
        defs.push((def, at));
    }
    Some(end)
}
