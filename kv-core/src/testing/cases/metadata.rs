//! Metadata: system fields, user fields, reserved fields, filters.

use futures_util::{StreamExt, TryStreamExt};
use std::time::Duration;

use serde_json::json;

use super::{meta, secs};
use crate::error::Error;
use crate::metadata::{Metadata, MetadataFilter};
use crate::store::Store;
use crate::testing::{
    BackendFactory, Case, CaseResult, ConformanceOptions, Failure, Harness, CLOCK_START_MS,
};
use crate::types::{SetOptions, Ttl};
use crate::value::Value;
use crate::{KVStore, Timestamp};

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(metadata_system_fields_on_create),
        case!(metadata_version_grows_by_one_on_every_write),
        case!(metadata_created_at_kept_across_overwrites),
        case!(metadata_size_tracks_value),
        case!(metadata_user_fields_set_and_kept_by_plain_set),
        case!(metadata_set_metadata_replaces),
        case!(metadata_update_metadata_merges_and_null_removes),
        case!(metadata_operations_on_missing_key_return_false),
        case!(metadata_reserved_ttl_is_lifted),
        case!(metadata_reserved_content_type_is_lifted),
        case!(metadata_reserved_fields_invalid_are_rejected),
        case!(metadata_find_by_equals),
        case!(metadata_find_by_exists_and_contains),
        case!(metadata_find_conjunction_within_pattern),
        case!(metadata_get_entry_agrees_with_get_metadata),
        case!(metadata_find_pages_through_many_keys),
    ]
}

async fn md(store: &Store, key: &str) -> Result<Metadata, Failure> {
    store
        .get_metadata(key)
        .await?
        .ok_or_else(|| Failure(format!("metadata of {key} missing")))
}

async fn metadata_system_fields_on_create(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store.set("k", "hello".into()).await?;
    let m = md(&h.store, "k").await?;
    let start = Timestamp::from_millis(CLOCK_START_MS);
    ensure_eq!(m.system.version, 1);
    ensure_eq!(m.system.created_at, start);
    ensure_eq!(m.system.updated_at, start);
    ensure_eq!(m.system.expires_at, None);
    ensure_eq!(m.system.size, 5);
    ensure_eq!(m.system.content_type, None);
    ensure_eq!(
        m.system.accessed_at,
        None,
        "access is not tracked by default"
    );
    ensure!(
        m.user.is_empty(),
        "user metadata should be empty: {:?}",
        m.user
    );
    Ok(())
}

async fn metadata_version_grows_by_one_on_every_write(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let s = &h.store;
    s.set("k", 1.into()).await?;
    let mut expected = 1;
    ensure_eq!(md(s, "k").await?.system.version, expected);
    s.set("k", 2.into()).await?;
    expected += 1;
    ensure_eq!(md(s, "k").await?.system.version, expected, "after set");
    s.increment("k", 1).await?;
    expected += 1;
    ensure_eq!(
        md(s, "k").await?.system.version,
        expected,
        "after increment"
    );
    s.expire("k", secs(100)).await?;
    expected += 1;
    ensure_eq!(md(s, "k").await?.system.version, expected, "after expire");
    s.persist("k").await?;
    expected += 1;
    ensure_eq!(md(s, "k").await?.system.version, expected, "after persist");
    s.update_metadata("k", meta(json!({"a": 1}))).await?;
    expected += 1;
    ensure_eq!(
        md(s, "k").await?.system.version,
        expected,
        "after update_metadata"
    );
    s.set_metadata("k", meta(json!({"b": 1}))).await?;
    expected += 1;
    ensure_eq!(
        md(s, "k").await?.system.version,
        expected,
        "after set_metadata"
    );
    ensure!(
        s.compare_and_swap("k", Some(Value::Int(3)), 10.into())
            .await?,
        "cas failed"
    );
    expected += 1;
    ensure_eq!(md(s, "k").await?.system.version, expected, "after cas");
    s.get_and_set("k", "s".into()).await?;
    expected += 1;
    ensure_eq!(
        md(s, "k").await?.system.version,
        expected,
        "after get_and_set"
    );
    s.append("k", "t".into()).await?;
    expected += 1;
    ensure_eq!(md(s, "k").await?.system.version, expected, "after append");
    // Reads do not bump the version.
    s.get("k").await?;
    s.exists("k").await?;
    ensure_eq!(md(s, "k").await?.system.version, expected, "after reads");
    // A delete and re-create starts over.
    s.delete("k").await?;
    s.set("k", 1.into()).await?;
    ensure_eq!(md(s, "k").await?.system.version, 1, "after re-create");
    Ok(())
}

async fn metadata_created_at_kept_across_overwrites(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store.set("k", 1.into()).await?;
    let created = md(&h.store, "k").await?.system.created_at;
    h.clock.advance(Duration::from_millis(1500));
    h.store.set("k", 2.into()).await?;
    let m = md(&h.store, "k").await?;
    ensure_eq!(m.system.created_at, created);
    ensure_eq!(
        m.system.updated_at,
        Timestamp::from_millis(CLOCK_START_MS + 1500)
    );
    h.clock.advance(secs(10));
    h.store.increment("k", 1).await?;
    let m = md(&h.store, "k").await?;
    ensure_eq!(m.system.created_at, created);
    ensure_eq!(
        m.system.updated_at,
        Timestamp::from_millis(CLOCK_START_MS + 11_500)
    );
    Ok(())
}

async fn metadata_size_tracks_value(f: &dyn BackendFactory, _: &ConformanceOptions) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store.set("k", "abc".into()).await?;
    ensure_eq!(md(&h.store, "k").await?.system.size, 3);
    h.store.append("k", "défg".into()).await?;
    ensure_eq!(md(&h.store, "k").await?.system.size, 8, "UTF-8 bytes");
    h.store.set("k", Value::Bytes(vec![0; 1234])).await?;
    ensure_eq!(md(&h.store, "k").await?.system.size, 1234);
    h.store.set("k", 7.into()).await?;
    ensure_eq!(md(&h.store, "k").await?.system.size, 8);
    Ok(())
}

async fn metadata_user_fields_set_and_kept_by_plain_set(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let user = meta(json!({"owner": "ada", "tags": ["a", "b"], "n": 1.5, "nested": {"x": null}}));
    h.store
        .set_with("k", 1.into(), SetOptions::new().metadata(user.clone()))
        .await?;
    ensure_eq!(md(&h.store, "k").await?.user, user);
    h.store.set("k", 2.into()).await?;
    ensure_eq!(
        md(&h.store, "k").await?.user,
        user,
        "plain set keeps user metadata"
    );
    let other = meta(json!({"owner": "bob"}));
    h.store
        .set_with("k", 3.into(), SetOptions::new().metadata(other.clone()))
        .await?;
    ensure_eq!(
        md(&h.store, "k").await?.user,
        other,
        "set with metadata replaces it"
    );
    Ok(())
}

async fn metadata_set_metadata_replaces(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store
        .set_with(
            "k",
            "v".into(),
            SetOptions::new().metadata(meta(json!({"a": 1, "b": 2}))),
        )
        .await?;
    ensure!(
        h.store.set_metadata("k", meta(json!({"c": 3}))).await?,
        "set_metadata returned false"
    );
    ensure_eq!(md(&h.store, "k").await?.user, meta(json!({"c": 3})));
    ensure_eq!(
        h.store.get("k").await?,
        Some(Value::from("v")),
        "value untouched"
    );
    Ok(())
}

async fn metadata_update_metadata_merges_and_null_removes(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store
        .set_with(
            "k",
            "v".into(),
            SetOptions::new().metadata(meta(json!({"a": 1, "b": {"x": 1}, "c": 3}))),
        )
        .await?;
    ensure!(
        h.store
            .update_metadata(
                "k",
                meta(json!({"a": 10, "b": {"y": 2}, "c": null, "d": [1]}))
            )
            .await?,
        "update_metadata returned false"
    );
    // Shallow: `b` is replaced, not merged.
    ensure_eq!(
        md(&h.store, "k").await?.user,
        meta(json!({"a": 10, "b": {"y": 2}, "d": [1]}))
    );
    Ok(())
}

async fn metadata_operations_on_missing_key_return_false(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    ensure_eq!(h.store.get_metadata("nope").await?, None);
    ensure!(
        !h.store.set_metadata("nope", meta(json!({"a": 1}))).await?,
        "set_metadata on missing"
    );
    ensure!(
        !h.store
            .update_metadata("nope", meta(json!({"a": 1})))
            .await?,
        "update_metadata on missing"
    );
    ensure!(
        !h.store.exists("nope").await?,
        "set_metadata must not create the key"
    );
    Ok(())
}

async fn metadata_reserved_ttl_is_lifted(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store
        .set_with(
            "k",
            "v".into(),
            SetOptions::new().metadata(meta(json!({"ttl": 60, "owner": "x"}))),
        )
        .await?;
    let m = md(&h.store, "k").await?;
    ensure_eq!(
        m.user,
        meta(json!({"owner": "x"})),
        "ttl must leave user metadata"
    );
    ensure_eq!(
        m.system.expires_at,
        Some(Timestamp::from_millis(CLOCK_START_MS + 60_000))
    );
    ensure_eq!(h.store.ttl("k").await?, Ttl::Expires(secs(60)));
    // Through update_metadata too.
    h.store
        .update_metadata("k", meta(json!({"ttl": 1.5})))
        .await?;
    ensure_eq!(
        h.store.ttl("k").await?,
        Ttl::Expires(Duration::from_millis(1500))
    );
    h.clock.advance(Duration::from_millis(1500));
    ensure_eq!(h.store.get("k").await?, None);
    Ok(())
}

async fn metadata_reserved_content_type_is_lifted(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store
        .set_with(
            "k",
            "<p>hi</p>".into(),
            SetOptions::new().metadata(meta(json!({"content_type": "text/html", "lang": "en"}))),
        )
        .await?;
    let m = md(&h.store, "k").await?;
    ensure_eq!(m.system.content_type.as_deref(), Some("text/html"));
    ensure_eq!(m.user, meta(json!({"lang": "en"})));
    Ok(())
}

async fn metadata_reserved_fields_invalid_are_rejected(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store.set("k", "v".into()).await?;
    for bad in [
        json!({"ttl": "soon"}),
        json!({"ttl": -5}),
        json!({"ttl": 0}),
        json!({"content_type": 5}),
    ] {
        ensure_err!(
            h.store
                .set_with(
                    "k",
                    "new".into(),
                    SetOptions::new().metadata(meta(bad.clone()))
                )
                .await,
            Error::InvalidMetadata { .. }
        );
        ensure_err!(
            h.store.set_metadata("k", meta(bad.clone())).await,
            Error::InvalidMetadata { .. }
        );
        ensure_err!(
            h.store.update_metadata("k", meta(bad)).await,
            Error::InvalidMetadata { .. }
        );
    }
    ensure_err!(
        h.store
            .set_with(
                "k",
                "new".into(),
                SetOptions::new()
                    .ttl(secs(5))
                    .metadata(meta(json!({"ttl": 9})))
            )
            .await,
        Error::InvalidMetadata { .. }
    );
    ensure_eq!(
        h.store.get("k").await?,
        Some(Value::from("v")),
        "nothing written"
    );
    ensure_eq!(
        md(&h.store, "k").await?.system.version,
        1,
        "nothing written"
    );
    Ok(())
}

async fn tagged(h: &Harness) -> Result<(), Failure> {
    let rows = [
        (
            "users.1",
            json!({"status": "active", "tags": ["vip", "beta"], "plan": "pro"}),
        ),
        ("users.2", json!({"status": "active", "tags": ["beta"]})),
        (
            "users.3",
            json!({"status": "inactive", "tags": ["vip"], "plan": null}),
        ),
        ("users.4", json!({"status": "active", "tags": "vip"})),
        ("users.5", json!({})),
        ("orders.1", json!({"status": "active", "tags": ["vip"]})),
    ];
    for (k, m) in rows {
        h.store
            .set_with(k, k.into(), SetOptions::new().metadata(meta(m)))
            .await?;
    }
    Ok(())
}

fn keys_of(entries: Vec<crate::Entry>) -> Vec<String> {
    entries.into_iter().map(|e| e.key).collect()
}

async fn metadata_find_by_equals(f: &dyn BackendFactory, _: &ConformanceOptions) -> CaseResult {
    let h = Harness::new(f).await?;
    tagged(&h).await?;
    let found = h
        .store
        .find_by_metadata("users.*", &MetadataFilter::new().eq("status", "active"))
        .await?;
    ensure_eq!(
        keys_of(found.clone()),
        vec!["users.1", "users.2", "users.4"]
    );
    ensure_eq!(
        found[0].value,
        Value::from("users.1"),
        "entries carry values"
    );
    let none = h
        .store
        .find_by_metadata("**", &MetadataFilter::new().eq("status", "gone"))
        .await?;
    ensure!(none.is_empty(), "found {:?}", keys_of(none));
    // Equality is on JSON values: an array equals only the same array.
    let arr = h
        .store
        .find_by_metadata("**", &MetadataFilter::new().eq("tags", json!(["beta"])))
        .await?;
    ensure_eq!(keys_of(arr), vec!["users.2"]);
    Ok(())
}

async fn metadata_find_by_exists_and_contains(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    tagged(&h).await?;
    let exists = h
        .store
        .find_by_metadata("users.*", &MetadataFilter::new().exists("plan"))
        .await?;
    ensure_eq!(
        keys_of(exists),
        vec!["users.1", "users.3"],
        "null counts as existing"
    );
    let vip = h
        .store
        .find_by_metadata("users.*", &MetadataFilter::new().contains("tags", "vip"))
        .await?;
    ensure_eq!(
        keys_of(vip),
        vec!["users.1", "users.3"],
        "a string field is not an array"
    );
    Ok(())
}

async fn metadata_find_conjunction_within_pattern(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    tagged(&h).await?;
    let filter = MetadataFilter::new()
        .eq("status", "active")
        .contains("tags", "vip");
    ensure_eq!(
        keys_of(h.store.find_by_metadata("users.*", &filter).await?),
        vec!["users.1"]
    );
    ensure_eq!(
        keys_of(h.store.find_by_metadata("**", &filter).await?),
        vec!["orders.1", "users.1"]
    );
    // Expired keys are not found.
    h.store.expire("users.1", secs(1)).await?;
    h.clock.advance(secs(1));
    ensure_eq!(
        keys_of(h.store.find_by_metadata("**", &filter).await?),
        vec!["orders.1"]
    );
    Ok(())
}

async fn metadata_get_entry_agrees_with_get_metadata(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store
        .set_with(
            "k",
            "v".into(),
            SetOptions::new()
                .ttl(secs(30))
                .metadata(meta(json!({"a": 1}))),
        )
        .await?;
    let entry = h
        .store
        .get_entry("k")
        .await?
        .ok_or_else(|| Failure("entry missing".into()))?;
    ensure_eq!(entry.key, "k");
    ensure_eq!(entry.value, Value::from("v"));
    ensure_eq!(entry.metadata, md(&h.store, "k").await?);
    Ok(())
}

async fn metadata_find_pages_through_many_keys(
    f: &dyn BackendFactory,
    o: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    // 3,000 keys (fewer when `large_keys` is smaller, never under 1,100),
    // one in seven tagged; more than a page of the store's walk, with
    // matches on every page.
    let n = o.large_keys.clamp(1100, 3000) as u32;
    let mut want = Vec::new();
    let mut batch = Vec::new();
    for i in 0..n {
        let key = format!("docs.{i:05}");
        let tagged = i % 7 == 3;
        if tagged {
            want.push(key.clone());
        }
        let m = if tagged {
            json!({"kind": "report", "tags": ["q3", "vip"], "n": i})
        } else {
            json!({"kind": "note", "tags": ["q3"], "n": i})
        };
        batch.push((key, m));
    }
    // Eight writes in flight: each is a round trip on a remote store.
    futures_util::stream::iter(batch)
        .map(|(key, m)| {
            let store = &h.store;
            async move {
                store
                    .set_with(&key, 1.into(), SetOptions::new().metadata(meta(m)))
                    .await
            }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<_>>()
        .await?;
    h.store
        .set_with(
            "other.x",
            1.into(),
            SetOptions::new().metadata(meta(json!({"kind": "report", "tags": ["vip"]}))),
        )
        .await?;
    let filter = MetadataFilter::new()
        .eq("kind", "report")
        .contains("tags", "vip")
        .exists("n");
    ensure_eq!(
        keys_of(h.store.find_by_metadata("docs.*", &filter).await?),
        want
    );
    let all = h
        .store
        .find_by_metadata("**", &MetadataFilter::new().eq("kind", "report"))
        .await?;
    ensure_eq!(all.len(), want.len() + 1);
    Ok(())
}
