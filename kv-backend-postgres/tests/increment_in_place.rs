//! `increment` of a live integer runs as one `UPDATE` that rewrites the
//! encoding and its CRC32 on the server; everything else (a missing or
//! expired key, another type, an overflow) takes the transaction path.
//! Either way the answers, the stored record and its checksum are what
//! kv-core's rules give.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use kv_backend_postgres::PgStore;
use kv_core::{Error, KVStore, ManualClock, SetOptions, Store, Value, ValueType};

async fn in_place(backend: &PgStore) -> u64 {
    common::stat(backend, "increments_in_place").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_integers_are_incremented_in_one_statement() {
    let Some(url) = common::pg_url("live_integers_are_incremented_in_one_statement") else {
        return;
    };
    let backend = common::store(&url, "incr").await;
    let table = backend.options().table.clone();
    let clock = ManualClock::new(1_700_000_000_000);
    let store = Store::builder(Arc::new(backend.clone()))
        .clock(clock.clone())
        .build()
        .unwrap();

    // A missing key starts from 0 on the transaction path.
    assert_eq!(store.increment("n.a", 5).await.unwrap(), 5);
    assert_eq!(in_place(&backend).await, 0);

    // Live integers, of every sign and at the edges: in place, and each
    // read back (which checks the CRC the server computed).
    let cases: [(i64, i64); 7] = [
        (5, 3),
        (-5, -10),
        (0, -1),
        (-1, 1),
        (i64::MAX - 1, 1),
        (i64::MIN + 1, -1),
        (0x0123_4567_89ab_cdef, -0x0fed_cba9_8765_4321),
    ];
    for (i, (start, delta)) in cases.into_iter().enumerate() {
        let key = format!("n.case{i}");
        store
            .set_with(
                &key,
                Value::Int(start),
                SetOptions::new().ttl(Duration::from_secs(3600)),
            )
            .await
            .unwrap();
        let before = store.get_entry(&key).await.unwrap().unwrap();
        let counted = in_place(&backend).await;
        assert_eq!(store.increment(&key, delta).await.unwrap(), start + delta);
        assert_eq!(in_place(&backend).await, counted + 1, "{key} in place");
        let after = store.get_entry(&key).await.unwrap().unwrap();
        assert_eq!(after.value, Value::Int(start + delta), "{key}");
        let (b, a) = (&before.metadata.system, &after.metadata.system);
        assert_eq!(a.version, b.version + 1, "{key} version");
        assert_eq!(a.created_at, b.created_at, "{key} created_at");
        assert_eq!(a.expires_at, b.expires_at, "{key} keeps its TTL");
        assert_eq!(a.value_type, ValueType::Number);
        assert_eq!(a.size, 8);
        assert!(a.updated_at >= b.updated_at);
    }

    // Types other than `number` that accept an integer keep it, in place.
    for (key, ty) in [
        ("n.json", ValueType::Json),
        ("n.custom", ValueType::Custom("counter".into())),
    ] {
        store
            .set_with(
                key,
                Value::Int(10),
                SetOptions::new().value_type(ty.clone()),
            )
            .await
            .unwrap();
        let counted = in_place(&backend).await;
        assert_eq!(store.increment(key, 1).await.unwrap(), 11);
        assert_eq!(in_place(&backend).await, counted + 1, "{key} in place");
        let entry = store.get_entry(key).await.unwrap().unwrap();
        assert_eq!(entry.metadata.system.value_type, ty, "{key}");
    }

    // Expired at exactly `now`: counts as missing, on the general path.
    store
        .set_with(
            "n.old",
            Value::Int(50),
            SetOptions::new().ttl(Duration::from_secs(5)),
        )
        .await
        .unwrap();
    clock.advance(Duration::from_secs(5));
    let counted = in_place(&backend).await;
    assert_eq!(store.increment("n.old", 2).await.unwrap(), 2);
    assert_eq!(
        in_place(&backend).await,
        counted,
        "an expired key is not in place"
    );
    assert_eq!(store.ttl("n.old").await.unwrap(), kv_core::Ttl::Persistent);

    // An overflow: the transaction path reports it, with the current value.
    store.set("n.max", Value::Int(i64::MAX)).await.unwrap();
    match store.increment("n.max", 1).await {
        Err(Error::Overflow { current, .. }) => assert_eq!(current, i64::MAX),
        other => panic!("expected Overflow, got {other:?}"),
    }
    assert_eq!(
        store.get("n.max").await.unwrap(),
        Some(Value::Int(i64::MAX))
    );

    // Not an integer: a type mismatch, nothing written.
    store.set("n.text", Value::from("7")).await.unwrap();
    assert!(matches!(
        store.increment("n.text", 1).await,
        Err(Error::TypeMismatch { .. })
    ));
    store.set("n.float", Value::Float(1.5)).await.unwrap();
    assert!(matches!(
        store.increment("n.float", 1).await,
        Err(Error::TypeMismatch { .. })
    ));

    // Concurrent increments on one key lose nothing.
    store.set("n.shared", Value::Int(0)).await.unwrap();
    let counted = in_place(&backend).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                store.increment("n.shared", 1).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.get("n.shared").await.unwrap(), Some(Value::Int(400)));
    assert_eq!(in_place(&backend).await, counted + 400);

    store.close().await.unwrap();
    common::drop_tables(&url, &[table]).await;
}
