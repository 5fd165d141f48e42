//! Migration between backends: a store filled on the embedded engine is
//! copied to SQLite with `migrate_store` — types, metadata, timestamps and
//! TTLs kept — then backed up as JSON Lines and restored.
//!
//! ```text
//! cargo run -p kv-examples --example migrate_backends
//! ```
//!
//! Works in a temporary directory and removes it.

use std::time::Duration;

use dataknobs_kv::migrate::{migrate_store, MigrateOptions, Namespaces};
use dataknobs_kv::transfer::{export_jsonl, import_jsonl, ExportOptions, ImportFileOptions};
use dataknobs_kv::{open_url, SetOptions, Value};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), dataknobs_kv::Error> {
    let dir = std::env::temp_dir().join(format!("kv-migrate-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| dataknobs_kv::Error::io("creating a temp dir", e))?;
    let engine_url = format!("engine:{}", dir.join("engine").display());
    let sqlite_url = format!("sqlite:{}", dir.join("kv.db").display());

    // The laptop: the embedded engine.
    let source = open_url(&engine_url).await?;
    for i in 0..2000 {
        source
            .set_with(
                &format!("orders.{i:05}.total"),
                Value::Float(i as f64 * 1.5),
                SetOptions::new()
                    .metadata_json(json!({"region": if i % 2 == 0 { "eu" } else { "us" }}))?,
            )
            .await?;
    }
    source
        .set_with(
            "cache.warm",
            true.into(),
            SetOptions::new().ttl(Duration::from_secs(600)),
        )
        .await?;
    source
        .namespace("audit")?
        .set("log.1", "created".into())
        .await?;

    // One machine is no longer enough: copy everything to SQLite (the same
    // call copies to PostgreSQL or S3).
    let target = open_url(&sqlite_url).await?;
    let report = migrate_store(
        &*source,
        &*target,
        MigrateOptions {
            namespaces: Namespaces::All,
            batch_size: 500,
            ..MigrateOptions::default()
        },
        |progress| {
            println!(
                "  … {} copied ({} / {})",
                progress.copied,
                progress.namespace,
                progress.last.as_ref().map_or("", |p| p.key.as_str())
            )
        },
    )
    .await?;
    println!(
        "migrated {} records ({} bytes) in {:.2?}; {} skipped, {} failed",
        report.copied, report.bytes, report.elapsed, report.skipped, report.failed
    );
    assert_eq!(report.copied, 2002);
    let a = source.get_entry("orders.00042.total").await?;
    let b = target.get_entry("orders.00042.total").await?;
    assert_eq!(
        a.map(|e| (e.value, e.metadata.user, e.metadata.system.created_at)),
        b.map(|e| (e.value, e.metadata.user, e.metadata.system.created_at))
    );
    assert!(matches!(
        target.ttl("cache.warm").await?,
        dataknobs_kv::Ttl::Expires(_)
    ));

    // Backups: JSON Lines of whole records, restorable anywhere.
    let mut backup = Vec::new();
    let exported = export_jsonl(
        &*target,
        &mut backup,
        &ExportOptions {
            namespaces: Namespaces::All,
            ..ExportOptions::default()
        },
        |_| {},
    )
    .await?;
    println!(
        "exported {} records, {} bytes of JSON Lines",
        exported.records,
        backup.len()
    );
    println!(
        "first line: {}",
        String::from_utf8_lossy(backup.split(|b| *b == b'\n').next().unwrap_or_default())
    );
    let restored = open_url("memory:").await?;
    let imported = import_jsonl(
        &*restored,
        &backup[..],
        &ImportFileOptions::default(),
        |_| {},
    )
    .await?;
    assert_eq!(imported.records, 2002);
    println!("restored {} records into memory", imported.records);

    source.close().await?;
    target.close().await?;
    std::fs::remove_dir_all(&dir)
        .map_err(|e| dataknobs_kv::Error::io("removing the temp dir", e))?;
    Ok(())
}
