//! The symbol file: one immutable file per index generation, named by the
//! manifest, holding every definition and reference the index knows.
//!
//! ```text
//! header    magic "LENSSYM\0", version u32, section count u32,
//!           (offset u64, length u64) per section, xxh3-64 of the body
//! PATHS     u32 count, then (u32 length, UTF-8 bytes) per file, in path order
//! FILES     per file: language u8, flags u8 (PARSED, HAS_SYMBOLS, PRECISE)
//! NAMES     fst map: symbol name -> name id (ids are the names' sorted rank)
//! BLOCKS    (blocks + 1) u64: where each block of 16 names starts in RUNS
//! RUNS      per name, in id order: its front-coded name, then its definitions
//!           (precise first, then path, offset) and references, delta-coded
//!           (`codec` has the layout)
//! NORM      fst map: sub-token key (`parse_http_date`) -> group id
//! NORM_IDX  (groups + 1) u32 into NORM_IDS
//! NORM_IDS  name ids per group
//! ```
//!
//! It is written to a temporary name, synced and renamed, and only then named
//! by a new manifest: a build, refresh or attach commits symbols atomically
//! with the rest. Mapping it ([`MappedSymbolFile`], what an index open does)
//! checks the magic, version and section table; checking it
//! ([`SymbolTable::check`], on Stage-B's first use) checks the checksum and
//! decodes every entry and record with bounds checks, so a damaged or
//! foreign file is `Error::Corrupt`, an older format `Error::Version`
//! (rebuild), and the accessors of a checked table cannot go out of bounds.
//!
//! - [`format`]: the header and section table;
//! - [`codec`]: varints, front-coded names, delta-coded record runs;
//! - [`writer`]: [`Builder`], which collects and writes;
//! - [`reader`]: [`MappedSymbolFile`], and [`SymbolTable`], the mapped,
//!   checked file and its lookups.

pub mod codec;
pub mod format;
pub mod reader;
pub mod writer;

use std::path::Path;

use rayon::prelude::*;

use super::extract::{self, FileSymbols};
use super::lang::Lang;
use super::layers::SymbolSet;
use super::Kind;
use crate::error::Result;
use crate::index::progress::{Phase, Progress};
use crate::query::terms::subtokens;

pub use format::{MAGIC, VERSION};
pub use reader::{MappedSymbolFile, Slice, SymbolTable};
pub use writer::{Builder, Prepared};

/// No container.
pub const NONE: u32 = u32::MAX;

pub const F_PARSED: u8 = 1;
pub const F_HAS_SYMBOLS: u8 = 2;
pub const F_PRECISE: u8 = 4;

/// A definition; `name` and `container` are name ids, `file` a path id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefRec {
    pub name: u32,
    pub file: u32,
    pub kind: Kind,
    pub precise: bool,
    pub name_start: u32,
    pub name_end: u32,
    pub def_start: u32,
    pub def_end: u32,
    pub container: u32,
    pub line: u32,
}

/// A reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefRec {
    pub name: u32,
    pub file: u32,
    pub start: u32,
    pub end: u32,
    pub line: u32,
    pub precise: bool,
}

/// The sub-token key of a name: `parseHTTPDate` and `parse_http_date` both
/// give `parse_http_date`.
pub fn norm_key(name: &str) -> String {
    if name.is_ascii() {
        norm_key_ascii(name.as_bytes())
    } else {
        norm_key_chars(name)
    }
}

/// `norm_key` for ASCII names (nearly all of them), without collecting the
/// sub-tokens first: a kernel-sized build keys millions of names.
fn norm_key_ascii(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut in_token = false;
    for (i, &c) in name.iter().enumerate() {
        if c == b'_' {
            in_token = false;
            continue;
        }
        let boundary = if in_token {
            // The same three boundaries as `subtokens`.
            let prev = name[i - 1];
            let next_lower = name.get(i + 1).is_some_and(u8::is_ascii_lowercase);
            (prev.is_ascii_lowercase() && c.is_ascii_uppercase())
                || prev.is_ascii_alphabetic() != c.is_ascii_alphabetic()
                || (prev.is_ascii_uppercase() && c.is_ascii_uppercase() && next_lower)
        } else {
            !out.is_empty()
        };
        if boundary {
            out.push('_');
        }
        in_token = true;
        out.push(c.to_ascii_lowercase() as char);
    }
    out
}

/// `norm_key` by way of `subtokens`: the reference the ASCII path is tested against.
fn norm_key_chars(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, t) in subtokens(name).into_iter().enumerate() {
        if i > 0 {
            out.push('_');
        }
        out.extend(t.chars().flat_map(char::to_lowercase));
    }
    out
}

/// Extracts every file in a supported language, in parallel, into a builder.
///
/// Rayon's threads parse while the calling thread interns what they found,
/// so the serial part overlaps the parallel one instead of idling the pool
/// between batches. The channel is bounded so that a slow consumer holds back
/// the parsers rather than letting a kernel's worth of per-file results (names
/// still as strings) pile up in memory.
///
/// Reports [`Phase::Symbols`] progress in bytes of the files it parses.
pub fn extract_into(b: &mut Builder, files: &[(&str, &[u8])], progress: &mut Progress<'_>) {
    let total = extractable_bytes(files);
    // At most a few hundred reports, whatever the tree's size: each may
    // cross into Python.
    let step = (total / 400).max(1);
    let (mut done, mut reported) = (0u64, 0u64);
    progress(Phase::Symbols, 0, total);
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Option<Lang>, FileSymbols)>(EXTRACT_QUEUE);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            files.par_iter().enumerate().for_each_with(tx, |tx, (i, (path, content))| {
                let lang = Lang::of_path(path);
                let syms = lang.map(|l| extract::extract(l, content)).unwrap_or_default();
                // The receiver only hangs up if the consumer panicked; the
                // scope re-raises that panic.
                let _ = tx.send((i, lang, syms));
            });
        });
        for (i, lang, syms) in rx {
            let (path, content) = files[i];
            b.add_extracted(path, lang, &syms);
            if lang.is_some() {
                done += content.len() as u64;
                if done - reported >= step || done == total {
                    reported = done;
                    progress(Phase::Symbols, done, total);
                }
            }
        }
    });
}

/// Bytes of the files in a language symbols are extracted from: the
/// [`Phase::Symbols`] total.
pub fn extractable_bytes(files: &[(&str, &[u8])]) -> u64 {
    files.iter().filter(|(p, _)| Lang::of_path(p).is_some()).map(|(_, c)| c.len() as u64).sum()
}

/// Extracted files waiting to be interned.
const EXTRACT_QUEUE: usize = 1024;

/// Builds and writes the symbol file of a generation: the files `keep`
/// accepts from `old`, plus tree-sitter extraction of `fresh`. Returns the
/// file's name within `dir`.
pub fn build_symbols(
    dir: &Path,
    generation: u64,
    old: Option<&SymbolSet>,
    keep: &dyn Fn(&str) -> bool,
    fresh: &[(&str, &[u8])],
    progress: &mut Progress<'_>,
) -> Result<String> {
    let mut b = Builder::default();
    if let Some(old) = old {
        b.add_set(old, keep);
    }
    extract_into(&mut b, fresh, progress);
    let name = file_name(generation);
    b.write(&dir.join(&name))?;
    Ok(name)
}

pub fn file_name(generation: u64) -> String {
    format!("sym-{generation:06}.lens")
}

#[cfg(test)]
mod tests {
    use super::format::HEADER_LEN;
    use super::reader::edit_distance;
    use super::*;
    use crate::error::Error;
    use crate::test_rng::Rng;
    use std::fs;

    fn sample(dir: &Path) -> SymbolTable {
        let files: Vec<(&str, &[u8])> = vec![
            (
                "a.py",
                b"def parse_date(s):\n    return s\n\nclass HTTPServer:\n    def serve(self):\n        parse_date(1)\n",
            ),
            ("b.c", b"int parseDate(void)\n{\n\treturn 0;\n}\n"),
            ("README", b"no symbols here"),
        ];
        let name = build_symbols(dir, 1, None, &|_| true, &files, &mut crate::index::progress::silent()).unwrap();
        SymbolTable::open(&dir.join(name)).unwrap()
    }

    #[test]
    fn round_trip_and_lookups() {
        let tmp = tempfile::tempdir().unwrap();
        let t = sample(tmp.path());
        assert_eq!(t.nfiles(), 3);
        let id = t.name_id("parse_date").unwrap();
        let defs: Vec<_> = t.defs_of(id).collect();
        assert_eq!(defs.len(), 1);
        assert_eq!(t.path(defs[0].file), "a.py");
        assert_eq!((defs[0].name_start, defs[0].name_end, defs[0].line), (4, 14, 1));
        assert_eq!(t.refs_of(id).count(), 1);
        let serve = t.defs_of(t.name_id("serve").unwrap()).next().unwrap();
        assert_eq!(serve.kind, Kind::Method);
        assert_eq!(t.name(serve.container), "HTTPServer");
        let same: Vec<String> = t.same_subtokens("ParseDate").iter().map(|&i| t.name(i)).collect();
        assert_eq!(same, vec!["parseDate", "parse_date"]);
        let fz: Vec<String> = t.fuzzy("parse_dat", 2, 5).iter().map(|&(i, _)| t.name(i)).collect();
        assert_eq!(fz[0], "parse_date");
        assert_eq!(t.prefix("HTTP", 10).len(), 1);
        assert_eq!(t.file_flags(t.file_id("README").unwrap()) & F_HAS_SYMBOLS, 0);
    }

    #[test]
    fn damage_is_corrupt_not_a_crash() {
        let tmp = tempfile::tempdir().unwrap();
        let _ = sample(tmp.path());
        let path = tmp.path().join(file_name(1));
        let good = fs::read(&path).unwrap();
        for at in [0, 20, HEADER_LEN + 3, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 0x5a;
            fs::write(&path, &bad).unwrap();
            assert!(matches!(SymbolTable::open(&path), Err(Error::Corrupt { .. })), "flip at {at}");
        }
        // The version field: another format, not damage.
        let mut other = good.clone();
        other[9] ^= 0x5a;
        fs::write(&path, &other).unwrap();
        assert!(matches!(SymbolTable::open(&path), Err(Error::Version { .. })));
        fs::write(&path, &good[..good.len() / 2]).unwrap();
        assert!(matches!(SymbolTable::open(&path), Err(Error::Corrupt { .. })));
        fs::write(&path, b"hello").unwrap();
        assert!(matches!(SymbolTable::open(&path), Err(Error::Corrupt { .. })));
    }

    /// Damage the checksum cannot see (a byte of the records changed, the
    /// checksum fixed up): mapping the file (an index open) takes it; the
    /// check on first use refuses it, or (a change that still decodes, a line
    /// number say) yields a table whose every accessor stays in bounds.
    #[test]
    fn damaged_records_are_found_on_first_use_not_a_crash() {
        let tmp = tempfile::tempdir().unwrap();
        let _ = sample(tmp.path());
        let path = tmp.path().join(file_name(1));
        let good = fs::read(&path).unwrap();
        let runs = format::sections(&path, &good).unwrap()[format::S_RUNS];
        let (mut refused, mut taken) = (0, 0);
        for at in runs.0..runs.1 {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[at] ^= flip;
                let sum = xxhash_rust::xxh3::xxh3_64(&bad[HEADER_LEN..]);
                bad[HEADER_LEN - 8..HEADER_LEN].copy_from_slice(&sum.to_le_bytes());
                fs::write(&path, &bad).unwrap();
                let mapped = MappedSymbolFile::open(&path).unwrap();
                match SymbolTable::check(&mapped) {
                    Err(Error::Corrupt { reason, .. }) => {
                        assert!(reason.starts_with("symbol file: "), "{reason}");
                        refused += 1;
                    }
                    Err(other) => panic!("flip {flip:#x} at {at}: {other}"),
                    Ok(t) => {
                        taken += 1;
                        let ids = 0..=t.nnames() as u32;
                        let n: usize =
                            ids.map(|id| t.name(id).len() + t.defs_of(id).count() + t.refs_of(id).count()).sum();
                        assert!(n > 0 && t.defs().count() == t.ndefs() && t.refs().count() == t.nrefs());
                        for d in t.defs() {
                            let _ = (t.path(d.file), (d.container != NONE).then(|| t.name(d.container)));
                        }
                        let _ = (t.fuzzy("parse_dat", 2, 5), t.same_subtokens("ParseDate"), t.prefix("p", 9));
                    }
                }
            }
        }
        assert!(refused > 0 && taken > 0, "refused {refused}, taken {taken}");
        // Through an index's companion: the open takes the file, every use refuses it, naming it.
        let mut bad = good.clone();
        bad[runs.0] ^= 0xff;
        let sum = xxhash_rust::xxh3::xxh3_64(&bad[HEADER_LEN..]);
        bad[HEADER_LEN - 8..HEADER_LEN].copy_from_slice(&sum.to_le_bytes());
        fs::write(&path, &bad).unwrap();
        let opened = crate::symbols::layers::OpenedSymbols::open(tmp.path(), &file_name(1), &[]).unwrap();
        for _ in 0..2 {
            match opened.set() {
                Err(Error::Corrupt { path: p, reason }) => assert!(p == path && reason.starts_with("symbol file")),
                Err(other) => panic!("{other}"),
                Ok(_) => panic!("a block starting with a shared prefix was taken"),
            }
        }
        assert!(!opened.is_checked());
        drop(opened);
        fs::write(&path, &good).unwrap();
        let opened = crate::symbols::layers::OpenedSymbols::open(tmp.path(), &file_name(1), &[]).unwrap();
        assert!(!opened.is_checked());
        assert_eq!(opened.set().unwrap().base().nfiles(), 3);
        assert!(opened.is_checked());
        // A file truncated under its mapping: an error before any read of it, not SIGBUS.
        fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(good.len() as u64 / 2).unwrap();
        assert!(matches!(opened.set(), Err(Error::Corrupt { reason, .. }) if reason.contains("shrank")));
    }

    /// The fst lookups against brute force over every name (the oracle), on
    /// random identifiers with shared prefixes, case and `_` variants.
    #[test]
    fn lookups_agree_with_brute_force() {
        let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
        let mut rnd = move |n: u64| rng.below(n as usize) as u64;
        let parts = ["get", "Set", "parse", "HTTP", "date", "x", "_", "io", "Read", "file"];
        let mut names: Vec<String> = (0..400)
            .map(|_| (0..1 + rnd(4)).map(|_| parts[rnd(parts.len() as u64) as usize]).collect::<String>())
            .filter(|n| !n.is_empty())
            .collect();
        names.sort();
        names.dedup();
        let mut b = Builder::default();
        let file = b.add_file("a.py", Some(Lang::Python), F_PARSED);
        for (i, n) in names.iter().enumerate() {
            let name = b.intern(n);
            let at = i as u32 * 10;
            b.defs.push(DefRec {
                name,
                file,
                kind: Kind::Function,
                precise: false,
                name_start: at,
                name_end: at + 1,
                def_start: at,
                def_end: at + 1,
                container: NONE,
                line: 1,
            });
        }
        let tmp = tempfile::tempdir().unwrap();
        b.write(&tmp.path().join("s.lens")).unwrap();
        let t = SymbolTable::open(&tmp.path().join("s.lens")).unwrap();
        let got = |ids: Vec<u32>| -> Vec<String> {
            let mut v: Vec<String> = ids.into_iter().map(|i| t.name(i).to_string()).collect();
            v.sort();
            v
        };
        for _ in 0..200 {
            let q = names[rnd(names.len() as u64) as usize].clone();
            let cut = q.len() - rnd(q.len() as u64) as usize;
            let prefix = &q[..cut];
            let want: Vec<String> = names.iter().filter(|n| n.starts_with(prefix)).cloned().collect();
            assert_eq!(got(t.prefix(prefix, usize::MAX)), want, "prefix {prefix:?}");
            for d in 1..=2 {
                let want: Vec<String> =
                    names.iter().filter(|n| edit_distance(q.as_bytes(), n.as_bytes()) <= d).cloned().collect();
                let ids: Vec<u32> = t.fuzzy(&q, d, usize::MAX / 8).into_iter().map(|(i, _)| i).collect();
                assert_eq!(got(ids), want, "fuzzy {q:?} within {d}");
            }
            let key = norm_key(&q);
            let want: Vec<String> = names.iter().filter(|n| norm_key(n) == key).cloned().collect();
            assert_eq!(got(t.same_subtokens(&q)), want, "sub-tokens of {q:?}");
            assert_eq!(t.name_id(&q).map(|i| t.name(i).to_string()), Some(q.clone()));
        }
    }

    /// A whole file against the records it was given (the oracle: sorted on
    /// every field and deduplicated the way the writer promises, see
    /// `writer::def_order`), through random access by id (every block
    /// position) and through the whole-file passes, on several seeds. The
    /// odd seeds draw from few names, files and starts, so that records tying
    /// on (name, precision, file, start) but differing elsewhere are common:
    /// which of them survives is the writer's rule, not chance.
    #[test]
    fn records_round_trip_through_a_file() {
        for seed in [0x2545_f491_4f6c_dd1d, 1, 2, 3, 0xdead_beef, 0x1234_5678_9abc_def0] {
            records_round_trip(seed);
        }
    }

    fn records_round_trip(seed: u64) {
        let mut rng = Rng::new(seed);
        let mut rnd = move |n: u64| rng.below(n as usize) as u64;
        // Odd seeds draw from 20 names, 2 files and 8 starts: many ties for the dedup.
        let narrow = seed % 2 == 1;
        let mut b = Builder::default();
        let files: Vec<u32> = (0..7).map(|i| b.add_file(&format!("f{}.c", 7 - i), Some(Lang::C), F_PARSED)).collect();
        let names: Vec<String> = (0..300).map(|i| format!("{}name_{i}", ["", "mm", "é", "x"][i % 4])).collect();
        for _ in 0..3000 {
            let n = &names[rnd(if narrow { 20 } else { names.len() as u64 }) as usize];
            let name = b.intern(n);
            let file = files[rnd(if narrow { 2 } else { 7 }) as usize];
            let bits = 1 + rnd(30);
            let start = if narrow { rnd(8) as u32 } else { rnd(1 << bits) as u32 };
            let len = n.len() as u32 + u32::from(rnd(5) == 0) * rnd(3) as u32;
            if rnd(3) == 0 {
                b.refs.push(RefRec {
                    name,
                    file,
                    start,
                    end: start + len,
                    line: rnd(if narrow { 3 } else { 100_000 }) as u32,
                    precise: rnd(4) == 0,
                });
                continue;
            }
            let container = if rnd(2) == 0 { NONE } else { b.intern(&names[rnd(names.len() as u64) as usize]) };
            b.defs.push(DefRec {
                name,
                file,
                kind: Kind::ALL[rnd(Kind::ALL.len() as u64) as usize],
                precise: rnd(4) == 0,
                name_start: start,
                name_end: start + len,
                def_start: start.saturating_sub(rnd(if narrow { 3 } else { 50 }) as u32),
                def_end: start + len + rnd(if narrow { 3 } else { 5000 }) as u32,
                container,
                line: rnd(if narrow { 3 } else { 100_000 }) as u32,
            });
        }
        // The oracle, by name and path (ids change at write): the writer's
        // order is ids', and ids are the names' and paths' byte order, so
        // sorting these tuples (no container first) is the same order.
        type DefKey = (String, bool, String, u32, u32, u32, u32, u32, Kind, Option<String>);
        let dkey = |names: &dyn Fn(u32) -> String, path: &dyn Fn(u32) -> String, d: &DefRec| -> DefKey {
            (
                names(d.name),
                !d.precise,
                path(d.file),
                d.name_start,
                d.def_start,
                d.name_end,
                d.def_end,
                d.line,
                d.kind,
                (d.container != NONE).then(|| names(d.container)),
            )
        };
        let mut want_defs: Vec<DefKey> =
            b.defs.iter().map(|d| dkey(&|i| b.name(i).to_string(), &|f| b.file_path(f).to_string(), d)).collect();
        want_defs.sort();
        let before = want_defs.len();
        want_defs.dedup_by(|a, b| (&a.0, a.1, &a.2, a.3) == (&b.0, b.1, &b.2, b.3));
        type RefKey = (String, bool, String, u32, u32, u32);
        let mut want_refs: Vec<RefKey> = b
            .refs
            .iter()
            .map(|r| (b.name(r.name).to_string(), !r.precise, b.file_path(r.file).to_string(), r.start, r.end, r.line))
            .collect();
        want_refs.sort();
        let before_refs = want_refs.len();
        want_refs.dedup_by(|a, b| (&a.0, a.1, &a.2, a.3) == (&b.0, b.1, &b.2, b.3));
        if narrow {
            // The seed does what it is for: ties that the dedup must settle.
            let ties = (before - want_defs.len(), before_refs - want_refs.len());
            assert!(ties.0 > 100 && ties.1 > 50, "seed {seed}: {ties:?}");
        }
        let tmp = tempfile::tempdir().unwrap();
        b.write(&tmp.path().join("s.lens")).unwrap();
        let t = SymbolTable::open(&tmp.path().join("s.lens")).unwrap();
        let (tn, tp) = (|i| t.name(i), |f| t.path(f).to_string());
        let by_id: Vec<DefKey> =
            (0..t.nnames() as u32).flat_map(|id| t.defs_of(id)).map(|d| dkey(&tn, &tp, &d)).collect();
        assert_eq!(by_id, want_defs, "seed {seed}");
        let whole: Vec<DefKey> = t.defs().map(|d| dkey(&tn, &tp, &d)).collect();
        assert_eq!(whole, want_defs, "seed {seed}");
        assert_eq!(t.ndefs(), want_defs.len());
        let rkey = |r: &RefRec| (t.name(r.name), !r.precise, t.path(r.file).to_string(), r.start, r.end, r.line);
        let by_id: Vec<RefKey> = (0..t.nnames() as u32).flat_map(|id| t.refs_of(id)).map(|r| rkey(&r)).collect();
        assert_eq!(by_id, want_refs, "seed {seed}");
        assert_eq!(t.refs().map(|r| rkey(&r)).collect::<Vec<_>>(), want_refs, "seed {seed}");
        assert_eq!(t.nrefs(), want_refs.len());
        let mut seen = 0;
        t.for_each_entry(|id, name, defs, refs| {
            assert_eq!(name, t.name(id));
            assert_eq!(t.name_id(name), Some(id));
            assert_eq!((defs.count(), refs.count()), (t.ndefs_of(id), t.nrefs_of(id)));
            seen += 1;
        });
        assert_eq!(seen, t.nnames());
        assert_eq!(t.name(t.nnames() as u32), "");
        assert_eq!(t.defs_of(t.nnames() as u32).count(), 0);
    }

    #[test]
    fn ascii_norm_key_agrees_with_subtokens() {
        for name in
            ["parseHTTPDate", "parse_http_date", "HTTPServer", "__init__", "x86_64", "a1b2", "_", "", "ABC", "Ab_Cd"]
        {
            assert_eq!(norm_key_ascii(name.as_bytes()), norm_key_chars(name), "{name}");
        }
        // Every string of up to five characters over letters of both cases,
        // a digit, `_` and `$`.
        let alphabet = b"aZb9_$";
        let mut name = Vec::new();
        for len in 0..=5u32 {
            for mut code in 0..alphabet.len().pow(len) {
                name.clear();
                for _ in 0..len {
                    name.push(alphabet[code % alphabet.len()]);
                    code /= alphabet.len();
                }
                let s = std::str::from_utf8(&name).unwrap();
                assert_eq!(norm_key_ascii(&name), norm_key_chars(s), "{s}");
            }
        }
    }

    #[test]
    fn distance() {
        assert_eq!(edit_distance(b"kitten", b"sitting"), 3);
        assert_eq!(edit_distance(b"", b"ab"), 2);
    }
}
