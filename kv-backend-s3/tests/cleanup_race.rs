//! `cleanup_expired` against a writer that revives an expired key while
//! the cleanup runs: the cleanup asks each expired object's ETag again
//! right before its bulk DELETE, and spares the object rewritten since.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::hooked::Hooked;
use kv_core::{KVStore, ManualClock, Value};

#[tokio::test]
async fn a_key_revived_during_cleanup_is_spared() {
    let hooked = Arc::new(Hooked::default());
    let clock = ManualClock::new(1_000_000);
    let cleaner = hooked.store(&clock);
    // Another host: its own backend over the same objects.
    let writer = hooked.store(&clock);
    for key in ["ttl.a", "ttl.b"] {
        cleaner
            .set_with(
                key,
                "old".into(),
                kv_core::SetOptions::new().ttl(Duration::from_secs(1)),
            )
            .await
            .unwrap();
    }
    clock.advance(Duration::from_secs(2));
    let revive = writer.clone();
    let _ = hooked.on_head.set(Box::new(move || {
        let w = revive.clone();
        Box::pin(async move { w.set("ttl.a", "revived".into()).await.unwrap() })
    }));
    hooked.armed.store(true, Ordering::SeqCst);

    let removed = cleaner.cleanup_expired().await.unwrap();
    assert_eq!(removed, 1, "only ttl.b was still expired when deleted");
    assert_eq!(
        writer.get("ttl.a").await.unwrap(),
        Some(Value::from("revived"))
    );
    assert_eq!(writer.get("ttl.b").await.unwrap(), None);
    assert_eq!(writer.keys("ttl.*").await.unwrap(), ["ttl.a"]);
}
