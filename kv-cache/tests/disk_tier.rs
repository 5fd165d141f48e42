//! The disk tier survives a reopen (the cache starts warm) and drops
//! entries older than the cache ttl, at open and on read.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use kv_cache::{CacheLayer, CacheOptions, DiskTierOptions};
use kv_core::{Backend, Clock, KVStore, ManualClock, MemoryBackend, Store, Value};

fn layer(
    backend: &Arc<dyn Backend>,
    dir: &std::path::Path,
    clock: &ManualClock,
) -> Arc<CacheLayer> {
    Arc::new(
        CacheLayer::new(
            Arc::clone(backend),
            CacheOptions::new()
                .ttl(Duration::from_secs(60))
                .disk(DiskTierOptions::new(dir))
                .clock(Arc::new(clock.clone()) as Arc<dyn Clock>),
        )
        .unwrap(),
    )
}

#[tokio::test]
async fn disk_tier_survives_reopen_and_drops_entries_past_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let direct = Store::builder(Arc::clone(&backend))
        .clock(clock.clone())
        .build()
        .unwrap();
    {
        let cached = Store::builder(layer(&backend, dir.path(), &clock) as Arc<dyn Backend>)
            .clock(clock.clone())
            .build()
            .unwrap();
        cached
            .set("doc", Value::Bytes(vec![7; 10_000]))
            .await
            .unwrap();
        cached.set("small", 1.into()).await.unwrap();
        cached.flush().await.unwrap();
    }
    // The backend changes behind the cache's back while it is closed.
    direct.set("doc", "changed".into()).await.unwrap();
    clock.advance(Duration::from_secs(30));
    let reopened = layer(&backend, dir.path(), &clock);
    let cached = Store::builder(reopened.clone() as Arc<dyn Backend>)
        .clock(clock.clone())
        .build()
        .unwrap();
    // Warm: the old value comes from disk (stale, within the ttl) ...
    assert_eq!(
        cached.get("doc").await.unwrap(),
        Some(Value::Bytes(vec![7; 10_000]))
    );
    let f = reopened.stats().await.unwrap().fields;
    assert_eq!(f["disk_hits"].as_u64().unwrap(), 1, "{f:?}");
    drop(cached);
    drop(reopened);
    // ... and entries past the ttl are dropped when the tier opens.
    clock.advance(Duration::from_secs(31));
    let reopened = layer(&backend, dir.path(), &clock);
    let f = reopened.stats().await.unwrap().fields;
    assert_eq!(f["disk_entries"].as_u64().unwrap(), 0, "{f:?}");
    let cached = Store::builder(reopened as Arc<dyn Backend>)
        .clock(clock)
        .build()
        .unwrap();
    assert_eq!(
        cached.get("doc").await.unwrap(),
        Some(Value::from("changed"))
    );
}
