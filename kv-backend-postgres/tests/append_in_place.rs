//! `append` to a live string or bytes value runs as one `UPDATE` that
//! joins the value and combines its CRC32 on the server; everything else
//! (a missing or expired key, another type, a value over the size limit,
//! `prepend`) takes the store's general path. Either way the answers and
//! the stored record are what kv-core's rules give, and a cache over the
//! backend drops its copy.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use kv_backend_postgres::PgStore;
use kv_core::{Error, KVStore, ManualClock, SetOptions, Store, StoreOptions, Value};

async fn in_place(backend: &PgStore) -> u64 {
    common::stat(backend, "appends_in_place").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strings_and_bytes_are_appended_in_one_statement() {
    let Some(url) = common::pg_url("strings_and_bytes_are_appended_in_one_statement") else {
        return;
    };
    let backend = common::store(&url, "append").await;
    let table = backend.options().table.clone();
    let clock = ManualClock::new(1_700_000_000_000);
    let options = StoreOptions {
        max_value_size: 64,
        ..StoreOptions::default()
    };
    let store = Store::builder(Arc::new(backend.clone()))
        .clock(clock.clone())
        .options(options)
        .build()
        .unwrap();

    // A missing key is set by the general path.
    assert_eq!(
        store.append("a.new", Value::from("héllo")).await.unwrap(),
        6
    );
    assert_eq!(in_place(&backend).await, 0);

    // Live strings and bytes: in place, read back (which checks the CRC
    // the server combined), metadata as the rules say.
    let cases: Vec<(&str, Value, Value, Value)> = vec![
        (
            "a.s",
            Value::from("héllo"),
            Value::from(" wörld"),
            Value::from("héllo wörld"),
        ),
        (
            "a.empty",
            Value::from(""),
            Value::from("x"),
            Value::from("x"),
        ),
        (
            "a.nothing",
            Value::from("abc"),
            Value::from(""),
            Value::from("abc"),
        ),
        (
            "a.b",
            Value::Bytes(vec![0, 1, 2]),
            Value::Bytes(vec![255, 0]),
            Value::Bytes(vec![0, 1, 2, 255, 0]),
        ),
        (
            "a.bs",
            Value::Bytes(vec![9]),
            Value::from("z"),
            Value::Bytes(vec![9, b'z']),
        ),
    ];
    for (key, start, piece, joined) in cases {
        store
            .set_with(key, start, SetOptions::new().ttl(Duration::from_secs(60)))
            .await
            .unwrap();
        let before = store.get_entry(key).await.unwrap().unwrap();
        let counted = in_place(&backend).await;
        clock.advance(Duration::from_secs(1));
        let len = store.append(key, piece).await.unwrap();
        assert_eq!(in_place(&backend).await, counted + 1, "{key} in place");
        let after = store.get_entry(key).await.unwrap().unwrap();
        assert_eq!(after.value, joined, "{key}");
        let (b, a) = (&before.metadata.system, &after.metadata.system);
        assert_eq!(len, a.size, "{key} length");
        assert_eq!(a.size as usize, joined.payload_len(), "{key} size");
        assert_eq!(a.version, b.version + 1, "{key} version");
        assert_eq!(a.created_at, b.created_at, "{key} created_at");
        assert_eq!(
            a.updated_at.as_millis(),
            b.updated_at.as_millis() + 1000,
            "{key}"
        );
        assert_eq!(a.expires_at, b.expires_at, "{key} keeps its TTL");
        assert_eq!(a.value_type, b.value_type, "{key} type");
    }

    // Exactly at the size limit (tag + 63 bytes = 64): in place.
    store
        .set("a.full", Value::from("x".repeat(60)))
        .await
        .unwrap();
    let counted = in_place(&backend).await;
    assert_eq!(
        store.append("a.full", Value::from("yyy")).await.unwrap(),
        63
    );
    assert_eq!(in_place(&backend).await, counted + 1);

    // The general path's answers: a type mismatch, a value too large, an
    // expired key (appended to as if missing), and prepend.
    let counted = in_place(&backend).await;
    store.set("a.text", Value::from("t")).await.unwrap();
    assert!(matches!(
        store.append("a.text", Value::Bytes(vec![1])).await,
        Err(Error::TypeMismatch { .. })
    ));
    store.set("a.int", Value::Int(1)).await.unwrap();
    assert!(matches!(
        store.append("a.int", Value::from("x")).await,
        Err(Error::TypeMismatch { .. })
    ));
    store
        .set("a.big", Value::from("x".repeat(60)))
        .await
        .unwrap();
    assert!(matches!(
        store.append("a.big", Value::from("yyyy")).await,
        Err(Error::ValueTooLarge { .. })
    ));
    assert_eq!(
        store.get("a.big").await.unwrap(),
        Some(Value::from("x".repeat(60)))
    );
    store
        .set_with(
            "a.old",
            Value::from("gone"),
            SetOptions::new().ttl(Duration::from_secs(5)),
        )
        .await
        .unwrap();
    clock.advance(Duration::from_secs(5));
    assert_eq!(store.append("a.old", Value::from("new")).await.unwrap(), 3);
    assert_eq!(store.get("a.old").await.unwrap(), Some(Value::from("new")));
    assert_eq!(store.prepend("a.s", Value::from(">")).await.unwrap(), 14);
    assert_eq!(
        store.get("a.s").await.unwrap(),
        Some(Value::from(">héllo wörld"))
    );
    assert_eq!(in_place(&backend).await, counted, "none of these in place");

    // Through a cache: the cached copy is dropped, the next get sees the
    // appended value.
    let cached = Store::builder(Arc::new(
        kv_cache::CacheLayer::new(Arc::new(backend.clone()), kv_cache::CacheOptions::new())
            .unwrap(),
    ))
    .clock(clock.clone())
    .build()
    .unwrap();
    cached.set("a.c", Value::from("one")).await.unwrap();
    assert_eq!(cached.get("a.c").await.unwrap(), Some(Value::from("one")));
    let counted = in_place(&backend).await;
    cached.append("a.c", Value::from("two")).await.unwrap();
    assert_eq!(in_place(&backend).await, counted + 1);
    assert_eq!(
        cached.get("a.c").await.unwrap(),
        Some(Value::from("onetwo"))
    );

    // Concurrent appends lose nothing.
    store.set("a.shared", Value::from("")).await.unwrap();
    let counted = in_place(&backend).await;
    let mut tasks = Vec::new();
    for t in 0..8u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..5 {
                store
                    .append("a.shared", Value::from(char::from(b'a' + t).to_string()))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let Some(Value::String(shared)) = store.get("a.shared").await.unwrap() else {
        panic!("a.shared is not a string");
    };
    assert_eq!(shared.len(), 40);
    for t in 0..8u8 {
        let c = char::from(b'a' + t);
        assert_eq!(shared.chars().filter(|&x| x == c).count(), 5, "{c}");
    }
    assert_eq!(in_place(&backend).await, counted + 40);

    store.close().await.unwrap();
    common::drop_tables(&url, &[table]).await;
}
