//! SCIP ingestion: Sourcegraph's `scip.proto`, decoded with hand-written
//! prost messages holding only the fields lens reads (unknown fields are
//! skipped, as protobuf allows).
//!
//! The top-level `Index` is walked by hand, one field at a time, so that a
//! decoding failure names the document it happened in. Ranges are
//! `[line, char, end_char]` or `[line, char, end_line, end_char]` in the
//! document's position encoding; SCIP files that leave it unspecified (as
//! scip-python 0.6.6 does) come from LSP-based indexers, whose characters are
//! UTF-16 code units, so that is what lens assumes for them.

use std::path::Path;

use prost::Message;

use super::precise::{ContentOf, LineIndex, Occ, PreciseData, Units};
use super::Kind;
use crate::error::{Error, Result};

#[derive(Clone, PartialEq, Message)]
pub struct Metadata {
    #[prost(string, tag = "3")]
    pub project_root: String,
    #[prost(int32, tag = "4")]
    pub text_document_encoding: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct Document {
    #[prost(string, tag = "1")]
    pub relative_path: String,
    #[prost(message, repeated, tag = "2")]
    pub occurrences: Vec<Occurrence>,
    #[prost(string, tag = "4")]
    pub language: String,
    #[prost(int32, tag = "6")]
    pub position_encoding: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct Occurrence {
    #[prost(int32, repeated, tag = "1")]
    pub range: Vec<i32>,
    #[prost(string, tag = "2")]
    pub symbol: String,
    #[prost(int32, tag = "3")]
    pub symbol_roles: i32,
    #[prost(int32, repeated, tag = "7")]
    pub enclosing_range: Vec<i32>,
}

/// Used by tests to write SCIP fixtures.
#[derive(Clone, PartialEq, Message)]
pub struct ScipIndex {
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<Metadata>,
    #[prost(message, repeated, tag = "2")]
    pub documents: Vec<Document>,
}

const ROLE_DEFINITION: i32 = 0x1;

/// One SCIP descriptor: its name and suffix character.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub name: String,
    /// '/', '#', '.', ':', '!', 'm' (method), 'p' (parameter), 't' (type parameter)
    pub suffix: char,
}

/// Parses the descriptors of a global SCIP symbol (`None` for locals and
/// for symbols that do not follow the grammar).
pub fn descriptors(symbol: &str) -> Option<Vec<Descriptor>> {
    if symbol.starts_with("local ") {
        return None;
    }
    // scheme, manager, package name, version: four space-separated fields
    // (a literal space inside one is doubled).
    let b = symbol.as_bytes();
    let mut i = 0;
    let mut fields = 0;
    while fields < 4 {
        if i >= b.len() {
            return None;
        }
        if b[i] == b' ' {
            if b.get(i + 1) == Some(&b' ') {
                i += 2;
                continue;
            }
            fields += 1;
        }
        i += 1;
    }
    let d: Vec<char> = symbol[i..].chars().collect();
    let mut out = Vec::new();
    let mut k = 0;
    let name_at = |k: &mut usize| -> Option<String> {
        let mut s = String::new();
        if d.get(*k) == Some(&'`') {
            *k += 1;
            loop {
                match d.get(*k)? {
                    '`' if d.get(*k + 1) == Some(&'`') => {
                        s.push('`');
                        *k += 2;
                    }
                    '`' => {
                        *k += 1;
                        return Some(s);
                    }
                    c => {
                        s.push(*c);
                        *k += 1;
                    }
                }
            }
        }
        while let Some(&c) = d.get(*k) {
            if c.is_alphanumeric() || matches!(c, '_' | '+' | '-' | '$') {
                s.push(c);
                *k += 1;
            } else {
                break;
            }
        }
        (!s.is_empty()).then_some(s)
    };
    while k < d.len() {
        match d[k] {
            '[' => {
                k += 1;
                let name = name_at(&mut k)?;
                (d.get(k) == Some(&']')).then_some(())?;
                k += 1;
                out.push(Descriptor { name, suffix: 't' });
            }
            '(' => {
                k += 1;
                let name = name_at(&mut k)?;
                (d.get(k) == Some(&')')).then_some(())?;
                k += 1;
                out.push(Descriptor { name, suffix: 'p' });
            }
            _ => {
                let name = name_at(&mut k)?;
                match d.get(k)? {
                    c @ ('/' | '#' | '.' | ':' | '!') => {
                        out.push(Descriptor { name, suffix: *c });
                        k += 1;
                    }
                    '(' => {
                        while d.get(k)? != &')' {
                            k += 1;
                        }
                        (d.get(k + 1) == Some(&'.')).then_some(())?;
                        k += 2;
                        out.push(Descriptor { name, suffix: 'm' });
                    }
                    _ => return None,
                }
            }
        }
    }
    Some(out)
}

/// The name, kind and container a symbol's descriptors give, or `None` for
/// symbols lens does not index (parameters, type parameters, module metas).
pub fn describe(ds: &[Descriptor]) -> Option<(String, Kind, Option<String>)> {
    let last = ds.last()?;
    let parent = ds.len().checked_sub(2).map(|i| &ds[i]);
    let in_type = parent.is_some_and(|p| p.suffix == '#');
    let kind = match last.suffix {
        '/' => Kind::Module,
        '#' => Kind::Class,
        'm' if in_type => Kind::Method,
        'm' | '!' => Kind::Function,
        '.' if in_type => Kind::Field,
        '.' if last.name.len() > 1
            && last.name.chars().all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit()) =>
        {
            Kind::Constant
        }
        '.' => Kind::Variable,
        _ => return None,
    };
    Some((last.name.clone(), kind, parent.map(|p| p.name.clone())))
}

fn read_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn units_of(encoding: i32) -> Units {
    match encoding {
        1 => Units::Utf8,
        3 => Units::Utf32,
        _ => Units::Utf16,
    }
}

/// Reads a SCIP file into precise data for the files `content_of` knows.
pub fn read(path: &Path, content_of: &ContentOf<'_>) -> Result<(PreciseData, u64)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(path, &bytes, content_of)
}

/// Parses SCIP bytes; returns the data and how many occurrences pointed
/// outside their file (stale index) and were skipped.
pub fn parse(path: &Path, b: &[u8], content_of: &ContentOf<'_>) -> Result<(PreciseData, u64)> {
    let mut data = PreciseData::default();
    let mut skipped = 0u64;
    let mut at = 0;
    let mut ndoc = 0usize;
    let mut saw_field = false;
    while at < b.len() {
        let field_at = at;
        let bad = |what: String| Error::symbol_data(path, format!("byte {field_at}"), what);
        let key = read_varint(b, &mut at).ok_or_else(|| bad("truncated field key".into()))?;
        let (field, wire) = (key >> 3, key & 7);
        let body = match wire {
            0 => {
                read_varint(b, &mut at).ok_or_else(|| bad("truncated varint".into()))?;
                None
            }
            1 => {
                at = at.checked_add(8).filter(|&e| e <= b.len()).ok_or_else(|| bad("truncated fixed64".into()))?;
                None
            }
            5 => {
                at = at.checked_add(4).filter(|&e| e <= b.len()).ok_or_else(|| bad("truncated fixed32".into()))?;
                None
            }
            2 => {
                let len = read_varint(b, &mut at).ok_or_else(|| bad("truncated length".into()))? as usize;
                let end = at
                    .checked_add(len)
                    .filter(|&e| e <= b.len())
                    .ok_or_else(|| bad(format!("field {field} runs past the end of the file")))?;
                let s = &b[at..end];
                at = end;
                Some(s)
            }
            w => return Err(bad(format!("invalid wire type {w}: not a SCIP index"))),
        };
        if field == 0 {
            return Err(bad("field number 0: not a SCIP index".into()));
        }
        saw_field = true;
        match (field, body) {
            (1, Some(s)) => {
                Metadata::decode(s).map_err(|e| Error::symbol_data(path, "metadata", e.to_string()))?;
            }
            (2, Some(s)) => {
                let doc = Document::decode(s)
                    .map_err(|e| Error::symbol_data(path, format!("document #{ndoc}"), e.to_string()))?;
                skipped += add_document(path, ndoc, &doc, content_of, &mut data)?;
                ndoc += 1;
            }
            (1 | 2, None) => {
                return Err(Error::symbol_data(
                    path,
                    format!("byte {field_at}"),
                    format!("field {field} has the wrong wire type"),
                ))
            }
            _ => {}
        }
    }
    if !saw_field {
        return Err(Error::symbol_data(path, "index", "empty file: not a SCIP index"));
    }
    Ok((data, skipped))
}

fn add_document(
    path: &Path,
    ndoc: usize,
    doc: &Document,
    content_of: &ContentOf<'_>,
    data: &mut PreciseData,
) -> Result<u64> {
    let rel = doc.relative_path.trim_start_matches("./").to_string();
    if rel.is_empty() || rel.starts_with('/') || rel.split('/').any(|c| c == "..") {
        return Err(Error::symbol_data(
            path,
            format!("document #{ndoc}"),
            format!("bad relative_path {:?}", doc.relative_path),
        ));
    }
    let Some(content) = content_of(&rel) else {
        data.unmatched_docs += 1;
        return Ok(0);
    };
    let li = LineIndex::new(content);
    let units = units_of(doc.position_encoding);
    let mut skipped = 0;
    let mut occs = Vec::new();
    for (i, o) in doc.occurrences.iter().enumerate() {
        let record = || format!("document {rel:?} occurrence #{i}");
        let span = |r: &[i32]| -> Result<Option<(u32, u32, u32)>> {
            let (sl, sc, el, ec) = match *r {
                [sl, sc, ec] => (sl, sc, sl, ec),
                [sl, sc, el, ec] => (sl, sc, el, ec),
                _ => {
                    return Err(Error::symbol_data(
                        path,
                        record(),
                        format!("range has {} elements, not 3 or 4", r.len()),
                    ))
                }
            };
            if sl < 0 || sc < 0 || el < 0 || ec < 0 || (el, ec) < (sl, sc) {
                return Err(Error::symbol_data(path, record(), format!("invalid range {r:?}")));
            }
            let s = li.offset(sl as usize, sc as usize, units);
            let e = li.offset(el as usize, ec as usize, units);
            Ok(match (s, e) {
                (Some(s), Some(e)) => Some((s as u32, e as u32, sl as u32 + 1)),
                _ => None,
            })
        };
        let name_span = span(&o.range)?;
        if o.symbol.is_empty() || o.symbol.starts_with("local ") {
            continue;
        }
        let Some((name, kind, container)) = descriptors(&o.symbol).as_deref().and_then(describe) else {
            continue;
        };
        let Some((start, end, line)) = name_span else {
            skipped += 1;
            continue;
        };
        // The occurrence must cover the name itself (an import alias or a
        // keyword range would put a different text at this span).
        if content.get(start as usize..end as usize) != Some(name.as_bytes()) {
            skipped += 1;
            continue;
        }
        let enclosing =
            if o.enclosing_range.is_empty() { None } else { span(&o.enclosing_range)?.map(|(s, e, _)| (s, e)) };
        occs.push(Occ {
            name,
            start,
            end,
            line,
            is_def: o.symbol_roles & ROLE_DEFINITION != 0,
            kind: Some(kind),
            container,
            enclosing,
        });
    }
    data.docs.entry(rel).or_default().extend(occs);
    Ok(skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_grammar() {
        let d = descriptors("scip-python python cpython-lib 3.11.7 `email.utils`/parsedate_tz().").unwrap();
        assert_eq!(
            d,
            vec![
                Descriptor { name: "email.utils".into(), suffix: '/' },
                Descriptor { name: "parsedate_tz".into(), suffix: 'm' }
            ]
        );
        let (name, kind, container) =
            describe(&descriptors("scip-python python x 1 mod/Klass#meth().").unwrap()).unwrap();
        assert_eq!((name.as_str(), kind, container.as_deref()), ("meth", Kind::Method, Some("Klass")));
        assert!(describe(&descriptors("a b c d mod/f().(x)").unwrap()).is_none());
        assert_eq!(describe(&descriptors("a b c d mod/MAX_SIZE.").unwrap()).unwrap().1, Kind::Constant);
        assert!(descriptors("local 4").is_none());
        assert!(descriptors("a b").is_none());
    }

    #[test]
    fn garbage_is_an_error_naming_the_record() {
        let p = Path::new("x.scip");
        let none = |_: &str| None;
        assert!(matches!(parse(p, b"", &none), Err(Error::SymbolData { .. })));
        assert!(matches!(parse(p, b"\x0f\x00", &none), Err(Error::SymbolData { .. })));
        // A document field whose length runs past the end.
        let e = parse(p, b"\x12\x50abc", &none).unwrap_err();
        assert!(e.to_string().contains("byte 0"), "{e}");
        // A document holding a malformed occurrence range.
        let idx = ScipIndex {
            metadata: None,
            documents: vec![Document {
                relative_path: "a.py".into(),
                occurrences: vec![Occurrence {
                    range: vec![1, 2],
                    symbol: "a b c d f().".into(),
                    symbol_roles: 1,
                    enclosing_range: vec![],
                }],
                language: String::new(),
                position_encoding: 0,
            }],
        };
        let e = parse(p, &idx.encode_to_vec(), &|_| Some(&b"def f(): pass\n"[..])).unwrap_err();
        assert!(e.to_string().contains("document \"a.py\" occurrence #0"), "{e}");
    }
}
