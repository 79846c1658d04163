//! Tree-sitter extraction throughput of the Rust route (the `tree-sitter-tags`
//! crate and the grammar crates), for BENCHMARKS.md's route comparison:
//!
//!     cargo bench --bench symbols_extract -- DIR [DIR...]
//!
//! Reads every file in a supported language under each DIR (ignore rules as
//! the index applies them), then times extraction on one thread and on all
//! of rayon's threads. Prints one JSON object per DIR.

use std::time::Instant;

use rayon::prelude::*;

use _lens::symbols::extract::extract;
use _lens::symbols::lang::Lang;

fn ext(l: Lang) -> &'static str {
    match l {
        Lang::Python => "py",
        Lang::Rust => "rs",
        Lang::C => "c",
        Lang::Cpp => "cpp",
        Lang::Go => "go",
        Lang::Java => "java",
        Lang::JavaScript => "js",
        Lang::TypeScript => "ts",
        Lang::Tsx => "tsx",
        Lang::Ruby => "rb",
        Lang::Php => "php",
    }
}

fn main() {
    let dirs: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    for dir in dirs {
        let mut files: Vec<(Lang, Vec<u8>)> = Vec::new();
        for entry in ignore::WalkBuilder::new(&dir).build().flatten() {
            let p = entry.path();
            if !p.is_file() {
                continue;
            }
            let Some(lang) = Lang::of_path(&p.to_string_lossy()) else {
                continue;
            };
            if let Ok(data) = std::fs::read(p) {
                if data.len() <= 1 << 20 {
                    files.push((lang, data));
                }
            }
        }
        let bytes: usize = files.iter().map(|(_, d)| d.len()).sum();
        let t = Instant::now();
        let mut defs = 0;
        let mut refs = 0;
        for (lang, data) in &files {
            let s = extract(*lang, data);
            defs += s.defs.len();
            refs += s.refs.len();
        }
        let one = t.elapsed().as_secs_f64();
        // Parsing alone (no tags query), to see where the time goes.
        let t = Instant::now();
        let mut parser = tree_sitter::Parser::new();
        for (lang, data) in &files {
            parser.set_language(&lang.tags().expect("config").language).expect("language");
            let _ = parser.parse(data, None);
        }
        let parse_only = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let par: usize = files.par_iter().map(|(lang, data)| extract(*lang, data).defs.len()).sum();
        let all = t.elapsed().as_secs_f64();
        assert_eq!(par, defs, "parallel extraction must agree with serial");
        // What the index build does: parallel extraction into a builder, then the symbol file.
        let named: Vec<(String, &[u8])> =
            files.iter().enumerate().map(|(i, (l, d))| (format!("f{i}.{}", ext(*l)), d.as_slice())).collect();
        let refs_: Vec<(&str, &[u8])> = named.iter().map(|(p, d)| (p.as_str(), *d)).collect();
        let t = Instant::now();
        let mut b = _lens::symbols::store::Builder::default();
        _lens::symbols::store::extract_into(&mut b, &refs_, &mut _lens::index::progress::silent());
        let into = t.elapsed().as_secs_f64();
        let tmp = std::env::temp_dir().join(format!("lens-symbols-bench-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).expect("temp dir");
        let t = Instant::now();
        let bytes_out = b.write(&tmp.join("sym.lens")).expect("write");
        let write = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let table = _lens::symbols::store::SymbolTable::open(&tmp.join("sym.lens")).expect("open");
        let open = t.elapsed().as_secs_f64();
        assert_eq!(table.ndefs() > 0, defs > 0);
        let _ = std::fs::remove_dir_all(&tmp);
        eprintln!(
            "{dir}: extract_into {into:.2}s, write {write:.2}s ({:.1} MB), open+validate {open:.2}s",
            bytes_out as f64 / 1e6
        );
        println!(
            "{{\"dir\": {dir:?}, \"files\": {}, \"mb\": {:.1}, \"defs\": {defs}, \"refs\": {refs}, \"one_thread_s\": {one:.2}, \"one_thread_mb_s\": {:.1}, \"parse_only_s\": {parse_only:.2}, \"threads\": {}, \"all_threads_s\": {all:.2}, \"all_threads_mb_s\": {:.1}}}",
            files.len(),
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / one,
            rayon::current_num_threads(),
            bytes as f64 / 1e6 / all
        );
    }
}
