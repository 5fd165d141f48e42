//! Paging through a listing: a walk over more than one page of keys
//! continues the LIST it started instead of starting one per page.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use kv_backend_s3::{S3Options, S3Store};
use kv_core::{Backend, KVStore, Store, Value};
use object_store::memory::InMemory;
use object_store::ObjectStore;

/// A walk over more than one page continues the listing it started
/// (one LIST in all), also when the last page ends exactly at the end of
/// the listing, and gives every key once, in order.
#[tokio::test]
async fn pages_continue_one_listing() {
    let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let backend = Arc::new(S3Store::new(objects, S3Options::with_prefix("p")).unwrap());
    let store = Store::new(backend.clone());
    let lists = || async {
        let s = backend.stats().await.unwrap();
        s.fields["list_requests"].as_u64().unwrap()
    };
    for (n, from) in [(1_000usize, 0usize), (2_500, 1_000)] {
        let keys: Vec<String> = (from..n).map(|i| format!("p.k{i:05}")).collect();
        let entries = keys.into_iter().map(|k| (k, Value::from(1))).collect();
        store.set_many(entries).await.unwrap();
        let before = lists().await;
        let listed = store.keys("p.*").await.unwrap();
        assert_eq!(lists().await - before, 1, "LISTs to walk {n} keys");
        let expect: Vec<String> = (0..n).map(|i| format!("p.k{i:05}")).collect();
        assert_eq!(listed, expect);
        assert_eq!(store.count_pattern("p.*").await.unwrap(), n as u64);
    }
}
