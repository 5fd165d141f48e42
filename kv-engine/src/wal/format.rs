//! The WAL's byte format (documented in `docs/engine-format.md`).
//!
//! A segment file `wal-NNNNNNNNNNNNNNNNNNNN.log` starts with a 20-byte
//! header: magic `MINIKVWL`, format version (u32 LE), segment number (u64
//! LE). Then frames:
//!
//! ```text
//! frame   := len:u32 LE | crc:u32 LE | payload (len bytes, len >= 1)
//! crc     := CRC32 (IEEE) of payload
//! payload := type:u8 | timestamp:varint | key_len:varint | key
//!            | value_len:varint | value | expires_at:varint
//! ```
//!
//! `type` is SET (1), DELETE (2), BATCH_START (3) or BATCH_END (4);
//! `timestamp` and `expires_at` are milliseconds since the Unix epoch,
//! `expires_at` 0 meaning none. DELETE has an empty value; the batch markers
//! have an empty key, and BATCH_START's value is the number of records in the
//! batch as a u32 LE. Records between BATCH_START and BATCH_END are applied
//! together or, when the end is missing, not at all.

use crate::varint;

/// Segment magic.
pub const SEGMENT_MAGIC: &[u8; 8] = b"MINIKVWL";
/// Segment format version.
pub const SEGMENT_VERSION: u32 = 1;
/// Length of the segment header.
pub const SEGMENT_HEADER_LEN: usize = 20;
/// Length of a frame header (len + crc).
pub const FRAME_HEADER_LEN: usize = 8;
/// Largest key the format takes.
pub const MAX_KEY_LEN: usize = 64 * 1024;
/// Largest value the format takes.
pub const MAX_VALUE_LEN: usize = 1 << 30;
/// Largest payload a frame may declare.
pub const MAX_PAYLOAD_LEN: usize = MAX_KEY_LEN + MAX_VALUE_LEN + 64;

/// Record types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Set a key.
    Set = 1,
    /// Delete a key.
    Delete = 2,
    /// Start of an atomic batch.
    BatchStart = 3,
    /// End of an atomic batch.
    BatchEnd = 4,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Set,
            2 => Kind::Delete,
            3 => Kind::BatchStart,
            4 => Kind::BatchEnd,
            _ => return None,
        })
    }
}

/// One decoded record, borrowing from the segment bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// What it does.
    pub kind: Kind,
    /// When it was written (ms since the epoch).
    pub timestamp: u64,
    /// The key.
    pub key: &'a [u8],
    /// The value.
    pub value: &'a [u8],
    /// Expiry (ms since the epoch), 0 = none.
    pub expires_at: u64,
}

/// The segment header for segment `n`.
pub fn segment_header(n: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&n.to_le_bytes());
    h
}

/// Appends one framed record to `out`.
pub fn encode(out: &mut Vec<u8>, rec: &Record<'_>) {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    out.push(rec.kind as u8);
    varint::put(out, rec.timestamp);
    varint::put(out, rec.key.len() as u64);
    out.extend_from_slice(rec.key);
    varint::put(out, rec.value.len() as u64);
    out.extend_from_slice(rec.value);
    varint::put(out, rec.expires_at);
    let payload = &out[start + FRAME_HEADER_LEN..];
    let len = payload.len() as u32;
    let crc = crc32fast::hash(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Bytes [`encode`] appends for `rec`.
pub fn encoded_len(key_len: usize, value_len: usize) -> usize {
    FRAME_HEADER_LEN
        + 1
        + 10
        + varint::len(key_len as u64)
        + key_len
        + varint::len(value_len as u64)
        + value_len
        + 10
}

/// What is at a position of a segment.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A whole, valid frame; the next frame starts `len` bytes later.
    Valid {
        /// The record.
        record: Record<'a>,
        /// Bytes the frame takes.
        len: usize,
    },
    /// The bytes end inside the frame (a torn write, or a corrupt length).
    Incomplete,
    /// The frame is invalid.
    Bad(&'static str),
}

/// Counts the frames of a segment's body by their length fields alone
/// (no checksums): an upper bound of the records in it, for sizing.
pub fn count_frames(body: &[u8]) -> usize {
    let mut at = 0;
    let mut n = 0;
    while at + FRAME_HEADER_LEN <= body.len() {
        let len = u32::from_le_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]) as usize;
        if len == 0 || len > MAX_PAYLOAD_LEN {
            break;
        }
        at += FRAME_HEADER_LEN + len;
        n += 1;
    }
    n
}

/// Parses the frame at the start of `buf`.
pub fn parse(buf: &[u8]) -> Frame<'_> {
    if buf.len() < FRAME_HEADER_LEN {
        return Frame::Incomplete;
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if len == 0 {
        return Frame::Bad("zero-length frame");
    }
    if len > MAX_PAYLOAD_LEN {
        return Frame::Bad("frame length out of range");
    }
    let Some(payload) = buf.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + len) else {
        return Frame::Incomplete;
    };
    if crc32fast::hash(payload) != crc {
        return Frame::Bad("checksum mismatch");
    }
    match decode_payload(payload) {
        Some(record) => Frame::Valid {
            record,
            len: FRAME_HEADER_LEN + len,
        },
        None => Frame::Bad("malformed payload"),
    }
}

/// Decodes a frame that [`parse`] has already found valid at the start of
/// `buf` (`len` = the length it reported), without checking its CRC again.
pub(crate) fn reparse(buf: &[u8], len: usize) -> Option<Record<'_>> {
    decode_payload(buf.get(FRAME_HEADER_LEN..len)?)
}

fn decode_payload(p: &[u8]) -> Option<Record<'_>> {
    let kind = Kind::from_u8(*p.first()?)?;
    let mut at = 1;
    let next_varint = |at: &mut usize| -> Option<u64> {
        let (v, n) = varint::get(p.get(*at..)?)?;
        *at += n;
        Some(v)
    };
    let timestamp = next_varint(&mut at)?;
    let key_len = usize::try_from(next_varint(&mut at)?).ok()?;
    if key_len > MAX_KEY_LEN {
        return None;
    }
    let key = p.get(at..at.checked_add(key_len)?)?;
    at += key_len;
    let value_len = usize::try_from(next_varint(&mut at)?).ok()?;
    if value_len > MAX_VALUE_LEN {
        return None;
    }
    let value = p.get(at..at.checked_add(value_len)?)?;
    at += value_len;
    let expires_at = next_varint(&mut at)?;
    if at != p.len() {
        return None;
    }
    let shape_ok = match kind {
        Kind::Set => !key.is_empty(),
        Kind::Delete => !key.is_empty() && value.is_empty(),
        Kind::BatchStart => key.is_empty() && value.len() == 4,
        Kind::BatchEnd => key.is_empty() && value.is_empty(),
    };
    shape_ok.then_some(Record {
        kind,
        timestamp,
        key,
        value,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(kind: Kind, key: &'static [u8], value: &'static [u8]) -> Record<'static> {
        Record {
            kind,
            timestamp: 1_700_000_000_000,
            key,
            value,
            expires_at: 42,
        }
    }

    #[test]
    fn frames_round_trip() {
        for r in [
            rec(Kind::Set, b"k", b"value"),
            rec(Kind::Set, b"k2", b""),
            rec(Kind::Delete, b"gone", b""),
            rec(Kind::BatchStart, b"", &[2, 0, 0, 0]),
            rec(Kind::BatchEnd, b"", b""),
        ] {
            let mut out = Vec::new();
            encode(&mut out, &r);
            assert!(out.len() <= encoded_len(r.key.len(), r.value.len()));
            assert_eq!(
                parse(&out),
                Frame::Valid {
                    record: r,
                    len: out.len()
                }
            );
            assert_eq!(parse(&out[..out.len() - 1]), Frame::Incomplete);
        }
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let mut out = Vec::new();
        encode(&mut out, &rec(Kind::Set, b"some.key", b"some value"));
        for bit in 0..out.len() * 8 {
            let mut bad = out.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                !matches!(parse(&bad), Frame::Valid { .. }),
                "flip of bit {bit} went unnoticed"
            );
        }
    }

    #[test]
    fn documented_example_bytes() {
        // docs/engine-format.md shows exactly these bytes.
        let mut out = Vec::new();
        encode(
            &mut out,
            &Record {
                kind: Kind::Set,
                timestamp: 1,
                key: b"ab",
                value: b"xyz",
                expires_at: 0,
            },
        );
        assert_eq!(
            out,
            [0x0a, 0, 0, 0, 0x76, 0xc9, 0x30, 0x56, 1, 1, 2, b'a', b'b', 3, b'x', b'y', b'z', 0]
        );
    }

    #[test]
    fn zeros_are_not_a_frame() {
        assert_eq!(parse(&[0u8; 64]), Frame::Bad("zero-length frame"));
    }
}
