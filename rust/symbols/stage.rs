//! The Stage-B query: for an identifier-like query, the definitions of the
//! queried symbol first (precise before tree-sitter), then its references;
//! when the exact name is unknown, names with the same sub-tokens
//! (`parse_date` ~ `parseDate`) and then names within 1-2 edits stand in,
//! marked "fuzzy". Results go through a byte-bounded LRU keyed by the index
//! generation, so a refresh or attach can never serve stale hits.
//!
//! Also here: the direct lookups (`definitions`, `references`, `symbols`)
//! and coverage statistics.
//!
//! Each asks for the snapshot's symbols through [`symbol_set`], which checks
//! the symbol files on their first use: damage found then is the caller's
//! `Error::Corrupt`, never a hit built from a bad record.
//!
//! A shard of a sharded set sees only its own names, so it cannot decide
//! the fallback alone: the set's coordinator gathers every shard's
//! [`fallback_candidates`], decides as one index would, and installs the
//! names for the calling thread ([`set_fallback_names`]) before the shard's
//! lookup. With nothing installed (every embedded use) nothing changes.

use std::cell::RefCell;
use std::sync::Arc;

use super::lang::{Lang, NO_LANG};
use super::layers::{symbol_set, SymbolSet};
use super::store::{DefRec, SymbolTable, F_HAS_SYMBOLS, F_PRECISE, NONE};
use super::Kind;
use crate::cache::{CacheStats, LruCache};
use crate::error::Result;
use crate::hit::{line_bounds, Hit};
use crate::index::Snapshot;

/// What a symbol hit says about its symbol.
#[derive(Clone, Debug, PartialEq)]
pub struct SymInfo {
    pub name: String,
    pub kind: &'static str,
    /// Where the symbol is defined (path, definition span, 1-based line).
    pub def_path: String,
    pub def_start: u64,
    pub def_end: u64,
    pub def_line: u32,
    pub container: Option<String>,
    pub precise: bool,
}

/// A Stage-B hit: a [`Hit`] at the name occurrence, whose `why` is one of
/// "definition", "reference" or "fuzzy", and the symbol it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct SymHit {
    pub hit: Hit,
    pub symbol: Option<SymInfo>,
}

impl SymHit {
    fn weight(&self) -> u64 {
        (std::mem::size_of::<SymHit>()
            + self.hit.path.len()
            + self.hit.text.len()
            + self.hit.why.capacity() * std::mem::size_of::<&str>()
            + self.symbol.as_ref().map_or(0, |s| 96 + s.name.len() + s.def_path.len())) as u64
    }
}

/// A name from `symbols()`.
#[derive(Clone, Debug, PartialEq)]
pub struct NameInfo {
    pub name: String,
    pub kind: Option<&'static str>,
    pub definitions: u64,
    pub references: u64,
    pub distance: u32,
}

/// Coverage: computed from the symbol file and the live files, never assumed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Coverage {
    pub source_files: u64,
    pub with_symbols: u64,
    pub with_precise: u64,
    pub other_files: u64,
    pub by_language: Vec<(&'static str, u64, u64, u64)>,
    pub names: u64,
    pub definitions: u64,
    pub references: u64,
    pub symbol_bytes: u64,
    /// Symbol files in force: the base plus refresh deltas.
    pub layers: u64,
}

impl Coverage {
    pub fn symbol_coverage(&self) -> f64 {
        if self.source_files == 0 {
            0.0
        } else {
            self.with_symbols as f64 / self.source_files as f64
        }
    }
    pub fn precise_coverage(&self) -> f64 {
        if self.source_files == 0 {
            0.0
        } else {
            self.with_precise as f64 / self.source_files as f64
        }
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    Search(u64, String, usize),
    Defs(u64, String),
    Refs(u64, String, usize),
    Names(u64, String, bool, usize),
}

#[derive(Clone)]
enum Cached {
    Hits(Arc<Vec<SymHit>>),
    Names(Arc<Vec<NameInfo>>),
}

/// Stage-B state held by the engine: the lookup cache and its counters.
pub struct StageB {
    cache: LruCache<Key, Cached>,
}

/// Default bound of each cache.
pub const CACHE_BYTES: u64 = 32 << 20;

thread_local! {
    static FALLBACK: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// Installs (None: clears) the names this thread's next lookups fall back
/// to when the shard does not define the queried name: a set's decision.
pub fn set_fallback_names(names: Option<Vec<String>>) {
    FALLBACK.with(|f| *f.borrow_mut() = names);
}

/// Edits the fallback allows for `name`: none under 4 characters, 1 under
/// 8, else 2.
fn fallback_distance(name: &str) -> Option<u32> {
    match name.chars().count() {
        0..=3 => None,
        4..=7 => Some(1),
        _ => Some(2),
    }
}

/// One shard's part of the fallback decision for `query` (None: not an
/// identifier): the looked-up name, its definitions here, and (only with
/// `scan` and when there are none) the other names sharing its sub-tokens
/// and every name within the fallback's edits with its distance and
/// definitions here. The edit scan walks the whole name table (tens of ms
/// on a kernel-sized shard), so a set asks for it only once no shard
/// defines the name.
#[allow(clippy::type_complexity)]
pub fn fallback_candidates(
    snap: &Snapshot,
    query: &str,
    scan: bool,
) -> Result<Option<(String, u64, Vec<String>, Vec<(String, u32, u64)>)>> {
    let Some(parts) = identifier(query) else {
        return Ok(None);
    };
    let name = hyphens_to_underscores(parts[parts.len() - 1]);
    let Some(set) = symbol_set(snap)? else {
        return Ok(Some((name, 0, Vec::new(), Vec::new())));
    };
    let defs = set.defs(&name).len() as u64;
    if defs > 0 || !scan {
        // Defined here, so defined in the set: no fallback, whatever the other names.
        return Ok(Some((name, defs, Vec::new(), Vec::new())));
    }
    let same = set.same_subtokens(&name).into_iter().filter(|n| *n != name).collect();
    let near = fallback_distance(&name).map_or_else(Vec::new, |d| {
        let all = set.fuzzy(&name, d, usize::MAX / 8);
        all.into_iter()
            .map(|(n, dist)| {
                let c = set.ndefs(&n) as u64;
                (n, dist, c)
            })
            .collect()
    });
    Ok(Some((name, defs, same, near)))
}

/// The components of an identifier-like query (`pkg.Name`, `Type::method`,
/// `name`, a trailing `()` allowed), or `None`.
pub fn identifier(query: &str) -> Option<Vec<&str>> {
    let q = query.trim();
    let q = q.strip_suffix("()").unwrap_or(q);
    if q.is_empty() || q.len() > 256 {
        return None;
    }
    let parts: Vec<&str> = q.split("::").flat_map(|p| p.split('.')).collect();
    // A hyphen joins words as `_` does (`parse-http-date`), never at an edge
    // or doubled, so `-x`, `a--b` and `a-` stay out.
    let ok = |p: &str| {
        let mut cs = p.chars();
        cs.next().is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
            && cs.all(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == '-')
            && !p.ends_with('-')
            && !p.contains("--")
    };
    parts.iter().all(|p| ok(p)).then_some(parts)
}

/// The name code spells `parse-http-date` with: `parse_http_date`.
pub fn hyphens_to_underscores(name: &str) -> String {
    name.replace('-', "_")
}

fn kind_rank(k: Kind) -> u32 {
    match k {
        Kind::Function | Kind::Class | Kind::Method | Kind::Interface | Kind::Type | Kind::Enum => 0,
        Kind::Module => 1,
        Kind::Constant => 2,
        Kind::Variable | Kind::Field => 3,
    }
}

fn render(snap: &Snapshot, path: &str, start: u32, end: u32, line: u32) -> Option<(u32, String, u64, u64)> {
    let f = snap.file_by_path(path)?;
    let content = snap.content(f);
    let (s, e) = (start as usize, end as usize);
    if s > e || e > content.len() {
        return None;
    }
    let (ls, le) = line_bounds(content, s);
    let column = String::from_utf8_lossy(&content[ls..s]).chars().count() as u32;
    let _ = line;
    Some((column, String::from_utf8_lossy(&content[ls..le]).into_owned(), s as u64, e as u64))
}

fn info(t: &SymbolTable, d: &DefRec) -> SymInfo {
    SymInfo {
        name: t.name(d.name),
        kind: d.kind.name(),
        def_path: t.path(d.file).to_string(),
        def_start: u64::from(d.def_start),
        def_end: u64::from(d.def_end),
        def_line: d.line,
        container: (d.container != NONE).then(|| t.name(d.container)),
        precise: d.precise,
    }
}

fn def_hit(snap: &Snapshot, t: &SymbolTable, d: &DefRec, why: &'static str, score: f64) -> Option<SymHit> {
    let path = t.path(d.file);
    let (column, text, bs, be) = render(snap, path, d.name_start, d.name_end, d.line)?;
    let hit =
        Hit { path: path.to_string(), line: d.line, column, byte_start: bs, byte_end: be, text, score, why: vec![why] };
    Some(SymHit { hit, symbol: Some(info(t, d)) })
}

/// Definitions in a stable order across layers: precise first, then path.
fn sorted_defs(set: &SymbolSet, name: &str) -> Vec<(usize, DefRec)> {
    let mut defs = set.defs(name);
    if set.layers.len() > 1 {
        defs.sort_by(|(la, a), (lb, b)| {
            (!a.precise, set.table(*la).path(a.file), a.name_start).cmp(&(
                !b.precise,
                set.table(*lb).path(b.file),
                b.name_start,
            ))
        });
    }
    defs
}

impl Default for StageB {
    fn default() -> Self {
        StageB::new(CACHE_BYTES)
    }
}

impl StageB {
    pub fn new(capacity_bytes: u64) -> Self {
        StageB { cache: LruCache::new(capacity_bytes) }
    }

    fn cached_hits(&self, key: Key, make: impl FnOnce() -> Result<Vec<SymHit>>) -> Result<Arc<Vec<SymHit>>> {
        Ok(self.cached_hits_with(key, make)?.0)
    }

    /// The hits and whether they came from the cache (an error is not cached).
    fn cached_hits_with(
        &self,
        key: Key,
        make: impl FnOnce() -> Result<Vec<SymHit>>,
    ) -> Result<(Arc<Vec<SymHit>>, bool)> {
        if let Some(Cached::Hits(h)) = self.cache.get(&key) {
            return Ok((h, true));
        }
        let hits = Arc::new(make()?);
        let w = 64 + hits.iter().map(SymHit::weight).sum::<u64>();
        self.cache.insert(key, Cached::Hits(hits.clone()), w);
        Ok((hits, false))
    }

    /// The Stage-B answer to `query`: empty unless it is identifier-like and
    /// the index has symbols. Also says whether the cache answered.
    pub fn search(&self, snap: &Snapshot, query: &str, k: usize) -> Result<(Arc<Vec<SymHit>>, bool)> {
        let Some(parts) = identifier(query) else {
            return Ok((Arc::new(Vec::new()), false));
        };
        let mut text = query.trim().to_string();
        // A set's fallback decision is part of the answer: a NUL (never in an identifier), then the names.
        FALLBACK.with(|f| {
            if let Some(names) = f.borrow().as_ref() {
                text.push('\0');
                text.push_str(&names.join("\0"));
            }
        });
        let key = Key::Search(snap.manifest.generation, text, k);
        self.cached_hits_with(key, || lookup(snap, &parts, k))
    }

    pub fn definitions(&self, snap: &Snapshot, name: &str) -> Result<Arc<Vec<SymHit>>> {
        self.cached_hits(Key::Defs(snap.manifest.generation, name.to_string()), || {
            let Some(set) = symbol_set(snap)? else {
                return Ok(Vec::new());
            };
            Ok(sorted_defs(set, name)
                .iter()
                .enumerate()
                .filter_map(|(i, (l, d))| def_hit(snap, set.table(*l), d, "definition", 1000.0 - i as f64))
                .collect())
        })
    }

    pub fn references(&self, snap: &Snapshot, name: &str, limit: usize) -> Result<Arc<Vec<SymHit>>> {
        self.cached_hits(Key::Refs(snap.manifest.generation, name.to_string(), limit), || {
            let Some(set) = symbol_set(snap)? else {
                return Ok(Vec::new());
            };
            Ok(ref_hits(snap, set, name, limit, 500.0))
        })
    }

    /// Names by prefix (also by sub-token prefix: `parse_h` finds
    /// `parseHeaders`), or within 2 edits when `fuzzy`.
    pub fn symbols(&self, snap: &Snapshot, text: &str, fuzzy: bool, limit: usize) -> Result<Arc<Vec<NameInfo>>> {
        let key = Key::Names(snap.manifest.generation, text.to_string(), fuzzy, limit);
        if let Some(Cached::Names(n)) = self.cache.get(&key) {
            return Ok(n);
        }
        let out = Arc::new(names(snap, text, fuzzy, limit)?);
        let w = 64 + out.iter().map(|n| 64 + n.name.len() as u64).sum::<u64>();
        self.cache.insert(key, Cached::Names(out.clone()), w);
        Ok(out)
    }

    pub fn lookup_stats(&self) -> CacheStats {
        self.cache.stats()
    }
    pub fn clear(&self) {
        self.cache.clear();
    }
}

fn ref_hits(snap: &Snapshot, set: &SymbolSet, name: &str, limit: usize, top: f64) -> Vec<SymHit> {
    if limit == 0 {
        return Vec::new();
    }
    let sym = sorted_defs(set, name).first().map(|(l, d)| info(set.table(*l), d));
    let mut out = Vec::new();
    // A few spare, for references whose file a refresh has since dropped.
    for (i, (l, r)) in set.refs(name, limit.saturating_add(16)).into_iter().enumerate() {
        if out.len() >= limit {
            break;
        }
        let path = set.table(l).path(r.file);
        let Some((column, text, bs, be)) = render(snap, path, r.start, r.end, r.line) else {
            continue;
        };
        let score = top - i as f64 * 0.01;
        let hit = Hit {
            path: path.to_string(),
            line: r.line,
            column,
            byte_start: bs,
            byte_end: be,
            text,
            score,
            why: vec!["reference"],
        };
        out.push(SymHit { hit, symbol: sym.clone() });
    }
    out
}

fn lookup(snap: &Snapshot, parts: &[&str], k: usize) -> Result<Vec<SymHit>> {
    let Some(set) = symbol_set(snap)? else {
        return Ok(Vec::new());
    };
    let spelled = hyphens_to_underscores(parts[parts.len() - 1]);
    let name = spelled.as_str();
    let quals = &parts[..parts.len() - 1];
    let mut defs: Vec<(usize, DefRec, &'static str)> =
        set.defs(name).into_iter().map(|(l, d)| (l, d, "definition")).collect();
    if defs.is_empty() {
        // Not defined under this exact name: same sub-tokens, then edits (or
        // the names a set's coordinator decided on).
        let mut others: Vec<String> = match FALLBACK.with(|f| f.borrow().clone()) {
            Some(names) => names,
            None => set.same_subtokens(name),
        };
        others.retain(|n| n != name);
        if others.is_empty() && FALLBACK.with(|f| f.borrow().is_none()) {
            if let Some(d) = fallback_distance(name) {
                others = set.fuzzy(name, d, 8).into_iter().map(|(n, _)| n).filter(|n| n != name).collect();
            }
        }
        for other in others {
            defs.extend(set.defs(&other).into_iter().map(|(l, d)| (l, d, "fuzzy")));
        }
    }
    // Precise first; then a definition whose container or path matches the
    // qualifier; then the kinds people look up by name; then the larger
    // definition; then shallower paths, then path order.
    let qual_match = |l: usize, d: &DefRec| -> bool {
        let Some(q) = quals.last() else { return false };
        let t = set.table(l);
        (d.container != NONE && t.name(d.container) == *q)
            || t.path(d.file)
                .split('/')
                .any(|c| c == *q || c.strip_suffix(".py").is_some_and(|s| s == *q) || c.split('.').next() == Some(q))
    };
    defs.sort_by_cached_key(|(l, d, why)| {
        let path = set.table(*l).path(d.file);
        (
            *why != "definition",
            !d.precise,
            !qual_match(*l, d),
            kind_rank(d.kind),
            // A body over a stub: the kernel's `static inline` fallbacks in
            // headers are a few lines, the implementation many (log2 buckets,
            // so near-equal sizes fall through to the path).
            std::cmp::Reverse(d.def_end.saturating_sub(d.def_start).max(1).ilog2()),
            path.matches('/').count(),
            path.to_string(),
            d.name_start,
        )
    });
    let mut out = Vec::new();
    for (i, (l, d, why)) in defs.iter().enumerate() {
        if out.len() >= k {
            break;
        }
        let score = if *why == "definition" { 1000.0 } else { 800.0 } - i as f64 * 0.01;
        if let Some(h) = def_hit(snap, set.table(*l), d, why, score) {
            out.push(h);
        }
    }
    let room = k.saturating_sub(out.len());
    out.extend(ref_hits(snap, set, name, room, 500.0));
    Ok(out)
}

fn names(snap: &Snapshot, text: &str, fuzzy: bool, limit: usize) -> Result<Vec<NameInfo>> {
    let Some(set) = symbol_set(snap)? else {
        return Ok(Vec::new());
    };
    let mk = |name: String, distance: u32| NameInfo {
        kind: set.first_kind(&name).map(Kind::name),
        definitions: set.ndefs(&name) as u64,
        references: set.nrefs(&name) as u64,
        name,
        distance,
    };
    if fuzzy {
        let d = if text.chars().count() >= 6 { 2 } else { 1 };
        return Ok(set.fuzzy(text, d, limit).into_iter().map(|(n, dist)| mk(n, dist)).collect());
    }
    let mut found = set.prefix(text, limit);
    for n in set.subtoken_prefix(text, limit) {
        if found.len() >= limit {
            break;
        }
        if !found.contains(&n) {
            found.push(n);
        }
    }
    Ok(found.into_iter().map(|n| mk(n, 0)).collect())
}

/// Coverage of the live files by symbol data.
pub fn coverage(snap: &Snapshot) -> Result<Coverage> {
    let mut c = Coverage::default();
    let Some(set) = symbol_set(snap)? else {
        c.other_files = snap.nfiles() as u64;
        return Ok(c);
    };
    let mut by: Vec<(&'static str, u64, u64, u64)> = Lang::ALL.iter().map(|l| (l.name(), 0, 0, 0)).collect();
    for (l, f) in set.live_files() {
        let t = set.table(l);
        if snap.file_by_path(t.path(f)).is_none() {
            continue;
        }
        let lang = t.file_lang(f);
        if lang == NO_LANG {
            c.other_files += 1;
            continue;
        }
        let flags = t.file_flags(f);
        let slot = Lang::ALL.iter().position(|l| *l as u8 == lang).unwrap_or(0);
        c.source_files += 1;
        by[slot].1 += 1;
        if flags & F_HAS_SYMBOLS != 0 {
            c.with_symbols += 1;
            by[slot].2 += 1;
        }
        if flags & F_PRECISE != 0 {
            c.with_precise += 1;
            by[slot].3 += 1;
        }
    }
    c.by_language = by.into_iter().filter(|b| b.1 > 0).collect();
    c.names = set.nnames() as u64;
    c.definitions = set.ndefs_live() as u64;
    c.references = set.nrefs_live() as u64;
    c.symbol_bytes = set.bytes_on_disk();
    c.layers = set.layers.len() as u64;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_like() {
        assert_eq!(identifier("parse_date"), Some(vec!["parse_date"]));
        assert_eq!(identifier(" os.path.join "), Some(vec!["os", "path", "join"]));
        assert_eq!(identifier("Vec::new()"), Some(vec!["Vec", "new"]));
        assert_eq!(identifier("$el"), Some(vec!["$el"]));
        assert_eq!(identifier("parse http date"), None);
        assert_eq!(identifier("9lives"), None);
        assert_eq!(identifier("a..b"), None);
        assert_eq!(identifier(""), None);
    }
}
