//! The PostgreSQL backend passes the whole kv-core conformance suite
//! against a real server (`KV_TEST_POSTGRES_URL`), each case on a fresh
//! table.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use kv_backend_postgres::{PgOptions, PgStore};
use kv_core::testing::{run_conformance, ConformanceOptions};
use kv_core::Backend;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_passes_conformance_suite() {
    let Some(url) = common::pg_url("postgres_passes_conformance_suite") else {
        return;
    };
    let tables: Arc<Mutex<Vec<String>>> = Arc::default();
    let factory = {
        let (url, tables) = (url.clone(), Arc::clone(&tables));
        Arc::new(move || {
            let (url, tables) = (url.clone(), Arc::clone(&tables));
            async move {
                let table = common::unique_table("conf");
                tables.lock().unwrap().push(table.clone());
                let store = PgStore::open(PgOptions::new(url).table(table).pool_size(8)).await?;
                Ok(Arc::new(store) as Arc<dyn Backend>)
            }
        })
    };
    let report = run_conformance("postgres", factory, ConformanceOptions::default()).await;
    let created = tables.lock().unwrap().clone();
    common::drop_tables(&url, &created).await;
    report.assert_all_passed();
}
