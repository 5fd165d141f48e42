//! Shared by the S3 tests: the test server (or a clear skip), a fresh
//! prefix per test run so runs never collide, and clean-up.
#![allow(dead_code, clippy::unwrap_used)]

pub mod hooked;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use kv_backend_s3::{S3Config, S3Store};
use object_store::path::Path;
use object_store::ObjectStore;

/// The S3 endpoint from `KV_TEST_S3_ENDPOINT`; `None` (and a note on
/// stderr) when it is unset. Under `CI=true` a missing server fails.
pub fn s3_endpoint(test: &str) -> Option<String> {
    match std::env::var("KV_TEST_S3_ENDPOINT") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{test}: KV_TEST_S3_ENDPOINT is not set and CI=true (./scripts/test.sh starts an S3 server)");
            }
            eprintln!("{test}: skipped: KV_TEST_S3_ENDPOINT is not set (./scripts/test.sh starts an S3-compatible server)");
            None
        }
    }
}

/// The bucket: `KV_TEST_S3_BUCKET`, default `kv-test`.
pub fn bucket() -> String {
    std::env::var("KV_TEST_S3_BUCKET")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "kv-test".into())
}

/// A prefix no other test (or run) uses.
pub fn unique_prefix(test: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "kv-tests/{test}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The server's config for `prefix`: credentials from the environment,
/// or moto's `testing` when unset (the server accepts any).
pub fn config(endpoint: &str, prefix: &str) -> S3Config {
    let env = |k: &str, default: &str| {
        std::env::var(k)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_owned())
    };
    S3Config::new(bucket())
        .prefix(prefix)
        .endpoint(endpoint)
        .region(env("AWS_REGION", "us-east-1"))
        .credentials(
            env("AWS_ACCESS_KEY_ID", "testing"),
            env("AWS_SECRET_ACCESS_KEY", "testing"),
        )
}

/// A backend on the test server under `prefix`.
pub fn s3_store(endpoint: &str, prefix: &str) -> S3Store {
    S3Store::s3(config(endpoint, prefix)).unwrap()
}

/// Deletes every object under `prefix`.
pub async fn remove_prefix(store: &Arc<dyn ObjectStore>, prefix: &str) {
    let prefix = Path::parse(prefix).unwrap();
    let locations = store.list(Some(&prefix)).map_ok(|m| m.location).boxed();
    store
        .delete_stream(locations)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
}

/// Deletes every object under `prefix` on the test server.
pub async fn clean_server(endpoint: &str, prefix: &str) {
    let store = s3_store(endpoint, "");
    remove_prefix(store.object_store(), prefix).await;
}
