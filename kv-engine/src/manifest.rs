//! The MANIFEST: a small text file naming the current snapshot and the
//! first WAL segment to replay on top of it.
//!
//! ```text
//! # DataKnobs KV engine MANIFEST
//! format 1
//! snapshot snap-00000000000000000007.snap
//! wal_start 7
//! timestamp 1732233600000
//! crc 3f1a9c2e
//! ```
//!
//! `snapshot none` when there is none. The `crc` line is the CRC32 (hex) of
//! every line before it. The file is only ever replaced whole: written to
//! `MANIFEST.tmp`, synced, renamed over `MANIFEST`, and the directory synced.
//! Files it does not name (older snapshots and segments) may be deleted only
//! after that.

use std::path::Path;

use crate::error::{Error, Result};
use crate::storage::{OpenMode, Storage};

/// The MANIFEST file name.
pub const MANIFEST: &str = "MANIFEST";
/// The temporary name it is written under.
pub const MANIFEST_TMP: &str = "MANIFEST.tmp";
const FORMAT: u32 = 1;

/// What the MANIFEST says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The current snapshot's file name, if any.
    pub snapshot: Option<String>,
    /// First WAL segment to replay.
    pub wal_start: u64,
    /// When the MANIFEST was written (ms since the epoch).
    pub timestamp: u64,
}

impl Manifest {
    /// The text of the file.
    pub fn render(&self) -> String {
        let body = format!(
            "# DataKnobs KV engine MANIFEST\nformat {FORMAT}\nsnapshot {}\nwal_start {}\ntimestamp {}\n",
            self.snapshot.as_deref().unwrap_or("none"),
            self.wal_start,
            self.timestamp
        );
        let crc = crc32fast::hash(body.as_bytes());
        format!("{body}crc {crc:08x}\n")
    }

    /// Parses the text of the file; `path` names it in errors.
    pub fn parse(text: &[u8], path: &Path) -> Result<Manifest> {
        let bad = |reason: &str| Error::corruption(path, 0, reason);
        let text = std::str::from_utf8(text).map_err(|_| bad("MANIFEST is not UTF-8"))?;
        let crc_at = text
            .rfind("crc ")
            .ok_or_else(|| bad("MANIFEST has no crc line"))?;
        let (body, crc_line) = text.split_at(crc_at);
        let stored = u32::from_str_radix(crc_line.trim_start_matches("crc ").trim(), 16)
            .map_err(|_| bad("MANIFEST crc line is malformed"))?;
        if stored != crc32fast::hash(body.as_bytes()) {
            return Err(bad("MANIFEST checksum mismatch"));
        }
        let (mut format, mut snapshot, mut wal_start, mut timestamp) = (None, None, None, None);
        for line in body.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (k, v) = line
                .split_once(' ')
                .ok_or_else(|| bad("MANIFEST line without a value"))?;
            match k {
                "format" => format = v.parse::<u32>().ok(),
                "snapshot" => snapshot = Some((v != "none").then(|| v.to_owned())),
                "wal_start" => wal_start = v.parse::<u64>().ok(),
                "timestamp" => timestamp = v.parse::<u64>().ok(),
                _ => return Err(bad("MANIFEST has an unknown line")),
            }
        }
        if format != Some(FORMAT) {
            return Err(bad("MANIFEST format is missing or unknown"));
        }
        Ok(Manifest {
            snapshot: snapshot.ok_or_else(|| bad("MANIFEST names no snapshot"))?,
            wal_start: wal_start.ok_or_else(|| bad("MANIFEST has no wal_start"))?,
            timestamp: timestamp.ok_or_else(|| bad("MANIFEST has no timestamp"))?,
        })
    }

    /// Reads `dir/MANIFEST`; `Ok(None)` when there is none.
    pub fn load(storage: &dyn Storage, dir: &Path) -> Result<Option<Manifest>> {
        let path = dir.join(MANIFEST);
        match storage.read(&path) {
            Ok(text) => Manifest::parse(&text, &path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    /// Replaces `dir/MANIFEST`: temp file, sync, rename, sync directory.
    pub fn store(&self, storage: &dyn Storage, dir: &Path) -> Result<()> {
        let tmp = dir.join(MANIFEST_TMP);
        let path = dir.join(MANIFEST);
        let io = |what: &str, e| Error::io(format!("{what} {}", tmp.display()), e);
        let file = storage
            .open(&tmp, OpenMode::Create)
            .map_err(|e| io("creating", e))?;
        file.write_all(self.render().as_bytes())
            .map_err(|e| io("writing", e))?;
        file.sync_data().map_err(|e| io("syncing", e))?;
        drop(file);
        storage.rename(&tmp, &path).map_err(|e| {
            Error::io(
                format!("renaming {} to {}", tmp.display(), path.display()),
                e,
            )
        })?;
        storage
            .sync_dir(dir)
            .map_err(|e| Error::io(format!("syncing directory {}", dir.display()), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_parses() {
        let m = Manifest {
            snapshot: Some("snap-00000000000000000007.snap".into()),
            wal_start: 7,
            timestamp: 1_732_233_600_000,
        };
        let text = m.render();
        assert!(text.contains("wal_start 7\n"));
        assert_eq!(
            Manifest::parse(text.as_bytes(), Path::new("M")).ok(),
            Some(m.clone())
        );
        let none = Manifest {
            snapshot: None,
            ..m
        };
        assert_eq!(
            Manifest::parse(none.render().as_bytes(), Path::new("M")).ok(),
            Some(none)
        );
    }

    #[test]
    fn tampering_is_detected() {
        let m = Manifest {
            snapshot: None,
            wal_start: 3,
            timestamp: 9,
        };
        let text = m.render().replace("wal_start 3", "wal_start 4");
        assert!(Manifest::parse(text.as_bytes(), Path::new("M")).is_err());
        assert!(Manifest::parse(b"garbage", Path::new("M")).is_err());
    }
}
