//! Words of code and of questions: identifier runs split into sub-tokens
//! (`parseHTTPDate` -> parse, http, date), lowercased, stop words dropped,
//! Snowball-stemmed (English), so that "parsing dates" meets `parse_date`.
//! URLs are not words. The same analysis runs at build and at query time.

use hashbrown::HashMap;

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

/// A stemmer with a memo of what it stemmed (a tree repeats its words).
pub struct Analyzer {
    stemmer: Stemmer,
    memo: HashMap<String, Option<String>>,
    /// The sub-token being built (reused across runs).
    buf: String,
}

impl Default for Analyzer {
    fn default() -> Self {
        Analyzer { stemmer: Stemmer::create(Algorithm::English), memo: HashMap::new(), buf: String::new() }
    }
}

impl Analyzer {
    /// The index term of a lowercase sub-token, or None for a stop word,
    /// a one-letter token or a number.
    pub fn term(&mut self, tok: &str) -> Option<&str> {
        if self.memo.len() > 1 << 20 {
            self.memo.clear();
        }
        // One hash per token: a hit (the usual case) is a lookup, a miss
        // stems and inserts at the slot that lookup found.
        let stemmer = &self.stemmer;
        self.memo
            .entry_ref(tok)
            .or_insert_with(|| {
                if tok.len() < 2 || tok.len() > 40 || tok.bytes().all(|b| b.is_ascii_digit()) || is_stop(tok) {
                    None
                } else {
                    Some(stemmer.stem(tok).into_owned())
                }
            })
            .as_deref()
    }

    /// Calls `f` with every index term of `text`.
    pub fn terms(&mut self, text: &[u8], f: &mut dyn FnMut(&str)) {
        let mut buf = std::mem::take(&mut self.buf);
        runs(text, |run| {
            subtokens_in(run, &mut buf, |tok| {
                if let Some(t) = self.term(tok) {
                    f(t)
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
