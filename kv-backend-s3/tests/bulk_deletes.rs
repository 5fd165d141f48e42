//! `delete_many` and pattern deletes that are not a plain prefix delete
//! the objects they find in bulk (one `delete_stream` per page), and
//! count only the keys that were live.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::hooked::Hooked;
use kv_core::{KVStore, ManualClock, SetOptions, Value};

#[tokio::test]
async fn delete_many_and_pattern_deletes_are_bulk_deletes() {
    let hooked = Arc::new(Hooked::default());
    let clock = ManualClock::new(1_000_000);
    let store = hooked.store(&clock);
    let keys: Vec<String> = (0..60).map(|i| format!("users.{i:03}.name")).collect();
    for key in &keys {
        store.set(key, Value::from("x")).await.unwrap();
    }
    for key in ["users.001.mail", "users.002.mail"] {
        store
            .set_with(
                key,
                "old".into(),
                SetOptions::new().ttl(Duration::from_secs(1)),
            )
            .await
            .unwrap();
    }
    clock.advance(Duration::from_secs(2));
    let calls = || hooked.delete_calls.load(Ordering::SeqCst);
    let paths = || hooked.deleted_paths.load(Ordering::SeqCst);

    // 20 live keys, one twice, one expired, one missing: 20 live deleted,
    // 21 objects in one bulk delete.
    let mut many: Vec<&str> = keys[..20].iter().map(String::as_str).collect();
    many.extend(["users.000.name", "users.001.mail", "users.999.none"]);
    let (c, p) = (calls(), paths());
    assert_eq!(store.delete_many(&many).await.unwrap(), 20);
    assert_eq!((calls() - c, paths() - p), (1, 21));
    assert_eq!(store.get("users.000.name").await.unwrap(), None);

    // `users.*.name` is not a plain prefix: the 40 keys left, one bulk
    // delete; the expired `mail` key does not match and stays.
    let (c, p) = (calls(), paths());
    assert_eq!(store.delete_pattern("users.*.name").await.unwrap(), 40);
    assert_eq!((calls() - c, paths() - p), (1, 40));
    assert_eq!(store.keys("users.**").await.unwrap(), Vec::<String>::new());
    clock.set(kv_core::Timestamp::from_millis(0));
    assert_eq!(store.keys("users.**").await.unwrap(), ["users.002.mail"]);
}
