//! A cache in front of PostgreSQL: the `[cache]` section of a config wraps
//! any backend; repeated reads are served from memory and the statistics
//! show the hit ratio.
//!
//! ```text
//! KV_POSTGRES_URL=postgres://user:password@localhost/db \
//!     cargo run -p kv-examples --example cached_postgres
//! ```
//!
//! Needs a PostgreSQL server: `KV_POSTGRES_URL` (or `KV_TEST_POSTGRES_URL`,
//! which `./scripts/test.sh` sets). Without one it says so and exits
//! with status 2. It works in table `kv_example_cache` and drops nothing
//! else; it removes the keys it wrote.

use std::time::Instant;

use dataknobs_kv::{open, BackendKind, StoreConfig};

#[tokio::main]
async fn main() -> Result<(), dataknobs_kv::Error> {
    let Some(url) = std::env::var("KV_POSTGRES_URL")
        .or_else(|_| std::env::var("KV_TEST_POSTGRES_URL"))
        .ok()
    else {
        eprintln!("cached_postgres needs a PostgreSQL server: set KV_POSTGRES_URL=postgres://user:password@host/db");
        std::process::exit(2);
    };
    let config = StoreConfig::from_toml_str(
        r#"
        [store]
        backend = "postgres"

        [postgres]
        table = "kv_example_cache"

        [cache]
        capacity = 10000   # entries held in memory
        ttl = 30           # seconds an entry is served without asking PostgreSQL
        "#,
        "cached_postgres.rs",
    )?;
    let mut config = config;
    config.postgres.url = Some(dataknobs_kv::config::Secret::new(url));
    assert_eq!(config.backend()?, BackendKind::Postgres);
    let store = open(&config).await?;

    let keys: Vec<String> = (0..200).map(|i| format!("products.{i:03}.price")).collect();
    store
        .set_many(keys.iter().map(|k| (k.clone(), 9.99.into())).collect())
        .await?;

    // First pass: misses (read from PostgreSQL); next passes: hits.
    for pass in 1..=3 {
        let started = Instant::now();
        for key in &keys {
            store.get(key).await?;
        }
        println!("pass {pass}: 200 gets in {:.2?}", started.elapsed());
    }
    let stats = store.stats().await?;
    let cache = &stats.backend;
    println!(
        "cache: hits {} misses {} hit ratio {}",
        cache.fields["hits"], cache.fields["misses"], cache.fields["hit_ratio"]
    );
    if let Some(inner) = &cache.inner {
        println!("under it: the {} backend", inner.backend);
    }

    // Writes go to PostgreSQL first and refresh the cache.
    store.set("products.000.price", 7.49.into()).await?;
    println!("after update: {:?}", store.get("products.000.price").await?);

    store.delete_pattern("products.**").await?;
    store.close().await?;
    Ok(())
}
