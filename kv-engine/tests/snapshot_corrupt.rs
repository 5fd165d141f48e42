//! A damaged snapshot or MANIFEST is an error, never wrong or missing data.
//!
//! Data is written, `compact()` writes a snapshot (the test checks the file
//! the MANIFEST names exists), more writes go to the WAL after it, and the
//! database is closed. Then, each time on a fresh copy of the directory:
//!
//! - a random bit is flipped in every byte of the snapshot, and the
//!   snapshot is truncated at many lengths (every length near both ends,
//!   every third in between) or has bytes appended: open fails with `Error::Corruption` naming
//!   the snapshot, or returns the correct full state (snapshot + WAL) —
//!   never wrong data, never a panic;
//! - the MANIFEST is tampered with (every single-bit flip, truncations,
//!   edited values without a fixed checksum): `Corruption`, or — for the
//!   few edits that keep its meaning (a hex digit's case, whitespace after
//!   the checksum) — the correct full state; a MANIFEST with a valid
//!   checksum that does not fit the files (another `wal_start`, no snapshot)
//!   is `Corruption` too;
//! - the snapshot the MANIFEST names is missing: open is an error, not an
//!   empty database, and it destroys nothing (putting the file back gives
//!   the full state); the same for a missing MANIFEST next to data files;
//! - the first WAL segment after the snapshot (`wal_start`) is missing, and
//!   no later one exists: `Corruption` naming it, not the snapshot's state
//!   without the writes logged after it. A database compacted, and one
//!   compacted then closed with no write, always has that segment (so the
//!   check never refuses a valid database).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use kv_engine::manifest::{Manifest, MANIFEST};
use kv_engine::storage::RealStorage;
use kv_engine::wal::format::SEGMENT_HEADER_LEN;
use kv_engine::wal::segment_name;
use kv_engine::{Db, Error, Options, SyncMode};

type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// A tiny fixed-seed xorshift64 generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn opts(dir: &Path) -> Options {
    Options::new(dir).sync(SyncMode::Always)
}

fn state_of(db: &Db) -> State {
    db.scan(b"", usize::MAX).unwrap().into_iter().collect()
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// A closed database with a snapshot and WAL records after it.
struct Reference {
    _dir: tempfile::TempDir,
    path: PathBuf,
    /// The full state.
    state: State,
    manifest: Manifest,
    /// File name of the snapshot.
    snapshot: String,
    snapshot_bytes: Vec<u8>,
    manifest_bytes: Vec<u8>,
}

fn reference() -> Reference {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let mut rng = Rng(0x5851_f42d_4c95_7f2d);
    let mut model = State::new();
    let db = Db::open(opts(&path)).unwrap();
    for i in 0..150u32 {
        let k = format!("user:{i:04}").into_bytes();
        let len = rng.below(30) as usize;
        let v: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        db.set(&k, &v).unwrap();
        model.insert(k, v);
    }
    for i in (0..150u32).step_by(7) {
        let k = format!("user:{i:04}").into_bytes();
        assert!(db.delete(&k).unwrap());
        model.remove(&k);
    }
    let mut b = db.batch();
    for i in 0..5u32 {
        let k = format!("batch:{i}").into_bytes();
        b.set(&k, b"in a batch");
        model.insert(k, b"in a batch".to_vec());
    }
    b.write().unwrap();
    db.compact().unwrap();

    let manifest = Manifest::load(&RealStorage, &path).unwrap().unwrap();
    let snapshot = manifest
        .snapshot
        .clone()
        .expect("compact() names a snapshot");
    assert!(
        path.join(&snapshot).is_file(),
        "the snapshot {snapshot} exists after compact()"
    );

    // More writes after the snapshot, some to keys it holds.
    for i in (0..150u32).step_by(5) {
        let k = format!("user:{i:04}").into_bytes();
        if i % 2 == 0 {
            db.set(&k, b"after the snapshot").unwrap();
            model.insert(k, b"after the snapshot".to_vec());
        } else if model.contains_key(&k) {
            assert!(db.delete(&k).unwrap());
            model.remove(&k);
        }
    }
    assert_eq!(state_of(&db), model);
    db.close().unwrap();

    let snapshot_bytes = fs::read(path.join(&snapshot)).unwrap();
    let manifest_bytes = fs::read(path.join(MANIFEST)).unwrap();
    let r = Reference {
        _dir: dir,
        path,
        state: model,
        manifest,
        snapshot,
        snapshot_bytes,
        manifest_bytes,
    };
    // Sanity: an untouched copy opens with the full state.
    let (_dir, copy) = r.copy();
    let db = Db::open(opts(&copy)).unwrap();
    assert_eq!(state_of(&db), r.state);
    db.close().unwrap();
    r
}

impl Reference {
    fn copy(&self) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&self.path, dir.path());
        let path = dir.path().to_owned();
        (dir, path)
    }

    /// Opens a copy whose file `name` holds `bytes`. Returns `Ok(())` when it
    /// opened with the full state, the `Corruption` otherwise; panics on a
    /// wrong state, another error or a panic.
    fn open_with(
        &self,
        name: &str,
        bytes: &[u8],
        what: &str,
    ) -> Result<(), (PathBuf, u64, String)> {
        let (_dir, path) = self.copy();
        fs::write(path.join(name), bytes).unwrap();
        let opened = std::panic::catch_unwind(|| Db::open(opts(&path)))
            .unwrap_or_else(|_| panic!("{what}: open panicked"));
        match opened {
            Ok(db) => {
                let got = state_of(&db);
                db.close().unwrap();
                assert!(
                    got == self.state,
                    "{what}: opened with a wrong state: {} keys, expected {}",
                    got.len(),
                    self.state.len()
                );
                Ok(())
            }
            Err(Error::Corruption {
                file,
                offset,
                reason,
            }) => Err((file, offset, reason)),
            Err(e) => panic!("{what}: expected Corruption or the full state, got: {e}"),
        }
    }
}

#[test]
fn damaged_snapshots_are_corruption_never_wrong_data() {
    let t0 = Instant::now();
    let r = reference();
    let len = r.snapshot_bytes.len();
    let mut rng = Rng(0x1405_7b7e_f767_814f);
    let (mut corrupt, mut fine) = (0, 0);
    let mut tally = |result: Result<(), (PathBuf, u64, String)>, what: &str| match result {
        Ok(()) => fine += 1,
        Err((file, offset, reason)) => {
            assert_eq!(
                file.file_name().unwrap().to_str().unwrap(),
                r.snapshot,
                "{what}: Corruption at {offset} names the wrong file ({reason})"
            );
            corrupt += 1;
        }
    };

    // Flips: a random bit of every byte.
    let positions = 0..len;
    let mut flips = 0;
    for pos in positions {
        let bit = rng.below(8);
        let mut bytes = r.snapshot_bytes.clone();
        bytes[pos] ^= 1 << bit;
        let what = format!("flip of bit {bit} of byte {pos} of {}", r.snapshot);
        tally(r.open_with(&r.snapshot, &bytes, &what), &what);
        flips += 1;
    }
    // Truncations: every length near both ends, every 3rd between.
    let mut cuts = 0;
    for cut in (0..len).filter(|&c| c < 48 || c >= len - 48 || c % 3 == 0) {
        let what = format!("{} cut to {cut} of {len} bytes", r.snapshot);
        tally(
            r.open_with(&r.snapshot, &r.snapshot_bytes[..cut], &what),
            &what,
        );
        cuts += 1;
    }
    // Extra bytes after the footer.
    for extra in [1usize, 4, 100] {
        let mut bytes = r.snapshot_bytes.clone();
        bytes.resize(len + extra, 0);
        let what = format!("{} with {extra} zero bytes appended", r.snapshot);
        tally(r.open_with(&r.snapshot, &bytes, &what), &what);
    }
    println!(
        "snapshot of {len} bytes, {} keys in the full state: {flips} flips + {cuts} cuts + 3 \
         appends -> {corrupt} Corruption, {fine} correct full state, in {:?}",
        r.state.len(),
        t0.elapsed()
    );
}

#[test]
fn a_tampered_manifest_is_corruption() {
    let t0 = Instant::now();
    let r = reference();
    let text = String::from_utf8(r.manifest_bytes.clone()).unwrap();
    let (mut corrupt, mut same, mut cut_same) = (0, 0, 0);
    let mut harmless = Vec::new();

    // Every single-bit flip, and every truncation.
    for pos in 0..r.manifest_bytes.len() {
        for bit in 0..8 {
            let mut bytes = r.manifest_bytes.clone();
            bytes[pos] ^= 1 << bit;
            let what = format!("MANIFEST with bit {bit} of byte {pos} flipped");
            match r.open_with(MANIFEST, &bytes, &what) {
                Err(_) => corrupt += 1,
                Ok(()) => {
                    same += 1;
                    harmless.push(format!(
                        "{:?}->{:?}",
                        r.manifest_bytes[pos] as char, bytes[pos] as char
                    ));
                }
            }
        }
    }
    for cut in 0..r.manifest_bytes.len() {
        let what = format!("MANIFEST cut to {cut} bytes");
        match r.open_with(MANIFEST, &r.manifest_bytes[..cut], &what) {
            Err(_) => corrupt += 1,
            Ok(()) => cut_same += 1,
        }
    }
    println!(
        "MANIFEST of {} bytes, every bit flip and cut: {corrupt} Corruption; full state after \
         {same} harmless flips ({harmless:?}) and {cut_same} harmless cuts",
        r.manifest_bytes.len()
    );

    // Edited values with the old checksum: always Corruption.
    let wal_start = r.manifest.wal_start;
    let edits = [
        text.replace(
            &format!("wal_start {wal_start}\n"),
            &format!("wal_start {}\n", wal_start + 1),
        ),
        text.replace(
            &format!("wal_start {wal_start}\n"),
            &format!("wal_start {}\n", wal_start - 1),
        ),
        text.replace(&format!("snapshot {}\n", r.snapshot), "snapshot none\n"),
        text.replace(
            &format!("timestamp {}\n", r.manifest.timestamp),
            &format!("timestamp {}\n", r.manifest.timestamp + 1),
        ),
        text.replace("format 1\n", "format 2\n"),
        text.replace("# DataKnobs", "# Dataknobs"),
        text.lines()
            .filter(|l| !l.starts_with("crc "))
            .map(|l| format!("{l}\n"))
            .collect(),
        String::new(),
        "garbage".into(),
    ];
    for (i, edited) in edits.iter().enumerate() {
        assert_ne!(*edited, text, "edit #{i} changes the MANIFEST");
        let what = format!("MANIFEST edit #{i}: {edited:?}");
        assert!(
            r.open_with(MANIFEST, edited.as_bytes(), &what).is_err(),
            "{what}: a tampered MANIFEST opened"
        );
    }

    // A valid checksum over values that do not fit the files.
    let misfits = [
        Manifest {
            wal_start: wal_start - 1,
            ..r.manifest.clone()
        },
        Manifest {
            wal_start: wal_start + 1,
            ..r.manifest.clone()
        },
        Manifest {
            snapshot: None,
            wal_start: 1,
            ..r.manifest.clone()
        },
    ];
    for m in &misfits {
        let what = format!("MANIFEST {m:?}");
        assert!(
            r.open_with(MANIFEST, m.render().as_bytes(), &what).is_err(),
            "{what}: a MANIFEST that does not fit the files opened"
        );
    }
    println!("MANIFEST checks in {:?}", t0.elapsed());
}

#[test]
fn a_missing_snapshot_or_manifest_is_an_error_not_an_empty_database() {
    let r = reference();

    // The snapshot the MANIFEST names is gone.
    let (_dir, path) = r.copy();
    fs::remove_file(path.join(&r.snapshot)).unwrap();
    for round in 0..2 {
        match Db::open(opts(&path)) {
            Ok(db) => panic!(
                "open #{round} without {} succeeded with {} keys (expected an error)",
                r.snapshot,
                state_of(&db).len()
            ),
            Err(e) => println!("without the snapshot: {e}"),
        }
    }
    // Nothing was destroyed: with the file back, everything is there.
    fs::write(path.join(&r.snapshot), &r.snapshot_bytes).unwrap();
    let db = Db::open(opts(&path)).unwrap();
    assert_eq!(state_of(&db), r.state);
    db.close().unwrap();

    // The MANIFEST is gone, the snapshot and segments are there.
    let (_dir, path) = r.copy();
    fs::remove_file(path.join(MANIFEST)).unwrap();
    match Db::open(opts(&path)) {
        Ok(db) => panic!(
            "open without the MANIFEST succeeded with {} of {} keys (expected an error)",
            state_of(&db).len(),
            r.state.len()
        ),
        Err(e) => println!("without the MANIFEST: {e}"),
    }
    assert!(path.join(&r.snapshot).is_file(), "the snapshot was kept");
}

#[test]
fn a_missing_first_segment_after_the_snapshot_is_corruption() {
    let r = reference();
    let first = segment_name(r.manifest.wal_start);
    let (_dir, path) = r.copy();
    let bytes = fs::read(path.join(&first)).unwrap();
    assert!(
        bytes.len() > SEGMENT_HEADER_LEN,
        "{first} holds the writes made after the snapshot"
    );
    fs::remove_file(path.join(&first)).unwrap();
    for round in 0..2 {
        match Db::open(opts(&path)) {
            Ok(db) => panic!(
                "open #{round} without {first} succeeded with {} of {} keys (expected Corruption)",
                state_of(&db).len(),
                r.state.len()
            ),
            Err(Error::Corruption { file, .. }) => {
                assert_eq!(
                    file,
                    path.join(&first),
                    "the error names the missing segment"
                );
            }
            Err(e) => panic!("open #{round} without {first}: expected Corruption, got {e}"),
        }
    }
    // Nothing was destroyed: with the segment back, everything is there.
    fs::write(path.join(&first), &bytes).unwrap();
    let db = Db::open(opts(&path)).unwrap();
    assert_eq!(state_of(&db), r.state);
    db.close().unwrap();
}

#[test]
fn a_compacted_database_always_has_its_first_segment() {
    let has_first = |path: &Path, what: &str| {
        let m = Manifest::load(&RealStorage, path).unwrap().unwrap();
        assert!(m.snapshot.is_some(), "{what}: compacted");
        assert!(
            path.join(segment_name(m.wal_start)).is_file(),
            "{what}: segment wal_start {} is missing",
            m.wal_start
        );
    };
    for writes_after in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        let db = Db::open(opts(path)).unwrap();
        db.set(b"a", b"1").unwrap();
        db.compact().unwrap();
        has_first(path, "right after compact()");
        // A second compaction with nothing written since the first.
        db.compact().unwrap();
        has_first(path, "after a second compact() with no write");
        if writes_after {
            db.set(b"b", b"2").unwrap();
        }
        db.close().unwrap();
        for round in 0..3 {
            let what = format!("reopen #{round} (writes after compaction: {writes_after})");
            has_first(path, &what);
            let db = Db::open(opts(path)).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(db.count().unwrap(), 1 + usize::from(writes_after), "{what}");
            if round == 1 {
                // Compact a reopened database, then close with no write.
                db.compact().unwrap();
                has_first(path, &what);
            }
            db.close().unwrap();
        }
    }
}
