//! Index building: walk the tree, read and filter files in parallel, and turn
//! each batch of files into one segment.
//!
//! A file can change between the walk and the read. The read therefore
//! trusts nothing the walk saw: it opens without following links and without
//! blocking (`fsafe`), skips what is not a regular file at that moment or is
//! over the size cap by then, and reads at most cap + 1 bytes.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use super::chunks::chunk_bounds;
use super::format::{build_line_table, write_segment, Chunk, FileMeta, SegmentData};
use super::fsafe::{open_nofollow, read_capped, Opened};
use super::grams;
use super::postings;
use super::progress::{Phase, Progress};
use super::ReadSink;
use crate::error::{Error, Result};

/// A binary file is one with a NUL byte in its first 8 KiB.
const BINARY_PROBE: usize = 8 << 10;
/// Content bytes per segment: bounds the memory a build holds at once.
pub const SEGMENT_BYTES: u64 = 192 << 20;

/// Options a build takes.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    pub max_file_bytes: u64,
    /// Gitignore-style globs of paths to leave out, on top of ignore files.
    pub exclude: Vec<String>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions { max_file_bytes: 1 << 20, exclude: Vec::new() }
    }
}

/// A file the walk found.
#[derive(Clone, Debug)]
pub struct Found {
    pub rel: String,
    pub abs: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
}

/// A file left out of the index, and why.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
    pub size: u64,
    pub mtime_ns: i64,
}

pub fn mtime_ns(meta: &fs::Metadata) -> i64 {
    meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos() as i64)
}

/// Walks `root` the way ripgrep does by default (ignore files, hidden files
/// skipped, symlinks not followed), leaving out `exclude` (the index itself).
pub fn walk(root: &Path, exclude: &Path, opts: &BuildOptions) -> Result<(Vec<Found>, Vec<Skipped>)> {
    let meta = fs::metadata(root).map_err(|e| Error::io(root, e))?;
    if !meta.is_dir() {
        return Err(Error::io(root, std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory")));
    }
    let exclude = exclude.canonicalize().unwrap_or_else(|_| exclude.to_path_buf());
    let found = Mutex::new(Vec::new());
    let skipped = Mutex::new(Vec::new());
    let skip = |path: String, reason: &str, size: u64, mtime_ns: i64| {
        skipped.lock().unwrap().push(Skipped { path, reason: reason.into(), size, mtime_ns });
    };
    let mut overrides = ignore::overrides::OverrideBuilder::new(root);
    for glob in &opts.exclude {
        overrides
            .add(&format!("!{glob}"))
            .map_err(|e| Error::query(format!("invalid exclude glob {glob:?}: {e}"), None))?;
    }
    let overrides = overrides.build().map_err(|e| Error::query(format!("invalid exclude globs: {e}"), None))?;
    let walker = ignore::WalkBuilder::new(root)
        .overrides(overrides)
        .follow_links(false)
        .threads(2)
        .filter_entry(move |e| e.path() != exclude && !e.path().starts_with(&exclude))
        .build_parallel();
    walker.run(|| {
        Box::new(|entry| {
            let entry = match entry {
                Ok(e) => e,
                Err(err) => {
                    skip(err.to_string(), "unreadable", 0, 0);
                    return ignore::WalkState::Continue;
                }
            };
            let Some(ft) = entry.file_type() else { return ignore::WalkState::Continue };
            let rel = match entry.path().strip_prefix(root).ok().and_then(|p| p.to_str()) {
                Some(r) if !r.is_empty() => r.replace(std::path::MAIN_SEPARATOR, "/"),
                Some(_) => return ignore::WalkState::Continue,
                None => {
                    skip(entry.path().to_string_lossy().into_owned(), "non_utf8_path", 0, 0);
                    return ignore::WalkState::Continue;
                }
            };
            if ft.is_symlink() {
                skip(rel, "symlink", 0, 0);
            } else if ft.is_file() {
                match entry.metadata() {
                    Ok(m) if m.len() > opts.max_file_bytes => skip(rel, "too_large", m.len(), mtime_ns(&m)),
                    Ok(m) => found.lock().unwrap().push(Found {
                        rel,
                        abs: entry.path().to_path_buf(),
                        size: m.len(),
                        mtime_ns: mtime_ns(&m),
                    }),
                    Err(_) => skip(rel, "unreadable", 0, 0),
                }
            }
            ignore::WalkState::Continue
        })
    });
    let mut found = found.into_inner().unwrap();
    found.sort_by(|a, b| a.rel.cmp(&b.rel));
    let mut skipped = skipped.into_inner().unwrap();
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((found, skipped))
}

/// The static rank of a file, in (0, 1]: shallow, hand-written, modest files
/// first; tests, vendored and generated code later. Search visits candidates
/// in this order, so it is what early termination leans on.
pub fn prior(rel: &str, size: u64) -> f32 {
    let lower = rel.to_ascii_lowercase();
    let depth = lower.matches('/').count() as f32;
    let mut p = 1.0 / (1.0 + 0.1 * depth);
    let parts: Vec<&str> = lower.split('/').collect();
    let (dirs, name) = parts.split_at(parts.len() - 1);
    let name = name[0];
    let dir_is = |set: &[&str]| dirs.iter().any(|d| set.contains(d));
    if dir_is(&["test", "tests", "testing", "__tests__", "spec", "testdata", "fixtures"])
        || name.starts_with("test_")
        || name.contains("_test.")
        || name.contains(".test.")
        || name.contains("_spec.")
    {
        p *= 0.6;
    }
    if dir_is(&["vendor", "third_party", "thirdparty", "node_modules", "external", "_vendor"]) {
        p *= 0.5;
    }
    if lower.contains("generated") || name.contains(".min.") || name.contains("_pb2") || name.contains(".pb.") {
        p *= 0.5;
    }
    let kib16 = size as f32 / 16384.0;
    if kib16 > 1.0 {
        p /= 1.0 + 0.05 * kib16.log2();
    }
    p
}

/// One file read and ready to go into a segment.
pub struct Loaded {
    pub rel: String,
    pub data: Vec<u8>,
    pub mtime_ns: i64,
    pub hash: u64,
    chunks: Vec<(u32, u32)>,
    /// Distinct grams of each chunk.
    grams: Vec<Vec<u32>>,
}

pub enum ReadOutcome {
    Loaded(Loaded),
    Skipped(Skipped),
}

/// What reading one walked path found there now.
pub enum Read {
    Data {
        data: Vec<u8>,
        size: u64,
        mtime_ns: i64,
    },
    /// Not read, for this reason (a `Skipped` reason).
    Skip {
        reason: &'static str,
        size: u64,
        mtime_ns: i64,
    },
}

/// Reads the file at `path` as it is now: no links, no FIFOs or devices,
/// nothing over `max_bytes` (read as far as `max_bytes + 1`).
pub fn read_now(path: &Path, max_bytes: u64) -> io::Result<Read> {
    let (file, meta) = match open_nofollow(path)? {
        Opened::File(f, m) => (f, m),
        Opened::Link => return Ok(Read::Skip { reason: "symlink", size: 0, mtime_ns: 0 }),
        Opened::NotRegular => return Ok(Read::Skip { reason: "not_regular", size: 0, mtime_ns: 0 }),
    };
    let mtime_ns = mtime_ns(&meta);
    if meta.len() > max_bytes {
        return Ok(Read::Skip { reason: "too_large", size: meta.len(), mtime_ns });
    }
    Ok(match read_capped(&file, meta.len(), max_bytes)? {
        Some(data) => Read::Data { size: data.len() as u64, data, mtime_ns },
        None => Read::Skip { reason: "too_large", size: max_bytes + 1, mtime_ns },
    })
}

/// Reads `files` in parallel, dropping binary, unreadable and (by now)
/// oversized or irregular ones.
pub fn read_files(files: &[Found], max_bytes: u64) -> Vec<ReadOutcome> {
    files
        .par_iter()
        .map_init(grams::scratch, |seen, f| match read_now(&f.abs, max_bytes) {
            Err(_) => ReadOutcome::Skipped(Skipped {
                path: f.rel.clone(),
                reason: "unreadable".into(),
                size: f.size,
                mtime_ns: f.mtime_ns,
            }),
            Ok(Read::Skip { reason, size, mtime_ns }) => {
                ReadOutcome::Skipped(Skipped { path: f.rel.clone(), reason: reason.into(), size, mtime_ns })
            }
            Ok(Read::Data { data, mtime_ns, .. })
                if memchr::memchr(0, &data[..data.len().min(BINARY_PROBE)]).is_some() =>
            {
                ReadOutcome::Skipped(Skipped {
                    path: f.rel.clone(),
                    reason: "binary".into(),
                    size: data.len() as u64,
                    mtime_ns,
                })
            }
            Ok(Read::Data { data, mtime_ns, .. }) => {
                let chunks = chunk_bounds(&data);
                let mut scratch = Vec::new();
                let grams = chunks
                    .iter()
                    .map(|&(s, l)| {
                        grams::distinct_grams(&data[s as usize..(s + l) as usize], seen, &mut scratch);
                        scratch.clone()
                    })
                    .collect();
                ReadOutcome::Loaded(Loaded { rel: f.rel.clone(), hash: xxh3_64(&data), mtime_ns, data, chunks, grams })
            }
        })
        .collect()
}

/// Turns loaded files into a segment: file ids in static rank order, chunk
/// ids following them, then the gram postings (over chunks) inverted by
/// counting sort.
pub fn assemble(mut files: Vec<Loaded>) -> SegmentData {
    files.sort_by(|a, b| {
        let (pa, pb) = (prior(&a.rel, a.data.len() as u64), prior(&b.rel, b.data.len() as u64));
        pb.total_cmp(&pa).then_with(|| a.rel.cmp(&b.rel))
    });
    let nchunks: u32 = files.iter().map(|f| f.chunks.len() as u32).sum();
    let mut seg = SegmentData {
        files: Vec::with_capacity(files.len()),
        paths: Vec::new(),
        lines: Vec::new(),
        chunks: Vec::with_capacity(nchunks as usize),
        dict: Vec::new(),
        postings: Vec::new(),
        content: Vec::with_capacity(files.iter().map(|f| f.data.len()).sum()),
    };
    let mut counts = vec![0u32; 1 << 24];
    for f in &files {
        for &g in f.grams.iter().flatten() {
            counts[g as usize] += 1;
        }
    }
    let mut starts = vec![0u32; 1 << 24];
    let mut total = 0u32;
    for (s, &c) in starts.iter_mut().zip(&counts) {
        *s = total;
        total += c;
    }
    let mut flat = vec![0u32; total as usize];
    for (id, f) in files.iter_mut().enumerate() {
        let first_chunk = seg.chunks.len() as u32;
        for (c, grams) in f.grams.iter().enumerate() {
            let chunk = first_chunk + c as u32;
            for &g in grams {
                flat[starts[g as usize] as usize] = chunk;
                starts[g as usize] += 1;
            }
        }
        f.grams = Vec::new();
        seg.chunks.extend(f.chunks.iter().map(|&(start, len)| Chunk { file: id as u32, start, len }));
        let lines_off = seg.lines.len() as u32;
        let lines_len = build_line_table(&f.data, &mut seg.lines);
        seg.files.push(FileMeta {
            content_off: seg.content.len() as u64,
            content_len: f.data.len() as u64,
            path_off: seg.paths.len() as u32,
            path_len: f.rel.len() as u32,
            mtime_ns: f.mtime_ns,
            hash: f.hash,
            lines_off,
            lines_len,
            prior: prior(&f.rel, f.data.len() as u64),
            first_chunk,
            nchunks: f.chunks.len() as u32,
        });
        seg.paths.extend_from_slice(f.rel.as_bytes());
        seg.content.extend_from_slice(&f.data);
        f.data = Vec::new();
    }
    drop(starts);
    let mut at = 0usize;
    for (g, &c) in counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        let ids = &flat[at..at + c as usize];
        at += c as usize;
        let off = seg.postings.len() as u64;
        let kind = postings::encode(ids, nchunks, &mut seg.postings);
        seg.dict.push((g as u32, kind, c, off));
    }
    seg
}

/// Splits `files` into runs of at most `SEGMENT_BYTES` content bytes.
pub fn batches(files: &[Found]) -> Vec<&[Found]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0usize, 0u64);
    for (i, f) in files.iter().enumerate() {
        if i > start && bytes + f.size > SEGMENT_BYTES {
            out.push(&files[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += f.size;
    }
    if start < files.len() {
        out.push(&files[start..]);
    }
    out
}

/// How a build or refresh writes its segments.
pub struct SegmentSink<'a> {
    pub dir: &'a Path,
    pub index_id: u64,
    pub max_file_bytes: u64,
}

/// Reads `files` and writes them as segments into `sink.dir`, named by
/// `name`. Returns the segment names written and the files skipped while
/// reading.
pub fn write_segments(
    sink: &SegmentSink<'_>,
    files: &[Found],
    name: impl FnMut() -> String,
    progress: &mut Progress<'_>,
) -> Result<(Vec<String>, Vec<Skipped>)> {
    write_segments_seen(sink, files, name, None, progress)
}

/// [`write_segments`], showing each segment's files to `read` (on the
/// thread that assembles the segment, before it is assembled).
pub fn write_segments_seen(
    sink: &SegmentSink<'_>,
    files: &[Found],
    mut name: impl FnMut() -> String,
    read: Option<&dyn ReadSink>,
    progress: &mut Progress<'_>,
) -> Result<(Vec<String>, Vec<Skipped>)> {
    let total: u64 = files.iter().map(|f| f.size).sum();
    let mut done = 0u64;
    let mut names = Vec::new();
    let mut skipped = Vec::new();
    progress(Phase::Reading, 0, total);
    // A batch's assembly (gram extraction and inversion) runs on one core:
    // up to `ASSEMBLERS` batches assemble and write on their own threads
    // while the next one is read, which bounds memory to that many batches
    // plus the one being read. The read sink's work on a batch (symbol
    // extraction, in rayon's pool beside the reading) comes first there.
    std::thread::scope(|scope| -> Result<()> {
        let mut running = std::collections::VecDeque::new();
        for batch in batches(files) {
            let mut loaded = Vec::with_capacity(batch.len());
            // Read in slices so the caller sees progress during a long batch.
            for chunk in batch.chunks(2048) {
                for outcome in read_files(chunk, sink.max_file_bytes) {
                    match outcome {
                        ReadOutcome::Loaded(l) => loaded.push(l),
                        ReadOutcome::Skipped(s) => skipped.push(s),
                    }
                }
                done += chunk.iter().map(|f| f.size).sum::<u64>();
                progress(Phase::Reading, done, total);
            }
            if loaded.is_empty() {
                continue;
            }
            let n = name();
            let path = sink.dir.join(&n);
            names.push(n);
            if running.len() == ASSEMBLERS {
                join_assembly(running.pop_front().expect("a running assembly"))?;
            }
            let index_id = sink.index_id;
            running.push_back(scope.spawn(move || {
                if let Some(read) = read {
                    let view: Vec<(&str, &[u8])> = loaded.iter().map(|l| (l.rel.as_str(), l.data.as_slice())).collect();
                    read.batch(&view);
                }
                write_segment(&path, &assemble(loaded), index_id)
            }));
        }
        running.into_iter().try_for_each(join_assembly)
    })?;
    Ok((names, skipped))
}

/// Batches assembled at once by `write_segments`.
const ASSEMBLERS: usize = 2;

/// Waits for one batch's assembly; its panic goes on in the caller.
fn join_assembly(h: std::thread::ScopedJoinHandle<'_, Result<u64>>) -> Result<()> {
    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)).map(|_| ())
}

/// Counts of skipped files by reason.
pub fn skipped_counts(skipped: &[Skipped]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for s in skipped {
        *m.entry(s.reason.clone()).or_insert(0) += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prior_demotes_tests_vendor_and_depth() {
        assert!(prior("a.py", 100) > prior("x/y/a.py", 100));
        assert!(prior("src/a.py", 100) > prior("tests/a.py", 100));
        assert!(prior("src/a.py", 100) > prior("vendor/a.py", 100));
        assert!(prior("src/a.py", 100) > prior("src/a.py", 10 << 20));
    }

    #[test]
    fn read_files_skip_what_changed_after_the_walk() {
        // The walk saw three small regular files; by the read, one is a link
        // to a file outside the root, one a FIFO, and one has grown past the cap.
        let tmp = tempfile::tempdir().unwrap();
        let (root, outside) = (tmp.path().join("root"), tmp.path().join("secret"));
        fs::create_dir(&root).unwrap();
        fs::write(&outside, b"TOP SECRET").unwrap();
        let found = |rel: &str| Found { rel: rel.into(), abs: root.join(rel), size: 3, mtime_ns: 0 };
        std::os::unix::fs::symlink(&outside, root.join("link.py")).unwrap();
        let fifo = std::ffi::CString::new(root.join("fifo.py").to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        fs::write(root.join("grown.py"), vec![b'x'; 100]).unwrap();
        fs::write(root.join("ok.py"), b"fine").unwrap();
        let files = [found("fifo.py"), found("grown.py"), found("link.py"), found("ok.py")];
        let out = read_files(&files, 50);
        let got: Vec<String> = out
            .iter()
            .map(|o| match o {
                ReadOutcome::Loaded(l) => format!("{} loaded {}", l.rel, l.data.len()),
                ReadOutcome::Skipped(s) => format!("{} {}", s.path, s.reason),
            })
            .collect();
        assert_eq!(got, ["fifo.py not_regular", "grown.py too_large", "link.py symlink", "ok.py loaded 4"]);
    }

    #[test]
    fn batches_respect_the_size_cap() {
        let f = |n: u64| Found { rel: String::new(), abs: PathBuf::new(), size: n, mtime_ns: 0 };
        let files = vec![f(SEGMENT_BYTES), f(1), f(SEGMENT_BYTES - 1), f(5)];
        let b = batches(&files);
        assert_eq!(b.iter().map(|b| b.len()).collect::<Vec<_>>(), vec![1, 2, 1]);
    }
}
