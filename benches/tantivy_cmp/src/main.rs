//! The definition index's peer: the documents and analysed questions `examples/terms_cmp.rs` dumped,
//! indexed and searched with tantivy (issue 10; BENCHMARKS.md, "tantivy against the hand-built term
//! files"). A workspace of its own, so the lens crate and `make test` never compile tantivy.
//!
//!     cargo run --release -- OUT_DIR [K] [REPEAT] [THREADS]
//!
//! Five text fields (name, signature, path, comment, body) of pre-analysed terms (whitespace-split,
//! so tantivy indexes exactly lens's stemmed sub-tokens), each question a disjunction of one term
//! query per term and field, boosted by lens's field weights (3, 2, 1.5, 0.3, 1): tantivy sums
//! per-field BM25 (k1 1.2, b 0.75, idf per field) where lens scores BM25F (one saturation over the
//! weighted fields, k1 1.5, b 0.9, idf per document); the closest tantivy allows without a custom
//! scorer. A pure disjunction of term queries runs tantivy's block-max WAND. Report: JSON on stdout.

use std::collections::HashSet;
use std::io::BufRead;
use std::path::Path;
use std::time::Instant;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST};
use tantivy::tokenizer::{TextAnalyzer, WhitespaceTokenizer};
use tantivy::{Index, IndexWriter, TantivyDocument, Term};

const FIELDS: [&str; 5] = ["name", "signature", "path", "comment", "body"];
const WEIGHTS: [f32; 5] = [3.0, 2.0, 1.5, 0.3, 1.0];

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

fn dir_bytes(p: &Path) -> u64 {
    std::fs::read_dir(p).map_or(0, |rd| rd.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
}

fn main() -> tantivy::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let out = Path::new(args.get(1).expect("usage: tantivy_cmp OUT_DIR [K] [REPEAT] [THREADS]"));
    let k: usize = args.get(2).map_or(50, |s| s.parse().expect("K"));
    let repeat: usize = args.get(3).map_or(2, |s| s.parse().expect("REPEAT"));
    let threads: usize = args.get(4).map_or(1, |s| s.parse().expect("THREADS"));

    let mut sb = Schema::builder();
    let indexing = TextFieldIndexing::default().set_tokenizer("ws").set_index_option(IndexRecordOption::WithFreqs);
    let fields: Vec<_> = FIELDS
        .iter()
        .map(|n| sb.add_text_field(n, TextOptions::default().set_indexing_options(indexing.clone())))
        .collect();
    let id = sb.add_u64_field("id", FAST);
    let schema = sb.build();
    let idx_dir = out.join("tantivy");
    let _ = std::fs::remove_dir_all(&idx_dir);
    std::fs::create_dir_all(&idx_dir)?;
    let index = Index::create_in_dir(&idx_dir, schema)?;
    index.tokenizers().register("ws", TextAnalyzer::builder(WhitespaceTokenizer::default()).build());

    let t = Instant::now();
    let mut writer: IndexWriter = index.writer_with_num_threads(threads, threads * 400_000_000)?;
    let docs = std::io::BufReader::new(std::fs::File::open(out.join("docs.txt"))?);
    let mut ndocs = 0u64;
    for line in docs.lines() {
        let line = line?;
        let mut doc = TantivyDocument::default();
        for (f, text) in fields.iter().zip(line.split('\t')) {
            if !text.is_empty() {
                doc.add_text(*f, text);
            }
        }
        doc.add_u64(id, ndocs);
        writer.add_document(doc)?;
        ndocs += 1;
    }
    writer.commit()?;
    let index_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let ids = index.searchable_segment_ids()?;
    let segments_before = ids.len();
    if ids.len() > 1 {
        writer.merge(&ids).wait()?;
    }
    writer.wait_merging_threads()?;
    let merge_s = t.elapsed().as_secs_f64();
    let bytes = dir_bytes(&idx_dir);

    let reader = index.reader()?;
    let searcher = reader.searcher();
    let questions: Vec<Vec<String>> = std::fs::read_to_string(out.join("queries.txt"))?
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    let lens_top: Vec<Vec<u64>> = std::fs::read_to_string(out.join("lens_top.txt"))?
        .lines()
        .map(|l| l.split_whitespace().map(|x| x.parse().expect("doc id")).collect())
        .collect();
    let mut lat = Vec::new();
    let mut overlap10 = 0usize;
    let mut counted = 0usize;
    for round in 0..=repeat {
        for (qi, q) in questions.iter().enumerate() {
            let t = Instant::now();
            let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            for term in q {
                for (f, w) in fields.iter().zip(WEIGHTS) {
                    let tq = TermQuery::new(Term::from_field_text(*f, term), IndexRecordOption::WithFreqs);
                    clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(tq), w))));
                }
            }
            let top = searcher.search(&BooleanQuery::new(clauses), &TopDocs::with_limit(k))?;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            if round > 0 {
                lat.push(ms);
            } else if let Some(lt) = lens_top.get(qi) {
                // How many of lens's top 10 tantivy's top 10 holds (the scores differ: see above).
                let ours: HashSet<u64> = top
                    .iter()
                    .take(10)
                    .filter_map(|(_, a)| {
                        let seg = searcher.segment_reader(a.segment_ord);
                        seg.fast_fields().u64("id").ok()?.first(a.doc_id)
                    })
                    .collect();
                overlap10 += lt.iter().take(10).filter(|d| ours.contains(d)).count();
                counted += lt.len().min(10);
            }
        }
    }
    lat.sort_by(f64::total_cmp);
    println!(
        "{{\"engine\": \"tantivy 0.25\", \"docs\": {ndocs}, \"threads\": {threads}, \"index_s\": {index_s:.2}, \
         \"segments_before_merge\": {segments_before}, \"merge_s\": {merge_s:.2}, \"bytes\": {bytes}, \"k\": {k}, \
         \"samples\": {}, \"p50_ms\": {:.3}, \"p95_ms\": {:.3}, \"p99_ms\": {:.3}, \"max_ms\": {:.3}, \
         \"top10_overlap_with_lens\": {:.3}}}",
        lat.len(),
        percentile(&lat, 50.0),
        percentile(&lat, 95.0),
        percentile(&lat, 99.0),
        lat.last().copied().unwrap_or(0.0),
        overlap10 as f64 / counted.max(1) as f64
    );
    Ok(())
}
