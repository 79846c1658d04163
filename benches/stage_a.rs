//! Criterion benchmarks of the native core, grouped by how often the needle
//! occurs (never / rare / common), each asserting its expected count so that
//! a benchmark is also a check. The corpus is generated: 2,000 files of
//! C-like text, 16 MiB in all.
//!
//!     cargo bench --bench stage_a

use std::fmt::Write as _;
use std::path::Path;

use _lens::{Engine, GrepOptions};
use criterion::{criterion_group, criterion_main, Criterion};

fn corpus(root: &Path) {
    for f in 0..2000 {
        let mut text = String::new();
        for l in 0..400 {
            let _ = writeln!(text, "static int handler_{f}_{l}(struct device *dev) {{ return dev->state + {l}; }}");
            if (f * 400 + l) % 997 == 0 {
                text.push_str("\tpm_runtime_resume(dev); /* PM_RESUME */\n");
            }
        }
        let dir = root.join(format!("d{}", f % 20));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("f{f}.c")), text).unwrap();
    }
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("src");
    corpus(&root);
    let engine = Engine::build(&root, &tmp.path().join("idx"), &Default::default(), &mut |_, _, _| {}).unwrap();
    let lit = GrepOptions::default();
    let re = GrepOptions { regex: true, ..Default::default() };
    let ci = GrepOptions { ignore_case: true, ..Default::default() };

    let mut g = c.benchmark_group("grep");
    for (name, pattern, opts, want) in [
        ("never", "NO_SUCH_SYMBOL", lit, 0usize),
        ("rare", "PM_RESUME", lit, 803),
        ("rare_casei", "pm_resume", ci, 803),
        ("common", "dev->state", lit, 800_000),
        ("regex_rare", r"PM_[A-Z]+", re, 803),
    ] {
        assert_eq!(engine.grep(pattern, opts, None, true).unwrap().len(), want, "{name}");
        g.bench_function(name, |b| b.iter(|| engine.grep(pattern, opts, None, true).unwrap().len()));
    }
    g.finish();

    let mut g = c.benchmark_group("search_k50");
    for (name, q) in [("never", "no_such_symbol"), ("rare", "pm_runtime_resume"), ("common", "handler")] {
        let want = if name == "never" { 0 } else { 50 };
        assert_eq!(engine.search(q, 50, None, true).unwrap().hits.len(), want, "{name}");
        g.bench_function(name, |b| b.iter(|| engine.search(q, 50, None, true).unwrap().hits.len()));
        g.bench_function(format!("{name}_reference"), |b| {
            b.iter(|| engine.search(q, 50, None, false).unwrap().hits.len())
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
