//! `get` through `KVStore` with and without the cache layer, side by side in
//! one run (issue 7, point 6).
//!
//! ```text
//! CARGO_TARGET_DIR=/work/main/target-cachebench cargo bench -p kv-cache --bench cache            # full, ~3 min
//! CARGO_TARGET_DIR=/work/main/target-cachebench cargo bench -p kv-cache --bench cache -- --quick # ~1 min
//! KV_TEST_POSTGRES_URL=postgres://… cargo bench -p kv-cache --bench cache                        # with PostgreSQL
//! ```
//!
//! Options (after `--`): `--quick`, `--rounds N`, `--secs S` (one
//! measurement), `--tasks N` (concurrent clients of the concurrent rows),
//! `--json PATH`, `--only hit,sqlite,pg` (a subset, e.g. under `perf`).
//!
//! # Data
//!
//! 100,000 keys `users.<6 digits>.<field>` (10,000 users × 10 fields) with
//! 100-character string values (101 encoded bytes), written through
//! `KVStore::set_many` of the *uncached* store, so every cache starts empty.
//!
//! # Workloads
//!
//! - **Zipf(0.99)** over the 100,000 keys: rank `r` (1-based) is drawn with
//!   probability `r^-0.99 / H`, from a precomputed CDF of all 100,000 ranks
//!   and a binary search on a uniform `f64` (53 random bits); ranks are
//!   mapped to keys through a fixed random permutation, so hot keys are
//!   spread over the table. The sampler is checked at start-up against the
//!   exact probabilities.
//! - **hot set, uniform**: the 10,000 keys of Zipf ranks 1–10,000, drawn
//!   uniformly, all of them in a cache of 10,000 entries: every cached
//!   `get` is a hit (checked: no miss is counted while timing).
//!
//! Randomness is a fixed-seed xorshift; every measurement draws from a
//! fresh fixed-seed stream. Drawing a key (and the loop) is inside the
//! timing on both sides.
//!
//! # What is measured
//!
//! Every figure is `KVStore::get` on a `kv_core::Store` (default options,
//! system clock) awaited in a loop by `tasks` async tasks on a multi-thread
//! Tokio runtime (worker threads = CPUs), total calls / wall time: ops/s.
//! "uncached" is `Store::new(backend)`; "cached" is
//! `Store::new(CacheLayer::new(backend, capacity 10,000, ttl 60 s))` over
//! **the same** backend object. Cached and uncached alternate round by round
//! (the order flips each round); figures are medians of the rounds.
//!
//! Before timing, each cache is warmed by the workload it is then timed
//! with (Zipf rows: a fixed number of Zipf `get`s through the cached store;
//! hit-path rows: passes over the hot keys until one pass has no miss).
//! The hit ratio reported is the cache layer's own `hits / (hits + misses)`
//! (from `KVStore::stats()`, `backend.fields`) over the timed cached rounds
//! only.
//!
//! Rows:
//!
//! | row | backend | clients |
//! |---|---|---|
//! | hit path (the 9,000 hottest keys, uniform) | memory backend | 1 task; 2 tasks |
//! | hit path | SQLite (`readers(2)`), warm cache | 1 task |
//! | Zipf `get` | SQLite (`readers(2)`, WAL, one file in a temp dir) | 1 task; `tasks` tasks |
//! | Zipf `get` | PostgreSQL (`pool_size(tasks)`, fresh table, dropped at the end) | 1 task; `tasks` tasks |
//!
//! Targets (from the issue): hit path ≥ 2,000,000 ops/s through `KVStore`;
//! cached PostgreSQL `get` ≥ 20× uncached on the Zipf workload. A cache of
//! the 10,000 hottest ranks holds 80.0% of the Zipf(0.99) mass over 100,000
//! keys, so no cache of that size can hit more than ~80% of `get`s, and
//! when a miss costs what an uncached `get` costs, cached/uncached is at
//! most about 1 / (1 − hit ratio) ≈ 5×. The bench prints that bound.
//!
//! Diagnostics (printed and in the JSON, one task, hot keys): ns per call of
//! drawing a key alone, `Backend::read_value` on the memory backend and on
//! the cache layer (no `Store`), and `KVStore::get` uncached and cached.
//!
//! PostgreSQL rows run when `KV_TEST_POSTGRES_URL` is set (a table
//! `t_cachebench_<pid>_<nanos>` is created and dropped); otherwise they are
//! skipped with a note.
//!
//! `--quick`: 3 rounds of 0.5 s, 100,000 Zipf warm-up gets; full: 5 rounds of
//! 2 s, 300,000 warm-up gets. The key count and cache size are the same in
//! both (the workload of the issue).
//!
//! The JSON goes to `$CARGO_TARGET_DIR/cache-bench.json`, or
//! `<workspace>/target/cache-bench.json` without the variable.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kv_backend_postgres::{PgOptions, PgStore};
use kv_backend_sqlite::{SqliteOptions, SqliteStore};
use kv_cache::{CacheLayer, CacheOptions};
use kv_core::{Backend, KVStore, MemoryBackend, Store, Value, DEFAULT_NAMESPACE};
use tokio::runtime::Runtime;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

const FIELDS: [&str; 10] = [
    "age", "city", "country", "email", "name", "phone", "plan", "score", "since", "status",
];
const KEYS: usize = 100_000;
const CACHE: u64 = 10_000;
/// Keys of the hit-path rows: the hottest 90% of `CACHE`. The memory tier
/// is split into shards of `CACHE / shards` entries each, and keys do not
/// spread over the shards evenly, so a hot set of exactly `CACHE` keys
/// overflows the fullest shards (about 3% of it, measured by the warm-up)
/// and is no longer all hits.
const HOT: usize = (CACHE as usize) * 9 / 10;
const ZIPF_S: f64 = 0.99;
const VALUE_LEN: usize = 100;
const SEED: u64 = 0xCAC4_E5EE_D123_4567;
/// Operations between two looks at the clock.
const CHUNK: u64 = 16;
const HIT_TARGET: f64 = 2_000_000.0;
const PG_RATIO_TARGET: f64 = 20.0;

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Cfg {
    quick: bool,
    rounds: usize,
    round: Duration,
    warmup: Duration,
    warm_gets: u64,
    tasks: usize,
    json: PathBuf,
    only: Option<Vec<String>>,
}

impl Cfg {
    fn wants(&self, tag: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|t| t == tag))
    }
}

fn default_json() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d).join("cache-bench.json"),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target")
            .join("cache-bench.json"),
    }
}

fn parse_args() -> Res<Cfg> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let mut cfg = Cfg {
        quick,
        rounds: if quick { 3 } else { 5 },
        round: Duration::from_millis(if quick { 500 } else { 2_000 }),
        warmup: Duration::from_millis(if quick { 200 } else { 500 }),
        warm_gets: if quick { 100_000 } else { 300_000 },
        tasks: 16,
        json: default_json(),
        only: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val =
            || -> Res<&String> { it.next().ok_or_else(|| format!("{a} needs a value").into()) };
        match a.as_str() {
            "--quick" | "--bench" => {}
            "--rounds" => cfg.rounds = val()?.parse()?,
            "--secs" => cfg.round = Duration::from_secs_f64(val()?.parse()?),
            "--tasks" => cfg.tasks = val()?.parse()?,
            "--json" => cfg.json = PathBuf::from(val()?),
            "--only" => cfg.only = Some(val()?.split(',').map(str::to_owned).collect()),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    cfg.rounds = cfg.rounds.max(3);
    cfg.tasks = cfg.tasks.max(2);
    Ok(cfg)
}

// ---------------------------------------------------------------------------
// Data and key distributions
// ---------------------------------------------------------------------------

/// xorshift64: tiny, fixed-seed, the same every run.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
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
    /// Uniform in [0, 1) from the top 53 bits.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Zipf(s) over ranks 0..n (rank 0 the most frequent): the exact CDF,
/// searched with a uniform draw.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for r in 1..=n {
            acc += (r as f64).powf(-s);
            cdf.push(acc);
        }
        for c in &mut cdf {
            *c /= acc;
        }
        if let Some(last) = cdf.last_mut() {
            *last = 1.0;
        }
        Zipf { cdf }
    }
    fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        // First rank whose cumulative probability exceeds u.
        self.cdf
            .partition_point(|&c| c <= u)
            .min(self.cdf.len() - 1)
    }
    /// Probability mass of ranks 0..k.
    fn mass(&self, k: usize) -> f64 {
        if k == 0 {
            0.0
        } else {
            self.cdf[k.min(self.cdf.len()) - 1]
        }
    }
}

fn key_of(i: usize) -> String {
    format!("users.{:06}.{}", i / FIELDS.len(), FIELDS[i % FIELDS.len()])
}

/// A 100-character string value, different per key.
fn value_of(i: usize) -> Value {
    let mut s = String::with_capacity(VALUE_LEN);
    s.push_str(&format!("k{i:07}-"));
    let mut rng = Rng::new((i as u64) << 20 ^ 0xA5);
    while s.len() < VALUE_LEN {
        s.push(char::from(b'a' + (rng.next() % 26) as u8));
    }
    Value::String(s)
}

struct Work {
    keys: Vec<String>,
    /// Key index of each Zipf rank (a fixed random permutation).
    by_rank: Vec<usize>,
    zipf: Zipf,
    /// Key indices of the `HOT` hottest ranks.
    hot: Vec<usize>,
}

impl Work {
    fn new() -> Work {
        let keys: Vec<String> = (0..KEYS).map(key_of).collect();
        let mut by_rank: Vec<usize> = (0..KEYS).collect();
        let mut rng = Rng::new(SEED ^ 0x5151);
        for i in (1..by_rank.len()).rev() {
            let j = rng.below(i + 1);
            by_rank.swap(i, j);
        }
        let hot = by_rank[..HOT].to_vec();
        Work {
            keys,
            by_rank,
            zipf: Zipf::new(KEYS, ZIPF_S),
            hot,
        }
    }

    fn key(&self, dist: Dist, rng: &mut Rng) -> &str {
        let i = match dist {
            Dist::Zipf => self.by_rank[self.zipf.sample(rng)],
            Dist::Hot => self.hot[rng.below(self.hot.len())],
        };
        &self.keys[i]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dist {
    Zipf,
    Hot,
}

/// The sampler against the exact probabilities: the mass of the first
/// ranks and of the top 10%, over 2,000,000 draws.
fn check_zipf(z: &Zipf) -> Res<(f64, f64)> {
    let mut rng = Rng::new(SEED ^ 0x2222);
    let n = 2_000_000;
    let (mut top1, mut top10pct) = (0u64, 0u64);
    for _ in 0..n {
        let r = z.sample(&mut rng);
        top1 += u64::from(r == 0);
        top10pct += u64::from(r < CACHE as usize);
    }
    let (p1, p10) = (top1 as f64 / n as f64, top10pct as f64 / n as f64);
    let (e1, e10) = (z.mass(1), z.mass(CACHE as usize));
    // Binomial standard deviations are ~2e-4 and ~3e-4: 5σ-ish slack.
    if (p1 - e1).abs() > 0.0015 || (p10 - e10).abs() > 0.002 {
        return Err(format!(
            "Zipf sampler off: rank 1 {p1:.4} (exact {e1:.4}), top 10% {p10:.4} (exact {e10:.4})"
        )
        .into());
    }
    Ok((p1, p10))
}

// ---------------------------------------------------------------------------
// Timed loops
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Stop {
    At(Instant),
    /// This many calls per task.
    Ops(u64),
}

/// One client: `get` in a loop. Returns (calls, not found).
async fn worker(
    store: Store,
    w: Arc<Work>,
    dist: Dist,
    mut rng: Rng,
    stop: Stop,
) -> Res<(u64, u64)> {
    let (mut n, mut missing) = (0u64, 0u64);
    loop {
        for _ in 0..CHUNK {
            let k = w.key(dist, &mut rng);
            if black_box(store.get(k).await?).is_none() {
                missing += 1;
            }
        }
        n += CHUNK;
        let done = match stop {
            Stop::At(t) => Instant::now() >= t,
            Stop::Ops(m) => n >= m,
        };
        if done {
            return Ok((n, missing));
        }
    }
}

/// `tasks` concurrent clients; ops/s.
fn run(
    rt: &Runtime,
    store: &Store,
    w: &Arc<Work>,
    dist: Dist,
    tasks: usize,
    stop: impl Fn(Instant) -> Stop,
    seed: u64,
) -> Res<f64> {
    rt.block_on(async {
        let start = Instant::now();
        let stop = stop(start);
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                tokio::spawn(worker(
                    store.clone(),
                    Arc::clone(w),
                    dist,
                    Rng::new(seed ^ (t as u64 + 1) << 32),
                    stop,
                ))
            })
            .collect();
        let mut total = 0;
        for h in handles {
            let (n, missing) = h.await??;
            if missing != 0 {
                return Err(format!("{missing} of {n} gets found nothing").into());
            }
            total += n;
        }
        Ok(total as f64 / start.elapsed().as_secs_f64())
    })
}

/// What a diagnostic loop does with each hot key (one task).
#[derive(Clone)]
enum Probe {
    /// Draw the key and read its bytes: the loop's own cost.
    KeyOnly,
    /// `KVStore::get`.
    StoreGet(Store),
    /// `Backend::read_value` straight on a backend (no `Store`).
    ReadValue(Arc<dyn Backend>),
}

async fn probe_worker(probe: Probe, w: Arc<Work>, mut rng: Rng, deadline: Instant) -> Res<u64> {
    let mut n = 0u64;
    loop {
        for _ in 0..CHUNK {
            let k = w.key(Dist::Hot, &mut rng);
            let found = match &probe {
                Probe::KeyOnly => black_box(k.bytes().fold(0u8, |a, b| a ^ b)) != 0xFF,
                Probe::StoreGet(s) => black_box(s.get(k).await?).is_some(),
                Probe::ReadValue(b) => {
                    black_box(b.read_value(DEFAULT_NAMESPACE, k).await?).is_some()
                }
            };
            if !found {
                return Err(format!("probe: {k} not found").into());
            }
        }
        n += CHUNK;
        if Instant::now() >= deadline {
            return Ok(n);
        }
    }
}

/// Nanoseconds per call of `probe` (one task), median of `rounds`.
fn probe_ns(rt: &Runtime, probe: &Probe, w: &Arc<Work>, cfg: &Cfg, seed: u64) -> Res<f64> {
    let mut v = Vec::new();
    for r in 0..=cfg.rounds {
        let d = if r == 0 { cfg.warmup } else { cfg.round / 2 };
        let (p, w2) = (probe.clone(), Arc::clone(w));
        let ns = rt.block_on(async move {
            let start = Instant::now();
            let n =
                tokio::spawn(probe_worker(p, w2, Rng::new(seed ^ r as u64), start + d)).await??;
            Ok::<_, BoxError>(start.elapsed().as_nanos() as f64 / n as f64)
        })?;
        if r > 0 {
            v.push(ns);
        }
    }
    Ok(median(&v))
}

/// The cache layer's hits and misses so far.
fn cache_counts(rt: &Runtime, store: &Store) -> Res<(u64, u64)> {
    let stats = rt.block_on(store.stats())?;
    let f = &stats.backend.fields;
    if stats.backend.backend != "cache" {
        return Err(format!("not a cache layer: {}", stats.backend.backend).into());
    }
    let get = |k: &str| {
        f.get(k)
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| BoxError::from(format!("cache stats lack {k}")))
    };
    Ok((get("hits")?, get("misses")?))
}

// ---------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    None,
    /// Cached ops/s at least this.
    MinOps(f64),
    /// Cached / uncached at least this.
    Ratio(f64),
}

#[derive(Debug, Clone)]
struct Row {
    workload: String,
    backend: String,
    clients: String,
    cached: Vec<f64>,
    uncached: Vec<f64>,
    hits: u64,
    misses: u64,
    target: Target,
}

impl Row {
    fn cached_ops(&self) -> f64 {
        median(&self.cached)
    }
    fn uncached_ops(&self) -> f64 {
        median(&self.uncached)
    }
    fn ratio(&self) -> f64 {
        self.cached_ops() / self.uncached_ops()
    }
    fn hit_ratio(&self) -> f64 {
        self.hits as f64 / (self.hits + self.misses).max(1) as f64
    }
    /// Lowest and highest cached/uncached of one round (paired by round).
    fn ratio_range(&self) -> (f64, f64) {
        let r: Vec<f64> = self
            .cached
            .iter()
            .zip(&self.uncached)
            .map(|(c, u)| c / u)
            .collect();
        let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = r.iter().copied().fold(0.0, f64::max);
        (lo, hi)
    }
    /// cached/uncached when hits cost nothing and a miss costs an uncached
    /// `get`.
    fn ratio_bound(&self) -> f64 {
        1.0 / (1.0 - self.hit_ratio())
    }
    fn met(&self) -> Option<bool> {
        match self.target {
            Target::None => None,
            Target::MinOps(m) => Some(self.cached_ops() >= m),
            Target::Ratio(r) => Some(self.ratio() >= r),
        }
    }
    fn target_text(&self) -> String {
        let verdict = |m: bool| if m { "met" } else { "MISSED" };
        match (self.target, self.met()) {
            (Target::MinOps(m), Some(ok)) => {
                format!("cached ≥ {} ops/s {}", fmt_ops(m), verdict(ok))
            }
            (Target::Ratio(r), Some(ok)) => format!("≥ {r:.0}× {}", verdict(ok)),
            _ => "context".into(),
        }
    }
}

fn fmt_ops(x: f64) -> String {
    let s = (x.round() as u64).to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "{:<16} {:<28} {:<9} {:>11} {:>11} {:>8} {:>13} {:>9} {:>8}  target",
        "workload",
        "backend",
        "clients",
        "cached/s",
        "uncached/s",
        "ratio",
        "per round",
        "hit ratio",
        "1/(1-h)"
    );
    println!("{}", "-".repeat(150));
    for r in rows {
        let bound = if r.misses == 0 {
            "-".to_owned()
        } else {
            format!("{:.1}×", r.ratio_bound())
        };
        println!(
            "{:<16} {:<28} {:<9} {:>11} {:>11} {:>7.2}× {:>13} {:>9.4} {:>8}  {}",
            r.workload,
            r.backend,
            r.clients,
            fmt_ops(r.cached_ops()),
            fmt_ops(r.uncached_ops()),
            r.ratio(),
            format!("{:.2}–{:.2}", r.ratio_range().0, r.ratio_range().1),
            r.hit_ratio(),
            bound,
            r.target_text()
        );
    }
    println!(
        "(ops/s: medians of the rounds of KVStore::get; per round: lowest–highest cached/uncached of one round; hit ratio h: the cache layer's hits/(hits+misses) over the timed"
    );
    println!(
        " cached rounds; 1/(1-h): the most cached/uncached can be when a miss costs what an uncached get costs)"
    );
}

fn to_json(cfg: &Cfg, rows: &[Row], meta: serde_json::Value) -> serde_json::Value {
    let rows: Vec<_> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "workload": r.workload,
                "backend": r.backend,
                "clients": r.clients,
                "cached_ops_per_s": r.cached_ops(),
                "uncached_ops_per_s": r.uncached_ops(),
                "ratio": r.ratio(),
                "ratio_per_round_min_max": [r.ratio_range().0, r.ratio_range().1],
                "cached_rounds": r.cached,
                "uncached_rounds": r.uncached,
                "cache_hits": r.hits,
                "cache_misses": r.misses,
                "hit_ratio": r.hit_ratio(),
                "ratio_bound_1_over_1_minus_h": if r.misses == 0 { None } else { Some(r.ratio_bound()) },
                "target": r.target_text(),
                "target_met": r.met(),
            })
        })
        .collect();
    serde_json::json!({
        "bench": "kv-cache/benches/cache.rs",
        "quick": cfg.quick,
        "keys": KEYS,
        "cache_capacity": CACHE,
        "zipf_s": ZIPF_S,
        "value_bytes": VALUE_LEN,
        "rounds": cfg.rounds,
        "round_secs": cfg.round.as_secs_f64(),
        "tasks": cfg.tasks,
        "warm_gets": cfg.warm_gets,
        "meta": meta,
        "rows": rows,
    })
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

struct Bench<'a> {
    cfg: &'a Cfg,
    rt: &'a Runtime,
    work: Arc<Work>,
    seed: std::cell::Cell<u64>,
    rows: Vec<Row>,
}

impl Bench<'_> {
    fn next_seed(&self) -> u64 {
        self.seed
            .set(self.seed.get().wrapping_add(0x1234_5678_9ABC));
        self.seed.get()
    }

    /// Warms `cached` with its workload (Zipf: `warm_gets` calls over the
    /// clients; hot set: every hot key once).
    fn warm(&self, cached: &Store, dist: Dist, tasks: usize) -> Res<()> {
        match dist {
            Dist::Zipf => {
                let per_task = self.cfg.warm_gets.div_ceil(tasks as u64);
                run(
                    self.rt,
                    cached,
                    &self.work,
                    dist,
                    tasks,
                    |_| Stop::Ops(per_task),
                    self.next_seed(),
                )?;
            }
            // Passes over the hot keys until one is served wholly from the
            // cache: a key read once is admitted on probation, and kept
            // when it is read again.
            Dist::Hot => {
                for pass in 1.. {
                    let (_, m0) = cache_counts(self.rt, cached)?;
                    self.rt.block_on(async {
                        for &i in &self.work.hot {
                            if cached.get(&self.work.keys[i]).await?.is_none() {
                                return Err(BoxError::from(format!(
                                    "{} missing",
                                    self.work.keys[i]
                                )));
                            }
                        }
                        Ok(())
                    })?;
                    let (_, m1) = cache_counts(self.rt, cached)?;
                    if m1 == m0 {
                        println!("  warmed the hot keys in {pass} passes");
                        break;
                    }
                    if pass == 10 {
                        return Err(format!(
                            "the cache still misses {} of the {} hot keys after {pass} passes",
                            m1 - m0,
                            self.work.hot.len()
                        )
                        .into());
                    }
                }
            }
        }
        Ok(())
    }

    /// Cached and uncached alternately (order flipping), after a warm-up
    /// round of each; the hit ratio over the timed cached rounds.
    #[allow(clippy::too_many_arguments)]
    fn row(
        &mut self,
        workload: &str,
        backend: &str,
        cached: &Store,
        uncached: &Store,
        dist: Dist,
        tasks: usize,
        target: Target,
    ) -> Res<()> {
        let cfg = self.cfg;
        let timed = |store: &Store, d: Duration, seed: u64| {
            run(
                self.rt,
                store,
                &self.work,
                dist,
                tasks,
                |s| Stop::At(s + d),
                seed,
            )
        };
        timed(cached, cfg.warmup, self.next_seed())?;
        timed(uncached, cfg.warmup, self.next_seed())?;
        let (mut c, mut u) = (Vec::new(), Vec::new());
        let (mut hits, mut misses) = (0, 0);
        for round in 0..cfg.rounds {
            let mut cached_round = |c: &mut Vec<f64>| -> Res<()> {
                let (h0, m0) = cache_counts(self.rt, cached)?;
                c.push(timed(cached, cfg.round, self.next_seed())?);
                let (h1, m1) = cache_counts(self.rt, cached)?;
                hits += h1 - h0;
                misses += m1 - m0;
                Ok(())
            };
            if round % 2 == 0 {
                cached_round(&mut c)?;
                u.push(timed(uncached, cfg.round, self.next_seed())?);
            } else {
                u.push(timed(uncached, cfg.round, self.next_seed())?);
                cached_round(&mut c)?;
            }
        }
        if dist == Dist::Hot && misses != 0 {
            return Err(
                format!("{workload} over {backend}: {misses} misses on the hit path").into(),
            );
        }
        let row = Row {
            workload: workload.into(),
            backend: backend.into(),
            clients: if tasks == 1 {
                "1 task".into()
            } else {
                format!("{tasks} tasks")
            },
            cached: c,
            uncached: u,
            hits,
            misses,
            target,
        };
        println!(
            "  {} / {} / {}: cached {} ops/s, uncached {} ops/s, {:.2}×, hit ratio {:.4}",
            row.workload,
            row.backend,
            row.clients,
            fmt_ops(row.cached_ops()),
            fmt_ops(row.uncached_ops()),
            row.ratio(),
            row.hit_ratio()
        );
        self.rows.push(row);
        Ok(())
    }

    /// The Zipf rows (1 task, then `tasks` tasks) over one backend, one
    /// cache shared by both rows and warmed once.
    fn zipf_rows(
        &mut self,
        backend_name: &str,
        backend: Arc<dyn Backend>,
        target: Target,
    ) -> Res<()> {
        let uncached = Store::new(Arc::clone(&backend));
        let cached = cached_store(backend)?;
        let tasks = self.cfg.tasks;
        check_same(self.rt, &self.work, &cached, &uncached)?;
        let t = Instant::now();
        self.warm(&cached, Dist::Zipf, tasks)?;
        let (h, m) = cache_counts(self.rt, &cached)?;
        println!(
            "  warmed the {backend_name} cache: {} Zipf gets in {:.1} s (hit ratio while warming {:.3})",
            self.cfg.warm_gets,
            t.elapsed().as_secs_f64(),
            h as f64 / (h + m).max(1) as f64
        );
        for n in [1, tasks] {
            self.row(
                "get Zipf(0.99)",
                backend_name,
                &cached,
                &uncached,
                Dist::Zipf,
                n,
                target,
            )?;
        }
        Ok(())
    }
}

fn cached_store(backend: Arc<dyn Backend>) -> Res<Store> {
    let layer = CacheLayer::new(
        backend,
        CacheOptions::new()
            .capacity(CACHE)
            .ttl(Duration::from_secs(60)),
    )?;
    Ok(Store::new(Arc::new(layer)))
}

/// Both stores answer the same for a sample of keys (twice, so the cached
/// store answers once from the backend and once from the cache).
fn check_same(rt: &Runtime, w: &Work, cached: &Store, uncached: &Store) -> Res<()> {
    rt.block_on(async {
        let mut rng = Rng::new(SEED ^ 0x7777);
        for _ in 0..200 {
            let k = w.key(Dist::Zipf, &mut rng);
            let want = uncached.get(k).await?;
            for _ in 0..2 {
                let got = cached.get(k).await?;
                if want.is_none() || got != want {
                    return Err(format!("get {k}: cached {got:?} != uncached {want:?}").into());
                }
            }
        }
        Ok::<_, BoxError>(())
    })
}

/// Writes every key through `store` (uncached), 1,000 per `set_many`.
fn fill(rt: &Runtime, store: &Store, w: &Work, what: &str) -> Res<()> {
    let t = Instant::now();
    rt.block_on(async {
        for chunk in (0..KEYS).collect::<Vec<_>>().chunks(1000) {
            let entries = chunk
                .iter()
                .map(|&i| (w.keys[i].clone(), value_of(i)))
                .collect();
            store.set_many(entries).await?;
        }
        store.flush().await?;
        Ok::<_, BoxError>(())
    })?;
    println!(
        "  filled {what}: {KEYS} keys in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

fn pg_table() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("t_cachebench_{}_{nanos}", std::process::id())
}

async fn pg_drop(url: &str, table: &str) -> Res<()> {
    let pool = sqlx::PgPool::connect(url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        r#"DROP TABLE IF EXISTS "{table}""#
    )))
    .execute(&pool)
    .await?;
    sqlx::query("DELETE FROM kv_schema WHERE tbl = $1")
        .bind(table)
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(())
}

fn main() -> Res<()> {
    let cfg = parse_args()?;
    let t0 = Instant::now();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "kv-cache bench{}: {KEYS} keys, {VALUE_LEN}-byte values, cache {CACHE} entries (10%), Zipf({ZIPF_S}), \
         {} rounds × {:.2} s, {} concurrent tasks, {cpus} CPUs",
        if cfg.quick { " (quick)" } else { "" },
        cfg.rounds,
        cfg.round.as_secs_f64(),
        cfg.tasks,
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let work = Arc::new(Work::new());
    let ideal = work.zipf.mass(CACHE as usize);
    let (p1, p10) = check_zipf(&work.zipf)?;
    println!(
        "Zipf sampler: rank 1 drawn {p1:.4} (exact {:.4}), ranks 1–{CACHE} drawn {p10:.4} (exact {ideal:.4})",
        work.zipf.mass(1)
    );
    println!(
        "Best possible hit ratio of a {CACHE}-entry cache on this workload: {ideal:.4}; \
         if a miss costs what an uncached get costs, cached/uncached ≤ 1/(1 − {ideal:.3}) = {:.1}×",
        1.0 / (1.0 - ideal)
    );
    let mut b = Bench {
        cfg: &cfg,
        rt: &rt,
        work: Arc::clone(&work),
        seed: std::cell::Cell::new(SEED),
        rows: Vec::new(),
    };
    let mut notes: Vec<String> = Vec::new();
    let mut diagnostics: Vec<(String, f64)> = Vec::new();

    // --- hit path: memory backend --------------------------------------------
    if cfg.wants("hit") {
        let mem: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let uncached = Store::new(Arc::clone(&mem));
        fill(&rt, &uncached, &work, "memory backend")?;
        let cached = cached_store(mem)?;
        b.warm(&cached, Dist::Hot, 1)?;
        for n in [1, 2] {
            b.row(
                "get hit path",
                "memory",
                &cached,
                &uncached,
                Dist::Hot,
                n,
                Target::MinOps(HIT_TARGET),
            )?;
        }
        // Where a hit's time goes: one task, ns per call, same hot keys.
        let cache_backend = Arc::clone(cached.backend());
        let probes = [
            ("draw a hot key, read its bytes (loop cost)", Probe::KeyOnly),
            (
                "Backend::read_value on MemoryBackend",
                Probe::ReadValue(Arc::clone(uncached.backend())),
            ),
            (
                "Backend::read_value on CacheLayer (hit)",
                Probe::ReadValue(cache_backend),
            ),
            (
                "KVStore::get, uncached memory",
                Probe::StoreGet(uncached.clone()),
            ),
            (
                "KVStore::get, cached (hit)",
                Probe::StoreGet(cached.clone()),
            ),
        ];
        for (what, probe) in probes {
            let ns = probe_ns(&rt, &probe, &work, &cfg, b.next_seed())?;
            println!("  diagnostic: {what}: {ns:.0} ns/call");
            diagnostics.push((what.to_owned(), ns));
        }
        println!(
            "  done: hit path, memory ({:.0} s)",
            t0.elapsed().as_secs_f64()
        );
    }

    // --- SQLite ------------------------------------------------------------------
    let dir = tempfile::tempdir()?;
    if cfg.wants("hit") || cfg.wants("sqlite") {
        let sqlite: Arc<dyn Backend> = rt.block_on(async {
            let s = SqliteStore::open(SqliteOptions::new(dir.path().join("bench.db")).readers(2))
                .await?;
            Ok::<_, BoxError>(Arc::new(s))
        })?;
        let uncached = Store::new(Arc::clone(&sqlite));
        fill(&rt, &uncached, &work, "SQLite")?;
        if cfg.wants("hit") {
            let cached = cached_store(Arc::clone(&sqlite))?;
            b.warm(&cached, Dist::Hot, 1)?;
            b.row(
                "get hit path",
                "SQLite, warm cache",
                &cached,
                &uncached,
                Dist::Hot,
                1,
                Target::MinOps(HIT_TARGET),
            )?;
        }
        if cfg.wants("sqlite") {
            b.zipf_rows("SQLite (2 readers, WAL)", sqlite, Target::None)?;
        }
        println!("  done: SQLite ({:.0} s)", t0.elapsed().as_secs_f64());
    }

    // --- PostgreSQL ----------------------------------------------------------------
    if cfg.wants("pg") {
        match std::env::var("KV_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => {
                let table = pg_table();
                let opts = PgOptions::new(&url)
                    .table(&table)
                    .pool_size(u32::try_from(cfg.tasks)?);
                println!(
                    "  PostgreSQL at {}, table {table}, pool {}",
                    opts.redacted_url(),
                    cfg.tasks
                );
                let result = (|| -> Res<()> {
                    let pg: Arc<dyn Backend> = rt.block_on(async {
                        Ok::<_, BoxError>(Arc::new(PgStore::open(opts).await?))
                    })?;
                    let uncached = Store::new(Arc::clone(&pg));
                    fill(&rt, &uncached, &work, "PostgreSQL")?;
                    let name = format!("PostgreSQL (pool {})", cfg.tasks);
                    b.zipf_rows(&name, Arc::clone(&pg), Target::Ratio(PG_RATIO_TARGET))?;
                    rt.block_on(pg.close())?;
                    Ok(())
                })();
                let dropped = rt.block_on(pg_drop(&url, &table));
                result?;
                dropped?;
                println!(
                    "  done: PostgreSQL, table dropped ({:.0} s)",
                    t0.elapsed().as_secs_f64()
                );
            }
            _ => {
                let note = "PostgreSQL rows SKIPPED: KV_TEST_POSTGRES_URL is not set".to_owned();
                println!("  {note}");
                notes.push(note);
            }
        }
    }

    print_table(&b.rows);
    println!();
    println!(
        "What is measured: KVStore::get on kv_core::Store, awaited in a loop by N async tasks on a"
    );
    println!("multi-thread Tokio runtime ({cpus} workers); cached = Store over CacheLayer(capacity {CACHE}, ttl 60 s)");
    println!("over the same backend object as uncached. hit path: the {HOT} hottest keys, uniform, all cached");
    println!("(no miss while timing). Zipf: ranks 1..{KEYS} with p ∝ r^-{ZIPF_S}, mapped to keys by a fixed permutation.");
    for n in &notes {
        println!("{n}");
    }

    let meta = serde_json::json!({
        "cpus": cpus,
        "zipf_top_cache_mass": ideal,
        "ratio_bound_if_miss_costs_uncached_get": 1.0 / (1.0 - ideal),
        "notes": notes,
        "diagnostics_ns_per_call": diagnostics
            .iter()
            .map(|(k, v)| serde_json::json!({"what": k, "ns": v}))
            .collect::<Vec<_>>(),
        "elapsed_s": t0.elapsed().as_secs_f64(),
    });
    let json = to_json(&cfg, &b.rows, meta);
    if let Some(parent) = cfg.json.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&cfg.json, serde_json::to_string_pretty(&json)?)?;
    println!(
        "JSON: {} (total {:.0} s)",
        cfg.json.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
