//! The backend conformance suite.
//!
//! Plain async functions, one per named case, each taking a
//! [`BackendFactory`] that yields a fresh, empty backend. Each case builds
//! its [`Store`]s over that backend with a [`ManualClock`], so TTL cases never
//! sleep. [`run_conformance`] runs every case, prints one line per case and
//! the totals, and returns a [`ConformanceReport`].
//!
//! Every backend crate runs it in its tests:
//!
//! ```no_run
//! # async fn demo() {
//! use std::sync::Arc;
//! use kv_core::{Backend, MemoryBackend};
//! use kv_core::testing::{run_conformance, ConformanceOptions};
//! let report = run_conformance(
//!     "memory",
//!     Arc::new(|| async { Ok(Arc::new(MemoryBackend::new()) as Arc<dyn Backend>) }),
//!     ConformanceOptions::default(),
//! )
//! .await;
//! report.assert_all_passed();
//! # }
//! ```
//!
//! Cases that need a capability (an atomic batch) are skipped on backends
//! without it, and a case checks that such backends refuse batches instead.

mod cases;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::backend::{Backend, Capabilities};
use crate::clock::{Clock, ManualClock};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::types::StoreOptions;

pub use cases::all_cases;

/// Yields a fresh, empty backend for each case.
#[async_trait]
pub trait BackendFactory: Send + Sync {
    /// A new backend holding no records.
    async fn create(&self) -> Result<Arc<dyn Backend>>;

    /// A new backend for a case whose stores read `clock`; layers that
    /// judge time themselves (a cache's freshness) should use it. Defaults
    /// to [`create`](Self::create).
    async fn create_with_clock(&self, clock: Arc<dyn Clock>) -> Result<Arc<dyn Backend>> {
        let _ = clock;
        self.create().await
    }
}

#[async_trait]
impl<F, Fut> BackendFactory for F
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Result<Arc<dyn Backend>>> + Send,
{
    async fn create(&self) -> Result<Arc<dyn Backend>> {
        self().await
    }
}

/// Why a case failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure(pub String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure(format!("unexpected error: {e}"))
    }
}

impl From<crate::migrate::MigrateError> for Failure {
    fn from(e: crate::migrate::MigrateError) -> Self {
        Failure(format!("unexpected error: {e}"))
    }
}

/// What a case returns.
pub type CaseResult = std::result::Result<(), Failure>;

/// A boxed case future.
pub type CaseFuture<'a> = Pin<Box<dyn Future<Output = CaseResult> + Send + 'a>>;

/// What a case needs from the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Runs everywhere.
    Nothing,
    /// Needs [`Capabilities::atomic_batch`].
    AtomicBatch,
    /// Runs only where batches are not atomic (checks they are refused).
    NoAtomicBatch,
}

impl Needs {
    fn skip_reason(self, caps: &Capabilities) -> Option<&'static str> {
        match self {
            Needs::Nothing => None,
            Needs::AtomicBatch if !caps.atomic_batch => Some("backend has no atomic batch"),
            Needs::NoAtomicBatch if caps.atomic_batch => Some("backend has atomic batches"),
            _ => None,
        }
    }
}

/// One named case.
#[derive(Clone, Copy)]
pub struct Case {
    /// The case's name: what it proves.
    pub name: &'static str,
    /// What it needs from the backend.
    pub needs: Needs,
    /// Runs the case.
    pub run: for<'a> fn(&'a dyn BackendFactory, &'a ConformanceOptions) -> CaseFuture<'a>,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Case")
            .field("name", &self.name)
            .field("needs", &self.needs)
            .finish()
    }
}

/// Knobs for slow backends. Defaults are what the suite promises.
#[derive(Debug, Clone)]
pub struct ConformanceOptions {
    /// Keys written by the large scan and pattern cases. Default 20,000.
    pub large_keys: usize,
    /// Tasks × increments in the concurrent increment case. Default 16 × 500.
    pub increment_tasks: usize,
    /// See [`increment_tasks`](Self::increment_tasks).
    pub increments_per_task: usize,
    /// Run only cases whose name contains this (also `KV_CONFORMANCE_FILTER`).
    pub filter: Option<String>,
    /// Time limit per case. Default 300 s.
    pub case_timeout: Duration,
    /// Print one line per case (failures are always printed). Default true.
    pub verbose: bool,
}

impl Default for ConformanceOptions {
    fn default() -> Self {
        ConformanceOptions {
            large_keys: 20_000,
            increment_tasks: 16,
            increments_per_task: 500,
            filter: std::env::var("KV_CONFORMANCE_FILTER").ok(),
            case_timeout: Duration::from_secs(300),
            verbose: true,
        }
    }
}

/// A store over a fresh backend with a manual clock: what each case uses.
#[derive(Debug, Clone)]
pub struct Harness {
    /// The fresh backend.
    pub backend: Arc<dyn Backend>,
    /// The clock every store of the harness reads.
    pub clock: ManualClock,
    /// A store with default options in namespace `default`.
    pub store: Store,
}

/// Start time of every manual clock: 2024-01-01T00:00:00Z.
pub const CLOCK_START_MS: i64 = 1_704_067_200_000;

impl Harness {
    /// A fresh backend and a default store over it.
    pub async fn new(factory: &dyn BackendFactory) -> Result<Harness> {
        Self::with_options(factory, StoreOptions::default()).await
    }

    /// A fresh backend and a store with `options` over it.
    pub async fn with_options(
        factory: &dyn BackendFactory,
        options: StoreOptions,
    ) -> Result<Harness> {
        let clock = ManualClock::new(CLOCK_START_MS);
        let backend = factory
            .create_with_clock(Arc::new(clock.clone()) as Arc<dyn Clock>)
            .await?;
        let store = Store::builder(Arc::clone(&backend))
            .clock(clock.clone())
            .options(options)
            .build()?;
        Ok(Harness {
            backend,
            clock,
            store,
        })
    }

    /// Another store over the same backend and clock.
    pub fn store_with(&self, options: StoreOptions) -> Result<Store> {
        Store::builder(Arc::clone(&self.backend))
            .clock(self.clock.clone())
            .options(options)
            .build()
    }
}

/// What [`run_conformance`] found.
///
/// The totals are printed, and also appended to the file named by the
/// environment variable `KV_CONFORMANCE_REPORT` when it is set (for
/// `./scripts/test.sh`).
#[derive(Debug, Clone, Default)]
pub struct ConformanceReport {
    /// The backend's label.
    pub backend: String,
    /// Cases that passed.
    pub passed: Vec<&'static str>,
    /// Cases that failed, with why.
    pub failed: Vec<(&'static str, String)>,
    /// Cases skipped, with why.
    pub skipped: Vec<(&'static str, String)>,
}

impl ConformanceReport {
    /// Number of cases considered.
    pub fn total(&self) -> usize {
        self.passed.len() + self.failed.len() + self.skipped.len()
    }

    /// Panics with every failure when any case failed or none ran.
    pub fn assert_all_passed(&self) {
        if !self.failed.is_empty() {
            let list: Vec<String> = self
                .failed
                .iter()
                .map(|(n, why)| format!("  {n}: {why}"))
                .collect();
            panic!(
                "conformance[{}]: {} of {} cases failed:\n{}",
                self.backend,
                self.failed.len(),
                self.total(),
                list.join("\n")
            );
        }
        assert!(
            !self.passed.is_empty(),
            "conformance[{}]: no case ran (filter too narrow?)",
            self.backend
        );
    }
}

/// Runs every case against backends from `factory`, printing one line per
/// case and the totals.
pub async fn run_conformance(
    label: &str,
    factory: Arc<dyn BackendFactory>,
    options: ConformanceOptions,
) -> ConformanceReport {
    let mut report = ConformanceReport {
        backend: label.to_owned(),
        ..ConformanceReport::default()
    };
    let caps = match factory.create().await {
        Ok(b) => {
            let caps = b.capabilities();
            let _ = b.close().await;
            caps
        }
        Err(e) => {
            report.failed.push(("create_backend", e.to_string()));
            println!("conformance[{label}] cannot create a backend: {e}");
            return report;
        }
    };
    let options = Arc::new(options);
    let started = Instant::now();
    for case in all_cases() {
        if let Some(filter) = &options.filter {
            if !case.name.contains(filter.as_str()) {
                continue;
            }
        }
        if let Some(reason) = case.needs.skip_reason(&caps) {
            if options.verbose {
                println!("conformance[{label}] {} ... skipped ({reason})", case.name);
            }
            report.skipped.push((case.name, reason.to_owned()));
            continue;
        }
        let t0 = Instant::now();
        let f = Arc::clone(&factory);
        let o = Arc::clone(&options);
        let timeout = options.case_timeout;
        // Each case runs in its own task so a panic is a failure, not an
        // abort of the whole suite.
        let task =
            tokio::spawn(async move { tokio::time::timeout(timeout, (case.run)(&*f, &o)).await });
        let outcome = match task.await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(failure))) => Err(failure.0),
            Ok(Err(_)) => Err(format!("timed out after {timeout:?}")),
            Err(join) => Err(format!("panicked: {join}")),
        };
        let ms = t0.elapsed().as_millis();
        match outcome {
            Ok(()) => {
                println!("conformance[{label}] {} ... ok ({ms} ms)", case.name);
                report.passed.push(case.name);
            }
            Err(why) => {
                println!(
                    "conformance[{label}] {} ... FAILED ({ms} ms): {why}",
                    case.name
                );
                report.failed.push((case.name, why));
            }
        }
    }
    let summary = format!(
        "conformance[{label}]: {} cases: {} passed, {} failed, {} skipped in {:.1} s",
        report.total(),
        report.passed.len(),
        report.failed.len(),
        report.skipped.len(),
        started.elapsed().as_secs_f64()
    );
    println!("{summary}");
    if options.verbose {
        append_summary(&summary);
    }
    report
}

/// Appends a suite's summary line to the file named by
/// `KV_CONFORMANCE_REPORT`, so a test runner can show every suite's totals
/// without showing every test's output. Best effort.
fn append_summary(summary: &str) {
    use std::io::Write;
    let Ok(path) = std::env::var("KV_CONFORMANCE_REPORT") else {
        return;
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{summary}");
    }
}
