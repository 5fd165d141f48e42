//! Torn tails of the write-ahead log are cut off, and cut off for good.
//!
//! A workload of sets, deletes and batches is written with
//! `SyncMode::Always` and the database closed. Then, each time on a fresh
//! copy of the directory, the segment holding the records is damaged the way
//! a crash or a file system leaves it, and the database reopened:
//!
//! - the last operation's bytes are cut at **every** offset inside them
//!   (its single record, or every record of its batch — so a batch whose
//!   BATCH_END is missing is covered too): open succeeds, the state is the
//!   state after the first N-1 operations (a batch is dropped whole), the
//!   segment is truncated to the end of the last complete operation, and the
//!   same state comes back over 10 reopens;
//! - 1 to 4096 bytes of zeros or of garbage are appended after the last
//!   complete record: all N operations come back, the file is cut back to its
//!   old length, identically over 10 reopens;
//! - a newer segment holding only 0 to 20 bytes of its header (a crash while
//!   a segment was being created) is no data: all N operations come back,
//!   over 10 reopens. The same when the file has its preallocated length
//!   (4 MiB of zeros after those header bytes: the writer extends the file
//!   before it syncs the header, so a crash can leave the length without
//!   the header).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use kv_engine::wal::format::{segment_header, SEGMENT_HEADER_LEN};
use kv_engine::wal::{segment_name, PREALLOC_STEP};
use kv_engine::{Db, Options, SyncMode};

const HEADER_LEN: usize = SEGMENT_HEADER_LEN;
const REOPENS: usize = 10;

type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// A tiny fixed-seed xorshift64 generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone)]
enum Op {
    Set(Vec<u8>, Vec<u8>),
    /// Only ever of a key that exists, so it writes a record.
    Delete(Vec<u8>),
    /// At least two writes; `None` deletes.
    Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>),
}

impl Op {
    /// WAL frames the operation writes.
    fn frames(&self) -> usize {
        match self {
            Op::Set(..) | Op::Delete(_) => 1,
            Op::Batch(w) => w.len() + 2,
        }
    }

    fn apply_model(&self, m: &mut State) {
        match self {
            Op::Set(k, v) => {
                m.insert(k.clone(), v.clone());
            }
            Op::Delete(k) => {
                m.remove(k);
            }
            Op::Batch(writes) => {
                for (k, v) in writes {
                    match v {
                        Some(v) => m.insert(k.clone(), v.clone()),
                        None => m.remove(k),
                    };
                }
            }
        }
    }

    fn apply_db(&self, db: &Db) {
        match self {
            Op::Set(k, v) => db.set(k, v).unwrap(),
            Op::Delete(k) => assert!(db.delete(k).unwrap(), "delete of a missing key"),
            Op::Batch(writes) => {
                let mut b = db.batch();
                for (k, v) in writes {
                    match v {
                        Some(v) => b.set(k, v),
                        None => b.delete(k),
                    };
                }
                b.write().unwrap();
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Last {
    Set,
    Delete,
    Batch,
}

fn key(i: u64) -> Vec<u8> {
    format!("key:{i:02}").into_bytes()
}

fn value(rng: &mut Rng) -> Vec<u8> {
    let len = 1 + rng.below(24) as usize;
    (0..len).map(|_| b'a' + rng.below(26) as u8).collect()
}

/// `n` operations (sets, deletes of existing keys, batches) ending with one
/// of kind `last`, and the model state after each prefix.
fn workload(seed: u64, n: usize, last: Last) -> (Vec<Op>, Vec<State>) {
    let mut rng = Rng(seed);
    let mut ops = Vec::new();
    let mut states = vec![State::new()];
    let mut model = State::new();
    while ops.len() < n {
        let final_op = ops.len() + 1 == n;
        let existing: Vec<Vec<u8>> = model.keys().cloned().collect();
        let roll = match (final_op, last) {
            (true, Last::Set) => 0,
            (true, Last::Delete) => 5,
            (true, Last::Batch) => 9,
            (false, _) => rng.below(10),
        };
        let op = match roll {
            5..=6 if !existing.is_empty() => {
                Op::Delete(existing[rng.below(existing.len() as u64) as usize].clone())
            }
            0..=6 => Op::Set(key(rng.below(12)), value(&mut rng)),
            _ => {
                let len = 2 + rng.below(3) as usize;
                Op::Batch(
                    (0..len)
                        .map(|_| {
                            let k = key(rng.below(12));
                            let v = (rng.below(4) != 0).then(|| value(&mut rng));
                            (k, v)
                        })
                        .collect(),
                )
            }
        };
        op.apply_model(&mut model);
        ops.push(op);
        states.push(model.clone());
    }
    if let Last::Delete = last {
        assert!(
            matches!(ops.last(), Some(Op::Delete(_))),
            "ends with a delete"
        );
    }
    (ops, states)
}

fn opts(dir: &Path) -> Options {
    Options::new(dir).sync(SyncMode::Always)
}

fn state_of(db: &Db) -> State {
    db.scan(b"", usize::MAX).unwrap().into_iter().collect()
}

/// A state for messages: keys and (shortened) values, lossy UTF-8.
fn show(s: &State) -> String {
    let items: Vec<String> = s
        .iter()
        .map(|(k, v)| {
            let shown = String::from_utf8_lossy(&v[..v.len().min(24)]).into_owned();
            let more = if v.len() > 24 {
                format!("…({} bytes)", v.len())
            } else {
                String::new()
            };
            format!("{}={shown:?}{more}", String::from_utf8_lossy(k))
        })
        .collect();
    format!("{{{}}}", items.join(", "))
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with("wal-") && name.ends_with(".log")
        })
        .collect();
    out.sort();
    out
}

/// (start, end) of every frame of a segment.
fn frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = HEADER_LEN;
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let end = at + 8 + len;
        assert!(end <= bytes.len(), "reference segment has a torn frame");
        out.push((at, end));
        at = end;
    }
    out
}

/// A reference database: the workload written and closed, later empty
/// segments removed so the segment holding the records is the newest.
struct Reference {
    _dir: tempfile::TempDir,
    path: PathBuf,
    /// File name of the segment holding the records.
    segment: String,
    bytes: Vec<u8>,
    frames: Vec<(usize, usize)>,
    ops: Vec<Op>,
    states: Vec<State>,
}

fn reference(seed: u64, n: usize, last: Last) -> Reference {
    let (ops, states) = workload(seed, n, last);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let db = Db::open(opts(&path)).unwrap();
    for op in &ops {
        op.apply_db(&db);
    }
    assert_eq!(state_of(&db), states[n]);
    db.close().unwrap();

    let segs = segments(&path);
    let data = segs
        .iter()
        .rposition(|p| fs::metadata(p).unwrap().len() > HEADER_LEN as u64)
        .expect("a segment with records");
    for later in &segs[data + 1..] {
        fs::remove_file(later).unwrap();
    }
    let bytes = fs::read(&segs[data]).unwrap();
    let frames = frames(&bytes);
    let total: usize = ops.iter().map(Op::frames).sum();
    assert_eq!(frames.len(), total, "one frame per record and batch marker");
    let segment = segs[data].file_name().unwrap().to_str().unwrap().to_owned();
    Reference {
        _dir: dir,
        path,
        segment,
        bytes,
        frames,
        ops,
        states,
    }
}

impl Reference {
    fn n(&self) -> usize {
        self.ops.len()
    }

    /// Byte range of the last operation's frames.
    fn last_op_span(&self) -> (usize, usize) {
        let k = self.ops.last().unwrap().frames();
        let first = self.frames[self.frames.len() - k];
        (first.0, self.bytes.len())
    }

    /// A fresh copy whose segment holds `bytes`.
    fn copy_with(&self, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&self.path, dir.path());
        let seg = dir.path().join(&self.segment);
        fs::write(&seg, bytes).unwrap();
        (dir, seg)
    }
}

/// Opens `dir` `REOPENS` times; each open must succeed with `expected`, and
/// after the first the segment must be `expected_len` bytes long.
fn reopen_and_check(dir: &Path, seg: &Path, expected: &State, expected_len: usize, what: &str) {
    for round in 0..REOPENS {
        let db = Db::open(opts(dir)).unwrap_or_else(|e| panic!("{what}: open #{round}: {e}"));
        let got = state_of(&db);
        assert!(
            got == *expected,
            "{what}: open #{round} recovered {} keys, expected {} (got {}, expected {})",
            got.len(),
            expected.len(),
            show(&got),
            show(expected)
        );
        db.close().unwrap();
        let len = fs::metadata(seg).unwrap().len();
        assert_eq!(
            len, expected_len as u64,
            "{what}: after open #{round} the segment is {len} bytes, expected it cut to {expected_len}"
        );
    }
}

fn cut_last_operation(last: Last) -> usize {
    let r = reference(0x9e37_79b9_7f4a_7c15 ^ last as u64, 40, last);
    let n = r.n();
    let (start, end) = r.last_op_span();
    assert!(end - start > 8, "the last operation is a real record");
    assert_ne!(
        r.states[n],
        r.states[n - 1],
        "the last operation changes the state"
    );

    // Sanity: the untouched copy gives everything.
    let (dir, seg) = r.copy_with(&r.bytes);
    reopen_and_check(dir.path(), &seg, &r.states[n], r.bytes.len(), "untouched");

    for cut in start..end {
        let (dir, seg) = r.copy_with(&r.bytes[..cut]);
        let what = format!(
            "{last:?}: {} cut to {cut} bytes (last operation at {start}..{end})",
            r.segment
        );
        reopen_and_check(dir.path(), &seg, &r.states[n - 1], start, &what);
    }
    end - start
}

#[test]
fn a_cut_last_set_is_dropped_and_stays_dropped() {
    let t0 = Instant::now();
    let cuts = cut_last_operation(Last::Set);
    println!("set: {cuts} cuts x {REOPENS} reopens in {:?}", t0.elapsed());
}

#[test]
fn a_cut_last_delete_is_dropped_and_stays_dropped() {
    let t0 = Instant::now();
    let cuts = cut_last_operation(Last::Delete);
    println!(
        "delete: {cuts} cuts x {REOPENS} reopens in {:?}",
        t0.elapsed()
    );
}

/// Every cut inside the last batch — inside any of its records, or exactly
/// before its BATCH_END — drops the batch whole.
#[test]
fn a_batch_without_its_end_is_dropped_whole() {
    let t0 = Instant::now();
    let r = reference(0x2545_f491_4f6c_dd1d, 40, Last::Batch);
    let n = r.n();
    let Op::Batch(writes) = r.ops.last().unwrap() else {
        panic!("the last operation is a batch");
    };
    assert!(writes.len() >= 2);
    // Cut exactly at the BATCH_END frame: every record of the batch is
    // whole, only its end is missing.
    let (end_start, _) = *r.frames.last().unwrap();
    let (start, _) = r.last_op_span();
    let (dir, seg) = r.copy_with(&r.bytes[..end_start]);
    reopen_and_check(
        dir.path(),
        &seg,
        &r.states[n - 1],
        start,
        "batch with every record but without BATCH_END",
    );
    let cuts = cut_last_operation(Last::Batch);
    println!(
        "batch of {} writes: {cuts} cuts x {REOPENS} reopens in {:?}",
        writes.len(),
        t0.elapsed()
    );
}

#[test]
fn zeros_or_garbage_after_the_last_record_are_cut_off() {
    let t0 = Instant::now();
    let r = reference(0xdead_beef_cafe_f00d, 40, Last::Set);
    let n = r.n();
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let mut cases = 0;
    for size in [1usize, 3, 7, 8, 9, 17, 20, 64, 100, 511, 1024, 4095, 4096] {
        for garbage in [false, true] {
            let mut bytes = r.bytes.clone();
            if garbage {
                bytes.extend((0..size).map(|_| rng.next() as u8));
            } else {
                bytes.resize(bytes.len() + size, 0);
            }
            let (dir, seg) = r.copy_with(&bytes);
            let what = format!(
                "{} + {size} bytes of {}",
                r.segment,
                if garbage { "garbage" } else { "zeros" }
            );
            reopen_and_check(dir.path(), &seg, &r.states[n], r.bytes.len(), &what);
            cases += 1;
        }
    }
    println!("{cases} tails x {REOPENS} reopens in {:?}", t0.elapsed());
}

/// A crash while a new segment was being created (at open, rotation or
/// compaction) leaves the newest segment with only part of its 20-byte
/// header, or empty. It holds no records: every open must succeed with all
/// N operations, over 10 reopens.
#[test]
fn a_newest_segment_with_a_torn_header_is_dropped_for_good() {
    let t0 = Instant::now();
    let r = reference(0x6a09_e667_f3bc_c908, 40, Last::Set);
    let n = r.n();
    let number: u64 = r.segment[4..24].parse().unwrap();
    let next = segment_name(number + 1);
    let header = segment_header(number + 1);
    let mut failures = Vec::new();
    for (len, preallocated) in (0..=HEADER_LEN).flat_map(|len| [(len, false), (len, true)]) {
        let (dir, _) = r.copy_with(&r.bytes);
        let path = dir.path().join(&next);
        fs::write(&path, &header[..len]).unwrap();
        if preallocated {
            // Zeros to the preallocated length (sparse, as the writer's).
            fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(PREALLOC_STEP)
                .unwrap();
        }
        let shape = if preallocated {
            ", preallocated with zeros"
        } else {
            ""
        };
        for round in 0..REOPENS {
            let what = format!("{next} holding {len} of its {HEADER_LEN} header bytes{shape}");
            match Db::open(opts(dir.path())) {
                Ok(db) => {
                    assert_eq!(state_of(&db), r.states[n], "{what}: open #{round}");
                    db.close().unwrap();
                }
                Err(e) => {
                    failures.push(format!("{what}: open #{round} failed: {e}"));
                    break;
                }
            }
        }
    }
    println!(
        "{} torn headers x {REOPENS} reopens in {:?}",
        2 * (HEADER_LEN + 1),
        t0.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} torn headers made the database unopenable:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
