//! [`SqliteOptions`]: where the database is and how it is opened.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use kv_core::Error;

/// SQLite's `synchronous` setting (with WAL journal mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// Commits survive a crash of the process; after a power loss the last
    /// transactions may roll back (never corruption). SQLite's recommended
    /// setting with WAL.
    #[default]
    Normal,
    /// Every commit is fsynced: survives power loss.
    Full,
    /// No fsync at all (tests, caches).
    Off,
}

impl Synchronous {
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
            Synchronous::Off => "OFF",
        }
    }
}

impl fmt::Display for Synchronous {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pragma().to_ascii_lowercase())
    }
}

impl FromStr for Synchronous {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "normal" => Ok(Synchronous::Normal),
            "full" => Ok(Synchronous::Full),
            "off" => Ok(Synchronous::Off),
            other => Err(Error::config(
                "sqlite.synchronous",
                format!("{other:?}: expected normal, full or off"),
            )),
        }
    }
}

/// The default table name.
pub const DEFAULT_TABLE: &str = "kv_store";

/// How to open a [`SqliteStore`](crate::SqliteStore). Plain data.
#[derive(Debug, Clone, PartialEq)]
pub struct SqliteOptions {
    /// The database file, or `:memory:` for a private in-memory database.
    pub path: PathBuf,
    /// Table holding the records. Default `kv_store`. Letters, digits and
    /// `_`, not starting with a digit, at most 63 characters, and not a
    /// name SQLite or this backend reserves (`kv_schema`, `sqlite_…`): it
    /// is checked, never spliced into SQL unchecked. Case does not tell
    /// tables apart (`KV_STORE` is `kv_store`), as in SQLite.
    pub table: String,
    /// Durability of commits. Default [`Synchronous::Normal`].
    pub synchronous: Synchronous,
    /// How long a connection waits for another process's write lock before
    /// failing with a temporary error. Default 5 s.
    pub busy_timeout: Duration,
    /// Read connections (each on its own thread). Default: the number of
    /// CPUs, at most 4. A `:memory:` database always uses its one
    /// connection for everything.
    pub readers: usize,
}

impl SqliteOptions {
    /// Defaults for the database file at `path` (or `:memory:`).
    pub fn new(path: impl AsRef<Path>) -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        SqliteOptions {
            path: path.as_ref().to_owned(),
            table: DEFAULT_TABLE.to_owned(),
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(5),
            readers: cpus.clamp(1, 4),
        }
    }

    /// A private in-memory database.
    pub fn memory() -> Self {
        Self::new(":memory:")
    }

    /// Sets [`table`](Self::table).
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// Sets [`synchronous`](Self::synchronous).
    pub fn synchronous(mut self, s: Synchronous) -> Self {
        self.synchronous = s;
        self
    }

    /// Sets [`busy_timeout`](Self::busy_timeout).
    pub fn busy_timeout(mut self, t: Duration) -> Self {
        self.busy_timeout = t;
        self
    }

    /// Sets [`readers`](Self::readers).
    pub fn readers(mut self, n: usize) -> Self {
        self.readers = n;
        self
    }

    /// Whether this is an in-memory database.
    pub fn is_memory(&self) -> bool {
        self.path.as_os_str() == ":memory:"
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        check_table_name(&self.table)?;
        if self.readers > 64 {
            return Err(Error::config("sqlite.readers", "at most 64"));
        }
        Ok(())
    }
}

/// Checks a table name against `^[A-Za-z_][A-Za-z0-9_]{0,62}$`, and that
/// it is not reserved: `kv_schema` (where the backend records each table's
/// schema version) nor, as SQLite reserves them, anything starting with
/// `sqlite_`. Both in any case: SQLite does not tell `KV_SCHEMA` from
/// `kv_schema`.
pub fn check_table_name(name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let ok = match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
            name.len() <= 63 && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        _ => false,
    };
    if !ok {
        return Err(Error::config(
            "sqlite.table",
            format!(
                "{:?} is not a valid table name: use letters, digits and '_', not starting with a digit, at most 63 characters",
                name.chars().take(80).collect::<String>()
            ),
        ));
    }
    let lower = name.to_ascii_lowercase();
    if lower == "kv_schema" || lower.starts_with("sqlite_") {
        return Err(Error::config(
            "sqlite.table",
            format!(
                "{name:?} is a reserved table name: kv_schema holds the schema versions and names starting with sqlite_ belong to SQLite (in any case)"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_checked() {
        for ok in [
            "kv_store",
            "_t",
            "T1",
            &"a".repeat(63),
            "kv_schema2",
            "my_kv_schema",
            "sqlitex",
            "my_sqlite_t",
        ] {
            assert!(check_table_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1kv",
            "kv-store",
            "kv store",
            "kv;DROP TABLE x",
            "\"kv\"",
            "ключ",
            &"a".repeat(64),
        ] {
            assert!(check_table_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reserved_table_names_are_refused_in_any_case() {
        for bad in [
            "kv_schema",
            "KV_SCHEMA",
            "Kv_Schema",
            "sqlite_master",
            "sqlite_",
            "SQLITE_STAT1",
            "Sqlite_kv",
        ] {
            let err = check_table_name(bad).unwrap_err().to_string();
            assert!(err.contains("reserved"), "{bad}: {err}");
            assert!(err.contains("sqlite.table"), "{bad}: {err}");
        }
    }

    #[test]
    fn synchronous_parses() {
        assert_eq!("FULL".parse::<Synchronous>().ok(), Some(Synchronous::Full));
        assert!("sometimes".parse::<Synchronous>().is_err());
    }
}
