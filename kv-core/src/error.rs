//! The one error type of the crate family.
//!
//! Every backend maps its driver's errors into [`Error`] in one place, so a
//! caller matches on the same variants whatever store it runs on. Variants are
//! structs that name what was wrong (the key, the pattern, the limit, the
//! backend); secrets never appear in them.

use std::fmt;

/// Result alias used throughout DataKnobs KV.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed error from a driver, kept as the `source` of [`Error::Backend`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The rule a key or namespace broke.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyRule {
    /// The key is the empty string.
    Empty,
    /// The key is longer than the store's limit (in bytes).
    TooLong {
        /// Length of the key in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// A segment is empty: a leading, trailing or doubled `.`.
    EmptySegment {
        /// Byte offset of the offending position.
        position: usize,
    },
    /// The key holds an ASCII control character.
    ControlCharacter {
        /// Byte offset of the character.
        position: usize,
    },
    /// The key holds whitespace.
    Whitespace {
        /// Byte offset of the character.
        position: usize,
    },
    /// A namespace holds a `.` (a namespace is a single segment).
    DotInNamespace {
        /// Byte offset of the dot.
        position: usize,
    },
}

impl fmt::Display for KeyRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyRule::Empty => f.write_str("must not be empty"),
            KeyRule::TooLong { len, max } => {
                write!(f, "is {len} bytes long; the limit is {max} bytes")
            }
            KeyRule::EmptySegment { position } => write!(
                f,
                "has an empty segment at byte {position} (no leading, trailing or doubled '.')"
            ),
            KeyRule::ControlCharacter { position } => {
                write!(f, "has a control character at byte {position}")
            }
            KeyRule::Whitespace { position } => {
                write!(f, "has whitespace at byte {position}")
            }
            KeyRule::DotInNamespace { position } => write!(
                f,
                "has a '.' at byte {position}; a namespace is a single segment"
            ),
        }
    }
}

/// Shortens user input for error messages so that a 1 MiB key does not
/// become a 1 MiB error line.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 120;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Everything that can go wrong in DataKnobs KV.
///
/// Missing keys are never errors (`Ok(None)` / `Ok(false)`). Bad input is
/// reported before anything is written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key broke one of the key rules.
    #[error("invalid key {key:?}: it {rule}")]
    InvalidKey {
        /// The key as given (shortened when very long).
        key: String,
        /// The rule it broke.
        rule: KeyRule,
    },

    /// A namespace name broke one of the namespace rules.
    #[error("invalid namespace {namespace:?}: it {rule}")]
    InvalidNamespace {
        /// The namespace as given.
        namespace: String,
        /// The rule it broke.
        rule: KeyRule,
    },

    /// A glob pattern could not be parsed.
    #[error("invalid pattern {pattern:?} at position {position}: {reason}")]
    InvalidPattern {
        /// The pattern as given.
        pattern: String,
        /// Character position of the problem (0-based).
        position: usize,
        /// What is wrong there.
        reason: String,
    },

    /// A value cannot be stored as asked (wrong value type for the declared
    /// [`ValueType`](crate::ValueType), missing content type, ...).
    #[error("invalid value for key {key:?}: {reason}")]
    InvalidValue {
        /// The key the value was meant for.
        key: String,
        /// Why it was refused.
        reason: String,
    },

    /// A value is larger than the store's limit.
    #[error("value for key {key:?} is {size} bytes; the limit is {limit} bytes")]
    ValueTooLarge {
        /// The key the value was meant for.
        key: String,
        /// Encoded size of the value in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },

    /// User metadata was refused (not an object, a bad reserved field, ...).
    #[error("invalid metadata for key {key:?}: field {field:?} {reason}")]
    InvalidMetadata {
        /// The key the metadata was meant for.
        key: String,
        /// The offending field (empty when the whole value is wrong).
        field: String,
        /// Why it was refused.
        reason: String,
    },

    /// Options or arguments that contradict each other or are out of range.
    #[error("invalid argument {argument}: {reason}")]
    InvalidArgument {
        /// The argument or option.
        argument: String,
        /// Why it was refused.
        reason: String,
    },

    /// An operation needs a value of another type (increment on a string,
    /// append on a number, `get_as` into the wrong Rust type, ...).
    #[error("type mismatch on key {key:?}: {operation} needs {expected}, found {found}")]
    TypeMismatch {
        /// The key involved.
        key: String,
        /// The operation that was attempted.
        operation: String,
        /// What the operation needs.
        expected: String,
        /// What the key holds.
        found: String,
    },

    /// An integer operation would overflow `i64`.
    #[error("{operation} on key {key:?} would overflow: {current} + {delta}")]
    Overflow {
        /// The key involved.
        key: String,
        /// The operation that was attempted.
        operation: String,
        /// The stored value.
        current: i64,
        /// The requested change.
        delta: i64,
    },

    /// Stored data failed an integrity check; the data is not returned.
    #[error("corruption in {location}: {reason}")]
    Corruption {
        /// Where: a key (`namespace/key`), a file, a file and offset.
        location: String,
        /// What check failed.
        reason: String,
    },

    /// An optimistic operation kept losing races and gave up.
    #[error("operation {operation} on key {key:?} gave up after {attempts} conflicting attempts")]
    Conflict {
        /// The key involved.
        key: String,
        /// The operation that was attempted.
        operation: String,
        /// How many attempts were made.
        attempts: u32,
    },

    /// The backend does not support this operation (for example an atomic
    /// batch on an object store). Nothing was written.
    #[error("{operation} is not supported by the {backend} backend: {reason}")]
    Unsupported {
        /// The operation that was refused.
        operation: String,
        /// The backend's name.
        backend: String,
        /// Why, and what to do instead.
        reason: String,
    },

    /// Configuration is invalid or names a backend that is not compiled in.
    #[error("configuration error{}: {reason}", field.as_ref().map(|f| format!(" in {f}")).unwrap_or_default())]
    Config {
        /// The field (and file, when known) that is wrong.
        field: Option<String>,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// The store (or backend) was closed.
    #[error("the {backend} store is closed")]
    Closed {
        /// The backend's name.
        backend: String,
    },

    /// The store was opened read-only and a write was attempted.
    #[error("the {backend} store is read-only")]
    ReadOnly {
        /// The backend's name.
        backend: String,
    },

    /// Another process or handle holds the store's exclusive lock.
    #[error("the store at {path} is locked by another process or handle")]
    Locked {
        /// The locked path.
        path: String,
    },

    /// An I/O error with what was being done when it happened.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A record or value could not be encoded or decoded.
    #[error("codec error: {reason}")]
    Codec {
        /// What failed.
        reason: String,
    },

    /// An error from a backend's driver.
    #[error("{backend} backend error{}: {source}", if *temporary { " (temporary)" } else { "" })]
    Backend {
        /// The backend's name.
        backend: String,
        /// Whether retrying later may succeed (connection loss, timeout,
        /// serialization failure, busy database).
        temporary: bool,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// Whether retrying the operation later may succeed.
    pub fn is_temporary(&self) -> bool {
        match self {
            Error::Backend { temporary, .. } => *temporary,
            Error::Conflict { .. } => true,
            Error::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::WouldBlock
            ),
            _ => false,
        }
    }

    /// Whether the error is bad input from the caller (as opposed to a
    /// failure of the store). Nothing was written when this is true.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Error::InvalidKey { .. }
                | Error::InvalidNamespace { .. }
                | Error::InvalidPattern { .. }
                | Error::InvalidValue { .. }
                | Error::ValueTooLarge { .. }
                | Error::InvalidMetadata { .. }
                | Error::InvalidArgument { .. }
                | Error::TypeMismatch { .. }
                | Error::Overflow { .. }
        )
    }

    /// Builds an [`Error::Io`].
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Builds an [`Error::Codec`].
    pub fn codec(reason: impl fmt::Display) -> Self {
        Error::Codec {
            reason: reason.to_string(),
        }
    }

    /// Builds an [`Error::Config`] for a field.
    pub fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            field: Some(field.into()),
            reason: reason.into(),
        }
    }

    /// Builds an [`Error::InvalidArgument`].
    pub fn invalid_argument(argument: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            argument: argument.into(),
            reason: reason.into(),
        }
    }

    /// Builds an [`Error::Backend`].
    pub fn backend(
        backend: impl Into<String>,
        temporary: bool,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Backend {
            backend: backend.into(),
            temporary,
            source: source.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_key_message_names_key_and_rule() {
        let e = Error::InvalidKey {
            key: "a..b".into(),
            rule: KeyRule::EmptySegment { position: 2 },
        };
        let msg = e.to_string();
        assert!(msg.contains("\"a..b\""), "{msg}");
        assert!(msg.contains("empty segment at byte 2"), "{msg}");
        assert!(e.is_invalid_input());
        assert!(!e.is_temporary());
    }

    #[test]
    fn shorten_keeps_char_boundaries() {
        let long = "é".repeat(200);
        let s = shorten(&long);
        assert!(s.ends_with('…'));
        assert!(s.len() <= 124);
    }

    #[test]
    fn config_error_names_field() {
        let e = Error::config("store.backend", "unknown backend \"foo\"");
        assert_eq!(
            e.to_string(),
            "configuration error in store.backend: unknown backend \"foo\""
        );
    }
}
