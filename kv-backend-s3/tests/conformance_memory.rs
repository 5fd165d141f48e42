//! The backend over `object_store`'s in-memory store passes the whole
//! kv-core conformance suite with default options, each case on a fresh
//! store (batch cases are skipped by capability: object stores have no
//! atomic batch, and a case checks that batches are refused).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use kv_backend_s3::S3Store;
use kv_core::testing::{run_conformance, ConformanceOptions};
use kv_core::Backend;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_object_store_passes_conformance_suite() {
    let factory = Arc::new(|| async { Ok(Arc::new(S3Store::memory()) as Arc<dyn Backend>) });
    let report = run_conformance("s3-memory", factory, ConformanceOptions::default()).await;
    report.assert_all_passed();
    for (case, why) in &report.skipped {
        assert!(why.contains("atomic batch"), "{case} skipped: {why}");
    }
}
