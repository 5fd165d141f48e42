//! A write whose caller gives up (its future dropped) after the backend
//! committed still leaves the cache consistent: the handle sees its own
//! write. The backend here commits and then never answers, and the caller
//! drops the call on a timeout.
#![allow(clippy::unwrap_used)]

mod support;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kv_cache::{CacheLayer, CacheOptions};
use kv_core::backend::{BatchOp, Precondition};
use kv_core::{Backend, Batch, KVStore, Store, Value, DEFAULT_NAMESPACE};
use support::{Mode, Scripted};

/// A cached store over a scripted backend, with `k` = "old", `n` = 1 and
/// `a.1` = "x" cached.
async fn setup() -> (Store, Arc<CacheLayer>, Arc<Scripted>) {
    let backend = Arc::new(Scripted::default());
    let layer = Arc::new(
        CacheLayer::new(
            backend.clone() as Arc<dyn Backend>,
            CacheOptions::new().negative(true),
        )
        .unwrap(),
    );
    let cached = Store::new(layer.clone() as Arc<dyn Backend>);
    for (k, v) in [
        ("k", Value::from("old")),
        ("n", 1.into()),
        ("a.1", "x".into()),
    ] {
        cached.set(k, v).await.unwrap();
        cached.get(k).await.unwrap();
    }
    (cached, layer, backend)
}

/// Runs `call` with the backend committing and never answering, and drops
/// it; then lets the backend answer again.
async fn cancelled<T>(backend: &Scripted, call: impl Future<Output = T>) {
    backend.set_mode(Mode::HangAfter);
    let out = tokio::time::timeout(Duration::from_millis(50), call).await;
    assert!(out.is_err(), "the call was meant to hang");
    backend.set_mode(Mode::Pass);
}

#[tokio::test]
async fn a_cancelled_set_is_seen_by_the_next_get() {
    let (cached, _, backend) = setup().await;
    cancelled(&backend, cached.set("k", "new".into())).await;
    assert_eq!(cached.get("k").await.unwrap(), Some(Value::from("new")));
}

#[tokio::test]
async fn a_cancelled_delete_is_seen_by_the_next_get() {
    let (cached, _, backend) = setup().await;
    cancelled(&backend, cached.delete("k")).await;
    assert_eq!(cached.get("k").await.unwrap(), None);
}

#[tokio::test]
async fn a_cancelled_delete_many_is_seen_by_the_next_get() {
    let (cached, _, backend) = setup().await;
    cancelled(&backend, cached.delete_many(&["k", "a.1"])).await;
    assert_eq!(cached.get("k").await.unwrap(), None);
}

#[tokio::test]
async fn a_cancelled_increment_is_seen_by_the_next_get() {
    let (cached, _, backend) = setup().await;
    cancelled(&backend, cached.increment("n", 5)).await;
    assert_eq!(cached.get("n").await.unwrap(), Some(Value::Int(6)));
}

#[tokio::test]
async fn a_cancelled_append_in_place_is_seen_by_the_next_get() {
    let (cached, _, backend) = setup().await;
    cancelled(&backend, cached.append("k", "er".into())).await;
    assert_eq!(cached.get("k").await.unwrap(), Some(Value::from("older")));
}

#[tokio::test]
async fn a_cancelled_batch_is_seen_by_the_next_get() {
    let (cached, _, backend) = setup().await;
    let batch = Batch::new().set("k", "new").delete("n").set("fresh", 1);
    cancelled(&backend, cached.batch(batch)).await;
    assert_eq!(cached.get("k").await.unwrap(), Some(Value::from("new")));
    assert_eq!(cached.get("n").await.unwrap(), None);
    assert_eq!(cached.get("fresh").await.unwrap(), Some(Value::Int(1)));
}

#[tokio::test]
async fn a_cancelled_apply_is_seen_by_the_next_get() {
    let (cached, layer, backend) = setup().await;
    let mut record = backend
        .inner
        .read(DEFAULT_NAMESPACE, "k")
        .await
        .unwrap()
        .unwrap();
    record.set_value(&Value::from("new"));
    record.meta.version += 1;
    let ops = vec![
        BatchOp::Put {
            record,
            precondition: Precondition::Any,
        },
        BatchOp::Delete {
            namespace: DEFAULT_NAMESPACE.into(),
            key: "n".into(),
            precondition: Precondition::Any,
        },
    ];
    cancelled(&backend, layer.apply(ops)).await;
    assert_eq!(cached.get("k").await.unwrap(), Some(Value::from("new")));
    assert_eq!(cached.get("n").await.unwrap(), None);
}

#[tokio::test]
async fn a_cancelled_range_delete_is_seen_by_the_next_get() {
    let (cached, _, backend) = setup().await;
    cancelled(&backend, cached.delete_pattern("a.**")).await;
    assert_eq!(cached.get("a.1").await.unwrap(), None);
}
