//! The SQLite backend passes the whole kv-core conformance suite, on a file
//! database (WAL mode, reader connections) and on `:memory:` (one
//! connection).
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use kv_backend_sqlite::{SqliteOptions, SqliteStore};
use kv_core::testing::{run_conformance, BackendFactory, ConformanceOptions};
use kv_core::Backend;
use tempfile::TempDir;

fn file_factory() -> Arc<dyn BackendFactory> {
    let dirs: Arc<Mutex<Vec<TempDir>>> = Arc::default();
    Arc::new(move || {
        let dirs = Arc::clone(&dirs);
        async move {
            let dir =
                tempfile::tempdir().map_err(|e| kv_core::Error::io("creating a temp dir", e))?;
            let store = SqliteStore::open(SqliteOptions::new(dir.path().join("kv.db"))).await?;
            dirs.lock().unwrap().push(dir);
            Ok(Arc::new(store) as Arc<dyn Backend>)
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_database_passes_conformance_suite() {
    run_conformance("sqlite-file", file_factory(), ConformanceOptions::default())
        .await
        .assert_all_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_memory_database_passes_conformance_suite() {
    let factory = Arc::new(|| async {
        Ok(Arc::new(SqliteStore::open(SqliteOptions::memory()).await?) as Arc<dyn Backend>)
    });
    run_conformance("sqlite-memory", factory, ConformanceOptions::default())
        .await
        .assert_all_passed();
}
