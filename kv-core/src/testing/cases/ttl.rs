//! TTL: visibility, clearing and keeping, `ttl()`, `expire`, `persist`,
//! cleanup. All with a manual clock.

use std::time::Duration;

use serde_json::json;

use super::{meta, secs};
use crate::error::Error;
use crate::metadata::MetadataFilter;
use crate::testing::{BackendFactory, Case, CaseResult, ConformanceOptions, Harness};
use crate::types::{Batch, SetOptions, StoreOptions, Ttl};
use crate::value::Value;
use crate::KVStore;

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(ttl_expired_key_invisible_to_every_read),
        case!(ttl_expiry_instant_is_inclusive),
        case!(ttl_plain_set_clears_ttl),
        case!(ttl_keep_ttl_keeps_expiry),
        case!(ttl_increment_keeps_ttl),
        case!(ttl_append_and_prepend_keep_ttl),
        case!(ttl_successful_cas_keeps_ttl),
        case!(ttl_get_and_set_clears_ttl),
        case!(ttl_reports_missing_persistent_and_remaining),
        case!(ttl_expire_and_persist),
        case!(ttl_cleanup_counts_only_expired_in_namespace),
        case!(ttl_zero_and_conflicting_options_are_rejected),
        case!(ttl_expired_key_counts_as_absent_for_conditional_writes),
        case!(ttl_expired_key_recreated_from_scratch),
        case!(ttl_delete_of_expired_key_returns_false),
        case!(ttl_background_cleanup_stops_on_close),
    ]
}

async fn ttl_expired_key_invisible_to_every_read(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let s = &h.store;
    s.set("live.a", "a".into()).await?;
    s.set_with(
        "live.b",
        "b".into(),
        SetOptions::new()
            .ttl(secs(10))
            .metadata(meta(json!({"m": 1}))),
    )
    .await?;
    let ns = s.namespace("only_expiring")?;
    ns.set_with("x", 1.into(), SetOptions::new().ttl(secs(10)))
        .await?;
    ensure_eq!(s.list_namespaces().await?, vec!["default", "only_expiring"]);
    h.clock.advance(secs(10));
    ensure_eq!(s.get("live.b").await?, None, "get");
    ensure_eq!(s.get_entry("live.b").await?, None, "get_entry");
    ensure!(!s.exists("live.b").await?, "exists");
    ensure_eq!(s.get_metadata("live.b").await?, None, "get_metadata");
    ensure_eq!(s.ttl("live.b").await?, Ttl::Missing, "ttl");
    ensure_eq!(
        s.get_many(&["live.a", "live.b"]).await?,
        vec![Some(Value::from("a")), None]
    );
    ensure_eq!(s.keys("live.*").await?, vec!["live.a"], "keys");
    ensure_eq!(
        s.keys("live.b").await?,
        Vec::<String>::new(),
        "keys with an exact pattern"
    );
    ensure_eq!(s.count().await?, 1, "count");
    ensure_eq!(
        s.count_pattern("live.**").await?,
        1,
        "count_pattern (prefix)"
    );
    ensure_eq!(
        s.count_pattern("live.?").await?,
        1,
        "count_pattern (general)"
    );
    ensure_eq!(s.get_pattern("live.*").await?.len(), 1, "get_pattern");
    ensure_eq!(s.scan("**", None, 10).await?.entries.len(), 1, "scan");
    ensure!(
        s.find_by_metadata("**", &MetadataFilter::new().exists("m"))
            .await?
            .is_empty(),
        "find_by_metadata"
    );
    ensure_eq!(
        s.list_namespaces().await?,
        vec!["default"],
        "list_namespaces"
    );
    ensure_eq!(ns.count().await?, 0, "count in a namespace of expired keys");
    ensure!(
        !s.update_metadata("live.b", meta(json!({"z": 1}))).await?,
        "update_metadata"
    );
    ensure!(
        !s.expire("live.b", secs(100)).await?,
        "expire must not revive"
    );
    ensure!(!s.persist("live.b").await?, "persist must not revive");
    ensure_eq!(s.get("live.b").await?, None, "still gone");
    Ok(())
}

async fn ttl_expiry_instant_is_inclusive(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store
        .set_with(
            "k",
            1.into(),
            SetOptions::new().ttl(Duration::from_millis(2500)),
        )
        .await?;
    h.clock.advance(Duration::from_millis(2499));
    ensure!(
        h.store.exists("k").await?,
        "1 ms before expiry the key is live"
    );
    ensure_eq!(
        h.store.ttl("k").await?,
        Ttl::Expires(Duration::from_millis(1))
    );
    h.clock.advance(Duration::from_millis(1));
    ensure!(
        !h.store.exists("k").await?,
        "at now == expires_at the key is gone"
    );
    Ok(())
}

async fn ttl_plain_set_clears_ttl(f: &dyn BackendFactory, _: &ConformanceOptions) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store
        .set_with("k", 1.into(), SetOptions::new().ttl(secs(5)))
        .await?;
    h.store.set("k", 2.into()).await?;
    ensure_eq!(h.store.ttl("k").await?, Ttl::Persistent);
    h.clock.advance(secs(60));
    ensure_eq!(h.store.get("k").await?, Some(Value::Int(2)));
    Ok(())
}

async fn ttl_keep_ttl_keeps_expiry(f: &dyn BackendFactory, _: &ConformanceOptions) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store
        .set_with("k", 1.into(), SetOptions::new().ttl(secs(10)))
        .await?;
    h.clock.advance(secs(4));
    h.store
        .set_with("k", 2.into(), SetOptions::new().keep_ttl())
        .await?;
    ensure_eq!(h.store.ttl("k").await?, Ttl::Expires(secs(6)));
    ensure_eq!(h.store.get("k").await?, Some(Value::Int(2)));
    h.clock.advance(secs(6));
    ensure_eq!(h.store.get("k").await?, None);
    // keep_ttl on a persistent key keeps it persistent.
    h.store.set("p", 1.into()).await?;
    h.store
        .set_with("p", 2.into(), SetOptions::new().keep_ttl())
        .await?;
    ensure_eq!(h.store.ttl("p").await?, Ttl::Persistent);
    Ok(())
}

async fn ttl_increment_keeps_ttl(f: &dyn BackendFactory, _: &ConformanceOptions) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store
        .set_with("c", 1.into(), SetOptions::new().ttl(secs(10)))
        .await?;
    h.clock.advance(secs(3));
    ensure_eq!(h.store.increment("c", 5).await?, 6);
    ensure_eq!(h.store.decrement("c", 1).await?, 5);
    ensure_eq!(h.store.ttl("c").await?, Ttl::Expires(secs(7)));
    h.clock.advance(secs(7));
    ensure_eq!(h.store.get("c").await?, None);
    Ok(())
}

async fn ttl_append_and_prepend_keep_ttl(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store
        .set_with("s", "b".into(), SetOptions::new().ttl(secs(10)))
        .await?;
    h.store.append("s", "c".into()).await?;
    h.store.prepend("s", "a".into()).await?;
    ensure_eq!(h.store.get("s").await?, Some(Value::from("abc")));
    ensure_eq!(h.store.ttl("s").await?, Ttl::Expires(secs(10)));
    Ok(())
}

async fn ttl_successful_cas_keeps_ttl(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store
        .set_with("k", "a".into(), SetOptions::new().ttl(secs(10)))
        .await?;
    ensure!(
        h.store
            .compare_and_swap("k", Some("a".into()), "b".into())
            .await?,
        "cas failed"
    );
    ensure_eq!(h.store.ttl("k").await?, Ttl::Expires(secs(10)));
    Ok(())
}

async fn ttl_get_and_set_clears_ttl(f: &dyn BackendFactory, _: &ConformanceOptions) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store
        .set_with("k", "a".into(), SetOptions::new().ttl(secs(10)))
        .await?;
    ensure_eq!(
        h.store.get_and_set("k", "b".into()).await?,
        Some(Value::from("a"))
    );
    ensure_eq!(h.store.ttl("k").await?, Ttl::Persistent);
    Ok(())
}

async fn ttl_reports_missing_persistent_and_remaining(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    ensure_eq!(h.store.ttl("missing").await?, Ttl::Missing);
    h.store.set("p", 1.into()).await?;
    ensure_eq!(h.store.ttl("p").await?, Ttl::Persistent);
    h.store
        .set_with("e", 1.into(), SetOptions::new().ttl(secs(90)))
        .await?;
    ensure_eq!(h.store.ttl("e").await?, Ttl::Expires(secs(90)));
    h.clock.advance(Duration::from_millis(30_250));
    ensure_eq!(
        h.store.ttl("e").await?,
        Ttl::Expires(Duration::from_millis(59_750))
    );
    Ok(())
}

async fn ttl_expire_and_persist(f: &dyn BackendFactory, _: &ConformanceOptions) -> CaseResult {
    let h = Harness::new(f).await?;
    ensure!(
        !h.store.expire("missing", secs(5)).await?,
        "expire on a missing key"
    );
    ensure!(
        !h.store.persist("missing").await?,
        "persist on a missing key"
    );
    h.store.set("k", 1.into()).await?;
    ensure!(
        !h.store.persist("k").await?,
        "persist without a TTL removes nothing"
    );
    ensure!(h.store.expire("k", secs(5)).await?, "expire on a live key");
    ensure_eq!(h.store.ttl("k").await?, Ttl::Expires(secs(5)));
    ensure!(
        h.store.expire("k", secs(50)).await?,
        "expire again replaces the TTL"
    );
    ensure_eq!(h.store.ttl("k").await?, Ttl::Expires(secs(50)));
    ensure!(h.store.persist("k").await?, "persist removes the TTL");
    ensure_eq!(h.store.ttl("k").await?, Ttl::Persistent);
    h.clock.advance(secs(100));
    ensure_eq!(h.store.get("k").await?, Some(Value::Int(1)));
    ensure!(
        h.store.expire("k", Duration::ZERO).await?,
        "expire(0) on a live key"
    );
    ensure_eq!(h.store.get("k").await?, None, "expire(0) expires at once");
    Ok(())
}

async fn ttl_cleanup_counts_only_expired_in_namespace(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let other = h.store.namespace("other")?;
    for i in 0..10 {
        let ttl = if i % 2 == 0 { secs(5) } else { secs(50) };
        h.store
            .set_with(&format!("k.{i}"), i.into(), SetOptions::new().ttl(ttl))
            .await?;
        other
            .set_with(&format!("k.{i}"), i.into(), SetOptions::new().ttl(secs(5)))
            .await?;
    }
    h.store.set("forever", 1.into()).await?;
    ensure_eq!(h.store.cleanup_expired().await?, 0, "nothing expired yet");
    h.clock.advance(secs(5));
    ensure_eq!(h.store.cleanup_expired().await?, 5);
    ensure_eq!(
        h.store.cleanup_expired().await?,
        0,
        "second run finds nothing"
    );
    ensure_eq!(h.store.count().await?, 6);
    // The other namespace was not cleaned, but its keys are still invisible.
    ensure_eq!(other.count().await?, 0);
    ensure_eq!(other.cleanup_expired().await?, 10);
    Ok(())
}

async fn ttl_zero_and_conflicting_options_are_rejected(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    ensure_err!(
        h.store
            .set_with("k", 1.into(), SetOptions::new().ttl(Duration::ZERO))
            .await,
        Error::InvalidArgument { .. }
    );
    ensure_err!(
        h.store
            .set_with("k", 1.into(), SetOptions::new().ttl(secs(1)).keep_ttl())
            .await,
        Error::InvalidArgument { .. }
    );
    ensure!(!h.store.exists("k").await?, "nothing written");
    Ok(())
}

async fn ttl_expired_key_counts_as_absent_for_conditional_writes(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    for k in ["a", "b", "c", "d"] {
        h.store
            .set_with(k, "old".into(), SetOptions::new().ttl(secs(1)))
            .await?;
    }
    h.clock.advance(secs(1));
    ensure!(
        h.store.set_nx("a", "new".into()).await?,
        "set_nx over an expired key"
    );
    ensure!(
        h.store.compare_and_swap("b", None, "new".into()).await?,
        "cas(None) over an expired key"
    );
    ensure!(
        !h.store
            .compare_and_swap("c", Some("old".into()), "new".into())
            .await?,
        "cas must not see the expired value"
    );
    ensure_eq!(
        h.store.get_and_set("d", "new".into()).await?,
        None,
        "get_and_set sees no old value"
    );
    ensure_eq!(h.store.get("a").await?, Some(Value::from("new")));
    ensure_eq!(h.store.get("b").await?, Some(Value::from("new")));
    ensure_eq!(h.store.get("c").await?, None);
    ensure_eq!(h.store.ttl("a").await?, Ttl::Persistent);
    Ok(())
}

async fn ttl_expired_key_recreated_from_scratch(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store
        .set_with(
            "k",
            5.into(),
            SetOptions::new()
                .ttl(secs(1))
                .metadata(meta(json!({"a": 1}))),
        )
        .await?;
    h.store.set("k", 6.into()).await?;
    h.store.expire("k", secs(1)).await?;
    h.clock.advance(secs(2));
    ensure_eq!(
        h.store.increment("k", 1).await?,
        1,
        "increment of an expired key starts at 0"
    );
    let m = h.store.get_metadata("k").await?;
    let m = m.ok_or_else(|| crate::testing::Failure("missing".into()))?;
    ensure_eq!(m.system.version, 1, "a re-created key starts at version 1");
    ensure!(
        m.user.is_empty(),
        "old user metadata must not come back: {:?}",
        m.user
    );
    ensure_eq!(m.system.expires_at, None, "old TTL must not come back");
    h.store
        .set_with("s", "x".into(), SetOptions::new().ttl(secs(1)))
        .await?;
    h.clock.advance(secs(1));
    ensure_eq!(
        h.store.append("s", "y".into()).await?,
        1,
        "append of an expired key sets it"
    );
    ensure_eq!(h.store.get("s").await?, Some(Value::from("y")));
    Ok(())
}

async fn ttl_delete_of_expired_key_returns_false(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store
        .set_with("k", 1.into(), SetOptions::new().ttl(secs(1)))
        .await?;
    h.store
        .set_with("j", 1.into(), SetOptions::new().ttl(secs(1)))
        .await?;
    h.store.set("live", 1.into()).await?;
    h.clock.advance(secs(1));
    ensure!(
        !h.store.delete("k").await?,
        "an expired key was not there to delete"
    );
    ensure_eq!(h.store.delete_many(&["j", "live"]).await?, 1);
    ensure_eq!(
        h.store.cleanup_expired().await?,
        0,
        "delete removed the leftovers"
    );
    // Batches treat expired keys as absent as well.
    if h.backend.capabilities().atomic_batch {
        h.store
            .set_with("b", 1.into(), SetOptions::new().ttl(secs(1)))
            .await?;
        h.clock.advance(secs(1));
        ensure!(
            h.store
                .batch(Batch::new().set_with("b", 2, SetOptions::new().if_absent()))
                .await?,
            "if_absent over an expired key in a batch"
        );
        ensure_eq!(h.store.get("b").await?, Some(Value::Int(2)));
    }
    Ok(())
}

async fn ttl_background_cleanup_stops_on_close(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let auto = h.store_with(StoreOptions {
        auto_cleanup: true,
        cleanup_interval_secs: 1,
        ..StoreOptions::default()
    })?;
    auto.set_with(
        "k",
        1.into(),
        SetOptions::new().ttl(Duration::from_millis(10)),
    )
    .await?;
    auto.set("stay", 1.into()).await?;
    h.clock.advance(secs(1));
    // The cleanup task runs on the real timer; wait for it (bounded).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stats = auto.stats().await?;
        if stats.expired_removed >= 1 {
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "background cleanup never ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ensure_eq!(h.store.count().await?, 1);
    auto.close().await?;
    ensure_err!(auto.get("stay").await, Error::Closed { .. });
    Ok(())
}
