//! Plain data that crosses the [`KVStore`](crate::KVStore) API: options,
//! entries, pages, batches, TTL answers and statistics.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backend::BackendStats;
use crate::key::{DEFAULT_MAX_KEY_LEN, DEFAULT_NAMESPACE};
use crate::metadata::{Metadata, UserMetadata};
use crate::value::{Value, ValueType};

/// Default limit on an encoded value: 64 MiB.
pub const DEFAULT_MAX_VALUE_SIZE: usize = 64 * 1024 * 1024;

/// Options of [`KVStore::set_with`](crate::KVStore::set_with).
///
/// ```
/// use std::time::Duration;
/// use kv_core::SetOptions;
/// let opts = SetOptions::new().ttl(Duration::from_secs(60)).if_absent();
/// assert!(opts.if_absent);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SetOptions {
    /// Expire the key this long after the write. Must be more than zero.
    pub ttl: Option<Duration>,
    /// Replace the user metadata with this object. `None` keeps the
    /// existing user metadata. The reserved fields `ttl` (seconds) and
    /// `content_type` are lifted into system metadata.
    pub metadata: Option<UserMetadata>,
    /// Keep the key's existing expiry instead of clearing it.
    pub keep_ttl: bool,
    /// Only write when the key does not exist (or has expired).
    pub if_absent: bool,
    /// Only write when the key exists with this version.
    pub if_version: Option<u64>,
    /// The value's type; by default derived from the value's variant.
    pub value_type: Option<ValueType>,
    /// The value's MIME type; required for documents and images.
    pub content_type: Option<String>,
}

impl SetOptions {
    /// No options: a plain `set`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`ttl`](Self::ttl).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Sets [`metadata`](Self::metadata).
    pub fn metadata(mut self, metadata: UserMetadata) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Sets [`metadata`](Self::metadata) from a JSON value, which must be an
    /// object.
    pub fn metadata_json(mut self, metadata: serde_json::Value) -> crate::Result<Self> {
        match metadata {
            serde_json::Value::Object(map) => {
                self.metadata = Some(map);
                Ok(self)
            }
            other => Err(crate::Error::InvalidMetadata {
                key: String::new(),
                field: String::new(),
                reason: format!("must be a JSON object, not {other}"),
            }),
        }
    }

    /// Sets [`keep_ttl`](Self::keep_ttl).
    pub fn keep_ttl(mut self) -> Self {
        self.keep_ttl = true;
        self
    }

    /// Sets [`if_absent`](Self::if_absent).
    pub fn if_absent(mut self) -> Self {
        self.if_absent = true;
        self
    }

    /// Sets [`if_version`](Self::if_version).
    pub fn if_version(mut self, version: u64) -> Self {
        self.if_version = Some(version);
        self
    }

    /// Sets [`value_type`](Self::value_type).
    pub fn value_type(mut self, value_type: ValueType) -> Self {
        self.value_type = Some(value_type);
        self
    }

    /// Sets [`content_type`](Self::content_type).
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// A document: bytes with a MIME type.
    pub fn document(content_type: impl Into<String>) -> Self {
        Self::new()
            .value_type(ValueType::Document)
            .content_type(content_type)
    }

    /// An image: bytes with a MIME type.
    pub fn image(content_type: impl Into<String>) -> Self {
        Self::new()
            .value_type(ValueType::Image)
            .content_type(content_type)
    }
}

/// A key with its value and metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The (normalised) key.
    pub key: String,
    /// The value.
    pub value: Value,
    /// System and user metadata.
    pub metadata: Metadata,
}

/// One page of [`KVStore::scan`](crate::KVStore::scan).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScanPage {
    /// Matching live entries in key order.
    pub entries: Vec<Entry>,
    /// Pass this to the next call to continue; `None` when done.
    pub cursor: Option<String>,
}

/// The answer of [`KVStore::ttl`](crate::KVStore::ttl).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// The key does not exist (or has expired).
    Missing,
    /// The key exists and does not expire.
    Persistent,
    /// The key expires after this long.
    Expires(Duration),
}

/// One operation of a [`Batch`].
#[derive(Debug, Clone, PartialEq)]
pub enum BatchItem {
    /// Set a key.
    Set {
        /// The key.
        key: String,
        /// The value.
        value: Value,
        /// Options as for `set_with`.
        options: SetOptions,
    },
    /// Delete a key.
    Delete {
        /// The key.
        key: String,
    },
}

/// Sets and deletes applied all-or-nothing by
/// [`KVStore::batch`](crate::KVStore::batch).
///
/// ```
/// use kv_core::Batch;
/// let batch = Batch::new().set("a", 1).set("b", "two").delete("c");
/// assert_eq!(batch.len(), 3);
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    /// The operations, applied in order (a later one on the same key wins).
    pub items: Vec<BatchItem>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a plain set.
    pub fn set(self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.set_with(key, value, SetOptions::default())
    }

    /// Adds a set with options.
    pub fn set_with(
        mut self,
        key: impl Into<String>,
        value: impl Into<Value>,
        options: SetOptions,
    ) -> Self {
        self.items.push(BatchItem::Set {
            key: key.into(),
            value: value.into(),
            options,
        });
        self
    }

    /// Adds a delete.
    pub fn delete(mut self, key: impl Into<String>) -> Self {
        self.items.push(BatchItem::Delete { key: key.into() });
        self
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are no operations.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// How a [`Store`](crate::Store) behaves. Plain data; serde-friendly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreOptions {
    /// Namespace of the handle. Default `"default"`.
    pub namespace: String,
    /// Fold keys, namespaces and patterns to lower case. Default `false`.
    pub case_insensitive: bool,
    /// Longest key in bytes. Default 1024.
    pub max_key_len: usize,
    /// Largest encoded value in bytes. Default 64 MiB.
    pub max_value_size: usize,
    /// Remove expired keys in the background. Default `false` (expired keys
    /// are invisible either way; cleanup only reclaims space).
    pub auto_cleanup: bool,
    /// Period of the background cleanup, in seconds. Default 60.
    pub cleanup_interval_secs: u64,
    /// Record `accessed_at` on reads (turns reads into writes). Default
    /// `false`.
    pub track_access: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            case_insensitive: false,
            max_key_len: DEFAULT_MAX_KEY_LEN,
            max_value_size: DEFAULT_MAX_VALUE_SIZE,
            auto_cleanup: false,
            cleanup_interval_secs: 60,
            track_access: false,
        }
    }
}

/// Statistics of a store handle and its backend.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoreStats {
    /// The handle's namespace.
    pub namespace: String,
    /// Reads served (get, get_many keys, exists, metadata...).
    pub reads: u64,
    /// Reads that found a live key.
    pub hits: u64,
    /// Reads that found nothing (or an expired key).
    pub misses: u64,
    /// Writes applied.
    pub writes: u64,
    /// Keys deleted.
    pub deletes: u64,
    /// Optimistic retries after a lost race.
    pub conflicts: u64,
    /// Expired keys removed by cleanup.
    pub expired_removed: u64,
    /// The backend's own statistics.
    pub backend: BackendStats,
}
