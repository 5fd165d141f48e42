//! # kv-backend-s3
//!
//! The object-store backend of DataKnobs KV: one object per key, over any
//! [`object_store::ObjectStore`] — Amazon S3 and S3-compatible servers
//! ([`S3Store::s3`]), a local folder ([`S3Store::local`]) or memory
//! ([`S3Store::memory`]) for development, or a store you build
//! ([`S3Store::new`]).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use kv_backend_s3::S3Store;
//! use kv_core::{KVStore, Store};
//!
//! let store = Store::new(Arc::new(S3Store::memory()));
//! store.set("app.config.host", "localhost".into()).await?;
//! store.set("app.config.port", 8080.into()).await?;
//! assert_eq!(store.keys("app.config.*").await?, ["app.config.host", "app.config.port"]);
//! assert_eq!(store.increment("app.visits", 1).await?, 1);
//! // Object stores cannot write several objects atomically: batches are refused.
//! assert!(store.batch(kv_core::Batch::new().set("a", 1)).await.is_err());
//! # Ok::<(), kv_core::Error>(())
//! # });
//! ```
//!
//! ## Layout
//!
//! Each record is one object,
//! `{prefix}/{enc(namespace)}/{enc(key), in 200-character segments}!`,
//! whose body is [`Record::encode_body`](kv_core::Record::encode_body)
//! (value, system and user metadata, expiry). `enc` is an order-preserving
//! base64 ([`codec`]), so listing objects lists keys in key order and any
//! key — with `/`, `%`, `?`, `#`, `\`, non-ASCII — is a safe object name.
//! S3 names are at most 1,024 bytes, so keys are limited to what fits
//! ([`S3Store::max_key_len`], about 700 bytes under a short prefix),
//! declared to the store through `Capabilities::max_key_len`.
//!
//! - [`codec`]: the order-preserving name encoding.
//! - [`layout`]: object names ↔ namespaces and keys, length limits.
//! - [`options`]: [`S3Options`] and [`S3Config`] (secrets never printed).
//! - `error`: object-store errors mapped in one place.
//! - [`cas`]: conditional PUTs — the probe, what was seen of each object
//!   (ETag and record), the process-local fallback lock.
//! - [`backend`]: [`S3Store`], the `kv_core::Backend` implementation.
//!
//! ## Atomicity
//!
//! Compare-and-swap, `set_nx`, `increment`, `append` and every `set` are
//! optimistic read-modify-write loops in `kv_core::Store`, made atomic
//! here by conditional PUTs: `If-None-Match: *` to create and `If-Match:
//! <etag>` to update, so many processes on many hosts may share a bucket.
//! A store that ignores those headers is detected by a probe and its
//! conditional writes are refused with `Error::Unsupported` — unless
//! [`S3Options::allow_local_locking`] is set (as [`S3Store::local`] does),
//! which makes them atomic **within one process only**.
//!
//! Not atomic on an object store: batches (refused), and deletes, which
//! `object_store` cannot make conditional (see [`backend`]).
//!
//! ## Limits and costs
//!
//! - Keys up to [`S3Store::max_key_len`] bytes; namespaces up to
//!   [`layout::MAX_NAMESPACE_LEN`] (191) bytes, so a namespace is one path
//!   segment on any file system.
//! - `get` is one GET; `increment` and CAS are a GET and a conditional
//!   PUT; a `set` is one conditional PUT when the backend has seen the
//!   key in its current form ([`S3Options::seen_objects`]), else a GET and
//!   a PUT; `get_many` runs [`S3Options::concurrency`] GETs at a time.
//! - Expiry, version and metadata live in the object body, which a LIST
//!   does not return: scans and pattern operations LIST the key range *and
//!   GET every object in it* (in parallel); `keys` and `count` GET those
//!   the backend has not seen with the ETag the LIST shows. Keep pattern
//!   operations to narrow prefixes on large buckets.
//! - Expired objects stay stored (invisible to every read) until
//!   `cleanup_expired` removes them.
#![deny(missing_docs)]

pub mod backend;
pub mod cas;
pub mod codec;
mod error;
pub mod layout;
pub mod options;

pub use backend::S3Store;
pub use options::{S3Config, S3Options};
