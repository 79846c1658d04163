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
