//! [`S3Store`]: `kv_core::Backend` over any `Arc<dyn ObjectStore>`.
//!
//! | primitive | object-store calls |
//! |---|---|
//! | `read` | one GET (`NotFound` = absent); the body is `Record::encode_body` |
//! | `read_many` (`get_many`) | GETs, [`concurrency`](crate::S3Options::concurrency) at a time, in order |
//! | `write(Any)` | PUT `Overwrite` |
//! | `write(Absent)` (`set_nx`, first `set`) | PUT `Create` (`If-None-Match: *`) |
//! | `read_for_set` (a plain `set`) | the record last seen on the object, when there is one and conditional PUTs are native; else as `read` |
//! | `write(Version(v))` (CAS, later `set`s, `increment`) | PUT `Update` with the ETag of the object holding version `v` (`If-Match`), as last seen or from a GET |
//! | `scan_keys` (`keys`, `count`) | LIST, then GETs of the objects not last seen with the ETag listed |
//! | `delete` | GET (for the precondition and the expiry), then DELETE |
//! | `scan` | LIST from the cursor (`start-after`), then GETs in parallel, in key order |
//! | `delete_range` (`delete_pattern` on a prefix) | LIST + GETs (to count live keys) + bulk DELETE (`delete_stream`) |
//! | `remove_expired` (`cleanup_expired`) | LIST + GETs, a HEAD of each expired one, bulk DELETE of those unchanged |
//! | `delete_keys` (`delete_many`, pattern deletes that are not a prefix) | GETs, [`concurrency`](crate::S3Options::concurrency) at a time, then bulk DELETE of the objects found |
//! | `namespaces` | LIST with delimiter under the prefix |
//! | `apply` (batches) | refused: object stores cannot write several objects atomically |
//!
//! Lost races of a conditional PUT become `WriteOutcome::PreconditionFailed`,
//! and the store's read-modify-write loop retries. See [`crate::cas`] for
//! how conditional writes are made atomic, and when they are refused.
//!
//! **Deletes are not conditional.** `object_store` has no conditional
//! DELETE, so `delete(Version(v))` and `remove_expired` check the record
//! and then delete it: a writer that rewrites the key between the check
//! and the DELETE loses that write. `remove_expired` reads a page of
//! records, then asks each expired one's ETag again with a HEAD request
//! right before the bulk DELETE and spares the objects rewritten since,
//! so the window is the one round trip between that HEAD and the DELETE.
//! `cleanup_expired` racing with a writer that revives an expired key is
//! the one place this shows; every other path of the store uses
//! conditional PUTs.

use std::fmt;
use std::future::Future;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, PutResult, UpdateVersion,
};

use kv_core::backend::{
    Backend, BackendStats, Capabilities, CasMechanism, DeleteOutcome, KeyInfo, KeyRange,
    Precondition, WriteOutcome,
};
use kv_core::ops::SCAN_PAGE;
use kv_core::{Error, Record, Result, Timestamp};

use crate::cas::{Cas, CasMode};
use crate::error::{classify, map, Failure, BACKEND};
use crate::layout::{Layout, ASSUMED_NAMESPACE_LEN};
use crate::options::{S3Config, S3Options};

/// One object of a listing.
struct Listed {
    key: String,
    path: Path,
    e_tag: Option<String>,
}

/// The object-store backend. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct S3Store {
    inner: Arc<Inner>,
}

/// What kind of store is beneath, for capabilities and stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Memory,
    Local,
    S3,
    Other,
}

struct Inner {
    store: Arc<dyn ObjectStore>,
    /// The store's `Display` (`AmazonS3(bucket)`, `InMemory`, …).
    store_name: String,
    layout: Layout,
    options: S3Options,
    kind: Kind,
    cas: Cas,
    closed: AtomicBool,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    gets: AtomicU64,
    heads: AtomicU64,
    puts: AtomicU64,
    lists: AtomicU64,
    deletes: AtomicU64,
    conflicts: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The store's own `Debug` may show client configuration; its
        // `Display` names only the kind and bucket.
        f.debug_struct("S3Store")
            .field("store", &self.inner.store_name)
            .field("prefix", &self.inner.layout.prefix().as_ref())
            .field("options", &self.inner.options)
            .finish()
    }
}

/// A record read from the store with the tag of the object holding it.
struct Fetched {
    record: Record,
    tag: UpdateVersion,
}

impl S3Store {
    /// A backend over `store` with `options` (no I/O: the conditional-PUT
    /// probe runs on [`probe`](Self::probe) or the first conditional
    /// write).
    pub fn new(store: Arc<dyn ObjectStore>, options: S3Options) -> Result<S3Store> {
        Self::build(store, options, Kind::Other)
    }

    fn build(store: Arc<dyn ObjectStore>, options: S3Options, kind: Kind) -> Result<S3Store> {
        if options.concurrency == 0 {
            return Err(Error::config("s3.concurrency", "must be at least 1"));
        }
        if options.seen_objects == 0 {
            return Err(Error::config(
                "s3.seen_objects",
                "must be at least 1: a conditional write takes its ETag from what was seen",
            ));
        }
        let layout = Layout::new(&options.prefix)?;
        Ok(S3Store {
            inner: Arc::new(Inner {
                store_name: store.to_string(),
                store,
                layout,
                cas: Cas::new(options.seen_objects),
                options,
                kind,
                closed: AtomicBool::new(false),
                counters: Counters::default(),
            }),
        })
    }

    /// A fresh in-memory object store (`object_store::memory::InMemory`):
    /// for tests and development. It honours conditional PUTs and lists in
    /// order.
    pub fn memory() -> S3Store {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        // The default prefix is the root, which always leaves room for keys.
        match Self::build(store, S3Options::default(), Kind::Memory) {
            Ok(s) => s,
            Err(e) => unreachable!("default S3 options are valid: {e}"),
        }
    }

    /// Objects as files under `dir` (created when missing), through
    /// `object_store::local::LocalFileSystem`: for development.
    ///
    /// The local file system does not implement `PutMode::Update`, so this
    /// sets [`S3Options::allow_local_locking`]: **conditional writes are
    /// atomic within this process only** — never point two processes (or
    /// two `S3Store`s) at one folder while either writes. Listing is not
    /// ordered there, so [`S3Options::ordered_listing`] is off. Writes are
    /// not fsynced. Object names can differ only in the case of a letter,
    /// so a directory on a case-insensitive file system (the default on
    /// macOS and Windows) is refused with [`Error::Unsupported`].
    pub fn local(dir: impl AsRef<std::path::Path>) -> Result<S3Store> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        if !case_sensitive(dir)? {
            return Err(Error::Unsupported {
                operation: "S3Store::local".into(),
                backend: BACKEND.into(),
                reason: format!(
                    "{} is on a case-insensitive file system, where two keys' object \
                     names that differ only in case would be one file",
                    dir.display()
                ),
            });
        }
        let fs = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| map(e, "LocalFileSystem"))?
            .with_automatic_cleanup(true);
        let options = S3Options::default()
            .ordered_listing(false)
            .allow_local_locking(true);
        Self::build(Arc::new(fs), options, Kind::Local)
    }

    /// A bucket on S3 or an S3-compatible server (see [`S3Config`]):
    /// conditional PUTs with `If-Match` / `If-None-Match`, path-style
    /// requests, credentials from the config or the `AWS_*` environment.
    pub fn s3(config: S3Config) -> Result<S3Store> {
        use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
        if config.bucket.is_empty() {
            return Err(Error::config("s3.bucket", "a bucket name is required"));
        }
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_conditional_put(S3ConditionalPut::ETagMatch);
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        if let Some(id) = &config.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &config.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        if config.http_allowed() {
            builder = builder.with_allow_http(true);
        }
        let s3 = builder
            .build()
            .map_err(|e| Error::config("s3", config.scrub(&e.to_string())))?;
        Self::build(Arc::new(s3), config.options(), Kind::S3)
    }

    /// The object store beneath.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner.store
    }

    /// The options in use.
    pub fn options(&self) -> &S3Options {
        &self.inner.options
    }

    /// The longest key (bytes) declared in
    /// [`Capabilities::max_key_len`]: its object name fits S3's 1,024
    /// bytes under the prefix in any namespace up to 64 bytes. Longer
    /// namespaces leave less room; a write whose name would not fit is
    /// refused with `Error::InvalidKey` naming that namespace's limit.
    pub fn max_key_len(&self) -> usize {
        self.inner.layout.max_key_len(ASSUMED_NAMESPACE_LEN)
    }

    /// The object holding `key` in `namespace` (for tools, benchmarks and
    /// tests that look at the objects themselves).
    pub fn object_path(&self, namespace: &str, key: &str) -> Result<Path> {
        self.inner.layout.object_path_for_write(namespace, key)
    }

    /// Checks now (instead of at the first conditional write) how
    /// conditional writes are made atomic on this store; see
    /// [`crate::cas`]. Errors only when the store cannot be reached.
    pub async fn probe(&self) -> Result<CasMechanism> {
        Ok(mechanism(self.cas_mode().await?))
    }

    // --- helpers -------------------------------------------------------------

    fn store(&self) -> &dyn ObjectStore {
        &*self.inner.store
    }

    fn name(&self) -> &str {
        &self.inner.store_name
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed {
                backend: BACKEND.into(),
            });
        }
        Ok(())
    }

    async fn cas_mode(&self) -> Result<&CasMode> {
        self.inner
            .cas
            .mode(
                self.store(),
                &self.inner.layout,
                self.inner.options.allow_local_locking,
            )
            .await
    }

    /// GETs and decodes the record at `path`.
    async fn fetch(&self, namespace: &str, key: &str, path: &Path) -> Result<Option<Fetched>> {
        bump(&self.inner.counters.gets);
        let got = match self.store().get(path).await {
            Ok(got) => got,
            Err(e) => {
                return match classify(e, self.name()) {
                    Failure::NotFound => Ok(None),
                    Failure::Other(e) => Err(e),
                    Failure::Conflict => Err(Error::backend(
                        BACKEND,
                        true,
                        format!("GET {path} reported a precondition failure"),
                    )),
                }
            }
        };
        let tag = UpdateVersion {
            e_tag: got.meta.e_tag.clone(),
            version: got.meta.version.clone(),
        };
        let body = match got.bytes().await {
            Ok(b) => b,
            // Deleted between the response head and its body (local files).
            Err(e) => {
                return match classify(e, self.name()) {
                    Failure::NotFound => Ok(None),
                    Failure::Other(e) => Err(e),
                    Failure::Conflict => Ok(None),
                }
            }
        };
        let record = Record::decode_body(namespace, key, &body)?;
        self.inner.cas.remember(path, tag.clone(), &record);
        Ok(Some(Fetched { record, tag }))
    }

    /// PUTs `body` at `path`; `Ok(None)` when the store's condition failed.
    async fn put(&self, path: &Path, body: &[u8], mode: PutMode) -> Result<Option<PutResult>> {
        bump(&self.inner.counters.puts);
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        let payload = PutPayload::from(body.to_vec());
        match self.store().put_opts(path, payload, opts).await {
            Ok(r) => Ok(Some(r)),
            Err(e) => match classify(e, self.name()) {
                Failure::Conflict | Failure::NotFound => {
                    bump(&self.inner.counters.conflicts);
                    Ok(None)
                }
                Failure::Other(e) => Err(e),
            },
        }
    }

    /// Records that `path` now holds `record` under the tag `put` returned.
    fn written(&self, path: &Path, record: &Record, put: PutResult) -> WriteOutcome {
        self.inner.cas.remember(path, put.into(), record);
        WriteOutcome::Written
    }

    /// DELETEs `path`; `false` when it was already gone.
    async fn remove(&self, path: &Path) -> Result<bool> {
        bump(&self.inner.counters.deletes);
        self.inner.cas.forget(path);
        match self.store().delete(path).await {
            Ok(()) => Ok(true),
            Err(e) => match classify(e, self.name()) {
                Failure::NotFound => Ok(false),
                Failure::Other(e) => Err(e),
                Failure::Conflict => Ok(false),
            },
        }
    }

    /// `write(Version(v))` with `If-Match`: the ETag seen with version `v`,
    /// or the object's current one when it holds `v`.
    async fn update(
        &self,
        record: &Record,
        path: &Path,
        body: &[u8],
        v: u64,
    ) -> Result<WriteOutcome> {
        let tag = match self.inner.cas.cached(path, v) {
            Some(t) => t,
            None => match self.fetch(&record.namespace, &record.key, path).await? {
                Some(f) if f.record.version() == v => f.tag,
                _ => return Ok(WriteOutcome::PreconditionFailed),
            },
        };
        match self.put(path, body, PutMode::Update(tag)).await? {
            Some(put) => Ok(self.written(path, record, put)),
            None => {
                // Changed (or deleted) since it was seen: what the caller
                // decided on is stale. It reads again and retries.
                self.inner.cas.forget(path);
                Ok(WriteOutcome::PreconditionFailed)
            }
        }
    }

    /// A conditional write under the process-local lock.
    async fn write_locked(
        &self,
        record: &Record,
        path: &Path,
        body: &[u8],
        precondition: Precondition,
    ) -> Result<WriteOutcome> {
        let _guard = self.inner.cas.lock(path).await;
        let current = self.fetch(&record.namespace, &record.key, path).await?;
        if !precondition.holds(current.as_ref().map(|f| f.record.version())) {
            return Ok(WriteOutcome::PreconditionFailed);
        }
        // Create where the store has it, so another process creating the
        // same key at once still loses cleanly.
        let mode = if current.is_none() {
            PutMode::Create
        } else {
            PutMode::Overwrite
        };
        match self.put(path, body, mode).await {
            Ok(Some(put)) => Ok(self.written(path, record, put)),
            Ok(None) => Ok(WriteOutcome::PreconditionFailed),
            Err(Error::Unsupported { .. }) => match self.put(path, body, PutMode::Overwrite).await?
            {
                Some(put) => Ok(self.written(path, record, put)),
                None => Ok(WriteOutcome::PreconditionFailed),
            },
            Err(e) => Err(e),
        }
    }

    /// Keys (and their objects) in `range` after `after`, in key order, at
    /// most `limit`; `true` when the range holds no more.
    async fn list_range(
        &self,
        namespace_path: &Path,
        range: &KeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Listed>, bool)> {
        let layout = &self.inner.layout;
        let offset = match range.lower_bound(after) {
            Bound::Unbounded => None,
            Bound::Included(k) => Some(layout.offset(namespace_path, k, false)),
            Bound::Excluded(k) => Some(layout.offset(namespace_path, k, true)),
        };
        let ordered = self.inner.options.ordered_listing;
        bump(&self.inner.counters.lists);
        let mut listing = match &offset {
            Some(o) => self.store().list_with_offset(Some(namespace_path), o),
            None => self.store().list(Some(namespace_path)),
        };
        let wanted = |key: &str| range.contains(key) && after.is_none_or(|a| key > a);
        let mut out = Vec::new();
        loop {
            let meta = match listing.next().await {
                None => break,
                Some(Ok(meta)) => meta,
                Some(Err(e)) => match classify(e, self.name()) {
                    // The namespace's folder does not exist (local files).
                    Failure::NotFound => break,
                    Failure::Other(e) => return Err(e),
                    Failure::Conflict => continue,
                },
            };
            let Some(key) = layout.key_of(namespace_path, &meta.location)? else {
                continue;
            };
            if ordered && range.end.as_deref().is_some_and(|end| key.as_str() >= end) {
                return Ok((out, true));
            }
            if !wanted(&key) {
                continue;
            }
            out.push(Listed {
                key,
                path: meta.location,
                e_tag: meta.e_tag,
            });
            if ordered && out.len() >= limit {
                // A page ends here. The next page is a new LIST after its
                // last key, so it sees every write made before it starts.
                return Ok((out, false));
            }
        }
        if ordered {
            return Ok((out, true));
        }
        out.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        out.dedup_by(|a, b| a.key == b.key);
        if out.len() > limit {
            out.truncate(limit);
            return Ok((out, false));
        }
        Ok((out, true))
    }

    /// Up to `limit` answers of `read` for the objects in `range` after
    /// `after`, listed page by page and read `concurrency` at a time, in
    /// key order; `read` gives `None` for an object gone since it was
    /// listed.
    async fn scan_listed<T, F, Fut>(
        &self,
        namespace: &str,
        range: &KeyRange,
        after: Option<&str>,
        limit: usize,
        read: F,
    ) -> Result<Vec<T>>
    where
        F: Fn(Listed) -> Fut,
        Fut: Future<Output = Result<Option<T>>>,
    {
        let ns_path = self.inner.layout.namespace_path(namespace)?;
        let mut out = Vec::new();
        let mut cursor = after.map(str::to_owned);
        while out.len() < limit {
            let (entries, exhausted) = self
                .list_range(&ns_path, range, cursor.as_deref(), limit - out.len())
                .await?;
            cursor = entries.last().map(|e| e.key.clone());
            let page: Vec<Option<T>> = stream::iter(entries)
                .map(&read)
                .buffered(self.inner.options.concurrency)
                .try_collect()
                .await?;
            out.extend(page.into_iter().flatten());
            // An object deleted between LIST and GET leaves a short page:
            // list again after it, so a short result always means the end.
            if exhausted || cursor.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// Up to `limit` records in `range` after `after`, with their paths.
    async fn scan_fetched(
        &self,
        namespace: &str,
        range: &KeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(Path, Fetched)>> {
        self.scan_listed(namespace, range, after, limit, |e| async move {
            let fetched = self.fetch(namespace, &e.key, &e.path).await?;
            Ok(fetched.map(|f| (e.path, f)))
        })
        .await
    }

    /// Deletes the objects of `chosen` in bulk; returns how many of them
    /// `count` selects. Objects already gone were not removed by this
    /// call: the shortfall comes off the counted ones first,
    /// conservatively.
    async fn remove_counted(
        &self,
        chosen: Vec<(Path, Fetched)>,
        count: impl Fn(&Record) -> bool,
    ) -> Result<u64> {
        let counted = chosen.iter().filter(|(_, f)| count(&f.record)).count() as u64;
        let all = chosen.len() as u64;
        let removed = self
            .remove_all(chosen.into_iter().map(|(p, _)| p).collect())
            .await?;
        Ok(counted.saturating_sub(all - removed))
    }

    /// The objects of `keys` in `namespace` (with their paths), in order,
    /// GET `concurrency` at a time; `None` for a key with no object.
    async fn fetch_many(
        &self,
        namespace: &str,
        keys: &[String],
    ) -> Result<Vec<Option<(Path, Fetched)>>> {
        let layout = &self.inner.layout;
        let paths = keys
            .iter()
            .map(|k| layout.object_path(namespace, k))
            .collect::<Result<Vec<_>>>()?;
        // Owned keys: futures borrowing them fail `async_trait`'s
        // higher-ranked `Send` bound.
        let jobs: Vec<(String, Option<Path>)> = keys.iter().cloned().zip(paths).collect();
        stream::iter(jobs)
            .map(|(key, path)| async move {
                match path {
                    Some(p) => Ok(self.fetch(namespace, &key, &p).await?.map(|f| (p, f))),
                    None => Ok(None),
                }
            })
            .buffered(self.inner.options.concurrency)
            .try_collect()
            .await
    }

    /// Deletes `paths` with the store's bulk delete; returns how many
    /// existed.
    async fn remove_all(&self, paths: Vec<Path>) -> Result<u64> {
        if paths.is_empty() {
            return Ok(0);
        }
        for p in &paths {
            self.inner.cas.forget(p);
        }
        self.inner
            .counters
            .deletes
            .fetch_add(paths.len() as u64, Ordering::Relaxed);
        let locations = stream::iter(paths.into_iter().map(Ok)).boxed();
        let mut results = self.store().delete_stream(locations);
        let mut removed = 0;
        while let Some(r) = results.next().await {
            match r {
                Ok(_) => removed += 1,
                Err(e) => match classify(e, self.name()) {
                    Failure::NotFound | Failure::Conflict => {}
                    Failure::Other(e) => return Err(e),
                },
            }
        }
        Ok(removed)
    }

    /// The objects of `chosen` that still carry the ETag they were read
    /// with, asked with HEAD requests, `concurrency` at a time, just before
    /// they are deleted: a writer that rewrote one since (reviving an
    /// expired key) keeps its write unless it lands in the moment between
    /// the HEAD and the DELETE.
    async fn unchanged(&self, chosen: Vec<(Path, Fetched)>) -> Result<Vec<(Path, Fetched)>> {
        let heads = stream::iter(chosen.into_iter().map(|(path, f)| async move {
            bump(&self.inner.counters.heads);
            match self.store().head(&path).await {
                Ok(meta) => {
                    let same = f.tag.e_tag.is_some() && meta.e_tag == f.tag.e_tag;
                    Ok(same.then_some((path, f)))
                }
                Err(e) => match classify(e, self.name()) {
                    Failure::NotFound | Failure::Conflict => Ok(None),
                    Failure::Other(e) => Err(e),
                },
            }
        }))
        .buffered(self.inner.options.concurrency);
        let kept: Vec<Option<(Path, Fetched)>> = heads.try_collect().await?;
        Ok(kept.into_iter().flatten().collect())
    }

    /// Removes the records in `range` (all of them, or those `pick`
    /// selects), page by page; returns how many `count` selects among the
    /// removed. With `recheck`, the chosen objects are first asked again
    /// ([`unchanged`](Self::unchanged)) and only those still as read go.
    async fn remove_where(
        &self,
        namespace: &str,
        range: &KeyRange,
        pick: impl Fn(&Record) -> bool + Send + Sync,
        count: impl Fn(&Record) -> bool + Send + Sync,
        recheck: bool,
    ) -> Result<u64> {
        let local = matches!(self.cas_mode().await?, CasMode::Local);
        let mut total = 0;
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .scan_fetched(namespace, range, cursor.as_deref(), SCAN_PAGE)
                .await?;
            let full = page.len() == SCAN_PAGE;
            cursor = page.last().map(|(_, f)| f.record.key.clone());
            let chosen: Vec<(Path, Fetched)> =
                page.into_iter().filter(|(_, f)| pick(&f.record)).collect();
            if local {
                // Under the lock, and only if unchanged since the scan.
                for (path, f) in chosen {
                    let _guard = self.inner.cas.lock(&path).await;
                    let now = self.fetch(namespace, &f.record.key, &path).await?;
                    if now.is_some_and(|n| n.record.version() == f.record.version())
                        && self.remove(&path).await?
                        && count(&f.record)
                    {
                        total += 1;
                    }
                }
            } else {
                let chosen = if recheck {
                    self.unchanged(chosen).await?
                } else {
                    chosen
                };
                total += self.remove_counted(chosen, &count).await?;
            }
            if !full {
                return Ok(total);
            }
            kv_core::ops::page_break().await;
        }
    }
}

fn mechanism(mode: &CasMode) -> CasMechanism {
    match mode {
        CasMode::Native => CasMechanism::ConditionalPut,
        CasMode::Local => CasMechanism::Lock,
        CasMode::Unsupported { .. } => CasMechanism::Unsupported,
    }
}

#[async_trait]
impl Backend for S3Store {
    fn name(&self) -> &str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        let inner = &self.inner;
        let mut c = Capabilities::none();
        c.native_range_delete = true;
        c.persistent = inner.kind != Kind::Memory;
        c.cas = match inner.cas.known() {
            Some(mode) => mechanism(mode),
            // Not probed yet: what the probe is expected to find.
            None if inner.kind == Kind::Local => CasMechanism::Lock,
            None => CasMechanism::ConditionalPut,
        };
        c.multi_process = c.persistent && c.cas == CasMechanism::ConditionalPut;
        c.max_key_len = Some(self.max_key_len());
        c
    }

    async fn read(&self, namespace: &str, key: &str) -> Result<Option<Record>> {
        self.check_open()?;
        let Some(path) = self.inner.layout.object_path(namespace, key)? else {
            return Ok(None);
        };
        Ok(self.fetch(namespace, key, &path).await?.map(|f| f.record))
    }

    async fn read_for_set(&self, namespace: &str, key: &str) -> Result<Option<Record>> {
        self.check_open()?;
        let Some(path) = self.inner.layout.object_path(namespace, key)? else {
            return Ok(None);
        };
        // Only where the write that follows is an `If-Match` on the ETag
        // seen (see the `cas` module docs).
        if matches!(self.inner.cas.known(), Some(CasMode::Native)) {
            if let Some(head) = self.inner.cas.head(&path) {
                return Ok(Some(head));
            }
        }
        Ok(self.fetch(namespace, key, &path).await?.map(|f| f.record))
    }

    async fn read_many(&self, namespace: &str, keys: &[String]) -> Result<Vec<Option<Record>>> {
        self.check_open()?;
        let fetched = self.fetch_many(namespace, keys).await?;
        Ok(fetched
            .into_iter()
            .map(|f| f.map(|(_, f)| f.record))
            .collect())
    }

    async fn write(&self, record: Record, precondition: Precondition) -> Result<WriteOutcome> {
        self.check_open()?;
        let path = self
            .inner
            .layout
            .object_path_for_write(&record.namespace, &record.key)?;
        let body = record.encode_body()?;
        match (self.cas_mode().await?, precondition) {
            (CasMode::Local, p) => self.write_locked(&record, &path, &body, p).await,
            (_, Precondition::Any) => match self.put(&path, &body, PutMode::Overwrite).await? {
                Some(put) => Ok(self.written(&path, &record, put)),
                None => Err(Error::backend(
                    BACKEND,
                    true,
                    format!("unconditional PUT of {path} reported a precondition failure"),
                )),
            },
            (CasMode::Unsupported { reason }, _) => Err(Error::Unsupported {
                operation: "conditional write (compare-and-swap, increment, set)".into(),
                backend: BACKEND.into(),
                reason: format!(
                    "the object store {} does not honour conditional PUTs ({reason}); \
                     atomic operations would silently lose updates. Use a store with \
                     If-Match / If-None-Match support, or opt into process-local locking \
                     (S3Options::allow_local_locking) if only one process writes",
                    self.name()
                ),
            }),
            (CasMode::Native, Precondition::Absent) => {
                match self.put(&path, &body, PutMode::Create).await? {
                    Some(put) => Ok(self.written(&path, &record, put)),
                    None => Ok(WriteOutcome::PreconditionFailed),
                }
            }
            (CasMode::Native, Precondition::Version(v)) => {
                self.update(&record, &path, &body, v).await
            }
        }
    }

    async fn delete(
        &self,
        namespace: &str,
        key: &str,
        precondition: Precondition,
    ) -> Result<DeleteOutcome> {
        self.check_open()?;
        let Some(path) = self.inner.layout.object_path(namespace, key)? else {
            return Ok(DeleteOutcome::NotFound);
        };
        let _guard = match self.cas_mode().await? {
            CasMode::Local => Some(self.inner.cas.lock(&path).await),
            _ => None,
        };
        let Some(current) = self.fetch(namespace, key, &path).await? else {
            return Ok(DeleteOutcome::NotFound);
        };
        if !precondition.holds(Some(current.record.version())) {
            return Ok(DeleteOutcome::PreconditionFailed);
        }
        if !self.remove(&path).await? {
            return Ok(DeleteOutcome::NotFound);
        }
        Ok(DeleteOutcome::Deleted {
            expires_at: current.record.expires_at(),
        })
    }

    async fn scan(
        &self,
        namespace: &str,
        range: &KeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>> {
        self.check_open()?;
        Ok(self
            .scan_fetched(namespace, range, after, limit)
            .await?
            .into_iter()
            .map(|(_, f)| f.record)
            .collect())
    }

    async fn scan_keys(
        &self,
        namespace: &str,
        range: &KeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KeyInfo>> {
        // Expiry and version live in the body: a LIST alone cannot say
        // which keys are live. An object still carrying the ETag it was
        // last seen with holds the record seen; only the others are read.
        self.check_open()?;
        let info = |r: Record| KeyInfo {
            expires_at: r.meta.expires_at,
            version: r.meta.version,
            key: r.key,
        };
        self.scan_listed(namespace, range, after, limit, |e| async move {
            let seen = e
                .e_tag
                .as_deref()
                .and_then(|t| self.inner.cas.head_if_tagged(&e.path, t));
            Ok(match seen {
                Some(head) => Some(info(head)),
                None => self
                    .fetch(namespace, &e.key, &e.path)
                    .await?
                    .map(|f| info(f.record)),
            })
        })
        .await
    }

    async fn remove_expired(&self, namespace: Option<&str>, now: Timestamp) -> Result<u64> {
        self.check_open()?;
        let namespaces = match namespace {
            Some(ns) => vec![ns.to_owned()],
            None => self.namespaces().await?,
        };
        let mut removed = 0;
        for ns in namespaces {
            removed += self
                .remove_where(&ns, &KeyRange::all(), |r| r.is_expired(now), |_| true, true)
                .await?;
        }
        Ok(removed)
    }

    async fn delete_range(&self, namespace: &str, range: &KeyRange, now: Timestamp) -> Result<u64> {
        self.check_open()?;
        self.remove_where(namespace, range, |_| true, |r| !r.is_expired(now), false)
            .await
    }

    async fn delete_keys(&self, namespace: &str, keys: &[String], now: Timestamp) -> Result<u64> {
        self.check_open()?;
        if matches!(self.cas_mode().await?, CasMode::Local) {
            // Deletes take the key's lock there: key by key.
            return kv_core::ops::delete_keys(self, namespace, keys, now).await;
        }
        // A GET of each key tells which exist and which are live; the ones
        // that exist go in bulk deletes.
        let found = self.fetch_many(namespace, keys).await?;
        self.remove_counted(found.into_iter().flatten().collect(), |r| {
            !r.is_expired(now)
        })
        .await
    }

    async fn namespaces(&self) -> Result<Vec<String>> {
        self.check_open()?;
        let prefix = self.inner.layout.prefix();
        let prefix = (!prefix.is_root()).then_some(prefix);
        bump(&self.inner.counters.lists);
        let listing = match self.store().list_with_delimiter(prefix).await {
            Ok(l) => l,
            Err(e) => {
                return match classify(e, self.name()) {
                    Failure::NotFound => Ok(Vec::new()),
                    Failure::Other(e) => Err(e),
                    Failure::Conflict => Ok(Vec::new()),
                }
            }
        };
        let mut out: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| self.inner.layout.namespace_of(p))
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn close(&self) -> Result<()> {
        self.inner.closed.store(true, Ordering::Release);
        Ok(())
    }

    async fn stats(&self) -> Result<BackendStats> {
        let inner = &self.inner;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut stats = BackendStats {
            backend: BACKEND.into(),
            ..BackendStats::default()
        };
        let f = &mut stats.fields;
        f.insert("store".into(), inner.store_name.clone().into());
        f.insert("prefix".into(), inner.layout.prefix().to_string().into());
        f.insert("cas".into(), self.capabilities().cas.to_string().into());
        f.insert(
            "ordered_listing".into(),
            inner.options.ordered_listing.into(),
        );
        f.insert("max_key_len".into(), (self.max_key_len() as u64).into());
        f.insert(
            "concurrency".into(),
            (inner.options.concurrency as u64).into(),
        );
        f.insert(
            "seen_objects".into(),
            (inner.options.seen_objects as u64).into(),
        );
        f.insert("get_requests".into(), load(&inner.counters.gets).into());
        f.insert("head_requests".into(), load(&inner.counters.heads).into());
        f.insert("put_requests".into(), load(&inner.counters.puts).into());
        f.insert("list_requests".into(), load(&inner.counters.lists).into());
        f.insert(
            "delete_requests".into(),
            load(&inner.counters.deletes).into(),
        );
        f.insert(
            "precondition_failures".into(),
            load(&inner.counters.conflicts).into(),
        );
        Ok(stats)
    }
}

/// Whether names in `dir` that differ only in case are different files:
/// creates a file with a lower-case name and looks for its upper-case
/// spelling.
fn case_sensitive(dir: &std::path::Path) -> Result<bool> {
    let name = format!(".kv-case-{}", crate::cas::probe_id());
    let lower = dir.join(&name);
    let upper = dir.join(name.to_uppercase());
    std::fs::write(&lower, b"")
        .map_err(|e| Error::io(format!("writing {}", lower.display()), e))?;
    let aliased = upper.try_exists();
    let _ = std::fs::remove_file(&lower);
    let aliased = aliased.map_err(|e| Error::io(format!("looking for {}", upper.display()), e))?;
    Ok(!aliased)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The case probe finds this machine's temp directory case-sensitive
    /// (Linux file systems are) and leaves nothing behind.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_case_probe_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(case_sensitive(dir.path()).expect("probe"));
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);
    }
}
