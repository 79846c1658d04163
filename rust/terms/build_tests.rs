//! The build's route to the term files: definitions taken from the prepared
//! symbols (not the written file), and the symbol file written beside the
//! term files. Both must give exactly what the file route gives, and a
//! failure on either side must come back as the error it is.

use std::path::{Path, PathBuf};

use super::*;
use crate::engine::{Engine, EngineFiles};
use crate::error::Error;
use crate::index::build::BuildOptions;
use crate::index::progress::Clock;
use crate::index::{Companion, Index};
use crate::symbols::extract::{FileSymbols, RawDef};
use crate::symbols::hooks;
use crate::symbols::store::Builder;
use crate::symbols::{Kind, SymbolOptions};
use crate::test_tree::write_tree;

fn tree() -> Vec<(&'static str, String)> {
    let mut files = vec![
        ("pkg/http.py", "class Client:\n    def get(self, url):\n        return url\n\ndef parse_http_date(s):\n    \"\"\"Parse a date.\"\"\"\n    return s\n".to_string()),
        ("pkg/dup.py", "def parse_http_date(s):\n    return None\n\nclass Client:\n    pass\n".to_string()),
        ("src/lib.rs", "pub struct Reader { n: u32 }\nimpl Reader {\n    pub fn read_all(&self) -> u32 { self.n }\n}\nfn helper() {}\n".to_string()),
        ("drivers/x.c", "#define MAX_ITEMS 4\nstruct item { int n; };\nstatic int item_count(struct item *it) { return it->n; }\nint main(void) { return item_count(0); }\n".to_string()),
        ("web/app.js", "function render(x) { return x; }\nclass View { show() { return render(1); } }\n".to_string()),
        ("notes.txt", "no definitions here, only words\n".to_string()),
    ];
    // Enough files of one language that the symbol table has many names.
    for i in 0..40 {
        let path: &'static str = Box::leak(format!("gen/m{i}.py").into_boxed_str());
        files.push((path, format!("def f{i}(a):\n    return a\n\nclass K{i}:\n    def m(self):\n        pass\n")));
    }
    files
}

fn names_of(dir: &Path) -> Vec<String> {
    let snap = Index::open(dir).unwrap().snapshot();
    snap.manifest.segments.iter().map(|s| s.name.clone()).collect()
}

/// The test tree written under `tmp` and built: the index directory and
/// its engine.
fn built(tmp: &Path) -> (PathBuf, Engine) {
    let (root, dir) = (tmp.join("root"), tmp.join("idx"));
    write_tree(&root, tree());
    let engine = Engine::build(&root, &dir, &BuildOptions::default(), &mut |_, _, _| {}).unwrap();
    (dir, engine)
}

#[test]
fn prepared_definitions_are_the_symbol_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = built(tmp.path());
    let names = names_of(&dir);
    let segs = open_segments(&dir, &names).unwrap();

    // Extracted, as a build does.
    let (_, prepared) = hooks::prepare_build(
        &dir,
        9,
        &names,
        &SymbolOptions::default(),
        None,
        &mut |_, _, _| {},
        &mut Clock::default(),
    )
    .unwrap();
    let from_prepared = defs_by_file_prepared(&prepared, &segs);
    let twice = open_segments(&dir, &[names.clone(), names.clone()].concat()).unwrap();
    let prepared_twice = defs_by_file_prepared(&prepared, &twice);
    prepared.write(&dir.join("sym-check.lens")).unwrap();
    let set = SymbolSet::open(&dir, "sym-check.lens", &[]).unwrap();
    let from_file = defs_by_file(&set, &segs);
    assert_eq!(format!("{from_prepared:?}"), format!("{from_file:?}"));
    // Two segments (the same one twice: each path in both), filled side by side.
    let (a, b) = (prepared_twice, defs_by_file(&set, &twice));
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    assert_eq!(format!("{:?}", a[a.len() - 1]), format!("{:?}", from_file[0]));
    let all: Vec<&DefIn> = from_file.iter().flatten().flatten().collect();
    assert!(all.len() > 80, "{} definitions", all.len());
    assert!(all.iter().any(|d| d.container.is_some()));

    // By hand: records out of order, one definition found twice (the writer
    // keeps the first in its order, whatever the kind, before the
    // document-kind filter), a precise record, a file no segment holds.
    let def = |name: &str, kind, start: u32, def_start: u32, container: Option<&str>| RawDef {
        name: name.into(),
        kind,
        name_start: start,
        name_end: start + name.len() as u32,
        def_start,
        def_end: start + 40,
        line: 1 + start / 10,
        container: container.map(str::to_string),
    };
    let mut b = Builder::default();
    let syms = |defs| FileSymbols { defs, refs: Vec::new(), parsed: true };
    b.add_extracted(
        "pkg/http.py",
        None,
        &syms(vec![
            def("zeta", Kind::Function, 50, 46, None),
            def("get", Kind::Method, 20, 16, Some("Client")),
            def("get", Kind::Variable, 20, 12, None), // kept: starts earlier; not a document
            def("alpha", Kind::Function, 30, 26, Some("Client")),
            def("alpha", Kind::Variable, 30, 27, None), // dropped: the function starts earlier
            def("Client", Kind::Class, 6, 0, None),
        ]),
    );
    b.add_extracted("elsewhere.py", None, &syms(vec![def("alpha", Kind::Function, 0, 0, None)]));
    b.add_extracted("pkg/dup.py", None, &syms(vec![def("alpha", Kind::Function, 4, 0, None)]));
    let (name, file) = (b.intern("alpha"), 0);
    let d = b.defs.iter().find(|d| d.name == name && d.file == file).copied().unwrap();
    b.defs.push(DefRec { precise: true, name_start: 31, ..d });
    let prepared = b.prepare();
    let from_prepared = defs_by_file_prepared(&prepared, &segs);
    prepared.write(&dir.join("sym-hand.lens")).unwrap();
    let from_file = defs_by_file(&SymbolSet::open(&dir, "sym-hand.lens", &[]).unwrap(), &segs);
    assert_eq!(format!("{from_prepared:?}"), format!("{from_file:?}"));
    let http = segs.iter().enumerate().find_map(|(s, seg)| {
        (0..seg.nfiles()).find(|&id| seg.path(id) == "pkg/http.py").map(|id| &from_file[s][id as usize])
    });
    let got: Vec<(&str, u32, Option<&str>)> =
        http.unwrap().iter().map(|d| (d.name.as_str(), d.name_start, d.container.as_deref())).collect();
    assert_eq!(
        got,
        [("Client", 6, None), ("alpha", 31, Some("Client")), ("alpha", 30, Some("Client")), ("zeta", 50, None)]
    );
}

#[test]
fn a_build_writes_what_the_file_route_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, engine) = built(tmp.path());
    let snap = engine.snapshot();
    let names = names_of(&dir);
    let sym = snap.manifest.symbols.clone().unwrap();
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let built_sym = read(&sym);
    let built_terms: Vec<Vec<u8>> =
        names.iter().map(|n| read(&format!("{}.terms", n.trim_end_matches(".lens")))).collect();
    drop((engine, snap));

    // The route before: the symbols extracted after the reading, the symbol
    // file written, then read back for the terms.
    let mut clock = Clock::default();
    let generation = sym.trim_start_matches("sym-").trim_end_matches(".lens").parse().unwrap();
    let again =
        hooks::for_build(&dir, generation, &names, &SymbolOptions::default(), None, &mut |_, _, _| {}, &mut clock)
            .unwrap();
    assert_eq!(again, sym);
    assert_eq!(read(&sym), built_sym, "the symbol file");
    build_for_segments(&dir, &names, Some((&sym, &[])), &mut |_, _, _| {}).unwrap();
    for (n, bytes) in names.iter().zip(&built_terms) {
        assert_eq!(&read(&format!("{}.terms", n.trim_end_matches(".lens"))), bytes, "{n}'s term file");
    }
    assert!(built_terms.iter().map(Vec::len).sum::<usize>() > 0);
}

#[test]
fn a_failed_symbol_file_fails_the_commit_after_the_terms_ran() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = built(tmp.path());
    let names = names_of(&dir);
    // Generation 7's symbol file goes through `sym-000007.tmp`: a directory
    // there makes its write fail while the term files are written.
    std::fs::create_dir(dir.join("sym-000007.tmp")).unwrap();
    let mut phases = Vec::new();
    let files = EngineFiles::new(SymbolOptions::default());
    let err =
        files.on_build(&dir, 7, &names, None, &mut |p, _, _| phases.push(p.name())).expect_err("the commit fails");
    assert!(matches!(&err, Error::Io { path, .. } if path.ends_with("sym-000007.tmp")), "{err:?}");
    assert!(phases.contains(&"terms"), "the terms phase ran beside the writer");
    assert!(!dir.join("sym-000007.lens").exists());
}

#[test]
fn a_failed_term_file_fails_the_build_after_the_symbol_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = built(tmp.path());
    let names = names_of(&dir);
    // A directory where the last segment's term file goes.
    let last = dir.join(format!("{}.terms", names.last().unwrap().trim_end_matches(".lens")));
    std::fs::remove_file(&last).unwrap();
    std::fs::create_dir(&last).unwrap();
    let files = EngineFiles::new(SymbolOptions::default());
    let err = files.on_build(&dir, 7, &names, None, &mut |_, _, _| {}).expect_err("the terms phase fails");
    assert!(matches!(&err, Error::Io { path, .. } if path.starts_with(&last)), "{err:?}");
    // The writer beside it ran to its end (the index's clean-up removes it).
    assert!(dir.join("sym-000007.lens").is_file());
}

#[test]
fn symbols_extracted_batch_by_batch_while_reading_are_the_same_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = built(tmp.path());
    let names = names_of(&dir);
    let segs = open_segments(&dir, &names).unwrap();
    let mut files: Vec<(&str, &[u8])> =
        segs.iter().flat_map(|s| (0..s.nfiles()).map(move |id| (s.path(id), s.content(id)))).collect();
    let opts = SymbolOptions::default();
    let quiet = &mut |_: crate::index::progress::Phase, _, _| {};
    hooks::for_build(&dir, 3, &names, &opts, None, quiet, &mut Clock::default()).unwrap();
    // Reversed, in uneven batches from two threads at once, as the reading's
    // two assembling threads hand them over.
    files.reverse();
    let sink = EngineFiles::new(opts.clone()).read_sink().expect("a build extracts while reading");
    let (a, b) = files.split_at(files.len() / 3);
    std::thread::scope(|s| {
        s.spawn(|| a.chunks(5).for_each(|c| sink.batch(c)));
        s.spawn(|| b.chunks(7).for_each(|c| sink.batch(c)));
    });
    let mut phases = Vec::new();
    let extracted = hooks::Extractor::take(Some(sink));
    assert!(extracted.is_some());
    hooks::for_build(
        &dir,
        4,
        &names,
        &opts,
        extracted,
        &mut |p, d, t| phases.push((p.name(), d, t)),
        &mut Clock::default(),
    )
    .unwrap();
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    assert_eq!(read("sym-000003.lens"), read("sym-000004.lens"));
    // The symbols phase still reports, from 0 to its total, at once.
    assert_eq!(phases.len(), 2);
    assert!(phases[0].1 == 0 && phases[1].1 == phases[1].2 && phases[1].2 > 0, "{phases:?}");
}
