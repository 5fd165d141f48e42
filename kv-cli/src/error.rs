//! Failures of a command and the exit code each one gets.
//!
//! | exit | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | key not found, or a condition was false (`exists`, `cas`, `set --nx`) |
//! | 2 | bad input or usage: invalid key, namespace, pattern, value, metadata or argument, wrong type, overflow, malformed config or import file, a file named on the line that cannot be read, bad flags |
//! | 3 | the store or the system failed: backend or server errors, I/O, corruption, a locked or closed store |

use std::fmt;
use std::path::Path;

use dataknobs_kv::Error;

/// Exit code: success.
pub const OK: u8 = 0;
/// Exit code: key not found, or a condition was false.
pub const NEGATIVE: u8 = 1;
/// Exit code: bad input or usage.
pub const USAGE: u8 = 2;
/// Exit code: backend or I/O failure.
pub const FAILURE: u8 = 3;

/// A failed command: its exit code, a short machine name of what went
/// wrong, and one line for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// The exit code (2 or 3; 0 for a closed stdout, which ends quietly).
    pub code: u8,
    /// A short name for `--json` output (`invalid_key`, `backend`, …).
    pub kind: &'static str,
    /// What was wrong, on one line.
    pub message: String,
}

impl CliError {
    /// Bad input or usage (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            code: USAGE,
            kind: "usage",
            message: message.into(),
        }
    }

    /// An I/O failure while doing `what` (exit 3). A closed stdout (the
    /// reader of a pipe went away) is not a failure: it ends quietly.
    pub fn io(what: &str, e: &std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return CliError::broken_pipe();
        }
        CliError {
            code: FAILURE,
            kind: "io",
            message: format!("I/O error while {what}: {e}"),
        }
    }

    /// A file named on the command line that cannot be read: a usage error
    /// when it does not exist or may not be read, an I/O failure otherwise.
    pub fn input_file(path: &Path, e: &std::io::Error) -> Self {
        use std::io::ErrorKind::{IsADirectory, NotFound, PermissionDenied};
        match e.kind() {
            NotFound | PermissionDenied | IsADirectory => {
                CliError::usage(format!("cannot read {}: {e}", path.display()))
            }
            _ => CliError::io(&format!("reading {}", path.display()), e),
        }
    }

    /// A file named on the command line that cannot be written: a usage
    /// error when its folder does not exist or may not be written, an I/O
    /// failure otherwise.
    pub fn output_file(path: &Path, e: &std::io::Error) -> Self {
        use std::io::ErrorKind::{IsADirectory, NotFound, PermissionDenied};
        match e.kind() {
            NotFound | PermissionDenied | IsADirectory => {
                CliError::usage(format!("cannot write {}: {e}", path.display()))
            }
            _ => CliError::io(&format!("writing {}", path.display()), e),
        }
    }

    /// Stdout was closed by its reader: stop quietly with exit 0.
    pub fn broken_pipe() -> Self {
        CliError {
            code: OK,
            kind: "broken_pipe",
            message: String::new(),
        }
    }

    /// Whether this ends the program without a message.
    pub fn is_quiet(&self) -> bool {
        self.code == OK
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        let code = exit_code(&e);
        if let Error::Io { source, .. } = &e {
            if source.kind() == std::io::ErrorKind::BrokenPipe {
                return CliError::broken_pipe();
            }
        }
        CliError {
            code,
            kind: kind(&e),
            message: e.to_string(),
        }
    }
}

/// The exit code of a store error: 2 for bad input, configuration and
/// operations the backend does not support; 3 for everything else.
pub fn exit_code(e: &Error) -> u8 {
    if e.is_invalid_input() {
        return USAGE;
    }
    match e {
        Error::Config { .. } | Error::Unsupported { .. } => USAGE,
        _ => FAILURE,
    }
}

/// A short machine name of a store error.
pub fn kind(e: &Error) -> &'static str {
    match e {
        Error::InvalidKey { .. } => "invalid_key",
        Error::InvalidNamespace { .. } => "invalid_namespace",
        Error::InvalidPattern { .. } => "invalid_pattern",
        Error::InvalidValue { .. } => "invalid_value",
        Error::ValueTooLarge { .. } => "value_too_large",
        Error::InvalidMetadata { .. } => "invalid_metadata",
        Error::InvalidArgument { .. } => "invalid_argument",
        Error::TypeMismatch { .. } => "type_mismatch",
        Error::Overflow { .. } => "overflow",
        Error::Corruption { .. } => "corruption",
        Error::Conflict { .. } => "conflict",
        Error::Unsupported { .. } => "unsupported",
        Error::Config { .. } => "config",
        Error::Closed { .. } => "closed",
        Error::ReadOnly { .. } => "read_only",
        Error::Locked { .. } => "locked",
        Error::Io { .. } => "io",
        Error::Codec { .. } => "codec",
        Error::Backend { .. } => "backend",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_map_to_exit_codes() {
        let invalid = Error::invalid_argument("x", "bad");
        assert_eq!(exit_code(&invalid), USAGE);
        assert_eq!(exit_code(&Error::config("store.url", "bad")), USAGE);
        let backend = Error::backend("postgres", true, "connection refused");
        assert_eq!(exit_code(&backend), FAILURE);
        let io = Error::io("reading", std::io::Error::other("disk"));
        assert_eq!(exit_code(&io), FAILURE);
        assert_eq!(CliError::from(io).kind, "io");
    }

    #[test]
    fn broken_pipe_is_quiet() {
        let e = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(CliError::io("writing", &e).is_quiet());
        assert!(CliError::from(Error::io("writing the export", e)).is_quiet());
    }
}
