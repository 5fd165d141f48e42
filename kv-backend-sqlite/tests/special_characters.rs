//! Keys and values holding quotes, `%`, `_`, `\`, NUL bytes and SQL
//! fragments round-trip exactly, match the right patterns, and leave the
//! table intact: everything is a bound parameter.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use kv_backend_sqlite::{SqliteOptions, SqliteStore};
use kv_core::backend::{Backend, KeyRange, Precondition};
use kv_core::{KVStore, Record, Store, Timestamp, Value, ValueType};

const NASTY: &[&str] = &[
    "it's",
    "say\"hi\"",
    "100%",
    "a_b",
    "%_%",
    "back\\slash",
    "x';DROP_TABLE_kv_store;--",
    "');DELETE_FROM_kv_store;--",
    "\"kv_store\"",
    "ü.ñ.日本",
    "semi;colon",
    "star*q?[a]{b}",
];

async fn open(dir: &std::path::Path) -> (SqliteStore, Store) {
    let backend = SqliteStore::open(SqliteOptions::new(dir.join("kv.db")))
        .await
        .unwrap();
    let store = Store::new(Arc::new(backend.clone()));
    (backend, store)
}

#[tokio::test]
async fn nasty_keys_and_values_round_trip_and_the_table_survives() {
    let dir = tempfile::tempdir().unwrap();
    let (_, store) = open(dir.path()).await;
    for (i, k) in NASTY.iter().enumerate() {
        let key = format!("nasty.{k}");
        let value = format!("{k}\u{0}{k}; DROP TABLE kv_store; -- {i}");
        store.set(&key, value.as_str().into()).await.unwrap();
        store
            .set(
                &format!("bytes.{i}"),
                Value::Bytes(vec![0, b'\'', 0, b'%', 0xff, 0]),
            )
            .await
            .unwrap();
    }
    for (i, k) in NASTY.iter().enumerate() {
        let key = format!("nasty.{k}");
        let value = format!("{k}\u{0}{k}; DROP TABLE kv_store; -- {i}");
        assert_eq!(
            store.get(&key).await.unwrap(),
            Some(Value::from(value)),
            "{key}"
        );
        assert_eq!(
            store.get(&format!("bytes.{i}")).await.unwrap(),
            Some(Value::Bytes(vec![0, b'\'', 0, b'%', 0xff, 0]))
        );
    }
    // Patterns match by our glob rules, not SQL LIKE: `%` and `_` are plain.
    assert_eq!(store.keys("nasty.100%").await.unwrap(), ["nasty.100%"]);
    assert_eq!(store.keys("nasty.a_b").await.unwrap(), ["nasty.a_b"]);
    assert_eq!(store.keys(r"nasty.%\_%").await.unwrap(), ["nasty.%_%"]);
    assert_eq!(
        store.count_pattern("nasty.**").await.unwrap(),
        NASTY.len() as u64
    );
    assert_eq!(
        store.count_pattern("nasty.*").await.unwrap(),
        NASTY.len() as u64 - 1,
        "one key has dots of its own"
    );
    assert_eq!(store.count().await.unwrap(), 2 * NASTY.len() as u64);
    // Metadata with quotes and SQL in it.
    let meta = serde_json::json!({"note": "'); DROP TABLE kv_store; --", "q": "\"%_\\"});
    store
        .set_metadata("nasty.it's", meta.as_object().cloned().unwrap())
        .await
        .unwrap();
    let got = store.get_metadata("nasty.it's").await.unwrap().unwrap();
    assert_eq!(serde_json::Value::Object(got.user), meta);
    assert_eq!(
        store.delete_pattern("nasty.**").await.unwrap(),
        NASTY.len() as u64
    );
    assert_eq!(
        store.count().await.unwrap(),
        NASTY.len() as u64,
        "the table survived"
    );
}

#[tokio::test]
async fn nul_bytes_in_keys_and_namespaces_round_trip_at_the_backend_level() {
    // Store keys cannot hold control characters, but the backend takes any
    // string and must keep it exactly (and order it by bytes).
    let dir = tempfile::tempdir().unwrap();
    let (backend, _) = open(dir.path()).await;
    let now = Timestamp::from_millis(1);
    let keys = ["a\u{0}b", "a", "a\u{0}", "a\u{1}", "'\u{0}'"];
    for k in keys {
        let r = Record::new("n\u{0}s", k, &Value::from(k), ValueType::String, now);
        backend.write(r, Precondition::Absent).await.unwrap();
    }
    for k in keys {
        let r = backend.read("n\u{0}s", k).await.unwrap().unwrap();
        assert_eq!(r.key, k);
        assert_eq!(r.decode_value().unwrap(), Value::from(k));
    }
    assert!(backend.read("n", "a").await.unwrap().is_none());
    let scanned: Vec<String> = backend
        .scan_keys("n\u{0}s", &KeyRange::all(), None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.key)
        .collect();
    let mut sorted: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    sorted.sort();
    assert_eq!(scanned, sorted);
    assert_eq!(backend.namespaces().await.unwrap(), ["n\u{0}s"]);
}
