//! The object store's errors mapped in one place.
//!
//! | `object_store::Error` | meaning here |
//! |---|---|
//! | `NotFound` | the record is absent ([`Failure::NotFound`]) |
//! | `Precondition`, `AlreadyExists`, `NotModified` | a conditional PUT lost ([`Failure::Conflict`]): the store's precondition failed |
//! | `NotImplemented`, `NotSupported` | [`Error::Unsupported`], naming the store |
//! | `PermissionDenied`, `Unauthenticated`, `InvalidPath`, unknown configuration | [`Error::Backend`], not temporary |
//! | `Generic` and the rest | [`Error::Backend`], temporary when the cause is a connection failure, a timeout, an interrupted request, HTTP 5xx or 429 (object_store has already retried those a few times) |
//!
//! Messages come from `object_store`: they name the object path and the
//! HTTP status, never credentials (requests are signed in headers).

use std::error::Error as StdError;

use kv_core::Error;
use object_store::client::{HttpError, HttpErrorKind};

/// The backend's name in errors and stats.
pub(crate) const BACKEND: &str = "s3";

/// What a failed object-store call means for the caller.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No object at the path.
    NotFound,
    /// A conditional PUT's condition did not hold.
    Conflict,
    /// Anything else, already mapped.
    Other(Error),
}

/// Maps an object-store error; `store` names the store (its `Display`).
pub(crate) fn classify(e: object_store::Error, store: &str) -> Failure {
    use object_store::Error as E;
    match e {
        E::NotFound { .. } => Failure::NotFound,
        E::Precondition { .. } | E::AlreadyExists { .. } | E::NotModified { .. } => {
            Failure::Conflict
        }
        E::NotImplemented {
            operation,
            implementer,
        } => Failure::Other(Error::Unsupported {
            operation,
            backend: BACKEND.into(),
            reason: format!("the object store {implementer} does not implement it"),
        }),
        E::NotSupported { source } => Failure::Other(Error::Unsupported {
            operation: "object store request".into(),
            backend: BACKEND.into(),
            reason: format!("the object store {store} does not support it: {source}"),
        }),
        E::UnknownConfigurationKey { store, key } => Failure::Other(Error::config(
            "s3",
            format!("unknown configuration key {key:?} for the {store} store"),
        )),
        e @ (E::PermissionDenied { .. } | E::Unauthenticated { .. } | E::InvalidPath { .. }) => {
            Failure::Other(Error::backend(BACKEND, false, e))
        }
        e => {
            let temporary = is_temporary(&e);
            Failure::Other(Error::backend(BACKEND, temporary, e))
        }
    }
}

/// Maps an error where "not found" and "conflict" are failures too.
pub(crate) fn map(e: object_store::Error, store: &str) -> Error {
    let text = e.to_string();
    match classify(e, store) {
        Failure::Other(e) => e,
        Failure::NotFound | Failure::Conflict => Error::backend(BACKEND, false, text),
    }
}

/// The HTTP status an error reports. object_store's retry error says
/// "Server returned non-2xx status code: 503 Service Unavailable: …"; its
/// type is not public, so the status is read from the text.
fn http_status(e: &(dyn StdError + 'static)) -> Option<u16> {
    let text = e.to_string();
    let at = text.find("status code: ")? + "status code: ".len();
    let digits = text.get(at..at + 3)?;
    digits.parse().ok().filter(|s| (100..600).contains(s))
}

/// Whether the store answered a request with a status that refuses it
/// (a 4xx but 429, or 501 Not Implemented), rather than failing to
/// answer (connection, timeout, overload: other 5xx and 429). A
/// condition's own failures (404, 409, 412) are mapped by object_store
/// before this, and `classify` sees them first.
pub(crate) fn refused(e: &object_store::Error) -> bool {
    http_status(e).is_some_and(|s| ((400..500).contains(&s) && s != 429) || s == 501)
}

/// Whether retrying later may succeed: walks the error's causes.
fn is_temporary(e: &(dyn StdError + 'static)) -> bool {
    if matches!(
        e.downcast_ref::<object_store::Error>(),
        Some(object_store::Error::JoinError { .. })
    ) {
        return true;
    }
    if http_status(e).is_some_and(|s| s >= 500 || s == 429) {
        return true;
    }
    let mut cause: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(http) = c.downcast_ref::<HttpError>() {
            if matches!(
                http.kind(),
                HttpErrorKind::Connect
                    | HttpErrorKind::Request
                    | HttpErrorKind::Timeout
                    | HttpErrorKind::Interrupted
            ) {
                return true;
            }
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            if matches!(
                io.kind(),
                K::Interrupted
                    | K::TimedOut
                    | K::WouldBlock
                    | K::ConnectionRefused
                    | K::ConnectionReset
                    | K::ConnectionAborted
                    | K::BrokenPipe
            ) {
                return true;
            }
        }
        cause = c.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(s: &str) -> Box<dyn StdError + Send + Sync> {
        s.to_owned().into()
    }

    #[test]
    fn each_kind_maps_as_documented() {
        use object_store::Error as E;
        let nf = E::NotFound {
            path: "p".into(),
            source: boxed("x"),
        };
        assert!(matches!(classify(nf, "s"), Failure::NotFound));
        for e in [
            E::Precondition {
                path: "p".into(),
                source: boxed("x"),
            },
            E::AlreadyExists {
                path: "p".into(),
                source: boxed("x"),
            },
        ] {
            assert!(matches!(classify(e, "s"), Failure::Conflict));
        }
        let ni = E::NotImplemented {
            operation: "put_opts Update".into(),
            implementer: "LocalFileSystem(/tmp)".into(),
        };
        match classify(ni, "s") {
            Failure::Other(Error::Unsupported { reason, .. }) => {
                assert!(reason.contains("LocalFileSystem"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        let denied = E::PermissionDenied {
            path: "p".into(),
            source: boxed("x"),
        };
        assert!(matches!(
            classify(denied, "s"),
            Failure::Other(Error::Backend {
                temporary: false,
                ..
            })
        ));
    }

    #[test]
    fn a_status_that_refuses_the_request_is_told_from_one_that_may_pass() {
        let status = |text: &str| object_store::Error::Generic {
            store: "S3",
            source: boxed(text),
        };
        for refusing in [
            "Server returned non-2xx status code: 400 Bad Request: InvalidArgument",
            "Server returned non-2xx status code: 403 Forbidden: ",
            "Server returned non-2xx status code: 501 Not Implemented: If-Match",
        ] {
            assert!(refused(&status(refusing)), "{refusing}");
        }
        for passing in [
            "Server returned non-2xx status code: 503 Service Unavailable: SlowDown",
            "Server returned non-2xx status code: 500 Internal Server Error: ",
            "Server returned non-2xx status code: 429 Too Many Requests: ",
            "error sending request",
            "status code: 4",
        ] {
            assert!(!refused(&status(passing)), "{passing}");
        }
        let io = object_store::Error::Generic {
            store: "S3",
            source: Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        };
        assert!(!refused(&io));
    }

    #[test]
    fn connection_failures_are_temporary() {
        let refused = object_store::Error::Generic {
            store: "S3",
            source: Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        };
        assert!(matches!(
            classify(refused, "s"),
            Failure::Other(Error::Backend {
                temporary: true,
                ..
            })
        ));
        let http = object_store::Error::Generic {
            store: "S3",
            source: Box::new(HttpError::new(
                HttpErrorKind::Connect,
                std::io::Error::other("refused"),
            )),
        };
        assert!(matches!(
            classify(http, "s"),
            Failure::Other(Error::Backend {
                temporary: true,
                ..
            })
        ));
        let slow = object_store::Error::Generic {
            store: "S3",
            source: boxed("Server returned non-2xx status code: 503 Service Unavailable: SlowDown"),
        };
        assert!(matches!(
            classify(slow, "s"),
            Failure::Other(Error::Backend {
                temporary: true,
                ..
            })
        ));
        let bad = object_store::Error::Generic {
            store: "S3",
            source: boxed("Server returned non-2xx status code: 400 Bad Request"),
        };
        assert!(matches!(
            classify(bad, "s"),
            Failure::Other(Error::Backend {
                temporary: false,
                ..
            })
        ));
    }
}
