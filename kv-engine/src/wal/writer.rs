//! The WAL writer: an in-memory buffer of framed records in front of the
//! active segment file, segment rotation, and sequence numbers for group
//! commit.
//!
//! Every record gets a sequence number when it is appended to the buffer.
//! `flush` writes the buffer to the file (one `write`), and `sync` makes
//! what was written durable. Callers hold the writer's mutex for `append`
//! and `flush` but call `sync_data` on the returned file handle without it,
//! so other writers keep appending while an fsync runs (group commit).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::segment_header;
use crate::error::{Error, Result};
use crate::storage::{OpenMode, Storage, StorageFile};

/// File name of segment `n`.
pub fn segment_name(n: u64) -> String {
    format!("wal-{n:020}.log")
}

/// The segment number of a file name, if it is a segment.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    name.strip_prefix("wal-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

/// Bytes kept in memory before a `write` even when nobody asked for one.
const FLUSH_THRESHOLD: usize = 256 * 1024;

#[derive(Debug)]
pub struct WalWriter {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    file: Arc<dyn StorageFile>,
    segment: u64,
    /// Bytes in the active segment, written or buffered.
    segment_len: u64,
    buffer: Vec<u8>,
    /// Last sequence number handed out.
    seq: u64,
    /// Every record up to this sequence number is in the file.
    written_seq: u64,
    /// Bytes of segments closed since the last snapshot.
    closed_bytes: u64,
}

/// Creates segment `n`: header written and synced, directory synced.
fn create_segment(storage: &dyn Storage, dir: &Path, n: u64) -> Result<Arc<dyn StorageFile>> {
    let path = dir.join(segment_name(n));
    let file = storage
        .open(&path, OpenMode::Create)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    file.write_all(&segment_header(n))
        .map_err(|e| Error::io(format!("writing the header of {}", path.display()), e))?;
    file.sync_data()
        .map_err(|e| Error::io(format!("syncing {}", path.display()), e))?;
    storage
        .sync_dir(dir)
        .map_err(|e| Error::io(format!("syncing directory {}", dir.display()), e))?;
    Ok(file)
}

impl WalWriter {
    /// Starts writing in a new segment `n`.
    pub fn create(
        storage: Arc<dyn Storage>,
        dir: &Path,
        n: u64,
        closed_bytes: u64,
    ) -> Result<Self> {
        let file = create_segment(&*storage, dir, n)?;
        Ok(WalWriter {
            storage,
            dir: dir.to_owned(),
            file,
            segment: n,
            segment_len: super::format::SEGMENT_HEADER_LEN as u64,
            buffer: Vec::with_capacity(64 * 1024),
            seq: 0,
            written_seq: 0,
            closed_bytes,
        })
    }

    /// The active segment's number.
    pub fn segment(&self) -> u64 {
        self.segment
    }

    /// Bytes of the active segment.
    pub fn segment_len(&self) -> u64 {
        self.segment_len
    }

    /// Bytes of WAL since the last snapshot (closed segments and the active
    /// one).
    pub fn wal_bytes(&self) -> u64 {
        self.closed_bytes + self.segment_len
    }

    /// Forgets closed segments that a snapshot now covers.
    pub fn snapshot_taken(&mut self, covered_bytes: u64) {
        self.closed_bytes = self.closed_bytes.saturating_sub(covered_bytes);
    }

    /// Appends framed records (one group: a record or a whole batch) to the
    /// buffer; returns their sequence number.
    pub fn append(&mut self, frames: &[u8]) -> u64 {
        self.buffer.extend_from_slice(frames);
        self.segment_len += frames.len() as u64;
        self.seq += 1;
        self.seq
    }

    /// Whether the buffer is large enough to write without being asked.
    pub fn should_flush(&self) -> bool {
        self.buffer.len() >= FLUSH_THRESHOLD
    }

    /// Writes the buffer to the file. Returns the file and the sequence
    /// number now written, for a `sync_data` outside the caller's lock.
    pub fn flush(&mut self) -> Result<(Arc<dyn StorageFile>, u64)> {
        if !self.buffer.is_empty() {
            self.file.write_all(&self.buffer).map_err(|e| {
                Error::io(
                    format!(
                        "writing {}",
                        self.dir.join(segment_name(self.segment)).display()
                    ),
                    e,
                )
            })?;
            self.buffer.clear();
            if self.buffer.capacity() > 4 * FLUSH_THRESHOLD {
                self.buffer.shrink_to(64 * 1024);
            }
        }
        self.written_seq = self.seq;
        Ok((Arc::clone(&self.file), self.written_seq))
    }

    /// Closes the active segment (written and synced) and starts segment
    /// `n + 1`. Returns the closed segment's number; everything up to the
    /// current sequence number is durable afterwards.
    pub fn rotate(&mut self) -> Result<u64> {
        let (file, _) = self.flush()?;
        file.sync_data().map_err(|e| {
            Error::io(
                format!(
                    "syncing {}",
                    self.dir.join(segment_name(self.segment)).display()
                ),
                e,
            )
        })?;
        let closed = self.segment;
        self.file = create_segment(&*self.storage, &self.dir, closed + 1)?;
        self.closed_bytes += self.segment_len;
        self.segment = closed + 1;
        self.segment_len = super::format::SEGMENT_HEADER_LEN as u64;
        Ok(closed)
    }

    /// The last sequence number handed out.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(parse_segment_name(&segment_name(42)), Some(42));
        assert_eq!(parse_segment_name("wal-x.log"), None);
        assert_eq!(parse_segment_name("MANIFEST"), None);
        assert!(segment_name(9) < segment_name(10));
    }
}
