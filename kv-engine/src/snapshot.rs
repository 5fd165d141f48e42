//! Snapshots: every live key in order, with a footer CRC.
//!
//! ```text
//! header  := magic "MINIKVSN" | version:u32 LE | timestamp:u64 LE
//!            | count:u64 LE | wal_start:u64 LE                  (36 bytes)
//! entry   := key_len:varint | key | value_len:varint | value | expires_at:varint
//! footer  := crc:u32 LE   CRC32 (IEEE) of header and entries
//! ```
//!
//! Entries are in strictly ascending key order; `count` is their number and
//! `wal_start` the first WAL segment *not* included. Snapshots are streamed
//! in both directions, so memory does not grow with the database.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::storage::{OpenMode, Storage, StorageFile};
use crate::varint;

/// Snapshot magic.
pub const MAGIC: &[u8; 8] = b"MINIKVSN";
/// Snapshot format version.
pub const VERSION: u32 = 1;
/// Header length.
pub const HEADER_LEN: usize = 36;
/// Footer length.
pub const FOOTER_LEN: usize = 4;

const CHUNK: usize = 1 << 20;

/// File name of the snapshot that pairs with WAL segments from `wal_start`.
pub fn snapshot_name(wal_start: u64) -> String {
    format!("snap-{wal_start:020}.snap")
}

/// The `wal_start` of a snapshot file name.
pub fn parse_snapshot_name(name: &str) -> Option<u64> {
    name.strip_prefix("snap-")?
        .strip_suffix(".snap")?
        .parse()
        .ok()
}

/// What a snapshot's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// When it was written (ms since the epoch).
    pub timestamp: u64,
    /// Number of entries.
    pub count: u64,
    /// First WAL segment not included.
    pub wal_start: u64,
}

fn header(info: &SnapshotInfo) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&info.timestamp.to_le_bytes());
    h[20..28].copy_from_slice(&info.count.to_le_bytes());
    h[28..36].copy_from_slice(&info.wal_start.to_le_bytes());
    h
}

/// Writes a snapshot, entry by entry.
pub struct SnapshotWriter {
    file: Arc<dyn StorageFile>,
    path: PathBuf,
    info: SnapshotInfo,
    entries_crc: crc32fast::Hasher,
    buf: Vec<u8>,
    last_key: Option<Vec<u8>>,
    bytes: u64,
}

impl SnapshotWriter {
    /// Starts a snapshot at `path` (created or truncated).
    pub fn create(
        storage: &dyn Storage,
        path: &Path,
        timestamp: u64,
        wal_start: u64,
    ) -> Result<Self> {
        let file = storage
            .open(path, OpenMode::Create)
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        let info = SnapshotInfo {
            timestamp,
            count: 0,
            wal_start,
        };
        let mut w = SnapshotWriter {
            file,
            path: path.to_owned(),
            info,
            entries_crc: crc32fast::Hasher::new(),
            buf: Vec::with_capacity(CHUNK + 4096),
            last_key: None,
            bytes: 0,
        };
        // The count is patched in when the snapshot is finished.
        let h = header(&w.info);
        w.write(&h)?;
        Ok(w)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all(bytes)
            .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Adds an entry; keys must come in strictly ascending order.
    pub fn add(&mut self, key: &[u8], value: &[u8], expires_at: u64) -> Result<()> {
        if let Some(last) = &self.last_key {
            if key <= last.as_slice() {
                return Err(Error::InvalidArgument(
                    "snapshot keys must be strictly ascending".into(),
                ));
            }
        }
        let start = self.buf.len();
        varint::put(&mut self.buf, key.len() as u64);
        self.buf.extend_from_slice(key);
        varint::put(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(value);
        varint::put(&mut self.buf, expires_at);
        self.entries_crc.update(&self.buf[start..]);
        self.info.count += 1;
        match &mut self.last_key {
            Some(k) => {
                k.clear();
                k.extend_from_slice(key);
            }
            None => self.last_key = Some(key.to_vec()),
        }
        if self.buf.len() >= CHUNK {
            let chunk = std::mem::take(&mut self.buf);
            self.write(&chunk)?;
            self.buf = chunk;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes the footer and the final count, and syncs. Returns the
    /// snapshot's header and its size in bytes.
    pub fn finish(mut self) -> Result<(SnapshotInfo, u64)> {
        let rest = std::mem::take(&mut self.buf);
        self.write(&rest)?;
        let h = header(&self.info);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&h);
        crc.combine(&self.entries_crc);
        let footer = crc.finalize().to_le_bytes();
        self.write(&footer)?;
        self.file
            .write_at(&h, 0)
            .map_err(|e| Error::io(format!("writing the header of {}", self.path.display()), e))?;
        self.file
            .sync_data()
            .map_err(|e| Error::io(format!("syncing {}", self.path.display()), e))?;
        Ok((self.info, self.bytes))
    }
}

/// Reads a file front to back in chunks.
struct ChunkReader {
    file: Arc<dyn StorageFile>,
    path: PathBuf,
    len: u64,
    buf: Vec<u8>,
    pos: usize,
    /// File offset of `buf[0]`.
    base: u64,
}

impl ChunkReader {
    /// Makes at least `n` bytes available at `pos` (fewer at the end of the
    /// file); returns how many are available.
    fn fill(&mut self, n: usize) -> Result<usize> {
        let available = self.buf.len() - self.pos;
        if available >= n {
            return Ok(available);
        }
        self.buf.drain(..self.pos);
        self.base += self.pos as u64;
        self.pos = 0;
        let mut offset = self.base + self.buf.len() as u64;
        let want = n.max(CHUNK);
        while self.buf.len() < want && offset < self.len {
            let old = self.buf.len();
            let take = (want - old).min((self.len - offset) as usize);
            self.buf.resize(old + take, 0);
            let got = self
                .file
                .read_at(&mut self.buf[old..], offset)
                .map_err(|e| Error::io(format!("reading {}", self.path.display()), e))?;
            self.buf.truncate(old + got);
            if got == 0 {
                break;
            }
            offset += got as u64;
        }
        Ok(self.buf.len())
    }

    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }
}

/// Reads only the header of the snapshot at `path` (unchecked: the CRC is
/// verified by [`read`]). Used to size the index before loading.
pub fn read_info(storage: &dyn Storage, path: &Path) -> Result<SnapshotInfo> {
    let file = storage
        .open(path, OpenMode::Read)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let mut h = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        let n = file
            .read_at(&mut h[got..], got as u64)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if n == 0 {
            return Err(Error::corruption(
                path,
                got as u64,
                "snapshot shorter than its header",
            ));
        }
        got += n;
    }
    if &h[..8] != MAGIC {
        return Err(Error::corruption(path, 0, "not a snapshot (bad magic)"));
    }
    let u64_at = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&h[i..i + 8]);
        u64::from_le_bytes(a)
    };
    Ok(SnapshotInfo {
        timestamp: u64_at(12),
        count: u64_at(20),
        wal_start: u64_at(28),
    })
}

/// Reads the snapshot at `path`, calling `entry` for each entry in order,
/// and checks the CRC at the end. When this returns an error, whatever
/// `entry` saw must be thrown away.
pub fn read(
    storage: &dyn Storage,
    path: &Path,
    mut entry: impl FnMut(&[u8], &[u8], u64) -> Result<()>,
) -> Result<SnapshotInfo> {
    let corrupt = |offset: u64, reason: &str| Error::corruption(path, offset, reason);
    let file = storage
        .open(path, OpenMode::Read)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let len = file
        .len()
        .map_err(|e| Error::io(format!("reading the size of {}", path.display()), e))?;
    if len < (HEADER_LEN + FOOTER_LEN) as u64 {
        return Err(corrupt(0, "snapshot shorter than its header and footer"));
    }
    let entries_end = len - FOOTER_LEN as u64;
    let mut r = ChunkReader {
        file,
        path: path.to_owned(),
        len,
        buf: Vec::new(),
        pos: 0,
        base: 0,
    };
    r.fill(HEADER_LEN)?;
    let h = &r.buf[..HEADER_LEN];
    if &h[..8] != MAGIC {
        return Err(corrupt(0, "not a snapshot (bad magic)"));
    }
    let u64_at = |b: &[u8], i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(a)
    };
    let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if version != VERSION {
        return Err(corrupt(8, "unknown snapshot format version"));
    }
    let info = SnapshotInfo {
        timestamp: u64_at(h, 12),
        count: u64_at(h, 20),
        wal_start: u64_at(h, 28),
    };
    let mut crc = crc32fast::Hasher::new();
    crc.update(h);
    r.pos = HEADER_LEN;
    let mut seen = 0u64;
    let mut last_key: Vec<u8> = Vec::new();
    while r.offset() < entries_end {
        let at = r.offset();
        let remaining = (entries_end - at) as usize;
        // An entry's fixed part is at most 3 varints; fetch the lengths
        // first, then the whole entry.
        let avail = r.fill(20.min(remaining))?.min(remaining);
        let view = &r.buf[r.pos..r.pos + avail];
        let (key_len, a) = varint::get(view).ok_or_else(|| corrupt(at, "bad key length"))?;
        let key_len = usize::try_from(key_len).map_err(|_| corrupt(at, "bad key length"))?;
        if key_len == 0 || key_len > crate::wal::format::MAX_KEY_LEN || a + key_len > remaining {
            return Err(corrupt(at, "key length out of range"));
        }
        r.fill((a + key_len + 10).min(remaining))?;
        let view = &r.buf[r.pos..r.pos + (r.buf.len() - r.pos).min(remaining)];
        let (value_len, b) =
            varint::get(&view[a + key_len..]).ok_or_else(|| corrupt(at, "bad value length"))?;
        let value_len = usize::try_from(value_len).map_err(|_| corrupt(at, "bad value length"))?;
        if value_len > crate::wal::format::MAX_VALUE_LEN || a + key_len + b + value_len > remaining
        {
            return Err(corrupt(at, "value length out of range"));
        }
        let fixed = a + key_len + b + value_len;
        r.fill((fixed + 10).min(remaining))?;
        let view = &r.buf[r.pos..r.pos + (r.buf.len() - r.pos).min(remaining)];
        let (expires_at, c) =
            varint::get(&view[fixed..]).ok_or_else(|| corrupt(at, "bad expiry"))?;
        let total = fixed + c;
        let key = &view[a..a + key_len];
        let value = &view[a + key_len + b..a + key_len + b + value_len];
        if seen > 0 && key <= last_key.as_slice() {
            return Err(corrupt(at, "keys out of order"));
        }
        crc.update(&view[..total]);
        entry(key, value, expires_at)?;
        last_key.clear();
        last_key.extend_from_slice(key);
        seen += 1;
        r.pos += total;
    }
    if r.offset() != entries_end {
        return Err(corrupt(r.offset(), "entries run into the footer"));
    }
    r.fill(FOOTER_LEN)?;
    let f = &r.buf[r.pos..r.pos + FOOTER_LEN];
    let stored = u32::from_le_bytes([f[0], f[1], f[2], f[3]]);
    if stored != crc.finalize() {
        return Err(corrupt(entries_end, "snapshot checksum mismatch"));
    }
    if seen != info.count {
        return Err(corrupt(20, "entry count does not match the header"));
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::RealStorage;

    type Entries = Vec<(Vec<u8>, Vec<u8>, u64)>;

    fn write(dir: &Path, entries: &Entries) -> PathBuf {
        let path = dir.join(snapshot_name(5));
        let mut w =
            SnapshotWriter::create(&RealStorage, &path, 123, 5).unwrap_or_else(|e| panic!("{e}"));
        for (k, v, e) in entries {
            w.add(k, v, *e).unwrap_or_else(|e| panic!("{e}"));
        }
        let (info, _) = w.finish().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(info.count, entries.len() as u64);
        path
    }

    fn read_all(path: &Path) -> Result<Entries> {
        let mut out = Vec::new();
        read(&RealStorage, path, |k, v, e| {
            out.push((k.to_vec(), v.to_vec(), e));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn round_trips_across_chunks() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let entries: Vec<_> = (0..30_000u32)
            .map(|i| {
                (
                    format!("key.{i:08}").into_bytes(),
                    vec![(i % 251) as u8; (i % 97) as usize],
                    u64::from(i % 3),
                )
            })
            .collect();
        let path = write(dir.path(), &entries);
        assert_eq!(read_all(&path).unwrap_or_else(|e| panic!("{e}")), entries);
    }

    #[test]
    fn any_flipped_byte_or_cut_is_detected() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let entries: Vec<_> = (0..20u32)
            .map(|i| (format!("k{i:03}").into_bytes(), b"value".to_vec(), 0))
            .collect();
        let path = write(dir.path(), &entries);
        let good = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            std::fs::write(&path, &bad).unwrap_or_else(|e| panic!("{e}"));
            assert!(read_all(&path).is_err(), "flip at {i} went unnoticed");
        }
        for cut in 0..good.len() {
            std::fs::write(&path, &good[..cut]).unwrap_or_else(|e| panic!("{e}"));
            assert!(read_all(&path).is_err(), "cut at {cut} went unnoticed");
        }
    }
}
