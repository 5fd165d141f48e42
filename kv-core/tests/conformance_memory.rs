//! The memory backend, the reference implementation, passes the whole
//! conformance suite.

use std::sync::Arc;

use kv_core::testing::{all_cases, run_conformance, ConformanceOptions};
use kv_core::{Backend, MemoryBackend};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_backend_passes_conformance_suite() {
    let report = run_conformance(
        "memory",
        Arc::new(|| async { Ok(Arc::new(MemoryBackend::new()) as Arc<dyn Backend>) }),
        ConformanceOptions::default(),
    )
    .await;
    report.assert_all_passed();
    // Only the case for backends without atomic batches is skipped.
    assert_eq!(report.skipped.len(), 1, "{:?}", report.skipped);
}

#[test]
fn suite_has_at_least_80_uniquely_named_cases() {
    let cases = all_cases();
    let mut names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "duplicate case names");
    assert!(cases.len() >= 80, "only {} cases", cases.len());
}
