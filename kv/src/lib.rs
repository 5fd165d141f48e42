//! # DataKnobs KV
//!
//! One async key/value API — hierarchical dot-notation keys, glob
//! patterns, typed values, per-key metadata, TTL, atomic operations,
//! namespaces and batches — over pluggable backends chosen by Cargo feature
//! and by configuration, so application code does not change when the
//! backend does.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use dataknobs_kv::{open_url, KVStore, KVStoreExt};
//!
//! let store = open_url("memory:").await?;
//! store.set("app.config.database.host", "localhost".into()).await?;
//! store.set("app.config.database.port", 5432.into()).await?;
//! assert_eq!(store.get_as::<u16>("app.config.database.port").await?, Some(5432));
//! assert_eq!(store.keys("app.config.*.*").await?.len(), 2);
//! # Ok::<(), dataknobs_kv::Error>(())
//! # });
//! ```
//!
//! ## Features
//!
//! | feature | backend | status |
//! |---|---|---|
//! | (always) | `memory:` | available |
//! | `engine` (default) | `engine:PATH`, the embedded WAL + snapshot engine | available |
//! | `sqlite` | `sqlite:PATH`, `sqlite::memory:` | available |
//! | `postgres` | `postgres://…` | available |
//! | `s3` | `s3://bucket/prefix?endpoint=…&region=…` | available |
//! | `cache` | the `[cache]` layer over any backend | available |
//! | `full` | all of the above | |
//!
//! A config that selects a backend whose feature is off fails with
//! [`Error::Config`] naming the feature to enable.
//!
//! ## Layout
//!
//! - [`config`]: [`StoreConfig`] from TOML, JSON, URLs and environment.
//! - [`open`], [`open_url`], [`open_config_file`]: build a store from them.
//! - Everything of `kv-core` is re-exported at the root.
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod config;
pub mod transfer;

/// The README's code blocks, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

use std::path::Path;
use std::sync::Arc;

pub use config::{BackendKind, StoreConfig};
pub use kv_core::*;

/// The cache layer (feature `cache`).
#[cfg(feature = "cache")]
#[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
pub use kv_cache as cache;

/// The PostgreSQL backend (feature `postgres`).
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use kv_backend_postgres as postgres;

/// The object-store backend (feature `s3`).
#[cfg(feature = "s3")]
#[cfg_attr(docsrs, doc(cfg(feature = "s3")))]
pub use kv_backend_s3 as s3;

/// The SQLite backend (feature `sqlite`).
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use kv_backend_sqlite as sqlite;

/// The embedded engine (feature `engine`).
#[cfg(feature = "engine")]
#[cfg_attr(docsrs, doc(cfg(feature = "engine")))]
pub use kv_engine as engine;

/// Opens the store `config` describes: builds the backend, wraps the cache
/// when configured, applies the store options and the namespace.
pub async fn open(config: &StoreConfig) -> Result<Arc<dyn KVStore>> {
    let config = config.resolved()?;
    config.validate("config")?;
    let kind = config.backend()?;
    let backend = open_backend(kind, &config).await?;
    let backend = wrap_cache(backend, &config)?;
    let store = Store::builder(backend)
        .options(config.store.options())
        .build()?;
    Ok(Arc::new(store))
}

/// Opens a store from a URL: `memory:`, `engine:./kv-data`,
/// `sqlite:./kv.db`, `postgres://user@host/db`, `s3://bucket/prefix?…`.
pub async fn open_url(url: &str) -> Result<Arc<dyn KVStore>> {
    open(&StoreConfig::from_url(url)?).await
}

/// Opens the store described by a TOML or JSON file, with environment
/// overrides applied (see [`StoreConfig::apply_env_from`]).
pub async fn open_config_file(path: impl AsRef<Path>) -> Result<Arc<dyn KVStore>> {
    open(&StoreConfig::from_file(path)?).await
}

fn not_compiled(kind: &str, feature: &str) -> Error {
    Error::Config {
        field: Some("store.backend".into()),
        reason: format!(
            "the {kind} backend is not compiled into this build; enable the `{feature}` feature of dataknobs-kv"
        ),
    }
}

async fn open_backend(kind: BackendKind, config: &StoreConfig) -> Result<Arc<dyn Backend>> {
    match kind {
        BackendKind::Memory => Ok(Arc::new(MemoryBackend::new())),
        #[cfg(feature = "engine")]
        BackendKind::Engine => open_engine(config).await,
        #[cfg(feature = "sqlite")]
        BackendKind::Sqlite => open_sqlite(config).await,
        #[cfg(feature = "postgres")]
        BackendKind::Postgres => open_postgres(config).await,
        #[cfg(feature = "s3")]
        BackendKind::S3 => open_s3(config),
        // Reached only for a backend whose feature is off in this build.
        #[allow(unreachable_patterns)]
        other => Err(not_compiled(
            other.name(),
            other.feature().unwrap_or("full"),
        )),
    }
}

#[cfg(feature = "engine")]
async fn open_engine(config: &StoreConfig) -> Result<Arc<dyn Backend>> {
    let section = &config.engine;
    let sync: kv_engine::SyncMode = section
        .sync
        .parse()
        .map_err(|e: kv_engine::Error| Error::config("engine.sync", e.to_string()))?;
    let options = kv_engine::Options::new(&section.path)
        .sync(sync)
        .segment_size(section.segment_size)
        .max_wal_size(section.max_wal_size);
    // Opening replays the log: blocking file I/O, off the async threads.
    let backend = tokio::task::spawn_blocking(move || kv_engine::EngineBackend::open(options))
        .await
        .map_err(|e| Error::backend("engine", false, e))??;
    Ok(Arc::new(backend))
}

#[cfg(feature = "sqlite")]
async fn open_sqlite(config: &StoreConfig) -> Result<Arc<dyn Backend>> {
    use kv_backend_sqlite::{SqliteOptions, SqliteStore};
    let section = &config.sqlite;
    let mut options = SqliteOptions::new(&section.path)
        .table(section.table.clone())
        .synchronous(section.synchronous.parse()?)
        .busy_timeout(std::time::Duration::from_millis(section.busy_timeout_ms));
    if let Some(n) = section.readers {
        options = options.readers(n);
    }
    Ok(Arc::new(SqliteStore::open(options).await?))
}

#[cfg(feature = "postgres")]
async fn open_postgres(config: &StoreConfig) -> Result<Arc<dyn Backend>> {
    use kv_backend_postgres::{PgOptions, PgStore};
    use std::time::Duration;
    let s = &config.postgres;
    let base = match &s.url {
        Some(url) => PgOptions::new(url.expose()),
        None => PgOptions::from_parts(
            &s.host,
            s.port,
            &s.user,
            s.password.as_ref().map(|p| p.expose()),
            &s.database,
        ),
    };
    let mut options = base
        .table(s.table.clone())
        .pool_size(s.pool_size)
        .connect_timeout(Duration::from_secs(s.connect_timeout))
        .statement_timeout(Duration::from_secs(s.statement_timeout));
    if let Some(mode) = &s.ssl_mode {
        options = options.ssl_mode(mode.clone());
    }
    Ok(Arc::new(PgStore::open(options).await?))
}

#[cfg(feature = "s3")]
fn open_s3(config: &StoreConfig) -> Result<Arc<dyn Backend>> {
    use kv_backend_s3::{S3Config, S3Store};
    let s = &config.s3;
    let mut c = S3Config::new(&s.bucket)
        .prefix(&s.prefix)
        .allow_http(s.allow_http);
    if let Some(endpoint) = &s.endpoint {
        c = c.endpoint(endpoint);
    }
    if let Some(region) = &s.region {
        c = c.region(region);
    }
    c.access_key_id.clone_from(&s.access_key_id);
    c.secret_access_key = s.secret_access_key.as_ref().map(|k| k.expose().to_owned());
    c.concurrency = s.concurrency;
    c.seen_objects = s.seen_objects;
    Ok(Arc::new(S3Store::s3(c)?))
}

fn wrap_cache(backend: Arc<dyn Backend>, config: &StoreConfig) -> Result<Arc<dyn Backend>> {
    match &config.cache {
        None => Ok(backend),
        #[cfg(feature = "cache")]
        Some(c) => {
            use kv_cache::{CacheLayer, CacheOptions, DiskTierOptions};
            let mut options = CacheOptions::new()
                .capacity(c.capacity)
                .ttl(std::time::Duration::from_secs(c.ttl))
                .negative(c.negative);
            if let Some(bytes) = c.max_bytes {
                options = options.max_bytes(bytes);
            }
            if let Some(path) = &c.disk_path {
                let mut disk = DiskTierOptions::new(path);
                disk.max_bytes = c.disk_max_bytes;
                options = options.disk(disk);
            }
            Ok(Arc::new(CacheLayer::new(backend, options)?))
        }
        #[cfg(not(feature = "cache"))]
        Some(_) => Err(not_compiled("cache", "cache")),
    }
}
