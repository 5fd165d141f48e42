//! Reopening a file database keeps every record: values of every type,
//! user and system metadata, versions and TTLs (absolute expiry times).
//! Also: a bad table name and a table from a newer schema are refused.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use kv_backend_sqlite::{SqliteOptions, SqliteStore, SCHEMA_VERSION};
use kv_core::{Error, KVStore, ManualClock, Metadata, SetOptions, Store, Ttl, Value};

async fn store(path: &std::path::Path, clock: &ManualClock) -> Store {
    let backend = SqliteStore::open(SqliteOptions::new(path)).await.unwrap();
    Store::builder(Arc::new(backend))
        .clock(clock.clone())
        .build()
        .unwrap()
}

#[tokio::test]
async fn reopening_keeps_values_metadata_and_ttls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    let clock = ManualClock::new(1_700_000_000_000);
    let values = [
        ("v.null", Value::Null),
        ("v.bool", Value::Bool(true)),
        ("v.int", Value::Int(-42)),
        ("v.float", Value::Float(2.5)),
        ("v.str", Value::from("héllo")),
        ("v.json", Value::Json(serde_json::json!({"a": [1, 2]}))),
        ("v.bytes", Value::Bytes(vec![0, 1, 255])),
    ];
    let mut before: Vec<(String, Metadata)> = Vec::new();
    {
        let s = store(&path, &clock).await;
        for (k, v) in &values {
            s.set(k, v.clone()).await.unwrap();
        }
        s.set_with(
            "doc.pdf",
            vec![1u8, 2, 3].into(),
            SetOptions::document("application/pdf")
                .ttl(Duration::from_secs(60))
                .metadata(
                    serde_json::json!({"owner": "ada", "tags": ["x"]})
                        .as_object()
                        .cloned()
                        .unwrap(),
                ),
        )
        .await
        .unwrap();
        s.increment("v.int", 2).await.unwrap();
        s.namespace("other")
            .unwrap()
            .set("k", 1.into())
            .await
            .unwrap();
        for (k, _) in values.iter().chain([("doc.pdf", Value::Null)].iter()) {
            before.push((k.to_string(), s.get_metadata(k).await.unwrap().unwrap()));
        }
        s.close().await.unwrap();
    }
    clock.advance(Duration::from_secs(30));
    let s = store(&path, &clock).await;
    for (k, v) in &values {
        let want = if *k == "v.int" {
            Value::Int(-40)
        } else {
            v.clone()
        };
        assert_eq!(s.get(k).await.unwrap(), Some(want), "{k}");
    }
    for (k, meta) in &before {
        assert_eq!(&s.get_metadata(k).await.unwrap().unwrap(), meta, "{k}");
    }
    assert_eq!(
        s.ttl("doc.pdf").await.unwrap(),
        Ttl::Expires(Duration::from_secs(30))
    );
    assert_eq!(s.list_namespaces().await.unwrap(), ["default", "other"]);
    clock.advance(Duration::from_secs(30));
    assert_eq!(
        s.get("doc.pdf").await.unwrap(),
        None,
        "expired after reopen"
    );
}

#[tokio::test]
async fn bad_table_names_and_newer_schemas_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    for bad in ["kv store", "x\"; DROP TABLE kv_store; --", "1kv", ""] {
        let err = SqliteStore::open(SqliteOptions::new(&path).table(bad))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{bad}: {err}");
    }
    let s = SqliteStore::open(SqliteOptions::new(&path).table("custom_table"))
        .await
        .unwrap();
    s.with_connection(|c| {
        c.execute(
            "UPDATE kv_schema SET version = ?1 WHERE tbl = 'custom_table'",
            [SCHEMA_VERSION + 1],
        )
        .map_err(|e| Error::backend("sqlite", false, e))
    })
    .await
    .unwrap();
    kv_core::Backend::close(&s).await.unwrap();
    let err = SqliteStore::open(SqliteOptions::new(&path).table("custom_table"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("newer version"), "{err}");
    // Another table in the same file is independent.
    SqliteStore::open(SqliteOptions::new(&path).table("second"))
        .await
        .unwrap();
}
