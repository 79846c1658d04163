//! The symbol file's header and section table: what every version shares
//! (magic, version, section count, then `(offset, length)` per section and an
//! xxh3-64 of the body) and this version's section list.

use crate::bytes::{u32_at, u64_at};
use crate::error::{Error, Result};
use std::path::Path;
use xxhash_rust::xxh3::xxh3_64;

pub const MAGIC: &[u8; 8] = b"LENSSYM\0";
/// Bump on any change to the layout; an older file asks to be rebuilt
/// (`Error::Version`). 2: names front-coded, definitions and references
/// delta-coded per name (v1 held 40- and 20-byte records and a name blob).
pub const VERSION: u32 = 2;
pub const NSECTIONS: usize = 8;
pub const HEADER_LEN: usize = 8 + 4 + 4 + NSECTIONS * 16 + 8;

pub const S_PATHS: usize = 0;
pub const S_FILES: usize = 1;
pub const S_NAMES: usize = 2;
pub const S_BLOCKS: usize = 3;
pub const S_RUNS: usize = 4;
pub const S_NORM: usize = 5;
pub const S_NORM_IDX: usize = 6;
pub const S_NORM_IDS: usize = 7;

/// Section names, for size reports (`stats`, benches).
pub const SECTION_NAMES: [&str; NSECTIONS] =
    ["paths", "files", "name_fst", "blocks", "runs", "subtoken_fst", "subtoken_idx", "subtoken_ids"];

/// The header for `sections` laid out back to back after it.
pub fn header(sections: &[Vec<u8>]) -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&(NSECTIONS as u32).to_le_bytes());
    let mut off = HEADER_LEN as u64;
    let mut body_hash = xxhash_rust::xxh3::Xxh3::new();
    for s in sections {
        header.extend_from_slice(&off.to_le_bytes());
        header.extend_from_slice(&(s.len() as u64).to_le_bytes());
        off += s.len() as u64;
        body_hash.update(s);
    }
    header.extend_from_slice(&body_hash.digest().to_le_bytes());
    header
}

/// Checks the header of the mapped file `b` and returns each section's
/// byte range (within the file; the body is not read: see `check_body`).
pub fn sections(path: &Path, b: &[u8]) -> Result<[(usize, usize); NSECTIONS]> {
    let bad = |r: &str| Error::corrupt(path, format!("symbol file: {r}"));
    if b.len() < 12 || &b[..8] != MAGIC {
        return Err(bad("not a lens symbol file"));
    }
    // The version before the length check: an older file's header is
    // another size, and it should say "rebuild", not "damaged".
    let version = u32_at(b, 8);
    if version != VERSION {
        return Err(Error::Version { path: path.to_path_buf(), found: version, supported: VERSION });
    }
    if b.len() < HEADER_LEN || u32_at(b, 12) as usize != NSECTIONS {
        return Err(bad("wrong section count"));
    }
    let mut sections = [(0usize, 0usize); NSECTIONS];
    let mut expect = HEADER_LEN as u64;
    for (i, s) in sections.iter_mut().enumerate() {
        let off = u64_at(b, 16 + i * 16);
        let len = u64_at(b, 24 + i * 16);
        if off != expect || off.checked_add(len).is_none_or(|e| e > b.len() as u64) {
            return Err(bad("section table out of bounds"));
        }
        expect = off + len;
        *s = (off as usize, (off + len) as usize);
    }
    if expect != b.len() as u64 {
        return Err(bad("trailing bytes"));
    }
    Ok(sections)
}

/// Checks the body of the mapped file `b` (whose header `sections` passed)
/// against the header's checksum: one pass over every byte.
pub fn check_body(path: &Path, b: &[u8]) -> Result<()> {
    if xxh3_64(&b[HEADER_LEN..]) != u64_at(b, HEADER_LEN - 8) {
        return Err(Error::corrupt(path, "symbol file: checksum mismatch"));
    }
    Ok(())
}
