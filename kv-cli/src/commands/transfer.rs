//! `export` and `import`: JSON Lines (whole records) and CSV files, over
//! `dataknobs_kv::transfer`.
//!
//! An export to a file is written to a temporary file beside it and
//! renamed into place when complete, so a failed export leaves no partial
//! file. An import checks its whole input before writing anything (JSON
//! Lines with `check_jsonl`, CSV with a dry run into an in-memory store),
//! so a malformed file changes nothing; stdin is spooled to a temporary
//! file first so it can be checked too.

use std::fs::File;
use std::io::{BufReader, BufWriter, Seek, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dataknobs_kv::transfer::{
    check_jsonl, export_csv, export_jsonl, import_csv, import_jsonl, ExportOptions,
    ImportFileOptions, TransferReport,
};
use dataknobs_kv::{Error, KVStore, KeyRules, Namespaces, Pattern, Store};
use serde_json::json;

use crate::cli::{ExportArgs, Format, ImportArgs, NamespaceSelection};
use crate::error::{CliError, OK, USAGE};
use crate::output::{note, Printer};
use crate::progress::Progress;
use crate::secrets::one_line;

use super::migrate::overwrite;

/// The format a file name implies: `.csv`, or `.jsonl` / `.ndjson` /
/// `.json`.
fn format_of(path: &Path) -> Option<Format> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "csv" => Some(Format::Csv),
        "jsonl" | "ndjson" | "json" => Some(Format::Jsonl),
        _ => None,
    }
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Jsonl => "jsonl",
        Format::Csv => "csv",
    }
}

/// The namespaces `--all-namespaces` / `--namespaces` select.
pub fn selection(s: &NamespaceSelection) -> Namespaces {
    if s.all_namespaces {
        Namespaces::All
    } else if s.namespaces.is_empty() {
        Namespaces::Current
    } else {
        Namespaces::Only(s.namespaces.clone())
    }
}

/// `export`: records to a file or stdout.
pub async fn export(store: &dyn KVStore, a: ExportArgs, p: Printer) -> Result<u8, CliError> {
    let format = a
        .format
        .or_else(|| a.output.as_deref().and_then(format_of))
        .unwrap_or(Format::Jsonl);
    let namespaces = selection(&a.namespaces);
    if format == Format::Csv && namespaces != Namespaces::Current {
        return Err(CliError::usage(
            "a CSV export holds one namespace: use --namespace NS instead of --all-namespaces / --namespaces, or --format jsonl",
        ));
    }
    // Bad input is refused before any file is created.
    Pattern::new(&a.pattern)?;
    for ns in &a.namespaces.namespaces {
        KeyRules::default().normalize_namespace(ns)?;
    }
    let options = ExportOptions {
        pattern: a.pattern.clone(),
        namespaces,
        batch_size: usize::try_from(a.batch_size).unwrap_or(usize::MAX),
    };
    let progress = Progress::new("exporting", None);
    let report = match &a.output {
        Some(path) => {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            let tmp = tempfile::NamedTempFile::new_in(dir)
                .map_err(|e| CliError::output_file(path, &e))?;
            let report = write_export(store, format, tmp.as_file(), &options, &progress).await;
            progress.finish();
            let report = report?;
            tmp.persist(path)
                .map_err(|e| CliError::output_file(path, &e.error))?;
            report
        }
        None => {
            let stdout = PipeWatch::new(std::io::stdout());
            let closed = stdout.closed.clone();
            let report = write_export(store, format, stdout, &options, &progress).await;
            progress.finish();
            match report {
                // The reader went away (`kv export | head`): stop quietly.
                Err(_) if closed.load(Ordering::Relaxed) => return Err(CliError::broken_pipe()),
                other => other?,
            }
        }
    };
    let summary = format!(
        "exported {} records ({} bytes) in {:.2}s",
        report.records,
        report.bytes,
        report.elapsed.as_secs_f64()
    );
    match &a.output {
        Some(path) => p.answer(
            json!({
                "records": report.records,
                "bytes": report.bytes,
                "elapsed_ms": report.elapsed.as_millis() as u64,
                "format": format_name(format),
                "output": path.display().to_string(),
            }),
            Some(&format!("{summary} to {}", path.display())),
        )?,
        // Stdout holds the data: the summary goes to a terminal's stderr only.
        None => {
            if !p.json && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                note(&summary);
            }
        }
    }
    Ok(OK)
}

/// A writer that remembers whether its reader went away, because the
/// export functions wrap write errors in ways that hide their kind.
struct PipeWatch<W> {
    inner: W,
    closed: Arc<AtomicBool>,
}

impl<W> PipeWatch<W> {
    fn new(inner: W) -> Self {
        PipeWatch {
            inner,
            closed: Arc::new(AtomicBool::new(false)),
        }
    }

    fn note<T>(&self, r: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &r {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                self.closed.store(true, Ordering::Relaxed);
            }
        }
        r
    }
}

impl<W: Write> Write for PipeWatch<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = self.inner.write(buf);
        self.note(r)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let r = self.inner.flush();
        self.note(r)
    }
}

async fn write_export<W: Write + Send>(
    store: &dyn KVStore,
    format: Format,
    out: W,
    options: &ExportOptions,
    progress: &Progress,
) -> Result<TransferReport, Error> {
    let out = BufWriter::new(out);
    let tick = |n| progress.set(n);
    match format {
        Format::Jsonl => export_jsonl(store, out, options, tick).await,
        Format::Csv => export_csv(store, out, options, tick).await,
    }
}

/// `import [FILE]`: records from a file or stdin, checked first.
pub async fn import(store: &dyn KVStore, a: ImportArgs, p: Printer) -> Result<u8, CliError> {
    let (mut file, name, implied) = match &a.input {
        Some(path) if path.as_os_str() != "-" => {
            let file = File::open(path).map_err(|e| CliError::input_file(path, &e))?;
            if file.metadata().is_ok_and(|m| m.is_dir()) {
                return Err(CliError::usage(format!(
                    "cannot read {}: it is a directory",
                    path.display()
                )));
            }
            (file, path.display().to_string(), format_of(path))
        }
        _ => (spool_stdin()?, "stdin".to_owned(), None),
    };
    let format = a.format.or(implied).unwrap_or(Format::Jsonl);
    let options = ImportFileOptions {
        overwrite: overwrite(a.overwrite),
        dry_run: a.dry_run,
        batch_size: usize::try_from(a.batch_size).unwrap_or(usize::MAX),
    };

    // Check everything before writing anything.
    let malformed = |e: Error| match e {
        Error::InvalidArgument { argument, reason } if argument == "input" => CliError::usage(
            format!("malformed import file {name}: {reason}; nothing was imported"),
        ),
        other => CliError::from(other),
    };
    let total = match format {
        Format::Jsonl => check_jsonl(BufReader::new(&file)).map_err(malformed)?,
        Format::Csv => {
            let check = ImportFileOptions {
                dry_run: true,
                ..options
            };
            let r = import_csv(&Store::memory(), BufReader::new(&file), &check, |_| {})
                .await
                .map_err(malformed)?;
            r.records + r.skipped + r.failed
        }
    };
    file.rewind()
        .map_err(|e| CliError::io(&format!("reading {name}"), &e))?;

    let progress = Progress::new(
        if a.dry_run { "checking" } else { "importing" },
        Some(total),
    );
    let tick = |n| progress.set(n);
    let input = BufReader::new(&file);
    let result = match format {
        Format::Jsonl => import_jsonl(store, input, &options, tick).await,
        Format::Csv => import_csv(store, input, &options, tick).await,
    };
    progress.finish();
    let report = result?;

    let verb = if a.dry_run {
        "would import"
    } else {
        "imported"
    };
    let mut text = format!(
        "{verb} {} records ({} bytes) from {name} in {:.2}s; skipped {}, failed {}",
        report.records,
        report.bytes,
        report.elapsed.as_secs_f64(),
        report.skipped,
        report.failed
    );
    if a.dry_run {
        text.push_str("; dry run, nothing was written");
    }
    p.answer(
        json!({
            "records": report.records,
            "skipped": report.skipped,
            "failed": report.failed,
            "failures": report.failures,
            "bytes": report.bytes,
            "elapsed_ms": report.elapsed.as_millis() as u64,
            "dry_run": a.dry_run,
            "format": format_name(format),
            "input": name,
        }),
        Some(&text),
    )?;
    if report.failed > 0 {
        note(&format!(
            "error: {} records were refused by the store; first: {}",
            report.failed,
            one_line(report.failures.first().map_or("", String::as_str))
        ));
        return Ok(USAGE);
    }
    Ok(OK)
}

/// Copies stdin to an anonymous temporary file, so it can be read twice.
fn spool_stdin() -> Result<File, CliError> {
    let mut file = tempfile::tempfile().map_err(|e| CliError::io("buffering stdin", &e))?;
    std::io::copy(&mut std::io::stdin().lock(), &mut file)
        .map_err(|e| CliError::io("reading stdin", &e))?;
    file.rewind()
        .map_err(|e| CliError::io("buffering stdin", &e))?;
    Ok(file)
}
