//! Exhaustive grep over candidate files: memchr's memmem for a literal,
//! aho-corasick (Teddy where the CPU has it) for an alternation of literals,
//! regex-automata's meta regex for everything else. One hit per matching
//! line, at its leftmost match, exactly as the reference scanner reports.

use aho_corasick::{AhoCorasick, MatchKind};
use memchr::memmem;
use regex_automata::meta;
use regex_automata::util::captures::Captures;
use regex_automata::Input;

use super::{line_bounds, past_last_line, RawHit};
use crate::error::{Error, Result};
use crate::index::format::LineTable;
use crate::index::FileRef;
use crate::query::{Pattern, PatternKind};

enum Verifier {
    Literal(Box<memmem::Finder<'static>>),
    Alternation(AhoCorasick),
    Regex(meta::Regex),
}

/// A compiled pattern's fast searcher.
pub struct Matcher {
    verifier: Verifier,
    /// `-w`: the reported span is capture group 1 of the wrapped pattern.
    word: bool,
    /// For a regex: strings one of which every match contains. Lines are
    /// then found from hits of these (aho-corasick, Teddy) and the regex
    /// runs on those lines alone, as ripgrep does with inner literals.
    inner: Option<AhoCorasick>,
}

impl Matcher {
    pub fn new(p: &Pattern) -> Result<Matcher> {
        let verifier = match &p.kind {
            PatternKind::Literal(lit) => Verifier::Literal(Box::new(memmem::Finder::new(lit).into_owned())),
            PatternKind::Alternation(lits) => Verifier::Alternation(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostFirst)
                    .build(lits)
                    .map_err(|e| Error::query(format!("cannot build the literal matcher: {e}"), None))?,
            ),
            PatternKind::Regex => Verifier::Regex(
                meta::Regex::builder()
                    .configure(meta::Config::new().utf8_empty(false))
                    .build_from_hir(&p.hir)
                    .map_err(|e| Error::query(format!("the pattern is too large to compile: {e}"), None))?,
            ),
        };
        let inner = match (&verifier, crate::query::plan::required_literals(&p.hir)) {
            (Verifier::Regex(_), Some(lits)) => {
                AhoCorasick::builder().match_kind(MatchKind::LeftmostFirst).build(lits).ok()
            }
            _ => None,
        };
        Ok(Matcher { verifier, word: p.options.word, inner })
    }

    /// The leftmost match in `hay[from..to]`, as the span to report.
    fn find_at(&self, hay: &[u8], from: usize, to: usize, caps: &mut Option<Captures>) -> Option<(usize, usize)> {
        match &self.verifier {
            Verifier::Literal(f) => f.find(&hay[from..to]).map(|s| (from + s, from + s + f.needle().len())),
            Verifier::Alternation(ac) => {
                ac.find(aho_corasick::Input::new(hay).range(from..to)).map(|m| (m.start(), m.end()))
            }
            Verifier::Regex(re) => {
                let input = Input::new(hay).range(from..to);
                if self.word {
                    let caps = caps.get_or_insert_with(|| re.create_captures());
                    re.search_captures(&input, caps);
                    caps.get_group(1).map(|s| (s.start, s.end))
                } else {
                    re.find(input).map(|m| (m.start(), m.end()))
                }
            }
        }
    }

    /// Every match in `line` (one line, without its end) from byte `from`
    /// on, left to right and without overlaps, as ripgrep colors them and
    /// prints them with `-o`: after an empty match the search moves one
    /// byte on, and empty matches are not reported.
    pub fn matches_in_line(&self, line: &[u8], from: usize) -> Vec<(usize, usize)> {
        let (mut caps, mut out, mut at) = (None, Vec::new(), from);
        while at <= line.len() {
            let Some((s, e)) = self.find_at(line, at, line.len(), &mut caps) else { break };
            if e == s {
                if s >= line.len() {
                    break;
                }
                at = s + 1;
                continue;
            }
            out.push((s, e));
            at = e;
        }
        out
    }

    /// Calls `emit` for each matching line of `content[range]` (whole lines:
    /// a chunk), in order; stops when `emit` returns false. Positions are
    /// offsets into `content`, which also gives look-around its context.
    pub fn for_each_line(
        &self,
        content: &[u8],
        range: std::ops::Range<usize>,
        lines: LineTable<'_>,
        mut emit: impl FnMut(u32, usize, usize, usize, usize) -> bool,
    ) {
        let mut caps = None;
        let mut pos = range.start;
        // Newlines are counted from the last reported line, so a chunk costs
        // one pass of counting however many lines match.
        let (mut counted_to, mut line) = (0usize, 0u32);
        while pos <= range.end {
            let found = match &self.inner {
                None => self.find_at(content, pos, range.end, &mut caps),
                Some(ac) => {
                    // Jump to the next line holding a required literal and
                    // run the regex on that line only.
                    let Some(hit) = ac.find(aho_corasick::Input::new(content).range(pos..range.end)) else { break };
                    let (ls, le) = line_bounds(content, hit.start());
                    match self.find_at(content, ls.max(pos), le, &mut caps) {
                        Some(m) => Some(m),
                        None => {
                            pos = le + 1;
                            continue;
                        }
                    }
                }
            };
            let Some((s, e)) = found else { break };
            // A match at the very end of the range belongs to the next line,
            // unless this is the unterminated last line of the file.
            if s > range.end || (s == range.end && (s != content.len() || past_last_line(content, s))) {
                break;
            }
            let (ls, le) = line_bounds(content, s);
            if line == 0 {
                line = lines.line_of(content, ls);
            } else {
                line += memchr::memchr_iter(b'\n', &content[counted_to..ls]).count() as u32;
            }
            counted_to = ls;
            if !emit(line, ls, le, s, e) {
                return;
            }
            pos = le + 1;
        }
    }
}

/// Greps one chunk of a file with the fast matcher.
pub fn grep_chunk(
    m: &Matcher,
    file: FileRef,
    content: &[u8],
    range: std::ops::Range<usize>,
    lines: LineTable<'_>,
    out: &mut Vec<RawHit>,
    limit: usize,
) {
    m.for_each_line(content, range, lines, |line, ls, le, s, e| {
        out.push(RawHit {
            file,
            line,
            line_start: ls,
            line_end: le,
            byte_start: s,
            byte_end: e,
            score: 0.0,
            why: vec!["match"],
        });
        out.len() < limit
    });
}

#[cfg(test)]
mod tests {
    use super::Matcher;
    use crate::query::{GrepOptions, Pattern};

    fn spans(pattern: &str, regex: bool, ignore_case: bool, word: bool, line: &str) -> Vec<(usize, usize)> {
        let p = Pattern::compile(pattern, GrepOptions { regex, ignore_case, word }).unwrap();
        Matcher::new(&p).unwrap().matches_in_line(line.as_bytes(), 0)
    }

    /// The oracle: the regex crate's own iteration over the line (its empty
    /// matches dropped), on the pattern as the user typed it.
    fn oracle(pattern: &str, ignore_case: bool, line: &str) -> Vec<(usize, usize)> {
        let re = regex::bytes::RegexBuilder::new(pattern).case_insensitive(ignore_case).build().unwrap();
        re.find_iter(line.as_bytes()).map(|m| (m.start(), m.end())).filter(|(s, e)| s < e).collect()
    }

    #[test]
    fn every_match_in_a_line_as_the_regex_crate_finds_them() {
        let lines =
            ["needle needles Needle", "caf\u{e9} na\u{ef}ve needle \u{e9} NEEDLE \u{c9}", "", "aaa", "x=1, y=22"];
        for pattern in ["needle", "Needle", "ne+dle", "\u{e9}", "a*", "\\d+", "n|e", "(?:)"] {
            for ignore_case in [false, true] {
                for line in lines {
                    let want = oracle(pattern, ignore_case, line);
                    assert_eq!(
                        spans(pattern, true, ignore_case, false, line),
                        want,
                        "{pattern:?} {ignore_case} {line:?}"
                    );
                }
            }
        }
        // Literals (-F) and their case folding (-i) alike.
        assert_eq!(spans("a.b", false, false, false, "a.b axb a.b"), vec![(0, 3), (8, 11)]);
        assert_eq!(spans("\u{c9}", false, true, false, "\u{e9}t\u{e9}"), vec![(0, 2), (3, 5)]);
    }

    #[test]
    fn whole_words_are_the_matches_between_non_word_characters() {
        let line = "needle and Needle and needles, needle_2 (needle)";
        assert_eq!(spans("needle", true, true, true, line), vec![(0, 6), (11, 17), (41, 47)]);
        assert_eq!(spans("needle", false, false, true, "needle needle"), vec![(0, 6), (7, 13)]);
        // From a byte on: the one before still counts as the word's edge.
        assert_eq!(spans("needle", true, false, true, "aneedle needle"), vec![(8, 14)]);
        let p = Pattern::compile("needle", GrepOptions { regex: true, ignore_case: false, word: true }).unwrap();
        assert_eq!(Matcher::new(&p).unwrap().matches_in_line(b"needle needle", 6), vec![(7, 13)]);
    }
}
