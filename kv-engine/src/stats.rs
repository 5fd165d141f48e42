//! Operation counters and sampled latency histograms.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Sub-buckets per power of two (relative error under 1/8).
const SUB: usize = 8;
const BUCKETS: usize = 64 * SUB;

/// A log-linear histogram of durations in nanoseconds, lock-free.
#[derive(Debug)]
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

fn bucket_of(ns: u64) -> usize {
    if ns < SUB as u64 {
        return ns as usize;
    }
    let log = 63 - ns.leading_zeros() as usize;
    let shift = log - 3;
    let sub = ((ns >> shift) as usize) & (SUB - 1);
    (log - 2) * SUB + sub
}

fn lower_bound_of(bucket: usize) -> u64 {
    if bucket < SUB {
        return bucket as u64;
    }
    let log = bucket / SUB + 2;
    let sub = (bucket % SUB) as u64;
    (SUB as u64 | sub) << (log - 3)
}

impl Histogram {
    /// Records one duration.
    pub fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(ns).min(BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
    }

    /// The `q` quantile (0..=1), or zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_nanos(lower_bound_of(i));
            }
        }
        Duration::from_nanos(lower_bound_of(BUCKETS - 1))
    }

    /// Number of recorded durations.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }
}

/// A counter spread over cache lines, so threads adding at once do not
/// fight over one (reads on several threads would otherwise serialise on
/// it).
#[derive(Debug, Default)]
pub(crate) struct Striped {
    stripes: [Padded; 16],
}

#[derive(Debug, Default)]
#[repr(align(64))]
struct Padded(AtomicU64);

fn stripe() -> usize {
    use std::sync::atomic::AtomicUsize;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    STRIPE.with(|s| *s)
}

impl Striped {
    pub(crate) fn add(&self, n: u64) {
        self.stripes[stripe() % 16]
            .0
            .fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sum(&self) -> u64 {
        self.stripes
            .iter()
            .map(|p| p.0.load(Ordering::Relaxed))
            .sum()
    }
}

/// Whether this thread should time its next operation: every `every`-th
/// call per thread (a thread-local count, so it costs no shared write).
pub(crate) fn sample_now(every: u32) -> bool {
    use std::cell::Cell;
    thread_local! {
        static COUNT: Cell<u32> = const { Cell::new(0) };
    }
    if every == 0 {
        return false;
    }
    COUNT.with(|c| {
        let n = c.get().wrapping_add(1);
        c.set(n);
        n % every == 0
    })
}

/// Counters kept by the database.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) gets: Striped,
    pub(crate) writes: AtomicU64,
    pub(crate) deletes: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) fsyncs: AtomicU64,
    pub(crate) compactions: AtomicU64,
    pub(crate) expired_removed: AtomicU64,
    pub(crate) read_latency: Histogram,
    pub(crate) write_latency: Histogram,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// A snapshot of the database's figures, from [`Db::stats`](crate::Db::stats).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stats {
    /// Live keys in the index (expired ones not yet removed included).
    pub keys: u64,
    /// Key and value bytes in the index.
    pub key_value_bytes: u64,
    /// Estimated index memory beyond key and value bytes.
    pub index_overhead_bytes: u64,
    /// WAL bytes since the last snapshot.
    pub wal_bytes: u64,
    /// Number of the active WAL segment.
    pub wal_segment: u64,
    /// Size of the current snapshot file.
    pub snapshot_bytes: u64,
    /// Reads served.
    pub gets: u64,
    /// Keys written.
    pub writes: u64,
    /// Keys deleted.
    pub deletes: u64,
    /// Batches committed.
    pub batches: u64,
    /// fsync calls made for commits.
    pub fsyncs: u64,
    /// Compactions finished.
    pub compactions: u64,
    /// Keys removed by TTL expiry.
    pub expired_removed: u64,
    /// Read latency percentiles (p50, p95, p99), sampled.
    pub read_latency: [Duration; 3],
    /// Write latency percentiles (p50, p95, p99), sampled; includes the wait
    /// for fsync in `Always` mode.
    pub write_latency: [Duration; 3],
}

pub(crate) fn percentiles(h: &Histogram) -> [Duration; 3] {
    [h.quantile(0.50), h.quantile(0.95), h.quantile(0.99)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for ns in [0u64, 1, 7, 8, 9, 15, 16, 100, 1000, 12_345, 1 << 40] {
            let b = bucket_of(ns);
            assert!(b >= last);
            last = b;
            let lo = lower_bound_of(b);
            assert!(lo <= ns, "{ns}: {lo}");
            assert!(ns - lo <= ns / 8 + 1, "{ns}: {lo}");
        }
    }

    #[test]
    fn quantiles() {
        let h = Histogram::default();
        for i in 1..=100u64 {
            h.record(Duration::from_micros(i));
        }
        let p50 = h.quantile(0.5).as_micros();
        assert!((44..=50).contains(&p50), "{p50}");
        let p99 = h.quantile(0.99).as_micros();
        assert!((87..=99).contains(&p99), "{p99}");
    }
}
