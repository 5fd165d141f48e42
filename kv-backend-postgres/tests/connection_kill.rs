//! Killing the connection in the middle of a batch (the server process
//! terminates itself, via a trigger, after the batch's first writes) leaves
//! no partial batch, and the store recovers on the next call.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use kv_core::{Batch, KVStore, Store, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_connection_leaves_no_partial_batch() {
    let Some(url) = common::pg_url("a_killed_connection_leaves_no_partial_batch") else {
        return;
    };
    let backend = common::store(&url, "kill").await;
    let table = backend.options().table.clone();
    let pool = backend.pool().clone();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        r#"CREATE FUNCTION "{table}_kill"() RETURNS trigger AS $$
           BEGIN
             IF NEW.key = 'kill' THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF;
             RETURN NEW;
           END $$ LANGUAGE plpgsql"#
    )))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        r#"CREATE TRIGGER "{table}_kill" BEFORE INSERT ON "{table}" FOR EACH ROW EXECUTE FUNCTION "{table}_kill"()"#
    )))
    .execute(&pool)
    .await
    .unwrap();
    let store = Store::new(Arc::new(backend));
    store.set("keep", "before".into()).await.unwrap();

    let err = store
        .batch(
            Batch::new()
                .set("a", 1)
                .set("keep", "after")
                .set("kill", 1)
                .set("z", 2),
        )
        .await
        .unwrap_err();
    assert!(
        err.is_temporary(),
        "a terminated connection is a temporary error: {err}"
    );
    assert_eq!(store.get("a").await.unwrap(), None, "no partial batch");
    assert_eq!(
        store.get("keep").await.unwrap(),
        Some(Value::from("before"))
    );
    assert_eq!(store.get("z").await.unwrap(), None);
    // The pool replaced the dead connection: everything works again.
    store
        .batch(Batch::new().set("a", 1).set("z", 2))
        .await
        .unwrap();
    assert_eq!(store.count().await.unwrap(), 3);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        r#"DROP FUNCTION "{table}_kill"() CASCADE"#
    )))
    .execute(&pool)
    .await
    .unwrap();
    common::drop_tables(&url, &[table]).await;
}
