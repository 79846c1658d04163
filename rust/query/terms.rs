//! Splitting a ranked-search query into terms: its words, ASCII case folded,
//! each with the spellings an identifier takes in code. A word is split into
//! its identifier sub-tokens (`parseHTTPDate` gives parse, http, date) and
//! matched in every joining of them with nothing, `_` or `-` between, so
//! `read_file` finds `ReadFile`, `readFile`, `READ_FILE` and `read-file`.
//! Sub-tokens scattered over a line do not count: they would turn a rare
//! identifier into a query for two common words.

const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "if", "in", "into", "is", "it", "of", "on", "or",
    "that", "the", "this", "to", "with", "which", "when", "its", "was", "will", "can", "not", "all", "given",
];
/// More terms than this add cost without changing what ranks first.
pub const MAX_TERMS: usize = 16;
/// Most spellings generated for one word.
pub const MAX_VARIANTS: usize = 9;
const JOINERS: [&[u8]; 3] = [b"", b"_", b"-"];

/// A query split for ranked search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terms {
    /// The whole query, trimmed, as typed.
    pub phrase: Vec<u8>,
    /// Distinct folded words, longest first (so the most selective lead).
    pub terms: Vec<Vec<u8>>,
    /// For each term, the folded spellings that count as an occurrence
    /// (the term itself first).
    pub variants: Vec<Vec<Vec<u8>>>,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Words joined by single hyphens, nothing else: `parse-http-date`.
fn is_hyphenated(q: &str) -> bool {
    q.contains('-')
        && q.split('-').all(|p| !p.is_empty() && p.chars().all(is_word_char))
        && q.chars().next().is_some_and(char::is_alphabetic)
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

/// The spellings of a word split into `parts` (folded).
fn spellings(word: &[u8], parts: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = vec![word.to_vec()];
    if parts.len() < 2 {
        return out;
    }
    // Joiners per gap: all three while that stays small, else none or `_`.
    let joiners: &[&[u8]] = if 3usize.pow(parts.len() as u32 - 1) <= MAX_VARIANTS { &JOINERS } else { &JOINERS[..2] };
    let mut acc: Vec<Vec<u8>> = vec![parts[0].clone()];
    for part in &parts[1..] {
        acc = acc.iter().flat_map(|a| joiners.iter().map(move |j| [a.as_slice(), j, part].concat())).collect();
        if acc.len() > 4 * MAX_VARIANTS {
            break;
        }
    }
    for v in acc {
        if out.len() >= MAX_VARIANTS {
            break;
        }
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// The terms of a ranked-search query.
pub fn split(query: &str) -> Terms {
    let phrase = query.trim();
    // One hyphen-joined identifier (`parse-http-date`) is one word, as
    // `parse_http_date` is: its spellings include the other joinings.
    let words: Vec<&str> = if is_hyphenated(phrase) {
        vec![phrase]
    } else {
        phrase.split(|c: char| !is_word_char(c)).filter(|w| !w.is_empty()).collect()
    };
    let natural_language = words.len() >= 3;
    let mut terms: Vec<(Vec<u8>, Vec<Vec<u8>>)> = Vec::new();
    for w in &words {
        let folded = w.trim_matches('_').to_ascii_lowercase();
        if folded.chars().count() < 2 || (natural_language && STOPWORDS.contains(&folded.as_str())) {
            continue;
        }
        let folded = folded.into_bytes();
        if terms.iter().any(|(t, _)| *t == folded) {
            continue;
        }
        let parts: Vec<Vec<u8>> =
            w.split('-').flat_map(subtokens).map(|p| p.to_ascii_lowercase().into_bytes()).collect();
        let variants = spellings(&folded, &parts);
        terms.push((folded, variants));
    }
    terms.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
    terms.truncate(MAX_TERMS);
    let (terms, variants) = terms.into_iter().unzip();
    Terms { phrase: phrase.as_bytes().to_vec(), terms, variants }
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
    }

    #[test]
    fn identifiers_match_their_spellings() {
        let t = split("read_file");
        assert_eq!(t.terms, vec![b"read_file".to_vec()]);
        assert_eq!(t.variants[0], vec![b"read_file".to_vec(), b"readfile".to_vec(), b"read-file".to_vec()]);
        let t = split("parseHTTPDate");
        assert_eq!(t.variants[0][0], b"parsehttpdate".to_vec());
        assert!(t.variants[0].contains(&b"parse_http_date".to_vec()));
        assert!(t.variants[0].len() <= MAX_VARIANTS);
        let t = split("parse-http-date");
        assert_eq!(t.terms, vec![b"parse-http-date".to_vec()]);
        assert!(t.variants[0].contains(&b"parse_http_date".to_vec()));
        assert!(t.variants[0].contains(&b"parsehttpdate".to_vec()));
        assert_eq!(split("on- or off-state").terms.len(), 2);
        let t = split("a_b_c_d_e_f_g");
        assert!(t.variants[0].len() <= MAX_VARIANTS);
    }
}
