//! [`Txn`] (the view a transaction works in) and [`Batch`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Bound;
use std::time::Duration;

use kv_core::Timestamp;

use crate::error::Result;
use crate::index::Index;

use super::{check_key, check_value, to_expiry, Db, Write};

/// Writes collected by [`Db::batch`], applied together or not at all.
#[derive(Debug)]
pub struct Batch<'db> {
    pub(super) db: &'db Db,
    pub(super) writes: Vec<Write<'static>>,
}

impl Batch<'_> {
    /// Adds a set (clearing any TTL).
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> &mut Self {
        self.push_set(key, value, 0)
    }

    /// Adds a set with a TTL.
    pub fn set_with_ttl(&mut self, key: &[u8], value: &[u8], ttl: Duration) -> &mut Self {
        let at = Timestamp::from_millis(self.db.inner().now_ms() as i64).saturating_add(ttl);
        self.push_set(key, value, to_expiry(Some(at)))
    }

    fn push_set(&mut self, key: &[u8], value: &[u8], expires_at: u64) -> &mut Self {
        self.writes.push(Write::Set {
            key: Cow::Owned(key.to_vec()),
            value: Cow::Owned(value.to_vec()),
            expires_at,
        });
        self
    }

    /// Adds a delete.
    pub fn delete(&mut self, key: &[u8]) -> &mut Self {
        self.writes.push(Write::Delete {
            key: Cow::Owned(key.to_vec()),
        });
        self
    }

    /// Number of writes.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Applies every write atomically: after a crash, all or none of them
    /// are there.
    pub fn write(self) -> Result<()> {
        for w in &self.writes {
            check_key(w.key())?;
            if let Write::Set { value, .. } = w {
                check_value(value)?;
            }
        }
        let writes = self.writes;
        self.db.inner().commit_writes(true, |_| Ok((writes, ())))
    }

    /// Drops the batch without writing anything.
    pub fn discard(self) {}
}

/// The view a [`Db::transaction`] works in.
#[derive(Debug)]
pub struct Txn<'a> {
    pub(super) index: &'a Index,
    /// Pending writes by key: `Some((value, expires_at))` or `None` for a
    /// delete.
    pub(super) overlay: HashMap<Vec<u8>, Option<(Vec<u8>, u64)>>,
    pub(super) writes: Vec<Write<'static>>,
    pub(super) now: u64,
    pub(super) enforce_ttl: bool,
}

impl Txn<'_> {
    /// The value and expiry (0 = never) of `key` as this transaction sees
    /// it; expired entries are hidden when the engine enforces TTL.
    pub fn get(&self, key: &[u8]) -> Option<(Vec<u8>, u64)> {
        let (v, e) = self.get_raw(key)?;
        if self.enforce_ttl && e != 0 && e <= self.now {
            return None;
        }
        Some((v, e))
    }

    /// Like [`get`](Self::get) but expired entries are returned too.
    pub fn get_raw(&self, key: &[u8]) -> Option<(Vec<u8>, u64)> {
        match self.overlay.get(key) {
            Some(pending) => pending.clone(),
            None => self
                .index
                .get(key)
                .map(|e| (e.value.to_vec(), e.expires_at)),
        }
    }

    /// Calls `f` with the stored bytes of `key` (expired included) without
    /// copying them.
    pub fn peek<T>(&self, key: &[u8], f: impl FnOnce(Option<(&[u8], u64)>) -> T) -> T {
        match self.overlay.get(key) {
            Some(Some((v, e))) => f(Some((v, *e))),
            Some(None) => f(None),
            None => f(self.index.get(key).map(|e| (e.value, e.expires_at))),
        }
    }

    /// Sets `key` (`expires_at` in ms since the epoch, 0 = never).
    pub fn set(&mut self, key: &[u8], value: &[u8], expires_at: u64) {
        self.overlay
            .insert(key.to_vec(), Some((value.to_vec(), expires_at)));
        self.writes.push(Write::Set {
            key: Cow::Owned(key.to_vec()),
            value: Cow::Owned(value.to_vec()),
            expires_at,
        });
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: &[u8]) {
        self.overlay.insert(key.to_vec(), None);
        self.writes.push(Write::Delete {
            key: Cow::Owned(key.to_vec()),
        });
    }

    /// Up to `limit` keys (with their expiry) in the range, in order, as
    /// stored before this transaction (its own writes are not seen).
    pub fn range_keys(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Vec<(Vec<u8>, u64)> {
        self.index
            .range(start, end)
            .take(limit)
            .map(|e| (e.key.to_vec(), e.expires_at))
            .collect()
    }

    /// The time the transaction runs at (ms since the epoch).
    pub fn now(&self) -> u64 {
        self.now
    }
}
