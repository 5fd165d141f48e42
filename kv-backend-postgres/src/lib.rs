//! # kv-backend-postgres
//!
//! The PostgreSQL backend of DataKnobs KV (sqlx, Tokio): one table, the key
//! in `COLLATE "C"` so prefix ranges use the primary key, the value as
//! `BYTEA`, user metadata as `JSONB` with a GIN index, `version BIGINT` for
//! compare-and-swap, and an index on `expires_at`. Many processes on many
//! hosts may share one table.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kv_core::Error> {
//! use std::sync::Arc;
//! use kv_backend_postgres::{PgOptions, PgStore};
//! use kv_core::{KVStore, Store};
//!
//! let backend = PgStore::open(PgOptions::new("postgres://kv:secret@localhost/app")).await?;
//! let store = Store::new(Arc::new(backend));
//! store.set("app.name", "kv".into()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Every statement is parameterised; the table name (from configuration)
//! is checked against `^[A-Za-z_][A-Za-z0-9_]{0,62}$` before it is put in
//! any statement. Passwords never appear in `Debug` output or errors.
//!
//! ## Layout
//!
//! - [`options`]: [`PgOptions`] and the table-name check.
//! - `schema`: the table, its versioned schema, the SQL, rows ↔ records.
//! - `error`: driver errors mapped in one place; bounded retries.
//! - [`backend`]: [`PgStore`], the `kv_core::Backend` implementation.
#![deny(missing_docs)]

pub mod backend;
mod error;
pub mod options;
mod schema;

pub use backend::{PgStore, Planned};
pub use options::{check_table_name, redact, PgOptions, DEFAULT_TABLE};
pub use schema::SCHEMA_VERSION;
