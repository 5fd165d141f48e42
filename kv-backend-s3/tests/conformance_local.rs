//! The backend over `object_store`'s local file system (one file per key
//! in a temporary folder, unordered listing, process-local locking)
//! passes the whole kv-core conformance suite with default options, each
//! case in a fresh folder.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use kv_backend_s3::S3Store;
use kv_core::testing::{run_conformance, ConformanceOptions};
use kv_core::Backend;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_file_system_passes_conformance_suite() {
    let dirs: Arc<Mutex<Vec<tempfile::TempDir>>> = Arc::default();
    let factory = {
        let dirs = Arc::clone(&dirs);
        Arc::new(move || {
            let dirs = Arc::clone(&dirs);
            async move {
                let dir = tempfile::tempdir().map_err(|e| kv_core::Error::io("tempdir", e))?;
                let store = S3Store::local(dir.path())?;
                dirs.lock().unwrap().push(dir);
                Ok(Arc::new(store) as Arc<dyn Backend>)
            }
        })
    };
    let report = run_conformance("s3-local", factory, ConformanceOptions::default()).await;
    report.assert_all_passed();
    for (case, why) in &report.skipped {
        assert!(why.contains("atomic batch"), "{case} skipped: {why}");
    }
}
