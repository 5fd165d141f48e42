//! A range delete (`delete_pattern` on a prefix) racing reads and writes
//! of keys in its range: nothing the backend no longer holds is left
//! cached. The interleavings are forced with a backend that holds a call
//! after it reached the backend, until the range delete is done.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kv_cache::{CacheLayer, CacheOptions, DiskTierOptions};
use kv_core::{Backend, KVStore, MemoryBackend, Store, Value};
use support::Scripted;

fn stores(options: CacheOptions) -> (Store, Store, Arc<Scripted>) {
    let backend = Arc::new(Scripted::default());
    let layer = CacheLayer::new(backend.clone() as Arc<dyn Backend>, options).unwrap();
    let cached = Store::new(Arc::new(layer) as Arc<dyn Backend>);
    let direct = Store::new(backend.clone() as Arc<dyn Backend>);
    (cached, direct, backend)
}

#[tokio::test]
async fn a_read_that_fetched_before_a_range_delete_does_not_cache_the_deleted_record() {
    let (cached, direct, backend) = stores(CacheOptions::new());
    // Written around the cache: nothing cached for the key.
    direct.set("a.1", "v".into()).await.unwrap();
    let (fetched, release) = backend.hold_next_read("a.1");
    let reader = tokio::spawn({
        let cached = cached.clone();
        async move { cached.get("a.1").await }
    });
    // The read has its answer from the backend ...
    fetched.notified().await;
    // ... when the range delete runs to its end ...
    assert_eq!(cached.delete_pattern("a.**").await.unwrap(), 1);
    // ... and only then does the read fill the cache.
    release.notify_one();
    reader.await.unwrap().unwrap();
    assert_eq!(cached.get("a.1").await.unwrap(), None);
    assert_eq!(direct.get("a.1").await.unwrap(), None);
}

#[tokio::test]
async fn a_write_that_settles_after_a_range_delete_does_not_cache_the_deleted_record() {
    let (cached, direct, backend) = stores(CacheOptions::new());
    let (written, release) = backend.hold_next_write("a.1");
    let writer = tokio::spawn({
        let cached = cached.clone();
        async move { cached.set("a.1", "w".into()).await }
    });
    // The write reached the backend ...
    written.notified().await;
    // ... the range delete removes it there ...
    assert_eq!(cached.delete_pattern("a.**").await.unwrap(), 1);
    // ... and only then does the write settle in the cache.
    release.notify_one();
    writer.await.unwrap().unwrap();
    assert_eq!(direct.get("a.1").await.unwrap(), None);
    assert_eq!(cached.get("a.1").await.unwrap(), None);
}

/// Readers promote disk-tier entries into memory while range deletes drop
/// them: no promotion may outlive the delete. (Not forced, so it proves
/// less than the tests above; it runs many rounds on several threads.)
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn disk_entries_are_not_promoted_back_during_a_range_delete() {
    let dir = tempfile::tempdir().unwrap();
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let layer = Arc::new(
        CacheLayer::new(
            Arc::clone(&backend),
            CacheOptions::new()
                .ttl(Duration::from_secs(600))
                .disk(DiskTierOptions::new(dir.path())),
        )
        .unwrap(),
    );
    let cached = Store::new(layer.clone() as Arc<dyn Backend>);
    let keys: Vec<String> = (0..8).map(|i| format!("r.{i}")).collect();
    for round in 0..300 {
        for k in &keys {
            cached.set(k, Value::Int(round)).await.unwrap();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (cached, keys, stop) = (cached.clone(), keys.clone(), Arc::clone(&stop));
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        for k in &keys {
                            cached.get(k).await.unwrap();
                        }
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        tokio::task::yield_now().await;
        assert_eq!(cached.delete_pattern("r.**").await.unwrap(), 8);
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.await.unwrap();
        }
        for k in &keys {
            assert_eq!(cached.get(k).await.unwrap(), None, "round {round}, {k}");
        }
    }
}
