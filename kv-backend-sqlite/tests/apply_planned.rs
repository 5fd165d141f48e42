//! `apply_planned` runs the plan inside one write transaction: the plan
//! sees every planned key (missing ones as `None`) in order, a declined
//! plan writes nothing, and a plan whose preconditions disagree with what
//! it was given is refused whole.
#![allow(clippy::unwrap_used)]

use kv_backend_sqlite::{SqliteOptions, SqliteStore};
use kv_core::backend::{Backend, BatchOp, PlannedOutcome, Precondition};
use kv_core::{Record, Timestamp, Value, ValueType, DEFAULT_NAMESPACE};

fn record(key: &str, value: &str, version: u64) -> Record {
    let mut r = Record::new(
        DEFAULT_NAMESPACE,
        key,
        &Value::from(value),
        ValueType::String,
        Timestamp::from_millis(1_000),
    );
    r.meta.version = version;
    r
}

async fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteOptions::new(dir.path().join("kv.db")))
        .await
        .unwrap();
    (dir, store)
}

async fn value_of(store: &SqliteStore, key: &str) -> Option<Value> {
    store
        .read(DEFAULT_NAMESPACE, key)
        .await
        .unwrap()
        .map(|r| r.decode_value().unwrap())
}

#[tokio::test]
async fn plan_sees_planned_keys_in_order_and_its_writes_land() {
    let (_dir, store) = open().await;
    store
        .write(record("b", "old", 3), Precondition::Absent)
        .await
        .unwrap();
    let keys = vec!["a".to_owned(), "b".to_owned()];
    let outcome = store
        .apply_planned(
            DEFAULT_NAMESPACE,
            &keys,
            Box::new(|current: Vec<Option<Record>>| {
                assert_eq!(current.len(), 2);
                assert!(current[0].is_none());
                let b = current[1].as_ref().unwrap();
                assert_eq!(b.version(), 3);
                Ok(Some(vec![
                    BatchOp::Put {
                        record: record("a", "new", 1),
                        precondition: Precondition::Absent,
                    },
                    BatchOp::Put {
                        record: record("b", "new", 4),
                        precondition: Precondition::Version(3),
                    },
                ]))
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        outcome,
        PlannedOutcome::Applied {
            puts: 2,
            deletes: 0
        }
    );
    assert_eq!(value_of(&store, "a").await, Some(Value::from("new")));
    let b = store.read(DEFAULT_NAMESPACE, "b").await.unwrap().unwrap();
    assert_eq!((b.version(), b.decode_value().unwrap()), (4, "new".into()));
}

#[tokio::test]
async fn declined_plan_writes_nothing() {
    let (_dir, store) = open().await;
    let keys = vec!["a".to_owned()];
    let outcome = store
        .apply_planned(DEFAULT_NAMESPACE, &keys, Box::new(|_| Ok(None)))
        .await
        .unwrap();
    assert_eq!(outcome, PlannedOutcome::Declined);
    assert_eq!(value_of(&store, "a").await, None);
}

#[tokio::test]
async fn plan_disagreeing_with_what_it_read_is_refused_whole() {
    let (_dir, store) = open().await;
    store
        .write(record("b", "old", 3), Precondition::Absent)
        .await
        .unwrap();
    let keys = vec!["a".to_owned(), "b".to_owned()];
    let outcome = store
        .apply_planned(
            DEFAULT_NAMESPACE,
            &keys,
            Box::new(|_| {
                Ok(Some(vec![
                    BatchOp::Put {
                        record: record("a", "new", 1),
                        precondition: Precondition::Absent,
                    },
                    // Stale: the stored version is 3.
                    BatchOp::Put {
                        record: record("b", "new", 3),
                        precondition: Precondition::Version(2),
                    },
                ]))
            }),
        )
        .await
        .unwrap();
    assert_eq!(outcome, PlannedOutcome::Conflict);
    assert_eq!(value_of(&store, "a").await, None);
    assert_eq!(value_of(&store, "b").await, Some(Value::from("old")));
}
