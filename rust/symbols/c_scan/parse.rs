//! The C scanner's parser: declarations, function definitions, struct /
//! union / enum bodies and references, over the lexer's tokens, with the
//! tree-sitter error recoveries the oracle showed on kernel code.

use super::lex::{Tok, IDENT, MEMBER};
use crate::symbols::extract::{FileSymbols, RawDef, RawRef};
use crate::symbols::Kind;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Ctx {
    /// File scope: declarations and function definitions.
    Top,
    /// A function body or any block in it: statements.
    Body,
    /// A struct or union body: field declarations.
    Fields,
}

pub(super) struct Parser<'a> {
    pub(super) src: &'a [u8],
    pub(super) t: Vec<Tok>,
    pub(super) i: usize,
    pub(super) out: FileSymbols,
    /// Why and where (line) the scanner gave up on the file.
    pub(super) unsure: Option<(u32, &'static str)>,
    /// Token ranges (open, close) of enum bodies and initialiser lists.
    pub(super) quiet: Vec<(usize, usize)>,
    /// The first token of the last function header, past leading macros.
    pub(super) header_start: usize,
    /// Blocks open around the current token.
    pub(super) nesting: u32,
}

/// Deepest nesting of blocks the scanner follows.
const MAX_NESTING: u32 = 200;

/// Declaration keywords that are neither a type nor a declarator.
fn is_modifier(w: &[u8]) -> bool {
    matches!(
        w,
        b"static"
            | b"extern"
            | b"const"
            | b"volatile"
            | b"inline"
            | b"register"
            | b"auto"
            | b"typedef"
            | b"restrict"
            | b"_Atomic"
            | b"_Noreturn"
            | b"noreturn"
            | b"__inline"
            | b"__inline__"
            | b"__forceinline"
            | b"thread_local"
            | b"__thread"
            | b"__extension__"
            | b"constexpr"
            | b"__restrict"
            | b"__restrict__"
            | b"__volatile__"
            | b"_Nonnull"
            | b"__unaligned"
            | b"_unaligned"
            | b"__cdecl"
            | b"__stdcall"
            | b"__fastcall"
            | b"__thiscall"
            | b"__vectorcall"
            | b"__clrcall"
    )
}

/// Keywords that take a parenthesised argument list (attributes): their
/// parentheses are skipped as a unit.
fn is_attribute(w: &[u8]) -> bool {
    matches!(
        w,
        b"__attribute__" | b"__attribute" | b"__declspec" | b"alignas" | b"_Alignas" | b"__asm__" | b"__asm" | b"asm"
    )
}

fn is_primitive(w: &[u8]) -> bool {
    matches!(
        w,
        b"void"
            | b"char"
            | b"int"
            | b"float"
            | b"double"
            | b"bool"
            | b"short"
            | b"long"
            | b"signed"
            | b"unsigned"
            | b"size_t"
            | b"ssize_t"
            | b"ptrdiff_t"
            | b"intptr_t"
            | b"uintptr_t"
            | b"int8_t"
            | b"int16_t"
            | b"int32_t"
            | b"int64_t"
            | b"uint8_t"
            | b"uint16_t"
            | b"uint32_t"
            | b"uint64_t"
            | b"char8_t"
            | b"char16_t"
            | b"char32_t"
            | b"char64_t"
            | b"charptr_t"
            | b"max_align_t"
            | b"nullptr_t"
    )
}

/// Identifiers followed by `(` that are not calls.
fn is_not_call(w: &[u8]) -> bool {
    matches!(
        w,
        b"if"
            | b"while"
            | b"for"
            | b"switch"
            | b"return"
            | b"sizeof"
            | b"offsetof"
            | b"_Alignof"
            | b"__alignof__"
            | b"__alignof"
            | b"_alignof"
            | b"alignof"
            | b"_Generic"
            | b"defined"
            | b"case"
            | b"do"
            | b"else"
            | b"goto"
            | b"__try"
            | b"__except"
            | b"__finally"
            | b"__leave"
    ) || is_attribute(w)
        || is_modifier(w)
        || is_primitive(w)
        || matches!(w, b"struct" | b"union" | b"enum")
}

impl Parser<'_> {
    fn text(&self, i: usize) -> &[u8] {
        let t = &self.t[i];
        &self.src[t.start as usize..t.end as usize]
    }

    fn kind(&self, i: usize) -> u8 {
        self.t.get(i).map_or(0, |t| t.kind)
    }

    fn is_word(&self, i: usize, w: &[u8]) -> bool {
        self.kind(i) == IDENT && self.text(i) == w
    }

    fn name(&self, i: usize) -> Option<String> {
        std::str::from_utf8(self.text(i)).ok().map(str::to_string)
    }

    fn def(&mut self, name_tok: usize, kind: Kind, start: u32, end: u32) {
        let Some(name) = self.name(name_tok) else { return };
        let t = self.t[name_tok];
        self.out.defs.push(RawDef {
            name,
            kind,
            name_start: t.start,
            name_end: t.end,
            def_start: start.min(t.start),
            def_end: end.max(t.end),
            line: t.line,
            container: None,
        });
    }

    fn give_up(&mut self, why: &'static str) {
        if self.unsure.is_none() {
            let line = self.t.get(self.i.min(self.t.len().saturating_sub(1))).map_or(0, |t| t.line);
            self.unsure = Some((line, why));
        }
    }

    fn reference(&mut self, tok: usize) {
        let Some(name) = self.name(tok) else { return };
        let t = self.t[tok];
        self.out.refs.push(RawRef { name, start: t.start, end: t.end, line: t.line });
    }

    /// The index of the token closing the group opened at `open`.
    fn close_of(&self, open: usize) -> Option<usize> {
        let mut depth = 0i32;
        for j in open..self.t.len() {
            match self.t[j].kind {
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(j);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// Items of a block (or the file) up to its closing `}` (consumed).
    pub(super) fn items(&mut self, ctx: Ctx) {
        // Blocks recurse: a pathological nesting goes to the parser rather
        // than overflowing a thread's stack.
        if self.nesting >= MAX_NESTING {
            self.give_up("nesting too deep");
            return;
        }
        self.nesting += 1;
        self.block(ctx);
        self.nesting -= 1;
    }

    fn block(&mut self, ctx: Ctx) {
        while self.i < self.t.len() && self.unsure.is_none() {
            if self.kind(self.i) == b'}' {
                if ctx == Ctx::Top {
                    self.give_up("stray }");
                } else {
                    self.i += 1;
                }
                return;
            }
            match ctx {
                Ctx::Body => self.statement_tokens(),
                _ => self.declaration(ctx),
            }
        }
        if ctx != Ctx::Top {
            self.give_up("eof in block");
        }
    }

    /// Expression tokens in a body: calls, and struct / enum definitions
    /// (a body's blocks just nest).
    fn statement_tokens(&mut self) {
        let i = self.i;
        match self.kind(i) {
            b'{' => {
                self.i += 1;
                self.items(Ctx::Body);
            }
            IDENT => {
                let w = self.text(i);
                if matches!(w, b"struct" | b"union" | b"enum") {
                    if let Some(open) = self.tagged_body(i) {
                        self.aggregate(i, open);
                        return;
                    }
                }
                self.expression_ident(i);
                self.i += 1;
            }
            _ => self.i += 1,
        }
    }

    /// An identifier in an expression: a call when `(` follows.
    fn expression_ident(&mut self, i: usize) {
        if self.kind(i + 1) == b'(' && (i == 0 || self.kind(i - 1) != MEMBER) && !is_not_call(self.text(i)) {
            self.reference(i);
        }
    }

    /// For `struct|union|enum` at `i`: the index of its body's `{` if it has
    /// one (`struct name {`, `struct {`, attributes allowed between).
    fn tagged_body(&self, i: usize) -> Option<usize> {
        let mut j = i + 1;
        loop {
            match self.kind(j) {
                b'{' => return Some(j),
                IDENT if is_attribute(self.text(j)) && self.kind(j + 1) == b'(' => j = self.close_of(j + 1)? + 1,
                IDENT => j += 1,
                b':' => {
                    // `enum name : type {`
                    j += 1;
                }
                _ => return None,
            }
            if j > i + 6 {
                return None;
            }
        }
    }

    /// A struct, union or enum with a body: the keyword at `kw`, its `{` at
    /// `open`. Records it (when named) and its members; leaves `self.i`
    /// after its `}`.
    fn aggregate(&mut self, kw: usize, open: usize) {
        let is_enum = self.is_word(kw, b"enum");
        // The name is the last identifier before the body that is not an
        // attribute's (tree-sitter: `name: (type_identifier)`).
        let name = (kw + 1..open).rev().find(|&j| self.kind(j) == IDENT && !is_attribute(self.text(j)));
        let name = name.filter(|&j| j == kw + 1 || self.kind(j - 1) == IDENT);
        self.i = open + 1;
        if is_enum {
            self.enumerators();
            self.quiet.push((open, self.i - 1));
        } else {
            self.items(Ctx::Fields);
        }
        if self.unsure.is_some() {
            return;
        }
        let end = self.t[self.i - 1].end;
        if let Some(n) = name {
            let kind = if is_enum { Kind::Enum } else { Kind::Class };
            self.def(n, kind, self.t[kw].start, end);
        }
    }

    /// An enum's body, after its `{`, through its `}`.
    fn enumerators(&mut self) {
        loop {
            let i = self.i;
            match self.kind(i) {
                0 => {
                    self.give_up("eof in enum");
                    return;
                }
                b'}' => {
                    self.i += 1;
                    return;
                }
                b',' => self.i += 1,
                IDENT => {
                    // `NAME [= value]` up to the next `,` or `}` at depth 0.
                    let mut j = i + 1;
                    let mut last = i;
                    while !matches!(self.kind(j), b',' | b'}' | 0) {
                        if matches!(self.kind(j), b'(' | b'[' | b'{') {
                            let Some(c) = self.close_of(j) else {
                                self.give_up("unbalanced enumerator");
                                return;
                            };
                            for k in j..c {
                                if self.kind(k) == IDENT {
                                    self.expression_ident(k);
                                }
                            }
                            j = c;
                        } else if self.kind(j) == IDENT {
                            self.expression_ident(j);
                        }
                        last = j;
                        j += 1;
                    }
                    self.def(i, Kind::Constant, self.t[i].start, self.t[last].end);
                    self.i = j;
                }
                _ => {
                    self.give_up("odd enumerator");
                    return;
                }
            }
        }
    }

    /// One declaration (or function definition, or statement at file scope)
    /// in `ctx` (Top or Fields).
    fn declaration(&mut self, ctx: Ctx) {
        let s = self.i;
        // Tokens of the declaration at depth 0 of braces; struct bodies and
        // initialiser braces are skipped (their insides recorded on the way).
        let mut toks: Vec<usize> = Vec::new();
        let mut depth = 0i32;
        let mut in_init = false;
        loop {
            let i = self.i;
            let k = self.kind(i);
            if k == 0 {
                // The file ends inside a declaration.
                if !toks.is_empty() {
                    self.give_up("eof in declaration");
                }
                return;
            }
            if depth == 0 && k == b';' {
                self.i += 1;
                break;
            }
            if depth == 0 && k == b'}' {
                self.give_up("} in declaration");
                return;
            }
            if k == IDENT && matches!(self.text(i), b"struct" | b"union" | b"enum") {
                if let Some(open) = self.tagged_body(i) {
                    // The `{` stays as a marker that the type had a body.
                    toks.extend(i..=open);
                    self.aggregate(i, open);
                    if self.unsure.is_some() {
                        return;
                    }
                    continue;
                }
            }
            if k == b'{' {
                if in_init || (toks.last().is_some_and(|&l| self.kind(l) == b'=')) {
                    // An initialiser list: its calls are references.
                    let Some(c) = self.close_of(i) else {
                        self.give_up("unbalanced initialiser");
                        return;
                    };
                    for j in i..c {
                        if self.kind(j) == IDENT {
                            self.expression_ident(j);
                        }
                    }
                    self.quiet.push((i, c));
                    self.i = c + 1;
                    continue;
                }
                if depth == 0 {
                    self.function_or_block(ctx, s, &toks);
                    return;
                }
            }
            match k {
                b'(' | b'[' => depth += 1,
                b')' | b']' => depth -= 1,
                b'=' if depth == 0 => in_init = true,
                b',' if depth == 0 => in_init = false,
                _ => {}
            }
            toks.push(i);
            self.i += 1;
        }
        self.declarators(ctx, s, &toks);
    }

    /// A `{` after the tokens of a file-scope item: a function definition's
    /// body (the header has a declarator `name(...)`), else a stray block.
    fn function_or_block(&mut self, ctx: Ctx, s: usize, toks: &[usize]) {
        let open = self.i;
        let name = if ctx == Ctx::Top { self.function_name(toks) } else { None };
        // The header's calls: macros before it (`__printf(2, 3)`), after
        // its parameters (`__acquires(x)`), or all of it when it is a
        // macro invocation followed by a block (`SYSCALL_DEFINE1(...)`).
        let params_end = name.and_then(|n| self.close_of(n + 1)).unwrap_or(0);
        for (q, &t) in toks.iter().enumerate() {
            let before = name.is_some_and(|n| t < n);
            if self.kind(t) == IDENT && (name.is_none() || before || t > params_end) {
                if name.is_none() && q > 0 && ctx == Ctx::Top && self.kind(toks[0]) != IDENT {
                    continue;
                }
                self.expression_ident(t);
            }
        }
        self.i = open + 1;
        self.items(Ctx::Body);
        if self.unsure.is_some() {
            return;
        }
        if let Some(n) = name {
            let end = self.t[self.i - 1].end;
            // The definition starts after any leading macro invocation.
            let first = toks.iter().copied().find(|&t| t >= self.header_start).unwrap_or(s);
            self.def(n, Kind::Function, self.t[first].start, end);
        }
    }

    /// The declarator name of a function definition's header: the type, then
    /// up to two `*`, then `name (...)`.
    fn function_name(&mut self, toks: &[usize]) -> Option<usize> {
        // Macro invocations before the specifiers (`__printf(2, 3) static
        // void f(...)`, or a list macro with no `;` after it).
        let mut toks = toks;
        while toks.len() > 2
            && self.kind(toks[0]) == IDENT
            && self.kind(toks[1]) == b'('
            && !is_attribute(self.text(toks[0]))
        {
            let c = self.close_of(toks[1])?;
            let rest = toks.iter().position(|&t| t > c)?;
            if !toks[rest..].iter().any(|&t| self.kind(t) == b'(') {
                break;
            }
            toks = &toks[rest..];
        }
        self.header_start = toks.first().copied().unwrap_or(0);
        let mut p = self.specifiers(toks)?;
        let mut stars = 0;
        // Macros between the type and the name (`int __init f(void)`).
        while p + 1 < toks.len() && !(self.kind(toks[p]) == IDENT && self.kind(toks[p + 1]) == b'(') {
            match self.kind(toks[p]) {
                b'*' => stars += 1,
                IDENT => {}
                _ => return None,
            }
            p += 1;
        }
        if stars > 2 || p + 1 >= toks.len() {
            return None;
        }
        Some(toks[p])
    }

    /// The index in `toks` just after the declaration specifiers (the type
    /// and its modifiers), or `None` when there is no type.
    fn specifiers(&self, toks: &[usize]) -> Option<usize> {
        let mut p = 0;
        let mut typed = false;
        while p < toks.len() {
            let t = toks[p];
            if self.kind(t) != IDENT {
                break;
            }
            let w = self.text(t);
            if is_modifier(w) {
                p += 1;
            } else if is_attribute(w) {
                if p + 1 < toks.len() && self.kind(toks[p + 1]) == b'(' {
                    let c = self.close_of(toks[p + 1])?;
                    p = toks.iter().position(|&x| x > c).unwrap_or(toks.len());
                } else {
                    p += 1;
                }
            } else if is_primitive(w) {
                typed = true;
                p += 1;
            } else if matches!(w, b"struct" | b"union" | b"enum") {
                if typed {
                    break;
                }
                typed = true;
                p += 1;
                // Its name (a body, if any, was taken out of `toks`), or the
                // attributes before it.
                while p < toks.len() && self.kind(toks[p]) == IDENT {
                    let w = self.text(toks[p]);
                    if is_attribute(w) && p + 1 < toks.len() && self.kind(toks[p + 1]) == b'(' {
                        let c = self.close_of(toks[p + 1])?;
                        p = toks.iter().position(|&x| x > c).unwrap_or(toks.len());
                    } else {
                        p += 1;
                        break;
                    }
                }
                if p < toks.len() && self.kind(toks[p]) == b'{' {
                    p += 1;
                }
            } else if !typed {
                typed = true;
                p += 1;
            } else {
                break;
            }
        }
        typed.then_some(p)
    }

    /// The declarators of a declaration ended by `;`: typedef names, fields,
    /// file-scope initialised variables, prototypes, calls in initialisers.
    fn declarators(&mut self, ctx: Ctx, s: usize, toks: &[usize]) {
        let end = self.t[self.i - 1].end;
        let start = self.t[s].start;
        let is_typedef = toks.iter().any(|&t| self.is_word(t, b"typedef"));
        // `NAME(...)` with no type first is a call (`EXPORT_SYMBOL(x);`,
        // `__printf(1, 2) int f(...);`).
        if ctx != Ctx::Fields
            && toks.len() > 1
            && self.kind(toks[0]) == IDENT
            && self.kind(toks[1]) == b'('
            && !is_not_call(self.text(toks[0]))
        {
            for &t in toks {
                if self.kind(t) == IDENT {
                    self.expression_ident(t);
                }
            }
            return;
        }
        self.attribute_calls(toks);
        let Some(mut p) = self.specifiers(toks) else {
            // No type: a statement at file scope (`EXPORT_SYMBOL(x);`),
            // whose calls are references.
            for (q, &t) in toks.iter().enumerate() {
                if self.kind(t) == IDENT && (q == 0 || ctx == Ctx::Top) {
                    self.expression_ident(t);
                }
            }
            return;
        };
        // Each declarator up to `,` at depth 0.
        while p < toks.len() {
            let d0 = p;
            let mut depth = 0;
            let mut q = p;
            while q < toks.len() {
                match self.kind(toks[q]) {
                    b'(' | b'[' => depth += 1,
                    b')' | b']' => depth -= 1,
                    b',' if depth == 0 => break,
                    _ => {}
                }
                q += 1;
            }
            let decl = &toks[d0..q];
            self.declarator(ctx, decl, is_typedef, start, end);
            p = q + 1;
        }
    }

    fn declarator(&mut self, ctx: Ctx, decl: &[usize], is_typedef: bool, start: u32, end: u32) {
        if decl.is_empty() {
            return;
        }
        // Expressions: after `=`, inside `[...]`, after a bitfield's `:`.
        let mut expr = false;
        let mut brackets = 0;
        for (q, &t) in decl.iter().enumerate() {
            match self.kind(t) {
                b'=' | b':' => expr = true,
                b'[' => brackets += 1,
                b']' => brackets -= 1,
                IDENT if (expr || brackets > 0) && q > 0 => self.expression_ident(t),
                _ => {}
            }
        }
        // A run of identifiers: the declarator and macros around it
        // (`int __read_mostly x = 1;`, `spinlock_t lock __cacheline_aligned;`).
        let mut q = 0;
        while q < decl.len() && self.kind(decl[q]) == IDENT && is_modifier(self.text(decl[q])) {
            q += 1;
        }
        let r0 = q;
        while q < decl.len() && self.kind(decl[q]) == IDENT && !is_attribute(self.text(decl[q])) {
            q += 1;
        }
        let run = &decl[r0..q];
        let Some(&last) = run.last() else { return };
        let next = decl.get(q).map_or(0, |&t| self.kind(t));
        if next == b'(' {
            // A function declarator: a prototype is a reference; in a
            // typedef, `name MACRO(...)` is the name and a call.
            if is_typedef {
                if run.len() > 1 {
                    self.def(run[0], Kind::Type, start, end);
                    self.reference(last);
                }
            } else if ctx != Ctx::Fields {
                self.reference(last);
            }
            return;
        }
        if !(matches!(next, 0 | b'=' | b':') || next == IDENT) {
            return;
        }
        // tree-sitter recovers from the extra identifiers by skipping the
        // fewest characters: the longest stays the declarator.
        let mut first = run[0];
        for &t in &run[1..] {
            if self.t[t].end - self.t[t].start > self.t[first].end - self.t[first].start {
                first = t;
            }
        }
        if is_typedef {
            self.def(first, Kind::Type, start, end);
        } else if ctx == Ctx::Fields {
            self.def(first, Kind::Field, start, end);
        } else if ctx == Ctx::Top && next == b'=' && self.t[first].pp == 0 && run.len() == 1 {
            // With macros beside the name (`int x __read_mostly = 1;`)
            // tree-sitter's recovery keeps no variable, or another name.
            self.def(first, Kind::Variable, start, end);
        }
    }

    /// Calls inside `__attribute__((...))` arguments (`aligned(8)`).
    fn attribute_calls(&mut self, toks: &[usize]) {
        let mut q = 0;
        while q + 1 < toks.len() {
            let t = toks[q];
            if self.kind(t) == IDENT
                && self.kind(toks[q + 1]) == b'('
                && matches!(self.text(t), b"__attribute__" | b"__attribute" | b"__declspec")
            {
                let Some(c) = self.close_of(toks[q + 1]) else { return };
                for j in toks[q + 1]..c {
                    if self.kind(j) == IDENT {
                        self.expression_ident(j);
                    }
                }
                q = toks.iter().position(|&x| x > c).unwrap_or(toks.len());
            } else {
                q += 1;
            }
        }
    }
}
