//! # kv-backend-sqlite
//!
//! The SQLite backend of DataKnobs KV: one table keyed `(namespace, key)`
//! (`WITHOUT ROWID`, WAL journal mode), every record field in its own
//! column, user metadata as JSON, and an index on `expires_at`.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use kv_backend_sqlite::{SqliteOptions, SqliteStore};
//! use kv_core::{KVStore, Store};
//!
//! let dir = tempfile::tempdir()?;
//! let backend = SqliteStore::open(SqliteOptions::new(dir.path().join("kv.db"))).await?;
//! let store = Store::new(Arc::new(backend));
//! store.set("app.name", "kv".into()).await?;
//! assert_eq!(store.keys("app.*").await?, ["app.name"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # });
//! ```
//!
//! SQLite calls never run on the async executor's threads: one writer
//! connection and a few reader connections each live on a thread of their
//! own and take jobs from a queue, and on a multi-threaded runtime a call
//! instead runs on the caller's thread inside
//! `tokio::task::block_in_place`, waiting there for a busy connection (up
//! to 32 callers at once; beyond that they are queued). Several processes may share one file;
//! writes wait for each other up to `busy_timeout`.
//!
//! ## Layout
//!
//! - [`options`]: [`SqliteOptions`], [`Synchronous`], the table-name check.
//! - `schema`: the table, its versioned schema, the SQL, rows ↔ records.
//! - `pool`: the connection threads.
//! - [`backend`]: [`SqliteStore`], the `kv_core::Backend` implementation.
#![deny(missing_docs)]

pub mod backend;
pub mod options;
mod pool;
mod schema;

pub use backend::{Planned, SqliteStore};
pub use options::{check_table_name, SqliteOptions, Synchronous, DEFAULT_TABLE};
pub use schema::SCHEMA_VERSION;
