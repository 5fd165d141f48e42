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

use std::borrow::Cow;
use std::ops::Bound;
use std::sync::Arc;

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
    // SQLite resolves table names without regard to ASCII case (the only
    // letters a name may have), so `KV_STORE` is the table `kv_store`: its
    // row is looked up the same way, and the highest version any spelling
    // recorded counts.
    let existing: Option<i64> = tx
        .query_row(
            "SELECT max(version) FROM kv_schema WHERE tbl = ?1 COLLATE NOCASE",
            [table],
            |r| r.get(0),
        )
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

/// Shapes of a key range as SQL: the kind of lower bound × whether there
/// is an upper bound. Ranged statements differ only by shape, so each
/// table keeps one text per shape.
const SHAPES: usize = 6;

/// What [`Sql::scan`] selects.
fn scan_what() -> String {
    format!("SELECT key, {COLUMNS}")
}
/// What [`Sql::scan_keys`] selects.
const SCAN_KEYS_WHAT: &str = "SELECT key, expires_at, version";
/// The page size the store walks ranges with: the scan texts for it are
/// built once.
const PAGE: usize = kv_core::ops::SCAN_PAGE;

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
    /// Ranged statements by [`Range::shape`]: built here once rather than
    /// formatted on every call (scans of a few keys are cheap enough that
    /// formatting showed in profiles).
    scan_page: [String; SHAPES],
    scan_keys_page: [String; SHAPES],
    count: [String; SHAPES],
    delete_range: [String; SHAPES],
}

impl Sql {
    pub(crate) fn new(t: &str) -> Sql {
        let insert = format!(
            r#"INSERT INTO "{t}" (namespace, key, {COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"#
        );
        let by_shape = |what: &str, tail: &str| -> [String; SHAPES] {
            std::array::from_fn(|shape| ranged(t, what, Shape::from_index(shape), tail))
        };
        // The limit is written into the text, not bound: a bound LIMIT
        // makes SQLite re-prepare the statement on every run once the
        // statement cache has cleared its bindings.
        let page_tail = format!("ORDER BY key LIMIT {PAGE}");
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
            scan_page: by_shape(&scan_what(), &page_tail),
            scan_keys_page: by_shape(SCAN_KEYS_WHAT, &page_tail),
            count: by_shape(
                "SELECT count(*)",
                "AND (expires_at IS NULL OR expires_at > :now)",
            ),
            delete_range: by_shape("DELETE", "RETURNING expires_at"),
        }
    }

    /// Whole rows of `range` in key order, `key` then [`COLUMNS`]: at
    /// most `limit` when it is over the store's page size, else at most a
    /// page. The caller stops reading after `limit` rows: SQLite produces
    /// rows as they are stepped, so the larger `LIMIT` costs nothing, and
    /// every limit the store asks for (a scan's first pages are smaller)
    /// runs one prepared statement instead of a text formatted per call.
    pub(crate) fn scan(&self, range: &Range<'_>, limit: usize) -> Cow<'_, str> {
        self.paged(&self.scan_page, &scan_what, range, limit)
    }

    /// Keys of `range` in key order, with `expires_at` and `version`; at
    /// most a page or `limit` as for [`scan`](Sql::scan), and the caller
    /// stops after `limit`.
    pub(crate) fn scan_keys(&self, range: &Range<'_>, limit: usize) -> Cow<'_, str> {
        self.paged(
            &self.scan_keys_page,
            &|| SCAN_KEYS_WHAT.to_owned(),
            range,
            limit,
        )
    }

    /// The live rows of `range` (`:now` bound).
    pub(crate) fn count(&self, range: &Range<'_>) -> &str {
        &self.count[range.shape().index()]
    }

    /// Deletes `range`, returning each row's `expires_at`.
    pub(crate) fn delete_range(&self, range: &Range<'_>) -> &str {
        &self.delete_range[range.shape().index()]
    }

    fn paged<'s>(
        &'s self,
        built: &'s [String; SHAPES],
        what: &dyn Fn() -> String,
        range: &Range<'_>,
        limit: usize,
    ) -> Cow<'s, str> {
        if limit <= PAGE {
            Cow::Borrowed(&built[range.shape().index()])
        } else {
            Cow::Owned(ranged(
                &self.table,
                &what(),
                range.shape(),
                &format!(
                    "ORDER BY key LIMIT {}",
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ),
            ))
        }
    }
}

/// `<what> FROM t WHERE namespace = :ns <range> <tail>`: composed from
/// fixed fragments (and integers) only.
fn ranged(table: &str, what: &str, shape: Shape, tail: &str) -> String {
    let mut sql = format!(r#"{what} FROM "{table}" WHERE namespace = :ns"#);
    match shape.lower {
        Lower::None => {}
        Lower::Included => sql.push_str(" AND key >= :lo"),
        Lower::Excluded => sql.push_str(" AND key > :lo"),
    }
    if shape.upper {
        sql.push_str(" AND key < :hi");
    }
    sql.push(' ');
    sql.push_str(tail);
    sql
}

/// The kind of lower bound of a [`Range`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lower {
    None,
    Included,
    Excluded,
}

/// Which bounds a range has (not their values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    lower: Lower,
    upper: bool,
}

impl Shape {
    fn index(self) -> usize {
        let lower = match self.lower {
            Lower::None => 0,
            Lower::Included => 1,
            Lower::Excluded => 2,
        };
        lower * 2 + usize::from(self.upper)
    }

    fn from_index(i: usize) -> Shape {
        let lower = match i / 2 {
            0 => Lower::None,
            1 => Lower::Included,
            _ => Lower::Excluded,
        };
        Shape {
            lower,
            upper: i % 2 == 1,
        }
    }
}

/// A key range with its bounds as parameters, borrowed from a
/// [`KeyRange`] and a cursor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Range<'a> {
    pub lower: Lower,
    pub lo: &'a str,
    pub upper: Option<&'a str>,
}

impl<'a> Range<'a> {
    pub(crate) fn new(range: &'a KeyRange, after: Option<&'a str>) -> Range<'a> {
        let (lower, lo) = match range.lower_bound(after) {
            Bound::Included(k) => (Lower::Included, k),
            Bound::Excluded(k) => (Lower::Excluded, k),
            Bound::Unbounded => (Lower::None, ""),
        };
        Range {
            lower,
            lo,
            upper: range.end.as_deref(),
        }
    }

    fn shape(&self) -> Shape {
        Shape {
            lower: self.lower,
            upper: self.upper.is_some(),
        }
    }

    /// Named parameters for the ranged statements, plus `extra`.
    pub(crate) fn params<'p>(
        &'p self,
        ns: &'p &'p str,
        extra: &[(&'p str, &'p dyn rusqlite::ToSql)],
    ) -> Vec<(&'p str, &'p dyn rusqlite::ToSql)> {
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

/// User metadata as stored: a JSON object (`{}` when empty, the usual
/// case, without running the serializer).
pub(crate) fn metadata_json(user: &UserMetadata) -> Result<Cow<'static, str>> {
    if user.is_empty() {
        return Ok(Cow::Borrowed("{}"));
    }
    serde_json::to_string(user)
        .map(Cow::Owned)
        .map_err(Error::codec)
}

/// Runs `stmt` with a record's columns bound as `?1..?13` (namespace, key,
/// then [`COLUMNS`]) and `extra` after them; returns the rows changed. The
/// record's fields are bound in place, not copied.
pub(crate) fn execute_record(
    stmt: &mut rusqlite::CachedStatement<'_>,
    record: &Record,
    extra: Option<&dyn rusqlite::ToSql>,
) -> Result<usize> {
    let m = &record.meta;
    let version = i64::try_from(m.version)
        .map_err(|_| Error::codec("version does not fit a SQLite integer"))?;
    let checksum = i64::from(m.checksum);
    let size = i64::try_from(m.size).unwrap_or(i64::MAX);
    let value_type = m.value_type.name();
    let created_at = ms(m.created_at);
    let updated_at = ms(m.updated_at);
    let accessed_at = m.accessed_at.map(ms);
    let expires_at = m.expires_at.map(ms);
    let metadata = metadata_json(&record.user)?;
    let columns: [&dyn rusqlite::ToSql; 13] = [
        &record.namespace,
        &record.key,
        &record.value,
        &value_type,
        &version,
        &checksum,
        &size,
        &m.content_type,
        &created_at,
        &updated_at,
        &accessed_at,
        &expires_at,
        &metadata,
    ];
    match extra {
        None => stmt.execute(&columns[..]),
        Some(x) => {
            let mut all: [&dyn rusqlite::ToSql; 14] = [x; 14];
            all[..13].copy_from_slice(&columns);
            stmt.execute(&all[..])
        }
    }
    .map_err(sql_err)
}

/// A record from a row whose columns start at `first` in [`COLUMNS`] order.
pub(crate) fn record_from_row(
    namespace: &Arc<str>,
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
    // Text columns are read in place (no String for them) where the record
    // does not keep the text.
    let text = |i: usize| -> Result<&str> {
        row.get_ref(first + i)
            .and_then(|v| v.as_str().map_err(rusqlite::Error::from))
            .map_err(sql_err)
    };
    let value: Vec<u8> = row.get(first).map_err(sql_err)?;
    let value_type: ValueType = text(1)?
        .parse()
        .map_err(|_| corrupt("unknown value_type"))?;
    let user: UserMetadata = match text(10)? {
        "{}" => UserMetadata::new(),
        json => serde_json::from_str(json).map_err(|_| corrupt("metadata is not a JSON object"))?,
    };
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
        namespace: Arc::clone(namespace),
        key,
        value,
        meta,
        user,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_table_is_refused_under_any_spelling_of_its_name() {
        let mut conn = Connection::open_in_memory().unwrap();
        create(&mut conn, "kv_store").unwrap();
        conn.execute(
            "UPDATE kv_schema SET version = ?1 WHERE tbl = 'kv_store'",
            [SCHEMA_VERSION + 1],
        )
        .unwrap();
        for spelling in ["kv_store", "KV_STORE", "Kv_Store"] {
            let err = create(&mut conn, spelling).unwrap_err().to_string();
            assert!(err.contains("newer version"), "{spelling}: {err}");
        }
        // Another table is not affected, and gets its own row.
        create(&mut conn, "other").unwrap();
        create(&mut conn, "OTHER").unwrap();
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM kv_schema", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 2);
    }

    #[test]
    fn shapes_round_trip_through_their_index() {
        for i in 0..SHAPES {
            assert_eq!(Shape::from_index(i).index(), i);
        }
    }

    #[test]
    fn built_range_statements_bind_what_the_range_has() {
        let sql = Sql::new("kv_store");
        let prefix = KeyRange::prefix("a.");
        let from = KeyRange {
            start: Some("a.".into()),
            end: None,
        };
        let cases = [
            (KeyRange::all(), None, "namespace = :ns ORDER BY"),
            (
                KeyRange::all(),
                Some("x"),
                "namespace = :ns AND key > :lo ORDER BY",
            ),
            (
                prefix.clone(),
                None,
                "AND key >= :lo AND key < :hi ORDER BY",
            ),
            (prefix, Some("a.b"), "AND key > :lo AND key < :hi ORDER BY"),
            (from, None, "namespace = :ns AND key >= :lo ORDER BY"),
        ];
        for (range, after, expect) in cases {
            let r = Range::new(&range, after);
            let built = sql.scan(&r, PAGE);
            assert!(matches!(built, Cow::Borrowed(_)));
            assert!(built.contains(expect), "{built}");
            assert!(built.ends_with(&format!("LIMIT {PAGE}")), "{built}");
            // A smaller limit runs the page's statement; a larger one is
            // formatted, with the same shape.
            assert!(matches!(sql.scan(&r, 7), Cow::Borrowed(t) if t == built));
            let more = PAGE + 1;
            let other = sql.scan(&r, more);
            assert_eq!(
                other.replace(&format!("LIMIT {more}"), &format!("LIMIT {PAGE}")),
                built
            );
            assert!(sql.scan_keys(&r, PAGE).contains(expect));
            assert!(sql.count(&r).contains(&expect.replace(" ORDER BY", "")));
            assert!(sql
                .delete_range(&r)
                .contains(&expect.replace(" ORDER BY", "")));
        }
    }
}
