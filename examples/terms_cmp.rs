//! The definition index beside its peer, tantivy (issue 10; BENCHMARKS.md, "tantivy against the
//! hand-built term files"). Takes the definition documents of an index's files under a path prefix
//! (from its segments and symbol file, as a build would), writes them as one lens term file and
//! times it, times the top-k of each question on it (BM25F alone: the ranking rules off, as tantivy
//! has none), and dumps the same documents and analysed questions for `benches/tantivy_cmp`, which
//! indexes and queries them with tantivy.
//!
//!     cargo run --release --example terms_cmp -- INDEX_DIR PREFIX QUERIES.jsonl OUT_DIR [K] [REPEAT]
//!
//! OUT_DIR gets `lens.terms`, `docs.txt` (one document a line: the five fields' terms, each repeated
//! by its count, tab-separated), `queries.txt` (each question's analysed terms) and `lens_top.txt`
//! (each question's top document ids, for an overlap check); the report is JSON on stdout.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use _lens::index::format::Segment;
use _lens::symbols::layers::SymbolSet;
use _lens::terms::docs::{file_docs, Doc, NFIELDS};
use _lens::terms::score::{top_k, NoBoost, ScoreStats, SegTerms, WeightedTerm};
use _lens::terms::store::{self, TermFile};
use _lens::terms::tokenize::{analyze_query, Analyzer};
use _lens::terms::{defs_by_file, term_weight};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        return Err("usage: terms_cmp INDEX_DIR PREFIX QUERIES.jsonl OUT_DIR [K] [REPEAT]".into());
    }
    let (dir, prefix, queries, out) = (Path::new(&args[1]), &args[2], Path::new(&args[3]), Path::new(&args[4]));
    let k: usize = args.get(5).map_or(Ok(50), |s| s.parse())?;
    let repeat: usize = args.get(6).map_or(Ok(2), |s| s.parse())?;
    std::fs::create_dir_all(out)?;
    let index = _lens::index::Index::open(dir)?;
    let snap = index.snapshot();
    let m = &snap.manifest;
    let set = match &m.symbols {
        Some(base) => Some(SymbolSet::open(dir, base, &m.symbol_deltas)?),
        None => None,
    };

    // The documents, as a build makes them (not timed against either engine: both get them).
    let t = Instant::now();
    let mut docs: Vec<(u32, Doc)> = Vec::new();
    let mut an = Analyzer::default();
    let mut next_file = 0u32;
    for entry in &m.segments {
        let seg = Segment::open(&dir.join(&entry.name))?;
        let ids: Vec<u32> = (0..seg.nfiles()).filter(|&id| seg.path(id).starts_with(prefix.as_str())).collect();
        let defs = set.as_ref().map(|s| defs_by_file(s, std::slice::from_ref(&seg))).unwrap_or_default();
        for id in ids {
            let path = seg.path(id);
            let d = defs.first().and_then(|f| f.get(id as usize)).map_or(&[][..], Vec::as_slice);
            let made = file_docs(&mut an, path, seg.content(id), d);
            docs.extend(made.iter().map(|doc| (next_file, doc.spelled(&an))));
            next_file += 1;
        }
    }
    let analyse_s = t.elapsed().as_secs_f64();

    let terms_path = out.join("lens.terms");
    let t = Instant::now();
    let bytes = store::write(&terms_path, &docs)?;
    let write_s = t.elapsed().as_secs_f64();

    let mut f = BufWriter::new(std::fs::File::create(out.join("docs.txt"))?);
    for (_, d) in &docs {
        for field in 0..NFIELDS {
            if field > 0 {
                f.write_all(b"\t")?;
            }
            let mut first = true;
            for (term, counts) in &d.terms {
                for _ in 0..counts[field] {
                    if !first {
                        f.write_all(b" ")?;
                    }
                    f.write_all(term.as_bytes())?;
                    first = false;
                }
            }
        }
        f.write_all(b"\n")?;
    }
    f.flush()?;
    let ndocs = docs.len();
    drop(docs);

    let tf = TermFile::open(&terms_path)?;
    let questions: Vec<String> = std::fs::read_to_string(queries)?
        .lines()
        .filter_map(|l| {
            let key = "\"query\": \"";
            let s = l.find(key)? + key.len();
            let e = s + l[s..].find("\", \"")?;
            Some(l[s..e].replace("\\\"", "\"").replace("\\\\", "\\"))
        })
        .collect();
    let all_live = |_: u32| true;
    let mut qf = BufWriter::new(std::fs::File::create(out.join("queries.txt"))?);
    let mut top_f = BufWriter::new(std::fs::File::create(out.join("lens_top.txt"))?);
    let mut lat = Vec::new();
    for round in 0..=repeat {
        for q in &questions {
            let t = Instant::now();
            let mut an = Analyzer::default();
            let analysed = analyze_query(&mut an, q);
            let weighted: Vec<WeightedTerm> = analysed
                .terms
                .iter()
                .filter_map(|term| {
                    let df = tf.postings(term)?.len() as u64;
                    Some(WeightedTerm { term: term.clone(), weight: term_weight(tf.ndocs() as u64, df) })
                })
                .collect();
            let segs = [SegTerms::new(&tf, &all_live, &weighted)];
            let top = top_k(&segs, &weighted, k, &mut NoBoost, &[], &mut ScoreStats::default());
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            // Round 0 warms the page cache and is not counted.
            if round == 0 {
                writeln!(qf, "{}", analysed.terms.join(" "))?;
                let ids: Vec<String> = top.iter().map(|s| s.doc.0.to_string()).collect();
                writeln!(top_f, "{}", ids.join(" "))?;
            } else {
                lat.push(ms);
            }
        }
    }
    qf.flush()?;
    top_f.flush()?;
    lat.sort_by(f64::total_cmp);
    println!(
        "{{\"engine\": \"lens\", \"prefix\": {prefix:?}, \"files\": {next_file}, \"docs\": {ndocs}, \
         \"analyse_s\": {analyse_s:.2}, \"write_s\": {write_s:.2}, \"bytes\": {bytes}, \"k\": {k}, \
         \"samples\": {}, \"p50_ms\": {:.3}, \"p95_ms\": {:.3}, \"p99_ms\": {:.3}, \"max_ms\": {:.3}}}",
        lat.len(),
        percentile(&lat, 50.0),
        percentile(&lat, 95.0),
        percentile(&lat, 99.0),
        lat.last().copied().unwrap_or(0.0)
    );
    Ok(())
}
