//! [`EngineBackend`]: the engine as a `kv_core::Backend`.
//!
//! Mapping:
//!
//! - engine key = namespace bytes, `0x00`, key bytes. Namespaces and keys
//!   hold no control characters, so keys of one namespace are one contiguous
//!   range, in key order.
//! - engine value = `0x01 | version:u64 LE | checksum:u32 LE |
//!   value_len:varint | value | metadata`, where metadata is
//!   `Record::encode_meta` (format byte + MessagePack). A plain `get` reads
//!   the value and checksum without decoding the metadata; a precondition
//!   check reads only the version.
//! - the record's `expires_at` is the engine entry's expiry, so expired
//!   records are found through the engine's expiry index. The engine's own
//!   TTL enforcement is off: the store decides expiry with its clock.
//! - conditional writes, batches and increments run inside engine
//!   transactions (one writer at a time, one WAL group each): atomic without
//!   retries.
//!
//! Reads never block. Writes in `SyncMode::Always` wait for an fsync, so
//! they run on Tokio's blocking pool; in the other modes they run inline.

use std::ops::Bound;
use std::sync::Arc;

use async_trait::async_trait;
use kv_core::backend::{
    Backend, BackendStats, BatchOp, BatchOutcome, Capabilities, CasMechanism, DeleteOutcome,
    KeyInfo, KeyRange, Precondition, WriteOutcome,
};
use kv_core::record::StoredValue;
use kv_core::{Record, Timestamp};

use crate::db::{from_expiry, prefix_end, to_expiry, Db};
use crate::options::{Options, SyncMode};
use crate::varint;

type CoreResult<T> = kv_core::Result<T>;

const LAYOUT: u8 = 1;
const SEP: u8 = 0;

/// The engine behind the `kv_core::Backend` trait.
#[derive(Debug, Clone)]
pub struct EngineBackend {
    db: Db,
}

fn engine_key(namespace: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(namespace.len() + 1 + key.len());
    k.extend_from_slice(namespace.as_bytes());
    k.push(SEP);
    k.extend_from_slice(key.as_bytes());
    k
}

fn namespace_prefix(namespace: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(namespace.len() + 1);
    k.extend_from_slice(namespace.as_bytes());
    k.push(SEP);
    k
}

fn encode_value(record: &Record) -> CoreResult<Vec<u8>> {
    let meta = record.encode_meta()?;
    let mut out = Vec::with_capacity(1 + 8 + 4 + 10 + record.value.len() + meta.len());
    out.push(LAYOUT);
    out.extend_from_slice(&record.meta.version.to_le_bytes());
    out.extend_from_slice(&record.meta.checksum.to_le_bytes());
    varint::put(&mut out, record.value.len() as u64);
    out.extend_from_slice(&record.value);
    out.extend_from_slice(&meta);
    Ok(out)
}

/// The parts of a stored value: checksum, value bytes, metadata.
struct Parts<'a> {
    checksum: u32,
    value: &'a [u8],
    meta: &'a [u8],
}

fn parts<'a>(namespace: &str, key: &str, bytes: &'a [u8]) -> CoreResult<Parts<'a>> {
    let corrupt = |reason: &str| kv_core::Error::Corruption {
        location: format!("engine {namespace}/{key}"),
        reason: reason.to_owned(),
    };
    if bytes.len() < 14 || bytes[0] != LAYOUT {
        return Err(corrupt("unknown value layout"));
    }
    let mut c = [0u8; 4];
    c.copy_from_slice(&bytes[9..13]);
    let (len, n) = varint::get(&bytes[13..]).ok_or_else(|| corrupt("bad value length"))?;
    let start = 13 + n;
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| start.checked_add(l))
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| corrupt("value length out of range"))?;
    Ok(Parts {
        checksum: u32::from_le_bytes(c),
        value: &bytes[start..end],
        meta: &bytes[end..],
    })
}

fn version_of(bytes: &[u8]) -> Option<u64> {
    let mut v = [0u8; 8];
    v.copy_from_slice(bytes.get(1..9)?);
    Some(u64::from_le_bytes(v))
}

fn decode_record(
    namespace: &Arc<str>,
    key: &str,
    bytes: &[u8],
    expires_at: u64,
) -> CoreResult<Record> {
    let p = parts(namespace, key, bytes)?;
    let mut record = Record::from_parts(Arc::clone(namespace), key, p.value.to_vec(), p.meta)?;
    // The engine's expiry is the record's; they are written together.
    record.meta.expires_at = from_expiry(expires_at);
    Ok(record)
}

/// The record key of an engine key in `namespace`'s range.
fn record_key(engine_key: &[u8], prefix_len: usize) -> CoreResult<&str> {
    std::str::from_utf8(&engine_key[prefix_len..]).map_err(|_| kv_core::Error::Corruption {
        location: "engine key".into(),
        reason: "stored key is not UTF-8".into(),
    })
}

fn expired(expires_at: u64, now: Timestamp) -> bool {
    expires_at != 0 && to_expiry(Some(now)) >= expires_at
}

impl EngineBackend {
    /// Opens the engine for use as a backend. `enforce_ttl` is turned off:
    /// the store decides expiry.
    pub fn open(options: Options) -> kv_core::Result<Self> {
        let db = Db::open(options.enforce_ttl(false))?;
        Ok(EngineBackend { db })
    }

    /// Wraps an open database (whose `enforce_ttl` must be off).
    pub fn from_db(db: Db) -> kv_core::Result<Self> {
        if db.options().enforce_ttl {
            return Err(kv_core::Error::config(
                "engine.enforce_ttl",
                "the backend adapter needs enforce_ttl off: the store decides expiry",
            ));
        }
        Ok(EngineBackend { db })
    }

    /// The database beneath.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Runs a write: on the blocking pool when it may wait for an fsync.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db) -> crate::error::Result<T> + Send + 'static,
    ) -> CoreResult<T> {
        if self.db.options().sync == SyncMode::Always {
            let db = self.db.clone();
            return match tokio::task::spawn_blocking(move || f(&db)).await {
                Ok(r) => r.map_err(Into::into),
                Err(e) => Err(kv_core::Error::backend("engine", false, e)),
            };
        }
        f(&self.db).map_err(Into::into)
    }

    fn bounds(namespace: &str, range: &KeyRange, after: Option<&str>) -> (Vec<u8>, bool, Vec<u8>) {
        let prefix = namespace_prefix(namespace);
        let (start, excluded) = match range.lower_bound(after) {
            Bound::Included(k) => (engine_key(namespace, k), false),
            Bound::Excluded(k) => (engine_key(namespace, k), true),
            Bound::Unbounded => (prefix.clone(), false),
        };
        let end = match &range.end {
            Some(e) => engine_key(namespace, e),
            // A namespace's prefix ends with 0x00, so its successor exists.
            None => prefix_end(&prefix).unwrap_or_default(),
        };
        (start, excluded, end)
    }
}

#[async_trait]
impl Backend for EngineBackend {
    fn name(&self) -> &str {
        "engine"
    }

    fn capabilities(&self) -> Capabilities {
        let mut c = Capabilities::none();
        c.atomic_batch = true;
        c.native_ttl = true;
        c.native_increment = true;
        c.native_range_delete = true;
        c.persistent = true;
        c.cas = CasMechanism::Lock;
        c
    }

    async fn read(&self, namespace: &str, key: &str) -> CoreResult<Option<Record>> {
        self.db
            .with_entry(&engine_key(namespace, key), |e| {
                e.map(|e| decode_record(&namespace.into(), key, e.value, e.expires_at))
                    .transpose()
            })
            .map_err(kv_core::Error::from)?
    }

    async fn read_value(&self, namespace: &str, key: &str) -> CoreResult<Option<StoredValue>> {
        self.db
            .with_entry(&engine_key(namespace, key), |e| {
                e.map(|e| {
                    let p = parts(namespace, key, e.value)?;
                    Ok(StoredValue {
                        value: p.value.to_vec(),
                        checksum: p.checksum,
                        expires_at: from_expiry(e.expires_at),
                    })
                })
                .transpose()
            })
            .map_err(kv_core::Error::from)?
    }

    async fn read_many(&self, namespace: &str, keys: &[String]) -> CoreResult<Vec<Option<Record>>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.read(namespace, key).await?);
        }
        Ok(out)
    }

    async fn write(&self, record: Record, precondition: Precondition) -> CoreResult<WriteOutcome> {
        let key = engine_key(&record.namespace, &record.key);
        let value = encode_value(&record)?;
        let expires_at = to_expiry(record.meta.expires_at);
        self.write(move |db| {
            db.transaction(|txn| {
                let current = txn.peek(&key, |e| e.and_then(|(v, _)| version_of(v)));
                if !precondition.holds(current) {
                    return Ok(WriteOutcome::PreconditionFailed);
                }
                txn.set(&key, &value, expires_at);
                Ok(WriteOutcome::Written)
            })
        })
        .await
    }

    async fn delete(
        &self,
        namespace: &str,
        key: &str,
        precondition: Precondition,
    ) -> CoreResult<DeleteOutcome> {
        let key = engine_key(namespace, key);
        self.write(move |db| {
            db.transaction(|txn| {
                let current = txn.peek(&key, |e| e.map(|(v, exp)| (version_of(v), exp)));
                let version = current.and_then(|(v, _)| v);
                if precondition != Precondition::Absent && !precondition.holds(version) {
                    return Ok(DeleteOutcome::PreconditionFailed);
                }
                match current {
                    None => Ok(DeleteOutcome::NotFound),
                    Some((_, exp)) => {
                        txn.delete(&key);
                        Ok(DeleteOutcome::Deleted {
                            expires_at: from_expiry(exp),
                        })
                    }
                }
            })
        })
        .await
    }

    async fn scan(
        &self,
        namespace: &str,
        range: &KeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> CoreResult<Vec<Record>> {
        let (start, excluded, end) = Self::bounds(namespace, range, after);
        let start = if excluded {
            Bound::Excluded(start.as_slice())
        } else {
            Bound::Included(start.as_slice())
        };
        let prefix_len = namespace.len() + 1;
        let mut out = Vec::new();
        let mut error = None;
        // One allocation for the namespace of every record.
        let shared_ns: Arc<str> = namespace.into();
        self.db.for_each_in(start, Bound::Excluded(&end), |e| {
            let decoded = record_key(e.key, prefix_len)
                .and_then(|k| decode_record(&shared_ns, k, e.value, e.expires_at));
            match decoded {
                Ok(r) => out.push(r),
                Err(err) => {
                    error = Some(err);
                    return false;
                }
            }
            out.len() < limit
        })?;
        match error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    async fn scan_keys(
        &self,
        namespace: &str,
        range: &KeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> CoreResult<Vec<KeyInfo>> {
        let (start, excluded, end) = Self::bounds(namespace, range, after);
        let start = if excluded {
            Bound::Excluded(start.as_slice())
        } else {
            Bound::Included(start.as_slice())
        };
        let prefix_len = namespace.len() + 1;
        let mut out = Vec::new();
        let mut error = None;
        self.db.for_each_in(start, Bound::Excluded(&end), |e| {
            match record_key(e.key, prefix_len) {
                Ok(k) => out.push(KeyInfo {
                    key: k.to_owned(),
                    expires_at: from_expiry(e.expires_at),
                    version: version_of(e.value).unwrap_or(0),
                }),
                Err(err) => {
                    error = Some(err);
                    return false;
                }
            }
            out.len() < limit
        })?;
        match error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    async fn apply(&self, ops: Vec<BatchOp>) -> CoreResult<BatchOutcome> {
        // Encode outside the writer lock.
        let mut prepared = Vec::with_capacity(ops.len());
        for op in &ops {
            let (ns, key) = op.target();
            let encoded = match op {
                BatchOp::Put { record, .. } => {
                    Some((encode_value(record)?, to_expiry(record.meta.expires_at)))
                }
                BatchOp::Delete { .. } => None,
            };
            prepared.push((engine_key(ns, key), op.precondition(), encoded));
        }
        self.write(move |db| {
            db.transaction(|txn| {
                // Check every precondition first, against the state as the
                // batch leaves it so far; write nothing if one fails.
                let mut versions: std::collections::HashMap<&[u8], Option<u64>> =
                    Default::default();
                for (index, (key, precondition, encoded)) in prepared.iter().enumerate() {
                    let current = match versions.get(key.as_slice()) {
                        Some(v) => *v,
                        None => txn.peek(key, |e| e.and_then(|(v, _)| version_of(v))),
                    };
                    let holds = match (encoded, precondition) {
                        (None, Precondition::Absent) => true,
                        _ => precondition.holds(current),
                    };
                    if !holds {
                        return Ok(BatchOutcome::PreconditionFailed { index });
                    }
                    let after = encoded.as_ref().and_then(|(v, _)| version_of(v));
                    versions.insert(key.as_slice(), after);
                }
                for (key, _, encoded) in &prepared {
                    match encoded {
                        Some((value, expires_at)) => txn.set(key, value, *expires_at),
                        None => txn.delete(key),
                    }
                }
                Ok(BatchOutcome::Applied)
            })
        })
        .await
    }

    async fn count(&self, namespace: &str, range: &KeyRange, now: Timestamp) -> CoreResult<u64> {
        let (start, _, end) = Self::bounds(namespace, range, None);
        let mut n = 0u64;
        self.db
            .for_each_in(Bound::Included(&start), Bound::Excluded(&end), |e| {
                if !expired(e.expires_at, now) {
                    n += 1;
                }
                true
            })?;
        Ok(n)
    }

    async fn remove_expired(&self, namespace: Option<&str>, now: Timestamp) -> CoreResult<u64> {
        match namespace {
            None => self.write(move |db| db.remove_expired(now)).await,
            Some(ns) => {
                let prefix = namespace_prefix(ns);
                self.write(move |db| db.remove_expired_with_prefix(&prefix, now))
                    .await
            }
        }
    }

    async fn delete_range(
        &self,
        namespace: &str,
        range: &KeyRange,
        now: Timestamp,
    ) -> CoreResult<u64> {
        let (start, _, end) = Self::bounds(namespace, range, None);
        // Chunks of 1,000 keys, each one engine transaction: the range is
        // not deleted atomically as a whole, which `delete_range` allows.
        let mut live = 0u64;
        let mut from = start;
        loop {
            let end = end.clone();
            let first = from.clone();
            let (n, last, more) = self
                .write(move |db| {
                    db.transaction(|txn| {
                        let keys =
                            txn.range_keys(Bound::Included(&first), Bound::Excluded(&end), 1000);
                        let mut n = 0u64;
                        for (k, exp) in &keys {
                            if !expired(*exp, now) {
                                n += 1;
                            }
                            txn.delete(k);
                        }
                        let more = keys.len() == 1000;
                        Ok((n, keys.last().map(|(k, _)| k.clone()), more))
                    })
                })
                .await?;
            live += n;
            match (more, last) {
                (true, Some(last)) => {
                    from = last;
                    from.push(0);
                }
                _ => return Ok(live),
            }
        }
    }

    async fn increment(
        &self,
        namespace: &str,
        key: &str,
        delta: i64,
        now: Timestamp,
    ) -> CoreResult<i64> {
        let (ns, k): (Arc<str>, String) = (namespace.into(), key.to_owned());
        let ekey = engine_key(namespace, key);
        let outcome = self
            .write(move |db| {
                db.transaction(|txn| {
                    let current = txn.peek(&ekey, |e| {
                        e.map(|(v, exp)| decode_record(&ns, &k, v, exp)).transpose()
                    });
                    let current = match current {
                        Ok(c) => c,
                        Err(e) => return Ok(Err(e)),
                    };
                    let live = current.filter(|r| !r.is_expired(now));
                    let (record, new) =
                        match kv_core::ops::incremented(&ns, &k, live.as_ref(), delta, now) {
                            Ok(x) => x,
                            Err(e) => return Ok(Err(e)),
                        };
                    let value = match encode_value(&record) {
                        Ok(v) => v,
                        Err(e) => return Ok(Err(e)),
                    };
                    txn.set(&ekey, &value, to_expiry(record.meta.expires_at));
                    Ok(Ok(new))
                })
            })
            .await?;
        outcome
    }

    async fn namespaces(&self) -> CoreResult<Vec<String>> {
        let mut out = Vec::new();
        let mut from: Vec<u8> = Vec::new();
        loop {
            let mut next = None;
            self.db
                .for_each_in(Bound::Included(&from), Bound::Unbounded, |e| {
                    next = Some(e.key.to_vec());
                    false
                })?;
            let Some(k) = next else {
                return Ok(out);
            };
            let ns_len = k.iter().position(|&b| b == SEP).unwrap_or(k.len());
            let ns = std::str::from_utf8(&k[..ns_len]).map_err(|_| kv_core::Error::Corruption {
                location: "engine key".into(),
                reason: "namespace is not UTF-8".into(),
            })?;
            out.push(ns.to_owned());
            match prefix_end(&namespace_prefix(ns)) {
                Some(end) => from = end,
                None => return Ok(out),
            }
        }
    }

    async fn flush(&self) -> CoreResult<()> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| kv_core::Error::backend("engine", false, e))?
            .map_err(Into::into)
    }

    async fn compact(&self) -> CoreResult<()> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.compact())
            .await
            .map_err(|e| kv_core::Error::backend("engine", false, e))?
            .map_err(Into::into)
    }

    async fn close(&self) -> CoreResult<()> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.close())
            .await
            .map_err(|e| kv_core::Error::backend("engine", false, e))?
            .map_err(Into::into)
    }

    async fn stats(&self) -> CoreResult<BackendStats> {
        let s = self.db.stats();
        let mut stats = BackendStats {
            backend: "engine".into(),
            ..BackendStats::default()
        };
        let f = &mut stats.fields;
        f.insert("keys".into(), s.keys.into());
        f.insert("key_value_bytes".into(), s.key_value_bytes.into());
        f.insert("index_overhead_bytes".into(), s.index_overhead_bytes.into());
        f.insert("wal_bytes".into(), s.wal_bytes.into());
        f.insert("wal_segment".into(), s.wal_segment.into());
        f.insert("snapshot_bytes".into(), s.snapshot_bytes.into());
        f.insert("compactions".into(), s.compactions.into());
        f.insert("fsyncs".into(), s.fsyncs.into());
        f.insert(
            "read_p99_us".into(),
            (s.read_latency[2].as_micros() as u64).into(),
        );
        f.insert(
            "write_p99_us".into(),
            (s.write_latency[2].as_micros() as u64).into(),
        );
        f.insert("sync".into(), self.db.options().sync.to_string().into());
        Ok(stats)
    }
}
