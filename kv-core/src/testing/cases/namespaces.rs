//! Namespaces: isolation of every operation, listing, name rules.

use crate::error::Error;
use crate::testing::{BackendFactory, Case, CaseResult, ConformanceOptions, Harness};
use crate::types::SetOptions;
use crate::value::Value;
use crate::KVStore;

use super::secs;

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(namespace_keys_are_isolated),
        case!(namespace_pattern_operations_are_isolated),
        case!(namespace_listing_is_sorted_and_live),
        case!(namespace_invalid_names_rejected),
        case!(namespace_atomic_operations_are_isolated),
    ]
}

async fn namespace_keys_are_isolated(f: &dyn BackendFactory, _: &ConformanceOptions) -> CaseResult {
    let h = Harness::new(f).await?;
    let a = h.store.namespace("tenant_a")?;
    let b = h.store.namespace("tenant_b")?;
    ensure_eq!(a.current_namespace(), "tenant_a");
    a.set("config.host", "a-host".into()).await?;
    b.set("config.host", "b-host".into()).await?;
    h.store.set("config.host", "default-host".into()).await?;
    ensure_eq!(a.get("config.host").await?, Some(Value::from("a-host")));
    ensure_eq!(b.get("config.host").await?, Some(Value::from("b-host")));
    ensure_eq!(
        h.store.get("config.host").await?,
        Some(Value::from("default-host"))
    );
    ensure!(a.delete("config.host").await?, "delete in a");
    ensure_eq!(
        b.get("config.host").await?,
        Some(Value::from("b-host")),
        "b untouched"
    );
    ensure_eq!(a.count().await?, 0);
    ensure_eq!(b.count().await?, 1);
    ensure_eq!(h.store.count().await?, 1);
    // A handle from a handle is still a handle on the same backend.
    let b_again = a.namespace("tenant_b")?;
    ensure_eq!(
        b_again.get("config.host").await?,
        Some(Value::from("b-host"))
    );
    Ok(())
}

async fn namespace_pattern_operations_are_isolated(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let a = h.store.namespace("a")?;
    let b = h.store.namespace("b")?;
    for i in 0..10 {
        a.set(&format!("k.{i}"), i.into()).await?;
        b.set(&format!("k.{i}"), i.into()).await?;
    }
    b.set_with("t", 1.into(), SetOptions::new().ttl(secs(1)))
        .await?;
    ensure_eq!(a.keys("**").await?.len(), 10);
    ensure_eq!(a.delete_pattern("**").await?, 10);
    ensure_eq!(a.count().await?, 0);
    ensure_eq!(
        b.count_pattern("k.*").await?,
        10,
        "b untouched by a's delete_pattern"
    );
    ensure_eq!(b.delete_pattern("k.[0-4]").await?, 5);
    ensure_eq!(b.get_pattern("k.*").await?.len(), 5);
    h.clock.advance(secs(1));
    ensure_eq!(
        a.cleanup_expired().await?,
        0,
        "cleanup of a does not touch b"
    );
    ensure_eq!(b.cleanup_expired().await?, 1);
    Ok(())
}

async fn namespace_listing_is_sorted_and_live(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    ensure_eq!(h.store.list_namespaces().await?, Vec::<String>::new());
    for ns in ["zeta", "alpha", "mid"] {
        h.store.namespace(ns)?.set("k", 1.into()).await?;
    }
    ensure_eq!(
        h.store.list_namespaces().await?,
        vec!["alpha", "mid", "zeta"]
    );
    h.store.namespace("mid")?.delete("k").await?;
    ensure_eq!(
        h.store.list_namespaces().await?,
        vec!["alpha", "zeta"],
        "empty namespace gone"
    );
    Ok(())
}

async fn namespace_invalid_names_rejected(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    for bad in ["", "a.b", "with space", "tab\t", &"n".repeat(256)] {
        ensure_err!(h.store.namespace(bad), Error::InvalidNamespace { .. });
    }
    ensure!(
        h.store.namespace(&"n".repeat(255)).is_ok(),
        "255 bytes is allowed"
    );
    Ok(())
}

async fn namespace_atomic_operations_are_isolated(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let a = h.store.namespace("a")?;
    let b = h.store.namespace("b")?;
    ensure_eq!(a.increment("hits", 5).await?, 5);
    ensure_eq!(b.increment("hits", 1).await?, 1);
    ensure!(a.set_nx("lock", 1.into()).await?, "set_nx in a");
    ensure!(
        b.set_nx("lock", 1.into()).await?,
        "set_nx in b is independent"
    );
    ensure!(
        !b.compare_and_swap("hits", Some(Value::Int(5)), 0.into())
            .await?,
        "cas sees b's value"
    );
    Ok(())
}
