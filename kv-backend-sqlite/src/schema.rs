//! The table, its versioned schema, the SQL the backend runs, and the
//! mapping between rows and records.
//!
//! ```sql
//! CREATE TABLE "kv_store" (
//!   namespace    TEXT    NOT NULL,
//!   key          TEXT    NOT NULL,   -- compared by bytes (BINARY collation)
//!   value        BLOB    NOT NULL,   -- kv_core::Value::encode
//!   value_type   TEXT    NOT NULL,
//!   version      INTEGER NOT NULL,
//!   checksum     INTEGER NOT NULL,   -- CRC32 of value
//!   size         INTEGER NOT NULL,
//!   content_type TEXT,
//!   created_at   INTEGER NOT NULL,   -- ms since the epoch
//!   updated_at   INTEGER NOT NULL,
//!   accessed_at  INTEGER,
//!   expires_at   INTEGER,            -- NULL = never
//!   metadata     TEXT    NOT NULL,   -- user metadata, JSON object
//!   PRIMARY KEY (namespace, key)
//! ) WITHOUT ROWID;
//! CREATE INDEX "kv_store_expires_at" ON "kv_store"(expires_at) WHERE expires_at IS NOT NULL;
//! CREATE TABLE kv_schema (tbl TEXT PRIMARY KEY, version INTEGER NOT NULL);
//! ```
//!
//! The table name is checked against an allow-list pattern before it is
//! ever put in a statement; everything else is a bound parameter.

use std::ops::Bound;

use rusqlite::{Connection, Row};

use kv_core::backend::KeyRange;
use kv_core::{Error, Record, Result, SystemMetadata, Timestamp, UserMetadata, ValueType};

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 1;

/// Columns of a record, in the order the statements use.
pub(crate) const COLUMNS: &str = "value, value_type, version, checksum, size, content_type, created_at, updated_at, accessed_at, expires_at, metadata";

/// Maps a driver error into the crate's error, in one place: busy and
/// locked databases are temporary.
pub(crate) fn sql_err(e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode;
    let temporary = matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    );
    Error::backend("sqlite", temporary, e)
}

/// Creates the table, its index and the schema row when missing; refuses a
/// table written by a newer schema. Runs in one transaction.
pub(crate) fn create(conn: &mut Connection, table: &str) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    tx.execute_batch(&format!(
        r#"CREATE TABLE IF NOT EXISTS kv_schema (tbl TEXT PRIMARY KEY, version INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS "{table}" (
            namespace    TEXT    NOT NULL,
            key          TEXT    NOT NULL,
            value        BLOB    NOT NULL,
            value_type   TEXT    NOT NULL,
            version      INTEGER NOT NULL,
            checksum     INTEGER NOT NULL,
            size         INTEGER NOT NULL,
            content_type TEXT,
            created_at   INTEGER NOT NULL,
            updated_at   INTEGER NOT NULL,
            accessed_at  INTEGER,
            expires_at   INTEGER,
            metadata     TEXT    NOT NULL,
            PRIMARY KEY (namespace, key)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS "{table}_expires_at" ON "{table}"(expires_at)
            WHERE expires_at IS NOT NULL;"#
    ))
    .map_err(sql_err)?;
    let existing: Option<i64> = tx
        .query_row(
            "SELECT version FROM kv_schema WHERE tbl = ?1",
            [table],
            |r| r.get(0),
        )
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })
        .map_err(sql_err)?;
    match existing {
        None => {
            tx.execute(
                "INSERT INTO kv_schema (tbl, version) VALUES (?1, ?2)",
                rusqlite::params![table, SCHEMA_VERSION],
            )
            .map_err(sql_err)?;
        }
        Some(v) if v > SCHEMA_VERSION => {
            return Err(Error::config(
                "sqlite.table",
                format!(
                    "table {table:?} has schema version {v}, written by a newer version of kv-backend-sqlite (this one reads {SCHEMA_VERSION})"
                ),
            ))
        }
        // Version 1 is the only one so far; later versions migrate here.
        Some(_) => {}
    }
    tx.commit().map_err(sql_err)
}

/// The statements of one table.
#[derive(Debug, Clone)]
pub(crate) struct Sql {
    pub table: String,
    pub read: String,
    pub read_value: String,
    pub read_many: String,
    pub upsert: String,
    pub insert_absent: String,
    pub update_version: String,
    pub delete: String,
    pub version_of: String,
    pub remove_expired: String,
    pub remove_expired_ns: String,
    pub namespaces: String,
}

impl Sql {
    pub(crate) fn new(t: &str) -> Sql {
        let insert = format!(
            r#"INSERT INTO "{t}" (namespace, key, {COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"#
        );
        Sql {
            table: t.to_owned(),
            read: format!(r#"SELECT {COLUMNS} FROM "{t}" WHERE namespace = ?1 AND key = ?2"#),
            read_value: format!(
                r#"SELECT value, checksum, expires_at FROM "{t}" WHERE namespace = ?1 AND key = ?2"#
            ),
            read_many: format!(
                r#"SELECT key, {COLUMNS} FROM "{t}" WHERE namespace = ?1 AND key IN (SELECT value FROM json_each(?2))"#
            ),
            upsert: format!(
                "{insert} ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, \
                 value_type = excluded.value_type, version = excluded.version, \
                 checksum = excluded.checksum, size = excluded.size, \
                 content_type = excluded.content_type, created_at = excluded.created_at, \
                 updated_at = excluded.updated_at, accessed_at = excluded.accessed_at, \
                 expires_at = excluded.expires_at, metadata = excluded.metadata"
            ),
            insert_absent: format!("{insert} ON CONFLICT (namespace, key) DO NOTHING"),
            update_version: format!(
                r#"UPDATE "{t}" SET value = ?3, value_type = ?4, version = ?5, checksum = ?6, size = ?7, content_type = ?8, created_at = ?9, updated_at = ?10, accessed_at = ?11, expires_at = ?12, metadata = ?13 WHERE namespace = ?1 AND key = ?2 AND version = ?14"#
            ),
            delete: format!(
                r#"DELETE FROM "{t}" WHERE namespace = ?1 AND key = ?2 RETURNING version, expires_at"#
            ),
            version_of: format!(
                r#"SELECT version, expires_at FROM "{t}" WHERE namespace = ?1 AND key = ?2"#
            ),
            // Expired keys are usually few: walk them through the expiry
            // index rather than the namespace's whole key range, which the
            // planner would otherwise prefer for `namespace = ?`.
            remove_expired: format!(
                r#"DELETE FROM "{t}" INDEXED BY "{t}_expires_at" WHERE expires_at <= ?1"#
            ),
            remove_expired_ns: format!(
                r#"DELETE FROM "{t}" INDEXED BY "{t}_expires_at" WHERE expires_at <= ?1 AND namespace = ?2"#
            ),
            namespaces: format!(r#"SELECT DISTINCT namespace FROM "{t}" ORDER BY namespace"#),
        }
    }

    /// `SELECT <what> FROM t WHERE namespace = :ns <range> ORDER BY key
    /// <tail>`: composed from fixed fragments (and integers) only.
    pub(crate) fn ranged(&self, what: &str, range: &Range, tail: &str) -> String {
        let mut sql = format!(r#"{what} FROM "{}" WHERE namespace = :ns"#, self.table);
        match range.lower {
            Lower::None => {}
            Lower::Included => sql.push_str(" AND key >= :lo"),
            Lower::Excluded => sql.push_str(" AND key > :lo"),
        }
        if range.upper.is_some() {
            sql.push_str(" AND key < :hi");
        }
        sql.push(' ');
        sql.push_str(tail);
        sql
    }
}

/// The kind of lower bound of a [`Range`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lower {
    None,
    Included,
    Excluded,
}

/// A key range with its bounds as parameters.
#[derive(Debug, Clone)]
pub(crate) struct Range {
    pub lower: Lower,
    pub lo: String,
    pub upper: Option<String>,
}

impl Range {
    pub(crate) fn new(range: &KeyRange, after: Option<&str>) -> Range {
        let (lower, lo) = match range.lower_bound(after) {
            Bound::Included(k) => (Lower::Included, k.to_owned()),
            Bound::Excluded(k) => (Lower::Excluded, k.to_owned()),
            Bound::Unbounded => (Lower::None, String::new()),
        };
        Range {
            lower,
            lo,
            upper: range.end.clone(),
        }
    }

    /// Named parameters for [`Sql::ranged`], plus `extra`.
    // `&String` coerces to `&dyn ToSql`; `&str` (unsized `str`) cannot.
    #[allow(clippy::ptr_arg)]
    pub(crate) fn params<'a>(
        &'a self,
        ns: &'a String,
        extra: &[(&'a str, &'a dyn rusqlite::ToSql)],
    ) -> Vec<(&'a str, &'a dyn rusqlite::ToSql)> {
        let mut p: Vec<(&str, &dyn rusqlite::ToSql)> = Vec::with_capacity(3 + extra.len());
        p.push((":ns", ns));
        if self.lower != Lower::None {
            p.push((":lo", &self.lo));
        }
        if let Some(hi) = &self.upper {
            p.push((":hi", hi));
        }
        p.extend_from_slice(extra);
        p
    }
}

pub(crate) fn ms(t: Timestamp) -> i64 {
    t.as_millis()
}

/// The values of a record's columns, owned, in [`COLUMNS`] order after
/// namespace and key.
pub(crate) struct RowValues {
    pub namespace: String,
    pub key: String,
    pub value: Vec<u8>,
    pub value_type: String,
    pub version: i64,
    pub checksum: i64,
    pub size: i64,
    pub content_type: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub accessed_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub metadata: String,
}

impl RowValues {
    pub(crate) fn of(record: &Record) -> Result<RowValues> {
        let m = &record.meta;
        Ok(RowValues {
            namespace: record.namespace.clone(),
            key: record.key.clone(),
            value: record.value.clone(),
            value_type: m.value_type.name().into_owned(),
            version: i64::try_from(m.version)
                .map_err(|_| Error::codec("version does not fit a SQLite integer"))?,
            checksum: i64::from(m.checksum),
            size: i64::try_from(m.size).unwrap_or(i64::MAX),
            content_type: m.content_type.clone(),
            created_at: ms(m.created_at),
            updated_at: ms(m.updated_at),
            accessed_at: m.accessed_at.map(ms),
            expires_at: m.expires_at.map(ms),
            metadata: serde_json::to_string(&record.user).map_err(Error::codec)?,
        })
    }

    /// `?1..?13`.
    pub(crate) fn params(&self) -> [&dyn rusqlite::ToSql; 13] {
        [
            &self.namespace,
            &self.key,
            &self.value,
            &self.value_type,
            &self.version,
            &self.checksum,
            &self.size,
            &self.content_type,
            &self.created_at,
            &self.updated_at,
            &self.accessed_at,
            &self.expires_at,
            &self.metadata,
        ]
    }
}

/// A record from a row whose columns start at `first` in [`COLUMNS`] order.
pub(crate) fn record_from_row(
    namespace: &str,
    key: String,
    row: &Row<'_>,
    first: usize,
) -> Result<Record> {
    let corrupt = |what: &str| Error::Corruption {
        location: format!("sqlite {namespace}/{key}"),
        reason: what.to_owned(),
    };
    let get_i64 = |i: usize| -> Result<i64> { row.get::<_, i64>(first + i).map_err(sql_err) };
    let opt_i64 =
        |i: usize| -> Result<Option<i64>> { row.get::<_, Option<i64>>(first + i).map_err(sql_err) };
    let value: Vec<u8> = row.get(first).map_err(sql_err)?;
    let value_type: String = row.get(first + 1).map_err(sql_err)?;
    let value_type: ValueType = value_type
        .parse()
        .map_err(|_| corrupt("unknown value_type"))?;
    let metadata: String = row.get(first + 10).map_err(sql_err)?;
    let user: UserMetadata =
        serde_json::from_str(&metadata).map_err(|_| corrupt("metadata is not a JSON object"))?;
    let ts = Timestamp::from_millis;
    let meta = SystemMetadata {
        version: u64::try_from(get_i64(2)?).map_err(|_| corrupt("negative version"))?,
        checksum: u32::try_from(get_i64(3)?).map_err(|_| corrupt("checksum out of range"))?,
        size: u64::try_from(get_i64(4)?).unwrap_or(0),
        content_type: row.get(first + 5).map_err(sql_err)?,
        created_at: ts(get_i64(6)?),
        updated_at: ts(get_i64(7)?),
        accessed_at: opt_i64(8)?.map(ts),
        expires_at: opt_i64(9)?.map(ts),
        value_type,
    };
    Ok(Record {
        namespace: namespace.to_owned(),
        key,
        value,
        meta,
        user,
    })
}
