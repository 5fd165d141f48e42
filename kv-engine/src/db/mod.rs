//! [`Db`]: opening and recovery, the write path with group commit, reads,
//! transactions, scans, and closing.
//!
//! # Locks
//!
//! - `writer` (a mutex) serialises writers and owns the WAL writer. A write
//!   decides what to write while holding it (so conditions and computed
//!   values see every earlier write), appends to the WAL buffer, applies the
//!   change to the index, and releases it; in `Always` mode it then waits
//!   for an fsync shared with the writers around it (group commit).
//! - `index` (a read-write lock) guards the in-memory index. Readers never
//!   wait for I/O.
//! - `compaction` (a mutex) lets one compaction run at a time; `close`
//!   takes it too, so it never tears the database down under one.
//! - Lock order: `compaction` before `writer` before `index` before
//!   `commit`; nothing takes them the other way round.
//!
//! # Failure
//!
//! If a WAL write or fsync fails, the engine is *poisoned*: every later call
//! fails with [`Error::Poisoned`] until the database is reopened, and reopen
//! recovers exactly what reached the log. An operation whose write failed
//! has reported the error; it is in the log whole or not at all.

//!
//! Layout: `open` (recovery), `commit` (the shared state, the write path
//! and group commit), `txn` (transactions and batches); this file holds the
//! public handle and its reads, writes and admin calls.

mod commit;
mod open;
mod txn;

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kv_core::{Pattern, Timestamp};

use crate::error::{show_key, Error, Result};
use crate::index::{EntryRef, Index};
use crate::options::Options;
use crate::stats::{percentiles, Counters, Stats};

use crate::wal::format::{MAX_KEY_LEN, MAX_VALUE_LEN};
use crate::workers::Workers;

pub(crate) use commit::{GroupCommit, Inner};
pub use txn::{Batch, Txn};

/// Name of the lock file in the database directory.
pub const LOCK_FILE: &str = "LOCK";

pub(crate) const OPEN: u8 = 0;
pub(crate) const CLOSED: u8 = 1;
pub(crate) const POISONED: u8 = 2;

/// A change to write: set or delete one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write<'a> {
    /// Set `key` to `value`; `expires_at` in ms since the epoch, 0 = never.
    Set {
        /// The key.
        key: Cow<'a, [u8]>,
        /// The value.
        value: Cow<'a, [u8]>,
        /// Expiry, ms since the epoch; 0 = never.
        expires_at: u64,
    },
    /// Delete `key`.
    Delete {
        /// The key.
        key: Cow<'a, [u8]>,
    },
}

impl Write<'_> {
    fn key(&self) -> &[u8] {
        match self {
            Write::Set { key, .. } | Write::Delete { key } => key,
        }
    }
}

/// A stored value with its expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The value.
    pub value: Vec<u8>,
    /// When it expires; `None` = never.
    pub expires_at: Option<Timestamp>,
}

/// A key, value and expiry from a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanEntry {
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// When it expires; `None` = never.
    pub expires_at: Option<Timestamp>,
}

/// The answer of [`Db::ttl`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlState {
    /// No such key (or it has expired).
    Missing,
    /// The key never expires.
    Persistent,
    /// The key expires after this long.
    Expires(Duration),
}

pub(crate) fn to_expiry(t: Option<Timestamp>) -> u64 {
    match t {
        None => 0,
        // 0 means "never" on disk, so the earliest possible expiry is 1 ms.
        Some(t) => u64::try_from(t.as_millis()).unwrap_or(0).max(1),
    }
}

pub(crate) fn from_expiry(e: u64) -> Option<Timestamp> {
    (e != 0).then(|| Timestamp::from_millis(i64::try_from(e).unwrap_or(i64::MAX)))
}

/// The user's handle; its `Drop` stops the workers and flushes.
pub(crate) struct Handle {
    pub(crate) inner: Arc<Inner>,
    pub(crate) workers: Mutex<Option<Workers>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Best effort: errors were already reported to the writes, and a
        // poisoned or closed database has nothing to flush.
        let _ = close(&self.inner, &self.workers);
    }
}

/// An embedded key-value database: a write-ahead log, snapshots and an
/// in-memory index in one directory.
///
/// Cheap to clone; clones share the database. Closing any clone (or
/// dropping the last one) stops the background threads, writes what is
/// buffered, fsyncs and releases the directory's lock.
///
/// ```
/// use kv_engine::{Db, Options};
/// let dir = tempfile::tempdir()?;
/// let db = Db::open(Options::new(dir.path()))?;
/// db.set(b"greeting", b"hello")?;
/// assert_eq!(db.get(b"greeting")?, Some(b"hello".to_vec()));
/// db.close()?;
/// let db = Db::open(Options::new(dir.path()))?;
/// assert_eq!(db.get(b"greeting")?, Some(b"hello".to_vec()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Db {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.handle.inner.dir)
            .field("sync", &self.handle.inner.opts.sync)
            .finish_non_exhaustive()
    }
}

pub(crate) fn check_key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidArgument("keys must not be empty".into()));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(Error::InvalidArgument(format!(
            "key of {} bytes is over the limit of {MAX_KEY_LEN}",
            key.len()
        )));
    }
    Ok(())
}

pub(crate) fn check_value(value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_LEN {
        return Err(Error::InvalidArgument(format!(
            "value of {} bytes is over the limit of {MAX_VALUE_LEN}",
            value.len()
        )));
    }
    Ok(())
}

impl Db {
    pub(crate) fn inner(&self) -> &Inner {
        &self.handle.inner
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.inner().dir
    }

    /// The options the database was opened with.
    pub fn options(&self) -> &Options {
        &self.inner().opts
    }

    // --- reads ---------------------------------------------------------------

    /// The value of `key`, or `None` (also when it has expired).
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let inner = self.inner();
        let t0 = inner.start_sample();
        inner.check_open()?;
        let out = inner
            .read_index()
            .get(key)
            .filter(|e| inner.visible_now(e))
            .map(|e| e.value.to_vec());
        inner.counters.gets.add(1);
        inner.end_sample(t0, true);
        Ok(out)
    }

    /// The value and expiry of `key`. With `enforce_ttl` off, expired
    /// entries are returned too (the caller decides).
    pub fn get_entry(&self, key: &[u8]) -> Result<Option<Entry>> {
        let inner = self.inner();
        inner.check_open()?;
        let now = inner.now_ms();
        let out = inner
            .read_index()
            .get(key)
            .filter(|e| inner.visible(e, now))
            .map(|e| Entry {
                value: e.value.to_vec(),
                expires_at: from_expiry(e.expires_at),
            });
        inner.counters.gets.add(1);
        Ok(out)
    }

    /// Calls `f` on the entry of `key` under the read lock, without copying
    /// the value.
    pub fn with_entry<T>(
        &self,
        key: &[u8],
        f: impl FnOnce(Option<EntryRef<'_>>) -> T,
    ) -> Result<T> {
        let inner = self.inner();
        inner.check_open()?;
        let index = inner.read_index();
        inner.counters.gets.add(1);
        Ok(f(index.get(key).filter(|e| inner.visible_now(e))))
    }

    /// Whether `key` exists (and has not expired).
    pub fn exists(&self, key: &[u8]) -> Result<bool> {
        self.with_entry(key, |e| e.is_some())
    }

    /// Time to live of `key`.
    pub fn ttl(&self, key: &[u8]) -> Result<TtlState> {
        let now = self.inner().now_ms();
        self.with_entry(key, |e| match e {
            None => TtlState::Missing,
            Some(e) if e.expires_at == 0 => TtlState::Persistent,
            Some(e) => TtlState::Expires(Duration::from_millis(e.expires_at.saturating_sub(now))),
        })
    }

    /// Number of keys (expired ones excluded when the engine enforces TTL).
    pub fn count(&self) -> Result<usize> {
        let inner = self.inner();
        inner.check_open()?;
        let index = inner.read_index();
        if !inner.opts.enforce_ttl {
            return Ok(index.len());
        }
        Ok(index.len() - index.expired_count(inner.now_ms()))
    }

    /// Up to `limit` pairs whose key starts with `prefix`, in key order.
    pub fn scan(&self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let end = prefix_end(prefix);
        let end = match &end {
            Some(e) => Bound::Excluded(e.as_slice()),
            None => Bound::Unbounded,
        };
        Ok(self
            .scan_entries(Bound::Included(prefix), end, limit)?
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect())
    }

    /// Up to `limit` pairs with `start <= key < end`, in key order.
    pub fn scan_range(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Ok(self
            .scan_entries(Bound::Included(start), Bound::Excluded(end), limit)?
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect())
    }

    /// Up to `limit` entries in the key range, in key order, copied under
    /// one read lock: a consistent view as of the call.
    pub fn scan_entries(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<ScanEntry>> {
        let inner = self.inner();
        inner.check_open()?;
        let now = inner.now_ms();
        let index = inner.read_index();
        Ok(index
            .range(start, end)
            .filter(|e| inner.visible(e, now))
            .take(limit)
            .map(|e| ScanEntry {
                key: e.key.to_vec(),
                value: e.value.to_vec(),
                expires_at: from_expiry(e.expires_at),
            })
            .collect())
    }

    /// Calls `f` for entries in the key range, in key order, under one read
    /// lock, until it returns `false`.
    pub fn for_each_in(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        mut f: impl FnMut(EntryRef<'_>) -> bool,
    ) -> Result<()> {
        let inner = self.inner();
        inner.check_open()?;
        let now = inner.now_ms();
        let index = inner.read_index();
        for e in index.range(start, end) {
            if inner.visible(&e, now) && !f(e) {
                break;
            }
        }
        Ok(())
    }

    /// An iterator over the entries whose key starts with `prefix`, as of
    /// this call (later writes are not seen).
    pub fn iter_prefix(&self, prefix: &[u8]) -> Result<std::vec::IntoIter<ScanEntry>> {
        let end = prefix_end(prefix);
        let end = match &end {
            Some(e) => Bound::Excluded(e.as_slice()),
            None => Bound::Unbounded,
        };
        Ok(self
            .scan_entries(Bound::Included(prefix), end, usize::MAX)?
            .into_iter())
    }

    /// Keys matching a glob pattern (see `kv_core::Pattern`), in order; keys
    /// that are not UTF-8 never match. Only the range of the pattern's
    /// literal prefix is walked.
    pub fn keys(&self, pattern: &str) -> Result<Vec<Vec<u8>>> {
        let pattern = Pattern::new(pattern).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let prefix = pattern.literal_prefix().as_bytes().to_vec();
        let end = prefix_end(&prefix);
        let end = match &end {
            Some(e) => Bound::Excluded(e.as_slice()),
            None => Bound::Unbounded,
        };
        let mut out = Vec::new();
        self.for_each_in(Bound::Included(&prefix), end, |e| {
            if std::str::from_utf8(e.key).is_ok_and(|k| pattern.matches(k)) {
                out.push(e.key.to_vec());
            }
            true
        })?;
        Ok(out)
    }

    /// Every key, in order (for debugging and tools).
    pub fn dump_keys(&self) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        self.for_each_in(Bound::Unbounded, Bound::Unbounded, |e| {
            out.push(e.key.to_vec());
            true
        })?;
        Ok(out)
    }

    // --- writes --------------------------------------------------------------

    /// Sets `key` to `value` (clearing any TTL).
    pub fn set(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.set_with_expiry(key, value, None)
    }

    /// Sets `key` to `value`, expiring after `ttl`.
    pub fn set_with_ttl(&self, key: &[u8], value: &[u8], ttl: Duration) -> Result<()> {
        let at = Timestamp::from_millis(self.inner().now_ms() as i64).saturating_add(ttl);
        self.set_with_expiry(key, value, Some(at))
    }

    /// Sets `key` to `value`, expiring at `expires_at` (`None` = never).
    pub fn set_with_expiry(
        &self,
        key: &[u8],
        value: &[u8],
        expires_at: Option<Timestamp>,
    ) -> Result<()> {
        check_key(key)?;
        check_value(value)?;
        let write = Write::Set {
            key: Cow::Borrowed(key),
            value: Cow::Borrowed(value),
            expires_at: to_expiry(expires_at),
        };
        self.inner().commit_writes(true, |_| Ok((vec![write], ())))
    }

    /// Deletes `key`; returns whether it existed (and had not expired).
    pub fn delete(&self, key: &[u8]) -> Result<bool> {
        check_key(key)?;
        self.transaction(|txn| {
            let existed = txn.get(key).is_some();
            if txn.get_raw(key).is_some() {
                txn.delete(key);
            }
            Ok(existed)
        })
    }

    /// Sets `key` only if it does not exist; returns whether it did.
    pub fn set_nx(&self, key: &[u8], value: &[u8]) -> Result<bool> {
        check_key(key)?;
        check_value(value)?;
        self.transaction(|txn| {
            if txn.get(key).is_some() {
                return Ok(false);
            }
            txn.set(key, value, 0);
            Ok(true)
        })
    }

    /// Sets `key` to `new` only if its value is `expected` (`None` = only if
    /// absent). Keeps the TTL. Returns whether it swapped.
    pub fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool> {
        check_key(key)?;
        check_value(new)?;
        self.transaction(|txn| {
            let current = txn.get(key);
            let matches = match (&current, expected) {
                (None, None) => true,
                (Some((v, _)), Some(e)) => v.as_slice() == e,
                _ => false,
            };
            if !matches {
                return Ok(false);
            }
            let expires_at = current.map_or(0, |(_, e)| e);
            txn.set(key, new, expires_at);
            Ok(true)
        })
    }

    /// Sets `key` (clearing any TTL) and returns the previous value.
    pub fn get_and_set(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        check_key(key)?;
        check_value(value)?;
        self.transaction(|txn| {
            let previous = txn.get(key).map(|(v, _)| v);
            txn.set(key, value, 0);
            Ok(previous)
        })
    }

    /// Adds 1 to the decimal integer under `key`.
    pub fn incr(&self, key: &[u8]) -> Result<i64> {
        self.incr_by(key, 1)
    }

    /// Subtracts 1.
    pub fn decr(&self, key: &[u8]) -> Result<i64> {
        self.incr_by(key, -1)
    }

    /// Adds `delta` to the decimal integer under `key` (missing = 0); keeps
    /// the TTL. A value that is not a decimal `i64` is
    /// [`Error::NotAnInteger`]; overflow is [`Error::Overflow`].
    pub fn incr_by(&self, key: &[u8], delta: i64) -> Result<i64> {
        check_key(key)?;
        self.transaction(|txn| {
            let (n, expires_at) = match txn.get(key) {
                None => (0, 0),
                Some((v, e)) => {
                    let n = std::str::from_utf8(&v)
                        .ok()
                        .and_then(|s| s.parse::<i64>().ok())
                        .ok_or_else(|| Error::NotAnInteger { key: show_key(key) })?;
                    (n, e)
                }
            };
            let new = n.checked_add(delta).ok_or_else(|| Error::Overflow {
                key: show_key(key),
                delta,
            })?;
            txn.set(key, new.to_string().as_bytes(), expires_at);
            Ok(new)
        })
    }

    /// Makes `key` expire after `ttl`; returns `false` when it is missing.
    pub fn expire(&self, key: &[u8], ttl: Duration) -> Result<bool> {
        check_key(key)?;
        let at = Timestamp::from_millis(self.inner().now_ms() as i64).saturating_add(ttl);
        self.transaction(|txn| match txn.get(key) {
            None => Ok(false),
            Some((v, _)) => {
                txn.set(key, &v, to_expiry(Some(at)));
                Ok(true)
            }
        })
    }

    /// Removes the TTL of `key`; returns whether it had one.
    pub fn persist(&self, key: &[u8]) -> Result<bool> {
        check_key(key)?;
        self.transaction(|txn| match txn.get(key) {
            Some((v, e)) if e != 0 => {
                txn.set(key, &v, 0);
                Ok(true)
            }
            _ => Ok(false),
        })
    }

    /// A batch of writes applied together by [`Batch::write`].
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            db: self,
            writes: Vec::new(),
        }
    }

    /// Runs `f` with exclusive write access: reads in `f` see the database
    /// as of now plus `f`'s own writes, and `f`'s writes are applied
    /// atomically (one batch in the WAL) when it returns `Ok`. Nothing is
    /// written when it returns `Err`. Readers are not blocked while `f`
    /// runs; other writers are, so keep `f` short.
    pub fn transaction<T>(&self, f: impl FnOnce(&mut Txn<'_>) -> Result<T>) -> Result<T> {
        self.inner().commit_writes(true, |index| {
            let mut txn = Txn {
                index,
                overlay: HashMap::new(),
                writes: Vec::new(),
                now: self.inner().now_ms(),
                enforce_ttl: self.inner().opts.enforce_ttl,
            };
            let out = f(&mut txn)?;
            Ok((txn.writes, out))
        })
    }

    /// Removes keys expired at `now`; returns how many. The deletions are
    /// logged but not waited on: expiry is derived again on recovery.
    pub fn remove_expired(&self, now: Timestamp) -> Result<u64> {
        self.inner().remove_expired(now, None)
    }

    /// Removes keys starting with `prefix` expired at `now`; returns how
    /// many.
    pub fn remove_expired_with_prefix(&self, prefix: &[u8], now: Timestamp) -> Result<u64> {
        let inner = self.inner();
        let at = to_expiry(Some(now));
        let expired: Vec<Vec<u8>> = {
            inner.check_writable()?;
            inner
                .read_index()
                .expired(at, usize::MAX)
                .into_iter()
                .filter(|k| k.starts_with(prefix))
                .collect()
        };
        let mut removed = 0u64;
        for chunk in expired.chunks(1024) {
            removed += inner.commit_writes(false, |index| {
                let writes = chunk
                    .iter()
                    .filter(|k| {
                        index
                            .get(k)
                            .is_some_and(|e| e.expires_at != 0 && e.expires_at <= at)
                    })
                    .map(|k| Write::Delete {
                        key: Cow::Owned(k.clone()),
                    })
                    .collect::<Vec<_>>();
                let n = writes.len() as u64;
                Ok((writes, n))
            })?;
        }
        Counters::add(&inner.counters.expired_removed, removed);
        Ok(removed)
    }

    // --- admin ---------------------------------------------------------------

    /// Writes a new snapshot of everything logged so far and deletes the WAL
    /// segments it covers. Reads and writes go on meanwhile. A [`close`]
    /// from another clone waits for it; if the database is poisoned
    /// meanwhile, it stops with that error and the old snapshot stays.
    ///
    /// [`close`]: Self::close
    pub fn compact(&self) -> Result<()> {
        self.inner().check_writable()?;
        crate::compaction::compact(self.inner())
    }

    /// Writes what is buffered and fsyncs it.
    pub fn flush(&self) -> Result<()> {
        let inner = self.inner();
        inner.check_writable()?;
        inner.sync_now().map(|_| ())
    }

    /// The database's figures.
    pub fn stats(&self) -> Stats {
        let inner = self.inner();
        let c = &inner.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (keys, kv_bytes, overhead) = {
            let index = inner.read_index();
            (
                index.len() as u64,
                index.key_value_bytes(),
                index.overhead_bytes(),
            )
        };
        let (wal_bytes, wal_segment) = inner
            .writer
            .lock()
            .ok()
            .and_then(|w| w.as_ref().map(|w| (w.wal_bytes(), w.segment())))
            .unwrap_or((0, 0));
        Stats {
            keys,
            key_value_bytes: kv_bytes,
            index_overhead_bytes: overhead,
            wal_bytes,
            wal_segment,
            snapshot_bytes: load(&inner.snapshot_bytes),
            gets: c.gets.sum(),
            writes: load(&c.writes),
            deletes: load(&c.deletes),
            batches: load(&c.batches),
            fsyncs: load(&c.fsyncs),
            compactions: load(&c.compactions),
            expired_removed: load(&c.expired_removed),
            read_latency: percentiles(&c.read_latency),
            write_latency: percentiles(&c.write_latency),
        }
    }

    /// Stops the background threads, waits for a compaction another clone
    /// is running, writes and fsyncs what is buffered, and releases the
    /// directory's lock. Later calls on any clone fail with
    /// [`Error::Closed`]. Closing twice is fine.
    pub fn close(&self) -> Result<()> {
        close(&self.handle.inner, &self.handle.workers)
    }
}

fn close(inner: &Inner, workers: &Mutex<Option<Workers>>) -> Result<()> {
    if inner.state.load(Ordering::Acquire) == CLOSED {
        return Ok(());
    }
    if let Some(w) = workers.lock().unwrap_or_else(|e| e.into_inner()).take() {
        w.stop();
    }
    // Wait for a compaction another clone is running: torn down under it,
    // it would copy the rest of the index from an empty one and then name
    // that partial snapshot in the MANIFEST and delete the segments holding
    // the rest, after the directory's lock was released. Compaction checks
    // the state after taking this lock, so none starts after it.
    let _compaction = inner.compaction.lock().unwrap_or_else(|e| e.into_inner());
    let result = {
        // The writer lock is held from finishing the WAL to marking the
        // engine closed: a write appended in between would be acknowledged
        // and then dropped with the buffer.
        let mut writer = inner.lock_writer();
        let result = match inner.state.load(Ordering::Acquire) {
            // Another clone closed it while this one waited.
            CLOSED => return Ok(()),
            OPEN => match writer.as_mut() {
                Some(wal) => inner.finish_wal(wal),
                // Read-only: nothing to finish.
                None => Ok(()),
            },
            // Everything is released all the same; the caller learns that
            // the last writes may not be on disk.
            _ => Err(inner.poisoned()),
        };
        inner.state.store(CLOSED, Ordering::Release);
        *writer = None;
        result
    };
    inner.commit.wake_all();
    *inner.index.write().unwrap_or_else(|e| e.into_inner()) = Index::new();
    *inner.lock.lock().unwrap_or_else(|e| e.into_inner()) = None;
    result
}

/// The smallest key greater than every key starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}
