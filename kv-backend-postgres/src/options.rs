//! [`PgOptions`]: where the server is and how to talk to it. `Debug` never
//! shows the password.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use kv_core::Error;

/// The default table name.
pub const DEFAULT_TABLE: &str = "kv_store";

/// How to open a [`PgStore`](crate::PgStore).
#[derive(Clone)]
pub struct PgOptions {
    url: String,
    /// Table holding the records. Default `kv_store`. Letters, digits and
    /// `_`, not starting with a digit, at most 63 characters: it is
    /// checked, never spliced into SQL unchecked.
    pub table: String,
    /// Most connections in the pool. Default 10.
    pub pool_size: u32,
    /// How long to wait for a connection (connecting or from the pool).
    /// Default 10 s.
    pub connect_timeout: Duration,
    /// Server-side `statement_timeout` of every connection. Default 30 s.
    pub statement_timeout: Duration,
    /// TLS: `disable`, `allow`, `prefer`, `require`, `verify-ca`,
    /// `verify-full`; `None` keeps what the URL says (default `prefer`).
    pub ssl_mode: Option<String>,
    /// Attempts for an idempotent operation that fails with a temporary
    /// error (connection loss, timeout, serialization failure). Default 3.
    pub retries: u32,
}

impl fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &redact(&self.url))
            .field("table", &self.table)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("ssl_mode", &self.ssl_mode)
            .field("retries", &self.retries)
            .finish()
    }
}

/// Replaces the password of `postgres://user:password@host/…` with `***`.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &authority[..colon],
            &url[scheme_end + 3 + at..]
        ),
        _ => url.to_owned(),
    }
}

impl PgOptions {
    /// Options for the server at `url` (`postgres://user:password@host:port/db`).
    pub fn new(url: impl Into<String>) -> Self {
        PgOptions {
            url: url.into(),
            table: DEFAULT_TABLE.to_owned(),
            pool_size: 10,
            connect_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(30),
            ssl_mode: None,
            retries: 3,
        }
    }

    /// Options for a server given by parts; user and password are
    /// percent-encoded into the URL.
    pub fn from_parts(
        host: &str,
        port: u16,
        user: &str,
        password: Option<&str>,
        database: &str,
    ) -> Self {
        let auth = match password {
            Some(p) => format!("{}:{}@", encode(user), encode(p)),
            None => format!("{}@", encode(user)),
        };
        Self::new(format!(
            "postgres://{auth}{host}:{port}/{}",
            encode(database)
        ))
    }

    /// Sets [`table`](Self::table).
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// Sets [`pool_size`](Self::pool_size).
    pub fn pool_size(mut self, n: u32) -> Self {
        self.pool_size = n;
        self
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Sets [`statement_timeout`](Self::statement_timeout).
    pub fn statement_timeout(mut self, t: Duration) -> Self {
        self.statement_timeout = t;
        self
    }

    /// Sets [`ssl_mode`](Self::ssl_mode).
    pub fn ssl_mode(mut self, mode: impl Into<String>) -> Self {
        self.ssl_mode = Some(mode.into());
        self
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        check_table_name(&self.table)?;
        if self.pool_size == 0 {
            return Err(Error::config("postgres.pool_size", "must be at least 1"));
        }
        Ok(())
    }

    /// The driver's connect options. Errors never contain the URL.
    pub(crate) fn connect_options(&self) -> Result<PgConnectOptions, Error> {
        let mut o = PgConnectOptions::from_str(&self.url).map_err(|e| {
            // The driver's message may quote the URL; name only the field.
            let reason = match e {
                sqlx::Error::Configuration(_) => {
                    "the URL does not parse as postgres://user:password@host:port/database"
                        .to_owned()
                }
                other => other.to_string().replace(&self.url, &self.redacted_url()),
            };
            Error::config("postgres.url", reason)
        })?;
        if let Some(mode) = &self.ssl_mode {
            let mode = PgSslMode::from_str(mode).map_err(|_| {
                Error::config(
                    "postgres.ssl_mode",
                    format!("{mode:?}: expected disable, allow, prefer, require, verify-ca or verify-full"),
                )
            })?;
            o = o.ssl_mode(mode);
        }
        let ms = self.statement_timeout.as_millis().to_string();
        Ok(o.application_name("dataknobs-kv")
            .options([("statement_timeout", ms.as_str())]))
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Checks a table name against `^[A-Za-z_][A-Za-z0-9_]{0,62}$`.
pub fn check_table_name(name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(Error::config(
            "postgres.table",
            format!(
                "{:?} is not a valid table name: use letters, digits and '_', not starting with a digit, at most 63 characters",
                name.chars().take(80).collect::<String>()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let o = PgOptions::new("postgres://ada:hunter2@db:5432/app");
        let d = format!("{o:?}");
        assert!(!d.contains("hunter2"), "{d}");
        assert!(d.contains("ada:***@db:5432"), "{d}");
    }

    #[test]
    fn bad_urls_do_not_echo_the_password() {
        let o = PgOptions::new("postgres://ada:hunter2@db:notaport/app");
        let e = o.connect_options().unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn parts_are_encoded() {
        let o = PgOptions::from_parts("db", 5433, "ad a", Some("p@ss:w/rd"), "app");
        assert_eq!(o.redacted_url(), "postgres://ad%20a:***@db:5433/app");
        assert!(o.connect_options().is_ok());
    }

    #[test]
    fn table_names_are_checked() {
        assert!(check_table_name("kv_store").is_ok());
        for bad in ["", "1x", "a-b", "x;DROP TABLE y", &"a".repeat(64)] {
            assert!(check_table_name(bad).is_err(), "{bad}");
        }
    }
}
