//! The on-disk segment: one immutable file holding a batch of source files,
//! their contents, line tables and n-gram postings, opened with mmap.
//!
//! ```text
//! header   magic "LENSSEG\0", format version, file and chunk counts, the
//!          index id, section table (offset, length, xxh3-64 of each
//!          section), xxh3-64 of the header itself
//! FILES    64-byte records: content range, path range, mtime, content hash,
//!          line-table range, static rank prior, chunk range
//! PATHS    root-relative posix paths, UTF-8, back to back
//! LINES    per file, the byte offset (u32) of every LINE_STRIDE-th line start
//! CHUNKS   12-byte records: file id, start and length within the file
//! DICT     12-byte entries sorted by gram: gram | kind << 24, offset (u64)
//!          of its postings list (chunk ids, see `chunks`); a list ends
//!          where the next begins
//! POSTINGS the lists DICT points into (see `postings`)
//! CONTENT  the files' bytes, back to back
//! ```
//!
//! Segments are written to a temporary name, synced, then renamed: a reader
//! sees a whole segment or none. Opening checks the header, every section's
//! bounds, the checksums of the small sections and every record's ranges, so
//! a damaged file is an `Error::Corrupt`, never a panic; `verify` also checks
//! the large sections' checksums.
//!
//! Reading never faults and never shows damaged text: `check_readable`, which
//! the engine calls before each query touches the mapping, fails (instead of
//! a SIGBUS) when the file shrank since it was mapped, and checks the large
//! sections (postings, content) once per segment and process, the first time
//! a query reads them.

use crate::bytes::{u32_at, u64_at};
use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use memmap2::Mmap;
use xxhash_rust::xxh3::xxh3_64;

use crate::error::{Error, Result};

pub const MAGIC: &[u8; 8] = b"LENSSEG\0";
/// Bump on any change to the layout or to what is stored; readers reject
/// newer versions by name. 2: exact-case grams beside the folded ones.
/// 3: the index id in every segment header; the manifest records each
/// file's identity and the directory's id. 4: the symbol file's format 2
/// (front-coded names, delta-coded records); a format-3 index holds a
/// format-1 symbol file and is rebuilt. 5: the term files' version 3
/// (bit-packed postings), Elias-Fano gram lists, 12-byte gram dictionary
/// entries (no count: nothing read it); a format-4 index asks to be rebuilt.
pub const FORMAT_VERSION: u32 = 5;
/// One line-table entry per this many lines: a line lookup is a binary search
/// plus a newline count over at most this many lines.
pub const LINE_STRIDE: u32 = 64;

const NSECTIONS: usize = 7;
const S_FILES: usize = 0;
const S_PATHS: usize = 1;
const S_LINES: usize = 2;
const S_CHUNKS: usize = 3;
const S_DICT: usize = 4;
const S_POSTINGS: usize = 5;
const S_CONTENT: usize = 6;
const CHUNK_LEN: usize = 12;
const HEADER_LEN: usize = 8 + 4 + 4 + 4 + 4 + 8 + NSECTIONS * 24 + 8;
/// Where the section table starts in the header.
const TABLE_AT: usize = 32;
const RECORD_LEN: usize = 64;
const DICT_ENTRY_LEN: usize = 12;

/// What a segment knows about one of its files.
#[derive(Clone, Debug, PartialEq)]
pub struct FileMeta {
    pub content_off: u64,
    pub content_len: u64,
    pub path_off: u32,
    pub path_len: u32,
    pub mtime_ns: i64,
    pub hash: u64,
    pub lines_off: u32,
    pub lines_len: u32,
    pub prior: f32,
    pub first_chunk: u32,
    pub nchunks: u32,
}

/// One chunk: a run of whole lines of one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub file: u32,
    pub start: u32,
    pub len: u32,
}

/// The in-memory form of a segment, before it is written.
pub struct SegmentData {
    pub files: Vec<FileMeta>,
    pub paths: Vec<u8>,
    pub lines: Vec<u32>,
    pub chunks: Vec<Chunk>,
    /// (gram, kind, count, offset into `postings`), sorted by gram.
    pub dict: Vec<(u32, u8, u32, u64)>,
    pub postings: Vec<u8>,
    pub content: Vec<u8>,
}

fn encode_record(m: &FileMeta, out: &mut Vec<u8>) {
    out.extend_from_slice(&m.content_off.to_le_bytes());
    out.extend_from_slice(&m.content_len.to_le_bytes());
    out.extend_from_slice(&m.path_off.to_le_bytes());
    out.extend_from_slice(&m.path_len.to_le_bytes());
    out.extend_from_slice(&m.mtime_ns.to_le_bytes());
    out.extend_from_slice(&m.hash.to_le_bytes());
    out.extend_from_slice(&m.lines_off.to_le_bytes());
    out.extend_from_slice(&m.lines_len.to_le_bytes());
    out.extend_from_slice(&m.prior.to_le_bytes());
    out.extend_from_slice(&m.first_chunk.to_le_bytes());
    out.extend_from_slice(&m.nchunks.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
}

fn decode_record(b: &[u8]) -> FileMeta {
    FileMeta {
        content_off: u64_at(b, 0),
        content_len: u64_at(b, 8),
        path_off: u32_at(b, 16),
        path_len: u32_at(b, 20),
        mtime_ns: u64_at(b, 24) as i64,
        hash: u64_at(b, 32),
        lines_off: u32_at(b, 40),
        lines_len: u32_at(b, 44),
        prior: f32::from_le_bytes(b[48..52].try_into().unwrap()),
        first_chunk: u32_at(b, 52),
        nchunks: u32_at(b, 56),
    }
}

/// Writes `data` as segment file `path`, atomically (temporary name, fsync,
/// rename). Returns the number of bytes written.
pub fn write_segment(path: &Path, data: &SegmentData, index_id: u64) -> Result<u64> {
    let tmp = path.with_extension("tmp");
    let io = |e| Error::io(&tmp, e);
    let file = File::create(&tmp).map_err(io)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(&[0u8; HEADER_LEN]).map_err(io)?;

    let mut records = Vec::with_capacity(data.files.len() * RECORD_LEN);
    for m in &data.files {
        encode_record(m, &mut records);
    }
    let lines: Vec<u8> = data.lines.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut chunks = Vec::with_capacity(data.chunks.len() * CHUNK_LEN);
    for c in &data.chunks {
        chunks.extend_from_slice(&c.file.to_le_bytes());
        chunks.extend_from_slice(&c.start.to_le_bytes());
        chunks.extend_from_slice(&c.len.to_le_bytes());
    }
    let mut dict = Vec::with_capacity(data.dict.len() * DICT_ENTRY_LEN);
    for &(gram, kind, _count, off) in &data.dict {
        dict.extend_from_slice(&(gram | (u32::from(kind) << 24)).to_le_bytes());
        dict.extend_from_slice(&off.to_le_bytes());
    }
    let sections: [&[u8]; NSECTIONS] = [&records, &data.paths, &lines, &chunks, &dict, &data.postings, &data.content];
    let mut table = [(0u64, 0u64, 0u64); NSECTIONS];
    let mut off = HEADER_LEN as u64;
    for (i, s) in sections.iter().enumerate() {
        w.write_all(s).map_err(io)?;
        table[i] = (off, s.len() as u64, xxh3_64(s));
        off += s.len() as u64;
    }
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&(NSECTIONS as u32).to_le_bytes());
    header.extend_from_slice(&(data.files.len() as u32).to_le_bytes());
    header.extend_from_slice(&(data.chunks.len() as u32).to_le_bytes());
    header.extend_from_slice(&index_id.to_le_bytes());
    for (o, l, c) in table {
        header.extend_from_slice(&o.to_le_bytes());
        header.extend_from_slice(&l.to_le_bytes());
        header.extend_from_slice(&c.to_le_bytes());
    }
    let sum = xxh3_64(&header);
    header.extend_from_slice(&sum.to_le_bytes());
    w.seek(SeekFrom::Start(0)).map_err(io)?;
    w.write_all(&header).map_err(io)?;
    let file = w.into_inner().map_err(|e| Error::io(&tmp, e.into_error()))?;
    file.sync_all().map_err(io)?;
    drop(file);
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    Ok(off)
}

/// Segments whose large sections this process has checked, by (device,
/// inode, identity): a refresh reopens them all, and they are immutable.
static VERIFIED: Mutex<Option<HashSet<(u64, u64, u64)>>> = Mutex::new(None);

/// A segment file opened for reading.
pub struct Segment {
    pub name: String,
    path: PathBuf,
    /// Held open to ask its size before each query (see `check_readable`).
    file: File,
    mmap: Mmap,
    nfiles: u32,
    nchunks: u32,
    index_id: u64,
    identity: u64,
    /// The large sections' checksums, checked once: None when they match.
    lazily_checked: OnceLock<Option<String>>,
    table: [(usize, usize, u64); NSECTIONS],
    /// For each top 16 bits of a gram, the first dictionary entry at or
    /// after it: a lookup is one table read and a binary search over the
    /// few entries sharing those bits, not over millions.
    dict_index: Vec<u32>,
    /// Built on first use by a ranked search; see [`Basenames`].
    basenames: OnceLock<Basenames>,
    max_prior: OnceLock<f32>,
}

/// Every file's base name, ASCII case folded, each after a `/` (a byte no
/// base name holds). A ranked search scores query terms found in file names;
/// one memmem pass per term over this finds those files, where asking each
/// candidate file would cost a scan per file and term.
pub struct Basenames {
    pub text: Vec<u8>,
    /// Where each file's name starts in `text`, by file id.
    pub starts: Vec<u32>,
}

impl Basenames {
    /// The file whose name holds `text[at]`.
    pub fn file_at(&self, at: usize) -> u32 {
        (self.starts.partition_point(|&s| s as usize <= at) - 1) as u32
    }
}

impl Segment {
    pub fn open(path: &Path) -> Result<Segment> {
        let (file, meta) = super::fsafe::open_index_file(path)?;
        let bad = |reason: String| Error::corrupt(path, reason);
        if meta.len() < HEADER_LEN as u64 {
            return Err(bad("not a lens segment (bad magic or too short)".into()));
        }
        // SAFETY: segment files are immutable once renamed into place; lens
        // never writes to them again, and replaced ones are only unlinked.
        // Another process truncating one is caught by `check_readable`.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        if file.metadata().map_or(0, |m| m.len()) < mmap.len() as u64 {
            return Err(bad("segment shrank while being opened".into()));
        }
        if mmap.len() < HEADER_LEN || &mmap[..8] != MAGIC {
            return Err(bad("not a lens segment (bad magic or too short)".into()));
        }
        let version = u32_at(&mmap, 8);
        if version != FORMAT_VERSION {
            return Err(Error::Version { path: path.to_path_buf(), found: version, supported: FORMAT_VERSION });
        }
        let stored = u64_at(&mmap, HEADER_LEN - 8);
        if xxh3_64(&mmap[..HEADER_LEN - 8]) != stored {
            return Err(bad("header checksum mismatch".into()));
        }
        if u32_at(&mmap, 12) as usize != NSECTIONS {
            return Err(bad("unexpected section count".into()));
        }
        let nfiles = u32_at(&mmap, 16);
        let nchunks = u32_at(&mmap, 20);
        let index_id = u64_at(&mmap, 24);
        let mut table = [(0usize, 0usize, 0u64); NSECTIONS];
        for (i, entry) in table.iter_mut().enumerate() {
            let at = TABLE_AT + i * 24;
            let (o, l, c) = (u64_at(&mmap, at), u64_at(&mmap, at + 8), u64_at(&mmap, at + 16));
            if o.checked_add(l).is_none_or(|end| end > mmap.len() as u64) {
                return Err(bad(format!("section {i} runs past the end of the file (truncated?)")));
            }
            *entry = (o as usize, l as usize, c);
        }
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let identity = super::fsafe::identity_of(&mmap);
        let mut seg = Segment {
            name,
            path: path.to_path_buf(),
            file,
            mmap,
            nfiles,
            nchunks,
            index_id,
            identity,
            lazily_checked: OnceLock::new(),
            table,
            dict_index: Vec::new(),
            basenames: OnceLock::new(),
            max_prior: OnceLock::new(),
        };
        for s in [S_FILES, S_PATHS, S_LINES, S_CHUNKS, S_DICT] {
            seg.check_section(s)?;
        }
        seg.check_records()?;
        seg.dict_index = seg.build_dict_index();
        Ok(seg)
    }

    fn section(&self, i: usize) -> &[u8] {
        let (o, l, _) = self.table[i];
        &self.mmap[o..o + l]
    }

    fn check_section(&self, i: usize) -> Result<()> {
        if xxh3_64(self.section(i)) != self.table[i].2 {
            return Err(Error::corrupt(&self.path, format!("section {i} checksum mismatch")));
        }
        Ok(())
    }

    fn check_records(&self) -> Result<()> {
        let bad = |reason: String| Error::corrupt(&self.path, reason);
        if self.section(S_FILES).len() != self.nfiles as usize * RECORD_LEN {
            return Err(bad("file table size does not match the file count".into()));
        }
        if self.section(S_CHUNKS).len() != self.nchunks as usize * CHUNK_LEN {
            return Err(bad("chunk table size does not match the chunk count".into()));
        }
        let (paths, lines, content) = (
            self.section(S_PATHS).len() as u64,
            self.section(S_LINES).len() as u64 / 4,
            self.section(S_CONTENT).len() as u64,
        );
        for id in 0..self.nfiles {
            let m = self.file(id);
            let ok = m.content_off.checked_add(m.content_len).is_some_and(|e| e <= content)
                && u64::from(m.path_off) + u64::from(m.path_len) <= paths
                && u64::from(m.lines_off) + u64::from(m.lines_len) <= lines
                && m.lines_len >= 1
                && u64::from(m.first_chunk) + u64::from(m.nchunks) <= u64::from(self.nchunks)
                && std::str::from_utf8(self.path_bytes(&m)).is_ok();
            if !ok {
                return Err(bad(format!("file record {id} points outside its sections")));
            }
            for c in m.first_chunk..m.first_chunk + m.nchunks {
                let ch = self.chunk(c);
                if ch.file != id || u64::from(ch.start) + u64::from(ch.len) > m.content_len {
                    return Err(bad(format!("chunk {c} does not lie inside file {id}")));
                }
            }
        }
        let dict = self.section(S_DICT);
        if dict.len() % DICT_ENTRY_LEN != 0 {
            return Err(bad("gram dictionary has a partial entry".into()));
        }
        let postings = self.section(S_POSTINGS).len() as u64;
        let mut prev: Option<(u32, u64)> = None;
        for e in dict.chunks_exact(DICT_ENTRY_LEN) {
            let (gram, off) = (u32_at(e, 0) & 0xff_ffff, u64_at(e, 4));
            if off > postings || prev.is_some_and(|(g, o)| g >= gram || o > off) {
                return Err(bad("gram dictionary is out of order or out of range".into()));
            }
            prev = Some((gram, off));
        }
        Ok(())
    }

    /// Checks the checksums of every section, the large ones included.
    pub fn verify(&self) -> Result<()> {
        self.check_size()?;
        (0..NSECTIONS).try_for_each(|s| self.check_section(s))
    }

    /// The index id written into the header.
    pub fn index_id(&self) -> u64 {
        self.index_id
    }

    /// What the manifest records for this file (`fsafe::identity_of`).
    pub fn identity(&self) -> u64 {
        self.identity
    }

    /// Fails, rather than let a read of the mapping fault (SIGBUS), when the
    /// file is now shorter than the mapping: another process truncated it.
    fn check_size(&self) -> Result<()> {
        let now = self.file.metadata().map_err(|e| Error::io(&self.path, e))?.len();
        if now < self.mmap.len() as u64 {
            return Err(Error::corrupt(
                &self.path,
                format!(
                    "segment shrank from {} to {now} bytes while open (truncated by another process?)",
                    self.mmap.len()
                ),
            ));
        }
        Ok(())
    }

    /// Whether `check_readable` has checked the large sections already.
    pub fn first_check_done(&self) -> bool {
        self.lazily_checked.get().is_some()
    }

    /// What a query must pass before it reads this segment: the file has not
    /// shrunk (one `fstat`), and the postings and content sections match
    /// their checksums (checked the first time, once per process).
    pub fn check_readable(&self) -> Result<()> {
        self.check_size()?;
        let failed = self.lazily_checked.get_or_init(|| {
            let key = self.file.metadata().ok().map(|m| (m.dev(), m.ino(), self.identity));
            let mut done = VERIFIED.lock().unwrap_or_else(|e| e.into_inner());
            if key.is_some_and(|k| done.as_ref().is_some_and(|d| d.contains(&k))) {
                return None;
            }
            drop(done);
            let result = [S_POSTINGS, S_CONTENT].iter().try_for_each(|&s| self.check_section(s));
            match result {
                Ok(()) => {
                    done = VERIFIED.lock().unwrap_or_else(|e| e.into_inner());
                    done.get_or_insert_with(HashSet::new).extend(key);
                    None
                }
                Err(Error::Corrupt { reason, .. }) => Some(reason),
                Err(other) => Some(other.to_string()),
            }
        });
        match failed {
            None => Ok(()),
            Some(reason) => Err(Error::corrupt(&self.path, reason.clone())),
        }
    }

    pub fn nfiles(&self) -> u32 {
        self.nfiles
    }

    pub fn nchunks(&self) -> u32 {
        self.nchunks
    }

    pub fn chunk(&self, c: u32) -> Chunk {
        let b = &self.section(S_CHUNKS)[c as usize * CHUNK_LEN..(c as usize + 1) * CHUNK_LEN];
        Chunk { file: u32_at(b, 0), start: u32_at(b, 4), len: u32_at(b, 8) }
    }

    pub fn bytes_on_disk(&self) -> u64 {
        self.mmap.len() as u64
    }

    pub fn file(&self, id: u32) -> FileMeta {
        let at = id as usize * RECORD_LEN;
        decode_record(&self.section(S_FILES)[at..at + RECORD_LEN])
    }

    fn path_bytes(&self, m: &FileMeta) -> &[u8] {
        &self.section(S_PATHS)[m.path_off as usize..(m.path_off + m.path_len) as usize]
    }

    pub fn path(&self, id: u32) -> &str {
        let bytes = self.path_bytes(&self.file(id));
        debug_assert!(std::str::from_utf8(bytes).is_ok());
        // SAFETY: `check_records` validated every path as UTF-8 when the
        // segment was opened, and the mapping is immutable.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    /// The highest static prior of any file here: part of the bound a
    /// ranked search gives chunks it has not looked at yet.
    pub fn max_prior(&self) -> f32 {
        *self.max_prior.get_or_init(|| (0..self.nfiles).map(|id| self.file(id).prior).fold(0.0, f32::max))
    }

    pub fn basenames(&self) -> &Basenames {
        self.basenames.get_or_init(|| {
            let mut text = Vec::new();
            let mut starts = Vec::with_capacity(self.nfiles as usize);
            for id in 0..self.nfiles {
                let base = super::base_name(self.path(id)).as_bytes();
                text.push(b'/');
                starts.push(text.len() as u32);
                text.extend(base.iter().map(|&b| super::grams::fold(b)));
            }
            Basenames { text, starts }
        })
    }

    pub fn content(&self, id: u32) -> &[u8] {
        let m = self.file(id);
        &self.section(S_CONTENT)[m.content_off as usize..(m.content_off + m.content_len) as usize]
    }

    /// The line table of file `id`: offsets of lines 1, 1 + STRIDE, ...
    pub fn line_table(&self, id: u32) -> LineTable<'_> {
        let m = self.file(id);
        let s = m.lines_off as usize * 4;
        LineTable { bytes: &self.section(S_LINES)[s..s + m.lines_len as usize * 4] }
    }

    fn build_dict_index(&self) -> Vec<u32> {
        let dict = self.section(S_DICT);
        let n = dict.len() / DICT_ENTRY_LEN;
        let mut index = vec![n as u32; (1 << 16) + 1];
        // Entries are sorted (checked at open): fill each prefix's first slot,
        // then carry later starts back over prefixes with no entries.
        for i in (0..n).rev() {
            let prefix = (u32_at(dict, i * DICT_ENTRY_LEN) & 0xff_ffff) >> 8;
            index[prefix as usize] = i as u32;
        }
        for p in (0..1 << 16).rev() {
            index[p] = index[p].min(index[p + 1]);
        }
        index
    }

    /// The stored posting list of `gram`, if any chunk holds it.
    pub fn postings(&self, gram: u32) -> Option<(u8, &[u8])> {
        let dict = self.section(S_DICT);
        let n = dict.len() / DICT_ENTRY_LEN;
        let key = |i: usize| u32_at(dict, i * DICT_ENTRY_LEN) & 0xff_ffff;
        let prefix = (gram >> 8) as usize & 0xffff;
        let (mut lo, mut hi) = (self.dict_index[prefix] as usize, self.dict_index[prefix + 1] as usize);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if key(mid) < gram {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == n || key(lo) != gram {
            return None;
        }
        let at = lo * DICT_ENTRY_LEN;
        let kind = (u32_at(dict, at) >> 24) as u8;
        let postings = self.section(S_POSTINGS);
        let start = u64_at(dict, at + 4) as usize;
        let end = if lo + 1 < n { u64_at(dict, at + DICT_ENTRY_LEN + 4) as usize } else { postings.len() };
        Some((kind, &postings[start..end.max(start)]))
    }

    /// Number of distinct grams stored.
    pub fn ngrams(&self) -> usize {
        self.section(S_DICT).len() / DICT_ENTRY_LEN
    }
}

/// Sparse line-start table of one file.
#[derive(Clone, Copy)]
pub struct LineTable<'a> {
    bytes: &'a [u8],
}

impl LineTable<'_> {
    fn get(&self, i: usize) -> u32 {
        u32_at(self.bytes, i * 4)
    }

    /// The 1-based line number of byte `offset` of `content`.
    pub fn line_of(&self, content: &[u8], offset: usize) -> u32 {
        let n = self.bytes.len() / 4;
        let (mut lo, mut hi) = (0usize, n);
        while lo + 1 < hi {
            let mid = (lo + hi) / 2;
            if self.get(mid) as usize <= offset {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let from = (self.get(lo) as usize).min(offset).min(content.len());
        let to = offset.min(content.len());
        lo as u32 * LINE_STRIDE + 1 + memchr::memchr_iter(b'\n', &content[from..to]).count() as u32
    }
}

/// Builds the sparse line table for `content`, appending to `out`; returns
/// how many entries it wrote.
pub fn build_line_table(content: &[u8], out: &mut Vec<u32>) -> u32 {
    let before = out.len();
    out.push(0);
    let mut line = 0u32;
    for nl in memchr::memchr_iter(b'\n', content) {
        line += 1;
        if line % LINE_STRIDE == 0 {
            out.push(nl as u32 + 1);
        }
    }
    (out.len() - before) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_table_agrees_with_counting() {
        let mut text = Vec::new();
        for i in 0..500 {
            text.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        let mut table = Vec::new();
        build_line_table(&text, &mut table);
        let bytes: Vec<u8> = table.iter().flat_map(|v| v.to_le_bytes()).collect();
        let lt = LineTable { bytes: &bytes };
        for off in (0..text.len()).step_by(7) {
            let expect = text[..off].iter().filter(|&&b| b == b'\n').count() as u32 + 1;
            assert_eq!(lt.line_of(&text, off), expect, "offset {off}");
        }
    }
}
