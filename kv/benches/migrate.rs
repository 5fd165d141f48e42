//! `migrate_store` from the embedded engine to SQLite (issue 8): 1,000,000
//! keys by default, with throughput (keys/s) and the process's peak
//! resident memory during the migration.
//!
//! ```text
//! cargo bench -p dataknobs-kv --bench migrate               # 1,000,000 keys
//! cargo bench -p dataknobs-kv --bench migrate -- --quick    # 100,000 keys
//! cargo bench -p dataknobs-kv --bench migrate -- --keys N --batch N
//! ```
//!
//! Targets: ≥ 50,000 keys/s and peak RSS < 300 MB. The source is filled
//! first and closed; the migration then runs in a child process (this
//! program again, with `--migrate DIR`), so its peak RSS (`VmHWM`) covers
//! exactly what a `kv migrate` run holds: the open source, the target and
//! the pages in flight. Values are 100-byte strings with a little user
//! metadata; both stores live in a temporary directory on the same disk.

use std::time::Instant;

use dataknobs_kv::migrate::{migrate_store, MigrateOptions};
use dataknobs_kv::{open, BackendKind, SetOptions, StoreConfig, Value};

fn rss_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn config(kind: BackendKind, dir: &std::path::Path) -> StoreConfig {
    let mut c = StoreConfig::default();
    c.store.backend = Some(kind);
    c.engine.path = dir.join("engine");
    // Filling: the fill is not what is measured.
    c.engine.sync = "never".into();
    c.sqlite.path = dir.join("target.db");
    c
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut keys: usize = 1_000_000;
    let mut batch: usize = 1000;
    let mut migrate_dir: Option<std::path::PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => keys = 100_000,
            "--migrate" => migrate_dir = Some(args.next().ok_or("--migrate DIR")?.into()),
            "--keys" => keys = args.next().ok_or("--keys N")?.parse()?,
            "--batch" => batch = args.next().ok_or("--batch N")?.parse()?,
            "--bench" => {}
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if let Some(dir) = migrate_dir {
        return migrate(&dir, keys, batch).await;
    }
    let dir = tempfile::tempdir()?;

    // Fill the source in batches of 10,000.
    let started = Instant::now();
    let source = open(&config(BackendKind::Engine, dir.path())).await?;
    let value = "x".repeat(100);
    let options = SetOptions::new().metadata_json(serde_json::json!({"source": "bench"}))?;
    let mut i = 0;
    while i < keys {
        let end = (i + 10_000).min(keys);
        let mut b = dataknobs_kv::Batch::new();
        for k in i..end {
            b = b.set_with(
                format!("users.{:03}.{k:07}.profile", k % 1000),
                Value::from(value.as_str()),
                options.clone(),
            );
        }
        source.batch(b).await?;
        i = end;
    }
    source.close().await?;
    drop(source);
    println!(
        "filled the engine with {keys} keys in {:.1?}",
        started.elapsed()
    );

    // The migration, in a fresh process of its own.
    let status = std::process::Command::new(std::env::current_exe()?)
        .arg("--migrate")
        .arg(dir.path())
        .args(["--keys", &keys.to_string(), "--batch", &batch.to_string()])
        .status()?;
    if !status.success() {
        return Err(format!("the migration process failed: {status}").into());
    }
    Ok(())
}

/// The measured part: open both stores, migrate, report.
async fn migrate(
    dir: &std::path::Path,
    keys: usize,
    batch: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let before = rss_kib("VmRSS:").unwrap_or(0);
    let started = Instant::now();
    let source = open(&config(BackendKind::Engine, dir)).await?;
    let opened = started.elapsed();
    let source_rss = rss_kib("VmRSS:").unwrap_or(0);
    let target = open(&config(BackendKind::Sqlite, dir)).await?;
    // The engine keeps its records in memory: what the open stores hold
    // before a single record moves.
    let opened_rss = rss_kib("VmRSS:").unwrap_or(0);
    let migrated_at = Instant::now();
    let report = migrate_store(
        &*source,
        &*target,
        MigrateOptions {
            batch_size: batch,
            ..MigrateOptions::default()
        },
        |_| {},
    )
    .await?;
    target.flush().await?;
    let migrate_secs = migrated_at.elapsed().as_secs_f64();
    let peak = rss_kib("VmHWM:").unwrap_or(0);
    assert_eq!(report.copied, keys as u64, "{report:?}");
    assert_eq!(target.count().await?, keys as u64);

    let rate = keys as f64 / migrate_secs;
    let peak_mb = peak as f64 / 1024.0;
    println!(
        "source opened in {opened:.2?}; RSS with the source open {:.0} MB",
        source_rss as f64 / 1024.0
    );
    println!(
        "migrated {keys} keys engine → sqlite in {migrate_secs:.2} s: {rate:.0} keys/s (batch {batch})"
    );
    println!(
        "peak RSS of the migration process {peak_mb:.0} MB (at its start {:.0} MB; \
         with both stores open, before migrating {:.0} MB; so the migration itself \
         added {:.0} MB)",
        before as f64 / 1024.0,
        opened_rss as f64 / 1024.0,
        (peak.saturating_sub(opened_rss)) as f64 / 1024.0
    );
    println!(
        "resident at the end: anonymous {:.0} MB, file-backed {:.0} MB, shared memory {:.0} MB",
        rss_kib("RssAnon:").unwrap_or(0) as f64 / 1024.0,
        rss_kib("RssFile:").unwrap_or(0) as f64 / 1024.0,
        rss_kib("RssShmem:").unwrap_or(0) as f64 / 1024.0
    );
    println!(
        "target ≥ 50,000 keys/s: {}; target peak RSS < 300 MB: {}",
        if rate >= 50_000.0 { "met" } else { "MISSED" },
        if peak_mb < 300.0 { "met" } else { "MISSED" }
    );
    source.close().await?;
    target.close().await?;
    Ok(())
}
