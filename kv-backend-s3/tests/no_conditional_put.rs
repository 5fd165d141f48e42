//! A store that does not honour conditional PUTs (a wrapper that turns
//! `PutMode::Create` and `PutMode::Update` into `Overwrite`, as some
//! S3-compatible servers silently do; one that ignores only `If-Match`;
//! one that answers them with 400 or 501) is caught by the probe: compare-
//! and-swap, increment, `set_nx` — every conditional write — fail with
//! `Error::Unsupported` naming the store, and nothing stored is lost or
//! changed, even under concurrent attempts. A store that answers with 503
//! is probed again later. With
//! `S3Options::allow_local_locking` the same store works, atomically
//! within the process.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::hooked::{Hooked, How};
use futures_util::TryStreamExt;
use kv_backend_s3::{S3Options, S3Store};
use kv_core::{
    Backend, CasMechanism, Error, KVStore, Precondition, Record, Store, Timestamp, Value, ValueType,
};
use object_store::ObjectStore;

fn seeded(key: &str, value: i64) -> Record {
    Record::new(
        "default",
        key,
        &Value::Int(value),
        ValueType::Number,
        Timestamp::from_millis(1_700_000_000_000),
    )
}

async fn object_names(store: &Arc<dyn ObjectStore>) -> Vec<String> {
    store
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_ignoring_conditions_refuses_atomic_operations_and_loses_nothing() {
    let objects: Arc<dyn ObjectStore> = Arc::new(Hooked::new(How::IgnoresConditions));
    let backend = Arc::new(S3Store::new(Arc::clone(&objects), S3Options::default()).unwrap());
    // Seed a counter with an unconditional write (allowed: it needs no
    // atomicity).
    backend
        .write(seeded("counter", 5), Precondition::Any)
        .await
        .unwrap();
    let store = Store::new(Arc::clone(&backend) as Arc<dyn Backend>);

    match store.increment("counter", 1).await {
        Err(Error::Unsupported {
            backend, reason, ..
        }) => {
            assert_eq!(backend, "s3");
            assert!(reason.contains("IgnoresConditions"), "{reason}");
            assert!(
                reason.contains("If-None-Match") || reason.contains("If-Match"),
                "{reason}"
            );
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    assert_eq!(backend.probe().await.unwrap(), CasMechanism::Unsupported);
    assert_eq!(backend.capabilities().cas, CasMechanism::Unsupported);
    assert!(!backend.capabilities().multi_process);

    // Concurrent attempts of every conditional kind: all refused.
    let mut handles = Vec::new();
    for i in 0..8i64 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let results = [
                store.increment("counter", 1).await.map(|_| ()),
                store
                    .compare_and_swap("counter", Some(Value::Int(5)), Value::Int(100 + i))
                    .await
                    .map(|_| ()),
                store.set_nx("fresh", Value::Int(i)).await.map(|_| ()),
                store.append("log", "x".into()).await.map(|_| ()),
                store.set("counter", Value::Int(-1)).await,
            ];
            for r in results {
                assert!(matches!(r, Err(Error::Unsupported { .. })), "{r:?}");
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    // Nothing lost, nothing changed, no stray objects (the probe's is gone).
    assert_eq!(store.get("counter").await.unwrap(), Some(Value::Int(5)));
    assert_eq!(store.get("fresh").await.unwrap(), None);
    assert_eq!(store.get("log").await.unwrap(), None);
    let meta = store.get_metadata("counter").await.unwrap().unwrap();
    assert_eq!(meta.system.version, 1);
    assert_eq!(object_names(&objects).await.len(), 1);
    // Reads, listing and deletes still work.
    assert_eq!(store.keys("**").await.unwrap(), ["counter"]);
    assert!(store.delete("counter").await.unwrap());
    assert!(object_names(&objects).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn opting_into_local_locking_makes_it_atomic_within_the_process() {
    let objects: Arc<dyn ObjectStore> = Arc::new(Hooked::new(How::IgnoresConditions));
    let backend = S3Store::new(
        Arc::clone(&objects),
        S3Options::default().allow_local_locking(true),
    )
    .unwrap();
    assert_eq!(backend.probe().await.unwrap(), CasMechanism::Lock);
    let store = Store::new(Arc::new(backend));
    let mut handles = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..25 {
                store.increment("counter", 1).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(store.get("counter").await.unwrap(), Some(Value::Int(200)));
    assert!(store.set_nx("once", 1.into()).await.unwrap());
    assert!(!store.set_nx("once", 2.into()).await.unwrap());
}

/// A store that honours `If-None-Match` but ignores `If-Match`, or that
/// answers conditional PUTs with a status refusing them (400, 501), is
/// caught too: its atomic operations fail with `Unsupported` and write
/// nothing.
#[tokio::test]
async fn stores_refusing_or_half_honouring_conditions_are_unsupported() {
    for how in [
        How::IgnoresIfMatch,
        How::Refuses("400 Bad Request"),
        How::Refuses("501 Not Implemented"),
    ] {
        let what = format!("{how:?}");
        let objects: Arc<dyn ObjectStore> = Arc::new(Hooked::new(how));
        let backend = Arc::new(S3Store::new(Arc::clone(&objects), S3Options::default()).unwrap());
        assert_eq!(
            backend.probe().await.unwrap(),
            CasMechanism::Unsupported,
            "{what}"
        );
        let store = Store::new(Arc::clone(&backend) as Arc<dyn Backend>);
        let r = store.increment("counter", 1).await;
        assert!(matches!(r, Err(Error::Unsupported { .. })), "{what}: {r:?}");
        assert!(object_names(&objects).await.is_empty(), "{what}");
    }
}

/// A store that answers conditional PUTs with 503 for a while could not
/// be asked: the probe's error is temporary and not remembered, and once
/// the store answers, the probe finds conditional PUTs honoured.
#[tokio::test]
async fn an_unavailable_store_is_probed_again_later() {
    let odd = Arc::new(Hooked::new(How::Unavailable(AtomicBool::new(true))));
    let objects: Arc<dyn ObjectStore> = odd.clone();
    let backend = Arc::new(S3Store::new(Arc::clone(&objects), S3Options::default()).unwrap());
    match backend.probe().await {
        Err(e) => assert!(e.is_temporary(), "{e:?}"),
        Ok(mode) => panic!("expected a temporary error, got {mode:?}"),
    }
    if let How::Unavailable(on) = &odd.how {
        on.store(false, Ordering::SeqCst);
    }
    assert_eq!(backend.probe().await.unwrap(), CasMechanism::ConditionalPut);
    let store = Store::new(Arc::clone(&backend) as Arc<dyn Backend>);
    assert_eq!(store.increment("counter", 2).await.unwrap(), 2);
}
