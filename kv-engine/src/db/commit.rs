//! The shared state behind a [`Db`](super::Db) and the write path: one
//! writer at a time appends to the WAL buffer and applies to the index,
//! then waits for a group commit fsync; poisoning after a failure.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use kv_core::Timestamp;

use crate::error::{Error, Result};
use crate::index::{EntryRef, Index};
use crate::manifest::Manifest;
use crate::options::{Options, SyncMode};
use crate::stats::Counters;
use crate::storage::{LockGuard, Storage};
use crate::wal::format::{self, Kind, Record};
use crate::wal::writer::WalWriter;
use crate::workers::Signal;

use super::{to_expiry, Write, CLOSED, OPEN, POISONED};

/// What the group-commit lock guards besides the condvar protocol.
#[derive(Debug, Default)]
pub(crate) struct CommitState {
    /// How long the last fsync took: a leader gathers writers for at most
    /// as long.
    last_sync: Duration,
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
    /// Every record up to this sequence number is durable. Changed under
    /// the state lock (so a waiter that checks it there cannot miss the
    /// wake-up), read without it by waiters polling for an fsync's end.
    durable: AtomicU64,
    /// A writer is leading an fsync; changed under the state lock, like
    /// `durable`.
    leading: AtomicBool,
}

/// The longest a group-commit leader waits for other writers before its
/// fsync.
const MAX_GATHER: Duration = Duration::from_millis(1);

/// Counts a durable writer in [`GroupCommit::active`] for its lifetime.
struct ActiveWriter<'a>(&'a AtomicUsize);

impl<'a> ActiveWriter<'a> {
    pub(crate) fn enter(active: &'a AtomicUsize) -> Self {
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
    pub(crate) fn lock(&self) -> MutexGuard<'_, CommitState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks everything up to `seq` durable.
    pub(crate) fn mark_durable(&self, seq: u64) {
        let st = self.lock();
        self.durable.fetch_max(seq, Ordering::AcqRel);
        drop(st);
        self.cv.notify_all();
    }

    pub(crate) fn wake_all(&self) {
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
    pub(crate) state: AtomicU8,
    pub(crate) poison: Mutex<Option<String>>,
    pub(crate) counters: Counters,
    pub(crate) manifest: Mutex<Manifest>,
    pub(crate) compaction: Mutex<()>,
    pub(crate) snapshot_bytes: AtomicU64,
    pub(crate) lock: Mutex<Option<Box<dyn LockGuard>>>,
    pub(crate) signal: Arc<Signal>,
}

pub(crate) fn now_ms(opts: &Options) -> u64 {
    u64::try_from(opts.clock.now().as_millis()).unwrap_or(0)
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

    pub(crate) fn write_index(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn lock_writer(&self) -> MutexGuard<'_, Option<WalWriter>> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn visible(&self, e: &EntryRef<'_>, now: u64) -> bool {
        !self.opts.enforce_ttl || e.expires_at == 0 || e.expires_at > now
    }

    /// Like [`visible`](Self::visible), reading the clock only for entries
    /// that can expire.
    pub(crate) fn visible_now(&self, e: &EntryRef<'_>) -> bool {
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

    pub(crate) fn poisoned(&self) -> Error {
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

    pub(crate) fn start_sample(&self) -> Option<Instant> {
        crate::stats::sample_now(self.opts.latency_sample_every).then(Instant::now)
    }

    pub(crate) fn end_sample(&self, t0: Option<Instant>, read: bool) {
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
    ///
    /// Fails with [`Error::Closed`] or [`Error::Poisoned`] when the engine
    /// may no longer write: callers (compaction above all) rely on `Ok`
    /// meaning that what they saw in the index is durable, and after a
    /// failed fsync a second one may report success for data that was lost.
    pub(crate) fn sync_now(&self) -> Result<u64> {
        let flushed = {
            let mut guard = self.lock_writer();
            self.check_open()?;
            match guard.as_mut() {
                Some(w) => w.flush(),
                None => return Err(Error::Closed),
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
    /// and fsyncs (at close, which holds the writer lock across this and
    /// marking the engine closed, so no write slips in between).
    pub(crate) fn finish_wal(&self, wal: &mut WalWriter) -> Result<()> {
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
    pub(crate) fn wait_durable(&self, seq: u64) -> Result<()> {
        let commit = &self.commit;
        let durable = || commit.durable.load(Ordering::Acquire);
        let leading = || commit.leading.load(Ordering::Acquire);
        let mut st = commit.lock();
        loop {
            // Durability first: a write already fsynced (by a leader, or by
            // `close`) succeeded even if the engine was closed or poisoned
            // afterwards.
            if durable() >= seq {
                return Ok(());
            }
            self.check_open()?;
            if leading() {
                // Poll (yielding) while the leader's fsync runs: the cores
                // are idle during it, and a poller sees it end without a
                // futex wake-up, which costs tens of microseconds on a VM.
                // Bounded by twice the last fsync; then sleep.
                let until = Instant::now() + 2 * st.last_sync.min(MAX_GATHER);
                drop(st);
                while durable() < seq && leading() && Instant::now() < until {
                    std::thread::yield_now();
                }
                st = commit.lock();
                if leading() && durable() < seq && self.check_open().is_ok() {
                    st = commit.cv.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                continue;
            }
            commit.leading.store(true, Ordering::Release);
            // Gather: every writer inside `commit_writes` has one record in
            // flight, or is on its way back from the last group with its
            // next one. Wait, yielding the core to them, until each has
            // appended a record that the last fsync did not cover, so one
            // fsync covers them all. A writer between two calls is not
            // counted and catches the next group; a lone writer never waits;
            // the wait is bounded by the duration of the last fsync.
            let before = durable();
            let deadline = Instant::now() + st.last_sync.min(MAX_GATHER);
            drop(st);
            while commit
                .appended
                .load(Ordering::Acquire)
                .saturating_sub(before)
                < commit.active.load(Ordering::Acquire) as u64
                && Instant::now() < deadline
            {
                std::thread::yield_now();
            }
            let t0 = Instant::now();
            let synced = self.sync_now();
            let took = t0.elapsed();
            st = commit.lock();
            commit.leading.store(false, Ordering::Release);
            st.last_sync = took;
            commit.cv.notify_all();
            if let Err(e) = synced {
                // `close` may have made it durable after all.
                if durable() >= seq {
                    return Ok(());
                }
                return Err(e);
            }
        }
    }
}
