//! Import of whole records and `migrate_store` (DESIGN §8).

use serde_json::json;

use crate::error::Error;
use crate::migrate::{
    migrate_store, ImportOptions, ImportOutcome, MigrateOptions, Namespaces, Overwrite,
    ResumePoint, SkipReason,
};
use crate::testing::{BackendFactory, Case, CaseResult, ConformanceOptions, Harness};
use crate::types::{Entry, SetOptions};
use crate::value::{Value, ValueType};
use crate::{KVStore, Store};

use super::{meta, secs};

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(import_keeps_every_value_type_timestamps_and_metadata),
        case!(import_overwrite_policies),
        case!(import_skips_expired_and_reports_refused_entries),
        case!(import_dry_run_writes_nothing),
        case!(import_later_entry_for_same_key_wins),
        case!(migrate_to_and_from_memory_keeps_records),
        case!(migrate_all_namespaces_pattern_and_resume),
    ]
}

/// Writes one key of every value type (with metadata, content types and a
/// TTL) through `store`.
async fn write_every_type(store: &dyn KVStore) -> crate::Result<()> {
    store.set("v.null", Value::Null).await?;
    store.set("v.bool", true.into()).await?;
    store.set("v.int", (-42i64).into()).await?;
    store.set("v.float", 2.5f64.into()).await?;
    store
        .set_with(
            "v.string",
            "héllo".into(),
            SetOptions::new()
                .ttl(secs(3600))
                .metadata(meta(json!({"owner": "ann", "tags": ["a", "b"]}))),
        )
        .await?;
    store
        .set(
            "v.json",
            Value::Json(json!({"a": [1, 2.5, null], "b": {"c": "d"}})),
        )
        .await?;
    store
        .set("v.bytes", Value::Bytes(vec![0, 1, 2, 255]))
        .await?;
    store
        .set_with(
            "v.doc",
            Value::Bytes(b"%PDF-1.7".to_vec()),
            SetOptions::document("application/pdf"),
        )
        .await?;
    store
        .set_with(
            "v.img",
            Value::Bytes(vec![0x89, b'P', b'N', b'G']),
            SetOptions::image("image/png"),
        )
        .await?;
    store
        .set_with(
            "v.custom",
            Value::Json(json!([1, 2])),
            SetOptions::new().value_type(ValueType::Custom("pair".into())),
        )
        .await?;
    Ok(())
}

/// Every live entry of `store`, in key order.
async fn all_entries(store: &dyn KVStore) -> crate::Result<Vec<Entry>> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.scan("**", cursor.as_deref(), 100).await?;
        out.extend(page.entries);
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

/// Fails unless `got` is `want` carried over: same key, value, types,
/// timestamps and user metadata (versions and access times are the
/// store's own).
fn same_record(want: &Entry, got: &Entry) -> CaseResult {
    let (w, g) = (&want.metadata.system, &got.metadata.system);
    ensure_eq!(got.key, want.key);
    ensure_eq!(got.value, want.value, "value of {}", want.key);
    ensure_eq!(g.value_type, w.value_type, "value type of {}", want.key);
    ensure_eq!(
        g.content_type,
        w.content_type,
        "content type of {}",
        want.key
    );
    ensure_eq!(g.created_at, w.created_at, "created_at of {}", want.key);
    ensure_eq!(g.updated_at, w.updated_at, "updated_at of {}", want.key);
    ensure_eq!(g.expires_at, w.expires_at, "expires_at of {}", want.key);
    ensure_eq!(g.size, w.size, "size of {}", want.key);
    ensure_eq!(g.checksum, w.checksum, "checksum of {}", want.key);
    ensure_eq!(
        got.metadata.user,
        want.metadata.user,
        "metadata of {}",
        want.key
    );
    Ok(())
}

fn written(outcomes: &[ImportOutcome]) -> usize {
    outcomes
        .iter()
        .filter(|o| matches!(o, ImportOutcome::Written))
        .count()
}

async fn import_keeps_every_value_type_timestamps_and_metadata(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    write_every_type(&h.store).await?;
    let source = all_entries(&h.store).await?;
    ensure_eq!(source.len(), 10);
    // Later, into another namespace: the timestamps must be the source's,
    // not the time of the import.
    h.clock.advance(secs(60));
    let copy = h.store.with_namespace("copy")?;
    let outcomes = copy
        .import_entries(source.clone(), ImportOptions::default())
        .await?;
    ensure_eq!(written(&outcomes), 10, "outcomes {outcomes:?}");
    let copied = all_entries(&copy).await?;
    ensure_eq!(copied.len(), source.len());
    for (want, got) in source.iter().zip(&copied) {
        same_record(want, got)?;
        ensure_eq!(got.metadata.system.version, 1, "version of {}", got.key);
        ensure_eq!(copy.get(&want.key).await?, Some(want.value.clone()));
    }
    // The absolute expiry still counts: 3600 s after the write, minus the
    // 60 s that passed before the import.
    ensure_eq!(
        copy.ttl("v.string").await?,
        crate::types::Ttl::Expires(secs(3540))
    );
    Ok(())
}

async fn import_overwrite_policies(f: &dyn BackendFactory, _: &ConformanceOptions) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store.set("k", "old".into()).await?;
    let old = h.store.get_entry("k").await?;
    let Some(old) = old else {
        return Err(crate::testing::Failure("k not written".into()));
    };
    let mut older = old.clone();
    older.value = "older".into();
    older.metadata.system.updated_at = old.metadata.system.updated_at.saturating_sub(secs(5));
    let mut newer = old.clone();
    newer.value = "newer".into();
    newer.metadata.system.updated_at = old.metadata.system.updated_at.saturating_add(secs(5));
    let options = |overwrite| ImportOptions {
        overwrite,
        dry_run: false,
    };

    let o = h
        .store
        .import_entries(vec![newer.clone()], options(Overwrite::Never))
        .await?;
    ensure!(
        matches!(o[..], [ImportOutcome::Skipped(SkipReason::Exists)]),
        "Never: {o:?}"
    );
    ensure_eq!(h.store.get("k").await?, Some(Value::from("old")));

    let o = h
        .store
        .import_entries(vec![older.clone()], options(Overwrite::IfNewer))
        .await?;
    ensure!(
        matches!(o[..], [ImportOutcome::Skipped(SkipReason::NotNewer)]),
        "IfNewer with an older record: {o:?}"
    );
    let o = h
        .store
        .import_entries(vec![old.clone()], options(Overwrite::IfNewer))
        .await?;
    ensure!(
        matches!(o[..], [ImportOutcome::Skipped(SkipReason::NotNewer)]),
        "IfNewer with the same updated_at: {o:?}"
    );
    ensure_eq!(h.store.get("k").await?, Some(Value::from("old")));

    let o = h
        .store
        .import_entries(vec![newer.clone()], options(Overwrite::IfNewer))
        .await?;
    ensure!(matches!(o[..], [ImportOutcome::Written]), "IfNewer: {o:?}");
    ensure_eq!(h.store.get("k").await?, Some(Value::from("newer")));
    let e = h.store.get_entry("k").await?;
    ensure_eq!(
        e.map(|e| (e.metadata.system.version, e.metadata.system.updated_at)),
        Some((2, newer.metadata.system.updated_at))
    );

    let o = h
        .store
        .import_entries(vec![older.clone()], options(Overwrite::Always))
        .await?;
    ensure!(matches!(o[..], [ImportOutcome::Written]), "Always: {o:?}");
    ensure_eq!(h.store.get("k").await?, Some(Value::from("older")));

    // Never still writes a key the target does not hold (or holds expired).
    let mut fresh = older.clone();
    fresh.key = "fresh".into();
    h.store
        .set_with("gone", 1.into(), SetOptions::new().ttl(secs(1)))
        .await?;
    h.clock.advance(secs(2));
    let mut gone = older;
    gone.key = "gone".into();
    let o = h
        .store
        .import_entries(vec![fresh, gone], options(Overwrite::Never))
        .await?;
    ensure_eq!(written(&o), 2, "{o:?}");
    ensure_eq!(h.store.get("gone").await?, Some(Value::from("older")));
    Ok(())
}

async fn import_skips_expired_and_reports_refused_entries(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store
        .set_with("a", "x".into(), SetOptions::new().ttl(secs(10)))
        .await?;
    h.store.set("b", "y".into()).await?;
    let entries = all_entries(&h.store).await?;
    let target = h.store.with_namespace("t")?;
    h.clock.advance(secs(11));
    let mut bad_key = entries[1].clone();
    bad_key.key = "bad..key".into();
    let mut bad_type = entries[1].clone();
    bad_type.key = "bad.type".into();
    bad_type.metadata.system.value_type = ValueType::Boolean;
    let mut reserved = entries[1].clone();
    reserved.key = "reserved".into();
    reserved.metadata.user.insert("ttl".into(), json!(5));
    let mut input = entries.clone();
    input.extend([bad_key, bad_type, reserved]);
    let o = target
        .import_entries(input, ImportOptions::default())
        .await?;
    ensure_eq!(o.len(), 5);
    ensure!(
        matches!(o[0], ImportOutcome::Skipped(SkipReason::Expired)),
        "expired: {:?}",
        o[0]
    );
    ensure!(matches!(o[1], ImportOutcome::Written), "b: {:?}", o[1]);
    ensure!(
        matches!(o[2], ImportOutcome::Failed(Error::InvalidKey { .. })),
        "bad key: {:?}",
        o[2]
    );
    ensure!(
        matches!(o[3], ImportOutcome::Failed(Error::InvalidValue { .. })),
        "bad type: {:?}",
        o[3]
    );
    ensure!(
        matches!(o[4], ImportOutcome::Failed(Error::InvalidMetadata { .. })),
        "reserved metadata: {:?}",
        o[4]
    );
    ensure_eq!(target.keys("**").await?, vec!["b".to_owned()]);
    Ok(())
}

async fn import_dry_run_writes_nothing(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store.set("a", 1.into()).await?;
    h.store.set("b", 2.into()).await?;
    let entries = all_entries(&h.store).await?;
    let target = h.store.with_namespace("t")?;
    target.set("a", 0.into()).await?;
    let o = target
        .import_entries(
            entries,
            ImportOptions {
                overwrite: Overwrite::Never,
                dry_run: true,
            },
        )
        .await?;
    ensure!(
        matches!(
            o[..],
            [
                ImportOutcome::Skipped(SkipReason::Exists),
                ImportOutcome::Written
            ]
        ),
        "{o:?}"
    );
    ensure_eq!(target.keys("**").await?, vec!["a".to_owned()]);
    ensure_eq!(target.get("a").await?, Some(Value::Int(0)));
    Ok(())
}

async fn import_later_entry_for_same_key_wins(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store.set("k", "first".into()).await?;
    let Some(first) = h.store.get_entry("k").await? else {
        return Err(crate::testing::Failure("k not written".into()));
    };
    let mut second = first.clone();
    second.value = "second".into();
    let target = h.store.with_namespace("t")?;
    let o = target
        .import_entries(vec![first, second], ImportOptions::default())
        .await?;
    ensure_eq!(written(&o), 2, "{o:?}");
    ensure_eq!(target.get("k").await?, Some(Value::from("second")));
    ensure_eq!(target.count().await?, 1);
    Ok(())
}

/// A memory store on the harness's clock.
fn memory_store(h: &Harness) -> crate::Result<Store> {
    Store::builder(Store::memory_backend())
        .clock(h.clock.clone())
        .build()
}

async fn migrate_to_and_from_memory_keeps_records(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    write_every_type(&h.store).await?;
    for i in 0..25 {
        h.store.set(&format!("many.{i:02}"), i.into()).await?;
    }
    let source = all_entries(&h.store).await?;
    h.clock.advance(secs(1));

    // Out of the backend under test, in small pages.
    let memory = memory_store(&h)?;
    let mut pages = 0;
    let report = migrate_store(
        &h.store,
        &memory,
        MigrateOptions {
            batch_size: 7,
            ..MigrateOptions::default()
        },
        |_| pages += 1,
    )
    .await?;
    ensure_eq!(report.copied, 35);
    ensure_eq!((report.skipped, report.failed), (0, 0));
    ensure_eq!(pages, 5, "progress calls (one per page of 7)");
    let bytes: u64 = source.iter().map(|e| e.metadata.system.size).sum();
    ensure_eq!(report.bytes, bytes);
    let copied = all_entries(&memory).await?;
    ensure_eq!(copied.len(), source.len());
    for (want, got) in source.iter().zip(&copied) {
        same_record(want, got)?;
    }

    // And back into the backend under test: records land in the namespace
    // of the same name as the source handle's.
    let back = h.store.with_namespace("back")?;
    let memory_back = memory.with_namespace("back")?;
    memory_back
        .import_entries(source.clone(), ImportOptions::default())
        .await?;
    let report = migrate_store(&memory_back, &h.store, MigrateOptions::default(), |_| {}).await?;
    ensure_eq!(report.copied, 35);
    let round_trip = all_entries(&back).await?;
    ensure_eq!(round_trip.len(), source.len());
    for (want, got) in source.iter().zip(&round_trip) {
        same_record(want, got)?;
    }
    Ok(())
}

async fn migrate_all_namespaces_pattern_and_resume(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let one = h.store.with_namespace("one")?;
    let two = h.store.with_namespace("two")?;
    for i in 0..10 {
        one.set(&format!("users.{i}.name"), format!("u{i}").into())
            .await?;
        two.set(&format!("users.{i}.name"), format!("v{i}").into())
            .await?;
        two.set(&format!("other.{i}"), i.into()).await?;
    }
    h.store
        .set_with(
            "users.x.name",
            "gone".into(),
            SetOptions::new().ttl(secs(5)),
        )
        .await?;
    h.clock.advance(secs(6));

    let target = memory_store(&h)?;
    let report = migrate_store(
        &h.store,
        &target,
        MigrateOptions {
            pattern: "users.*.name".into(),
            namespaces: Namespaces::All,
            batch_size: 3,
            ..MigrateOptions::default()
        },
        |_| {},
    )
    .await?;
    ensure_eq!(report.copied, 20, "{report:?}");
    ensure_eq!(
        target.list_namespaces().await?,
        vec!["one".to_owned(), "two".to_owned()]
    );
    ensure_eq!(target.namespace("two")?.count().await?, 10);
    ensure_eq!(
        target.namespace("two")?.get("users.3.name").await?,
        Some(Value::from("v3"))
    );

    // Resume after `one/users.4.name`: the rest of `one`, all of `two`.
    let resumed = memory_store(&h)?;
    let report = migrate_store(
        &h.store,
        &resumed,
        MigrateOptions {
            pattern: "users.*.name".into(),
            namespaces: Namespaces::Only(vec!["two".into(), "one".into()]),
            resume_after: Some(ResumePoint {
                namespace: "one".into(),
                key: "users.4.name".into(),
            }),
            ..MigrateOptions::default()
        },
        |_| {},
    )
    .await?;
    ensure_eq!(report.copied, 15, "{report:?}");
    ensure_eq!(
        resumed.namespace("one")?.keys("**").await?,
        (5..10)
            .map(|i| format!("users.{i}.name"))
            .collect::<Vec<_>>()
    );
    ensure_eq!(
        report.resume_point(),
        Some(ResumePoint {
            namespace: "two".into(),
            key: "users.9.name".into()
        })
    );

    // A dry run reads and decides but writes nothing.
    let dry = memory_store(&h)?;
    let report = migrate_store(
        &h.store,
        &dry,
        MigrateOptions {
            namespaces: Namespaces::All,
            dry_run: true,
            ..MigrateOptions::default()
        },
        |_| {},
    )
    .await?;
    ensure_eq!((report.copied, report.dry_run), (30, true));
    ensure_eq!(dry.list_namespaces().await?, Vec::<String>::new());
    Ok(())
}
