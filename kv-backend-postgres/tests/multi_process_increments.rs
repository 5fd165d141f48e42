//! Two OS processes, each with its own pool, each doing 2,000 increments
//! of one key on one table: the key ends at exactly 4,000. The children are
//! this test binary run again with `KV_PG_CHILD_TABLE` set.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;

use kv_backend_postgres::{PgOptions, PgStore};
use kv_core::{KVStore, Store, Value};

const PER_PROCESS: i64 = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_incrementer() {
    let Ok(table) = std::env::var("KV_PG_CHILD_TABLE") else {
        return; // Not a child.
    };
    let url = std::env::var("KV_TEST_POSTGRES_URL").unwrap();
    let backend = PgStore::open(PgOptions::new(url).table(table).pool_size(4))
        .await
        .unwrap();
    let store = Store::new(Arc::new(backend));
    // Four tasks per process, so the processes and the tasks all race.
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..PER_PROCESS / 4 {
                    store.increment("shared.counter", 1).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_incrementing_one_key_lose_nothing() {
    if std::env::var("KV_PG_CHILD_TABLE").is_ok() {
        return;
    }
    let Some(url) = common::pg_url("two_processes_incrementing_one_key_lose_nothing") else {
        return;
    };
    let backend = common::store(&url, "procs").await;
    let table = backend.options().table.clone();
    let store = Store::new(Arc::new(backend));
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(&exe)
                .args(["child_incrementer", "--exact", "--test-threads=1"])
                .env("KV_PG_CHILD_TABLE", &table)
                .env("KV_TEST_POSTGRES_URL", &url)
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
    assert_eq!(meta.system.version, 2 * PER_PROCESS as u64);
    common::drop_tables(&url, &[table]).await;
}
