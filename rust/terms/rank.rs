//! Code-aware ranking rules. Each is a per-document integer multiplier of
//! the BM25F score, a function of the query, the document, its own file
//! and the corpus only (never of the other candidates), so the top-k search
//! applies them inside its pruning and its result is exact: the same as
//! scoring every document, and the same merged over shards as on one index.
//! Each can be switched alone (`LENS_TERMS_ABLATE`, for the ablation table
//! in BENCHMARKS.md):
//!
//! - `ident`: query terms that spell a definition's name (`parse http date`
//!   -> `parse_http_date`), or its name plus its container or module
//!   (`escape html` -> `html.escape`), boost it strongly. Such definitions
//!   are found by a direct lookup of their spell keys ([`spell_keys`]), so
//!   the boost does not loosen the pruning bound of every other document.
//! - `sink`: tests, vendored and generated code sink, and so do windows of
//!   files without definitions ([`prior`]).
//! - `files`: a definition whose file holds several definitions that match
//!   much of the query gets a modest boost ([`file_boost`]).

use std::collections::HashSet;

use super::tokenize::{subtokens, Analyzer};

/// Which rules are on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// The definition index itself ("terms" in `LENS_TERMS_ABLATE` routes
    /// every query to Stage-A, as before it existed).
    pub enabled: bool,
    pub ident: bool,
    pub sink: bool,
    pub files: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Rules { enabled: true, ident: true, sink: true, files: true }
    }
}

impl Rules {
    /// The default rules less those named in `LENS_TERMS_ABLATE` (comma
    /// separated: ident, sink, files; "all" for every rule; "terms" for the
    /// definition index itself). Benchmarks set it; the defaults are what
    /// lens runs.
    pub fn from_env() -> Rules {
        let mut r = Rules::default();
        if let Ok(v) = std::env::var("LENS_TERMS_ABLATE") {
            for name in v.split(',').map(str::trim) {
                match name {
                    "terms" => r.enabled = false,
                    "ident" => r.ident = false,
                    "sink" => r.sink = false,
                    "files" => r.files = false,
                    "all" => r = Rules { ident: false, sink: false, files: false, ..r },
                    _ => {}
                }
            }
        }
        r
    }
}

/// Multipliers are integers: a document's final score is its integer
/// BM25F score times [`prior`] times [`file_boost`] times the ident factor,
/// so the fast path and the oracle agree exactly, ties included.
pub const PRIOR_ONE: u64 = 1000;
pub const FILE_ONE: u64 = 1000;
/// The ident factor of a definition the query does not spell, and of one
/// it spells (x1.6).
pub const IDENT_NO: u64 = 10;
pub const IDENT_YES: u64 = 16;
/// The scale of the three factors together (a score divided by it and by
/// the weight scale reads as BM25F).
pub const SCALE: u64 = PRIOR_ONE * FILE_ONE * IDENT_NO;

/// A spelled name (with its owner) must cover this share of the query's terms.
const SPELL_SHARE: f64 = 0.5;
/// Windows (text of files without definitions: data, docs, scripts) sink
/// below definitions.
const WINDOW_FACTOR: f64 = 0.5;
/// Per further matching definition in the same file, up to `FILE_MAX` of them.
const FILE_BOOST: u64 = 40;
const FILE_MAX: u64 = 4;
/// The largest [`file_boost`].
pub const FILE_BOOST_MAX: u64 = FILE_ONE + FILE_BOOST * FILE_MAX;
/// A definition counts as "matching" for the file boost when the query
/// terms it holds carry this share of the query's weight.
pub const FILE_COVER: f64 = 0.5;

/// How much a path sinks: tests, vendored and generated code.
pub fn path_factor(path: &str) -> f64 {
    let lower = path.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split('/').collect();
    let (dirs, name) = parts.split_at(parts.len() - 1);
    let name = name[0];
    let dir_is = |set: &[&str]| dirs.iter().any(|d| set.contains(d));
    let mut f = 1.0;
    if dir_is(&["test", "tests", "testing", "__tests__", "spec", "testdata", "fixtures", "selftests"])
        || name.starts_with("test_")
        || name.contains("_test.")
        || name.contains(".test.")
        || name.contains("_spec.")
    {
        f *= 0.7;
    }
    if dir_is(&["vendor", "third_party", "thirdparty", "node_modules", "external", "_vendor"]) {
        f *= 0.6;
    }
    if lower.contains("generated") || name.contains(".min.") || name.contains("_pb2") || name.contains(".pb.") {
        f *= 0.6;
    }
    f
}

/// The static multiplier of a document (out of [`PRIOR_ONE`]): `sink`.
pub fn prior(rules: Rules, path_factor: f64, window: bool) -> u64 {
    if !rules.sink {
        return PRIOR_ONE;
    }
    let f = path_factor * if window { WINDOW_FACTOR } else { 1.0 };
    ((f * PRIOR_ONE as f64).round() as u64).clamp(1, PRIOR_ONE)
}

/// The file multiplier (out of [`FILE_ONE`]) of a definition whose file
/// holds `matching` definitions that match much of the query.
pub fn file_boost(rules: Rules, matching: u64) -> u64 {
    if !rules.files {
        return FILE_ONE;
    }
    FILE_ONE + FILE_BOOST * matching.saturating_sub(1).min(FILE_MAX)
}

/// The stemmed terms of a name, distinct, sorted.
fn stem_set(an: &mut Analyzer, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    subtokens(text.as_bytes(), |t| {
        if let Some(s) = an.term(t) {
            out.push(s.to_string());
        }
    });
    out.sort();
    out.dedup();
    out
}

/// A definition's module: its file's stem, or its directory for a
/// package's `__init__` / `mod` file.
fn module(path: &str) -> &str {
    let base = crate::index::base_name(path);
    let stem = base.rsplit_once('.').map_or(base, |(s, _)| s);
    if stem == "__init__" || stem == "mod" {
        path.rsplit('/').nth(1).unwrap_or(stem)
    } else {
        stem
    }
}

/// Whether the query's terms spell a definition's name (all its distinct
/// stems), with the container or module named too when the name is a
/// single word, and the name covers at least [`SPELL_SHARE`] of the
/// query's terms.
pub fn spells(an: &mut Analyzer, q: &HashSet<&str>, path: &str, name: &str, container: &str) -> bool {
    let name = stem_set(an, name);
    if name.is_empty() || !name.iter().all(|t| q.contains(t.as_str())) {
        return false;
    }
    // The name must be much of what the question says: in C especially,
    // many functions spell two generic words of a longer question.
    let share = |n: usize| n as f64 >= SPELL_SHARE * q.len() as f64;
    if name.len() >= 2 {
        return share(name.len());
    }
    [container, module(path)].iter().any(|owner| {
        let o = stem_set(an, owner);
        !o.is_empty() && o.iter().all(|t| q.contains(t.as_str()) && !name.contains(t)) && share(1 + o.len())
    })
}

/// The spell keys of a definition, index terms that a query spelling it
/// finds by lookup ([`SpellKeys`]): `#` and its name's sorted distinct
/// stems joined by `_` when there are several (`#date_http_pars`);
/// otherwise `#name@owner` for the container and the module
/// (`#escap@html`). Every definition that [`spells`] accepts has one of
/// these keys, made only of query terms, in this order.
pub fn spell_keys(an: &mut Analyzer, path: &str, name: &str, container: &str) -> Vec<String> {
    let stems = stem_set(an, name);
    match stems.len() {
        0 => Vec::new(),
        1 => {
            let mut keys: Vec<String> = [container, module(path)]
                .iter()
                .map(|owner| stem_set(an, owner))
                .filter(|o| !o.is_empty() && !o.contains(&stems[0]))
                .map(|o| format!("#{}@{}", stems[0], o.join("_")))
                .collect();
            keys.dedup();
            keys
        }
        _ => vec![format!("#{}", stems.join("_"))],
    }
}

/// An `fst` automaton accepting the spell keys made of a query's terms
/// (each token a query term, tokens ascending within a part), so the
/// lookup walks only the dictionary paths a spelling query can reach.
pub struct SpellKeys<'a> {
    /// The query's distinct terms, sorted.
    terms: &'a [&'a str],
}

impl<'a> SpellKeys<'a> {
    pub fn new(sorted_terms: &'a [&'a str]) -> Self {
        SpellKeys { terms: sorted_terms }
    }
}

/// Where the automaton stands: before `#`, or inside a token whose bytes
/// so far are shared by the query terms `lo..hi` (sorted, so a range:
/// tokens ascend, so `lo` starts past the previous token's term), `pos`
/// bytes in.
#[derive(Clone, Copy, Debug)]
pub enum KeyState {
    Start,
    Dead,
    Token { lo: u16, hi: u16, pos: u16 },
}

impl SpellKeys<'_> {
    fn token(&self, next_min: u16) -> KeyState {
        KeyState::Token { lo: next_min, hi: self.terms.len() as u16, pos: 0 }
    }
    /// The term of `lo..hi` that ends at `pos`, if any (the first: sorted).
    fn complete(&self, lo: u16, hi: u16, pos: u16) -> Option<u16> {
        (lo < hi && self.terms[lo as usize].len() == pos as usize).then_some(lo)
    }
}

impl SpellKeys<'_> {
    /// The values of the keys of `fst` this automaton accepts, found by
    /// trying, at each node, only the bytes the automaton can take there
    /// (the separators where a term ends, else the next byte of each term
    /// still in range): `fst`'s own search decodes every child of every
    /// node it visits, and the spell keys' nodes fan out widely. The same
    /// keys as `fst::Map::search` with this automaton (tested).
    pub fn ids<D: AsRef<[u8]>>(&self, fst: &fst::raw::Fst<D>) -> Vec<u64> {
        let mut out = Vec::new();
        self.walk(fst, fst.root(), KeyState::Start, fst::raw::Output::zero(), &mut out);
        out
    }

    fn walk<D: AsRef<[u8]>>(
        &self,
        fst: &fst::raw::Fst<D>,
        node: fst::raw::Node<'_>,
        state: KeyState,
        acc: fst::raw::Output,
        out: &mut Vec<u64>,
    ) {
        use fst::Automaton;
        if node.is_final() && self.is_match(&state) {
            out.push(acc.cat(node.final_output()).value());
        }
        // The bytes that do not lead to `Dead` from `state`.
        let mut bytes: Vec<u8> = match state {
            KeyState::Start => vec![b'#'],
            KeyState::Dead => return,
            KeyState::Token { lo, hi, pos } => {
                let mut b: Vec<u8> =
                    (lo..hi).filter_map(|i| self.terms[i as usize].as_bytes().get(pos as usize).copied()).collect();
                b.extend([b'_', b'@']);
                b
            }
        };
        bytes.sort_unstable();
        bytes.dedup();
        for b in bytes {
            let next = self.accept(&state, b);
            if !self.can_match(&next) {
                continue;
            }
            if let Some(i) = node.find_input(b) {
                let t = node.transition(i);
                self.walk(fst, fst.node(t.addr), next, acc.cat(t.out), out);
            }
        }
    }
}

impl fst::Automaton for SpellKeys<'_> {
    type State = KeyState;
    fn start(&self) -> KeyState {
        KeyState::Start
    }
    fn is_match(&self, s: &KeyState) -> bool {
        matches!(*s, KeyState::Token { lo, hi, pos } if pos > 0 && self.complete(lo, hi, pos).is_some())
    }
    fn can_match(&self, s: &KeyState) -> bool {
        !matches!(s, KeyState::Dead)
    }
    fn accept(&self, s: &KeyState, b: u8) -> KeyState {
        match *s {
            KeyState::Start if b == b'#' => self.token(0),
            KeyState::Token { lo, hi, pos } if b == b'_' || b == b'@' => match self.complete(lo, hi, pos) {
                // Tokens ascend within the name and within the owner.
                Some(i) if pos > 0 => self.token(if b == b'_' { i + 1 } else { 0 }),
                _ => KeyState::Dead,
            },
            KeyState::Token { lo, hi, pos } => {
                let at = |i: u16| self.terms[i as usize].as_bytes().get(pos as usize).copied();
                let mut a = lo;
                while a < hi && at(a) != Some(b) {
                    a += 1;
                }
                let mut z = a;
                while z < hi && at(z) == Some(b) {
                    z += 1;
                }
                if a == z {
                    KeyState::Dead
                } else {
                    KeyState::Token { lo: a, hi: z, pos: pos + 1 }
                }
            }
            _ => KeyState::Dead,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fst::{IntoStreamer, Streamer};

    fn qset(terms: &[String]) -> HashSet<&str> {
        terms.iter().map(String::as_str).collect()
    }

    fn q(an: &mut Analyzer, s: &str) -> Vec<String> {
        super::super::tokenize::analyze_query(an, s).terms
    }

    #[test]
    fn spelled_names_and_owners() {
        let mut an = Analyzer::default();
        let t = q(&mut an, "escape html");
        assert!(spells(&mut an, &qset(&t), "html/__init__.py", "escape", ""));
        assert!(!spells(&mut an, &qset(&t), "cgitb.py", "html", ""), "a one-word name needs its owner named too");
        let t = q(&mut an, "how to read a zip file");
        assert!(spells(&mut an, &qset(&t), "zipfile.py", "read", "ZipFile"));
        let t = q(&mut an, "parse an HTTP date header");
        assert!(spells(&mut an, &qset(&t), "x.py", "parse_http_date", ""));
        let t = q(&mut an, "only copy one trace over, and reset the rest of the buffers");
        assert!(!spells(&mut an, &qset(&t), "x.c", "reset_rest", ""), "two words of a long question");
    }

    /// The direct walk ([`SpellKeys::ids`]) against `fst`'s own search with
    /// the same automaton (the oracle), over a dictionary of plain terms and
    /// spell keys made of a small vocabulary (prefixes of each other, so
    /// that a term ends inside another's path), for random queries.
    #[test]
    fn the_direct_key_walk_finds_what_the_automaton_search_finds() {
        let vocab = ["a", "ab", "abc", "b", "ba", "c", "ca", "cab", "d", "da", "e"];
        let mut seed = 0x5eedu64;
        let mut next = move |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        fn part(next: &mut impl FnMut(u64) -> u64, vocab: &[&str], n: u64) -> String {
            let mut p: Vec<&str> = (0..n).map(|_| vocab[next(vocab.len() as u64) as usize]).collect();
            p.sort_unstable();
            p.dedup();
            p.join("_")
        }
        let mut keys: Vec<String> = vocab.iter().map(|t| t.to_string()).collect();
        for _ in 0..3000 {
            let n = 1 + next(4);
            let name = part(&mut next, &vocab, n);
            let key = if next(3) == 0 {
                let n = 1 + next(3);
                format!("#{name}@{}", part(&mut next, &vocab, n))
            } else {
                format!("#{name}")
            };
            // Some keys damaged: a separator doubled, a stray byte.
            keys.push(match next(10) {
                0 => key.replace('_', "__"),
                1 => format!("{key}x"),
                _ => key,
            });
        }
        keys.sort();
        keys.dedup();
        let map = fst::Map::from_iter(keys.iter().enumerate().map(|(i, k)| (k.as_str(), i as u64))).unwrap();
        let mut nonempty = 0;
        for _ in 0..300 {
            let n = 1 + next(6);
            let mut terms: Vec<&str> = (0..n).map(|_| vocab[next(vocab.len() as u64) as usize]).collect();
            terms.sort_unstable();
            terms.dedup();
            let aut = SpellKeys::new(&terms);
            let mut want = Vec::new();
            let mut st = map.search(&aut).into_stream();
            while let Some((_, v)) = st.next() {
                want.push(v);
            }
            let mut got = aut.ids(map.as_fst());
            got.sort_unstable();
            assert_eq!(got, want, "{terms:?}");
            nonempty += usize::from(!want.is_empty());
        }
        assert!(nonempty > 100, "most queries find keys ({nonempty} of 300)");
    }

    #[test]
    fn the_key_automaton_finds_exactly_the_keys_of_spelled_names() {
        let mut an = Analyzer::default();
        let defs = [
            ("html/__init__.py", "escape", ""),
            ("cgitb.py", "html", ""),
            ("zipfile.py", "read", "ZipFile"),
            ("x.py", "parse_http_date", ""),
            ("x.py", "http_date", "Parser"),
            ("y.py", "date_parse_http", ""),
            ("y.py", "parse_date", ""),
            ("z.py", "format", "Date"),
        ];
        let mut keys: Vec<(String, usize)> = Vec::new();
        for (i, (p, n, c)) in defs.iter().enumerate() {
            keys.extend(spell_keys(&mut an, p, n, c).into_iter().map(|k| (k, i)));
        }
        keys.sort();
        keys.dedup_by(|a, b| a.0 == b.0);
        let map = fst::Map::from_iter(keys.iter().map(|(k, _)| (k.as_str(), 0u64))).unwrap();
        for query in ["escape html", "parse an HTTP date", "read a zip file", "http date parse", "format a date"] {
            let t = q(&mut an, query);
            let mut sorted: Vec<&str> = t.iter().map(String::as_str).collect();
            sorted.sort();
            let mut found = HashSet::new();
            let mut s = map.search(SpellKeys::new(&sorted)).into_stream();
            while let Some((k, _)) = s.next() {
                found.insert(String::from_utf8(k.to_vec()).unwrap());
            }
            for (p, n, c) in defs {
                if spells(&mut an, &qset(&t), p, n, c) {
                    let ks = spell_keys(&mut an, p, n, c);
                    assert!(ks.iter().any(|k| found.contains(k)), "{query}: {n} spelled but not found");
                }
            }
        }
    }
}
