//! # kv-cache
//!
//! A caching layer for DataKnobs KV: [`CacheLayer`] is a
//! `kv_core::Backend` that wraps any other, so every `KVStore` operation
//! passes through it and no backend changes. Single-key reads are served
//! from a bounded in-memory tier (quick_cache, by entry count and bytes) and,
//! optionally, a disk tier (sled) that survives restarts.
//!
//! **Answers do not change**: writes reach the backend before the cache,
//! atomic operations and batches refresh or drop exactly what they touched,
//! pattern deletes drop every key they could have matched, and an entry is
//! never served past its own `expires_at`. Writes made *around* the layer
//! (another process, another handle on the backend) are seen within the
//! cache `ttl`, measured on the store's clock.
//!
//! ## Layout
//!
//! - [`options`]: [`CacheOptions`], [`DiskTierOptions`].
//! - [`layer`]: [`CacheLayer`] and its rules.
//! - `disk`: the sled tier.
#![deny(missing_docs)]

mod disk;
pub mod layer;
pub mod options;

pub use layer::CacheLayer;
pub use options::{CacheOptions, DiskTierOptions};
