//! Compaction: a fuzzy checkpoint of the live index becomes the new
//! snapshot, then a new MANIFEST, then the old files go.
//!
//! 1. Under the writer lock (briefly): close the active segment `N`
//!    (written, truncated, fsynced) and start `N + 1`. Every write from now
//!    on lands in segments `N + 1` and later.
//! 2. Copy the live index into `snap-(N+1).snap.tmp` in key order, a chunk
//!    of keys at a time under a short read lock, so reads and writes go on.
//!    Each key is copied as it is at that moment: some after writes that
//!    happened after step 1. That is safe because recovery replays segments
//!    `N + 1..` on top of the snapshot, and every record in them is an
//!    absolute value (a set, a delete, or the result of an increment): each
//!    key written after step 1 ends up with its last written value whatever
//!    the snapshot held for it, and every other key holds the same value at
//!    every moment after step 1.
//! 3. Sync the WAL: whatever the snapshot copied is now durable in segments
//!    `N + 1..` too (so a snapshot never holds a write, or half a batch, that
//!    a failed WAL write lost). Then fsync the snapshot, rename it to
//!    `snap-(N+1).snap`, fsync the directory.
//! 4. Replace the MANIFEST (`snapshot snap-(N+1).snap`, `wal_start N+1`):
//!    temp file, fsync, rename, fsync the directory.
//! 5. Only now delete segments `..=N` and the old snapshot.
//!
//! A crash before step 4 leaves the old MANIFEST, whose files all still
//! exist; a crash after it leaves the new one. Either way recovery finds a
//! complete state, and removes the leftovers. Memory is one chunk of keys,
//! whatever the size of the database.

use std::ops::Bound;
use std::sync::atomic::Ordering;

use crate::db::Inner;
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::snapshot::{snapshot_name, SnapshotWriter};
use crate::stats::Counters;
use crate::wal::writer::segment_name;

/// Keys copied per read lock.
const CHUNK: usize = 1024;

pub(crate) fn compact(inner: &Inner) -> Result<()> {
    let _one_at_a_time = inner.compaction.lock().unwrap_or_else(|e| e.into_inner());
    inner.check_writable()?;

    // 1. Close the active segment.
    let (closed, covered_bytes) = {
        let mut guard = inner.lock_writer();
        let wal = guard.as_mut().ok_or(Error::Closed)?;
        match wal.rotate() {
            Ok(closed) => {
                inner.commit.mark_durable(wal.seq());
                (closed, wal.wal_bytes() - wal.segment_len())
            }
            Err(e) => {
                inner.poison(&e);
                return Err(e);
            }
        }
    };
    let old = inner
        .manifest
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let new_start = closed + 1;
    let storage = &*inner.storage;
    let dir = &inner.dir;

    // 2. The live index, chunk by chunk, in key order.
    let now = inner.now_ms();
    let drop_expired = inner.opts.enforce_ttl;
    let name = snapshot_name(new_start);
    let tmp = dir.join(format!("{name}.tmp"));
    let mut writer = SnapshotWriter::create(storage, &tmp, now, new_start)?;
    let mut after: Option<Vec<u8>> = None;
    loop {
        let chunk: Vec<(Vec<u8>, Vec<u8>, u64)> = {
            let index = inner.read_index();
            let start = match &after {
                Some(k) => Bound::Excluded(k.as_slice()),
                None => Bound::Unbounded,
            };
            index
                .range(start, Bound::Unbounded)
                .take(CHUNK)
                .map(|e| (e.key.to_vec(), e.value.to_vec(), e.expires_at))
                .collect()
        };
        let Some((last, _, _)) = chunk.last() else {
            break;
        };
        after = Some(last.clone());
        for (k, v, e) in &chunk {
            if !drop_expired || *e == 0 || *e > now {
                writer.add(k, v, *e)?;
            }
        }
        if chunk.len() < CHUNK {
            break;
        }
    }

    // 3. Everything copied is durable in the WAL too; then the snapshot.
    // `sync_now` fails once the engine is poisoned (`close` waits for this
    // function, so it cannot be closed meanwhile).
    inner.sync_now()?;
    let (_, bytes) = writer.finish()?;
    let path = dir.join(&name);
    storage
        .rename(&tmp, &path)
        .map_err(|e| Error::io(format!("renaming {}", tmp.display()), e))?;
    storage
        .sync_dir(dir)
        .map_err(|e| Error::io(format!("syncing directory {}", dir.display()), e))?;

    // 4. The new MANIFEST, which makes the snapshot count: not if a
    // writer's failed fsync poisoned the engine since step 3, because the
    // index copied may hold writes that fsync lost. (A snapshot renamed
    // but never named is removed at the next open.)
    inner.check_writable()?;
    let manifest = Manifest {
        snapshot: Some(name),
        wal_start: new_start,
        timestamp: now,
    };
    manifest.store(storage, dir)?;
    *inner.manifest.lock().unwrap_or_else(|e| e.into_inner()) = manifest;
    inner.snapshot_bytes.store(bytes, Ordering::Relaxed);

    // 5. The files it replaces. A failure here only leaves garbage that the
    // next open removes.
    for n in old.wal_start..=closed {
        let _ = storage.remove(&dir.join(segment_name(n)));
    }
    if let Some(old_name) = &old.snapshot {
        let _ = storage.remove(&dir.join(old_name));
    }
    let _ = storage.sync_dir(dir);
    if let Some(wal) = inner.lock_writer().as_mut() {
        wal.snapshot_taken(covered_bytes);
    }
    Counters::add(&inner.counters.compactions, 1);
    Ok(())
}
