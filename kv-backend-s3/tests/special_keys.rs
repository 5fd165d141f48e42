//! Keys holding characters that are unsafe in object paths or URLs (`/`,
//! `%`, `+`, `:`, `@`, `#`, `?`, `\`, `*`, non-ASCII, and look-alikes of
//! percent-encoding such as `%2F`) round-trip exactly, stay distinct, list
//! under the right patterns and in byte order, and never reach an object
//! name: every name is made of the encoding's alphabet — on the in-memory
//! store, the local file system and the test server.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use futures_util::TryStreamExt;
use kv_backend_s3::S3Store;
use kv_core::{KVStore, MetadataFilter, SetOptions, Store, Value};

const KEYS: &[&str] = &[
    "u.a/b",
    "u./",
    "u.%2F",
    "u.a%2Fb",
    "u.100%",
    "u.a+b",
    "u.a b+c", // refused: whitespace (checked below, not written)
    "u.x:y",
    "u.me@host",
    "u.tag#1",
    "u.what?",
    "u.back\\slash",
    "u.star*",
    "u.ключ",
    "u.日本.🔑",
    "u.naïve/x",
    "u.~tilde",
    "u.a[0]{1}",
];

fn valid_keys() -> Vec<&'static str> {
    KEYS.iter().copied().filter(|k| !k.contains(' ')).collect()
}

async fn check(backend: S3Store) {
    let objects = Arc::clone(backend.object_store());
    let prefix = backend.options().prefix.clone();
    let store = Store::new(Arc::new(backend));
    let keys = valid_keys();
    assert!(store.set("u.a b+c", 1.into()).await.is_err());
    for (i, k) in keys.iter().enumerate() {
        let meta = serde_json::json!({"key": k, "i": i});
        store
            .set_with(
                k,
                Value::from(format!("value of {k}")),
                SetOptions::new().metadata(meta.as_object().cloned().unwrap()),
            )
            .await
            .unwrap();
    }
    // Exact round trip of each key, value and metadata.
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(
            store.get(k).await.unwrap(),
            Some(Value::from(format!("value of {k}"))),
            "{k}"
        );
        let m = store.get_metadata(k).await.unwrap().unwrap();
        assert_eq!(m.user["key"], serde_json::json!(k));
        assert_eq!(m.user["i"], serde_json::json!(i));
    }
    let got = store.get_many(&keys).await.unwrap();
    assert!(got.iter().all(Option::is_some));
    // Listing: every key, in byte order, under the right patterns.
    let mut sorted: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    sorted.sort();
    assert_eq!(store.keys("u.**").await.unwrap(), sorted);
    assert_eq!(store.count().await.unwrap(), keys.len() as u64);
    assert_eq!(store.keys("u.a/*").await.unwrap(), ["u.a/b"]);
    assert_eq!(store.keys("u.%2F").await.unwrap(), ["u.%2F"]);
    assert_eq!(store.keys("u.a%*").await.unwrap(), ["u.a%2Fb"]);
    assert_eq!(store.keys("u.100%").await.unwrap(), ["u.100%"]);
    assert_eq!(store.keys("u.a[/+]b").await.unwrap(), ["u.a+b", "u.a/b"]);
    assert_eq!(store.keys("u.what\\?").await.unwrap(), ["u.what?"]);
    assert_eq!(store.keys("u.star\\*").await.unwrap(), ["u.star*"]);
    assert_eq!(
        store.keys("u.back\\\\slash").await.unwrap(),
        ["u.back\\slash"]
    );
    assert_eq!(store.keys("u.*@*").await.unwrap(), ["u.me@host"]);
    assert_eq!(store.keys("u.tag#?").await.unwrap(), ["u.tag#1"]);
    assert_eq!(store.keys("u.日本.*").await.unwrap(), ["u.日本.🔑"]);
    assert_eq!(store.keys("u.ключ").await.unwrap(), ["u.ключ"]);
    assert_eq!(store.keys("u.naïve/*").await.unwrap(), ["u.naïve/x"]);
    assert_eq!(
        store.keys("u.a\\[0\\]\\{1\\}").await.unwrap(),
        ["u.a[0]{1}"]
    );
    let page = store.scan("u.**", Some("u.a+b"), 3).await.unwrap();
    let after: Vec<String> = sorted
        .iter()
        .filter(|k| k.as_str() > "u.a+b")
        .take(3)
        .cloned()
        .collect();
    assert_eq!(
        page.entries
            .iter()
            .map(|e| e.key.clone())
            .collect::<Vec<_>>(),
        after
    );
    let found = store
        .find_by_metadata("u.**", &MetadataFilter::new().eq("key", "u.tag#1"))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    // Atomic operations on such keys.
    assert_eq!(store.increment("u.n/%?#", 2).await.unwrap(), 2);
    assert!(store
        .compare_and_swap("u.n/%?#", Some(2.into()), 3.into())
        .await
        .unwrap());
    assert!(store.delete("u.n/%?#").await.unwrap());
    // Object names hold only the alphabet, '/' between segments, and the
    // terminator.
    let root = object_store::path::Path::parse(&prefix).unwrap();
    let listed: Vec<_> = objects
        .list(Some(&root))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed.len(), keys.len());
    for name in &listed {
        let own = name.strip_prefix(prefix.as_str()).unwrap_or(name);
        assert!(
            own.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_/!".contains(c)),
            "unsafe object name {name}"
        );
    }
    // Pattern deletes and deletes by key.
    assert_eq!(store.delete_pattern("u.a*").await.unwrap(), 4);
    assert!(store.delete("u.ключ").await.unwrap());
    assert_eq!(
        store.delete_pattern("u.**").await.unwrap(),
        keys.len() as u64 - 5
    );
    assert_eq!(store.count().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn special_keys_round_trip_in_memory() {
    check(S3Store::memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn special_keys_round_trip_on_local_files() {
    let dir = tempfile::tempdir().unwrap();
    check(S3Store::local(dir.path()).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn special_keys_round_trip_on_the_server() {
    let Some(endpoint) = common::s3_endpoint("special_keys_round_trip_on_the_server") else {
        return;
    };
    let prefix = common::unique_prefix("special");
    check(common::s3_store(&endpoint, &prefix)).await;
    common::clean_server(&endpoint, &prefix).await;
}
