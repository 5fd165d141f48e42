//! Moving records between stores: [`KVStore::import_entries`] (the write
//! side, on every store) and [`migrate_store`] (a streaming copy from one
//! store to another, whatever their backends).
//!
//! A migrated record keeps its value (every [`Value`](crate::Value)
//! variant), its [`ValueType`](crate::ValueType) and content type, its user
//! metadata, its `created_at` and `updated_at`, and its absolute
//! `expires_at`. Its version starts again in the target (versions count
//! writes to one store). Keys that have expired by the time they are read
//! or written are skipped.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use kv_core::migrate::{migrate_store, MigrateOptions};
//! use kv_core::{KVStore, Store, Value};
//!
//! let source = Store::memory();
//! source.set("app.name", Value::from("demo")).await?;
//! let target = Store::memory();
//! let report = migrate_store(&source, &target, MigrateOptions::default(), |_| {}).await?;
//! assert_eq!(report.copied, 1);
//! assert_eq!(target.get("app.name").await?, Some(Value::from("demo")));
//! # Ok::<(), kv_core::Error>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::time::{Duration, Instant};

use crate::api::KVStore;
use crate::error::{Error, Result};

/// What an import does when the target already holds a live record under
/// the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overwrite {
    /// Replace it.
    #[default]
    Always,
    /// Keep it; the incoming record is skipped.
    Never,
    /// Replace it only when the incoming record's `updated_at` is later.
    IfNewer,
}

/// Options of [`KVStore::import_entries`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportOptions {
    /// What to do with keys the target already holds.
    pub overwrite: Overwrite,
    /// Decide everything, write nothing.
    pub dry_run: bool,
}

/// Why an imported record was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The target holds the key and the policy is [`Overwrite::Never`].
    Exists,
    /// The target's record is as new or newer ([`Overwrite::IfNewer`]).
    NotNewer,
    /// The record's `expires_at` has passed.
    Expired,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::Exists => "the target already holds the key",
            SkipReason::NotNewer => "the target's record is as new or newer",
            SkipReason::Expired => "the record has expired",
        })
    }
}

/// What became of one record given to [`KVStore::import_entries`].
#[derive(Debug)]
pub enum ImportOutcome {
    /// Written (or, in a dry run, would be).
    Written,
    /// Not written, on purpose.
    Skipped(SkipReason),
    /// Refused by the target: an invalid key or value for its rules, too
    /// large, or malformed metadata. Nothing was written for it.
    Failed(Error),
}

/// Which namespaces [`migrate_store`] copies.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Namespaces {
    /// The source handle's namespace only.
    #[default]
    Current,
    /// Every namespace of the source that holds a live key.
    All,
    /// These namespaces.
    Only(Vec<String>),
}

/// Where a migration stopped: the last key it fully handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumePoint {
    /// Namespace of the key.
    pub namespace: String,
    /// The key; the next run starts after it.
    pub key: String,
}

/// Options of [`migrate_store`].
#[derive(Debug, Clone, PartialEq)]
pub struct MigrateOptions {
    /// Copy only keys matching this pattern (default `**`, every key).
    pub pattern: String,
    /// Which namespaces to copy; each lands in the namespace of the same
    /// name in the target.
    pub namespaces: Namespaces,
    /// Records read and written per page; bounds the memory a migration
    /// uses. At least 1.
    pub batch_size: usize,
    /// What to do with keys the target already holds.
    pub overwrite: Overwrite,
    /// Read the source and decide, but write nothing to the target.
    pub dry_run: bool,
    /// Start after this key (from [`MigrateReport::resume_point`] of an
    /// interrupted run): namespaces before it and keys up to it are not
    /// read again.
    pub resume_after: Option<ResumePoint>,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions {
            pattern: "**".to_owned(),
            namespaces: Namespaces::Current,
            batch_size: 1000,
            overwrite: Overwrite::Always,
            dry_run: false,
            resume_after: None,
        }
    }
}

/// A record that could not be migrated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Namespace of the key.
    pub namespace: String,
    /// The key.
    pub key: String,
    /// Why, as the target's error put it.
    pub reason: String,
}

/// At most this many [`Failure`]s are kept in a report (all are counted).
pub const MAX_REPORTED_FAILURES: usize = 1000;

/// The running totals [`migrate_store`] passes to its progress callback
/// after every page, and returns at the end.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MigrateReport {
    /// Records read from the source.
    pub scanned: u64,
    /// Records written to the target (would be, in a dry run).
    pub copied: u64,
    /// Records not written on purpose (see [`SkipReason`]).
    pub skipped: u64,
    /// Records the target refused.
    pub failed: u64,
    /// The first [`MAX_REPORTED_FAILURES`] refusals, with reasons.
    pub failures: Vec<Failure>,
    /// Value bytes copied.
    pub bytes: u64,
    /// Time since the migration started.
    pub elapsed: Duration,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// The namespace being copied.
    pub namespace: String,
    /// The last key fully handled (copied, skipped or failed).
    pub last: Option<ResumePoint>,
}

impl MigrateReport {
    /// Where to resume after an interruption: pass it as
    /// [`MigrateOptions::resume_after`].
    pub fn resume_point(&self) -> Option<ResumePoint> {
        self.last.clone()
    }
}

/// A migration that stopped on an error, with what it had done by then.
#[derive(Debug)]
pub struct MigrateError {
    /// The error that stopped it (reading the source or writing the
    /// target).
    pub error: Error,
    /// Totals up to the last fully handled page; its
    /// [`resume_point`](MigrateReport::resume_point) says where to go on.
    pub report: MigrateReport,
}

impl fmt::Display for MigrateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "migration stopped after {} records copied: {}",
            self.report.copied, self.error
        )?;
        if let Some(p) = &self.report.last {
            write!(f, " (resume after {}/{})", p.namespace, p.key)?;
        }
        Ok(())
    }
}

impl std::error::Error for MigrateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<MigrateError> for Error {
    fn from(e: MigrateError) -> Self {
        e.error
    }
}

/// Copies records from `source` to `target`, page by page.
///
/// Memory is bounded by `options.batch_size` records, not by the size of
/// the stores. For each namespace (see [`Namespaces`]) it reads the live
/// records matching `options.pattern` in key order and writes each page
/// with [`KVStore::import_entries`], which keeps types, metadata and
/// timestamps. `progress` is called after every page with the totals so
/// far.
///
/// Records the target refuses (an invalid key under its rules, a value over
/// its size limit) are counted and listed in the report; the migration goes
/// on. An error reading the source or writing the target stops it: the
/// [`MigrateError`] carries the report, whose
/// [`resume_point`](MigrateReport::resume_point) lets a second run continue
/// where the first stopped.
pub async fn migrate_store(
    source: &dyn KVStore,
    target: &dyn KVStore,
    options: MigrateOptions,
    mut progress: impl FnMut(&MigrateReport) + Send,
) -> std::result::Result<MigrateReport, MigrateError> {
    let started = Instant::now();
    let mut report = MigrateReport {
        dry_run: options.dry_run,
        ..MigrateReport::default()
    };
    let result = run(
        source,
        target,
        &options,
        &mut report,
        started,
        &mut progress,
    )
    .await;
    report.elapsed = started.elapsed();
    match result {
        Ok(()) => Ok(report),
        Err(error) => Err(MigrateError { error, report }),
    }
}

async fn run(
    source: &dyn KVStore,
    target: &dyn KVStore,
    options: &MigrateOptions,
    report: &mut MigrateReport,
    started: Instant,
    progress: &mut (impl FnMut(&MigrateReport) + Send),
) -> Result<()> {
    if options.batch_size == 0 {
        return Err(Error::invalid_argument("batch_size", "must be at least 1"));
    }
    let mut namespaces = match &options.namespaces {
        Namespaces::Current => vec![source.current_namespace().to_owned()],
        Namespaces::All => source.list_namespaces().await?,
        Namespaces::Only(list) => list.clone(),
    };
    namespaces.sort();
    namespaces.dedup();
    let import = ImportOptions {
        overwrite: options.overwrite,
        dry_run: options.dry_run,
    };
    for ns in namespaces {
        let mut cursor = None;
        if let Some(resume) = &options.resume_after {
            match ns.cmp(&resume.namespace) {
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Equal => cursor = Some(resume.key.clone()),
                std::cmp::Ordering::Greater => {}
            }
        }
        let from = source.namespace(&ns)?;
        let to = target.namespace(&ns)?;
        report.namespace.clone_from(&ns);
        loop {
            let page = from
                .scan(&options.pattern, cursor.as_deref(), options.batch_size)
                .await?;
            let Some(last) = page.entries.last().map(|e| e.key.clone()) else {
                break;
            };
            let keys: Vec<(String, u64)> = page
                .entries
                .iter()
                .map(|e| (e.key.clone(), e.metadata.system.size))
                .collect();
            report.scanned += keys.len() as u64;
            let outcomes = to.import_entries(page.entries, import).await?;
            for ((key, size), outcome) in keys.into_iter().zip(outcomes) {
                match outcome {
                    ImportOutcome::Written => {
                        report.copied += 1;
                        report.bytes += size;
                    }
                    ImportOutcome::Skipped(_) => report.skipped += 1,
                    ImportOutcome::Failed(e) => {
                        report.failed += 1;
                        if report.failures.len() < MAX_REPORTED_FAILURES {
                            report.failures.push(Failure {
                                namespace: ns.clone(),
                                key,
                                reason: e.to_string(),
                            });
                        }
                    }
                }
            }
            report.last = Some(ResumePoint {
                namespace: ns.clone(),
                key: last,
            });
            report.elapsed = started.elapsed();
            progress(report);
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
    }
    Ok(())
}
