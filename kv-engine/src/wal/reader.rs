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
//!
//! The newest segment's header may be torn as well, when a crash cut the
//! segment's creation short: a file shorter than the header, or the
//! preallocated length of zeros with the header missing or cut short. A
//! header region holding a prefix of the expected header followed by zeros,
//! with only zeros after it, is a torn tail of length zero (the caller
//! removes the file). In an earlier segment, or followed by data, it is
//! corruption.

use std::borrow::Cow;
use std::path::Path;

use super::format::{self, Frame, Kind, Record, SEGMENT_HEADER_LEN};
use crate::error::{Error, Result};
use crate::storage::StorageFile;

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

/// Bytes a file-backed replay reads at a time.
const CHUNK: usize = 1 << 20;

/// The part of a segment being replayed: all of it for a segment in
/// memory; for a file, a window that slides forward, so replaying a segment
/// holds about [`CHUNK`] bytes plus the open batch, not the whole segment.
struct Window<'a> {
    /// The segment's bytes from file offset `base` on.
    bytes: Cow<'a, [u8]>,
    base: u64,
    file: Option<&'a dyn StorageFile>,
    /// The segment's length.
    len: u64,
    path: &'a Path,
    /// Bytes to read at a time.
    chunk: usize,
}

impl Window<'_> {
    fn end(&self) -> u64 {
        self.base + self.bytes.len() as u64
    }

    /// Whether the file holds bytes after the window.
    fn more(&self) -> bool {
        self.end() < self.len
    }

    /// Appends up to `n` bytes from the file (fewer at its end).
    fn load(&mut self, n: usize) -> Result<()> {
        let Some(file) = self.file else {
            return Ok(());
        };
        let want = usize::try_from(self.len - self.end()).map_or(n, |left| left.min(n));
        let mut offset = self.end();
        let buf = self.bytes.to_mut();
        let target = buf.len() + want;
        while buf.len() < target {
            let old = buf.len();
            buf.resize(target, 0);
            let got = file
                .read_at(&mut buf[old..], offset)
                .map_err(|e| Error::io(format!("reading {}", self.path.display()), e))?;
            buf.truncate(old + got);
            if got == 0 {
                // Shorter than it said: what was read is all there is.
                self.len = self.base + buf.len() as u64;
                break;
            }
            offset += got as u64;
        }
        Ok(())
    }

    /// Loads the rest of the file.
    fn load_all(&mut self) -> Result<()> {
        let left = usize::try_from(self.len - self.end()).unwrap_or(usize::MAX);
        self.load(left)
    }

    /// Drops the bytes before file offset `keep`; returns where `at` (an
    /// index into the window) is afterwards.
    fn discard_before(&mut self, keep: u64, at: usize) -> usize {
        let cut = usize::try_from(keep - self.base).unwrap_or(0).min(at);
        if self.file.is_some() && cut > 0 {
            self.bytes.to_mut().drain(..cut);
            self.base += cut as u64;
            return at - cut;
        }
        at
    }
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
    apply: impl FnMut(&[Change<'_>]),
) -> Result<Replayed> {
    let mut window = Window {
        bytes: Cow::Borrowed(bytes),
        base: 0,
        file: None,
        len: bytes.len() as u64,
        path,
        chunk: CHUNK,
    };
    replay_window(path, number, &mut window, last, apply)
}

/// A segment file to replay, read a window at a time so the memory replay
/// takes does not grow with the segment. Opening reads the first window.
pub struct SegmentFile<'a>(Window<'a>);

impl<'a> SegmentFile<'a> {
    /// Opens the segment at `path`, read through `file`.
    pub fn open(path: &'a Path, file: &'a dyn StorageFile) -> Result<Self> {
        Self::open_in_chunks(path, file, CHUNK)
    }

    fn open_in_chunks(path: &'a Path, file: &'a dyn StorageFile, chunk: usize) -> Result<Self> {
        let len = file
            .len()
            .map_err(|e| Error::io(format!("reading the size of {}", path.display()), e))?;
        let mut window = Window {
            bytes: Cow::Owned(Vec::new()),
            base: 0,
            file: Some(file),
            len,
            path,
            chunk: chunk.max(1),
        };
        window.load(window.chunk.max(SEGMENT_HEADER_LEN))?;
        Ok(SegmentFile(window))
    }

    /// Records the segment probably holds: the frames of the first window
    /// (counted by their length fields), scaled to the file's length. For
    /// sizing only.
    pub fn estimated_records(&self) -> usize {
        let w = &self.0;
        let Some(body) = w.bytes.get(SEGMENT_HEADER_LEN..) else {
            return 0;
        };
        let frames = format::count_frames(body) as u64;
        let read = w.bytes.len() as u64;
        let scaled = frames.saturating_mul(w.len) / read.max(1);
        usize::try_from(scaled).unwrap_or(usize::MAX)
    }

    /// [`replay`] of this segment, numbered `number`.
    pub fn replay(
        mut self,
        number: u64,
        last: bool,
        apply: impl FnMut(&[Change<'_>]),
    ) -> Result<Replayed> {
        let path = self.0.path;
        replay_window(path, number, &mut self.0, last, apply)
    }
}

/// An open batch: the file offset of its start, how many records it
/// announced, and the file offset and length of each record so far (decoded
/// at its end, when they are all in the window).
type OpenBatch = (u64, u32, Vec<(u64, usize)>);

/// Bytes the frame at the start of `buf` says it takes (its header when
/// even the length is cut off).
fn frame_len_hint(buf: &[u8]) -> usize {
    match buf.get(..4) {
        Some(l) => {
            let len = u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize;
            format::FRAME_HEADER_LEN + len.min(format::MAX_PAYLOAD_LEN)
        }
        None => format::FRAME_HEADER_LEN,
    }
}

/// Checks that the file in `w` (first window loaded) holds only zeros from
/// window offset `from` on, reading it a window at a time (a torn
/// creation's file is the preallocated length at most, unless damaged);
/// corruption at the first other byte.
fn zeros_from(path: &Path, w: &mut Window<'_>, mut from: usize) -> Result<()> {
    loop {
        if let Some(i) = w.bytes[from..].iter().position(|&b| b != 0) {
            return Err(Error::corruption(
                path,
                w.base + (from + i) as u64,
                "data after a WAL segment header that is missing or cut short",
            ));
        }
        if !w.more() {
            return Ok(());
        }
        let end = w.end();
        from = w.discard_before(end, w.bytes.len());
        w.load(w.chunk)?;
    }
}

/// Replays the segment in `w`, whose first window is loaded.
fn replay_window(
    path: &Path,
    number: u64,
    w: &mut Window<'_>,
    last: bool,
    mut apply: impl FnMut(&[Change<'_>]),
) -> Result<Replayed> {
    let corrupt = |offset: u64, reason: &str| Error::corruption(path, offset, reason);
    let expected = format::segment_header(number);
    let head = &w.bytes[..w.bytes.len().min(SEGMENT_HEADER_LEN)];
    let matched = head
        .iter()
        .zip(&expected)
        .take_while(|(a, b)| a == b)
        .count();
    if matched < SEGMENT_HEADER_LEN {
        // A torn creation: the newest segment's header region holds a
        // prefix of its header (the empty one included) and zeros after
        // it, and so does the rest of the file. The writer writes the
        // header, extends the file with zeros and syncs both before any
        // record, so a power loss during that leaves a file shorter than
        // the header, or one of the preallocated length with the header
        // missing or cut short. It holds nothing: a torn tail of length
        // zero.
        if last && head[matched..].iter().all(|&b| b == 0) {
            let from = head.len();
            zeros_from(path, w, from)?;
            return Ok(Replayed {
                valid_len: 0,
                torn: true,
                records: 0,
            });
        }
        return Err(if head.len() < SEGMENT_HEADER_LEN {
            corrupt(0, "segment shorter than its header")
        } else if matched < 8 {
            corrupt(0, "not a WAL segment (bad magic)")
        } else if matched < 12 {
            corrupt(8, "unknown WAL format version")
        } else {
            corrupt(12, "segment number does not match the file name")
        });
    }

    // `at` indexes the window; file offsets are `w.base + at`.
    let mut at = SEGMENT_HEADER_LEN;
    let mut records = 0u64;
    let mut batch: Option<OpenBatch> = None;
    while at < w.bytes.len() || w.more() {
        let frame = format::parse(&w.bytes[at..]);
        match frame {
            Frame::Incomplete if w.more() => {
                // The frame runs past the window: keep what is still
                // needed (from the open batch's start, or this frame) and
                // read on.
                let need = frame_len_hint(&w.bytes[at..]);
                let keep = batch.as_ref().map_or(w.base + at as u64, |b| b.0);
                at = w.discard_before(keep, at);
                let have = w.bytes.len() - at;
                w.load(need.saturating_sub(have).max(w.chunk))?;
            }
            Frame::Valid { record, len } => {
                let offset = w.base + at as u64;
                match (record.kind, &mut batch) {
                    (Kind::BatchStart, None) => {
                        let mut c = [0u8; 4];
                        c.copy_from_slice(record.value);
                        batch = Some((offset, u32::from_le_bytes(c), Vec::new()));
                    }
                    (Kind::BatchEnd, Some((_, announced, frames))) => {
                        if frames.len() != *announced as usize {
                            return Err(corrupt(
                                offset,
                                "batch holds a different number of records than announced",
                            ));
                        }
                        let window = &w.bytes[..];
                        let base = w.base;
                        let changes = frames
                            .iter()
                            .map(|&(o, l)| {
                                let i = usize::try_from(o - base).unwrap_or(usize::MAX);
                                // Checked when first parsed: decode only.
                                match window.get(i..).and_then(|b| format::reparse(b, l)) {
                                    Some(record) => Ok(Change::of(&record)),
                                    None => Err(corrupt(o, "record changed during replay")),
                                }
                            })
                            .collect::<Result<Vec<_>>>()?;
                        records += changes.len() as u64;
                        apply(&changes);
                        batch = None;
                    }
                    (Kind::Set | Kind::Delete, Some((_, _, frames))) => {
                        frames.push((offset, len));
                    }
                    (Kind::Set | Kind::Delete, None) => {
                        records += 1;
                        apply(&[Change::of(&record)]);
                    }
                    (Kind::BatchStart, Some(_)) => {
                        return Err(corrupt(offset, "batch started inside another batch"));
                    }
                    (Kind::BatchEnd, None) => {
                        return Err(corrupt(offset, "batch end without a start"));
                    }
                }
                at += len;
            }
            Frame::Incomplete | Frame::Bad(_) => {
                let reason = match frame {
                    Frame::Bad(r) => r,
                    _ => "record cut short",
                };
                // What follows decides: read the rest of the segment (a
                // preallocated tail of zeros at most, unless damaged).
                w.load_all()?;
                let offset = w.base + at as u64;
                let rest = &w.bytes[at..];
                // Zeros to the end (a preallocated tail) hold no frame; only
                // other bytes need the scan for a valid frame after this one.
                let zeros = rest.iter().all(|&b| b == 0);
                if !last || (!zeros && valid_frame_after(rest)) {
                    return Err(corrupt(offset, reason));
                }
                let cut = batch.as_ref().map_or(offset, |(start, _, _)| *start);
                return Ok(Replayed {
                    valid_len: cut,
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
            valid_len: start,
            torn: true,
            records,
        });
    }
    Ok(Replayed {
        valid_len: w.len,
        torn: false,
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::format::{encode, segment_header};

    fn record(kind: Kind, key: &'static [u8], value: &'static [u8]) -> Record<'static> {
        Record {
            kind,
            timestamp: 1,
            key,
            value,
            expires_at: 0,
        }
    }

    fn set(key: &'static [u8], value: &'static [u8]) -> Record<'static> {
        record(Kind::Set, key, value)
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
        let start = record(Kind::BatchStart, b"", &[2, 0, 0, 0]);
        let end = record(Kind::BatchEnd, b"", b"");
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

    /// Everything `replay` reports for `bytes`, as comparable values.
    type Outcome = (
        Vec<(bool, Vec<u8>, Vec<u8>)>,
        std::result::Result<Replayed, String>,
    );

    fn outcome(run: impl FnOnce(&mut dyn FnMut(&[Change<'_>])) -> Result<Replayed>) -> Outcome {
        let mut seen = Vec::new();
        let r = run(&mut |group: &[Change<'_>]| {
            for c in group {
                seen.push(match *c {
                    Change::Set { key, value, .. } => (true, key.to_vec(), value.to_vec()),
                    Change::Delete { key } => (false, key.to_vec(), Vec::new()),
                });
            }
        });
        (seen, r.map_err(|e| e.to_string()))
    }

    #[test]
    fn replay_from_a_file_in_windows_equals_replay_in_memory() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let big: &'static [u8] = Box::leak(vec![7u8; 3000].into_boxed_slice());
        let mut records = vec![
            set(b"a", b"1"),
            record(Kind::BatchStart, b"", &[3, 0, 0, 0]),
            set(b"b", big),
            set(b"c", b"3"),
            record(Kind::Delete, b"a", b""),
            record(Kind::BatchEnd, b"", b""),
        ];
        for i in 0..40u8 {
            records.push(set(Box::leak(Box::new([b'k', i])), b"v"));
        }
        let whole = segment(&records);
        let mut cases: Vec<(Vec<u8>, bool)> = vec![(whole.clone(), true), (whole.clone(), false)];
        for cut in [30, 100, 2000, 3100, whole.len() - 5] {
            cases.push((whole[..cut].to_vec(), true));
            cases.push((whole[..cut].to_vec(), false));
        }
        let mut zeros = whole.clone();
        zeros.extend_from_slice(&[0u8; 5000]);
        cases.push((zeros, true));
        let mut flipped = whole.clone();
        flipped[60] ^= 0x10;
        cases.push((flipped, true));
        let mut garbage = whole.clone();
        garbage.extend_from_slice(&[0xAB; 700]);
        cases.push((garbage, true));
        cases.push((whole[..10].to_vec(), true));
        // Torn creations: a preallocated file of zeros, with none or part
        // of its header; and the same with data after it (corruption).
        for header_bytes in [0, 7, 13, 19] {
            let mut torn = whole[..header_bytes].to_vec();
            torn.resize(3000, 0);
            cases.push((torn.clone(), true));
            cases.push((torn.clone(), false));
            torn[2500] = 1;
            cases.push((torn, true));
        }
        for (i, (bytes, last)) in cases.iter().enumerate() {
            let path = dir.path().join(format!("wal-{i}.log"));
            std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{e}"));
            let file = crate::storage::RealFile(file);
            let name = Path::new("wal-7.log");
            let want = outcome(|f| replay(name, 7, bytes, *last, f));
            for chunk in [1, 13, 64, 1000, 1 << 20] {
                let got = outcome(|f| {
                    SegmentFile::open_in_chunks(name, &file, chunk)?.replay(7, *last, f)
                });
                assert_eq!(got, want, "case {i} last {last} chunk {chunk}");
            }
        }
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

    #[test]
    fn a_torn_header_of_the_newest_segment_holds_nothing() {
        let header = segment_header(7);
        for len in 0..SEGMENT_HEADER_LEN {
            for prealloc in [0, SEGMENT_HEADER_LEN, 4096] {
                let mut bytes = header[..len].to_vec();
                bytes.resize(bytes.len().max(prealloc), 0);
                if bytes.starts_with(&header) {
                    // The number's high bytes are zeros: the whole header.
                    continue;
                }
                let what = format!("{len} header bytes, file of {}", bytes.len());
                let (seen, r) = keys(&bytes, true).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert!(seen.is_empty(), "{what}");
                assert_eq!((r.valid_len, r.torn), (0, true), "{what}");
                assert!(
                    matches!(keys(&bytes, false), Err(Error::Corruption { .. })),
                    "{what}: an older segment"
                );
            }
        }
    }

    #[test]
    fn a_header_that_is_not_a_torn_one_is_corruption() {
        // Another segment's number, a wrong magic, data after a zeroed
        // header: never taken for a torn creation.
        let mut other = segment_header(8).to_vec();
        other.resize(4096, 0);
        let mut magic = b"MINIKVXX".to_vec();
        magic.resize(4096, 0);
        let mut data_after = vec![0u8; 4096];
        data_after[100] = 0x42;
        let mut record_after = vec![0u8; SEGMENT_HEADER_LEN];
        encode(&mut record_after, &set(b"a", b"1"));
        for (name, bytes, offset) in [
            ("other number", other, 12),
            ("bad magic", magic, 0),
            ("data after zeros", data_after, 100),
            (
                "record after zeros",
                record_after,
                SEGMENT_HEADER_LEN as u64,
            ),
        ] {
            match keys(&bytes, true) {
                Err(Error::Corruption { offset: at, .. }) => assert_eq!(at, offset, "{name}"),
                other => panic!("{name}: expected corruption, got {other:?}"),
            }
        }
    }
}
