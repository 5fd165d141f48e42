//! 16 tasks, each with its own `S3Store` and its own `Store` over the same
//! bucket and prefix, each doing 50 increments of one key: the key ends at
//! exactly 800, version 800. Nothing is shared in the process but the
//! objects, so only the store's conditional PUTs (`If-None-Match: *` to
//! create, `If-Match: <etag>` to update) keep the count — on the test
//! server, and on one in-memory store shared by 16 backends.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use kv_backend_s3::{S3Options, S3Store};
use kv_core::{Backend, CasMechanism, KVStore, Store, Value};
use object_store::memory::InMemory;
use object_store::ObjectStore;

const TASKS: usize = 16;
const PER_TASK: usize = 50;

/// Runs the increments on one backend per task; checks the total.
async fn race(backends: Vec<S3Store>) {
    assert_eq!(backends.len(), TASKS);
    let mut handles = Vec::new();
    for backend in backends {
        handles.push(tokio::spawn(async move {
            let store = Store::new(Arc::new(backend));
            for _ in 0..PER_TASK {
                store.increment("shared.counter", 1).await.unwrap();
            }
            store
        }));
    }
    let mut stores = Vec::new();
    for h in handles {
        stores.push(h.await.unwrap());
    }
    let total = (TASKS * PER_TASK) as i64;
    let first = &stores[0];
    assert_eq!(
        first.get("shared.counter").await.unwrap(),
        Some(Value::Int(total))
    );
    let meta = first.get_metadata("shared.counter").await.unwrap().unwrap();
    assert_eq!(
        meta.system.version, total as u64,
        "one version per increment"
    );
    let mut conflicts = 0;
    for s in &stores {
        let stats = s.stats().await.unwrap();
        conflicts += stats.backend.fields["precondition_failures"]
            .as_u64()
            .unwrap();
    }
    println!("{total} increments by {TASKS} backends: {conflicts} conditional PUTs lost a race and were retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_s3_backends_incrementing_one_key_lose_nothing() {
    let Some(endpoint) =
        common::s3_endpoint("sixteen_s3_backends_incrementing_one_key_lose_nothing")
    else {
        return;
    };
    let prefix = common::unique_prefix("increments");
    let backends: Vec<S3Store> = (0..TASKS)
        .map(|_| common::s3_store(&endpoint, &prefix))
        .collect();
    assert_eq!(
        backends[0].probe().await.unwrap(),
        CasMechanism::ConditionalPut,
        "the server honours conditional PUTs"
    );
    assert!(backends[0].capabilities().multi_process);
    let started = std::time::Instant::now();
    race(backends).await;
    println!("server: {:.1} s", started.elapsed().as_secs_f64());
    common::clean_server(&endpoint, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_backends_on_one_memory_store_lose_nothing() {
    let shared: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let backends: Vec<S3Store> = (0..TASKS)
        .map(|_| S3Store::new(Arc::clone(&shared), S3Options::with_prefix("kv")).unwrap())
        .collect();
    race(backends).await;
}
