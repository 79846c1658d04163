//! Which engine answers a query: a plain-English question goes to the
//! definition index, an identifier, literal or regex to Stage-A (and
//! Stage-B after it), and a question that names an identifier, or a pair
//! of words that may be a phrase, to both.

/// Where a query goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Stage-A's ranked lexical search alone (identifiers, literals, regexes).
    Lexical,
    /// The definition index alone (a question in words).
    Terms,
    /// Both, interleaved (a question naming an identifier).
    Union,
}

impl Route {
    pub fn name(self) -> &'static str {
        match self {
            Route::Lexical => "lexical",
            Route::Terms => "terms",
            Route::Union => "union",
        }
    }
}

/// Characters that make a word a pattern or a code literal rather than
/// part of a sentence.
const CODE_CHARS: &[u8] = b"\\[]{}<>*^$|=;\"`#@&%+~";

/// The possessive of a word in capitals (`CPU's`), which the camelCase test
/// below would take for an identifier. (A plural acronym, `ACLs`, stays an
/// identifier: Stage-A's substring match of it finds `deleteacl`, which the
/// definition index's sub-tokens miss; measured on the dev set.)
fn possessive_acronym(w: &str) -> bool {
    w.strip_suffix("'s").is_some_and(|stem| stem.len() >= 2 && stem.bytes().all(|c| c.is_ascii_uppercase()))
}

/// A word that reads as an identifier: snake_case, camelCase, dotted, with
/// digits inside, or called (`getclasstree()`). Capitals count as camelCase
/// within one hyphen-joined part only (`Type-C` and `DMA-map` are prose),
/// and not in a possessive acronym.
fn is_identifier(w: &str) -> bool {
    if w.ends_with("()") {
        return true;
    }
    let b = w.as_bytes();
    let camel = |p: &str| {
        let b = p.as_bytes();
        b.iter().skip(1).any(|c| c.is_ascii_uppercase()) && b.iter().any(|c| c.is_ascii_lowercase())
    };
    let inner_upper = w.split('-').any(|p| camel(p) && !possessive_acronym(p));
    w.contains('_')
        || w.contains("::")
        || (w.contains('.') && !w.ends_with('.') && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'.'))
        || inner_upper
        || (b.iter().any(u8::is_ascii_digit) && b.iter().any(u8::is_ascii_alphabetic))
}

/// A word of prose: letters, perhaps with sentence punctuation around it.
fn is_plain(w: &str) -> bool {
    if w.contains("()") {
        return false;
    }
    let t = w.trim_matches(|c: char| ",.;:?!()'\"".contains(c));
    !t.is_empty() && t.bytes().all(|c| c.is_ascii_alphabetic() || c == b'-' || c == b'\'') && !is_identifier(t)
}

/// The words of `query` that read as identifiers (what makes a sentence a
/// union route), sentence punctuation trimmed.
pub fn identifiers(query: &str) -> Vec<&str> {
    query
        .split_whitespace()
        .filter(|w| !is_plain(w))
        .map(|w| w.trim_matches(|c: char| ",.;:?!'\"".contains(c)))
        .filter(|w| is_identifier(w))
        .collect()
}

pub fn classify(query: &str) -> Route {
    let words: Vec<&str> = query.split_whitespace().collect();
    let plain = words.iter().filter(|w| is_plain(w)).count();
    let code = words.iter().any(|w| w.bytes().any(|c| CODE_CHARS.contains(&c)));
    let idents = identifiers(query).len();
    // A sentence: mostly prose words, at least two of them (three when it
    // also carries code punctuation).
    if plain < 2 || plain * 2 < words.len() || (code && plain < 3) {
        return Route::Lexical;
    }
    // Two words may be a phrase to find as it is ("import os"): both engines.
    if idents == 0 && words.len() > 2 {
        Route::Terms
    } else {
        Route::Union
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_identifiers_and_patterns() {
        assert_eq!(classify("parse an HTTP date header"), Route::Terms);
        assert_eq!(classify("escape html"), Route::Union);
        assert_eq!(classify("import os"), Route::Union);
        assert_eq!(classify("only copy one trace over, and reset the rest"), Route::Terms);
        assert_eq!(classify("parse_http_date"), Route::Lexical);
        assert_eq!(classify("ZipFile"), Route::Lexical);
        assert_eq!(classify("def parse_http_date("), Route::Lexical);
        assert_eq!(classify(r"foo\s+bar"), Route::Lexical);
        assert_eq!(classify("ZipFile read"), Route::Lexical);
        assert_eq!(classify("Return the number of members (no aliases)"), Route::Terms);
        assert_eq!(classify("Recursive helper function for getclasstree()"), Route::Union);
        assert_eq!(classify("Raised when Queue.get_nowait() is called on an empty Queue"), Route::Union);
        assert_eq!(classify("x = foo(bar)"), Route::Lexical);
        assert_eq!(classify("how does parse_http_date handle time zones"), Route::Union);
        assert_eq!(classify("where is os.path.join used"), Route::Union);
        // A possessive acronym and capitals across a hyphen are prose; a
        // plural acronym stays an identifier (Stage-A finds it inside names).
        assert_eq!(classify("free unused LEBs after commit end."), Route::Union);
        assert_eq!(classify("Get CPU's idle state node at the given index"), Route::Terms);
        assert_eq!(classify("Check is the USB Type-C cable active or passive"), Route::Terms);
        assert_eq!(classify("DMA-map the buffer attached to a"), Route::Terms);
        assert_eq!(classify("disable switch DiffServ priority"), Route::Union);
        assert_eq!(classify("the HTTPResponse's status line"), Route::Union);
        assert_eq!(classify("return the parseHTTP-date result"), Route::Union);
    }

    #[test]
    fn the_identifiers_a_union_route_names() {
        assert_eq!(identifiers("clear the I_NEW state and wake up any waiters"), vec!["I_NEW"]);
        assert_eq!(
            identifiers("Raised when Queue.get_nowait() is called on an empty Queue"),
            vec!["Queue.get_nowait()"]
        );
        assert_eq!(identifiers("class to add info() and geturl() methods to an open file"), vec!["info()", "geturl()"]);
        assert_eq!(
            identifiers("Generate a START condition, which triggers a REG_INT_START interrupt."),
            vec!["REG_INT_START"]
        );
        assert_eq!(identifiers("initialize UGEE v2 battery reporting."), vec!["v2"]);
        assert_eq!(identifiers("Get CPU's idle state node at the given index"), Vec::<&str>::new());
        assert_eq!(identifiers("escape html"), Vec::<&str>::new());
    }
}
