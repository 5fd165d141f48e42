//! The table, its versioned schema (created under an advisory lock), the
//! SQL the backend runs, and rows ↔ records.
//!
//! ```sql
//! CREATE TABLE kv_store (
//!   namespace    TEXT COLLATE "C" NOT NULL,
//!   key          TEXT COLLATE "C" NOT NULL,  -- byte order: prefix ranges use the key index
//!   value        BYTEA   NOT NULL,           -- kv_core::Value::encode
//!   value_type   TEXT    NOT NULL,
//!   version      BIGINT  NOT NULL,
//!   checksum     BIGINT  NOT NULL,           -- CRC32 of value
//!   size         BIGINT  NOT NULL,
//!   content_type TEXT,
//!   created_at   BIGINT  NOT NULL,           -- ms since the epoch
//!   updated_at   BIGINT  NOT NULL,
//!   accessed_at  BIGINT,
//!   expires_at   BIGINT,                     -- NULL = never
//!   metadata     JSONB   NOT NULL,           -- user metadata
//!   PRIMARY KEY (namespace, key)
//! );
//! CREATE INDEX kv_store_expires_at ON kv_store (expires_at) WHERE expires_at IS NOT NULL;
//! CREATE INDEX kv_store_metadata ON kv_store USING GIN (metadata);
//! CREATE TABLE kv_schema (tbl TEXT PRIMARY KEY, version INTEGER NOT NULL);
//! ```

use std::ops::Bound;
use std::sync::Arc;

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Postgres, Row};

use kv_core::backend::KeyRange;
use kv_core::{Error, Record, Result, SystemMetadata, Timestamp, UserMetadata, Value, ValueType};

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i32 = 1;

/// Columns of a record, in the order the statements use.
pub(crate) const COLUMNS: &str = "value, value_type, version, checksum, size, content_type, created_at, updated_at, accessed_at, expires_at, metadata";

/// A statement text built from fixed fragments and a checked table name.
pub(crate) type Text = Arc<str>;

/// A query over a statement text.
pub(crate) fn q(text: &Text) -> Query<'static, Postgres, PgArguments> {
    sqlx::query(AssertSqlSafe(Arc::clone(text)))
}

/// DDL of a table, run once in a transaction under an advisory lock.
pub(crate) fn ddl(t: &str) -> Vec<String> {
    vec![
        "CREATE TABLE IF NOT EXISTS kv_schema (tbl TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            .into(),
        format!(
            r#"CREATE TABLE IF NOT EXISTS "{t}" (
                namespace    TEXT COLLATE "C" NOT NULL,
                key          TEXT COLLATE "C" NOT NULL,
                value        BYTEA   NOT NULL,
                value_type   TEXT    NOT NULL,
                version      BIGINT  NOT NULL,
                checksum     BIGINT  NOT NULL,
                size         BIGINT  NOT NULL,
                content_type TEXT,
                created_at   BIGINT  NOT NULL,
                updated_at   BIGINT  NOT NULL,
                accessed_at  BIGINT,
                expires_at   BIGINT,
                metadata     JSONB   NOT NULL,
                PRIMARY KEY (namespace, key)
            )"#
        ),
        format!(
            r#"CREATE INDEX IF NOT EXISTS "{t}_expires_at" ON "{t}" (expires_at) WHERE expires_at IS NOT NULL"#
        ),
        format!(r#"CREATE INDEX IF NOT EXISTS "{t}_metadata" ON "{t}" USING GIN (metadata)"#),
    ]
}

/// The statements of one table.
#[derive(Debug, Clone)]
pub(crate) struct Sql {
    pub table: String,
    pub read: Text,
    pub read_value: Text,
    pub read_many: Text,
    pub upsert: Text,
    pub insert_absent: Text,
    pub update_version: Text,
    pub delete: Text,
    pub delete_version: Text,
    pub exists: Text,
    pub version_for_update: Text,
    pub remove_expired: Text,
    pub remove_expired_ns: Text,
    pub namespaces: Text,
    /// `Backend::increment` of a live integer, in one statement
    /// ([`IntInPlace`]).
    pub increment_in_place: Text,
    /// `Backend::append_in_place` ([`AppendInPlace`]).
    pub append_in_place: Text,
    /// `Backend::scan`'s page: `SELECT key, <COLUMNS> … ORDER BY key LIMIT`.
    pub scan: Paged,
    /// `Backend::scan_keys`'s page: `SELECT key, expires_at, version …`.
    pub scan_keys: Paged,
}

/// A paged ranged `SELECT` (`… ORDER BY key LIMIT $n`) built once for each
/// shape of [`Range`] (three kinds of lower bound, with or without an upper
/// one), so a scan neither formats its statement nor hashes a fresh string
/// into sqlx's statement cache.
#[derive(Debug, Clone)]
pub(crate) struct Paged([Text; 6]);

impl Paged {
    fn new(table: &str, what: &str) -> Paged {
        let text = |shape: usize| -> Text {
            let (lower, upper) = Range::of_shape(shape);
            let (text, n) = ranged(table, what, lower, upper, "", "");
            format!("{text}ORDER BY key LIMIT ${n}").into()
        };
        Paged(std::array::from_fn(text))
    }

    /// The statement for `range`: binds `ns`, the range's bounds
    /// ([`Range::bind`]), then the limit.
    pub(crate) fn text(&self, range: &Range) -> &Text {
        &self.0[range.shape()]
    }
}

impl Sql {
    pub(crate) fn new(t: &str) -> Sql {
        let insert = format!(
            r#"INSERT INTO "{t}" (namespace, key, {COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"#
        );
        let text = |s: String| -> Text { s.into() };
        Sql {
            table: t.to_owned(),
            read: text(format!(
                r#"SELECT {COLUMNS} FROM "{t}" WHERE namespace = $1 AND key = $2"#
            )),
            read_value: text(format!(
                r#"SELECT value, checksum, expires_at FROM "{t}" WHERE namespace = $1 AND key = $2"#
            )),
            read_many: text(format!(
                r#"SELECT key, {COLUMNS} FROM "{t}" WHERE namespace = $1 AND key = ANY($2)"#
            )),
            upsert: text(format!(
                "{insert} ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value, \
                 value_type = EXCLUDED.value_type, version = EXCLUDED.version, \
                 checksum = EXCLUDED.checksum, size = EXCLUDED.size, \
                 content_type = EXCLUDED.content_type, created_at = EXCLUDED.created_at, \
                 updated_at = EXCLUDED.updated_at, accessed_at = EXCLUDED.accessed_at, \
                 expires_at = EXCLUDED.expires_at, metadata = EXCLUDED.metadata"
            )),
            insert_absent: text(format!("{insert} ON CONFLICT (namespace, key) DO NOTHING")),
            update_version: text(format!(
                r#"UPDATE "{t}" SET value = $3, value_type = $4, version = $5, checksum = $6, size = $7, content_type = $8, created_at = $9, updated_at = $10, accessed_at = $11, expires_at = $12, metadata = $13 WHERE namespace = $1 AND key = $2 AND version = $14"#
            )),
            delete: text(format!(
                r#"DELETE FROM "{t}" WHERE namespace = $1 AND key = $2 RETURNING expires_at"#
            )),
            delete_version: text(format!(
                r#"DELETE FROM "{t}" WHERE namespace = $1 AND key = $2 AND version = $3 RETURNING expires_at"#
            )),
            exists: text(format!(
                r#"SELECT 1 FROM "{t}" WHERE namespace = $1 AND key = $2"#
            )),
            version_for_update: text(format!(
                r#"SELECT {COLUMNS} FROM "{t}" WHERE namespace = $1 AND key = $2 FOR UPDATE"#
            )),
            remove_expired: text(format!(r#"DELETE FROM "{t}" WHERE expires_at <= $1"#)),
            remove_expired_ns: text(format!(
                r#"DELETE FROM "{t}" WHERE expires_at <= $1 AND namespace = $2"#
            )),
            namespaces: text(format!(
                r#"SELECT DISTINCT namespace FROM "{t}" ORDER BY namespace"#
            )),
            increment_in_place: text(IntInPlace::new().statement(t)),
            append_in_place: text(AppendInPlace::statement(t)),
            scan: Paged::new(t, &format!("SELECT key, {COLUMNS}")),
            scan_keys: Paged::new(t, "SELECT key, expires_at, version"),
        }
    }

    /// `<what> FROM t WHERE namespace = $1 <range> <middle> <tail>`, from
    /// fixed fragments; returns the text and the number of the next
    /// parameter. The caller binds `ns`, then the range's bounds
    /// ([`Range::bind`]), then its own parameters from that number on.
    pub(crate) fn ranged(
        &self,
        what: &str,
        range: &Range,
        middle: &str,
        tail: &str,
    ) -> (String, usize) {
        ranged(
            &self.table,
            what,
            range.lower,
            range.upper.is_some(),
            middle,
            tail,
        )
    }
}

/// [`Sql::ranged`] for a range's shape.
fn ranged(
    table: &str,
    what: &str,
    lower: Lower,
    upper: bool,
    middle: &str,
    tail: &str,
) -> (String, usize) {
    let mut sql = format!(r#"{what} FROM "{table}" WHERE namespace = $1"#);
    let mut n = 2;
    match lower {
        Lower::None => {}
        Lower::Included => {
            sql.push_str(&format!(" AND key >= ${n}"));
            n += 1;
        }
        Lower::Excluded => {
            sql.push_str(&format!(" AND key > ${n}"));
            n += 1;
        }
    }
    if upper {
        sql.push_str(&format!(" AND key < ${n}"));
        n += 1;
    }
    if !middle.is_empty() {
        sql.push(' ');
        sql.push_str(
            &middle
                .replace("$N", &format!("${n}"))
                .replace("$M", &format!("${}", n + 1)),
        );
    }
    sql.push(' ');
    sql.push_str(tail);
    (sql, n)
}

/// What the one-statement increment needs to rewrite an integer's encoding
/// and CRC32 on the server, derived from kv-core's own encoder (a unit test
/// pins them to `Value::encode` and `crc32fast`).
///
/// An integer is encoded as one tag byte and 8 little-endian bytes, so its
/// encoding has a fixed length, and CRC32 is affine over GF(2) for a fixed
/// length: the CRC of the encoding of `n` is the CRC of the encoding of 0
/// XOR, for each bit `j` set in `n`, the change that flipping bit `j` of
/// the payload makes to it. The statement XORs those 64 constants, so no
/// CRC function is needed in PostgreSQL.
#[derive(Debug, Clone)]
pub(crate) struct IntInPlace {
    /// The tag byte of `Value::Int`.
    tag: u8,
    /// CRC32 of the encoding of 0.
    zero_crc: i64,
    /// For bit `j` of the integer, what flipping it XORs into the CRC.
    bit_crcs: Vec<i64>,
    /// Value types that do not accept an integer: a record of one of them
    /// changes its type on increment, which the statement leaves to the
    /// general path.
    rejecting: Vec<String>,
}

impl IntInPlace {
    pub(crate) fn new() -> IntInPlace {
        let zero = Value::Int(0).encode();
        let zero_crc = crc32fast::hash(&zero);
        let bit_crcs = (0..64)
            .map(|j| {
                let mut flipped = zero.clone();
                flipped[1 + j / 8] ^= 1 << (j % 8);
                i64::from(crc32fast::hash(&flipped) ^ zero_crc)
            })
            .collect();
        IntInPlace {
            tag: zero[0],
            zero_crc: i64::from(zero_crc),
            bit_crcs,
            rejecting: ValueType::BUILT_IN
                .iter()
                .filter(|t| !t.accepts(&Value::Int(0)))
                .map(|t| t.name().into_owned())
                .collect(),
        }
    }

    /// `UPDATE … RETURNING` the new integer: adds `$3` to the record under
    /// (`$1`, `$2`) if it is live at `$4` (ms), holds an integer and has a
    /// type that accepts one; bumps the version, sets `updated_at` to `$4`,
    /// and keeps everything else, as `kv_core::ops::incremented` does. No
    /// row means the general path decides (missing, expired, not an
    /// integer, a type that changes); an overflow fails with SQLSTATE
    /// 22003.
    ///
    /// One `UPDATE` reads and writes the row under its row lock, and
    /// re-reads it if a concurrent update committed first, so concurrent
    /// increments never lose one. The text holds only fixed fragments,
    /// the checked table name, and integers and type names from kv-core.
    fn statement(&self, t: &str) -> String {
        let tag = self.tag;
        // Operators like | << & # share one precedence in PostgreSQL (and
        // * binds tighter): every term is parenthesised.
        let decode = |v: &str| {
            let bytes: Vec<String> = (0..8)
                .map(|i| format!("(get_byte({v}, {}) :: bigint << {})", i + 1, 8 * i))
                .collect();
            format!("({})", bytes.join(" | "))
        };
        // `decode(…, 'hex')`, not a `'\x…'` literal, whose meaning depends
        // on `standard_conforming_strings`.
        let mut encode = format!("decode('{tag:02x}0000000000000000', 'hex')");
        for i in 0..8 {
            encode = format!(
                "set_byte({encode}, {}, ((s.n >> {}) & 255) :: int)",
                i + 1,
                8 * i
            );
        }
        // The CRC of an integer column `v`.
        let crc = |v: &str| {
            let mut crc = format!("({} :: bigint", self.zero_crc);
            for (j, k) in self.bit_crcs.iter().enumerate() {
                crc.push_str(&format!(" # ((({v} >> {j}) & 1) * {k})"));
            }
            crc.push(')');
            crc
        };
        // The stored integer's CRC, from the integer decoded once (the
        // subquery is fenced with OFFSET 0 so its column is not inlined
        // into each of the 64 terms).
        let stored_crc = format!(
            "(SELECT {} FROM (SELECT {} AS o OFFSET 0) AS q)",
            crc("q.o"),
            decode("r.value")
        );
        let crc = crc("s.n");
        let rejecting: Vec<String> = self.rejecting.iter().map(|n| format!("'{n}'")).collect();
        // A CASE, because PostgreSQL may evaluate the terms of an AND in
        // any order and `get_byte` fails past the end: only a 9-byte value
        // with the integer tag is decoded, and only one whose checksum
        // holds (a damaged one is left to the general path, which reports
        // it).
        format!(
            r#"UPDATE "{t}" AS r SET (value, checksum, version, updated_at) = (SELECT {encode}, {crc}, r.version + 1, $4 FROM (SELECT {old} + $3 AS n OFFSET 0) AS s) WHERE r.namespace = $1 AND r.key = $2 AND (r.expires_at IS NULL OR r.expires_at > $4) AND r.value_type NOT IN ({rejecting}) AND CASE WHEN length(r.value) <> 9 THEN false WHEN get_byte(r.value, 0) <> {tag} THEN false ELSE r.checksum = {stored_crc} END RETURNING {new}"#,
            old = decode("r.value"),
            new = decode("r.value"),
            rejecting = rejecting.join(", "),
        )
    }
}

/// The one-statement `append`: the joined value's CRC32 from the stored
/// one, without reading the value.
///
/// For CRC-32, `crc(a ‖ b) = shift(crc(a), len(b)) ^ crc(b)`, where
/// `shift(·, n)` (zlib's `crc32_combine`) is linear over GF(2): the
/// statement takes the 32 images of the single bits under `shift(·, n)`
/// for the piece's length `n` ([`shift_columns`](AppendInPlace::shift_columns)),
/// XORs those of the bits set in the stored checksum, and XORs in the
/// piece's own CRC.
///
/// It cannot verify the stored value first (PostgreSQL before 18 has no
/// CRC32 function and the value's length varies), so unlike the general
/// path it appends to a damaged value instead of failing. The damage stays
/// visible: the new checksum is derived from the stored one, so it still
/// disagrees with the value and every later read reports `Corruption`
/// (the conformance suite checks this).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AppendInPlace;

impl AppendInPlace {
    /// `shift(1 << i, len)` for each bit `i`, as `BIGINT`s.
    pub(crate) fn shift_columns(len: usize) -> Vec<i64> {
        gf2_power(len as u64)
            .iter()
            .map(|&c| i64::from(c))
            .collect()
    }

    /// `UPDATE … RETURNING` the new payload length: appends `$3` (bytea)
    /// to the value under (`$1`, `$2`) if the record is live at `$6` (ms),
    /// its encoding starts with one of the tags `$7` (the piece's
    /// `Value::append_target_tags`, kv-core's rule) and the joined encoding
    /// is at most `$8` bytes; new checksum from `$4`
    /// ([`shift_columns`](Self::shift_columns) of the piece's length) and
    /// `$5` (the piece's CRC32); bumps the version, sets `updated_at` to
    /// `$6`, keeps everything else, as the store's append does. No row
    /// means the store's general path decides.
    fn statement(t: &str) -> String {
        // 32 terms, parenthesised (operator precedence as in `IntInPlace`).
        let shifted: Vec<String> = (0..32)
            .map(|i| format!("(((r.checksum >> {i}) & 1) * ($4 :: bigint[])[{}])", i + 1))
            .collect();
        // A CASE guards `get_byte` (terms of an AND run in any order).
        format!(
            r#"UPDATE "{t}" AS r SET (value, checksum, size, version, updated_at) = (SELECT r.value || $3, ({shifted} # $5), length(r.value) + length($3) - 1, r.version + 1, $6) WHERE r.namespace = $1 AND r.key = $2 AND (r.expires_at IS NULL OR r.expires_at > $6) AND length(r.value) + length($3) <= $8 AND CASE WHEN length(r.value) = 0 THEN false ELSE get_byte(r.value, 0) = ANY($7 :: int[]) END RETURNING (length(r.value) - 1) :: bigint"#,
            shifted = shifted.join(" # "),
        )
    }
}

/// The operator `shift(·, len)` of [`AppendInPlace`] as its 32 columns:
/// appending `len` zero bytes to the message, in CRC-32's reflected form
/// (zlib's `crc32_combine`, by repeated squaring).
fn gf2_power(len: u64) -> [u32; 32] {
    fn times(m: &[u32; 32], mut v: u32) -> u32 {
        let mut out = 0;
        let mut i = 0;
        while v != 0 {
            if v & 1 == 1 {
                out ^= m[i];
            }
            v >>= 1;
            i += 1;
        }
        out
    }
    fn product(a: &[u32; 32], b: &[u32; 32]) -> [u32; 32] {
        std::array::from_fn(|i| times(a, b[i]))
    }
    // One zero bit: shift right, XOR the polynomial when a 1 falls out.
    let mut bit: [u32; 32] =
        std::array::from_fn(|i| if i == 0 { 0xEDB8_8320 } else { 1 << (i - 1) });
    let mut result: [u32; 32] = std::array::from_fn(|i| 1 << i);
    // `bit` to the power 8 × len, by squaring.
    let mut n = len.saturating_mul(8);
    while n != 0 {
        if n & 1 == 1 {
            result = product(&bit, &result);
        }
        bit = product(&bit, &bit);
        n >>= 1;
    }
    result
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

    /// Which of the six statement shapes this range needs ([`Paged`]).
    fn shape(&self) -> usize {
        Range::shape_of(self.lower, self.upper.is_some())
    }

    fn shape_of(lower: Lower, upper: bool) -> usize {
        let lower = match lower {
            Lower::None => 0,
            Lower::Included => 1,
            Lower::Excluded => 2,
        };
        lower * 2 + usize::from(upper)
    }

    /// The inverse of [`shape_of`](Range::shape_of).
    fn of_shape(shape: usize) -> (Lower, bool) {
        let lower = match shape / 2 {
            0 => Lower::None,
            1 => Lower::Included,
            _ => Lower::Excluded,
        };
        (lower, shape % 2 == 1)
    }

    /// Binds the bounds, in the order [`Sql::ranged`] numbered them.
    pub(crate) fn bind<'q>(
        &'q self,
        mut query: Query<'q, Postgres, PgArguments>,
    ) -> Query<'q, Postgres, PgArguments> {
        if self.lower != Lower::None {
            query = query.bind(self.lo.as_str());
        }
        if let Some(hi) = &self.upper {
            query = query.bind(hi.as_str());
        }
        query
    }
}

/// A record's column values, owned, in statement order after namespace and
/// key.
#[derive(Debug, Clone)]
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
    pub metadata: serde_json::Value,
}

impl RowValues {
    pub(crate) fn of(record: &Record) -> Result<RowValues> {
        let m = &record.meta;
        Ok(RowValues {
            namespace: record.namespace.to_string(),
            key: record.key.clone(),
            value: record.value.clone(),
            value_type: m.value_type.name().into_owned(),
            version: i64::try_from(m.version)
                .map_err(|_| Error::codec("version does not fit a BIGINT"))?,
            checksum: i64::from(m.checksum),
            size: i64::try_from(m.size).unwrap_or(i64::MAX),
            content_type: m.content_type.clone(),
            created_at: m.created_at.as_millis(),
            updated_at: m.updated_at.as_millis(),
            accessed_at: m.accessed_at.map(Timestamp::as_millis),
            expires_at: m.expires_at.map(Timestamp::as_millis),
            metadata: serde_json::Value::Object(record.user.clone()),
        })
    }

    /// Binds `$1..$13`.
    pub(crate) fn bind<'q>(
        &'q self,
        query: Query<'q, Postgres, PgArguments>,
    ) -> Query<'q, Postgres, PgArguments> {
        query
            .bind(self.namespace.as_str())
            .bind(self.key.as_str())
            .bind(self.value.as_slice())
            .bind(self.value_type.as_str())
            .bind(self.version)
            .bind(self.checksum)
            .bind(self.size)
            .bind(self.content_type.as_deref())
            .bind(self.created_at)
            .bind(self.updated_at)
            .bind(self.accessed_at)
            .bind(self.expires_at)
            .bind(&self.metadata)
    }
}

/// A record from a row whose columns start at `first` in [`COLUMNS`] order.
pub(crate) fn record_from_row(
    namespace: &Arc<str>,
    key: String,
    row: &PgRow,
    first: usize,
) -> Result<Record> {
    let corrupt = |what: &str| Error::Corruption {
        location: format!("postgres {namespace}/{key}"),
        reason: what.to_owned(),
    };
    let get =
        |i: usize| -> Result<i64> { row.try_get::<i64, _>(first + i).map_err(crate::error::map) };
    let opt = |i: usize| -> Result<Option<i64>> {
        row.try_get::<Option<i64>, _>(first + i)
            .map_err(crate::error::map)
    };
    let value: Vec<u8> = row.try_get(first).map_err(crate::error::map)?;
    let value_type: String = row.try_get(first + 1).map_err(crate::error::map)?;
    let value_type: ValueType = value_type
        .parse()
        .map_err(|_| corrupt("unknown value_type"))?;
    let metadata: serde_json::Value = row.try_get(first + 10).map_err(crate::error::map)?;
    let serde_json::Value::Object(user) = metadata else {
        return Err(corrupt("metadata is not a JSON object"));
    };
    let user: UserMetadata = user;
    let ts = Timestamp::from_millis;
    let meta = SystemMetadata {
        version: u64::try_from(get(2)?).map_err(|_| corrupt("negative version"))?,
        checksum: u32::try_from(get(3)?).map_err(|_| corrupt("checksum out of range"))?,
        size: u64::try_from(get(4)?).unwrap_or(0),
        content_type: row.try_get(first + 5).map_err(crate::error::map)?,
        created_at: ts(get(6)?),
        updated_at: ts(get(7)?),
        accessed_at: opt(8)?.map(ts),
        expires_at: opt(9)?.map(ts),
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

    /// The constants the one-statement increment XORs give the CRC32 of
    /// every integer's encoding, which is the tag and 8 little-endian
    /// bytes (what the statement's `get_byte`/`set_byte` assume).
    #[test]
    fn int_crc_constants_give_the_crc_of_every_integer() {
        let int = IntInPlace::new();
        let mut samples = vec![0, 1, -1, 42, -42, i64::MAX, i64::MIN, 1 << 63 >> 1];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            samples.push(x as i64);
        }
        let tag = Value::Int(0).encode()[0];
        for n in samples {
            let encoded = Value::Int(n).encode();
            assert_eq!(encoded.len(), 9);
            assert_eq!(encoded[0], tag);
            assert_eq!(encoded[1..], n.to_le_bytes());
            let mut crc = int.zero_crc;
            for (j, bit) in int.bit_crcs.iter().enumerate() {
                if (n >> j) & 1 == 1 {
                    crc ^= bit;
                }
            }
            assert_eq!(crc, i64::from(crc32fast::hash(&encoded)), "{n}");
        }
        assert!(int.rejecting.iter().any(|t| t == "string"));
        assert!(!int.rejecting.iter().any(|t| t == "number" || t == "json"));
        let statement = int.statement("t");
        assert!(statement.contains(&format!("get_byte(r.value, 0) <> {tag}")));
        assert!(statement.contains("NOT IN ('string', 'binary', 'boolean', 'document', 'image')"));
    }

    /// `shift_columns` gives the CRC32 of a concatenation from the CRC32
    /// of its parts, for pieces of every length up to a few KiB.
    #[test]
    fn shift_columns_combine_crcs() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let lengths = (0..70).chain([255, 256, 1000, 4095, 4096, 70_000]);
        for (round, len) in lengths.enumerate() {
            let a: Vec<u8> = (0..(next() % 300) as usize).map(|_| next() as u8).collect();
            let b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let columns = AppendInPlace::shift_columns(b.len());
            let crc_a = crc32fast::hash(&a);
            let mut combined = 0i64;
            for (i, c) in columns.iter().enumerate() {
                if (crc_a >> i) & 1 == 1 {
                    combined ^= c;
                }
            }
            combined ^= i64::from(crc32fast::hash(&b));
            let joined = [a.as_slice(), b.as_slice()].concat();
            assert_eq!(
                combined,
                i64::from(crc32fast::hash(&joined)),
                "round {round}, len {len}"
            );
        }
    }

    /// Each prebuilt page statement is the one `Sql::ranged` builds for a
    /// range of its shape, with the limit as the next parameter.
    #[test]
    fn paged_statements_match_their_range_shapes() {
        let sql = Sql::new("kv_t");
        let ranges = [
            Range::new(&KeyRange::all(), None),
            Range::new(&KeyRange::prefix("a."), None),
            Range::new(&KeyRange::prefix("a."), Some("a.b")),
            Range::new(&KeyRange::all(), Some("a.b")),
        ];
        let mut shapes = Vec::new();
        for range in &ranges {
            shapes.push(range.shape());
            let (text, n) = sql.ranged("SELECT key, expires_at, version", range, "", "");
            let expected = format!("{text}ORDER BY key LIMIT ${n}");
            assert_eq!(sql.scan_keys.text(range).as_ref(), expected);
            let (text, n) = sql.ranged(&format!("SELECT key, {COLUMNS}"), range, "", "");
            let expected = format!("{text}ORDER BY key LIMIT ${n}");
            assert_eq!(sql.scan.text(range).as_ref(), expected);
        }
        shapes.sort_unstable();
        shapes.dedup();
        assert_eq!(shapes.len(), ranges.len(), "four different shapes");
        // Every shape, including those no key range makes today.
        for shape in 0..6 {
            let (lower, upper) = Range::of_shape(shape);
            assert_eq!(Range::shape_of(lower, upper), shape);
            let range = Range {
                lower,
                lo: "a".into(),
                upper: upper.then(|| "b".to_owned()),
            };
            assert_eq!(range.shape(), shape);
            let (text, n) = sql.ranged("SELECT key, expires_at, version", &range, "", "");
            let expected = format!("{text}ORDER BY key LIMIT ${n}");
            assert_eq!(
                sql.scan_keys.text(&range).as_ref(),
                expected,
                "shape {shape}"
            );
        }
    }
}
