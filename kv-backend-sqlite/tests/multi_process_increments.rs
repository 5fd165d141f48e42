//! Two OS processes, each with its own connections to one database file,
//! each doing 2,000 increments of one key: the key ends at exactly 4,000.
//! The children are this test binary run again with `KV_SQLITE_CHILD_DB`
//! set, which makes `child_incrementer` do the work.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::sync::Arc;

use kv_backend_sqlite::{SqliteOptions, SqliteStore};
use kv_core::{KVStore, Store, Value};

const PER_PROCESS: i64 = 2_000;

#[tokio::test]
async fn child_incrementer() {
    let Ok(path) = std::env::var("KV_SQLITE_CHILD_DB") else {
        return; // Not a child: nothing to do.
    };
    let backend = SqliteStore::open(SqliteOptions::new(path)).await.unwrap();
    let store = Store::new(Arc::new(backend));
    for _ in 0..PER_PROCESS {
        store.increment("shared.counter", 1).await.unwrap();
    }
    store.close().await.unwrap();
}

#[tokio::test]
async fn two_processes_incrementing_one_key_lose_nothing() {
    if std::env::var("KV_SQLITE_CHILD_DB").is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    // Create the schema first so the children race only on increments.
    let backend = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
    let store = Store::new(Arc::new(backend));
    store.set("shared.counter", 0.into()).await.unwrap();

    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(&exe)
                .args(["child_incrementer", "--exact", "--test-threads=1"])
                .env("KV_SQLITE_CHILD_DB", &path)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        store.get("shared.counter").await.unwrap(),
        Some(Value::Int(2 * PER_PROCESS))
    );
    let meta = store.get_metadata("shared.counter").await.unwrap().unwrap();
    assert_eq!(
        meta.system.version,
        1 + 2 * PER_PROCESS as u64,
        "one version per increment"
    );
}
