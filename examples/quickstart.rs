//! Quickstart: open the default store, then set, get, query by pattern,
//! count, expire and delete keys.
//!
//! ```text
//! cargo run -p kv-examples --example quickstart
//! ```
//!
//! The store is the one `KV_STORE_URL` names (`memory:`, `engine:./kv-data`,
//! …) or, without it, the default store of this build.

use std::time::Duration;

use dataknobs_kv::{open, KVStoreExt, SetOptions, StoreConfig, Ttl, Value};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Database {
    host: String,
    port: u16,
}

#[tokio::main]
async fn main() -> Result<(), dataknobs_kv::Error> {
    let mut config = StoreConfig::default();
    config.apply_env()?;
    let store = open(&config).await?;
    println!("opened the {} store", config.backend()?);

    // Hierarchical keys and typed values.
    store.set("app.config.name", "quickstart".into()).await?;
    store.set("app.config.debug", true.into()).await?;
    store
        .set_json(
            "app.config.database",
            &Database {
                host: "localhost".into(),
                port: 5432,
            },
        )
        .await?;
    let db: Option<Database> = store.get_as("app.config.database").await?;
    println!("database: {db:?}");

    // Patterns.
    let keys = store.keys("app.config.*").await?;
    println!("keys under app.config: {keys:?}");

    // Atomic counters.
    for _ in 0..3 {
        store.increment("app.stats.visits", 1).await?;
    }
    println!("visits: {:?}", store.get("app.stats.visits").await?);

    // A key that expires.
    store
        .set_with(
            "app.session.abc123",
            "ada".into(),
            SetOptions::new().ttl(Duration::from_secs(3600)),
        )
        .await?;
    if let Ttl::Expires(left) = store.ttl("app.session.abc123").await? {
        println!("session expires in {} s", left.as_secs());
    }

    // Clean up what this example wrote, so it can run again.
    let removed = store.delete_pattern("app.**").await?;
    println!("removed {removed} keys; {} left", store.count().await?);
    assert_eq!(store.get("app.config.name").await?, None::<Value>);
    store.close().await?;
    Ok(())
}
