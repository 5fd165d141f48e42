//! What the harness measures: each backend through `KVStore`, and the peers
//! doing the same work through their own APIs.
//!
//! A peer does what a competent hand-written program would do for the
//! operation and no more: raw rusqlite, sqlx and object_store store a plain
//! `(key, value)` and skip what a `KVStore` adds (value types, metadata,
//! versions, checksums, TTL, conflict detection), so a ratio below 1 is the
//! price of those features.

use std::path::Path as FsPath;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use dataknobs_kv::{KVStore, StoreConfig, Value};
use futures_util::stream::{self, StreamExt, TryStreamExt};

/// Errors of a run: printed and the run stops.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Result of a run step.
pub type R<T> = Result<T, BoxError>;

/// One system under test.
#[async_trait]
pub trait Target: Send + Sync {
    /// Writes a chunk of the initial data.
    async fn load(&self, items: Vec<(String, Vec<u8>)>) -> R<()>;
    /// Reads one key; returns the value's length.
    async fn get(&self, key: &str) -> R<usize>;
    /// Writes one key.
    async fn set(&self, key: &str, value: &[u8]) -> R<()>;
    /// Reads the keys (with values) in `[lo, hi)`, at most `limit`;
    /// `pattern` says the same as a `KVStore` pattern. Returns how many.
    async fn scan(&self, lo: &str, hi: &str, pattern: &str, limit: usize) -> R<usize>;
    /// Writes all of `items`, atomically where the system can.
    async fn batch(&self, items: Vec<(String, Vec<u8>)>) -> R<()>;
    /// Adds 1 to the integer under `key` (missing = 0), atomically.
    async fn incr(&self, key: &str) -> R<i64>;
    /// Reads many keys at once; returns how many were found.
    async fn get_many(&self, keys: &[String]) -> R<usize>;
    /// Removes what the run wrote (tables, objects).
    async fn cleanup(&self) -> R<()>;
}

// --- ours: any backend through `KVStore` -------------------------------------

/// A store opened from a config, used only through `dyn KVStore`.
pub struct Ours {
    store: Arc<dyn KVStore>,
    /// How the run's data is removed at the end, when not by the store.
    cleanup: Cleanup,
}

/// What [`Ours::cleanup`] removes besides the store's keys.
pub enum Cleanup {
    /// Nothing: `delete_pattern("**")` removes it all.
    Keys,
    /// PostgreSQL: the pool and the table to drop.
    Table(sqlx::PgPool, String),
    /// S3: the objects under the store's prefix, removed in bulk. The
    /// store's `delete_pattern` reads each object first (to count the live
    /// keys it removes), which is minutes at 100,000 keys on moto.
    Objects(RawObjects),
}

impl Ours {
    /// Opens the store a TOML config describes.
    pub async fn open(toml: &str, cleanup: Cleanup) -> R<Self> {
        let config = StoreConfig::from_toml_str(toml, "kv-bench")?;
        let store = dataknobs_kv::open(&config).await?;
        Ok(Ours { store, cleanup })
    }
}

fn value_len(v: Option<Value>) -> usize {
    match v {
        Some(Value::Bytes(b)) => b.len(),
        Some(_) => 1,
        None => 0,
    }
}

#[async_trait]
impl Target for Ours {
    async fn load(&self, items: Vec<(String, Vec<u8>)>) -> R<()> {
        let entries = items
            .into_iter()
            .map(|(k, v)| (k, Value::Bytes(v)))
            .collect();
        self.store.set_many(entries).await?;
        Ok(())
    }
    async fn get(&self, key: &str) -> R<usize> {
        Ok(value_len(self.store.get(key).await?))
    }
    async fn set(&self, key: &str, value: &[u8]) -> R<()> {
        self.store.set(key, Value::Bytes(value.to_vec())).await?;
        Ok(())
    }
    async fn scan(&self, _lo: &str, _hi: &str, pattern: &str, limit: usize) -> R<usize> {
        Ok(self.store.scan(pattern, None, limit).await?.entries.len())
    }
    async fn batch(&self, items: Vec<(String, Vec<u8>)>) -> R<()> {
        self.load(items).await
    }
    async fn incr(&self, key: &str) -> R<i64> {
        Ok(self.store.increment(key, 1).await?)
    }
    async fn get_many(&self, keys: &[String]) -> R<usize> {
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let found = self.store.get_many(&keys).await?;
        Ok(found.iter().filter(|v| v.is_some()).count())
    }
    async fn cleanup(&self) -> R<()> {
        if !matches!(self.cleanup, Cleanup::Objects(_)) {
            self.store.delete_pattern("**").await?;
        }
        self.store.close().await?;
        match &self.cleanup {
            Cleanup::Keys => {}
            Cleanup::Table(pool, table) => {
                let drop = format!("DROP TABLE IF EXISTS \"{table}\"");
                sqlx::query(sqlx::AssertSqlSafe(drop)).execute(pool).await?;
                sqlx::query("DELETE FROM kv_schema WHERE tbl = $1")
                    .bind(table)
                    .execute(pool)
                    .await?;
            }
            Cleanup::Objects(raw) => raw.remove_all().await?,
        }
        Ok(())
    }
}

// --- sled --------------------------------------------------------------------

/// sled without `flush()` per write (its default: background flushes).
pub struct Sled(sled::Db);

impl Sled {
    /// Opens a fresh database in `dir`.
    pub fn open(dir: &FsPath) -> R<Self> {
        Ok(Sled(sled::Config::new().path(dir).open()?))
    }
}

#[async_trait]
impl Target for Sled {
    async fn load(&self, items: Vec<(String, Vec<u8>)>) -> R<()> {
        self.batch(items).await
    }
    async fn get(&self, key: &str) -> R<usize> {
        Ok(self.0.get(key)?.map_or(0, |v| v.len()))
    }
    async fn set(&self, key: &str, value: &[u8]) -> R<()> {
        self.0.insert(key, value)?;
        Ok(())
    }
    async fn scan(&self, lo: &str, hi: &str, _pattern: &str, limit: usize) -> R<usize> {
        let mut n = 0;
        for item in self.0.range(lo.as_bytes()..hi.as_bytes()).take(limit) {
            let (_k, _v) = item?;
            n += 1;
        }
        Ok(n)
    }
    async fn batch(&self, items: Vec<(String, Vec<u8>)>) -> R<()> {
        let mut b = sled::Batch::default();
        for (k, v) in items {
            b.insert(k.as_bytes(), v);
        }
        self.0.apply_batch(b)?;
        Ok(())
    }
    async fn incr(&self, key: &str) -> R<i64> {
        let next = |old: Option<&[u8]>| {
            let n = old
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, i64::from_le_bytes);
            Some((n + 1).to_le_bytes().to_vec())
        };
        let new = self.0.update_and_fetch(key, next)?;
        Ok(new
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map_or(0, i64::from_le_bytes))
    }
    async fn get_many(&self, keys: &[String]) -> R<usize> {
        let mut n = 0;
        for k in keys {
            if self.0.get(k)?.is_some() {
                n += 1;
            }
        }
        Ok(n)
    }
    async fn cleanup(&self) -> R<()> {
        Ok(())
    }
}

// --- redb --------------------------------------------------------------------

const REDB_TABLE: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("bench");

/// redb with `Durability::None` commits (sync off, as the others).
pub struct Redb(redb::Database);

impl Redb {
    /// Creates a fresh database file at `path`.
    pub fn open(path: &FsPath) -> R<Self> {
        let db = redb::Database::create(path)?;
        let tx = db.begin_write()?;
        tx.open_table(REDB_TABLE)?;
        tx.commit()?;
        Ok(Redb(db))
    }

    fn write(&self, f: impl FnOnce(&mut redb::Table<&str, &[u8]>) -> R<i64>) -> R<i64> {
        let mut tx = self.0.begin_write()?;
        tx.set_durability(redb::Durability::None)?;
        let out = {
            let mut t = tx.open_table(REDB_TABLE)?;
            f(&mut t)?
        };
        tx.commit()?;
        Ok(out)
    }
}

#[async_trait]
impl Target for Redb {
    async fn load(&self, items: Vec<(String, Vec<u8>)>) -> R<()> {
        self.batch(items).await
    }
    async fn get(&self, key: &str) -> R<usize> {
        use redb::ReadableDatabase;
        let tx = self.0.begin_read()?;
        let t = tx.open_table(REDB_TABLE)?;
        Ok(t.get(key)?.map_or(0, |v| v.value().len()))
    }
    async fn set(&self, key: &str, value: &[u8]) -> R<()> {
        self.write(|t| {
            t.insert(key, value)?;
            Ok(0)
        })?;
        Ok(())
    }
    async fn scan(&self, lo: &str, hi: &str, _pattern: &str, limit: usize) -> R<usize> {
        use redb::ReadableDatabase;
        let tx = self.0.begin_read()?;
        let t = tx.open_table(REDB_TABLE)?;
        let mut n = 0;
        for item in t.range(lo..hi)?.take(limit) {
            let (_k, _v) = item?;
            n += 1;
        }
        Ok(n)
    }
    async fn batch(&self, items: Vec<(String, Vec<u8>)>) -> R<()> {
        self.write(|t| {
            for (k, v) in &items {
                t.insert(k.as_str(), v.as_slice())?;
            }
            Ok(0)
        })?;
        Ok(())
    }
    async fn incr(&self, key: &str) -> R<i64> {
        self.write(|t| {
            use redb::ReadableTable;
            let n = t
                .get(key)?
                .and_then(|v| <[u8; 8]>::try_from(v.value()).ok())
                .map_or(0, i64::from_le_bytes)
                + 1;
            t.insert(key, n.to_le_bytes().as_slice())?;
            Ok(n)
        })
    }
    async fn get_many(&self, keys: &[String]) -> R<usize> {
        use redb::ReadableDatabase;
        let tx = self.0.begin_read()?;
        let t = tx.open_table(REDB_TABLE)?;
        let mut n = 0;
        for k in keys {
            if t.get(k.as_str())?.is_some() {
                n += 1;
            }
        }
        Ok(n)
    }
    async fn cleanup(&self) -> R<()> {
        Ok(())
    }
}

// --- raw rusqlite ------------------------------------------------------------

/// rusqlite on a `(k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID` table in WAL
/// mode, `synchronous = NORMAL` (as the backend), one writer connection and
/// two readers, prepared statements cached.
pub struct RawSqlite {
    writer: Mutex<rusqlite::Connection>,
    readers: Vec<Mutex<rusqlite::Connection>>,
    next: AtomicUsize,
}

impl RawSqlite {
    /// Creates the database file at `path`.
    pub fn open(path: &FsPath) -> R<Self> {
        let conn = || -> R<rusqlite::Connection> {
            let c = rusqlite::Connection::open(path)?;
            c.busy_timeout(std::time::Duration::from_secs(5))?;
            c.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
            Ok(c)
        };
        let writer = conn()?;
        writer.execute_batch(
            "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID",
        )?;
        let readers = (0..2).map(|_| conn().map(Mutex::new)).collect::<R<_>>()?;
        Ok(RawSqlite {
            writer: Mutex::new(writer),
            readers,
            next: AtomicUsize::new(0),
        })
    }

    fn reader(&self) -> R<std::sync::MutexGuard<'_, rusqlite::Connection>> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        self.readers[i]
            .lock()
            .map_err(|_| "reader lock poisoned".into())
    }

    fn writer(&self) -> R<std::sync::MutexGuard<'_, rusqlite::Connection>> {
        self.writer
            .lock()
            .map_err(|_| "writer lock poisoned".into())
    }
}

#[async_trait]
impl Target for RawSqlite {
    async fn load(&self, items: Vec<(String, Vec<u8>)>) -> R<()> {
        self.batch(items).await
    }
    async fn get(&self, key: &str) -> R<usize> {
        use rusqlite::OptionalExtension;
        let c = self.reader()?;
        let mut stmt = c.prepare_cached("SELECT v FROM kv WHERE k = ?1")?;
        let v: Option<Vec<u8>> = stmt.query_row([key], |r| r.get(0)).optional()?;
        Ok(v.map_or(0, |v| v.len()))
    }
    async fn set(&self, key: &str, value: &[u8]) -> R<()> {
        let c = self.writer()?;
        let mut stmt = c.prepare_cached(
            "INSERT INTO kv (k, v) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
        )?;
        stmt.execute(rusqlite::params![key, value])?;
        Ok(())
    }
    async fn scan(&self, lo: &str, hi: &str, _pattern: &str, limit: usize) -> R<usize> {
        let c = self.reader()?;
        let mut stmt =
            c.prepare_cached("SELECT k, v FROM kv WHERE k >= ?1 AND k < ?2 ORDER BY k LIMIT ?3")?;
        let mut rows = stmt.query(rusqlite::params![lo, hi, limit as i64])?;
        let mut n = 0;
        while let Some(row) = rows.next()? {
            let _v: Vec<u8> = row.get(1)?;
            n += 1;
        }
        Ok(n)
    }
    async fn batch(&self, items: Vec<(String, Vec<u8>)>) -> R<()> {
        let mut c = self.writer()?;
        let tx = c.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO kv (k, v) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
            )?;
            for (k, v) in &items {
                stmt.execute(rusqlite::params![k, v])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
    async fn incr(&self, key: &str) -> R<i64> {
        let c = self.writer()?;
        let mut stmt = c.prepare_cached(
            "INSERT INTO kv (k, v) VALUES (?1, 1) ON CONFLICT (k) DO UPDATE SET v = v + 1 RETURNING v",
        )?;
        Ok(stmt.query_row([key], |r| r.get(0))?)
    }
    async fn get_many(&self, keys: &[String]) -> R<usize> {
        let c = self.reader()?;
        let mut stmt = c.prepare_cached("SELECT v FROM kv WHERE k = ?1")?;
        let mut n = 0;
        for k in keys {
            if stmt.exists([k])? {
                n += 1;
            }
        }
        Ok(n)
    }
    async fn cleanup(&self) -> R<()> {
        Ok(())
    }
}

// --- raw sqlx (PostgreSQL) ---------------------------------------------------

/// sqlx on `(k TEXT COLLATE "C" PRIMARY KEY, v BYTEA, n BIGINT)`, a pool
/// of 8: upserts, `= ANY($1)`, one `UNNEST` upsert per batch.
pub struct RawSqlx {
    pool: sqlx::PgPool,
    table: String,
    sql: [String; 7],
}

impl RawSqlx {
    /// Creates table `table` over `pool`.
    pub async fn open(pool: sqlx::PgPool, table: String) -> R<Self> {
        let t = &table;
        let create = format!(
            "CREATE TABLE \"{t}\" (k TEXT COLLATE \"C\" PRIMARY KEY, v BYTEA NOT NULL, n BIGINT)"
        );
        sqlx::query(sqlx::AssertSqlSafe(create))
            .execute(&pool)
            .await?;
        let sql = [
            format!("SELECT v FROM \"{t}\" WHERE k = $1"),
            format!("INSERT INTO \"{t}\" (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"),
            format!("SELECT k, v FROM \"{t}\" WHERE k >= $1 AND k < $2 ORDER BY k LIMIT $3"),
            format!("INSERT INTO \"{t}\" (k, v) SELECT * FROM UNNEST($1::text[], $2::bytea[]) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"),
            format!("INSERT INTO \"{t}\" (k, v, n) VALUES ($1, ''::bytea, 1) ON CONFLICT (k) DO UPDATE SET n = COALESCE(\"{t}\".n, 0) + 1 RETURNING n"),
            format!("SELECT k, v FROM \"{t}\" WHERE k = ANY($1)"),
            format!("DROP TABLE IF EXISTS \"{t}\""),
        ];
        Ok(RawSqlx { pool, table, sql })
    }

    fn q(
        &self,
        i: usize,
    ) -> sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments> {
        sqlx::query(sqlx::AssertSqlSafe(self.sql[i].clone()))
    }
}

#[async_trait]
impl Target for RawSqlx {
    async fn load(&self, items: Vec<(String, Vec<u8>)>) -> R<()> {
        self.batch(items).await
    }
    async fn get(&self, key: &str) -> R<usize> {
        use sqlx::Row;
        let row = self.q(0).bind(key).fetch_optional(&self.pool).await?;
        Ok(match row {
            Some(r) => r.try_get::<Vec<u8>, _>(0)?.len(),
            None => 0,
        })
    }
    async fn set(&self, key: &str, value: &[u8]) -> R<()> {
        self.q(1).bind(key).bind(value).execute(&self.pool).await?;
        Ok(())
    }
    async fn scan(&self, lo: &str, hi: &str, _pattern: &str, limit: usize) -> R<usize> {
        let rows = self
            .q(2)
            .bind(lo)
            .bind(hi)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.len())
    }
    async fn batch(&self, items: Vec<(String, Vec<u8>)>) -> R<()> {
        let (keys, values): (Vec<String>, Vec<Vec<u8>>) = items.into_iter().unzip();
        self.q(3)
            .bind(keys)
            .bind(values)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
    async fn incr(&self, key: &str) -> R<i64> {
        use sqlx::Row;
        let row = self.q(4).bind(key).fetch_one(&self.pool).await?;
        Ok(row.try_get(0)?)
    }
    async fn get_many(&self, keys: &[String]) -> R<usize> {
        let rows = self.q(5).bind(keys).fetch_all(&self.pool).await?;
        Ok(rows.len())
    }
    async fn cleanup(&self) -> R<()> {
        self.q(6).execute(&self.pool).await?;
        let _ = &self.table;
        Ok(())
    }
}

// --- raw object_store --------------------------------------------------------

/// object_store on an S3 server: one object per key under a prefix, GETs
/// and PUTs 16 at a time where the operation spans many keys, increments
/// with `If-Match` PUTs retried on conflict.
pub struct RawObjects {
    store: Arc<dyn object_store::ObjectStore>,
    prefix: String,
}

/// Operations on many objects in flight at once (as the backend does).
const OBJECT_CONCURRENCY: usize = 16;

impl RawObjects {
    /// An S3 client for `bucket` at `endpoint`, objects under `prefix`.
    pub fn open(endpoint: &str, bucket: &str, region: &str, prefix: String) -> R<Self> {
        use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_region(region)
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(false)
            .with_allow_http(true)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .build()?;
        Ok(RawObjects {
            store: Arc::new(store),
            prefix,
        })
    }

    fn path(&self, key: &str) -> object_store::path::Path {
        object_store::path::Path::from(format!("{}/{key}", self.prefix))
    }

    async fn get_opt(&self, key: &str) -> R<Option<object_store::GetResult>> {
        use object_store::ObjectStoreExt;
        match self.store.get(&self.path(key)).await {
            Ok(got) => Ok(Some(got)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes every object under the prefix: one LIST walk and bulk
    /// deletes (up to 1,000 objects per request).
    pub async fn remove_all(&self) -> R<()> {
        let prefix = object_store::path::Path::from(self.prefix.clone());
        let locations = self
            .store
            .list(Some(&prefix))
            .map_ok(|m| m.location)
            .boxed();
        self.store
            .delete_stream(locations)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Target for RawObjects {
    async fn load(&self, items: Vec<(String, Vec<u8>)>) -> R<()> {
        self.batch(items).await
    }
    async fn get(&self, key: &str) -> R<usize> {
        Ok(match self.get_opt(key).await? {
            Some(got) => got.bytes().await?.len(),
            None => 0,
        })
    }
    async fn set(&self, key: &str, value: &[u8]) -> R<()> {
        use object_store::ObjectStoreExt;
        self.store
            .put(&self.path(key), value.to_vec().into())
            .await?;
        Ok(())
    }
    async fn scan(&self, lo: &str, hi: &str, _pattern: &str, limit: usize) -> R<usize> {
        // A LIST prefix is whole path segments; keys are one segment each,
        // so list the folder from just before `lo` (S3 `start-after`) and
        // stop at `hi`.
        let dir = object_store::path::Path::from(self.prefix.clone());
        let before = lo.strip_suffix('.').unwrap_or(lo);
        let offset = self.path(before);
        let end = format!("{}/{hi}", self.prefix);
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list_with_offset(Some(&dir), &offset)
            .try_take_while(|m| std::future::ready(Ok(m.location.as_ref() < end.as_str())))
            .take(limit)
            .try_collect()
            .await?;
        let store = &self.store;
        let n = stream::iter(metas)
            .map(|m| async move {
                use object_store::ObjectStoreExt;
                Ok::<_, BoxError>(store.get(&m.location).await?.bytes().await?.len())
            })
            .buffer_unordered(OBJECT_CONCURRENCY)
            .try_collect::<Vec<usize>>()
            .await?
            .len();
        Ok(n)
    }
    async fn batch(&self, items: Vec<(String, Vec<u8>)>) -> R<()> {
        stream::iter(items)
            .map(|(k, v)| async move { self.set(&k, &v).await })
            .buffer_unordered(OBJECT_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }
    async fn incr(&self, key: &str) -> R<i64> {
        use object_store::{PutMode, PutOptions, UpdateVersion};
        loop {
            let (n, mode) = match self.get_opt(key).await? {
                Some(got) => {
                    let version = UpdateVersion {
                        e_tag: got.meta.e_tag.clone(),
                        version: got.meta.version.clone(),
                    };
                    let body = got.bytes().await?;
                    let n = <[u8; 8]>::try_from(body.as_ref()).map_or(0, i64::from_le_bytes);
                    (n + 1, PutMode::Update(version))
                }
                None => (1, PutMode::Create),
            };
            let opts = PutOptions {
                mode,
                ..PutOptions::default()
            };
            match self
                .store
                .put_opts(&self.path(key), n.to_le_bytes().to_vec().into(), opts)
                .await
            {
                Ok(_) => return Ok(n),
                Err(object_store::Error::Precondition { .. })
                | Err(object_store::Error::AlreadyExists { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
    async fn get_many(&self, keys: &[String]) -> R<usize> {
        let found = stream::iter(keys.to_vec())
            .map(|k| async move { self.get_opt(&k).await.map(|g| g.is_some()) })
            .buffer_unordered(OBJECT_CONCURRENCY)
            .try_collect::<Vec<bool>>()
            .await?;
        Ok(found.into_iter().filter(|f| *f).count())
    }
    async fn cleanup(&self) -> R<()> {
        self.remove_all().await
    }
}
