//! Pattern operations scan only the key range of the pattern's literal
//! prefix: the statements search the primary key (SEARCH, never a full
//! SCAN), and expiry cleanup uses its index.
#![allow(clippy::unwrap_used)]

use kv_backend_sqlite::{Planned, SqliteOptions, SqliteStore};

#[tokio::test]
async fn range_statements_search_the_primary_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteOptions::new(dir.path().join("kv.db")))
        .await
        .unwrap();
    for (what, expect) in [
        (
            Planned::PrefixScan,
            "USING PRIMARY KEY (namespace=? AND key>? AND key<?)",
        ),
        (
            Planned::PrefixCount,
            "USING PRIMARY KEY (namespace=? AND key>? AND key<?)",
        ),
        (
            Planned::PrefixKeyScan,
            "USING PRIMARY KEY (namespace=? AND key>? AND key<?)",
        ),
        (
            Planned::PrefixDelete,
            "USING PRIMARY KEY (namespace=? AND key>? AND key<?)",
        ),
        (
            Planned::PointRead,
            "USING PRIMARY KEY (namespace=? AND key=?)",
        ),
        (
            Planned::ReadMany,
            "USING PRIMARY KEY (namespace=? AND key=?)",
        ),
        (
            Planned::RemoveExpired,
            "USING INDEX kv_store_expires_at (expires_at<?)",
        ),
    ] {
        let plan = store.query_plan(what).await.unwrap();
        let text = plan.join(" | ");
        assert!(
            plan.iter()
                .any(|l| l.starts_with("SEARCH kv_store") && l.contains(expect)),
            "{what:?}: expected a SEARCH {expect}, got: {text}"
        );
        assert!(
            !plan.iter().any(|l| l.starts_with("SCAN kv_store")),
            "{what:?} scans the whole table: {text}"
        );
    }
}
