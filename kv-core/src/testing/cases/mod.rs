//! The cases, one module per area of the semantics (DESIGN §2 and §3).
//!
//! Each case is a plain `async fn(&dyn BackendFactory, &ConformanceOptions)
//! -> CaseResult` whose name says what it proves.

use super::Case;
use crate::metadata::UserMetadata;

/// Fails the case unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::testing::Failure(format!(
                "{} (line {})", format!($($fmt)+), line!()
            )));
        }
    };
}

/// Fails the case unless both sides are equal.
macro_rules! ensure_eq {
    ($left:expr, $right:expr $(,)?) => {
        // `match` keeps temporaries alive, as in `assert_eq!`.
        match (&$left, &$right) {
            (l, r) => {
                if l != r {
                    return Err($crate::testing::Failure(format!(
                        "`{}` != `{}`: {:?} vs {:?} (line {})",
                        stringify!($left), stringify!($right), l, r, line!()
                    )));
                }
            }
        }
    };
    ($left:expr, $right:expr, $($fmt:tt)+) => {
        match (&$left, &$right) {
            (l, r) => {
                if l != r {
                    return Err($crate::testing::Failure(format!(
                        "{}: {:?} vs {:?} (line {})", format!($($fmt)+), l, r, line!()
                    )));
                }
            }
        }
    };
}

/// Fails the case unless the expression is an `Err` matching the pattern.
macro_rules! ensure_err {
    ($expr:expr, $pat:pat) => {
        match $expr {
            Err($pat) => {}
            other => {
                return Err($crate::testing::Failure(format!(
                    "`{}`: expected Err({}), got {:?} (line {})",
                    stringify!($expr),
                    stringify!($pat),
                    other,
                    line!()
                )))
            }
        }
    };
}

/// Builds a [`Case`] from an async fn.
macro_rules! case {
    ($name:ident) => {
        case!($name, $crate::testing::Needs::Nothing)
    };
    ($name:ident, $needs:expr) => {
        $crate::testing::Case {
            name: stringify!($name),
            needs: $needs,
            run: |f, o| Box::pin($name(f, o)),
        }
    };
}

mod admin;
mod atomic;
mod batch;
mod keys;
mod metadata;
mod migrate;
mod namespaces;
mod patterns;
mod scan;
mod ttl;
mod values;

/// Every case of the suite, in a fixed order.
pub fn all_cases() -> Vec<Case> {
    let mut all = Vec::new();
    all.extend(keys::cases());
    all.extend(patterns::cases());
    all.extend(values::cases());
    all.extend(metadata::cases());
    all.extend(ttl::cases());
    all.extend(atomic::cases());
    all.extend(batch::cases());
    all.extend(namespaces::cases());
    all.extend(scan::cases());
    all.extend(admin::cases());
    all.extend(migrate::cases());
    all
}

/// A user-metadata object from a `json!` literal.
fn meta(v: serde_json::Value) -> UserMetadata {
    match v {
        serde_json::Value::Object(m) => m,
        other => {
            let mut m = UserMetadata::new();
            m.insert("value".into(), other);
            m
        }
    }
}

/// `n` seconds.
fn secs(n: u64) -> std::time::Duration {
    std::time::Duration::from_secs(n)
}
