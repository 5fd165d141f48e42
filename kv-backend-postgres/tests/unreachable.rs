//! A server that cannot be reached is reported with its cause, within the
//! connect timeout, and without the password. Needs no server.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use kv_backend_postgres::{PgOptions, PgStore};

#[tokio::test]
async fn refused_connection_names_the_cause_within_the_timeout() {
    let started = Instant::now();
    let err = PgStore::open(
        PgOptions::new("postgres://kv:s3cret-pw@127.0.0.1:1/db")
            .connect_timeout(Duration::from_secs(1)),
    )
    .await
    .unwrap_err();
    let elapsed = started.elapsed();
    let text = err.to_string();
    assert!(text.to_lowercase().contains("refused"), "{text}");
    assert!(!text.contains("s3cret-pw"), "{text}");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
}
