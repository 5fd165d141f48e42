//! `migrate_store` between every ordered pair of backends (issue 8): a
//! fixed data set — every value type, user metadata, content types, TTLs,
//! two namespaces of `KV_MATRIX_KEYS` keys each (default 2,500: 5,000 keys
//! in all, pages of 500) — is migrated from each
//! backend into a fresh store of every other one, and every record field is
//! compared.
//!
//! Stores are opened through the facade's config, as an application would.
//! PostgreSQL and S3 need `KV_TEST_POSTGRES_URL` and `KV_TEST_S3_ENDPOINT` /
//! `KV_TEST_S3_BUCKET` (set by `./scripts/test.sh`); without them those
//! backends are skipped with a message, and under `CI=true` the test fails.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dataknobs_kv::migrate::{migrate_store, MigrateOptions, Namespaces};
use dataknobs_kv::{open, BackendKind, Entry, KVStore, SetOptions, StoreConfig, Value, ValueType};
use serde_json::json;

/// Keys per namespace (`KV_MATRIX_KEYS`, default 2,500).
fn per_namespace() -> usize {
    std::env::var("KV_MATRIX_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2500)
}
const NAMESPACES: [&str; 2] = ["alpha", "beta"];

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A service-backed backend's settings, or why it is skipped.
fn service(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(!ci(), "{var} is not set and CI=true: {what} is required");
            eprintln!(
                "migrate matrix: {what} skipped: {var} is not set (./scripts/test.sh sets it)"
            );
            None
        }
    }
}

static INSTANCE: AtomicU32 = AtomicU32::new(0);

/// Opens a fresh, empty store of `kind` (unique table, prefix or folder).
async fn fresh(kind: BackendKind, dir: &std::path::Path) -> Arc<dyn KVStore> {
    let n = INSTANCE.fetch_add(1, Ordering::Relaxed);
    let unique = format!("mm_{}_{n}", std::process::id());
    let mut config = StoreConfig::default();
    config.store.backend = Some(kind);
    config.store.namespace = NAMESPACES[0].into();
    match kind {
        BackendKind::Memory => {}
        BackendKind::Engine => config.engine.path = dir.join(&unique),
        BackendKind::Sqlite => config.sqlite.path = dir.join(format!("{unique}.db")),
        BackendKind::Postgres => {
            let url = std::env::var("KV_TEST_POSTGRES_URL").unwrap();
            config.postgres.url = Some(dataknobs_kv::config::Secret::new(url));
            config.postgres.table = unique;
        }
        BackendKind::S3 => {
            config.s3.endpoint = Some(std::env::var("KV_TEST_S3_ENDPOINT").unwrap());
            config.s3.bucket = std::env::var("KV_TEST_S3_BUCKET").unwrap();
            config.s3.prefix = unique;
            config.s3.region = Some("us-east-1".into());
        }
    }
    open(&config)
        .await
        .unwrap_or_else(|e| panic!("opening {kind}: {e}"))
}

/// The value, options and kind of key number `i`.
fn record(i: usize) -> (String, Value, SetOptions) {
    let meta = json!({"i": i, "group": format!("g{}", i % 7), "tags": ["x", i % 3]});
    let plain = SetOptions::new().metadata_json(meta.clone()).unwrap();
    match i % 10 {
        0 => (
            format!("str.{i:05}"),
            Value::from(format!("value {i} é")),
            plain,
        ),
        1 => (format!("int.{i:05}"), Value::Int(i as i64 * -7919), plain),
        2 => (format!("float.{i:05}"), Value::Float(i as f64 / 3.0), plain),
        3 => (format!("bool.{i:05}"), Value::Bool(i % 4 == 3), plain),
        4 => (
            format!("json.{i:05}"),
            Value::Json(json!({"n": i, "list": [1, 2.5, null, "s"], "nested": {"ok": true}})),
            plain,
        ),
        5 => (
            format!("bytes.{i:05}"),
            Value::Bytes(
                (0..(i % 300) as u32)
                    .map(|b| (b * 31 % 256) as u8)
                    .collect(),
            ),
            plain,
        ),
        6 => (
            format!("doc.{i:05}"),
            Value::Bytes(format!("%PDF-1.7 {i}").into_bytes()),
            SetOptions::document("application/pdf")
                .metadata_json(meta)
                .unwrap(),
        ),
        7 => (
            format!("img.{i:05}"),
            Value::Bytes(vec![0x89, b'P', b'N', b'G', (i % 256) as u8]),
            SetOptions::image("image/png"),
        ),
        // Expires in an hour: migrated with its absolute expiry.
        8 => (
            format!("ttl.{i:05}"),
            Value::from(format!("session {i}")),
            plain.ttl(Duration::from_secs(3600)),
        ),
        _ => (
            format!("null.{i:05}"),
            Value::Null,
            SetOptions::new().value_type(ValueType::Custom("nothing".into())),
        ),
    }
}

/// Writes the data set, plus 20 keys that expire at once (never migrated),
/// eight writers at a time (an object store answers each in a round trip).
async fn fill(store: Arc<dyn KVStore>) {
    let writers = (0..8).map(|w| {
        let store = Arc::clone(&store);
        async move {
            for ns in NAMESPACES {
                let handle = store.namespace(ns).unwrap();
                for i in (w..per_namespace()).step_by(8) {
                    let (key, value, options) = record(i);
                    handle.set_with(&key, value, options).await.unwrap();
                }
            }
        }
    });
    futures_util::future::join_all(writers).await;
    for ns in NAMESPACES {
        let handle = store.namespace(ns).unwrap();
        for i in 0..10 {
            handle
                .set_with(
                    &format!("short.{i}"),
                    Value::Int(i),
                    SetOptions::new().ttl(Duration::from_millis(300)),
                )
                .await
                .unwrap();
        }
    }
}

/// Every live entry of every namespace, by namespace then key.
async fn snapshot(store: &dyn KVStore) -> BTreeMap<String, Vec<Entry>> {
    let mut out = BTreeMap::new();
    for ns in NAMESPACES {
        let handle = store.namespace(ns).unwrap();
        let mut entries = Vec::new();
        let mut cursor = None;
        loop {
            let page = handle.scan("**", cursor.as_deref(), 1000).await.unwrap();
            entries.extend(page.entries);
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        out.insert(ns.to_owned(), entries);
    }
    out
}

fn compare(from: BackendKind, to: BackendKind, want: &[Entry], got: &[Entry]) {
    assert_eq!(got.len(), want.len(), "{from} → {to}: record count");
    for (w, g) in want.iter().zip(got) {
        let ctx = format!("{from} → {to}: {}", w.key);
        let (ws, gs) = (&w.metadata.system, &g.metadata.system);
        assert_eq!(g.key, w.key, "{ctx}: key");
        assert_eq!(g.value, w.value, "{ctx}: value");
        assert_eq!(gs.value_type, ws.value_type, "{ctx}: value type");
        assert_eq!(gs.content_type, ws.content_type, "{ctx}: content type");
        assert_eq!(gs.created_at, ws.created_at, "{ctx}: created_at");
        assert_eq!(gs.updated_at, ws.updated_at, "{ctx}: updated_at");
        assert_eq!(gs.expires_at, ws.expires_at, "{ctx}: expires_at");
        assert_eq!(gs.size, ws.size, "{ctx}: size");
        assert_eq!(gs.checksum, ws.checksum, "{ctx}: checksum");
        assert_eq!(g.metadata.user, w.metadata.user, "{ctx}: user metadata");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrate_between_every_pair_of_backends() {
    let dir = tempfile::tempdir().unwrap();
    let mut kinds = vec![
        BackendKind::Memory,
        BackendKind::Engine,
        BackendKind::Sqlite,
    ];
    if service("KV_TEST_POSTGRES_URL", "PostgreSQL").is_some() {
        kinds.push(BackendKind::Postgres);
    }
    if service("KV_TEST_S3_ENDPOINT", "S3").is_some()
        && service("KV_TEST_S3_BUCKET", "S3").is_some()
    {
        kinds.push(BackendKind::S3);
    }

    // One filled source per backend, written concurrently.
    let mut sources = Vec::new();
    for &kind in &kinds {
        sources.push((kind, fresh(kind, dir.path()).await));
    }
    let fills = sources.iter().map(|(_, s)| {
        let s = Arc::clone(s);
        fill(s)
    });
    futures_util::future::join_all(fills).await;
    // Let the short-lived keys expire: they must not be migrated.
    tokio::time::sleep(Duration::from_millis(400)).await;

    let mut snapshots = Vec::new();
    for (kind, store) in &sources {
        let snap = snapshot(&**store).await;
        assert_eq!(
            snap.values().map(Vec::len).sum::<usize>(),
            NAMESPACES.len() * per_namespace(),
            "{kind}: data set size"
        );
        snapshots.push(snap);
    }

    // Every ordered pair, each source's pairs in parallel with the others'.
    let runs = sources.iter().zip(snapshots).map(|((from, source), want)| {
        let (from, source) = (*from, Arc::clone(source));
        let targets = kinds.clone();
        let dir = dir.path().to_owned();
        async move {
            for to in targets.into_iter().filter(|&t| t != from) {
                let target = fresh(to, &dir).await;
                let report = migrate_store(
                    &*source,
                    &*target,
                    MigrateOptions {
                        namespaces: Namespaces::All,
                        batch_size: 500,
                        ..MigrateOptions::default()
                    },
                    |_| {},
                )
                .await
                .unwrap_or_else(|e| panic!("{from} → {to}: {e}"));
                assert_eq!(
                    (report.copied, report.failed, report.skipped),
                    ((NAMESPACES.len() * per_namespace()) as u64, 0, 0),
                    "{from} → {to}: {report:?}"
                );
                let got = snapshot(&*target).await;
                for ns in NAMESPACES {
                    compare(from, to, &want[ns], &got[ns]);
                }
                eprintln!(
                    "migrate matrix: {from} → {to}: {} records in {:.2?}",
                    report.copied, report.elapsed
                );
                target.close().await.unwrap();
            }
        }
    });
    futures_util::future::join_all(runs).await;
    for (_, s) in sources {
        s.close().await.unwrap();
    }
}
