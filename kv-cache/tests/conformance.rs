//! The cache layer changes no answer: the whole kv-core conformance suite
//! passes through `CacheLayer` over the memory backend, the engine and
//! SQLite (with negative caching and a small, byte-bounded cache, so
//! evictions happen too).
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use kv_cache::{CacheLayer, CacheOptions};
use kv_core::testing::{run_conformance, BackendFactory, ConformanceOptions};
use kv_core::{Backend, Clock, MemoryBackend, Result};
use tempfile::TempDir;

#[derive(Clone, Copy)]
enum Beneath {
    Memory,
    Engine,
    Sqlite,
}

struct Factory {
    beneath: Beneath,
    negative: bool,
    dirs: Mutex<Vec<TempDir>>,
}

impl Factory {
    fn new(beneath: Beneath, negative: bool) -> Arc<Self> {
        Arc::new(Factory {
            beneath,
            negative,
            dirs: Mutex::new(Vec::new()),
        })
    }

    async fn inner(&self) -> Result<Arc<dyn Backend>> {
        Ok(match self.beneath {
            Beneath::Memory => Arc::new(MemoryBackend::new()),
            Beneath::Engine => {
                let dir = tempfile::tempdir().map_err(|e| kv_core::Error::io("temp dir", e))?;
                let b = kv_engine::EngineBackend::open(
                    kv_engine::Options::new(dir.path()).sync(kv_engine::SyncMode::Never),
                )?;
                self.dirs.lock().unwrap().push(dir);
                Arc::new(b)
            }
            Beneath::Sqlite => {
                let dir = tempfile::tempdir().map_err(|e| kv_core::Error::io("temp dir", e))?;
                let b = kv_backend_sqlite::SqliteStore::open(
                    kv_backend_sqlite::SqliteOptions::new(dir.path().join("kv.db")),
                )
                .await?;
                self.dirs.lock().unwrap().push(dir);
                Arc::new(b)
            }
        })
    }
}

#[async_trait]
impl BackendFactory for Factory {
    async fn create(&self) -> Result<Arc<dyn Backend>> {
        self.create_with_clock(Arc::new(kv_core::SystemClock)).await
    }

    async fn create_with_clock(&self, clock: Arc<dyn Clock>) -> Result<Arc<dyn Backend>> {
        let options = CacheOptions::new()
            .capacity(2_000)
            .max_bytes(2 << 20)
            .ttl(Duration::from_secs(30))
            .negative(self.negative)
            .clock(clock);
        Ok(Arc::new(CacheLayer::new(self.inner().await?, options)?))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cache_over_memory_passes_conformance_suite() {
    run_conformance(
        "cache+memory",
        Factory::new(Beneath::Memory, false),
        ConformanceOptions::default(),
    )
    .await
    .assert_all_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn negative_cache_over_memory_passes_conformance_suite() {
    run_conformance(
        "cache(negative)+memory",
        Factory::new(Beneath::Memory, true),
        ConformanceOptions::default(),
    )
    .await
    .assert_all_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cache_over_engine_passes_conformance_suite() {
    run_conformance(
        "cache+engine",
        Factory::new(Beneath::Engine, true),
        ConformanceOptions::default(),
    )
    .await
    .assert_all_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cache_over_sqlite_passes_conformance_suite() {
    run_conformance(
        "cache+sqlite",
        Factory::new(Beneath::Sqlite, false),
        ConformanceOptions::default(),
    )
    .await
    .assert_all_passed();
}
