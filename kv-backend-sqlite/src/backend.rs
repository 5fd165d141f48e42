//! [`SqliteStore`]: `kv_core::Backend` on SQLite.
//!
//! Every primitive is one statement or one `BEGIN IMMEDIATE` transaction:
//!
//! | primitive | SQL |
//! |---|---|
//! | `write(Any)` | `INSERT … ON CONFLICT DO UPDATE` |
//! | `write(Absent)` | `INSERT … ON CONFLICT DO NOTHING` (1 row changed = written) |
//! | `write(Version(v))` | `UPDATE … WHERE namespace = ? AND key = ? AND version = v` |
//! | `delete` | `DELETE … RETURNING version, expires_at` (in a transaction when conditional) |
//! | `read_many` | one `SELECT … WHERE key IN (SELECT value FROM json_each(?))` |
//! | `scan`, `count`, `delete_range` | `key >= ? AND key < ?` on the primary key |
//! | `remove_expired` | one `DELETE … WHERE expires_at <= ?` on its index |
//! | `apply` | one transaction: preconditions checked, then every write; rolled back whole on any error |
//! | `apply_planned` | one transaction: each key read, the plan run, its writes applied (no second read for the preconditions) |
//! | `increment` | one transaction: read, [`kv_core::ops::incremented`], write |

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use kv_core::backend::{
    Backend, BackendStats, BatchOp, BatchOutcome, BatchPlan, Capabilities, CasMechanism,
    Cooperation, DeleteOutcome, KeyInfo, KeyRange, PlannedOutcome, Precondition, WriteOutcome,
};
use kv_core::record::StoredValue;
use kv_core::{Error, Record, Result, Timestamp};

use crate::options::SqliteOptions;
use crate::pool::{Pool, Role};
use crate::schema::{self, execute_record, record_from_row, sql_err, Range, Sql};

/// A statement whose query plan [`SqliteStore::query_plan`] shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Planned {
    /// The point read of `get`.
    PointRead,
    /// `get_many`'s one query.
    ReadMany,
    /// A scan of a key prefix (patterns with a literal prefix).
    PrefixScan,
    /// Counting live keys in a prefix.
    PrefixCount,
    /// A scan of the keys (with expiry and version) of a prefix, after a
    /// cursor: `keys` and the store's other key walks (`scan_keys`).
    PrefixKeyScan,
    /// Deleting a prefix (`delete_pattern` on a prefix: `delete_range`).
    PrefixDelete,
    /// `cleanup_expired` in one namespace.
    RemoveExpired,
}

/// The SQLite backend. Cheap to clone; clones share the connections.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    options: SqliteOptions,
    sql: Arc<Sql>,
    pool: Pool,
}

fn configure(conn: &Connection, options: &SqliteOptions) -> Result<()> {
    conn.busy_timeout(options.busy_timeout).map_err(sql_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

impl SqliteStore {
    /// Opens (creating when missing) the database and table, off the async
    /// threads.
    pub async fn open(options: SqliteOptions) -> Result<SqliteStore> {
        tokio::task::spawn_blocking(move || SqliteStore::open_blocking(options))
            .await
            .map_err(|e| Error::backend("sqlite", false, e))?
    }

    /// Opens the database from a thread that may block.
    pub fn open_blocking(options: SqliteOptions) -> Result<SqliteStore> {
        options.validate()?;
        let mut writer = if options.is_memory() {
            Connection::open_in_memory().map_err(sql_err)?
        } else {
            Connection::open(&options.path).map_err(sql_err)?
        };
        configure(&writer, &options)?;
        if !options.is_memory() {
            let mode: String = writer
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .map_err(sql_err)?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(Error::config(
                    "sqlite.path",
                    format!("the database did not switch to WAL journal mode (it is {mode})"),
                ));
            }
        }
        writer
            .pragma_update(None, "synchronous", options.synchronous.pragma())
            .map_err(sql_err)?;
        schema::create(&mut writer, &options.table)?;
        let mut readers = Vec::new();
        if !options.is_memory() {
            for _ in 0..options.readers {
                let conn = Connection::open_with_flags(
                    &options.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(sql_err)?;
                configure(&conn, &options)?;
                readers.push(conn);
            }
        }
        let sql = Arc::new(Sql::new(&options.table));
        let pool = Pool::start(writer, readers)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner { options, sql, pool }),
        })
    }

    /// The options it was opened with.
    pub fn options(&self) -> &SqliteOptions {
        &self.inner.options
    }

    /// Runs `f` on the writer connection: for tools and tests that need
    /// SQL the backend does not offer (it is the same connection the
    /// backend writes with, so keep it short).
    pub async fn with_connection<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.inner.pool.call(Role::Write, f).await
    }

    /// `EXPLAIN QUERY PLAN` of the statement the backend runs for `what`,
    /// one line per plan step (for example
    /// `SEARCH kv_store USING PRIMARY KEY (namespace=? AND key>? AND key<?)`).
    pub async fn query_plan(&self, what: Planned) -> Result<Vec<String>> {
        self.read_job(move |c, sql| {
            let users = KeyRange::prefix("users.1.");
            let prefix = Range::new(&users, None);
            let page = kv_core::ops::SCAN_PAGE;
            let text = match what {
                Planned::PointRead => sql.read_value.clone(),
                Planned::ReadMany => sql.read_many.clone(),
                Planned::PrefixScan => sql.scan(&prefix, page).into_owned(),
                Planned::PrefixCount => sql.count(&prefix).to_owned(),
                Planned::PrefixKeyScan => {
                    let after = Range::new(&users, Some("users.1.a"));
                    sql.scan_keys(&after, page).into_owned()
                }
                Planned::PrefixDelete => sql.delete_range(&prefix).to_owned(),
                Planned::RemoveExpired => sql.remove_expired_ns.clone(),
            };
            let mut stmt = c
                .prepare(&format!("EXPLAIN QUERY PLAN {text}"))
                .map_err(sql_err)?;
            // Parameters stay unbound: the plan does not depend on them.
            let mut rows = stmt.raw_query();
            let mut plan = Vec::new();
            while let Some(row) = rows.next().map_err(sql_err)? {
                plan.push(row.get::<_, String>(3).map_err(sql_err)?);
            }
            Ok(plan)
        })
        .await
    }

    /// Runs a read: `here` on a reader connection on this thread, waiting
    /// for one if need be (it may borrow the caller's arguments), else,
    /// where that cannot be done, the job `queued` builds (owning copies of
    /// them) on the reader threads.
    async fn read_with<T, H, Q, J>(&self, here: H, queued: Q) -> Result<T>
    where
        T: Send + 'static,
        H: FnOnce(&mut Connection, &Sql) -> Result<T>,
        Q: FnOnce() -> J,
        J: FnOnce(&mut Connection, &Sql) -> Result<T> + Send + 'static,
    {
        let sql = &*self.inner.sql;
        self.inner.pool.cooperate(Role::Read).await;
        if let Ok(done) = self.inner.pool.read_in_place(|c| here(c, sql)) {
            return done;
        }
        // Straight to the queue: this call has had its yield point.
        let job = queued();
        let sql = Arc::clone(&self.inner.sql);
        self.inner
            .pool
            .queue(Role::Read, move |c| job(c, &sql))
            .await
    }

    async fn read_job<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, &Sql) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let sql = Arc::clone(&self.inner.sql);
        self.inner.pool.call(Role::Read, move |c| f(c, &sql)).await
    }

    async fn write_job<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, &Sql) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let sql = Arc::clone(&self.inner.sql);
        self.inner.pool.call(Role::Write, move |c| f(c, &sql)).await
    }
}

/// Reads one record.
fn read_record(conn: &Connection, sql: &Sql, ns: &str, key: &str) -> Result<Option<Record>> {
    let mut stmt = conn.prepare_cached(&sql.read).map_err(sql_err)?;
    let mut rows = stmt.query([ns, key]).map_err(sql_err)?;
    match rows.next().map_err(sql_err)? {
        Some(row) => record_from_row(&ns.into(), key.to_owned(), row, 0).map(Some),
        None => Ok(None),
    }
}

/// The value, checksum and expiry of one record.
fn read_stored(conn: &Connection, sql: &Sql, ns: &str, key: &str) -> Result<Option<StoredValue>> {
    let mut stmt = conn.prepare_cached(&sql.read_value).map_err(sql_err)?;
    stmt.query_row([ns, key], |r| {
        Ok(StoredValue {
            value: r.get(0)?,
            checksum: u32::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
            expires_at: r.get::<_, Option<i64>>(2)?.map(Timestamp::from_millis),
        })
    })
    .optional()
    .map_err(sql_err)
}

/// The records under `keys`, in the same order, in one query.
fn read_many_records(
    conn: &Connection,
    sql: &Sql,
    ns: &str,
    keys: &[String],
) -> Result<Vec<Option<Record>>> {
    let list = serde_json::to_string(keys).map_err(Error::codec)?;
    let mut stmt = conn.prepare_cached(&sql.read_many).map_err(sql_err)?;
    let mut rows = stmt.query(rusqlite::params![ns, list]).map_err(sql_err)?;
    let mut found = HashMap::with_capacity(keys.len());
    let namespace = ns.into();
    while let Some(row) = rows.next().map_err(sql_err)? {
        let key: String = row.get(0).map_err(sql_err)?;
        let record = record_from_row(&namespace, key.clone(), row, 1)?;
        found.insert(key, record);
    }
    // Keys may repeat; each position gets its own copy.
    Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
}

/// Up to `limit` records of `range` after `after`, in key order.
fn scan_records(
    conn: &Connection,
    sql: &Sql,
    ns: &str,
    range: &KeyRange,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<Record>> {
    let range = Range::new(range, after);
    let mut stmt = conn
        .prepare_cached(&sql.scan(&range, limit))
        .map_err(sql_err)?;
    let params = range.params(&ns, &[]);
    let mut rows = stmt.query(&params[..]).map_err(sql_err)?;
    // Room for a short scan without regrowing; long ones grow as usual.
    let mut out = Vec::with_capacity(limit.min(16));
    let namespace = ns.into();
    // The statement's LIMIT may be larger (`Sql::scan`): stop at `limit`.
    while out.len() < limit {
        let Some(row) = rows.next().map_err(sql_err)? else {
            break;
        };
        let key: String = row.get(0).map_err(sql_err)?;
        out.push(record_from_row(&namespace, key, row, 1)?);
    }
    Ok(out)
}

/// Up to `limit` keys of `range` after `after`, in key order.
fn scan_key_infos(
    conn: &Connection,
    sql: &Sql,
    ns: &str,
    range: &KeyRange,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<KeyInfo>> {
    let range = Range::new(range, after);
    let mut stmt = conn
        .prepare_cached(&sql.scan_keys(&range, limit))
        .map_err(sql_err)?;
    let params = range.params(&ns, &[]);
    let rows = stmt
        .query_map(&params[..], |r| {
            Ok(KeyInfo {
                key: r.get(0)?,
                expires_at: r.get::<_, Option<i64>>(1)?.map(Timestamp::from_millis),
                version: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
            })
        })
        .map_err(sql_err)?;
    // The statement's LIMIT may be larger (`Sql::scan_keys`): stop at `limit`.
    rows.take(limit)
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql_err)
}

/// Live records in `range` at `now` (ms).
fn count_live(conn: &Connection, sql: &Sql, ns: &str, range: &KeyRange, now: i64) -> Result<u64> {
    let range = Range::new(range, None);
    let mut stmt = conn.prepare_cached(sql.count(&range)).map_err(sql_err)?;
    let params = range.params(&ns, &[(":now", &now)]);
    let n: i64 = stmt.query_row(&params[..], |r| r.get(0)).map_err(sql_err)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The stored version and expiry of a key.
fn version_of(
    conn: &Connection,
    sql: &Sql,
    ns: &str,
    key: &str,
) -> Result<Option<(u64, Option<i64>)>> {
    let mut stmt = conn.prepare_cached(&sql.version_of).map_err(sql_err)?;
    stmt.query_row([ns, key], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
    })
    .optional()
    .map_err(sql_err)
    .map(|o| o.map(|(v, e)| (u64::try_from(v).unwrap_or(0), e)))
}

/// Writes `record` if `precondition` holds; returns whether it did.
fn write_record(
    conn: &Connection,
    sql: &Sql,
    record: &Record,
    precondition: Precondition,
) -> Result<bool> {
    let changed = match precondition {
        Precondition::Any => {
            let mut stmt = conn.prepare_cached(&sql.upsert).map_err(sql_err)?;
            execute_record(&mut stmt, record, None)?
        }
        Precondition::Absent => {
            let mut stmt = conn.prepare_cached(&sql.insert_absent).map_err(sql_err)?;
            execute_record(&mut stmt, record, None)?
        }
        Precondition::Version(v) => {
            let v = i64::try_from(v).unwrap_or(i64::MAX);
            let mut stmt = conn.prepare_cached(&sql.update_version).map_err(sql_err)?;
            execute_record(&mut stmt, record, Some(&v))?
        }
    };
    Ok(changed == 1)
}

/// Deletes a key if `precondition` holds.
fn delete_row(
    conn: &Connection,
    sql: &Sql,
    ns: &str,
    key: &str,
    precondition: Precondition,
) -> Result<DeleteOutcome> {
    if let Precondition::Version(v) = precondition {
        match version_of(conn, sql, ns, key)? {
            Some((current, _)) if current == v => {}
            _ => return Ok(DeleteOutcome::PreconditionFailed),
        }
    }
    let mut stmt = conn.prepare_cached(&sql.delete).map_err(sql_err)?;
    let gone = stmt
        .query_row([ns, key], |r| r.get::<_, Option<i64>>(1))
        .optional()
        .map_err(sql_err)?;
    Ok(match gone {
        Some(expires_at) => DeleteOutcome::Deleted {
            expires_at: expires_at.map(Timestamp::from_millis),
        },
        None => DeleteOutcome::NotFound,
    })
}

/// Versions of keys as known inside a transaction (`None`: no record).
type Versions<'a> = HashMap<(&'a str, &'a str), Option<u64>>;

/// Applies `ops` inside a transaction the caller commits: checks every
/// precondition first — against `versions` for the keys it holds, against
/// the table for the others — then writes. Returns the index of the first
/// precondition that does not hold (having written nothing), or `None`.
fn apply_ops<'a>(
    tx: &Connection,
    sql: &Sql,
    ops: &'a [BatchOp],
    mut versions: Versions<'a>,
) -> Result<Option<usize>> {
    for (index, op) in ops.iter().enumerate() {
        let (ns, key) = op.target();
        let current = match versions.get(&(ns, key)) {
            Some(v) => *v,
            None => version_of(tx, sql, ns, key)?.map(|(v, _)| v),
        };
        let (holds, after) = match op {
            // Deleting what is not there is fine.
            BatchOp::Delete { precondition, .. } => (
                *precondition == Precondition::Absent || precondition.holds(current),
                None,
            ),
            BatchOp::Put {
                record,
                precondition,
            } => (precondition.holds(current), Some(record.meta.version)),
        };
        if !holds {
            return Ok(Some(index));
        }
        versions.insert((ns, key), after);
    }
    // One statement for all the puts, taken from the cache once.
    let mut upsert = None;
    for op in ops {
        match op {
            BatchOp::Put { record, .. } => {
                let stmt = match &mut upsert {
                    Some(stmt) => stmt,
                    None => upsert.insert(tx.prepare_cached(&sql.upsert).map_err(sql_err)?),
                };
                execute_record(stmt, record, None)?;
            }
            BatchOp::Delete { namespace, key, .. } => {
                delete_row(tx, sql, namespace, key, Precondition::Any)?;
            }
        }
    }
    Ok(None)
}

fn live(expires_at: Option<i64>, now: Timestamp) -> bool {
    expires_at.is_none_or(|e| now.as_millis() < e)
}

#[async_trait]
impl Backend for SqliteStore {
    fn name(&self) -> &str {
        "sqlite"
    }

    fn capabilities(&self) -> Capabilities {
        let mut c = Capabilities::none();
        c.atomic_batch = true;
        c.native_ttl = true;
        c.native_increment = true;
        c.native_range_delete = true;
        c.persistent = !self.inner.options.is_memory();
        c.multi_process = !self.inner.options.is_memory();
        c.cas = CasMechanism::Transaction;
        // Calls block inside `block_in_place` (see `pool`), or wait for a
        // connection's thread, which yields.
        c.cooperation = Cooperation::InPlace;
        c
    }

    async fn read(&self, namespace: &str, key: &str) -> Result<Option<Record>> {
        self.read_with(
            |c, sql| read_record(c, sql, namespace, key),
            || {
                let (ns, key) = (namespace.to_owned(), key.to_owned());
                move |c, sql| read_record(c, sql, &ns, &key)
            },
        )
        .await
    }

    async fn read_value(&self, namespace: &str, key: &str) -> Result<Option<StoredValue>> {
        self.read_with(
            |c, sql| read_stored(c, sql, namespace, key),
            || {
                let (ns, key) = (namespace.to_owned(), key.to_owned());
                move |c, sql| read_stored(c, sql, &ns, &key)
            },
        )
        .await
    }

    async fn read_many(&self, namespace: &str, keys: &[String]) -> Result<Vec<Option<Record>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.read_with(
            |c, sql| read_many_records(c, sql, namespace, keys),
            || {
                let (ns, keys) = (namespace.to_owned(), keys.to_vec());
                move |c, sql| read_many_records(c, sql, &ns, &keys)
            },
        )
        .await
    }

    async fn write(&self, record: Record, precondition: Precondition) -> Result<WriteOutcome> {
        self.write_job(move |c, sql| {
            Ok(if write_record(c, sql, &record, precondition)? {
                WriteOutcome::Written
            } else {
                WriteOutcome::PreconditionFailed
            })
        })
        .await
    }

    async fn delete(
        &self,
        namespace: &str,
        key: &str,
        precondition: Precondition,
    ) -> Result<DeleteOutcome> {
        let (ns, key) = (namespace.to_owned(), key.to_owned());
        self.write_job(move |c, sql| {
            if matches!(precondition, Precondition::Version(_)) {
                let tx = c
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(sql_err)?;
                let out = delete_row(&tx, sql, &ns, &key, precondition)?;
                tx.commit().map_err(sql_err)?;
                Ok(out)
            } else {
                delete_row(c, sql, &ns, &key, precondition)
            }
        })
        .await
    }

    async fn scan(
        &self,
        namespace: &str,
        range: &KeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>> {
        self.read_with(
            |c, sql| scan_records(c, sql, namespace, range, after, limit),
            || {
                let (ns, range) = (namespace.to_owned(), range.clone());
                let after = after.map(str::to_owned);
                move |c, sql| scan_records(c, sql, &ns, &range, after.as_deref(), limit)
            },
        )
        .await
    }

    async fn scan_keys(
        &self,
        namespace: &str,
        range: &KeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KeyInfo>> {
        self.read_with(
            |c, sql| scan_key_infos(c, sql, namespace, range, after, limit),
            || {
                let (ns, range) = (namespace.to_owned(), range.clone());
                let after = after.map(str::to_owned);
                move |c, sql| scan_key_infos(c, sql, &ns, &range, after.as_deref(), limit)
            },
        )
        .await
    }

    async fn apply(&self, ops: Vec<BatchOp>) -> Result<BatchOutcome> {
        self.write_job(move |c, sql| {
            // Dropping the transaction without commit rolls it back: any
            // error below leaves nothing behind.
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_err)?;
            if let Some(index) = apply_ops(&tx, sql, &ops, HashMap::new())? {
                return Ok(BatchOutcome::PreconditionFailed { index });
            }
            tx.commit().map_err(sql_err)?;
            Ok(BatchOutcome::Applied)
        })
        .await
    }

    async fn apply_planned(
        &self,
        namespace: &str,
        keys: &[String],
        plan: BatchPlan,
    ) -> Result<PlannedOutcome> {
        let ns = namespace.to_owned();
        let keys = keys.to_vec();
        self.write_job(move |c, sql| {
            // Reads, plan and writes in one write transaction on the writer
            // connection: nothing changes in between (other processes wait
            // on the lock), so the plan's preconditions are checked against
            // what was read here instead of reading every key again; and
            // the writer's page cache is warm where a reader's would have
            // been invalidated by the last write.
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_err)?;
            let mut physical = Vec::with_capacity(keys.len());
            {
                let mut stmt = tx.prepare_cached(&sql.read).map_err(sql_err)?;
                let namespace = ns.as_str().into();
                for key in &keys {
                    let mut rows = stmt.query([&ns, key]).map_err(sql_err)?;
                    physical.push(match rows.next().map_err(sql_err)? {
                        Some(row) => Some(record_from_row(&namespace, key.clone(), row, 0)?),
                        None => None,
                    });
                }
            }
            let versions: Versions<'_> = keys
                .iter()
                .zip(&physical)
                .map(|(k, r)| ((ns.as_str(), k.as_str()), r.as_ref().map(Record::version)))
                .collect();
            let Some(ops) = plan(physical)? else {
                return Ok(PlannedOutcome::Declined);
            };
            let (puts, deletes) = kv_core::ops::count_ops(&ops);
            if apply_ops(&tx, sql, &ops, versions)?.is_some() {
                return Ok(PlannedOutcome::Conflict);
            }
            tx.commit().map_err(sql_err)?;
            Ok(PlannedOutcome::Applied { puts, deletes })
        })
        .await
    }

    async fn count(&self, namespace: &str, range: &KeyRange, now: Timestamp) -> Result<u64> {
        let now = now.as_millis();
        self.read_with(
            |c, sql| count_live(c, sql, namespace, range, now),
            || {
                let (ns, range) = (namespace.to_owned(), range.clone());
                move |c, sql| count_live(c, sql, &ns, &range, now)
            },
        )
        .await
    }

    async fn remove_expired(&self, namespace: Option<&str>, now: Timestamp) -> Result<u64> {
        let ns = namespace.map(str::to_owned);
        let now = now.as_millis();
        self.write_job(move |c, sql| {
            let n = match &ns {
                None => c
                    .prepare_cached(&sql.remove_expired)
                    .and_then(|mut s| s.execute([now]))
                    .map_err(sql_err)?,
                Some(ns) => c
                    .prepare_cached(&sql.remove_expired_ns)
                    .and_then(|mut s| s.execute(rusqlite::params![now, ns]))
                    .map_err(sql_err)?,
            };
            Ok(n as u64)
        })
        .await
    }

    async fn delete_range(&self, namespace: &str, range: &KeyRange, now: Timestamp) -> Result<u64> {
        let (ns, range) = (namespace.to_owned(), range.clone());
        self.write_job(move |c, sql| {
            let range = Range::new(&range, None);
            let mut stmt = c
                .prepare_cached(sql.delete_range(&range))
                .map_err(sql_err)?;
            let ns = ns.as_str();
            let params = range.params(&ns, &[]);
            let rows = stmt
                .query_map(&params[..], |r| r.get::<_, Option<i64>>(0))
                .map_err(sql_err)?;
            let mut removed_live = 0u64;
            for e in rows {
                if live(e.map_err(sql_err)?, now) {
                    removed_live += 1;
                }
            }
            Ok(removed_live)
        })
        .await
    }

    async fn increment(
        &self,
        namespace: &str,
        key: &str,
        delta: i64,
        now: Timestamp,
    ) -> Result<i64> {
        let (ns, key) = (namespace.to_owned(), key.to_owned());
        self.write_job(move |c, sql| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_err)?;
            let current = read_record(&tx, sql, &ns, &key)?;
            let live = current.filter(|r| !r.is_expired(now));
            let (record, new) = kv_core::ops::incremented(&ns, &key, live.as_ref(), delta, now)?;
            write_record(&tx, sql, &record, Precondition::Any)?;
            tx.commit().map_err(sql_err)?;
            Ok(new)
        })
        .await
    }

    async fn namespaces(&self) -> Result<Vec<String>> {
        self.read_job(|c, sql| {
            let mut stmt = c.prepare_cached(&sql.namespaces).map_err(sql_err)?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(sql_err)?;
            rows.collect::<rusqlite::Result<Vec<String>>>()
                .map_err(sql_err)
        })
        .await
    }

    async fn compact(&self) -> Result<()> {
        if self.inner.options.is_memory() {
            return Ok(());
        }
        self.write_job(|c, _| {
            // Rewrites the file without its free pages, then moves what the
            // WAL holds into it and truncates the WAL to nothing.
            c.execute_batch("VACUUM").map_err(sql_err)?;
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .map_err(sql_err)
        })
        .await
    }

    async fn flush(&self) -> Result<()> {
        if self.inner.options.is_memory() {
            return Ok(());
        }
        self.write_job(|c, _| {
            // Copies committed transactions from the WAL into the database
            // file and syncs both.
            c.query_row("PRAGMA wal_checkpoint(FULL)", [], |_| Ok(()))
                .map_err(sql_err)
        })
        .await
    }

    async fn close(&self) -> Result<()> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.pool.close())
            .await
            .map_err(|e| Error::backend("sqlite", false, e))
    }

    async fn stats(&self) -> Result<BackendStats> {
        let table = self.inner.options.table.clone();
        let mut stats = BackendStats {
            backend: "sqlite".into(),
            ..BackendStats::default()
        };
        let (pages, page_size, rows): (i64, i64, i64) = self
            .read_job(move |c, sql| {
                let pages: i64 = c
                    .query_row("PRAGMA page_count", [], |r| r.get(0))
                    .map_err(sql_err)?;
                let page_size: i64 = c
                    .query_row("PRAGMA page_size", [], |r| r.get(0))
                    .map_err(sql_err)?;
                let rows: i64 = c
                    .query_row(
                        &format!(r#"SELECT count(*) FROM "{}""#, sql.table),
                        [],
                        |r| r.get(0),
                    )
                    .map_err(sql_err)?;
                Ok((pages, page_size, rows))
            })
            .await?;
        let f = &mut stats.fields;
        f.insert("table".into(), table.into());
        f.insert("rows".into(), rows.into());
        f.insert("database_bytes".into(), (pages * page_size).into());
        f.insert(
            "synchronous".into(),
            self.inner.options.synchronous.to_string().into(),
        );
        f.insert(
            "connections".into(),
            (if self.inner.pool.single_connection() {
                1
            } else {
                1 + self.inner.options.readers
            })
            .into(),
        );
        Ok(stats)
    }
}
