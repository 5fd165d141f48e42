//! Missing keys, bad input, admin operations.

use serde_json::json;

use super::meta;
use crate::error::Error;
use crate::testing::{BackendFactory, Case, CaseResult, ConformanceOptions, Harness};
use crate::types::{SetOptions, StoreOptions, Ttl};
use crate::value::{Value, ValueType};
use crate::KVStore;

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(admin_missing_keys_are_not_errors),
        case!(admin_bad_input_is_typed_and_writes_nothing),
        case!(admin_count_and_stats),
        case!(admin_flush_keeps_data),
        case!(admin_compact_changes_no_record),
        case!(admin_closed_store_refuses_operations),
        case!(admin_track_access_records_reads),
        case!(admin_two_stores_on_one_backend_see_each_other),
        case!(admin_a_loop_of_calls_yields_to_its_timeout),
    ]
}

async fn admin_missing_keys_are_not_errors(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let s = &h.store;
    ensure_eq!(s.get("nope").await?, None);
    ensure_eq!(s.get_entry("nope").await?, None);
    ensure!(!s.exists("nope").await?, "exists");
    ensure!(!s.delete("nope").await?, "delete");
    ensure_eq!(s.ttl("nope").await?, Ttl::Missing);
    ensure!(!s.expire("nope", super::secs(1)).await?, "expire");
    ensure!(!s.persist("nope").await?, "persist");
    ensure_eq!(s.get_metadata("nope").await?, None);
    ensure_eq!(s.get_many(&["nope", "nada"]).await?, vec![None, None]);
    ensure_eq!(s.delete_many(&["nope"]).await?, 0);
    ensure_eq!(s.keys("nope.**").await?, Vec::<String>::new());
    ensure_eq!(s.delete_pattern("nope.**").await?, 0);
    ensure_eq!(s.count_pattern("nope.*").await?, 0);
    ensure_eq!(s.cleanup_expired().await?, 0);
    ensure_eq!(s.count().await?, 0);
    Ok(())
}

async fn admin_bad_input_is_typed_and_writes_nothing(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::with_options(
        f,
        StoreOptions {
            max_value_size: 64,
            ..StoreOptions::default()
        },
    )
    .await?;
    let s = &h.store;
    s.set("k", "v".into()).await?;
    s.set("n", 1.into()).await?;
    let before = s.get_pattern("**").await?;
    let errors = vec![
        s.set("bad key", 1.into()).await.err(),
        s.set("k", Value::Bytes(vec![0; 64])).await.err(),
        s.set_with(
            "k",
            1.into(),
            SetOptions::new().value_type(ValueType::Image),
        )
        .await
        .err(),
        s.set_with("k", vec![1u8].into(), SetOptions::image(""))
            .await
            .err(),
        s.set_with(
            "k",
            1.into(),
            SetOptions::new().metadata(meta(json!({"ttl": "x"}))),
        )
        .await
        .err(),
        s.keys("[").await.err(),
        s.increment("k", 1).await.err(),
        s.increment("n", i64::MAX).await.err(),
        s.append("n", "x".into()).await.err(),
        s.append("k", 1.into()).await.err(),
        s.namespace("a.b").err(),
        s.scan("**", None, 0).await.err(),
        s.get_as_json_mismatch().await.err(),
    ];
    for (i, e) in errors.into_iter().enumerate() {
        match e {
            Some(e) => ensure!(
                e.is_invalid_input(),
                "case {i}: {e} is not classed as bad input"
            ),
            None => ensure!(false, "case {i}: bad input was accepted"),
        }
    }
    ensure_eq!(s.get_pattern("**").await?, before, "nothing changed");
    ensure_eq!(
        s.get_metadata("k").await?.map(|m| m.system.version),
        Some(1),
        "no write reached k"
    );
    Ok(())
}

/// `get_as` into a type the value does not fit, through the extension trait.
trait GetAsMismatch {
    async fn get_as_json_mismatch(&self) -> crate::Result<()>;
}

impl GetAsMismatch for crate::Store {
    async fn get_as_json_mismatch(&self) -> crate::Result<()> {
        use crate::KVStoreExt;
        self.get_as::<Vec<bool>>("k").await.map(|_| ())
    }
}

async fn admin_count_and_stats(f: &dyn BackendFactory, _: &ConformanceOptions) -> CaseResult {
    let h = Harness::new(f).await?;
    for i in 0..5 {
        h.store.set(&format!("k.{i}"), i.into()).await?;
    }
    h.store.get("k.1").await?;
    h.store.get("missing").await?;
    h.store.delete("k.4").await?;
    ensure_eq!(h.store.count().await?, 4);
    let stats = h.store.stats().await?;
    ensure_eq!(stats.namespace, "default");
    ensure!(stats.writes >= 5, "writes counted: {stats:?}");
    ensure!(
        stats.hits >= 1 && stats.misses >= 1,
        "hits and misses counted: {stats:?}"
    );
    ensure!(stats.deletes >= 1, "deletes counted: {stats:?}");
    ensure_eq!(stats.backend.backend, h.backend.name());
    Ok(())
}

async fn admin_flush_keeps_data(f: &dyn BackendFactory, _: &ConformanceOptions) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store.set("k", 1.into()).await?;
    h.store.flush().await?;
    ensure_eq!(
        h.store.get("k").await?,
        Some(Value::Int(1)),
        "flush must not delete"
    );
    Ok(())
}

async fn admin_compact_changes_no_record(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let s = &h.store;
    // Overwritten, deleted, expiring and expired records, two namespaces:
    // what compaction drops from storage must not change what is read.
    for i in 0..50 {
        s.set(&format!("c.{i:02}"), Value::Int(i)).await?;
    }
    for i in 0..50 {
        s.set(&format!("c.{i:02}"), Value::Int(i * 10)).await?;
    }
    for i in (0..50).step_by(5) {
        s.delete(&format!("c.{i:02}")).await?;
    }
    s.set_with(
        "c.ttl",
        "later".into(),
        SetOptions::new().ttl(super::secs(60)),
    )
    .await?;
    s.set_with(
        "c.gone",
        "soon".into(),
        SetOptions::new().ttl(super::secs(1)),
    )
    .await?;
    let other = s.namespace("other")?;
    other.set("c.00", "elsewhere".into()).await?;
    h.clock.advance(super::secs(1));
    let before = s.get_pattern("c.**").await?;
    let versions = s
        .get_entry("c.01")
        .await?
        .map(|e| e.metadata.system.version);
    s.compact().await?;
    ensure_eq!(
        s.get_pattern("c.**").await?,
        before,
        "records after compact"
    );
    ensure_eq!(before.len(), 41, "live keys");
    ensure_eq!(
        s.get_entry("c.01")
            .await?
            .map(|e| e.metadata.system.version),
        versions
    );
    ensure_eq!(s.get("c.gone").await?, None);
    ensure!(matches!(s.ttl("c.ttl").await?, Ttl::Expires(_)), "ttl kept");
    ensure_eq!(other.get("c.00").await?, Some(Value::from("elsewhere")));
    s.set("c.after", 1.into()).await?;
    ensure_eq!(s.get("c.after").await?, Some(Value::Int(1)));
    s.close().await?;
    ensure_err!(s.compact().await, Error::Closed { .. });
    Ok(())
}

async fn admin_closed_store_refuses_operations(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store.set("k", 1.into()).await?;
    h.store.close().await?;
    h.store.close().await?;
    ensure_err!(h.store.get("k").await, Error::Closed { .. });
    ensure_err!(h.store.set("k", 2.into()).await, Error::Closed { .. });
    ensure_err!(h.store.keys("**").await, Error::Closed { .. });
    ensure_err!(h.store.count().await, Error::Closed { .. });
    Ok(())
}

async fn admin_track_access_records_reads(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::with_options(
        f,
        StoreOptions {
            track_access: true,
            ..StoreOptions::default()
        },
    )
    .await?;
    h.store.set("k", 1.into()).await?;
    ensure_eq!(
        h.store
            .get_metadata("k")
            .await?
            .and_then(|m| m.system.accessed_at),
        None
    );
    h.clock.advance(super::secs(3));
    h.store.get("k").await?;
    let m = h.store.get_metadata("k").await?;
    let m = m.ok_or_else(|| crate::testing::Failure("missing".into()))?;
    ensure_eq!(
        m.system.accessed_at,
        Some(crate::Timestamp::from_millis(
            crate::testing::CLOCK_START_MS + 3000
        ))
    );
    ensure_eq!(m.system.version, 1, "a read is not a write of the key");
    Ok(())
}

async fn admin_two_stores_on_one_backend_see_each_other(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let other = h.store_with(StoreOptions::default())?;
    h.store.set("shared", 1.into()).await?;
    ensure_eq!(other.get("shared").await?, Some(Value::Int(1)));
    ensure_eq!(other.increment("shared", 1).await?, 2);
    ensure_eq!(h.store.get("shared").await?, Some(Value::Int(2)));
    Ok(())
}

/// A task that calls the store in a loop, with nothing else to wait for,
/// still yields to the runtime: a `tokio::time::timeout` around the loop
/// fires, and soon. (A backend whose calls are always ready would
/// otherwise spin forever.) One loop per kind of call.
async fn admin_a_loop_of_calls_yields_to_its_timeout(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    use std::time::{Duration, Instant};
    #[derive(Debug, Clone, Copy)]
    enum Call {
        Get,
        GetMany,
        Set,
        Delete,
        Increment,
    }
    let h = Harness::new(f).await?;
    h.store.set("k", 1.into()).await?;
    for call in [
        Call::Get,
        Call::GetMany,
        Call::Set,
        Call::Delete,
        Call::Increment,
    ] {
        let store = h.store.clone();
        // Spawned: a store's yield points act on a task.
        let looped = tokio::spawn(async move {
            let start = Instant::now();
            let outcome = tokio::time::timeout(Duration::from_millis(20), async {
                let mut calls = 0u64;
                loop {
                    match call {
                        Call::Get => drop(store.get("k").await?),
                        Call::GetMany => drop(store.get_many(&["k", "absent"]).await?),
                        Call::Set => store.set("s", 1.into()).await?,
                        Call::Delete => drop(store.delete("absent").await?),
                        Call::Increment => drop(store.increment("n", 1).await?),
                    }
                    calls += 1;
                    // Bounded, so that a failure fails instead of hanging.
                    if start.elapsed() > Duration::from_secs(10) {
                        return Ok::<u64, crate::Error>(calls);
                    }
                }
            })
            .await;
            (outcome, start.elapsed())
        });
        match looped.await {
            Ok((Err(_elapsed), took)) => ensure!(
                took < Duration::from_secs(2),
                "{call:?}: the 20 ms timeout around the loop fired only after {took:?}"
            ),
            Ok((Ok(Ok(calls)), _)) => {
                return Err(crate::testing::Failure(format!(
                "{call:?}: {calls} calls ran for 10 s without the 20 ms timeout around them firing"
            )))
            }
            Ok((Ok(Err(e)), _)) => return Err(e.into()),
            Err(e) => {
                return Err(crate::testing::Failure(format!(
                    "{call:?}: the looping task failed: {e}"
                )))
            }
        }
    }
    Ok(())
}
