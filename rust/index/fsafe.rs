//! Opening files that may change under lens, or that a hostile index names:
//! never through a symbolic link (`O_NOFOLLOW`), never blocking on a FIFO or
//! a device (`O_NONBLOCK`), and only regular files, judged by `fstat` on the
//! open handle so that what is checked is what is read.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use xxhash_rust::xxh3::xxh3_64;

use crate::error::{Error, Result};

/// What opening a path found there.
pub enum Opened {
    File(File, Metadata),
    /// A symbolic link: not followed.
    Link,
    /// A directory, FIFO, socket or device.
    NotRegular,
}

/// Opens `path` for reading without following a final symbolic link and
/// without blocking, and says what it is.
pub fn open_nofollow(path: &Path) -> io::Result<Opened> {
    let opened =
        OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC).open(path);
    match opened {
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Ok(Opened::Link),
        Err(e) => Err(e),
        Ok(f) => {
            let meta = f.metadata()?;
            Ok(if meta.is_file() { Opened::File(f, meta) } else { Opened::NotRegular })
        }
    }
}

/// Opens a file that the index itself names (manifest, segment, symbol
/// file): anything but a regular file there is corruption.
pub fn open_index_file(path: &Path) -> Result<(File, Metadata)> {
    match open_nofollow(path) {
        Ok(Opened::File(f, m)) => Ok((f, m)),
        Ok(Opened::Link) => Err(Error::corrupt(path, "is a symbolic link (lens does not follow links in an index)")),
        Ok(Opened::NotRegular) => Err(Error::corrupt(path, "is not a regular file")),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Reads at most `cap` bytes of an open file; `None` when it holds more
/// (read as far as `cap + 1`, whatever its size said a moment ago).
pub fn read_capped(file: &File, size_hint: u64, cap: u64) -> io::Result<Option<Vec<u8>>> {
    let mut data = Vec::with_capacity(size_hint.min(cap) as usize + 1);
    file.take(cap.saturating_add(1)).read_to_end(&mut data)?;
    Ok(if data.len() as u64 > cap { None } else { Some(data) })
}

/// How many leading bytes of an index file identify it (its header, with
/// the checksums of everything after it).
pub const IDENTITY_BYTES: usize = 4096;

/// A file's identity as the manifest records it: xxh3 of its first
/// `IDENTITY_BYTES` (for a segment or symbol file, the header and so the
/// checksums of the rest).
pub fn identity_of(bytes: &[u8]) -> u64 {
    xxh3_64(&bytes[..bytes.len().min(IDENTITY_BYTES)])
}

/// `identity_of` the file at `path`, opened as an index file.
pub fn file_identity(path: &Path) -> Result<u64> {
    let (f, _) = open_index_file(path)?;
    let mut head = Vec::with_capacity(IDENTITY_BYTES);
    f.take(IDENTITY_BYTES as u64).read_to_end(&mut head).map_err(|e| Error::io(path, e))?;
    Ok(identity_of(&head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_fifos_and_directories_are_told_apart_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(d.join("f"), b"hello").unwrap();
        std::os::unix::fs::symlink(d.join("f"), d.join("link")).unwrap();
        let fifo = std::ffi::CString::new(d.join("fifo").to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert!(matches!(open_nofollow(&d.join("f")).unwrap(), Opened::File(..)));
        assert!(matches!(open_nofollow(&d.join("link")).unwrap(), Opened::Link));
        assert!(matches!(open_nofollow(&d.join("fifo")).unwrap(), Opened::NotRegular));
        assert!(matches!(open_nofollow(d).unwrap(), Opened::NotRegular));
        let Opened::File(f, m) = open_nofollow(&d.join("f")).unwrap() else { unreachable!() };
        assert_eq!(read_capped(&f, m.len(), 5).unwrap().as_deref(), Some(&b"hello"[..]));
        let Opened::File(f, _) = open_nofollow(&d.join("f")).unwrap() else { unreachable!() };
        assert_eq!(read_capped(&f, 0, 4).unwrap(), None);
    }
}
