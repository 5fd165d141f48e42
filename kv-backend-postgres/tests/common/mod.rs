//! Shared by the PostgreSQL tests: the server URL (or a clear skip), and
//! a fresh table per test so runs never collide.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};

use kv_backend_postgres::{PgOptions, PgStore};

/// The test server's URL from `KV_TEST_POSTGRES_URL`; `None` (and a note on
/// stderr) when it is unset. Under `CI=true` a missing server fails.
pub fn pg_url(test: &str) -> Option<String> {
    match std::env::var("KV_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{test}: KV_TEST_POSTGRES_URL is not set and CI=true (./scripts/test.sh starts PostgreSQL)");
            }
            eprintln!("{test}: skipped: KV_TEST_POSTGRES_URL is not set (./scripts/test.sh starts a PostgreSQL server)");
            None
        }
    }
}

/// A table name no other test (or run) uses.
pub fn unique_table(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "t_{prefix}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Opens a store on a fresh table.
pub async fn store(url: &str, prefix: &str) -> PgStore {
    PgStore::open(PgOptions::new(url).table(unique_table(prefix)).pool_size(8))
        .await
        .unwrap()
}

/// Drops tables created by a test (and their schema rows).
pub async fn drop_tables(url: &str, tables: &[String]) {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    for t in tables {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            r#"DROP TABLE IF EXISTS "{t}""#
        )))
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query("DELETE FROM kv_schema WHERE tbl = $1")
            .bind(t)
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
}

/// A counter from the backend's `stats()` fields.
pub async fn stat(backend: &PgStore, field: &str) -> u64 {
    let stats = kv_core::Backend::stats(backend).await.unwrap();
    stats.fields[field].as_u64().unwrap()
}
