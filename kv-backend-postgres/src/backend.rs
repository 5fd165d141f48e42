//! [`PgStore`]: `kv_core::Backend` on PostgreSQL over a `PgPool`.
//!
//! | primitive | SQL |
//! |---|---|
//! | `write(Any)` | `INSERT … ON CONFLICT DO UPDATE` |
//! | `write(Absent)` (`set_nx`) | `INSERT … ON CONFLICT DO NOTHING` |
//! | `write(Version(n))` (CAS) | `UPDATE … WHERE version = $n` |
//! | `read_many` (`get_many`) | `… WHERE key = ANY($2)` |
//! | `apply` (batches) | one transaction, each statement checking its own precondition; rolled back whole on failure |
//! | `delete_range` (`delete_pattern` on a prefix) | one `DELETE … WHERE key >= $2 AND key < $3` |
//! | `remove_expired` (`cleanup_expired`) | one `DELETE … WHERE expires_at <= $1` |
//! | `scan_matching` (`find_by_metadata`) | `metadata @> $json AND metadata ?& $keys` on the GIN index |
//! | `increment` of a live integer | one `UPDATE … RETURNING` (`IntInPlace` in `schema.rs`) |
//! | `increment` otherwise | one transaction: `SELECT … FOR UPDATE`, then the new row |
//! | `append_in_place` (`append` to a live string or bytes value) | one `UPDATE … RETURNING` (`AppendInPlace` in `schema.rs`) |
//!
//! Reads, scans and unconditional writes are retried (a bounded number of
//! times) after temporary failures; conditional writes, batches,
//! increments and appends are not, since a lost reply could hide a commit.
//! An increment or append that the one-statement path does not take (no
//! row matched) costs that statement's round trip before the general
//! path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::Row;

use kv_core::backend::{
    Backend, BackendStats, BatchOp, BatchOutcome, Capabilities, CasMechanism, DeleteOutcome,
    KeyInfo, KeyRange, Precondition, WriteOutcome,
};
use kv_core::metadata::{Condition, MetadataFilter};
use kv_core::record::StoredValue;
use kv_core::{Error, Record, Result, Timestamp, Value};

use crate::error::{map, retry};
use crate::options::PgOptions;
use crate::schema::{
    self, q, record_from_row, AppendInPlace, Range, RowValues, Sql, Text, COLUMNS, SCHEMA_VERSION,
};

/// The PostgreSQL backend. Cheap to clone; clones share the pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: PgPool,
    sql: Sql,
    options: PgOptions,
    /// Increments done by the one-statement path (in `stats`).
    increments_in_place: AtomicU64,
    /// Appends done by the one-statement path (in `stats`).
    appends_in_place: AtomicU64,
}

/// A statement whose plan [`PgStore::query_plan`] shows.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Planned {
    /// The scan behind a pattern with this literal prefix.
    PrefixScan(String),
    /// `find_by_metadata` over a namespace with this filter.
    FindByMetadata(MetadataFilter),
}

/// The advisory-lock key of a table's schema creation.
fn lock_key(table: &str) -> i64 {
    // FNV-1a: stable across processes and builds.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "dataknobs-kv schema ".bytes().chain(table.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// The SQL condition of a filter (`metadata @> $N`, `metadata ?& $M`, only
/// those it needs) and how many parameters it takes.
fn filter_clause(contains: &serde_json::Value, exists: &[String]) -> (&'static str, usize) {
    let has_contains = contains.as_object().is_some_and(|m| !m.is_empty());
    match (has_contains, !exists.is_empty()) {
        (true, true) => ("AND metadata @> $N AND metadata ?& $M", 2),
        (true, false) => ("AND metadata @> $N", 1),
        (false, true) => ("AND metadata ?& $N", 1),
        (false, false) => ("", 0),
    }
}

/// Binds what [`filter_clause`] asked for.
fn bind_filter<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    contains: &serde_json::Value,
    exists: &[String],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    if contains.as_object().is_some_and(|m| !m.is_empty()) {
        query = query.bind(contains.clone());
    }
    if !exists.is_empty() {
        query = query.bind(exists.to_vec());
    }
    query
}

/// The containment object and the key list a filter becomes, or `None`
/// when it cannot be said with one `@>` (two conditions on one field).
fn filter_sql(filter: &MetadataFilter) -> Option<(serde_json::Value, Vec<String>)> {
    let mut contains = serde_json::Map::new();
    let mut exists = Vec::new();
    for c in &filter.conditions {
        match c {
            Condition::Equals { field, value } => {
                if contains.insert(field.clone(), value.clone()).is_some() {
                    return None;
                }
            }
            Condition::Contains { field, value } => {
                let array = serde_json::Value::Array(vec![value.clone()]);
                if contains.insert(field.clone(), array).is_some() {
                    return None;
                }
            }
            Condition::Exists { field } => exists.push(field.clone()),
            // A condition this build does not know: use the generic path.
            _ => return None,
        }
    }
    Some((serde_json::Value::Object(contains), exists))
}

/// Makes one connection before the pool does, so a server that cannot be
/// reached is reported with its cause (refused, unknown host, bad password)
/// rather than as the pool's bare timeout. Transient failures are retried
/// until `timeout`; the others fail at once.
async fn first_connection(
    connect: &sqlx::postgres::PgConnectOptions,
    timeout: std::time::Duration,
) -> Result<()> {
    use sqlx::Connection;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pause = std::time::Duration::from_millis(50);
    loop {
        let attempt =
            tokio::time::timeout_at(deadline, sqlx::PgConnection::connect_with(connect)).await;
        let error = match attempt {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                return Ok(());
            }
            Ok(Err(e @ (sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut))) => e,
            Ok(Err(e)) => return Err(map(e)),
            Err(_) => {
                return Err(Error::backend(
                    "postgres",
                    true,
                    format!("no connection to the server within {timeout:?}"),
                ))
            }
        };
        if tokio::time::Instant::now() + pause >= deadline {
            return Err(Error::backend(
                "postgres",
                true,
                format!("cannot connect to the server within {timeout:?}: {error}"),
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_secs(1));
    }
}

impl PgStore {
    /// Connects, and creates the table, its indexes and the schema row when
    /// missing (in one transaction, under an advisory lock, so many
    /// processes may start at once). A table from a newer schema is
    /// refused.
    pub async fn open(options: PgOptions) -> Result<PgStore> {
        options.validate()?;
        let connect = options.connect_options()?;
        first_connection(&connect, options.connect_timeout).await?;
        let pool = PgPoolOptions::new()
            .max_connections(options.pool_size)
            .acquire_timeout(options.connect_timeout)
            .connect_with(connect)
            .await
            .map_err(map)?;
        let table = options.table.clone();
        let mut tx = pool.begin().await.map_err(map)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(lock_key(&table))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        for stmt in schema::ddl(&table) {
            let text: Text = stmt.into();
            q(&text).execute(&mut *tx).await.map_err(map)?;
        }
        let existing: Option<i32> = sqlx::query("SELECT version FROM kv_schema WHERE tbl = $1")
            .bind(&table)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map)?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(map)?;
        match existing {
            None => {
                sqlx::query("INSERT INTO kv_schema (tbl, version) VALUES ($1, $2)")
                    .bind(&table)
                    .bind(SCHEMA_VERSION)
                    .execute(&mut *tx)
                    .await
                    .map_err(map)?;
            }
            Some(v) if v > SCHEMA_VERSION => {
                return Err(Error::config(
                    "postgres.table",
                    format!(
                        "table {table:?} has schema version {v}, written by a newer version of kv-backend-postgres (this one reads {SCHEMA_VERSION})"
                    ),
                ))
            }
            // Version 1 is the only one so far; later versions migrate here.
            Some(_) => {}
        }
        tx.commit().await.map_err(map)?;
        let sql = Sql::new(&table);
        Ok(PgStore {
            inner: Arc::new(Inner {
                pool,
                sql,
                options,
                increments_in_place: AtomicU64::new(0),
                appends_in_place: AtomicU64::new(0),
            }),
        })
    }

    /// The pool, for tools and tests that need SQL the backend does not
    /// offer.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The options it was opened with (the password stays hidden in
    /// `Debug`).
    pub fn options(&self) -> &PgOptions {
        &self.inner.options
    }

    fn attempts(&self) -> u32 {
        self.inner.options.retries.max(1)
    }

    /// `EXPLAIN` of the statement the backend runs for `what` in
    /// `namespace`, one line per plan line.
    pub async fn query_plan(&self, namespace: &str, what: &Planned) -> Result<Vec<String>> {
        let sql = &self.inner.sql;
        let ns = namespace.to_owned();
        let rows = match what {
            Planned::PrefixScan(prefix) => {
                let range = Range::new(&KeyRange::prefix(prefix), None);
                // The statement `scan` runs, as it runs it.
                let text: Text = format!("EXPLAIN {}", sql.scan.text(&range)).into();
                range
                    .bind(q(&text).bind(ns))
                    .bind(1000i64)
                    .fetch_all(&self.inner.pool)
                    .await
                    .map_err(map)?
            }
            Planned::FindByMetadata(filter) => {
                let (contains, exists) = filter_sql(filter).ok_or_else(|| {
                    Error::invalid_argument(
                        "filter",
                        "two conditions on one field have no single plan",
                    )
                })?;
                let range = Range::new(&KeyRange::all(), None);
                let (clause, params) = filter_clause(&contains, &exists);
                let (text, n) = sql.ranged(
                    &format!("EXPLAIN SELECT key, {COLUMNS}"),
                    &range,
                    clause,
                    "",
                );
                let text: Text = format!("{text}ORDER BY key LIMIT ${}", n + params).into();
                bind_filter(range.bind(q(&text).bind(ns)), &contains, &exists)
                    .bind(1000i64)
                    .fetch_all(&self.inner.pool)
                    .await
                    .map_err(map)?
            }
        };
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(map))
            .collect()
    }
}

/// Converts every row, into a vector allocated once (a `collect` of
/// `Result`s cannot size it up front).
fn each_row<T>(rows: &[PgRow], mut convert: impl FnMut(&PgRow) -> Result<T>) -> Result<Vec<T>> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(convert(row)?);
    }
    Ok(out)
}

/// SQLSTATE `numeric_value_out_of_range` (a `bigint` overflow).
const OUT_OF_RANGE: &str = "22003";

fn outcome(changed: u64) -> WriteOutcome {
    if changed == 1 {
        WriteOutcome::Written
    } else {
        WriteOutcome::PreconditionFailed
    }
}

fn live(expires_at: Option<i64>, now: Timestamp) -> bool {
    expires_at.is_none_or(|e| now.as_millis() < e)
}

#[async_trait]
impl Backend for PgStore {
    fn name(&self) -> &str {
        "postgres"
    }

    fn capabilities(&self) -> Capabilities {
        let mut c = Capabilities::none();
        c.atomic_batch = true;
        c.native_ttl = true;
        c.native_increment = true;
        c.native_range_delete = true;
        c.persistent = true;
        c.multi_process = true;
        c.cas = CasMechanism::Transaction;
        c
    }

    async fn read(&self, namespace: &str, key: &str) -> Result<Option<Record>> {
        let row = retry(self.attempts(), || {
            q(&self.inner.sql.read)
                .bind(namespace)
                .bind(key.to_owned())
                .fetch_optional(&self.inner.pool)
        })
        .await?;
        row.map(|r| record_from_row(&namespace.into(), key.to_owned(), &r, 0))
            .transpose()
    }

    async fn read_value(&self, namespace: &str, key: &str) -> Result<Option<StoredValue>> {
        let row = retry(self.attempts(), || {
            q(&self.inner.sql.read_value)
                .bind(namespace)
                .bind(key.to_owned())
                .fetch_optional(&self.inner.pool)
        })
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        Ok(Some(StoredValue {
            value: r.try_get(0).map_err(map)?,
            checksum: u32::try_from(r.try_get::<i64, _>(1).map_err(map)?).unwrap_or(0),
            expires_at: r
                .try_get::<Option<i64>, _>(2)
                .map_err(map)?
                .map(Timestamp::from_millis),
        }))
    }

    async fn read_many(&self, namespace: &str, keys: &[String]) -> Result<Vec<Option<Record>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let rows = retry(self.attempts(), || {
            q(&self.inner.sql.read_many)
                .bind(namespace)
                .bind(keys.to_vec())
                .fetch_all(&self.inner.pool)
        })
        .await?;
        let mut found = std::collections::HashMap::with_capacity(rows.len());
        let shared_ns = namespace.into();
        for r in &rows {
            let key: String = r.try_get(0).map_err(map)?;
            found.insert(key.clone(), record_from_row(&shared_ns, key, r, 1)?);
        }
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    async fn write(&self, record: Record, precondition: Precondition) -> Result<WriteOutcome> {
        let row = RowValues::of(&record)?;
        let sql = &self.inner.sql;
        let pool = &self.inner.pool;
        match precondition {
            // An upsert is idempotent: safe to repeat after a lost reply.
            Precondition::Any => retry(self.attempts(), || row.bind(q(&sql.upsert)).execute(pool))
                .await
                .map(|r| outcome(r.rows_affected())),
            Precondition::Absent => row
                .bind(q(&sql.insert_absent))
                .execute(pool)
                .await
                .map(|r| outcome(r.rows_affected()))
                .map_err(map),
            Precondition::Version(v) => row
                .bind(q(&sql.update_version))
                .bind(i64::try_from(v).unwrap_or(i64::MAX))
                .execute(pool)
                .await
                .map(|r| outcome(r.rows_affected()))
                .map_err(map),
        }
    }

    async fn delete(
        &self,
        namespace: &str,
        key: &str,
        precondition: Precondition,
    ) -> Result<DeleteOutcome> {
        let sql = &self.inner.sql;
        let pool = &self.inner.pool;
        let gone: Option<Option<i64>> = match precondition {
            Precondition::Version(v) => q(&sql.delete_version)
                .bind(namespace)
                .bind(key.to_owned())
                .bind(i64::try_from(v).unwrap_or(i64::MAX))
                .fetch_optional(pool)
                .await
                .map_err(map)?
                .map(|r| r.try_get(0))
                .transpose()
                .map_err(map)?,
            _ => q(&sql.delete)
                .bind(namespace)
                .bind(key.to_owned())
                .fetch_optional(pool)
                .await
                .map_err(map)?
                .map(|r| r.try_get(0))
                .transpose()
                .map_err(map)?,
        };
        if let Some(expires_at) = gone {
            return Ok(DeleteOutcome::Deleted {
                expires_at: expires_at.map(Timestamp::from_millis),
            });
        }
        if matches!(precondition, Precondition::Version(_)) {
            let exists = q(&sql.exists)
                .bind(namespace)
                .bind(key.to_owned())
                .fetch_optional(pool)
                .await
                .map_err(map)?;
            if exists.is_some() {
                return Ok(DeleteOutcome::PreconditionFailed);
            }
        }
        Ok(DeleteOutcome::NotFound)
    }

    async fn scan(
        &self,
        namespace: &str,
        range: &KeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>> {
        let range = Range::new(range, after);
        let text = self.inner.sql.scan.text(&range);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = retry(self.attempts(), || {
            range
                .bind(q(text).bind(namespace))
                .bind(limit)
                .fetch_all(&self.inner.pool)
        })
        .await?;
        let shared_ns = namespace.into();
        each_row(&rows, |r| {
            let key: String = r.try_get(0).map_err(map)?;
            record_from_row(&shared_ns, key, r, 1)
        })
    }

    async fn scan_keys(
        &self,
        namespace: &str,
        range: &KeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KeyInfo>> {
        let range = Range::new(range, after);
        let text = self.inner.sql.scan_keys.text(&range);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = retry(self.attempts(), || {
            range
                .bind(q(text).bind(namespace))
                .bind(limit)
                .fetch_all(&self.inner.pool)
        })
        .await?;
        each_row(&rows, |r| {
            Ok(KeyInfo {
                key: r.try_get(0).map_err(map)?,
                expires_at: r
                    .try_get::<Option<i64>, _>(1)
                    .map_err(map)?
                    .map(Timestamp::from_millis),
                version: u64::try_from(r.try_get::<i64, _>(2).map_err(map)?).unwrap_or(0),
            })
        })
    }

    async fn scan_matching(
        &self,
        namespace: &str,
        range: &KeyRange,
        after: Option<&str>,
        limit: usize,
        filter: &MetadataFilter,
    ) -> Result<Vec<Record>> {
        let Some((contains, exists)) = filter_sql(filter) else {
            return kv_core::ops::scan_matching(self, namespace, range, after, limit, filter).await;
        };
        let range = Range::new(range, after);
        let (clause, params) = filter_clause(&contains, &exists);
        let (text, n) =
            self.inner
                .sql
                .ranged(&format!("SELECT key, {COLUMNS}"), &range, clause, "");
        let text: Text = format!("{text}ORDER BY key LIMIT ${}", n + params).into();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = retry(self.attempts(), || {
            bind_filter(range.bind(q(&text).bind(namespace)), &contains, &exists)
                .bind(limit)
                .fetch_all(&self.inner.pool)
        })
        .await?;
        let shared_ns = namespace.into();
        each_row(&rows, |r| {
            let key: String = r.try_get(0).map_err(map)?;
            record_from_row(&shared_ns, key, r, 1)
        })
    }

    async fn apply(&self, ops: Vec<BatchOp>) -> Result<BatchOutcome> {
        let sql = &self.inner.sql;
        let mut prepared = Vec::with_capacity(ops.len());
        for op in &ops {
            let row = match op {
                BatchOp::Put { record, .. } => Some(RowValues::of(record)?),
                BatchOp::Delete { .. } => None,
            };
            let (ns, key) = op.target();
            prepared.push((ns.to_owned(), key.to_owned(), op.precondition(), row));
        }
        // Dropping the transaction without commit rolls it back: an error
        // (or a lost connection) anywhere leaves nothing behind.
        let mut tx = self.inner.pool.begin().await.map_err(map)?;
        for (index, (ns, key, precondition, row)) in prepared.into_iter().enumerate() {
            let holds = match (row, precondition) {
                (Some(row), Precondition::Any) => {
                    row.bind(q(&sql.upsert))
                        .execute(&mut *tx)
                        .await
                        .map_err(map)?;
                    true
                }
                (Some(row), Precondition::Absent) => {
                    row.bind(q(&sql.insert_absent))
                        .execute(&mut *tx)
                        .await
                        .map_err(map)?
                        .rows_affected()
                        == 1
                }
                (Some(row), Precondition::Version(v)) => {
                    row.bind(q(&sql.update_version))
                        .bind(i64::try_from(v).unwrap_or(i64::MAX))
                        .execute(&mut *tx)
                        .await
                        .map_err(map)?
                        .rows_affected()
                        == 1
                }
                (None, Precondition::Version(v)) => q(&sql.delete_version)
                    .bind(ns)
                    .bind(key)
                    .bind(i64::try_from(v).unwrap_or(i64::MAX))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map)?
                    .is_some(),
                (None, _) => {
                    q(&sql.delete)
                        .bind(ns)
                        .bind(key)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(map)?;
                    true
                }
            };
            if !holds {
                tx.rollback().await.map_err(map)?;
                return Ok(BatchOutcome::PreconditionFailed { index });
            }
        }
        tx.commit().await.map_err(map)?;
        Ok(BatchOutcome::Applied)
    }

    async fn count(&self, namespace: &str, range: &KeyRange, now: Timestamp) -> Result<u64> {
        let range = Range::new(range, None);
        let (text, _) = self.inner.sql.ranged(
            "SELECT count(*)",
            &range,
            "AND (expires_at IS NULL OR expires_at > $N)",
            "",
        );
        let text: Text = text.into();
        let row = retry(self.attempts(), || {
            range
                .bind(q(&text).bind(namespace))
                .bind(now.as_millis())
                .fetch_one(&self.inner.pool)
        })
        .await?;
        Ok(u64::try_from(row.try_get::<i64, _>(0).map_err(map)?).unwrap_or(0))
    }

    async fn remove_expired(&self, namespace: Option<&str>, now: Timestamp) -> Result<u64> {
        let sql = &self.inner.sql;
        // Deleting what is expired is idempotent: retrying is safe (a
        // retry after a lost reply reports fewer removals).
        let done = retry(self.attempts(), || {
            let query = match namespace {
                None => q(&sql.remove_expired).bind(now.as_millis()),
                Some(ns) => q(&sql.remove_expired_ns)
                    .bind(now.as_millis())
                    .bind(ns.to_owned()),
            };
            query.execute(&self.inner.pool)
        })
        .await?;
        Ok(done.rows_affected())
    }

    async fn delete_range(&self, namespace: &str, range: &KeyRange, now: Timestamp) -> Result<u64> {
        let range = Range::new(range, None);
        let (text, _) = self
            .inner
            .sql
            .ranged("DELETE", &range, "", "RETURNING expires_at");
        let text: Text = text.into();
        let rows = range
            .bind(q(&text).bind(namespace))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(map)?;
        let mut removed_live = 0u64;
        for r in &rows {
            if live(r.try_get::<Option<i64>, _>(0).map_err(map)?, now) {
                removed_live += 1;
            }
        }
        Ok(removed_live)
    }

    async fn increment(
        &self,
        namespace: &str,
        key: &str,
        delta: i64,
        now: Timestamp,
    ) -> Result<i64> {
        let sql = &self.inner.sql;
        // A live integer: one statement. Not retried (it is not
        // idempotent). Anything else, and an overflow, takes the
        // transaction below, which decides with kv-core's rules.
        let in_place = q(&sql.increment_in_place)
            .bind(namespace)
            .bind(key)
            .bind(delta)
            .bind(now.as_millis())
            .fetch_optional(&self.inner.pool)
            .await;
        match in_place {
            Ok(Some(row)) => {
                self.inner
                    .increments_in_place
                    .fetch_add(1, Ordering::Relaxed);
                return row.try_get::<i64, _>(0).map_err(map);
            }
            Ok(None) => {}
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(OUT_OF_RANGE) => {}
            Err(e) => return Err(map(e)),
        }
        // Two processes creating the same missing key race on the insert;
        // the loser starts over and finds the row.
        for _ in 0..16 {
            let mut tx = self.inner.pool.begin().await.map_err(map)?;
            let current = q(&sql.version_for_update)
                .bind(namespace)
                .bind(key.to_owned())
                .fetch_optional(&mut *tx)
                .await
                .map_err(map)?
                .map(|r| record_from_row(&namespace.into(), key.to_owned(), &r, 0))
                .transpose()?;
            let existed = current.is_some();
            let live = current.filter(|r| !r.is_expired(now));
            let (record, new) =
                kv_core::ops::incremented(namespace, key, live.as_ref(), delta, now)?;
            let row = RowValues::of(&record)?;
            let written = if existed {
                row.bind(q(&sql.upsert))
                    .execute(&mut *tx)
                    .await
                    .map_err(map)?;
                true
            } else {
                row.bind(q(&sql.insert_absent))
                    .execute(&mut *tx)
                    .await
                    .map_err(map)?
                    .rows_affected()
                    == 1
            };
            if written {
                tx.commit().await.map_err(map)?;
                return Ok(new);
            }
            tx.rollback().await.map_err(map)?;
        }
        Err(Error::Conflict {
            key: key.to_owned(),
            operation: "increment".into(),
            attempts: 16,
        })
    }

    async fn append_in_place(
        &self,
        namespace: &str,
        key: &str,
        piece: &Value,
        max_size: usize,
        now: Timestamp,
    ) -> Result<Option<u64>> {
        let bytes: &[u8] = match piece {
            Value::String(s) => s.as_bytes(),
            Value::Bytes(b) => b,
            _ => return Ok(None),
        };
        let targets: Vec<i32> = piece
            .append_target_tags()
            .iter()
            .map(|&t| i32::from(t))
            .collect();
        // One statement, not retried (it is not idempotent).
        let row = q(&self.inner.sql.append_in_place)
            .bind(namespace)
            .bind(key)
            .bind(bytes)
            .bind(AppendInPlace::shift_columns(bytes.len()))
            .bind(i64::from(crc32fast::hash(bytes)))
            .bind(now.as_millis())
            .bind(targets)
            .bind(i64::try_from(max_size).unwrap_or(i64::MAX))
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(map)?;
        let Some(row) = row else {
            return Ok(None);
        };
        self.inner.appends_in_place.fetch_add(1, Ordering::Relaxed);
        let len: i64 = row.try_get(0).map_err(map)?;
        Ok(Some(u64::try_from(len).unwrap_or(0)))
    }

    async fn namespaces(&self) -> Result<Vec<String>> {
        let rows = retry(self.attempts(), || {
            q(&self.inner.sql.namespaces).fetch_all(&self.inner.pool)
        })
        .await?;
        each_row(&rows, |r| r.try_get::<String, _>(0).map_err(map))
    }

    async fn compact(&self) -> Result<()> {
        // VACUUM cannot run in a transaction block or as a prepared
        // statement: the simple protocol. The table name passed the
        // allow-list check on open.
        let vacuum = format!("VACUUM (ANALYZE) \"{}\"", self.inner.sql.table);
        retry(self.attempts(), || {
            sqlx::raw_sql(sqlx::AssertSqlSafe(vacuum.clone())).execute(&self.inner.pool)
        })
        .await?;
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        self.inner.pool.close().await;
        Ok(())
    }

    async fn stats(&self) -> Result<BackendStats> {
        let estimate: Option<f32> = retry(self.attempts(), || {
            sqlx::query("SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)")
                .bind(format!("\"{}\"", self.inner.sql.table))
                .fetch_optional(&self.inner.pool)
        })
        .await?
        .map(|r| r.try_get(0))
        .transpose()
        .map_err(map)?;
        let mut stats = BackendStats {
            backend: "postgres".into(),
            ..BackendStats::default()
        };
        let f = &mut stats.fields;
        f.insert("table".into(), self.inner.sql.table.clone().into());
        f.insert(
            "rows_estimate".into(),
            (estimate.unwrap_or(0.0).max(0.0) as u64).into(),
        );
        f.insert("pool_size".into(), self.inner.pool.size().into());
        f.insert(
            "pool_idle".into(),
            (self.inner.pool.num_idle() as u64).into(),
        );
        f.insert("pool_max".into(), self.inner.options.pool_size.into());
        let counted = |c: &AtomicU64| c.load(Ordering::Relaxed);
        f.insert(
            "increments_in_place".into(),
            counted(&self.inner.increments_in_place).into(),
        );
        f.insert(
            "appends_in_place".into(),
            counted(&self.inner.appends_in_place).into(),
        );
        f.insert("url".into(), self.inner.options.redacted_url().into());
        Ok(stats)
    }
}
