//! The in-memory backend: the reference implementation of [`Backend`].
//!
//! An ordered map per namespace behind one `RwLock`. A std lock, not
//! Tokio's: no guard is ever held across an `.await`, and every critical
//! section is a few map operations, so blocking briefly is cheaper than an
//! async lock.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;

use crate::backend::{
    Backend, BackendStats, BatchOp, BatchOutcome, Capabilities, CasMechanism, DeleteOutcome,
    KeyInfo, KeyRange, Precondition, WriteOutcome,
};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::record::Record;

type Namespaces = BTreeMap<String, BTreeMap<String, Record>>;

/// Records in memory; lost when the process ends.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    data: RwLock<Namespaces>,
    closed: AtomicBool,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed {
                backend: "memory".into(),
            });
        }
        Ok(())
    }

    // A panic inside a critical section cannot leave a map half-updated
    // (each section is one map operation or checks before mutating), so a
    // poisoned lock is safe to keep using.
    fn read_lock(&self) -> Result<RwLockReadGuard<'_, Namespaces>> {
        self.check_open()?;
        Ok(self.data.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn write_lock(&self) -> Result<RwLockWriteGuard<'_, Namespaces>> {
        self.check_open()?;
        Ok(self.data.write().unwrap_or_else(|e| e.into_inner()))
    }
}

fn range_iter<'a>(
    map: &'a BTreeMap<String, Record>,
    range: &'a KeyRange,
    after: Option<&'a str>,
) -> impl Iterator<Item = &'a Record> + 'a {
    let lower = range.lower_bound(after);
    let upper = match range.end.as_deref() {
        Some(e) => Bound::Excluded(e),
        None => Bound::Unbounded,
    };
    // An empty range (lower >= upper) would make `BTreeMap::range` panic.
    let empty = match (lower, upper) {
        (Bound::Included(l), Bound::Excluded(u)) | (Bound::Excluded(l), Bound::Excluded(u)) => {
            l >= u
        }
        _ => false,
    };
    let iter = if empty {
        None
    } else {
        Some(
            map.range::<str, _>((lower, upper))
                .map(|(_, record)| record),
        )
    };
    iter.into_iter().flatten()
}

#[async_trait]
impl Backend for MemoryBackend {
    fn name(&self) -> &str {
        "memory"
    }

    fn capabilities(&self) -> Capabilities {
        let mut c = Capabilities::none();
        c.atomic_batch = true;
        c.native_range_delete = true;
        c.cas = CasMechanism::Lock;
        c
    }

    async fn read(&self, namespace: &str, key: &str) -> Result<Option<Record>> {
        let data = self.read_lock()?;
        Ok(data.get(namespace).and_then(|m| m.get(key)).cloned())
    }

    async fn read_many(&self, namespace: &str, keys: &[String]) -> Result<Vec<Option<Record>>> {
        let data = self.read_lock()?;
        let ns = data.get(namespace);
        Ok(keys
            .iter()
            .map(|k| ns.and_then(|m| m.get(k)).cloned())
            .collect())
    }

    async fn write(&self, record: Record, precondition: Precondition) -> Result<WriteOutcome> {
        let mut data = self.write_lock()?;
        let ns = data.entry(record.namespace.clone()).or_default();
        let current = ns.get(&record.key).map(Record::version);
        if !precondition.holds(current) {
            if ns.is_empty() {
                data.remove(&record.namespace);
            }
            return Ok(WriteOutcome::PreconditionFailed);
        }
        ns.insert(record.key.clone(), record);
        Ok(WriteOutcome::Written)
    }

    async fn delete(
        &self,
        namespace: &str,
        key: &str,
        precondition: Precondition,
    ) -> Result<DeleteOutcome> {
        let mut data = self.write_lock()?;
        let Some(ns) = data.get_mut(namespace) else {
            return Ok(match precondition {
                Precondition::Version(_) => DeleteOutcome::PreconditionFailed,
                _ => DeleteOutcome::NotFound,
            });
        };
        let current = ns.get(key).map(Record::version);
        if !precondition.holds(current) && precondition != Precondition::Absent {
            return Ok(DeleteOutcome::PreconditionFailed);
        }
        let outcome = match ns.remove(key) {
            Some(r) => DeleteOutcome::Deleted {
                expires_at: r.meta.expires_at,
            },
            None => DeleteOutcome::NotFound,
        };
        if ns.is_empty() {
            data.remove(namespace);
        }
        Ok(outcome)
    }

    async fn scan(
        &self,
        namespace: &str,
        range: &KeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>> {
        let data = self.read_lock()?;
        Ok(match data.get(namespace) {
            Some(map) => range_iter(map, range, after).take(limit).cloned().collect(),
            None => Vec::new(),
        })
    }

    async fn scan_keys(
        &self,
        namespace: &str,
        range: &KeyRange,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KeyInfo>> {
        let data = self.read_lock()?;
        Ok(match data.get(namespace) {
            Some(map) => range_iter(map, range, after)
                .take(limit)
                .map(|r| KeyInfo {
                    key: r.key.clone(),
                    expires_at: r.meta.expires_at,
                    version: r.meta.version,
                })
                .collect(),
            None => Vec::new(),
        })
    }

    async fn apply(&self, ops: Vec<BatchOp>) -> Result<BatchOutcome> {
        let mut data = self.write_lock()?;
        // Check every precondition against the state as the batch would
        // leave it so far, before mutating anything.
        let mut overlay: HashMap<(&str, &str), Option<u64>> = HashMap::new();
        for (index, op) in ops.iter().enumerate() {
            let (ns, key) = op.target();
            let current = match overlay.get(&(ns, key)) {
                Some(v) => *v,
                None => data.get(ns).and_then(|m| m.get(key)).map(Record::version),
            };
            let holds = match op {
                BatchOp::Delete {
                    precondition: Precondition::Absent,
                    ..
                } => true,
                _ => op.precondition().holds(current),
            };
            if !holds {
                return Ok(BatchOutcome::PreconditionFailed { index });
            }
            let after = match op {
                BatchOp::Put { record, .. } => Some(record.version()),
                BatchOp::Delete { .. } => None,
            };
            overlay.insert((ns, key), after);
        }
        drop(overlay);
        for op in ops {
            match op {
                BatchOp::Put { record, .. } => {
                    data.entry(record.namespace.clone())
                        .or_default()
                        .insert(record.key.clone(), record);
                }
                BatchOp::Delete { namespace, key, .. } => {
                    if let Some(ns) = data.get_mut(&namespace) {
                        ns.remove(&key);
                        if ns.is_empty() {
                            data.remove(&namespace);
                        }
                    }
                }
            }
        }
        Ok(BatchOutcome::Applied)
    }

    async fn count(&self, namespace: &str, range: &KeyRange, now: Timestamp) -> Result<u64> {
        let data = self.read_lock()?;
        Ok(match data.get(namespace) {
            Some(map) => range_iter(map, range, None)
                .filter(|r| !r.is_expired(now))
                .count() as u64,
            None => 0,
        })
    }

    async fn remove_expired(&self, namespace: Option<&str>, now: Timestamp) -> Result<u64> {
        let mut data = self.write_lock()?;
        let mut removed = 0u64;
        for (ns, map) in data.iter_mut() {
            if namespace.is_some_and(|n| n != ns) {
                continue;
            }
            let before = map.len();
            map.retain(|_, r| !r.is_expired(now));
            removed += (before - map.len()) as u64;
        }
        data.retain(|_, map| !map.is_empty());
        Ok(removed)
    }

    async fn delete_range(&self, namespace: &str, range: &KeyRange, now: Timestamp) -> Result<u64> {
        let mut data = self.write_lock()?;
        let Some(map) = data.get_mut(namespace) else {
            return Ok(0);
        };
        let keys: Vec<String> = range_iter(map, range, None)
            .map(|r| r.key.clone())
            .collect();
        let mut live = 0;
        for key in keys {
            if let Some(r) = map.remove(&key) {
                if !r.is_expired(now) {
                    live += 1;
                }
            }
        }
        if map.is_empty() {
            data.remove(namespace);
        }
        Ok(live)
    }

    async fn namespaces(&self) -> Result<Vec<String>> {
        let data = self.read_lock()?;
        Ok(data.keys().cloned().collect())
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }

    async fn stats(&self) -> Result<BackendStats> {
        let data = self.read_lock()?;
        let mut stats = BackendStats {
            backend: "memory".into(),
            ..BackendStats::default()
        };
        let records: usize = data.values().map(BTreeMap::len).sum();
        let bytes: usize = data
            .values()
            .flat_map(BTreeMap::values)
            .map(|r| r.key.len() + r.value.len())
            .sum();
        stats.fields.insert("records".into(), records.into());
        stats.fields.insert("namespaces".into(), data.len().into());
        stats
            .fields
            .insert("key_and_value_bytes".into(), bytes.into());
        Ok(stats)
    }
}
