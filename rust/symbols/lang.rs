//! Languages: which one a path is in (by extension), and the tree-sitter tags
//! configuration for each, built once per process.
//!
//! Most languages use the tags query their grammar crate ships. C and C++ get
//! their own: the shipped queries tag every `function_declarator`, so a
//! prototype in a header would count as a definition and outrank the body
//! (the kernel has tens of thousands of those); here only a declarator under
//! a `function_definition` defines, and prototypes are references.

use std::sync::OnceLock;

use tree_sitter::Language;
use tree_sitter_tags::TagsConfiguration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Lang {
    Python = 1,
    Rust = 2,
    C = 3,
    Cpp = 4,
    Go = 5,
    Java = 6,
    JavaScript = 7,
    TypeScript = 8,
    Tsx = 9,
    Ruby = 10,
    Php = 11,
}

/// Stored in the symbol file for files in no supported language.
pub const NO_LANG: u8 = 0;

impl Lang {
    pub const ALL: [Lang; 11] = [
        Lang::Python,
        Lang::Rust,
        Lang::C,
        Lang::Cpp,
        Lang::Go,
        Lang::Java,
        Lang::JavaScript,
        Lang::TypeScript,
        Lang::Tsx,
        Lang::Ruby,
        Lang::Php,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Lang::Python => "python",
            Lang::Rust => "rust",
            Lang::C => "c",
            Lang::Cpp => "cpp",
            Lang::Go => "go",
            Lang::Java => "java",
            Lang::JavaScript => "javascript",
            Lang::TypeScript => "typescript",
            Lang::Tsx => "tsx",
            Lang::Ruby => "ruby",
            Lang::Php => "php",
        }
    }

    pub fn from_u8(v: u8) -> Option<Lang> {
        Lang::ALL.iter().copied().find(|l| *l as u8 == v)
    }

    /// The language of a path, from its extension.
    pub fn of_path(path: &str) -> Option<Lang> {
        let ext = crate::index::base_name(path).rsplit_once('.')?.1.to_ascii_lowercase();
        Some(match ext.as_str() {
            "py" | "pyi" | "pyw" => Lang::Python,
            "rs" => Lang::Rust,
            "c" | "h" => Lang::C,
            "cc" | "cpp" | "cxx" | "c++" | "hpp" | "hh" | "hxx" | "h++" | "ipp" => Lang::Cpp,
            "go" => Lang::Go,
            "java" => Lang::Java,
            "js" | "mjs" | "cjs" | "jsx" => Lang::JavaScript,
            "ts" | "mts" | "cts" => Lang::TypeScript,
            "tsx" => Lang::Tsx,
            "rb" | "rake" => Lang::Ruby,
            "php" => Lang::Php,
            _ => return None,
        })
    }

    /// The tags configuration, compiled on first use. `None` only if the
    /// query does not compile against the grammar (a unit test forbids that).
    pub fn tags(self) -> Option<&'static TagsConfiguration> {
        static CONFIGS: [OnceLock<Option<TagsConfiguration>>; 11] = [const { OnceLock::new() }; 11];
        CONFIGS[self as usize - 1].get_or_init(|| make_config(self)).as_ref()
    }
}

const C_TAGS: &str = r#"
(function_definition declarator: (function_declarator declarator: (identifier) @name)) @definition.function
(function_definition declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier) @name))) @definition.function
(function_definition declarator: (pointer_declarator declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier) @name)))) @definition.function
(struct_specifier name: (type_identifier) @name body: (_)) @definition.class
(union_specifier name: (type_identifier) @name body: (_)) @definition.class
(enum_specifier name: (type_identifier) @name body: (_)) @definition.enum
(type_definition declarator: (type_identifier) @name) @definition.type
(enumerator name: (identifier) @name) @definition.constant
(preproc_function_def name: (identifier) @name) @definition.macro
(preproc_def name: (identifier) @name) @definition.constant
(field_declaration declarator: (field_identifier) @name) @definition.field
(translation_unit (declaration declarator: (init_declarator declarator: (identifier) @name)) @definition.variable)
(declaration declarator: (function_declarator declarator: (identifier) @name)) @reference.declaration
(call_expression function: (identifier) @name) @reference.call
"#;

const CPP_TAGS: &str = r#"
(function_definition declarator: (function_declarator declarator: (field_identifier) @name)) @definition.method
(function_definition declarator: (function_declarator declarator: (qualified_identifier name: (identifier) @name))) @definition.method
(class_specifier name: (type_identifier) @name body: (_)) @definition.class
(namespace_definition name: (namespace_identifier) @name) @definition.module
(call_expression function: (field_expression field: (field_identifier) @name)) @reference.call
"#;

fn make_config(lang: Lang) -> Option<TagsConfiguration> {
    let (language, tags, locals): (Language, String, &str) = match lang {
        Lang::Python => (tree_sitter_python::LANGUAGE.into(), tree_sitter_python::TAGS_QUERY.into(), ""),
        Lang::Rust => (tree_sitter_rust::LANGUAGE.into(), tree_sitter_rust::TAGS_QUERY.into(), ""),
        Lang::C => (tree_sitter_c::LANGUAGE.into(), C_TAGS.into(), ""),
        Lang::Cpp => (tree_sitter_cpp::LANGUAGE.into(), format!("{C_TAGS}\n{CPP_TAGS}"), ""),
        Lang::Go => (tree_sitter_go::LANGUAGE.into(), tree_sitter_go::TAGS_QUERY.into(), ""),
        Lang::Java => (tree_sitter_java::LANGUAGE.into(), tree_sitter_java::TAGS_QUERY.into(), ""),
        Lang::JavaScript => (tree_sitter_javascript::LANGUAGE.into(), tree_sitter_javascript::TAGS_QUERY.into(), ""),
        // TypeScript's grammar extends JavaScript's and its tags query only
        // adds the TypeScript-specific patterns, so the two are combined.
        Lang::TypeScript => (
            tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            format!("{}\n{}", tree_sitter_javascript::TAGS_QUERY, tree_sitter_typescript::TAGS_QUERY),
            "",
        ),
        Lang::Tsx => (
            tree_sitter_typescript::LANGUAGE_TSX.into(),
            format!("{}\n{}", tree_sitter_javascript::TAGS_QUERY, tree_sitter_typescript::TAGS_QUERY),
            "",
        ),
        // Ruby's query filters locals (`#is-not? local`), so it needs the locals query.
        Lang::Ruby => {
            (tree_sitter_ruby::LANGUAGE.into(), tree_sitter_ruby::TAGS_QUERY.into(), tree_sitter_ruby::LOCALS_QUERY)
        }
        Lang::Php => (tree_sitter_php::LANGUAGE_PHP.into(), tree_sitter_php::TAGS_QUERY.into(), ""),
    };
    TagsConfiguration::new(language, &tags, locals).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tags_query_compiles() {
        for lang in Lang::ALL {
            assert!(lang.tags().is_some(), "tags query for {lang:?} does not compile");
        }
    }

    #[test]
    fn extensions() {
        assert_eq!(Lang::of_path("a/b/c.py"), Some(Lang::Python));
        assert_eq!(Lang::of_path("x.H"), Some(Lang::C));
        assert_eq!(Lang::of_path("Makefile"), None);
        assert_eq!(Lang::of_path("dir.d/README"), None);
    }
}
