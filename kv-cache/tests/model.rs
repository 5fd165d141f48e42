//! Property test: random operations through two handles over one backend
//! — one through the cache, one straight to the backend — with the clock
//! moving. The cached handle never returns a value that was never written,
//! nor one that stopped being current more than `ttl` ago.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kv_cache::{CacheLayer, CacheOptions};
use kv_core::{Backend, Clock, KVStore, ManualClock, MemoryBackend, Store, Value};
use proptest::prelude::*;

const KEYS: &[&str] = &["a", "b", "c.d"];
const TTL_MS: u64 = 1000;

#[derive(Debug, Clone)]
enum Op {
    /// Set through the cached (true) or direct handle.
    Set(bool, usize, i64),
    Delete(bool, usize),
    Incr(bool, usize),
    ReadCached(usize),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0..KEYS.len();
    prop_oneof![
        3 => (any::<bool>(), k.clone(), 0i64..1000).prop_map(|(c, k, v)| Op::Set(c, k, v)),
        1 => (any::<bool>(), k.clone()).prop_map(|(c, k)| Op::Delete(c, k)),
        1 => (any::<bool>(), k.clone()).prop_map(|(c, k)| Op::Incr(c, k)),
        4 => k.prop_map(Op::ReadCached),
        2 => (0u64..700).prop_map(Op::Advance),
    ]
}

/// Per key, every value it has held: (from, until, value); `None` = absent.
type History = BTreeMap<usize, Vec<(u64, Option<u64>, Option<i64>)>>;

fn record(h: &mut History, k: usize, now: u64, v: Option<i64>) {
    let list = h.entry(k).or_insert_with(|| vec![(0, None, None)]);
    if let Some(last) = list.last_mut() {
        last.1 = Some(now);
    }
    list.push((now, None, v));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn cached_reads_are_never_invented_nor_older_than_ttl(ops in prop::collection::vec(op(), 1..80), negative in any::<bool>()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let clock = ManualClock::new(0);
            let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
            let layer = CacheLayer::new(
                Arc::clone(&backend),
                CacheOptions::new()
                    .ttl(Duration::from_millis(TTL_MS))
                    .negative(negative)
                    .clock(Arc::new(clock.clone()) as Arc<dyn Clock>),
            ).unwrap();
            let cached = Store::builder(Arc::new(layer) as Arc<dyn Backend>).clock(clock.clone()).build().unwrap();
            let direct = Store::builder(backend).clock(clock.clone()).build().unwrap();
            let mut history: History = BTreeMap::new();
            let mut now = 0u64;
            for op in &ops {
                let written = match op {
                    Op::Set(true, k, v) => Some((*k, Some(*v))),
                    Op::Delete(true, k) => Some((*k, None)),
                    _ => None,
                };
                match op {
                    Op::Set(via_cache, k, v) => {
                        let s = if *via_cache { &cached } else { &direct };
                        s.set(KEYS[*k], Value::Int(*v)).await.unwrap();
                        record(&mut history, *k, now, Some(*v));
                    }
                    Op::Delete(via_cache, k) => {
                        let s = if *via_cache { &cached } else { &direct };
                        s.delete(KEYS[*k]).await.unwrap();
                        record(&mut history, *k, now, None);
                    }
                    Op::Incr(via_cache, k) => {
                        let s = if *via_cache { &cached } else { &direct };
                        let n = s.increment(KEYS[*k], 1).await.unwrap();
                        record(&mut history, *k, now, Some(n));
                        if *via_cache {
                            let got = cached.get(KEYS[*k]).await.unwrap().map(|v| v.as_i64().unwrap());
                            prop_assert_eq!(got, Some(n), "read-your-writes of increment {}", KEYS[*k]);
                        }
                    }
                    Op::ReadCached(k) => {
                        let got = cached.get(KEYS[*k]).await.unwrap().map(|v| v.as_i64().unwrap());
                        let list = history.get(k).cloned().unwrap_or_else(|| vec![(0, None, None)]);
                        // Acceptable: a value current at some moment within
                        // the last ttl (or now).
                        let ok = list.iter().any(|(from, until, v)| {
                            *v == got && until.is_none_or(|u| u + TTL_MS > now) && *from <= now
                        });
                        prop_assert!(ok, "read {:?} of {} at {}: history {:?}", got, KEYS[*k], now, list);
                    }
                    Op::Advance(ms) => {
                        clock.advance(Duration::from_millis(*ms));
                        now += ms;
                    }
                }
                // A read through the cache right after a write through it
                // returns what was written.
                if let Some((k, v)) = written {
                    let got = cached.get(KEYS[k]).await.unwrap().map(|v| v.as_i64().unwrap());
                    prop_assert_eq!(got, v, "read-your-writes of {:?} after {:?}", KEYS[k], op);
                }
            }
            Ok(())
        })?;
    }
}
