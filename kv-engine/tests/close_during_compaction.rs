//! Closing a database while another clone compacts or writes loses nothing.
//!
//! - `close()` on one thread while `compact()` runs on another (caught in
//!   the middle of copying the index into the new snapshot): after a reopen
//!   every key is there. Before `close()` waited for compaction, compaction
//!   went on copying from the index `close()` had emptied, and then renamed
//!   the partial snapshot, named it in the MANIFEST and deleted the segments
//!   that held the rest.
//! - `close()` while writers with `SyncMode::Always` are waiting for their
//!   fsync: every write that returned `Ok` is there after a reopen, and
//!   every write that returned an error is not (a write that close made
//!   durable must not be reported as failed).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use kv_engine::{Db, Error, Options, SyncMode};

const KEYS: u32 = 30_000;
const ROUNDS: usize = 6;

fn key(i: u32) -> Vec<u8> {
    format!("key{i:08}").into_bytes()
}

fn opts(dir: &Path) -> Options {
    Options::new(dir)
        .sync(SyncMode::Never)
        .background_compaction(false)
}

/// Whether compaction has started copying the index: its temporary
/// snapshot exists.
fn snapshot_in_progress(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_str()
            .is_some_and(|n| n.ends_with(".snap.tmp"))
    })
}

#[test]
fn close_while_another_clone_compacts_loses_no_key() {
    let t0 = Instant::now();
    let mut caught = 0;
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(opts(dir.path())).unwrap();
        for i in 0..KEYS {
            db.set(&key(i), &[b'v'; 64]).unwrap();
        }
        // Some compactions have run before, so old segments and a snapshot
        // exist to be (wrongly) deleted.
        if round % 2 == 1 {
            db.compact().unwrap();
            db.set(b"after-first-compaction", b"1").unwrap();
        }
        let compactor = {
            let db = db.clone();
            std::thread::spawn(move || db.compact())
        };
        // Close once compaction is copying the index (or has finished).
        let deadline = Instant::now() + Duration::from_secs(5);
        while !snapshot_in_progress(dir.path())
            && !compactor.is_finished()
            && Instant::now() < deadline
        {
            std::hint::spin_loop();
        }
        caught += usize::from(!compactor.is_finished());
        db.close().unwrap();
        match compactor.join().unwrap() {
            Ok(()) | Err(Error::Closed) => {}
            Err(e) => panic!("round {round}: compact failed with {e}"),
        }
        let db = Db::open(opts(dir.path())).unwrap();
        let expected = KEYS as usize + usize::from(round % 2 == 1);
        let count = db.count().unwrap();
        assert_eq!(
            count,
            expected,
            "round {round}: {} of {expected} keys lost after closing during a compaction",
            expected - count.min(expected)
        );
        for i in (0..KEYS).step_by(997) {
            assert_eq!(db.get(&key(i)).unwrap(), Some(vec![b'v'; 64]));
        }
        db.close().unwrap();
    }
    println!(
        "{ROUNDS} rounds, close during the copy in {caught}, in {:?}",
        t0.elapsed()
    );
    assert!(caught > 0, "close never overlapped a compaction");
}

#[test]
fn close_beside_waiting_writers_reports_every_write_truly() {
    let t0 = Instant::now();
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(Options::new(dir.path()).sync(SyncMode::Always)).unwrap();
        let threads = 6;
        let start = Arc::new(Barrier::new(threads + 1));
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..threads)
            .map(|t| {
                let (db, start, stop) = (db.clone(), Arc::clone(&start), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let (mut ok, mut failed) = (Vec::new(), Vec::new());
                    start.wait();
                    for n in 0u32.. {
                        let k = format!("t{t}-{n:06}").into_bytes();
                        match db.set(&k, b"x") {
                            Ok(()) => ok.push(k),
                            Err(Error::Closed) => {
                                failed.push(k);
                                break;
                            }
                            Err(e) => panic!("write failed with {e}"),
                        }
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                    }
                    (ok, failed)
                })
            })
            .collect();
        start.wait();
        std::thread::sleep(Duration::from_millis(20 + 5 * round as u64));
        db.close().unwrap();
        stop.store(true, Ordering::Relaxed);
        let (mut ok, mut failed) = (BTreeSet::new(), BTreeSet::new());
        for w in writers {
            let (o, f) = w.join().unwrap();
            ok.extend(o);
            failed.extend(f);
        }
        let db = Db::open(Options::new(dir.path())).unwrap();
        let present: BTreeSet<Vec<u8>> = db.dump_keys().unwrap().into_iter().collect();
        let lost: Vec<_> = ok.difference(&present).collect();
        assert!(
            lost.is_empty(),
            "round {round}: acknowledged writes lost: {lost:?}"
        );
        let misreported: Vec<_> = failed.intersection(&present).collect();
        assert!(
            misreported.is_empty(),
            "round {round}: writes reported as failed are on disk: {:?}",
            misreported
                .iter()
                .map(|k| String::from_utf8_lossy(k))
                .collect::<Vec<_>>()
        );
        db.close().unwrap();
    }
    println!("{ROUNDS} rounds in {:?}", t0.elapsed());
}
