//! Object names are at most 1,024 bytes: the backend declares the longest
//! key that fits under its prefix (any namespace up to 64 bytes), the
//! store refuses longer keys with `InvalidKey` before any I/O, a longer
//! namespace gets a typed `InvalidKey` naming its own (smaller) limit on
//! write, and a namespace too long for one path segment is
//! `InvalidNamespace`. Nothing is written by a refused call.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use futures_util::TryStreamExt;
use kv_backend_s3::layout::MAX_NAMESPACE_LEN;
use kv_backend_s3::{S3Options, S3Store};
use kv_core::{Backend, Error, KVStore, KeyRule, Store, Value};
use object_store::memory::InMemory;
use object_store::ObjectStore;

async fn object_names(store: &Arc<dyn ObjectStore>) -> Vec<String> {
    store
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test]
async fn keys_and_namespaces_are_held_to_the_object_name_limit() {
    let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = "tenants/acme/kv";
    let backend = S3Store::new(Arc::clone(&objects), S3Options::with_prefix(prefix)).unwrap();
    let max = backend.max_key_len();
    assert_eq!(backend.capabilities().max_key_len, Some(max));
    assert!((600..700).contains(&max), "{max}");
    let store = Store::new(Arc::new(backend.clone()));

    // The longest key fits, in a 64-byte namespace too.
    let longest = "k".repeat(max);
    store.set(&longest, 1.into()).await.unwrap();
    let ns64 = store.namespace(&"n".repeat(64)).unwrap();
    ns64.set(&longest, 2.into()).await.unwrap();
    assert_eq!(ns64.get(&longest).await.unwrap(), Some(Value::Int(2)));

    // One byte more is refused by the store before any I/O.
    let before = backend.stats().await.unwrap().fields["put_requests"].clone();
    match store.set(&"k".repeat(max + 1), 1.into()).await {
        Err(Error::InvalidKey {
            rule: KeyRule::TooLong { len, max: m },
            ..
        }) => assert_eq!((len, m), (max + 1, max)),
        other => panic!("expected TooLong, got {other:?}"),
    }
    assert_eq!(
        backend.stats().await.unwrap().fields["put_requests"],
        before
    );

    // A 150-byte namespace leaves less room: the write names that limit.
    let ns150 = store.namespace(&"n".repeat(150)).unwrap();
    match ns150.set(&longest, 3.into()).await {
        Err(Error::InvalidKey {
            rule: KeyRule::TooLong { len, max: m },
            ..
        }) => {
            assert_eq!(len, max);
            assert!(m < max, "{m} < {max}");
            ns150.set(&"k".repeat(m), 3.into()).await.unwrap();
        }
        other => panic!("expected TooLong, got {other:?}"),
    }
    // A key that cannot have been written is simply absent.
    assert_eq!(ns150.get(&longest).await.unwrap(), None);
    assert!(!ns150.delete(&longest).await.unwrap());

    // A namespace whose encoding would not fit one path segment.
    let too_long = store.namespace(&"n".repeat(MAX_NAMESPACE_LEN + 1)).unwrap();
    assert!(matches!(
        too_long.set("k", 1.into()).await,
        Err(Error::InvalidNamespace { .. })
    ));

    let names = object_names(&objects).await;
    assert_eq!(names.len(), 3, "{names:?}");
    for n in &names {
        assert!(n.len() <= 1024, "{} bytes", n.len());
        assert!(n.starts_with(prefix));
    }
}
