//! Background workers (periodic sync, TTL cleaner, compaction) stop on
//! `close` and on drop: no engine thread is left behind. Alone in its test
//! binary, so every thread counted belongs to it.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use kv_engine::{Db, Options, SyncMode};

/// Threads of this process whose name marks them as an engine's.
fn engine_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).ok())
        .filter(|name| name.starts_with("kv-engine-"))
        .count()
}

/// Waits (bounded) until `n` engine threads run: a new thread names itself
/// only once it starts.
fn wait_for(n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = engine_threads();
        if now == n || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn workers_stop_on_close_and_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let o = || Options::new(dir.path()).sync(SyncMode::Periodic(Duration::from_millis(5)));
    assert_eq!(engine_threads(), 0);

    let db = Db::open(o()).unwrap();
    db.set(b"k", b"v").unwrap();
    assert_eq!(wait_for(3), 3, "sync, TTL cleaner and compaction threads");
    let clone = db.clone();
    db.close().unwrap();
    // `close` joins the threads before returning.
    assert_eq!(engine_threads(), 0, "threads left after close");
    drop(clone);

    let db = Db::open(o()).unwrap();
    assert_eq!(wait_for(3), 3);
    drop(db);
    assert_eq!(engine_threads(), 0, "threads left after drop");

    // Read-only handles run no workers.
    let ro = Db::open(o().read_only(true)).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(engine_threads(), 0);
    drop(ro);

    // A database with buffered writes and no background compaction still
    // has its TTL cleaner, and loses it on close too.
    let db = Db::open(
        Options::new(dir.path())
            .sync(SyncMode::Never)
            .background_compaction(false),
    )
    .unwrap();
    assert_eq!(wait_for(1), 1);
    let t0 = Instant::now();
    db.close().unwrap();
    assert_eq!(engine_threads(), 0);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "close waited for a sleeping worker"
    );
}
