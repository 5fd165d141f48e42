//! The properties of the engine's original specification, one test each,
//! named after its property. Random inputs come from proptest; engines run
//! with `SyncMode::Never` (durability is the crash tests' subject) and a
//! manual clock where time matters.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kv_core::{Clock, ManualClock};
use kv_engine::manifest::Manifest;
use kv_engine::snapshot;
use kv_engine::storage::{LockGuard, OpenMode, RealStorage, Storage, StorageFile};
use kv_engine::wal::format::{self, Frame, Kind, Record};
use kv_engine::{Db, Error, Options, SyncMode, TtlState};
use proptest::prelude::*;

fn opts(dir: &Path) -> Options {
    Options::new(dir).sync(SyncMode::Never)
}

fn open(dir: &Path) -> Db {
    Db::open(opts(dir)).unwrap()
}

fn clocked(dir: &Path, clock: &ManualClock) -> Db {
    Db::open(opts(dir).clock(Arc::new(clock.clone()) as Arc<dyn Clock>)).unwrap()
}

/// Every key and value, in order.
fn state(db: &Db) -> Vec<(Vec<u8>, Vec<u8>)> {
    db.scan(b"", usize::MAX).unwrap()
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![Just(b'a'), Just(b'b'), Just(b'.'), Just(0u8), Just(0xffu8)],
        1..6,
    )
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..40)
}

#[derive(Debug, Clone)]
enum Op {
    Set(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            4 => (key(), value()).prop_map(|(k, v)| Op::Set(k, v)),
            2 => key().prop_map(Op::Delete),
            1 => prop::collection::vec((key(), prop::option::of(value())), 1..5).prop_map(Op::Batch),
        ],
        1..60,
    )
}

fn apply(db: &Db, model: &mut BTreeMap<Vec<u8>, Vec<u8>>, op: &Op) {
    match op {
        Op::Set(k, v) => {
            db.set(k, v).unwrap();
            model.insert(k.clone(), v.clone());
        }
        Op::Delete(k) => {
            assert_eq!(db.delete(k).unwrap(), model.remove(k).is_some());
        }
        Op::Batch(items) => {
            let mut b = db.batch();
            for (k, v) in items {
                match v {
                    Some(v) => {
                        b.set(k, v);
                        model.insert(k.clone(), v.clone());
                    }
                    None => {
                        b.delete(k);
                        model.remove(k);
                    }
                }
            }
            b.write().unwrap();
        }
    }
}

fn model_state(model: &BTreeMap<Vec<u8>, Vec<u8>>) -> Vec<(Vec<u8>, Vec<u8>)> {
    model.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn set_get_round_trip(k in key(), v in value(), w in value()) {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        db.set(&k, &v).unwrap();
        prop_assert_eq!(db.get(&k).unwrap(), Some(v));
        db.set(&k, &w).unwrap();
        prop_assert_eq!(db.get(&k).unwrap(), Some(w));
    }

    #[test]
    fn delete_idempotence(k in key(), v in value()) {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        db.set(&k, &v).unwrap();
        prop_assert!(db.delete(&k).unwrap());
        prop_assert!(!db.delete(&k).unwrap());
        prop_assert!(!db.delete(&k).unwrap());
        prop_assert_eq!(db.get(&k).unwrap(), None);
    }

    #[test]
    fn wal_encoding_round_trip(k in key(), v in value(), ts in any::<u64>(), exp in any::<u64>(), del in any::<bool>()) {
        let rec = Record {
            kind: if del { Kind::Delete } else { Kind::Set },
            timestamp: ts,
            key: &k,
            value: if del { b"" } else { &v },
            expires_at: exp,
        };
        let mut out = Vec::new();
        format::encode(&mut out, &rec);
        prop_assert_eq!(format::parse(&out), Frame::Valid { record: rec, len: out.len() });
    }

    #[test]
    fn replay_idempotence(ops in ops()) {
        let dir = tempfile::tempdir().unwrap();
        let mut model = BTreeMap::new();
        {
            let db = open(dir.path());
            for op in &ops {
                apply(&db, &mut model, op);
            }
            db.close().unwrap();
        }
        // Replaying the same log again and again gives the same state.
        for _ in 0..3 {
            let db = open(dir.path());
            prop_assert_eq!(state(&db), model_state(&model));
            db.close().unwrap();
        }
    }

    #[test]
    fn snapshot_round_trip(entries in prop::collection::btree_map(key(), (value(), 0u64..3), 0..200)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(snapshot::snapshot_name(3));
        let mut w = snapshot::SnapshotWriter::create(&RealStorage, &path, 7, 3).unwrap();
        for (k, (v, e)) in &entries {
            w.add(k, v, *e).unwrap();
        }
        let (info, _) = w.finish().unwrap();
        prop_assert_eq!(info.count, entries.len() as u64);
        let mut back = BTreeMap::new();
        let read = snapshot::read(&RealStorage, &path, |k, v, e| {
            back.insert(k.to_vec(), (v.to_vec(), e));
            Ok(())
        })
        .unwrap();
        prop_assert_eq!(read, info);
        prop_assert_eq!(back, entries);
    }

    #[test]
    fn open_close_reopen_preserves_data(ops in ops()) {
        let dir = tempfile::tempdir().unwrap();
        let mut model = BTreeMap::new();
        let db = open(dir.path());
        for (i, op) in ops.iter().enumerate() {
            apply(&db, &mut model, op);
            if i % 17 == 16 {
                db.compact().unwrap();
            }
        }
        db.close().unwrap();
        let db = open(dir.path());
        prop_assert_eq!(state(&db), model_state(&model));
    }

    #[test]
    fn batch_atomicity(prefix in ops(), items in prop::collection::vec((key(), prop::option::of(value())), 1..8)) {
        let dir = tempfile::tempdir().unwrap();
        let mut model = BTreeMap::new();
        let db = open(dir.path());
        for op in &prefix {
            apply(&db, &mut model, op);
        }
        let before = model_state(&model);
        db.close().unwrap();
        // Every open starts a new segment: the batch is alone in it.
        let db = open(dir.path());
        let seg = newest_segment(dir.path());
        apply(&db, &mut model, &Op::Batch(items.clone()));
        db.close().unwrap();
        // The batch is one WAL group: cut anywhere inside it, none of it is
        // there; whole, all of it is.
        let bytes = std::fs::read(&seg).unwrap();
        let batch_len = bytes.len() - format::SEGMENT_HEADER_LEN;
        prop_assert!(batch_len > 0);
        for cut in [1, batch_len / 2, batch_len - 1] {
            let copy = tempfile::tempdir().unwrap();
            copy_dir(dir.path(), copy.path());
            let target = copy.path().join(seg.file_name().unwrap());
            std::fs::write(&target, &bytes[..bytes.len() - cut]).unwrap();
            let db = open(copy.path());
            prop_assert_eq!(state(&db), before.clone(), "cut {} of {}", cut, batch_len);
        }
        let db = open(dir.path());
        prop_assert_eq!(state(&db), model_state(&model));
    }

    #[test]
    fn scan_prefix_range_order_and_limit(keys in prop::collection::btree_set(key(), 0..120), p in key(), a in key(), b in key(), limit in 0usize..50) {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        for k in &keys {
            db.set(k, k).unwrap();
        }
        let by_prefix: Vec<Vec<u8>> = keys.iter().filter(|k| k.starts_with(&p)).take(limit).cloned().collect();
        let got: Vec<Vec<u8>> = db.scan(&p, limit).unwrap().into_iter().map(|(k, _)| k).collect();
        prop_assert_eq!(got, by_prefix);
        let in_range: Vec<Vec<u8>> = keys.iter().filter(|k| **k >= a && **k < b).take(limit).cloned().collect();
        let got: Vec<Vec<u8>> = db.scan_range(&a, &b, limit).unwrap().into_iter().map(|(k, _)| k).collect();
        prop_assert_eq!(got, in_range);
    }

    #[test]
    fn set_nx_only_sets_absent_keys(k in key(), v in value(), w in value()) {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        prop_assert!(db.set_nx(&k, &v).unwrap());
        prop_assert!(!db.set_nx(&k, &w).unwrap());
        prop_assert_eq!(db.get(&k).unwrap(), Some(v));
    }

    #[test]
    fn integer_ops_add_up(deltas in prop::collection::vec(-1000i64..1000, 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        let mut sum = 0i64;
        for d in &deltas {
            sum += d;
            prop_assert_eq!(db.incr_by(b"n", *d).unwrap(), sum);
        }
        prop_assert_eq!(db.incr(b"n").unwrap(), sum + 1);
        prop_assert_eq!(db.decr(b"n").unwrap(), sum);
        prop_assert_eq!(db.get(b"n").unwrap(), Some(sum.to_string().into_bytes()));
    }

    #[test]
    fn compare_and_swap_swaps_only_on_match(v in value(), w in value(), x in value()) {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        prop_assert!(db.compare_and_swap(b"k", None, &v).unwrap());
        prop_assert!(!db.compare_and_swap(b"k", None, &w).unwrap());
        if x != v {
            prop_assert!(!db.compare_and_swap(b"k", Some(&x), &w).unwrap());
            prop_assert_eq!(db.get(b"k").unwrap(), Some(v.clone()));
        }
        prop_assert!(db.compare_and_swap(b"k", Some(&v), &w).unwrap());
        prop_assert_eq!(db.get(b"k").unwrap(), Some(w));
    }

    #[test]
    fn get_and_set_returns_previous(v in value(), w in value()) {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        prop_assert_eq!(db.get_and_set(b"k", &v).unwrap(), None);
        prop_assert_eq!(db.get_and_set(b"k", &w).unwrap(), Some(v));
        prop_assert_eq!(db.get(b"k").unwrap(), Some(w));
    }

    #[test]
    fn dump_keys_lists_every_key_in_order(keys in prop::collection::btree_set(key(), 0..80)) {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        for k in keys.iter().rev() {
            db.set(k, b"").unwrap();
        }
        prop_assert_eq!(db.dump_keys().unwrap(), keys.into_iter().collect::<Vec<_>>());
    }
}

fn newest_segment(dir: &Path) -> std::path::PathBuf {
    let mut segs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segs.sort();
    segs.pop().unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "LOCK" {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn snapshot_has_all_non_expired_keys() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let db = clocked(dir.path(), &clock);
    for i in 0..100u32 {
        let k = format!("k{i:03}");
        if i % 3 == 0 {
            db.set_with_ttl(k.as_bytes(), b"t", Duration::from_secs(10))
                .unwrap();
        } else {
            db.set(k.as_bytes(), b"p").unwrap();
        }
    }
    clock.advance(Duration::from_secs(10));
    db.compact().unwrap();
    let m = Manifest::load(&RealStorage, dir.path()).unwrap().unwrap();
    let mut keys = Vec::new();
    snapshot::read(
        &RealStorage,
        &dir.path().join(m.snapshot.unwrap()),
        |k, _, _| {
            keys.push(String::from_utf8(k.to_vec()).unwrap());
            Ok(())
        },
    )
    .unwrap();
    let want: Vec<String> = (0..100u32)
        .filter(|i| i % 3 != 0)
        .map(|i| format!("k{i:03}"))
        .collect();
    assert_eq!(keys, want);
}

#[test]
fn manifest_tracks_state() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let first = Manifest::load(&RealStorage, dir.path()).unwrap().unwrap();
    assert_eq!(first.snapshot, None);
    db.set(b"a", b"1").unwrap();
    db.compact().unwrap();
    let second = Manifest::load(&RealStorage, dir.path()).unwrap().unwrap();
    let snap = second.snapshot.clone().unwrap();
    assert!(
        dir.path().join(&snap).exists(),
        "the MANIFEST names an existing snapshot"
    );
    assert!(second.wal_start > first.wal_start);
    db.set(b"b", b"2").unwrap();
    db.compact().unwrap();
    let third = Manifest::load(&RealStorage, dir.path()).unwrap().unwrap();
    assert!(third.wal_start > second.wal_start);
    assert!(
        !dir.path().join(&snap).exists(),
        "the replaced snapshot is deleted"
    );
}

#[test]
fn compaction_triggers_on_wal_size() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(opts(dir.path()).segment_size(4096).max_wal_size(16 * 1024)).unwrap();
    for i in 0..2000u32 {
        db.set(format!("key{:05}", i % 300).as_bytes(), &[7u8; 64])
            .unwrap();
    }
    // The background thread compacts; wait for it (bounded).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while db.stats().compactions == 0 {
        assert!(std::time::Instant::now() < deadline, "no compaction ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(Manifest::load(&RealStorage, dir.path())
        .unwrap()
        .unwrap()
        .snapshot
        .is_some());
}

#[test]
fn compaction_updates_manifest_and_deletes_old_wal() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        opts(dir.path())
            .segment_size(4096)
            .background_compaction(false),
    )
    .unwrap();
    for i in 0..500u32 {
        db.set(format!("k{i}").as_bytes(), &[1u8; 50]).unwrap();
    }
    let segments_before: Vec<String> = list(dir.path(), ".log");
    assert!(segments_before.len() > 3, "{segments_before:?}");
    db.compact().unwrap();
    let m = Manifest::load(&RealStorage, dir.path()).unwrap().unwrap();
    let segments_after = list(dir.path(), ".log");
    for s in &segments_after {
        let n: u64 = s[4..24].parse().unwrap();
        assert!(
            n >= m.wal_start,
            "segment {s} older than wal_start {}",
            m.wal_start
        );
    }
    assert!(segments_after.len() < segments_before.len());
    assert_eq!(list(dir.path(), ".snap").len(), 1);
    drop(db);
    let db = open(dir.path());
    assert_eq!(db.count().unwrap(), 500);
}

fn list(dir: &Path, suffix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// Real storage that tells when a compaction is copying the index: its
/// epoch turns odd when a snapshot's temporary file is created, and even
/// again when that file is renamed into place.
#[derive(Debug, Default)]
struct SnapshotWatch {
    epoch: std::sync::atomic::AtomicU64,
}

impl SnapshotWatch {
    fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn note(&self, path: &Path, to: u64) {
        if path.to_str().is_some_and(|p| p.ends_with(".snap.tmp")) {
            let now = self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            assert_eq!(now % 2, to, "snapshot copies do not nest");
        }
    }
}

impl Storage for SnapshotWatch {
    fn create_dir_all(&self, path: &Path) -> std::io::Result<()> {
        RealStorage.create_dir_all(path)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> std::io::Result<Arc<dyn StorageFile>> {
        let file = RealStorage.open(path, mode)?;
        if mode == OpenMode::Create {
            self.note(path, 1);
        }
        Ok(file)
    }
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        RealStorage.read(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        RealStorage.rename(from, to)?;
        self.note(from, 0);
        Ok(())
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        RealStorage.remove(path)
    }
    fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
        RealStorage.sync_dir(path)
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        RealStorage.list(dir)
    }
    fn lock(&self, path: &Path, exclusive: bool) -> std::io::Result<Option<Box<dyn LockGuard>>> {
        RealStorage.lock(path, exclusive)
    }
}

#[test]
fn compaction_allows_concurrent_ops() {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

    let dir = tempfile::tempdir().unwrap();
    let watch = Arc::new(SnapshotWatch::default());
    let db = Db::open(
        opts(dir.path())
            .segment_size(64 * 1024)
            .background_compaction(false)
            .storage(Arc::clone(&watch) as Arc<dyn Storage>),
    )
    .unwrap();
    // Enough data that copying it into the snapshot takes tens of
    // milliseconds: a writer blocked while compaction copies completes no
    // write inside that window, one that is not completes many.
    let base = 40_000u32;
    let mut b = db.batch();
    for i in 0..base {
        b.set(format!("base{i:06}").as_bytes(), &[3u8; 100]);
    }
    b.write().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop, watch) = (db.clone(), Arc::clone(&stop), Arc::clone(&watch));
        std::thread::spawn(move || {
            let (mut n, mut inside) = (0u32, 0u64);
            while !stop.load(SeqCst) {
                let before = watch.epoch();
                db.set(format!("live{n:06}").as_bytes(), b"x").unwrap();
                assert_eq!(db.get(b"base000001").unwrap().map(|v| v.len()), Some(100));
                n += 1;
                // Started after a compaction began copying the index, done
                // before it finished the snapshot.
                if before % 2 == 1 && watch.epoch() == before {
                    inside += 1;
                }
            }
            (n, inside)
        })
    };
    let mut took = Vec::new();
    for _ in 0..3 {
        let t0 = std::time::Instant::now();
        db.compact().unwrap();
        took.push(t0.elapsed());
    }
    assert_eq!(watch.epoch(), 6, "three snapshots written");
    stop.store(true, SeqCst);
    let (written, inside) = writer.join().unwrap();
    println!("{inside} of {written} writes completed while a compaction copied the index; compactions took {took:?}");
    assert!(
        inside > 0,
        "no write completed while compaction copied the index: it blocks writers ({took:?})"
    );
    db.close().unwrap();
    let db = open(dir.path());
    assert_eq!(db.count().unwrap(), base as usize + written as usize);
}

#[test]
fn concurrent_reads() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    for i in 0..1000u32 {
        db.set(&i.to_be_bytes(), &i.to_le_bytes()).unwrap();
    }
    let readers: Vec<_> = (0..4)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in (0..1000u32).map(|i| (i * 7 + t) % 1000) {
                    assert_eq!(
                        db.get(&i.to_be_bytes()).unwrap(),
                        Some(i.to_le_bytes().to_vec())
                    );
                }
            })
        })
        .collect();
    for r in readers {
        r.join().unwrap();
    }
}

#[test]
fn serialised_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let db = db.clone();
            std::thread::spawn(move || {
                for _ in 0..500 {
                    db.incr(b"counter").unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(db.get(b"counter").unwrap(), Some(b"4000".to_vec()));
    db.close().unwrap();
    assert_eq!(
        open(dir.path()).get(b"counter").unwrap(),
        Some(b"4000".to_vec())
    );
}

#[test]
fn read_your_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(Options::new(dir.path()).sync(SyncMode::Periodic(Duration::from_secs(3600))))
        .unwrap();
    for i in 0..200u32 {
        db.set(b"k", &i.to_le_bytes()).unwrap();
        assert_eq!(db.get(b"k").unwrap(), Some(i.to_le_bytes().to_vec()));
    }
}

#[test]
fn batch_discard_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let mut b = db.batch();
    b.set(b"a", b"1").set(b"b", b"2");
    assert_eq!(b.len(), 2);
    b.discard();
    assert_eq!(db.count().unwrap(), 0);
    db.close().unwrap();
    assert_eq!(open(dir.path()).count().unwrap(), 0);
}

#[test]
fn scan_isolation_between_prefixes_and_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(5_000);
    let db = clocked(dir.path(), &clock);
    db.set(b"user:1", b"a").unwrap();
    db.set(b"user:2", b"b").unwrap();
    db.set_with_ttl(b"user:3", b"c", Duration::from_secs(1))
        .unwrap();
    db.set(b"users", b"x").unwrap();
    db.set(b"usr:1", b"y").unwrap();
    assert_eq!(db.scan(b"user:", 10).unwrap().len(), 3);
    clock.advance(Duration::from_secs(1));
    let keys: Vec<Vec<u8>> = db
        .scan(b"user:", 10)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, vec![b"user:1".to_vec(), b"user:2".to_vec()]);
    // An iterator sees the state when it was made.
    let it = db.iter_prefix(b"user:").unwrap();
    db.delete(b"user:1").unwrap();
    assert_eq!(it.count(), 2);
}

#[test]
fn ttl_expire_persist() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000);
    let db = clocked(dir.path(), &clock);
    assert_eq!(db.ttl(b"k").unwrap(), TtlState::Missing);
    db.set(b"k", b"v").unwrap();
    assert_eq!(db.ttl(b"k").unwrap(), TtlState::Persistent);
    assert!(db.expire(b"k", Duration::from_secs(5)).unwrap());
    assert_eq!(
        db.ttl(b"k").unwrap(),
        TtlState::Expires(Duration::from_secs(5))
    );
    assert!(db.persist(b"k").unwrap());
    assert!(!db.persist(b"k").unwrap());
    db.set_with_ttl(b"t", b"v", Duration::from_secs(2)).unwrap();
    clock.advance(Duration::from_secs(2));
    assert_eq!(db.get(b"t").unwrap(), None);
    assert!(!db.exists(b"t").unwrap());
    assert_eq!(db.count().unwrap(), 1);
    // Expired keys stay invisible after a reopen (the expiry is logged).
    db.close().unwrap();
    let db = clocked(dir.path(), &clock);
    assert_eq!(db.get(b"t").unwrap(), None);
    assert_eq!(db.get(b"k").unwrap(), Some(b"v".to_vec()));
    assert_eq!(db.remove_expired(clock.now()).unwrap(), 1);
}

#[test]
fn ttl_cleaner_removes_expired_keys_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000);
    let mut o = opts(dir.path()).clock(Arc::new(clock.clone()) as Arc<dyn Clock>);
    o.ttl_interval = Duration::from_millis(20);
    let db = Db::open(o).unwrap();
    for i in 0..100u32 {
        db.set_with_ttl(&i.to_be_bytes(), b"v", Duration::from_secs(1))
            .unwrap();
    }
    clock.advance(Duration::from_secs(1));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while db.stats().expired_removed < 100 {
        assert!(
            std::time::Instant::now() < deadline,
            "the TTL cleaner did not run"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(db.stats().keys, 0);
}

#[test]
fn read_only_mode() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        db.set(b"k", b"v").unwrap();
    }
    let db = Db::open(opts(dir.path()).read_only(true)).unwrap();
    assert_eq!(db.get(b"k").unwrap(), Some(b"v".to_vec()));
    assert!(matches!(db.set(b"k", b"w"), Err(Error::ReadOnly)));
    assert!(matches!(db.delete(b"k"), Err(Error::ReadOnly)));
    assert!(matches!(db.compact(), Err(Error::ReadOnly)));
    assert!(matches!(db.batch().write(), Err(Error::ReadOnly)));
    // Two read-only handles may share the directory.
    let other = Db::open(opts(dir.path()).read_only(true)).unwrap();
    assert_eq!(other.get(b"k").unwrap(), Some(b"v".to_vec()));
}

#[test]
fn closed_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    db.set(b"k", b"v").unwrap();
    let clone = db.clone();
    db.close().unwrap();
    db.close().unwrap();
    assert!(matches!(db.get(b"k"), Err(Error::Closed)));
    assert!(matches!(clone.set(b"k", b"w"), Err(Error::Closed)));
    assert!(matches!(clone.scan(b"", 1), Err(Error::Closed)));
    // Closing released the directory.
    assert_eq!(open(dir.path()).get(b"k").unwrap(), Some(b"v".to_vec()));
}

#[test]
fn stats_count_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    for i in 0..100u32 {
        db.set(&i.to_be_bytes(), &[0u8; 10]).unwrap();
    }
    db.delete(&5u32.to_be_bytes()).unwrap();
    for i in 0..50u32 {
        db.get(&i.to_be_bytes()).unwrap();
    }
    let mut b = db.batch();
    b.set(b"x", b"1").set(b"y", b"2");
    b.write().unwrap();
    db.compact().unwrap();
    let s = db.stats();
    assert_eq!(s.keys, 101);
    assert_eq!(s.key_value_bytes, 99 * 14 + 4);
    assert_eq!(s.writes, 102);
    assert_eq!(s.deletes, 1);
    assert!(s.gets >= 50);
    assert_eq!(s.batches, 1);
    assert_eq!(s.compactions, 1);
    assert!(s.snapshot_bytes > 0);
    assert!(s.index_overhead_bytes > 0);
    assert!(s.read_latency[0] <= s.read_latency[2]);
}

#[test]
fn integer_ops_reject_non_integers_and_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    db.set(b"s", b"abc").unwrap();
    assert!(matches!(db.incr(b"s"), Err(Error::NotAnInteger { .. })));
    db.set(b"m", i64::MAX.to_string().as_bytes()).unwrap();
    assert!(matches!(db.incr(b"m"), Err(Error::Overflow { .. })));
    assert_eq!(
        db.get(b"m").unwrap(),
        Some(i64::MAX.to_string().into_bytes())
    );
}
