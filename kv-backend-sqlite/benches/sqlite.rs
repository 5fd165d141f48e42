//! The SQLite backend through `KVStore` beside raw rusqlite, in one run.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/main/target-bench cargo bench -p kv-backend-sqlite --bench sqlite            # full
//! CARGO_TARGET_DIR=/work/main/target-bench cargo bench -p kv-backend-sqlite --bench sqlite -- --quick # < 1 min
//! ```
//!
//! Options (after `--`): `--quick`, `--keys N`, `--rounds N`, `--secs S` (one
//! measurement), `--tasks N` (concurrent async tasks), `--readers N`
//! (reader connections / raw threads of the concurrent rows), `--json PATH`,
//! `--only get1,getN,scan1,scanN,set` (a subset, e.g. under `perf record`).
//!
//! # Setup (the same for both sides)
//!
//! One database file in a fresh temp dir, created by `SqliteStore::open`
//! (WAL, `synchronous = NORMAL`, the table of `schema.rs`), filled through
//! `KVStore::set_many` with 100,000 keys `users.<6 digits>.<field>` (10,000
//! users × 10 fields) and 100-character string values (101 encoded bytes),
//! then checkpointed. Ours and raw work on that same file, so the B-tree,
//! the page layout and the OS cache are shared; ours and raw alternate
//! round by round (the order flips each round), and every figure is the
//! median of the rounds. Randomness is a fixed-seed xorshift.
//!
//! Raw connections are opened like the backend's: the writer read-write
//! with `journal_mode = WAL`, `synchronous = NORMAL`, a 5 s busy timeout and
//! a 64-statement cache; readers `SQLITE_OPEN_READ_ONLY | NO_MUTEX`. The
//! SQL text is copied verbatim from `schema.rs` (`Sql::new`, `Sql::ranged`).
//!
//! # Rows
//!
//! | workload | ours | raw |
//! |---|---|---|
//! | `get` | `KVStore::get` of a random key | `prepare_cached` `SELECT value, checksum, expires_at … WHERE namespace = ?1 AND key = ?2`, value into a `Vec`, expiry check, CRC check and `Value::decode` (`StoredValue::decode`) |
//! | `set_many` | `KVStore::set_many` of 1,000 distinct random existing keys (overwrites) | one `BEGIN IMMEDIATE` transaction: the backend's `version_of` statement per key, then its upsert (`INSERT … ON CONFLICT DO UPDATE`) per key, keys in sorted order as the store does |
//! | `scan` | `KVStore::scan("users.<6 digits>.*", None, 100)`: 10 entries | the backend's scan statement as the store runs it (`SELECT key, <COLUMNS> … WHERE namespace = :ns AND key >= :lo AND key < :hi ORDER BY key LIMIT 1000`: the store walks ranges in pages of `kv_core::ops::SCAN_PAGE` = 1000 and the backend writes the limit into the text), every row decoded to an `Entry` like `record_from_row` + `Store::entry_of` (all columns, JSON metadata, CRC, `Value::decode`) |
//!
//! Parallelism: "1 client" is one async task awaiting each call in turn on
//! a multi-thread Tokio runtime, over a store with 1 reader connection,
//! against raw on one thread with one connection; "2 readers" is a store
//! with `readers(2)` driven by 16 concurrent tasks, against raw on 2
//! threads with a connection each. Writes always go through one writer.
//!
//! Context rows for `set_many` (no target): raw "writes only" (just the
//! upserts in one transaction) and raw "same statements as ours": what the
//! backend's `apply_planned` runs for `Store::set_many`, one `BEGIN
//! IMMEDIATE` transaction on the writer with the backend's `read` statement
//! per key (full row decoded as `record_from_row` does), then the upsert per
//! key with the version and `created_at` taken from the row read — the work
//! the store does without the `Store` layer.
//!
//! The scan statement has its LIMIT in the text on both sides: a bound
//! `LIMIT :limit` puts the parameter in SQLite's "re-prepare when rebound"
//! mask, and rusqlite clears bindings when a statement goes back to its
//! cache, so every run would be re-parsed and re-planned
//! (`sqlite3Reprepare`).
//!
//! Context row for `get` with one client (no target): raw's own `get` run
//! as an async caller has to run a blocking call, inside
//! `tokio::task::block_in_place` on one Tokio task with the store's yield
//! point per call (`kv_core::ops::cooperate(Cooperation::InPlace)`, as
//! the store's reads over this backend run). Against raw on a plain thread
//! it shows what handing the worker thread over costs per call; against
//! ours, what the `Store` and the backend add on top of that. Its rounds
//! run after the `get` rows, not alternated with them.
//!
//! Context row for the scan with two readers (no target): raw's own scans
//! run by 16 Tokio tasks sharing 2 connections, each scan inside
//! `block_in_place` on the first connection no one holds (waiting there
//! for one when both are held), the connection held only for the query
//! and reading the rows (checks and decoding after, as ours does), with a
//! budget yield per call (as ours spends while callers wait): the
//! plainest way an async caller can share connections without blocking
//! the executor. Its connections are opened once and warmed by a first
//! round; its rounds run after the scan rows.
//!
//! Diagnostics (printed and in the JSON): the pool's round trip alone
//! (`SqliteStore::with_connection` with a no-op job, one task) and the
//! one-client `get` latencies. On a VM with idle vCPUs a cross-thread wake-up
//! can cost tens of µs, so the one-client rows swing with machine load.
//!
//! Targets (from the issue): ours ≥ 0.8 × raw on every row with a target,
//! and `get` ≥ 100,000 ops/s.
//!
//! `--quick`: 20,000 keys, 3 rounds of 0.35 s (under a minute with the build
//! done); full: 100,000 keys, 5 rounds of 2 s (about 2.5 minutes).
//!
//! The JSON goes to `$CARGO_TARGET_DIR/sqlite-bench.json`, or
//! `<workspace>/target/sqlite-bench.json` without the variable.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use kv_backend_sqlite::{SqliteOptions, SqliteStore, DEFAULT_TABLE};
use kv_core::backend::prefix_successor;
use kv_core::record::StoredValue;
use kv_core::{
    Entry, KVStore, Metadata, Store, SystemMetadata, Timestamp, UserMetadata, Value, ValueType,
    DEFAULT_NAMESPACE,
};
use rusqlite::{
    named_params, params, Connection, OpenFlags, OptionalExtension, TransactionBehavior,
};
use tokio::runtime::Runtime;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

const FIELDS: [&str; 10] = [
    "age", "city", "country", "email", "name", "phone", "plan", "score", "since", "status",
];
const VALUE_LEN: usize = 100;
const SEED: u64 = 0x5EED_5EED_1234_ABCD;
/// Operations between two looks at the clock.
const CHUNK: u64 = 16;

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Cfg {
    quick: bool,
    keys: usize,
    rounds: usize,
    round: Duration,
    warmup: Duration,
    readers: usize,
    tasks: usize,
    batch: usize,
    scan_limit: usize,
    json: PathBuf,
    /// Only these workloads (`get1,getN,scan1,scanN,set`), for profiling.
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
        Some(d) => PathBuf::from(d).join("sqlite-bench.json"),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target")
            .join("sqlite-bench.json"),
    }
}

fn parse_args() -> Res<Cfg> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let mut cfg = if quick {
        Cfg {
            quick,
            keys: 20_000,
            rounds: 3,
            round: Duration::from_millis(350),
            warmup: Duration::from_millis(150),
            readers: 2,
            tasks: 16,
            batch: 1_000,
            scan_limit: 100,
            json: default_json(),
            only: None,
        }
    } else {
        Cfg {
            quick,
            keys: 100_000,
            rounds: 5,
            round: Duration::from_millis(2_000),
            warmup: Duration::from_millis(500),
            readers: 2,
            tasks: 16,
            batch: 1_000,
            scan_limit: 100,
            json: default_json(),
            only: None,
        }
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val =
            || -> Res<&String> { it.next().ok_or_else(|| format!("{a} needs a value").into()) };
        match a.as_str() {
            "--quick" | "--bench" => {}
            "--keys" => cfg.keys = val()?.parse()?,
            "--rounds" => cfg.rounds = val()?.parse()?,
            "--secs" => cfg.round = Duration::from_secs_f64(val()?.parse()?),
            "--tasks" => cfg.tasks = val()?.parse()?,
            "--readers" => cfg.readers = val()?.parse()?,
            "--json" => cfg.json = PathBuf::from(val()?),
            "--only" => cfg.only = Some(val()?.split(',').map(str::to_owned).collect()),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    if cfg.keys < FIELDS.len() || cfg.keys % FIELDS.len() != 0 {
        return Err("--keys must be a multiple of 10".into());
    }
    cfg.rounds = cfg.rounds.max(3);
    cfg.batch = cfg.batch.min(cfg.keys);
    Ok(cfg)
}

// ---------------------------------------------------------------------------
// Data
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
}

fn key_of(i: usize) -> String {
    format!("users.{:06}.{}", i / FIELDS.len(), FIELDS[i % FIELDS.len()])
}

/// A 100-character string value, different per key and generation.
fn value_of(i: usize, generation: u64) -> Value {
    let mut s = String::with_capacity(VALUE_LEN);
    s.push_str(&format!("g{generation:05}-k{i:07}-"));
    let mut rng = Rng::new((i as u64) << 20 ^ generation);
    while s.len() < VALUE_LEN {
        s.push(char::from(b'a' + (rng.next() % 26) as u8));
    }
    Value::String(s)
}

/// `n` distinct random key indices, sorted.
fn batch_indices(rng: &mut Rng, keys: usize, n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = Vec::with_capacity(n + n / 8);
    while v.len() < n {
        while v.len() < n + n / 16 {
            v.push(rng.below(keys));
        }
        v.sort_unstable();
        v.dedup();
    }
    // Remove random extras (truncating would favour small keys).
    while v.len() > n {
        let at = rng.below(v.len());
        v.remove(at);
    }
    v
}

// ---------------------------------------------------------------------------
// Raw rusqlite: the backend's SQL, verbatim
// ---------------------------------------------------------------------------

const COLUMNS: &str = "value, value_type, version, checksum, size, content_type, created_at, updated_at, accessed_at, expires_at, metadata";

struct RawSql {
    read_value: String,
    version_of: String,
    upsert: String,
    read: String,
    /// The backend's scan statement for a prefix, LIMIT in the text.
    scan: String,
}

impl RawSql {
    fn new(t: &str, limit: usize) -> RawSql {
        let insert = format!(
            r#"INSERT INTO "{t}" (namespace, key, {COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"#
        );
        RawSql {
            read_value: format!(
                r#"SELECT value, checksum, expires_at FROM "{t}" WHERE namespace = ?1 AND key = ?2"#
            ),
            version_of: format!(
                r#"SELECT version, expires_at FROM "{t}" WHERE namespace = ?1 AND key = ?2"#
            ),
            upsert: format!(
                "{insert} ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, \
                 value_type = excluded.value_type, version = excluded.version, \
                 checksum = excluded.checksum, size = excluded.size, \
                 content_type = excluded.content_type, created_at = excluded.created_at, \
                 updated_at = excluded.updated_at, accessed_at = excluded.accessed_at, \
                 expires_at = excluded.expires_at, metadata = excluded.metadata"
            ),
            read: format!(r#"SELECT {COLUMNS} FROM "{t}" WHERE namespace = ?1 AND key = ?2"#),
            scan: format!(
                r#"SELECT key, {COLUMNS} FROM "{t}" WHERE namespace = :ns AND key >= :lo AND key < :hi ORDER BY key LIMIT {limit}"#
            ),
        }
    }
}

fn raw_writer(path: &Path) -> Res<Connection> {
    let c = Connection::open(path)?;
    c.busy_timeout(Duration::from_secs(5))?;
    c.set_prepared_statement_cache_capacity(64);
    let mode: String = c.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("raw writer is in journal mode {mode}").into());
    }
    c.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(c)
}

fn raw_reader(path: &Path) -> Res<Connection> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.busy_timeout(Duration::from_secs(5))?;
    c.set_prepared_statement_cache_capacity(64);
    Ok(c)
}

/// Raw point read, decoded as `Store::get` does.
fn raw_get(conn: &Connection, sql: &RawSql, ns: &str, key: &str) -> Res<Option<Value>> {
    let now = Timestamp::now();
    let mut stmt = conn.prepare_cached(&sql.read_value)?;
    let stored = stmt
        .query_row([ns, key], |r| {
            Ok(StoredValue {
                value: r.get(0)?,
                checksum: u32::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                expires_at: r.get::<_, Option<i64>>(2)?.map(Timestamp::from_millis),
            })
        })
        .optional()?;
    match stored.filter(|s| !s.is_expired(now)) {
        Some(s) => Ok(Some(s.decode(ns, key)?)),
        None => Ok(None),
    }
}

/// The columns of a row (from `first`, in `COLUMNS` order) as the backend's
/// `record_from_row` reads them.
fn raw_parts(
    row: &rusqlite::Row<'_>,
    first: usize,
) -> Res<(Vec<u8>, SystemMetadata, UserMetadata)> {
    let value: Vec<u8> = row.get(first)?;
    let value_type: String = row.get(first + 1)?;
    let value_type: ValueType = value_type.parse()?;
    let metadata: String = row.get(first + 10)?;
    let user: UserMetadata = serde_json::from_str(&metadata)?;
    let ts = Timestamp::from_millis;
    let system = SystemMetadata {
        version: u64::try_from(row.get::<_, i64>(first + 2)?)?,
        checksum: u32::try_from(row.get::<_, i64>(first + 3)?)?,
        size: u64::try_from(row.get::<_, i64>(first + 4)?).unwrap_or(0),
        content_type: row.get(first + 5)?,
        created_at: ts(row.get(first + 6)?),
        updated_at: ts(row.get(first + 7)?),
        accessed_at: row.get::<_, Option<i64>>(first + 8)?.map(ts),
        expires_at: row.get::<_, Option<i64>>(first + 9)?.map(ts),
        value_type,
    };
    Ok((value, system, user))
}

/// Raw prefix scan, every row decoded to an `Entry` (CRC + value decode).
fn raw_scan(conn: &Connection, sql: &RawSql, ns: &str, prefix: &str) -> Res<Vec<Entry>> {
    decode_rows(raw_scan_rows(conn, sql, ns, prefix)?)
}

/// A row of a raw scan as read from SQLite: key, value bytes, metadata.
type RawRow = (String, Vec<u8>, SystemMetadata, UserMetadata);

/// The rows of a raw prefix scan, read (as the backend reads its rows
/// into records) but not yet checked or decoded.
fn raw_scan_rows(conn: &Connection, sql: &RawSql, ns: &str, prefix: &str) -> Res<Vec<RawRow>> {
    let hi = prefix_successor(prefix).ok_or("no successor")?;
    let mut stmt = conn.prepare_cached(&sql.scan)?;
    let mut rows = stmt.query(named_params! {":ns": ns, ":lo": prefix, ":hi": hi})?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let key: String = row.get(0)?;
        let (value, system, user) = raw_parts(row, 1)?;
        out.push((key, value, system, user));
    }
    Ok(out)
}

/// Live rows to entries: expiry, CRC check, `Value::decode`.
fn decode_rows(rows: Vec<RawRow>) -> Res<Vec<Entry>> {
    let now = Timestamp::now();
    let mut out = Vec::with_capacity(rows.len());
    for (key, value, system, user) in rows {
        if matches!(system.expires_at, Some(t) if now >= t) {
            continue;
        }
        if crc32fast::hash(&value) != system.checksum {
            return Err(format!("checksum mismatch at {key}").into());
        }
        let value = Value::decode(&value)?;
        out.push(Entry {
            key,
            value,
            metadata: Metadata { system, user },
        });
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RawSet {
    /// `version_of` per key + upsert per key, one transaction (the target's
    /// peer).
    VersionsAndWrites,
    /// Only the upserts, one transaction (context).
    WritesOnly,
    /// The backend's `apply_planned` for a set: one transaction, the
    /// `read` statement per key (full rows decoded), then the upserts with
    /// version and `created_at` from the rows read (context).
    SameAsOurs,
}

struct RowIn<'a> {
    key: &'a str,
    encoded: Vec<u8>,
    checksum: u32,
    size: i64,
    version: i64,
    created_at: i64,
}

/// One raw batch of upserts over the sorted distinct `idx`.
fn raw_set_batch(
    writer: &mut Connection,
    sql: &RawSql,
    keys: &[String],
    idx: &[usize],
    generation: u64,
    mode: RawSet,
) -> Res<()> {
    let ns = DEFAULT_NAMESPACE;
    let now = Timestamp::now().as_millis();
    // The values, encoded and checksummed as `Record::new` does.
    let mut rows: Vec<RowIn<'_>> = idx
        .iter()
        .map(|&i| {
            let v = value_of(i, generation);
            let encoded = v.encode();
            RowIn {
                key: &keys[i],
                checksum: crc32fast::hash(&encoded),
                size: v.payload_len() as i64,
                encoded,
                version: 1,
                created_at: now,
            }
        })
        .collect();
    let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
    match mode {
        RawSet::WritesOnly => {
            for r in &mut rows {
                r.version = generation as i64;
            }
        }
        RawSet::VersionsAndWrites => {
            let mut stmt = tx.prepare_cached(&sql.version_of)?;
            for r in &mut rows {
                let current = stmt
                    .query_row([ns, r.key], |row| row.get::<_, i64>(0))
                    .optional()?;
                if let Some(v) = current {
                    r.version = v + 1;
                }
            }
        }
        RawSet::SameAsOurs => {
            // Every key read (whole row decoded) before any is written.
            let mut stmt = tx.prepare_cached(&sql.read)?;
            for r in &mut rows {
                let mut q = stmt.query([ns, r.key])?;
                if let Some(row) = q.next()? {
                    let (_value, system, _user) = raw_parts(row, 0)?;
                    r.version = system.version as i64 + 1;
                    r.created_at = system.created_at.as_millis();
                }
            }
        }
    }
    {
        let mut stmt = tx.prepare_cached(&sql.upsert)?;
        for r in &rows {
            stmt.execute(params![
                ns,
                r.key,
                r.encoded,
                "string",
                r.version,
                i64::from(r.checksum),
                r.size,
                None::<String>,
                r.created_at,
                now,
                None::<i64>,
                None::<i64>,
                "{}",
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Timed loops
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadOp {
    Get,
    Scan,
}

struct Shared {
    keys: Arc<Vec<String>>,
    users: usize,
    scan_limit: usize,
}

/// One async client: `op` in a loop until `deadline`. Returns (ops, misses).
async fn ours_worker(
    store: Store,
    sh: Arc<Shared>,
    op: ReadOp,
    mut rng: Rng,
    deadline: Instant,
) -> Res<(u64, u64)> {
    let (mut n, mut bad) = (0u64, 0u64);
    loop {
        for _ in 0..CHUNK {
            match op {
                ReadOp::Get => {
                    let k = &sh.keys[rng.below(sh.keys.len())];
                    if black_box(store.get(k).await?).is_none() {
                        bad += 1;
                    }
                }
                ReadOp::Scan => {
                    let pattern = format!("users.{:06}.*", rng.below(sh.users));
                    let page = store.scan(&pattern, None, sh.scan_limit).await?;
                    if black_box(page).entries.len() != FIELDS.len() {
                        bad += 1;
                    }
                }
            }
        }
        n += CHUNK;
        if Instant::now() >= deadline {
            return Ok((n, bad));
        }
    }
}

fn raw_worker(
    conn: &Connection,
    sql: &RawSql,
    sh: &Shared,
    op: ReadOp,
    mut rng: Rng,
    deadline: Instant,
) -> Res<(u64, u64)> {
    let (mut n, mut bad) = (0u64, 0u64);
    loop {
        for _ in 0..CHUNK {
            match op {
                ReadOp::Get => {
                    let k = &sh.keys[rng.below(sh.keys.len())];
                    if black_box(raw_get(conn, sql, DEFAULT_NAMESPACE, k)?).is_none() {
                        bad += 1;
                    }
                }
                ReadOp::Scan => {
                    let prefix = format!("users.{:06}.", rng.below(sh.users));
                    let entries = raw_scan(conn, sql, DEFAULT_NAMESPACE, &prefix)?;
                    if black_box(entries).len() != FIELDS.len() {
                        bad += 1;
                    }
                }
            }
        }
        n += CHUNK;
        if Instant::now() >= deadline {
            return Ok((n, bad));
        }
    }
}

/// Runs `tasks` Tokio tasks, `task(t, deadline)` each, and waits for all;
/// each returns how many operations it made. Total ops/s.
fn run_tasks<F, Fut>(rt: &Runtime, tasks: usize, dur: Duration, task: F) -> Res<f64>
where
    F: Fn(usize, Instant) -> Fut,
    Fut: std::future::Future<Output = Res<u64>> + Send + 'static,
{
    rt.block_on(async {
        let start = Instant::now();
        let deadline = start + dur;
        let handles: Vec<_> = (0..tasks)
            .map(|t| tokio::spawn(task(t, deadline)))
            .collect();
        let mut total = 0;
        for h in handles {
            total += h.await??;
        }
        Ok(total as f64 / start.elapsed().as_secs_f64())
    })
}

/// Ours: `tasks` concurrent tasks on the runtime; ops/s.
fn run_ours(
    rt: &Runtime,
    store: &Store,
    sh: &Arc<Shared>,
    op: ReadOp,
    tasks: usize,
    dur: Duration,
    seed: u64,
) -> Res<f64> {
    run_tasks(rt, tasks, dur, |t, deadline| {
        let worker = ours_worker(
            store.clone(),
            Arc::clone(sh),
            op,
            Rng::new(seed ^ (t as u64 + 1) << 32),
            deadline,
        );
        async move {
            let (n, bad) = worker.await?;
            if bad != 0 {
                return Err(format!("ours {op:?}: {bad} of {n} calls missed").into());
            }
            Ok(n)
        }
    })
}

/// Raw: one thread per connection; ops/s.
fn run_raw(
    conns: &mut [Connection],
    sql: &RawSql,
    sh: &Shared,
    op: ReadOp,
    dur: Duration,
    seed: u64,
) -> Res<f64> {
    if conns.len() == 1 {
        // One client: on this thread, like a plain synchronous program.
        let start = Instant::now();
        let (n, bad) = raw_worker(
            &conns[0],
            sql,
            sh,
            op,
            Rng::new(seed ^ 1 << 32),
            start + dur,
        )?;
        if bad != 0 {
            return Err(format!("raw {op:?}: {bad} of {n} calls missed").into());
        }
        return Ok(n as f64 / start.elapsed().as_secs_f64());
    }
    let barrier = Barrier::new(conns.len() + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = conns
            .iter_mut()
            .enumerate()
            .map(|(t, conn)| {
                let barrier = &barrier;
                // `Connection` is `Send`, not `Sync`: each thread gets the
                // exclusive use of its connection for the round.
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    raw_worker(
                        conn,
                        sql,
                        sh,
                        op,
                        Rng::new(seed ^ (t as u64 + 1) << 32),
                        start + dur,
                    )
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let mut total = 0;
        for h in handles {
            let (n, bad) = h.join().map_err(|_| "raw thread panicked")??;
            if bad != 0 {
                return Err(format!("raw {op:?}: {bad} of {n} calls missed").into());
            }
            total += n;
        }
        Ok(total as f64 / start.elapsed().as_secs_f64())
    })
}

/// The pool's round trip alone: `with_connection` with a no-op job, one
/// task awaiting each in turn; round trips/s.
fn run_hop(rt: &Runtime, backend: &Arc<SqliteStore>, dur: Duration) -> Res<f64> {
    let b = Arc::clone(backend);
    rt.block_on(async move {
        tokio::spawn(async move {
            let start = Instant::now();
            let mut n = 0u64;
            loop {
                for _ in 0..CHUNK {
                    b.with_connection(|_| Ok(())).await?;
                }
                n += CHUNK;
                if start.elapsed() >= dur {
                    return Ok::<_, BoxError>(n as f64 / start.elapsed().as_secs_f64());
                }
            }
        })
        .await?
    })
}

/// Raw's `get` run as ours runs its reads: inside `block_in_place` on one
/// Tokio task, with the yield point the store runs per call over this
/// backend (`kv_core::ops::cooperate(Cooperation::InPlace)`: a yield once
/// the task has run 2 ms). Against raw on a plain thread, this is what
/// handing the worker thread over for each blocking call costs. Gets/s.
fn run_raw_in_place(
    rt: &Runtime,
    conn: Connection,
    sql: Arc<RawSql>,
    sh: &Arc<Shared>,
    dur: Duration,
    seed: u64,
) -> Res<f64> {
    let sh = Arc::clone(sh);
    rt.block_on(async move {
        tokio::spawn(async move {
            let mut rng = Rng::new(seed);
            let start = Instant::now();
            let mut n = 0u64;
            loop {
                for _ in 0..CHUNK {
                    let k = &sh.keys[rng.below(sh.keys.len())];
                    let got =
                        tokio::task::block_in_place(|| raw_get(&conn, &sql, DEFAULT_NAMESPACE, k))?;
                    if black_box(got).is_none() {
                        return Err(BoxError::from(format!("{k} missing")));
                    }
                    // The yield point the store runs over this backend.
                    kv_core::ops::cooperate(kv_core::Cooperation::InPlace).await;
                }
                n += CHUNK;
                if start.elapsed() >= dur {
                    return Ok::<_, BoxError>(n as f64 / start.elapsed().as_secs_f64());
                }
            }
        })
        .await?
    })
}

/// Raw's scans run as async callers sharing a few connections must run
/// them: `tasks` Tokio tasks, each scan inside `block_in_place` on the
/// first connection no one holds (waiting there for one when all are
/// held), with a cooperative yield point per call. Against raw on plain
/// threads with a connection each, this is what the rule "no blocking
/// call on an executor thread" costs callers that outnumber the
/// connections. Scans/s.
fn run_raw_scans_in_place(
    rt: &Runtime,
    conns: &Arc<Vec<std::sync::Mutex<Connection>>>,
    sql: Arc<RawSql>,
    sh: &Arc<Shared>,
    tasks: usize,
    dur: Duration,
    seed: u64,
) -> Res<f64> {
    run_tasks(rt, tasks, dur, |t, deadline| {
        let (conns, sql, sh) = (Arc::clone(conns), Arc::clone(&sql), Arc::clone(sh));
        let mut rng = Rng::new(seed ^ (t as u64 + 1) << 32);
        async move {
            let mut n = 0u64;
            loop {
                for _ in 0..CHUNK {
                    let prefix = format!("users.{:06}.", rng.below(sh.users));
                    let found = tokio::task::block_in_place(|| -> Res<usize> {
                        // The connection is held for the query and reading
                        // the rows, as ours holds it; checking and
                        // decoding come after.
                        let rows = {
                            let conn = conns
                                .iter()
                                .find_map(|c| c.try_lock().ok())
                                .map_or_else(|| conns[t % conns.len()].lock(), Ok)
                                .map_err(|_| "raw connection poisoned")?;
                            raw_scan_rows(&conn, &sql, DEFAULT_NAMESPACE, &prefix)?
                        };
                        Ok(decode_rows(rows)?.len())
                    })?;
                    if black_box(found) != FIELDS.len() {
                        return Err(BoxError::from(format!("raw in place: {prefix} missed")));
                    }
                    tokio::task::coop::consume_budget().await;
                }
                n += CHUNK;
                if Instant::now() >= deadline {
                    return Ok(n);
                }
            }
        }
    })
}

/// Ours `set_many` of `batch` random keys until `dur` has passed; keys/s.
fn run_ours_set(
    rt: &Runtime,
    store: &Store,
    sh: &Arc<Shared>,
    batch: usize,
    dur: Duration,
    rng: &mut Rng,
    generation: &mut u64,
) -> Res<f64> {
    let mut r = rng.clone();
    let mut g = *generation;
    let store = store.clone();
    let sh2 = Arc::clone(sh);
    let (n, elapsed, r, g) = rt.block_on(async move {
        tokio::spawn(async move {
            let start = Instant::now();
            let mut n = 0usize;
            loop {
                let idx = batch_indices(&mut r, sh2.keys.len(), batch);
                g += 1;
                let entries: Vec<(String, Value)> = idx
                    .iter()
                    .map(|&i| (sh2.keys[i].clone(), value_of(i, g)))
                    .collect();
                store.set_many(entries).await?;
                n += idx.len();
                if start.elapsed() >= dur {
                    return Ok::<_, BoxError>((n, start.elapsed(), r, g));
                }
            }
        })
        .await?
    })?;
    *rng = r;
    *generation = g;
    Ok(n as f64 / elapsed.as_secs_f64())
}

#[allow(clippy::too_many_arguments)]
fn run_raw_set(
    writer: &mut Connection,
    sql: &RawSql,
    sh: &Shared,
    batch: usize,
    dur: Duration,
    mode: RawSet,
    rng: &mut Rng,
    generation: &mut u64,
) -> Res<f64> {
    let start = Instant::now();
    let mut n = 0usize;
    loop {
        let idx = batch_indices(rng, sh.keys.len(), batch);
        *generation += 1;
        raw_set_batch(writer, sql, &sh.keys, &idx, *generation, mode)?;
        n += idx.len();
        if start.elapsed() >= dur {
            return Ok(n as f64 / start.elapsed().as_secs_f64());
        }
    }
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

#[derive(Debug, Clone)]
struct Row {
    workload: String,
    parallelism: String,
    raw_does: String,
    ours: Vec<f64>,
    raw: Vec<f64>,
    /// Rows with a target: ratio ≥ 0.8 (and `min_ops` when set).
    target: bool,
    min_ops: Option<f64>,
}

impl Row {
    fn ours_ops(&self) -> f64 {
        median(&self.ours)
    }
    fn raw_ops(&self) -> f64 {
        median(&self.raw)
    }
    fn ratio(&self) -> f64 {
        self.ours_ops() / self.raw_ops()
    }
    fn ratio_met(&self) -> bool {
        self.ratio() >= 0.8
    }
    /// Lowest and highest ours/raw over the rounds (paired by round).
    fn ratio_range(&self) -> (f64, f64) {
        let r: Vec<f64> = self
            .ours
            .iter()
            .zip(&self.raw)
            .map(|(o, r)| o / r)
            .collect();
        let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = r.iter().copied().fold(0.0, f64::max);
        (lo, hi)
    }
    fn abs_met(&self) -> Option<bool> {
        self.min_ops.map(|m| self.ours_ops() >= m)
    }
}

fn fmt_ops(x: f64) -> String {
    let n = x.round() as u64;
    let s = n.to_string();
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
        "{:<22} {:<34} {:>12} {:>12} {:>9} {:>12}  target",
        "workload", "parallelism", "ours ops/s", "raw ops/s", "ours/raw", "per round"
    );
    println!("{}", "-".repeat(124));
    for r in rows {
        let target = if r.target {
            let mut t = format!("≥0.8× {}", if r.ratio_met() { "met" } else { "MISSED" });
            if let Some(met) = r.abs_met() {
                t.push_str(&format!(", ≥100k/s {}", if met { "met" } else { "MISSED" }));
            }
            t
        } else {
            "context".to_owned()
        };
        let (lo, hi) = r.ratio_range();
        println!(
            "{:<22} {:<34} {:>12} {:>12} {:>8.2}× {:>12}  {}",
            r.workload,
            r.parallelism,
            fmt_ops(r.ours_ops()),
            fmt_ops(r.raw_ops()),
            r.ratio(),
            format!("{lo:.2}–{hi:.2}"),
            target
        );
    }
    println!("(ops/s: medians of the rounds; \"per round\": lowest–highest ours/raw of a round)");
    println!();
    for r in rows {
        println!("  {} / {}: raw = {}", r.workload, r.parallelism, r.raw_does);
    }
}

fn to_json(cfg: &Cfg, rows: &[Row], meta: serde_json::Value) -> serde_json::Value {
    let rows: Vec<_> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "workload": r.workload,
                "parallelism": r.parallelism,
                "raw_does": r.raw_does,
                "ours_ops_per_s": r.ours_ops(),
                "raw_ops_per_s": r.raw_ops(),
                "ratio": r.ratio(),
                "ratio_per_round_min_max": [r.ratio_range().0, r.ratio_range().1],
                "ours_rounds": r.ours,
                "raw_rounds": r.raw,
                "has_target": r.target,
                "ratio_target_met": if r.target { Some(r.ratio_met()) } else { None },
                "min_ops_per_s": r.min_ops,
                "min_ops_target_met": r.abs_met(),
            })
        })
        .collect();
    serde_json::json!({
        "bench": "kv-backend-sqlite/benches/sqlite.rs",
        "quick": cfg.quick,
        "keys": cfg.keys,
        "value_bytes": VALUE_LEN,
        "rounds": cfg.rounds,
        "round_secs": cfg.round.as_secs_f64(),
        "readers": cfg.readers,
        "tasks": cfg.tasks,
        "batch": cfg.batch,
        "scan_limit": cfg.scan_limit,
        "meta": meta,
        "rows": rows,
    })
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

/// Runs `ours` and `raw` alternately for `rounds` rounds (order flipping),
/// after one warm-up of each.
fn alternate(
    rounds: usize,
    mut ours: impl FnMut(bool) -> Res<f64>,
    mut raw: impl FnMut(bool) -> Res<f64>,
) -> Res<(Vec<f64>, Vec<f64>)> {
    ours(true)?;
    raw(true)?;
    let (mut o, mut r) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        if round % 2 == 0 {
            o.push(ours(false)?);
            r.push(raw(false)?);
        } else {
            r.push(raw(false)?);
            o.push(ours(false)?);
        }
    }
    Ok((o, r))
}

fn main() -> Res<()> {
    let cfg = parse_args()?;
    let t0 = Instant::now();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "kv-backend-sqlite bench{}: {} keys, {}-byte values, {} rounds × {:.2} s, SQLite {}, {} CPUs",
        if cfg.quick { " (quick)" } else { "" },
        cfg.keys,
        VALUE_LEN,
        cfg.rounds,
        cfg.round.as_secs_f64(),
        rusqlite::version(),
        cpus
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.db");

    let keys: Arc<Vec<String>> = Arc::new((0..cfg.keys).map(key_of).collect());
    let sh = Arc::new(Shared {
        keys: Arc::clone(&keys),
        users: cfg.keys / FIELDS.len(),
        scan_limit: cfg.scan_limit,
    });

    // Ours: one store with 1 reader (one-client rows, writes), one with R.
    let (backend1, store1, store_r) = rt.block_on(async {
        let b1 = Arc::new(SqliteStore::open(SqliteOptions::new(&path).readers(1)).await?);
        let br = SqliteStore::open(SqliteOptions::new(&path).readers(cfg.readers)).await?;
        let s1 = Store::new(Arc::clone(&b1) as Arc<dyn kv_core::Backend>);
        Ok::<_, BoxError>((b1, s1, Store::new(Arc::new(br))))
    })?;

    // Fill through the public API, in key order, then checkpoint.
    let fill = Instant::now();
    rt.block_on(async {
        for chunk in (0..cfg.keys).collect::<Vec<_>>().chunks(1000) {
            let entries = chunk
                .iter()
                .map(|&i| (keys[i].clone(), value_of(i, 0)))
                .collect();
            store1.set_many(entries).await?;
        }
        store1.flush().await?;
        Ok::<_, BoxError>(())
    })?;
    let db_bytes = std::fs::metadata(&path)?.len();
    println!(
        "filled {} keys in {:.2} s; database {:.1} MiB",
        cfg.keys,
        fill.elapsed().as_secs_f64(),
        db_bytes as f64 / (1 << 20) as f64
    );

    // Raw connections on the same file.
    // The store walks ranges in pages of SCAN_PAGE: the limit the backend's
    // scan statement has in its text.
    let sql = RawSql::new(DEFAULT_TABLE, kv_core::ops::SCAN_PAGE);
    let mut raw_w = raw_writer(&path)?;
    let mut raw_r1 = vec![raw_reader(&path)?];
    let mut raw_rr: Vec<Connection> = (0..cfg.readers)
        .map(|_| raw_reader(&path))
        .collect::<Res<_>>()?;

    // Both sides answer the same: values and whole entries.
    rt.block_on(async {
        let mut rng = Rng::new(SEED);
        for _ in 0..200 {
            let k = &keys[rng.below(keys.len())];
            let ours = store1.get(k).await?;
            let raw = raw_get(&raw_r1[0], &sql, DEFAULT_NAMESPACE, k)?;
            if ours.is_none() || ours != raw {
                return Err(format!("get {k}: ours {ours:?} != raw {raw:?}").into());
            }
        }
        let ours = store1
            .scan("users.000007.*", None, cfg.scan_limit)
            .await?
            .entries;
        let raw = raw_scan(&raw_r1[0], &sql, DEFAULT_NAMESPACE, "users.000007.")?;
        if ours.len() != FIELDS.len() || ours != raw {
            return Err("scan: ours and raw differ".into());
        }
        Ok::<_, BoxError>(())
    })?;

    let warm = cfg.warmup;
    let dur = |w: bool| if w { warm } else { cfg.round };
    let mut rows = Vec::new();
    let mut diagnostics: Vec<(String, f64)> = Vec::new();
    let par1 = "1 client".to_owned();
    let par_r = format!(
        "{} readers, {} tasks | {} threads",
        cfg.readers, cfg.tasks, cfg.readers
    );

    // Every measurement draws its keys from a fresh fixed-seed stream.
    let seed = std::cell::Cell::new(SEED);
    let next_seed = || {
        seed.set(seed.get().wrapping_add(0x1234_5678_9ABC));
        seed.get()
    };

    // --- get and scan: 1 client, then R readers -------------------------------
    let cases = [
        ("get1", ReadOp::Get, false),
        ("getN", ReadOp::Get, true),
        ("scan1", ReadOp::Scan, false),
        ("scanN", ReadOp::Scan, true),
    ];
    for (tag, op, concurrent) in cases {
        if !cfg.wants(tag) {
            continue;
        }
        let (store, tasks, conns, parallelism) = if concurrent {
            (&store_r, cfg.tasks, &mut raw_rr, par_r.clone())
        } else {
            (&store1, 1, &mut raw_r1, par1.clone())
        };
        let (o, r) = alternate(
            cfg.rounds,
            |w| run_ours(&rt, store, &sh, op, tasks, dur(w), next_seed()),
            |w| run_raw(conns, &sql, &sh, op, dur(w), next_seed()),
        )?;
        let threads = if concurrent {
            format!("{} threads, a connection each", cfg.readers)
        } else {
            "1 thread, 1 connection".to_owned()
        };
        let (workload, raw_does, min_ops) = match op {
            ReadOp::Get => (
                "get (random key)",
                format!("{threads}: prepare_cached read_value + StoredValue::decode"),
                Some(100_000.0),
            ),
            ReadOp::Scan => (
                "scan (prefix, 10 keys)",
                format!(
                    "{threads}: the backend's ranged scan statement (LIMIT {} in the text), rows decoded to Entry",
                    kv_core::ops::SCAN_PAGE
                ),
                None,
            ),
        };
        rows.push(Row {
            workload: workload.into(),
            parallelism: parallelism.clone(),
            raw_does,
            ours: o,
            raw: r,
            target: true,
            min_ops,
        });
        if tag == "get1" {
            // The pool's hand-off alone: a no-op job on the writer thread.
            let rates = (0..cfg.rounds)
                .map(|_| run_hop(&rt, &backend1, cfg.round))
                .collect::<Res<Vec<f64>>>()?;
            let hop = median(&rates);
            let (ours_us, raw_us) = (
                1e6 / rows[rows.len() - 1].ours_ops(),
                1e6 / rows[rows.len() - 1].raw_ops(),
            );
            diagnostics.push((
                "pool round trip, no SQL (SqliteStore::with_connection no-op), 1 client, ops/s"
                    .into(),
                hop,
            ));
            diagnostics.push(("pool round trip, µs".into(), 1e6 / hop));
            diagnostics.push(("get 1 client: ours µs/op".into(), ours_us));
            diagnostics.push(("get 1 client: raw µs/op".into(), raw_us));
            let in_place_sql = Arc::new(RawSql::new(DEFAULT_TABLE, kv_core::ops::SCAN_PAGE));
            let rates = (0..cfg.rounds)
                .map(|i| {
                    run_raw_in_place(
                        &rt,
                        raw_reader(&path)?,
                        Arc::clone(&in_place_sql),
                        &sh,
                        cfg.round,
                        SEED ^ (0x5eed + i as u64),
                    )
                })
                .collect::<Res<Vec<f64>>>()?;
            diagnostics.push((
                "get 1 client: raw in block_in_place on a Tokio task µs/op".into(),
                1e6 / median(&rates),
            ));
            let ours = rows[rows.len() - 1].ours.clone();
            rows.push(Row {
                workload: "context: get, raw as an async caller runs it".into(),
                parallelism: parallelism.clone(),
                raw_does: "raw's get inside tokio::task::block_in_place on 1 Tokio task \
                           (rounds after the get rows, not alternated)"
                    .into(),
                ours,
                raw: rates,
                target: false,
                min_ops: None,
            });
        }
        if tag == "scanN" {
            let in_place_sql = Arc::new(RawSql::new(DEFAULT_TABLE, kv_core::ops::SCAN_PAGE));
            // Connections opened once and warmed by a first round, as the
            // other rows' are.
            let conns = Arc::new(
                (0..cfg.readers)
                    .map(|_| raw_reader(&path).map(std::sync::Mutex::new))
                    .collect::<Res<Vec<_>>>()?,
            );
            let run = |d: Duration, i: u64| {
                run_raw_scans_in_place(
                    &rt,
                    &conns,
                    Arc::clone(&in_place_sql),
                    &sh,
                    cfg.tasks,
                    d,
                    SEED ^ (0x5ca1 + i),
                )
            };
            run(warm, 0)?;
            let rates = (1..=cfg.rounds as u64)
                .map(|i| run(cfg.round, i))
                .collect::<Res<Vec<f64>>>()?;
            let ours = rows[rows.len() - 1].ours.clone();
            rows.push(Row {
                workload: "context: scan, raw as async callers run it".into(),
                parallelism: parallelism.clone(),
                raw_does: format!(
                    "raw's scan inside tokio::task::block_in_place on {} Tokio tasks sharing \
                     {} connections (rounds after the scan rows, not alternated)",
                    cfg.tasks, cfg.readers
                ),
                ours,
                raw: rates,
                target: false,
                min_ops: None,
            });
        }
        println!("  done: {tag} ({:.0} s)", t0.elapsed().as_secs_f64());
    }

    // --- set_many ----------------------------------------------------------
    if cfg.wants("set") {
        // Ours and every raw variant alternate; they draw batches from separate
        // (fixed) random streams and share the generation counter.
        let mut generation = 0u64;
        let mut rng_o = Rng::new(SEED ^ 0xAAAA);
        let mut rng_r = Rng::new(SEED ^ 0xBBBB);
        let modes = [
            RawSet::VersionsAndWrites,
            RawSet::WritesOnly,
            RawSet::SameAsOurs,
        ];
        let mut ours_set = Vec::new();
        let mut raw_set: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
        let set_dur = |w: bool| if w { warm } else { cfg.round };
        run_ours_set(
            &rt,
            &store1,
            &sh,
            cfg.batch,
            set_dur(true),
            &mut rng_o,
            &mut generation,
        )?;
        for &m in &modes {
            run_raw_set(
                &mut raw_w,
                &sql,
                &sh,
                cfg.batch,
                set_dur(true),
                m,
                &mut rng_r,
                &mut generation,
            )?;
        }
        for round in 0..cfg.rounds {
            let ours_first = round % 2 == 0;
            if ours_first {
                ours_set.push(run_ours_set(
                    &rt,
                    &store1,
                    &sh,
                    cfg.batch,
                    cfg.round,
                    &mut rng_o,
                    &mut generation,
                )?);
            }
            for (i, &m) in modes.iter().enumerate() {
                raw_set[i].push(run_raw_set(
                    &mut raw_w,
                    &sql,
                    &sh,
                    cfg.batch,
                    cfg.round,
                    m,
                    &mut rng_r,
                    &mut generation,
                )?);
            }
            if !ours_first {
                ours_set.push(run_ours_set(
                    &rt,
                    &store1,
                    &sh,
                    cfg.batch,
                    cfg.round,
                    &mut rng_o,
                    &mut generation,
                )?);
            }
        }
        let set_name = format!("set_many ({} keys)", cfg.batch);
        let descr = [
            "1 tx: version_of + upsert per key (keys/s)",
            "context: 1 tx, upserts only",
            "context: 1 tx: the backend's read (whole row) + upsert per key",
        ];
        for (i, r) in raw_set.into_iter().enumerate() {
            rows.push(Row {
                workload: set_name.clone(),
                parallelism: if i == 0 {
                    "1 writer".into()
                } else {
                    format!(
                        "1 writer [{}]",
                        ["", "raw writes only", "raw same stmts"][i]
                    )
                },
                raw_does: descr[i].into(),
                ours: ours_set.clone(),
                raw: r,
                target: i == 0,
                min_ops: None,
            });
        }
        println!("  done: set ({:.0} s)", t0.elapsed().as_secs_f64());
    }

    // Ours still reads what it wrote, and raw agrees.
    rt.block_on(async {
        let k = &keys[3];
        let ours = store1.get(k).await?;
        let raw = raw_get(&raw_r1[0], &sql, DEFAULT_NAMESPACE, k)?;
        if ours.is_none() || ours != raw {
            return Err::<(), BoxError>("after writes: ours and raw differ".into());
        }
        Ok(())
    })?;

    print_table(&rows);
    println!();
    let mut all = true;
    for r in rows.iter().filter(|r| r.target) {
        let ok = r.ratio_met() && r.abs_met().unwrap_or(true);
        all &= ok;
        println!(
            "target {} / {}: ours/raw {:.2} (≥ 0.80) {}{}",
            r.workload,
            r.parallelism,
            r.ratio(),
            if r.ratio_met() { "met" } else { "MISSED" },
            match r.abs_met() {
                Some(m) => format!(
                    "; {} ops/s (≥ 100,000) {}",
                    fmt_ops(r.ours_ops()),
                    if m { "met" } else { "MISSED" }
                ),
                None => String::new(),
            }
        );
    }
    println!("all targets {}", if all { "met" } else { "NOT met" });
    if !diagnostics.is_empty() {
        println!();
        for (name, v) in &diagnostics {
            println!("diagnostic: {name}: {v:.1}");
        }
    }

    let meta = serde_json::json!({
        "sqlite": rusqlite::version(),
        "cpus": cpus,
        "database_bytes": db_bytes,
        "elapsed_secs": t0.elapsed().as_secs_f64(),
        "all_targets_met": all,
        "diagnostics": diagnostics.iter().map(|(k, v)| serde_json::json!({"name": k, "value": v})).collect::<Vec<_>>(),
    });
    let json = to_json(&cfg, &rows, meta);
    if let Some(parent) = cfg.json.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&cfg.json, serde_json::to_string_pretty(&json)?)?;
    println!(
        "wrote {} ({:.0} s in all)",
        cfg.json.display(),
        t0.elapsed().as_secs_f64()
    );

    rt.block_on(async {
        store1.close().await?;
        store_r.close().await?;
        Ok::<_, BoxError>(())
    })?;
    Ok(())
}
