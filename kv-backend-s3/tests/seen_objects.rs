//! What a backend remembers of the objects it has seen (`seen_objects`)
//! saves requests and never changes an answer: two backends over the same
//! objects, A and B (another process or host), and B changes what A has
//! seen. On the in-memory store, and on the test server, whose ETags (from
//! GET, PUT and LIST alike) are what the shortcuts rely on.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use kv_backend_s3::{S3Options, S3Store};
use kv_core::{Backend, KVStore, ManualClock, SetOptions, Store, Value};
use object_store::memory::InMemory;
use object_store::ObjectStore;

/// Request counters of `backend`.
async fn requests(backend: &S3Store) -> (u64, u64) {
    let s = backend.stats().await.unwrap();
    let n = |name: &str| s.fields[name].as_u64().unwrap();
    (n("get_requests"), n("put_requests"))
}

fn owner(who: &str) -> SetOptions {
    let mut m = serde_json::Map::new();
    m.insert("owner".into(), who.into());
    SetOptions::new().metadata(m)
}

async fn scenario(a: S3Store, b: S3Store) {
    let clock = ManualClock::new(1_000_000);
    let (a, b) = (Arc::new(a), Arc::new(b));
    let sa = Store::builder(a.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let sb = Store::builder(b.clone())
        .clock(clock.clone())
        .build()
        .unwrap();

    // A set of a key A has written is one conditional PUT, no GET.
    sa.set_with("seen.k", Value::from("a1"), owner("a"))
        .await
        .unwrap();
    let before = requests(&a).await;
    sa.set("seen.k", Value::from("a2")).await.unwrap();
    let after = requests(&a).await;
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (0, 1),
        "(GETs, PUTs) of a set of a key this backend wrote"
    );
    let e = sa.get_entry("seen.k").await.unwrap().unwrap();
    assert_eq!(e.metadata.system.version, 2);
    assert_eq!(e.metadata.user["owner"], "a");

    // B rewrites it (new metadata, version 3). A's next set must start
    // from B's record, not from what A saw: the If-Match fails, A reads
    // the object and writes again.
    sb.set_with("seen.k", Value::from("b3"), owner("b"))
        .await
        .unwrap();
    sa.set("seen.k", Value::from("a4")).await.unwrap();
    let e = sb.get_entry("seen.k").await.unwrap().unwrap();
    assert_eq!(e.value, Value::from("a4"));
    assert_eq!(e.metadata.system.version, 4, "B's write is not lost");
    assert_eq!(e.metadata.user["owner"], "b", "kept from B's record");

    // B deletes it; A's set recreates it as a new key.
    assert!(sb.delete("seen.k").await.unwrap());
    sa.set("seen.k", Value::from("a5")).await.unwrap();
    let e = sb.get_entry("seen.k").await.unwrap().unwrap();
    assert_eq!(e.value, Value::from("a5"));
    assert_eq!(e.metadata.system.version, 1);
    assert!(e.metadata.user.is_empty());

    // `keys`: A wrote 20 keys; listing them GETs nothing...
    for i in 0..20 {
        sa.set(&format!("list.k{i:02}"), Value::from(i as i64))
            .await
            .unwrap();
    }
    let before = requests(&a).await;
    assert_eq!(sa.keys("list.*").await.unwrap().len(), 20);
    assert_eq!(requests(&a).await.0 - before.0, 0, "GETs of a listing");
    // ...until B changes some: a TTL that has run out by then on two, a
    // delete of one, a new value on one. A reads exactly the three it has
    // not seen in their current form.
    let short = SetOptions::new().ttl(Duration::from_secs(5));
    sb.set_with("list.k03", Value::from("t"), short.clone())
        .await
        .unwrap();
    sb.set_with("list.k07", Value::from("t"), short)
        .await
        .unwrap();
    sb.delete("list.k11").await.unwrap();
    sb.set("list.k15", Value::from("b")).await.unwrap();
    clock.advance(Duration::from_secs(6));
    let before = requests(&a).await;
    let keys = sa.keys("list.*").await.unwrap();
    assert_eq!(requests(&a).await.0 - before.0, 3, "GETs of a listing");
    let expect: Vec<String> = (0..20)
        .filter(|i| ![3, 7, 11].contains(i))
        .map(|i| format!("list.k{i:02}"))
        .collect();
    assert_eq!(keys, expect);
    assert_eq!(sa.count_pattern("list.*").await.unwrap(), 17);

    // Leave nothing behind.
    sa.delete_pattern("**").await.unwrap();
}

#[tokio::test]
async fn seen_objects_on_the_memory_store() {
    let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let a = S3Store::new(objects.clone(), S3Options::with_prefix("t")).unwrap();
    let b = S3Store::new(objects.clone(), S3Options::with_prefix("t")).unwrap();
    scenario(a, b).await;

    // At least one object must be remembered.
    let err = S3Store::new(objects, S3Options::with_prefix("t").seen_objects(0)).unwrap_err();
    assert!(err.to_string().contains("s3.seen_objects"), "{err}");
}

#[tokio::test]
async fn seen_objects_on_the_server() {
    let Some(endpoint) = common::s3_endpoint("seen_objects_on_the_server") else {
        return;
    };
    let prefix = common::unique_prefix("seen-objects");
    let a = common::s3_store(&endpoint, &prefix);
    let b = common::s3_store(&endpoint, &prefix);
    scenario(a, b).await;
    common::clean_server(&endpoint, &prefix).await;
}
