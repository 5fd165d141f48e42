//! Multi-tenant namespaces: the same keys for several tenants in one
//! store, isolated from each other, listed and counted.
//!
//! ```text
//! cargo run -p kv-examples --example multi_tenant
//! ```
//!
//! Runs on the store `KV_STORE_URL` names, or the default store of this
//! build; it removes what it wrote.

use dataknobs_kv::{open, StoreConfig, Value};

#[tokio::main]
async fn main() -> Result<(), dataknobs_kv::Error> {
    let mut config = StoreConfig::default();
    config.apply_env()?;
    let store = open(&config).await?;

    let acme = store.namespace("tenant_acme")?;
    let globex = store.namespace("tenant_globex")?;
    acme.set("settings.theme", "dark".into()).await?;
    acme.set("settings.seats", 25.into()).await?;
    globex.set("settings.theme", "light".into()).await?;

    // Same key, different tenants, different values.
    println!("acme theme: {:?}", acme.get("settings.theme").await?);
    println!("globex theme: {:?}", globex.get("settings.theme").await?);
    assert_eq!(globex.get("settings.seats").await?, None::<Value>);
    assert_eq!(acme.count().await?, 2);
    assert_eq!(globex.count().await?, 1);

    let namespaces = store.list_namespaces().await?;
    println!("namespaces: {namespaces:?}");
    assert!(namespaces.contains(&"tenant_acme".to_owned()));

    // Removing one tenant's data leaves the other's alone.
    acme.delete_pattern("**").await?;
    assert_eq!(acme.count().await?, 0);
    assert_eq!(globex.count().await?, 1);
    globex.delete_pattern("**").await?;
    store.close().await?;
    Ok(())
}
