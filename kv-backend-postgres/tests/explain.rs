//! The statements use the indexes: a prefix pattern scans the primary key
//! range (key in `COLLATE "C"`), and `find_by_metadata` uses the GIN index
//! on `metadata`, on a table large enough for the planner to care.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use kv_backend_postgres::Planned;
use kv_core::{KVStore, MetadataFilter, SetOptions, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_scans_and_metadata_filters_use_their_indexes() {
    let Some(url) = common::pg_url("prefix_scans_and_metadata_filters_use_their_indexes") else {
        return;
    };
    let backend = common::store(&url, "explain").await;
    let table = backend.options().table.clone();
    let store = Store::new(Arc::new(backend.clone()));
    // 20,000 rows, 0.5% tagged "rare".
    let mut batch = Vec::new();
    for i in 0..20_000u32 {
        let tag = if i % 200 == 0 { "rare" } else { "common" };
        let meta = serde_json::json!({"tag": tag, "n": i});
        batch.push((format!("users.{i:05}.name"), meta));
    }
    for chunk in batch.chunks(1000) {
        let mut b = kv_core::Batch::new();
        for (k, m) in chunk {
            b = b.set_with(
                k.clone(),
                1,
                SetOptions::new().metadata(m.as_object().cloned().unwrap()),
            );
        }
        store.batch(b).await.unwrap();
    }
    // VACUUM also moves the GIN index's pending entries into the index
    // proper, as autovacuum does on a live table.
    sqlx::query(sqlx::AssertSqlSafe(format!(r#"VACUUM ANALYZE "{table}""#)))
        .execute(backend.pool())
        .await
        .unwrap();

    let plan = backend
        .query_plan("default", &Planned::PrefixScan("users.001".into()))
        .await
        .unwrap()
        .join("\n");
    assert!(
        plan.contains(&format!("Index Scan using {table}_pkey")),
        "prefix scan plan:\n{plan}"
    );
    assert!(!plan.contains("Seq Scan"), "prefix scan plan:\n{plan}");

    let filter = MetadataFilter::new().eq("tag", "rare");
    let plan = backend
        .query_plan("default", &Planned::FindByMetadata(filter.clone()))
        .await
        .unwrap()
        .join("\n");
    assert!(
        plan.contains(&format!("{table}_metadata")),
        "find_by_metadata plan:\n{plan}"
    );
    assert!(!plan.contains("Seq Scan"), "find_by_metadata plan:\n{plan}");
    // And the answer is right.
    assert_eq!(
        store
            .find_by_metadata("users.**", &filter)
            .await
            .unwrap()
            .len(),
        100
    );
    common::drop_tables(&url, &[table]).await;
}
