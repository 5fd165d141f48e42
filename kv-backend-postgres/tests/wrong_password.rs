//! A wrong password is a clear error that does not contain the password,
//! and `Debug` of the options never shows it.
#![allow(clippy::unwrap_used)]

mod common;

use kv_backend_postgres::{PgOptions, PgStore};

#[tokio::test]
async fn wrong_password_is_a_clear_error_without_the_password() {
    let Some(url) = common::pg_url("wrong_password_is_a_clear_error_without_the_password") else {
        return;
    };
    // Swap the password in the test URL for a wrong, recognisable one.
    let at = url.rfind('@').unwrap();
    let colon = url[..at].rfind(':').unwrap();
    let secret = "Wr0ng-Pa55word-77";
    let bad = format!("{}:{secret}{}", &url[..colon], &url[at..]);
    let options = PgOptions::new(&bad).connect_timeout(std::time::Duration::from_secs(5));
    assert!(!format!("{options:?}").contains(secret));
    let err = PgStore::open(options).await.unwrap_err();
    let text = format!("{err} | {err:?}");
    assert!(!text.contains(secret), "the password leaked: {text}");
    assert!(
        text.contains("password authentication failed"),
        "not a clear message: {text}"
    );
    assert!(
        !err.is_temporary(),
        "a wrong password is not worth retrying: {text}"
    );
}
