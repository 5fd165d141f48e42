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
//! - Lock order: `writer` before `index` before `commit`; nothing takes them
//!   the other way round.
//!
//! # Failure
//!
//! If a WAL write or fsync fails, the engine is *poisoned*: every later call
//! fails with [`Error::Poisoned`] until the database is reopened, and reopen
//! recovers exactly what reached the log. An operation whose write failed
//! has reported the error; it is in the log whole or not at all.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use kv_core::{Pattern, Timestamp};

use crate::error::{show_key, Error, Result};
use crate::index::{EntryRef, Index};
use crate::manifest::{Manifest, MANIFEST, MANIFEST_TMP};
use crate::options::{Options, SyncMode};
use crate::snapshot::{self, parse_snapshot_name};
use crate::stats::{percentiles, Counters, Stats};
use crate::storage::{LockGuard, Storage};
use crate::wal::format::{self, Kind, Record, MAX_KEY_LEN, MAX_VALUE_LEN};
use crate::wal::reader::{self, Change};
use crate::wal::writer::{parse_segment_name, segment_name, WalWriter};
use crate::workers::{Signal, Workers};

/// Name of the lock file in the database directory.
pub const LOCK_FILE: &str = "LOCK";

const OPEN: u8 = 0;
const CLOSED: u8 = 1;
const POISONED: u8 = 2;

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

#[derive(Debug, Default)]
struct CommitState {
    durable: u64,
    leader: bool,
    /// Writers waiting for their records to become durable.
    waiting: usize,
}

/// Group commit: the first waiter becomes the leader and fsyncs for
/// everyone whose records were written before its flush.
#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    state: Mutex<CommitState>,
    cv: Condvar,
    /// Writers between entering a durable commit and leaving it.
    active: AtomicUsize,
    /// Last sequence number appended to the WAL buffer.
    appended: AtomicU64,
    /// Records the last fsync covered: the next leader waits (briefly) for
    /// about as many before it syncs.
    last_group: AtomicU64,
}

/// Counts a durable writer in [`GroupCommit::active`] for its lifetime.
struct ActiveWriter<'a>(&'a AtomicUsize);

impl<'a> ActiveWriter<'a> {
    fn enter(active: &'a AtomicUsize) -> Self {
        active.fetch_add(1, Ordering::AcqRel);
        ActiveWriter(active)
    }
}

impl Drop for ActiveWriter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl GroupCommit {
    fn lock(&self) -> MutexGuard<'_, CommitState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks everything up to `seq` durable.
    pub(crate) fn mark_durable(&self, seq: u64) {
        let mut st = self.lock();
        st.durable = st.durable.max(seq);
        drop(st);
        self.cv.notify_all();
    }

    fn wake_all(&self) {
        let _st = self.lock();
        self.cv.notify_all();
    }
}

pub(crate) struct Inner {
    pub(crate) opts: Options,
    pub(crate) dir: PathBuf,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) index: RwLock<Index>,
    pub(crate) writer: Mutex<Option<WalWriter>>,
    pub(crate) commit: GroupCommit,
    state: AtomicU8,
    poison: Mutex<Option<String>>,
    pub(crate) counters: Counters,
    pub(crate) manifest: Mutex<Manifest>,
    pub(crate) compaction: Mutex<()>,
    pub(crate) snapshot_bytes: AtomicU64,
    lock: Mutex<Option<Box<dyn LockGuard>>>,
    pub(crate) signal: Arc<Signal>,
}

/// The user's handle; its `Drop` stops the workers and flushes.
struct Handle {
    inner: Arc<Inner>,
    workers: Mutex<Option<Workers>>,
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

fn check_key(key: &[u8]) -> Result<()> {
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

fn check_value(value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_LEN {
        return Err(Error::InvalidArgument(format!(
            "value of {} bytes is over the limit of {MAX_VALUE_LEN}",
            value.len()
        )));
    }
    Ok(())
}

impl Db {
    /// Opens (or creates) the database in `opts.path`.
    ///
    /// Recovery loads the snapshot the MANIFEST names and replays the WAL
    /// segments after it. A torn tail of the newest segment is cut off (and
    /// the file truncated, so every later open sees the same); a bad record
    /// followed by valid ones is [`Error::Corruption`]. Another open handle,
    /// in this or another process, makes this [`Error::Locked`].
    pub fn open(opts: Options) -> Result<Db> {
        opts.validate()?;
        let storage = Arc::clone(&opts.storage);
        let dir = opts.path.clone();
        if !opts.read_only {
            storage
                .create_dir_all(&dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        let lock = storage
            .lock(&dir.join(LOCK_FILE), !opts.read_only)
            .map_err(|e| Error::io(format!("locking {}", dir.display()), e))?
            .ok_or_else(|| Error::Locked { path: dir.clone() })?;

        let manifest = match Manifest::load(&*storage, &dir)? {
            Some(m) => m,
            None => {
                // A new database writes its MANIFEST before any other file,
                // so data files without one mean it was lost: refuse to open
                // rather than start over on top of them.
                let names = match storage.list(&dir) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                    Err(e) => return Err(Error::io(format!("listing {}", dir.display()), e)),
                };
                if let Some(data) = names
                    .iter()
                    .find(|n| parse_segment_name(n).is_some() || parse_snapshot_name(n).is_some())
                {
                    return Err(Error::corruption(
                        dir.join(MANIFEST),
                        0,
                        format!("MANIFEST is missing but data file {data} exists"),
                    ));
                }
                let m = Manifest {
                    snapshot: None,
                    wal_start: 1,
                    timestamp: now_ms(&opts),
                };
                if !opts.read_only {
                    m.store(&*storage, &dir)?;
                }
                m
            }
        };

        let mut index = Index::new();
        let mut snapshot_bytes = 0;
        if let Some(name) = &manifest.snapshot {
            let path = dir.join(name);
            // The header's count sizes the index. It is not checked yet
            // (`read` checks it against the entries and the CRC), so it is
            // capped by what the file can hold: an entry takes at least 4
            // bytes.
            let expected = snapshot::read_info(&*storage, &path)?.count;
            let file_len = storage
                .open(&path, crate::storage::OpenMode::Read)
                .and_then(|f| f.len())
                .map_err(|e| Error::io(format!("reading the size of {}", path.display()), e))?;
            index.reserve(usize::try_from(expected.min(file_len / 4)).unwrap_or(0));
            let info = snapshot::read(&*storage, &path, |k, v, e| {
                index.insert(k, v, e);
                Ok(())
            })?;
            if info.wal_start != manifest.wal_start {
                return Err(Error::corruption(
                    &path,
                    28,
                    "snapshot does not pair with the MANIFEST's wal_start",
                ));
            }
            snapshot_bytes = storage
                .open(&path, crate::storage::OpenMode::Read)
                .and_then(|f| f.len())
                .unwrap_or(0);
        }

        let names = storage
            .list(&dir)
            .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        let mut segments: Vec<u64> = names
            .iter()
            .filter_map(|n| parse_segment_name(n))
            .filter(|&n| n >= manifest.wal_start)
            .collect();
        segments.sort_unstable();
        for (i, &n) in segments.iter().enumerate() {
            if n != manifest.wal_start + i as u64 {
                return Err(Error::corruption(
                    dir.join(segment_name(manifest.wal_start + i as u64)),
                    0,
                    "WAL segment missing",
                ));
            }
        }
        let mut wal_bytes = 0;
        let mut next_segment = segments.last().map_or(manifest.wal_start, |n| n + 1);
        for (i, &n) in segments.iter().enumerate() {
            let path = dir.join(segment_name(n));
            let bytes = storage
                .read(&path)
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            let last = i + 1 == segments.len();
            // Size the index for the segment's records up front, so replay
            // does not rehash the table doubling by doubling.
            if let Some(body) = bytes.get(format::SEGMENT_HEADER_LEN..) {
                index.reserve(format::count_frames(body));
            }
            let replayed = reader::replay(&path, n, &bytes, last, |group| {
                for change in group {
                    match *change {
                        Change::Set {
                            key,
                            value,
                            expires_at,
                        } => {
                            index.insert(key, value, expires_at);
                        }
                        Change::Delete { key } => {
                            index.remove(key);
                        }
                    }
                }
            })?;
            wal_bytes += replayed.valid_len;
            if replayed.torn && !opts.read_only {
                truncate(&*storage, &path, replayed.valid_len)?;
                if replayed.valid_len == 0 {
                    // The newest segment never got its header: it was
                    // removed, and its number is used again so the segments
                    // stay numbered without gaps.
                    next_segment = n;
                }
            }
        }

        index.trim();
        let writer = if opts.read_only {
            None
        } else {
            remove_stray_files(&*storage, &dir, &names, &manifest);
            Some(WalWriter::create(
                Arc::clone(&storage),
                &dir,
                next_segment,
                wal_bytes,
                opts.segment_size,
            )?)
        };

        let inner = Arc::new(Inner {
            opts,
            dir,
            storage,
            index: RwLock::new(index),
            writer: Mutex::new(writer),
            commit: GroupCommit::default(),
            state: AtomicU8::new(OPEN),
            poison: Mutex::new(None),
            counters: Counters::default(),
            manifest: Mutex::new(manifest),
            compaction: Mutex::new(()),
            snapshot_bytes: AtomicU64::new(snapshot_bytes),
            lock: Mutex::new(Some(lock)),
            signal: Arc::new(Signal::default()),
        });
        let workers = Workers::start(&inner);
        Ok(Db {
            handle: Arc::new(Handle {
                inner,
                workers: Mutex::new(Some(workers)),
            }),
        })
    }

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
    /// segments it covers. Reads and writes go on meanwhile.
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

    /// Stops the background threads, writes and fsyncs what is buffered,
    /// and releases the directory's lock. Later calls on any clone fail with
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
    let result = match inner.state.load(Ordering::Acquire) {
        OPEN if !inner.opts.read_only => inner.finish_wal(),
        OPEN => Ok(()),
        // Everything is released all the same; the caller learns that the
        // last writes may not be on disk.
        _ => Err(inner.poisoned()),
    };
    inner.state.store(CLOSED, Ordering::Release);
    inner.commit.wake_all();
    *inner.writer.lock().unwrap_or_else(|e| e.into_inner()) = None;
    *inner.index.write().unwrap_or_else(|e| e.into_inner()) = Index::new();
    *inner.lock.lock().unwrap_or_else(|e| e.into_inner()) = None;
    result
}

fn now_ms(opts: &Options) -> u64 {
    u64::try_from(opts.clock.now().as_millis()).unwrap_or(0)
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

fn truncate(storage: &dyn Storage, path: &Path, len: u64) -> Result<()> {
    if len == 0 {
        return storage.remove(path).map_err(|e| {
            Error::io(
                format!("removing the empty torn segment {}", path.display()),
                e,
            )
        });
    }
    let file = storage
        .open(path, crate::storage::OpenMode::Append)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    file.set_len(len)
        .and_then(|()| file.sync_data())
        .map_err(|e| Error::io(format!("truncating the torn tail of {}", path.display()), e))
}

/// Removes files a crash may have left: segments and snapshots the MANIFEST
/// no longer needs, and temporary files. Best effort.
fn remove_stray_files(storage: &dyn Storage, dir: &Path, names: &[String], manifest: &Manifest) {
    for name in names {
        let stray = name == MANIFEST_TMP
            || name.ends_with(".tmp")
            || parse_segment_name(name).is_some_and(|n| n < manifest.wal_start)
            || (parse_snapshot_name(name).is_some()
                && manifest.snapshot.as_deref() != Some(name.as_str()));
        if stray && name != MANIFEST {
            let _ = storage.remove(&dir.join(name));
        }
    }
}

impl Inner {
    pub(crate) fn now_ms(&self) -> u64 {
        now_ms(&self.opts)
    }

    pub(crate) fn read_index(&self) -> RwLockReadGuard<'_, Index> {
        // A panic while the index was locked for writing cannot leave it
        // half-changed: each change is applied by infallible map operations.
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_index(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn lock_writer(&self) -> MutexGuard<'_, Option<WalWriter>> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn visible(&self, e: &EntryRef<'_>, now: u64) -> bool {
        !self.opts.enforce_ttl || e.expires_at == 0 || e.expires_at > now
    }

    /// Like [`visible`](Self::visible), reading the clock only for entries
    /// that can expire.
    fn visible_now(&self, e: &EntryRef<'_>) -> bool {
        !self.opts.enforce_ttl || e.expires_at == 0 || e.expires_at > self.now_ms()
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        match self.state.load(Ordering::Acquire) {
            OPEN => Ok(()),
            CLOSED => Err(Error::Closed),
            _ => Err(self.poisoned()),
        }
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        self.check_open()?;
        if self.opts.read_only {
            return Err(Error::ReadOnly);
        }
        Ok(())
    }

    fn poisoned(&self) -> Error {
        let reason = self
            .poison
            .lock()
            .ok()
            .and_then(|p| p.clone())
            .unwrap_or_else(|| "an earlier write failed".into());
        Error::Poisoned { reason }
    }

    /// Stops all work after a failed write or fsync.
    pub(crate) fn poison(&self, cause: &Error) {
        if let Ok(mut p) = self.poison.lock() {
            if p.is_none() {
                *p = Some(cause.to_string());
            }
        }
        let _ = self
            .state
            .compare_exchange(OPEN, POISONED, Ordering::AcqRel, Ordering::Acquire);
        self.commit.wake_all();
    }

    fn start_sample(&self) -> Option<Instant> {
        crate::stats::sample_now(self.opts.latency_sample_every).then(Instant::now)
    }

    fn end_sample(&self, t0: Option<Instant>, read: bool) {
        if let Some(t0) = t0 {
            let h = if read {
                &self.counters.read_latency
            } else {
                &self.counters.write_latency
            };
            h.record(t0.elapsed());
        }
    }

    /// The write path. `decide` runs under the writer lock with a read view
    /// of the index and returns the writes and the result. The writes are
    /// appended to the WAL as one group, applied to the index, and — with
    /// `durable` in `Always` mode — fsynced before returning.
    pub(crate) fn commit_writes<'a, T>(
        &self,
        durable: bool,
        decide: impl FnOnce(&Index) -> Result<(Vec<Write<'a>>, T)>,
    ) -> Result<T> {
        let t0 = self.start_sample();
        self.check_writable()?;
        let waits = durable && self.opts.sync == SyncMode::Always;
        let _active = waits.then(|| ActiveWriter::enter(&self.commit.active));
        let mut guard = self.lock_writer();
        self.check_writable()?;
        let Some(wal) = guard.as_mut() else {
            return Err(Error::Closed);
        };
        let (writes, out) = {
            let index = self.read_index();
            decide(&index)?
        };
        if writes.is_empty() {
            return Ok(out);
        }
        let now = self.now_ms();
        let mut frames = Vec::with_capacity(
            writes
                .iter()
                .map(|w| match w {
                    Write::Set { key, value, .. } => format::encoded_len(key.len(), value.len()),
                    Write::Delete { key } => format::encoded_len(key.len(), 0),
                })
                .sum::<usize>()
                + 64,
        );
        let batch = writes.len() > 1;
        if batch {
            format::encode(
                &mut frames,
                &Record {
                    kind: Kind::BatchStart,
                    timestamp: now,
                    key: b"",
                    value: &(writes.len() as u32).to_le_bytes(),
                    expires_at: 0,
                },
            );
        }
        for w in &writes {
            let record = match w {
                Write::Set {
                    key,
                    value,
                    expires_at,
                } => Record {
                    kind: Kind::Set,
                    timestamp: now,
                    key,
                    value,
                    expires_at: *expires_at,
                },
                Write::Delete { key } => Record {
                    kind: Kind::Delete,
                    timestamp: now,
                    key,
                    value: b"",
                    expires_at: 0,
                },
            };
            format::encode(&mut frames, &record);
        }
        if batch {
            format::encode(
                &mut frames,
                &Record {
                    kind: Kind::BatchEnd,
                    timestamp: now,
                    key: b"",
                    value: b"",
                    expires_at: 0,
                },
            );
        }
        let seq = wal.append(&frames);
        self.commit.appended.store(seq, Ordering::Release);
        if wal.should_flush() {
            if let Err(e) = wal.flush() {
                self.poison(&e);
                return Err(e);
            }
        }
        {
            let mut index = self.write_index();
            let (mut sets, mut deletes) = (0, 0);
            for w in &writes {
                match w {
                    Write::Set {
                        key,
                        value,
                        expires_at,
                    } => {
                        index.insert(key, value, *expires_at);
                        sets += 1;
                    }
                    Write::Delete { key } => {
                        index.remove(key);
                        deletes += 1;
                    }
                }
            }
            Counters::add(&self.counters.writes, sets);
            Counters::add(&self.counters.deletes, deletes);
            if batch {
                Counters::add(&self.counters.batches, 1);
            }
        }
        if wal.segment_len() >= self.opts.segment_size {
            match wal.rotate() {
                Ok(_) => self.commit.mark_durable(wal.seq()),
                Err(e) => {
                    self.poison(&e);
                    return Err(e);
                }
            }
        }
        let compact = self.opts.background_compaction && wal.wal_bytes() > self.opts.max_wal_size;
        drop(guard);
        if compact {
            crate::workers::request_compaction(self);
        }
        if waits {
            self.wait_durable(seq)?;
        }
        self.end_sample(t0, false);
        Ok(out)
    }

    /// Removes keys expired at `now`, in rounds of at most 1024, until none
    /// is left or `deadline` passes.
    pub(crate) fn remove_expired(&self, now: Timestamp, deadline: Option<Instant>) -> Result<u64> {
        let now = to_expiry(Some(now));
        let mut removed = 0u64;
        loop {
            self.check_writable()?;
            let batch = self.read_index().expired(now, 1024);
            if batch.is_empty() {
                break;
            }
            let n = batch.len();
            removed += self.commit_writes(false, |index| {
                let writes = batch
                    .iter()
                    .filter(|k| {
                        index
                            .get(k)
                            .is_some_and(|e| e.expires_at != 0 && e.expires_at <= now)
                    })
                    .map(|k| Write::Delete {
                        key: Cow::Owned(k.clone()),
                    })
                    .collect::<Vec<_>>();
                let count = writes.len() as u64;
                Ok((writes, count))
            })?;
            if n < 1024 || deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
        }
        Counters::add(&self.counters.expired_removed, removed);
        Ok(removed)
    }

    /// Writes the buffer and fsyncs; returns the sequence number now
    /// durable.
    pub(crate) fn sync_now(&self) -> Result<u64> {
        let flushed = {
            let mut guard = self.lock_writer();
            match guard.as_mut() {
                Some(w) => w.flush(),
                None => return Ok(0),
            }
        };
        let result = flushed.and_then(|(file, upto)| {
            file.sync_data()
                .map_err(|e| Error::io(format!("syncing the WAL in {}", self.dir.display()), e))?;
            Counters::add(&self.counters.fsyncs, 1);
            Ok(upto)
        });
        match result {
            Ok(upto) => {
                self.commit.mark_durable(upto);
                Ok(upto)
            }
            Err(e) => {
                self.poison(&e);
                Err(e)
            }
        }
    }

    /// Writes what is buffered, cuts the active segment's preallocated tail
    /// and fsyncs (at close).
    fn finish_wal(&self) -> Result<()> {
        let mut guard = self.lock_writer();
        let Some(wal) = guard.as_mut() else {
            return Ok(());
        };
        match wal.finish() {
            Ok(_) => {
                Counters::add(&self.counters.fsyncs, 1);
                self.commit.mark_durable(wal.seq());
                Ok(())
            }
            Err(e) => {
                self.poison(&e);
                Err(e)
            }
        }
    }

    /// Waits until record `seq` is durable, leading an fsync when nobody
    /// else is.
    fn wait_durable(&self, seq: u64) -> Result<()> {
        let mut st = self.commit.lock();
        st.waiting += 1;
        let result = loop {
            if let Err(e) = self.check_open() {
                break Err(e);
            }
            if st.durable >= seq {
                break Ok(());
            }
            if st.leader {
                st = self.commit.cv.wait(st).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            st.leader = true;
            // Gather: when the last fsync covered several writers, they are
            // likely on their way back with new records; wait a moment (a
            // few yields, bounded) until about as many are appended, so one
            // fsync covers them all. A lone writer never waits.
            let target = self.commit.last_group.load(Ordering::Relaxed).max(1);
            let before = st.durable;
            let mut yields = 0;
            while self
                .commit
                .appended
                .load(Ordering::Acquire)
                .saturating_sub(before)
                < target
                && self.commit.active.load(Ordering::Acquire) > 1
                && yields < 64
            {
                drop(st);
                std::thread::yield_now();
                st = self.commit.lock();
                yields += 1;
            }
            drop(st);
            let synced = self.sync_now();
            st = self.commit.lock();
            st.leader = false;
            if let Ok(upto) = synced {
                self.commit
                    .last_group
                    .store(upto.saturating_sub(before), Ordering::Relaxed);
            }
            self.commit.cv.notify_all();
            if let Err(e) = synced {
                break Err(e);
            }
        };
        st.waiting -= 1;
        result
    }
}

/// Writes collected by [`Db::batch`], applied together or not at all.
#[derive(Debug)]
pub struct Batch<'db> {
    db: &'db Db,
    writes: Vec<Write<'static>>,
}

impl Batch<'_> {
    /// Adds a set (clearing any TTL).
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> &mut Self {
        self.push_set(key, value, 0)
    }

    /// Adds a set with a TTL.
    pub fn set_with_ttl(&mut self, key: &[u8], value: &[u8], ttl: Duration) -> &mut Self {
        let at = Timestamp::from_millis(self.db.inner().now_ms() as i64).saturating_add(ttl);
        self.push_set(key, value, to_expiry(Some(at)))
    }

    fn push_set(&mut self, key: &[u8], value: &[u8], expires_at: u64) -> &mut Self {
        self.writes.push(Write::Set {
            key: Cow::Owned(key.to_vec()),
            value: Cow::Owned(value.to_vec()),
            expires_at,
        });
        self
    }

    /// Adds a delete.
    pub fn delete(&mut self, key: &[u8]) -> &mut Self {
        self.writes.push(Write::Delete {
            key: Cow::Owned(key.to_vec()),
        });
        self
    }

    /// Number of writes.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Applies every write atomically: after a crash, all or none of them
    /// are there.
    pub fn write(self) -> Result<()> {
        for w in &self.writes {
            check_key(w.key())?;
            if let Write::Set { value, .. } = w {
                check_value(value)?;
            }
        }
        let writes = self.writes;
        self.db.inner().commit_writes(true, |_| Ok((writes, ())))
    }

    /// Drops the batch without writing anything.
    pub fn discard(self) {}
}

/// The view a [`Db::transaction`] works in.
#[derive(Debug)]
pub struct Txn<'a> {
    index: &'a Index,
    /// Pending writes by key: `Some((value, expires_at))` or `None` for a
    /// delete.
    overlay: HashMap<Vec<u8>, Option<(Vec<u8>, u64)>>,
    writes: Vec<Write<'static>>,
    now: u64,
    enforce_ttl: bool,
}

impl Txn<'_> {
    /// The value and expiry (0 = never) of `key` as this transaction sees
    /// it; expired entries are hidden when the engine enforces TTL.
    pub fn get(&self, key: &[u8]) -> Option<(Vec<u8>, u64)> {
        let (v, e) = self.get_raw(key)?;
        if self.enforce_ttl && e != 0 && e <= self.now {
            return None;
        }
        Some((v, e))
    }

    /// Like [`get`](Self::get) but expired entries are returned too.
    pub fn get_raw(&self, key: &[u8]) -> Option<(Vec<u8>, u64)> {
        match self.overlay.get(key) {
            Some(pending) => pending.clone(),
            None => self
                .index
                .get(key)
                .map(|e| (e.value.to_vec(), e.expires_at)),
        }
    }

    /// Calls `f` with the stored bytes of `key` (expired included) without
    /// copying them.
    pub fn peek<T>(&self, key: &[u8], f: impl FnOnce(Option<(&[u8], u64)>) -> T) -> T {
        match self.overlay.get(key) {
            Some(Some((v, e))) => f(Some((v, *e))),
            Some(None) => f(None),
            None => f(self.index.get(key).map(|e| (e.value, e.expires_at))),
        }
    }

    /// Sets `key` (`expires_at` in ms since the epoch, 0 = never).
    pub fn set(&mut self, key: &[u8], value: &[u8], expires_at: u64) {
        self.overlay
            .insert(key.to_vec(), Some((value.to_vec(), expires_at)));
        self.writes.push(Write::Set {
            key: Cow::Owned(key.to_vec()),
            value: Cow::Owned(value.to_vec()),
            expires_at,
        });
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: &[u8]) {
        self.overlay.insert(key.to_vec(), None);
        self.writes.push(Write::Delete {
            key: Cow::Owned(key.to_vec()),
        });
    }

    /// Up to `limit` keys (with their expiry) in the range, in order, as
    /// stored before this transaction (its own writes are not seen).
    pub fn range_keys(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Vec<(Vec<u8>, u64)> {
        self.index
            .range(start, end)
            .take(limit)
            .map(|e| (e.key.to_vec(), e.expires_at))
            .collect()
    }

    /// The time the transaction runs at (ms since the epoch).
    pub fn now(&self) -> u64 {
        self.now
    }
}
