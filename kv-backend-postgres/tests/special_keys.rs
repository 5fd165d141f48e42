//! Keys like `'; DROP TABLE kv;--`, `%`, `_`, quotes and non-ASCII
//! round-trip exactly and match the right patterns, and the table
//! survives: every statement is parameterised.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use kv_core::{KVStore, MetadataFilter, SetOptions, Store, Value};

const NASTY: &[&str] = &[
    "';DROP_TABLE_kv;--",
    "x');DELETE_FROM_kv;--",
    "100%",
    "a_b",
    "%_%",
    "it's",
    "say\"hi\"",
    "back\\slash",
    "ü.ñ.日本",
    "$1$2",
    "emoji🔑",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nasty_keys_round_trip_and_the_table_survives() {
    let Some(url) = common::pg_url("nasty_keys_round_trip_and_the_table_survives") else {
        return;
    };
    let backend = common::store(&url, "nasty").await;
    let table = backend.options().table.clone();
    let store = Store::new(Arc::new(backend));
    for (i, k) in NASTY.iter().enumerate() {
        let key = format!("n.{k}");
        let meta = serde_json::json!({"note": format!("'); DROP TABLE {table}; --"), "i": i});
        store
            .set_with(
                &key,
                Value::from(format!("{k}'\"; DROP TABLE {table}; --")),
                SetOptions::new().metadata(meta.as_object().cloned().unwrap()),
            )
            .await
            .unwrap();
    }
    for (i, k) in NASTY.iter().enumerate() {
        let key = format!("n.{k}");
        assert_eq!(
            store.get(&key).await.unwrap(),
            Some(Value::from(format!("{k}'\"; DROP TABLE {table}; --"))),
            "{key}"
        );
        let m = store.get_metadata(&key).await.unwrap().unwrap();
        assert_eq!(m.user["i"], serde_json::json!(i));
    }
    assert_eq!(store.keys("n.100%").await.unwrap(), ["n.100%"]);
    assert_eq!(store.keys("n.a_b").await.unwrap(), ["n.a_b"]);
    assert_eq!(
        store.count_pattern("n.**").await.unwrap(),
        NASTY.len() as u64
    );
    let found = store
        .find_by_metadata(
            "n.**",
            &MetadataFilter::new().eq("note", format!("'); DROP TABLE {table}; --")),
        )
        .await
        .unwrap();
    assert_eq!(found.len(), NASTY.len());
    // Namespaces with odd characters too.
    let ns = store.namespace("it's_%").unwrap();
    ns.set("k", 1.into()).await.unwrap();
    assert!(store
        .list_namespaces()
        .await
        .unwrap()
        .contains(&"it's_%".to_owned()));
    assert_eq!(
        store.delete_pattern("n.**").await.unwrap(),
        NASTY.len() as u64
    );
    assert_eq!(
        store.count().await.unwrap(),
        0,
        "the table survived and is empty"
    );
    common::drop_tables(&url, &[table]).await;
}
