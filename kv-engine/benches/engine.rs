//! Side-by-side benchmark of the native engine against fjall, redb and sled.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/main/target-bench cargo bench -p kv-engine --bench engine -- [options]
//!
//!   --quick              100,000 keys (4 KiB run: 10,000), smaller rounds
//!   --only A,B           run only rows whose name contains one of the substrings
//!                        (case-insensitive; may be repeated)
//!   --engines A,B        subset of ours,fjall,redb,sled
//!   --dir PATH           where the temporary databases go (default: $TMPDIR or /tmp)
//!   --json PATH          where the JSON results go (default below)
//! ```
//!
//! Every engine gets a fresh temporary directory and the same data: random
//! 16-byte keys from a fixed-seed xorshift, values cut from a fixed random
//! pool. Two data sets: N keys with 100-byte values (N = 1,000,000, or
//! 100,000 with `--quick`) and N/10 keys with 4 KiB values. Each data set
//! runs twice: with durable commits (ours `SyncMode::Always`, fjall
//! `PersistMode::SyncData` on commit, redb `Durability::Immediate` = its
//! default, sled `flush()` after each write or batch) and with sync off (ours
//! `SyncMode::Never`, fjall batches without persist / `manual_journal_persist`,
//! redb `Durability::None`, sled without `flush()`).
//!
//! Reads do not depend on the durability setting; they run on the sync-off
//! databases. The memory row runs each engine in a child process (this binary
//! re-executed with `--mem-child`) and reads VmRSS before and after the load.
//!
//! The JSON goes to `$CARGO_TARGET_DIR/engine-bench.json` when
//! `CARGO_TARGET_DIR` is set, otherwise to `<workspace>/target/engine-bench.json`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kv_core::{KVStore, Store, Value};
use kv_engine::{Db, EngineBackend, Options, SyncMode};
use redb::ReadableDatabase;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type R<T> = Result<T, BoxError>;

const KEY_SEED: u64 = 0x9E37_79B9_7F4A_7C15;
const LOAD_BATCH: usize = 1000;

// ---------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------

/// xorshift64: tiny, fixed, no crate.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

type Key = [u8; 16];

fn keys(seed: u64, n: usize) -> Vec<Key> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let mut k = [0u8; 16];
            k[..8].copy_from_slice(&rng.next().to_be_bytes());
            k[8..].copy_from_slice(&rng.next().to_be_bytes());
            k
        })
        .collect()
}

/// Values are windows of a fixed random pool (incompressible, identical for
/// every engine).
struct Values {
    pool: Vec<u8>,
    size: usize,
}

const POOL_WINDOWS: usize = 1 << 16;

impl Values {
    fn new(size: usize) -> Self {
        let mut rng = Rng::new(0xDEAD_BEEF);
        let mut pool = Vec::with_capacity(size + POOL_WINDOWS + 8);
        while pool.len() < size + POOL_WINDOWS {
            pool.extend_from_slice(&rng.next().to_le_bytes());
        }
        Values { pool, size }
    }
    fn get(&self, i: usize) -> &[u8] {
        let off = i.wrapping_mul(61) % POOL_WINDOWS;
        &self.pool[off..off + self.size]
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Ours,
    Fjall,
    Redb,
    Sled,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ours => "ours",
            Kind::Fjall => "fjall",
            Kind::Redb => "redb",
            Kind::Sled => "sled",
        }
    }
    fn parse(s: &str) -> Option<Kind> {
        match s {
            "ours" | "engine" | "kv-engine" => Some(Kind::Ours),
            "fjall" => Some(Kind::Fjall),
            "redb" => Some(Kind::Redb),
            "sled" => Some(Kind::Sled),
            _ => None,
        }
    }
}

const ALL: [Kind; 4] = [Kind::Ours, Kind::Fjall, Kind::Redb, Kind::Sled];

// ---------------------------------------------------------------------------
// Engines behind one interface
// ---------------------------------------------------------------------------

trait Engine: Send + Sync {
    /// Opens (or reopens) the database in its directory.
    fn open(&mut self) -> R<()>;
    /// Closes it (everything written is on disk afterwards).
    fn close(&mut self) -> R<()>;
    /// One atomic commit of all `items` (durable when synced).
    fn write_batch(&self, items: &[(&[u8], &[u8])]) -> R<()>;
    /// One single write (durable when synced).
    fn put(&self, key: &[u8], value: &[u8]) -> R<()>;
    /// A reader (redb: one read transaction).
    fn reader(&self) -> R<Box<dyn Reader + '_>>;
    /// Our engine only: write a snapshot.
    fn compact(&self) -> R<()> {
        Ok(())
    }
    /// Our engine only: (index overhead bytes, key+value bytes).
    fn engine_stats(&self) -> Option<(u64, u64)> {
        None
    }
    /// Our engine only: fsyncs so far (for writes per fsync).
    fn fsyncs(&self) -> Option<u64> {
        None
    }
    /// Our engine only: compactions finished so far.
    fn compactions(&self) -> Option<u64> {
        None
    }
}

trait Reader {
    /// Returns the value length (0 = missing).
    fn get(&mut self, key: &[u8]) -> R<usize>;
    /// Reads the (up to) 10 pairs starting at `start`; returns the bytes.
    fn scan10(&mut self, start: &[u8]) -> R<usize>;
}

fn not_open() -> BoxError {
    "database not open".into()
}

// --- ours --------------------------------------------------------------------

struct Ours {
    dir: PathBuf,
    sync: bool,
    db: Option<Db>,
}

impl Ours {
    fn db(&self) -> R<&Db> {
        self.db.as_ref().ok_or_else(not_open)
    }
}

/// Larger than every 16-byte key.
const SCAN_END: [u8; 17] = [0xff; 17];

impl Engine for Ours {
    fn open(&mut self) -> R<()> {
        let mode = if self.sync {
            SyncMode::Always
        } else {
            SyncMode::Never
        };
        self.db = Some(Db::open(Options::new(&self.dir).sync(mode))?);
        Ok(())
    }
    fn close(&mut self) -> R<()> {
        if let Some(db) = self.db.take() {
            db.close()?;
        }
        Ok(())
    }
    fn write_batch(&self, items: &[(&[u8], &[u8])]) -> R<()> {
        let db = self.db()?;
        let mut b = db.batch();
        for (k, v) in items {
            b.set(k, v);
        }
        b.write()?;
        Ok(())
    }
    fn put(&self, key: &[u8], value: &[u8]) -> R<()> {
        self.db()?.set(key, value)?;
        Ok(())
    }
    fn reader(&self) -> R<Box<dyn Reader + '_>> {
        Ok(Box::new(OursReader(self.db()?)))
    }
    fn compact(&self) -> R<()> {
        self.db()?.compact()?;
        Ok(())
    }
    fn engine_stats(&self) -> Option<(u64, u64)> {
        let s = self.db.as_ref()?.stats();
        Some((s.index_overhead_bytes, s.key_value_bytes))
    }
    fn fsyncs(&self) -> Option<u64> {
        Some(self.db.as_ref()?.stats().fsyncs)
    }
    fn compactions(&self) -> Option<u64> {
        Some(self.db.as_ref()?.stats().compactions)
    }
}

struct OursReader<'a>(&'a Db);

impl Reader for OursReader<'_> {
    fn get(&mut self, key: &[u8]) -> R<usize> {
        Ok(self.0.get(key)?.map_or(0, |v| v.len()))
    }
    fn scan10(&mut self, start: &[u8]) -> R<usize> {
        // The zero-copy range walk, like the peers' iterators (redb's
        // guards, fjall's slices, sled's IVecs); `scan_range` would also
        // copy each pair into new vectors.
        let (mut n, mut seen) = (0, 0);
        self.0.for_each_in(
            Bound::Included(start),
            Bound::Excluded(&SCAN_END[..]),
            |e| {
                n += e.key.len() + e.value.len();
                seen += 1;
                seen < 10
            },
        )?;
        Ok(n)
    }
}

// --- fjall -------------------------------------------------------------------

struct Fjall {
    dir: PathBuf,
    sync: bool,
    db: Option<(fjall::Database, fjall::Keyspace)>,
}

impl Fjall {
    fn handles(&self) -> R<&(fjall::Database, fjall::Keyspace)> {
        self.db.as_ref().ok_or_else(not_open)
    }
}

impl Engine for Fjall {
    fn open(&mut self) -> R<()> {
        // With sync off, single inserts stay in the journal's user-space
        // buffer (as ours do in `Never` mode) instead of a write(2) each.
        let db = fjall::Database::builder(&self.dir)
            .manual_journal_persist(!self.sync)
            .open()?;
        let ks = db.keyspace("bench", fjall::KeyspaceCreateOptions::default)?;
        self.db = Some((db, ks));
        Ok(())
    }
    fn close(&mut self) -> R<()> {
        if let Some((db, ks)) = self.db.take() {
            if self.sync {
                db.persist(fjall::PersistMode::SyncData)?;
            }
            drop(ks);
            drop(db);
        }
        Ok(())
    }
    fn write_batch(&self, items: &[(&[u8], &[u8])]) -> R<()> {
        let (db, ks) = self.handles()?;
        let mut b = db.batch();
        if self.sync {
            b = b.durability(Some(fjall::PersistMode::SyncData));
        }
        for (k, v) in items {
            b.insert(ks, *k, *v);
        }
        b.commit()?;
        Ok(())
    }
    fn put(&self, key: &[u8], value: &[u8]) -> R<()> {
        let (db, ks) = self.handles()?;
        if self.sync {
            let mut b = db.batch().durability(Some(fjall::PersistMode::SyncData));
            b.insert(ks, key, value);
            b.commit()?;
        } else {
            ks.insert(key, value)?;
        }
        Ok(())
    }
    fn reader(&self) -> R<Box<dyn Reader + '_>> {
        Ok(Box::new(FjallReader(&self.handles()?.1)))
    }
}

struct FjallReader<'a>(&'a fjall::Keyspace);

impl Reader for FjallReader<'_> {
    fn get(&mut self, key: &[u8]) -> R<usize> {
        Ok(self.0.get(key)?.map_or(0, |v| v.len()))
    }
    fn scan10(&mut self, start: &[u8]) -> R<usize> {
        let mut n = 0;
        for g in self.0.range::<&[u8], _>(start..).take(10) {
            let (k, v) = g.into_inner()?;
            n += k.len() + v.len();
        }
        Ok(n)
    }
}

// --- redb --------------------------------------------------------------------

const REDB_TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("bench");

struct Redb {
    path: PathBuf,
    sync: bool,
    db: Option<redb::Database>,
}

impl Redb {
    fn db(&self) -> R<&redb::Database> {
        self.db.as_ref().ok_or_else(not_open)
    }
    fn txn(&self) -> R<redb::WriteTransaction> {
        let mut tx = self.db()?.begin_write()?;
        if !self.sync {
            tx.set_durability(redb::Durability::None)?;
        }
        Ok(tx)
    }
}

impl Engine for Redb {
    fn open(&mut self) -> R<()> {
        let db = redb::Database::create(&self.path)?;
        // Create the table so that readers of an empty database work.
        let tx = db.begin_write()?;
        tx.open_table(REDB_TABLE)?;
        tx.commit()?;
        self.db = Some(db);
        Ok(())
    }
    fn close(&mut self) -> R<()> {
        if let Some(db) = self.db.take() {
            if !self.sync {
                // Make the non-durable commits durable before closing.
                let tx = db.begin_write()?;
                tx.commit()?;
            }
            drop(db);
        }
        Ok(())
    }
    fn write_batch(&self, items: &[(&[u8], &[u8])]) -> R<()> {
        let tx = self.txn()?;
        {
            let mut t = tx.open_table(REDB_TABLE)?;
            for (k, v) in items {
                t.insert(*k, *v)?;
            }
        }
        tx.commit()?;
        Ok(())
    }
    fn put(&self, key: &[u8], value: &[u8]) -> R<()> {
        let tx = self.txn()?;
        {
            let mut t = tx.open_table(REDB_TABLE)?;
            t.insert(key, value)?;
        }
        tx.commit()?;
        Ok(())
    }
    fn reader(&self) -> R<Box<dyn Reader + '_>> {
        let tx = self.db()?.begin_read()?;
        let table = tx.open_table(REDB_TABLE)?;
        Ok(Box::new(RedbReader { _tx: tx, table }))
    }
}

struct RedbReader {
    _tx: redb::ReadTransaction,
    table: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
}

impl Reader for RedbReader {
    fn get(&mut self, key: &[u8]) -> R<usize> {
        Ok(self.table.get(key)?.map_or(0, |v| v.value().len()))
    }
    fn scan10(&mut self, start: &[u8]) -> R<usize> {
        let mut n = 0;
        for item in self.table.range::<&[u8]>(start..)?.take(10) {
            let (k, v) = item?;
            n += k.value().len() + v.value().len();
        }
        Ok(n)
    }
}

// --- sled --------------------------------------------------------------------

struct Sled {
    dir: PathBuf,
    sync: bool,
    db: Option<sled::Db>,
}

impl Sled {
    fn db(&self) -> R<&sled::Db> {
        self.db.as_ref().ok_or_else(not_open)
    }
}

impl Engine for Sled {
    fn open(&mut self) -> R<()> {
        self.db = Some(sled::Config::new().path(&self.dir).open()?);
        Ok(())
    }
    fn close(&mut self) -> R<()> {
        if let Some(db) = self.db.take() {
            db.flush()?;
            drop(db);
        }
        Ok(())
    }
    fn write_batch(&self, items: &[(&[u8], &[u8])]) -> R<()> {
        let db = self.db()?;
        let mut b = sled::Batch::default();
        for (k, v) in items {
            b.insert(*k, *v);
        }
        db.apply_batch(b)?;
        if self.sync {
            db.flush()?;
        }
        Ok(())
    }
    fn put(&self, key: &[u8], value: &[u8]) -> R<()> {
        let db = self.db()?;
        db.insert(key, value)?;
        if self.sync {
            db.flush()?;
        }
        Ok(())
    }
    fn reader(&self) -> R<Box<dyn Reader + '_>> {
        Ok(Box::new(SledReader(self.db()?)))
    }
}

struct SledReader<'a>(&'a sled::Db);

impl Reader for SledReader<'_> {
    fn get(&mut self, key: &[u8]) -> R<usize> {
        Ok(self.0.get(key)?.map_or(0, |v| v.len()))
    }
    fn scan10(&mut self, start: &[u8]) -> R<usize> {
        let mut n = 0;
        for item in self.0.range(start..).take(10) {
            let (k, v) = item?;
            n += k.len() + v.len();
        }
        Ok(n)
    }
}

fn make_engine(kind: Kind, dir: &Path, sync: bool) -> R<Box<dyn Engine>> {
    let mut e: Box<dyn Engine> = match kind {
        Kind::Ours => Box::new(Ours {
            dir: dir.to_owned(),
            sync,
            db: None,
        }),
        Kind::Fjall => Box::new(Fjall {
            dir: dir.to_owned(),
            sync,
            db: None,
        }),
        Kind::Redb => Box::new(Redb {
            path: dir.join("bench.redb"),
            sync,
            db: None,
        }),
        Kind::Sled => Box::new(Sled {
            dir: dir.to_owned(),
            sync,
            db: None,
        }),
    };
    e.open()?;
    Ok(e)
}

// ---------------------------------------------------------------------------
// Configuration and results
// ---------------------------------------------------------------------------

struct Cfg {
    quick: bool,
    only: Vec<String>,
    engines: Vec<Kind>,
    base: PathBuf,
    json: PathBuf,
    /// Keys of the main data set (100-byte values).
    n_main: usize,
    /// Keys of the large-value data set (4 KiB values).
    n_big: usize,
    /// Rounds of the load row (a fresh directory each).
    load_rounds: usize,
    /// Rounds of the short rows (writes, reopen).
    rounds: usize,
    /// Rounds of the read rows.
    read_rounds: usize,
    single_writes: usize,
    concurrent_writes: usize,
    gets: usize,
    scans: usize,
}

impl Cfg {
    fn wants(&self, row: &str) -> bool {
        let row = row.to_ascii_lowercase();
        self.only.is_empty() || self.only.iter().any(|o| row.contains(o.as_str()))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    OpsPerSec,
    Seconds,
    BytesPerKey,
}

struct Res {
    dataset: String,
    mode: &'static str,
    row: String,
    engine: String,
    unit: Unit,
    value: f64,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    rounds: Vec<f64>,
    note: String,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

fn pct(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e6
}

struct Ctx {
    cfg: Cfg,
    results: Vec<Res>,
}

impl Ctx {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        dataset: &str,
        mode: &'static str,
        row: &str,
        engine: &str,
        unit: Unit,
        rounds: Vec<f64>,
        lat: Option<(f64, f64)>,
        note: String,
    ) {
        let value = median(&rounds);
        let shown = match unit {
            Unit::OpsPerSec => format!("{value:.0} ops/s"),
            Unit::Seconds => format!("{value:.4} s"),
            Unit::BytesPerKey => format!("{value:.1} B/key"),
        };
        let lat_s = lat.map_or(String::new(), |(a, b)| {
            format!(" p50 {a:.1}us p99 {b:.1}us")
        });
        eprintln!("    [{dataset} {mode}] {row} / {engine}: {shown}{lat_s} {note}");
        self.results.push(Res {
            dataset: dataset.to_owned(),
            mode,
            row: row.to_owned(),
            engine: engine.to_owned(),
            unit,
            value,
            p50_us: lat.map(|l| l.0),
            p99_us: lat.map(|l| l.1),
            rounds,
            note,
        });
    }
}

// ---------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------

struct Dataset {
    name: String,
    keys: Vec<Key>,
    values: Values,
    /// Random existing keys in lookup order.
    lookups: Vec<Key>,
}

const ROW_LOAD: &str = "load (commits of 1000)";
const ROW_SINGLE: &str = "single writes (1000)";
const ROW_CONC: &str = "concurrent writers";
const ROW_GET1: &str = "random get 1 thread";
const ROW_GET2: &str = "random get 2 threads";
const ROW_SCAN: &str = "scan 10 keys from a random key";
const ROW_CLOSE: &str = "close";
const ROW_REOPEN: &str = "reopen + first get";
const ROW_REOPEN_C: &str = "reopen after compaction + first get";
const ROW_MEM: &str = "memory per key beyond key+value";
const ROW_KVSTORE: &str = "random get through KVStore";

fn load(e: &dyn Engine, ds: &Dataset) -> R<Duration> {
    let t0 = Instant::now();
    let mut items: Vec<(&[u8], &[u8])> = Vec::with_capacity(LOAD_BATCH);
    for (ci, chunk) in ds.keys.chunks(LOAD_BATCH).enumerate() {
        items.clear();
        for (j, k) in chunk.iter().enumerate() {
            items.push((k.as_slice(), ds.values.get(ci * LOAD_BATCH + j)));
        }
        e.write_batch(&items)?;
    }
    Ok(t0.elapsed())
}

fn run_reads(ctx: &mut Ctx, e: &dyn Engine, kind: Kind, ds: &Dataset, mode: &'static str) -> R<()> {
    let name = kind.name();
    let gets = ctx.cfg.gets.min(ds.lookups.len());
    let lookups = &ds.lookups[..gets];
    // Warm up (caches, page cache), not timed.
    {
        let mut r = e.reader()?;
        let mut found = 0;
        for k in lookups {
            found += usize::from(r.get(k)? > 0);
        }
        if found != lookups.len() {
            return Err(format!("{name}: {found} of {} keys found", lookups.len()).into());
        }
    }
    for threads in [1usize, 2] {
        let row = if threads == 1 { ROW_GET1 } else { ROW_GET2 };
        if !ctx.cfg.wants(row) {
            continue;
        }
        let mut rounds = Vec::new();
        for _ in 0..ctx.cfg.read_rounds {
            let per = lookups.len().div_ceil(threads);
            let t0 = Instant::now();
            let sums: Vec<R<usize>> = std::thread::scope(|s| {
                let hs: Vec<_> = lookups
                    .chunks(per)
                    .map(|part| {
                        s.spawn(move || -> R<usize> {
                            let mut r = e.reader()?;
                            let mut sum = 0;
                            for k in part {
                                sum += r.get(k)?;
                            }
                            Ok(sum)
                        })
                    })
                    .collect();
                hs.into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| Err("reader panicked".into())))
                    .collect()
            });
            let dt = t0.elapsed();
            let mut total = 0;
            for s in sums {
                total += s?;
            }
            if total != lookups.len() * ds.values.size {
                return Err(format!("{name}: wrong bytes read").into());
            }
            rounds.push(lookups.len() as f64 / dt.as_secs_f64());
        }
        ctx.push(
            &ds.name,
            mode,
            row,
            name,
            Unit::OpsPerSec,
            rounds,
            None,
            String::new(),
        );
    }
    if ctx.cfg.wants(ROW_SCAN) {
        let scans = ctx.cfg.scans;
        let mut rng = Rng::new(77);
        let starts: Vec<Key> = (0..scans)
            .map(|_| ds.keys[rng.below(ds.keys.len())])
            .collect();
        let mut rounds = Vec::new();
        for _ in 0..ctx.cfg.read_rounds {
            let mut r = e.reader()?;
            let t0 = Instant::now();
            let mut bytes = 0;
            for k in &starts {
                bytes += r.scan10(k)?;
            }
            let dt = t0.elapsed();
            std::hint::black_box(bytes);
            rounds.push(scans as f64 / dt.as_secs_f64());
        }
        ctx.push(
            &ds.name,
            mode,
            ROW_SCAN,
            name,
            Unit::OpsPerSec,
            rounds,
            None,
            String::new(),
        );
    }
    Ok(())
}

fn single_writes(
    ctx: &mut Ctx,
    e: &dyn Engine,
    kind: Kind,
    ds: &Dataset,
    mode: &'static str,
) -> R<()> {
    let n = ctx.cfg.single_writes;
    let compactions0 = e.compactions();
    let mut timed = Vec::new();
    for round in 0..ctx.cfg.rounds {
        let ks = keys(1000 + round as u64, n);
        timed.push(timed_round(n, |i| e.put(&ks[i], ds.values.get(i)))?);
    }
    let (rounds, lat) = rates_and_latency(&timed);
    // A background compaction (the load passed `max_wal_size`) writes its
    // snapshot to the same disk; say when one was running.
    let note = match (compactions0, e.compactions()) {
        (Some(a), Some(b)) => format!(
            "compactions finished: {a} before the row, {} during it",
            b - a
        ),
        _ => String::new(),
    };
    ctx.push(
        &ds.name,
        mode,
        ROW_SINGLE,
        kind.name(),
        Unit::OpsPerSec,
        rounds,
        lat,
        note,
    );
    Ok(())
}

/// One timed round of `n` writes, `write(i)` each: the rate, and the p50
/// and p99 latency in µs.
fn timed_round(n: usize, mut write: impl FnMut(usize) -> R<()>) -> R<(f64, f64, f64)> {
    let mut lat = Vec::with_capacity(n);
    let t0 = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        write(i)?;
        lat.push(t.elapsed());
    }
    let dt = t0.elapsed();
    lat.sort_unstable();
    Ok((
        n as f64 / dt.as_secs_f64(),
        pct(&lat, 0.50),
        pct(&lat, 0.99),
    ))
}

/// The rates of [`timed_round`]s, and the medians of their p50 and p99.
fn rates_and_latency(timed: &[(f64, f64, f64)]) -> (Vec<f64>, Option<(f64, f64)>) {
    let p50s: Vec<f64> = timed.iter().map(|t| t.1).collect();
    let p99s: Vec<f64> = timed.iter().map(|t| t.2).collect();
    (
        timed.iter().map(|t| t.0).collect(),
        Some((median(&p50s), median(&p99s))),
    )
}

/// Name of the disk-floor row's "engine": not a peer, and not in the
/// like-for-like comparison.
const DISK_FLOOR: &str = "disk floor";

/// The disk's floor for a synced single write, measured beside the engines:
/// one `pwrite` of a WAL record's size at the next offset of a sparse,
/// preallocated file (as the engine's WAL segments are) and one
/// `fdatasync`, `single_writes` times per round, nothing else.
fn disk_floor(ctx: &mut Ctx, ds: &Dataset) -> R<()> {
    let dir = tempfile::Builder::new()
        .prefix("kvbench-floor-")
        .tempdir_in(&ctx.cfg.base)?;
    let n = ctx.cfg.single_writes;
    // Key, value and about a record header's worth of framing.
    let record = vec![0x5au8; 16 + ds.values.size + 24];
    let mut timed = Vec::new();
    for round in 0..ctx.cfg.rounds {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(dir.path().join(format!("floor-{round}")))?;
        file.set_len(((n * record.len()) as u64).next_multiple_of(4 << 20))?;
        file.sync_all()?;
        timed.push(timed_round(n, |i| {
            std::os::unix::fs::FileExt::write_all_at(&file, &record, (i * record.len()) as u64)?;
            Ok(file.sync_data()?)
        })?);
    }
    let (rounds, lat) = rates_and_latency(&timed);
    ctx.push(
        &ds.name,
        "durable",
        ROW_SINGLE,
        DISK_FLOOR,
        Unit::OpsPerSec,
        rounds,
        lat,
        format!("pwrite of {} B + fdatasync", record.len()),
    );
    Ok(())
}

fn concurrent_writes(
    ctx: &mut Ctx,
    e: &dyn Engine,
    kind: Kind,
    ds: &Dataset,
    mode: &'static str,
) -> R<()> {
    for threads in [1usize, 8, 64] {
        let row = format!("{ROW_CONC} x{threads}");
        if !ctx.cfg.wants(&row) {
            continue;
        }
        let total = ctx.cfg.concurrent_writes;
        let per = total.div_ceil(threads);
        let mut rounds = Vec::new();
        let fsyncs0 = e.fsyncs();
        let mut written = 0;
        for round in 0..ctx.cfg.rounds {
            let ks = keys(5000 + 100 * threads as u64 + round as u64, per * threads);
            written += ks.len();
            let values = &ds.values;
            let t0 = Instant::now();
            let outs: Vec<R<()>> = std::thread::scope(|s| {
                let hs: Vec<_> = ks
                    .chunks(per)
                    .map(|part| {
                        s.spawn(move || -> R<()> {
                            for (i, k) in part.iter().enumerate() {
                                e.put(k, values.get(i))?;
                            }
                            Ok(())
                        })
                    })
                    .collect();
                hs.into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| Err("writer panicked".into())))
                    .collect()
            });
            let dt = t0.elapsed();
            for o in outs {
                o?;
            }
            rounds.push(ks.len() as f64 / dt.as_secs_f64());
        }
        let note = match (fsyncs0, e.fsyncs()) {
            (Some(a), Some(b)) if b > a => {
                format!("{:.2} writes per fsync", written as f64 / (b - a) as f64)
            }
            _ => String::new(),
        };
        ctx.push(
            &ds.name,
            mode,
            &row,
            kind.name(),
            Unit::OpsPerSec,
            rounds,
            None,
            note,
        );
    }
    Ok(())
}

/// Times close, then open + one get, `rounds` times.
fn reopen_rounds(e: &mut dyn Engine, probe: &Key, rounds: usize) -> R<(Vec<f64>, Vec<f64>)> {
    let (mut closes, mut opens) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t0 = Instant::now();
        e.close()?;
        closes.push(t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        e.open()?;
        let found = e.reader()?.get(probe)?;
        opens.push(t0.elapsed().as_secs_f64());
        if found == 0 {
            return Err("key missing after reopen".into());
        }
    }
    Ok((closes, opens))
}

/// Runs one engine on one data set in one durability mode.
fn run_engine(ctx: &mut Ctx, kind: Kind, ds: &Dataset, sync: bool) -> R<()> {
    let mode: &'static str = if sync { "durable" } else { "no-sync" };
    let dir = tempfile::Builder::new()
        .prefix(&format!("kvbench-{}-", kind.name()))
        .tempdir_in(&ctx.cfg.base)?;
    eprintln!("  {} {} {} ...", ds.name, mode, kind.name());
    // Extra load rounds, each in its own fresh directory; the last load is
    // the database the other rows run on.
    let load_rounds = if ctx.cfg.wants(ROW_LOAD) {
        ctx.cfg.load_rounds
    } else {
        1
    };
    let mut loads = Vec::new();
    for _ in 1..load_rounds {
        let d = tempfile::Builder::new()
            .prefix(&format!("kvbench-{}-", kind.name()))
            .tempdir_in(&ctx.cfg.base)?;
        let mut e = make_engine(kind, d.path(), sync)?;
        loads.push(load(&*e, ds)?.as_secs_f64());
        e.close()?;
    }
    let mut e = make_engine(kind, dir.path(), sync)?;
    loads.push(load(&*e, ds)?.as_secs_f64());
    if ctx.cfg.wants(ROW_LOAD) {
        let n = ds.keys.len() as f64;
        let rounds = loads.iter().map(|t| n / t).collect();
        let times: Vec<String> = loads.iter().map(|t| format!("{t:.2}")).collect();
        ctx.push(
            &ds.name,
            mode,
            ROW_LOAD,
            kind.name(),
            Unit::OpsPerSec,
            rounds,
            None,
            format!("load times {} s", times.join("/")),
        );
    }
    if ctx.cfg.wants(ROW_SINGLE) {
        single_writes(ctx, &*e, kind, ds, mode)?;
    }
    let big = ds.values.size > 1000;
    if sync && !big {
        concurrent_writes(ctx, &*e, kind, ds, mode)?;
    }
    if !sync {
        run_reads(ctx, &*e, kind, ds, mode)?;
    }
    if sync
        && (ctx.cfg.wants(ROW_REOPEN) || ctx.cfg.wants(ROW_CLOSE) || ctx.cfg.wants(ROW_REOPEN_C))
    {
        let probe = ds.keys[ds.keys.len() / 2];
        let (closes, opens) = reopen_rounds(&mut *e, &probe, ctx.cfg.rounds)?;
        let note = if kind == Kind::Ours {
            "from the WAL".to_owned()
        } else {
            String::new()
        };
        if ctx.cfg.wants(ROW_CLOSE) {
            ctx.push(
                &ds.name,
                mode,
                ROW_CLOSE,
                kind.name(),
                Unit::Seconds,
                closes,
                None,
                String::new(),
            );
        }
        if ctx.cfg.wants(ROW_REOPEN) {
            ctx.push(
                &ds.name,
                mode,
                ROW_REOPEN,
                kind.name(),
                Unit::Seconds,
                opens,
                None,
                note,
            );
        }
        if kind == Kind::Ours && ctx.cfg.wants(ROW_REOPEN_C) {
            let t0 = Instant::now();
            e.compact()?;
            let dc = t0.elapsed().as_secs_f64();
            let (_, opens) = reopen_rounds(&mut *e, &probe, ctx.cfg.rounds)?;
            ctx.push(
                &ds.name,
                mode,
                ROW_REOPEN_C,
                kind.name(),
                Unit::Seconds,
                opens,
                None,
                format!("compact() took {dc:.2} s"),
            );
        }
    }
    e.close()?;
    drop(e);
    Ok(())
}

fn hex(k: &[u8]) -> String {
    let mut s = String::with_capacity(k.len() * 2);
    for b in k {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Our engine behind the KVStore API: Store over EngineBackend, tokio
/// current_thread runtime, string keys.
fn kvstore_get(ctx: &mut Ctx, ds: &Dataset) -> R<()> {
    let dir = tempfile::Builder::new()
        .prefix("kvbench-kvstore-")
        .tempdir_in(&ctx.cfg.base)?;
    eprintln!("  {} KVStore over ours ...", ds.name);
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let backend = EngineBackend::open(Options::new(dir.path()).sync(SyncMode::Never))?;
    let store = Store::new(Arc::new(backend));
    let skeys: Vec<String> = ds.keys.iter().map(|k| hex(k)).collect();
    let gets = ctx.cfg.gets.min(ds.lookups.len());
    let lookups: Vec<String> = ds.lookups[..gets].iter().map(|k| hex(k)).collect();
    let size = ds.values.size;
    let rounds = rt.block_on(async {
        let t0 = Instant::now();
        for (ci, chunk) in skeys.chunks(LOAD_BATCH).enumerate() {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(j, k)| {
                    (
                        k.clone(),
                        Value::Bytes(ds.values.get(ci * LOAD_BATCH + j).to_vec()),
                    )
                })
                .collect();
            store.set_many(entries).await?;
        }
        eprintln!("    (KVStore load: {:.2} s)", t0.elapsed().as_secs_f64());
        // Warm-up, checked.
        for k in &lookups {
            match store.get(k).await? {
                Some(Value::Bytes(b)) if b.len() == size => {}
                _ => return Err::<Vec<f64>, BoxError>("KVStore: key missing or wrong".into()),
            }
        }
        let mut rounds = Vec::new();
        for _ in 0..ctx.cfg.read_rounds {
            let t0 = Instant::now();
            let mut n = 0usize;
            for k in &lookups {
                if let Some(Value::Bytes(b)) = store.get(k).await? {
                    n += b.len();
                }
            }
            let dt = t0.elapsed();
            std::hint::black_box(n);
            rounds.push(lookups.len() as f64 / dt.as_secs_f64());
        }
        store.close().await?;
        Ok(rounds)
    })?;
    ctx.push(
        &ds.name,
        "no-sync",
        ROW_KVSTORE,
        "ours",
        Unit::OpsPerSec,
        rounds,
        None,
        String::new(),
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Memory (child processes)
// ---------------------------------------------------------------------------

fn vm_kb(field: &str) -> R<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix(field) {
            let num = rest
                .trim_start_matches(':')
                .trim()
                .trim_end_matches("kB")
                .trim();
            return Ok(num.parse()?);
        }
    }
    Err(format!("{field} not in /proc/self/status").into())
}

/// In the child: load one engine, print the RSS figures.
fn mem_child(kind: Kind, n: usize, vsize: usize, base: &Path) -> R<()> {
    let ds_keys = keys(KEY_SEED, n);
    let values = Values::new(vsize);
    let ds = Dataset {
        name: String::new(),
        keys: ds_keys,
        values,
        lookups: Vec::new(),
    };
    let dir = tempfile::Builder::new()
        .prefix(&format!("kvbench-mem-{}-", kind.name()))
        .tempdir_in(base)?;
    let before = vm_kb("VmRSS")?;
    let mut e = make_engine(kind, dir.path(), false)?;
    load(&*e, &ds)?;
    // Read every key once, so caches that fill on reads are counted too.
    {
        let mut r = e.reader()?;
        for k in &ds.keys {
            r.get(k)?;
        }
    }
    let after = vm_kb("VmRSS")?;
    let hwm = vm_kb("VmHWM")?;
    let (overhead, kv) = e.engine_stats().unwrap_or((0, 0));
    println!("MEMRESULT {before} {after} {hwm} {overhead} {kv}");
    e.close()?;
    Ok(())
}

fn memory_rows(ctx: &mut Ctx, ds_name: &str, n: usize, vsize: usize) -> R<()> {
    let exe = std::env::current_exe()?;
    for &kind in &ctx.cfg.engines.clone() {
        eprintln!("  {ds_name} memory {} (child process) ...", kind.name());
        let out = std::process::Command::new(&exe)
            .arg("--mem-child")
            .arg(kind.name())
            .arg(n.to_string())
            .arg(vsize.to_string())
            .arg("--dir")
            .arg(&ctx.cfg.base)
            .stderr(std::process::Stdio::inherit())
            .output()?;
        if !out.status.success() {
            return Err(format!("memory child for {} failed: {}", kind.name(), out.status).into());
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("MEMRESULT "))
            .ok_or("memory child printed no result")?;
        let f: Vec<f64> = line
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(f64::NAN))
            .collect();
        let (before, after, hwm) = (f[0] * 1024.0, f[1] * 1024.0, f[2] * 1024.0);
        let per_key = (after - before) / n as f64;
        let beyond = per_key - (16 + vsize) as f64;
        let mut note = format!(
            "RSS +{:.1} MiB ({per_key:.1} B/key total), peak {:.1} MiB",
            (after - before) / 1048576.0,
            hwm / 1048576.0
        );
        if f.len() > 4 && f[3] > 0.0 {
            let _ = write!(note, "; stats: index overhead {:.1} B/key", f[3] / n as f64);
        }
        ctx.push(
            ds_name,
            "no-sync",
            ROW_MEM,
            kind.name(),
            Unit::BytesPerKey,
            vec![beyond],
            None,
            note,
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

fn fmt_value(unit: Unit, v: f64) -> String {
    match unit {
        Unit::OpsPerSec => {
            if v >= 1e6 {
                format!("{:.2}M ops/s", v / 1e6)
            } else if v >= 1e3 {
                format!("{:.1}k ops/s", v / 1e3)
            } else {
                format!("{v:.0} ops/s")
            }
        }
        Unit::Seconds => {
            if v < 1.0 {
                format!("{:.1} ms", v * 1e3)
            } else {
                format!("{v:.2} s")
            }
        }
        Unit::BytesPerKey => format!("{v:.1} B/key"),
    }
}

/// ours/peer for throughput, peer/ours for times and memory (>1 = ours better).
fn ratio(unit: Unit, ours: f64, peer: f64) -> Option<f64> {
    match unit {
        Unit::OpsPerSec => Some(ours / peer),
        Unit::Seconds => Some(peer / ours),
        Unit::BytesPerKey => (ours > 0.0 && peer > 0.0).then(|| peer / ours),
    }
}

fn find<'a>(results: &'a [Res], ds: &str, mode: &str, row: &str, engine: &str) -> Option<&'a Res> {
    results
        .iter()
        .find(|r| r.dataset == ds && r.mode == mode && r.row == row && r.engine == engine)
}

fn print_table(results: &[Res]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<44} {:<8} {:<10} {:>16} {:>10} {:>10} {:>10}  note",
        "row", "mode", "engine", "median", "p50", "p99", "ours/peer"
    );
    let mut groups: Vec<(String, &'static str, String)> = Vec::new();
    for r in results {
        let g = (r.dataset.clone(), r.mode, r.row.clone());
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let mut last_ds = String::new();
    for (ds, mode, row) in &groups {
        if *ds != last_ds {
            let _ = writeln!(out, "--- data set: {ds} ---");
            last_ds = ds.clone();
        }
        let ours = find(results, ds, mode, row, "ours");
        for r in results
            .iter()
            .filter(|r| &r.dataset == ds && r.mode == *mode && &r.row == row)
        {
            let lat = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v:.1}us"));
            let mut rat = String::new();
            if r.engine != "ours" {
                if let Some(o) = ours {
                    if let Some(x) = ratio(r.unit, o.value, r.value) {
                        rat = format!("{x:.2}x");
                    }
                }
            }
            let mut note = r.note.clone();
            if r.row == ROW_REOPEN_C {
                // Compare with the peers' plain reopen.
                let mut parts = Vec::new();
                for peer in ["fjall", "redb", "sled"] {
                    if let Some(p) = find(results, ds, mode, ROW_REOPEN, peer) {
                        parts.push(format!("{peer}/ours {:.2}x", p.value / r.value));
                    }
                }
                if !parts.is_empty() {
                    note = format!("{note}; {}", parts.join(", "));
                }
            }
            if r.row == ROW_KVSTORE {
                if let Some(g) = find(results, ds, mode, ROW_GET1, "ours") {
                    note = format!("{:.2} of the engine-API get", r.value / g.value);
                }
            }
            let _ = writeln!(
                out,
                "{:<44} {:<8} {:<10} {:>16} {:>10} {:>10} {:>10}  {}",
                row,
                mode,
                r.engine,
                fmt_value(r.unit, r.value),
                lat(r.p50_us),
                lat(r.p99_us),
                rat,
                note
            );
        }
    }
    out
}

fn json_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "null".into()
    }
}

fn to_json(cfg: &Cfg, results: &[Res], elapsed: f64, targets: &[(String, bool, String)]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{{");
    let _ = writeln!(
        o,
        "  \"quick\": {}, \"n_main\": {}, \"n_big\": {}, \"rounds\": {}, \"read_rounds\": {}, \"elapsed_s\": {},",
        cfg.quick, cfg.n_main, cfg.n_big, cfg.rounds, cfg.read_rounds, num(elapsed)
    );
    let _ = writeln!(o, "  \"results\": [");
    for (i, r) in results.iter().enumerate() {
        let unit = match r.unit {
            Unit::OpsPerSec => "ops_per_s",
            Unit::Seconds => "seconds",
            Unit::BytesPerKey => "bytes_per_key",
        };
        let ours = find(results, &r.dataset, r.mode, &r.row, "ours");
        let rat = match ours {
            Some(o) if r.engine != "ours" => {
                ratio(r.unit, o.value, r.value).map_or("null".into(), num)
            }
            _ => "null".into(),
        };
        let rounds: Vec<String> = r.rounds.iter().map(|v| num(*v)).collect();
        let _ = write!(
            o,
            "    {{\"dataset\": \"{}\", \"mode\": \"{}\", \"row\": \"{}\", \"engine\": \"{}\", \"unit\": \"{unit}\", \"value\": {}, \"p50_us\": {}, \"p99_us\": {}, \"ours_vs_peer\": {rat}, \"rounds\": [{}], \"note\": \"{}\"}}",
            json_escape(&r.dataset),
            r.mode,
            json_escape(&r.row),
            r.engine,
            num(r.value),
            r.p50_us.map_or("null".into(), num),
            r.p99_us.map_or("null".into(), num),
            rounds.join(", "),
            json_escape(&r.note)
        );
        let _ = writeln!(o, "{}", if i + 1 < results.len() { "," } else { "" });
    }
    let _ = writeln!(o, "  ],");
    let _ = writeln!(o, "  \"targets\": [");
    for (i, (name, met, detail)) in targets.iter().enumerate() {
        let _ = write!(
            o,
            "    {{\"target\": \"{}\", \"met\": {met}, \"detail\": \"{}\"}}",
            json_escape(name),
            json_escape(detail)
        );
        let _ = writeln!(o, "{}", if i + 1 < targets.len() { "," } else { "" });
    }
    let _ = writeln!(o, "  ]");
    let _ = writeln!(o, "}}");
    o
}

fn targets(results: &[Res], main: &str) -> Vec<(String, bool, String)> {
    let mut t = Vec::new();
    let val =
        |mode: &str, row: &str, eng: &str| find(results, main, mode, row, eng).map(|r| r.value);
    let mut check =
        |name: &str, v: Option<f64>, ok: &dyn Fn(f64) -> bool, show: &dyn Fn(f64) -> String| {
            if let Some(v) = v {
                t.push((name.to_owned(), ok(v), show(v)));
            }
        };
    check(
        "random get >= 1,500,000 ops/s (engine API, 1 thread)",
        val("no-sync", ROW_GET1, "ours"),
        &|v| v >= 1.5e6,
        &|v| format!("{v:.0} ops/s"),
    );
    check(
        "random get through KVStore >= 500,000 ops/s",
        val("no-sync", ROW_KVSTORE, "ours"),
        &|v| v >= 5e5,
        &|v| format!("{v:.0} ops/s"),
    );
    for mode in ["durable", "no-sync"] {
        if let (Some(o), Some(f)) = (val(mode, ROW_LOAD, "ours"), val(mode, ROW_LOAD, "fjall")) {
            check(
                &format!("batched load >= 1.0x fjall ({mode})"),
                Some(o / f),
                &|v| v >= 1.0,
                &|v| format!("{v:.2}x ({o:.0} vs {f:.0} ops/s)"),
            );
        }
    }
    let floor = val("durable", ROW_SINGLE, DISK_FLOOR);
    check(
        "single synced writes >= 8,000/s",
        val("durable", ROW_SINGLE, "ours"),
        &|v| v >= 8000.0,
        &|v| {
            match floor {
            Some(f) => format!(
                "{v:.0} ops/s; the disk floor (pwrite + fdatasync alone) {f:.0} ops/s, ours {:.2}x of it",
                v / f
            ),
            None => format!("{v:.0} ops/s"),
        }
        },
    );
    if let (Some(a), Some(b)) = (
        val("durable", &format!("{ROW_CONC} x8"), "ours"),
        val("durable", &format!("{ROW_CONC} x1"), "ours"),
    ) {
        check(
            "8 concurrent Always writers >= 5x one writer",
            Some(a / b),
            &|v| v >= 5.0,
            &|v| format!("{v:.2}x ({a:.0} vs {b:.0} ops/s)"),
        );
    }
    check(
        "reopen after compaction <= 0.5 s",
        val("durable", ROW_REOPEN_C, "ours"),
        &|v| v <= 0.5,
        &|v| format!("{v:.3} s"),
    );
    check(
        "reopen from the WAL <= 1 s",
        val("durable", ROW_REOPEN, "ours"),
        &|v| v <= 1.0,
        &|v| format!("{v:.3} s"),
    );
    check(
        "memory <= 100 B/key beyond key+value",
        val("no-sync", ROW_MEM, "ours"),
        &|v| v <= 100.0,
        &|v| format!("{v:.1} B/key"),
    );
    // Like-for-like rows: every row with ours and a peer, all data sets.
    let mut worse = Vec::new();
    let mut compared = 0;
    for r in results
        .iter()
        .filter(|r| r.engine != "ours" && r.engine != DISK_FLOOR)
    {
        if let Some(o) = find(results, &r.dataset, r.mode, &r.row, "ours") {
            if let Some(x) = ratio(r.unit, o.value, r.value) {
                compared += 1;
                if x < 1.0 {
                    worse.push(format!(
                        "{} {} {} vs {}: {x:.2}x",
                        r.dataset, r.mode, r.row, r.engine
                    ));
                }
            }
        }
    }
    t.push((
        ">= 1.0x every peer on like-for-like rows".into(),
        worse.is_empty(),
        if worse.is_empty() {
            format!("all {compared} comparisons >= 1.0x")
        } else {
            format!(
                "{} of {compared} below 1.0x: {}",
                worse.len(),
                worse.join("; ")
            )
        },
    ));
    t
}

// ---------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------

fn default_json() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d).join("engine-bench.json"),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target")
            .join("engine-bench.json"),
    }
}

fn main() -> R<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut quick = false;
    let mut only = Vec::new();
    let mut engines = ALL.to_vec();
    let mut base = std::env::temp_dir();
    let mut json = default_json();
    let mut child: Option<(Kind, usize, usize)> = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let mut val = || -> R<String> {
            i += 1;
            args.get(i)
                .cloned()
                .ok_or_else(|| format!("{a} needs a value").into())
        };
        match a {
            "--bench" => {}
            "--quick" => quick = true,
            "--only" => only.extend(val()?.split(',').map(|s| s.trim().to_ascii_lowercase())),
            "--engines" => {
                engines = val()?
                    .split(',')
                    .map(|s| Kind::parse(s.trim()).ok_or_else(|| format!("unknown engine {s}")))
                    .collect::<Result<_, _>>()?;
            }
            "--dir" => base = PathBuf::from(val()?),
            "--json" => json = PathBuf::from(val()?),
            "--mem-child" => {
                let k = Kind::parse(&val()?).ok_or("unknown engine")?;
                let n = val()?.parse()?;
                let v = val()?.parse()?;
                child = Some((k, n, v));
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
        i += 1;
    }
    if let Some((k, n, v)) = child {
        return mem_child(k, n, v, &base);
    }
    if !engines.contains(&Kind::Ours) {
        engines.insert(0, Kind::Ours);
    }
    let n_main = if quick { 100_000 } else { 1_000_000 };
    let cfg = Cfg {
        quick,
        only,
        engines,
        base,
        json,
        n_main,
        n_big: n_main / 10,
        load_rounds: 3,
        rounds: if quick { 3 } else { 5 },
        read_rounds: if quick { 3 } else { 5 },
        single_writes: 1000,
        concurrent_writes: if quick { 1000 } else { 2000 },
        gets: if quick { 200_000 } else { 1_000_000 },
        scans: if quick { 20_000 } else { 100_000 },
    };
    let started = Instant::now();
    let mut ctx = Ctx {
        cfg,
        results: Vec::new(),
    };
    eprintln!(
        "engine bench: {} keys x 100 B and {} keys x 4 KiB, engines {:?}, temp dirs in {}",
        ctx.cfg.n_main,
        ctx.cfg.n_big,
        ctx.cfg.engines.iter().map(|k| k.name()).collect::<Vec<_>>(),
        ctx.cfg.base.display()
    );

    let main_name = format!("{}k x 100B", ctx.cfg.n_main / 1000);
    let big_name = format!("{}k x 4KiB", ctx.cfg.n_big / 1000);
    let sets = [
        (main_name.clone(), ctx.cfg.n_main, 100usize),
        (big_name, ctx.cfg.n_big, 4096usize),
    ];
    let durable_rows = [
        ROW_LOAD,
        ROW_SINGLE,
        ROW_CONC,
        ROW_CLOSE,
        ROW_REOPEN,
        ROW_REOPEN_C,
    ];
    let nosync_rows = [ROW_LOAD, ROW_SINGLE, ROW_GET1, ROW_GET2, ROW_SCAN];
    for (name, n, vsize) in &sets {
        let mut rng = Rng::new(4242);
        let ks = keys(KEY_SEED, *n);
        let gets = ctx.cfg.gets.min(*n * 2);
        let lookups = (0..gets).map(|_| ks[rng.below(ks.len())]).collect();
        let ds = Dataset {
            name: name.clone(),
            keys: ks,
            values: Values::new(*vsize),
            lookups,
        };
        let engines = ctx.cfg.engines.clone();
        if durable_rows.iter().any(|r| ctx.cfg.wants(r)) {
            for &k in &engines {
                run_engine(&mut ctx, k, &ds, true)?;
            }
            if ctx.cfg.wants(ROW_SINGLE) {
                disk_floor(&mut ctx, &ds)?;
            }
        }
        if nosync_rows.iter().any(|r| ctx.cfg.wants(r)) {
            for &k in &engines {
                run_engine(&mut ctx, k, &ds, false)?;
            }
        }
        if *vsize == 100 && ctx.cfg.wants(ROW_KVSTORE) {
            kvstore_get(&mut ctx, &ds)?;
        }
        drop(ds);
        if ctx.cfg.wants(ROW_MEM) {
            memory_rows(&mut ctx, name, *n, *vsize)?;
        }
    }

    let elapsed = started.elapsed().as_secs_f64();
    let table = print_table(&ctx.results);
    let tg = targets(&ctx.results, &main_name);
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout)?;
    writeln!(
        stdout,
        "== engine bench ({}), {:.0} s; ratio column: ours/peer for ops/s, peer/ours for times and memory (>1 = ours better) ==",
        if ctx.cfg.quick { "quick" } else { "full" },
        elapsed
    )?;
    write!(stdout, "{table}")?;
    writeln!(stdout, "\n== targets ({main_name}) ==")?;
    for (name, met, detail) in &tg {
        writeln!(
            stdout,
            "[{}] {name}: {detail}",
            if *met { "met " } else { "MISS" }
        )?;
    }
    let json = to_json(&ctx.cfg, &ctx.results, elapsed, &tg);
    if let Some(parent) = ctx.cfg.json.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&ctx.cfg.json, json)?;
    writeln!(stdout, "\nJSON written to {}", ctx.cfg.json.display())?;
    Ok(())
}
