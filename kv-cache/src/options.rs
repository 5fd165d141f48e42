//! [`CacheOptions`]: bounds, freshness and the optional disk tier.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kv_core::{Clock, SystemClock};

/// How the cache layer behaves. Plain data with documented defaults.
#[derive(Clone)]
pub struct CacheOptions {
    /// Most entries held in memory. Default 10,000.
    pub capacity: u64,
    /// Most bytes (keys, values and metadata) held in memory; `None` = only
    /// the entry bound. Default `None`.
    pub max_bytes: Option<u64>,
    /// How long a cached entry is served without asking the backend.
    /// Writes through this layer update it at once; writes that bypass it
    /// (another process, another handle) are seen at most `ttl` later.
    /// Default 60 s.
    pub ttl: Duration,
    /// Also cache "not found" answers (invalidated by writes through this
    /// layer). Default `false`.
    pub negative: bool,
    /// A second tier on disk (sled) for warm restarts and more entries than
    /// memory holds. Default `None`.
    pub disk: Option<DiskTierOptions>,
    /// The clock freshness is judged by — the store's clock, so staleness
    /// tests need no sleeping. Default the system clock.
    pub clock: Arc<dyn Clock>,
}

/// The disk tier.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskTierOptions {
    /// Directory of the sled database.
    pub path: PathBuf,
    /// Most bytes of entries kept on disk; the oldest go first. Default
    /// 256 MiB.
    pub max_bytes: u64,
}

impl DiskTierOptions {
    /// A disk tier in `path` with the default bound.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DiskTierOptions {
            path: path.into(),
            max_bytes: 256 << 20,
        }
    }
}

impl fmt::Debug for CacheOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheOptions")
            .field("capacity", &self.capacity)
            .field("max_bytes", &self.max_bytes)
            .field("ttl", &self.ttl)
            .field("negative", &self.negative)
            .field("disk", &self.disk)
            .finish_non_exhaustive()
    }
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            capacity: 10_000,
            max_bytes: None,
            ttl: Duration::from_secs(60),
            negative: false,
            disk: None,
            clock: Arc::new(SystemClock),
        }
    }
}

impl CacheOptions {
    /// Defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`capacity`](Self::capacity).
    pub fn capacity(mut self, n: u64) -> Self {
        self.capacity = n;
        self
    }

    /// Sets [`max_bytes`](Self::max_bytes).
    pub fn max_bytes(mut self, n: u64) -> Self {
        self.max_bytes = Some(n);
        self
    }

    /// Sets [`ttl`](Self::ttl).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets [`negative`](Self::negative).
    pub fn negative(mut self, on: bool) -> Self {
        self.negative = on;
        self
    }

    /// Sets [`disk`](Self::disk).
    pub fn disk(mut self, disk: DiskTierOptions) -> Self {
        self.disk = Some(disk);
        self
    }

    /// Sets [`clock`](Self::clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}
