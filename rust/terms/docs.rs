//! Definitions as documents. Each function, method, class, struct, type or
//! function-like macro of a file becomes one document with five fields; a
//! file with none is cut into windows of lines instead. Licence headers,
//! import lists and URLs are not content.

use std::hash::BuildHasher;

use hashbrown::hash_table::{Entry, HashTable};
use hashbrown::DefaultHashBuilder;

use super::rank::spell_keys;
use super::tokenize::{name_key, Analyzer};
use crate::symbols::lang::Lang;
use crate::symbols::Kind;

/// The fields of a document, in the order of their weights and bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Name = 0,
    Signature = 1,
    Place = 2,
    Comment = 3,
    Body = 4,
}

pub const NFIELDS: usize = 5;
pub const FIELD_NAMES: [&str; NFIELDS] = ["name", "signature", "path", "comment", "body"];

/// Lines per window in a file without definitions.
pub const WINDOW_LINES: usize = 30;

/// A definition as the symbol file has it, for one file.
#[derive(Clone, Debug)]
pub struct DefIn {
    pub name: String,
    pub container: Option<String>,
    pub kind: Kind,
    pub name_start: u32,
    pub name_end: u32,
    pub def_start: u32,
    pub def_end: u32,
    pub line: u32,
}

/// A document, analysed: where it points and its terms with per-field counts.
#[derive(Clone, Debug, Default)]
pub struct Doc {
    /// 1-based header line, and the span a hit reports (the name, or the
    /// window's first line).
    pub line: u32,
    pub start: u32,
    pub end: u32,
    /// The definition's whole extent in the file.
    pub def_start: u32,
    pub def_end: u32,
    pub kind: u8,
    pub name: String,
    pub container: String,
    /// (term, count per field).
    pub terms: Vec<(String, [u8; NFIELDS])>,
    pub lens: [u16; NFIELDS],
}

/// Kind stored for a window document.
pub const WINDOW_KIND: u8 = 255;

/// The kinds that make documents; fields, variables and constants are
/// parts of other documents rather than answers of their own.
pub fn is_document_kind(k: Kind) -> bool {
    matches!(k, Kind::Function | Kind::Method | Kind::Class | Kind::Type | Kind::Interface | Kind::Enum)
}

#[derive(Clone, Copy, PartialEq)]
enum LineKind {
    Code,
    Comment,
    Skip,
}

/// Classifies each line of `content`: code, comment, or not content
/// (imports, includes, blank).
fn classify(content: &[u8], lang: Option<Lang>) -> Vec<(usize, usize, LineKind)> {
    let hash_comments = matches!(lang, Some(Lang::Python) | Some(Lang::Ruby) | None);
    let mut out = Vec::new();
    let mut in_block = false; // inside /* */ or a triple-quoted string
    let mut start = 0;
    for (i, line) in content.split(|&b| b == b'\n').enumerate() {
        let _ = i;
        let end = start + line.len();
        let t = line.trim_ascii();
        let kind = if in_block {
            if contains(t, b"*/") || (lang == Some(Lang::Python) && (contains(t, b"\"\"\"") || contains(t, b"'''"))) {
                in_block = false;
            }
            LineKind::Comment
        } else if t.is_empty() {
            LineKind::Skip
        } else if t.starts_with(b"//") || (hash_comments && t.starts_with(b"#")) {
            LineKind::Comment
        } else if t.starts_with(b"/*") {
            in_block = !contains(&t[2..], b"*/");
            LineKind::Comment
        } else if lang == Some(Lang::Python) && (t.starts_with(b"\"\"\"") || t.starts_with(b"'''")) {
            let q = &t[..3];
            in_block = !contains(&t[3..], q);
            LineKind::Comment
        } else if t.starts_with(b"import ")
            || (t.starts_with(b"from ") && contains(t, b" import "))
            || t.starts_with(b"#include")
            || (t.starts_with(b"use ") && t.ends_with(b";"))
            || t.starts_with(b"require ")
        {
            LineKind::Skip
        } else {
            LineKind::Code
        };
        out.push((start, end, kind));
        start = end + 1;
    }
    out
}

fn contains(h: &[u8], n: &[u8]) -> bool {
    memchr::memmem::find(h, n).is_some()
}

fn is_licence(text: &[u8]) -> bool {
    let lower = text.to_ascii_lowercase();
    ["licence", "license", "copyright", "spdx-"].iter().any(|w| contains(&lower, w.as_bytes()))
}

struct Acc<'a> {
    an: &'a mut Analyzer,
    terms: Vec<(String, [u8; NFIELDS])>,
    lens: [u32; NFIELDS],
    /// Positions in `terms`, by the term's hash: each term is pushed once.
    seen: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl<'a> Acc<'a> {
    fn new(an: &'a mut Analyzer) -> Self {
        Acc { an, terms: Vec::new(), lens: [0; NFIELDS], seen: HashTable::new(), hasher: DefaultHashBuilder::default() }
    }

    fn add(&mut self, text: &[u8], field: Field) {
        let (terms, lens, seen, hasher) = (&mut self.terms, &mut self.lens, &mut self.seen, &self.hasher);
        self.an.terms(text, &mut |t| push(terms, lens, seen, hasher, t, field));
    }
}

fn push(
    terms: &mut Vec<(String, [u8; NFIELDS])>,
    lens: &mut [u32; NFIELDS],
    seen: &mut HashTable<u32>,
    hasher: &DefaultHashBuilder,
    t: &str,
    field: Field,
) {
    lens[field as usize] += 1;
    let at =
        match seen.entry(hasher.hash_one(t), |&i| terms[i as usize].0 == t, |&i| hasher.hash_one(&terms[i as usize].0))
        {
            Entry::Occupied(e) => *e.get() as usize,
            Entry::Vacant(e) => {
                e.insert(terms.len() as u32);
                terms.push((t.to_string(), [0u8; NFIELDS]));
                terms.len() - 1
            }
        };
    let c = &mut terms[at].1[field as usize];
    *c = c.saturating_add(1);
}

fn finish(acc: Acc<'_>, mut doc: Doc) -> Doc {
    let mut terms = acc.terms;
    terms.sort_by(|a, b| a.0.cmp(&b.0));
    // Each term is in `terms` once (the hash table); sorting is all that is left.
    let mut merged: Vec<(String, [u8; NFIELDS])> = Vec::with_capacity(terms.len());
    for (t, c) in terms {
        match merged.last_mut() {
            Some((p, pc)) if *p == t => {
                for f in 0..NFIELDS {
                    pc[f] = pc[f].saturating_add(c[f]);
                }
            }
            _ => merged.push((t, c)),
        }
    }
    doc.terms = merged;
    doc.lens = acc.lens.map(|l| l.min(u16::MAX as u32) as u16);
    doc
}

/// Path words: directories and the file's stem (not its extension).
fn place_text(path: &str) -> &str {
    path.rsplit_once('.').map_or(path, |(stem, _)| stem)
}

/// The documents of one file.
pub fn file_docs(an: &mut Analyzer, path: &str, content: &[u8], defs: &[DefIn]) -> Vec<Doc> {
    let lang = Lang::of_path(path);
    let lines = classify(content, lang);
    let line_of = |off: u32| lines.partition_point(|l| l.1 < off as usize);
    let mut out = Vec::new();
    let mut defs: Vec<&DefIn> = defs
        .iter()
        .filter(|d| is_document_kind(d.kind) && d.def_start < d.def_end && d.def_end as usize <= content.len())
        .collect();
    defs.sort_by_key(|d| (d.def_start, d.name_start));
    defs.dedup_by_key(|d| (d.name_start, d.def_start));
    for (i, d) in defs.iter().enumerate() {
        // Definitions nested in this one are documents of their own: their
        // lines leave this body, their names stay in it.
        let nested: Vec<&DefIn> = defs[i + 1..]
            .iter()
            .take_while(|n| n.def_start < d.def_end)
            .filter(|n| n.def_end <= d.def_end)
            .copied()
            .collect();
        let mut acc = Acc::new(&mut *an);
        acc.add(d.name.as_bytes(), Field::Name);
        // A compound name counts one more name token (its whole), as when
        // the whole was a term of its own.
        if name_key(&d.name).contains('_') {
            acc.lens[Field::Name as usize] += 1;
        }
        // The spell keys, for the `ident` rule's lookup; they match no
        // query term, so they score nothing.
        for key in spell_keys(&mut *acc.an, path, &d.name, d.container.as_deref().unwrap_or("")) {
            acc.terms.push((key, [0; NFIELDS]));
        }
        if let Some(c) = &d.container {
            acc.add(c.as_bytes(), Field::Place);
        }
        acc.add(place_text(path).as_bytes(), Field::Place);
        // The header: from the definition's start through the name's line,
        // and on until a line that opens the body (at most 4 lines).
        let first = line_of(d.def_start);
        let name_line = line_of(d.name_start).max(first);
        let last = line_of(d.def_end.saturating_sub(1)).min(lines.len().saturating_sub(1));
        let mut header_end = name_line;
        while header_end < last && header_end < name_line + 3 {
            let (s, e, _) = lines[header_end];
            let t = content[s..e].trim_ascii_end();
            if t.ends_with(b":") || t.ends_with(b"{") || t.ends_with(b")") && header_end > name_line {
                break;
            }
            header_end += 1;
        }
        let sig_start = (d.def_start as usize).max(lines[first].0);
        let sig_end = lines[header_end].1.min(d.def_end as usize).max(sig_start);
        // The signature without the name itself (that is the name field).
        let ns = (d.name_start as usize).clamp(sig_start, sig_end);
        let ne = (d.name_end as usize).clamp(ns, sig_end);
        acc.add(&content[sig_start..ns], Field::Signature);
        acc.add(&content[ne..sig_end], Field::Signature);
        // The comment block right above the definition (not a licence).
        let mut above = first;
        while above > 0 && lines[above - 1].2 == LineKind::Comment {
            above -= 1;
        }
        if above < first {
            let text = &content[lines[above].0..lines[first - 1].1];
            if !is_licence(text) {
                acc.add(text, Field::Comment);
            }
        }
        for n in &nested {
            acc.add(n.name.as_bytes(), Field::Body);
        }
        let mut next = 0;
        for &(s, e, k) in &lines[header_end + 1..=last.max(header_end)] {
            let (s, e) = (s.max(d.def_start as usize), e.min(d.def_end as usize));
            while next < nested.len() && (nested[next].def_end as usize) <= s {
                next += 1;
            }
            let inside = nested[next..].iter().take_while(|n| (n.def_start as usize) < e).any(|n| {
                let first = lines[line_of(n.def_start)].0;
                first <= s && e <= n.def_end as usize
            });
            if s >= e || inside {
                continue;
            }
            match k {
                LineKind::Comment => acc.add(&content[s..e], Field::Comment),
                LineKind::Code => acc.add(&content[s..e], Field::Body),
                LineKind::Skip => {}
            }
        }
        let doc = Doc {
            line: d.line,
            start: d.name_start,
            end: d.name_end,
            def_start: d.def_start,
            def_end: d.def_end,
            kind: d.kind as u8,
            name: d.name.clone(),
            container: d.container.clone().unwrap_or_default(),
            ..Doc::default()
        };
        out.push(finish(acc, doc));
    }
    if out.is_empty() {
        windows(an, path, content, &lines, &mut out);
    }
    out
}

/// Windows of [`WINDOW_LINES`] lines over a file without definitions; a
/// leading licence block is left out.
fn windows(an: &mut Analyzer, path: &str, content: &[u8], lines: &[(usize, usize, LineKind)], out: &mut Vec<Doc>) {
    let mut from = 0;
    let mut head = 0;
    while head < lines.len() && lines[head].2 != LineKind::Code {
        head += 1;
    }
    if head > 0 && is_licence(&content[lines[0].0..lines[head - 1].1]) {
        from = head;
    }
    for win in lines[from..].chunks(WINDOW_LINES) {
        let Some(&(hs, he, _)) = win.iter().find(|l| l.2 != LineKind::Skip) else { continue };
        let mut acc = Acc::new(&mut *an);
        acc.add(place_text(path).as_bytes(), Field::Place);
        for &(s, e, k) in win {
            match k {
                LineKind::Comment => acc.add(&content[s..e], Field::Comment),
                LineKind::Code => acc.add(&content[s..e], Field::Body),
                LineKind::Skip => {}
            }
        }
        if acc.lens[Field::Comment as usize] + acc.lens[Field::Body as usize] == 0 {
            continue;
        }
        let line = 1 + lines.partition_point(|l| l.0 < hs) as u32;
        let last = win.last().map_or(he, |l| l.1);
        let hs_trim = hs + (content[hs..he].len() - content[hs..he].trim_ascii_start().len());
        let doc = Doc {
            line,
            start: hs_trim as u32,
            end: he as u32,
            def_start: hs as u32,
            def_end: last as u32,
            kind: WINDOW_KIND,
            ..Doc::default()
        };
        out.push(finish(acc, doc));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(name: &str, kind: Kind, src: &str, def: &str, container: Option<&str>) -> DefIn {
        let s = src.find(def).unwrap();
        let ns = s + def.find(name).unwrap();
        DefIn {
            name: name.into(),
            container: container.map(Into::into),
            kind,
            name_start: ns as u32,
            name_end: (ns + name.len()) as u32,
            def_start: s as u32,
            def_end: (s + def.len()) as u32,
            line: 1 + src[..ns].matches('\n').count() as u32,
        }
    }

    fn field_terms(doc: &Doc, f: Field) -> Vec<&str> {
        doc.terms.iter().filter(|(_, c)| c[f as usize] > 0).map(|(t, _)| t.as_str()).collect()
    }

    #[test]
    fn a_python_function_has_its_fields() {
        let src = "import os\n\n# Parse a date header.\ndef parse_http_date(value):\n    # see https://x.org/a\n    return email.utils.parsedate(value)\n";
        let def = "def parse_http_date(value):\n    # see https://x.org/a\n    return email.utils.parsedate(value)\n";
        let mut an = Analyzer::default();
        let docs = file_docs(
            &mut an,
            "lib/http/util.py",
            src.as_bytes(),
            &[d("parse_http_date", Kind::Function, src, def, None)],
        );
        assert_eq!(docs.len(), 1);
        let doc = &docs[0];
        assert_eq!(doc.line, 4);
        assert_eq!(field_terms(doc, Field::Name), ["date", "http", "pars"]);
        assert!(doc.terms.iter().any(|(t, c)| t == "#date_http_pars" && *c == [0; NFIELDS]), "its spell key");
        assert_eq!(field_terms(doc, Field::Signature), ["valu"]);
        assert_eq!(field_terms(doc, Field::Place), ["http", "lib", "util"]);
        assert_eq!(field_terms(doc, Field::Comment), ["date", "header", "pars", "see"]);
        assert!(field_terms(doc, Field::Body).contains(&"email"));
        assert!(!doc.terms.iter().any(|(t, _)| t == "org" || t == "os"), "URLs and imports are not content");
    }

    #[test]
    fn a_file_without_definitions_is_windowed_past_its_licence() {
        let mut src = String::from("# Copyright 2020 Someone, MIT licence\n");
        for i in 0..40 {
            src.push_str(&format!("value_{i} = compute(widget)\n"));
        }
        let mut an = Analyzer::default();
        let docs = file_docs(&mut an, "conf.py", src.as_bytes(), &[]);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].line, 2);
        assert_eq!(docs[1].line, 32);
        assert!(!docs[0].terms.iter().any(|(t, _)| t == "copyright"));
        assert!(docs[0].terms.iter().any(|(t, _)| t == "widget"));
    }
}
