//! Compaction: a new snapshot from the old one and the closed WAL segments,
//! then a new MANIFEST, then the old files go.
//!
//! 1. Under the writer lock (briefly): close the active segment `N` (written
//!    and fsynced) and start `N + 1`. Writers go on in `N + 1`.
//! 2. Without any lock: read segments `wal_start..=N` into a sorted map of
//!    changes (memory bounded by the WAL size, not the database size), and
//!    stream a merge of the old snapshot with those changes into
//!    `snap-(N+1).snap.tmp`; fsync, rename to `snap-(N+1).snap`, fsync the
//!    directory.
//! 3. Replace the MANIFEST (`snapshot snap-(N+1).snap`, `wal_start N+1`):
//!    temp file, fsync, rename, fsync the directory.
//! 4. Only now delete segments `..=N` and the old snapshot.
//!
//! A crash before step 3 leaves the old MANIFEST, whose files all still
//! exist; a crash after it leaves the new one. Either way recovery finds a
//! complete state, and removes the leftovers. The live index is never
//! locked for long, so reads and writes go on during compaction.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use crate::db::Inner;
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::snapshot::{self, snapshot_name, SnapshotWriter};
use crate::stats::Counters;
use crate::wal::reader::{self, Change};
use crate::wal::writer::segment_name;

/// A change from the WAL: the new value and expiry, or `None` for deleted.
type Changes = BTreeMap<Vec<u8>, Option<(Vec<u8>, u64)>>;

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

    // 2. Changes from the closed segments, merged into a new snapshot.
    let mut changes: Changes = BTreeMap::new();
    for n in old.wal_start..=closed {
        let path = dir.join(segment_name(n));
        let bytes = match storage.read(&path) {
            Ok(b) => b,
            // A segment removed as an empty torn tail at open.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        reader::replay(&path, n, &bytes, false, |group| {
            for change in group {
                match *change {
                    Change::Set {
                        key,
                        value,
                        expires_at,
                    } => {
                        changes.insert(key.to_vec(), Some((value.to_vec(), expires_at)));
                    }
                    Change::Delete { key } => {
                        changes.insert(key.to_vec(), None);
                    }
                }
            }
        })?;
    }
    let now = inner.now_ms();
    let drop_expired = inner.opts.enforce_ttl;
    let keep = |expires_at: u64| !drop_expired || expires_at == 0 || expires_at > now;
    let name = snapshot_name(new_start);
    let tmp = dir.join(format!("{name}.tmp"));
    let mut writer = SnapshotWriter::create(storage, &tmp, now, new_start)?;
    let mut pending = changes.iter().peekable();
    if let Some(old_name) = &old.snapshot {
        snapshot::read(storage, &dir.join(old_name), |key, value, expires_at| {
            // Changed keys that sort before this one come first.
            while let Some((k, change)) = pending.peek() {
                if k.as_slice() >= key {
                    break;
                }
                if let Some((v, e)) = change {
                    if keep(*e) {
                        writer.add(k, v, *e)?;
                    }
                }
                pending.next();
            }
            match pending.peek() {
                Some((k, change)) if k.as_slice() == key => {
                    if let Some((v, e)) = change {
                        if keep(*e) {
                            writer.add(k, v, *e)?;
                        }
                    }
                    pending.next();
                }
                _ => {
                    if keep(expires_at) {
                        writer.add(key, value, expires_at)?;
                    }
                }
            }
            Ok(())
        })?;
    }
    for (k, change) in pending {
        if let Some((v, e)) = change {
            if keep(*e) {
                writer.add(k, v, *e)?;
            }
        }
    }
    let (_, bytes) = writer.finish()?;
    let path = dir.join(&name);
    storage
        .rename(&tmp, &path)
        .map_err(|e| Error::io(format!("renaming {}", tmp.display()), e))?;
    storage
        .sync_dir(dir)
        .map_err(|e| Error::io(format!("syncing directory {}", dir.display()), e))?;

    // 3. The new MANIFEST.
    let manifest = Manifest {
        snapshot: Some(name),
        wal_start: new_start,
        timestamp: now,
    };
    manifest.store(storage, dir)?;
    *inner.manifest.lock().unwrap_or_else(|e| e.into_inner()) = manifest;
    inner.snapshot_bytes.store(bytes, Ordering::Relaxed);

    // 4. The files it replaces. A failure here only leaves garbage that the
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
