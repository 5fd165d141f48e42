//! Values: every variant, value types, content types, serde, size limits,
//! checksums.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::Error;
use crate::record::Record;
use crate::testing::{BackendFactory, Case, CaseResult, ConformanceOptions, Harness};
use crate::types::{SetOptions, StoreOptions};
use crate::value::{Value, ValueType};
use crate::{KVStore, KVStoreExt, Precondition};

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(value_every_variant_round_trips),
        case!(value_default_types_follow_variant),
        case!(value_documents_and_images_keep_content_type),
        case!(value_declared_type_must_fit_value),
        case!(value_custom_type_round_trips),
        case!(value_serde_types_round_trip_with_get_as),
        case!(value_too_large_is_rejected_and_old_value_kept),
        case!(value_overwrite_changes_type),
        case!(value_checksum_mismatch_is_corruption),
    ]
}

async fn value_every_variant_round_trips(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let values = [
        ("v.null", Value::Null),
        ("v.true", Value::Bool(true)),
        ("v.false", Value::Bool(false)),
        ("v.zero", Value::Int(0)),
        ("v.min", Value::Int(i64::MIN)),
        ("v.max", Value::Int(i64::MAX)),
        ("v.float", Value::Float(-1234.5e-7)),
        ("v.inf", Value::Float(f64::NEG_INFINITY)),
        (
            "v.str",
            Value::from("héllo, wörld ✓ 'quoted' \"double\" %_\\"),
        ),
        ("v.empty_str", Value::from("")),
        ("v.nul_str", Value::from("a\u{0}b")),
        (
            "v.json",
            Value::Json(json!({"a": [1, 2.5, {"b": null}], "c": "ü"})),
        ),
        ("v.json_scalar", Value::Json(json!(7))),
        ("v.bytes", Value::Bytes(vec![0, 1, 2, 255, 0])),
        ("v.empty_bytes", Value::Bytes(vec![])),
        ("v.big_bytes", Value::Bytes(big)),
    ];
    for (k, v) in &values {
        h.store.set(k, v.clone()).await?;
    }
    for (k, v) in &values {
        ensure_eq!(h.store.get(k).await?.as_ref(), Some(v), "value of {k}");
    }
    let keys: Vec<&str> = values.iter().map(|(k, _)| *k).collect();
    let many = h.store.get_many(&keys).await?;
    for ((k, v), got) in values.iter().zip(many) {
        ensure_eq!(got.as_ref(), Some(v), "get_many value of {k}");
    }
    Ok(())
}

async fn value_default_types_follow_variant(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let cases = [
        ("t.s", Value::from("x"), ValueType::String),
        ("t.i", Value::Int(1), ValueType::Number),
        ("t.f", Value::Float(1.5), ValueType::Number),
        ("t.b", Value::Bool(true), ValueType::Boolean),
        ("t.j", Value::Json(json!({"a": 1})), ValueType::Json),
        ("t.n", Value::Null, ValueType::Json),
        ("t.y", Value::Bytes(vec![1]), ValueType::Binary),
    ];
    for (k, v, t) in &cases {
        h.store.set(k, v.clone()).await?;
        let m = h.store.get_metadata(k).await?;
        ensure_eq!(
            m.map(|m| m.system.value_type),
            Some(t.clone()),
            "type of {k}"
        );
    }
    Ok(())
}

async fn value_documents_and_images_keep_content_type(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let pdf = b"%PDF-1.7 ...".to_vec();
    let png = vec![0x89, b'P', b'N', b'G', 0, 0];
    h.store
        .set_with(
            "docs.report",
            pdf.clone().into(),
            SetOptions::document("application/pdf"),
        )
        .await?;
    h.store
        .set_with(
            "img.logo",
            png.clone().into(),
            SetOptions::image("image/png"),
        )
        .await?;
    let doc = h.store.get_entry("docs.report").await?;
    let doc = doc.ok_or_else(|| crate::testing::Failure("document missing".into()))?;
    ensure_eq!(doc.value, Value::Bytes(pdf));
    ensure_eq!(doc.metadata.system.value_type, ValueType::Document);
    ensure_eq!(
        doc.metadata.system.content_type.as_deref(),
        Some("application/pdf")
    );
    let img = h.store.get_metadata("img.logo").await?;
    let img = img.ok_or_else(|| crate::testing::Failure("image missing".into()))?;
    ensure_eq!(img.system.value_type, ValueType::Image);
    ensure_eq!(img.system.content_type.as_deref(), Some("image/png"));
    ensure_eq!(h.store.get("img.logo").await?, Some(Value::Bytes(png)));
    // A document needs a content type and bytes.
    ensure_err!(
        h.store
            .set_with(
                "docs.x",
                vec![1u8].into(),
                SetOptions::new().value_type(ValueType::Document)
            )
            .await,
        Error::InvalidValue { .. }
    );
    ensure_err!(
        h.store
            .set_with(
                "docs.y",
                "text".into(),
                SetOptions::document("application/pdf")
            )
            .await,
        Error::InvalidValue { .. }
    );
    ensure!(
        !h.store.exists("docs.x").await? && !h.store.exists("docs.y").await?,
        "refused values were written"
    );
    Ok(())
}

async fn value_declared_type_must_fit_value(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store.set("k", 1.into()).await?;
    for (v, t) in [
        (Value::from("x"), ValueType::Number),
        (Value::Int(1), ValueType::String),
        (Value::Bool(true), ValueType::Binary),
        (Value::from("x"), ValueType::Boolean),
    ] {
        ensure_err!(
            h.store
                .set_with("k", v.clone(), SetOptions::new().value_type(t.clone()))
                .await,
            Error::InvalidValue { .. }
        );
    }
    ensure_eq!(
        h.store.get("k").await?,
        Some(Value::Int(1)),
        "old value must be kept"
    );
    // Json accepts any value.
    h.store
        .set_with(
            "k",
            "text".into(),
            SetOptions::new().value_type(ValueType::Json),
        )
        .await?;
    ensure_eq!(
        h.store
            .get_metadata("k")
            .await?
            .map(|m| m.system.value_type),
        Some(ValueType::Json)
    );
    Ok(())
}

async fn value_custom_type_round_trips(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let t = ValueType::Custom("geo.point".into());
    h.store
        .set_with(
            "place.home",
            Value::Json(json!([51.5, -0.12])),
            SetOptions::new()
                .value_type(t.clone())
                .content_type("application/geo+json"),
        )
        .await?;
    let m = h.store.get_metadata("place.home").await?;
    let m = m.ok_or_else(|| crate::testing::Failure("missing".into()))?;
    ensure_eq!(m.system.value_type, t);
    ensure_eq!(
        m.system.content_type.as_deref(),
        Some("application/geo+json")
    );
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    name: String,
    age: u32,
    tags: Vec<String>,
    address: Option<Address>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Address {
    city: String,
}

async fn value_serde_types_round_trip_with_get_as(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    let p = Profile {
        name: "Ada".into(),
        age: 36,
        tags: vec!["math".into(), "engines".into()],
        address: Some(Address {
            city: "London".into(),
        }),
    };
    h.store.set_json("users.ada", &p).await?;
    ensure_eq!(h.store.get_as::<Profile>("users.ada").await?, Some(p));
    ensure_eq!(h.store.get_as::<Profile>("users.nobody").await?, None);
    h.store.set("n", 42.into()).await?;
    ensure_eq!(h.store.get_as::<u16>("n").await?, Some(42));
    h.store.set("s", "text".into()).await?;
    ensure_eq!(
        h.store.get_as::<String>("s").await?,
        Some("text".to_owned())
    );
    ensure_err!(
        h.store.get_as::<Profile>("s").await,
        Error::TypeMismatch { .. }
    );
    ensure_err!(
        h.store.get_as::<u8>("users.ada").await,
        Error::TypeMismatch { .. }
    );
    Ok(())
}

async fn value_too_large_is_rejected_and_old_value_kept(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::with_options(
        f,
        StoreOptions {
            max_value_size: 1000,
            ..StoreOptions::default()
        },
    )
    .await?;
    h.store.set("k", "small".into()).await?;
    ensure_err!(
        h.store.set("k", Value::Bytes(vec![0; 1000])).await,
        Error::ValueTooLarge { limit: 1000, .. }
    );
    ensure_err!(
        h.store.set_nx("new", Value::Bytes(vec![0; 5000])).await,
        Error::ValueTooLarge { .. }
    );
    ensure_err!(
        h.store
            .compare_and_swap("k", Some("small".into()), Value::from("x".repeat(2000)))
            .await,
        Error::ValueTooLarge { .. }
    );
    ensure_err!(
        h.store.append("k", Value::from("y".repeat(995))).await,
        Error::ValueTooLarge { .. }
    );
    ensure_eq!(h.store.get("k").await?, Some(Value::from("small")));
    ensure!(!h.store.exists("new").await?, "refused value was written");
    // Exactly at the limit is fine: 1 tag byte + 999 payload bytes.
    h.store.set("k", Value::Bytes(vec![7; 999])).await?;
    Ok(())
}

async fn value_overwrite_changes_type(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store.set("k", 1.into()).await?;
    h.store.set("k", "one".into()).await?;
    h.store.set("k", Value::Json(json!({"one": 1}))).await?;
    ensure_eq!(
        h.store.get("k").await?,
        Some(Value::Json(json!({"one": 1})))
    );
    ensure_eq!(
        h.store
            .get_metadata("k")
            .await?
            .map(|m| m.system.value_type),
        Some(ValueType::Json)
    );
    Ok(())
}

async fn value_checksum_mismatch_is_corruption(
    f: &dyn BackendFactory,
    _: &ConformanceOptions,
) -> CaseResult {
    let h = Harness::new(f).await?;
    h.store.set("good", "intact".into()).await?;
    // Store a record whose value does not match its checksum, as a disk or
    // a careless tool might, straight through the backend.
    let mut bad = Record::new(
        "default",
        "bad",
        &Value::from("original"),
        ValueType::String,
        crate::Timestamp::from_millis(crate::testing::CLOCK_START_MS),
    );
    bad.value = Value::from("tampered").encode();
    h.backend.write(bad, Precondition::Any).await?;
    ensure_err!(h.store.get("bad").await, Error::Corruption { .. });
    ensure_err!(h.store.get_entry("bad").await, Error::Corruption { .. });
    ensure_err!(
        h.store.get_many(&["good", "bad"]).await,
        Error::Corruption { .. }
    );
    ensure_err!(h.store.get_pattern("**").await, Error::Corruption { .. });
    ensure_err!(h.store.increment("bad", 1).await, Error::Corruption { .. });
    // An append may fail, or (`Backend::append_in_place`) append without
    // reading the value; either way the damage must stay visible.
    match h.store.append("bad", Value::from("!")).await {
        Ok(_) | Err(Error::Corruption { .. }) => {}
        Err(e) => {
            return Err(crate::testing::Failure(format!(
                "append to a damaged value: expected Ok or Corruption, got {e:?}"
            )))
        }
    }
    ensure_err!(h.store.get("bad").await, Error::Corruption { .. });
    // A damaged integer is never incremented (which would hide the damage
    // under a fresh checksum).
    let mut bad_int = Record::new(
        "default",
        "bad_int",
        &Value::Int(1),
        ValueType::Number,
        crate::Timestamp::from_millis(crate::testing::CLOCK_START_MS),
    );
    bad_int.value = Value::Int(2).encode();
    h.backend.write(bad_int, Precondition::Any).await?;
    ensure_err!(
        h.store.increment("bad_int", 1).await,
        Error::Corruption { .. }
    );
    ensure_err!(h.store.get("bad_int").await, Error::Corruption { .. });
    ensure_eq!(h.store.get("good").await?, Some(Value::from("intact")));
    Ok(())
}
