//! Configuration mistakes are `Error::Config` naming the field; a server
//! that cannot be reached is a *temporary* `Error::Backend` (reads,
//! writes and the probe alike); and the secret key appears in no `Debug`
//! output and no error.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use kv_backend_s3::{S3Config, S3Options, S3Store};
use kv_core::{Backend, Error, KVStore, Store};
use object_store::aws::AmazonS3Builder;
use object_store::{BackoffConfig, RetryConfig};

const SECRET: &str = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY";

#[test]
fn bad_configuration_names_the_field() {
    match S3Store::s3(S3Config::new("")) {
        Err(Error::Config { field, .. }) => assert_eq!(field.as_deref(), Some("s3.bucket")),
        other => panic!("{other:?}"),
    }
    for bad in ["a//b", "x/../y", "tab\there"] {
        match S3Store::new(
            Arc::new(object_store::memory::InMemory::new()),
            S3Options::with_prefix(bad),
        ) {
            Err(Error::Config { field, .. }) => assert_eq!(field.as_deref(), Some("s3.prefix")),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    let zero = S3Options::default().concurrency(0);
    assert!(matches!(
        S3Store::new(Arc::new(object_store::memory::InMemory::new()), zero),
        Err(Error::Config { .. })
    ));
}

#[test]
fn the_config_sets_concurrency_and_seen_objects() {
    let config = S3Config::new("kv-test")
        .prefix("p")
        .endpoint("http://127.0.0.1:9")
        .concurrency(8)
        .seen_objects(1_000);
    let store = S3Store::s3(config.clone()).unwrap();
    let options = store.options();
    assert_eq!(
        (
            options.prefix.as_str(),
            options.concurrency,
            options.seen_objects
        ),
        ("p", 8, 1_000)
    );
    let defaults = S3Options::default();
    let store = S3Store::s3(S3Config::new("kv-test").endpoint("http://127.0.0.1:9")).unwrap();
    assert_eq!(
        (store.options().concurrency, store.options().seen_objects),
        (defaults.concurrency, defaults.seen_objects)
    );
    assert!(matches!(
        S3Store::s3(config.concurrency(0)),
        Err(Error::Config { .. })
    ));
}

#[test]
fn debug_output_hides_the_secret() {
    let config = S3Config::new("kv-test")
        .prefix("p")
        .endpoint("http://127.0.0.1:9")
        .credentials("AKIDEXAMPLE", SECRET);
    let config_debug = format!("{config:?}");
    assert!(!config_debug.contains(SECRET), "{config_debug}");
    let store = S3Store::s3(config).unwrap();
    let debug = format!("{store:?}");
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(debug.contains("AmazonS3(kv-test)"), "{debug}");
}

#[tokio::test]
async fn unreachable_server_is_a_temporary_backend_error() {
    // Port 9 (discard) on loopback: nothing listens, connections are
    // refused at once. One quick retry instead of object_store's minutes.
    let s3 = AmazonS3Builder::new()
        .with_bucket_name("kv-test")
        .with_endpoint("http://127.0.0.1:9")
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_access_key_id("AKIDEXAMPLE")
        .with_secret_access_key(SECRET)
        .with_retry(RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(2),
                base: 2.0,
            },
            max_retries: 1,
            retry_timeout: Duration::from_secs(5),
        })
        .build()
        .unwrap();
    let backend = Arc::new(S3Store::new(Arc::new(s3), S3Options::with_prefix("p")).unwrap());
    let store = Store::new(Arc::clone(&backend) as Arc<dyn Backend>);
    let errors = [
        store.get("k").await.unwrap_err(),
        store.set("k", 1.into()).await.unwrap_err(),
        store.keys("**").await.unwrap_err(),
        backend.probe().await.unwrap_err(),
    ];
    for e in errors {
        assert!(
            matches!(
                e,
                Error::Backend {
                    temporary: true,
                    ..
                }
            ),
            "not a temporary backend error: {e:?}"
        );
        assert!(e.is_temporary());
        let text = format!("{e} {e:?}");
        assert!(!text.contains(SECRET), "{text}");
    }
}
