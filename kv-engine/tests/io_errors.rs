//! Every failed write or fsync reaches the caller, and recovery keeps
//! exactly the acknowledged operations (plus, at most, the failed one whole).
//!
//! A fixed workload (open, sets, deletes, batches, a write larger than the
//! WAL buffer, two compactions, reads, close) is first run with
//! `FaultyStorage::counting()` to learn how many writes and syncs it makes.
//! Then, for every n up to those counts, it runs again with the n-th write
//! failing (ENOSPC after writing half the buffer — for a WAL append, half a
//! record or group of records — and EIO) and with the
//! n-th sync failing (EIO, and ENOSPC with partial later writes). The
//! storage stays failed afterwards, as a failed disk does. Checked:
//!
//! - the operation during which the fault fired returns `Error::Io` carrying
//!   the injected errno (or `Db::open` fails, when the fault hits during
//!   open); the one allowed exception is the best-effort directory fsync
//!   after a compaction removed the files the new MANIFEST no longer needs
//!   (the data is already durable; the next operation reports the failure);
//! - every later write, compaction and (poisoned) read returns an error; a
//!   read may only succeed with a value of the acknowledged state;
//! - no operation fails before the fault fires;
//! - after reopening with real storage, the state is the state after all
//!   acknowledged operations, or that plus the failed operation applied
//!   whole (batches all-or-nothing); the same over a second reopen, and the
//!   recovered database takes new writes that survive a reopen.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use kv_engine::storage::{Fault, FaultyStorage, EIO, ENOSPC};
use kv_engine::{Db, Error, Options, SyncMode};

type State = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Clone)]
enum Op {
    Set(&'static str, Vec<u8>),
    /// Of a key that exists.
    Delete(&'static str),
    Batch(Vec<(&'static str, Option<&'static str>)>),
    Compact,
    Get(&'static str),
    Close,
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Set(k, v) if v.len() > 32 => write!(f, "Set({k:?}, <{} bytes>)", v.len()),
            Op::Set(k, v) => write!(f, "Set({k:?}, {:?})", String::from_utf8_lossy(v)),
            Op::Delete(k) => write!(f, "Delete({k:?})"),
            Op::Batch(w) => write!(f, "Batch({w:?})"),
            Op::Compact => write!(f, "Compact"),
            Op::Get(k) => write!(f, "Get({k:?})"),
            Op::Close => write!(f, "Close"),
        }
    }
}

impl Op {
    fn apply_model(&self, m: &mut State) {
        match self {
            Op::Set(k, v) => {
                m.insert(k.as_bytes().to_vec(), v.clone());
            }
            Op::Delete(k) => {
                m.remove(k.as_bytes());
            }
            Op::Batch(writes) => {
                for (k, v) in writes {
                    match v {
                        Some(v) => m.insert(k.as_bytes().to_vec(), v.as_bytes().to_vec()),
                        None => m.remove(k.as_bytes()),
                    };
                }
            }
            Op::Compact | Op::Get(_) | Op::Close => {}
        }
    }

    /// Runs the operation; a `Get` returns the value it read.
    fn run(&self, db: &Db) -> Result<Option<Vec<u8>>, Error> {
        match self {
            Op::Set(k, v) => db.set(k.as_bytes(), v).map(|()| None),
            Op::Delete(k) => db.delete(k.as_bytes()).map(|existed| {
                assert!(existed, "delete of a missing key {k}");
                None
            }),
            Op::Batch(writes) => {
                let mut b = db.batch();
                for (k, v) in writes {
                    match v {
                        Some(v) => b.set(k.as_bytes(), v.as_bytes()),
                        None => b.delete(k.as_bytes()),
                    };
                }
                b.write().map(|()| None)
            }
            Op::Compact => db.compact().map(|()| None),
            Op::Get(k) => db.get(k.as_bytes()),
            Op::Close => db.close().map(|()| None),
        }
    }
}

fn workload() -> Vec<Op> {
    let v = |s: &str| s.as_bytes().to_vec();
    vec![
        Op::Set("k0", v("zero")),
        Op::Set("k1", v("one")),
        Op::Set("k2", v("two")),
        Op::Set("k3", v("three")),
        Op::Set("k4", v("four")),
        Op::Delete("k1"),
        Op::Batch(vec![
            ("k5", Some("five")),
            ("k6", Some("six")),
            ("k2", None),
            ("k0", Some("zero again")),
        ]),
        Op::Get("k0"),
        Op::Set("k3", v("three again")),
        Op::Compact,
        Op::Get("k3"),
        Op::Set("k7", v("seven")),
        Op::Batch(vec![("k5", None), ("k8", Some("eight")), ("k3", Some("3"))]),
        Op::Delete("k4"),
        // Larger than the WAL buffer: written from inside the write path.
        Op::Set("big", vec![0xa5; 300 * 1024]),
        Op::Compact,
        Op::Set("k9", v("nine")),
        Op::Get("k8"),
        Op::Close,
    ]
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

/// Writes and syncs made by each step of the workload: `counts[0]` is the
/// open, `counts[i + 1]` operation `i`; each is (writes, syncs) so far after
/// that step.
fn count(ops: &[Op]) -> Vec<(u64, u64)> {
    let dir = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::counting();
    let db = Db::open(opts(dir.path()).storage(Arc::new(storage.clone()))).unwrap();
    let mut counts = vec![(storage.writes(), storage.syncs())];
    for op in ops {
        op.run(&db).unwrap();
        counts.push((storage.writes(), storage.syncs()));
    }
    assert!(!storage.fired());
    counts
}

struct Case {
    fault: Fault,
    errno: i32,
    partial: bool,
}

/// Runs the workload with `case`'s fault and checks what the caller saw and
/// what recovery gives. Returns what happened, for the summary.
fn run_case(ops: &[Op], states: &[State], counts: &[(u64, u64)], case: &Case) -> &'static str {
    let what = format!(
        "{:?} with errno {}{}",
        case.fault,
        case.errno,
        if case.partial {
            " (partial writes)"
        } else {
            ""
        }
    );
    let dir = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::new(Some(case.fault), case.errno, case.partial);
    let check_io = |e: &Error, step: &str| match e {
        Error::Io { source, .. } if source.raw_os_error() == Some(case.errno) => {}
        other => panic!("{what}: {step} failed with {other}, expected the injected I/O error"),
    };

    // `acked`: operations acknowledged; `failed`: the operation that
    // reported the failure (its effect may or may not be on disk).
    let mut acked = 0;
    let mut failed: Option<usize> = None;
    let mut absorbed = false;
    // Whether a write reported a failure: the engine is poisoned then.
    let mut write_failed = false;
    let outcome;
    match Db::open(opts(dir.path()).storage(Arc::new(storage.clone()))) {
        Err(e) => {
            assert!(storage.fired(), "{what}: open failed before the fault: {e}");
            check_io(&e, "open");
            outcome = "open failed";
        }
        Ok(db) => {
            assert!(
                !storage.fired(),
                "{what}: the fault fired during open, but open succeeded"
            );
            for (i, op) in ops.iter().enumerate() {
                let fired_before = storage.fired();
                let result = op.run(&db);
                let fired_now = storage.fired() && !fired_before;
                let step = format!("operation #{i} {op:?}");
                let is_write = matches!(op, Op::Set(..) | Op::Delete(_) | Op::Batch(_));
                write_failed |= is_write && result.is_err();
                match (failed, result) {
                    (None, Ok(read)) => {
                        if let Op::Get(k) = op {
                            assert_eq!(
                                read.as_ref(),
                                states[i].get(k.as_bytes()),
                                "{what}: {step} read a wrong value"
                            );
                        }
                        if fired_now {
                            // The only fault an operation may absorb: the
                            // directory fsync after a compaction removed the
                            // files it replaced (the last sync it makes).
                            let last_sync_of_compaction = counts[i + 1].1;
                            assert!(
                                matches!(op, Op::Compact)
                                    && case.fault == Fault::Sync(last_sync_of_compaction),
                                "{what}: the fault fired during {step}, which returned Ok"
                            );
                            absorbed = true;
                        }
                        if fired_now || fired_before {
                            // Nothing written since the fault can be
                            // acknowledged, but compaction and reads may be.
                            assert!(
                                matches!(op, Op::Compact | Op::Get(_)),
                                "{what}: {step} succeeded on failed storage"
                            );
                        }
                        acked = i + 1;
                    }
                    (None, Err(e)) => {
                        assert!(
                            storage.fired(),
                            "{what}: {step} failed before the fault fired: {e}"
                        );
                        check_io(&e, &step);
                        failed = Some(i);
                    }
                    (Some(_), Ok(read)) => match op {
                        // Closing a database that already failed has
                        // nothing to write.
                        Op::Close => {}
                        Op::Get(k) => {
                            // Only a compaction failed so far: the engine is
                            // not poisoned, reads serve the acknowledged
                            // state.
                            assert!(
                                !write_failed,
                                "{what}: {step} succeeded after a write failed"
                            );
                            assert_eq!(
                                read.as_ref(),
                                states[acked].get(k.as_bytes()),
                                "{what}: {step} read a wrong value after the failure"
                            );
                        }
                        _ => panic!("{what}: {step} succeeded after an earlier failure"),
                    },
                    (Some(_), Err(_)) => {}
                }
            }
            drop(db);
            assert!(storage.fired(), "{what}: the fault never fired");
            outcome = match failed {
                _ if absorbed => "compaction's cleanup sync absorbed, a later write failed",
                None => "nothing failed",
                Some(i) if matches!(ops[i], Op::Compact) => "compaction failed",
                Some(i) if matches!(ops[i], Op::Close) => "close failed",
                Some(_) => "a write failed",
            };
        }
    }

    // Recovery with real storage.
    let recovered = {
        let db = Db::open(opts(dir.path()))
            .unwrap_or_else(|e| panic!("{what}: reopening with real storage: {e}"));
        let got = state_of(&db);
        db.close().unwrap();
        got
    };
    let before = &states[acked];
    let with_failed = failed.map(|f| &states[f + 1]);
    assert!(
        recovered == *before || Some(&recovered) == with_failed,
        "{what}: after {acked} acknowledged operations and {:?} failed, recovered {}; \
         expected {}{}",
        failed.map(|f| &ops[f]),
        show(&recovered),
        show(before),
        with_failed.map_or(String::new(), |s| format!(" or {}", show(s)))
    );
    // Stable, and writable.
    let db = Db::open(opts(dir.path()))
        .unwrap_or_else(|e| panic!("{what}: second reopen with real storage: {e}"));
    assert_eq!(state_of(&db), recovered, "{what}: second reopen differs");
    db.set(b"after", b"recovery").unwrap();
    db.close().unwrap();
    let db = Db::open(opts(dir.path()))
        .unwrap_or_else(|e| panic!("{what}: reopen after a write after recovery: {e}"));
    let mut expected = recovered;
    expected.insert(b"after".to_vec(), b"recovery".to_vec());
    assert_eq!(
        state_of(&db),
        expected,
        "{what}: a write after recovery was lost"
    );
    db.close().unwrap();
    outcome
}

#[test]
fn every_failed_write_or_sync_is_reported_and_recovery_keeps_acknowledged_writes() {
    let t0 = Instant::now();
    let ops = workload();
    let mut states = vec![State::new()];
    for op in &ops {
        let mut next = states.last().unwrap().clone();
        op.apply_model(&mut next);
        states.push(next);
    }
    let counts = count(&ops);
    let (writes, syncs) = *counts.last().unwrap();
    println!(
        "workload: {} operations, {writes} writes, {syncs} syncs (open: {:?})",
        ops.len(),
        counts[0]
    );
    assert!(writes > 10 && syncs > 10);

    let mut cases = Vec::new();
    for n in 1..=writes {
        cases.push(Case {
            fault: Fault::Write(n),
            errno: ENOSPC,
            partial: true,
        });
        cases.push(Case {
            fault: Fault::Write(n),
            errno: EIO,
            partial: false,
        });
    }
    for n in 1..=syncs {
        cases.push(Case {
            fault: Fault::Sync(n),
            errno: EIO,
            partial: false,
        });
        cases.push(Case {
            fault: Fault::Sync(n),
            errno: ENOSPC,
            partial: true,
        });
    }
    // Every case runs, even after one fails, so the report lists them all.
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for case in &cases {
        match std::panic::catch_unwind(|| run_case(&ops, &states, &counts, case)) {
            Ok(outcome) => *outcomes.entry(outcome).or_default() += 1,
            Err(panic) => failures.push(
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default(),
            ),
        }
    }
    println!(
        "{} fault runs: {outcomes:?}, {} failed, in {:?}",
        cases.len(),
        failures.len(),
        t0.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} of {} fault runs failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Creating a database fsyncs its parent directory as well (the new
/// directory's entry): one of the syncs of a first open is that one, and
/// failing it fails the open with an error naming the parent.
#[test]
fn a_new_database_syncs_its_parent_directory() {
    let mut named = Vec::new();
    for n in 1..=6 {
        let dir = tempfile::tempdir().unwrap();
        let parent = dir.path().join("parent");
        let storage = FaultyStorage::new(Some(Fault::Sync(n)), EIO, false);
        if let Err(e) = Db::open(opts(&parent.join("db")).storage(Arc::new(storage))) {
            if e.to_string()
                .contains(&format!("syncing directory {}:", parent.display()))
            {
                named.push(n);
            }
        }
    }
    assert_eq!(
        named.len(),
        1,
        "syncs of the parent among the first 6: {named:?}"
    );
}
