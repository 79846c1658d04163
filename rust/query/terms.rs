//! Splitting a ranked-search query into terms: its words, and the identifier
//! sub-tokens of each word (`parseHTTPDate` gives parse, http, date), ASCII
//! case folded. Sub-tokens let `read_file` find `ReadFile` and `readFile`.

const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "if", "in", "into", "is", "it", "of", "on", "or",
    "that", "the", "this", "to", "with", "which", "when", "its", "was", "will", "can", "not", "all", "given",
];
/// More terms than this add cost without changing what ranks first.
pub const MAX_TERMS: usize = 16;
/// Shortest sub-token kept as a term of its own.
pub const MIN_SUBTOKEN: usize = 3;

/// A query split for ranked search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terms {
    /// The whole query, trimmed, as typed.
    pub phrase: Vec<u8>,
    /// Distinct folded terms, longest first (so the most selective lead).
    pub terms: Vec<Vec<u8>>,
    /// One group per query word: the indices (into `terms`) of its parts.
    /// A file qualifies when it holds the phrase or every part of some word
    /// (Zoekt-style AND within an identifier, OR across words).
    pub groups: Vec<Vec<usize>>,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Splits one identifier into its sub-tokens.
pub fn subtokens(word: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = word.char_indices().collect();
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (i, &(at, c)) in chars.iter().enumerate() {
        if c == '_' {
            if let Some(s) = start.take() {
                out.push(&word[s..at]);
            }
            continue;
        }
        let Some(s) = start else {
            start = Some(at);
            continue;
        };
        let prev = chars[i - 1].1;
        let next = chars.get(i + 1).map(|&(_, n)| n);
        let boundary = (prev.is_lowercase() && c.is_uppercase())
            || (prev.is_alphabetic() != c.is_alphabetic() && prev != '_')
            // The last capital of a run that starts a new word: HTTPServer.
            || (prev.is_uppercase() && c.is_uppercase() && next.is_some_and(|n| n.is_lowercase()));
        if boundary {
            out.push(&word[s..at]);
            start = Some(at);
        }
    }
    if let Some(s) = start {
        out.push(&word[s..]);
    }
    out
}

/// The terms of a ranked-search query.
pub fn split(query: &str) -> Terms {
    let phrase = query.trim();
    let words: Vec<&str> = phrase.split(|c: char| !is_word_char(c)).filter(|w| !w.is_empty()).collect();
    let natural_language = words.len() >= 3;
    let keep = |t: &str| -> Option<Vec<u8>> {
        let t = t.trim_matches('_').to_ascii_lowercase();
        if t.chars().count() < 2 || (natural_language && STOPWORDS.contains(&t.as_str())) {
            return None;
        }
        Some(t.into_bytes())
    };
    let mut terms: Vec<Vec<u8>> = Vec::new();
    let mut word_parts: Vec<Vec<Vec<u8>>> = Vec::new();
    for w in &words {
        let whole = keep(w);
        // Sub-tokens under three letters (is, of, io) match nearly every
        // line and say little about an identifier; whole words keep them.
        let subs: Vec<Vec<u8>> =
            subtokens(w).into_iter().filter_map(keep).filter(|t| t.len() >= MIN_SUBTOKEN).collect();
        let parts = if subs.len() > 1 { subs } else { whole.iter().cloned().collect() };
        let parts: Vec<Vec<u8>> = parts;
        for t in whole.into_iter().chain(parts.iter().cloned()) {
            if !terms.contains(&t) {
                terms.push(t);
            }
        }
        if !parts.is_empty() {
            word_parts.push(parts);
        }
    }
    terms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    terms.truncate(MAX_TERMS);
    let groups = word_parts
        .iter()
        .map(|parts| parts.iter().filter_map(|p| terms.iter().position(|t| t == p)).collect::<Vec<_>>())
        .filter(|g: &Vec<usize>| !g.is_empty())
        .collect();
    Terms { phrase: phrase.as_bytes().to_vec(), terms, groups }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_split_into_subtokens() {
        assert_eq!(subtokens("parseHTTPDate"), vec!["parse", "HTTP", "Date"]);
        assert_eq!(subtokens("HTTPServer"), vec!["HTTP", "Server"]);
        assert_eq!(subtokens("read_file_v2"), vec!["read", "file", "v", "2"]);
        assert_eq!(subtokens("_private"), vec!["private"]);
    }

    #[test]
    fn natural_language_drops_stopwords() {
        let t = split("parse an HTTP date header");
        assert_eq!(t.terms, vec![b"header".to_vec(), b"parse".to_vec(), b"date".to_vec(), b"http".to_vec()]);
        let t = split("CGIHTTPRequestHandler");
        assert_eq!(t.terms[0], b"cgihttprequesthandler".to_vec());
        assert!(t.terms.contains(&b"request".to_vec()) && t.terms.contains(&b"cgihttp".to_vec()));
        assert_eq!(t.groups.len(), 1);
        assert_eq!(t.groups[0].len(), 3);
        let t = split("load_stop");
        assert_eq!(t.terms, vec![b"load_stop".to_vec(), b"load".to_vec(), b"stop".to_vec()]);
        assert_eq!(t.groups, vec![vec![1, 2]]);
    }
}
