//! The WAL writer: an in-memory buffer of framed records in front of the
//! active segment file, segment rotation, and sequence numbers for group
//! commit.
//!
//! Segment files are preallocated (sparse, in steps of [`PREALLOC_STEP`]) so
//! that an fsync after a write does not also have to commit a new file size;
//! the writer writes at its own position, and a closed segment is truncated
//! to its real length. A zero-filled tail is what recovery expects of the
//! newest segment anyway (a torn tail).
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

/// A segment file is extended (sparsely) this much at a time.
pub const PREALLOC_STEP: u64 = 4 << 20;

#[derive(Debug)]
pub struct WalWriter {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    file: Arc<dyn StorageFile>,
    segment: u64,
    /// Bytes in the active segment, written or buffered.
    segment_len: u64,
    /// Bytes of the active segment on disk (written; the buffer excluded).
    written_len: u64,
    /// The active segment file's length, preallocation included.
    allocated: u64,
    buffer: Vec<u8>,
    /// Last sequence number handed out.
    seq: u64,
    /// Every record up to this sequence number is in the file.
    written_seq: u64,
    /// Bytes of segments closed since the last snapshot.
    closed_bytes: u64,
    /// Preallocation step.
    prealloc: u64,
}

/// Creates segment `n`: header written, file preallocated and synced,
/// directory synced. Returns the file and its allocated length.
fn create_segment(
    storage: &dyn Storage,
    dir: &Path,
    n: u64,
    prealloc: u64,
) -> Result<(Arc<dyn StorageFile>, u64)> {
    let path = dir.join(segment_name(n));
    let file = storage
        .open(&path, OpenMode::Create)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    file.write_all(&segment_header(n))
        .map_err(|e| Error::io(format!("writing the header of {}", path.display()), e))?;
    let allocated = prealloc.max(super::format::SEGMENT_HEADER_LEN as u64);
    file.set_len(allocated)
        .map_err(|e| Error::io(format!("preallocating {}", path.display()), e))?;
    file.sync_data()
        .map_err(|e| Error::io(format!("syncing {}", path.display()), e))?;
    storage
        .sync_dir(dir)
        .map_err(|e| Error::io(format!("syncing directory {}", dir.display()), e))?;
    Ok((file, allocated))
}

impl WalWriter {
    /// Starts writing in a new segment `n`, preallocated in steps of
    /// [`PREALLOC_STEP`] (or `segment_size` when smaller).
    pub fn create(
        storage: Arc<dyn Storage>,
        dir: &Path,
        n: u64,
        closed_bytes: u64,
        segment_size: u64,
    ) -> Result<Self> {
        let prealloc = PREALLOC_STEP.min(segment_size);
        let (file, allocated) = create_segment(&*storage, dir, n, prealloc)?;
        let header = super::format::SEGMENT_HEADER_LEN as u64;
        Ok(WalWriter {
            storage,
            dir: dir.to_owned(),
            file,
            segment: n,
            segment_len: header,
            written_len: header,
            allocated,
            buffer: Vec::with_capacity(64 * 1024),
            seq: 0,
            written_seq: 0,
            closed_bytes,
            prealloc,
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
            let path = || self.dir.join(segment_name(self.segment));
            let end = self.written_len + self.buffer.len() as u64;
            if end > self.allocated {
                // Extend ahead of the data, so most fsyncs find the size
                // unchanged.
                let target = end.div_ceil(self.prealloc) * self.prealloc;
                self.file
                    .set_len(target)
                    .map_err(|e| Error::io(format!("extending {}", path().display()), e))?;
                self.allocated = target;
            }
            self.file
                .write_at(&self.buffer, self.written_len)
                .map_err(|e| Error::io(format!("writing {}", path().display()), e))?;
            self.written_len = end;
            self.buffer.clear();
            if self.buffer.capacity() > 4 * FLUSH_THRESHOLD {
                self.buffer.shrink_to(64 * 1024);
            }
        }
        self.written_seq = self.seq;
        Ok((Arc::clone(&self.file), self.written_seq))
    }

    /// Writes the buffer, cuts the preallocated tail and syncs: the segment
    /// ends exactly after its last record.
    pub fn finish(&mut self) -> Result<Arc<dyn StorageFile>> {
        let (file, _) = self.flush()?;
        let path = self.dir.join(segment_name(self.segment));
        file.set_len(self.written_len)
            .map_err(|e| Error::io(format!("truncating {}", path.display()), e))?;
        self.allocated = self.written_len;
        file.sync_data()
            .map_err(|e| Error::io(format!("syncing {}", path.display()), e))?;
        Ok(file)
    }

    /// Closes the active segment (written and synced) and starts segment
    /// `n + 1`. Returns the closed segment's number; everything up to the
    /// current sequence number is durable afterwards.
    pub fn rotate(&mut self) -> Result<u64> {
        self.finish()?;
        let closed = self.segment;
        let (file, allocated) =
            create_segment(&*self.storage, &self.dir, closed + 1, self.prealloc)?;
        self.file = file;
        self.allocated = allocated;
        self.closed_bytes += self.segment_len;
        self.segment = closed + 1;
        self.segment_len = super::format::SEGMENT_HEADER_LEN as u64;
        self.written_len = self.segment_len;
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
