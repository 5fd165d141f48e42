//! Hierarchical configuration: an application's settings as dot-separated
//! keys, read back by glob patterns (`*`, `**`, `{dev,prod}`, `[0-9]`).
//!
//! ```text
//! cargo run -p kv-examples --example hierarchical_config
//! ```
//!
//! Runs on the store `KV_STORE_URL` names, or the default store of this
//! build (the engine in `./kv-data`); it removes what it wrote.

use dataknobs_kv::{open, StoreConfig, Value};

#[tokio::main]
async fn main() -> Result<(), dataknobs_kv::Error> {
    let mut config = StoreConfig::default();
    config.apply_env()?;
    let store = open(&config).await?;

    let settings: [(&str, Value); 8] = [
        ("myapp.dev.database.host", "localhost".into()),
        ("myapp.dev.database.port", 5432.into()),
        ("myapp.dev.features.beta", true.into()),
        ("myapp.prod.database.host", "db.internal".into()),
        ("myapp.prod.database.port", 6432.into()),
        ("myapp.prod.features.beta", false.into()),
        ("myapp.prod.replicas.1.host", "replica-1.internal".into()),
        ("myapp.prod.replicas.2.host", "replica-2.internal".into()),
    ];
    store
        .set_many(
            settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
        .await?;

    // `*` is one segment; `**` any number of them.
    let hosts = store.keys("myapp.*.database.host").await?;
    println!("database hosts: {hosts:?}");
    assert_eq!(hosts.len(), 2);
    let prod = store.count_pattern("myapp.prod.**").await?;
    println!("prod settings: {prod}");
    assert_eq!(prod, 5);

    // Braces pick alternatives; classes pick characters.
    for (key, value) in store.get_pattern("myapp.{dev,prod}.features.beta").await? {
        println!("{key} = {value}");
    }
    let replicas = store.keys("myapp.prod.replicas.[0-9].host").await?;
    println!("replicas: {replicas:?}");
    assert_eq!(replicas.len(), 2);

    // One environment's settings as a tree.
    let mut tree = serde_json::Map::new();
    for (key, value) in store.get_pattern("myapp.dev.**").await? {
        let path = key.trim_start_matches("myapp.dev.");
        tree.insert(path.to_owned(), value.to_json());
    }
    println!("dev: {}", serde_json::Value::Object(tree));

    let removed = store.delete_pattern("myapp.**").await?;
    println!("removed {removed} keys");
    assert_eq!(removed, 8);
    store.close().await?;
    Ok(())
}
