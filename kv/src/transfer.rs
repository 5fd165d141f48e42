//! Export and import: JSON Lines of whole records (for backups and moving
//! data between machines) and CSV of `key,type,value` (for people and
//! spreadsheets).
//!
//! # JSON Lines
//!
//! One object per line, fields always in this order:
//!
//! ```json
//! {"namespace":"default","key":"app.name","value":"demo","type":"string","encoding":"string","metadata":{"owner":"ann"},"content_type":null,"created_at":1704067200000,"updated_at":1704067200000,"expires_at":null}
//! ```
//!
//! | field | meaning |
//! |---|---|
//! | `namespace`, `key` | where the record lives |
//! | `value` | the value as JSON: strings, numbers, booleans, `null` and JSON as themselves; bytes as standard base64; a float that is not finite as `"NaN"`, `"inf"` or `"-inf"` |
//! | `type` | the value type: `string`, `number`, `boolean`, `json`, `binary`, `document`, `image` or `custom:NAME` |
//! | `encoding` | which [`Value`] variant `value` holds: `null`, `bool`, `int`, `float`, `string`, `json` or `bytes` |
//! | `metadata` | the user metadata object |
//! | `content_type` | the content type, or `null` |
//! | `created_at`, `updated_at` | milliseconds since the Unix epoch |
//! | `expires_at` | milliseconds since the Unix epoch, or `null` |
//!
//! Importing a file keeps every field (versions are the target's own), so
//! export → import → export gives the same bytes.
//!
//! # CSV
//!
//! A header `key,type,value`, then one row per key of one namespace. `type`
//! is the encoding above (`string`, `int`, `float`, `bool`, `null`, `json`,
//! `bytes`); `value` is the text of the value (`json` compact, `bytes`
//! base64). Importing CSV sets plain values: metadata and timestamps are
//! not part of the format.

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use kv_core::migrate::{ImportOptions, ImportOutcome, Namespaces, Overwrite};
use kv_core::{
    Entry, Error, KVStore, Metadata, Result, SystemMetadata, Timestamp, UserMetadata, Value,
    ValueType,
};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Options of [`export_jsonl`] and [`export_csv`].
#[derive(Debug, Clone, PartialEq)]
pub struct ExportOptions {
    /// Export only keys matching this pattern (default `**`).
    pub pattern: String,
    /// Which namespaces (JSON Lines only; CSV exports the store handle's
    /// namespace).
    pub namespaces: Namespaces,
    /// Records read per page.
    pub batch_size: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            pattern: "**".into(),
            namespaces: Namespaces::Current,
            batch_size: 1000,
        }
    }
}

/// Options of [`import_jsonl`] and [`import_csv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportFileOptions {
    /// What to do with keys the store already holds.
    pub overwrite: Overwrite,
    /// Read and check everything, write nothing.
    pub dry_run: bool,
    /// Records written per call to the store.
    pub batch_size: usize,
}

impl Default for ImportFileOptions {
    fn default() -> Self {
        ImportFileOptions {
            overwrite: Overwrite::Always,
            dry_run: false,
            batch_size: 1000,
        }
    }
}

/// What an export or import did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TransferReport {
    /// Records written (exported, or imported).
    pub records: u64,
    /// Records an import skipped on purpose (exists, not newer, expired).
    pub skipped: u64,
    /// Records the store refused, with `namespace/key: reason` (the first
    /// 1,000).
    pub failures: Vec<String>,
    /// Number of refused records.
    pub failed: u64,
    /// Value bytes moved.
    pub bytes: u64,
    /// How long it took.
    pub elapsed: Duration,
}

/// One JSON Lines record, fields in file order.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    namespace: String,
    key: String,
    value: serde_json::Value,
    #[serde(rename = "type")]
    value_type: String,
    encoding: String,
    metadata: UserMetadata,
    content_type: Option<String>,
    created_at: i64,
    updated_at: i64,
    expires_at: Option<i64>,
}

/// `value` as JSON and its encoding tag.
fn value_to_json(value: &Value) -> (serde_json::Value, &'static str) {
    use serde_json::Value as J;
    let json = match value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => J::Number(n),
            None if f.is_nan() => J::from("NaN"),
            None if *f > 0.0 => J::from("inf"),
            None => J::from("-inf"),
        },
        Value::String(s) => J::from(s.as_str()),
        Value::Json(j) => j.clone(),
        Value::Bytes(b) => J::from(B64.encode(b)),
    };
    (json, value.kind())
}

/// The value an encoding tag and JSON stand for.
fn value_from_json(encoding: &str, json: serde_json::Value) -> std::result::Result<Value, String> {
    use serde_json::Value as J;
    Ok(match (encoding, json) {
        ("null", J::Null) => Value::Null,
        ("bool", J::Bool(b)) => Value::Bool(b),
        ("int", J::Number(n)) => Value::Int(
            n.as_i64()
                .ok_or_else(|| format!("{n} is not a 64-bit integer"))?,
        ),
        ("float", J::Number(n)) => {
            Value::Float(n.as_f64().ok_or_else(|| format!("{n} is not a number"))?)
        }
        ("float", J::String(s)) => Value::Float(match s.as_str() {
            "NaN" => f64::NAN,
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            _ => return Err(format!("{s:?} is not a float")),
        }),
        ("string", J::String(s)) => Value::String(s),
        ("json", j) => Value::Json(j),
        ("bytes", J::String(s)) => {
            Value::Bytes(B64.decode(s).map_err(|e| format!("bad base64: {e}"))?)
        }
        ("null" | "bool" | "int" | "float" | "string" | "bytes", j) => {
            return Err(format!("{j} is not a valid {encoding} value"))
        }
        (other, _) => {
            return Err(format!(
                "unknown encoding {other:?} (null, bool, int, float, string, json or bytes)"
            ))
        }
    })
}

fn line_of(namespace: &str, entry: &Entry) -> Line {
    let (value, encoding) = value_to_json(&entry.value);
    let s = &entry.metadata.system;
    Line {
        namespace: namespace.to_owned(),
        key: entry.key.clone(),
        value,
        value_type: s.value_type.name().into_owned(),
        encoding: encoding.to_owned(),
        metadata: entry.metadata.user.clone(),
        content_type: s.content_type.clone(),
        created_at: s.created_at.as_millis(),
        updated_at: s.updated_at.as_millis(),
        expires_at: s.expires_at.map(Timestamp::as_millis),
    }
}

fn entry_of(line: Line) -> std::result::Result<(String, Entry), String> {
    let value = value_from_json(&line.encoding, line.value)?;
    let value_type: ValueType = line.value_type.parse().map_err(|e: Error| e.to_string())?;
    let system = SystemMetadata {
        created_at: Timestamp::from_millis(line.created_at),
        updated_at: Timestamp::from_millis(line.updated_at),
        expires_at: line.expires_at.map(Timestamp::from_millis),
        version: 0,
        size: value.payload_len() as u64,
        checksum: 0,
        content_type: line.content_type,
        value_type,
        accessed_at: None,
    };
    Ok((
        line.namespace,
        Entry {
            key: line.key,
            value,
            metadata: Metadata {
                system,
                user: line.metadata,
            },
        },
    ))
}

fn io_err(what: &str, e: std::io::Error) -> Error {
    Error::io(what.to_owned(), e)
}

async fn namespaces_of(store: &dyn KVStore, which: &Namespaces) -> Result<Vec<String>> {
    let mut list = match which {
        Namespaces::Current => vec![store.current_namespace().to_owned()],
        Namespaces::All => store.list_namespaces().await?,
        Namespaces::Only(list) => list.clone(),
    };
    list.sort();
    list.dedup();
    Ok(list)
}

/// Walks the live records of `store` matching `options`, a page at a time.
async fn for_each_page(
    store: &dyn KVStore,
    options: &ExportOptions,
    namespaces: &Namespaces,
    mut page: impl FnMut(&str, Vec<Entry>) -> Result<()> + Send,
) -> Result<()> {
    if options.batch_size == 0 {
        return Err(Error::invalid_argument("batch_size", "must be at least 1"));
    }
    for ns in namespaces_of(store, namespaces).await? {
        let handle = store.namespace(&ns)?;
        let mut cursor: Option<String> = None;
        loop {
            let got = handle
                .scan(&options.pattern, cursor.as_deref(), options.batch_size)
                .await?;
            if got.entries.is_empty() {
                break;
            }
            page(&ns, got.entries)?;
            match got.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
    }
    Ok(())
}

/// Writes the live records of `store` matching `options` to `out` as JSON
/// Lines, namespace by namespace in key order. `progress` gets the number
/// of records written so far after every page.
///
/// `out` is written synchronously; give it a buffered file or stdout.
pub async fn export_jsonl<W: Write + Send>(
    store: &dyn KVStore,
    mut out: W,
    options: &ExportOptions,
    mut progress: impl FnMut(u64) + Send,
) -> Result<TransferReport> {
    let started = Instant::now();
    let mut report = TransferReport::default();
    for_each_page(store, options, &options.namespaces, |ns, entries| {
        for entry in &entries {
            serde_json::to_writer(&mut out, &line_of(ns, entry))
                .map_err(|e| io_err("writing the export", std::io::Error::from(e)))?;
            out.write_all(b"\n")
                .map_err(|e| io_err("writing the export", e))?;
            report.records += 1;
            report.bytes += entry.metadata.system.size;
        }
        progress(report.records);
        Ok(())
    })
    .await?;
    out.flush().map_err(|e| io_err("writing the export", e))?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Writes the live records of `store`'s namespace matching `options` as
/// CSV (`key,type,value`).
pub async fn export_csv<W: Write + Send>(
    store: &dyn KVStore,
    out: W,
    options: &ExportOptions,
    mut progress: impl FnMut(u64) + Send,
) -> Result<TransferReport> {
    let started = Instant::now();
    let mut report = TransferReport::default();
    let mut csv = csv::Writer::from_writer(out);
    let csv_err = |e: csv::Error| {
        // Keep the I/O error (and its kind: a closed pipe stays a closed
        // pipe) when there is one.
        let text = e.to_string();
        let io = match e.into_kind() {
            csv::ErrorKind::Io(io) => io,
            _ => std::io::Error::other(text),
        };
        Error::io("writing the CSV export", io)
    };
    csv.write_record(["key", "type", "value"])
        .map_err(csv_err)?;
    for_each_page(store, options, &Namespaces::Current, |_, entries| {
        for entry in &entries {
            let text = match &entry.value {
                Value::Bytes(b) => B64.encode(b),
                Value::Json(j) => j.to_string(),
                Value::Null => String::new(),
                other => match value_to_json(other).0 {
                    serde_json::Value::String(s) => s,
                    j => j.to_string(),
                },
            };
            csv.write_record([entry.key.as_str(), entry.value.kind(), text.as_str()])
                .map_err(csv_err)?;
            report.records += 1;
            report.bytes += entry.metadata.system.size;
        }
        progress(report.records);
        Ok(())
    })
    .await?;
    csv.flush()
        .map_err(|e| io_err("writing the CSV export", e))?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// A malformed line of an import file.
fn bad_line(format: &str, line: u64, reason: impl std::fmt::Display) -> Error {
    Error::invalid_argument("input", format!("{format} line {line}: {reason}"))
}

/// Checks every line of a JSON Lines export without writing anything;
/// returns the number of records. Use it before [`import_jsonl`] to make
/// sure a malformed file changes nothing.
pub fn check_jsonl<R: BufRead>(input: R) -> Result<u64> {
    let mut records = 0;
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|e| io_err("reading the import", e))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line =
            serde_json::from_str(&line).map_err(|e| bad_line("JSON", i as u64 + 1, e))?;
        entry_of(parsed).map_err(|e| bad_line("JSON", i as u64 + 1, e))?;
        records += 1;
    }
    Ok(records)
}

/// Tallies import outcomes into `report`.
fn tally(
    report: &mut TransferReport,
    ns: &str,
    batch: &[(String, u64)],
    outcomes: Vec<ImportOutcome>,
) {
    for ((key, size), outcome) in batch.iter().zip(outcomes) {
        match outcome {
            ImportOutcome::Written => {
                report.records += 1;
                report.bytes += size;
            }
            ImportOutcome::Skipped(_) => report.skipped += 1,
            ImportOutcome::Failed(e) => {
                report.failed += 1;
                if report.failures.len() < kv_core::migrate::MAX_REPORTED_FAILURES {
                    report.failures.push(format!("{ns}/{key}: {e}"));
                }
            }
        }
    }
}

/// Imports a JSON Lines export into `store`, keeping every record's
/// namespace, types, metadata and timestamps. `progress` gets the number of
/// lines read so far after every batch.
///
/// A malformed line stops the import with [`Error::InvalidArgument`]
/// naming the line; the lines before it have been imported (run
/// [`check_jsonl`] first to rule that out). Records the store refuses are
/// counted in the report and the rest go on.
pub async fn import_jsonl<R: BufRead + Send>(
    store: &dyn KVStore,
    input: R,
    options: &ImportFileOptions,
    mut progress: impl FnMut(u64) + Send,
) -> Result<TransferReport> {
    if options.batch_size == 0 {
        return Err(Error::invalid_argument("batch_size", "must be at least 1"));
    }
    let started = Instant::now();
    let import = ImportOptions {
        overwrite: options.overwrite,
        dry_run: options.dry_run,
    };
    let mut report = TransferReport::default();
    let mut batch_ns = String::new();
    let mut batch: Vec<Entry> = Vec::new();
    let mut read = 0u64;
    let mut lines = input.lines();
    let mut number = 0u64;
    loop {
        let next = lines.next();
        let parsed = match next {
            None => None,
            Some(line) => {
                number += 1;
                let line = line.map_err(|e| io_err("reading the import", e))?;
                if line.trim().is_empty() {
                    continue;
                }
                let parsed: Line =
                    serde_json::from_str(&line).map_err(|e| bad_line("JSON", number, e))?;
                Some(entry_of(parsed).map_err(|e| bad_line("JSON", number, e))?)
            }
        };
        let flush = match &parsed {
            None => true,
            Some((ns, _)) => *ns != batch_ns || batch.len() >= options.batch_size,
        };
        if flush && !batch.is_empty() {
            let sizes: Vec<(String, u64)> = batch
                .iter()
                .map(|e| (e.key.clone(), e.metadata.system.size))
                .collect();
            let outcomes = store
                .namespace(&batch_ns)?
                .import_entries(std::mem::take(&mut batch), import)
                .await?;
            tally(&mut report, &batch_ns, &sizes, outcomes);
            progress(read);
        }
        match parsed {
            None => break,
            Some((ns, entry)) => {
                read += 1;
                batch_ns = ns;
                batch.push(entry);
            }
        }
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Imports CSV rows (`key,type,value`, with that header) into `store`'s
/// namespace as plain sets. A malformed row stops the import with
/// [`Error::InvalidArgument`] naming the row; earlier rows have been
/// written.
pub async fn import_csv<R: std::io::Read + Send>(
    store: &dyn KVStore,
    input: R,
    options: &ImportFileOptions,
    mut progress: impl FnMut(u64) + Send,
) -> Result<TransferReport> {
    if options.batch_size == 0 {
        return Err(Error::invalid_argument("batch_size", "must be at least 1"));
    }
    let started = Instant::now();
    let now = Timestamp::now();
    let mut report = TransferReport::default();
    let mut reader = csv::Reader::from_reader(input);
    let headers = reader.headers().map_err(|e| bad_line("CSV", 1, e))?.clone();
    if headers.iter().collect::<Vec<_>>() != ["key", "type", "value"] {
        return Err(bad_line("CSV", 1, "the header must be `key,type,value`"));
    }
    let import = ImportOptions {
        overwrite: options.overwrite,
        dry_run: options.dry_run,
    };
    let ns = store.current_namespace().to_owned();
    let mut batch: Vec<Entry> = Vec::new();
    let mut rows = 0u64;
    let mut records = reader.records();
    loop {
        let row = records.next();
        let entry = match row {
            None => None,
            Some(row) => {
                let line = rows + 2;
                let row = row.map_err(|e| bad_line("CSV", line, e))?;
                if row.len() != 3 {
                    return Err(bad_line("CSV", line, "expected 3 fields: key,type,value"));
                }
                let value = csv_value(&row[1], &row[2]).map_err(|e| bad_line("CSV", line, e))?;
                rows += 1;
                Some(Entry {
                    key: row[0].to_owned(),
                    metadata: Metadata {
                        system: SystemMetadata {
                            created_at: now,
                            updated_at: now,
                            expires_at: None,
                            version: 0,
                            size: value.payload_len() as u64,
                            checksum: 0,
                            content_type: None,
                            value_type: value.default_type(),
                            accessed_at: None,
                        },
                        user: UserMetadata::new(),
                    },
                    value,
                })
            }
        };
        let done = entry.is_none();
        if let Some(e) = entry {
            batch.push(e);
        }
        if (done || batch.len() >= options.batch_size) && !batch.is_empty() {
            let sizes: Vec<(String, u64)> = batch
                .iter()
                .map(|e| (e.key.clone(), e.metadata.system.size))
                .collect();
            let outcomes = store
                .import_entries(std::mem::take(&mut batch), import)
                .await?;
            tally(&mut report, &ns, &sizes, outcomes);
            progress(rows);
        }
        if done {
            break;
        }
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// The value of a CSV row.
fn csv_value(kind: &str, text: &str) -> std::result::Result<Value, String> {
    Ok(match kind {
        "null" => Value::Null,
        "bool" => Value::Bool(
            text.parse()
                .map_err(|_| format!("{text:?} is not true or false"))?,
        ),
        "int" => Value::Int(
            text.parse()
                .map_err(|_| format!("{text:?} is not a 64-bit integer"))?,
        ),
        "float" => Value::Float(match text {
            "NaN" => f64::NAN,
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            _ => text
                .parse()
                .map_err(|_| format!("{text:?} is not a number"))?,
        }),
        "string" => Value::String(text.to_owned()),
        "json" => Value::Json(serde_json::from_str(text).map_err(|e| format!("bad JSON: {e}"))?),
        "bytes" => Value::Bytes(B64.decode(text).map_err(|e| format!("bad base64: {e}"))?),
        other => {
            return Err(format!(
                "unknown type {other:?} (null, bool, int, float, string, json or bytes)"
            ))
        }
    })
}
