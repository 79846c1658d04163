//! The index directory: which files in it lens owns, its marker, and the
//! writer lock.
//!
//! - **Marker.** `LENS_INDEX` holds the directory's index id. lens writes
//!   only into a directory that is new, empty, already marked, or an older
//!   lens index, and deletes only files that carry its own name patterns in
//!   a marked directory: files it created.
//! - **Writer lock.** Every writer (build, refresh, symbol attach) holds an
//!   exclusive advisory lock (`flock`) on `LOCK` for its whole run, across
//!   processes; a second writer waits up to `LENS_WRITER_TIMEOUT_S` seconds
//!   (default 30) and then fails with `Error::Busy`. Readers never take it.
//! - **Names.** Segments are `seg-GGGGGG-WWWWWWWW-NNNN.lens` (generation,
//!   writer token, sequence); symbol files `sym-GGGGGG.lens`. A manifest
//!   naming anything else is corrupt.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use xxhash_rust::xxh3::xxh3_64;

use super::fsafe::{open_nofollow, read_capped, Opened};
use super::manifest::{self, Manifest};
use crate::error::{Error, Result};

pub const MARKER_FILE: &str = "LENS_INDEX";
pub const LOCK_FILE: &str = "LOCK";
const MARKER_FIRST_LINE: &str = "lens index directory";
const DEFAULT_WRITER_TIMEOUT: Duration = Duration::from_secs(30);

/// A process-unique, hard-to-repeat 64-bit value (index ids, writer tokens).
pub fn unique_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut seed = Vec::with_capacity(40);
    seed.extend_from_slice(&nanos.to_le_bytes());
    seed.extend_from_slice(&std::process::id().to_le_bytes());
    seed.extend_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    seed.extend_from_slice(&(&seed as *const Vec<u8> as usize).to_le_bytes());
    xxh3_64(&seed)
}

fn all_of(s: &str, ok: impl Fn(u8) -> bool) -> bool {
    !s.is_empty() && s.bytes().all(ok)
}

/// `seg-GGGGGG-WWWWWWWW-NNNN.lens`: the only segment names a manifest may hold.
pub fn is_segment_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("seg-").and_then(|r| r.strip_suffix(".lens")) else { return false };
    let parts: Vec<&str> = rest.split('-').collect();
    matches!(parts.as_slice(), [g, w, n]
        if g.len() >= 6 && all_of(g, |b| b.is_ascii_digit())
            && w.len() == 8 && all_of(w, |b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && n.len() >= 4 && all_of(n, |b| b.is_ascii_digit()))
}

/// `sym-GGGGGG.lens`: the only symbol file names a manifest may hold.
pub fn is_symbol_name(name: &str) -> bool {
    name.strip_prefix("sym-")
        .and_then(|r| r.strip_suffix(".lens"))
        .is_some_and(|g| g.len() >= 6 && all_of(g, |b| b.is_ascii_digit()))
}

/// A file some lens writer made (segment, symbol file, either's temporary,
/// the manifest's temporary), by name: what garbage collection may delete.
pub fn is_lens_file_name(name: &str) -> bool {
    if name == "MANIFEST.tmp" {
        return true;
    }
    let Some(rest) = name.strip_prefix("seg-").or_else(|| name.strip_prefix("sym-")) else { return false };
    let Some(stem) = rest.strip_suffix(".lens").or_else(|| rest.strip_suffix(".tmp")) else { return false };
    all_of(stem, |b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-')
}

/// The index id in `dir`'s marker, if it has one.
pub fn read_marker(dir: &Path) -> Result<Option<u64>> {
    let path = dir.join(MARKER_FILE);
    let (file, meta) = match open_nofollow(&path) {
        Ok(Opened::File(f, m)) => (f, m),
        Ok(_) => return Err(Error::corrupt(&path, "the index marker is not a regular file")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let bad = || Error::corrupt(&path, "the index marker is damaged");
    let data = read_capped(&file, meta.len(), 256).map_err(|e| Error::io(&path, e))?.ok_or_else(bad)?;
    let text = std::str::from_utf8(&data).map_err(|_| bad())?;
    let mut lines = text.lines();
    if lines.next() != Some(MARKER_FIRST_LINE) {
        return Err(bad());
    }
    let id = lines.next().and_then(|l| u64::from_str_radix(l.trim(), 16).ok()).ok_or_else(bad)?;
    Ok(Some(id))
}

fn write_marker(dir: &Path, id: u64) -> Result<()> {
    let tmp = dir.join("LENS_INDEX.tmp");
    let io = |e| Error::io(&tmp, e);
    let mut f = File::create(&tmp).map_err(io)?;
    f.write_all(format!("{MARKER_FIRST_LINE}\n{id:016x}\n").as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::rename(&tmp, dir.join(MARKER_FILE)).map_err(|e| Error::io(dir, e))
}

/// Whether a build of `root` may write into `dir` (both canonical),
/// touching nothing: not the root, not above it, and new, empty, marked or
/// an older lens's index. Returns the marker's id when there is one.
pub fn check_claimable(root: &Path, dir: &Path) -> Result<Option<u64>> {
    if dir == root {
        return Err(Error::location(
            dir,
            "it is the root being indexed; use a directory of its own (default ROOT/.lens)",
        ));
    }
    if root.starts_with(dir) {
        return Err(Error::location(
            dir,
            format!("it contains the root {}; the index would index itself", root.display()),
        ));
    }
    if let Some(id) = read_marker(dir)? {
        return Ok(Some(id));
    }
    let foreign: Vec<String> = fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != LOCK_FILE && n != "LENS_INDEX.tmp")
        .collect();
    // An index an older lens wrote (it had no marker) is lens's own too.
    let older_lens = manifest::looks_like_manifest(&dir.join(manifest::FILE_NAME));
    if !foreign.is_empty() && !older_lens {
        return Err(Error::location(
            dir,
            format!(
                "it is not empty and is not a lens index (no {MARKER_FILE} marker; it holds {:?}{}); \
                 lens writes, and deletes, only in a directory of its own",
                foreign[0],
                if foreign.len() > 1 { format!(" and {} more", foreign.len() - 1) } else { String::new() }
            ),
        ));
    }
    Ok(None)
}

/// Makes `dir` ready for a build of `root`: `check_claimable`, then the
/// marker written if there is none. Call under the writer lock. Returns the
/// index id.
pub fn claim(root: &Path, dir: &Path) -> Result<u64> {
    if let Some(id) = check_claimable(root, dir)? {
        return Ok(id);
    }
    let id = unique_u64();
    write_marker(dir, id)?;
    Ok(id)
}

/// Deletes the lens files in `dir` that `manifest` does not name. Only in a
/// marked directory, only names lens gives its files; call under the lock.
pub fn collect_garbage(dir: &Path, manifest: &Manifest) {
    if !matches!(read_marker(dir), Ok(Some(_))) {
        return;
    }
    let keep: std::collections::HashSet<&str> = manifest.file_names().collect();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // A segment's sidecar (`seg-….terms`, the engine's term file) lives and dies with its segment.
        let orphan_sidecar = name.strip_suffix(".terms").is_some_and(|stem| {
            is_lens_file_name(&format!("{stem}.lens")) && !keep.contains(format!("{stem}.lens").as_str())
        });
        if (is_lens_file_name(&name) && !keep.contains(name.as_str())) || orphan_sidecar {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// After a writer failed: deletes what it wrote, judged against the
/// manifest in force (or none, if there is no manifest yet). A manifest that
/// is there but unreadable leaves everything as it is.
pub fn clean_up_failed_write(dir: &Path) {
    match Manifest::read(dir) {
        Ok(m) => collect_garbage(dir, &m),
        Err(_) if !dir.join(manifest::FILE_NAME).exists() => collect_garbage(dir, &Manifest::empty()),
        Err(_) => {}
    }
}

/// Held by a writer for its whole run; dropping it releases the lock.
pub struct WriterLock {
    _file: File,
}

fn writer_timeout() -> Duration {
    std::env::var("LENS_WRITER_TIMEOUT_S")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .unwrap_or(DEFAULT_WRITER_TIMEOUT)
}

/// Takes `dir`'s writer lock, waiting up to the writer timeout.
pub fn lock_writer(dir: &Path) -> Result<WriterLock> {
    let path: PathBuf = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    let timeout = writer_timeout();
    let started = Instant::now();
    loop {
        // flock(2) directly: `File::try_lock` needs Rust 1.89, above the MSRV.
        // SAFETY: a plain syscall on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(WriterLock { _file: file });
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EWOULDBLOCK) => {
                let waited = started.elapsed();
                if waited >= timeout {
                    return Err(Error::Busy { path: dir.to_path_buf(), waited_s: waited.as_secs_f64() });
                }
                std::thread::sleep((timeout - waited).min(Duration::from_millis(20)));
            }
            Some(libc::EINTR) => {}
            _ => return Err(Error::io(&path, err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_segment_name("seg-000012-0a1b2c3d-0001.lens"));
        for bad in ["../seg-000012-0a1b2c3d-0001.lens", "seg-000012-0001.lens", "seg-000012-0A1B2C3D-0001.lens", "x"] {
            assert!(!is_segment_name(bad), "{bad}");
        }
        assert!(is_symbol_name("sym-000003.lens"));
        assert!(!is_symbol_name("sym-../x.lens") && !is_symbol_name("sym-table.lens"));
        assert!(is_lens_file_name("seg-000001-0001.tmp") && is_lens_file_name("MANIFEST.tmp"));
        assert!(!is_lens_file_name("seg-notes.tmp") && !is_lens_file_name("sym-table.lens"));
    }

    #[test]
    fn a_second_writer_waits_then_fails() {
        let tmp = tempfile::tempdir().unwrap();
        let first = lock_writer(tmp.path()).unwrap();
        std::env::set_var("LENS_WRITER_TIMEOUT_S", "0.1");
        let second = lock_writer(tmp.path());
        std::env::remove_var("LENS_WRITER_TIMEOUT_S");
        assert!(matches!(second, Err(Error::Busy { .. })));
        drop(first);
        lock_writer(tmp.path()).unwrap();
    }
}
