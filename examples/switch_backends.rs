//! Switching backends by configuration: the same workload, unchanged, on
//! whatever store a config file describes — memory, the embedded engine,
//! SQLite, PostgreSQL or S3, with or without a cache.
//!
//! ```text
//! cargo run -p kv-examples --example switch_backends -- examples/configs/sqlite.toml
//! ```
//!
//! Without an argument it uses `examples/configs/engine.toml`. The configs
//! for PostgreSQL and S3 take their server from the environment
//! (`KV_POSTGRES_URL`; `KV_S3_ENDPOINT`, `KV_S3_BUCKET` and the standard
//! `AWS_*` credentials), as an application deployed by config would.
//! `./scripts/test.sh` runs it on every file in `examples/configs/`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use dataknobs_kv::{open_config_file, KVStore, SetOptions, StoreConfig, Ttl, Value};

/// The application: it only ever sees `dyn KVStore`.
async fn workload(store: &dyn KVStore) -> Result<(), dataknobs_kv::Error> {
    let n = 500;
    store.delete_pattern("demo.**").await?;
    let started = Instant::now();
    store
        .set_many(
            (0..n)
                .map(|i| {
                    (
                        format!("demo.users.{i:04}.name"),
                        Value::from(format!("user {i}")),
                    )
                })
                .collect(),
        )
        .await?;
    for i in 0..n {
        let v = store.get(&format!("demo.users.{i:04}.name")).await?;
        assert_eq!(v, Some(Value::from(format!("user {i}"))));
    }
    assert_eq!(store.count_pattern("demo.users.*.name").await?, n as u64);
    let page = store.scan("demo.users.00*.name", None, 5).await?;
    assert_eq!(page.entries.len(), 5);
    for _ in 0..10 {
        store.increment("demo.counter", 2).await?;
    }
    assert_eq!(store.get("demo.counter").await?, Some(Value::Int(20)));
    assert!(
        store
            .compare_and_swap("demo.counter", Some(Value::Int(20)), Value::Int(0))
            .await?
    );
    store
        .set_with(
            "demo.session",
            "x".into(),
            SetOptions::new().ttl(Duration::from_secs(60)),
        )
        .await?;
    assert!(matches!(store.ttl("demo.session").await?, Ttl::Expires(_)));
    let tenant = store.namespace("demo_tenant")?;
    tenant.set("demo.only.here", true.into()).await?;
    assert_eq!(store.get("demo.only.here").await?, None);
    tenant.delete_pattern("**").await?;
    let removed = store.delete_pattern("demo.**").await?;
    assert_eq!(removed, n as u64 + 2);
    println!(
        "workload done in {:.2?} ({} set + {n} gets + scans, counters, TTL, namespaces)",
        started.elapsed(),
        n
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), dataknobs_kv::Error> {
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/engine.toml"));
    let config = StoreConfig::from_file(&path)?;
    println!(
        "{}: the {} backend{}",
        path.display(),
        config.backend()?,
        if config.cache.is_some() {
            " behind a cache"
        } else {
            ""
        }
    );
    let store = open_config_file(&path).await?;
    workload(&*store).await?;
    store.close().await?;
    Ok(())
}
