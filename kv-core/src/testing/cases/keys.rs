//! Key rules: validation, normalisation, limits, ordering.

use crate::error::{Error, KeyRule};
use crate::testing::{BackendFactory, Case, CaseResult, ConformanceOptions, Harness};
use crate::types::{SetOptions, StoreOptions};
use crate::value::Value;
use crate::KVStore;

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(key_hierarchical_keys_round_trip),
        case!(key_empty_is_rejected),
        case!(key_empty_segment_is_rejected),
        case!(key_whitespace_is_rejected),
        case!(key_control_character_is_rejected),
        case!(key_length_limit_is_inclusive),
        case!(key_length_limit_is_configurable),
        case!(key_error_names_key_and_rule),
        case!(key_case_sensitive_by_default),
        case!(key_case_insensitive_store_folds_keys_and_patterns),
        case!(key_invalid_is_rejected_by_every_operation),
        case!(key_order_is_by_bytes),
    ]
}

async fn key_hierarchical_keys_round_trip(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let keys = [
        "a",
        "app.config.database.host",
        "user:123:name",
        "logs.2024-01-05",
        "ключ.値.🔑",
        "a-b_c.d/e+f=g@h",
        "x.y.z.w.v.u.t.s.r.q.p",
    ];
    for (i, k) in keys.iter().enumerate() {
        h.store.set(k, Value::Int(i as i64)).await?;
    }
    for (i, k) in keys.iter().enumerate() {
        ensure_eq!(h.store.get(k).await?, Some(Value::Int(i as i64)), "key {k}");
        ensure!(h.store.exists(k).await?, "{k} should exist");
    }
    ensure_eq!(h.store.count().await?, keys.len() as u64);
    Ok(())
}

async fn key_empty_is_rejected(f: &dyn BackendFactory, _: &ConformanceOptions) -> CaseResult {
    let h = Harness::new(f).await?;
    ensure_err!(
        h.store.set("", "v".into()).await,
        Error::InvalidKey {
            rule: KeyRule::Empty,
            ..
        }
    );
    ensure_err!(h.store.get("").await, Error::InvalidKey { .. });
    ensure_eq!(h.store.count().await?, 0);
    Ok(())
}

async fn key_empty_segment_is_rejected(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    for (key, position) in [(".a", 0), ("a.", 2), ("a..b", 2), (".", 0), ("a.b..", 4)] {
        match h.store.set(key, "v".into()).await {
            Err(Error::InvalidKey {
                rule: KeyRule::EmptySegment { position: p },
                ..
            }) => ensure_eq!(p, position, "position for {key:?}"),
            other => ensure!(false, "{key:?}: expected EmptySegment, got {other:?}"),
        }
    }
    ensure_eq!(h.store.count().await?, 0);
    Ok(())
}

async fn key_whitespace_is_rejected(f: &dyn BackendFactory, _: &ConformanceOptions) -> CaseResult {
    let h = Harness::new(f).await?;
    for key in [
        "a b",
        "a\tb",
        "a\nb",
        "a\rb",
        " a",
        "a ",
        "a\u{a0}b",
        "a\u{2003}b",
        "a\u{3000}b",
    ] {
        ensure_err!(
            h.store.set(key, "v".into()).await,
            Error::InvalidKey {
                rule: KeyRule::Whitespace { .. },
                ..
            }
        );
    }
    ensure_eq!(h.store.count().await?, 0);
    Ok(())
}

async fn key_control_character_is_rejected(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    for key in ["a\u{0}b", "a\u{1}", "\u{1b}[31m", "a\u{7f}"] {
        ensure_err!(
            h.store.set(key, "v".into()).await,
            Error::InvalidKey {
                rule: KeyRule::ControlCharacter { .. },
                ..
            }
        );
    }
    ensure_eq!(h.store.count().await?, 0);
    Ok(())
}

async fn key_length_limit_is_inclusive(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    // 1024 bytes, or less when the backend declares a shorter limit.
    let max = h
        .backend
        .capabilities()
        .max_key_len
        .unwrap_or(1024)
        .min(1024);
    let longest = "k".repeat(max);
    h.store.set(&longest, "v".into()).await?;
    ensure_eq!(h.store.get(&longest).await?, Some(Value::from("v")));
    let over = "k".repeat(max + 1);
    match h.store.set(&over, "v".into()).await {
        Err(Error::InvalidKey {
            rule: KeyRule::TooLong { len, max: m },
            ..
        }) => {
            ensure_eq!(len, max + 1);
            ensure_eq!(m, max);
        }
        other => ensure!(false, "expected TooLong, got {other:?}"),
    }
    // The limit counts bytes, not characters.
    let multibyte = "é".repeat(max / 2 + 1);
    ensure_err!(
        h.store.set(&multibyte, "v".into()).await,
        Error::InvalidKey { .. }
    );
    ensure_eq!(h.store.count().await?, 1);
    Ok(())
}

async fn key_length_limit_is_configurable(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::with_options(
        f,
        StoreOptions {
            max_key_len: 16,
            ..StoreOptions::default()
        },
    )
    .await?;
    h.store.set(&"a".repeat(16), 1.into()).await?;
    ensure_err!(
        h.store.set(&"a".repeat(17), 1.into()).await,
        Error::InvalidKey {
            rule: KeyRule::TooLong { max: 16, .. },
            ..
        }
    );
    Ok(())
}

async fn key_error_names_key_and_rule(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let err = match h.store.set("orders..42", 1.into()).await {
        Err(e) => e,
        Ok(()) => return Err(crate::testing::Failure("invalid key accepted".into())),
    };
    let msg = err.to_string();
    ensure!(
        msg.contains("orders..42"),
        "message does not name the key: {msg}"
    );
    ensure!(
        msg.contains("empty segment"),
        "message does not name the rule: {msg}"
    );
    ensure!(err.is_invalid_input(), "not classed as invalid input");
    Ok(())
}

async fn key_case_sensitive_by_default(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store.set("App.Key", "upper".into()).await?;
    h.store.set("app.key", "lower".into()).await?;
    ensure_eq!(h.store.get("App.Key").await?, Some(Value::from("upper")));
    ensure_eq!(h.store.get("app.key").await?, Some(Value::from("lower")));
    ensure_eq!(h.store.get("APP.KEY").await?, None);
    ensure_eq!(h.store.keys("app.*").await?, vec!["app.key".to_owned()]);
    Ok(())
}

async fn key_case_insensitive_store_folds_keys_and_patterns(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::with_options(
        f,
        StoreOptions {
            case_insensitive: true,
            ..StoreOptions::default()
        },
    )
    .await?;
    let s = &h.store;
    s.set("App.Config.Host", "h1".into()).await?;
    ensure_eq!(s.get("app.config.host").await?, Some(Value::from("h1")));
    ensure_eq!(s.get("APP.CONFIG.HOST").await?, Some(Value::from("h1")));
    s.set("APP.config.HOST", "h2".into()).await?;
    ensure_eq!(s.count().await?, 1);
    ensure_eq!(
        s.keys("APP.*.Host").await?,
        vec!["app.config.host".to_owned()]
    );
    ensure_eq!(s.increment("Counter", 2).await?, 2);
    ensure_eq!(s.increment("COUNTER", 2).await?, 4);
    let ns = s.namespace("Tenant_A")?;
    ns.set("K", 1.into()).await?;
    ensure_eq!(
        s.namespace("tenant_a")?.get("k").await?,
        Some(Value::Int(1))
    );
    ensure!(
        s.delete("app.CONFIG.host").await?,
        "delete spelled in another case failed"
    );
    Ok(())
}

async fn key_invalid_is_rejected_by_every_operation(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let s = &h.store;
    let bad = "bad..key";
    ensure_err!(s.get(bad).await, Error::InvalidKey { .. });
    ensure_err!(s.get_entry(bad).await, Error::InvalidKey { .. });
    ensure_err!(s.set(bad, 1.into()).await, Error::InvalidKey { .. });
    ensure_err!(
        s.set_with(bad, 1.into(), SetOptions::new()).await,
        Error::InvalidKey { .. }
    );
    ensure_err!(s.delete(bad).await, Error::InvalidKey { .. });
    ensure_err!(s.exists(bad).await, Error::InvalidKey { .. });
    ensure_err!(s.get_many(&["ok", bad]).await, Error::InvalidKey { .. });
    ensure_err!(s.delete_many(&["ok", bad]).await, Error::InvalidKey { .. });
    ensure_err!(s.get_metadata(bad).await, Error::InvalidKey { .. });
    ensure_err!(
        s.set_metadata(bad, Default::default()).await,
        Error::InvalidKey { .. }
    );
    ensure_err!(
        s.update_metadata(bad, Default::default()).await,
        Error::InvalidKey { .. }
    );
    ensure_err!(s.ttl(bad).await, Error::InvalidKey { .. });
    ensure_err!(
        s.expire(bad, super::secs(1)).await,
        Error::InvalidKey { .. }
    );
    ensure_err!(s.persist(bad).await, Error::InvalidKey { .. });
    ensure_err!(
        s.compare_and_swap(bad, None, 1.into()).await,
        Error::InvalidKey { .. }
    );
    ensure_err!(s.set_nx(bad, 1.into()).await, Error::InvalidKey { .. });
    ensure_err!(s.get_and_set(bad, 1.into()).await, Error::InvalidKey { .. });
    ensure_err!(s.increment(bad, 1).await, Error::InvalidKey { .. });
    ensure_err!(s.decrement(bad, 1).await, Error::InvalidKey { .. });
    ensure_err!(s.append(bad, "x".into()).await, Error::InvalidKey { .. });
    ensure_err!(s.prepend(bad, "x".into()).await, Error::InvalidKey { .. });
    ensure_eq!(s.count().await?, 0, "nothing may be written");
    Ok(())
}

async fn key_order_is_by_bytes(f: &dyn BackendFactory, _: &ConformanceOptions) -> CaseResult {
    let h = Harness::new(f).await?;
    let keys = [
        "k.b", "k.B", "k.a", "k.é", "k.z", "k.10", "k.9", "k.a.b", "k.a-b", "k.~", "k.日",
    ];
    for k in keys {
        h.store.set(k, 1.into()).await?;
    }
    let mut expected: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    expected.sort();
    ensure_eq!(h.store.keys("k.**").await?, expected);
    let scanned: Vec<String> = h
        .store
        .scan("k.**", None, 100)
        .await?
        .entries
        .into_iter()
        .map(|e| e.key)
        .collect();
    ensure_eq!(scanned, expected);
    Ok(())
}
