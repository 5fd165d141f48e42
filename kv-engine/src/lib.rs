//! # kv-engine
//!
//! The native embedded engine of DataKnobs KV: an in-memory index of live
//! keys in front of a write-ahead log and snapshots, in one directory, with
//! zero set-up.
//!
//! - **WAL**: CRC32-checked records (varint lengths, little-endian) in
//!   segments rotated at a size threshold; atomic batches framed by
//!   BATCH_START / BATCH_END.
//! - **Snapshots**: `MINIKVSN` files with every live key in order and a
//!   footer CRC, written by background compaction while reads and writes go
//!   on.
//! - **MANIFEST**: a text file naming the snapshot and the first segment to
//!   replay, replaced by write-temp → fsync → rename → fsync(dir).
//! - **Durability**: `SyncMode::Always` (group commit: concurrent writers
//!   share an fsync), `Periodic`, `Never`; after a failed write or fsync the
//!   engine refuses further work until reopened.
//! - **Recovery**: snapshot + WAL replay; a torn tail is cut off, corruption
//!   before it is an error with file and offset, never skipped.
//! - **Locking**: an exclusive `flock` on the directory; a second open from
//!   this or another process fails with [`Error::Locked`].
//!
//! The byte formats are in `docs/engine-format.md`.
//!
//! ```
//! use std::time::Duration;
//! use kv_engine::{Db, Options, SyncMode};
//!
//! let dir = tempfile::tempdir()?;
//! let db = Db::open(Options::new(dir.path()).sync(SyncMode::Never))?;
//! db.set(b"user:1", b"ada")?;
//! db.set_with_ttl(b"session:abc", b"1", Duration::from_secs(60))?;
//! assert_eq!(db.incr(b"visits")?, 1);
//! let mut batch = db.batch();
//! batch.set(b"a", b"1").set(b"b", b"2").delete(b"user:1");
//! batch.write()?;
//! assert_eq!(db.scan(b"", 10)?.len(), 4);
//! db.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! With the `dataknobs-kv` facade, `engine:PATH` opens it behind the
//! `KVStore` API ([`EngineBackend`]).
//!
//! ## Layout
//!
//! - [`db`]: [`Db`] — open and recovery, the write path and group commit,
//!   reads, transactions, batches, scans, close.
//! - [`index`]: the in-memory index (slab, hash table, sorted chunks,
//!   expiry set).
//! - [`wal`]: the log — [`wal::format`] (frames), [`wal::reader`] (replay,
//!   torn tails, corruption), the writer (buffer, segments, sequence
//!   numbers).
//! - [`snapshot`], [`manifest`]: the other two file kinds.
//! - `compaction`, `workers`: background compaction, periodic fsync, the
//!   TTL cleaner.
//! - [`storage`]: file-system access behind a trait, with fault injection.
//! - [`stats`], [`options`], [`error`], [`backend`] (the `kv_core::Backend`
//!   adapter).
#![deny(missing_docs)]

pub mod backend;
mod compaction;
pub mod db;
pub mod error;
pub mod index;
pub mod manifest;
pub mod options;
pub mod snapshot;
pub mod stats;
pub mod storage;
mod varint;
pub mod wal;
mod workers;

pub use backend::EngineBackend;
pub use db::{Batch, Db, Entry, ScanEntry, TtlState, Txn, Write};
pub use error::{Error, Result};
pub use options::{Options, SyncMode};
pub use stats::Stats;
