//! A batch that fails half-way leaves nothing behind: SQLite rolls back the
//! whole transaction. The failure is real: a trigger makes the insert of
//! one key raise an error after earlier operations of the batch ran.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use kv_backend_sqlite::{SqliteOptions, SqliteStore};
use kv_core::{Batch, Error, KVStore, Store, Value};

#[tokio::test]
async fn a_batch_failing_half_way_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let backend = SqliteStore::open(SqliteOptions::new(dir.path().join("kv.db")))
        .await
        .unwrap();
    backend
        .with_connection(|c| {
            c.execute_batch(
                r#"CREATE TRIGGER boom BEFORE INSERT ON kv_store
                   WHEN NEW.key = 'boom' BEGIN SELECT RAISE(ABORT, 'boom refused'); END;"#,
            )
            .map_err(|e| Error::backend("sqlite", false, e))
        })
        .await
        .unwrap();
    let store = Store::new(Arc::new(backend));
    store.set("keep", "before".into()).await.unwrap();
    store.set("gone", "before".into()).await.unwrap();

    let err = store
        .batch(
            Batch::new()
                .set("a", 1)
                .set("keep", "after")
                .delete("gone")
                .set("boom", 2)
                .set("z", 3),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("boom refused"), "{err}");
    assert_eq!(store.get("a").await.unwrap(), None);
    assert_eq!(store.get("z").await.unwrap(), None);
    assert_eq!(
        store.get("keep").await.unwrap(),
        Some(Value::from("before"))
    );
    assert_eq!(
        store.get("gone").await.unwrap(),
        Some(Value::from("before"))
    );
    assert_eq!(store.count().await.unwrap(), 2);

    // set_many goes through the same transaction.
    let err = store
        .set_many(vec![("b".into(), 1.into()), ("boom".into(), 2.into())])
        .await;
    assert!(err.is_err());
    assert_eq!(store.get("b").await.unwrap(), None);

    // The connection is usable afterwards.
    store
        .batch(Batch::new().set("a", 1).set("z", 3))
        .await
        .unwrap();
    assert_eq!(store.count().await.unwrap(), 4);
}
