//! Benchmarks of kv-core, each beside a peer measured in the same run.
//!
//! ```text
//! cargo bench -p kv-core --bench core            # full run
//! cargo bench -p kv-core --bench core -- --quick # a few seconds
//! ```
//!
//! Every row is the median of several rounds (the machines are shared and
//! noisy); the ratio compares it with its peer from the same run.
//!
//! | row | what | peer |
//! |---|---|---|
//! | `store get` | `Store::get` over the memory backend, 100,000 keys, random order, one thread | `RwLock<HashMap>` lookup + clone of the value (the memory backend's own structure), and `RwLock<BTreeMap>` |
//! | `store set` | `Store::set` overwriting random keys of the 100,000 | `RwLock<HashMap>` insert, and `RwLock<BTreeMap>` |
//! | `pattern match` | `Pattern::matches` of `users.*.settings.**` over 100,000 keys (1/4 match) | the `regex` crate with the same language |
//! | `pathological` | `*a*a*a*a*a*a*b` against a 1 KiB key of `a`s | the `regex` crate |
//! | `compile + 100 matches` | `Pattern::new("users.NNNNN?.*")` for a new random prefix, then the 100 keys of its range | the `regex` crate, compiling and matching the same |
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::sync::RwLock;
use std::time::Instant;

use kv_core::{KVStore, Pattern, Store, Value};

const KEYS: usize = 100_000;

struct Row {
    name: &'static str,
    ours: f64,
    peer_name: &'static str,
    peer: f64,
    unit: &'static str,
}

/// Median of `rounds` measurements of `ops` operations, in operations/s.
fn median_rate(rounds: usize, ops: usize, mut run: impl FnMut()) -> f64 {
    let mut rates: Vec<f64> = (0..rounds)
        .map(|_| {
            let t0 = Instant::now();
            run();
            ops as f64 / t0.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    rates[rates.len() / 2]
}

/// A fixed pseudo-random order of indices (xorshift), the same every run.
fn random_indices(n: usize, len: usize) -> Vec<usize> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % len as u64) as usize
        })
        .collect()
}

fn key(i: usize) -> String {
    format!("users.{:06}.settings.theme", i)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, ops) = if quick { (3, 50_000) } else { (9, 400_000) };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let keys: Vec<String> = (0..KEYS).map(key).collect();
    let order = random_indices(ops, KEYS);
    let mut rows = Vec::new();

    // --- store get / set vs the bare map --------------------------------
    let store = Store::memory();
    rt.block_on(async {
        for chunk in keys.chunks(1000) {
            store
                .set_many(
                    chunk
                        .iter()
                        .map(|k| (k.clone(), Value::from("dark")))
                        .collect(),
                )
                .await
                .unwrap();
        }
    });
    let peer: RwLock<BTreeMap<String, Vec<u8>>> = RwLock::new(
        keys.iter()
            .map(|k| (k.clone(), b"\x04dark".to_vec()))
            .collect(),
    );
    let hpeer: RwLock<HashMap<String, Vec<u8>>> = RwLock::new(
        keys.iter()
            .map(|k| (k.clone(), b"\x04dark".to_vec()))
            .collect(),
    );

    let ours = median_rate(rounds, ops, || {
        rt.block_on(async {
            for &i in &order {
                black_box(store.get(&keys[i]).await.unwrap());
            }
        })
    });
    let theirs = median_rate(rounds, ops, || {
        for &i in &order {
            black_box(peer.read().unwrap().get(keys[i].as_str()).cloned());
        }
    });
    let hashed = median_rate(rounds, ops, || {
        for &i in &order {
            black_box(hpeer.read().unwrap().get(keys[i].as_str()).cloned());
        }
    });
    rows.push(Row {
        name: "store get (memory, 100k keys)",
        ours,
        peer_name: "RwLock<HashMap> get",
        peer: hashed,
        unit: "ops/s",
    });
    rows.push(Row {
        name: "store get (memory, 100k keys)",
        ours,
        peer_name: "RwLock<BTreeMap> get",
        peer: theirs,
        unit: "ops/s",
    });

    let ours = median_rate(rounds, ops, || {
        rt.block_on(async {
            for &i in &order {
                store.set(&keys[i], Value::from("light")).await.unwrap();
            }
        })
    });
    let theirs = median_rate(rounds, ops, || {
        for &i in &order {
            peer.write()
                .unwrap()
                .insert(keys[i].clone(), b"\x04light".to_vec());
        }
    });
    let hashed = median_rate(rounds, ops, || {
        for &i in &order {
            hpeer
                .write()
                .unwrap()
                .insert(keys[i].clone(), b"\x04light".to_vec());
        }
    });
    rows.push(Row {
        name: "store set (memory, 100k keys)",
        ours,
        peer_name: "RwLock<HashMap> insert",
        peer: hashed,
        unit: "ops/s",
    });
    rows.push(Row {
        name: "store set (memory, 100k keys)",
        ours,
        peer_name: "RwLock<BTreeMap> insert",
        peer: theirs,
        unit: "ops/s",
    });

    // --- pattern matching ------------------------------------------------
    let candidates: Vec<String> = (0..KEYS)
        .map(|i| match i % 4 {
            0 => format!("users.{i}.settings.theme.dark"),
            1 => format!("users.{i}.profile.name"),
            2 => format!("orders.{i}.settings.x"),
            _ => format!("users.{i}.settings"),
        })
        .collect();
    let pattern = Pattern::new("users.*.settings.**").unwrap();
    let regex = regex::Regex::new(r"^users\.[^.]*\.settings\..+$").unwrap();
    let expected = candidates.iter().filter(|k| regex.is_match(k)).count();
    assert_eq!(
        candidates.iter().filter(|k| pattern.matches(k)).count(),
        expected,
        "pattern and regex disagree"
    );
    let ours = median_rate(rounds, candidates.len(), || {
        for k in &candidates {
            black_box(pattern.matches(black_box(k)));
        }
    });
    let theirs = median_rate(rounds, candidates.len(), || {
        for k in &candidates {
            black_box(regex.is_match(black_box(k)));
        }
    });
    rows.push(Row {
        name: "pattern match users.*.settings.**",
        ours,
        peer_name: "regex crate",
        peer: theirs,
        unit: "keys/s",
    });

    let evil = Pattern::new("*a*a*a*a*a*a*b").unwrap();
    let evil_regex = regex::Regex::new(r"^[^.]*a[^.]*a[^.]*a[^.]*a[^.]*a[^.]*a[^.]*b$").unwrap();
    let long = "a".repeat(1024);
    assert!(!evil.matches(&long) && !evil_regex.is_match(&long));
    let n = if quick { 2_000 } else { 20_000 };
    let ours = median_rate(rounds, n, || {
        for _ in 0..n {
            black_box(evil.matches(black_box(&long)));
        }
    });
    let theirs = median_rate(rounds, n, || {
        for _ in 0..n {
            black_box(evil_regex.is_match(black_box(&long)));
        }
    });
    rows.push(Row {
        name: "pathological *a*a*a*a*a*a*b, 1 KiB key",
        ours,
        peer_name: "regex crate",
        peer: theirs,
        unit: "matches/s",
    });

    // A pattern used once, as a scan of a random prefix uses it: compile
    // `users.NNNNN?.*` and match it against the 100 keys of its range
    // (10 `users.NNNNNd` ids × 10 fields), a new prefix every time.
    let fields = [
        "name", "email", "age", "city", "plan", "theme", "lang", "tz", "role", "seen",
    ];
    let n = if quick { 2_000 } else { 20_000 };
    let prefixes: Vec<(String, Vec<String>)> = random_indices(n, 100_000)
        .into_iter()
        .map(|i| {
            let stem = format!("users.{:05}", i % 100_000);
            let keys = (0..10)
                .flat_map(|d| fields.iter().map(move |f| (d, f)))
                .map(|(d, f)| format!("{stem}{d}.{f}"))
                .collect();
            (format!("{stem}?.*"), keys)
        })
        .collect();
    for (p, keys) in prefixes.iter().take(50) {
        let ours = Pattern::new(p).unwrap();
        let re = regex::Regex::new(&format!(
            r"^{}[^.]\.[^.]*$",
            regex::escape(&p[..p.len() - 3])
        ))
        .unwrap();
        for k in keys {
            assert!(ours.matches(k) && re.is_match(k), "{p} {k}");
        }
        assert!(!ours.matches(&format!("{}.x.y", &keys[0])));
    }
    let ours = median_rate(rounds, n, || {
        for (p, keys) in &prefixes {
            let pattern = Pattern::new(black_box(p)).unwrap();
            for k in keys {
                black_box(pattern.matches(black_box(k)));
            }
        }
    });
    let theirs = median_rate(rounds, n, || {
        for (p, keys) in &prefixes {
            let re = regex::Regex::new(&format!(
                r"^{}[^.]\.[^.]*$",
                regex::escape(&p[..p.len() - 3])
            ))
            .unwrap();
            for k in keys {
                black_box(re.is_match(black_box(k)));
            }
        }
    });
    rows.push(Row {
        name: "compile users.NNNNN?.* + 100 matches",
        ours,
        peer_name: "regex crate, same",
        peer: theirs,
        unit: "patterns/s",
    });

    println!(
        "{:<42} {:>14} {:>10}   {:<24} {:>14}   {:>6}",
        "row", "ours", "unit", "peer", "peer", "ratio"
    );
    for r in &rows {
        println!(
            "{:<42} {:>14.0} {:>10}   {:<24} {:>14.0}   {:>5.2}x",
            r.name,
            r.ours,
            r.unit,
            r.peer_name,
            r.peer,
            r.ours / r.peer
        );
    }
    println!("(median of {rounds} rounds; ratio = ours / peer, measured in this run)");
}
