//! The in-memory index of live keys.
//!
//! Built for memory and speed at millions of keys:
//!
//! - a **slab** of slots, one per key: one allocation holding the key
//!   length, the key and the value, plus the expiry — 24 bytes per slot;
//! - a **hash table** of slot numbers (4 bytes each) for point reads and
//!   writes in one probe;
//! - a **sorted index**: chunks of at most [`MAX_CHUNK`] entries, each entry
//!   the first 8 bytes of the key (big-endian) and its slot number, so
//!   ordered scans and prefix ranges cost O(log n + matches) and most
//!   comparisons never leave the chunk;
//! - an **expiry set** of (expires_at, slot) for keys with a TTL, so expired
//!   keys are found without a scan.
//!
//! About 70 bytes per key beyond the key and value bytes (see
//! `docs/performance.md` for the measured figure).

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::ops::Bound;

use hashbrown::HashTable;

/// Most entries in one chunk of the sorted index.
pub const MAX_CHUNK: usize = 512;

#[derive(Debug, Default)]
struct Slot {
    /// `key_len: u32 LE | key | value`; empty when the slot is free.
    data: Box<[u8]>,
    /// Milliseconds since the epoch; 0 = never.
    expires_at: u64,
}

impl Slot {
    fn key_len(&self) -> usize {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.data[..4]);
        u32::from_le_bytes(b) as usize
    }
    fn key(&self) -> &[u8] {
        &self.data[4..4 + self.key_len()]
    }
    fn value(&self) -> &[u8] {
        &self.data[4 + self.key_len()..]
    }
    fn pack(key: &[u8], value: &[u8]) -> Box<[u8]> {
        let mut data = Vec::with_capacity(4 + key.len() + value.len());
        data.extend_from_slice(&(key.len() as u32).to_le_bytes());
        data.extend_from_slice(key);
        data.extend_from_slice(value);
        data.into_boxed_slice()
    }
}

/// The first 8 bytes of a key as a big-endian number (zero-padded), which
/// orders like the bytes themselves.
fn head(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = key.len().min(8);
    b[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(b)
}

#[derive(Debug, Default)]
struct Chunk {
    heads: Vec<u64>,
    slots: Vec<u32>,
}

/// A live entry, borrowed from the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The value.
    pub value: &'a [u8],
    /// Expiry, ms since the epoch; 0 = never.
    pub expires_at: u64,
}

/// The index. Not synchronised; the database wraps it in a lock.
#[derive(Debug)]
pub struct Index {
    slots: Vec<Slot>,
    free: Vec<u32>,
    table: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    chunks: Vec<Chunk>,
    /// Head of each chunk's first entry.
    firsts: Vec<u64>,
    expiry: BTreeSet<(u64, u32)>,
    key_value_bytes: u64,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            slots: Vec::new(),
            free: Vec::new(),
            table: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            chunks: Vec::new(),
            firsts: Vec::new(),
            expiry: BTreeSet::new(),
            key_value_bytes: 0,
        }
    }
}

impl Index {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes room for `additional` more keys without growing the slab and
    /// the hash table one doubling at a time.
    pub fn reserve(&mut self, additional: usize) {
        self.slots.reserve(additional);
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.table
            .reserve(additional, |&o| hasher.hash_one(slots[o as usize].key()));
    }

    /// Gives back capacity reserved beyond twice what is used (after a
    /// replay that overwrote the same keys many times).
    pub fn trim(&mut self) {
        if self.slots.capacity() > 2 * self.slots.len() + 1024 {
            self.slots
                .shrink_to(self.slots.len() + self.slots.len() / 4);
        }
        if self.table.capacity() > 2 * self.table.len() + 1024 {
            let (slots, hasher) = (&self.slots, &self.hasher);
            self.table.shrink_to(self.table.len(), |&o| {
                hasher.hash_one(slots[o as usize].key())
            });
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Total key and value bytes held.
    pub fn key_value_bytes(&self) -> u64 {
        self.key_value_bytes
    }

    /// Number of keys with an expiry.
    pub fn expiring(&self) -> usize {
        self.expiry.len()
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    fn find(&self, key: &[u8]) -> Option<u32> {
        let h = self.hash(key);
        self.table
            .find(h, |&s| self.slots[s as usize].key() == key)
            .copied()
    }

    /// The entry under `key`.
    pub fn get(&self, key: &[u8]) -> Option<EntryRef<'_>> {
        self.find(key).map(|s| self.entry(s))
    }

    fn entry(&self, s: u32) -> EntryRef<'_> {
        let slot = &self.slots[s as usize];
        EntryRef {
            key: slot.key(),
            value: slot.value(),
            expires_at: slot.expires_at,
        }
    }

    /// Sets `key`; returns the previous expiry when the key existed.
    pub fn insert(&mut self, key: &[u8], value: &[u8], expires_at: u64) -> Option<u64> {
        if let Some(s) = self.find(key) {
            let slot = &mut self.slots[s as usize];
            let previous = slot.expires_at;
            self.key_value_bytes -= (slot.data.len() - 4) as u64;
            slot.data = Slot::pack(key, value);
            self.key_value_bytes += (slot.data.len() - 4) as u64;
            if previous != expires_at {
                if previous != 0 {
                    self.expiry.remove(&(previous, s));
                }
                if expires_at != 0 {
                    self.expiry.insert((expires_at, s));
                }
                slot.expires_at = expires_at;
            }
            return Some(previous);
        }
        let s = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Slot::default());
                (self.slots.len() - 1) as u32
            }
        };
        self.slots[s as usize] = Slot {
            data: Slot::pack(key, value),
            expires_at,
        };
        self.key_value_bytes += (key.len() + value.len()) as u64;
        if expires_at != 0 {
            self.expiry.insert((expires_at, s));
        }
        let h = self.hash(key);
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.table
            .insert_unique(h, s, |&o| hasher.hash_one(slots[o as usize].key()));
        self.sorted_insert(key, s);
        None
    }

    /// Removes `key`; returns its expiry when it existed.
    pub fn remove(&mut self, key: &[u8]) -> Option<u64> {
        let h = self.hash(key);
        let slots = &self.slots;
        let s = match self
            .table
            .find_entry(h, |&s| slots[s as usize].key() == key)
        {
            Ok(entry) => entry.remove().0,
            Err(_) => return None,
        };
        self.sorted_remove(key, s);
        let slot = std::mem::take(&mut self.slots[s as usize]);
        self.key_value_bytes -= (slot.data.len() - 4) as u64;
        if slot.expires_at != 0 {
            self.expiry.remove(&(slot.expires_at, s));
        }
        self.free.push(s);
        Some(slot.expires_at)
    }

    /// Compares `key` (with its head) to the entry with head `h` and slot
    /// `s()` of the sorted index; the slot is only looked at on a tie.
    fn cmp_to(&self, head: u64, key: &[u8], h: u64, s: impl FnOnce() -> u32) -> Ordering {
        head.cmp(&h)
            .then_with(|| key.cmp(self.slots[s() as usize].key()))
    }

    /// The chunk where `key` belongs: the last one whose first key is
    /// `<= key` (the first chunk when none is).
    fn chunk_for(&self, head: u64, key: &[u8]) -> usize {
        let (mut lo, mut hi) = (0, self.firsts.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let ord = self.cmp_to(head, key, self.firsts[mid], || self.chunks[mid].slots[0]);
            if ord == Ordering::Less {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo.saturating_sub(1)
    }

    /// First position in `chunk` whose key is `>= key` (or `> key` when
    /// `after`).
    fn position(&self, chunk: &Chunk, head: u64, key: &[u8], after: bool) -> usize {
        let mut lo = 0;
        let mut hi = chunk.heads.len();
        while lo < hi {
            let mid = (lo + hi) / 2;
            let ord = self.cmp_to(head, key, chunk.heads[mid], || chunk.slots[mid]);
            let go_right = if after {
                ord != Ordering::Less
            } else {
                ord == Ordering::Greater
            };
            if go_right {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    fn sorted_insert(&mut self, key: &[u8], s: u32) {
        let h = head(key);
        if self.chunks.is_empty() {
            self.chunks.push(Chunk {
                heads: vec![h],
                slots: vec![s],
            });
            self.firsts.push(h);
            return;
        }
        // Fast path: appending in order (loading a snapshot).
        let last = self.chunks.len() - 1;
        let appending = {
            let c = &self.chunks[last];
            let n = c.heads.len();
            self.cmp_to(h, key, c.heads[n - 1], || c.slots[n - 1]) == Ordering::Greater
        };
        let c = if appending {
            last
        } else {
            self.chunk_for(h, key)
        };
        let p = if appending {
            self.chunks[c].heads.len()
        } else {
            self.position(&self.chunks[c], h, key, false)
        };
        let chunk = &mut self.chunks[c];
        chunk.heads.insert(p, h);
        chunk.slots.insert(p, s);
        if p == 0 {
            self.firsts[c] = h;
        }
        if chunk.heads.len() > MAX_CHUNK {
            let half = chunk.heads.len() / 2;
            let heads = chunk.heads.split_off(half);
            let slots = chunk.slots.split_off(half);
            chunk.heads.shrink_to(MAX_CHUNK);
            chunk.slots.shrink_to(MAX_CHUNK);
            self.firsts.insert(c + 1, heads[0]);
            self.chunks.insert(c + 1, Chunk { heads, slots });
        }
    }

    fn sorted_remove(&mut self, key: &[u8], s: u32) {
        let h = head(key);
        let c = self.chunk_for(h, key);
        let p = self.position(&self.chunks[c], h, key, false);
        let chunk = &mut self.chunks[c];
        debug_assert_eq!(chunk.slots.get(p), Some(&s), "sorted index out of step");
        if chunk.slots.get(p) != Some(&s) {
            return;
        }
        chunk.heads.remove(p);
        chunk.slots.remove(p);
        if chunk.heads.is_empty() {
            self.chunks.remove(c);
            self.firsts.remove(c);
        } else if p == 0 {
            self.firsts[c] = chunk.heads[0];
        }
    }

    /// Entries with keys in `(start, end)`, in key order.
    pub fn range<'a>(&'a self, start: Bound<&[u8]>, end: Bound<&'a [u8]>) -> Range<'a> {
        let (chunk, pos) = match start {
            Bound::Unbounded => (0, 0),
            Bound::Included(k) | Bound::Excluded(k) => {
                if self.chunks.is_empty() {
                    (0, 0)
                } else {
                    let h = head(k);
                    let c = self.chunk_for(h, k);
                    let after = matches!(start, Bound::Excluded(_));
                    (c, self.position(&self.chunks[c], h, k, after))
                }
            }
        };
        Range {
            index: self,
            chunk,
            pos,
            end,
        }
    }

    /// Keys that expire at or before `now`, oldest expiry first, at most
    /// `limit`.
    pub fn expired(&self, now: u64, limit: usize) -> Vec<Vec<u8>> {
        self.expiry
            .range(..=(now, u32::MAX))
            .take(limit)
            .map(|&(_, s)| self.slots[s as usize].key().to_vec())
            .collect()
    }

    /// Number of keys that expire at or before `now`.
    pub fn expired_count(&self, now: u64) -> usize {
        self.expiry.range(..=(now, u32::MAX)).count()
    }

    /// Bytes the index itself holds beyond key and value bytes (an
    /// estimate from capacities: slab, table, sorted chunks, allocation
    /// headers).
    pub fn overhead_bytes(&self) -> u64 {
        let slab = self.slots.capacity() * std::mem::size_of::<Slot>();
        let table = self.table.capacity() * (4 + 1);
        let sorted: usize = self
            .chunks
            .iter()
            .map(|c| c.heads.capacity() * 8 + c.slots.capacity() * 4 + 48)
            .sum();
        let expiry = self.expiry.len() * 24;
        // One allocation per key: a 4-byte length prefix and the allocator's
        // header (8 bytes with glibc, rounded to 16).
        let allocations = self.len() * (4 + 16);
        (slab + table + sorted + expiry + allocations) as u64
    }
}

/// An ordered walk over part of the index.
#[derive(Debug)]
pub struct Range<'a> {
    index: &'a Index,
    chunk: usize,
    pos: usize,
    end: Bound<&'a [u8]>,
}

impl<'a> Iterator for Range<'a> {
    type Item = EntryRef<'a>;

    fn next(&mut self) -> Option<EntryRef<'a>> {
        loop {
            let chunk = self.index.chunks.get(self.chunk)?;
            if self.pos >= chunk.slots.len() {
                self.chunk += 1;
                self.pos = 0;
                continue;
            }
            let entry = self.index.entry(chunk.slots[self.pos]);
            let inside = match self.end {
                Bound::Unbounded => true,
                Bound::Included(e) => entry.key <= e,
                Bound::Excluded(e) => entry.key < e,
            };
            if !inside {
                return None;
            }
            self.pos += 1;
            return Some(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn insert_get_remove_and_order() {
        let mut idx = Index::new();
        for i in (0..5000u32).rev() {
            idx.insert(
                format!("k{i:05}").as_bytes(),
                &i.to_le_bytes(),
                u64::from(i % 2),
            );
        }
        assert_eq!(idx.len(), 5000);
        assert_eq!(
            idx.get(b"k00042").map(|e| e.value),
            Some(&42u32.to_le_bytes()[..])
        );
        let keys: Vec<Vec<u8>> = idx
            .range(Bound::Unbounded, Bound::Unbounded)
            .map(|e| e.key.to_vec())
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(idx.remove(b"k00042"), Some(0));
        assert_eq!(idx.remove(b"k00042"), None);
        assert_eq!(idx.get(b"k00042"), None);
        assert_eq!(idx.expired(1, 10).len(), 10);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(Vec<u8>, u8, u64),
        Remove(Vec<u8>),
        Range(Vec<u8>, Vec<u8>),
    }

    fn key() -> impl Strategy<Value = Vec<u8>> {
        // Short keys over a tiny alphabet, so heads often tie and prefixes
        // of one another occur.
        prop::collection::vec(
            prop_oneof![Just(0u8), Just(b'a'), Just(b'b'), Just(0xff)],
            1..11,
        )
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (key(), any::<u8>(), 0u64..4).prop_map(|(k, v, e)| Op::Insert(k, v, e)),
            2 => key().prop_map(Op::Remove),
            1 => (key(), key()).prop_map(|(a, b)| Op::Range(a, b)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn matches_a_btreemap(ops in prop::collection::vec(op(), 1..1500)) {
            let mut idx = Index::new();
            let mut model: BTreeMap<Vec<u8>, (u8, u64)> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v, e) => {
                        let prev = idx.insert(&k, &[v], e);
                        prop_assert_eq!(prev, model.insert(k, (v, e)).map(|x| x.1));
                    }
                    Op::Remove(k) => {
                        prop_assert_eq!(idx.remove(&k), model.remove(&k).map(|x| x.1));
                    }
                    Op::Range(a, b) => {
                        let got: Vec<Vec<u8>> = idx
                            .range(Bound::Included(&a), Bound::Excluded(&b))
                            .map(|e| e.key.to_vec())
                            .collect();
                        let want: Vec<Vec<u8>> = if a < b {
                            model.range(a.clone()..b.clone()).map(|(k, _)| k.clone()).collect()
                        } else {
                            Vec::new()
                        };
                        prop_assert_eq!(got, want);
                        let got: Vec<Vec<u8>> = idx
                            .range(Bound::Excluded(&a), Bound::Unbounded)
                            .map(|e| e.key.to_vec())
                            .collect();
                        let want: Vec<Vec<u8>> = model
                            .range((Bound::Excluded(a.clone()), Bound::Unbounded))
                            .map(|(k, _)| k.clone())
                            .collect();
                        prop_assert_eq!(got, want);
                    }
                }
                prop_assert_eq!(idx.len(), model.len());
            }
            let all: Vec<(Vec<u8>, u8, u64)> = idx
                .range(Bound::Unbounded, Bound::Unbounded)
                .map(|e| (e.key.to_vec(), e.value[0], e.expires_at))
                .collect();
            let want: Vec<(Vec<u8>, u8, u64)> = model.iter().map(|(k, (v, e))| (k.clone(), *v, *e)).collect();
            prop_assert_eq!(all, want);
            let mut expired: Vec<Vec<u8>> = idx.expired(2, usize::MAX);
            expired.sort();
            let want: Vec<Vec<u8>> = model.iter().filter(|(_, (_, e))| *e != 0 && *e <= 2).map(|(k, _)| k.clone()).collect();
            prop_assert_eq!(expired, want);
        }
    }
}
