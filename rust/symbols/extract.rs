//! Tree-sitter tags extraction of one file: definitions (name, kind, name
//! span, whole span, container) and references (name, span).
//!
//! Containers come from nesting: after the tags pass, definitions are sorted
//! by start and the innermost definition whose span holds another is its
//! container. A function whose container is a class is a method.

use std::cell::RefCell;

use tree_sitter_tags::TagsContext;

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
    let Some(config) = lang.tags() else {
        return FileSymbols::default();
    };
    // Spans are u32 in the symbol file; lens never indexes files this large.
    if content.len() >= u32::MAX as usize {
        return FileSymbols::default();
    }
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
