//! What the cache may and may not serve, on a manual clock: writes through
//! the layer are seen at once; writes around it (straight to the backend)
//! at most `ttl` later; never a record past its own `expires_at`; failed
//! writes change nothing; atomic operations, batches and pattern deletes
//! drop what they touched; negative entries die on writes. And the counters
//! count.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use kv_cache::{CacheLayer, CacheOptions};
use kv_core::{
    Backend, Batch, Clock, KVStore, ManualClock, MemoryBackend, SetOptions, Store, Value,
};
use support::{Mode, Scripted};

const TTL: Duration = Duration::from_secs(10);

/// A cached store and a direct one over the same backend and clock.
fn pair(negative: bool) -> (Store, Store, ManualClock, Arc<CacheLayer>) {
    let clock = ManualClock::new(1_000_000);
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let layer = Arc::new(
        CacheLayer::new(
            Arc::clone(&backend),
            CacheOptions::new()
                .ttl(TTL)
                .negative(negative)
                .clock(Arc::new(clock.clone()) as Arc<dyn Clock>),
        )
        .unwrap(),
    );
    let cached = Store::builder(layer.clone() as Arc<dyn Backend>)
        .clock(clock.clone())
        .build()
        .unwrap();
    let direct = Store::builder(backend)
        .clock(clock.clone())
        .build()
        .unwrap();
    (cached, direct, clock, layer)
}

async fn stat(layer: &CacheLayer, name: &str) -> u64 {
    layer.stats().await.unwrap().fields[name].as_u64().unwrap()
}

#[tokio::test]
async fn writes_around_the_cache_are_stale_for_at_most_ttl() {
    let (cached, direct, clock, _) = pair(false);
    cached.set("k", "v1".into()).await.unwrap();
    assert_eq!(cached.get("k").await.unwrap(), Some(Value::from("v1")));
    direct.set("k", "v2".into()).await.unwrap();
    // Within ttl the cached handle may still see v1 ...
    clock.advance(TTL - Duration::from_millis(1));
    assert_eq!(cached.get("k").await.unwrap(), Some(Value::from("v1")));
    // ... and from ttl on it must see v2.
    clock.advance(Duration::from_millis(1));
    assert_eq!(cached.get("k").await.unwrap(), Some(Value::from("v2")));
    // Writes through the layer are seen at once, by both.
    cached.set("k", "v3".into()).await.unwrap();
    assert_eq!(cached.get("k").await.unwrap(), Some(Value::from("v3")));
    assert_eq!(direct.get("k").await.unwrap(), Some(Value::from("v3")));
}

#[tokio::test]
async fn a_record_is_never_served_past_its_own_expiry() {
    let (cached, _, clock, _) = pair(false);
    cached
        .set_with(
            "s",
            "x".into(),
            SetOptions::new().ttl(Duration::from_secs(2)),
        )
        .await
        .unwrap();
    assert_eq!(cached.get("s").await.unwrap(), Some(Value::from("x")));
    clock.advance(Duration::from_secs(2));
    assert_eq!(cached.get("s").await.unwrap(), None);
}

#[tokio::test]
async fn an_increment_the_backend_refuses_leaves_the_cache_unchanged() {
    let (cached, _, _, layer) = pair(false);
    cached.set("n", "text".into()).await.unwrap();
    cached.get("n").await.unwrap();
    assert!(cached.increment("n", 1).await.is_err(), "type mismatch");
    let hits = stat(&layer, "hits").await;
    assert_eq!(cached.get("n").await.unwrap(), Some(Value::from("text")));
    assert_eq!(
        stat(&layer, "hits").await,
        hits + 1,
        "served from the cache"
    );
}

#[tokio::test]
async fn writes_the_backend_fails_leave_the_cache_unchanged() {
    for negative in [false, true] {
        let backend = Arc::new(Scripted::default());
        let layer = Arc::new(
            CacheLayer::new(
                backend.clone() as Arc<dyn Backend>,
                CacheOptions::new().negative(negative),
            )
            .unwrap(),
        );
        let cached = Store::new(layer.clone() as Arc<dyn Backend>);
        cached.set("old", "v".into()).await.unwrap();
        assert_eq!(cached.get("old").await.unwrap(), Some(Value::from("v")));
        assert_eq!(cached.get("missing").await.unwrap(), None);
        // Every write fails in the backend (`write`, and `apply` beneath
        // the batch), before changing anything.
        backend.set_mode(Mode::Fail);
        for key in ["old", "missing"] {
            assert!(cached.set(key, "new".into()).await.is_err(), "{key}");
        }
        let batch = Batch::new().set("old", "b").set("missing", "b");
        assert!(cached.batch(batch).await.is_err());
        backend.set_mode(Mode::Pass);
        // The cached value is still there, and served from the cache ...
        let hits = stat(&layer, "hits").await;
        assert_eq!(cached.get("old").await.unwrap(), Some(Value::from("v")));
        assert_eq!(stat(&layer, "hits").await, hits + 1, "negative: {negative}");
        // ... and the missing key is still missing (from the cache too
        // with negative caching).
        assert_eq!(cached.get("missing").await.unwrap(), None);
        let cached_missing = u64::from(negative);
        assert_eq!(
            stat(&layer, "hits").await,
            hits + 1 + cached_missing,
            "negative: {negative}"
        );
    }
}

#[tokio::test]
async fn a_written_entry_is_fresh_for_ttl_from_before_the_write() {
    let clock = ManualClock::new(1_000_000);
    let backend = Arc::new(Scripted::default());
    let layer = CacheLayer::new(
        backend.clone() as Arc<dyn Backend>,
        CacheOptions::new()
            .ttl(TTL)
            .clock(Arc::new(clock.clone()) as Arc<dyn Clock>),
    )
    .unwrap();
    let cached = Store::builder(Arc::new(layer) as Arc<dyn Backend>)
        .clock(clock.clone())
        .build()
        .unwrap();
    let around = Store::builder(backend.inner.clone() as Arc<dyn Backend>)
        .clock(clock.clone())
        .build()
        .unwrap();
    // Right after the backend took v1, another process writes v2; the
    // write's answer then takes 5 s to come back.
    let (slow_clock, start) = (clock.clone(), clock.now());
    backend.after_write(Arc::new(move || {
        let (around, clock) = (around.clone(), slow_clock.clone());
        Box::pin(async move {
            around.set("k", "v2".into()).await.unwrap();
            clock.advance(Duration::from_secs(5));
        })
    }));
    cached.set("k", "v1".into()).await.unwrap();
    assert_eq!(clock.now().duration_since(start), Duration::from_secs(5));
    // Stale within the ttl ...
    assert_eq!(cached.get("k").await.unwrap(), Some(Value::from("v1")));
    // ... but v2 has been current since the write began: `ttl` after
    // that, it is seen.
    clock.advance(TTL - Duration::from_secs(5));
    assert_eq!(cached.get("k").await.unwrap(), Some(Value::from("v2")));
}

#[tokio::test]
async fn atomic_operations_batches_and_pattern_deletes_refresh_what_they_touch() {
    let (cached, direct, _, _) = pair(true);
    for k in ["c", "a.1", "a.2", "b.1"] {
        cached.set(k, 1.into()).await.unwrap();
        cached.get(k).await.unwrap();
    }
    assert_eq!(cached.increment("c", 5).await.unwrap(), 6);
    assert_eq!(cached.get("c").await.unwrap(), Some(Value::Int(6)));
    assert!(cached
        .compare_and_swap("c", Some(Value::Int(6)), 7.into())
        .await
        .unwrap());
    assert_eq!(cached.get("c").await.unwrap(), Some(Value::Int(7)));
    cached.append("b.1", Value::Null).await.unwrap_err();
    cached
        .batch(Batch::new().set("b.1", 9).delete("a.2"))
        .await
        .unwrap();
    assert_eq!(cached.get("b.1").await.unwrap(), Some(Value::Int(9)));
    assert_eq!(cached.get("a.2").await.unwrap(), None);
    assert_eq!(cached.delete_pattern("a.**").await.unwrap(), 1);
    assert_eq!(cached.get("a.1").await.unwrap(), None);
    assert_eq!(direct.count().await.unwrap(), 2);
    assert_eq!(
        cached.get_many(&["a.1", "b.1", "c"]).await.unwrap(),
        vec![None, Some(Value::Int(9)), Some(Value::Int(7))]
    );
}

#[tokio::test]
async fn negative_entries_are_dropped_by_writes_through_the_layer() {
    let (cached, direct, clock, layer) = pair(true);
    assert_eq!(cached.get("missing").await.unwrap(), None);
    assert_eq!(cached.get("missing").await.unwrap(), None);
    assert!(
        stat(&layer, "hits").await >= 1,
        "the second miss came from the cache"
    );
    cached.set("missing", 1.into()).await.unwrap();
    assert_eq!(cached.get("missing").await.unwrap(), Some(Value::Int(1)));
    // A negative entry is stale like any other when the write goes around.
    assert_eq!(cached.get("other").await.unwrap(), None);
    direct.set("other", 2.into()).await.unwrap();
    assert_eq!(cached.get("other").await.unwrap(), None);
    clock.advance(TTL);
    assert_eq!(cached.get("other").await.unwrap(), Some(Value::Int(2)));
}

#[tokio::test]
async fn counters_and_bounds() {
    let clock = ManualClock::new(0);
    let layer = Arc::new(
        CacheLayer::new(
            Arc::new(MemoryBackend::new()),
            CacheOptions::new()
                .capacity(100)
                .max_bytes(64 * 1024)
                .clock(Arc::new(clock.clone()) as Arc<dyn Clock>),
        )
        .unwrap(),
    );
    let store = Store::builder(layer.clone() as Arc<dyn Backend>)
        .clock(clock)
        .build()
        .unwrap();
    for i in 0..1000 {
        store
            .set(&format!("k.{i}"), Value::Bytes(vec![1; 1000]))
            .await
            .unwrap();
    }
    for i in 0..1000 {
        store.get(&format!("k.{i}")).await.unwrap();
    }
    let s = layer.stats().await.unwrap();
    let f = &s.fields;
    assert!(f["entries"].as_u64().unwrap() <= 100, "{f:?}");
    assert!(f["bytes"].as_u64().unwrap() <= 64 * 1024, "{f:?}");
    assert!(f["evictions"].as_u64().unwrap() > 0, "{f:?}");
    assert!(f["inserts"].as_u64().unwrap() >= 1000, "{f:?}");
    assert_eq!(s.inner.unwrap().backend, "memory");
    // Exposed through KVStore::stats as well.
    assert_eq!(store.stats().await.unwrap().backend.backend, "cache");
}

/// Under a byte bound, small entries each weigh at least their share of
/// the bound (so no more than `capacity` fit), but `bytes` reports what
/// they hold.
#[tokio::test]
async fn bytes_counts_what_small_entries_hold() {
    let layer = Arc::new(
        CacheLayer::new(
            Arc::new(MemoryBackend::new()),
            CacheOptions::new().capacity(100).max_bytes(64 * 1024),
        )
        .unwrap(),
    );
    let store = Store::new(layer.clone() as Arc<dyn Backend>);
    for i in 0..50 {
        store.set(&format!("k.{i}"), Value::Int(i)).await.unwrap();
    }
    let f = layer.stats().await.unwrap().fields;
    let (entries, bytes) = (f["entries"].as_u64().unwrap(), f["bytes"].as_u64().unwrap());
    assert_eq!(entries, 50, "{f:?}");
    // Each weighs the floor of 64 KiB / 100 = 656 bytes; each holds less.
    assert!(bytes > 0 && bytes < entries * 656, "{f:?}");
}

#[tokio::test]
async fn the_count_bound_holds_without_a_byte_bound() {
    let layer = Arc::new(
        CacheLayer::new(
            Arc::new(MemoryBackend::new()),
            CacheOptions::new().capacity(100),
        )
        .unwrap(),
    );
    let store = Store::new(layer.clone() as Arc<dyn Backend>);
    for i in 0..1000 {
        store.set(&format!("k.{i}"), Value::Int(i)).await.unwrap();
    }
    for i in 0..1000 {
        assert_eq!(
            store.get(&format!("k.{i}")).await.unwrap(),
            Some(Value::Int(i))
        );
    }
    let f = layer.stats().await.unwrap().fields;
    let entries = f["entries"].as_u64().unwrap();
    assert!((1..=100).contains(&entries), "{f:?}");
    assert!(f["evictions"].as_u64().unwrap() >= 900, "{f:?}");
    // Without a byte bound, bytes are still reported: summed over entries.
    assert!(f["bytes"].as_u64().unwrap() > 0, "{f:?}");
}

#[tokio::test]
async fn a_batch_leaves_every_key_it_wrote_cached() {
    let (cached, direct, _, layer) = pair(false);
    // Far more keys than the layer has stripes, so many share one.
    let items: Vec<(String, Value)> = (0..2_000)
        .map(|i| (format!("batch.{i:05}"), Value::from(i as i64)))
        .collect();
    cached.set_many(items.clone()).await.unwrap();
    let mut batch = Batch::new();
    for i in 0..500 {
        batch = batch.set(format!("other.{i:05}"), Value::from("x"));
    }
    assert!(cached.batch(batch).await.unwrap());
    let misses = stat(&layer, "misses").await;
    for (k, v) in &items {
        assert_eq!(cached.get(k).await.unwrap().as_ref(), Some(v));
    }
    for i in 0..500 {
        assert!(cached
            .get(&format!("other.{i:05}"))
            .await
            .unwrap()
            .is_some());
    }
    // Every read was served from the cache...
    assert_eq!(stat(&layer, "misses").await, misses);
    // ...and what it served is what the backend holds.
    for (k, v) in items.iter().step_by(97) {
        assert_eq!(direct.get(k).await.unwrap().as_ref(), Some(v));
    }
}
