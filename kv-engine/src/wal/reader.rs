//! Replaying a segment: whole batches only, torn tails cut, corruption
//! reported.
//!
//! Where a frame cannot be read, the rest of the segment decides what it
//! was:
//!
//! - no valid frame anywhere after it, in the last segment: a torn tail (a
//!   write cut short, or zeros or garbage after the end). Everything before
//!   it is kept, and the caller truncates the file there, so every later
//!   open sees the same records;
//! - a valid frame after it, or any bad frame in an earlier segment:
//!   [`Error::Corruption`] with the file and offset. Records are never
//!   skipped silently.
//!
//! A batch whose BATCH_END is missing at the tail is a torn tail too: the
//! whole batch is dropped and the file is cut before its BATCH_START.

use std::path::Path;

use super::format::{
    self, Frame, Kind, Record, SEGMENT_HEADER_LEN, SEGMENT_MAGIC, SEGMENT_VERSION,
};
use crate::error::{Error, Result};

/// One change replayed from the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<'a> {
    /// Set `key` to `value`, expiring at `expires_at` (0 = never).
    Set {
        /// The key.
        key: &'a [u8],
        /// The value.
        value: &'a [u8],
        /// Expiry, ms since the epoch; 0 = never.
        expires_at: u64,
    },
    /// Remove `key`.
    Delete {
        /// The key.
        key: &'a [u8],
    },
}

impl<'a> Change<'a> {
    fn of(r: &Record<'a>) -> Change<'a> {
        match r.kind {
            Kind::Delete => Change::Delete { key: r.key },
            _ => Change::Set {
                key: r.key,
                value: r.value,
                expires_at: r.expires_at,
            },
        }
    }
}

/// What replaying a segment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// Bytes of the segment that hold whole records (the header included).
    pub valid_len: u64,
    /// Whether bytes after `valid_len` were dropped as a torn tail.
    pub torn: bool,
    /// Records applied (batch markers not counted).
    pub records: u64,
}

/// Whether a valid frame starts anywhere in `buf` after position 0.
fn valid_frame_after(buf: &[u8]) -> bool {
    (1..buf.len().saturating_sub(format::FRAME_HEADER_LEN - 1))
        .any(|pos| matches!(format::parse(&buf[pos..]), Frame::Valid { .. }))
}

/// Replays segment `number` held in `bytes`, calling `apply` once per group
/// of changes that must be applied together (a single record, or a whole
/// batch). `last` says whether this is the newest segment, the only one
/// allowed a torn tail.
pub fn replay(
    path: &Path,
    number: u64,
    bytes: &[u8],
    last: bool,
    mut apply: impl FnMut(&[Change<'_>]),
) -> Result<Replayed> {
    let corrupt = |offset: usize, reason: &str| Error::corruption(path, offset as u64, reason);
    if bytes.len() < SEGMENT_HEADER_LEN {
        // A segment whose header never fully reached the disk holds nothing.
        if last && SEGMENT_MAGIC.starts_with(&bytes[..bytes.len().min(8)]) {
            // Created but its header never fully written (an empty file
            // included): a torn tail of length zero.
            return Ok(Replayed {
                valid_len: 0,
                torn: true,
                records: 0,
            });
        }
        return Err(corrupt(0, "segment shorter than its header"));
    }
    if &bytes[..8] != SEGMENT_MAGIC {
        return Err(corrupt(0, "not a WAL segment (bad magic)"));
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != SEGMENT_VERSION {
        return Err(corrupt(8, "unknown WAL format version"));
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&bytes[12..20]);
    if u64::from_le_bytes(n) != number {
        return Err(corrupt(12, "segment number does not match the file name"));
    }

    let mut at = SEGMENT_HEADER_LEN;
    let mut records = 0u64;
    // An open batch: where it started, how many records it announced, and
    // the changes so far.
    let mut batch: Option<(usize, u32, Vec<Change<'_>>)> = None;
    while at < bytes.len() {
        match format::parse(&bytes[at..]) {
            Frame::Valid { record, len } => {
                match (record.kind, &mut batch) {
                    (Kind::BatchStart, None) => {
                        let mut c = [0u8; 4];
                        c.copy_from_slice(record.value);
                        batch = Some((at, u32::from_le_bytes(c), Vec::new()));
                    }
                    (Kind::BatchEnd, Some((_, announced, changes))) => {
                        if changes.len() != *announced as usize {
                            return Err(corrupt(
                                at,
                                "batch holds a different number of records than announced",
                            ));
                        }
                        records += changes.len() as u64;
                        apply(changes);
                        batch = None;
                    }
                    (Kind::Set | Kind::Delete, Some((_, _, changes))) => {
                        changes.push(Change::of(&record));
                    }
                    (Kind::Set | Kind::Delete, None) => {
                        records += 1;
                        apply(&[Change::of(&record)]);
                    }
                    (Kind::BatchStart, Some(_)) => {
                        return Err(corrupt(at, "batch started inside another batch"));
                    }
                    (Kind::BatchEnd, None) => {
                        return Err(corrupt(at, "batch end without a start"));
                    }
                }
                at += len;
            }
            Frame::Incomplete | Frame::Bad(_) => {
                let reason = match format::parse(&bytes[at..]) {
                    Frame::Bad(r) => r,
                    _ => "record cut short",
                };
                // Zeros to the end (a preallocated tail) hold no frame; only
                // other bytes need the scan for a valid frame after this one.
                let zeros = bytes[at..].iter().all(|&b| b == 0);
                if !last || (!zeros && valid_frame_after(&bytes[at..])) {
                    return Err(corrupt(at, reason));
                }
                let cut = batch.as_ref().map_or(at, |(start, _, _)| *start);
                return Ok(Replayed {
                    valid_len: cut as u64,
                    torn: true,
                    records,
                });
            }
        }
    }
    if let Some((start, _, _)) = batch {
        if !last {
            return Err(corrupt(start, "batch without its end"));
        }
        return Ok(Replayed {
            valid_len: start as u64,
            torn: true,
            records,
        });
    }
    Ok(Replayed {
        valid_len: bytes.len() as u64,
        torn: false,
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::format::{encode, segment_header};

    fn set(key: &'static [u8], value: &'static [u8]) -> Record<'static> {
        Record {
            kind: Kind::Set,
            timestamp: 1,
            key,
            value,
            expires_at: 0,
        }
    }

    fn segment(records: &[Record<'_>]) -> Vec<u8> {
        let mut out = segment_header(7).to_vec();
        for r in records {
            encode(&mut out, r);
        }
        out
    }

    fn keys(bytes: &[u8], last: bool) -> Result<(Vec<Vec<u8>>, Replayed)> {
        let mut seen = Vec::new();
        let r = replay(Path::new("wal-7.log"), 7, bytes, last, |group| {
            for c in group {
                if let Change::Set { key, .. } = c {
                    seen.push(key.to_vec());
                }
            }
        })?;
        Ok((seen, r))
    }

    #[test]
    fn torn_tail_is_cut_and_earlier_records_kept() {
        let full = segment(&[set(b"a", b"1"), set(b"b", b"2")]);
        let first_end = segment(&[set(b"a", b"1")]).len();
        for cut in first_end..full.len() {
            let (seen, r) = keys(&full[..cut], true).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
            assert_eq!(seen, vec![b"a".to_vec()], "cut {cut}");
            assert_eq!(r.valid_len as usize, first_end);
            assert_eq!(r.torn, cut != first_end);
        }
    }

    #[test]
    fn bad_record_followed_by_valid_ones_is_corruption() {
        let mut bytes = segment(&[set(b"a", b"1"), set(b"b", b"2"), set(b"c", b"3")]);
        let second = segment(&[set(b"a", b"1")]).len();
        bytes[second + 9] ^= 0x01;
        match keys(&bytes, true) {
            Err(Error::Corruption { offset, .. }) => assert_eq!(offset as usize, second),
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn torn_tail_in_an_older_segment_is_corruption() {
        let full = segment(&[set(b"a", b"1"), set(b"b", b"2")]);
        assert!(matches!(
            keys(&full[..full.len() - 1], false),
            Err(Error::Corruption { .. })
        ));
    }

    #[test]
    fn batch_without_end_is_dropped() {
        let start = Record {
            kind: Kind::BatchStart,
            timestamp: 1,
            key: b"",
            value: &[2, 0, 0, 0],
            expires_at: 0,
        };
        let end = Record {
            kind: Kind::BatchEnd,
            timestamp: 1,
            key: b"",
            value: b"",
            expires_at: 0,
        };
        let whole = segment(&[
            set(b"a", b"1"),
            start,
            set(b"b", b"2"),
            set(b"c", b"3"),
            end,
        ]);
        let (seen, _) = keys(&whole, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(seen.len(), 3);
        let without_end = segment(&[set(b"a", b"1"), start, set(b"b", b"2"), set(b"c", b"3")]);
        let (seen, r) = keys(&without_end, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(seen, vec![b"a".to_vec()]);
        assert_eq!(r.valid_len as usize, segment(&[set(b"a", b"1")]).len());
    }

    #[test]
    fn zeros_and_garbage_after_the_end_are_a_torn_tail() {
        let mut bytes = segment(&[set(b"a", b"1")]);
        let end = bytes.len();
        bytes.extend_from_slice(&[0u8; 4096]);
        let (seen, r) = keys(&bytes, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(seen.len(), 1);
        assert_eq!(r.valid_len as usize, end);
    }
}
