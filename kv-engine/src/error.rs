//! The engine's error type, and its one conversion into `kv_core::Error`.

use std::fmt;
use std::path::PathBuf;

/// Result alias of the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error, with what was being done.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file failed an integrity check at `offset`. Nothing is skipped
    /// silently: the database does not open.
    #[error("corruption in {} at byte {offset}: {reason}", file.display())]
    Corruption {
        /// The file.
        file: PathBuf,
        /// Byte offset of the bad data.
        offset: u64,
        /// What check failed.
        reason: String,
    },
    /// Another handle or process holds the database's lock.
    #[error("the database at {} is locked by another handle or process", path.display())]
    Locked {
        /// The database directory.
        path: PathBuf,
    },
    /// The database was opened read-only.
    #[error("the database is open read-only")]
    ReadOnly,
    /// The database was closed.
    #[error("the database is closed")]
    Closed,
    /// An earlier write or fsync failed; the engine refuses further work
    /// until it is reopened (what reached disk is then recovered).
    #[error("the database stopped after an I/O failure ({reason}); reopen it")]
    Poisoned {
        /// The failure that stopped it.
        reason: String,
    },
    /// An integer operation on a value that is not a decimal integer.
    #[error("the value of key {key} is not an integer")]
    NotAnInteger {
        /// The key, shown lossily as UTF-8.
        key: String,
    },
    /// An integer operation would overflow `i64`.
    #[error("incrementing key {key} by {delta} would overflow")]
    Overflow {
        /// The key, shown lossily as UTF-8.
        key: String,
        /// The requested change.
        delta: i64,
    },
    /// An argument out of range (an empty key, a key or value too large for
    /// the format, a bad option).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl Error {
    pub(crate) fn io(context: impl fmt::Display, source: std::io::Error) -> Error {
        Error::Io {
            context: context.to_string(),
            source,
        }
    }

    pub(crate) fn corruption(
        file: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Error {
        Error::Corruption {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }
}

/// A key for messages: UTF-8 when it is, escaped bytes otherwise, shortened.
pub(crate) fn show_key(key: &[u8]) -> String {
    let s = String::from_utf8_lossy(&key[..key.len().min(120)]).into_owned();
    if key.len() > 120 {
        format!("{s}…")
    } else {
        s
    }
}

impl From<Error> for kv_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Io { context, source } => kv_core::Error::Io { context, source },
            Error::Corruption {
                file,
                offset,
                reason,
            } => kv_core::Error::Corruption {
                location: format!("{} at byte {offset}", file.display()),
                reason,
            },
            Error::Locked { path } => kv_core::Error::Locked {
                path: path.display().to_string(),
            },
            Error::ReadOnly => kv_core::Error::ReadOnly {
                backend: "engine".into(),
            },
            Error::Closed => kv_core::Error::Closed {
                backend: "engine".into(),
            },
            other @ Error::Poisoned { .. } => kv_core::Error::backend("engine", false, other),
            Error::NotAnInteger { key } => kv_core::Error::TypeMismatch {
                key,
                operation: "increment".into(),
                expected: "an integer".into(),
                found: "a non-integer value".into(),
            },
            Error::Overflow { key, delta } => kv_core::Error::Overflow {
                key,
                operation: "increment".into(),
                current: 0,
                delta,
            },
            Error::InvalidArgument(reason) => kv_core::Error::invalid_argument("engine", reason),
        }
    }
}
