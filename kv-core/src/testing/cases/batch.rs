//! Batches and multi-key operations.

use crate::error::Error;
use crate::testing::{BackendFactory, Case, CaseResult, ConformanceOptions, Harness, Needs};
use crate::types::{Batch, SetOptions, StoreOptions, Ttl};
use crate::value::{Value, ValueType};
use crate::KVStore;

use super::secs;

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(batch_applies_every_operation, Needs::AtomicBatch),
        case!(batch_with_invalid_operation_changes_nothing),
        case!(batch_failed_condition_applies_nothing, Needs::AtomicBatch),
        case!(batch_later_operation_on_same_key_wins, Needs::AtomicBatch),
        case!(batch_sets_keep_set_semantics, Needs::AtomicBatch),
        case!(batch_refused_without_atomic_support, Needs::NoAtomicBatch),
        case!(batch_empty_is_a_no_op),
        case!(batch_get_many_keeps_order_and_gaps),
        case!(batch_set_many_and_delete_many),
        case!(batch_set_many_with_invalid_entry_changes_nothing),
    ]
}

async fn batch_applies_every_operation(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store.set("old", 1.into()).await?;
    let applied = h
        .store
        .batch(
            Batch::new()
                .set("a", 1)
                .set("b", "two")
                .set_with("c", 3.5, SetOptions::new().ttl(secs(10)))
                .delete("old")
                .delete("never.existed"),
        )
        .await?;
    ensure!(applied, "batch not applied");
    ensure_eq!(
        h.store.get_many(&["a", "b", "c", "old"]).await?,
        vec![
            Some(Value::Int(1)),
            Some(Value::from("two")),
            Some(Value::Float(3.5)),
            None
        ]
    );
    ensure_eq!(h.store.ttl("c").await?, Ttl::Expires(secs(10)));
    ensure_eq!(h.store.count().await?, 3);
    Ok(())
}

async fn batch_with_invalid_operation_changes_nothing(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::with_options(
        f,
        StoreOptions {
            max_value_size: 100,
            ..StoreOptions::default()
        },
    )
    .await?;
    h.store.set("keep", "original".into()).await?;
    let bad_batches = [
        Batch::new().set("a", 1).set("bad..key", 2).delete("keep"),
        Batch::new()
            .set("a", 1)
            .set("big", vec![0u8; 200])
            .delete("keep"),
        Batch::new()
            .set("a", 1)
            .set_with(
                "typed",
                "x",
                SetOptions::new().value_type(ValueType::Number),
            )
            .delete("keep"),
        Batch::new()
            .delete("keep")
            .set_with("t", 1, SetOptions::new().ttl(secs(0))),
        Batch::new().set("a", 1).delete(" spaced"),
    ];
    for batch in bad_batches {
        match h.store.batch(batch).await {
            Err(e) if e.is_invalid_input() => {}
            other => ensure!(false, "expected an invalid-input error, got {other:?}"),
        }
        ensure_eq!(h.store.count().await?, 1, "nothing applied");
        ensure_eq!(h.store.get("keep").await?, Some(Value::from("original")));
    }
    Ok(())
}

async fn batch_failed_condition_applies_nothing(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store.set("exists", 1.into()).await?;
    let applied = h
        .store
        .batch(
            Batch::new()
                .set("a", 1)
                .set_with("exists", 2, SetOptions::new().if_absent())
                .delete("exists"),
        )
        .await?;
    ensure!(!applied, "batch with a failed condition reported applied");
    ensure!(!h.store.exists("a").await?, "nothing applied");
    ensure_eq!(h.store.get("exists").await?, Some(Value::Int(1)));
    let applied = h
        .store
        .batch(
            Batch::new()
                .set("a", 1)
                .set_with("exists", 2, SetOptions::new().if_version(7)),
        )
        .await?;
    ensure!(!applied, "stale if_version in a batch");
    ensure!(!h.store.exists("a").await?, "nothing applied");
    let applied = h
        .store
        .batch(
            Batch::new()
                .set("a", 1)
                .set_with("exists", 2, SetOptions::new().if_version(1)),
        )
        .await?;
    ensure!(applied, "current if_version in a batch");
    ensure_eq!(h.store.get("exists").await?, Some(Value::Int(2)));
    Ok(())
}

async fn batch_later_operation_on_same_key_wins(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store
        .batch(
            Batch::new()
                .set("k", 1)
                .set("k", 2)
                .delete("j")
                .set("j", 3)
                .set("gone", 1)
                .delete("gone"),
        )
        .await?;
    ensure_eq!(h.store.get("k").await?, Some(Value::Int(2)));
    ensure_eq!(h.store.get("j").await?, Some(Value::Int(3)));
    ensure!(
        !h.store.exists("gone").await?,
        "set then delete leaves nothing"
    );
    let m = h.store.get_metadata("k").await?;
    ensure_eq!(
        m.map(|m| m.system.version),
        Some(2),
        "two sets in one batch are two writes"
    );
    Ok(())
}

async fn batch_sets_keep_set_semantics(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store
        .set_with("k", 1.into(), SetOptions::new().ttl(secs(10)))
        .await?;
    h.store
        .set_with("t", 1.into(), SetOptions::new().ttl(secs(10)))
        .await?;
    h.clock.advance(secs(1));
    h.store
        .batch(
            Batch::new()
                .set("k", 2)
                .set_with("t", 2, SetOptions::new().keep_ttl()),
        )
        .await?;
    ensure_eq!(
        h.store.ttl("k").await?,
        Ttl::Persistent,
        "set in a batch clears the TTL"
    );
    ensure_eq!(
        h.store.ttl("t").await?,
        Ttl::Expires(secs(9)),
        "keep_ttl in a batch"
    );
    let m = h.store.get_metadata("k").await?;
    let m = m.ok_or_else(|| crate::testing::Failure("missing".into()))?;
    ensure_eq!(m.system.version, 2);
    ensure!(m.system.created_at < m.system.updated_at, "created_at kept");
    Ok(())
}

async fn batch_refused_without_atomic_support(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store.set("keep", 1.into()).await?;
    ensure_err!(
        h.store.batch(Batch::new().set("a", 1).delete("keep")).await,
        Error::Unsupported { .. }
    );
    ensure!(!h.store.exists("a").await?, "nothing applied");
    ensure!(h.store.exists("keep").await?, "nothing applied");
    Ok(())
}

async fn batch_empty_is_a_no_op(f: &dyn BackendFactory, _: &ConformanceOptions) -> CaseResult {
    let h = Harness::new(f).await?;
    if h.backend.capabilities().atomic_batch {
        ensure!(h.store.batch(Batch::new()).await?, "empty batch");
    }
    h.store.set_many(Vec::new()).await?;
    ensure_eq!(h.store.delete_many(&[]).await?, 0);
    ensure_eq!(h.store.get_many(&[]).await?, Vec::<Option<Value>>::new());
    ensure_eq!(h.store.count().await?, 0);
    Ok(())
}

async fn batch_get_many_keeps_order_and_gaps(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store.set("b", 2.into()).await?;
    h.store.set("a", 1.into()).await?;
    ensure_eq!(
        h.store.get_many(&["b", "missing", "a", "b"]).await?,
        vec![
            Some(Value::Int(2)),
            None,
            Some(Value::Int(1)),
            Some(Value::Int(2))
        ]
    );
    Ok(())
}

async fn batch_set_many_and_delete_many(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let entries: Vec<(String, Value)> = (0..50)
        .map(|i| (format!("m.{i:02}"), Value::Int(i)))
        .collect();
    h.store.set_many(entries).await?;
    ensure_eq!(h.store.count_pattern("m.*").await?, 50);
    ensure_eq!(h.store.get("m.07").await?, Some(Value::Int(7)));
    ensure_eq!(
        h.store
            .delete_many(&["m.01", "m.02", "m.02", "nope"])
            .await?,
        2
    );
    ensure_eq!(h.store.count_pattern("m.*").await?, 48);
    Ok(())
}

async fn batch_set_many_with_invalid_entry_changes_nothing(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let entries = vec![
        ("ok.1".to_owned(), Value::Int(1)),
        ("ok.2".to_owned(), Value::Int(2)),
        ("not ok".to_owned(), Value::Int(3)),
    ];
    ensure_err!(h.store.set_many(entries).await, Error::InvalidKey { .. });
    ensure_eq!(h.store.count().await?, 0, "no entry written");
    Ok(())
}
