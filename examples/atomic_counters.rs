//! Atomic operations: a counter incremented by many tasks at once, a
//! compare-and-swap loop, a lock taken with `set_nx`, and appends.
//!
//! ```text
//! cargo run -p kv-examples --example atomic_counters
//! ```
//!
//! Runs on the store `KV_STORE_URL` names, or the default store of this
//! build; it removes what it wrote.

use std::sync::Arc;

use dataknobs_kv::{open, KVStore, StoreConfig, Value};

#[tokio::main]
async fn main() -> Result<(), dataknobs_kv::Error> {
    let mut config = StoreConfig::default();
    config.apply_env()?;
    let store: Arc<dyn KVStore> = open(&config).await?;

    // 8 tasks × 100 increments: no update is lost.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for _ in 0..100 {
                store.increment("counters.page_views", 1).await?;
            }
            Ok::<_, dataknobs_kv::Error>(())
        }));
    }
    for t in tasks {
        t.await.expect("task panicked")?;
    }
    let views = store.get("counters.page_views").await?;
    println!("page views: {views:?}");
    assert_eq!(views, Some(Value::Int(800)));
    println!(
        "after decrement: {}",
        store.decrement("counters.page_views", 50).await?
    );

    // Compare-and-swap: read, compute, write only if nobody changed it.
    store.set("inventory.widgets", 10.into()).await?;
    loop {
        let current = store.get("inventory.widgets").await?;
        let Some(Value::Int(n)) = current else { break };
        if store
            .compare_and_swap("inventory.widgets", Some(Value::Int(n)), Value::Int(n - 3))
            .await?
        {
            println!("took 3 widgets: {n} -> {}", n - 3);
            break;
        }
    }

    // A lock: only the first `set_nx` wins.
    assert!(store.set_nx("locks.report", "worker-1".into()).await?);
    assert!(!store.set_nx("locks.report", "worker-2".into()).await?);
    println!("lock held by {:?}", store.get("locks.report").await?);

    // Appends build a log.
    for line in ["start\n", "work\n", "done\n"] {
        store.append("logs.job1", line.into()).await?;
    }
    println!("log: {:?}", store.get("logs.job1").await?);

    for pattern in ["counters.**", "inventory.**", "locks.**", "logs.**"] {
        store.delete_pattern(pattern).await?;
    }
    store.close().await?;
    Ok(())
}
