//! JSON Lines and CSV export/import.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use dataknobs_kv::migrate::{Namespaces, Overwrite};
use dataknobs_kv::transfer::{
    check_jsonl, export_csv, export_jsonl, import_csv, import_jsonl, ExportOptions,
    ImportFileOptions,
};
use dataknobs_kv::{Error, KVStore, SetOptions, Store, Value, ValueType};
use serde_json::json;

async fn fill(store: &Store) {
    store.set("v.null", Value::Null).await.unwrap();
    store.set("v.bool", false.into()).await.unwrap();
    store.set("v.int", i64::MIN.into()).await.unwrap();
    store.set("v.float", 0.1f64.into()).await.unwrap();
    store.set("v.float_whole", 3.0f64.into()).await.unwrap();
    store.set("v.nan", f64::NAN.into()).await.unwrap();
    store.set("v.inf", f64::NEG_INFINITY.into()).await.unwrap();
    store
        .set_with(
            "v.string",
            "tab\there \"quoted\" é ✓".into(),
            SetOptions::new()
                .ttl(Duration::from_secs(3600))
                .metadata_json(json!({"owner": "ann", "n": 1.5, "tags": ["x"]}))
                .unwrap(),
        )
        .await
        .unwrap();
    store
        .set(
            "v.json",
            Value::Json(json!({"z": 1, "a": [true, null, "s"]})),
        )
        .await
        .unwrap();
    store
        .set("v.json_string", Value::Json(json!("not a plain string")))
        .await
        .unwrap();
    store
        .set("v.bytes", Value::Bytes((0..=255).collect()))
        .await
        .unwrap();
    store
        .set_with(
            "v.doc",
            Value::Bytes(b"%PDF".to_vec()),
            SetOptions::document("application/pdf"),
        )
        .await
        .unwrap();
    store
        .set_with(
            "v.img",
            Value::Bytes(vec![1, 2, 3]),
            SetOptions::image("image/png"),
        )
        .await
        .unwrap();
    store
        .set_with(
            "v.custom",
            Value::String("x".into()),
            SetOptions::new().value_type(ValueType::Custom("tag".into())),
        )
        .await
        .unwrap();
    let other = store.with_namespace("other").unwrap();
    for i in 0..2500 {
        other.set(&format!("k.{i:05}"), i.into()).await.unwrap();
    }
}

fn all() -> ExportOptions {
    ExportOptions {
        namespaces: Namespaces::All,
        batch_size: 300,
        ..ExportOptions::default()
    }
}

#[tokio::test]
async fn jsonl_export_import_export_is_byte_identical() {
    let source = Store::memory();
    fill(&source).await;
    let mut first = Vec::new();
    let report = export_jsonl(&source, &mut first, &all(), |_| {})
        .await
        .unwrap();
    assert_eq!(report.records, 14 + 2500);
    assert_eq!(check_jsonl(&first[..]).unwrap(), 14 + 2500);

    let target = Store::memory();
    let mut calls = 0;
    let imported = import_jsonl(
        &target,
        &first[..],
        &ImportFileOptions {
            batch_size: 500,
            ..ImportFileOptions::default()
        },
        |_| calls += 1,
    )
    .await
    .unwrap();
    assert_eq!((imported.records, imported.failed), (2514, 0));
    assert!(calls >= 6, "progress after every batch, got {calls}");
    let mut second = Vec::new();
    export_jsonl(&target, &mut second, &all(), |_| {})
        .await
        .unwrap();
    assert!(
        first == second,
        "exports differ:\n{}\n---\n{}",
        String::from_utf8_lossy(&first[..2000.min(first.len())]),
        String::from_utf8_lossy(&second[..2000.min(second.len())])
    );

    // The values themselves came back, NaN included.
    let Some(Value::Float(nan)) = target.get("v.nan").await.unwrap() else {
        panic!("v.nan")
    };
    assert!(nan.is_nan());
    assert_eq!(
        target.get("v.json_string").await.unwrap(),
        Some(Value::Json(json!("not a plain string")))
    );
    assert_eq!(
        target.get("v.bytes").await.unwrap(),
        Some(Value::Bytes((0..=255).collect()))
    );
    let first_line = String::from_utf8(first.clone())
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    assert!(
        first_line.starts_with(r#"{"namespace":"default","key":"v.bool","value":false,"type":"boolean","encoding":"bool","metadata":{},"content_type":null,"created_at":"#),
        "{first_line}"
    );
}

#[tokio::test]
async fn jsonl_import_overwrite_never_keeps_existing() {
    let source = Store::memory();
    source.set("a", 1.into()).await.unwrap();
    source.set("b", 2.into()).await.unwrap();
    let mut out = Vec::new();
    export_jsonl(&source, &mut out, &ExportOptions::default(), |_| {})
        .await
        .unwrap();
    let target = Store::memory();
    target.set("a", 100.into()).await.unwrap();
    let report = import_jsonl(
        &target,
        &out[..],
        &ImportFileOptions {
            overwrite: Overwrite::Never,
            ..ImportFileOptions::default()
        },
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!((report.records, report.skipped), (1, 1));
    assert_eq!(target.get("a").await.unwrap(), Some(Value::Int(100)));
    assert_eq!(target.get("b").await.unwrap(), Some(Value::Int(2)));
}

#[tokio::test]
async fn malformed_jsonl_names_the_line() {
    let good = r#"{"namespace":"default","key":"a","value":1,"type":"number","encoding":"int","metadata":{},"content_type":null,"created_at":1,"updated_at":1,"expires_at":null}"#;
    let cases = [
        ("not json", "line 2"),
        (
            &good.replace("\"int\"", "\"integer\"")[..],
            "unknown encoding",
        ),
        (
            &good.replace("\"value\":1", "\"value\":\"1\"")[..],
            "not a valid int",
        ),
        (
            &good.replace("\"number\"", "\"numbr\"")[..],
            "unknown value type",
        ),
        (
            &good.replace("\"expires_at\"", "\"expires\"")[..],
            "unknown field",
        ),
        (
            &good.replace(
                "\"encoding\":\"int\",\"metadata\":{}",
                "\"encoding\":\"int\",\"metadata\":[]",
            )[..],
            "line 2",
        ),
    ];
    for (bad, want) in cases {
        let input = format!("{good}\n{bad}\n{good}\n");
        let e = check_jsonl(input.as_bytes()).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains("line 2") && text.contains(want),
            "{bad}: {text}"
        );
        // import stops at the bad line: only line 1 is written.
        let store = Store::memory();
        let e = import_jsonl(
            &store,
            input.as_bytes(),
            &ImportFileOptions::default(),
            |_| {},
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }
    // A refused record (invalid key) is reported, the rest imported.
    let input = format!(
        "{}\n{good}\n",
        good.replace("\"key\":\"a\"", "\"key\":\"a..b\"")
    );
    let store = Store::memory();
    let report = import_jsonl(
        &store,
        input.as_bytes(),
        &ImportFileOptions::default(),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!((report.records, report.failed), (1, 1));
    assert!(report.failures[0].contains("a..b"), "{:?}", report.failures);
}

#[tokio::test]
async fn csv_round_trip_and_errors() {
    let source = Store::memory();
    fill(&source).await;
    let mut csv = Vec::new();
    let report = export_csv(&source, &mut csv, &ExportOptions::default(), |_| {})
        .await
        .unwrap();
    assert_eq!(report.records, 14);
    let text = String::from_utf8(csv.clone()).unwrap();
    assert!(text.starts_with("key,type,value\n"), "{text}");
    assert!(text.contains("v.int,int,-9223372036854775808\n"), "{text}");

    let target = Store::memory();
    let report = import_csv(&target, &csv[..], &ImportFileOptions::default(), |_| {})
        .await
        .unwrap();
    assert_eq!((report.records, report.failed), (14, 0));
    for key in source.keys("**").await.unwrap() {
        let (a, b) = (
            source.get(&key).await.unwrap(),
            target.get(&key).await.unwrap(),
        );
        match (a, b) {
            (Some(Value::Float(x)), Some(Value::Float(y))) if x.is_nan() => assert!(y.is_nan()),
            (a, b) => assert_eq!(a, b, "{key}"),
        }
    }
    let mut again = Vec::new();
    export_csv(&target, &mut again, &ExportOptions::default(), |_| {})
        .await
        .unwrap();
    assert_eq!(csv, again);

    for (bad, want) in [
        ("key,value\na,1\n", "header"),
        ("key,type,value\na,int,x\n", "line 2"),
        ("key,type,value\na,int,1\nb,date,2024\n", "unknown type"),
        ("key,type,value\na,bytes,@@@\n", "base64"),
    ] {
        let store = Store::memory();
        let e = import_csv(
            &store,
            bad.as_bytes(),
            &ImportFileOptions::default(),
            |_| {},
        )
        .await
        .unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
        assert!(e.to_string().contains(want), "{bad}: {e}");
    }
}
