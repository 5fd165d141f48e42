//! Atomic operations: semantics, type errors, overflow, and races between
//! concurrent tasks.

use std::sync::Arc;

use serde_json::json;

use crate::error::Error;
use crate::testing::{BackendFactory, Case, CaseResult, ConformanceOptions, Failure, Harness};
use crate::types::SetOptions;
use crate::value::{Value, ValueType};
use crate::KVStore;

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(atomic_increment_missing_key_starts_at_zero),
        case!(atomic_increment_non_integer_is_type_mismatch),
        case!(atomic_increment_overflow_is_an_error),
        case!(atomic_decrement_subtracts),
        case!(atomic_append_and_prepend_strings),
        case!(atomic_append_bytes),
        case!(atomic_append_missing_key_sets_it),
        case!(atomic_append_wrong_types_rejected),
        case!(atomic_compare_and_swap_semantics),
        case!(atomic_set_nx_only_when_absent),
        case!(atomic_get_and_set_returns_previous),
        case!(atomic_set_if_version),
        case!(atomic_increments_from_many_tasks_all_count),
        case!(atomic_set_nx_race_has_one_winner),
        case!(atomic_cas_loops_lose_no_update),
        case!(atomic_appends_from_many_tasks_all_land),
    ]
}

async fn atomic_increment_missing_key_starts_at_zero(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    ensure_eq!(h.store.increment("c", 5).await?, 5);
    ensure_eq!(h.store.increment("c", -7).await?, -2);
    ensure_eq!(h.store.increment("c", 0).await?, -2);
    ensure_eq!(h.store.get("c").await?, Some(Value::Int(-2)));
    let m = h.store.get_metadata("c").await?;
    ensure_eq!(m.map(|m| m.system.value_type), Some(ValueType::Number));
    ensure_eq!(h.store.decrement("d", 3).await?, -3);
    Ok(())
}

async fn atomic_increment_non_integer_is_type_mismatch(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let values = [
        Value::from("5"),
        Value::Float(1.5),
        Value::Json(json!(5)),
        Value::Bool(true),
        Value::Bytes(vec![5]),
        Value::Null,
    ];
    for (i, v) in values.iter().enumerate() {
        let k = format!("k.{i}");
        h.store.set(&k, v.clone()).await?;
        ensure_err!(h.store.increment(&k, 1).await, Error::TypeMismatch { .. });
        ensure_err!(h.store.decrement(&k, 1).await, Error::TypeMismatch { .. });
        ensure_eq!(
            h.store.get(&k).await?.as_ref(),
            Some(v),
            "value of {k} unchanged"
        );
        ensure_eq!(
            h.store.get_metadata(&k).await?.map(|m| m.system.version),
            Some(1),
            "nothing written to {k}"
        );
    }
    Ok(())
}

async fn atomic_increment_overflow_is_an_error(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store.set("max", Value::Int(i64::MAX - 1)).await?;
    ensure_eq!(h.store.increment("max", 1).await?, i64::MAX);
    ensure_err!(h.store.increment("max", 1).await, Error::Overflow { .. });
    ensure_eq!(
        h.store.get("max").await?,
        Some(Value::Int(i64::MAX)),
        "no wrap"
    );
    h.store.set("min", Value::Int(i64::MIN)).await?;
    ensure_err!(h.store.decrement("min", 1).await, Error::Overflow { .. });
    ensure_err!(h.store.increment("min", -1).await, Error::Overflow { .. });
    ensure_err!(
        h.store.decrement("zero", i64::MIN).await,
        Error::Overflow { .. }
    );
    ensure!(!h.store.exists("zero").await?, "nothing written");
    Ok(())
}

async fn atomic_decrement_subtracts(f: &dyn BackendFactory, _: &ConformanceOptions) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store.set("c", 10.into()).await?;
    ensure_eq!(h.store.decrement("c", 3).await?, 7);
    ensure_eq!(h.store.decrement("c", -3).await?, 10);
    Ok(())
}

async fn atomic_append_and_prepend_strings(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store.set("s", "middle".into()).await?;
    ensure_eq!(h.store.append("s", "-end".into()).await?, 10);
    ensure_eq!(h.store.prepend("s", "start-".into()).await?, 16);
    ensure_eq!(
        h.store.append("s", "✓".into()).await?,
        19,
        "length in bytes"
    );
    ensure_eq!(
        h.store.get("s").await?,
        Some(Value::from("start-middle-end✓"))
    );
    Ok(())
}

async fn atomic_append_bytes(f: &dyn BackendFactory, _: &ConformanceOptions) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store.set("b", Value::Bytes(vec![2, 3])).await?;
    ensure_eq!(h.store.append("b", Value::Bytes(vec![4])).await?, 3);
    ensure_eq!(h.store.prepend("b", Value::Bytes(vec![0, 1])).await?, 5);
    ensure_eq!(
        h.store.append("b", "A".into()).await?,
        6,
        "a string appends its UTF-8 bytes"
    );
    ensure_eq!(
        h.store.get("b").await?,
        Some(Value::Bytes(vec![0, 1, 2, 3, 4, b'A']))
    );
    // A document stays a document.
    h.store
        .set_with(
            "doc",
            Value::Bytes(b"%PDF".to_vec()),
            SetOptions::document("application/pdf"),
        )
        .await?;
    h.store
        .append("doc", Value::Bytes(b"-1.7".to_vec()))
        .await?;
    let m = h.store.get_metadata("doc").await?;
    let m = m.ok_or_else(|| Failure("doc missing".into()))?;
    ensure_eq!(m.system.value_type, ValueType::Document);
    ensure_eq!(m.system.content_type.as_deref(), Some("application/pdf"));
    Ok(())
}

async fn atomic_append_missing_key_sets_it(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    ensure_eq!(h.store.append("s", "abc".into()).await?, 3);
    ensure_eq!(h.store.get("s").await?, Some(Value::from("abc")));
    ensure_eq!(h.store.prepend("b", Value::Bytes(vec![9])).await?, 1);
    ensure_eq!(h.store.get("b").await?, Some(Value::Bytes(vec![9])));
    Ok(())
}

async fn atomic_append_wrong_types_rejected(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store.set("n", 5.into()).await?;
    h.store.set("j", Value::Json(json!({"a": 1}))).await?;
    h.store.set("s", "text".into()).await?;
    ensure_err!(
        h.store.append("n", "x".into()).await,
        Error::TypeMismatch { .. }
    );
    ensure_err!(
        h.store.prepend("j", "x".into()).await,
        Error::TypeMismatch { .. }
    );
    ensure_err!(
        h.store.append("s", Value::Bytes(vec![0xff])).await,
        Error::TypeMismatch { .. }
    );
    ensure_err!(
        h.store.append("s", 5.into()).await,
        Error::InvalidValue { .. }
    );
    ensure_err!(
        h.store.append("new", Value::Null).await,
        Error::InvalidValue { .. }
    );
    ensure_eq!(h.store.get("n").await?, Some(Value::Int(5)));
    ensure_eq!(h.store.get("s").await?, Some(Value::from("text")));
    ensure!(!h.store.exists("new").await?, "nothing written");
    Ok(())
}

async fn atomic_compare_and_swap_semantics(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let s = &h.store;
    ensure!(
        s.compare_and_swap("k", None, "a".into()).await?,
        "cas(None) on a missing key"
    );
    ensure!(
        !s.compare_and_swap("k", None, "b".into()).await?,
        "cas(None) on a present key"
    );
    ensure!(
        !s.compare_and_swap("k", Some("x".into()), "b".into())
            .await?,
        "wrong expected"
    );
    ensure!(
        !s.compare_and_swap("k", Some(Value::Bytes(b"a".to_vec())), "b".into())
            .await?,
        "bytes are not a string"
    );
    ensure!(
        s.compare_and_swap("k", Some("a".into()), "b".into())
            .await?,
        "right expected"
    );
    ensure_eq!(s.get("k").await?, Some(Value::from("b")));
    ensure!(
        !s.compare_and_swap("missing", Some("b".into()), "c".into())
            .await?,
        "missing key"
    );
    ensure!(!s.exists("missing").await?, "failed cas writes nothing");
    // Values of other types compare by value and type.
    s.set("n", 1.into()).await?;
    ensure!(
        !s.compare_and_swap("n", Some(Value::Float(1.0)), 2.into())
            .await?,
        "1.0 is not 1"
    );
    ensure!(
        s.compare_and_swap("n", Some(Value::Int(1)), Value::Json(json!({"v": 2})))
            .await?,
        "int"
    );
    ensure!(
        s.compare_and_swap("n", Some(Value::Json(json!({"v": 2}))), Value::Null)
            .await?,
        "json"
    );
    ensure_eq!(s.get("n").await?, Some(Value::Null));
    Ok(())
}

async fn atomic_set_nx_only_when_absent(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    ensure!(h.store.set_nx("k", "first".into()).await?, "first set_nx");
    ensure!(
        !h.store.set_nx("k", "second".into()).await?,
        "second set_nx"
    );
    ensure_eq!(h.store.get("k").await?, Some(Value::from("first")));
    ensure!(
        !h.store
            .set_with("k", "third".into(), SetOptions::new().if_absent())
            .await?,
        "set_with(if_absent)"
    );
    Ok(())
}

async fn atomic_get_and_set_returns_previous(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    ensure_eq!(h.store.get_and_set("k", 1.into()).await?, None);
    ensure_eq!(
        h.store.get_and_set("k", "two".into()).await?,
        Some(Value::Int(1))
    );
    ensure_eq!(h.store.get("k").await?, Some(Value::from("two")));
    Ok(())
}

async fn atomic_set_if_version(f: &dyn BackendFactory, _: &ConformanceOptions) -> CaseResult {
    let h = Harness::new(f).await?;
    ensure!(
        !h.store
            .set_with("k", 1.into(), SetOptions::new().if_version(1))
            .await?,
        "if_version on a missing key"
    );
    h.store.set("k", 1.into()).await?;
    h.store.set("k", 2.into()).await?;
    ensure!(
        !h.store
            .set_with("k", 3.into(), SetOptions::new().if_version(1))
            .await?,
        "stale version"
    );
    ensure!(
        h.store
            .set_with("k", 3.into(), SetOptions::new().if_version(2))
            .await?,
        "current version"
    );
    ensure_eq!(h.store.get("k").await?, Some(Value::Int(3)));
    Ok(())
}

async fn atomic_increments_from_many_tasks_all_count(
    f: &dyn BackendFactory,
    o: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let (tasks, per_task) = (o.increment_tasks, o.increments_per_task);
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let store = h.store.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..per_task {
                store.increment("counter", 1).await?;
            }
            Ok::<_, Error>(())
        }));
    }
    for handle in handles {
        handle
            .await
            .map_err(|e| Failure(format!("task failed: {e}")))??;
    }
    let expected = (tasks * per_task) as i64;
    ensure_eq!(h.store.get("counter").await?, Some(Value::Int(expected)));
    let m = h.store.get_metadata("counter").await?;
    ensure_eq!(
        m.map(|m| m.system.version),
        Some(expected as u64),
        "one version per increment"
    );
    Ok(())
}

async fn atomic_set_nx_race_has_one_winner(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    for round in 0..10 {
        let key = format!("lock.{round}");
        let barrier = Arc::new(tokio::sync::Barrier::new(8));
        let mut handles = Vec::new();
        for task in 0..8 {
            let store = h.store.clone();
            let barrier = Arc::clone(&barrier);
            let key = key.clone();
            handles.push(tokio::spawn(async move {
                barrier.wait().await;
                store.set_nx(&key, Value::Int(task)).await
            }));
        }
        let mut winners = Vec::new();
        for (task, handle) in handles.into_iter().enumerate() {
            if handle
                .await
                .map_err(|e| Failure(format!("task failed: {e}")))??
            {
                winners.push(task as i64);
            }
        }
        ensure_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        ensure_eq!(
            h.store.get(&key).await?,
            Some(Value::Int(winners[0])),
            "round {round}"
        );
    }
    Ok(())
}

async fn atomic_cas_loops_lose_no_update(
    f: &dyn BackendFactory,
    o: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store.set("n", 0.into()).await?;
    // 8 × 100 by default; fewer when the options ask for fewer increments.
    let (tasks, per_task) = (8, o.increments_per_task.clamp(1, 100) as i64);
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let store = h.store.clone();
        handles.push(tokio::spawn(async move {
            let mut retries = 0u64;
            for _ in 0..per_task {
                loop {
                    let current = store.get("n").await?.and_then(|v| v.as_i64()).unwrap_or(0);
                    if store
                        .compare_and_swap("n", Some(Value::Int(current)), Value::Int(current + 1))
                        .await?
                    {
                        break;
                    }
                    retries += 1;
                    tokio::task::yield_now().await;
                }
            }
            Ok::<_, Error>(retries)
        }));
    }
    for handle in handles {
        handle
            .await
            .map_err(|e| Failure(format!("task failed: {e}")))??;
    }
    ensure_eq!(h.store.get("n").await?, Some(Value::Int(tasks * per_task)));
    Ok(())
}

async fn atomic_appends_from_many_tasks_all_land(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let mut handles = Vec::new();
    for task in 0..8u8 {
        let store = h.store.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..50 {
                store.append("log", Value::Bytes(vec![task])).await?;
            }
            Ok::<_, Error>(())
        }));
    }
    for handle in handles {
        handle
            .await
            .map_err(|e| Failure(format!("task failed: {e}")))??;
    }
    let Some(Value::Bytes(log)) = h.store.get("log").await? else {
        return Err(Failure("log is not bytes".into()));
    };
    ensure_eq!(log.len(), 400);
    for task in 0..8u8 {
        ensure_eq!(
            log.iter().filter(|b| **b == task).count(),
            50,
            "appends of task {task}"
        );
    }
    Ok(())
}
