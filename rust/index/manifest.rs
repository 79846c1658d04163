//! The manifest: which segments make up the index, which of their files are
//! dead, and the build's bookkeeping. Replacing it (temporary file, fsync,
//! rename) is the one atomic step that commits a build or a refresh.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use super::build::Skipped;
use super::format::FORMAT_VERSION;
use crate::error::{Error, Result};

pub const FILE_NAME: &str = "MANIFEST";
const FIRST_LINE: &str = "lens index manifest";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SegmentEntry {
    pub name: String,
    /// Ids of files in this segment that a refresh replaced or removed.
    pub deleted: Vec<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format_version: u32,
    pub generation: u64,
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

impl Manifest {
    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(FILE_NAME);
        if !dir.is_dir() {
            return Err(Error::NotFound(dir.to_path_buf()));
        }
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::corrupt(dir, "not a lens index (no MANIFEST)"));
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let bad = |r: &str| Error::corrupt(&path, r.to_string());
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
        serde_json::from_value(value).map_err(|e| bad(&format!("manifest does not match the format: {e}")))
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
