//! Tree-sitter tags extraction of one file: definitions (name, kind, name
//! span, whole span, container) and references (name, span).
//!
//! Containers come from nesting: after the tags pass, definitions are sorted
//! by start and the innermost definition whose span holds another is its
//! container. A function whose container is a class is a method.

use std::cell::RefCell;

use tree_sitter_tags::{TagsConfiguration, TagsContext};

use super::lang::Lang;
use super::Kind;

/// A definition as extracted, before names are interned.
#[derive(Clone, Debug, PartialEq)]
pub struct RawDef {
    pub name: String,
    pub kind: Kind,
    pub name_start: u32,
    pub name_end: u32,
    pub def_start: u32,
    pub def_end: u32,
    /// 1-based line of `name_start`.
    pub line: u32,
    pub container: Option<String>,
}

/// A reference as extracted.
#[derive(Clone, Debug, PartialEq)]
pub struct RawRef {
    pub name: String,
    pub start: u32,
    pub end: u32,
    pub line: u32,
}

/// What extraction found in one file.
#[derive(Clone, Debug, Default)]
pub struct FileSymbols {
    pub defs: Vec<RawDef>,
    pub refs: Vec<RawRef>,
    /// The parser ran to the end (it may still have met syntax errors).
    pub parsed: bool,
}

thread_local! {
    static CONTEXT: RefCell<TagsContext> = RefCell::new(TagsContext::new());
}

/// Extracts the symbols of `content`, a file in `lang`.
pub fn extract(lang: Lang, content: &[u8]) -> FileSymbols {
    if matches!(lang, Lang::C | Lang::Cpp) && content.len() >= DEFINES_MIN_BYTES {
        if let Some(s) = defines_only(content) {
            return s;
        }
    }
    // C goes to the hand-written scanner; tree-sitter only where it declines.
    if lang == Lang::C {
        if let Some(s) = super::c_scan::scan(content) {
            return s;
        }
    }
    let Some(config) = lang.tags() else {
        return FileSymbols::default();
    };
    // Spans are u32 in the symbol file; lens never indexes files this large.
    if content.len() >= u32::MAX as usize {
        return FileSymbols::default();
    }
    parse_tags(config, content)
}

/// The tree-sitter route: the tags query's definitions and references of
/// `content`, containers assigned (empty and not `parsed` when the parse or a
/// tag fails).
pub fn parse_tags(config: &TagsConfiguration, content: &[u8]) -> FileSymbols {
    CONTEXT.with(|ctx| {
        let mut ctx = ctx.borrow_mut();
        let mut out = FileSymbols::default();
        let Ok((tags, _had_error)) = ctx.generate_tags(config, content, None) else {
            return out;
        };
        for tag in tags {
            let Ok(tag) = tag else {
                return FileSymbols::default();
            };
            let Ok(name) = std::str::from_utf8(&content[tag.name_range.clone()]) else {
                continue;
            };
            if name.is_empty() {
                continue;
            }
            let kind_name = config.syntax_type_name(tag.syntax_type_id);
            let line = tag.span.start.row as u32 + 1;
            if tag.is_definition {
                out.defs.push(RawDef {
                    name: name.to_string(),
                    kind: Kind::from_tag(kind_name),
                    name_start: tag.name_range.start as u32,
                    name_end: tag.name_range.end as u32,
                    def_start: tag.range.start as u32,
                    def_end: tag.range.end as u32,
                    line,
                    container: None,
                });
            } else {
                out.refs.push(RawRef {
                    name: name.to_string(),
                    start: tag.name_range.start as u32,
                    end: tag.name_range.end as u32,
                    line,
                });
            }
        }
        out.parsed = true;
        assign_containers(&mut out.defs);
        out
    })
}

/// Size from which a C or C++ file is checked for being only `#define`s.
/// Generated register headers (the kernel's `amd/include/asic_reg/`, 373 MB
/// of 1.27 GB) are such files; small headers are left to tree-sitter.
pub const DEFINES_MIN_BYTES: usize = 64 << 10;

/// The symbols of a C file made only of object- and function-like
/// `#define`s, include guards, blank lines and whole-line comments, found by
/// a line scan instead of a parse (tree-sitter's 30 MB/s is ~10% of a kernel
/// build for these files alone). The result is the same definitions the
/// tags query gives (kind, name span, whole span with its newline, line); no
/// references, as the tags query finds none in macro bodies. `None` when any
/// line is something else (a continuation, a declaration, a trailing block
/// comment), and the caller parses the file.
pub fn defines_only(content: &[u8]) -> Option<FileSymbols> {
    let mut out = FileSymbols { parsed: true, ..FileSymbols::default() };
    let mut in_comment = false;
    let mut depth = 0u32;
    let (mut pos, mut line) = (0usize, 0u32);
    while pos < content.len() {
        let end = memchr::memchr(b'\n', &content[pos..]).map_or(content.len(), |i| pos + i);
        let next = (end + 1).min(content.len());
        let raw = &content[pos..end];
        line += 1;
        let text = raw.strip_suffix(b"\r").unwrap_or(raw);
        let lead = text.iter().take_while(|c| matches!(c, b' ' | b'\t')).count();
        let t = &text[lead..];
        if text.ends_with(b"\\") || t.contains(&0) {
            return None;
        }
        if in_comment {
            if let Some(i) = find(t, b"*/") {
                if !t[i + 2..].iter().all(u8::is_ascii_whitespace) {
                    return None;
                }
                in_comment = false;
            }
        } else if t.is_empty() || t.starts_with(b"//") {
        } else if t.starts_with(b"/*") {
            match find(&t[2..], b"*/") {
                Some(i) if t[2 + i + 2..].iter().all(u8::is_ascii_whitespace) => {}
                Some(_) => return None,
                None => in_comment = true,
            }
        } else if let Some(rest) = t.strip_prefix(b"#define") {
            // `#define` then at least one blank, the name, then the end of
            // the line, a blank or `(` (function-like, no blank before it).
            let blanks = rest.iter().take_while(|c| matches!(c, b' ' | b'\t')).count();
            let name_at = pos + lead + 7 + blanks;
            let name_len = rest[blanks..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_').count();
            if blanks == 0 || name_len == 0 || rest[blanks].is_ascii_digit() {
                return None;
            }
            let after = &rest[blanks + name_len..];
            let function_like = after.first() == Some(&b'(');
            if !(after.is_empty() || function_like || matches!(after[0], b' ' | b'\t')) {
                return None;
            }
            // A comment in the value could hide a `*/` or open a block.
            if find(after, b"/*").is_some() || find(after, b"//").is_some() || after.contains(&b'"') {
                return None;
            }
            let name = std::str::from_utf8(&content[name_at..name_at + name_len]).ok()?;
            out.defs.push(RawDef {
                name: name.to_string(),
                kind: if function_like { Kind::Function } else { Kind::Constant },
                name_start: name_at as u32,
                name_end: (name_at + name_len) as u32,
                def_start: (pos + lead) as u32,
                def_end: next as u32,
                line,
                container: None,
            });
        } else if t.starts_with(b"#ifndef ")
            || (t.starts_with(b"#endif") && t[6..].first().is_none_or(|c| matches!(c, b' ' | b'\t' | b'/')))
        {
            // Guards balance, as the parse would otherwise recover from an
            // error rather than see plain nesting.
            if t[1] == b'i' {
                depth += 1;
            } else if depth == 0 {
                return None;
            } else {
                depth -= 1;
            }
            // A comment after the directive must close on its line.
            if let Some(i) = find(t, b"/*") {
                if !find(&t[i + 2..], b"*/").is_some_and(|j| t[i + 4 + j..].iter().all(u8::is_ascii_whitespace)) {
                    return None;
                }
            }
        } else {
            return None;
        }
        pos = next;
    }
    if in_comment || depth != 0 {
        return None;
    }
    assign_containers(&mut out.defs);
    Some(out)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// Sets each definition's container to the innermost definition enclosing it.
pub fn assign_containers(defs: &mut [RawDef]) {
    defs.sort_by(|a, b| {
        a.def_start.cmp(&b.def_start).then(b.def_end.cmp(&a.def_end)).then(a.name_start.cmp(&b.name_start))
    });
    let mut stack: Vec<usize> = Vec::new();
    for i in 0..defs.len() {
        while let Some(&top) = stack.last() {
            let t = &defs[top];
            let encloses =
                t.def_start <= defs[i].def_start && defs[i].def_end <= t.def_end && t.name_start != defs[i].name_start;
            if encloses {
                break;
            }
            stack.pop();
        }
        if let Some(&top) = stack.last() {
            let (ckind, cname) = (defs[top].kind, defs[top].name.clone());
            let d = &mut defs[i];
            d.container = Some(cname);
            if d.kind == Kind::Function && matches!(ckind, Kind::Class | Kind::Interface) {
                d.kind = Kind::Method;
            }
        }
        stack.push(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def<'a>(s: &'a FileSymbols, name: &str) -> &'a RawDef {
        s.defs.iter().find(|d| d.name == name).unwrap_or_else(|| panic!("no definition of {name}: {:?}", s.defs))
    }

    #[test]
    fn python_functions_classes_methods() {
        let src =
            b"import os\n\nclass Foo:\n    def bar(self):\n        return helper(1)\n\ndef helper(x):\n    return x\n";
        let s = extract(Lang::Python, src);
        assert!(s.parsed);
        let foo = def(&s, "Foo");
        assert_eq!(foo.kind, Kind::Class);
        assert_eq!(foo.line, 3);
        assert_eq!(&src[foo.name_start as usize..foo.name_end as usize], b"Foo");
        let bar = def(&s, "bar");
        assert_eq!(bar.kind, Kind::Method);
        assert_eq!(bar.container.as_deref(), Some("Foo"));
        assert_eq!(def(&s, "helper").kind, Kind::Function);
        assert!(s.refs.iter().any(|r| r.name == "helper" && r.line == 5));
    }

    #[test]
    fn c_prototype_is_not_a_definition() {
        let src = b"int add(int a, int b);\nstatic int *mk(void)\n{\n\treturn 0;\n}\nint add(int a, int b)\n{\n\treturn mk() + a + b;\n}\nstruct point { int x; };\n#define MAX(a, b) ((a) > (b))\n";
        let s = extract(Lang::C, src);
        let adds: Vec<_> = s.defs.iter().filter(|d| d.name == "add").collect();
        assert_eq!(adds.len(), 1);
        assert_eq!(adds[0].line, 6);
        assert_eq!(def(&s, "mk").line, 2);
        assert_eq!(def(&s, "point").kind, Kind::Class);
        assert_eq!(def(&s, "x").container.as_deref(), Some("point"));
        assert_eq!(def(&s, "MAX").kind, Kind::Function);
        assert!(s.refs.iter().any(|r| r.name == "add" && r.line == 1));
        assert!(s.refs.iter().any(|r| r.name == "mk" && r.line == 8));
    }

    /// The tree-sitter route, whatever the file's size.
    fn parsed(content: &[u8]) -> FileSymbols {
        let s = parse_tags(Lang::C.tags().unwrap(), content);
        assert!(s.parsed);
        s
    }

    fn same_as_parsed(content: &[u8]) {
        let fast = defines_only(content).expect("a defines-only file");
        let slow = parsed(content);
        assert_eq!(fast.defs, slow.defs);
        assert_eq!(fast.refs, slow.refs);
    }

    #[test]
    fn defines_only_files_match_the_parse() {
        let header = b"/*\n * Copyright\n */\n\n#ifndef _gc_H\n#define _gc_H\n\n// registers\n#define mmGRBM_CNTL   0x2000\n#define mmGRBM_CNTL_BASE_IDX 0\r\n  #define\tREG_FIELD(x) ((x) << 4)\n#define EMPTY\n/* one */ \n#endif /* _gc_H */\n";
        same_as_parsed(header);
        let mut big = Vec::new();
        for i in 0..3000 {
            big.extend_from_slice(format!("#define regX_{i}_MASK 0x{i:08x}L\n").as_bytes());
        }
        assert!(big.len() >= DEFINES_MIN_BYTES);
        same_as_parsed(&big);
        let s = extract(Lang::C, &big);
        assert_eq!(s.defs.len(), 3000);
        assert_eq!(s.defs[2999].kind, Kind::Constant);
    }

    #[test]
    fn anything_else_goes_to_the_parser() {
        for src in [
            &b"#define A 1\nint x;\n"[..],
            b"#define A(x) \\\n  (x)\n",
            b"#define A 1 /* open\n  more */\n",
            b"#define A \"s\"\n",
            b"# define A 1\n",
            b"#define 9A 1\n",
            b"#include <x.h>\n#define A 1\n",
            b"/* open\n",
            b"#ifndef A\n#define A 1\n#endif /* open\n */\n",
            b"#ifndef A\n#define A 1\n",
            b"#define A 1\n#endif\n",
            b"#ifndef A\n#define A 1\n#endifX\n",
        ] {
            assert!(defines_only(src).is_none(), "{:?}", String::from_utf8_lossy(src));
        }
    }

    /// `LENS_DEFINES_DIR=<dir> cargo test --lib defines_only_matches_in -- --ignored`
    /// compares the two routes on every defines-only C header under a tree
    /// (run on the kernel's `amd/include/asic_reg`).
    #[test]
    #[ignore]
    fn defines_only_matches_in_a_tree() {
        let dir = std::env::var("LENS_DEFINES_DIR").expect("LENS_DEFINES_DIR");
        let (mut checked, mut other) = (0, 0);
        let mut stack = vec![std::path::PathBuf::from(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "h") {
                    let content = std::fs::read(&p).unwrap();
                    if defines_only(&content).is_some() {
                        same_as_parsed(&content);
                        checked += 1;
                    } else {
                        other += 1;
                    }
                }
            }
        }
        eprintln!("{checked} defines-only headers match the parse; {other} others");
        assert!(checked > 0);
    }

    #[test]
    fn every_language_finds_a_definition() {
        let cases: &[(Lang, &str, &str)] = &[
            (Lang::Rust, "fn alpha() {}\nstruct Beta;\n", "alpha"),
            (Lang::Cpp, "namespace ns { class Gamma { void go() {} }; }\nint Gamma::run() { return 0; }\n", "Gamma"),
            (Lang::Go, "package p\nfunc Delta() {}\n", "Delta"),
            (Lang::Java, "class Eps { void run() {} }\n", "Eps"),
            (Lang::JavaScript, "function zeta() {}\nclass Eta {}\n", "zeta"),
            (Lang::TypeScript, "interface Theta { x: number }\nfunction iota(): void {}\n", "Theta"),
            (Lang::Tsx, "function Kappa() { return <div/>; }\n", "Kappa"),
            (Lang::Ruby, "class Lam\n  def mu\n  end\nend\n", "mu"),
            (Lang::Php, "<?php\nfunction nu() {}\nclass Xi {}\n", "nu"),
        ];
        for (lang, src, name) in cases {
            let s = extract(*lang, src.as_bytes());
            assert!(s.defs.iter().any(|d| d.name == *name), "{lang:?}: no {name} in {:?}", s.defs);
        }
    }
}
