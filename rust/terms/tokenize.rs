//! Words of code and of questions: identifier runs split into sub-tokens
//! (`parseHTTPDate` -> parse, http, date), lowercased, stop words dropped,
//! Snowball-stemmed (English), so that "parsing dates" meets `parse_date`.
//! URLs are not words. The same analysis runs at build and at query time.

use std::hash::BuildHasher;

use hashbrown::hash_table::{Entry, HashTable};
use hashbrown::{DefaultHashBuilder, HashMap};

use rust_stemmers::{Algorithm, Stemmer};

/// English function words and code noise that carry no topic.
const STOP: &[&str] = &[
    "a", "about", "above", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be",
    "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "char", "cls", "const",
    "could", "def", "did", "do", "does", "doing", "down", "during", "each", "either", "else", "etc", "false", "fn",
    "for", "from", "further", "given", "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his",
    "how", "i", "if", "impl", "in", "int", "into", "is", "it", "its", "itself", "just", "let", "long", "may", "me",
    "might", "more", "most", "must", "mut", "my", "no", "none", "nor", "not", "null", "of", "off", "on", "once", "one",
    "only", "or", "other", "our", "out", "over", "own", "pub", "return", "returns", "same", "self", "shall", "she",
    "should", "so", "some", "static", "struct", "such", "than", "that", "the", "their", "them", "then", "there",
    "these", "they", "this", "those", "through", "to", "too", "true", "under", "unsigned", "until", "up", "us", "use",
    "used", "using", "var", "very", "via", "void", "was", "we", "were", "what", "when", "where", "whether", "which",
    "while", "who", "whom", "why", "will", "with", "would", "you", "your",
];

pub fn is_stop(word: &str) -> bool {
    STOP.binary_search(&word).is_ok()
}

/// Calls `f` with each identifier-ish run of `text` (ASCII letters, digits,
/// `_`), skipping URLs (`scheme://...` up to the next blank).
pub fn runs(text: &[u8], mut f: impl FnMut(&[u8])) {
    let n = text.len();
    let mut i = 0;
    while i < n {
        if !is_word(text[i]) {
            i += 1;
            continue;
        }
        let s = i;
        while i < n && is_word(text[i]) {
            i += 1;
        }
        if text[i..].starts_with(b"://") {
            while i < n && !text[i].is_ascii_whitespace() && text[i] != b'"' && text[i] != b'\'' && text[i] != b'>' {
                i += 1;
            }
            continue;
        }
        f(&text[s..i]);
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Splits one identifier run into lowercase sub-tokens: on `_`, on
/// letter/digit boundaries and on case changes (`HTTPDate` -> http, date).
pub fn subtokens(run: &[u8], f: impl FnMut(&str)) {
    subtokens_in(run, &mut String::with_capacity(run.len()), f);
}

/// [`subtokens`], building each sub-token in `buf` (left empty), so that a
/// caller splitting many runs allocates once.
fn subtokens_in(run: &[u8], buf: &mut String, mut f: impl FnMut(&str)) {
    buf.clear();
    let flush = |buf: &mut String, f: &mut dyn FnMut(&str)| {
        if !buf.is_empty() {
            f(buf);
            buf.clear();
        }
    };
    for (i, &b) in run.iter().enumerate() {
        if b == b'_' {
            flush(buf, &mut f);
            continue;
        }
        if i > 0 && !buf.is_empty() {
            let p = run[i - 1];
            let boundary = (p.is_ascii_lowercase() && b.is_ascii_uppercase())
                || (p.is_ascii_digit() != b.is_ascii_digit())
                || (p.is_ascii_uppercase()
                    && b.is_ascii_uppercase()
                    && run.get(i + 1).is_some_and(|n| n.is_ascii_lowercase()));
            if boundary {
                flush(buf, &mut f);
            }
        }
        buf.push(b.to_ascii_lowercase() as char);
    }
    flush(buf, &mut f);
}

/// The sub-token key of a name (`parseHTTPDate` -> `parse_http_date`): the
/// "spelled identifier" term a question's adjacent words can meet.
pub fn name_key(name: &str) -> String {
    let mut out = String::new();
    subtokens(name.as_bytes(), |t| {
        if !out.is_empty() {
            out.push('_');
        }
        out.push_str(t);
    });
    out
}

/// A stemmer with a memo of what it stemmed (a tree repeats its words), and
/// the vocabulary of the terms it produced: each term has an id, so that a
/// build's documents hold ids rather than a string per term per document
/// (the terms phase's allocations; [`super::store::write_chunks`] maps each
/// analyser's ids to the segment's).
pub struct Analyzer {
    stemmer: Stemmer,
    /// A token's term id in `vocab` (None: not a term), for tokens of at
    /// most 15 bytes by their bytes as one integer ([`short_key`]: a lookup
    /// compares one `u128`, not a string), longer ones by their text.
    memo: HashMap<u128, Option<u32>>,
    memo_long: HashMap<String, Option<u32>>,
    /// Every term (and spell key) this analyser has produced, by id. Never
    /// cleared: a build's documents refer to it.
    vocab: Vec<Box<str>>,
    /// `vocab`'s ids, by their text.
    ids: HashTable<u32>,
    hasher: DefaultHashBuilder,
    /// The sub-token being built (reused across runs).
    buf: String,
    /// Per-document scratch of [`super::docs`]: a term id's place in the
    /// document being built, plus one (0: not in it).
    pub(super) slots: Vec<u32>,
}

impl Default for Analyzer {
    fn default() -> Self {
        Analyzer {
            stemmer: Stemmer::create(Algorithm::English),
            memo: HashMap::new(),
            memo_long: HashMap::new(),
            vocab: Vec::new(),
            ids: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            buf: String::new(),
            slots: Vec::new(),
        }
    }
}

/// A token of at most 15 bytes as one integer: its bytes (little-endian)
/// and its length in the top byte, so two tokens have the same key only if
/// they are the same.
fn short_key(tok: &str) -> Option<u128> {
    let b = tok.as_bytes();
    if b.len() > 15 {
        return None;
    }
    let mut k = [0u8; 16];
    k[..b.len()].copy_from_slice(b);
    k[15] = b.len() as u8;
    Some(u128::from_le_bytes(k))
}

/// The id of `text` in `vocab`, added if new.
fn intern_in(vocab: &mut Vec<Box<str>>, ids: &mut HashTable<u32>, hasher: &DefaultHashBuilder, text: &str) -> u32 {
    let hash = hasher.hash_one(text);
    match ids.entry(hash, |&i| *vocab[i as usize] == *text, |&i| hasher.hash_one(&*vocab[i as usize])) {
        Entry::Occupied(e) => *e.get(),
        Entry::Vacant(e) => {
            let id = vocab.len() as u32;
            vocab.push(text.into());
            e.insert(id);
            id
        }
    }
}

impl Analyzer {
    /// The id of the index term of a lowercase sub-token, or None for a
    /// stop word, a one-letter token or a number.
    pub fn term_id(&mut self, tok: &str) -> Option<u32> {
        if self.memo.len() + self.memo_long.len() > 1 << 20 {
            self.memo.clear();
            self.memo_long.clear();
        }
        // One hash per token: a hit (the usual case) is a lookup, a miss
        // stems and inserts at the slot that lookup found.
        let Analyzer { stemmer, memo, memo_long, vocab, ids, hasher, .. } = self;
        let stem = || {
            if tok.len() < 2 || tok.len() > 40 || tok.bytes().all(|b| b.is_ascii_digit()) || is_stop(tok) {
                None
            } else {
                Some(intern_in(vocab, ids, hasher, &stemmer.stem(tok)))
            }
        };
        match short_key(tok) {
            Some(key) => *memo.entry(key).or_insert_with(stem),
            None => *memo_long.entry_ref(tok).or_insert_with(stem),
        }
    }

    /// The index term of a lowercase sub-token ([`Analyzer::term_id`]'s text).
    pub fn term(&mut self, tok: &str) -> Option<&str> {
        let id = self.term_id(tok)?;
        Some(&self.vocab[id as usize])
    }

    /// The id of `text` as a term of this analyser's vocabulary (a spell
    /// key, which no token stems to), added if new.
    pub fn intern(&mut self, text: &str) -> u32 {
        intern_in(&mut self.vocab, &mut self.ids, &self.hasher, text)
    }

    /// The text of term `id`.
    pub fn text(&self, id: u32) -> &str {
        &self.vocab[id as usize]
    }

    /// The number of terms in the vocabulary (ids are below it).
    pub fn vocab_len(&self) -> usize {
        self.vocab.len()
    }

    /// The vocabulary, by id.
    pub fn into_vocab(self) -> Vec<Box<str>> {
        self.vocab
    }

    /// Calls `f` with every index term of `text`.
    pub fn terms(&mut self, text: &[u8], f: &mut dyn FnMut(&str)) {
        let mut buf = std::mem::take(&mut self.buf);
        runs(text, |run| {
            subtokens_in(run, &mut buf, |tok| {
                if let Some(id) = self.term_id(tok) {
                    f(&self.vocab[id as usize])
                }
            })
        });
        self.buf = buf;
    }

    /// Calls `f` with the id of every index term of `text`.
    pub fn term_ids(&mut self, text: &[u8], f: &mut dyn FnMut(u32)) {
        let mut buf = std::mem::take(&mut self.buf);
        runs(text, |run| {
            subtokens_in(run, &mut buf, |tok| {
                if let Some(id) = self.term_id(tok) {
                    f(id)
                }
            })
        });
        self.buf = buf;
    }
}

/// What a question asks for, analysed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryTerms {
    /// Distinct stemmed terms, in query order.
    pub terms: Vec<String>,
    /// Lowercase sub-tokens of the query, stop words kept (for identifier rules).
    pub words: Vec<String>,
    /// Identifier keys the query's adjacent words spell (`parse_http_date`).
    pub keys: Vec<String>,
}

/// Longest run of adjacent query words tried as one identifier.
const MAX_KEY_WORDS: usize = 4;

pub fn analyze_query(an: &mut Analyzer, query: &str) -> QueryTerms {
    let mut q = QueryTerms::default();
    runs(query.as_bytes(), |run| subtokens(run, |tok| q.words.push(tok.to_string())));
    for w in &q.words {
        if let Some(t) = an.term(w) {
            if !q.terms.iter().any(|x| x == t) {
                q.terms.push(t.to_string());
            }
        }
    }
    // Adjacent words, stop words dropped ("read a zip file" -> read_zip_file,
    // zip_file, ...), as identifier keys of 2..=4 words.
    let content: Vec<&str> = q.words.iter().map(String::as_str).filter(|w| !is_stop(w) && w.len() > 1).collect();
    for n in 2..=MAX_KEY_WORDS.min(content.len()) {
        for win in content.windows(n) {
            let key = win.join("_");
            if !q.keys.contains(&key) {
                q.keys.push(key);
            }
        }
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(s: &str) -> Vec<String> {
        let mut v = Vec::new();
        subtokens(s.as_bytes(), |t| v.push(t.to_string()));
        v
    }

    #[test]
    fn stop_list_is_sorted() {
        assert!(STOP.windows(2).all(|w| w[0] < w[1]), "STOP must stay sorted for binary_search");
    }

    #[test]
    fn identifiers_split_into_subtokens() {
        assert_eq!(subs("parse_http_date"), ["parse", "http", "date"]);
        assert_eq!(subs("parseHTTPDate"), ["parse", "http", "date"]);
        assert_eq!(subs("ZipFile"), ["zip", "file"]);
        assert_eq!(subs("utf8Decode"), ["utf", "8", "decode"]);
        assert_eq!(name_key("parseHTTPDate"), "parse_http_date");
    }

    #[test]
    fn short_tokens_key_by_their_bytes_and_length() {
        assert_ne!(short_key("ab"), short_key("ab\0"));
        assert_ne!(short_key("ab"), short_key("ba"));
        assert_eq!(short_key("abcdefghijklmno").map(|k| (k >> 120) as u8), Some(15));
        assert_eq!(short_key("abcdefghijklmnop"), None, "16 bytes: the long memo");
        // Either memo gives the same ids, asked first or again.
        let mut an = Analyzer::default();
        let toks = ["parsing", "parses", "internationalise", "internationalises", "internationalisation", "the"];
        let first: Vec<Option<u32>> = toks.iter().map(|t| an.term_id(t)).collect();
        let again: Vec<Option<u32>> = toks.iter().map(|t| an.term_id(t)).collect();
        assert_eq!(first, again);
        assert_eq!(first[0], first[1], "one stem, one id");
        assert_eq!(first[5], None, "a stop word");
        assert_eq!(an.term("internationalisation"), Some("internationalis"));
        assert_eq!(an.text(first[2].unwrap()), "internationalis");
    }

    #[test]
    fn urls_are_not_words() {
        let mut v = Vec::new();
        runs(b"see https://www.w3.org/Protocols/rfc2616 for dates", |r| {
            v.push(String::from_utf8_lossy(r).into_owned())
        });
        assert_eq!(v, ["see", "for", "dates"]);
    }

    #[test]
    fn questions_stem_and_spell_identifiers() {
        let mut an = Analyzer::default();
        let q = analyze_query(&mut an, "Parsing the HTTP dates");
        assert_eq!(q.terms, ["pars", "http", "date"]);
        let mut t = Vec::new();
        an.terms(b"def parse_date(s): return s", &mut |x| t.push(x.to_string()));
        assert_eq!(t, ["pars", "date"]);
        let q = analyze_query(&mut an, "parse http date");
        assert!(q.keys.contains(&"parse_http_date".to_string()));
        assert!(q.keys.contains(&"http_date".to_string()));
    }
}
