//! A hand-written scanner for C definitions and references, used for C files
//! instead of tree-sitter (the parse and the tags query were ~70 % of a
//! kernel build's CPU). It gives what the C tags query (`lang::C_TAGS`) gives
//! on well-formed code: functions, structs / unions / enums with their
//! fields and enumerators, typedef names, `#define`s, top-level initialised
//! variables, and references (calls to plain identifiers, prototypes).
//!
//! tree-sitter is its oracle: `benches/c_scan_agree.rs` measures agreement
//! per definition kind over a tree, the tests below on fixtures. Where the
//! scanner cannot follow a file (braces or parentheses that do not balance,
//! a `#if` that splits a declaration, a NUL byte) it says so by returning
//! `None`, and the caller parses the file.

mod lex;
mod parse;

use crate::symbols::extract::{assign_containers, FileSymbols};
use lex::lex;
use parse::{Ctx, Parser};

/// The symbols of C source `content`, or `None` when the scanner is unsure
/// of it (the caller then parses).
pub fn scan(content: &[u8]) -> Option<FileSymbols> {
    scan_or_why(content).ok()
}

/// [`scan`], or the line where the scanner gave up and why.
pub fn scan_or_why(content: &[u8]) -> Result<FileSymbols, (u32, &'static str)> {
    if content.len() >= u32::MAX as usize {
        return Err((0, "too large"));
    }
    let out = FileSymbols { parsed: true, ..FileSymbols::default() };
    let mut macros = Vec::new();
    let toks = lex(content, &mut macros).ok_or((0, "lexer"))?;
    let mut p =
        Parser { src: content, t: toks, i: 0, out, unsure: None, quiet: Vec::new(), header_start: 0, nesting: 0 };
    p.items(Ctx::Top);
    if let Some(why) = p.unsure {
        return Err(why);
    }
    // tree-sitter has no `#define` inside an enum's body or an initialiser
    // list (it recovers from an error there): such macros are left out.
    let mut inside = vec![0i32; p.t.len() + 2];
    for &(open, close) in &p.quiet {
        inside[open + 1] += 1;
        inside[close + 1] -= 1;
    }
    for i in 1..inside.len() {
        inside[i] += inside[i - 1];
    }
    let mut out = p.out;
    out.refs.sort_by_key(|r| r.start);
    out.defs.extend(macros.into_iter().filter(|(_, at)| inside[*at as usize] == 0).map(|(d, _)| d));
    assign_containers(&mut out.defs);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::symbols::extract::parse_tags;
    use crate::symbols::lang::Lang;

    fn parsed(content: &[u8]) -> FileSymbols {
        let s = parse_tags(Lang::C.tags().unwrap(), content);
        assert!(s.parsed);
        s
    }

    /// The scanner gives exactly what tree-sitter gives on `src`.
    fn same_as_parsed(src: &str) {
        let fast = scan(src.as_bytes()).unwrap_or_else(|| panic!("the scanner declined:\n{src}"));
        let slow = parsed(src.as_bytes());
        assert_eq!(fast.defs, slow.defs, "definitions of:\n{src}");
        assert_eq!(fast.refs, slow.refs, "references of:\n{src}");
    }

    const FIXTURE: &str = r#"// SPDX-License-Identifier: GPL-2.0
/*
 * A file with what kernel C is made of.
 */
#include <linux/module.h>
#include "local.h"

#define FOO_MAX 16
#define FOO_MASK(x) ((x) & (FOO_MAX - 1)) /* a comment */
#define LONG_MACRO(a, b) \
	do { \
		bar(a); \
	} while (0)

struct foo_dev {
	int id;
	unsigned long flags, state;
	struct list_head list;
	char name[16];
	void *priv;
	int (*probe)(struct foo_dev *dev);
	unsigned int bits : 3;
	union {
		u32 raw;
		struct {
			u16 lo;
			u16 hi;
		} parts;
	};
};

enum foo_state {
	FOO_IDLE,
	FOO_BUSY = 2,
	FOO_DONE = FOO_MASK(3),
};

typedef struct foo_dev foo_dev_t;
typedef unsigned long foo_flags_t;
typedef int (*foo_cb)(int);

static const char *names[] = { "a", "b" };
int foo_count = 0;
static int foo_limit = FOO_MAX;
static struct foo_dev *current_dev;

int foo_probe(struct foo_dev *dev);
static void foo_release(struct foo_dev *dev);

static int foo_helper(int x)
{
	/* a brace in a comment { */
	const char *s = "a brace in a string }";
	if (x > 0) {
		foo_release(NULL);
		return helper_call(x, s);
	}
	switch (x) {
	case 1:
		break;
	}
	while (x--)
		do_work(x);
	return sizeof(struct foo_dev) + 'x';
}

int foo_probe(struct foo_dev *dev)
{
	struct local_state {
		int depth;
	} st;
	dev->probe(dev);
	st.depth = foo_helper(dev->id);
	return 0;
}

static inline struct foo_dev *foo_get(int id)
{
	return lookup(id);
}

char **foo_names(void)
{
	return (char **)names;
}

#ifdef CONFIG_FOO
int foo_debug = 1;
static int foo_debug_fn(void)
{
	return 0;
}
#else
static int foo_debug_fn(void)
{
	return 1;
}
#endif

EXPORT_SYMBOL(foo_probe);
MODULE_LICENSE("GPL");
"#;

    #[test]
    fn a_kernel_like_file_matches_the_parse() {
        same_as_parsed(FIXTURE);
    }

    #[test]
    fn unbalanced_files_are_declined() {
        let deep = format!("int f(void) {}{}\n", "{".repeat(100_000), "}".repeat(100_001));
        assert!(scan(deep.as_bytes()).is_none(), "too deep");
        for src in ["int f(void) {\n", "}\n", "struct a { int x;\n", "#endif\n", "/* open\n", "int a\0;\n"] {
            assert!(scan(src.as_bytes()).is_none(), "{src:?}");
        }
    }
}
