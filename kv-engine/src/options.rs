//! [`Options`] of [`Db::open`](crate::Db::open).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use kv_core::{Clock, SystemClock};

use crate::error::Error;
use crate::storage::{RealStorage, Storage};

/// When acknowledged writes reach stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Every write is fsynced before it returns. Concurrent writers share
    /// one fsync (group commit). Survives power loss. Other readers see a
    /// write once it is buffered, before its fsync ends.
    Always,
    /// A background thread writes and fsyncs at this interval; a crash of
    /// the machine loses at most about one interval of writes, a crash of
    /// the process loses at most what was still in the write buffer.
    Periodic(Duration),
    /// Writes are buffered and written when the buffer fills, on `flush`,
    /// and on close; fsync only on `flush`, rotation and close.
    Never,
}

impl fmt::Display for SyncMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncMode::Always => f.write_str("always"),
            SyncMode::Periodic(d) => write!(f, "periodic:{}ms", d.as_millis()),
            SyncMode::Never => f.write_str("never"),
        }
    }
}

impl FromStr for SyncMode {
    type Err = Error;
    /// `always`, `never`, `periodic` (100 ms), `periodic:250ms`, `periodic:2s`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "always" => return Ok(SyncMode::Always),
            "never" => return Ok(SyncMode::Never),
            "periodic" => return Ok(SyncMode::Periodic(Duration::from_millis(100))),
            _ => {}
        }
        let bad = || {
            Error::InvalidArgument(format!(
                "sync mode {s:?}: expected always, never, periodic or periodic:<n>ms|<n>s"
            ))
        };
        let spec = s.strip_prefix("periodic:").ok_or_else(bad)?;
        let d = if let Some(ms) = spec.strip_suffix("ms") {
            Duration::from_millis(ms.parse().map_err(|_| bad())?)
        } else if let Some(secs) = spec.strip_suffix('s') {
            Duration::from_secs(secs.parse().map_err(|_| bad())?)
        } else {
            return Err(bad());
        };
        if d.is_zero() {
            return Err(bad());
        }
        Ok(SyncMode::Periodic(d))
    }
}

/// How to open a database. Plain data with documented defaults.
#[derive(Clone)]
pub struct Options {
    /// The database directory (created if missing).
    pub path: PathBuf,
    /// Durability of writes. Default [`SyncMode::Always`].
    pub sync: SyncMode,
    /// A WAL segment is closed and a new one started past this size.
    /// Default 64 MiB.
    pub segment_size: u64,
    /// Compaction (a new snapshot, old segments deleted) starts in the
    /// background once the WAL since the last snapshot passes this size.
    /// Default 256 MiB.
    pub max_wal_size: u64,
    /// Compact in the background when `max_wal_size` is passed. Default
    /// `true`; `compact()` works either way.
    pub background_compaction: bool,
    /// Open read-only: no writes, no background work, shared lock.
    /// Default `false`.
    pub read_only: bool,
    /// The engine enforces TTLs itself: expired keys are invisible to its
    /// reads, removed by a background cleaner and left out of snapshots.
    /// Default `true`. The `kv_core::Backend` adapter turns this off: there
    /// the store decides expiry with its own clock.
    pub enforce_ttl: bool,
    /// Period of the TTL cleaner. Default 1 s.
    pub ttl_interval: Duration,
    /// Time budget of one TTL cleaner round. Default 10 ms.
    pub ttl_budget: Duration,
    /// Record every N-th operation's latency for the stats (0 = none).
    /// Default 16.
    pub latency_sample_every: u32,
    /// Source of time for TTLs and timestamps. Default the system clock.
    pub clock: Arc<dyn Clock>,
    /// File-system access. Default the real file system; tests inject
    /// failures with [`FaultyStorage`](crate::storage::FaultyStorage).
    pub storage: Arc<dyn Storage>,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("path", &self.path)
            .field("sync", &self.sync)
            .field("segment_size", &self.segment_size)
            .field("max_wal_size", &self.max_wal_size)
            .field("background_compaction", &self.background_compaction)
            .field("read_only", &self.read_only)
            .field("enforce_ttl", &self.enforce_ttl)
            .finish_non_exhaustive()
    }
}

impl Options {
    /// Defaults for a database in `path`.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Options {
            path: path.as_ref().to_owned(),
            sync: SyncMode::Always,
            segment_size: 64 << 20,
            max_wal_size: 256 << 20,
            background_compaction: true,
            read_only: false,
            enforce_ttl: true,
            ttl_interval: Duration::from_secs(1),
            ttl_budget: Duration::from_millis(10),
            latency_sample_every: 16,
            clock: Arc::new(SystemClock),
            storage: Arc::new(RealStorage),
        }
    }

    /// Sets [`sync`](Self::sync).
    pub fn sync(mut self, sync: SyncMode) -> Self {
        self.sync = sync;
        self
    }

    /// Sets [`segment_size`](Self::segment_size).
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes;
        self
    }

    /// Sets [`max_wal_size`](Self::max_wal_size).
    pub fn max_wal_size(mut self, bytes: u64) -> Self {
        self.max_wal_size = bytes;
        self
    }

    /// Sets [`background_compaction`](Self::background_compaction).
    pub fn background_compaction(mut self, on: bool) -> Self {
        self.background_compaction = on;
        self
    }

    /// Sets [`read_only`](Self::read_only).
    pub fn read_only(mut self, on: bool) -> Self {
        self.read_only = on;
        self
    }

    /// Sets [`enforce_ttl`](Self::enforce_ttl).
    pub fn enforce_ttl(mut self, on: bool) -> Self {
        self.enforce_ttl = on;
        self
    }

    /// Sets [`clock`](Self::clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets [`storage`](Self::storage).
    pub fn storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = storage;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.segment_size < 4096 {
            return Err(Error::InvalidArgument(
                "segment_size must be at least 4096 bytes".into(),
            ));
        }
        if self.max_wal_size < self.segment_size {
            return Err(Error::InvalidArgument(
                "max_wal_size must be at least segment_size".into(),
            ));
        }
        if let SyncMode::Periodic(d) = self.sync {
            if d.is_zero() {
                return Err(Error::InvalidArgument(
                    "the periodic sync interval must be more than zero".into(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_modes_parse() {
        assert_eq!("always".parse::<SyncMode>().ok(), Some(SyncMode::Always));
        assert_eq!("Never".parse::<SyncMode>().ok(), Some(SyncMode::Never));
        assert_eq!(
            "periodic:250ms".parse::<SyncMode>().ok(),
            Some(SyncMode::Periodic(Duration::from_millis(250)))
        );
        assert_eq!(
            "periodic:2s".parse::<SyncMode>().ok(),
            Some(SyncMode::Periodic(Duration::from_secs(2)))
        );
        assert!("periodic:0ms".parse::<SyncMode>().is_err());
        assert!("sometimes".parse::<SyncMode>().is_err());
    }
}
