//! Model-based property test: random sequences of set, set-with-ttl,
//! delete, increment, append, compare-and-swap, expire, persist, batch and
//! clock advances, run against `Store` over the memory backend and against a
//! plain `BTreeMap` model, give identical observable results after every
//! step (return values, values, TTLs and versions of every key, and the
//! result of a pattern query).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use kv_core::{Batch, Error, KVStore, ManualClock, SetOptions, Store, Ttl, Value};
use proptest::prelude::*;

const KEYS: &[&str] = &["a", "b", "a.b", "a.c", "b.x.y"];

#[derive(Debug, Clone)]
enum Op {
    Set(usize, Value),
    SetTtl(usize, Value, u64),
    SetNx(usize, Value),
    Delete(usize),
    Increment(usize, i64),
    Append(usize, String),
    Cas(usize, Option<Value>, Value),
    Expire(usize, u64),
    Persist(usize),
    Batch(Vec<(usize, Option<Value>)>),
    Advance(u64),
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-3i64..4).prop_map(Value::Int),
        Just(Value::Int(i64::MAX - 1)),
        "[xy]{0,3}".prop_map(Value::String),
        prop::collection::vec(0u8..3, 0..3).prop_map(Value::Bytes),
        Just(Value::Bool(true)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0..KEYS.len();
    prop_oneof![
        3 => (k.clone(), value()).prop_map(|(k, v)| Op::Set(k, v)),
        2 => (k.clone(), value(), 1u64..3000).prop_map(|(k, v, t)| Op::SetTtl(k, v, t)),
        1 => (k.clone(), value()).prop_map(|(k, v)| Op::SetNx(k, v)),
        2 => k.clone().prop_map(Op::Delete),
        3 => (k.clone(), -2i64..3).prop_map(|(k, d)| Op::Increment(k, d)),
        2 => (k.clone(), "[xy]{1,2}").prop_map(|(k, s)| Op::Append(k, s)),
        2 => (k.clone(), prop::option::of(value()), value()).prop_map(|(k, e, n)| Op::Cas(k, e, n)),
        1 => (k.clone(), 0u64..3000).prop_map(|(k, t)| Op::Expire(k, t)),
        1 => k.clone().prop_map(Op::Persist),
        1 => prop::collection::vec((k, prop::option::of(value())), 1..4).prop_map(Op::Batch),
        2 => (0u64..2000).prop_map(Op::Advance),
    ]
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    value: Value,
    expires_at: Option<i64>,
    version: u64,
}

#[derive(Debug, Default)]
struct Model {
    now: i64,
    map: BTreeMap<String, Entry>,
}

/// What an operation returned, comparable between store and model.
#[derive(Debug, Clone, PartialEq)]
enum Obs {
    Unit,
    Bool(bool),
    Int(i64),
    Len(u64),
    /// The error's kind (variant name), not its text.
    Err(&'static str),
}

fn kind(e: &Error) -> &'static str {
    match e {
        Error::TypeMismatch { .. } => "TypeMismatch",
        Error::Overflow { .. } => "Overflow",
        Error::InvalidValue { .. } => "InvalidValue",
        _ => "Other",
    }
}

impl Model {
    fn live(&self, key: &str) -> Option<&Entry> {
        self.map
            .get(key)
            .filter(|e| e.expires_at.is_none_or(|t| self.now < t))
    }

    fn next_version(&self, key: &str) -> u64 {
        self.live(key).map_or(1, |e| e.version + 1)
    }

    fn put(&mut self, key: &str, value: Value, expires_at: Option<i64>) {
        let version = self.next_version(key);
        self.map.insert(
            key.to_owned(),
            Entry {
                value,
                expires_at,
                version,
            },
        );
    }

    fn apply(&mut self, op: &Op) -> Obs {
        match op {
            Op::Set(k, v) => {
                self.put(KEYS[*k], v.clone(), None);
                Obs::Unit
            }
            Op::SetTtl(k, v, ms) => {
                self.put(KEYS[*k], v.clone(), Some(self.now + *ms as i64));
                Obs::Unit
            }
            Op::SetNx(k, v) => {
                if self.live(KEYS[*k]).is_some() {
                    return Obs::Bool(false);
                }
                self.put(KEYS[*k], v.clone(), None);
                Obs::Bool(true)
            }
            Op::Delete(k) => {
                let was_live = self.live(KEYS[*k]).is_some();
                self.map.remove(KEYS[*k]);
                Obs::Bool(was_live)
            }
            Op::Increment(k, d) => {
                let key = KEYS[*k];
                match self.live(key).cloned() {
                    None => {
                        self.put(key, Value::Int(*d), None);
                        Obs::Int(*d)
                    }
                    Some(Entry {
                        value: Value::Int(n),
                        expires_at,
                        ..
                    }) => match n.checked_add(*d) {
                        Some(m) => {
                            self.put(key, Value::Int(m), expires_at);
                            Obs::Int(m)
                        }
                        None => Obs::Err("Overflow"),
                    },
                    Some(_) => Obs::Err("TypeMismatch"),
                }
            }
            Op::Append(k, s) => {
                let key = KEYS[*k];
                match self.live(key).cloned() {
                    None => {
                        self.put(key, Value::String(s.clone()), None);
                        Obs::Len(s.len() as u64)
                    }
                    Some(Entry {
                        value: Value::String(old),
                        expires_at,
                        ..
                    }) => {
                        let new = old + s;
                        let len = new.len() as u64;
                        self.put(key, Value::String(new), expires_at);
                        Obs::Len(len)
                    }
                    Some(Entry {
                        value: Value::Bytes(mut old),
                        expires_at,
                        ..
                    }) => {
                        old.extend_from_slice(s.as_bytes());
                        let len = old.len() as u64;
                        self.put(key, Value::Bytes(old), expires_at);
                        Obs::Len(len)
                    }
                    Some(_) => Obs::Err("TypeMismatch"),
                }
            }
            Op::Cas(k, expected, new) => {
                let key = KEYS[*k];
                match (self.live(key).cloned(), expected) {
                    (None, None) => {
                        self.put(key, new.clone(), None);
                        Obs::Bool(true)
                    }
                    (Some(e), Some(exp)) if e.value == *exp => {
                        self.put(key, new.clone(), e.expires_at);
                        Obs::Bool(true)
                    }
                    _ => Obs::Bool(false),
                }
            }
            Op::Expire(k, ms) => {
                let key = KEYS[*k];
                match self.live(key).cloned() {
                    Some(e) => {
                        self.put(key, e.value, Some(self.now + *ms as i64));
                        Obs::Bool(true)
                    }
                    None => Obs::Bool(false),
                }
            }
            Op::Persist(k) => {
                let key = KEYS[*k];
                match self.live(key).cloned() {
                    Some(e) if e.expires_at.is_some() => {
                        self.put(key, e.value, None);
                        Obs::Bool(true)
                    }
                    _ => Obs::Bool(false),
                }
            }
            Op::Batch(items) => {
                for (k, v) in items {
                    match v {
                        Some(v) => self.put(KEYS[*k], v.clone(), None),
                        None => {
                            self.map.remove(KEYS[*k]);
                        }
                    }
                }
                Obs::Bool(true)
            }
            Op::Advance(ms) => {
                self.now += *ms as i64;
                Obs::Unit
            }
        }
    }
}

async fn run_store(store: &Store, clock: &ManualClock, op: &Op) -> Obs {
    let obs = |r: Result<Obs, Error>| r.unwrap_or_else(|e| Obs::Err(kind(&e)));
    match op {
        Op::Set(k, v) => obs(store.set(KEYS[*k], v.clone()).await.map(|_| Obs::Unit)),
        Op::SetTtl(k, v, ms) => obs(store
            .set_with(
                KEYS[*k],
                v.clone(),
                SetOptions::new().ttl(Duration::from_millis(*ms)),
            )
            .await
            .map(|_| Obs::Unit)),
        Op::SetNx(k, v) => obs(store.set_nx(KEYS[*k], v.clone()).await.map(Obs::Bool)),
        Op::Delete(k) => obs(store.delete(KEYS[*k]).await.map(Obs::Bool)),
        Op::Increment(k, d) => obs(store.increment(KEYS[*k], *d).await.map(Obs::Int)),
        Op::Append(k, s) => obs(store
            .append(KEYS[*k], s.as_str().into())
            .await
            .map(Obs::Len)),
        Op::Cas(k, e, n) => obs(store
            .compare_and_swap(KEYS[*k], e.clone(), n.clone())
            .await
            .map(Obs::Bool)),
        Op::Expire(k, ms) => obs(store
            .expire(KEYS[*k], Duration::from_millis(*ms))
            .await
            .map(Obs::Bool)),
        Op::Persist(k) => obs(store.persist(KEYS[*k]).await.map(Obs::Bool)),
        Op::Batch(items) => {
            let mut batch = Batch::new();
            for (k, v) in items {
                batch = match v {
                    Some(v) => batch.set(KEYS[*k], v.clone()),
                    None => batch.delete(KEYS[*k]),
                };
            }
            obs(store.batch(batch).await.map(Obs::Bool))
        }
        Op::Advance(ms) => {
            clock.advance(Duration::from_millis(*ms));
            Obs::Unit
        }
    }
}

/// Every observable fact about every key, from the store.
async fn store_state(store: &Store) -> Vec<(String, Option<Value>, Ttl, Option<u64>)> {
    let mut out = Vec::new();
    for k in KEYS {
        let value = store.get(k).await.unwrap();
        let ttl = store.ttl(k).await.unwrap();
        let version = store
            .get_metadata(k)
            .await
            .unwrap()
            .map(|m| m.system.version);
        out.push((k.to_string(), value, ttl, version));
    }
    out
}

fn model_state(model: &Model) -> Vec<(String, Option<Value>, Ttl, Option<u64>)> {
    KEYS.iter()
        .map(|k| match model.live(k) {
            None => (k.to_string(), None, Ttl::Missing, None),
            Some(e) => (
                k.to_string(),
                Some(e.value.clone()),
                match e.expires_at {
                    None => Ttl::Persistent,
                    Some(t) => Ttl::Expires(Duration::from_millis((t - model.now) as u64)),
                },
                Some(e.version),
            ),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn store_matches_btreemap_model(ops in prop::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let clock = ManualClock::new(1_000_000);
            let store = Store::builder(Store::memory_backend()).clock(clock.clone()).build().unwrap();
            let mut model = Model { now: 1_000_000, ..Model::default() };
            for (i, op) in ops.iter().enumerate() {
                let got = run_store(&store, &clock, op).await;
                let want = model.apply(op);
                prop_assert_eq!(&got, &want, "step {} {:?}", i, op);
                prop_assert_eq!(store_state(&store).await, model_state(&model), "state after step {} {:?}", i, op);
                let mut live: Vec<String> = KEYS.iter().filter(|k| model.live(k).is_some()).map(|k| k.to_string()).collect();
                live.sort();
                prop_assert_eq!(store.keys("**").await.unwrap(), live.clone());
                prop_assert_eq!(store.count().await.unwrap(), live.len() as u64);
                let below_a: Vec<String> = live.iter().filter(|k| k.starts_with("a.")).cloned().collect();
                prop_assert_eq!(store.keys("a.*").await.unwrap(), below_a);
            }
            Ok(())
        })?;
    }
}
