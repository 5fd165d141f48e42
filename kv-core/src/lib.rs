//! # kv-core
//!
//! The core of DataKnobs KV: one async [`KVStore`] API with hierarchical
//! dot-notation keys, glob patterns, typed values, per-key metadata, TTL,
//! atomic operations, namespaces and batches, implemented once by [`Store`]
//! over any record-level [`Backend`].
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use kv_core::{KVStore, Store};
//! let store = Store::memory();
//! store.set("app.config.database.host", "localhost".into()).await?;
//! store.set("app.config.database.port", 5432.into()).await?;
//! assert_eq!(store.count_pattern("app.config.**").await?, 2);
//! assert_eq!(store.increment("app.stats.visits", 1).await?, 1);
//! # Ok::<(), kv_core::Error>(())
//! # });
//! ```
//!
//! ## Layout
//!
//! - [`key`]: key and namespace rules ([`Key`], [`KeyRules`]).
//! - [`pattern`]: glob patterns compiled to a linear-time matcher ([`Pattern`]).
//! - [`value`]: [`Value`], [`ValueType`] and the value byte encoding.
//! - [`metadata`]: system and user metadata, [`MetadataFilter`].
//! - [`record`]: [`Record`], what backends store, and its codec.
//! - [`clock`]: [`Timestamp`], [`Clock`], [`ManualClock`].
//! - [`backend`]: the [`Backend`] trait and its plain data.
//! - [`ops`]: generic implementations of the backend fast paths.
//! - [`api`]: the [`KVStore`] trait and [`KVStoreExt`].
//! - [`migrate`]: [`migrate_store`] and the import side of every store.
//! - [`types`]: options, entries, pages, batches, stats.
//! - [`store`]: [`Store`], the one implementation of the semantics.
//! - [`memory`]: the in-memory reference backend.
//! - `testing` (feature `testing`): the backend conformance suite.
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod api;
pub mod backend;
pub mod clock;
pub mod error;
pub mod key;
pub mod memory;
pub mod metadata;
pub mod migrate;
pub mod ops;
pub mod pattern;
pub mod record;
pub mod store;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
pub mod types;
pub mod value;

pub use api::{KVStore, KVStoreExt};
pub use backend::{
    Backend, BackendStats, BatchOp, BatchOutcome, Capabilities, CasMechanism, Cooperation,
    DeleteOutcome, KeyInfo, KeyRange, Precondition, WriteOutcome,
};
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use error::{BoxError, Error, KeyRule, Result};
pub use key::{Key, KeyRules, DEFAULT_NAMESPACE};
pub use memory::MemoryBackend;
pub use metadata::{Condition, Metadata, MetadataFilter, SystemMetadata, UserMetadata};
pub use migrate::{
    migrate_store, ImportOptions, ImportOutcome, MigrateError, MigrateOptions, MigrateReport,
    Namespaces, Overwrite, ResumePoint, SkipReason,
};
pub use pattern::Pattern;
pub use record::Record;
pub use store::{Store, StoreBuilder};
pub use types::{
    Batch, BatchItem, Entry, ScanPage, SetOptions, StoreOptions, StoreStats, Ttl,
    DEFAULT_MAX_VALUE_SIZE,
};
pub use value::{Value, ValueType};
