//! Agreement of the C scanner (`symbols::c_scan`) with its oracle, the
//! tree-sitter route, over every C file (`.c`, `.h`) under a tree:
//!
//!     cargo bench --bench c_scan_agree -- DIR [--dump KIND] [--limit N]
//!
//! For each definition kind, precision and recall of the scanner's
//! (name, kind, line) triples against tree-sitter's, and how many of the
//! matched ones also have the same spans; the same for references
//! (name, line). Files the scanner declines (it returns `None`: the build
//! parses those) are counted apart and count as agreeing, since the build
//! gives them tree-sitter's output; files the `#define`-only line scan takes
//! are left out (both routes use it). Also the CPU time of each route.
//! `--dump KIND` prints the first N disagreements of that kind (`refs` for
//! references, `unsure` for the declined files).

use std::collections::HashMap;

use rayon::prelude::*;

use _lens::symbols::c_scan;
use _lens::symbols::extract::{defines_only, parse_tags, FileSymbols, DEFINES_MIN_BYTES};
use _lens::symbols::lang::Lang;
use _lens::symbols::Kind;

#[derive(Default, Clone)]
struct Counts {
    /// Per kind name: (tree-sitter's, the scanner's, both, both with the same spans).
    kinds: HashMap<&'static str, [u64; 4]>,
    refs: [u64; 3],
    files: u64,
    unsure: u64,
    unsure_bytes: u64,
    defines_only: u64,
    bytes: u64,
    ts_s: f64,
    scan_s: f64,
    dumps: Vec<String>,
}

fn merge(mut a: Counts, b: Counts) -> Counts {
    for (k, v) in b.kinds {
        let e = a.kinds.entry(k).or_default();
        for i in 0..4 {
            e[i] += v[i];
        }
    }
    for i in 0..3 {
        a.refs[i] += b.refs[i];
    }
    a.files += b.files;
    a.unsure += b.unsure;
    a.unsure_bytes += b.unsure_bytes;
    a.defines_only += b.defines_only;
    a.bytes += b.bytes;
    a.ts_s += b.ts_s;
    a.scan_s += b.scan_s;
    a.dumps.extend(b.dumps);
    a
}

fn compare(path: &str, ts: &FileSymbols, sc: &FileSymbols, dump: Option<&str>, c: &mut Counts) {
    type Key = (String, Kind, u32);
    let mut want: HashMap<Key, Vec<(u32, u32, u32, u32)>> = HashMap::new();
    for d in &ts.defs {
        want.entry((d.name.clone(), d.kind, d.line)).or_default().push((
            d.name_start,
            d.name_end,
            d.def_start,
            d.def_end,
        ));
        c.kinds.entry(d.kind.name()).or_default()[0] += 1;
    }
    for d in &sc.defs {
        let e = c.kinds.entry(d.kind.name()).or_default();
        e[1] += 1;
        let key = (d.name.clone(), d.kind, d.line);
        match want.get_mut(&key).filter(|v| !v.is_empty()) {
            Some(v) => {
                e[2] += 1;
                let span = (d.name_start, d.name_end, d.def_start, d.def_end);
                if let Some(at) = v.iter().position(|x| *x == span) {
                    e[3] += 1;
                    v.swap_remove(at);
                } else {
                    if dump == Some("span") {
                        c.dumps.push(format!(
                            "{path}:{} span {} {} scan {:?} ts {:?}",
                            d.line,
                            d.kind.name(),
                            d.name,
                            span,
                            v[0]
                        ));
                    }
                    v.pop();
                }
            }
            None => {
                if dump == Some(d.kind.name()) {
                    c.dumps.push(format!("{path}:{} extra {} {}", d.line, d.kind.name(), d.name));
                }
            }
        }
    }
    if let Some(k) = dump {
        for ((name, kind, line), v) in &want {
            if kind.name() == k {
                for _ in v {
                    c.dumps.push(format!("{path}:{line} missed {k} {name}"));
                }
            }
        }
    }
    let mut rwant: HashMap<(String, u32), u32> = HashMap::new();
    for r in &ts.refs {
        *rwant.entry((r.name.clone(), r.line)).or_default() += 1;
    }
    c.refs[0] += ts.refs.len() as u64;
    c.refs[1] += sc.refs.len() as u64;
    for r in &sc.refs {
        match rwant.get_mut(&(r.name.clone(), r.line)).filter(|n| **n > 0) {
            Some(n) => {
                *n -= 1;
                c.refs[2] += 1;
            }
            None => {
                if dump == Some("refs") {
                    c.dumps.push(format!("{path}:{} extra ref {}", r.line, r.name));
                }
            }
        }
    }
    if dump == Some("refs") {
        for ((name, line), n) in &rwant {
            if *n > 0 {
                c.dumps.push(format!("{path}:{line} missed ref {name}"));
            }
        }
    }
}

/// CPU time of the calling thread, in seconds.
fn cpu_s() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid clock id and a pointer to a live timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut dirs = Vec::new();
    let mut dump: Option<String> = None;
    let mut limit = 40usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--dump" => dump = it.next().cloned(),
            "--limit" => limit = it.next().and_then(|s| s.parse().ok()).unwrap_or(limit),
            "--bench" => {}
            _ => dirs.push(a.clone()),
        }
    }
    let config = Lang::C.tags().expect("C tags");
    if dump.as_deref() == Some("show") {
        // `--dump show FILE`: both routes' definitions and references of one file.
        for f in &dirs {
            let data = std::fs::read(f).expect("read");
            let ts = parse_tags(config, &data);
            let sc = c_scan::scan_or_why(&data);
            for d in &ts.defs {
                println!("ts   def {}:{} {} [{}..{}]", d.line, d.kind.name(), d.name, d.def_start, d.def_end);
            }
            for r in &ts.refs {
                println!("ts   ref {}: {}", r.line, r.name);
            }
            match sc {
                Ok(sc) => {
                    for d in &sc.defs {
                        println!("scan def {}:{} {} [{}..{}]", d.line, d.kind.name(), d.name, d.def_start, d.def_end);
                    }
                    for r in &sc.refs {
                        println!("scan ref {}: {}", r.line, r.name);
                    }
                }
                Err(e) => println!("scan declined: {e:?}"),
            }
        }
        return;
    }
    for dir in dirs {
        let mut files = Vec::new();
        for entry in ignore::WalkBuilder::new(&dir).build().flatten() {
            let p = entry.path();
            if p.is_file() && Lang::of_path(&p.to_string_lossy()) == Some(Lang::C) {
                files.push(p.to_path_buf());
            }
        }
        let dump = dump.as_deref();
        let c = files
            .par_iter()
            .map(|p| {
                let mut c = Counts::default();
                let Ok(data) = std::fs::read(p) else { return c };
                if data.len() >= DEFINES_MIN_BYTES && defines_only(&data).is_some() {
                    c.defines_only += 1;
                    return c;
                }
                c.files += 1;
                c.bytes += data.len() as u64;
                let t = cpu_s();
                let ts = parse_tags(config, &data);
                c.ts_s += cpu_s() - t;
                let t = cpu_s();
                let sc = c_scan::scan_or_why(&data);
                c.scan_s += cpu_s() - t;
                let path = p.to_string_lossy();
                match sc {
                    Ok(sc) => compare(&path, &ts, &sc, dump, &mut c),
                    Err((line, why)) => {
                        c.unsure += 1;
                        c.unsure_bytes += data.len() as u64;
                        if dump == Some("unsure") {
                            c.dumps.push(format!("{path}:{line}: unsure: {why}"));
                        }
                        compare(&path, &ts, &ts, None, &mut c);
                    }
                }
                c
            })
            .reduce(Counts::default, merge);
        let mut dumps = c.dumps.clone();
        dumps.sort();
        for d in dumps.iter().take(limit) {
            println!("{d}");
        }
        println!(
            "{dir}: {} C files ({:.1} MB), {} declined by the scanner ({:.2} % of files, {:.2} % of bytes), {} defines-only left out",
            c.files,
            c.bytes as f64 / 1e6,
            c.unsure,
            100.0 * c.unsure as f64 / c.files.max(1) as f64,
            100.0 * c.unsure_bytes as f64 / c.bytes.max(1) as f64,
            c.defines_only
        );
        println!(
            "CPU (thread time): tree-sitter {:.2} s ({:.1} MB/s), scanner {:.2} s ({:.1} MB/s)",
            c.ts_s,
            c.bytes as f64 / 1e6 / c.ts_s,
            c.scan_s,
            c.bytes as f64 / 1e6 / c.scan_s
        );
        println!("| kind | tree-sitter | scanner | both | precision | recall | same spans |");
        println!("|---|---|---|---|---|---|---|");
        let mut kinds: Vec<_> = c.kinds.iter().collect();
        kinds.sort_by_key(|(k, _)| *k);
        let mut tot = [0u64; 4];
        for (k, v) in kinds {
            for i in 0..4 {
                tot[i] += v[i];
            }
            row(k, v);
        }
        row("all definitions", &tot);
        let r = c.refs;
        println!(
            "| references | {} | {} | {} | {:.4} | {:.4} | |",
            r[0],
            r[1],
            r[2],
            r[2] as f64 / r[1].max(1) as f64,
            r[2] as f64 / r[0].max(1) as f64
        );
    }
}

fn row(k: &str, v: &[u64; 4]) {
    println!(
        "| {k} | {} | {} | {} | {:.4} | {:.4} | {:.4} |",
        v[0],
        v[1],
        v[2],
        v[2] as f64 / v[1].max(1) as f64,
        v[2] as f64 / v[0].max(1) as f64,
        v[3] as f64 / v[2].max(1) as f64
    );
}
