//! `migrate`: copy records from the current store to another, over
//! `dataknobs_kv::migrate::migrate_store`.

use dataknobs_kv::migrate::{migrate_store, MigrateOptions, MigrateReport, Overwrite, ResumePoint};
use dataknobs_kv::{KVStore, KeyRules, Pattern};
use serde_json::json;

use crate::cli::{Global, MigrateArgs, OverwriteArg};
use crate::error::{exit_code, kind, CliError, OK, USAGE};
use crate::open;
use crate::output::{note, shell_quote, Printer};
use crate::progress::Progress;
use crate::secrets::{one_line, scrub};

use super::transfer::selection;

/// The library's overwrite policy for a flag value.
pub fn overwrite(o: OverwriteArg) -> Overwrite {
    match o {
        OverwriteArg::Always => Overwrite::Always,
        OverwriteArg::Never => Overwrite::Never,
        OverwriteArg::IfNewer => Overwrite::IfNewer,
    }
}

/// `migrate --to URL | --to-config FILE`: prints the report. Exit 2 when
/// the target refused records; when the migration stops on an error, the
/// report so far is printed and the error line says how to resume.
pub async fn migrate(
    source: &dyn KVStore,
    global: &Global,
    a: MigrateArgs,
    p: Printer,
) -> Result<u8, CliError> {
    let resume_after = match &a.resume_after {
        Some(key) => {
            let namespace = match &a.resume_namespace {
                Some(ns) => KeyRules::default().normalize_namespace(ns)?.into_owned(),
                None => source.current_namespace().to_owned(),
            };
            Some(ResumePoint {
                namespace,
                key: key.clone(),
            })
        }
        None => None,
    };
    let options = MigrateOptions {
        pattern: a.pattern.clone(),
        namespaces: selection(&a.namespaces),
        batch_size: usize::try_from(a.batch_size).unwrap_or(usize::MAX),
        overwrite: overwrite(a.overwrite),
        dry_run: a.dry_run,
        resume_after,
    };
    // Bad input is refused before the target is opened.
    Pattern::new(&a.pattern)?;
    for ns in &a.namespaces.namespaces {
        KeyRules::default().normalize_namespace(ns)?;
    }
    let config = open::target_config(global, a.to.as_deref(), a.to_config.as_deref())?;
    let target = open::open(&config).await?;

    let progress = Progress::new(if a.dry_run { "checking" } else { "migrating" }, None);
    let result = migrate_store(source, target.as_ref(), options, |r: &MigrateReport| {
        progress.set(r.scanned);
        progress.message(format!(
            "{} copied, {} skipped, {} failed",
            r.copied, r.skipped, r.failed
        ));
    })
    .await;
    progress.finish();
    let close = target.close().await;

    let (report, error) = match result {
        Ok(report) => (report, None),
        Err(e) => (e.report, Some(e.error)),
    };
    let error = error.or(close.err());
    let error_doc = error.as_ref().map(
        |e| json!({ "kind": kind(e), "message": scrub(&e.to_string()), "exit_code": exit_code(e) }),
    );
    p.answer(
        json!({
            "completed": error.is_none(),
            "dry_run": report.dry_run,
            "scanned": report.scanned,
            "copied": report.copied,
            "skipped": report.skipped,
            "failed": report.failed,
            "failures": report.failures.iter().map(|f| json!({
                "namespace": f.namespace, "key": f.key, "reason": f.reason,
            })).collect::<Vec<_>>(),
            "bytes": report.bytes,
            "elapsed_ms": report.elapsed.as_millis() as u64,
            "last": report.last.as_ref().map(|l| json!({ "namespace": l.namespace, "key": l.key })),
            "error": error_doc,
        }),
        Some(&human(&report)),
    )?;
    if let Some(e) = error {
        let resume = report.last.as_ref().map_or(String::new(), |l| {
            format!(
                "; resume with --resume-namespace {} --resume-after {}",
                shell_quote(&l.namespace),
                shell_quote(&l.key)
            )
        });
        note(&format!(
            "error: migration stopped: {}{resume}",
            scrub(&e.to_string())
        ));
        return Ok(exit_code(&e));
    }
    if report.failed > 0 {
        let first = report.failures.first().map_or(String::new(), |f| {
            one_line(&format!("{}/{}: {}", f.namespace, f.key, f.reason))
        });
        note(&format!(
            "error: {} records were refused by the target; first: {first}",
            report.failed
        ));
        return Ok(USAGE);
    }
    Ok(OK)
}

/// The report for people: one summary line, then one line per failure.
fn human(r: &MigrateReport) -> String {
    let mut lines = vec![format!(
        "{} {} records ({} bytes) in {:.2}s; scanned {}, skipped {}, failed {}{}",
        if r.dry_run { "would copy" } else { "copied" },
        r.copied,
        r.bytes,
        r.elapsed.as_secs_f64(),
        r.scanned,
        r.skipped,
        r.failed,
        if r.dry_run {
            "; dry run, nothing was written"
        } else {
            ""
        }
    )];
    for f in &r.failures {
        lines.push(one_line(&format!(
            "failed: {}/{}: {}",
            f.namespace, f.key, f.reason
        )));
    }
    lines.join("\n")
}
