//! Dropping a store returns at once, even with a write queued behind
//! another process's lock: the connection threads are not joined on the
//! dropping thread (often an async executor's), and they still finish
//! their queue, close their connections and exit on their own.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use kv_backend_sqlite::{SqliteOptions, SqliteStore};
use kv_core::{KVStore, Store};

/// The threads of this process whose name starts with `prefix` (Linux
/// truncates thread names to 15 bytes).
#[cfg(target_os = "linux")]
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

#[tokio::test]
async fn dropping_a_store_does_not_wait_for_its_queued_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    let backend = SqliteStore::open(
        SqliteOptions::new(&path)
            .busy_timeout(Duration::from_secs(5))
            .readers(2),
    )
    .await
    .unwrap();
    let store = Store::new(Arc::new(backend));
    store.set("k", 1.into()).await.unwrap();
    // Another process holds the write lock ...
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    // ... so a write waits in the writer thread's queue (this runtime is
    // single-threaded: every call is queued), and its caller gives up.
    let gave_up = tokio::time::timeout(Duration::from_secs(1), store.set("k", 2.into())).await;
    assert!(gave_up.is_err(), "the write should wait for the lock");
    let start = Instant::now();
    drop(store);
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "drop waited {took:?} for the queued write"
    );
    other.execute_batch("ROLLBACK").unwrap();
    drop(other);
    // The threads finish the queued write, close their connections and go.
    #[cfg(target_os = "linux")]
    {
        let deadline = Instant::now() + Duration::from_secs(10);
        while threads_named("kv-sqlite-") > 0 {
            assert!(Instant::now() < deadline, "the connection threads live on");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    // The write went through before the writer closed.
    let reopened = Store::new(Arc::new(
        SqliteStore::open(SqliteOptions::new(&path)).await.unwrap(),
    ));
    assert_eq!(reopened.get("k").await.unwrap(), Some(2.into()));
    reopened.close().await.unwrap();
}
