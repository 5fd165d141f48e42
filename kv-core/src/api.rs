//! The [`KVStore`] trait: the user API, the same on every backend.
//!
//! The trait is object-safe (`Arc<dyn KVStore>` is what the facade hands
//! out); generic conveniences such as [`get_as`](KVStoreExt::get_as) live in
//! [`KVStoreExt`], implemented for every `KVStore`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Result;
use crate::metadata::{Metadata, MetadataFilter, UserMetadata};
use crate::migrate::{ImportOptions, ImportOutcome};
use crate::types::{Batch, Entry, ScanPage, SetOptions, StoreStats, Ttl};
use crate::value::Value;

/// An async key/value store with hierarchical keys, patterns, metadata,
/// TTL, atomic operations, namespaces and batches.
///
/// Missing keys are `Ok(None)` / `Ok(false)`, never errors. Invalid keys and
/// patterns, oversized values and wrong types are typed errors raised before
/// anything is written. An expired key is invisible to every read from the
/// instant `now >= expires_at`, whether or not cleanup has run.
///
/// ```
/// # tokio_test_block_on(async {
/// use kv_core::{KVStore, KVStoreExt, Store};
/// let store = Store::memory();
/// store.set("app.config.database.host", "localhost".into()).await?;
/// assert_eq!(
///     store.get_as::<String>("app.config.database.host").await?,
///     Some("localhost".to_owned())
/// );
/// assert_eq!(store.keys("app.**").await?, ["app.config.database.host"]);
/// # Ok::<(), kv_core::Error>(())
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
#[async_trait]
pub trait KVStore: Send + Sync + fmt::Debug {
    // --- basic -------------------------------------------------------------

    /// The value of `key`, or `None`.
    async fn get(&self, key: &str) -> Result<Option<Value>>;

    /// The value and metadata of `key`, or `None`.
    async fn get_entry(&self, key: &str) -> Result<Option<Entry>>;

    /// Sets `key` to `value`: clears any TTL (as Redis `SET`), keeps user
    /// metadata, bumps the version.
    async fn set(&self, key: &str, value: Value) -> Result<()>;

    /// Sets `key` with options; returns `false` (and writes nothing) when an
    /// `if_absent` / `if_version` condition does not hold.
    async fn set_with(&self, key: &str, value: Value, options: SetOptions) -> Result<bool>;

    /// Deletes `key`; returns whether a live key was deleted.
    async fn delete(&self, key: &str) -> Result<bool>;

    /// Whether `key` exists (and has not expired).
    async fn exists(&self, key: &str) -> Result<bool>;

    // --- batches -----------------------------------------------------------

    /// The values of `keys`, in the same order.
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Value>>>;

    /// Sets every pair; all-or-nothing where the backend supports atomic
    /// batches, key by key otherwise. All keys are checked first.
    async fn set_many(&self, entries: Vec<(String, Value)>) -> Result<()>;

    /// Deletes every key; returns how many live keys were deleted.
    async fn delete_many(&self, keys: &[&str]) -> Result<u64>;

    /// Applies sets and deletes all-or-nothing. Returns `false` (and applies
    /// nothing) when a set's `if_absent` / `if_version` condition does not
    /// hold. On a backend without atomic batches this is
    /// [`Error::Unsupported`](crate::Error::Unsupported) and nothing is
    /// applied.
    async fn batch(&self, batch: Batch) -> Result<bool>;

    // --- patterns ----------------------------------------------------------

    /// Keys matching `pattern`, sorted by bytes.
    async fn keys(&self, pattern: &str) -> Result<Vec<String>>;

    /// Up to `limit` matching entries after `cursor`, in key order; pass the
    /// returned cursor back to continue. Memory is bounded by `limit`.
    async fn scan(&self, pattern: &str, cursor: Option<&str>, limit: usize) -> Result<ScanPage>;

    /// Keys and values matching `pattern`, in key order.
    async fn get_pattern(&self, pattern: &str) -> Result<Vec<(String, Value)>>;

    /// Deletes keys matching `pattern`; returns how many live keys went.
    async fn delete_pattern(&self, pattern: &str) -> Result<u64>;

    /// Number of live keys matching `pattern`.
    async fn count_pattern(&self, pattern: &str) -> Result<u64>;

    // --- metadata ----------------------------------------------------------

    /// System and user metadata of `key`.
    async fn get_metadata(&self, key: &str) -> Result<Option<Metadata>>;

    /// Replaces the user metadata; returns `false` when the key is missing.
    async fn set_metadata(&self, key: &str, metadata: UserMetadata) -> Result<bool>;

    /// Merges into the user metadata (shallow; a `null` removes the field);
    /// returns `false` when the key is missing.
    async fn update_metadata(&self, key: &str, patch: UserMetadata) -> Result<bool>;

    /// Entries matching `pattern` whose user metadata satisfies `filter`.
    async fn find_by_metadata(&self, pattern: &str, filter: &MetadataFilter) -> Result<Vec<Entry>>;

    // --- TTL ---------------------------------------------------------------

    /// Time to live of `key`.
    async fn ttl(&self, key: &str) -> Result<Ttl>;

    /// Makes `key` expire after `ttl`; returns `false` when it is missing.
    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool>;

    /// Removes the expiry of `key`; returns whether one was removed.
    async fn persist(&self, key: &str) -> Result<bool>;

    /// Removes expired keys of this namespace now; returns how many.
    async fn cleanup_expired(&self) -> Result<u64>;

    // --- atomic ------------------------------------------------------------

    /// Sets `key` to `new` only if its value equals `expected` (`None` =
    /// only if absent). Keeps TTL and metadata. Returns whether it swapped.
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<Value>,
        new: Value,
    ) -> Result<bool>;

    /// Sets `key` only if it is absent; returns whether it did.
    async fn set_nx(&self, key: &str, value: Value) -> Result<bool>;

    /// Sets `key` (as `set`) and returns the previous value.
    async fn get_and_set(&self, key: &str, value: Value) -> Result<Option<Value>>;

    /// Adds `delta` to an integer value (missing = 0); returns the result.
    /// A non-integer value is `TypeMismatch`; overflow is `Overflow`.
    async fn increment(&self, key: &str, delta: i64) -> Result<i64>;

    /// Subtracts `delta`; as [`increment`](Self::increment).
    async fn decrement(&self, key: &str, delta: i64) -> Result<i64>;

    /// Appends a string or bytes (missing = set); returns the new length in
    /// bytes. A value that is not a string or bytes is `TypeMismatch`.
    async fn append(&self, key: &str, suffix: Value) -> Result<u64>;

    /// Prepends a string or bytes; as [`append`](Self::append).
    async fn prepend(&self, key: &str, prefix: Value) -> Result<u64>;

    // --- import ------------------------------------------------------------

    /// Writes whole records as they were read from another store (by
    /// [`scan`](Self::scan), an export file, …), keeping what a plain `set`
    /// would reset: `created_at`, `updated_at`, the absolute `expires_at`,
    /// the value type and content type, and the user metadata. Versions are
    /// this store's own. Entry keys are taken in this handle's namespace.
    ///
    /// Returns one [`ImportOutcome`] per entry, in order. A record whose
    /// `expires_at` has passed is skipped; one the store refuses (invalid
    /// key, value too large, mismatched type) is `Failed` and the others
    /// are still written. `Err` is for the store itself failing; on a
    /// backend with atomic batches nothing was written then.
    async fn import_entries(
        &self,
        entries: Vec<Entry>,
        options: ImportOptions,
    ) -> Result<Vec<ImportOutcome>>;

    // --- admin -------------------------------------------------------------

    /// A handle on the same backend that sees only namespace `namespace`.
    fn namespace(&self, namespace: &str) -> Result<Arc<dyn KVStore>>;

    /// The namespace of this handle.
    fn current_namespace(&self) -> &str;

    /// Namespaces that hold at least one live key, sorted.
    async fn list_namespaces(&self) -> Result<Vec<String>>;

    /// Number of live keys in this namespace.
    async fn count(&self) -> Result<u64>;

    /// Counters of this handle and the backend's statistics.
    async fn stats(&self) -> Result<StoreStats>;

    /// Makes every acknowledged write durable. Deletes nothing.
    async fn flush(&self) -> Result<()>;

    /// Reclaims the space of overwritten, deleted and expired records in
    /// the backend's storage (whole backend, every namespace); see
    /// [`Backend::compact`](crate::Backend::compact). Changes no record and
    /// may take a while on a large store. Expired keys still held are
    /// removed by [`cleanup_expired`](Self::cleanup_expired), not by this.
    async fn compact(&self) -> Result<()>;

    /// Stops background work and closes the backend; later calls fail with
    /// `Error::Closed`.
    async fn close(&self) -> Result<()>;
}

/// Generic conveniences for every [`KVStore`].
#[async_trait]
pub trait KVStoreExt: KVStore {
    /// The value of `key` deserialized into `T` (through JSON), or `None`.
    /// A value that does not fit `T` is `TypeMismatch`.
    async fn get_as<T: DeserializeOwned + Send>(&self, key: &str) -> Result<Option<T>> {
        match self.get(key).await? {
            Some(v) => v.deserialize(key).map(Some),
            None => Ok(None),
        }
    }

    /// Stores any `Serialize` value as JSON.
    async fn set_json<T: Serialize + Sync + ?Sized>(&self, key: &str, value: &T) -> Result<()> {
        self.set(key, Value::json(value)?).await
    }
}

impl<S: KVStore + ?Sized> KVStoreExt for S {}
