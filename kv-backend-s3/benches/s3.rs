//! The S3 backend through `KVStore` beside raw `object_store` calls on the
//! same objects, against a real S3-protocol server, in one run.
//!
//! ```text
//! KV_TEST_S3_ENDPOINT=http://127.0.0.1:5999 cargo bench -p kv-backend-s3 --bench s3
//! KV_TEST_S3_ENDPOINT=… cargo bench -p kv-backend-s3 --bench s3 -- --rounds 7
//! ```
//!
//! Without `KV_TEST_S3_ENDPOINT` it prints that it skipped and exits 0.
//! Bucket `KV_TEST_S3_BUCKET` (default `kv-test`), credentials from the
//! `AWS_*` variables (default `testing`); a fresh prefix per run, removed
//! at the end.
//!
//! # Setup (the same for both sides)
//!
//! 1,000 keys `bench.k<4 digits>` with 100-character string values, written
//! through `KVStore::set`, and 1,000 objects of the same size written by
//! raw beside them (`raw-writes/`), which raw's writes go to. Ours and raw
//! use **the same `Arc<dyn ObjectStore>`** (one HTTP client, one
//! connection pool) and read the same objects; they alternate within each
//! round (the order flips every round) and every figure is the median of
//! the rounds. Keys are picked by a fixed-seed xorshift.
//!
//! # Rows
//!
//! | row | ours | raw |
//! |---|---|---|
//! | `get` | `KVStore::get` of a random key | `get(path).bytes()` of that key's object |
//! | `set` | `KVStore::set` of a random existing key | `put` (Overwrite) of an encoded record of the same size to raw's object of that number |
//! | `get_many 100` | `KVStore::get_many` of 100 random keys | 100 `get(path).bytes()`, 32 in flight, in order |
//! | `keys 1,000` | `KVStore::keys("bench.**")` | `list` of the namespace folder (1,000 objects) |
//!
//! Ours in the target rows is the backend that loaded the keys, so it has
//! seen them (`S3Options::seen_objects`): a `set` is one `If-Match` PUT
//! with the ETag it saw, and `keys` GETs only objects whose ETag in the
//! LIST differs from the one it saw (those raw rewrote in the `set` rows).
//! Context rows (no target) show what ours must do when it has not seen
//! the objects — a fresh backend over the same objects, as a process
//! starting up meets them: `set` reads the key first (a `KVStore` write
//! keeps `version` and `created_at`), and `keys` GETs every object
//! (expiry lives in the body) — and what raw does for the same: GET +
//! `PutMode::Update` with the ETag, and LIST + a GET of every object.
//!
//! Targets (from the issue): ours ≥ 0.9 × raw, and `get_many` of 100 keys
//! ≥ 5 × faster than 100 sequential `get`s.
//!
//! # Simulated latency
//!
//! `moto_server` answers one request at a time (Python), so no client can
//! go faster by sending requests in parallel there: 100 GETs 32 at a time
//! take as long as 100 in a row, raw or ours. S3 itself answers in
//! parallel at a latency of 10–50 ms a request. A second table runs
//! `get_many` against 100 sequential `get`s over `object_store`'s
//! `InMemory` behind its `ThrottledStore` with 10 ms per GET — what the
//! same code does when the server is not the bottleneck. A third runs the
//! same against the test server itself behind a TCP proxy in this process
//! that holds each request 10 ms before passing it on (network latency to
//! a server that is still serial).
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};
use kv_backend_s3::{S3Options, S3Store};
use kv_core::{KVStore, Record, Store, Timestamp, Value, ValueType, DEFAULT_NAMESPACE};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

const KEYS: usize = 1_000;
const VALUE_LEN: usize = 100;
const GETS_PER_ROUND: usize = 100;
const SETS_PER_ROUND: usize = 50;
const MANY: usize = 100;
const MANY_PER_ROUND: usize = 5;
const LISTS_PER_ROUND: usize = 2;

/// Fixed-seed xorshift.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 as usize
    }

    fn key(&mut self) -> usize {
        self.next() % KEYS
    }
}

fn key(i: usize) -> String {
    format!("bench.k{i:04}")
}

fn value(round: usize, i: usize) -> Value {
    let s = format!("r{round}-k{i}-");
    Value::String(format!("{s}{}", "v".repeat(VALUE_LEN - s.len())))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// One row: per-operation time of each side, per round.
struct Row {
    name: &'static str,
    ours: Vec<Duration>,
    raw: Vec<Duration>,
    target: Option<f64>,
}

impl Row {
    fn new(name: &'static str, target: Option<f64>) -> Row {
        Row {
            name,
            ours: Vec::new(),
            raw: Vec::new(),
            target,
        }
    }
}

/// Times `n` runs of `op`, returns the time per run.
async fn per_op<F, Fut>(n: usize, mut op: F) -> Duration
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let t = Instant::now();
    for i in 0..n {
        op(i).await;
    }
    t.elapsed() / n as u32
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn main() {
    let Ok(endpoint) = std::env::var("KV_TEST_S3_ENDPOINT") else {
        println!("s3 bench: skipped: KV_TEST_S3_ENDPOINT is not set (start moto_server and create the bucket, see the bench's docs)");
        return;
    };
    let mut rounds = 5usize;
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--rounds") {
        rounds = args
            .get(i + 1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(5)
            .max(3);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(endpoint, rounds));
}

async fn run(endpoint: String, rounds: usize) {
    let prefix = format!(
        "kv-bench/{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let backend = S3Store::s3(common::config(&endpoint, &prefix)).unwrap();
    let raw: Arc<dyn ObjectStore> = Arc::clone(backend.object_store());
    let paths: Vec<Path> = (0..KEYS)
        .map(|i| backend.object_path(DEFAULT_NAMESPACE, &key(i)).unwrap())
        .collect();
    let ns_folder = paths[0].parent().unwrap();
    let store = Store::new(Arc::new(backend.clone()));
    backend.probe().await.unwrap();

    println!("s3 bench: {endpoint}, prefix {prefix}, {KEYS} keys of {VALUE_LEN} characters, {rounds} rounds");
    let t = Instant::now();
    fill(&store, KEYS, 16).await;
    // Raw's writes go to objects of its own, the same size as ours, beside
    // the namespace folder: writing into the objects ours lists would
    // change their ETags under it, as another host's writes would (that
    // case is the "not seen" rows).
    let raw_paths: Vec<Path> = (0..KEYS)
        .map(|i| Path::parse(format!("{prefix}/raw-writes/k{i:04}")).unwrap())
        .collect();
    // A record body like the store's, for raw PUTs.
    let body = Record::new(
        DEFAULT_NAMESPACE,
        key(0),
        &value(0, 0),
        ValueType::String,
        Timestamp::from_millis(0),
    )
    .encode_body()
    .unwrap();
    futures_util::stream::iter(&raw_paths)
        .map(|p| raw.put(p, PutPayload::from(body.clone())))
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    println!("loaded in {:.1} s", t.elapsed().as_secs_f64());

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut get = Row::new("get", Some(0.9));
    let mut set = Row::new("set", Some(0.9));
    let mut set_rmw = Row::new("set (raw GET + If-Match PUT)", None);
    let mut set_cold = Row::new("set, keys the backend has not seen (raw blind PUT)", None);
    let mut many = Row::new("get_many 100", Some(0.9));
    let mut many_seq = Row::new(
        "get_many 100 (raw column: 100 sequential KVStore::get)",
        Some(5.0),
    );
    let mut keys = Row::new("keys 1,000 (raw LIST)", Some(0.9));
    let mut keys_get = Row::new("keys 1,000 (raw LIST + GET each)", None);
    let mut keys_cold = Row::new(
        "keys 1,000, objects the backend has not seen (raw LIST)",
        None,
    );
    // A backend over the same objects that has seen none of them: what a
    // process starting up, or one whose keys another host rewrote, meets.
    let fresh = || async {
        let b = S3Store::new(Arc::clone(&raw), S3Options::with_prefix(&prefix)).unwrap();
        b.probe().await.unwrap();
        Store::new(Arc::new(b))
    };
    // The fresh backends' `set`s go to keys of their own (namespace
    // `cold`), so that they do not change the objects the loading backend
    // lists under its feet.
    fill(&store.with_namespace("cold").unwrap(), KEYS, 16).await;

    for round in 0..rounds {
        let ours_first = round % 2 == 0;
        for side in [ours_first, !ours_first] {
            let picks: Vec<usize> = (0..GETS_PER_ROUND).map(|_| rng.key()).collect();
            if side {
                get.ours.push(
                    per_op(picks.len(), |i| {
                        let (store, k) = (&store, key(picks[i]));
                        async move {
                            assert!(store.get(&k).await.unwrap().is_some());
                        }
                    })
                    .await,
                );
            } else {
                get.raw.push(
                    per_op(picks.len(), |i| {
                        let (raw, p) = (&raw, &paths[picks[i]]);
                        async move {
                            let b = raw.get(p).await.unwrap().bytes().await.unwrap();
                            assert!(!b.is_empty());
                        }
                    })
                    .await,
                );
            }
        }
        for side in [ours_first, !ours_first] {
            let picks: Vec<usize> = (0..SETS_PER_ROUND).map(|_| rng.key()).collect();
            if side {
                set.ours.push(
                    per_op(picks.len(), |i| {
                        let (store, k, v) = (&store, key(picks[i]), value(round + 1, picks[i]));
                        async move { store.set(&k, v).await.unwrap() }
                    })
                    .await,
                );
                let cold = fresh().await.with_namespace("cold").unwrap();
                set_cold.ours.push(
                    per_op(picks.len(), |i| {
                        let (store, k, v) = (&cold, key(picks[i]), value(round + 1, picks[i]));
                        async move { store.set(&k, v).await.unwrap() }
                    })
                    .await,
                );
            } else {
                set.raw.push(
                    per_op(picks.len(), |i| {
                        let (raw, p, b) = (&raw, &raw_paths[picks[i]], body.clone());
                        async move {
                            raw.put(p, PutPayload::from(b)).await.unwrap();
                        }
                    })
                    .await,
                );
                set_rmw.raw.push(
                    per_op(picks.len(), |i| {
                        let (raw, p, b) = (&raw, &raw_paths[picks[i]], body.clone());
                        async move {
                            let got = raw.get(p).await.unwrap();
                            let tag = UpdateVersion {
                                e_tag: got.meta.e_tag.clone(),
                                version: got.meta.version.clone(),
                            };
                            got.bytes().await.unwrap();
                            let opts = PutOptions {
                                mode: PutMode::Update(tag),
                                ..PutOptions::default()
                            };
                            raw.put_opts(p, PutPayload::from(b), opts).await.unwrap();
                        }
                    })
                    .await,
                );
            }
        }
        set_rmw.ours.push(*set.ours.last().unwrap());
        set_cold.raw.push(*set.raw.last().unwrap());
        for side in [ours_first, !ours_first] {
            let picks: Vec<Vec<usize>> = (0..MANY_PER_ROUND)
                .map(|_| (0..MANY).map(|_| rng.key()).collect())
                .collect();
            if side {
                many.ours.push(
                    per_op(picks.len(), |i| {
                        let store = &store;
                        let ks: Vec<String> = picks[i].iter().map(|&k| key(k)).collect();
                        async move {
                            let refs: Vec<&str> = ks.iter().map(String::as_str).collect();
                            let got = store.get_many(&refs).await.unwrap();
                            assert!(got.iter().all(Option::is_some));
                        }
                    })
                    .await,
                );
                // 100 sequential gets of the same keys, for the 5× target.
                many_seq.raw.push(
                    per_op(1, |_| {
                        let store = &store;
                        let ks: Vec<String> = picks[0].iter().map(|&k| key(k)).collect();
                        async move {
                            for k in &ks {
                                assert!(store.get(k).await.unwrap().is_some());
                            }
                        }
                    })
                    .await,
                );
            } else {
                many.raw.push(
                    per_op(picks.len(), |i| {
                        let raw = &raw;
                        let ps: Vec<Path> = picks[i].iter().map(|&k| paths[k].clone()).collect();
                        async move {
                            let got: Vec<_> = futures_util::stream::iter(ps)
                                .map(|p| async move { raw.get(&p).await?.bytes().await })
                                .buffered(32)
                                .try_collect()
                                .await
                                .unwrap();
                            assert_eq!(got.len(), MANY);
                        }
                    })
                    .await,
                );
            }
        }
        many_seq.ours.push(*many.ours.last().unwrap());
        for side in [ours_first, !ours_first] {
            if side {
                keys.ours.push(
                    per_op(LISTS_PER_ROUND, |_| {
                        let store = &store;
                        async move {
                            assert_eq!(store.keys("bench.**").await.unwrap().len(), KEYS);
                        }
                    })
                    .await,
                );
                let mut cold = Vec::new();
                for _ in 0..LISTS_PER_ROUND {
                    cold.push(fresh().await);
                }
                keys_cold.ours.push(
                    per_op(LISTS_PER_ROUND, |i| {
                        let store = &cold[i];
                        async move {
                            assert_eq!(store.keys("bench.**").await.unwrap().len(), KEYS);
                        }
                    })
                    .await,
                );
            } else {
                keys.raw.push(
                    per_op(LISTS_PER_ROUND, |_| {
                        let (raw, folder) = (&raw, &ns_folder);
                        async move {
                            let listed: Vec<_> =
                                raw.list(Some(folder)).try_collect().await.unwrap();
                            assert_eq!(listed.len(), KEYS);
                        }
                    })
                    .await,
                );
                keys_get.raw.push(
                    per_op(LISTS_PER_ROUND, |_| {
                        let (raw, folder) = (&raw, &ns_folder);
                        async move {
                            let bodies: Vec<_> = raw
                                .list(Some(folder))
                                .map_ok(
                                    |m| async move { raw.get(&m.location).await?.bytes().await },
                                )
                                .try_buffered(32)
                                .try_collect()
                                .await
                                .unwrap();
                            assert_eq!(bodies.len(), KEYS);
                        }
                    })
                    .await,
                );
            }
        }
        keys_get.ours.push(*keys.ours.last().unwrap());
        keys_cold.raw.push(*keys.raw.last().unwrap());
        println!("round {} of {rounds} done", round + 1);
    }

    println!();
    println!("| workload | ours (ms/op) | raw (ms/op) | raw ÷ ours | target | |");
    println!("|---|---:|---:|---:|---:|---|");
    for row in [
        &get, &set, &set_rmw, &set_cold, &many, &many_seq, &keys, &keys_get, &keys_cold,
    ] {
        let (o, r) = (median(row.ours.clone()), median(row.raw.clone()));
        let ratio = r.as_secs_f64() / o.as_secs_f64();
        let (target, verdict) = match row.target {
            Some(t) if ratio >= t => (format!("≥ {t}"), "met"),
            Some(t) => (format!("≥ {t}"), "MISSED"),
            None => ("—".into(), "context"),
        };
        println!(
            "| {} | {} | {} | {ratio:.2} | {target} | {verdict} |",
            row.name,
            ms(o),
            ms(r)
        );
    }
    let stats = store.stats().await.unwrap();
    println!();
    println!("backend counters: {:?}", stats.backend.fields);

    simulated_latency(rounds).await;
    over_latency_proxy(&endpoint, &prefix, rounds).await;

    common::remove_prefix(&raw, &prefix).await;
}

/// `get_many` of 100 keys against 100 sequential `get`s, over an in-memory
/// store that sleeps 10 ms per call (see the module docs).
async fn simulated_latency(rounds: usize) {
    use object_store::memory::InMemory;
    use object_store::throttle::{ThrottleConfig, ThrottledStore};
    let config = ThrottleConfig {
        wait_get_per_call: Duration::from_millis(10),
        wait_put_per_call: Duration::from_millis(10),
        wait_list_per_call: Duration::from_millis(10),
        ..ThrottleConfig::default()
    };
    let objects: Arc<dyn ObjectStore> = Arc::new(ThrottledStore::new(InMemory::new(), config));
    let backend = S3Store::new(objects, kv_backend_s3::S3Options::default()).unwrap();
    let store = Store::new(Arc::new(backend));
    fill(&store, MANY, 32).await;
    let row = get_many_vs_sequential(&store, rounds).await;
    print_speedup(
        "Simulated latency: InMemory behind ThrottledStore, 10 ms per GET / PUT / LIST call",
        &row,
    );
}

/// The test server behind [`latency_proxy`] (10 ms per request): the same
/// comparison as [`simulated_latency`] through the real HTTP client and
/// server. Objects under `{prefix}-proxy`, removed at the end.
async fn over_latency_proxy(endpoint: &str, prefix: &str, rounds: usize) {
    let Some(upstream) = endpoint.strip_prefix("http://") else {
        println!("\nlatency proxy: skipped (the endpoint is not plain http://)");
        return;
    };
    let proxy = latency_proxy(upstream.trim_end_matches('/').to_owned(), PROXY_DELAY).await;
    let prefix = format!("{prefix}-proxy");
    let backend = S3Store::s3(common::config(&format!("http://{proxy}"), &prefix)).unwrap();
    let raw = Arc::clone(backend.object_store());
    let store = Store::new(Arc::new(backend));
    fill(&store, MANY, 32).await;
    let row = get_many_vs_sequential(&store, rounds).await;
    print_speedup(
        "The test server behind a proxy that holds each request 10 ms",
        &row,
    );
    common::remove_prefix(&raw, &prefix).await;
}

/// Sets keys `0..n` to their round-0 values, `in_flight` at a time.
async fn fill(store: &Store, n: usize, in_flight: usize) {
    futures_util::stream::iter(0..n)
        .map(|i| async move { store.set(&key(i), value(0, i)).await.unwrap() })
        .buffer_unordered(in_flight)
        .collect::<Vec<()>>()
        .await;
}

/// How long [`latency_proxy`] holds each request.
const PROXY_DELAY: Duration = Duration::from_millis(10);

/// A TCP proxy to `upstream` (`host:port`) that holds everything a client
/// sends for `delay` before passing it on, so each request reaches the
/// server `delay` late, as over a network; answers pass straight back.
/// Returns the proxy's address.
async fn latency_proxy(upstream: String, delay: Duration) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                let requests = async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = from_client.read(&mut buf).await {
                        tokio::time::sleep(delay).await;
                        if to_server.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = to_server.shutdown().await;
                };
                let answers = async move {
                    let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
                    let _ = to_client.shutdown().await;
                };
                tokio::join!(requests, answers);
            });
        }
    });
    addr
}

/// `get_many` of the first [`MANY`] keys against as many sequential
/// `get`s of them, once per round.
async fn get_many_vs_sequential(store: &Store, rounds: usize) -> Row {
    let keys: Vec<String> = (0..MANY).map(key).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let mut row = Row::new(
        "get_many 100 (raw column: 100 sequential KVStore::get)",
        Some(5.0),
    );
    for _ in 0..rounds {
        let t = Instant::now();
        assert!(store
            .get_many(&refs)
            .await
            .unwrap()
            .iter()
            .all(Option::is_some));
        row.ours.push(t.elapsed());
        let t = Instant::now();
        for k in &refs {
            assert!(store.get(k).await.unwrap().is_some());
        }
        row.raw.push(t.elapsed());
    }
    row
}

fn print_speedup(title: &str, row: &Row) {
    let (o, r) = (median(row.ours.clone()), median(row.raw.clone()));
    let ratio = r.as_secs_f64() / o.as_secs_f64();
    println!();
    println!("{title}");
    println!();
    println!("| workload | get_many (ms) | sequential (ms) | speed-up | target | |");
    println!("|---|---:|---:|---:|---:|---|");
    println!(
        "| get_many 100 vs 100 × get | {} | {} | {ratio:.1} | ≥ 5 | {} |",
        ms(o),
        ms(r),
        if ratio >= 5.0 { "met" } else { "MISSED" }
    );
}
