//! The conformance suite can fail: backends with one deliberate defect each
//! must be reported, and by the cases that cover that defect.

use std::sync::Arc;

use async_trait::async_trait;
use kv_core::testing::{run_conformance, ConformanceOptions, ConformanceReport};
use kv_core::{
    Backend, Capabilities, DeleteOutcome, KeyInfo, KeyRange, MemoryBackend, Precondition, Record,
    Result, Timestamp, WriteOutcome,
};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Defect {
    /// Conditional writes ignore their precondition.
    IgnoresPreconditions,
    /// `count` counts expired records.
    CountsExpired,
    /// `scan` ignores the cursor.
    IgnoresCursor,
    /// `delete_range` also removes the key equal to the prefix minus its dot.
    RangeDeleteTooWide,
    /// `read` flips a bit of the value (a disk error).
    CorruptsValues,
}

#[derive(Debug)]
struct Broken {
    inner: MemoryBackend,
    defect: Defect,
}

#[async_trait]
impl Backend for Broken {
    fn name(&self) -> &str {
        "broken"
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn read(&self, ns: &str, key: &str) -> Result<Option<Record>> {
        let mut r = self.inner.read(ns, key).await?;
        if self.defect == Defect::CorruptsValues {
            if let Some(r) = r.as_mut() {
                if let Some(b) = r.value.last_mut() {
                    *b ^= 1;
                }
            }
        }
        Ok(r)
    }
    async fn write(&self, record: Record, p: Precondition) -> Result<WriteOutcome> {
        let p = if self.defect == Defect::IgnoresPreconditions {
            Precondition::Any
        } else {
            p
        };
        self.inner.write(record, p).await
    }
    async fn delete(&self, ns: &str, key: &str, p: Precondition) -> Result<DeleteOutcome> {
        self.inner.delete(ns, key, p).await
    }
    async fn scan(
        &self,
        ns: &str,
        range: &KeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>> {
        let after = if self.defect == Defect::IgnoresCursor {
            None
        } else {
            after
        };
        self.inner.scan(ns, range, after, limit).await
    }
    async fn scan_keys(
        &self,
        ns: &str,
        range: &KeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KeyInfo>> {
        let after = if self.defect == Defect::IgnoresCursor {
            None
        } else {
            after
        };
        self.inner.scan_keys(ns, range, after, limit).await
    }
    async fn count(&self, ns: &str, range: &KeyRange, now: Timestamp) -> Result<u64> {
        let now = if self.defect == Defect::CountsExpired {
            Timestamp::EPOCH
        } else {
            now
        };
        self.inner.count(ns, range, now).await
    }
    async fn delete_range(&self, ns: &str, range: &KeyRange, now: Timestamp) -> Result<u64> {
        let mut n = self.inner.delete_range(ns, range, now).await?;
        if self.defect == Defect::RangeDeleteTooWide {
            if let Some(prefix) = range.start.as_deref().and_then(|s| s.strip_suffix('.')) {
                if let DeleteOutcome::Deleted { .. } =
                    self.inner.delete(ns, prefix, Precondition::Any).await?
                {
                    n += 1;
                }
            }
        }
        Ok(n)
    }
    async fn apply(&self, ops: Vec<kv_core::BatchOp>) -> Result<kv_core::BatchOutcome> {
        self.inner.apply(ops).await
    }
    async fn namespaces(&self) -> Result<Vec<String>> {
        self.inner.namespaces().await
    }
    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
}

async fn run(defect: Defect) -> ConformanceReport {
    let options = ConformanceOptions {
        large_keys: 3000,
        case_timeout: std::time::Duration::from_secs(5),
        filter: None,
        verbose: false,
        ..ConformanceOptions::default()
    };
    run_conformance(
        &format!("{defect:?}"),
        Arc::new(move || async move {
            Ok(Arc::new(Broken {
                inner: MemoryBackend::new(),
                defect,
            }) as Arc<dyn Backend>)
        }),
        options,
    )
    .await
}

fn failed(report: &ConformanceReport) -> Vec<&str> {
    report.failed.iter().map(|(n, _)| *n).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_defect_is_caught_by_its_cases() {
    let expectations: [(Defect, &[&str]); 5] = [
        (
            Defect::IgnoresPreconditions,
            &["atomic_increments_from_many_tasks_all_count"],
        ),
        (
            Defect::CountsExpired,
            &[
                "ttl_expired_key_invisible_to_every_read",
                "scan_pages_skip_expired_keys",
            ],
        ),
        (
            Defect::IgnoresCursor,
            &["scan_many_keys_paginated_in_key_order"],
        ),
        (
            Defect::RangeDeleteTooWide,
            &["pattern_delete_prefix_range_exact"],
        ),
        (
            Defect::CorruptsValues,
            &[
                "value_every_variant_round_trips",
                "key_hierarchical_keys_round_trip",
            ],
        ),
    ];
    for (defect, must_fail) in expectations {
        let report = run(defect).await;
        let failed = failed(&report);
        for case in must_fail {
            assert!(
                failed.contains(case),
                "{defect:?} was not caught by {case}; failed cases: {failed:?}"
            );
        }
    }
}
