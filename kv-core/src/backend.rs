//! The [`Backend`] trait: record-level storage primitives.
//!
//! A backend stores and retrieves [`Record`]s by namespace and key. It knows
//! nothing of key rules, patterns, TTL rules or atomic-operation rules; those
//! live once, in [`Store`](crate::Store). A backend's job is to make each
//! primitive atomic and durable on its medium:
//!
//! - `write` and `delete` check their [`Precondition`] and act in one atomic
//!   step, across tasks and across processes sharing the backend;
//! - `scan` returns records ordered by key bytes, starting strictly after a
//!   cursor, so callers page through any number of keys in bounded memory;
//! - `apply` applies a batch all-or-nothing when
//!   [`Capabilities::atomic_batch`] is true, and refuses it otherwise.
//!
//! Preconditions compare *physical* state: an expired record that is still
//! stored has a version, and `Absent` fails on it. The store treats expired
//! records as absent and picks the precondition accordingly.
//!
//! The optional fast paths ([`increment`](Backend::increment),
//! [`delete_range`](Backend::delete_range), [`count`](Backend::count),
//! [`read_value`](Backend::read_value), [`scan_matching`](Backend::scan_matching),
//! [`remove_expired`](Backend::remove_expired), [`scan_keys`](Backend::scan_keys),
//! [`read_many`](Backend::read_many)) have default implementations on top of
//! the primitives, in [`crate::ops`]; a backend overrides them only with a
//! native path that gives the same answers, which the conformance suite
//! checks. [`append_in_place`](Backend::append_in_place) (default: "does
//! not apply") lets a backend append in one atomic step in the clear-cut
//! case, leaving every decision that needs a rule to the store.
//! [`read_for_set`](Backend::read_for_set) (default: `read`) is the one
//! allowed to answer from what the backend last saw, because the
//! conditional write after it checks the answer.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::metadata::MetadataFilter;
use crate::record::{Record, StoredValue};
use crate::value::Value;

/// A condition checked atomically with a write or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// No condition.
    Any,
    /// No record (expired or not) is stored under the key.
    Absent,
    /// A record with exactly this version is stored under the key.
    Version(u64),
}

impl Precondition {
    /// Checks the condition against the stored record's version.
    pub fn holds(&self, current: Option<u64>) -> bool {
        match (self, current) {
            (Precondition::Any, _) => true,
            (Precondition::Absent, None) => true,
            (Precondition::Version(v), Some(c)) => *v == c,
            _ => false,
        }
    }
}

/// Result of [`Backend::write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The record was stored.
    Written,
    /// The precondition did not hold; nothing was written.
    PreconditionFailed,
}

/// Result of [`Backend::delete`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// A record was removed; `expires_at` is what it had, so the store can
    /// tell a live key from an expired leftover.
    Deleted {
        /// The removed record's expiry.
        expires_at: Option<Timestamp>,
    },
    /// No record was stored under the key.
    NotFound,
    /// The precondition did not hold; nothing was removed.
    PreconditionFailed,
}

impl DeleteOutcome {
    /// Whether a record was removed that was live at `now` (not an expired
    /// leftover).
    pub fn removed_live(&self, now: Timestamp) -> bool {
        matches!(self, DeleteOutcome::Deleted { expires_at } if !matches!(expires_at, Some(t) if now >= *t))
    }
}

/// One operation of a batch given to [`Backend::apply`].
#[derive(Debug, Clone, PartialEq)]
pub enum BatchOp {
    /// Store a record if the precondition holds.
    Put {
        /// The record (its namespace and key say where).
        record: Record,
        /// Checked before anything in the batch is applied.
        precondition: Precondition,
    },
    /// Remove a record if the precondition holds.
    Delete {
        /// Namespace of the key.
        namespace: String,
        /// The key.
        key: String,
        /// Checked before anything in the batch is applied.
        precondition: Precondition,
    },
}

impl BatchOp {
    /// The namespace and key the operation touches.
    pub fn target(&self) -> (&str, &str) {
        match self {
            BatchOp::Put { record, .. } => (&record.namespace, &record.key),
            BatchOp::Delete { namespace, key, .. } => (namespace, key),
        }
    }

    /// The operation's precondition.
    pub fn precondition(&self) -> Precondition {
        match self {
            BatchOp::Put { precondition, .. } | BatchOp::Delete { precondition, .. } => {
                *precondition
            }
        }
    }
}

/// Result of [`Backend::apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Every operation was applied.
    Applied,
    /// The precondition of the operation at `index` did not hold; nothing
    /// was applied.
    PreconditionFailed {
        /// Index of the first failing operation.
        index: usize,
    },
}

/// Decides a batch from the records stored under the keys it was planned
/// for (see [`Backend::apply_planned`]): given them in the order of the
/// keys, expired or not, it returns the operations to apply, or `None` to
/// apply nothing.
pub type BatchPlan = Box<dyn FnOnce(Vec<Option<Record>>) -> Result<Option<Vec<BatchOp>>> + Send>;

/// Result of [`Backend::apply_planned`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlannedOutcome {
    /// The plan's operations were applied, all of them.
    Applied {
        /// `Put` operations applied.
        puts: u64,
        /// `Delete` operations applied.
        deletes: u64,
    },
    /// The plan returned `None`; nothing was applied.
    Declined,
    /// A key changed between the read and the write (a precondition of the
    /// plan's operations did not hold); nothing was applied. The caller
    /// plans again on fresh records.
    Conflict,
}

/// A range of keys: `start` inclusive, `end` exclusive, by key bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyRange {
    /// First key of the range (inclusive); `None` = from the first key.
    pub start: Option<String>,
    /// End of the range (exclusive); `None` = to the last key.
    pub end: Option<String>,
}

impl KeyRange {
    /// Every key.
    pub fn all() -> Self {
        KeyRange::default()
    }

    /// Every key starting with `prefix`.
    pub fn prefix(prefix: &str) -> Self {
        if prefix.is_empty() {
            return KeyRange::all();
        }
        KeyRange {
            start: Some(prefix.to_owned()),
            end: prefix_successor(prefix),
        }
    }

    /// Whether `key` is in the range.
    pub fn contains(&self, key: &str) -> bool {
        self.start.as_deref().is_none_or(|s| key >= s)
            && self.end.as_deref().is_none_or(|e| key < e)
    }

    /// The first key to return after the cursor `after` (exclusive): the
    /// later of the range start and the cursor.
    pub fn lower_bound<'a>(&'a self, after: Option<&'a str>) -> std::ops::Bound<&'a str> {
        use std::ops::Bound;
        match (self.start.as_deref(), after) {
            (_, Some(a)) if self.start.as_deref().is_none_or(|s| a >= s) => Bound::Excluded(a),
            (Some(s), _) => Bound::Included(s),
            (None, None) => Bound::Unbounded,
            (None, Some(a)) => Bound::Excluded(a),
        }
    }
}

/// The smallest string greater than every string starting with `prefix`,
/// or `None` when there is none. Works on characters, so the result is valid
/// UTF-8 and orders correctly by bytes (UTF-8 preserves code-point order).
pub fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = u32::from(last) + 1;
        if (0xD800..=0xDFFF).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// A key's summary, as returned by [`Backend::scan_keys`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key.
    pub key: String,
    /// Its expiry.
    pub expires_at: Option<Timestamp>,
    /// Its version.
    pub version: u64,
}

/// What a backend can do; the store and the conformance suite adapt to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Capabilities {
    /// `apply` is all-or-nothing. When false, `apply` (and so
    /// `KVStore::batch`) returns [`Error::Unsupported`].
    pub atomic_batch: bool,
    /// The medium expires records by itself (the store still checks).
    pub native_ttl: bool,
    /// `increment` has a native atomic path.
    pub native_increment: bool,
    /// `delete_range` has a native path.
    pub native_range_delete: bool,
    /// Data survives the process.
    pub persistent: bool,
    /// Several processes may share the data at once.
    pub multi_process: bool,
    /// How `write` preconditions are made atomic.
    pub cas: CasMechanism,
    /// Longest key (in bytes) the medium can hold, when it is shorter than
    /// the store's own limit (object stores cap object names). The store
    /// refuses longer keys with `Error::InvalidKey` before any I/O.
    pub max_key_len: Option<usize>,
    /// How the store yields to the async runtime between calls.
    pub cooperation: Cooperation,
}

impl Capabilities {
    /// Everything off; set fields on the result.
    pub fn none() -> Self {
        Capabilities::default()
    }
}

/// How a store yields to the async runtime between calls to its backend,
/// so that a task looping over calls that never wait (an in-memory backend,
/// or blocking calls run in place) neither starves the other tasks of its
/// worker thread nor escapes a `tokio::time::timeout` around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Cooperation {
    /// Each operation spends one unit of the task's Tokio budget, and the
    /// task yields when the budget is used up (every 128 operations), as
    /// Tokio's own resources do. Right for calls that run on the worker
    /// thread (memory, the engine, caches).
    #[default]
    Budget,
    /// The backend's calls block inside [`tokio::task::block_in_place`],
    /// which offers the worker thread's other tasks to another thread for
    /// the call. A yield is dear there: a task that has blocked in place
    /// may go on running on a thread that no longer holds a worker, and
    /// yielding there moves it back to a worker thread (a thread wake-up).
    /// The store yields once a task has run [`IN_PLACE_YIELD_INTERVAL`] on
    /// one thread without yielding at one of the store's yield points, so
    /// a timeout around a loop of calls fires within about that, and the
    /// tasks queued behind it on its worker wait about as long at most
    /// (when a short call ends before another thread took the worker over,
    /// the calling thread takes it back), unless another worker steals
    /// them.
    InPlace,
}

/// How long a task may run store operations on a [`Cooperation::InPlace`]
/// backend before the store makes it yield.
///
/// Long against the cost of a yield after blocking in place (a thread
/// wake-up: 50–100 µs on a small VM), so yields cost a few percent of a
/// loop of short calls; short against the millisecond grain of Tokio's
/// timers. On the SQLite bench 1 ms measured 0.79–0.82× raw for the
/// one-task `get`, 2 ms 0.84× (docs/performance.md).
pub const IN_PLACE_YIELD_INTERVAL: std::time::Duration = std::time::Duration::from_millis(2);

/// How a backend makes conditional writes atomic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CasMechanism {
    /// A lock in this process (memory, engine).
    #[default]
    Lock,
    /// A transaction or `WHERE version = ?` in a database.
    Transaction,
    /// Conditional PUT (`If-Match` / `If-None-Match`) on an object store.
    ConditionalPut,
    /// Not atomic: conditional writes are refused.
    Unsupported,
}

impl fmt::Display for CasMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CasMechanism::Lock => "lock",
            CasMechanism::Transaction => "transaction",
            CasMechanism::ConditionalPut => "conditional put",
            CasMechanism::Unsupported => "unsupported",
        })
    }
}

/// Backend-specific statistics: named numbers and strings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BackendStats {
    /// The backend's name.
    pub backend: String,
    /// Named figures (key count, bytes, hit ratio, ...).
    pub fields: BTreeMap<String, serde_json::Value>,
    /// Stats of the backend beneath, for layers.
    pub inner: Option<Box<BackendStats>>,
}

/// Record-level storage. See the [module docs](self) for the contract.
#[async_trait]
pub trait Backend: Send + Sync + fmt::Debug {
    /// A short name for errors and stats (`memory`, `engine`, `sqlite`, ...).
    fn name(&self) -> &str;

    /// What the backend can do.
    fn capabilities(&self) -> Capabilities;

    /// The record stored under `key`, expired or not.
    async fn read(&self, namespace: &str, key: &str) -> Result<Option<Record>>;

    /// The record under `key` as the start of a plain `set`, which replaces
    /// the value and keeps the version, timestamps, TTL and metadata.
    ///
    /// Unlike [`read`](Self::read) it may answer from what this backend
    /// last saw of the key (and leave `value` empty) instead of reading it,
    /// provided that a [`write`](Self::write) conditioned on a version that
    /// is no longer current fails with [`WriteOutcome::PreconditionFailed`]
    /// and that the next call after such a failure reads afresh. The store
    /// uses it only where a conditional write follows and validates the
    /// answer; operations that decide from the record alone (`set_nx`, a
    /// version-checked `set`) use `read`. The default reads.
    async fn read_for_set(&self, namespace: &str, key: &str) -> Result<Option<Record>> {
        self.read(namespace, key).await
    }

    /// The value, checksum and expiry of the record under `key`: all a plain
    /// `get` needs, so backends can skip the metadata.
    async fn read_value(&self, namespace: &str, key: &str) -> Result<Option<StoredValue>> {
        Ok(self.read(namespace, key).await?.map(|r| StoredValue {
            value: r.value,
            checksum: r.meta.checksum,
            expires_at: r.meta.expires_at,
        }))
    }

    /// The records stored under `keys`, in the same order.
    async fn read_many(&self, namespace: &str, keys: &[String]) -> Result<Vec<Option<Record>>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.read(namespace, key).await?);
        }
        Ok(out)
    }

    /// Stores `record` if `precondition` holds, atomically.
    async fn write(&self, record: Record, precondition: Precondition) -> Result<WriteOutcome>;

    /// Removes the record under `key` if `precondition` holds, atomically.
    async fn delete(
        &self,
        namespace: &str,
        key: &str,
        precondition: Precondition,
    ) -> Result<DeleteOutcome>;

    /// Up to `limit` records in `range`, ordered by key bytes, with keys
    /// strictly greater than `after` when given. Expired records are
    /// included; the store filters them.
    async fn scan(
        &self,
        namespace: &str,
        range: &KeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>>;

    /// Like [`scan`](Self::scan) but only keys, expiry and version.
    async fn scan_keys(
        &self,
        namespace: &str,
        range: &KeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KeyInfo>> {
        Ok(self
            .scan(namespace, range, after, limit)
            .await?
            .into_iter()
            .map(|r| KeyInfo {
                expires_at: r.meta.expires_at,
                version: r.meta.version,
                key: r.key,
            })
            .collect())
    }

    /// Up to `limit` records in `range` after `after`, in key order, whose
    /// user metadata satisfies `filter` (expired ones included). Returning
    /// fewer than `limit` means the range is exhausted. A native path may
    /// also return records that do not match (the store checks the filter
    /// again), but never skip one that does.
    async fn scan_matching(
        &self,
        namespace: &str,
        range: &KeyRange,
        after: Option<&str>,
        limit: usize,
        filter: &MetadataFilter,
    ) -> Result<Vec<Record>> {
        crate::ops::scan_matching(self, namespace, range, after, limit, filter).await
    }

    /// Applies a batch all-or-nothing: every precondition is checked first,
    /// and then every operation is applied, or none is.
    async fn apply(&self, ops: Vec<BatchOp>) -> Result<BatchOutcome> {
        let _ = ops;
        Err(Error::Unsupported {
            operation: "atomic batch".into(),
            backend: self.name().to_owned(),
            reason: "the backend cannot apply several writes atomically; write keys one by one"
                .into(),
        })
    }

    /// Reads the records under `keys` (expired or not), lets `plan` decide
    /// a batch from them, and applies it all-or-nothing. The plan's
    /// operations carry preconditions on the versions it was given.
    ///
    /// The default reads with [`read_many`](Self::read_many) and applies
    /// with [`apply`](Self::apply): a write that lands in between fails a
    /// precondition and gives [`PlannedOutcome::Conflict`]. A backend that
    /// can read and write in one transaction runs `plan` inside it instead,
    /// which spares the second look at every key that checking the
    /// preconditions costs (then `Conflict` only comes from a plan whose
    /// preconditions disagree with what it was given). Only called on
    /// backends with [`Capabilities::atomic_batch`].
    async fn apply_planned(
        &self,
        namespace: &str,
        keys: &[String],
        plan: BatchPlan,
    ) -> Result<PlannedOutcome> {
        crate::ops::apply_planned(self, namespace, keys, plan).await
    }

    /// Reclaims space: the engine writes a snapshot and drops old WAL
    /// segments, SQLite checkpoints and vacuums its file, PostgreSQL runs
    /// `VACUUM ANALYZE` on the table. Changes no record. The default does
    /// nothing, for backends with nothing to compact (memory, S3).
    async fn compact(&self) -> Result<()> {
        Ok(())
    }

    /// Number of live (not expired at `now`) records in `range`.
    async fn count(&self, namespace: &str, range: &KeyRange, now: Timestamp) -> Result<u64> {
        crate::ops::count(self, namespace, range, now).await
    }

    /// Removes records expired at `now`, in one namespace or all; returns how
    /// many were removed.
    async fn remove_expired(&self, namespace: Option<&str>, now: Timestamp) -> Result<u64> {
        crate::ops::remove_expired(self, namespace, now).await
    }

    /// Removes every record in `range`; returns how many of them were live
    /// at `now`.
    async fn delete_range(&self, namespace: &str, range: &KeyRange, now: Timestamp) -> Result<u64> {
        crate::ops::delete_range(self, namespace, range, now).await
    }

    /// Removes the records of `keys` (distinct, whatever their version);
    /// returns how many of them were live at `now`. `delete_many` and
    /// pattern deletes that are not a plain prefix come here; the default
    /// deletes key by key, several at a time. A native path may delete in
    /// bulk.
    async fn delete_keys(&self, namespace: &str, keys: &[String], now: Timestamp) -> Result<u64> {
        crate::ops::delete_keys(self, namespace, keys, now).await
    }

    /// Atomically adds `delta` to the integer under `key` (a missing or
    /// expired key counts as 0) and returns the new value. Keeps TTL, user
    /// metadata and `created_at`; bumps the version.
    async fn increment(
        &self,
        namespace: &str,
        key: &str,
        delta: i64,
        now: Timestamp,
    ) -> Result<i64> {
        crate::ops::increment(self, namespace, key, delta, now).await
    }

    /// Appends `piece` (a string or bytes) to the value under `key` in one
    /// atomic step where that is clear-cut: the record is live at `now`,
    /// holds a string and `piece` is a string, or holds bytes (the
    /// encodings whose tag is in `piece.append_target_tags()`); and the
    /// encoded result is at most `max_size` bytes. Then it bumps the
    /// version, sets `updated_at` to `now`, keeps everything else, and
    /// returns `Some(new payload length)`. Otherwise it changes nothing and
    /// returns `None`, and the store runs its general read-modify-write,
    /// which decides by its rules (a missing key, another type, a value
    /// too large). The default is always `None`.
    ///
    /// An implementation that cannot verify the stored value's checksum
    /// first may append to a damaged value, as long as the damage stays
    /// visible: the record's new checksum must still disagree with its
    /// value, so that every later read reports [`Error::Corruption`].
    async fn append_in_place(
        &self,
        namespace: &str,
        key: &str,
        piece: &Value,
        max_size: usize,
        now: Timestamp,
    ) -> Result<Option<u64>> {
        let _ = (namespace, key, piece, max_size, now);
        Ok(None)
    }

    /// Namespaces that hold at least one record (expired or not), sorted.
    async fn namespaces(&self) -> Result<Vec<String>>;

    /// Makes every acknowledged write durable (does not delete anything).
    async fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// Releases resources; later calls fail with [`Error::Closed`].
    async fn close(&self) -> Result<()> {
        Ok(())
    }

    /// Backend-specific statistics.
    async fn stats(&self) -> Result<BackendStats> {
        Ok(BackendStats {
            backend: self.name().to_owned(),
            ..BackendStats::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ops::Bound;

    #[test]
    fn prefix_successor_orders_correctly() {
        assert_eq!(prefix_successor("users.").as_deref(), Some("users/"));
        assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_successor("\u{10FFFF}"), None);
        assert_eq!(prefix_successor("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        let r = KeyRange::prefix("ab");
        assert!(r.contains("ab"));
        assert!(r.contains("ab.x"));
        assert!(r.contains("ab\u{10FFFF}"));
        assert!(!r.contains("ac"));
        assert!(!r.contains("aa"));
        let r = KeyRange::prefix("é");
        assert!(r.contains("é.x"));
        assert!(!r.contains("ê"));
    }

    #[test]
    fn lower_bound_takes_later_of_start_and_cursor() {
        let r = KeyRange::prefix("b");
        assert_eq!(r.lower_bound(None), Bound::Included("b"));
        assert_eq!(r.lower_bound(Some("a")), Bound::Included("b"));
        assert_eq!(r.lower_bound(Some("b.x")), Bound::Excluded("b.x"));
        assert_eq!(KeyRange::all().lower_bound(Some("q")), Bound::Excluded("q"));
    }

    #[test]
    fn precondition_holds() {
        assert!(Precondition::Any.holds(None));
        assert!(Precondition::Absent.holds(None));
        assert!(!Precondition::Absent.holds(Some(1)));
        assert!(Precondition::Version(2).holds(Some(2)));
        assert!(!Precondition::Version(2).holds(None));
    }
}
