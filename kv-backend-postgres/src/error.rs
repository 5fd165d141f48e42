//! The driver's errors mapped in one place, and bounded retries of
//! idempotent operations after temporary failures.

use std::future::Future;
use std::time::Duration;

use kv_core::Error;

/// Whether retrying later may succeed: connection loss, pool and statement
/// timeouts, serialization failures and deadlocks, a server shutting down
/// or out of connections.
pub(crate) fn is_temporary(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") // connection exceptions
                || matches!(
                    code.as_ref(),
                    "40001" // serialization_failure
                        | "40P01" // deadlock_detected
                        | "53300" // too_many_connections
                        | "57014" // query_canceled (statement timeout)
                        | "57P01" // admin_shutdown (pg_terminate_backend)
                        | "57P02" // crash_shutdown
                        | "57P03" // cannot_connect_now
                )
        }),
        _ => false,
    }
}

/// Maps a driver error. Messages come from the server or the driver and
/// never hold the connection URL or password (the URL is parsed by us, and
/// authentication failures name only the user).
pub(crate) fn map(e: sqlx::Error) -> Error {
    match e {
        sqlx::Error::PoolClosed => Error::Closed {
            backend: "postgres".into(),
        },
        e => {
            let temporary = is_temporary(&e);
            Error::backend("postgres", temporary, e)
        }
    }
}

/// Runs an idempotent operation, again after a temporary failure, at most
/// `attempts` times in all, with a short growing pause between.
pub(crate) async fn retry<T, F, Fut>(attempts: u32, mut op: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < attempts && is_temporary(&e) => {
                tokio::time::sleep(Duration::from_millis(20 << attempt.min(6))).await;
                attempt += 1;
            }
            Err(e) => return Err(map(e)),
        }
    }
}
