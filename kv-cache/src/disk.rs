//! The optional disk tier: cached entries in a sled database, so a restart
//! starts warm and more entries fit than memory holds.
//!
//! Two trees: `entries` maps `namespace 0x00 key` to `cached_at (i64 BE) |
//! present (u8) | record body`, and `by_age` maps `cached_at (i64 BE) |
//! namespace 0x00 key` to nothing, so the oldest entries are found first
//! when the tier is over its byte bound (it is rebuilt from `entries` on
//! open, which also drops the entries older than the ttl).
//! sled buffers writes in memory and flushes them in the background; the
//! tier is also flushed on `flush` and `close` (on a blocking thread).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use kv_core::backend::KeyRange;
use kv_core::{Error, Record, Result, Timestamp};

use crate::options::DiskTierOptions;

fn disk_err(e: sled::Error) -> Error {
    Error::backend("cache disk tier", false, e)
}

fn entry_key(ns: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(ns.len() + 1 + key.len());
    k.extend_from_slice(ns.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

fn age_key(cached_at: Timestamp, entry: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + entry.len());
    // Offset so negative times sort before positive ones.
    k.extend_from_slice(&(cached_at.as_millis() as u64 ^ (1 << 63)).to_be_bytes());
    k.extend_from_slice(entry);
    k
}

/// An entry's value split into its header (`cached_at`, the flag) and
/// the rest; `None` when it is too short for its header.
fn header(value: &[u8]) -> Option<(Timestamp, u8, &[u8])> {
    let t: [u8; 8] = value.get(..8)?.try_into().ok()?;
    let (&flag, rest) = value[8..].split_first()?;
    Some((Timestamp::from_millis(i64::from_be_bytes(t)), flag, rest))
}

/// A cached answer: the record, or `None` for a cached "not found".
pub(crate) type Cached = (Timestamp, Option<Record>);

pub(crate) struct DiskTier {
    db: sled::Db,
    entries: sled::Tree,
    by_age: sled::Tree,
    bytes: AtomicU64,
    max_bytes: u64,
    /// Serialises writers so an entry and its age index change together.
    write: Mutex<()>,
}

impl std::fmt::Debug for DiskTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskTier")
            .field("bytes", &self.bytes.load(Ordering::Relaxed))
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl DiskTier {
    /// Opens the tier, drops entries cached before `oldest` (and entries
    /// too short for their header: it is a cache), and evicts the oldest
    /// while it holds more than its bound.
    ///
    /// The age index is rebuilt from the entries: the two trees change
    /// together under a lock but not in one transaction, so a crash can
    /// leave an entry without its age record (never evicted, never aged
    /// out) or an age record without its entry.
    pub(crate) fn open(options: &DiskTierOptions, oldest: Timestamp) -> Result<DiskTier> {
        let db = sled::open(&options.path).map_err(disk_err)?;
        let entries = db.open_tree("entries").map_err(disk_err)?;
        let by_age = db.open_tree("by_age").map_err(disk_err)?;
        by_age.clear().map_err(disk_err)?;
        let mut bytes = 0u64;
        for item in entries.iter() {
            let (k, v) = item.map_err(disk_err)?;
            match header(&v) {
                Some((at, _, _)) if at >= oldest => {
                    bytes += (k.len() + v.len()) as u64;
                    by_age.insert(age_key(at, &k), &[][..]).map_err(disk_err)?;
                }
                _ => {
                    entries.remove(&k).map_err(disk_err)?;
                }
            }
        }
        let tier = DiskTier {
            db,
            entries,
            by_age,
            bytes: AtomicU64::new(bytes),
            max_bytes: options.max_bytes,
            write: Mutex::new(()),
        };
        {
            let _w = tier.write.lock().unwrap_or_else(|e| e.into_inner());
            tier.evict_locked()?;
        }
        Ok(tier)
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn get(&self, ns: &str, key: &str) -> Result<Option<Cached>> {
        let Some(v) = self.entries.get(entry_key(ns, key)).map_err(disk_err)? else {
            return Ok(None);
        };
        let corrupt = |why: &str| Error::Corruption {
            location: format!("cache disk tier {ns}/{key}"),
            reason: why.to_owned(),
        };
        let Some((cached_at, flag, body)) = header(&v) else {
            return Err(corrupt("entry shorter than its header"));
        };
        let record = match flag {
            0 => None,
            1 => Some(Record::decode_body(ns, key, body)?),
            _ => return Err(corrupt("unknown entry flag")),
        };
        Ok(Some((cached_at, record)))
    }

    pub(crate) fn put(
        &self,
        ns: &str,
        key: &str,
        cached_at: Timestamp,
        record: Option<&Record>,
    ) -> Result<()> {
        let mut value = Vec::with_capacity(64);
        value.extend_from_slice(&cached_at.as_millis().to_be_bytes());
        match record {
            Some(r) => {
                value.push(1);
                value.extend_from_slice(&r.encode_body()?);
            }
            None => value.push(0),
        }
        let k = entry_key(ns, key);
        let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        self.remove_locked(&k)?;
        self.bytes
            .fetch_add((k.len() + value.len()) as u64, Ordering::Relaxed);
        self.entries.insert(&k, value).map_err(disk_err)?;
        self.by_age
            .insert(age_key(cached_at, &k), &[][..])
            .map_err(disk_err)?;
        self.evict_locked()
    }

    pub(crate) fn remove(&self, ns: &str, key: &str) -> Result<()> {
        let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        self.remove_locked(&entry_key(ns, key))
    }

    fn remove_locked(&self, k: &[u8]) -> Result<()> {
        if let Some(old) = self.entries.remove(k).map_err(disk_err)? {
            self.bytes
                .fetch_sub((k.len() + old.len()) as u64, Ordering::Relaxed);
            if let Some((at, _, _)) = header(&old) {
                self.by_age.remove(age_key(at, k)).map_err(disk_err)?;
            }
        }
        Ok(())
    }

    /// Removes the entries of keys in `range` of namespace `ns`.
    pub(crate) fn remove_range(&self, ns: &str, range: &KeyRange) -> Result<()> {
        let start = entry_key(ns, range.start.as_deref().unwrap_or(""));
        let end = match &range.end {
            Some(e) => entry_key(ns, e),
            None => {
                let mut e = ns.as_bytes().to_vec();
                e.push(1);
                e
            }
        };
        let keys: Vec<sled::IVec> = self
            .entries
            .range(start..end)
            .keys()
            .collect::<std::result::Result<_, _>>()
            .map_err(disk_err)?;
        let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            self.remove_locked(&k)?;
        }
        Ok(())
    }

    /// Drops the oldest entries while the tier is over its bound.
    fn evict_locked(&self) -> Result<()> {
        while self.bytes() > self.max_bytes {
            let Some(item) = self.by_age.iter().next() else {
                return Ok(());
            };
            let (age, _) = item.map_err(disk_err)?;
            self.by_age.remove(&age).map_err(disk_err)?;
            if let Some(old) = self.entries.remove(&age[8..]).map_err(disk_err)? {
                self.bytes
                    .fetch_sub((age.len() - 8 + old.len()) as u64, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    pub(crate) fn flush(&self) -> Result<()> {
        self.db.flush().map(|_| ()).map_err(disk_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str) -> Record {
        Record::new(
            "ns",
            key,
            &kv_core::Value::from("x".repeat(100)),
            kv_core::ValueType::String,
            Timestamp::from_millis(1),
        )
    }

    /// The byte bound holds while entries come in and again on reopen
    /// with a smaller bound, and entries whose age record a crash lost
    /// (written here into the entries tree alone) are aged out and evicted
    /// like the others.
    #[test]
    fn the_bound_and_the_ttl_hold_across_reopen_and_lost_age_records() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let opts = |max_bytes| DiskTierOptions {
            path: dir.path().join("tier"),
            max_bytes,
        };
        let tier =
            DiskTier::open(&opts(20_000), Timestamp::EPOCH).unwrap_or_else(|e| panic!("{e}"));
        for i in 0..500 {
            let key = format!("k{i:03}");
            tier.put(
                "ns",
                &key,
                Timestamp::from_millis(1_000 + i),
                Some(&record(&key)),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            assert!(tier.bytes() <= 20_000, "{} bytes after {i}", tier.bytes());
        }
        let kept = tier.len();
        assert!(kept > 50 && kept < 500, "{kept}");
        // The newest entries are the ones kept.
        assert!(tier
            .get("ns", "k499")
            .unwrap_or_else(|e| panic!("{e}"))
            .is_some());
        assert!(tier
            .get("ns", "k000")
            .unwrap_or_else(|e| panic!("{e}"))
            .is_none());
        // A crash between the two trees: an entry without its age record,
        // an age record without its entry.
        let mut value = 500i64.to_be_bytes().to_vec();
        value.push(0);
        tier.entries
            .insert(entry_key("ns", "orphan"), value)
            .unwrap_or_else(|e| panic!("{e}"));
        tier.by_age
            .insert(age_key(Timestamp::from_millis(2), b"ns\0gone"), &[][..])
            .unwrap_or_else(|e| panic!("{e}"));
        tier.flush().unwrap_or_else(|e| panic!("{e}"));
        drop(tier);

        // Reopen with half the bound, dropping what was cached before
        // 1,400 ms: the orphan (cached at 500 ms) goes with them.
        let tier = DiskTier::open(&opts(10_000), Timestamp::from_millis(1_400))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(tier.bytes() <= 10_000, "{}", tier.bytes());
        assert!(tier
            .get("ns", "orphan")
            .unwrap_or_else(|e| panic!("{e}"))
            .is_none());
        assert!(tier
            .get("ns", "k499")
            .unwrap_or_else(|e| panic!("{e}"))
            .is_some());
        assert_eq!(tier.by_age.len(), tier.entries.len());
        let counted: u64 = tier
            .entries
            .iter()
            .map(|i| i.map(|(k, v)| (k.len() + v.len()) as u64).unwrap_or(0))
            .sum();
        assert_eq!(counted, tier.bytes());
    }
}
