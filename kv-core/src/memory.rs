//! The in-memory backend: the reference implementation of [`Backend`].
//!
//! Each namespace is a hash map of records (point reads and writes in one
//! hash lookup) plus an ordered set of its keys (scans in key order without
//! sorting). Both share the key allocation. Everything sits behind one
//! `RwLock` — a std lock, not Tokio's: no guard is ever held across an
//! `.await`, and every critical section is a few map operations, so blocking
//! briefly is cheaper than an async lock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;

use crate::backend::{
    Backend, BackendStats, BatchOp, BatchOutcome, Capabilities, CasMechanism, DeleteOutcome,
    KeyInfo, KeyRange, Precondition, WriteOutcome,
};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::record::{Record, StoredValue};

/// One namespace: records by key, and the keys in order.
#[derive(Debug, Default)]
struct Space {
    records: HashMap<Arc<str>, Record>,
    order: BTreeSet<Arc<str>>,
}

impl Space {
    fn get(&self, key: &str) -> Option<&Record> {
        self.records.get(key)
    }

    fn version(&self, key: &str) -> Option<u64> {
        self.get(key).map(Record::version)
    }

    fn insert(&mut self, record: Record) {
        if let Some(slot) = self.records.get_mut(record.key.as_str()) {
            *slot = record;
            return;
        }
        let key: Arc<str> = Arc::from(record.key.as_str());
        self.order.insert(Arc::clone(&key));
        self.records.insert(key, record);
    }

    fn remove(&mut self, key: &str) -> Option<Record> {
        let record = self.records.remove(key)?;
        self.order.remove(key);
        Some(record)
    }

    fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Records in `range` after the cursor, in key order.
    fn range<'a>(
        &'a self,
        range: &'a KeyRange,
        after: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Record> + 'a {
        let lower = range.lower_bound(after);
        let upper = match range.end.as_deref() {
            Some(e) => Bound::Excluded(e),
            None => Bound::Unbounded,
        };
        // An empty range (lower >= upper) would make `BTreeSet::range` panic.
        let empty = match (lower, upper) {
            (Bound::Included(l), Bound::Excluded(u)) | (Bound::Excluded(l), Bound::Excluded(u)) => {
                l >= u
            }
            _ => false,
        };
        let keys = if empty {
            None
        } else {
            Some(self.order.range::<str, _>((lower, upper)))
        };
        keys.into_iter()
            .flatten()
            .filter_map(|k| self.records.get(k))
    }
}

type Spaces = BTreeMap<String, Space>;

/// Records in memory; lost when the process ends.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    data: RwLock<Spaces>,
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

    // A panic inside a critical section cannot leave a namespace
    // half-updated (each section checks before mutating, and each mutation
    // is one map operation), so a poisoned lock is safe to keep using.
    fn read_lock(&self) -> Result<RwLockReadGuard<'_, Spaces>> {
        self.check_open()?;
        Ok(self.data.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn write_lock(&self) -> Result<RwLockWriteGuard<'_, Spaces>> {
        self.check_open()?;
        Ok(self.data.write().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Stores `record` in its namespace's space, creating the space (and only
/// then copying the namespace's name) when it is new.
fn put(data: &mut Spaces, record: Record) {
    match data.get_mut(&*record.namespace) {
        Some(space) => space.insert(record),
        None => {
            let namespace = record.namespace.to_string();
            let mut space = Space::default();
            space.insert(record);
            data.insert(namespace, space);
        }
    }
}

fn remove_if_empty(data: &mut Spaces, namespace: &str) {
    if data.get(namespace).is_some_and(Space::is_empty) {
        data.remove(namespace);
    }
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
        Ok(data.get(namespace).and_then(|s| s.get(key)).cloned())
    }

    async fn read_value(&self, namespace: &str, key: &str) -> Result<Option<StoredValue>> {
        let data = self.read_lock()?;
        Ok(data
            .get(namespace)
            .and_then(|s| s.get(key))
            .map(Record::stored_value))
    }

    async fn read_many(&self, namespace: &str, keys: &[String]) -> Result<Vec<Option<Record>>> {
        let data = self.read_lock()?;
        let space = data.get(namespace);
        Ok(keys
            .iter()
            .map(|k| space.and_then(|s| s.get(k)).cloned())
            .collect())
    }

    async fn write(&self, record: Record, precondition: Precondition) -> Result<WriteOutcome> {
        let mut data = self.write_lock()?;
        let current = data
            .get(&*record.namespace)
            .and_then(|s| s.version(&record.key));
        if !precondition.holds(current) {
            return Ok(WriteOutcome::PreconditionFailed);
        }
        put(&mut data, record);
        Ok(WriteOutcome::Written)
    }

    async fn delete(
        &self,
        namespace: &str,
        key: &str,
        precondition: Precondition,
    ) -> Result<DeleteOutcome> {
        let mut data = self.write_lock()?;
        let current = data.get(namespace).and_then(|s| s.version(key));
        // `Absent` has no meaning for a delete and is treated as `Any`.
        if precondition != Precondition::Absent && !precondition.holds(current) {
            return Ok(DeleteOutcome::PreconditionFailed);
        }
        let removed = data.get_mut(namespace).and_then(|s| s.remove(key));
        remove_if_empty(&mut data, namespace);
        Ok(match removed {
            Some(r) => DeleteOutcome::Deleted {
                expires_at: r.meta.expires_at,
            },
            None => DeleteOutcome::NotFound,
        })
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
            Some(space) => space.range(range, after).take(limit).cloned().collect(),
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
            Some(space) => space
                .range(range, after)
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
                None => data.get(ns).and_then(|s| s.version(key)),
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
                BatchOp::Put { record, .. } => put(&mut data, record),
                BatchOp::Delete { namespace, key, .. } => {
                    if let Some(space) = data.get_mut(&namespace) {
                        space.remove(&key);
                    }
                    remove_if_empty(&mut data, &namespace);
                }
            }
        }
        Ok(BatchOutcome::Applied)
    }

    async fn count(&self, namespace: &str, range: &KeyRange, now: Timestamp) -> Result<u64> {
        let data = self.read_lock()?;
        Ok(match data.get(namespace) {
            Some(space) => space
                .range(range, None)
                .filter(|r| !r.is_expired(now))
                .count() as u64,
            None => 0,
        })
    }

    async fn remove_expired(&self, namespace: Option<&str>, now: Timestamp) -> Result<u64> {
        let mut data = self.write_lock()?;
        let mut removed = 0u64;
        for (ns, space) in data.iter_mut() {
            if namespace.is_some_and(|n| n != ns) {
                continue;
            }
            let expired: Vec<Arc<str>> = space
                .records
                .iter()
                .filter(|(_, r)| r.is_expired(now))
                .map(|(k, _)| Arc::clone(k))
                .collect();
            for key in expired {
                space.remove(&key);
                removed += 1;
            }
        }
        data.retain(|_, space| !space.is_empty());
        Ok(removed)
    }

    async fn delete_range(&self, namespace: &str, range: &KeyRange, now: Timestamp) -> Result<u64> {
        let mut data = self.write_lock()?;
        let Some(space) = data.get_mut(namespace) else {
            return Ok(0);
        };
        let keys: Vec<String> = space.range(range, None).map(|r| r.key.clone()).collect();
        let mut live = 0;
        for key in keys {
            if let Some(r) = space.remove(&key) {
                if !r.is_expired(now) {
                    live += 1;
                }
            }
        }
        remove_if_empty(&mut data, namespace);
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
        let records: usize = data.values().map(|s| s.records.len()).sum();
        let bytes: usize = data
            .values()
            .flat_map(|s| s.records.values())
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
