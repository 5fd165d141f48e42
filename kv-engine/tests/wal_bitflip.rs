//! Single flipped bits in the write-ahead log are never read as data.
//!
//! A reference WAL of a few hundred operations (sets, deletes, batches) is
//! written over several segments (small `segment_size`), keeping the model
//! state after every prefix of the operations. Then 1,000 random single-bit
//! flips, each on a fresh copy of the directory, and an open:
//!
//! - open never panics; it fails with `Error::Corruption` or opens with the
//!   state after *some* prefix of the operations — never a wrong value;
//! - precisely: a flip in the last frame of the newest segment is a torn
//!   tail, so open succeeds with the state before the last operation (the
//!   last operation is a batch, dropped whole when its BATCH_END is
//!   damaged); a flip anywhere earlier (a segment header, an earlier frame,
//!   any byte of an older segment) is `Corruption` naming that segment, at
//!   the start of the damaged frame (or the header field that was hit).
//!
//! It prints how many flips gave `Corruption` and how many a valid prefix.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use kv_engine::{Db, Error, Options, SyncMode};

const HEADER_LEN: usize = 20;
const OPS: usize = 300;
const FLIPS: usize = 1000;

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

fn workload(seed: u64) -> (Vec<Op>, Vec<State>) {
    let mut rng = Rng(seed);
    let mut ops = Vec::new();
    let mut model = State::new();
    let mut states = vec![model.clone()];
    for i in 0..OPS {
        let existing: Vec<Vec<u8>> = model.keys().cloned().collect();
        let key = |rng: &mut Rng| format!("key:{:03}", rng.below(60)).into_bytes();
        let value = |rng: &mut Rng| {
            let len = rng.below(40) as usize;
            (0..len).map(|_| rng.next() as u8).collect::<Vec<u8>>()
        };
        let roll = if i + 1 == OPS { 9 } else { rng.below(10) };
        let op = match roll {
            6..=7 if !existing.is_empty() => {
                Op::Delete(existing[rng.below(existing.len() as u64) as usize].clone())
            }
            0..=7 => Op::Set(key(&mut rng), value(&mut rng)),
            _ => {
                let len = 2 + rng.below(4) as usize;
                Op::Batch(
                    (0..len)
                        .map(|_| {
                            let k = key(&mut rng);
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
    (ops, states)
}

fn opts(dir: &Path) -> Options {
    Options::new(dir).sync(SyncMode::Always).segment_size(4096)
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

struct Segment {
    name: String,
    bytes: Vec<u8>,
    frames: Vec<(usize, usize)>,
}

/// Where `Corruption` must be reported for a flip at byte `pos` of a
/// segment: the header field, or the start of the frame, it hit.
fn expected_offset(seg: &Segment, pos: usize) -> u64 {
    match pos {
        0..8 => 0,
        8..12 => 8,
        12..HEADER_LEN => 12,
        _ => {
            let (start, _) = seg
                .frames
                .iter()
                .find(|(s, e)| (*s..*e).contains(&pos))
                .unwrap();
            *start as u64
        }
    }
}

#[test]
fn single_bit_flips_are_corruption_or_a_torn_tail_never_wrong_data() {
    let t0 = Instant::now();
    let (ops, states) = workload(0x853c_49e6_748f_ea9b);
    let base = tempfile::tempdir().unwrap();
    let db = Db::open(opts(base.path())).unwrap();
    for op in &ops {
        op.apply_db(&db);
    }
    assert_eq!(state_of(&db), states[OPS]);
    db.close().unwrap();

    // Keep only segments up to the last one holding records.
    let paths = segments(base.path());
    let data = paths
        .iter()
        .rposition(|p| fs::metadata(p).unwrap().len() > HEADER_LEN as u64)
        .unwrap();
    for later in &paths[data + 1..] {
        fs::remove_file(later).unwrap();
    }
    let segs: Vec<Segment> = paths[..=data]
        .iter()
        .map(|p| {
            let bytes = fs::read(p).unwrap();
            Segment {
                name: p.file_name().unwrap().to_str().unwrap().to_owned(),
                frames: frames(&bytes),
                bytes,
            }
        })
        .collect();
    assert!(segs.len() >= 3, "the WAL spans several segments");
    let total_frames: usize = segs.iter().map(|s| s.frames.len()).sum();
    assert_eq!(total_frames, ops.iter().map(Op::frames).sum::<usize>());
    let newest = segs.len() - 1;
    let (last_frame_start, last_frame_end) = *segs[newest].frames.last().unwrap();
    let total_bytes: usize = segs.iter().map(|s| s.bytes.len()).sum();
    println!(
        "reference: {OPS} operations, {total_frames} frames, {} segments, {total_bytes} bytes; \
         last frame at {last_frame_start}..{last_frame_end} of {}",
        segs.len(),
        segs[newest].name
    );

    // Sanity: the untouched copy opens with everything.
    {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        let db = Db::open(opts(dir.path())).unwrap();
        assert_eq!(state_of(&db), states[OPS]);
        db.close().unwrap();
    }

    let mut rng = Rng(0xda3e_39cb_94b9_5bdb);
    let (mut corruption, mut prefix, mut in_last_frame, mut in_header) = (0, 0, 0, 0);
    for i in 0..FLIPS {
        // A quarter of the flips land in the last frame, an eighth in a
        // segment header, the rest anywhere in the WAL.
        let (s, pos) = match i % 8 {
            0 => (
                rng.below(segs.len() as u64) as usize,
                rng.below(HEADER_LEN as u64) as usize,
            ),
            1 | 5 => (
                newest,
                last_frame_start + rng.below((last_frame_end - last_frame_start) as u64) as usize,
            ),
            _ => {
                let mut at = rng.below(total_bytes as u64) as usize;
                let mut s = 0;
                while at >= segs[s].bytes.len() {
                    at -= segs[s].bytes.len();
                    s += 1;
                }
                (s, at)
            }
        };
        let bit = rng.below(8) as u8;
        let seg = &segs[s];
        let torn_tail = s == newest && pos >= last_frame_start;
        let what = format!(
            "flip of bit {bit} of byte {pos} of {} (flip #{i})",
            seg.name
        );

        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        let mut bytes = seg.bytes.clone();
        bytes[pos] ^= 1 << bit;
        fs::write(dir.path().join(&seg.name), &bytes).unwrap();

        let opened = std::panic::catch_unwind(|| Db::open(opts(dir.path())))
            .unwrap_or_else(|_| panic!("{what}: open panicked"));
        match opened {
            Ok(db) => {
                let got = state_of(&db);
                db.close().unwrap();
                let matching = states.iter().position(|st| *st == got);
                assert!(
                    matching.is_some(),
                    "{what}: opened with a state that is no prefix of the operations: {}",
                    show(&got)
                );
                assert!(
                    torn_tail,
                    "{what}: expected Corruption (before the last frame at \
                     {last_frame_start} of {}), but it opened with the state after {} operations",
                    segs[newest].name,
                    matching.unwrap()
                );
                assert_eq!(
                    got,
                    states[OPS - 1],
                    "{what}: a damaged last frame must drop exactly the last operation"
                );
                prefix += 1;
            }
            Err(Error::Corruption {
                file,
                offset,
                reason,
            }) => {
                assert!(
                    !torn_tail,
                    "{what}: a damaged last frame is a torn tail, but open said \
                     Corruption at {offset} of {}: {reason}",
                    file.display()
                );
                assert_eq!(
                    file.file_name().unwrap().to_str().unwrap(),
                    seg.name,
                    "{what}: Corruption names the wrong file ({reason})"
                );
                assert_eq!(
                    offset,
                    expected_offset(seg, pos),
                    "{what}: Corruption at the wrong offset ({reason})"
                );
                corruption += 1;
            }
            Err(e) => panic!("{what}: expected Corruption or a prefix, got {e}"),
        }
        if torn_tail {
            in_last_frame += 1;
        }
        if pos < HEADER_LEN {
            in_header += 1;
        }
    }
    println!(
        "{FLIPS} flips ({in_last_frame} in the last frame, {in_header} in a segment header): \
         {corruption} Corruption, {prefix} opened with a valid prefix, in {:?}",
        t0.elapsed()
    );
    assert_eq!(corruption + prefix, FLIPS);
    assert_eq!(prefix, in_last_frame);
}
