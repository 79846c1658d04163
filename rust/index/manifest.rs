//! The manifest: which segments make up the index, which of their files are
//! dead, and the build's bookkeeping. Replacing it (temporary file, fsync,
//! rename) is the one atomic step that commits a build or a refresh.
//!
//! Reading it trusts nothing: the manifest is opened as a regular file only
//! (no links, FIFOs or devices), its checksum checked, and every file it
//! names must be a plain lens name (`dir::is_segment_name`,
//! `dir::is_symbol_name`), named once, with a recorded identity (xxh3 of
//! the file's header) that the open compares against the file itself.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use super::build::Skipped;
use super::dir::{is_segment_name, is_symbol_name};
use super::format::FORMAT_VERSION;
use super::fsafe::{open_index_file, read_capped};
use crate::error::{Error, Result};

pub const FILE_NAME: &str = "MANIFEST";
const FIRST_LINE: &str = "lens index manifest";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SegmentEntry {
    pub name: String,
    /// Ids of files in this segment that a refresh replaced or removed.
    pub deleted: Vec<u32>,
}

/// A manifest over 256 MiB is not one lens wrote.
const MAX_MANIFEST_BYTES: u64 = 256 << 20;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format_version: u32,
    pub generation: u64,
    /// The directory's index id (its marker's); every segment carries it.
    pub index_id: u64,
    /// Each named file's identity (`fsafe::identity_of` its header).
    pub identities: BTreeMap<String, u64>,
    pub root: String,
    pub max_file_bytes: u64,
    #[serde(default)]
    pub exclude: Vec<String>,
    pub segments: Vec<SegmentEntry>,
    pub skipped: Vec<Skipped>,
    pub build_seconds: f64,
    pub built_unix: u64,
    pub refreshed_unix: Option<u64>,
    pub extra: BTreeMap<String, String>,
    /// The symbol file of this generation (Stage-B), if symbols were built.
    #[serde(default)]
    pub symbols: Option<String>,
    /// Symbol files refreshes wrote since the base, oldest first.
    #[serde(default)]
    pub symbol_deltas: Vec<SymbolDelta>,
}

/// A refresh's symbol file and the paths whose older symbols it replaces
/// (changed and removed files).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SymbolDelta {
    pub name: String,
    pub superseded: Vec<String>,
}

/// Whether `path` starts like a lens manifest (of any version).
pub fn looks_like_manifest(path: &Path) -> bool {
    let Ok((f, _)) = open_index_file(path) else { return false };
    let mut head = Vec::new();
    f.take(FIRST_LINE.len() as u64).read_to_end(&mut head).is_ok() && head == FIRST_LINE.as_bytes()
}

impl Manifest {
    /// A manifest naming nothing (what a directory without one holds).
    pub fn empty() -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            generation: 0,
            index_id: 0,
            identities: BTreeMap::new(),
            root: String::new(),
            max_file_bytes: 0,
            exclude: Vec::new(),
            segments: Vec::new(),
            skipped: Vec::new(),
            build_seconds: 0.0,
            built_unix: 0,
            refreshed_unix: None,
            extra: BTreeMap::new(),
            symbols: None,
            symbol_deltas: Vec::new(),
        }
    }

    /// Every file the manifest names: segments, then symbol files.
    pub fn file_names(&self) -> impl Iterator<Item = &str> {
        self.segments
            .iter()
            .map(|s| s.name.as_str())
            .chain(self.symbols.as_deref())
            .chain(self.symbol_deltas.iter().map(|d| d.name.as_str()))
    }

    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(FILE_NAME);
        match fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::io(dir, std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory")))
            }
            Err(e) => return Err(Error::io(dir, e)),
        }
        let (file, meta) = match open_index_file(&path) {
            Ok(f) => f,
            Err(Error::NotFound(_)) => return Err(Error::corrupt(dir, "not a lens index (no MANIFEST)")),
            Err(e) => return Err(e),
        };
        let bad = |r: &str| Error::corrupt(&path, r.to_string());
        let text = read_capped(&file, meta.len(), MAX_MANIFEST_BYTES)
            .map_err(|e| Error::io(&path, e))?
            .ok_or_else(|| bad("manifest is implausibly large"))?;
        let text = std::str::from_utf8(&text).map_err(|_| bad("manifest is not UTF-8"))?;
        let mut lines = text.splitn(3, '\n');
        if lines.next() != Some(FIRST_LINE) {
            return Err(bad("not a lens manifest"));
        }
        let sum = lines.next().ok_or_else(|| bad("manifest is truncated"))?;
        let body = lines.next().ok_or_else(|| bad("manifest is truncated"))?;
        // Read the version before trusting the checksum: a newer lens may
        // have changed everything after it, and that deserves its own error.
        let value: serde_json::Value =
            serde_json::from_str(body).map_err(|_| bad("manifest body is not valid JSON"))?;
        let version = value
            .get("format_version")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| bad("manifest has no format version"))?;
        if version != u64::from(FORMAT_VERSION) {
            return Err(Error::Version { path, found: version as u32, supported: FORMAT_VERSION });
        }
        if format!("{:016x}", xxh3_64(body.as_bytes())) != sum {
            return Err(bad("manifest checksum mismatch"));
        }
        let m: Manifest =
            serde_json::from_value(value).map_err(|e| bad(&format!("manifest does not match the format: {e}")))?;
        m.check().map_err(|r| bad(&r))?;
        Ok(m)
    }

    /// What the checksum cannot vouch for (a crafted manifest carries a
    /// valid one): names, duplicates, identities.
    fn check(&self) -> std::result::Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for s in &self.segments {
            if !is_segment_name(&s.name) {
                return Err(format!("manifest names a segment {:?}, not a lens segment name", s.name));
            }
            if s.deleted.windows(2).any(|w| w[0] >= w[1]) {
                return Err(format!("manifest's deleted files of {} are not strictly increasing", s.name));
            }
        }
        for name in self.symbols.iter().chain(self.symbol_deltas.iter().map(|d| &d.name)) {
            if !is_symbol_name(name) {
                return Err(format!("manifest names a symbol file {name:?}, not a lens symbol file name"));
            }
        }
        for name in self.file_names() {
            if !seen.insert(name) {
                return Err(format!("manifest names {name} twice"));
            }
            if !self.identities.contains_key(name) {
                return Err(format!("manifest records no identity for {name}"));
            }
        }
        Ok(())
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(FILE_NAME);
        let tmp = dir.join("MANIFEST.tmp");
        let body = serde_json::to_string_pretty(self).expect("manifest serializes");
        let text = format!("{FIRST_LINE}\n{:016x}\n{body}", xxh3_64(body.as_bytes()));
        let io = |e| Error::io(&tmp, e);
        let mut f = File::create(&tmp).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    pub fn skipped_counts(&self) -> BTreeMap<String, u64> {
        super::build::skipped_counts(&self.skipped)
    }
}
