//! Precise symbol data (from SCIP or LSIF) in lens's terms, and how it is
//! merged over tree-sitter's: exact byte spans, definitions and references.
//!
//! Both formats count positions as (line, character) with their own unit of
//! character; [`LineIndex`] maps those onto byte offsets of the indexed file.
//! Merging: a file with precise data keeps tree-sitter definitions only where
//! precise data has none at the same name offset (a precise definition takes
//! the tree-sitter kind, whole span and container when it lacks its own), and
//! its references come from precise data alone.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::store::{Builder, DefRec, RefRec, F_HAS_SYMBOLS, F_PRECISE, NONE};
use super::Kind;

/// The indexed text of a path named by SCIP or LSIF (`None`: not indexed),
/// borrowed from wherever the caller holds it.
pub type ContentOf<'c> = dyn Fn(&str) -> Option<&'c [u8]> + 'c;

/// How a format counts characters within a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Units {
    Utf8,
    Utf16,
    Utf32,
}

/// Line starts of one file, for (line, character) -> byte offset.
pub struct LineIndex<'a> {
    content: &'a [u8],
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(content: &'a [u8]) -> Self {
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', content).map(|i| i + 1));
        LineIndex { content, starts }
    }

    /// The byte offset of (0-based line, character in `units`), or `None`
    /// when the position is past the line's end or inside a character.
    pub fn offset(&self, line: usize, character: usize, units: Units) -> Option<usize> {
        let start = *self.starts.get(line)?;
        let end = self.starts.get(line + 1).map_or(self.content.len(), |&e| e - 1);
        let text = &self.content[start..end];
        if units == Units::Utf8 {
            return (character <= text.len()).then_some(start + character);
        }
        let s = String::from_utf8_lossy(text);
        // Lossy decoding keeps byte offsets only for valid UTF-8; fall back to bytes otherwise.
        if s.len() != text.len() {
            return (character <= text.len()).then_some(start + character);
        }
        let mut units_seen = 0;
        for (b, c) in s.char_indices() {
            if units_seen == character {
                return Some(start + b);
            }
            units_seen += if units == Units::Utf16 { c.len_utf16() } else { 1 };
            if units_seen > character {
                return None;
            }
        }
        (units_seen == character).then_some(end)
    }
}

/// One precise occurrence, already in bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Occ {
    pub name: String,
    pub start: u32,
    pub end: u32,
    /// 1-based line of `start`.
    pub line: u32,
    pub is_def: bool,
    pub kind: Option<Kind>,
    pub container: Option<String>,
    /// The whole definition, when the format says.
    pub enclosing: Option<(u32, u32)>,
}

/// Precise data for a set of documents, by root-relative path.
#[derive(Default, Debug)]
pub struct PreciseData {
    pub docs: BTreeMap<String, Vec<Occ>>,
    /// Documents that named files the index does not hold.
    pub unmatched_docs: u64,
}

/// Counts of what a merge did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeCounts {
    pub files: u64,
    pub definitions: u64,
    pub references: u64,
    pub unmatched_docs: u64,
}

/// Applies precise data over a builder holding tree-sitter data.
pub fn apply(b: &mut Builder, data: &PreciseData) -> MergeCounts {
    let mut counts = MergeCounts { unmatched_docs: data.unmatched_docs, ..Default::default() };
    let ids: HashMap<String, u32> = (0..b.nfiles() as u32).map(|f| (b.file_path(f).to_string(), f)).collect();
    let mut touched: HashSet<u32> = HashSet::new();
    let mut resolved: Vec<(u32, &Occ)> = Vec::new();
    for (path, occs) in &data.docs {
        let Some(&file) = ids.get(path) else {
            counts.unmatched_docs += 1;
            continue;
        };
        if occs.is_empty() {
            continue;
        }
        touched.insert(file);
        resolved.extend(occs.iter().map(|o| (file, o)));
    }
    counts.files = touched.len() as u64;
    // Tree-sitter definitions of touched files, by name offset.
    let mut ts_defs: HashMap<(u32, u32), DefRec> = HashMap::new();
    b.defs.retain(|d| {
        if !touched.contains(&d.file) {
            return true;
        }
        if !d.precise {
            ts_defs.insert((d.file, d.name_start), *d);
        }
        false
    });
    b.refs.retain(|r| !touched.contains(&r.file));
    let mut precise_def_at: HashSet<(u32, u32)> = HashSet::new();
    for &(file, o) in &resolved {
        if o.is_def {
            precise_def_at.insert((file, o.start));
        }
    }
    for &(file, o) in &resolved {
        let name = b.intern(&o.name);
        if o.is_def {
            let ts = ts_defs.get(&(file, o.start));
            let kind = o.kind.or(ts.map(|t| t.kind)).unwrap_or(Kind::Variable);
            let (def_start, def_end) = o.enclosing.or(ts.map(|t| (t.def_start, t.def_end))).unwrap_or((o.start, o.end));
            let container = match (&o.container, ts) {
                (Some(c), _) => b.intern(c),
                (None, Some(t)) => t.container,
                (None, None) => NONE,
            };
            b.defs.push(DefRec {
                name,
                file,
                kind,
                precise: true,
                name_start: o.start,
                name_end: o.end,
                def_start,
                def_end,
                container,
                line: o.line,
            });
            counts.definitions += 1;
        } else {
            b.refs.push(RefRec { name, file, start: o.start, end: o.end, line: o.line, precise: true });
            counts.references += 1;
        }
    }
    // Tree-sitter definitions that precise data does not cover stay.
    for ((file, start), d) in ts_defs {
        if !precise_def_at.contains(&(file, start)) {
            b.defs.push(d);
        }
    }
    for file in touched {
        b.set_flags(file, F_PRECISE | F_HAS_SYMBOLS);
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_columns() {
        // "é" is 2 bytes / 1 UTF-16 unit; "𝄞" is 4 bytes / 2 UTF-16 units.
        let text = "a = 1\né𝄞x = 2\n";
        let li = LineIndex::new(text.as_bytes());
        assert_eq!(li.offset(0, 4, Units::Utf16), Some(4));
        assert_eq!(li.offset(1, 3, Units::Utf16), Some(6 + 6));
        assert_eq!(li.offset(1, 2, Units::Utf32), Some(6 + 6));
        assert_eq!(li.offset(1, 2, Units::Utf16), None, "inside a surrogate pair");
        assert_eq!(li.offset(1, 6, Units::Utf8), Some(12));
        assert_eq!(li.offset(1, 99, Units::Utf16), None);
        assert_eq!(li.offset(9, 0, Units::Utf16), None);
        assert_eq!(li.offset(2, 0, Units::Utf16), Some(text.len()));
    }
}
