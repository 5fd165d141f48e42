//! [`CacheLayer`]: a `Backend` that caches another.
//!
//! Rules, in order of importance:
//!
//! 1. **Writes go to the backend first.** Only when the backend has taken a
//!    write does the cache change: a written record replaces the cached
//!    one, a delete removes it (or caches "not found" with negative
//!    caching). A write that fails leaves the cache as it was (one that
//!    only drops keys afterwards, such as `delete_keys`, `delete_range` or
//!    an in-place append, drops them on a failure too); a write whose
//!    precondition failed proves the cached copy stale and removes it; a
//!    write whose caller stops waiting (its future dropped) may have been
//!    taken, so it removes what it touched.
//! 2. **Batches, increments and range deletes** refresh or remove exactly
//!    the keys they touched (a range delete: every cached key in the range).
//! 3. **Freshness**: an entry is served for at most `ttl` after the backend
//!    call that produced it began (by the store's clock), and never once
//!    the record's own `expires_at` has passed: then the backend is asked
//!    again.
//! 4. Scans, counts and listings go to the backend; reads of single keys
//!    (`read`, `read_value`, `read_many`) are served from the cache.
//!
//! So a handle sees its own writes at once, and writes made elsewhere (other
//! processes, other handles on the backend) within `ttl`.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use quick_cache::sync::Cache;
use quick_cache::{Lifecycle, Weighter};

use kv_core::backend::{
    Backend, BackendStats, BatchOp, BatchOutcome, BatchPlan, Capabilities, Cooperation,
    DeleteOutcome, KeyInfo, KeyRange, PlannedOutcome, Precondition, WriteOutcome,
};
use kv_core::metadata::MetadataFilter;
use kv_core::record::StoredValue;
use kv_core::{Error, Record, Result, Timestamp, Value};

use crate::disk::DiskTier;
use crate::options::CacheOptions;

/// A key a batch writes: `(namespace, key, record)`, `None` for a delete.
type TouchedKey = (String, String, Option<Record>);
/// The keys a batch writes, in its order.
type Touched = Vec<TouchedKey>;

fn touched_by(ops: &[BatchOp]) -> Touched {
    ops.iter()
        .map(|op| match op {
            BatchOp::Put { record, .. } => (
                record.namespace.to_string(),
                record.key.clone(),
                Some(record.clone()),
            ),
            BatchOp::Delete { namespace, key, .. } => (namespace.clone(), key.clone(), None),
        })
        .collect()
}

/// What the memory tier holds for a key.
#[derive(Debug, Clone)]
struct Slot {
    /// The record, or `None` for a cached "not found".
    record: Option<Arc<Record>>,
    cached_at: Timestamp,
}

/// Rough bytes an entry takes: key, value, metadata and bookkeeping.
fn bytes(key: &str, slot: &Slot) -> u64 {
    let record = slot.record.as_ref().map_or(0, |r| {
        r.value.len() + r.namespace.len() + r.key.len() + 64 * r.user.len() + 160
    });
    (key.len() + record + 48) as u64
}

/// Weighs the memory tier's entries. Bounded by count (`floor` 0), every
/// entry weighs one; bounded by bytes, an entry weighs its [`bytes`] but at
/// least `floor` = `max_bytes / capacity`, so no more than `capacity`
/// entries fit in `max_bytes` either.
#[derive(Debug, Clone, Copy)]
struct SlotWeight {
    floor: u64,
}

impl Weighter<Box<str>, Slot> for SlotWeight {
    fn weight(&self, key: &Box<str>, slot: &Slot) -> u64 {
        match self.floor {
            0 => 1,
            floor => bytes(key, slot).max(floor),
        }
    }
}

/// Counts the entries the memory tier evicts to stay in its bound.
#[derive(Debug, Clone)]
struct CountEvictions(Arc<AtomicU64>);

impl Lifecycle<Box<str>, Slot> for CountEvictions {
    type RequestState = ();

    fn begin_request(&self) -> Self::RequestState {}

    fn on_evict(&self, _state: &mut (), _key: Box<str>, _slot: Slot) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// The memory tier: a sharded concurrent cache (quick_cache's CLOCK-Pro
/// variant) keyed by `namespace 0x00 key`.
type MemTier = Cache<Box<str>, Slot, SlotWeight, foldhash::fast::RandomState, CountEvictions>;

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    inserts: AtomicU64,
    evictions: Arc<AtomicU64>,
    invalidations: AtomicU64,
    disk_hits: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A caching `Backend` over another `Backend`.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use kv_cache::{CacheLayer, CacheOptions};
/// use kv_core::{KVStore, MemoryBackend, Store};
///
/// let layer = CacheLayer::new(Arc::new(MemoryBackend::new()), CacheOptions::new().capacity(1000))?;
/// let store = Store::new(Arc::new(layer));
/// store.set("k", 1.into()).await?;
/// store.get("k").await?; // served from the cache
/// let stats = store.stats().await?.backend;
/// assert_eq!(stats.backend, "cache");
/// assert!(stats.fields["hits"].as_u64().unwrap() >= 1);
/// # Ok::<(), kv_core::Error>(())
/// # });
/// ```
#[derive(Clone)]
pub struct CacheLayer {
    inner: Arc<dyn Backend>,
    mem: Arc<MemTier>,
    disk: Option<Arc<DiskTier>>,
    options: CacheOptions,
    counters: Arc<Counters>,
    /// Change counters, one per stripe of keys: bumped by every change of
    /// a key's entry after a write. A read fills the cache only when its
    /// stripe did not move while it read the backend, and a write only
    /// caches what it wrote when no other change of its stripe came in
    /// between; otherwise the entry is dropped. So an answer read (or
    /// written) before a newer write can never land after it.
    stripes: Arc<[std::sync::Mutex<u64>]>,
}

/// Stripes of [`CacheLayer::stripes`].
const STRIPES: usize = 256;

impl std::fmt::Debug for CacheLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheLayer")
            .field("inner", &self.inner.name())
            .field("options", &self.options)
            .field("entries", &self.mem.len())
            .finish()
    }
}

/// `namespace 0x00 key`: the memory tier's key, written into `out`.
fn compose(out: &mut String, ns: &str, key: &str) {
    out.clear();
    out.push_str(ns);
    out.push('\0');
    out.push_str(key);
}

/// [`compose`] into a new string.
fn mem_key(ns: &str, key: &str) -> String {
    let mut out = String::with_capacity(ns.len() + 1 + key.len());
    compose(&mut out, ns, key);
    out
}

fn split(k: &str) -> Option<(&str, &str)> {
    k.split_once('\0')
}

impl CacheLayer {
    /// Wraps `inner`. Opens the disk tier when configured (dropping its
    /// entries older than `ttl`).
    pub fn new(inner: Arc<dyn Backend>, options: CacheOptions) -> Result<CacheLayer> {
        if options.capacity == 0 {
            return Err(Error::config("cache.capacity", "must be at least 1"));
        }
        let counters = Arc::new(Counters::default());
        let evictions = CountEvictions(Arc::clone(&counters.evictions));
        let (floor, bound) = match options.max_bytes {
            Some(max_bytes) => (max_bytes.div_ceil(options.capacity).max(1), max_bytes),
            None => (0, options.capacity),
        };
        let tier = quick_cache::OptionsBuilder::new()
            .estimated_items_capacity(usize::try_from(options.capacity).unwrap_or(usize::MAX))
            .weight_capacity(bound)
            .build()
            .map_err(|e| Error::config("cache.capacity", format!("{e:?}")))?;
        let mem = Arc::new(Cache::with_options(
            tier,
            SlotWeight { floor },
            foldhash::fast::RandomState::default(),
            evictions,
        ));
        let disk = match &options.disk {
            Some(d) => {
                let oldest = Timestamp::from_millis(
                    options.clock.now().as_millis()
                        - i64::try_from(options.ttl.as_millis()).unwrap_or(i64::MAX),
                );
                Some(Arc::new(DiskTier::open(d, oldest)?))
            }
            None => None,
        };
        Ok(CacheLayer {
            inner,
            mem,
            disk,
            options,
            counters,
            stripes: (0..STRIPES).map(|_| std::sync::Mutex::new(0)).collect(),
        })
    }

    /// The backend beneath.
    pub fn inner(&self) -> &Arc<dyn Backend> {
        &self.inner
    }

    fn now(&self) -> Timestamp {
        self.options.clock.now()
    }

    fn fresh(&self, cached_at: Timestamp, record: Option<&Record>, now: Timestamp) -> bool {
        now.duration_since(cached_at) < self.options.ttl
            && !record.is_some_and(|r| r.is_expired(now))
    }

    /// The cached answer for a key, when there is a fresh one: `Some(None)`
    /// is a cached "not found".
    fn lookup(&self, ns: &str, key: &str, now: Timestamp) -> Result<Option<Option<Arc<Record>>>> {
        thread_local! {
            static BUF: RefCell<String> = const { RefCell::new(String::new()) };
        }
        let slot = BUF.with(|b| {
            let mut b = b.borrow_mut();
            compose(&mut b, ns, key);
            self.mem.get(b.as_str())
        });
        if let Some(slot) = slot {
            if self.fresh(slot.cached_at, slot.record.as_deref(), now) {
                bump(&self.counters.hits);
                return Ok(Some(slot.record));
            }
            // Stale; `forget` drops the disk copy too, so there is nothing
            // more to look at.
            self.forget(ns, key)?;
            bump(&self.counters.misses);
            return Ok(None);
        }
        if let Some(disk) = &self.disk {
            // Under the key's stripe: a write settling at the same time
            // changes both tiers, so the disk copy read here is current;
            // and a range drop waits for the promotion before it sweeps
            // memory (`forget_range`).
            let _stripe = self.stripe(ns, key);
            if let Some((cached_at, record)) = disk.get(ns, key)? {
                if self.fresh(cached_at, record.as_ref(), now) {
                    bump(&self.counters.hits);
                    bump(&self.counters.disk_hits);
                    let record = record.map(Arc::new);
                    self.cache_slot(ns, key, record.clone(), cached_at);
                    return Ok(Some(record));
                }
                disk.remove(ns, key)?;
            }
        }
        bump(&self.counters.misses);
        Ok(None)
    }

    /// Caches an answer from the backend (a "not found" only with negative
    /// caching).
    fn remember(
        &self,
        ns: &str,
        key: &str,
        record: Option<Record>,
        now: Timestamp,
    ) -> Result<Option<Arc<Record>>> {
        if record.is_none() && !self.options.negative {
            return Ok(None);
        }
        let record = record.map(Arc::new);
        if let Some(disk) = &self.disk {
            disk.put(ns, key, now, record.as_deref())?;
        }
        self.cache_slot(ns, key, record.clone(), now);
        bump(&self.counters.inserts);
        Ok(record)
    }

    fn cache_slot(&self, ns: &str, key: &str, record: Option<Arc<Record>>, cached_at: Timestamp) {
        self.mem.insert(
            mem_key(ns, key).into_boxed_str(),
            Slot { record, cached_at },
        );
    }

    fn stripe_index(&self, ns: &str, key: &str) -> usize {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (ns, key).hash(&mut h);
        (h.finish() % self.stripes.len() as u64) as usize
    }

    fn stripe(&self, ns: &str, key: &str) -> std::sync::MutexGuard<'_, u64> {
        self.stripes[self.stripe_index(ns, key)]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The change count of a key's stripe, taken before a backend call.
    fn seen(&self, ns: &str, key: &str) -> u64 {
        *self.stripe(ns, key)
    }

    /// Caches what a read returned, unless the key's stripe changed since
    /// `seen` (a write may have come in after the read).
    fn fill(
        &self,
        ns: &str,
        key: &str,
        record: Option<Record>,
        now: Timestamp,
        seen: u64,
    ) -> Result<()> {
        let stripe = self.stripe(ns, key);
        if *stripe == seen {
            self.remember(ns, key, record, now)?;
        }
        Ok(())
    }

    /// After a write the backend took (`Some(record)`, or `None` for a
    /// delete): caches it when nothing else changed the key's stripe since
    /// `seen`, else drops the entry; either way a change.
    fn settle(
        &self,
        ns: &str,
        key: &str,
        written: Option<Record>,
        now: Timestamp,
        seen: u64,
    ) -> Result<()> {
        let mut stripe = self.stripe(ns, key);
        let out = self.settle_unlocked(*stripe == seen, ns, key, written, now);
        *stripe += 1;
        out
    }

    /// What [`settle`](Self::settle) does to the entry, under its stripe:
    /// caches the write when the stripe is `unchanged` since the write
    /// began (a delete only with negative caching), else drops the entry.
    fn settle_unlocked(
        &self,
        unchanged: bool,
        ns: &str,
        key: &str,
        written: Option<Record>,
        now: Timestamp,
    ) -> Result<()> {
        if unchanged && (written.is_some() || self.options.negative) {
            self.remember(ns, key, written, now).map(|_| ())
        } else {
            self.forget_unlocked(ns, key)
        }
    }

    /// [`settle`](Self::settle) for every key one batch wrote, in order,
    /// with each `seen` taken before the batch. Each stripe changes once,
    /// after all of the batch's keys in it are settled: were it changed per
    /// key, the batch's own keys sharing a stripe would look raced to each
    /// other and be dropped instead of cached.
    fn settle_batch(&self, written: Vec<(u64, TouchedKey)>, now: Timestamp) -> Result<()> {
        let mut by_stripe: Vec<(usize, u64, TouchedKey)> = written
            .into_iter()
            .map(|(seen, t)| (self.stripe_index(&t.0, &t.1), seen, t))
            .collect();
        // Stable: a key written twice keeps its order.
        by_stripe.sort_by_key(|(i, _, _)| *i);
        let mut first_error = None;
        let mut keys = by_stripe.into_iter().peekable();
        while let Some(&(i, _, _)) = keys.peek() {
            let mut stripe = self.stripes[i].lock().unwrap_or_else(|e| e.into_inner());
            while let Some((_, seen, (ns, key, record))) = keys.next_if(|(j, _, _)| *j == i) {
                let out = self.settle_unlocked(*stripe == seen, &ns, &key, record, now);
                if let (Err(e), None) = (out, &first_error) {
                    first_error = Some(e);
                }
            }
            *stripe += 1;
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Drops a key from both tiers (a change of its stripe).
    fn forget(&self, ns: &str, key: &str) -> Result<()> {
        let mut stripe = self.stripe(ns, key);
        let out = self.forget_unlocked(ns, key);
        *stripe += 1;
        out
    }

    /// Drops a key from both tiers, disk first (as [`forget_range`]
    /// does); the memory entry goes even when the disk fails.
    ///
    /// [`forget_range`]: Self::forget_range
    fn forget_unlocked(&self, ns: &str, key: &str) -> Result<()> {
        let disk = self.disk.as_ref().map_or(Ok(()), |d| d.remove(ns, key));
        self.mem.remove(mem_key(ns, key).as_str());
        bump(&self.counters.invalidations);
        disk
    }

    /// Changes every stripe, waiting for whatever holds one.
    fn advance_stripes(&self) {
        for stripe in self.stripes.iter() {
            *stripe.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        }
    }

    /// After the backend changed the keys of `range` in `ns`: drops every
    /// cached key of the range from both tiers. The memory entries go even
    /// when the disk fails.
    fn forget_range(&self, ns: &str, range: &KeyRange) -> Result<()> {
        // Every stripe changes first: a read that fetched a key before the
        // backend changed it must not cache its answer now, nor a write
        // that the backend took before the change cache what it wrote.
        self.advance_stripes();
        if let Some(disk) = &self.disk {
            // The disk tier before memory: a lookup that misses memory
            // promotes the key's disk entry into memory, so clearing memory
            // first would let one come back.
            let removed = disk.remove_range(ns, range);
            // A lookup promotes under its key's stripe lock. Taking every
            // stripe once more waits for any lookup that read a disk entry
            // before it was removed: its promotion is in memory by now,
            // where the sweep below finds it. Lookups after this find none.
            self.advance_stripes();
            self.drop_from_memory(ns, range);
            return removed;
        }
        self.drop_from_memory(ns, range);
        Ok(())
    }

    /// Drops the memory entries of `range` in `ns`.
    fn drop_from_memory(&self, ns: &str, range: &KeyRange) {
        self.mem
            .retain(|k, _| !split(k).is_some_and(|(n, key)| n == ns && range.contains(key)));
        bump(&self.counters.invalidations);
    }

    /// Flushes the disk tier, if any: an fsync, so on a blocking thread
    /// when there is a Tokio runtime to lend one.
    async fn flush_disk(&self) -> Result<()> {
        let Some(disk) = self.disk.clone() else {
            return Ok(());
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => rt.spawn_blocking(move || disk.flush()).await.map_err(|e| {
                Error::backend("cache", false, format!("flushing the disk tier: {e}"))
            })?,
            Err(_) => disk.flush(),
        }
    }

    /// A guard that drops `key` from the cache (a change of its stripe) if
    /// the call holding it is cancelled.
    fn until_settled<'a>(
        &'a self,
        ns: &'a str,
        key: &'a str,
    ) -> Unsettled<impl FnOnce() -> Result<()> + 'a> {
        Unsettled::new(move || self.forget(ns, key))
    }
}

/// Runs `undo` when dropped, unless [`disarm`](Self::disarm)ed.
///
/// A caller may drop a write's future at any `.await`, and the backend may
/// have committed by then: the cache would keep the old entry, and the
/// handle not see its own write for up to `ttl`. So each call that changes
/// the backend arms one of these before the backend call, to drop the keys
/// it touches (changing their stripes, so no read in flight caches an
/// older answer either). A call whose settling is to cache what it wrote
/// disarms it once the cache is settled, or when the backend failed (a
/// failed write leaves the cache as it was); a settling that fails
/// half-way leaves it armed, which drops the keys. A call whose settling
/// is to drop the keys runs the guard itself ([`run_now`](Self::run_now)).
/// Errors of an undo run on drop go nowhere: the memory entries are gone
/// by then even when the disk tier failed.
struct Unsettled<F: FnOnce() -> Result<()>> {
    undo: Option<F>,
}

impl<F: FnOnce() -> Result<()>> Unsettled<F> {
    fn new(undo: F) -> Self {
        Unsettled { undo: Some(undo) }
    }

    /// Passes the backend's answer on; an error disarms the guard.
    fn answer<T>(&mut self, answer: Result<T>) -> Result<T> {
        if answer.is_err() {
            self.undo = None;
        }
        answer
    }

    /// The cache is settled: nothing to undo.
    fn disarm(mut self) {
        self.undo = None;
    }

    /// Drops the keys now: that is how this call settles.
    fn run_now(mut self) -> Result<()> {
        self.undo.take().map_or(Ok(()), |undo| undo())
    }
}

impl<F: FnOnce() -> Result<()>> Drop for Unsettled<F> {
    fn drop(&mut self) {
        if let Some(undo) = self.undo.take() {
            let _ = undo();
        }
    }
}

#[async_trait]
impl Backend for CacheLayer {
    fn name(&self) -> &str {
        "cache"
    }

    fn capabilities(&self) -> Capabilities {
        let mut c = self.inner.capabilities();
        // Hits are answered on the worker thread, without blocking in place.
        c.cooperation = Cooperation::Budget;
        c
    }

    async fn read(&self, namespace: &str, key: &str) -> Result<Option<Record>> {
        let now = self.now();
        if let Some(hit) = self.lookup(namespace, key, now)? {
            return Ok(hit.map(|r| (*r).clone()));
        }
        let seen = self.seen(namespace, key);
        let record = self.inner.read(namespace, key).await?;
        self.fill(namespace, key, record.clone(), now, seen)?;
        Ok(record)
    }

    async fn read_for_set(&self, namespace: &str, key: &str) -> Result<Option<Record>> {
        let now = self.now();
        if let Some(hit) = self.lookup(namespace, key, now)? {
            return Ok(hit.map(|r| (*r).clone()));
        }
        // The backend's answer may lack the value: it never fills the cache.
        self.inner.read_for_set(namespace, key).await
    }

    async fn read_value(&self, namespace: &str, key: &str) -> Result<Option<StoredValue>> {
        let now = self.now();
        if let Some(hit) = self.lookup(namespace, key, now)? {
            return Ok(hit.map(|r| r.stored_value()));
        }
        // A miss reads the whole record, so the entry can serve any read.
        let seen = self.seen(namespace, key);
        let record = self.inner.read(namespace, key).await?;
        let stored = record.as_ref().map(Record::stored_value);
        self.fill(namespace, key, record, now, seen)?;
        Ok(stored)
    }

    async fn read_many(&self, namespace: &str, keys: &[String]) -> Result<Vec<Option<Record>>> {
        let now = self.now();
        let mut out: Vec<Option<Option<Record>>> = Vec::with_capacity(keys.len());
        let mut missing = Vec::new();
        for key in keys {
            match self.lookup(namespace, key, now)? {
                Some(hit) => out.push(Some(hit.map(|r| (*r).clone()))),
                None => {
                    missing.push((key.clone(), self.seen(namespace, key)));
                    out.push(None);
                }
            }
        }
        if !missing.is_empty() {
            let keys: Vec<String> = missing.iter().map(|(k, _)| k.clone()).collect();
            let fetched = self.inner.read_many(namespace, &keys).await?;
            let mut fetched = missing.into_iter().zip(fetched);
            for slot in out.iter_mut().filter(|s| s.is_none()) {
                if let Some(((key, seen), record)) = fetched.next() {
                    self.fill(namespace, &key, record.clone(), now, seen)?;
                    *slot = Some(record);
                }
            }
        }
        Ok(out.into_iter().map(Option::flatten).collect())
    }

    async fn write(&self, record: Record, precondition: Precondition) -> Result<WriteOutcome> {
        let (ns, key) = (record.namespace.clone(), record.key.clone());
        let (ns, key) = (&*ns, key.as_str());
        let copy = record.clone();
        // Before the backend call: `ttl` counts from before the write.
        let now = self.now();
        let seen = self.seen(ns, key);
        let mut pending = self.until_settled(ns, key);
        let outcome = pending.answer(self.inner.write(record, precondition).await)?;
        match outcome {
            WriteOutcome::Written => self.settle(ns, key, Some(copy), now, seen)?,
            // The cached copy (if any) was what the writer decided on, and
            // it was stale.
            WriteOutcome::PreconditionFailed => self.forget(ns, key)?,
        }
        pending.disarm();
        Ok(outcome)
    }

    async fn delete(
        &self,
        namespace: &str,
        key: &str,
        precondition: Precondition,
    ) -> Result<DeleteOutcome> {
        let now = self.now();
        let seen = self.seen(namespace, key);
        let mut pending = self.until_settled(namespace, key);
        let outcome = pending.answer(self.inner.delete(namespace, key, precondition).await)?;
        match outcome {
            DeleteOutcome::Deleted { .. } | DeleteOutcome::NotFound => {
                self.settle(namespace, key, None, now, seen)?
            }
            DeleteOutcome::PreconditionFailed => self.forget(namespace, key)?,
        }
        pending.disarm();
        Ok(outcome)
    }

    async fn scan(
        &self,
        namespace: &str,
        range: &KeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>> {
        self.inner.scan(namespace, range, after, limit).await
    }

    async fn scan_keys(
        &self,
        namespace: &str,
        range: &KeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KeyInfo>> {
        self.inner.scan_keys(namespace, range, after, limit).await
    }

    async fn scan_matching(
        &self,
        namespace: &str,
        range: &KeyRange,
        after: Option<&str>,
        limit: usize,
        filter: &MetadataFilter,
    ) -> Result<Vec<Record>> {
        self.inner
            .scan_matching(namespace, range, after, limit, filter)
            .await
    }

    async fn apply(&self, ops: Vec<BatchOp>) -> Result<BatchOutcome> {
        let now = self.now();
        let touched: Vec<(u64, TouchedKey)> = touched_by(&ops)
            .into_iter()
            .map(|t| (self.seen(&t.0, &t.1), t))
            .collect();
        let keys: Vec<(String, String)> = touched
            .iter()
            .map(|(_, (ns, key, _))| (ns.clone(), key.clone()))
            .collect();
        let mut pending = Unsettled::new(move || {
            keys.iter()
                .map(|(ns, key)| self.forget(ns, key))
                .fold(Ok(()), Result::and)
        });
        let outcome = pending.answer(self.inner.apply(ops).await)?;
        match outcome {
            BatchOutcome::Applied => self.settle_batch(touched, now)?,
            BatchOutcome::PreconditionFailed { .. } => {
                for (_, (ns, key, _)) in touched {
                    self.forget(&ns, &key)?;
                }
            }
        }
        pending.disarm();
        Ok(outcome)
    }

    async fn apply_planned(
        &self,
        namespace: &str,
        keys: &[String],
        plan: BatchPlan,
    ) -> Result<PlannedOutcome> {
        // The backend reads and writes in one step (a transaction where it
        // has one); the wrapped plan keeps what it decided, so the cache
        // can then be refreshed with exactly the records written.
        let decided: Arc<std::sync::Mutex<Touched>> = Arc::default();
        let wrapped: BatchPlan = {
            let decided = Arc::clone(&decided);
            Box::new(move |physical| {
                let ops = plan(physical)?;
                if let (Some(ops), Ok(mut slot)) = (&ops, decided.lock()) {
                    *slot = touched_by(ops);
                }
                Ok(ops)
            })
        };
        let now = self.now();
        let seen: std::collections::HashMap<&str, u64> = keys
            .iter()
            .map(|k| (k.as_str(), self.seen(namespace, k)))
            .collect();
        let mut pending = Unsettled::new(|| {
            let decided = decided.lock().unwrap_or_else(|e| e.into_inner());
            keys.iter()
                .map(|key| self.forget(namespace, key))
                // Writes the plan decided on outside `keys`, if any.
                .chain(decided.iter().map(|(ns, key, _)| self.forget(ns, key)))
                .fold(Ok(()), Result::and)
        });
        let outcome = pending.answer(self.inner.apply_planned(namespace, keys, wrapped).await)?;
        let touched = decided.lock().map(|mut t| std::mem::take(&mut *t));
        match (outcome, touched) {
            (PlannedOutcome::Applied { .. }, Ok(touched)) => {
                let mut written = Vec::with_capacity(touched.len());
                for (ns, key, record) in touched {
                    match seen.get(key.as_str()) {
                        Some(&seen) if ns == namespace => written.push((seen, (ns, key, record))),
                        _ => self.forget(&ns, &key)?,
                    }
                }
                self.settle_batch(written, now)?;
            }
            (PlannedOutcome::Declined, _) => {}
            // A conflict proves the cached copies stale; a poisoned slot
            // (a plan that panicked) leaves nothing to trust.
            _ => {
                for key in keys {
                    self.forget(namespace, key)?;
                }
            }
        }
        pending.disarm();
        Ok(outcome)
    }

    async fn count(&self, namespace: &str, range: &KeyRange, now: Timestamp) -> Result<u64> {
        self.inner.count(namespace, range, now).await
    }

    async fn remove_expired(&self, namespace: Option<&str>, now: Timestamp) -> Result<u64> {
        let n = self.inner.remove_expired(namespace, now).await?;
        // An expired record is never served (`fresh`), so this only frees
        // memory: no stripe changes. Expired entries on disk stay; a lookup
        // drops one when it finds it.
        self.mem.retain(|k, v| {
            let in_scope = namespace.is_none_or(|ns| split(k).is_some_and(|(n, _)| n == ns));
            !(in_scope && v.record.as_ref().is_some_and(|r| r.is_expired(now)))
        });
        bump(&self.counters.invalidations);
        Ok(n)
    }

    async fn delete_keys(&self, namespace: &str, keys: &[String], now: Timestamp) -> Result<u64> {
        let pending = Unsettled::new(|| {
            keys.iter()
                .map(|key| self.forget(namespace, key))
                .fold(Ok(()), Result::and)
        });
        let result = self.inner.delete_keys(namespace, keys, now).await;
        // Whatever happened (a failure may come after some deletes), the
        // keys may have gone.
        pending.run_now()?;
        result
    }

    async fn delete_range(&self, namespace: &str, range: &KeyRange, now: Timestamp) -> Result<u64> {
        let pending = Unsettled::new(|| self.forget_range(namespace, range));
        let result = self.inner.delete_range(namespace, range, now).await;
        // Whatever happened (a failure may come after some deletes), keys in
        // the range may have gone.
        pending.run_now()?;
        result
    }

    async fn increment(
        &self,
        namespace: &str,
        key: &str,
        delta: i64,
        now: Timestamp,
    ) -> Result<i64> {
        let mut pending = self.until_settled(namespace, key);
        let n = pending.answer(self.inner.increment(namespace, key, delta, now).await)?;
        pending.run_now()?;
        Ok(n)
    }

    async fn append_in_place(
        &self,
        namespace: &str,
        key: &str,
        piece: &Value,
        max_size: usize,
        now: Timestamp,
    ) -> Result<Option<u64>> {
        let pending = self.until_settled(namespace, key);
        let appended = self
            .inner
            .append_in_place(namespace, key, piece, max_size, now)
            .await;
        match appended {
            Ok(None) => {
                pending.disarm();
                Ok(None)
            }
            Ok(Some(len)) => {
                pending.run_now()?;
                Ok(Some(len))
            }
            // Only the backend fails here (a rule that refuses the append
            // answers `None`), and it may have applied the append before
            // the error reached us: drop the cached copy, keep the error.
            Err(e) => {
                let _ = pending.run_now();
                Err(e)
            }
        }
    }

    async fn namespaces(&self) -> Result<Vec<String>> {
        self.inner.namespaces().await
    }

    async fn compact(&self) -> Result<()> {
        self.inner.compact().await
    }

    async fn flush(&self) -> Result<()> {
        self.inner.flush().await?;
        self.flush_disk().await
    }

    async fn close(&self) -> Result<()> {
        self.flush_disk().await?;
        self.mem.clear();
        self.inner.close().await
    }

    async fn stats(&self) -> Result<BackendStats> {
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (hits, misses) = (load(&c.hits), load(&c.misses));
        let mut stats = BackendStats {
            backend: "cache".into(),
            inner: Some(Box::new(self.inner.stats().await?)),
            ..BackendStats::default()
        };
        let f = &mut stats.fields;
        f.insert("hits".into(), hits.into());
        f.insert("misses".into(), misses.into());
        f.insert(
            "hit_ratio".into(),
            (if hits + misses == 0 {
                0.0
            } else {
                hits as f64 / (hits + misses) as f64
            })
            .into(),
        );
        f.insert("inserts".into(), load(&c.inserts).into());
        f.insert("evictions".into(), load(&c.evictions).into());
        f.insert("invalidations".into(), load(&c.invalidations).into());
        f.insert("entries".into(), (self.mem.len() as u64).into());
        // The entries' own sizes: with `max_bytes` the tier's weight counts
        // each entry at no less than its share of the bound, more than it
        // holds.
        let bytes: u64 = self.mem.iter().map(|(k, v)| bytes(&k, &v)).sum();
        f.insert("bytes".into(), bytes.into());
        f.insert("capacity".into(), self.options.capacity.into());
        f.insert(
            "ttl_ms".into(),
            (self.options.ttl.as_millis() as u64).into(),
        );
        if let Some(disk) = &self.disk {
            f.insert("disk_hits".into(), load(&c.disk_hits).into());
            f.insert("disk_entries".into(), (disk.len() as u64).into());
            f.insert("disk_bytes".into(), disk.bytes().into());
        }
        Ok(stats)
    }
}
