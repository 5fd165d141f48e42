//! [`Store`]: the one implementation of the [`KVStore`] semantics, over any
//! [`Backend`].
//!
//! Every rule of the API lives here: key and pattern checks, TTL visibility,
//! metadata lifting and merging, versions, atomic operations as optimistic
//! read-modify-write loops on the backend's conditional writes, batches,
//! namespaces and background cleanup.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;

use crate::api::KVStore;
use crate::backend::{
    Backend, BatchOp, BatchPlan, DeleteOutcome, KeyRange, PlannedOutcome, Precondition,
    WriteOutcome,
};
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::error::{shorten, Error, Result};
use crate::key::KeyRules;
use crate::memory::MemoryBackend;
use crate::metadata::{
    Metadata, MetadataFilter, UserMetadata, RESERVED_CONTENT_TYPE, RESERVED_TTL,
};
use crate::migrate::{ImportOptions, ImportOutcome};
use crate::ops::{Retry, SCAN_PAGE};
use crate::pattern::Pattern;
use crate::record::Record;
use crate::types::{Batch, BatchItem, Entry, ScanPage, SetOptions, StoreOptions, StoreStats, Ttl};
use crate::value::{Value, ValueType};

mod import;

/// A [`KVStore`] over an `Arc<dyn Backend>`.
///
/// Cheap to clone; clones and [`namespace`](KVStore::namespace) handles share
/// the backend, the clock and the background cleanup.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use kv_core::{KVStore, ManualClock, SetOptions, Store, Ttl};
/// let clock = ManualClock::new(0);
/// let store = Store::builder(Store::memory_backend()).clock(clock.clone()).build()?;
/// store.set_with("session.abc", "ada".into(), SetOptions::new().ttl(Duration::from_secs(30))).await?;
/// assert_eq!(store.ttl("session.abc").await?, Ttl::Expires(Duration::from_secs(30)));
/// clock.advance(Duration::from_secs(30));
/// assert_eq!(store.get("session.abc").await?, None);
/// # Ok::<(), kv_core::Error>(())
/// # });
/// ```
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    namespace: Arc<str>,
}

struct Shared {
    backend: Arc<dyn Backend>,
    /// The backend's [`Cooperation`](crate::backend::Cooperation).
    cooperation: crate::backend::Cooperation,
    clock: Arc<dyn Clock>,
    rules: KeyRules,
    options: StoreOptions,
    closed: AtomicBool,
    cleanup: Mutex<Option<tokio::task::JoinHandle<()>>>,
    counters: Counters,
    /// Recently used patterns, compiled (see [`Store::pattern`]).
    patterns: Mutex<std::collections::HashMap<String, Arc<Pattern>>>,
}

/// Compiled patterns a store keeps; when full it starts over.
const PATTERN_CACHE: usize = 256;

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    writes: AtomicU64,
    deletes: AtomicU64,
    conflicts: AtomicU64,
    expired_removed: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Pushes `item`, growing a full `items` by at most `most` (what is left
/// of the page that `item` came from, itself included), so collecting a
/// page allocates once.
fn push_sized<T>(items: &mut Vec<T>, item: T, most: usize) {
    if items.len() == items.capacity() {
        items.reserve(most);
    }
    items.push(item);
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(handle) = self.cleanup.get_mut().ok().and_then(Option::take) {
            handle.abort();
        }
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.shared.backend.name())
            .field("namespace", &&*self.namespace)
            .field("options", &self.shared.options)
            .finish()
    }
}

/// Builds a [`Store`]: backend, clock, options.
#[derive(Debug)]
pub struct StoreBuilder {
    backend: Arc<dyn Backend>,
    clock: Arc<dyn Clock>,
    options: StoreOptions,
}

impl StoreBuilder {
    /// Uses `clock` for every TTL decision (a [`ManualClock`](crate::ManualClock)
    /// in tests).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Uses a shared clock.
    pub fn shared_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets all options.
    pub fn options(mut self, options: StoreOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets the namespace of the first handle.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.options.namespace = namespace.into();
        self
    }

    /// Folds keys to lower case.
    pub fn case_insensitive(mut self, yes: bool) -> Self {
        self.options.case_insensitive = yes;
        self
    }

    /// Checks the options and builds the store. With `auto_cleanup` this
    /// spawns the cleanup task and so must run inside a Tokio runtime.
    pub fn build(self) -> Result<Store> {
        let o = &self.options;
        if o.max_key_len == 0 {
            return Err(Error::config("store.max_key_len", "must be at least 1"));
        }
        if o.max_value_size == 0 {
            return Err(Error::config("store.max_value_size", "must be at least 1"));
        }
        if o.auto_cleanup && o.cleanup_interval_secs == 0 {
            return Err(Error::config(
                "store.cleanup_interval_secs",
                "must be at least 1 when auto_cleanup is on",
            ));
        }
        // The backend may hold shorter keys than the store allows.
        let backend_limit = self
            .backend
            .capabilities()
            .max_key_len
            .unwrap_or(usize::MAX);
        let rules = KeyRules {
            max_len: o.max_key_len.min(backend_limit),
            case_insensitive: o.case_insensitive,
        };
        let namespace: Arc<str> = rules.normalize_namespace(&o.namespace)?.into();
        let cooperation = self.backend.capabilities().cooperation;
        let shared = Arc::new(Shared {
            cooperation,
            backend: self.backend,
            clock: self.clock,
            rules,
            options: self.options,
            closed: AtomicBool::new(false),
            cleanup: Mutex::new(None),
            counters: Counters::default(),
            patterns: Mutex::default(),
        });
        if shared.options.auto_cleanup {
            let handle = tokio::runtime::Handle::try_current().map_err(|_| {
                Error::config(
                    "store.auto_cleanup",
                    "background cleanup needs a Tokio runtime; build the store inside one",
                )
            })?;
            let interval = Duration::from_secs(shared.options.cleanup_interval_secs);
            let task = handle.spawn(cleanup_loop(Arc::downgrade(&shared), interval));
            if let Ok(mut slot) = shared.cleanup.lock() {
                *slot = Some(task);
            }
        }
        Ok(Store { shared, namespace })
    }
}

/// Removes expired keys every `interval` until the store is closed or
/// dropped. Holds only a weak reference, so it never keeps a store alive.
async fn cleanup_loop(shared: Weak<Shared>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
        let now = shared.clock.now();
        // A failed round is retried next period; there is no caller to tell.
        if let Ok(n) = shared.backend.remove_expired(None, now).await {
            bump(&shared.counters.expired_removed, n);
        }
    }
}

/// What a read-modify-write step decided.
// Short-lived and never stored in bulk: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Step<T> {
    /// Write this record (with the precondition from the read) and return T.
    Write(Record, T),
    /// Write nothing and return T.
    Done(T),
}

/// Where a read-modify-write gets the record it starts from.
#[derive(Clone, Copy)]
enum Start {
    /// [`Backend::read`].
    Read,
    /// [`Backend::read_for_set`]: possibly what the backend last saw, with
    /// the value left out; only for steps that always write.
    ForSet,
}

impl Store {
    /// A builder over `backend` with the system clock and default options.
    pub fn builder(backend: Arc<dyn Backend>) -> StoreBuilder {
        StoreBuilder {
            backend,
            clock: Arc::new(SystemClock),
            options: StoreOptions::default(),
        }
    }

    /// A store over `backend` with default options.
    pub fn new(backend: Arc<dyn Backend>) -> Store {
        // Default options always pass `build`'s checks and spawn nothing.
        match Store::builder(backend).build() {
            Ok(s) => s,
            Err(e) => unreachable!("default store options are valid: {e}"),
        }
    }

    /// A fresh in-memory store with default options.
    pub fn memory() -> Store {
        Store::new(Store::memory_backend())
    }

    /// A fresh in-memory backend, to share between stores.
    pub fn memory_backend() -> Arc<dyn Backend> {
        Arc::new(MemoryBackend::new())
    }

    /// The backend beneath.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.shared.backend
    }

    /// The clock in use.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.shared.clock
    }

    /// The options the store was built with.
    pub fn options(&self) -> &StoreOptions {
        &self.shared.options
    }

    /// A handle on namespace `namespace` (concrete type of
    /// [`KVStore::namespace`]).
    pub fn with_namespace(&self, namespace: &str) -> Result<Store> {
        let ns = self.shared.rules.normalize_namespace(namespace)?;
        Ok(Store {
            shared: Arc::clone(&self.shared),
            namespace: ns.into(),
        })
    }

    // --- helpers -------------------------------------------------------------

    fn backend_ref(&self) -> &dyn Backend {
        &*self.shared.backend
    }

    /// The yield point of one operation (or one page of a walk).
    async fn cooperate(&self) {
        crate::ops::cooperate(self.shared.cooperation).await;
    }

    fn now(&self) -> Timestamp {
        self.shared.clock.now()
    }

    fn check_open(&self) -> Result<()> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(Error::Closed {
                backend: self.shared.backend.name().to_owned(),
            });
        }
        Ok(())
    }

    /// Checks and normalises a key; borrows when nothing changes.
    fn key<'k>(&self, key: &'k str) -> Result<Cow<'k, str>> {
        self.check_open()?;
        self.shared.rules.normalize(key)
    }

    /// The compiled pattern, from the store's cache of recent ones: a
    /// pattern used again keeps its matcher (and the DFA it builds once it
    /// has matched enough keys) instead of compiling it on every call.
    /// Patterns of the simplest shapes (`users.42.*`) are built afresh:
    /// that costs less than the cache's lock and lookup.
    fn pattern(&self, pattern: &str) -> Result<Arc<Pattern>> {
        self.check_open()?;
        let folded = self.shared.rules.fold(pattern);
        if let Some(simple) = Pattern::simple(&folded) {
            return Ok(Arc::new(simple));
        }
        if let Some(p) = self
            .shared
            .patterns
            .lock()
            .ok()
            .and_then(|cache| cache.get(folded.as_ref()).cloned())
        {
            return Ok(p);
        }
        let compiled = Arc::new(Pattern::compile(&folded)?);
        if let Ok(mut cache) = self.shared.patterns.lock() {
            if cache.len() >= PATTERN_CACHE {
                cache.clear();
            }
            cache.insert(folded.into_owned(), Arc::clone(&compiled));
        }
        Ok(compiled)
    }

    fn check_size(&self, key: &str, value: &Value) -> Result<()> {
        // Tag byte + payload: the encoded size, computed without encoding.
        let size = 1 + value.payload_len();
        let limit = self.shared.options.max_value_size;
        if size > limit {
            return Err(Error::ValueTooLarge {
                key: shorten(key),
                size,
                limit,
            });
        }
        Ok(())
    }

    /// Reads a live record: `None` for missing or expired. Verifies nothing.
    async fn read_live(&self, key: &str, now: Timestamp) -> Result<Option<Record>> {
        self.cooperate().await;
        let record = self.backend_ref().read(&self.namespace, key).await?;
        let live = record.filter(|r| !r.is_expired(now));
        if live.is_some() {
            bump(&self.shared.counters.hits, 1);
        } else {
            bump(&self.shared.counters.misses, 1);
        }
        Ok(live)
    }

    /// Records a read of `record` when the store tracks access. Best effort:
    /// a record rewritten since the read is left alone.
    async fn touch(&self, record: &Record, now: Timestamp) -> Result<()> {
        if !self.shared.options.track_access {
            return Ok(());
        }
        let mut touched = record.clone();
        touched.meta.accessed_at = Some(now);
        self.backend_ref()
            .write(touched, Precondition::Version(record.version()))
            .await?;
        Ok(())
    }

    /// The optimistic loop: read the physical record, let `step` decide on
    /// the live one, write with a precondition on what was read, retry on a
    /// lost race.
    async fn read_modify_write<T>(
        &self,
        operation: &str,
        key: &str,
        step: impl FnMut(Option<&Record>, Timestamp) -> Result<Step<T>> + Send,
    ) -> Result<T> {
        self.read_modify_write_from(Start::Read, operation, key, step)
            .await
    }

    /// [`read_modify_write`](Self::read_modify_write) starting from `start`.
    async fn read_modify_write_from<T>(
        &self,
        start: Start,
        operation: &str,
        key: &str,
        mut step: impl FnMut(Option<&Record>, Timestamp) -> Result<Step<T>> + Send,
    ) -> Result<T> {
        let mut retry = Retry::new();
        loop {
            self.cooperate().await;
            let now = self.now();
            let backend = self.backend_ref();
            let physical = match start {
                Start::Read => backend.read(&self.namespace, key).await?,
                Start::ForSet => backend.read_for_set(&self.namespace, key).await?,
            };
            let precondition = physical
                .as_ref()
                .map_or(Precondition::Absent, |r| Precondition::Version(r.version()));
            let live = physical.as_ref().filter(|r| !r.is_expired(now));
            match step(live, now)? {
                Step::Done(t) => return Ok(t),
                Step::Write(record, t) => {
                    match self.backend_ref().write(record, precondition).await? {
                        WriteOutcome::Written => {
                            bump(&self.shared.counters.writes, 1);
                            return Ok(t);
                        }
                        WriteOutcome::PreconditionFailed => {}
                    }
                }
            }
            bump(&self.shared.counters.conflicts, 1);
            retry.backoff(operation, key).await?;
        }
    }

    /// Checks a set's value and options and resolves the reserved metadata
    /// fields, before any I/O.
    fn prepare_set(&self, key: &str, value: &Value, options: &SetOptions) -> Result<PreparedSet> {
        self.check_size(key, value)?;
        if options.keep_ttl && options.ttl.is_some() {
            return Err(Error::invalid_argument(
                "ttl",
                "`ttl` and `keep_ttl` cannot both be given",
            ));
        }
        if options.ttl.is_some_and(|t| t.is_zero()) {
            return Err(Error::invalid_argument(
                "ttl",
                "a TTL must be more than zero",
            ));
        }
        let mut content_type = options.content_type.clone();
        let mut ttl = options.ttl;
        let user = match &options.metadata {
            Some(meta) => {
                let lifted = lift_reserved(key, meta.clone())?;
                if let Some(t) = lifted.ttl {
                    if ttl.is_some() || options.keep_ttl {
                        return Err(Error::InvalidMetadata {
                            key: shorten(key),
                            field: RESERVED_TTL.into(),
                            reason: "conflicts with the `ttl` / `keep_ttl` option".into(),
                        });
                    }
                    ttl = Some(t);
                }
                if let Some(ct) = lifted.content_type {
                    if content_type.as_ref().is_some_and(|c| *c != ct) {
                        return Err(Error::InvalidMetadata {
                            key: shorten(key),
                            field: RESERVED_CONTENT_TYPE.into(),
                            reason: "conflicts with the `content_type` option".into(),
                        });
                    }
                    content_type = Some(ct);
                }
                Some(lifted.user)
            }
            None => None,
        };
        let value_type = options
            .value_type
            .clone()
            .unwrap_or_else(|| value.default_type());
        check_type(key, value, &value_type, content_type.as_deref())?;
        Ok(PreparedSet {
            ttl,
            user,
            content_type,
            value_type,
        })
    }

    /// The record a set writes, given the live record.
    fn build_set_record(
        &self,
        key: &str,
        value: &Value,
        prepared: &PreparedSet,
        keep_ttl: bool,
        live: Option<&Record>,
        now: Timestamp,
    ) -> Record {
        set_record(&self.namespace, key, value, prepared, keep_ttl, live, now)
    }

    async fn set_inner(&self, key: &str, value: Value, options: SetOptions) -> Result<bool> {
        let key = self.key(key)?;
        let prepared = self.prepare_set(&key, &value, &options)?;
        // A plain set always ends in a write conditioned on what it read,
        // so it may start from what the backend last saw; `if_absent` and
        // `if_version` can end without a write and need a real read.
        let start = if options.if_absent || options.if_version.is_some() {
            Start::Read
        } else {
            Start::ForSet
        };
        self.read_modify_write_from(start, "set", &key, |live, now| {
            if options.if_absent && live.is_some() {
                return Ok(Step::Done(false));
            }
            if let Some(v) = options.if_version {
                if live.map(Record::version) != Some(v) {
                    return Ok(Step::Done(false));
                }
            }
            let record =
                self.build_set_record(&key, &value, &prepared, options.keep_ttl, live, now);
            Ok(Step::Write(record, true))
        })
        .await
    }

    /// Rewrites the live record of `key` with `change`; `false` when missing.
    async fn modify_existing(
        &self,
        operation: &str,
        key: &str,
        change: impl Fn(&mut Record, Timestamp) -> Result<bool> + Send + Sync,
    ) -> Result<bool> {
        let key = self.key(key)?;
        self.read_modify_write(operation, &key, |live, now| {
            let Some(old) = live else {
                return Ok(Step::Done(false));
            };
            let mut record = old.clone();
            if !change(&mut record, now)? {
                return Ok(Step::Done(false));
            }
            record.meta.version = old.meta.version + 1;
            record.meta.updated_at = now;
            Ok(Step::Write(record, true))
        })
        .await
    }

    fn entry_of(&self, record: Record) -> Result<Entry> {
        let value = record.decode_value()?;
        Ok(Entry {
            metadata: Metadata {
                system: record.meta,
                user: record.user,
            },
            key: record.key,
            value,
        })
    }

    /// Walks live records matching `pattern` in key order, page by page,
    /// calling `visit` until it returns `false`. `visit` also gets how many
    /// records at most are still to come from the current page, its own
    /// included, to size what it collects ([`push_sized`]).
    async fn walk_records(
        &self,
        pattern: &Pattern,
        after: Option<String>,
        visit: impl FnMut(Record, usize) -> Result<bool> + Send,
    ) -> Result<()> {
        self.walk_records_paged(pattern, after, SCAN_PAGE, visit)
            .await
    }

    /// [`walk_records`](Self::walk_records) asking the backend for
    /// `first_page` records first (for a caller that wants only a few),
    /// then twice as many each time up to [`SCAN_PAGE`]: on a backend that
    /// fetches every record of a page (an object store) a small scan costs
    /// a small page.
    async fn walk_records_paged(
        &self,
        pattern: &Pattern,
        after: Option<String>,
        first_page: usize,
        mut visit: impl FnMut(Record, usize) -> Result<bool> + Send,
    ) -> Result<()> {
        self.cooperate().await;
        if let Some(keys) = pattern.exact_keys() {
            let now = self.now();
            let keys: Vec<String> = keys
                .iter()
                .filter(|k| after.as_deref().is_none_or(|a| k.as_str() > a))
                .filter(|k| self.shared.rules.normalize(k).is_ok())
                .cloned()
                .collect();
            let records = self.backend_ref().read_many(&self.namespace, &keys).await?;
            let mut left = records.iter().flatten().count();
            for record in records.into_iter().flatten() {
                left -= 1;
                if !record.is_expired(now) && !visit(record, left + 1)? {
                    return Ok(());
                }
            }
            return Ok(());
        }
        let range = KeyRange::prefix(pattern.literal_prefix());
        // Every key of the range matches a prefix-only pattern (`app.**`).
        let all_match = pattern.is_prefix_only();
        let mut cursor = after;
        let mut size = first_page.clamp(1, SCAN_PAGE);
        loop {
            let page = self
                .backend_ref()
                .scan(&self.namespace, &range, cursor.as_deref(), size)
                .await?;
            let full = page.len() == size;
            size = (size * 2).min(SCAN_PAGE);
            cursor = page.last().map(|r| r.key.clone());
            let now = self.now();
            let mut left = page.len();
            for record in page {
                left -= 1;
                if record.is_expired(now) || !(all_match || pattern.matches(&record.key)) {
                    continue;
                }
                if !visit(record, left + 1)? {
                    return Ok(());
                }
            }
            if !full {
                return Ok(());
            }
            self.cooperate().await;
        }
    }

    /// Like [`walk_records`](Self::walk_records) but only keys.
    async fn walk_keys(
        &self,
        pattern: &Pattern,
        mut visit: impl FnMut(String, usize) + Send,
    ) -> Result<()> {
        self.cooperate().await;
        if pattern.exact_keys().is_some() {
            return self
                .walk_records(pattern, None, |r, most| {
                    visit(r.key, most);
                    Ok(true)
                })
                .await;
        }
        let range = KeyRange::prefix(pattern.literal_prefix());
        let all_match = pattern.is_prefix_only();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .backend_ref()
                .scan_keys(&self.namespace, &range, cursor.as_deref(), SCAN_PAGE)
                .await?;
            let full = page.len() == SCAN_PAGE;
            cursor = page.last().map(|k| k.key.clone());
            let now = self.now();
            let mut left = page.len();
            for info in page {
                left -= 1;
                if matches!(info.expires_at, Some(t) if now >= t)
                    || !(all_match || pattern.matches(&info.key))
                {
                    continue;
                }
                visit(info.key, left + 1);
            }
            if !full {
                return Ok(());
            }
            self.cooperate().await;
        }
    }

    /// Applies checked batch items all-or-nothing: the backend reads every
    /// key once, [`plan_batch`] decides the operations on that view, and
    /// the backend applies them (planning again when a key changed in
    /// between).
    async fn batch_checked(&self, items: Vec<CheckedItem>) -> Result<bool> {
        if !self.backend_ref().capabilities().atomic_batch {
            return Err(Error::Unsupported {
                operation: "batch".into(),
                backend: self.backend_ref().name().to_owned(),
                reason: "the backend cannot apply several writes atomically; nothing was written"
                    .into(),
            });
        }
        if items.is_empty() {
            return Ok(true);
        }
        let mut keys: Vec<String> = items.iter().map(|i| i.key().to_owned()).collect();
        keys.sort_unstable();
        keys.dedup();
        let first_key = items[0].key().to_owned();
        // Shared with the plan, which the backend may run on a thread of
        // its own (inside its write transaction), once per attempt.
        let items: Arc<[CheckedItem]> = items.into();
        let keys: Arc<[String]> = keys.into();
        let mut retry = Retry::new();
        loop {
            let plan: BatchPlan = {
                let (items, keys) = (Arc::clone(&items), Arc::clone(&keys));
                let namespace = Arc::clone(&self.namespace);
                let clock = Arc::clone(&self.shared.clock);
                Box::new(move |physical| {
                    Ok(plan_batch(&namespace, &items, &keys, physical, clock.now()))
                })
            };
            match self
                .backend_ref()
                .apply_planned(&self.namespace, &keys, plan)
                .await?
            {
                PlannedOutcome::Applied { puts, deletes } => {
                    bump(&self.shared.counters.writes, puts);
                    bump(&self.shared.counters.deletes, deletes);
                    return Ok(true);
                }
                PlannedOutcome::Declined => return Ok(false),
                PlannedOutcome::Conflict => {
                    bump(&self.shared.counters.conflicts, 1);
                    retry.backoff("batch", &first_key).await?;
                }
            }
        }
    }

    fn check_item(&self, item: BatchItem) -> Result<CheckedItem> {
        Ok(match item {
            BatchItem::Set {
                key,
                value,
                options,
            } => {
                let key = self.key(&key)?.into_owned();
                let prepared = self.prepare_set(&key, &value, &options)?;
                CheckedItem::Set {
                    key,
                    value,
                    prepared,
                    options,
                }
            }
            BatchItem::Delete { key } => CheckedItem::Delete {
                key: self.key(&key)?.into_owned(),
            },
        })
    }

    async fn append_inner(
        &self,
        operation: &str,
        key: &str,
        piece: Value,
        at_end: bool,
    ) -> Result<u64> {
        let key = self.key(key)?;
        let piece_bytes: Vec<u8> = match &piece {
            Value::String(s) => s.as_bytes().to_vec(),
            Value::Bytes(b) => b.clone(),
            other => {
                return Err(Error::InvalidValue {
                    key: shorten(&key),
                    reason: format!("{operation} takes a string or bytes, not {}", other.kind()),
                })
            }
        };
        self.check_size(&key, &piece)?;
        let limit = self.shared.options.max_value_size;
        if at_end {
            self.cooperate().await;
            if let Some(len) = self
                .backend_ref()
                .append_in_place(&self.namespace, &key, &piece, limit, self.now())
                .await?
            {
                bump(&self.shared.counters.writes, 1);
                return Ok(len);
            }
        }
        self.read_modify_write(operation, &key, |live, now| {
            let Some(old) = live else {
                let len = piece_bytes.len() as u64;
                let record =
                    Record::new(&*self.namespace, &*key, &piece, piece.default_type(), now);
                return Ok(Step::Write(record, len));
            };
            let current = old.decode_value()?;
            let joined = match (current, &piece) {
                (Value::String(s), Value::String(p)) => {
                    Value::String(if at_end { s + p } else { format!("{p}{s}") })
                }
                (Value::Bytes(mut b), _) => {
                    if at_end {
                        b.extend_from_slice(&piece_bytes);
                    } else {
                        let mut v = piece_bytes.clone();
                        v.extend_from_slice(&b);
                        b = v;
                    }
                    Value::Bytes(b)
                }
                (Value::String(_), Value::Bytes(_)) => {
                    return Err(Error::TypeMismatch {
                        key: shorten(&key),
                        operation: operation.to_owned(),
                        expected: "a string to add to a string value".into(),
                        found: "bytes".into(),
                    })
                }
                (other, _) => {
                    return Err(Error::TypeMismatch {
                        key: shorten(&key),
                        operation: operation.to_owned(),
                        expected: "a string or bytes value".into(),
                        found: other.kind().into(),
                    })
                }
            };
            let size = 1 + joined.payload_len();
            if size > limit {
                return Err(Error::ValueTooLarge {
                    key: shorten(&key),
                    size,
                    limit,
                });
            }
            let len = joined.payload_len() as u64;
            let mut record = old.clone();
            record.set_value(&joined);
            record.meta.version += 1;
            record.meta.updated_at = now;
            Ok(Step::Write(record, len))
        })
        .await
    }
}

struct PreparedSet {
    ttl: Option<Duration>,
    user: Option<UserMetadata>,
    content_type: Option<String>,
    value_type: ValueType,
}

// Held only for the duration of one batch call.
#[allow(clippy::large_enum_variant)]
enum CheckedItem {
    Set {
        key: String,
        value: Value,
        prepared: PreparedSet,
        options: SetOptions,
    },
    Delete {
        key: String,
    },
}

impl CheckedItem {
    fn key(&self) -> &str {
        match self {
            CheckedItem::Set { key, .. } | CheckedItem::Delete { key } => key,
        }
    }
}

/// Operations of a multi-key call (and of an import written key by key)
/// that are in flight at once.
const MULTI_KEY_CONCURRENCY: usize = 16;

/// Runs `op` on every `(key, item)`: the items of one key one after the
/// other, in their order, and up to [`MULTI_KEY_CONCURRENCY`] distinct keys
/// at once. Stops at the first error (operations already in flight finish
/// or are dropped with the future). The results come in no fixed order.
async fn per_key_concurrently<T, R, F, Fut>(
    items: impl IntoIterator<Item = (String, T)>,
    op: F,
) -> Result<Vec<R>>
where
    F: Fn(String, T) -> Fut,
    Fut: std::future::Future<Output = Result<R>>,
{
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut groups: Vec<Vec<(String, T)>> = Vec::new();
    for (key, item) in items {
        let at = *index.entry(key.clone()).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[at].push((key, item));
    }
    let op = &op;
    let results: Vec<Vec<R>> = stream::iter(groups)
        .map(|group| async move {
            let mut out = Vec::with_capacity(group.len());
            for (key, item) in group {
                out.push(op(key, item).await?);
            }
            Ok::<_, Error>(out)
        })
        .buffer_unordered(MULTI_KEY_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(results.into_iter().flatten().collect())
}

/// The record a set of `key` in `namespace` writes, given the live record.
fn set_record(
    namespace: &str,
    key: &str,
    value: &Value,
    prepared: &PreparedSet,
    keep_ttl: bool,
    live: Option<&Record>,
    now: Timestamp,
) -> Record {
    let mut record = Record::new(namespace, key, value, prepared.value_type.clone(), now);
    record.meta.content_type = prepared.content_type.clone();
    record.meta.expires_at = prepared.ttl.map(|t| now.saturating_add(t));
    if let Some(old) = live {
        record.meta.version = old.meta.version + 1;
        record.meta.created_at = old.meta.created_at;
        record.meta.accessed_at = old.meta.accessed_at;
        if keep_ttl {
            record.meta.expires_at = old.meta.expires_at;
        }
    }
    record.user = match (&prepared.user, live) {
        (Some(user), _) => user.clone(),
        (None, Some(old)) => old.user.clone(),
        (None, None) => UserMetadata::new(),
    };
    record
}

/// Builds the backend batch for `items` from the records stored under
/// `keys` (sorted, distinct: every item's key once; `physical` in the same
/// order): applies the items in order on that view and emits one operation
/// per touched key, in key order, with a precondition on what was read.
/// `None` when a condition fails.
fn plan_batch(
    namespace: &str,
    items: &[CheckedItem],
    keys: &[String],
    physical: Vec<Option<Record>>,
    now: Timestamp,
) -> Option<Vec<BatchOp>> {
    struct KeyState {
        precondition: Precondition,
        current: Option<Record>,
        touched: bool,
    }
    let mut state: Vec<KeyState> = physical
        .into_iter()
        .map(|record| KeyState {
            precondition: record
                .as_ref()
                .map_or(Precondition::Absent, |r| Precondition::Version(r.version())),
            current: record.filter(|r| !r.is_expired(now)),
            touched: false,
        })
        .collect();
    for item in items {
        let Some(st) = keys
            .binary_search_by(|k| k.as_str().cmp(item.key()))
            .ok()
            .and_then(|i| state.get_mut(i))
        else {
            continue;
        };
        match item {
            CheckedItem::Set {
                key,
                value,
                prepared,
                options,
            } => {
                if options.if_absent && st.current.is_some() {
                    return None;
                }
                if let Some(v) = options.if_version {
                    if st.current.as_ref().map(Record::version) != Some(v) {
                        return None;
                    }
                }
                let record = set_record(
                    namespace,
                    key,
                    value,
                    prepared,
                    options.keep_ttl,
                    st.current.as_ref(),
                    now,
                );
                st.current = Some(record);
            }
            CheckedItem::Delete { .. } => st.current = None,
        }
        st.touched = true;
    }
    let mut ops = Vec::with_capacity(state.len());
    for (key, st) in keys.iter().zip(state) {
        if !st.touched {
            continue;
        }
        match st.current {
            Some(record) => ops.push(BatchOp::Put {
                record,
                precondition: st.precondition,
            }),
            None if st.precondition == Precondition::Absent => {}
            None => ops.push(BatchOp::Delete {
                namespace: namespace.to_owned(),
                key: key.clone(),
                precondition: st.precondition,
            }),
        }
    }
    Some(ops)
}

struct Lifted {
    user: UserMetadata,
    ttl: Option<Duration>,
    content_type: Option<String>,
}

/// Moves the reserved `ttl` and `content_type` fields out of user metadata.
fn lift_reserved(key: &str, mut user: UserMetadata) -> Result<Lifted> {
    let bad = |field: &str, reason: String| Error::InvalidMetadata {
        key: shorten(key),
        field: field.to_owned(),
        reason,
    };
    let ttl = match user.remove(RESERVED_TTL) {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => {
            let secs = v
                .as_f64()
                .filter(|s| s.is_finite() && *s > 0.0)
                .ok_or_else(|| {
                    bad(
                        RESERVED_TTL,
                        format!("must be a positive number of seconds, not {v}"),
                    )
                })?;
            Some(
                Duration::try_from_secs_f64(secs)
                    .map_err(|e| bad(RESERVED_TTL, format!("is out of range: {e}")))?,
            )
        }
    };
    let content_type = match user.remove(RESERVED_CONTENT_TYPE) {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Some(s),
        Some(v) => {
            return Err(bad(
                RESERVED_CONTENT_TYPE,
                format!("must be a non-empty string, not {v}"),
            ))
        }
    };
    Ok(Lifted {
        user,
        ttl,
        content_type,
    })
}

fn check_type(
    key: &str,
    value: &Value,
    value_type: &ValueType,
    content_type: Option<&str>,
) -> Result<()> {
    if !value_type.accepts(value) {
        return Err(Error::InvalidValue {
            key: shorten(key),
            reason: format!("a {} value cannot have type {value_type}", value.kind()),
        });
    }
    if value_type.needs_content_type() && content_type.is_none() {
        return Err(Error::InvalidValue {
            key: shorten(key),
            reason: format!(
                "a {value_type} needs a content type (e.g. SetOptions::{value_type}(\"…\"))"
            ),
        });
    }
    if content_type.is_some_and(|c| c.trim().is_empty()) {
        return Err(Error::InvalidValue {
            key: shorten(key),
            reason: "the content type is empty".into(),
        });
    }
    Ok(())
}

#[async_trait]
impl KVStore for Store {
    async fn get(&self, key: &str) -> Result<Option<Value>> {
        let key = self.key(key)?;
        let now = self.now();
        if self.shared.options.track_access {
            return match self.read_live(&key, now).await? {
                Some(record) => {
                    let value = record.decode_value()?;
                    self.touch(&record, now).await?;
                    Ok(Some(value))
                }
                None => Ok(None),
            };
        }
        self.cooperate().await;
        let stored = self.backend_ref().read_value(&self.namespace, &key).await?;
        match stored.filter(|s| !s.is_expired(now)) {
            Some(s) => {
                bump(&self.shared.counters.hits, 1);
                s.decode(&self.namespace, &key).map(Some)
            }
            None => {
                bump(&self.shared.counters.misses, 1);
                Ok(None)
            }
        }
    }

    async fn get_entry(&self, key: &str) -> Result<Option<Entry>> {
        let key = self.key(key)?;
        let now = self.now();
        match self.read_live(&key, now).await? {
            Some(record) => {
                self.touch(&record, now).await?;
                self.entry_of(record).map(Some)
            }
            None => Ok(None),
        }
    }

    async fn set(&self, key: &str, value: Value) -> Result<()> {
        self.set_inner(key, value, SetOptions::default())
            .await
            .map(|_| ())
    }

    async fn set_with(&self, key: &str, value: Value, options: SetOptions) -> Result<bool> {
        self.set_inner(key, value, options).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let key = self.key(key)?;
        self.cooperate().await;
        let outcome = self
            .backend_ref()
            .delete(&self.namespace, &key, Precondition::Any)
            .await?;
        if matches!(outcome, DeleteOutcome::Deleted { .. }) {
            bump(&self.shared.counters.deletes, 1);
        }
        Ok(outcome.removed_live(self.now()))
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let key = self.key(key)?;
        Ok(self.read_live(&key, self.now()).await?.is_some())
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Value>>> {
        self.cooperate().await;
        let normalized = keys
            .iter()
            .map(|k| self.key(k).map(Cow::into_owned))
            .collect::<Result<Vec<String>>>()?;
        let records = self
            .backend_ref()
            .read_many(&self.namespace, &normalized)
            .await?;
        let now = self.now();
        let mut out = Vec::with_capacity(records.len());
        for record in records {
            match record.filter(|r| !r.is_expired(now)) {
                Some(r) => {
                    bump(&self.shared.counters.hits, 1);
                    out.push(Some(r.decode_value()?));
                }
                None => {
                    bump(&self.shared.counters.misses, 1);
                    out.push(None);
                }
            }
        }
        Ok(out)
    }

    async fn set_many(&self, entries: Vec<(String, Value)>) -> Result<()> {
        self.cooperate().await;
        let items = entries
            .into_iter()
            .map(|(key, value)| {
                self.check_item(BatchItem::Set {
                    key,
                    value,
                    options: SetOptions::default(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if self.backend_ref().capabilities().atomic_batch {
            self.batch_checked(items).await?;
            return Ok(());
        }
        // Not atomic here: distinct keys are written concurrently (each a
        // round trip on an object store), one key's values in their order.
        let sets = items.into_iter().filter_map(|item| match item {
            CheckedItem::Set { key, value, .. } => Some((key, value)),
            CheckedItem::Delete { .. } => None,
        });
        per_key_concurrently(sets, |key, value| async move {
            self.set_inner(&key, value, SetOptions::default()).await
        })
        .await?;
        Ok(())
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        self.cooperate().await;
        let mut normalized = keys
            .iter()
            .map(|k| self.key(k).map(Cow::into_owned))
            .collect::<Result<Vec<String>>>()?;
        normalized.sort_unstable();
        normalized.dedup();
        let deleted = self
            .backend_ref()
            .delete_keys(&self.namespace, &normalized, self.now())
            .await?;
        bump(&self.shared.counters.deletes, deleted);
        Ok(deleted)
    }

    async fn batch(&self, batch: Batch) -> Result<bool> {
        self.cooperate().await;
        let items = batch
            .items
            .into_iter()
            .map(|item| self.check_item(item))
            .collect::<Result<Vec<_>>>()?;
        self.batch_checked(items).await
    }

    async fn keys(&self, pattern: &str) -> Result<Vec<String>> {
        let pattern = self.pattern(pattern)?;
        let mut keys = Vec::new();
        self.walk_keys(&pattern, |k, most| push_sized(&mut keys, k, most))
            .await?;
        Ok(keys)
    }

    async fn scan(&self, pattern: &str, cursor: Option<&str>, limit: usize) -> Result<ScanPage> {
        if limit == 0 {
            return Err(Error::invalid_argument("limit", "must be at least 1"));
        }
        let pattern = self.pattern(pattern)?;
        let mut entries = Vec::new();
        let mut error = None;
        self.walk_records_paged(
            &pattern,
            cursor.map(str::to_owned),
            limit,
            |record, most| {
                match self.entry_of(record) {
                    Ok(e) => {
                        let most = most.min(limit - entries.len());
                        push_sized(&mut entries, e, most);
                    }
                    Err(e) => {
                        error = Some(e);
                        return Ok(false);
                    }
                }
                Ok(entries.len() < limit)
            },
        )
        .await?;
        if let Some(e) = error {
            return Err(e);
        }
        let cursor = if entries.len() == limit {
            entries.last().map(|e| e.key.clone())
        } else {
            None
        };
        Ok(ScanPage { entries, cursor })
    }

    async fn get_pattern(&self, pattern: &str) -> Result<Vec<(String, Value)>> {
        let pattern = self.pattern(pattern)?;
        let mut out = Vec::new();
        self.walk_records(&pattern, None, |record, most| {
            let value = record.decode_value()?;
            push_sized(&mut out, (record.key, value), most);
            Ok(true)
        })
        .await?;
        Ok(out)
    }

    async fn delete_pattern(&self, pattern: &str) -> Result<u64> {
        let pattern = self.pattern(pattern)?;
        let now = self.now();
        if pattern.is_prefix_only() {
            let n = self
                .backend_ref()
                .delete_range(
                    &self.namespace,
                    &KeyRange::prefix(pattern.literal_prefix()),
                    now,
                )
                .await?;
            bump(&self.shared.counters.deletes, n);
            return Ok(n);
        }
        let mut keys = Vec::new();
        self.walk_keys(&pattern, |k, most| push_sized(&mut keys, k, most))
            .await?;
        let mut deleted = 0;
        for page in keys.chunks(SCAN_PAGE) {
            deleted += self
                .backend_ref()
                .delete_keys(&self.namespace, page, now)
                .await?;
        }
        bump(&self.shared.counters.deletes, deleted);
        Ok(deleted)
    }

    async fn count_pattern(&self, pattern: &str) -> Result<u64> {
        let pattern = self.pattern(pattern)?;
        if pattern.is_prefix_only() {
            return self
                .backend_ref()
                .count(
                    &self.namespace,
                    &KeyRange::prefix(pattern.literal_prefix()),
                    self.now(),
                )
                .await;
        }
        let mut n = 0u64;
        self.walk_keys(&pattern, |_, _| n += 1).await?;
        Ok(n)
    }

    async fn get_metadata(&self, key: &str) -> Result<Option<Metadata>> {
        let key = self.key(key)?;
        let now = self.now();
        match self.read_live(&key, now).await? {
            Some(record) => {
                record.verify()?;
                Ok(Some(record.metadata()))
            }
            None => Ok(None),
        }
    }

    async fn set_metadata(&self, key: &str, metadata: UserMetadata) -> Result<bool> {
        let lifted = lift_reserved(key, metadata)?;
        self.modify_existing("set_metadata", key, move |record, now| {
            record.user = lifted.user.clone();
            if let Some(ttl) = lifted.ttl {
                record.meta.expires_at = Some(now.saturating_add(ttl));
            }
            if let Some(ct) = &lifted.content_type {
                record.meta.content_type = Some(ct.clone());
            }
            Ok(true)
        })
        .await
    }

    async fn update_metadata(&self, key: &str, patch: UserMetadata) -> Result<bool> {
        // `null` removes a field, so reserved fields set to null are left in
        // the patch (lifting ignores null) and removed by the merge below.
        let lifted = lift_reserved(key, patch.clone())?;
        self.modify_existing("update_metadata", key, move |record, now| {
            for (field, value) in &patch {
                if field == RESERVED_TTL || field == RESERVED_CONTENT_TYPE {
                    continue;
                }
                if value.is_null() {
                    record.user.remove(field);
                } else {
                    record.user.insert(field.clone(), value.clone());
                }
            }
            if let Some(ttl) = lifted.ttl {
                record.meta.expires_at = Some(now.saturating_add(ttl));
            }
            if let Some(ct) = &lifted.content_type {
                record.meta.content_type = Some(ct.clone());
            }
            Ok(true)
        })
        .await
    }

    async fn find_by_metadata(&self, pattern: &str, filter: &MetadataFilter) -> Result<Vec<Entry>> {
        let pattern = self.pattern(pattern)?;
        if filter.conditions.is_empty() || pattern.exact_keys().is_some() {
            let mut out = Vec::new();
            self.walk_records(&pattern, None, |record, _| {
                if filter.matches(&record.user) {
                    out.push(self.entry_of(record)?);
                }
                Ok(true)
            })
            .await?;
            return Ok(out);
        }
        // The backend narrows by the filter (a native path may use an index
        // on metadata); the pattern, expiry and the filter itself are
        // checked here.
        let range = KeyRange::prefix(pattern.literal_prefix());
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .backend_ref()
                .scan_matching(
                    &self.namespace,
                    &range,
                    cursor.as_deref(),
                    SCAN_PAGE,
                    filter,
                )
                .await?;
            let full = page.len() == SCAN_PAGE;
            cursor = page.last().map(|r| r.key.clone());
            let now = self.now();
            for record in page {
                if !record.is_expired(now)
                    && pattern.matches(&record.key)
                    && filter.matches(&record.user)
                {
                    out.push(self.entry_of(record)?);
                }
            }
            if !full {
                return Ok(out);
            }
            self.cooperate().await;
        }
    }

    async fn ttl(&self, key: &str) -> Result<Ttl> {
        let key = self.key(key)?;
        let now = self.now();
        Ok(match self.read_live(&key, now).await? {
            None => Ttl::Missing,
            Some(r) => match r.meta.expires_at {
                None => Ttl::Persistent,
                Some(t) => Ttl::Expires(t.duration_since(now)),
            },
        })
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        self.modify_existing("expire", key, move |record, now| {
            record.meta.expires_at = Some(now.saturating_add(ttl));
            Ok(true)
        })
        .await
    }

    async fn persist(&self, key: &str) -> Result<bool> {
        self.modify_existing("persist", key, |record, _| {
            Ok(record.meta.expires_at.take().is_some())
        })
        .await
    }

    async fn cleanup_expired(&self) -> Result<u64> {
        self.check_open()?;
        self.cooperate().await;
        let n = self
            .backend_ref()
            .remove_expired(Some(&self.namespace), self.now())
            .await?;
        bump(&self.shared.counters.expired_removed, n);
        Ok(n)
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<Value>,
        new: Value,
    ) -> Result<bool> {
        let key = self.key(key)?;
        self.check_size(&key, &new)?;
        let default_type = new.default_type();
        self.read_modify_write("compare_and_swap", &key, |live, now| {
            match (live, &expected) {
                (None, None) => {
                    let record =
                        Record::new(&*self.namespace, &*key, &new, default_type.clone(), now);
                    Ok(Step::Write(record, true))
                }
                (Some(old), Some(exp)) => {
                    if old.decode_value()? != *exp {
                        return Ok(Step::Done(false));
                    }
                    let mut record = old.clone();
                    record.set_value(&new);
                    if !record.meta.value_type.accepts(&new) {
                        record.meta.value_type = default_type.clone();
                        record.meta.content_type = None;
                    }
                    record.meta.version += 1;
                    record.meta.updated_at = now;
                    Ok(Step::Write(record, true))
                }
                _ => Ok(Step::Done(false)),
            }
        })
        .await
    }

    async fn set_nx(&self, key: &str, value: Value) -> Result<bool> {
        self.set_inner(key, value, SetOptions::new().if_absent())
            .await
    }

    async fn get_and_set(&self, key: &str, value: Value) -> Result<Option<Value>> {
        let key = self.key(key)?;
        let prepared = self.prepare_set(&key, &value, &SetOptions::default())?;
        self.read_modify_write("get_and_set", &key, |live, now| {
            let previous = live.map(Record::decode_value).transpose()?;
            let record = self.build_set_record(&key, &value, &prepared, false, live, now);
            Ok(Step::Write(record, previous))
        })
        .await
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        let key = self.key(key)?;
        self.cooperate().await;
        let n = self
            .backend_ref()
            .increment(&self.namespace, &key, delta, self.now())
            .await?;
        bump(&self.shared.counters.writes, 1);
        Ok(n)
    }

    async fn decrement(&self, key: &str, delta: i64) -> Result<i64> {
        let negated = delta.checked_neg().ok_or_else(|| Error::Overflow {
            key: shorten(key),
            operation: "decrement".into(),
            current: 0,
            delta,
        })?;
        self.increment(key, negated).await
    }

    async fn append(&self, key: &str, suffix: Value) -> Result<u64> {
        self.append_inner("append", key, suffix, true).await
    }

    async fn prepend(&self, key: &str, prefix: Value) -> Result<u64> {
        self.append_inner("prepend", key, prefix, false).await
    }

    async fn import_entries(
        &self,
        entries: Vec<Entry>,
        options: ImportOptions,
    ) -> Result<Vec<ImportOutcome>> {
        self.import_entries_inner(entries, options).await
    }

    fn namespace(&self, namespace: &str) -> Result<Arc<dyn KVStore>> {
        Ok(Arc::new(self.with_namespace(namespace)?))
    }

    fn current_namespace(&self) -> &str {
        &self.namespace
    }

    async fn list_namespaces(&self) -> Result<Vec<String>> {
        self.check_open()?;
        let now = self.now();
        let mut out = Vec::new();
        for ns in self.backend_ref().namespaces().await? {
            // A namespace holding only expired records is invisible.
            let mut cursor: Option<String> = None;
            loop {
                let page = self
                    .backend_ref()
                    .scan_keys(&ns, &KeyRange::all(), cursor.as_deref(), SCAN_PAGE)
                    .await?;
                if page
                    .iter()
                    .any(|k| !matches!(k.expires_at, Some(t) if now >= t))
                {
                    out.push(ns);
                    break;
                }
                if page.len() < SCAN_PAGE {
                    break;
                }
                cursor = page.last().map(|k| k.key.clone());
                self.cooperate().await;
            }
        }
        Ok(out)
    }

    async fn count(&self) -> Result<u64> {
        self.check_open()?;
        self.cooperate().await;
        self.backend_ref()
            .count(&self.namespace, &KeyRange::all(), self.now())
            .await
    }

    async fn stats(&self) -> Result<StoreStats> {
        self.check_open()?;
        let c = &self.shared.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Ok(StoreStats {
            namespace: self.namespace.to_string(),
            reads: load(&c.hits) + load(&c.misses),
            hits: load(&c.hits),
            misses: load(&c.misses),
            writes: load(&c.writes),
            deletes: load(&c.deletes),
            conflicts: load(&c.conflicts),
            expired_removed: load(&c.expired_removed),
            backend: self.backend_ref().stats().await?,
        })
    }

    async fn flush(&self) -> Result<()> {
        self.check_open()?;
        self.backend_ref().flush().await
    }

    async fn compact(&self) -> Result<()> {
        self.check_open()?;
        self.backend_ref().compact().await
    }

    async fn close(&self) -> Result<()> {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let task = self.shared.cleanup.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            task.abort();
        }
        self.backend_ref().close().await
    }
}
