//! Crash safety under SIGKILL: a child process writing with
//! `SyncMode::Always` is killed at random moments, and every acknowledged
//! write must survive.
//!
//! The test binary re-runs itself as the child: the parent spawns
//! `current_exe() child_writer --exact --nocapture --test-threads=1` with
//! `KV_CRASH_CHILD_DIR` set, and that `#[test]` (a no-op without the
//! variable) opens the database and writes until it is killed. The child
//! uses small WAL segments and a small `max_wal_size`, so segment rotation
//! and background compaction happen all the time, and calls `compact()`
//! itself now and then. It performs a random stream of single sets, deletes
//! and batches over 200 keys; every value names its key and a sequence
//! number unique over the whole run, so any value read back tells which
//! write produced it.
//!
//! Protocol (child stdout, one line per `write`, flushed): `@I <op> <kind>
//! <key>=<seq>|<key>=- ...` before an operation (the intent, `-` = delete),
//! `@A <op>` after it returned `Ok`; `@R` once the database is open.
//!
//! After each kill the parent opens the directory (which must never fail)
//! and checks every key: its value is the one of its last acknowledged
//! write, or one from a write intended after that acknowledgement (never an
//! older acknowledged value, never one that was never written); a key whose
//! last acknowledged write was a delete is absent or holds a later intended
//! value. An unacknowledged batch is all there or not at all. Reopening
//! twice more gives the identical full state. The state then carries over
//! into the next round, so the directory accumulates history.
//!
//! 50 rounds by default; `KV_CRASH_ROUNDS=1000` for a long run,
//! `KV_CRASH_SEED=<n>` to change the fixed seed.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write as _};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kv_engine::{Db, Options, SyncMode};

const CHILD_DIR_ENV: &str = "KV_CRASH_CHILD_DIR";
const CHILD_SEED_ENV: &str = "KV_CRASH_CHILD_SEED";
const CHILD_BASE_ENV: &str = "KV_CRASH_CHILD_BASE";
const CHILD_SEGMENT_ENV: &str = "KV_CRASH_CHILD_SEGMENT";
const KEYS: u64 = 200;
const DEFAULT_ROUNDS: u64 = 50;
const DEFAULT_SEED: u64 = 0x5eed_c0de_2024_0001;
/// Sequence numbers of round `r` start at `r << ROUND_SHIFT`, so they are
/// unique over the run without the parent knowing how far a child got.
const ROUND_SHIFT: u32 = 32;

/// xorshift64*: tiny, deterministic, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // Never zero; mix the seed a little so nearby seeds differ.
        Rng((seed ^ 0x9e37_79b9_7f4a_7c15).max(1))
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform-ish in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Uniform-ish in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo)
    }
}

fn key_bytes(k: u64) -> Vec<u8> {
    format!("key:{k:03}").into_bytes()
}

/// The unique, recognisable value of write `seq` to key `k`: a header
/// naming both, then a filler whose length depends on `seq` (so records
/// vary in size and segments fill at different points).
fn value_bytes(k: u64, seq: u64) -> Vec<u8> {
    let mut v = format!("val:{k:03}:{seq}:").into_bytes();
    let fill = (seq.wrapping_mul(0x9e37_79b9) >> 7) % 300;
    v.extend((0..fill).map(|i| b'a' + ((seq + i) % 26) as u8));
    v
}

/// The `(key, seq)` a stored value claims to be, when it is one of ours
/// (exactly, filler included).
fn parse_value(v: &[u8]) -> Option<(u64, u64)> {
    let s = std::str::from_utf8(v).ok()?;
    let mut parts = s.splitn(4, ':');
    if parts.next()? != "val" {
        return None;
    }
    let k: u64 = parts.next()?.parse().ok()?;
    let seq: u64 = parts.next()?.parse().ok()?;
    (value_bytes(k, seq) == v).then_some((k, seq))
}

fn parse_key(key: &[u8]) -> Option<u64> {
    let k: u64 = std::str::from_utf8(key)
        .ok()?
        .strip_prefix("key:")?
        .parse()
        .ok()?;
    (k < KEYS && key_bytes(k) == key).then_some(k)
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

// --- the child --------------------------------------------------------------

/// One line on stdout, in one `write` (atomic on a pipe: shorter than
/// `PIPE_BUF`), flushed before the caller goes on.
fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    let mut buf = String::with_capacity(line.len() + 1);
    buf.push_str(line);
    buf.push('\n');
    out.write_all(buf.as_bytes()).unwrap();
    out.flush().unwrap();
}

/// The writer. Does nothing unless `KV_CRASH_CHILD_DIR` is set, i.e. unless
/// the parent test started this binary as its child.
#[test]
fn child_writer() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let seed = env_u64(CHILD_SEED_ENV).unwrap();
    let base = env_u64(CHILD_BASE_ENV).unwrap();
    let segment = env_u64(CHILD_SEGMENT_ENV).unwrap();
    let mut rng = Rng::new(seed);
    let max_wal = segment * rng.range(2, 5);
    let db = Db::open(
        Options::new(&dir)
            .sync(SyncMode::Always)
            .segment_size(segment)
            .max_wal_size(max_wal),
    )
    .unwrap();
    emit("@R");
    let mut next = base;
    let mut fresh = || {
        next += 1;
        next
    };
    // A safety net: the parent kills us long before this.
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let op = fresh();
        let dice = rng.below(1000);
        if dice < 5 {
            emit(&format!("@I {op} C"));
            db.compact().unwrap();
            emit(&format!("@A {op}"));
        } else if dice < 550 {
            let k = rng.below(KEYS);
            let seq = fresh();
            emit(&format!("@I {op} S {k}={seq}"));
            db.set(&key_bytes(k), &value_bytes(k, seq)).unwrap();
            emit(&format!("@A {op}"));
        } else if dice < 750 {
            let k = rng.below(KEYS);
            emit(&format!("@I {op} D {k}=-"));
            db.delete(&key_bytes(k)).unwrap();
            emit(&format!("@A {op}"));
        } else {
            // A batch of 2..=12 writes, a key possibly more than once.
            let n = rng.range(2, 13);
            let mut batch = db.batch();
            let mut line = format!("@I {op} B");
            for _ in 0..n {
                let k = rng.below(KEYS);
                if rng.below(5) == 0 {
                    batch.delete(&key_bytes(k));
                    line.push_str(&format!(" {k}=-"));
                } else {
                    let seq = fresh();
                    batch.set(&key_bytes(k), &value_bytes(k, seq));
                    line.push_str(&format!(" {k}={seq}"));
                }
            }
            emit(&line);
            batch.write().unwrap();
            emit(&format!("@A {op}"));
        }
    }
    db.close().unwrap();
}

// --- the parent -------------------------------------------------------------

/// One intended operation: its writes in order (`None` = delete).
#[derive(Debug, Clone)]
struct Intent {
    op: u64,
    kind: char,
    writes: Vec<(u64, Option<u64>)>,
}

impl Intent {
    /// The state each key is left in: the last write to it wins.
    fn effects(&self) -> BTreeMap<u64, Option<u64>> {
        self.writes.iter().copied().collect()
    }
}

/// What a round's child said it did.
#[derive(Debug, Default)]
struct Transcript {
    ready: bool,
    intents: Vec<Intent>,
    acked: BTreeSet<u64>,
    lines: usize,
    /// The last few lines, for failure messages.
    tail: Vec<String>,
}

fn parse_transcript(lines: &[String]) -> Transcript {
    let mut t = Transcript::default();
    for line in lines {
        let mut parts = line.split_whitespace();
        match parts.next() {
            Some("@R") => t.ready = true,
            Some("@A") => {
                let op: u64 = parts.next().unwrap().parse().unwrap();
                assert!(
                    t.intents.last().is_some_and(|i| i.op == op),
                    "ack of op {op} that is not the last intended one"
                );
                t.acked.insert(op);
            }
            Some("@I") => {
                let op: u64 = parts.next().unwrap().parse().unwrap();
                let kind = parts.next().unwrap().chars().next().unwrap();
                let writes = parts
                    .map(|w| {
                        let (k, s) = w.split_once('=').unwrap();
                        (k.parse().unwrap(), (s != "-").then(|| s.parse().unwrap()))
                    })
                    .collect();
                t.intents.push(Intent { op, kind, writes });
            }
            // The test harness's own output.
            _ => {}
        }
    }
    t.lines = lines.len();
    t.tail = lines[lines.len().saturating_sub(6)..].to_vec();
    t
}

/// Every key's value, read through `dump_keys` and `get`, as raw bytes.
fn full_state(db: &Db) -> BTreeMap<Vec<u8>, Vec<u8>> {
    db.dump_keys()
        .unwrap()
        .into_iter()
        .map(|k| {
            let v = db
                .get(&k)
                .unwrap()
                .unwrap_or_else(|| panic!("dump_keys listed {k:?} but get finds nothing"));
            (k, v)
        })
        .collect()
}

fn listing(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| {
                    let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                    format!("{} ({len} B)", e.file_name().to_string_lossy())
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.join(", ")
}

fn describe(state: Option<u64>) -> String {
    match state {
        None => "absent".into(),
        Some(seq) => format!("seq {seq}"),
    }
}

/// Runs one child until it is killed; returns its stdout lines.
fn run_child(dir: &Path, round: u64, seed: u64, segment: u64, rng: &mut Rng) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["child_writer", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_SEED_ENV, seed.to_string())
        .env(CHILD_BASE_ENV, (round << ROUND_SHIFT).to_string())
        .env(CHILD_SEGMENT_ENV, segment.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            // A line cut short by the kill never counts.
            if buf.last() != Some(&b'\n') {
                break;
            }
            let line = String::from_utf8_lossy(&buf[..buf.len() - 1]).into_owned();
            // The harness prints `test child_writer ... ` without a newline
            // before the test runs: protocol lines start at the `@`.
            let line = match line.find('@') {
                Some(at) => line[at..].to_owned(),
                None => line,
            };
            if line == "@R" {
                let _ = ready_tx.send(());
            }
            lines.push(line);
        }
        lines
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });

    // Mostly kill while it writes (a delay after it is ready); sometimes
    // while it is still opening (recovering) the database.
    // The child is ready some 3-15 ms after the spawn.
    let early = rng.below(6) == 0;
    let delay = if early {
        Duration::from_millis(rng.range(0, 12))
    } else {
        if ready_rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            let err = err_reader.join().unwrap();
            panic!(
                "round {round}: the child never opened the database (hang or crash in \
                 Db::open?); dir {} = [{}]; stderr:\n{err}",
                dir.display(),
                listing(dir)
            );
        }
        Duration::from_millis(rng.range(5, 150))
    };
    std::thread::sleep(delay);
    let exited_early = child.try_wait().unwrap();
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    let lines = reader.join().unwrap();
    let err = err_reader.join().unwrap();
    assert!(
        exited_early.is_none() && status.signal() == Some(9),
        "round {round}: the child died by itself ({status:?}) instead of by SIGKILL; \
         dir {} = [{}]; stdout tail: {:?}; stderr:\n{err}",
        dir.display(),
        listing(dir),
        &lines[lines.len().saturating_sub(5)..]
    );
    lines
}

#[derive(Debug, Default)]
struct Totals {
    acked: u64,
    unacked: u64,
    batches: u64,
    compactions: u64,
    early_kills: u64,
}

#[test]
fn sigkill_during_writes_loses_no_acknowledged_write() {
    let rounds = env_u64("KV_CRASH_ROUNDS").unwrap_or(DEFAULT_ROUNDS);
    let seed = env_u64("KV_CRASH_SEED").unwrap_or(DEFAULT_SEED);
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let mut rng = Rng::new(seed);
    let mut totals = Totals::default();
    // The recovered state after the previous round: key -> seq of its value.
    let mut baseline: BTreeMap<u64, u64> = BTreeMap::new();
    // Panics keep the directory for inspection.
    let mut tmp = Some(tmp);
    let mut fail = |msg: String| -> ! {
        if let Some(t) = tmp.take() {
            let kept = t.keep();
            panic!("{msg}\n(seed {seed}; directory kept at {})", kept.display());
        }
        panic!("{msg}");
    };

    for round in 0..rounds {
        let segment = [4096, 8192, 16 << 10, 64 << 10][rng.below(4) as usize];
        let child_seed = rng.next();
        let lines = run_child(&dir, round, child_seed, segment, &mut rng);
        let t = parse_transcript(&lines);
        if !t.ready {
            totals.early_kills += 1;
        }

        // The model: for every key, the states it may be in now.
        let mut allowed: HashMap<u64, BTreeSet<Option<u64>>> = (0..KEYS)
            .map(|k| (k, BTreeSet::from([baseline.get(&k).copied()])))
            .collect();
        // Where each key's allowed state came from, for messages.
        let mut why: HashMap<u64, Vec<String>> = HashMap::new();
        for intent in &t.intents {
            let acked = t.acked.contains(&intent.op);
            if intent.kind == 'C' {
                totals.compactions += u64::from(acked);
                continue;
            }
            if acked {
                totals.acked += 1;
            } else {
                totals.unacked += 1;
            }
            if intent.kind == 'B' {
                totals.batches += 1;
            }
            for (k, state) in intent.effects() {
                let set = allowed.get_mut(&k).unwrap();
                if acked {
                    // Ops are sequential: an ack settles everything before.
                    set.clear();
                }
                set.insert(state);
                let w = why.entry(k).or_default();
                if acked {
                    w.clear();
                }
                w.push(format!(
                    "op {} {} -> {}{}",
                    intent.op,
                    intent.kind,
                    describe(state),
                    if acked { " (acked)" } else { " (intended)" }
                ));
            }
        }

        // 1. Recovery never fails.
        let db = match Db::open(Options::new(&dir)) {
            Ok(db) => db,
            Err(e) => fail(format!(
                "round {round} (child seed {child_seed}, segment {segment}): Db::open after \
                 SIGKILL failed: {e}\ndir = [{}]\nchild tail: {:?}",
                listing(&dir),
                t.tail
            )),
        };
        let state = full_state(&db);
        db.close().unwrap();

        // 2. Every key holds an allowed state.
        let mut found: BTreeMap<u64, Option<u64>> = (0..KEYS).map(|k| (k, None)).collect();
        for (key, value) in &state {
            let Some(k) = parse_key(key) else {
                fail(format!(
                    "round {round}: recovered a key that was never written: {:?}",
                    String::from_utf8_lossy(key)
                ));
            };
            match parse_value(value) {
                Some((vk, seq)) if vk == k => {
                    found.insert(k, Some(seq));
                }
                _ => fail(format!(
                    "round {round}: key {k} holds a value that was never written to it: {:?}",
                    String::from_utf8_lossy(&value[..value.len().min(80)])
                )),
            }
        }
        for (&k, &got) in &found {
            if !allowed[&k].contains(&got) {
                fail(format!(
                    "round {round} (child seed {child_seed}, segment {segment}): key {k} is {} \
                     but may only be one of {:?} (None = absent)\nhistory this round: {:?}\n\
                     previous recovered state: {}\ndir = [{}]\nchild tail: {:?}",
                    describe(got),
                    allowed[&k],
                    why.get(&k).cloned().unwrap_or_default(),
                    describe(baseline.get(&k).copied()),
                    listing(&dir),
                    t.tail
                ));
            }
        }

        // 3. An unacknowledged batch is all there or not at all.
        if let Some(last) = t.intents.last() {
            if last.kind == 'B' && !t.acked.contains(&last.op) {
                let effects = last.effects();
                let applied = effects.iter().filter(|(k, s)| found[k] == **s).count();
                let shows_seq = effects
                    .values()
                    .any(|s| s.is_some() && found.values().any(|f| f == s));
                if shows_seq && applied != effects.len() {
                    fail(format!(
                        "round {round}: the unacknowledged batch op {} is only partly there: \
                         {applied} of {} keys; batch {:?}; found {:?}",
                        last.op,
                        effects.len(),
                        effects,
                        effects.keys().map(|k| (k, found[k])).collect::<Vec<_>>()
                    ));
                }
            }
        }

        // 4. Two more reopens see the identical state.
        for again in 1..=2 {
            let db = match Db::open(Options::new(&dir)) {
                Ok(db) => db,
                Err(e) => fail(format!(
                    "round {round}: reopen #{again} failed: {e}\ndir = [{}]",
                    listing(&dir)
                )),
            };
            let again_state = full_state(&db);
            db.close().unwrap();
            if again_state != state {
                let diff: Vec<_> = state
                    .keys()
                    .chain(again_state.keys())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .filter(|k| state.get(*k) != again_state.get(*k))
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .collect();
                fail(format!(
                    "round {round}: reopen #{again} sees a different state; differing keys: \
                     {diff:?}\ndir = [{}]",
                    listing(&dir)
                ));
            }
        }

        baseline = found
            .into_iter()
            .filter_map(|(k, s)| s.map(|s| (k, s)))
            .collect();
    }

    println!(
        "crash_sigkill: {rounds} rounds, {} acked ops ({} batches total, {} unacked in flight, \
         {} explicit compactions acked, {} killed before ready), {} keys live at the end, \
         seed {seed}, {:.1?}",
        totals.acked,
        totals.batches,
        totals.unacked,
        totals.compactions,
        totals.early_kills,
        baseline.len(),
        started.elapsed()
    );
}
