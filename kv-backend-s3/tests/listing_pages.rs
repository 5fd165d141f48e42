//! Paging through a listing: each page is one LIST that starts after the
//! previous page's last key, so a page sees every write made before it
//! starts.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use kv_backend_s3::{S3Options, S3Store};
use kv_core::backend::KeyRange;
use kv_core::{Backend, KVStore, Store, Value, DEFAULT_NAMESPACE};
use object_store::memory::InMemory;
use object_store::ObjectStore;

fn store() -> (Arc<S3Store>, Store) {
    let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let backend = Arc::new(S3Store::new(objects, S3Options::with_prefix("p")).unwrap());
    let store = Store::new(backend.clone());
    (backend, store)
}

/// A walk over more than one page lists once per page (plus one empty
/// LIST when the last page is exactly full) and gives every key once, in
/// order.
#[tokio::test]
async fn a_walk_lists_once_per_page() {
    let (backend, store) = store();
    let lists = || async {
        let s = backend.stats().await.unwrap();
        s.fields["list_requests"].as_u64().unwrap()
    };
    for (n, from, pages) in [(1_000usize, 0usize, 2u64), (2_500, 1_000, 3)] {
        let keys: Vec<String> = (from..n).map(|i| format!("p.k{i:05}")).collect();
        let entries = keys.into_iter().map(|k| (k, Value::from(1))).collect();
        store.set_many(entries).await.unwrap();
        let before = lists().await;
        let listed = store.keys("p.*").await.unwrap();
        assert_eq!(lists().await - before, pages, "LISTs to walk {n} keys");
        let expect: Vec<String> = (0..n).map(|i| format!("p.k{i:05}")).collect();
        assert_eq!(listed, expect);
        assert_eq!(store.count_pattern("p.*").await.unwrap(), n as u64);
    }
}

/// A page asked for after a write sees it, also when the page before it
/// reached the end of the listing and when it continues a listing.
#[tokio::test]
async fn the_next_page_sees_writes_made_since_the_last() {
    let (backend, store) = store();
    let range = KeyRange::prefix("p.");
    let page = |after: Option<&'static str>| {
        let (backend, range) = (Arc::clone(&backend), range.clone());
        async move {
            let keys = backend
                .scan_keys(DEFAULT_NAMESPACE, &range, after, 2)
                .await
                .unwrap();
            keys.into_iter().map(|k| k.key).collect::<Vec<_>>()
        }
    };
    store.set("p.a", 1.into()).await.unwrap();
    store.set("p.b", 1.into()).await.unwrap();
    assert_eq!(page(None).await, ["p.a", "p.b"]);
    store.set("p.c", 1.into()).await.unwrap();
    assert_eq!(page(Some("p.b")).await, ["p.c"]);

    store.set("p.e", 1.into()).await.unwrap();
    assert_eq!(page(Some("p.b")).await, ["p.c", "p.e"]);
    store.set("p.d", 1.into()).await.unwrap();
    assert_eq!(page(Some("p.c")).await, ["p.d", "p.e"]);
}
