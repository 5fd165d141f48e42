//! [`StoreConfig`]: which backend, where, and how the store behaves, from a
//! TOML or JSON file, a URL, and environment overrides.
//!
//! ```toml
//! [store]
//! backend = "memory"        # memory | engine | sqlite | postgres | s3
//! namespace = "default"
//!
//! [engine]
//! path = "./kv-data"
//! ```
//!
//! Unknown fields and invalid values are refused with the file, the field
//! and the reason. Secrets (passwords, secret keys, passwords inside URLs)
//! never appear in `Debug` output or errors.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use kv_core::{Error, Result, StoreOptions};

/// The backends a config can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// In-memory; lost when the process ends.
    Memory,
    /// The embedded WAL + snapshot engine (feature `engine`).
    Engine,
    /// SQLite (feature `sqlite`).
    Sqlite,
    /// PostgreSQL (feature `postgres`). Also read as `postgresql`, as in
    /// URLs and `KV_BACKEND`.
    #[serde(alias = "postgresql")]
    Postgres,
    /// S3 or another object store (feature `s3`).
    S3,
}

impl BackendKind {
    /// The backend's name as written in configs and URLs.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Memory => "memory",
            BackendKind::Engine => "engine",
            BackendKind::Sqlite => "sqlite",
            BackendKind::Postgres => "postgres",
            BackendKind::S3 => "s3",
        }
    }

    /// The Cargo feature of `dataknobs-kv` that compiles the backend in
    /// (`None` for memory, which is always there).
    pub fn feature(self) -> Option<&'static str> {
        match self {
            BackendKind::Memory => None,
            other => Some(other.name()),
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "memory" => BackendKind::Memory,
            "engine" => BackendKind::Engine,
            "sqlite" => BackendKind::Sqlite,
            "postgres" | "postgresql" => BackendKind::Postgres,
            "s3" => BackendKind::S3,
            other => {
                return Err(Error::config(
                    "store.backend",
                    format!(
                        "unknown backend {other:?}; expected one of memory, engine, sqlite, postgres, s3"
                    ),
                ))
            }
        })
    }
}

/// A secret string: serialised as-is, but shown as `***` by `Debug` and
/// `Display`.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself; never log this.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Replaces the password of a `scheme://user:password@host/...` URL with
/// `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
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

/// The `[store]` section: backend choice and store behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSection {
    /// Which backend to use. Default `engine` when that feature is
    /// compiled in, `memory` otherwise. Env: `KV_BACKEND`.
    pub backend: Option<BackendKind>,
    /// A URL choosing backend and location at once (`engine:./data`,
    /// `sqlite:./kv.db`, `postgres://…`, `s3://bucket/prefix`, `memory:`);
    /// overrides `backend`. Env: `KV_STORE_URL`.
    pub url: Option<String>,
    /// Namespace of the handle. Default `"default"`. Env: `KV_NAMESPACE`.
    pub namespace: String,
    /// Fold keys to lower case. Default `false`. Env: `KV_CASE_INSENSITIVE`.
    pub case_insensitive: bool,
    /// Longest key in bytes. Default 1024. Env: `KV_MAX_KEY_LEN`.
    pub max_key_len: usize,
    /// Largest value in bytes. Default 64 MiB. Env: `KV_MAX_VALUE_SIZE`.
    pub max_value_size: usize,
    /// Remove expired keys in the background. Default `false`.
    /// Env: `KV_AUTO_CLEANUP`.
    pub auto_cleanup: bool,
    /// Seconds between background cleanups. Default 60.
    /// Env: `KV_CLEANUP_INTERVAL`.
    pub cleanup_interval: u64,
    /// Record `accessed_at` on reads. Default `false`. Env: `KV_TRACK_ACCESS`.
    pub track_access: bool,
}

impl Default for StoreSection {
    fn default() -> Self {
        let o = StoreOptions::default();
        StoreSection {
            backend: None,
            url: None,
            namespace: o.namespace,
            case_insensitive: o.case_insensitive,
            max_key_len: o.max_key_len,
            max_value_size: o.max_value_size,
            auto_cleanup: o.auto_cleanup,
            cleanup_interval: o.cleanup_interval_secs,
            track_access: o.track_access,
        }
    }
}

impl StoreSection {
    /// The store options this section describes.
    pub fn options(&self) -> StoreOptions {
        StoreOptions {
            namespace: self.namespace.clone(),
            case_insensitive: self.case_insensitive,
            max_key_len: self.max_key_len,
            max_value_size: self.max_value_size,
            auto_cleanup: self.auto_cleanup,
            cleanup_interval_secs: self.cleanup_interval,
            track_access: self.track_access,
        }
    }
}

/// The `[engine]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSection {
    /// Data directory. Default `./kv-data`.
    pub path: PathBuf,
    /// When writes reach the disk: `always` (fsync before every write
    /// returns; concurrent writers share fsyncs), `periodic` (every 100 ms),
    /// `periodic:<n>ms`, or `never` (buffered; fsync on flush and close).
    /// Default `always`.
    pub sync: String,
    /// Size at which a WAL segment is closed, in bytes. Default 64 MiB.
    pub segment_size: u64,
    /// WAL size since the last snapshot that starts a background
    /// compaction, in bytes. Default 256 MiB.
    pub max_wal_size: u64,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            path: PathBuf::from("./kv-data"),
            sync: "always".into(),
            segment_size: 64 << 20,
            max_wal_size: 256 << 20,
        }
    }
}

/// The `[sqlite]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqliteSection {
    /// Database file, or `:memory:`. Default `./kv.db`.
    pub path: PathBuf,
    /// Table holding the records: letters, digits and `_`, not starting
    /// with a digit, at most 63 characters. Default `kv_store`.
    pub table: String,
    /// `normal` (survives a process crash; the default, SQLite's advice
    /// with WAL), `full` (survives power loss) or `off`.
    pub synchronous: String,
    /// Milliseconds to wait for another process's write lock. Default 5000.
    pub busy_timeout_ms: u64,
    /// Read connections, each on its own thread. Default: CPUs, at most 4.
    pub readers: Option<usize>,
}

impl Default for SqliteSection {
    fn default() -> Self {
        SqliteSection {
            path: PathBuf::from("./kv.db"),
            table: "kv_store".into(),
            synchronous: "normal".into(),
            busy_timeout_ms: 5000,
            readers: None,
        }
    }
}

/// The `[postgres]` section: a URL, or host/port/user/password/database.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresSection {
    /// Connection URL (`postgres://user:password@host:5432/db`); takes
    /// precedence over the parts below. Never printed.
    pub url: Option<Secret>,
    /// Host, when no URL is given. Default `localhost`.
    pub host: String,
    /// Port. Default 5432.
    pub port: u16,
    /// User. Default `postgres`.
    pub user: String,
    /// Password. Never printed.
    pub password: Option<Secret>,
    /// Database. Default `postgres`.
    pub database: String,
    /// Table name: letters, digits and `_`, not starting with a digit, at
    /// most 63 characters. Default `kv_store`.
    pub table: String,
    /// Most connections in the pool. Default 10.
    pub pool_size: u32,
    /// Seconds to wait for a connection. Default 10.
    pub connect_timeout: u64,
    /// Server-side statement timeout, in seconds. Default 30.
    pub statement_timeout: u64,
    /// TLS mode: disable, allow, prefer, require, verify-ca, verify-full.
    /// Default: what the URL says (else `prefer`).
    pub ssl_mode: Option<String>,
}

impl Default for PostgresSection {
    fn default() -> Self {
        PostgresSection {
            url: None,
            host: "localhost".into(),
            port: 5432,
            user: "postgres".into(),
            password: None,
            database: "postgres".into(),
            table: "kv_store".into(),
            pool_size: 10,
            connect_timeout: 10,
            statement_timeout: 30,
            ssl_mode: None,
        }
    }
}

impl fmt::Debug for PostgresSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSection")
            .field("url", &self.url.as_ref().map(|u| redact_url(u.expose())))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password)
            .field("database", &self.database)
            .field("table", &self.table)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("ssl_mode", &self.ssl_mode)
            .finish()
    }
}

/// The `[s3]` section: an S3 bucket or an S3-compatible server. Its
/// `Debug` shows neither the access key id nor the secret.
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Section {
    /// Bucket name (required). Env: `KV_S3_BUCKET`.
    pub bucket: String,
    /// Prefix of every object in the bucket. Default `""`.
    /// Env: `KV_S3_PREFIX`.
    pub prefix: String,
    /// Endpoint of an S3-compatible server (`http://127.0.0.1:9000`);
    /// default: AWS for the region. Env: `KV_S3_ENDPOINT`.
    pub endpoint: Option<String>,
    /// Region; default `AWS_REGION`, else `us-east-1`. Env: `KV_S3_REGION`.
    pub region: Option<String>,
    /// Access key id; default `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// Secret access key; default `AWS_SECRET_ACCESS_KEY`. Never printed.
    pub secret_access_key: Option<Secret>,
    /// Allow a plain-HTTP endpoint that is not on the loopback interface.
    /// Default `false` (`http://localhost…` and `http://127.…` are always
    /// allowed).
    pub allow_http: bool,
    /// Most requests in flight for one scan, `get_many` or bulk delete.
    /// Default 32.
    pub concurrency: Option<usize>,
    /// Objects whose last ETag and record the backend remembers, to save
    /// requests. Default 65,536.
    pub seen_objects: Option<usize>,
}

impl fmt::Debug for S3Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Section")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id.as_ref().map(|_| "***"))
            .field("secret_access_key", &self.secret_access_key)
            .field("allow_http", &self.allow_http)
            .field("concurrency", &self.concurrency)
            .field("seen_objects", &self.seen_objects)
            .finish()
    }
}

/// The `[cache]` section; present = the cache layer is on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSection {
    /// Most entries held in memory. Default 10,000.
    pub capacity: u64,
    /// Most bytes held in memory; unset = only the entry bound.
    pub max_bytes: Option<u64>,
    /// Seconds a cached entry may be served without asking the backend:
    /// the bound on staleness for writes made around the cache (other
    /// processes). Default 60.
    pub ttl: u64,
    /// Also cache "not found" answers. Default `false`.
    pub negative: bool,
    /// Directory of an optional disk tier (sled) for warm restarts.
    pub disk_path: Option<PathBuf>,
    /// Most bytes of the disk tier. Default 256 MiB.
    pub disk_max_bytes: u64,
}

impl Default for CacheSection {
    fn default() -> Self {
        CacheSection {
            capacity: 10_000,
            max_bytes: None,
            ttl: 60,
            negative: false,
            disk_path: None,
            disk_max_bytes: 256 << 20,
        }
    }
}

/// Everything needed to open a store.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Backend choice and store behaviour.
    pub store: StoreSection,
    /// Engine settings, used when the backend is `engine`.
    pub engine: EngineSection,
    /// SQLite settings, used when the backend is `sqlite`.
    pub sqlite: SqliteSection,
    /// PostgreSQL settings, used when the backend is `postgres`.
    pub postgres: PostgresSection,
    /// Object-store settings, used when the backend is `s3`.
    pub s3: S3Section,
    /// Cache layer; absent = no cache.
    pub cache: Option<CacheSection>,
}

/// Whether `name` matches `^[A-Za-z_][A-Za-z0-9_]{0,62}$` (table names).
pub fn valid_table_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The backend used when a config names none: the engine when compiled
/// in, memory otherwise.
pub fn default_backend() -> BackendKind {
    if cfg!(feature = "engine") {
        BackendKind::Engine
    } else {
        BackendKind::Memory
    }
}

impl StoreConfig {
    /// A config for `url` with every other setting at its default.
    pub fn from_url(url: &str) -> Result<Self> {
        let mut config = StoreConfig::default();
        config.apply_url(url)?;
        Ok(config)
    }

    /// Parses TOML text; `origin` names the source in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self> {
        let config: StoreConfig = toml::from_str(text).map_err(|e| Error::Config {
            field: Some(origin.to_owned()),
            reason: e.to_string().trim_end().replace('\n', " "),
        })?;
        config.validate(origin)?;
        Ok(config)
    }

    /// Parses JSON text; `origin` names the source in errors.
    pub fn from_json_str(text: &str, origin: &str) -> Result<Self> {
        let config: StoreConfig = serde_json::from_str(text).map_err(|e| Error::Config {
            field: Some(origin.to_owned()),
            reason: e.to_string(),
        })?;
        config.validate(origin)?;
        Ok(config)
    }

    /// Reads a `.toml` or `.json` file (by extension), then applies the
    /// environment overrides ([`apply_env`](Self::apply_env)).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let mut config = Self::read_file(path)?;
        config.apply_env()?;
        Ok(config)
    }

    /// Reads a `.toml` or `.json` file (by extension) as it is, without
    /// environment overrides: for a second store next to the one the
    /// environment describes (the target of a migration).
    pub fn read_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading config file {origin}"), e))?;
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Self::from_json_str(&text, &origin),
            Some("toml") | None => Self::from_toml_str(&text, &origin),
            Some(other) => Err(Error::config(
                origin,
                format!("unknown config file extension .{other}; use .toml or .json"),
            )),
        }
    }

    /// Applies environment overrides from the process environment.
    pub fn apply_env(&mut self) -> Result<()> {
        self.apply_env_from(|name| std::env::var(name).ok())
    }

    /// Applies environment overrides read through `get`:
    ///
    /// | variable | overrides |
    /// |---|---|
    /// | `KV_STORE_URL` | `store.url` (backend and location) |
    /// | `KV_BACKEND` | `store.backend` |
    /// | `KV_NAMESPACE` | `store.namespace` |
    /// | `KV_CASE_INSENSITIVE` | `store.case_insensitive` |
    /// | `KV_MAX_KEY_LEN` | `store.max_key_len` |
    /// | `KV_MAX_VALUE_SIZE` | `store.max_value_size` |
    /// | `KV_AUTO_CLEANUP` | `store.auto_cleanup` |
    /// | `KV_CLEANUP_INTERVAL` | `store.cleanup_interval` |
    /// | `KV_TRACK_ACCESS` | `store.track_access` |
    /// | `KV_ENGINE_PATH` | `engine.path` |
    /// | `KV_ENGINE_SYNC` | `engine.sync` |
    /// | `KV_SQLITE_PATH` | `sqlite.path` |
    /// | `KV_POSTGRES_URL` | `postgres.url` (a secret: never printed) |
    /// | `KV_POSTGRES_PASSWORD` | `postgres.password` (a secret) |
    /// | `KV_S3_BUCKET` | `s3.bucket` |
    /// | `KV_S3_PREFIX` | `s3.prefix` |
    /// | `KV_S3_ENDPOINT` | `s3.endpoint` |
    /// | `KV_S3_REGION` | `s3.region` |
    ///
    /// S3 credentials also come from the standard `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY` when the `[s3]` section has none.
    pub fn apply_env_from(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<()> {
        fn parse<T: FromStr>(name: &str, v: &str) -> Result<T>
        where
            T::Err: fmt::Display,
        {
            v.trim().parse().map_err(|e: T::Err| {
                Error::config(
                    format!("environment variable {name}"),
                    format!("{v:?}: {e}"),
                )
            })
        }
        fn boolean(name: &str, v: &str) -> Result<bool> {
            match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(Error::config(
                    format!("environment variable {name}"),
                    format!("{v:?} is not a boolean (true/false, 1/0, yes/no, on/off)"),
                )),
            }
        }
        if let Some(v) = get("KV_BACKEND") {
            self.store.backend = Some(v.parse().map_err(|_| {
                Error::config(
                    "environment variable KV_BACKEND",
                    format!("unknown backend {v:?}; expected one of memory, engine, sqlite, postgres, s3"),
                )
            })?);
            self.store.url = None;
        }
        if let Some(v) = get("KV_STORE_URL") {
            self.store.url = Some(v);
        }
        if let Some(v) = get("KV_NAMESPACE") {
            self.store.namespace = v;
        }
        if let Some(v) = get("KV_CASE_INSENSITIVE") {
            self.store.case_insensitive = boolean("KV_CASE_INSENSITIVE", &v)?;
        }
        if let Some(v) = get("KV_MAX_KEY_LEN") {
            self.store.max_key_len = parse("KV_MAX_KEY_LEN", &v)?;
        }
        if let Some(v) = get("KV_MAX_VALUE_SIZE") {
            self.store.max_value_size = parse("KV_MAX_VALUE_SIZE", &v)?;
        }
        if let Some(v) = get("KV_AUTO_CLEANUP") {
            self.store.auto_cleanup = boolean("KV_AUTO_CLEANUP", &v)?;
        }
        if let Some(v) = get("KV_CLEANUP_INTERVAL") {
            self.store.cleanup_interval = parse("KV_CLEANUP_INTERVAL", &v)?;
        }
        if let Some(v) = get("KV_TRACK_ACCESS") {
            self.store.track_access = boolean("KV_TRACK_ACCESS", &v)?;
        }
        if let Some(v) = get("KV_ENGINE_PATH") {
            self.engine.path = PathBuf::from(v);
        }
        if let Some(v) = get("KV_ENGINE_SYNC") {
            self.engine.sync = v;
        }
        if let Some(v) = get("KV_SQLITE_PATH") {
            self.sqlite.path = PathBuf::from(v);
        }
        if let Some(v) = get("KV_POSTGRES_URL") {
            self.postgres.url = Some(Secret::new(v));
        }
        if let Some(v) = get("KV_POSTGRES_PASSWORD") {
            self.postgres.password = Some(Secret::new(v));
        }
        if let Some(v) = get("KV_S3_BUCKET") {
            self.s3.bucket = v;
        }
        if let Some(v) = get("KV_S3_PREFIX") {
            self.s3.prefix = v;
        }
        if let Some(v) = get("KV_S3_ENDPOINT") {
            self.s3.endpoint = Some(v);
        }
        if let Some(v) = get("KV_S3_REGION") {
            self.s3.region = Some(v);
        }
        self.validate("environment")
    }

    /// Sets backend and location from a URL (see [`StoreSection::url`]).
    pub fn apply_url(&mut self, url: &str) -> Result<()> {
        let bad = |reason: String| Error::config("store.url", reason);
        let (scheme, rest) = url.split_once(':').ok_or_else(|| {
            bad(format!(
                "{:?} has no scheme (engine:, sqlite:, memory:, postgres://, s3://)",
                redact_url(url)
            ))
        })?;
        match scheme.to_ascii_lowercase().as_str() {
            "memory" => self.store.backend = Some(BackendKind::Memory),
            "engine" => {
                let path = rest.strip_prefix("//").unwrap_or(rest);
                if path.is_empty() {
                    return Err(bad("engine: needs a directory, as in engine:./kv-data".into()));
                }
                self.store.backend = Some(BackendKind::Engine);
                self.engine.path = PathBuf::from(path);
            }
            "sqlite" => {
                let path = rest.strip_prefix("//").unwrap_or(rest);
                if path.is_empty() {
                    return Err(bad("sqlite: needs a file, as in sqlite:./kv.db or sqlite::memory:".into()));
                }
                self.store.backend = Some(BackendKind::Sqlite);
                self.sqlite.path = PathBuf::from(path);
            }
            "postgres" | "postgresql" => {
                self.store.backend = Some(BackendKind::Postgres);
                self.postgres.url = Some(Secret::new(url));
            }
            "s3" => {
                let rest = rest
                    .strip_prefix("//")
                    .ok_or_else(|| bad("s3 URLs look like s3://bucket/prefix?endpoint=…&region=…".into()))?;
                let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
                let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
                if bucket.is_empty() {
                    return Err(bad("s3 URL has no bucket".into()));
                }
                self.store.backend = Some(BackendKind::S3);
                self.s3.bucket = bucket.to_owned();
                self.s3.prefix = prefix.trim_end_matches('/').to_owned();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    match k {
                        "endpoint" => self.s3.endpoint = Some(v.to_owned()),
                        "region" => self.s3.region = Some(v.to_owned()),
                        other => return Err(bad(format!("unknown s3 URL parameter {other:?} (endpoint, region)"))),
                    }
                }
            }
            other => {
                return Err(bad(format!(
                    "unknown URL scheme {other:?}; expected memory:, engine:, sqlite:, postgres:// or s3://"
                )))
            }
        }
        self.store.url = None;
        Ok(())
    }

    /// The config with `store.url` (if any) applied to the backend
    /// sections, so that `store.backend` and the sections say everything.
    pub fn resolved(&self) -> Result<StoreConfig> {
        let mut c = self.clone();
        if let Some(url) = c.store.url.take() {
            c.apply_url(&url)?;
        }
        if c.store.backend.is_none() {
            c.store.backend = Some(default_backend());
        }
        Ok(c)
    }

    /// The backend this config selects (after the URL, if any).
    pub fn backend(&self) -> Result<BackendKind> {
        Ok(self
            .resolved()?
            .store
            .backend
            .unwrap_or_else(default_backend))
    }

    /// Checks values that serde cannot; `origin` names the source.
    pub fn validate(&self, origin: &str) -> Result<()> {
        let field = |f: &str| format!("{origin}: {f}");
        if self.store.max_key_len == 0 {
            return Err(Error::config(
                field("store.max_key_len"),
                "must be at least 1",
            ));
        }
        if self.store.max_value_size == 0 {
            return Err(Error::config(
                field("store.max_value_size"),
                "must be at least 1",
            ));
        }
        if self.store.auto_cleanup && self.store.cleanup_interval == 0 {
            return Err(Error::config(
                field("store.cleanup_interval"),
                "must be at least 1 second when auto_cleanup is on",
            ));
        }
        kv_core::KeyRules::default()
            .normalize_namespace(&self.store.namespace)
            .map_err(|e| Error::config(field("store.namespace"), e.to_string()))?;
        if !matches!(
            self.engine.sync.trim().to_ascii_lowercase().as_str(),
            "always" | "never" | "periodic"
        ) && !self
            .engine
            .sync
            .trim()
            .to_ascii_lowercase()
            .starts_with("periodic:")
        {
            return Err(Error::config(
                field("engine.sync"),
                format!(
                    "{:?}: expected always, never, periodic or periodic:<n>ms",
                    self.engine.sync
                ),
            ));
        }
        if self.engine.segment_size < 4096 {
            return Err(Error::config(
                field("engine.segment_size"),
                "must be at least 4096 bytes",
            ));
        }
        if self.engine.max_wal_size < self.engine.segment_size {
            return Err(Error::config(
                field("engine.max_wal_size"),
                "must be at least engine.segment_size",
            ));
        }
        if !matches!(
            self.sqlite.synchronous.trim().to_ascii_lowercase().as_str(),
            "normal" | "full" | "off"
        ) {
            return Err(Error::config(
                field("sqlite.synchronous"),
                format!(
                    "{:?}: expected normal, full or off",
                    self.sqlite.synchronous
                ),
            ));
        }
        if !valid_table_name(&self.sqlite.table) {
            return Err(Error::config(
                field("sqlite.table"),
                format!(
                    "{:?}: use letters, digits and '_', not starting with a digit, at most 63 characters",
                    self.sqlite.table
                ),
            ));
        }
        if !valid_table_name(&self.postgres.table) {
            return Err(Error::config(
                field("postgres.table"),
                format!(
                    "{:?}: use letters, digits and '_', not starting with a digit, at most 63 characters",
                    self.postgres.table
                ),
            ));
        }
        if self.postgres.pool_size == 0 {
            return Err(Error::config(
                field("postgres.pool_size"),
                "must be at least 1",
            ));
        }
        if let Some(mode) = &self.postgres.ssl_mode {
            if !matches!(
                mode.as_str(),
                "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full"
            ) {
                return Err(Error::config(
                    field("postgres.ssl_mode"),
                    format!("{mode:?}: expected disable, allow, prefer, require, verify-ca or verify-full"),
                ));
            }
        }
        if let Some(cache) = &self.cache {
            if cache.capacity == 0 {
                return Err(Error::config(field("cache.capacity"), "must be at least 1"));
            }
        }
        if let Some(url) = &self.store.url {
            let mut c = self.clone();
            c.apply_url(url)
                .map_err(|e| Error::config(field("store.url"), e.to_string()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trip_and_defaults() {
        let c = StoreConfig::from_toml_str(
            "[store]\nbackend = \"memory\"\nnamespace = \"tenant_a\"\ncase_insensitive = true\n",
            "test.toml",
        )
        .unwrap();
        assert_eq!(c.backend().unwrap(), BackendKind::Memory);
        assert_eq!(c.store.namespace, "tenant_a");
        assert!(c.store.case_insensitive);
        assert_eq!(c.store.max_key_len, 1024);
        assert_eq!(c.engine.path, PathBuf::from("./kv-data"));
    }

    #[test]
    fn unknown_fields_are_rejected_with_file_and_field() {
        let e =
            StoreConfig::from_toml_str("[store]\nbackedn = \"memory\"\n", "app.toml").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("app.toml"), "{msg}");
        assert!(msg.contains("backedn"), "{msg}");
        let e = StoreConfig::from_toml_str("[stor]\n", "app.toml").unwrap_err();
        assert!(e.to_string().contains("stor"), "{e}");
    }

    #[test]
    fn invalid_values_are_rejected() {
        let c =
            StoreConfig::from_toml_str("[store]\nbackend = \"postgresql\"\n", "a.toml").unwrap();
        assert_eq!(c.backend().unwrap(), BackendKind::Postgres);
        let e = StoreConfig::from_toml_str("[store]\nbackend = \"redis\"\n", "a.toml").unwrap_err();
        assert!(e.to_string().contains("redis"), "{e}");
        let e = StoreConfig::from_toml_str("[store]\nmax_key_len = 0\n", "a.toml").unwrap_err();
        assert!(e.to_string().contains("store.max_key_len"), "{e}");
        let e = StoreConfig::from_toml_str("[store]\nnamespace = \"a.b\"\n", "a.toml").unwrap_err();
        assert!(e.to_string().contains("store.namespace"), "{e}");
        let e = StoreConfig::from_json_str("{\"store\": {\"max_key_len\": \"x\"}}", "a.json")
            .unwrap_err();
        assert!(e.to_string().contains("a.json"), "{e}");
    }

    #[test]
    fn urls_select_backends() {
        let c = StoreConfig::from_url("engine:./data").unwrap();
        assert_eq!(c.backend().unwrap(), BackendKind::Engine);
        assert_eq!(c.engine.path, PathBuf::from("./data"));
        let c = StoreConfig::from_url("sqlite::memory:").unwrap();
        assert_eq!(c.sqlite.path, PathBuf::from(":memory:"));
        let c = StoreConfig::from_url(
            "s3://bucket/a/b/?endpoint=http://127.0.0.1:9000&region=us-east-1",
        )
        .unwrap();
        assert_eq!(c.s3.bucket, "bucket");
        assert_eq!(c.s3.prefix, "a/b");
        assert_eq!(c.s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(
            StoreConfig::from_url("memory:").unwrap().backend().unwrap(),
            BackendKind::Memory
        );
        assert!(StoreConfig::from_url("redis://x").is_err());
        assert!(StoreConfig::from_url("nothing").is_err());
    }

    #[test]
    fn secrets_never_printed() {
        let c = StoreConfig::from_url("postgres://ada:hunter2@db.example:5432/app").unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("ada:***@db.example"), "{debug}");
        let e = StoreConfig::from_url("bogus://ada:hunter2@x").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert_eq!(format!("{:?}", Secret::new("s3cr3t")), "\"***\"");
        let s3 = S3Section {
            bucket: "b".into(),
            access_key_id: Some("AKIAEXAMPLEID".into()),
            secret_access_key: Some(Secret::new("s3cr3t")),
            ..S3Section::default()
        };
        let debug = format!("{s3:?}");
        assert!(
            !debug.contains("AKIAEXAMPLEID") && !debug.contains("s3cr3t"),
            "{debug}"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_url("postgres://u:p@h/db?x=@"),
            "postgres://u:***@h/db?x=@"
        );
    }

    #[test]
    fn environment_overrides() {
        let env = |name: &str| match name {
            "KV_STORE_URL" => Some("sqlite:/tmp/x.db".to_owned()),
            "KV_NAMESPACE" => Some("ops".to_owned()),
            "KV_AUTO_CLEANUP" => Some("yes".to_owned()),
            "KV_CLEANUP_INTERVAL" => Some("5".to_owned()),
            _ => None,
        };
        let mut c = StoreConfig::default();
        c.apply_env_from(env).unwrap();
        assert_eq!(c.backend().unwrap(), BackendKind::Sqlite);
        assert_eq!(c.store.namespace, "ops");
        assert!(c.store.auto_cleanup);
        assert_eq!(c.store.cleanup_interval, 5);
        let mut c = StoreConfig::default();
        let e = c
            .apply_env_from(|n| (n == "KV_MAX_KEY_LEN").then(|| "big".to_owned()))
            .unwrap_err();
        assert!(e.to_string().contains("KV_MAX_KEY_LEN"), "{e}");
        let e = c
            .apply_env_from(|n| (n == "KV_BACKEND").then(|| "mongo".to_owned()))
            .unwrap_err();
        assert!(e.to_string().contains("mongo"), "{e}");
    }

    #[test]
    fn backend_section_environment_overrides() {
        let env = |name: &str| {
            Some(
                match name {
                    "KV_ENGINE_PATH" => "/data/kv",
                    "KV_ENGINE_SYNC" => "never",
                    "KV_SQLITE_PATH" => "/data/kv.db",
                    "KV_POSTGRES_URL" => "postgres://u:hunter2@db/kv",
                    "KV_POSTGRES_PASSWORD" => "hunter3",
                    "KV_S3_BUCKET" => "bkt",
                    "KV_S3_PREFIX" => "app",
                    "KV_S3_ENDPOINT" => "http://127.0.0.1:9000",
                    "KV_S3_REGION" => "eu-west-1",
                    _ => return None,
                }
                .to_owned(),
            )
        };
        let mut c = StoreConfig::default();
        c.apply_env_from(env).unwrap();
        assert_eq!(c.engine.path, PathBuf::from("/data/kv"));
        assert_eq!(c.engine.sync, "never");
        assert_eq!(c.sqlite.path, PathBuf::from("/data/kv.db"));
        assert_eq!(
            c.postgres.url.as_ref().map(Secret::expose),
            Some("postgres://u:hunter2@db/kv")
        );
        assert_eq!((c.s3.bucket.as_str(), c.s3.prefix.as_str()), ("bkt", "app"));
        assert_eq!(c.s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(c.s3.region.as_deref(), Some("eu-west-1"));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("hunter3"),
            "{shown}"
        );
    }
}
