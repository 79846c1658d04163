//! Definitions as documents. Each function, method, class, struct, type or
//! function-like macro of a file becomes one document with five fields; a
//! file with none is cut into windows of lines instead. Licence headers,
//! import lists and URLs are not content.

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

/// A document, analysed: where it points and its terms with per-field
/// counts. A build's documents hold term ids of the [`Analyzer`] that made
/// them (`Doc<u32>`, [`file_docs`]); `Doc<String>` spells them out.
#[derive(Clone, Debug)]
pub struct Doc<T = String> {
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
    /// (term, count per field), each term once.
    pub terms: Vec<(T, [u8; NFIELDS])>,
    pub lens: [u16; NFIELDS],
}

impl<T> Default for Doc<T> {
    fn default() -> Self {
        Doc {
            line: 0,
            start: 0,
            end: 0,
            def_start: 0,
            def_end: 0,
            kind: 0,
            name: String::new(),
            container: String::new(),
            terms: Vec::new(),
            lens: [0; NFIELDS],
        }
    }
}

impl<T> Doc<T> {
    /// The same document with `terms` in place of its own (another
    /// spelling of them: ids or text).
    pub fn with_terms<U>(&self, terms: Vec<(U, [u8; NFIELDS])>) -> Doc<U> {
        Doc {
            line: self.line,
            start: self.start,
            end: self.end,
            def_start: self.def_start,
            def_end: self.def_end,
            kind: self.kind,
            name: self.name.clone(),
            container: self.container.clone(),
            terms,
            lens: self.lens,
        }
    }
}

impl Doc<u32> {
    /// The document with its terms spelled out (ids of `an`), in term order.
    pub fn spelled(&self, an: &Analyzer) -> Doc {
        let mut terms: Vec<(String, [u8; NFIELDS])> =
            self.terms.iter().map(|&(t, c)| (an.text(t).to_string(), c)).collect();
        terms.sort();
        self.with_terms(terms)
    }
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
    terms: Vec<(u32, [u8; NFIELDS])>,
    lens: [u32; NFIELDS],
}

impl<'a> Acc<'a> {
    fn new(an: &'a mut Analyzer) -> Self {
        Acc { an, terms: Vec::new(), lens: [0; NFIELDS] }
    }

    fn add(&mut self, text: &[u8], field: Field) {
        let mut slots = std::mem::take(&mut self.an.slots);
        let (terms, lens) = (&mut self.terms, &mut self.lens);
        self.an.term_ids(text, &mut |t| {
            lens[field as usize] += 1;
            push(terms, &mut slots, t, Some(field))
        });
        self.an.slots = slots;
    }

    /// A term counted in no field (a spell key).
    fn add_uncounted(&mut self, text: &str) {
        let t = self.an.intern(text);
        let mut slots = std::mem::take(&mut self.an.slots);
        push(&mut self.terms, &mut slots, t, None);
        self.an.slots = slots;
    }
}

/// Counts term `t` in `field` (None: only adds it), each term once in
/// `terms`: `slots[t]` is its place there plus one.
fn push(terms: &mut Vec<(u32, [u8; NFIELDS])>, slots: &mut Vec<u32>, t: u32, field: Option<Field>) {
    let t_at = t as usize;
    if slots.len() <= t_at {
        slots.resize(t_at + 1, 0);
    }
    let at = match slots[t_at] {
        0 => {
            terms.push((t, [0u8; NFIELDS]));
            slots[t_at] = terms.len() as u32;
            terms.len() - 1
        }
        p => p as usize - 1,
    };
    if let Some(f) = field {
        let c = &mut terms[at].1[f as usize];
        *c = c.saturating_add(1);
    }
}

/// The next document starts with clear slots, whether this one was
/// finished or dropped.
impl Drop for Acc<'_> {
    fn drop(&mut self) {
        self.clear_slots();
    }
}

impl Acc<'_> {
    /// Clears the slots of this document's terms.
    fn clear_slots(&mut self) {
        // `get_mut`: a panic while `add` held the slots must not panic again here.
        for &(t, _) in &self.terms {
            if let Some(s) = self.an.slots.get_mut(t as usize) {
                *s = 0;
            }
        }
    }
}

fn finish(mut acc: Acc<'_>, mut doc: Doc<u32>) -> Doc<u32> {
    // The terms leave `acc` below, so its drop would clear nothing.
    acc.clear_slots();
    // Each term is in `terms` once (the slots); their order is not the
    // term file's concern (it sorts its terms).
    doc.terms = std::mem::take(&mut acc.terms);
    doc.lens = acc.lens.map(|l| l.min(u16::MAX as u32) as u16);
    doc
}

/// Path words: directories and the file's stem (not its extension).
fn place_text(path: &str) -> &str {
    path.rsplit_once('.').map_or(path, |(stem, _)| stem)
}

/// The documents of one file, their terms ids of `an`.
pub fn file_docs(an: &mut Analyzer, path: &str, content: &[u8], defs: &[DefIn]) -> Vec<Doc<u32>> {
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
            acc.add_uncounted(&key);
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
fn windows(an: &mut Analyzer, path: &str, content: &[u8], lines: &[(usize, usize, LineKind)], out: &mut Vec<Doc<u32>>) {
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

    /// [`file_docs`] with each document's terms spelled out.
    fn docs_of(path: &str, src: &str, defs: &[DefIn]) -> Vec<Doc> {
        let mut an = Analyzer::default();
        let docs = file_docs(&mut an, path, src.as_bytes(), defs);
        docs.iter().map(|d| d.spelled(&an)).collect()
    }

    fn field_terms(doc: &Doc, f: Field) -> Vec<&str> {
        doc.terms.iter().filter(|(_, c)| c[f as usize] > 0).map(|(t, _)| t.as_str()).collect()
    }

    #[test]
    fn a_python_function_has_its_fields() {
        let src = "import os\n\n# Parse a date header.\ndef parse_http_date(value):\n    # see https://x.org/a\n    return email.utils.parsedate(value)\n";
        let def = "def parse_http_date(value):\n    # see https://x.org/a\n    return email.utils.parsedate(value)\n";
        let docs = docs_of("lib/http/util.py", src, &[d("parse_http_date", Kind::Function, src, def, None)]);
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
        let docs = docs_of("conf.py", &src, &[]);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].line, 2);
        assert_eq!(docs[1].line, 32);
        assert!(!docs[0].terms.iter().any(|(t, _)| t == "copyright"));
        assert!(docs[0].terms.iter().any(|(t, _)| t == "widget"));
    }

    #[test]
    fn one_analyser_over_many_files_gives_each_its_own_documents() {
        // A build's analyser makes the documents of many files one after
        // another: a window dropped after its terms were counted (no
        // content but the path's words), terms shared between files and
        // documents, and spell keys must leave the next document clear.
        let mut empty_then_words = "x = 1\n".repeat(WINDOW_LINES);
        empty_then_words.push_str("widget_conf = load(widget_path)\n# read the widget conf\n");
        let py = "class Conf:\n    def load_conf(self, path):\n        return read(path)\n\ndef read(path):\n    return widget\n";
        let defs = vec![
            d("Conf", Kind::Class, py, py.split("\n\ndef").next().unwrap(), None),
            d("load_conf", Kind::Method, py, "def load_conf(self, path):\n        return read(path)\n", Some("Conf")),
            d("read", Kind::Function, py, "def read(path):\n    return widget\n", None),
        ];
        let files: Vec<(&str, &str, &[DefIn])> = vec![
            ("widget/conf.py", &empty_then_words, &[]),
            ("widget/conf_load.py", py, &defs),
            ("widget/conf.py", &empty_then_words, &[]),
            ("conf/widget.py", py, &defs),
        ];
        let mut an = Analyzer::default();
        for (path, src, defs) in files {
            let shared: Vec<Doc> =
                file_docs(&mut an, path, src.as_bytes(), defs).iter().map(|d| d.spelled(&an)).collect();
            let alone = docs_of(path, src, defs);
            assert!(!alone.is_empty() && alone.iter().all(|d| !d.terms.is_empty()), "{path}");
            assert_eq!(format!("{shared:?}"), format!("{alone:?}"), "{path}");
        }
        assert_eq!(docs_of("widget/conf.py", &empty_then_words, &[]).len(), 1, "the first window is dropped");
    }
}
