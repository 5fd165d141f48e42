//! The engine, behind the `Backend` trait, passes the whole kv-core
//! conformance suite — with fsync on every write (`Always`, the default)
//! and with buffered writes (`Never`).
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use kv_core::testing::{run_conformance, ConformanceOptions};
use kv_core::Backend;
use kv_engine::{EngineBackend, Options, SyncMode};
use tempfile::TempDir;

/// Makes a fresh engine in its own directory for each case; the directories
/// live until the test ends.
fn factory(sync: SyncMode) -> Arc<dyn kv_core::testing::BackendFactory> {
    let dirs: Arc<Mutex<Vec<TempDir>>> = Arc::default();
    Arc::new(move || {
        let dirs = Arc::clone(&dirs);
        async move {
            let dir =
                tempfile::tempdir().map_err(|e| kv_core::Error::io("creating a temp dir", e))?;
            let backend = EngineBackend::open(Options::new(dir.path()).sync(sync))?;
            dirs.lock().unwrap().push(dir);
            Ok(Arc::new(backend) as Arc<dyn Backend>)
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn engine_passes_conformance_suite_with_fsync_on_every_write() {
    run_conformance(
        "engine-always",
        factory(SyncMode::Always),
        ConformanceOptions::default(),
    )
    .await
    .assert_all_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn engine_passes_conformance_suite_with_buffered_writes() {
    run_conformance(
        "engine-never",
        factory(SyncMode::Never),
        ConformanceOptions::default(),
    )
    .await
    .assert_all_passed();
}
