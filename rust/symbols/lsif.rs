//! LSIF ingestion (LSIF 0.4 to 0.6): JSON lines (or one JSON array) of
//! vertices and edges.
//!
//! Read: `metaData` (project root; positions are UTF-16 code units),
//! `document`, `range` (with its optional 0.4 `tag`: kind and full range),
//! `resultSet`, `definitionResult`, `referenceResult`, `moniker`,
//! `hoverResult`; edges `contains`, `next`, `item` (with `document` in 0.4,
//! `shard` in 0.5+), `textDocument/definition`, `textDocument/references`,
//! `moniker`, `textDocument/hover`. A range is a definition when an `item`
//! edge from a `definitionResult` (or one with property "definitions") holds
//! it, a reference when a reference result's "references" item holds it. The
//! name is the text the range covers. Anything else is ignored.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::Value;

use super::precise::{ContentOf, LineIndex, Occ, PreciseData, Units};
use super::Kind;
use crate::error::{Error, Result};

struct Range {
    doc: Option<String>,
    start: (u64, u64),
    end: (u64, u64),
    kind: Option<Kind>,
    full: Option<((u64, u64), (u64, u64))>,
    record: usize,
}

fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// LSP SymbolKind numbers onto lens kinds.
fn lsp_kind(n: u64) -> Option<Kind> {
    Some(match n {
        2..=4 => Kind::Module,
        5 | 23 => Kind::Class,
        6 | 9 => Kind::Method,
        7 | 8 => Kind::Field,
        10 => Kind::Enum,
        11 => Kind::Interface,
        12 => Kind::Function,
        13 => Kind::Variable,
        14 | 22 => Kind::Constant,
        26 => Kind::Type,
        _ => return None,
    })
}

pub fn read(path: &Path, root: &str, content_of: &ContentOf<'_>) -> Result<(PreciseData, u64)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(path, &bytes, root, content_of)
}

fn position(v: Option<&Value>) -> Option<(u64, u64)> {
    let v = v?;
    Some((v.get("line")?.as_u64()?, v.get("character")?.as_u64()?))
}

/// Parses LSIF bytes; returns the data and how many ranges pointed outside
/// their file and were skipped.
pub fn parse(path: &Path, bytes: &[u8], root: &str, content_of: &ContentOf<'_>) -> Result<(PreciseData, u64)> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Error::symbol_data(path, format!("byte {}", e.valid_up_to()), "not UTF-8"))?;
    let records: Vec<(usize, Value)> = if text.trim_start().starts_with('[') {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(items)) => items.into_iter().enumerate().map(|(i, v)| (i + 1, v)).collect(),
            Ok(_) => return Err(Error::symbol_data(path, "document", "not an array of LSIF records")),
            Err(e) => return Err(Error::symbol_data(path, format!("line {}", e.line()), format!("invalid JSON: {e}"))),
        }
    } else {
        let mut v = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let value = serde_json::from_str::<Value>(line)
                .map_err(|e| Error::symbol_data(path, format!("line {}", i + 1), format!("invalid JSON: {e}")))?;
            v.push((i + 1, value));
        }
        v
    };
    if records.is_empty() {
        return Err(Error::symbol_data(path, "document", "no LSIF records"));
    }
    let mut project_root = String::new();
    let mut docs: HashMap<String, String> = HashMap::new();
    let mut ranges: HashMap<String, Range> = HashMap::new();
    let mut vertices: HashMap<String, String> = HashMap::new();
    let mut def_ranges: HashSet<String> = HashSet::new();
    let mut ref_ranges: HashSet<String> = HashSet::new();
    let mut saw_meta = false;
    for (line, r) in &records {
        let rec = || format!("line {line}");
        let bad = |why: &str| Error::symbol_data(path, rec(), why.to_string());
        let obj = r.as_object().ok_or_else(|| bad("record is not a JSON object"))?;
        let id = obj.get("id").and_then(id_of).ok_or_else(|| bad("record has no id"))?;
        let label = obj.get("label").and_then(Value::as_str).ok_or_else(|| bad("record has no label"))?;
        match obj.get("type").and_then(Value::as_str) {
            Some("vertex") => {
                match label {
                    "metaData" => {
                        saw_meta = true;
                        if let Some(enc) = obj.get("positionEncoding").and_then(Value::as_str) {
                            if enc != "utf-16" {
                                return Err(bad(&format!("unsupported positionEncoding {enc:?}")));
                            }
                        }
                        project_root = obj
                            .get("projectRoot")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .trim_end_matches('/')
                            .to_string();
                    }
                    "document" => {
                        let uri = obj.get("uri").and_then(Value::as_str).ok_or_else(|| bad("document has no uri"))?;
                        docs.insert(id.clone(), uri.to_string());
                    }
                    "range" => {
                        let start = position(obj.get("start")).ok_or_else(|| bad("range has no valid start"))?;
                        let end = position(obj.get("end")).ok_or_else(|| bad("range has no valid end"))?;
                        if end < start {
                            return Err(bad("range ends before it starts"));
                        }
                        let tag = obj.get("tag");
                        let kind = tag.and_then(|t| t.get("kind")).and_then(Value::as_u64).and_then(lsp_kind);
                        let full = tag
                            .and_then(|t| t.get("fullRange"))
                            .and_then(|f| Some((position(f.get("start"))?, position(f.get("end"))?)));
                        if tag.and_then(|t| t.get("type")).and_then(Value::as_str) == Some("definition") {
                            def_ranges.insert(id.clone());
                        }
                        ranges.insert(id.clone(), Range { doc: None, start, end, kind, full, record: *line });
                    }
                    _ => {}
                }
                vertices.insert(id, label.to_string());
            }
            Some("edge") => {
                let out = obj.get("outV").and_then(id_of).ok_or_else(|| bad("edge has no outV"))?;
                let ins: Vec<String> = match (obj.get("inV"), obj.get("inVs")) {
                    (Some(v), _) => vec![id_of(v).ok_or_else(|| bad("edge has a bad inV"))?],
                    (None, Some(Value::Array(vs))) => vs
                        .iter()
                        .map(|v| id_of(v).ok_or_else(|| bad("edge has a bad inVs entry")))
                        .collect::<Result<_>>()?,
                    _ => return Err(bad("edge has no inV or inVs")),
                };
                let out_label =
                    vertices.get(&out).ok_or_else(|| bad(&format!("edge from unknown vertex {out}")))?.clone();
                for i in &ins {
                    if !vertices.contains_key(i) {
                        return Err(bad(&format!("edge to unknown vertex {i}")));
                    }
                }
                match label {
                    "contains" if out_label == "document" => {
                        for i in &ins {
                            if let Some(r) = ranges.get_mut(i) {
                                r.doc = Some(out.clone());
                            }
                        }
                    }
                    "item" => {
                        let doc = obj.get("document").or_else(|| obj.get("shard")).and_then(id_of);
                        let property = obj.get("property").and_then(Value::as_str);
                        let is_def = out_label == "definitionResult" || property == Some("definitions");
                        let is_ref = out_label == "referenceResult" && matches!(property, None | Some("references"));
                        for i in &ins {
                            if let Some(r) = ranges.get_mut(i) {
                                if r.doc.is_none() {
                                    r.doc.clone_from(&doc);
                                }
                                if is_def {
                                    def_ranges.insert(i.clone());
                                } else if is_ref {
                                    ref_ranges.insert(i.clone());
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            _ => return Err(bad("record type is neither vertex nor edge")),
        }
    }
    if !saw_meta && docs.is_empty() {
        return Err(Error::symbol_data(path, "document", "no metaData or document vertex: not an LSIF dump"));
    }
    let strip = |uri: &str| -> String {
        let mut p = uri;
        for prefix in [project_root.as_str(), root] {
            if !prefix.is_empty() {
                let with_scheme =
                    if prefix.starts_with("file://") { prefix.to_string() } else { format!("file://{prefix}") };
                if let Some(rest) = p.strip_prefix(with_scheme.as_str()).or_else(|| p.strip_prefix(prefix)) {
                    p = rest;
                    break;
                }
            }
        }
        p.trim_start_matches("file://").trim_start_matches('/').to_string()
    };
    let mut data = PreciseData::default();
    let mut skipped = 0;
    let mut by_doc: HashMap<String, Vec<(&String, &Range)>> = HashMap::new();
    for (id, r) in &ranges {
        if let Some(d) = &r.doc {
            by_doc.entry(d.clone()).or_default().push((id, r));
        }
    }
    let mut doc_ids: Vec<&String> = docs.keys().collect();
    doc_ids.sort();
    for doc_id in doc_ids {
        let rel = strip(&docs[doc_id]);
        let Some(content) = content_of(&rel) else {
            data.unmatched_docs += 1;
            continue;
        };
        let li = LineIndex::new(content);
        let mut occs = Vec::new();
        let mut rs = by_doc.remove(doc_id).unwrap_or_default();
        rs.sort_by_key(|(_, r)| r.record);
        for (id, r) in rs {
            let is_def = def_ranges.contains(id);
            if !is_def && !ref_ranges.contains(id) {
                continue;
            }
            let off = |(l, c): (u64, u64)| li.offset(l as usize, c as usize, Units::Utf16);
            let (Some(s), Some(e)) = (off(r.start), off(r.end)) else {
                skipped += 1;
                continue;
            };
            let Ok(name) = std::str::from_utf8(&content[s..e]) else {
                skipped += 1;
                continue;
            };
            if name.is_empty() || name.contains('\n') {
                skipped += 1;
                continue;
            }
            let enclosing = r.full.and_then(|(a, b)| Some((off(a)? as u32, off(b)? as u32)));
            occs.push(Occ {
                name: name.to_string(),
                start: s as u32,
                end: e as u32,
                line: r.start.0 as u32 + 1,
                is_def,
                kind: r.kind,
                container: None,
                enclosing,
            });
        }
        data.docs.entry(rel).or_default().extend(occs);
    }
    Ok((data, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_line() {
        let p = Path::new("dump.lsif");
        let none = |_: &str| None;
        let e = parse(p, b"{\"id\":1,\"type\":\"vertex\",\"label\":\"metaData\"}\n{oops\n", "", &none).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e =
            parse(p, b"{\"id\":1,\"type\":\"edge\",\"label\":\"next\",\"outV\":7,\"inV\":8}\n", "", &none).unwrap_err();
        assert!(e.to_string().contains("unknown vertex"), "{e}");
        assert!(parse(p, b"", "", &none).is_err());
    }
}
