//! `kv-bench`: identical workloads on every DataKnobs KV backend (through
//! `KVStore`) and on peers (sled, redb, raw rusqlite, raw sqlx, raw
//! object_store), side by side in one run.
//!
//! ```text
//! cargo run --release -p kv-bench -- --quick          # < 3 minutes
//! cargo run --release -p kv-bench                     # the full matrix
//! cargo run --release -p kv-bench -- --docs docs/performance.md
//! cargo run --release -p kv-bench -- --only s3,object --merge target/kv-bench-full.json
//! ```
//!
//! PostgreSQL rows need `KV_TEST_POSTGRES_URL`, S3 rows `KV_TEST_S3_ENDPOINT`
//! and `KV_TEST_S3_BUCKET` (with `AWS_*` credentials); without them those
//! rows are skipped and the run says so. Every system gets the same keys,
//! values and random sequence; rates are medians over the workload's
//! duration, latencies per operation. Writes a JSON report and an SVG chart
//! of the ratios; `--docs FILE` also rewrites the part of FILE between
//! `<!-- kv-bench:begin -->` and `<!-- kv-bench:end -->`. `--merge FILE`
//! keeps the rows of the systems this run does not measure from an earlier
//! JSON report (ratios are only taken between rows of one run).
#![deny(missing_docs)]

mod report;
mod targets;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde::Serialize;

use targets::{BoxError, Cleanup, Ours, RawObjects, RawSqlite, RawSqlx, Redb, Sled, Target, R};

/// Command-line options.
#[derive(Debug, Parser)]
#[command(name = "kv-bench", about = "Cross-backend benchmark of DataKnobs KV")]
struct Args {
    /// Small data and short workloads: finishes in under 3 minutes.
    #[arg(long)]
    quick: bool,
    /// Seconds each workload runs on each system (default 0.3 quick, 2 full).
    #[arg(long)]
    secs: Option<f64>,
    /// Keys of the S3 data sets, at every value size (default 500 quick,
    /// 100,000 full). The S3 server of the test setup (moto) answers one
    /// request at a time, so loading takes minutes per 100,000 keys.
    #[arg(long)]
    s3_keys: Option<usize>,
    /// Take the rows of the systems this run does not measure from an
    /// earlier JSON report (e.g. a full run, when re-measuring only `s3`).
    #[arg(long)]
    merge: Option<PathBuf>,
    /// Only systems whose name contains one of these (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The JSON report (default: target/kv-bench.json).
    #[arg(long)]
    json: Option<PathBuf>,
    /// The SVG chart (default: next to the JSON report, kv-bench.svg).
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Rewrite the kv-bench section of this Markdown file (and put the
    /// chart beside it as kv-bench.svg).
    #[arg(long)]
    docs: Option<PathBuf>,
}

/// The operations measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Workload {
    /// Random get, one client.
    Get,
    /// Random overwrite, one client.
    Set,
    /// 90% get / 10% set, 8 concurrent clients.
    Mix,
    /// Read the 100 keys under a random prefix, with values.
    Scan100,
    /// Write 1,000 keys in one batch.
    Batch1000,
    /// 16 clients incrementing one key.
    Incr16,
    /// Read 100 random keys in one call.
    GetMany100,
}

impl Workload {
    const ALL: [Workload; 7] = [
        Workload::Get,
        Workload::Set,
        Workload::Mix,
        Workload::Scan100,
        Workload::Batch1000,
        Workload::Incr16,
        Workload::GetMany100,
    ];

    /// The name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Get => "get",
            Workload::Set => "set",
            Workload::Mix => "mix 90/10 ×8",
            Workload::Scan100 => "scan 100",
            Workload::Batch1000 => "batch set 1,000",
            Workload::Incr16 => "incr ×16 one key",
            Workload::GetMany100 => "get_many 100",
        }
    }

    fn clients(self) -> usize {
        match self {
            Workload::Mix => 8,
            Workload::Incr16 => 16,
            _ => 1,
        }
    }
}

/// A system under test, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Memory,
    Engine,
    Sqlite,
    Postgres,
    S3,
    Sled,
    Redb,
    RawSqlite,
    RawSqlx,
    RawObjects,
}

impl Kind {
    fn name(self, cached: bool) -> String {
        let base = match self {
            Kind::Memory => "memory",
            Kind::Engine => "engine",
            Kind::Sqlite => "sqlite",
            Kind::Postgres => "postgres",
            Kind::S3 => "s3",
            Kind::Sled => "sled",
            Kind::Redb => "redb",
            Kind::RawSqlite => "raw rusqlite",
            Kind::RawSqlx => "raw sqlx",
            Kind::RawObjects => "raw object_store",
        };
        if cached {
            format!("cache+{base}")
        } else {
            base.to_owned()
        }
    }

    /// The kind of a system named by [`Kind::name`].
    fn from_system(name: &str) -> R<Kind> {
        Kind::SYSTEMS
            .into_iter()
            .find(|&(k, cached)| k.name(cached) == name)
            .map(|(k, _)| k)
            .ok_or_else(|| format!("unknown system {name:?}").into())
    }

    /// Every system, `(kind, cached)`, in the order they run and are listed.
    const SYSTEMS: [(Kind, bool); 15] = [
        (Kind::Memory, false),
        (Kind::Engine, false),
        (Kind::Sqlite, false),
        (Kind::Memory, true),
        (Kind::Engine, true),
        (Kind::Sqlite, true),
        (Kind::Sled, false),
        (Kind::Redb, false),
        (Kind::RawSqlite, false),
        (Kind::Postgres, false),
        (Kind::Postgres, true),
        (Kind::RawSqlx, false),
        (Kind::S3, false),
        (Kind::S3, true),
        (Kind::RawObjects, false),
    ];

    /// Where a system is listed (see [`Kind::SYSTEMS`]).
    fn rank(system: &str) -> usize {
        Kind::SYSTEMS
            .iter()
            .position(|&(k, cached)| k.name(cached) == system)
            .unwrap_or(Kind::SYSTEMS.len())
    }

    fn is_peer(self) -> bool {
        matches!(
            self,
            Kind::Sled | Kind::Redb | Kind::RawSqlite | Kind::RawSqlx | Kind::RawObjects
        )
    }

    /// The peers a backend of ours is compared with.
    fn peers(self) -> &'static [Kind] {
        match self {
            Kind::Memory | Kind::Engine => &[Kind::Sled, Kind::Redb],
            Kind::Sqlite => &[Kind::RawSqlite],
            Kind::Postgres => &[Kind::RawSqlx],
            Kind::S3 => &[Kind::RawObjects],
            _ => &[],
        }
    }
}

/// One data set and the systems run on it.
#[derive(Debug, Clone)]
struct Scenario {
    value_size: usize,
    keys: usize,
    /// `(kind, cached)`.
    systems: Vec<(Kind, bool)>,
}

/// One measured row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// System name (`engine`, `cache+sqlite`, `sled`, …).
    pub system: String,
    /// Whether the system is a peer (not ours).
    pub peer: bool,
    /// What the system is (its ratios are to this kind's peers).
    #[serde(skip)]
    kind: Kind,
    /// Workload name.
    pub workload: &'static str,
    /// Value size in bytes.
    pub value_size: usize,
    /// Keys loaded.
    pub keys: usize,
    /// Operations completed.
    pub ops: u64,
    /// Operations per second.
    pub ops_per_sec: f64,
    /// Median latency, microseconds.
    pub p50_us: f64,
    /// 99th percentile latency, microseconds.
    pub p99_us: f64,
    /// Ours / peer throughput, per peer of this system.
    pub ratios: Vec<(String, f64)>,
    /// Taken from an earlier report (`--merge`): compared only with rows
    /// of that report.
    #[serde(skip)]
    earlier: bool,
}

/// Services for the PostgreSQL and S3 rows.
struct Services {
    pg: Option<sqlx::PgPool>,
    s3: Option<(String, String, String)>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

async fn services() -> Services {
    let pg = match env("KV_TEST_POSTGRES_URL") {
        Some(url) => match sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&url)
            .await
        {
            Ok(pool) => Some(pool),
            Err(e) => {
                eprintln!("kv-bench: PostgreSQL rows skipped: cannot connect: {e}");
                None
            }
        },
        None => {
            eprintln!("kv-bench: PostgreSQL rows skipped: KV_TEST_POSTGRES_URL is not set");
            None
        }
    };
    let s3 = match (env("KV_TEST_S3_ENDPOINT"), env("KV_TEST_S3_BUCKET")) {
        (Some(endpoint), Some(bucket)) => Some((
            endpoint,
            bucket,
            env("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
        )),
        _ => {
            eprintln!(
                "kv-bench: S3 rows skipped: KV_TEST_S3_ENDPOINT / KV_TEST_S3_BUCKET are not set"
            );
            None
        }
    };
    Services { pg, s3 }
}

fn scenarios(quick: bool, s3_keys: Option<usize>, sv: &Services) -> Vec<Scenario> {
    let on_s3 = |k: Kind| matches!(k, Kind::S3 | Kind::RawObjects);
    let on_pg = |k: Kind| matches!(k, Kind::Postgres | Kind::RawSqlx);
    let local: Vec<(Kind, bool)> = Kind::SYSTEMS
        .into_iter()
        .filter(|&(k, _)| !on_s3(k) && (sv.pg.is_some() || !on_pg(k)))
        .collect();
    let s3: Vec<(Kind, bool)> = Kind::SYSTEMS
        .into_iter()
        .filter(|&(k, _)| on_s3(k))
        .collect();
    let embedded_1m: Vec<(Kind, bool)> = vec![
        (Kind::Memory, false),
        (Kind::Engine, false),
        (Kind::Sled, false),
        (Kind::Redb, false),
    ];
    let mut out = Vec::new();
    let sc = |value_size, keys, systems: &Vec<(Kind, bool)>| Scenario {
        value_size,
        keys,
        systems: systems.clone(),
    };
    if quick {
        out.push(sc(100, 10_000, &local));
        if sv.s3.is_some() {
            out.push(sc(100, s3_keys.unwrap_or(500), &s3));
        }
    } else {
        // 1,000,000 keys of 64 KiB would be 65 GB: more than this
        // machine's memory (the memory backend) and free disk.
        out.push(sc(100, 100_000, &local));
        out.push(sc(100, 1_000_000, &embedded_1m));
        out.push(sc(1024, 100_000, &local));
        out.push(sc(1024, 1_000_000, &embedded_1m));
        out.push(sc(65536, 100_000, &local));
        if sv.s3.is_some() {
            let keys = s3_keys.unwrap_or(100_000);
            out.push(sc(100, keys, &s3));
            out.push(sc(1024, keys, &s3));
            out.push(sc(65536, keys, &s3));
        }
    }
    out
}

/// Key `i` of a data set: groups of 100 under one prefix.
fn key(i: usize) -> String {
    format!("k.{:05}.{:02}", i / 100, i % 100)
}

/// splitmix64: the same sequence for every system.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

static RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

async fn open_system(
    kind: Kind,
    cached: bool,
    sc: &Scenario,
    dir: &std::path::Path,
    sv: &Services,
) -> R<Arc<dyn Target>> {
    let n = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let unique = format!("kvbench_{}_{n}", std::process::id());
    let path = |name: &str| {
        format!(
            "{:?}",
            dir.join(format!("{unique}{name}")).display().to_string()
        )
    };
    let cache = if cached {
        format!(
            "\n[cache]\ncapacity = {}\nttl = 600\n",
            sc.keys.min(200_000)
        )
    } else {
        String::new()
    };
    let ours = |toml: String| {
        let toml = format!("{toml}{cache}");
        async move { Ours::open(&toml, Cleanup::Keys).await }
    };
    Ok(match kind {
        Kind::Memory => Arc::new(ours("[store]\nbackend = \"memory\"\n".into()).await?),
        Kind::Engine => Arc::new(
            ours(format!(
                "[store]\nbackend = \"engine\"\n[engine]\npath = {}\nsync = \"never\"\n",
                path("-engine")
            ))
            .await?,
        ),
        Kind::Sqlite => Arc::new(
            ours(format!(
                "[store]\nbackend = \"sqlite\"\n[sqlite]\npath = {}\nsynchronous = \"normal\"\n",
                path(".db")
            ))
            .await?,
        ),
        Kind::Postgres => {
            let pool = sv.pg.clone().ok_or("no PostgreSQL")?;
            let url = env("KV_TEST_POSTGRES_URL").ok_or("no PostgreSQL")?;
            let toml = format!(
                "[store]\nbackend = \"postgres\"\n[postgres]\nurl = {url:?}\ntable = \"{unique}\"\npool_size = 8\n{cache}"
            );
            Arc::new(Ours::open(&toml, Cleanup::Table(pool, unique)).await?)
        }
        Kind::S3 => {
            let (endpoint, bucket, region) = sv.s3.clone().ok_or("no S3")?;
            let toml = format!(
                "[store]\nbackend = \"s3\"\n[s3]\nbucket = {bucket:?}\nprefix = \"{unique}\"\nendpoint = {endpoint:?}\nregion = {region:?}\n{cache}"
            );
            let objects = RawObjects::open(&endpoint, &bucket, &region, unique)?;
            Arc::new(Ours::open(&toml, Cleanup::Objects(objects)).await?)
        }
        Kind::Sled => Arc::new(Sled::open(&dir.join(format!("{unique}-sled")))?),
        Kind::Redb => Arc::new(Redb::open(&dir.join(format!("{unique}.redb")))?),
        Kind::RawSqlite => Arc::new(RawSqlite::open(&dir.join(format!("{unique}-raw.db")))?),
        Kind::RawSqlx => {
            let pool = sv.pg.clone().ok_or("no PostgreSQL")?;
            Arc::new(RawSqlx::open(pool, format!("{unique}_raw")).await?)
        }
        Kind::RawObjects => {
            let (endpoint, bucket, region) = sv.s3.clone().ok_or("no S3")?;
            Arc::new(RawObjects::open(&endpoint, &bucket, &region, unique)?)
        }
    })
}

fn value_of(size: usize, salt: u64) -> Vec<u8> {
    (0..size).map(|i| (i as u64 ^ salt) as u8).collect()
}

async fn load(t: &dyn Target, sc: &Scenario) -> R<()> {
    let chunk = 1000;
    let mut i = 0;
    while i < sc.keys {
        let end = (i + chunk).min(sc.keys);
        let items = (i..end)
            .map(|j| (key(j), value_of(sc.value_size, j as u64)))
            .collect();
        t.load(items).await?;
        i = end;
    }
    Ok(())
}

/// Runs `w` on `t` for `secs`; returns ops, elapsed and sorted latencies.
async fn measure(
    t: Arc<dyn Target>,
    w: Workload,
    sc: &Scenario,
    secs: f64,
) -> R<(u64, f64, Vec<u64>)> {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..w.clients() {
        let t = Arc::clone(&t);
        let (keys, size) = (sc.keys, sc.value_size);
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x5EED ^ ((c as u64) << 32));
            let value = value_of(size, 7);
            let mut lat = Vec::new();
            loop {
                let t0 = Instant::now();
                match w {
                    Workload::Get => {
                        t.get(&key(rng.below(keys))).await?;
                    }
                    Workload::Set => t.set(&key(rng.below(keys)), &value).await?,
                    Workload::Mix => {
                        let k = key(rng.below(keys));
                        if rng.below(10) == 0 {
                            t.set(&k, &value).await?;
                        } else {
                            t.get(&k).await?;
                        }
                    }
                    Workload::Scan100 => {
                        let g = rng.below(keys.div_ceil(100));
                        let (lo, hi, pattern) = (
                            format!("k.{g:05}."),
                            format!("k.{g:05}/"),
                            format!("k.{g:05}.*"),
                        );
                        t.scan(&lo, &hi, &pattern, 100).await?;
                    }
                    Workload::Batch1000 => {
                        let start = rng.below(keys.saturating_sub(1000).max(1));
                        let items = (start..(start + 1000).min(keys))
                            .map(|j| (key(j), value.clone()))
                            .collect();
                        t.batch(items).await?;
                    }
                    Workload::Incr16 => {
                        t.incr("ctr").await?;
                    }
                    Workload::GetMany100 => {
                        let ks: Vec<String> = (0..100).map(|_| key(rng.below(keys))).collect();
                        t.get_many(&ks).await?;
                    }
                }
                lat.push(t0.elapsed().as_nanos() as u64);
                if Instant::now() >= deadline {
                    break;
                }
            }
            Ok::<_, BoxError>(lat)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    Ok((all.len() as u64, elapsed, all))
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

/// Fills in each row's ratios to its peers in the same scenario.
fn add_ratios(rows: &mut [Row]) {
    let snapshot = rows.to_vec();
    for row in rows.iter_mut().filter(|r| !r.peer) {
        for peer in row.kind.peers() {
            let name = peer.name(false);
            if let Some(p) = snapshot.iter().find(|p| {
                p.system == name
                    && p.earlier == row.earlier
                    && p.workload == row.workload
                    && p.value_size == row.value_size
                    && p.keys == row.keys
            }) {
                if p.ops_per_sec > 0.0 {
                    row.ratios.push((name, row.ops_per_sec / p.ops_per_sec));
                }
            }
        }
    }
}

async fn run(args: Args) -> R<()> {
    let secs = args.secs.unwrap_or(if args.quick { 0.3 } else { 2.0 });
    // Read before measuring: a bad file fails the run at once, not after
    // an hour of measurements.
    let earlier = match &args.merge {
        Some(file) => Some((file, report::Saved::read(file)?)),
        None => None,
    };
    let sv = services().await;
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    for sc in scenarios(args.quick, args.s3_keys, &sv) {
        for &(kind, cached) in &sc.systems {
            let name = kind.name(cached);
            if !args.only.is_empty() && !args.only.iter().any(|o| name.contains(o.as_str())) {
                continue;
            }
            let t0 = Instant::now();
            // Each system in a directory of its own, removed once it is
            // measured: the disk holds one data set at a time (64 KiB x
            // 100,000 keys is 6.5 GB before any WAL or journal).
            let sys_dir = dir.path().join(format!("system-{}", rows.len()));
            std::fs::create_dir_all(&sys_dir)?;
            let target = open_system(kind, cached, &sc, &sys_dir, &sv).await?;
            load(&*target, &sc).await?;
            eprintln!(
                "kv-bench: {name}: {} keys × {} B loaded in {:.1?}",
                sc.keys,
                sc.value_size,
                t0.elapsed()
            );
            for w in Workload::ALL {
                let (ops, elapsed, lat) = measure(Arc::clone(&target), w, &sc, secs).await?;
                let row = Row {
                    system: name.clone(),
                    peer: kind.is_peer(),
                    kind,
                    workload: w.name(),
                    value_size: sc.value_size,
                    keys: sc.keys,
                    ops,
                    ops_per_sec: ops as f64 / elapsed,
                    p50_us: percentile(&lat, 0.5),
                    p99_us: percentile(&lat, 0.99),
                    ratios: Vec::new(),
                    earlier: false,
                };
                eprintln!(
                    "kv-bench:   {:<18} {:>12.0} ops/s  p50 {:>9.1} µs  p99 {:>9.1} µs",
                    row.workload, row.ops_per_sec, row.p50_us, row.p99_us
                );
                rows.push(row);
            }
            target.cleanup().await?;
            drop(target);
            std::fs::remove_dir_all(&sys_dir)?;
        }
    }
    let mut merged = None;
    if let Some((file, saved)) = earlier {
        let mut kept: Vec<Row> = saved
            .rows()?
            .into_iter()
            .filter(|old| !rows.iter().any(|new| new.system == old.system))
            .collect();
        merged = Some(report::Merged {
            args: std::env::args().skip(1).collect(),
            file: file.display().to_string(),
            date: saved.date,
            total_secs: saved.total_secs,
            systems: report::systems_of(&kept)
                .into_iter()
                .map(str::to_owned)
                .collect(),
        });
        kept.append(&mut rows);
        rows = kept;
        // As one run would list them: by data set, then system.
        rows.sort_by_key(|r| (r.value_size, r.keys, Kind::rank(&r.system)));
    }
    add_ratios(&mut rows);
    let total = started.elapsed();
    let report = report::Report {
        quick: args.quick,
        secs_per_workload: secs,
        date: report::today(),
        total_secs: total.as_secs_f64(),
        rows,
        merged,
    };
    print!("{}", report.table());
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    let json = args
        .json
        .unwrap_or_else(|| target_dir.join("kv-bench.json"));
    if let Some(parent) = json.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&json, serde_json::to_vec_pretty(&report)?)?;
    let svg = args
        .svg
        .unwrap_or_else(|| json.with_file_name("kv-bench.svg"));
    std::fs::write(&svg, report.svg())?;
    eprintln!("kv-bench: wrote {} and {}", json.display(), svg.display());
    if let Some(docs) = args.docs {
        let chart = docs.with_file_name("kv-bench.svg");
        std::fs::write(&chart, report.svg())?;
        report::rewrite_docs(&docs, &report.markdown("kv-bench.svg"))?;
        eprintln!(
            "kv-bench: rewrote {} and {}",
            docs.display(),
            chart.display()
        );
    }
    eprintln!("kv-bench: finished in {total:.1?}");
    Ok(())
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("kv-bench: error: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(system: &str, earlier: bool, ops_per_sec: f64) -> Row {
        Row {
            system: system.into(),
            peer: system.starts_with("raw"),
            kind: Kind::from_system(system).unwrap_or_else(|e| panic!("{e}")),
            workload: "get",
            value_size: 100,
            keys: 100_000,
            ops: 1,
            ops_per_sec,
            p50_us: 1.0,
            p99_us: 1.0,
            ratios: Vec::new(),
            earlier,
        }
    }

    /// A merged report compares each system with the peer of its own run
    /// only: a re-measured S3 row is not divided by an earlier peer row.
    #[test]
    fn ratios_pair_rows_of_the_same_run_only() {
        let mut rows = vec![
            row("sqlite", true, 80.0),
            row("raw rusqlite", true, 100.0),
            row("s3", false, 400.0),
            row("raw object_store", true, 800.0),
        ];
        add_ratios(&mut rows);
        assert_eq!(rows[0].ratios, vec![("raw rusqlite".to_owned(), 0.8)]);
        assert!(rows[2].ratios.is_empty(), "{:?}", rows[2].ratios);
        rows.push(row("raw object_store", false, 500.0));
        for r in &mut rows {
            r.ratios.clear();
        }
        add_ratios(&mut rows);
        assert_eq!(rows[2].ratios, vec![("raw object_store".to_owned(), 0.8)]);
    }

    #[test]
    fn every_system_name_reads_back_as_its_kind() {
        for (i, (kind, cached)) in Kind::SYSTEMS.into_iter().enumerate() {
            let name = kind.name(cached);
            let got = Kind::from_system(&name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(got, kind);
            assert_eq!(Kind::rank(&name), i);
        }
        assert!(Kind::from_system("mysql").is_err());
        assert!(Kind::from_system("cache+sled").is_err());
        assert_eq!(Kind::rank("mysql"), Kind::SYSTEMS.len());
    }
}
