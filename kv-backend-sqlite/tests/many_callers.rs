//! Many more concurrent callers than connections, on a multi-thread
//! runtime: reads and writes that find every connection busy wait for one
//! in place (each on its own thread, up to a bound) or are queued for the
//! connections' threads beyond it. Every answer stays right, nothing is
//! lost, and the number of threads stays bounded however many callers
//! there are.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use kv_backend_sqlite::{SqliteOptions, SqliteStore};
use kv_core::{KVStore, Store, Value};

/// Threads of this process, from `/proc/self/status`.
fn threads() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_callers_on_one_reader_lose_nothing_and_stay_bounded() {
    const CALLERS: usize = 300;
    const ROUNDS: i64 = 20;
    let dir = tempfile::tempdir().unwrap();
    let backend = SqliteStore::open(SqliteOptions::new(dir.path().join("kv.db")).readers(1))
        .await
        .unwrap();
    let store = Store::new(Arc::new(backend));
    for c in 0..CALLERS {
        store
            .set(&format!("shared.{c:03}"), Value::from(c as i64))
            .await
            .unwrap();
    }

    // Samples the thread count while the callers run.
    let running = Arc::new(AtomicBool::new(true));
    let most = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (running, most) = (Arc::clone(&running), Arc::clone(&most));
        std::thread::spawn(move || {
            while running.load(Ordering::Relaxed) {
                if let Some(n) = threads() {
                    most.fetch_max(n, Ordering::Relaxed);
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };

    let mut tasks = Vec::new();
    for c in 0..CALLERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let counter = format!("count.{c:03}");
            for round in 1..=ROUNDS {
                assert_eq!(store.increment(&counter, 1).await.unwrap(), round);
                // A read of another caller's key, and of a prefix.
                let other = (c * 7 + round as usize) % CALLERS;
                assert_eq!(
                    store.get(&format!("shared.{other:03}")).await.unwrap(),
                    Some(Value::from(other as i64))
                );
                let page = store
                    .scan(&format!("shared.{:02}*", c % 30), None, 100)
                    .await
                    .unwrap();
                assert_eq!(page.entries.len(), 10, "shared.{:02}*", c % 30);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    running.store(false, Ordering::Relaxed);
    sampler.join().unwrap();

    for c in 0..CALLERS {
        assert_eq!(
            store.get(&format!("count.{c:03}")).await.unwrap(),
            Some(Value::Int(ROUNDS))
        );
    }
    // 300 callers: at most 32 of them wait in place for the reader and 32
    // for the writer, each on a thread, plus the runtime's own threads and
    // the connections' (about 100 at the peak here). Without the bound
    // every caller that finds the connections busy holds a thread of its
    // own (340 at the peak when the bound was lifted).
    if threads().is_some() {
        let most = most.load(Ordering::Relaxed);
        assert!(most > 0);
        assert!(
            most < 170,
            "{most} threads for {CALLERS} callers on 2 connections"
        );
    }
}
